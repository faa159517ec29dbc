// End-to-end: the passthrough's less common operations — xattrs and POSIX
// ACLs, POSIX and flock() locks (between clients, and against a process
// locking the source directly), SEEK_DATA/SEEK_HOLE, copy_file_range,
// O_TMPFILE + linkat, renameat2 flags, device nodes, statfs/statx,
// fsync/fsyncdir/syncfs, access(), the server's own permission checks without
// default_permissions, and setuid clearing (HANDLE_KILLPRIV_V2).
//
// The server is test/fixtures/serve-passthrough.ts in a child process; the
// client syscalls run in this process or in python3 children (some as uid
// 65534). Results through the mount are checked against the source directly,
// and the server's request counts show the operation really reached it.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { poll, run, sleep, timed, WAIT_MS } from './helpers.js';
import { bases, dedent, PY_HELPERS, type Env, type Fixture, serverLog, withPt } from './pt-helpers.js';

const MODES = ['never', 'mandatory'] as const;
const NOBODY = 65534;
const MiB = 1 << 20;
const AGAIN = ['EAGAIN', 'EACCES', 'EWOULDBLOCK'];

// ---- python3 children -------------------------------------------------------------

/** Helpers every python child gets; `a` is argv, `AS` the uid to become (with that user's own groups). */
const PRELUDE = String.raw`
import ctypes, errno, fcntl, json, os, stat, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a = sys.argv[1:]
${PY_HELPERS}
def renameat2(p, q, flags):
    chk(libc.renameat2(-100, p.encode(), -100, q.encode(), flags))
FLOCK = '=hh4xqqi4x'
def getlk(fd):
    t, _, s, n, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, fcntl.F_WRLCK, 0, 0, 0, 0)))
    return [t, s, n, pid]
def devinfo(p):
    s = os.lstat(p)
    return [stat.S_IFMT(s.st_mode), os.major(s.st_rdev), os.minor(s.st_rdev)]
def acl(*ents):
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, i) for t, p, i in ents)
U = 0xffffffff
# user::rw- user:65534:r-- group::r-- mask::r-- other::---
ACL = acl((1, 6, U), (2, 4, 65534), (4, 4, U), (0x10, 4, U), (0x20, 0, U))
if AS is not None:
    import pwd
    try: os.initgroups(pwd.getpwuid(AS).pw_name, AS)  # that user's own groups, as a login gives them
    except KeyError: os.setgroups([])  # a uid with no passwd entry has none
    os.setgid(AS); os.setuid(AS)
`;

const pyArgs = (body: string, uid?: number) => ['-I', '-u', '-c', `AS = ${uid ?? 'None'}\n${PRELUDE}\n${dedent(body)}`];

/** Runs `body` in python3 (as `uid` if given); its last line of output is JSON (untyped unless `T` is given). */
async function py<T = any>(body: string, args: string[] = [], uid?: number, ms = WAIT_MS): Promise<T> {
  const r = await run('python3', [...pyArgs(body, uid), ...args], ms);
  if (r.code !== 0) throw new Error(`python3${uid === undefined ? '' : ` as ${uid}`} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

/** A long-running python child: one JSON line out per line in. */
function pyProc(body: string, args: string[]) {
  const child = spawn('python3', [...pyArgs(body), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  let read = 0;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  child.stderr!.on('data', (d) => { err += d; });
  child.stdin!.on('error', () => { /* exited */ });
  return {
    async next(ms = WAIT_MS): Promise<any> {
      assert.ok(await poll(() => lines.length > read, ms), `python child: no answer within ${ms} ms; stderr ${err}`);
      return JSON.parse(lines[read++]);
    },
    send(line: string) { child.stdin!.write(`${line}\n`); },
    kill() { child.kill('SIGKILL'); },
  };
}

// ---- other helpers ----------------------------------------------------------------

/** Lets uid 65534 reach SRC and the mount (tempDir makes 0o700 directories). */
function openUp({ base, src }: Env): void {
  chmodSync(base, 0o755);
  chmodSync(src, 0o755);
}

/** Polls an async `cond` until it holds (true) or `ms` pass (false). */
async function pollAsync(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(10);
  }
}

/** How many requests of these opcodes the server has received so far. */
async function served(fx: Fixture, ...ops: string[]): Promise<number> {
  const r = (await fx.stats()).stats.requests;
  return ops.reduce((n, op) => n + (r[op] ?? 0), 0);
}

async function cleanLog(fx: Fixture): Promise<void> {
  assert.is(await serverLog(fx), '', 'server log');
}

const modeOf = (p: string) => statSync(p).mode & 0o7777;

// ---- 1. xattrs and POSIX ACLs -----------------------------------------------------------

for (const mode of MODES) {
  test(`xattrs: user.* set/get/list/remove through the mount, flags and errors, as in SRC [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      writeFileSync(join(src, 'f'), 'x\n');
      mkdirSync(join(src, 'd'));
      const r = await py(`
        p, s, d, sd = a
        big = bytes(range(256)) * 12
        users = lambda q: sorted(n for n in os.listxattr(q) if n.startswith('user.'))
        os.setxattr(p, 'user.one', b'1')
        os.setxattr(p, 'user.two', b'\\x00bin\\xff')
        os.setxattr(p, 'user.big', big)
        os.setxattr(d, 'user.dir', b'on a directory')
        r = {'two': os.getxattr(p, 'user.two').hex(), 'big': os.getxattr(p, 'user.big') == big, 'list': users(p)}
        r['create'] = err(os.setxattr, p, 'user.one', b'x', os.XATTR_CREATE)
        r['replaceMissing'] = err(os.setxattr, p, 'user.none', b'x', os.XATTR_REPLACE)
        r['replace'] = err(os.setxattr, p, 'user.one', b'uno', os.XATTR_REPLACE)
        r['getMissing'] = err(os.getxattr, p, 'user.none')
        r['removeMissing'] = err(os.removexattr, p, 'user.none')
        os.removexattr(p, 'user.two')
        r['after'] = users(p)
        r['src'] = {n: os.getxattr(s, n).hex() for n in users(s)}
        r['srcDir'] = os.getxattr(sd, 'user.dir').decode()
        os.setxattr(s, 'user.behind', b'set in SRC')
        r['behind'] = os.getxattr(p, 'user.behind').decode()
        out(r)
      `, [join(mnt, 'f'), join(src, 'f'), join(mnt, 'd'), join(src, 'd')]);
      assert.is(r.two, '0062696eff');
      assert.ok(r.big, 'a 3 KiB value reads back');
      assert.equal(r.list, ['user.big', 'user.one', 'user.two']);
      assert.is(r.create, 'EEXIST', 'XATTR_CREATE of an existing name');
      assert.is(r.replaceMissing, 'ENODATA', 'XATTR_REPLACE of a missing name');
      assert.is(r.replace, null);
      assert.is(r.getMissing, 'ENODATA');
      assert.is(r.removeMissing, 'ENODATA');
      assert.equal(r.after, ['user.big', 'user.one']);
      assert.equal(Object.keys(r.src), ['user.big', 'user.one'], 'the names in SRC');
      assert.is(r.src['user.one'], Buffer.from('uno').toString('hex'), 'the replaced value in SRC');
      assert.is(r.srcDir, 'on a directory');
      assert.is(r.behind, 'set in SRC', 'an xattr set behind the mount is read through it');
      assert.ok(await served(fx, 'SETXATTR') >= 6 && await served(fx, 'GETXATTR') >= 4 && await served(fx, 'LISTXATTR') >= 2
        && await served(fx, 'REMOVEXATTR') >= 2, 'the xattr requests reached the server');
      await cleanLog(fx);
    })));
}

let aclProbe: Promise<string | null> | undefined;
/** null if SRC's filesystem (/tmp) takes POSIX ACLs, else the errno (checked once). */
function aclSupport(src: string): Promise<string | null> {
  if (!aclProbe) {
    writeFileSync(join(src, '.aclprobe'), '');
    aclProbe = py(`out(err(os.setxattr, a[0], 'system.posix_acl_access', ACL))`, [join(src, '.aclprobe')]);
  }
  return aclProbe;
}

for (const dp of [true, false]) {
  // With default_permissions the kernel checks permissions itself and uses the ACL only if FUSE_POSIX_ACL was negotiated.
  test(`POSIX ACL: system.posix_acl_access set through the mount is in SRC, sets the mode, and lets uid 65534 read (default_permissions ${dp ? 'on' : 'off'})`, timed(30_000, () =>
    withPt({ defaultPermissions: dp }, async (e) => {
      const { src, mnt, fx } = e;
      const probe = await aclSupport(src);
      if (probe) { console.log(`  skipped: SRC's filesystem refuses POSIX ACLs (${probe})`); return; }
      openUp(e);
      writeFileSync(join(src, 'f'), 'acl\n', { mode: 0o600 });
      chmodSync(join(src, 'f'), 0o600);
      const r = await py(`
        m, s = a
        os.setxattr(m, 'system.posix_acl_access', ACL)
        out({'mnt': os.getxattr(m, 'system.posix_acl_access').hex(), 'src': os.getxattr(s, 'system.posix_acl_access').hex(),
             'want': ACL.hex(), 'modeMnt': os.stat(m).st_mode & 0o7777, 'modeSrc': os.stat(s).st_mode & 0o7777})
      `, [join(mnt, 'f'), join(src, 'f')]);
      assert.is(r.src, r.want, 'the ACL in SRC');
      assert.is(r.mnt, r.want, 'the ACL read back through the mount');
      assert.is(r.modeSrc.toString(8), '640', 'SRC mode: group bits are the mask');
      assert.is(r.modeMnt.toString(8), '640', 'mode through the mount');
      const read = `out([err(lambda p: open(p).read(), q) or open(q).read() for q in a])`;
      const [viaMnt, viaSrc] = await py<string[]>(read, [join(mnt, 'f'), join(src, 'f')], NOBODY);
      assert.is(viaSrc, 'acl\n', 'uid 65534 reads SRC/f through its ACL entry');
      assert.is(viaMnt, 'acl\n', 'uid 65534 reads MNT/f through its ACL entry');
      const other = await py<string[]>(read, [join(mnt, 'f'), join(src, 'f')], NOBODY - 1);
      assert.equal(other, ['EACCES', 'EACCES'], 'uid 65533 (not in the ACL) cannot read either');
      await cleanLog(fx);
    })));
}

// ---- 2. locks ----------------------------------------------------------------------------

/** Holds an fd on a[0]; per line in ("posix", "unposix", "flock", "unflock", optionally "<op> SECONDS"), does it and says [op, errno]. */
const HOLDER = `
  fd = os.open(a[0], os.O_RDWR)
  OPS = {'posix': lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), 'unposix': lambda: fcntl.lockf(fd, fcntl.LOCK_UN),
         'flock': lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), 'unflock': lambda: fcntl.flock(fd, fcntl.LOCK_UN)}
  out(os.getpid())
  for line in sys.stdin:
      op, *rest = line.split()
      if rest:
          time.sleep(float(rest[0]))
          out({'at': time.monotonic()})  # CLOCK_MONOTONIC: one clock for every process
      out([op, err(OPS[op])])
`;

/** Opens a[0], says "ready", then F_GETLK ("getlk": [type, start, len, pid] or the errno) or one exclusive lock attempt ("posix"/"flock", "…w" waits). */
const CONTEND = `
  fd = os.open(a[0], os.O_RDWR)
  op = a[1]
  out('ready')
  if op == 'getlk':
      out(err(getlk, fd) or getlk(fd))
  else:
      t = time.monotonic()
      e = err(fcntl.lockf if op.startswith('posix') else fcntl.flock, fd, fcntl.LOCK_EX | (0 if op.endswith('w') else fcntl.LOCK_NB))
      out({'err': e, 'ms': (time.monotonic() - t) * 1000, 'at': time.monotonic()})
`;
interface Attempt { err: string | null; ms: number; at: number; releasedAt?: number }
const attempt = (path: string, op: 'posix' | 'flock') => py<Attempt>(CONTEND, [path, op]);
const getlk = (path: string) => py<[number, number, number, number] | string>(CONTEND, [path, 'getlk']);

/** A holder on `path` (its pid read); `say(op)` expects the op to succeed. */
async function holder(path: string) {
  const h = pyProc(HOLDER, [path]);
  const pid = (await h.next()) as number;
  const say = async (op: string) => { h.send(op); assert.equal(await h.next(), [op, null], `holder: ${op}`); };
  return { ...h, pid, say };
}

/** B waits for the lock on `path`; holder A (locked) releases it once B's blocking request
 * (SETLKW) has reached the server — an event, so B really waits, however slow the machine. */
async function waitForRelease(fx: Fixture, A: Awaited<ReturnType<typeof holder>>, path: string, kind: 'posix' | 'flock'): Promise<Attempt> {
  const before = await served(fx, 'SETLKW');
  const B = pyProc(CONTEND, [path, `${kind}w`]);
  try {
    assert.is(await B.next(), 'ready');
    assert.ok(await pollAsync(async () => await served(fx, 'SETLKW') > before, WAIT_MS), `B's SETLKW did not reach the server within ${WAIT_MS} ms`);
    A.send(`un${kind} 0`);
    const r = (await B.next()) as Attempt;
    const released = (await A.next()) as { at: number };
    assert.equal(await A.next(), [`un${kind}`, null]);
    return { ...r, releasedAt: released.at };
  } finally {
    B.kill();
  }
}

for (const mode of MODES) {
  for (const kind of ['posix', 'flock'] as const) {
    test(`${kind === 'posix' ? 'POSIX (fcntl) locks' : 'flock()'} between two clients: conflict, release, blocking wait; the lock holds against a process on SRC [${mode}]`, timed(90_000, () =>
      withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
        writeFileSync(join(mnt, 'f'), 'locked file\n');
        const [m, s] = [join(mnt, 'f'), join(src, 'f')];
        const A = await holder(m);
        try {
          await A.say(kind);
          const b = await attempt(m, kind);
          assert.ok(AGAIN.includes(b.err!), `B's non-blocking attempt while A holds the lock: ${b.err}`);
          const direct = await attempt(s, kind);
          assert.ok(AGAIN.includes(direct.err!), `a ${kind} lock on SRC/f directly conflicts with the lock held through the mount: ${direct.err}`);
          if (kind === 'posix') assert.is((await getlk(s))[0], 1, 'F_GETLK on SRC/f sees the server\'s lock (F_WRLCK)');
          await A.say(`un${kind}`);
          if (kind === 'posix') assert.is((await getlk(m))[0], 2, 'F_GETLK through the mount after the release: F_UNLCK');
          assert.is((await attempt(m, kind)).err, null, 'B gets the lock once A released it');
          assert.is((await attempt(s, kind)).err, null, 'and so does a process on SRC');
          await A.say(kind);
          const w = await waitForRelease(fx, A, m, kind);
          assert.is(w.err, null);
          // B blocked until A's release: B was granted the lock after A started releasing
          // it (both read CLOCK_MONOTONIC), however long a loaded machine takes.
          assert.ok(w.at >= w.releasedAt!, `B got the lock at ${w.at}, before A released it at ${w.releasedAt}`);
        } finally {
          A.kill();
        }
        assert.ok(await served(fx, 'SETLK') > 0 && await served(fx, 'SETLKW') > 0, 'the locks reached the server');
        await cleanLog(fx);
      })));
  }
}

test('F_GETLK through the mount while another client holds a write lock reports it (F_WRLCK, whole file, the holder\'s pid)', timed(30_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    writeFileSync(join(src, 'f'), 'x\n');
    const A = await holder(join(mnt, 'f'));
    try {
      await A.say('posix');
      assert.equal(await getlk(join(mnt, 'f')), [1, 0, 0, A.pid], 'F_GETLK [l_type, l_start, l_len, l_pid]');
    } finally {
      A.kill();
    }
    await cleanLog(fx);
  })));

test('POSIX lock owner is the process: a second fd of the same file does not conflict, closing it drops the lock (as on SRC)', timed(30_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const body = `
      p = a[0]
      fd1, fd2 = os.open(p, os.O_RDWR), os.open(p, os.O_RDWR)
      fcntl.lockf(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
      second = err(fcntl.lockf, fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
      os.close(fd2)
      pid = os.fork()
      if pid == 0:
          os._exit(0 if err(fcntl.lockf, os.open(p, os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB) is None else 1)
      out({'second fd locks': second, 'closing it freed the lock': os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0})
    `;
    writeFileSync(join(src, 'f'), 'x\n');
    writeFileSync(join(src, 'g'), 'x\n');
    const direct = await py(body, [join(src, 'g')]);
    assert.equal(direct, { 'second fd locks': null, 'closing it freed the lock': true }, 'POSIX semantics on SRC');
    assert.equal(await py(body, [join(mnt, 'f')]), direct, 'through the mount');
    await cleanLog(fx);
  })));

test('OFD locks (F_OFD_SETLK) belong to the open file: another open conflicts, and the close releases them (as on SRC)', timed(120_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const body = `
      p = a[0]
      F_OFD_SETLK = 37
      fl = struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0)
      fd1, fd2 = os.open(p, os.O_RDWR), os.open(p, os.O_RDWR)
      fcntl.fcntl(fd1, F_OFD_SETLK, fl)
      second = err(fcntl.fcntl, fd2, F_OFD_SETLK, fl)
      os.close(fd1)
      end = time.monotonic() + ${WAIT_MS / 1000}
      while True:  # FUSE sends RELEASE after close() returns: wait for it, however long that takes
          after = err(fcntl.fcntl, fd2, F_OFD_SETLK, fl)
          if after is None or time.monotonic() > end: break
          time.sleep(0.01)
      out({'another open file': second, 'after the close': after})
    `;
    writeFileSync(join(src, 'f'), 'x\n');
    writeFileSync(join(src, 'g'), 'x\n');
    const direct = await py(body, [join(src, 'g')]);
    assert.equal(direct, { 'another open file': 'EAGAIN', 'after the close': null }, 'OFD semantics on SRC');
    assert.equal(await py(body, [join(mnt, 'f')], undefined, 2 * WAIT_MS), direct, 'through the mount');
    await cleanLog(fx);
  })));

// ---- 3. SEEK_DATA / SEEK_HOLE; 4. copy_file_range -------------------------------------

for (const mode of MODES) {
  for (const tmpfs of [false, true]) {
    test(`lseek SEEK_DATA/SEEK_HOLE on a sparse file written through the mount equals SRC (${tmpfs ? 'tmpfs' : 'ext4'}) [${mode}]`, timed(30_000, () =>
      withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
        const fd = openSync(join(mnt, 'sparse'), 'w');
        writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
        writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 2 * MiB);
        closeSync(fd);
        const body = `
          fd = os.open(a[0], os.O_RDONLY)
          size = os.fstat(fd).st_size
          at = lambda off, wh: err(os.lseek, fd, off, wh) or os.lseek(fd, off, wh)
          out([size, at(0, os.SEEK_DATA), at(0, os.SEEK_HOLE), at(4096, os.SEEK_DATA), at(2 * 1048576, os.SEEK_HOLE),
               at(size, os.SEEK_DATA), at(size + 100, os.SEEK_HOLE)])
        `;
        const before = await served(fx, 'LSEEK');
        const viaMnt = await py(body, [join(mnt, 'sparse')]);
        const direct = await py(body, [join(src, 'sparse')]);
        assert.equal(direct, [2 * MiB + 4096, 0, 4096, 2 * MiB, 2 * MiB + 4096, 'ENXIO', 'ENXIO'], 'SRC: data, hole, data, EOF');
        assert.equal(viaMnt, direct, 'through the mount');
        assert.ok(await served(fx, 'LSEEK') - before >= 6, 'LSEEK requests reached the server');
        await cleanLog(fx);
      }, { tmpfs })));
  }

  test(`copy_file_range between two files in the mount [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7) % 251));
      writeFileSync(join(mnt, 'a'), data);
      writeFileSync(join(mnt, 'b'), Buffer.alloc(100, 0x58));
      const r = await py(`
        fi, fo, fn = os.open(a[0], os.O_RDONLY), os.open(a[1], os.O_RDWR), os.open(a[2], os.O_RDWR | os.O_CREAT, 0o644)
        n1 = os.copy_file_range(fi, fo, 5000, 10, 50)
        n2 = 0
        while n2 < 20000:
            n = os.copy_file_range(fi, fn, 20000 - n2)
            if n == 0: break
            n2 += n
        out([n1, n2])
      `, [join(mnt, 'a'), join(mnt, 'b'), join(mnt, 'c')]);
      assert.equal(r, [5000, 20_000]);
      const b = Buffer.concat([Buffer.alloc(50, 0x58), data.subarray(10, 5010)]);
      assert.ok(readFileSync(join(src, 'b')).equals(b), 'SRC/b: 50 bytes of X, then a[10..5010)');
      assert.ok(readFileSync(join(mnt, 'b')).equals(b), 'MNT/b');
      assert.ok(readFileSync(join(src, 'c')).equals(data), 'SRC/c is a copy of a');
      assert.ok(readFileSync(join(mnt, 'c')).equals(data), 'MNT/c');
      assert.ok(await served(fx, 'COPY_FILE_RANGE', 'COPY_FILE_RANGE_64') >= 2, 'COPY_FILE_RANGE reached the server');
      await cleanLog(fx);
    })));

  // ---- 5. O_TMPFILE; 6. renameat2 flags; 7. device nodes -------------------------------

  test(`O_TMPFILE in a mount directory: write, read back, linkat(AT_SYMLINK_FOLLOW) into the namespace [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(mnt, 'd'));
      const r = await py(`
        d, sd = a
        fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
        os.write(fd, b'tmpfile data\\n')
        back = os.pread(fd, 100, 0).decode()
        r = {'back': back, 'nlink': os.fstat(fd).st_nlink, 'srcBefore': os.listdir(sd)}
        # linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, path, AT_SYMLINK_FOLLOW); os.link would call link(2)
        r['link'] = err(lambda: chk(libc.linkat(-100, b'/proc/self/fd/%d' % fd, -100, (d + '/named').encode(), 0x400)))
        r['nlinkAfter'] = os.fstat(fd).st_nlink
        os.write(fd, b'more\\n')
        out(r)
      `, [join(mnt, 'd'), join(src, 'd')]);
      assert.is(r.back, 'tmpfile data\n');
      assert.is(r.nlink, 0, 'an O_TMPFILE file has no link');
      assert.equal(r.srcBefore, [], 'nothing in SRC/d before the link');
      assert.is(r.link, null, `linkat of the O_TMPFILE fd: ${r.link}`);
      assert.is(r.nlinkAfter, 1);
      assert.equal(readdirSync(join(src, 'd')), ['named']);
      assert.is(readFileSync(join(src, 'd', 'named'), 'utf8'), 'tmpfile data\nmore\n', 'SRC has the data');
      assert.is(readFileSync(join(mnt, 'd', 'named'), 'utf8'), 'tmpfile data\nmore\n');
      assert.is(statSync(join(src, 'd', 'named')).mode & 0o7777, 0o600);
      assert.ok(await served(fx, 'TMPFILE') === 1 && await served(fx, 'LINK') === 1, 'TMPFILE and LINK reached the server');
      await cleanLog(fx);
    })));

  test(`renameat2 RENAME_NOREPLACE, RENAME_EXCHANGE (files, file ↔ directory), RENAME_WHITEOUT [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      for (const [n, c] of [['a', 'A\n'], ['b', 'B\n'], ['w', 'W\n']]) writeFileSync(join(src, n), c);
      mkdirSync(join(src, 'dir'));
      writeFileSync(join(src, 'dir', 'inside'), 'I\n');
      const r = await py(`
        m = a[0]
        r = {'noreplace': err(renameat2, m + '/a', m + '/b', 1), 'noreplaceFree': err(renameat2, m + '/a', m + '/c', 1)}
        r['exchange'] = err(renameat2, m + '/c', m + '/b', 2)
        r['exchangeDir'] = err(renameat2, m + '/b', m + '/dir', 2)
        r['whiteout'] = err(renameat2, m + '/w', m + '/t', 4)
        r['wMnt'] = err(devinfo, m + '/w') or devinfo(m + '/w')
        r['wSrc'] = err(devinfo, a[1] + '/w') or devinfo(a[1] + '/w')
        out(r)
      `, [mnt, src]);
      assert.is(r.noreplace, 'EEXIST', 'RENAME_NOREPLACE onto an existing name');
      assert.is(r.noreplaceFree, null, 'RENAME_NOREPLACE onto a free name');
      assert.is(r.exchange, null);
      assert.is(r.exchangeDir, null);
      assert.is(r.whiteout, null, `RENAME_WHITEOUT: ${r.whiteout}`);
      // a → c; c ↔ b: c = B, b = A; b ↔ dir: b is the directory, dir = A.
      assert.is(readFileSync(join(src, 'c'), 'utf8'), 'B\n');
      assert.is(readFileSync(join(src, 'dir'), 'utf8'), 'A\n');
      assert.is(readFileSync(join(src, 'b', 'inside'), 'utf8'), 'I\n');
      assert.is(readFileSync(join(mnt, 'dir'), 'utf8'), 'A\n');
      assert.is(readFileSync(join(mnt, 'b', 'inside'), 'utf8'), 'I\n');
      assert.is(readFileSync(join(mnt, 'c'), 'utf8'), 'B\n');
      assert.is(readFileSync(join(src, 't'), 'utf8'), 'W\n', 'the whiteout rename moved the content');
      assert.equal(r.wSrc, [0o020000, 0, 0], 'SRC/w is a 0:0 character device (whiteout)');
      assert.equal(r.wMnt, r.wSrc, 'and so is MNT/w');
      assert.equal(readdirSync(mnt).sort(), ['b', 'c', 'dir', 't', 'w']);
      assert.ok(await served(fx, 'RENAME2') >= 4, 'RENAME2 reached the server (NOREPLACE onto an existing name is refused by the VFS)');
      await cleanLog(fx);
    })));

  test(`mknod: character and block devices (small and large numbers), fifo, socket [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const nodes: [string, number, number, number][] = [
        ['null', 0o020000, 1, 3], ['loop', 0o060000, 7, 200], ['bigc', 0o020000, 511, 0x12345], ['bigb', 0o060000, 259, 70_000],
        ['fifo', 0o010000, 0, 0], ['sock', 0o140000, 0, 0],
      ];
      const r = await py(`
        m, s, nodes = a[0], a[1], json.loads(a[2])
        os.umask(0o022)
        for n, t, ma, mi in nodes:
            os.mknod(m + '/' + n, t | 0o640, os.makedev(ma, mi))
        out({n: [devinfo(m + '/' + n), devinfo(s + '/' + n), os.lstat(s + '/' + n).st_mode & 0o7777] for n, *_ in nodes})
      `, [mnt, src, JSON.stringify(nodes)]);
      for (const [n, t, ma, mi] of nodes) {
        const [viaMnt, direct, perm] = r[n];
        assert.equal(direct, [t, ma, mi], `SRC/${n}: type and rdev`);
        assert.equal(viaMnt, direct, `MNT/${n}: type and rdev`);
        assert.is(perm, 0o640, `SRC/${n}: permissions`);
      }
      assert.ok(await served(fx, 'MKNOD') === nodes.length, 'MKNOD reached the server');
      await cleanLog(fx);
    })));
}

// ---- 8. statvfs / statx; 9. fsync, fsyncdir, syncfs --------------------------------------

for (const tmpfs of [false, true]) {
  test(`statvfs of the mount equals SRC's (${tmpfs ? 'tmpfs' : 'ext4'}); statx fields equal SRC's`, timed(30_000, () =>
    withPt({}, async ({ src, mnt, fx }) => {
      writeFileSync(join(src, 'f'), 'statx\n');
      const r = await py(`
        def vfs(p):
            s = os.statvfs(p)
            return [s.f_bsize, s.f_frsize, s.f_blocks, s.f_files, s.f_namemax, s.f_bfree, s.f_ffree]
        def statx(p):
            b = ctypes.create_string_buffer(256)
            chk(libc.statx(-100, p.encode(), 0x100, 0xfff, b))
            mask, blksize, _, nlink, uid, gid, mode, ino, size, blocks = struct.unpack_from('=IIQIIIH2xQQQ', b, 0)
            mt = struct.unpack_from('=qI', b, 112)
            return {'mask': mask, 'nlink': nlink, 'uid': uid, 'gid': gid, 'mode': mode, 'ino': ino, 'size': size,
                    'blocks': blocks, 'mtime': list(mt), 'btime': list(struct.unpack_from('=qI', b, 80))}
        out({'mnt': vfs(a[0]), 'src': vfs(a[1]), 'xm': statx(a[0] + '/f'), 'xs': statx(a[1] + '/f')})
      `, [mnt, src]);
      const [m, s] = [r.mnt as number[], r.src as number[]];
      assert.equal(m.slice(0, 5), s.slice(0, 5), 'f_bsize, f_frsize, f_blocks, f_files, f_namemax');
      assert.ok(Math.abs(m[5] - s[5]) <= Math.max(256, s[2] / 1000), `f_bfree ${m[5]} vs ${s[5]}`);
      assert.ok(Math.abs(m[6] - s[6]) <= 64, `f_ffree ${m[6]} vs ${s[6]}`);
      assert.ok(await served(fx, 'STATFS') >= 1, 'STATFS reached the server');
      const { xm, xs } = r;
      for (const k of ['nlink', 'uid', 'gid', 'mode', 'ino', 'size', 'blocks', 'mtime'] as const) assert.equal(xm[k], xs[k], `statx ${k}`);
      assert.is(xm.mask & 0x7ff, 0x7ff, 'STATX_BASIC_STATS through the mount');
      console.log(`  statx through the mount: btime ${xm.mask & 0x800 ? `reported ${xm.btime[0]} (SRC ${xs.btime[0]})` : 'not reported (the passthrough has no STATX; the kernel falls back to GETATTR)'}`);
      if (xm.mask & 0x800) assert.equal(xm.btime, xs.btime, 'statx btime');
      await cleanLog(fx);
    }, { tmpfs })));
}

for (const mode of MODES) {
  test(`fsync, fdatasync, fsync/fdatasync of a directory fd, and syncfs succeed and reach the server [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(mnt, 'd'));
      const [f0, d0] = [await served(fx, 'FSYNC'), await served(fx, 'FSYNCDIR')];
      const r = await py(`
        fd = os.open(a[0] + '/d/f', os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b'synced\\n')
        r = [err(os.fsync, fd), err(os.fdatasync, fd)]
        dfd = os.open(a[0] + '/d', os.O_RDONLY | os.O_DIRECTORY)
        r += [err(os.fsync, dfd), err(os.fdatasync, dfd), libc.syncfs(fd), libc.syncfs(dfd)]
        out(r)
      `, [mnt]);
      assert.equal(r, [null, null, null, null, 0, 0]);
      assert.is(readFileSync(join(src, 'd', 'f'), 'utf8'), 'synced\n');
      assert.ok(await served(fx, 'FSYNC') - f0 >= 2, 'FSYNC (fsync and fdatasync) reached the server');
      assert.ok(await served(fx, 'FSYNCDIR') - d0 >= 2, 'FSYNCDIR reached the server');
      console.log(`  syncfs: ${await served(fx, 'SYNCFS')} SYNCFS requests (the kernel sends them only to virtiofs)`);
      await cleanLog(fx);
    })));
}

// ---- 10. access(); 11. the server's checks without default_permissions --------------------

const ACCESS_MODES = { f600: 0o600, f644: 0o644, f755: 0o755 } as const;
/** [R_OK, W_OK, X_OK] per file as root and as uid 65534 (directly on SRC, i.e. what the mount must say). */
const ACCESS_WANT = {
  0: { f600: [true, true, false], f644: [true, true, false], f755: [true, true, true], d700: [true, true, true] },
  [NOBODY]: { f600: [false, false, false], f644: [true, false, false], f755: [true, false, true], d700: [false, false, false] },
};

for (const dp of [true, false]) {
  test(`access() R_OK/W_OK/X_OK as root and as uid 65534 equals SRC's (default_permissions ${dp ? 'on' : 'off'})`, timed(30_000, () =>
    withPt({ defaultPermissions: dp }, async (e) => {
      const { src, mnt, fx } = e;
      openUp(e);
      for (const [n, m] of Object.entries(ACCESS_MODES)) { writeFileSync(join(src, n), 'x'); chmodSync(join(src, n), m); }
      mkdirSync(join(src, 'd700'), 0o700);
      const names = [...Object.keys(ACCESS_MODES), 'd700'];
      const body = `out({n: [os.access(a[0] + '/' + n, m) for m in (os.R_OK, os.W_OK, os.X_OK)] for n in a[1:]})`;
      for (const uid of [0, NOBODY] as const) {
        const direct = await py(body, [src, ...names], uid);
        assert.equal(direct, ACCESS_WANT[uid], `SRC as uid ${uid}`);
        assert.equal(await py(body, [mnt, ...names], uid), direct, `MNT as uid ${uid}`);
      }
      if (!dp) assert.ok(await served(fx, 'ACCESS') > 0, 'without default_permissions ACCESS reaches the server');
      await cleanLog(fx);
    })));
}

test('without default_permissions the server refuses what uid 65534 may not do, allows what it may, and the caller\'s umask holds', timed(30_000, () =>
  withPt({ defaultPermissions: false }, async (e) => {
    const { src, mnt, fx } = e;
    openUp(e);
    writeFileSync(join(src, 'secret'), 'secret\n', { mode: 0o600 });
    writeFileSync(join(src, 'ro'), 'read-only\n', { mode: 0o644 });
    mkdirSync(join(src, 'closed'), 0o755);
    for (const [d, m] of [['sticky', 0o1777], ['open', 0o777]] as const) { mkdirSync(join(src, d)); chmodSync(join(src, d), m); }
    writeFileSync(join(src, 'sticky', 'victim'), 'root\'s\n', { mode: 0o666 });
    const r = await py(`
      m = a[0]
      os.umask(0o022)
      out({'read 0600': err(os.open, m + '/secret', os.O_RDONLY), 'write 0644': err(os.open, m + '/ro', os.O_WRONLY),
           'create in 0755': err(os.open, m + '/closed/new', os.O_CREAT | os.O_WRONLY, 0o644),
           'mkdir in 0755': err(os.mkdir, m + '/closed/dir'),
           'unlink in 1777': err(os.unlink, m + '/sticky/victim'), 'chmod root file': err(os.chmod, m + '/ro', 0o666),
           'create in 0777': err(lambda: os.close(os.open(m + '/open/mine', os.O_CREAT | os.O_WRONLY, 0o644))),
           'chown own file to root': err(os.chown, m + '/open/mine', 0, 0)})
    `, [mnt], NOBODY);
    assert.equal(r, {
      'read 0600': 'EACCES', 'write 0644': 'EACCES', 'create in 0755': 'EACCES', 'mkdir in 0755': 'EACCES',
      'unlink in 1777': 'EPERM', 'chmod root file': 'EPERM', 'create in 0777': null, 'chown own file to root': 'EPERM',
    });
    assert.equal(readdirSync(join(src, 'closed')), []);
    assert.is(readFileSync(join(src, 'sticky', 'victim'), 'utf8'), 'root\'s\n');
    assert.is(modeOf(join(src, 'ro')), 0o644);
    const mine = statSync(join(src, 'open', 'mine'));
    assert.equal([mine.uid, mine.gid, mine.mode & 0o7777], [NOBODY, NOBODY, 0o644], 'SRC/open/mine: owner, group, mode');
    // As root with umask 027: the kernel applies the caller's umask (no DONT_MASK).
    const sh = await run('sh', ['-c', 'umask 027 && touch "$1/f" && mkdir "$1/d"', 'sh', mnt]);
    assert.is(sh.code, 0, sh.stderr);
    assert.is(modeOf(join(src, 'f')).toString(8), '640', 'SRC/f made with umask 027');
    assert.is(modeOf(join(src, 'd')).toString(8), '750', 'SRC/d made with umask 027');
    await cleanLog(fx);
  })));

// ---- 12. setuid/setgid clearing ------------------------------------------------------------

for (const mode of MODES) {
  test(`write, truncate and open(O_TRUNC) by uid 65534 clear setuid/setgid in SRC; a write by root keeps them [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode, attrTimeout: 0, entryTimeout: 0 }, async (e) => {
      const { src, mnt, fx } = e;
      openUp(e);
      // name: owner, mode before, mode after (as SRC must show it)
      const files: [string, number, number, number][] = [
        ['own', NOBODY, 0o4755, 0o755], ['rootw', 0, 0o6777, 0o777], ['trunc', NOBODY, 0o4755, 0o755],
        ['rtrunc', 0, 0o6777, 0o777], ['sgidNoExec', 0, 0o2666, 0o666], ['sgidNoExecOwnGroup', NOBODY, 0o2666, 0o2666], ['byRoot', 0, 0o4755, 0o4755],
        ['openTruncates', 0, 0o6777, 0o777], // open(O_TRUNC): FUSE_OPEN_KILL_SUIDGID, or the source as the caller
      ];
      for (const [n, uid, m] of files) {
        writeFileSync(join(src, n), 'setuid file\n');
        chownSync(join(src, n), uid, uid);
        chmodSync(join(src, n), m);
      }
      const write = `
        for n in a[1:]:
            if n.endswith('trunc'): os.truncate(a[0] + '/' + n, 3)
            elif n.startswith('open'): os.close(os.open(a[0] + '/' + n, os.O_WRONLY | os.O_TRUNC))
            else:
                fd = os.open(a[0] + '/' + n, os.O_WRONLY)
                os.write(fd, b'W')
                os.close(fd)
        out(0)
      `;
      await py(write, [mnt, 'own', 'rootw', 'trunc', 'rtrunc', 'sgidNoExec', 'sgidNoExecOwnGroup', 'openTruncates'], NOBODY);
      await py(write, [mnt, 'byRoot']);
      for (const [n, , , after] of files) {
        assert.is(modeOf(join(src, n)).toString(8), after.toString(8), `SRC/${n}`);
        assert.is(modeOf(join(mnt, n)).toString(8), after.toString(8), `MNT/${n}`);
      }
      assert.is(readFileSync(join(src, 'own'), 'utf8'), 'Wetuid file\n', 'the write went through');
      assert.is(statSync(join(src, 'trunc')).size, 3, 'the truncate went through');
      assert.is(statSync(join(src, 'openTruncates')).size, 0, 'the O_TRUNC went through');
      await cleanLog(fx);
    })));
}

// ---- leftovers -------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const left = mounts.filter((m) => bases.some((b) => m.startsWith(b)));
  assert.equal(left, []);
}));

test.run();
