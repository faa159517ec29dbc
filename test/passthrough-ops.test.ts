// End-to-end: the passthrough's less common operations — xattrs and POSIX
// ACLs, POSIX and flock() locks (between clients, and against a process
// locking the source directly), SEEK_DATA/SEEK_HOLE, copy_file_range,
// O_TMPFILE + linkat, renameat2 flags, device nodes, statfs/statx,
// fsync/fsyncdir/syncfs, access(), the server's own permission checks without
// default_permissions, and setuid clearing (HANDLE_KILLPRIV_V2).
//
// The server is test/fixtures/serve-passthrough.ts in a child process; the
// client syscalls run in this process or in Node children of the as-user
// helper (src/cli/as-user.ts; some as uid 65534). Results through the mount
// are checked against the source directly, and the server's request counts
// show the operation really reached it.
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsUser, type As } from '../src/cli/as-user.js';
import { run, sleep, timed, WAIT_MS } from './helpers.js';
import { acl, bases, type Env, type Fixture, serverLog, U, withPt } from './pt-helpers.js';

const MODES = ['never', 'mandatory'] as const;
const NOBODY = 65534;
const MiB = 1 << 20;
const AGAIN = ['EAGAIN', 'EACCES', 'EWOULDBLOCK'];

// ---- client children -------------------------------------------------------------

/**
 * What every child body starts with (besides the as-user helper's `a`, `sys`, `fs`, `L`):
 * err(f) is null if f() succeeded, else the errno name it threw; attempt(f) is f()'s result
 * or that errno name; devinfo(p) is lstat's [S_IFMT, major, minor] (glibc's gnu_dev_major/minor).
 */
const PRELUDE = `
  const code = (e) => { if (typeof e?.code === 'string' && e.code.startsWith('E')) return e.code; throw e; };
  const attempt = async (f) => { try { return await f(); } catch (e) { return code(e); } };
  const err = async (f) => { try { await f(); return null; } catch (e) { return code(e); } };
  const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_DIRECTORY } = fs.constants;
  const F_GETLK = 5, F_SETLK = 6, F_SETLKW = 7; // <asm-generic/fcntl.h>, 64-bit: process-owned record locks
  const XATTR_CREATE = 1, XATTR_REPLACE = 2, SEEK_DATA = 3, SEEK_HOLE = 4;
  const devinfo = (p) => {
    const { mode, rdev: r } = sys.lstat(p);
    return [mode & 0o170000, Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), Number((r & 0xffn) | ((r >> 12n) & ~0xffn))];
  };
`;

/** uid `uid` with gid `uid` and that user's login groups (none for a uid without a passwd entry); ourselves if undefined. */
const who = (uid?: number): As => (uid === undefined ? {} : { uid, gid: uid });

/** Runs `body` (the text of an async function; PRELUDE in scope, `a` = `args`) in a fresh Node
 * child (as `uid` if given) and resolves with what it returns (untyped unless `T` is given) once
 * the child has exited: its fds, and the locks they hold, are gone by then. */
async function inChild<T = any>(body: string, args: unknown[] = [], uid?: number, ms = WAIT_MS): Promise<T> {
  const c = new AsUser(who(uid));
  try {
    return await c.run<T>(PRELUDE + body, args, ms);
  } finally {
    await c.close();
  }
}

/** A long-running child (ourselves): `run` sends one body at a time (PRELUDE in scope). */
function longChild() {
  const c = new AsUser();
  return {
    pid: c.pid!,
    run: <T = any>(body: string, args: unknown[] = [], ms = WAIT_MS) => c.run<T>(PRELUDE + body, args, ms),
    kill: () => c.kill(),
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
      const big = Buffer.from(Array.from({ length: 256 * 12 }, (_, i) => i % 256));
      const r = await inChild(`
        const [p, s, d, sd, big] = a;
        const users = (q) => sys.listxattr(q).map(String).filter((n) => n.startsWith('user.')).sort();
        sys.setxattr(p, 'user.one', '1');
        sys.setxattr(p, 'user.two', Buffer.from([0, 0x62, 0x69, 0x6e, 0xff]));
        sys.setxattr(p, 'user.big', big);
        sys.setxattr(d, 'user.dir', 'on a directory');
        const r = { two: sys.getxattr(p, 'user.two').toString('hex'), big: sys.getxattr(p, 'user.big').equals(big), list: users(p) };
        r.create = await err(() => sys.setxattr(p, 'user.one', 'x', XATTR_CREATE));
        r.replaceMissing = await err(() => sys.setxattr(p, 'user.none', 'x', XATTR_REPLACE));
        r.replace = await err(() => sys.setxattr(p, 'user.one', 'uno', XATTR_REPLACE));
        r.getMissing = await err(() => sys.getxattr(p, 'user.none'));
        r.removeMissing = await err(() => sys.removexattr(p, 'user.none'));
        sys.removexattr(p, 'user.two');
        r.after = users(p);
        r.src = Object.fromEntries(users(s).map((n) => [n, sys.getxattr(s, n).toString('hex')]));
        r.srcDir = sys.getxattr(sd, 'user.dir').toString();
        sys.setxattr(s, 'user.behind', 'set in SRC');
        r.behind = sys.getxattr(p, 'user.behind').toString();
        return r;
      `, [join(mnt, 'f'), join(src, 'f'), join(mnt, 'd'), join(src, 'd'), big]);
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

/** user::rw- user:65534:r-- group::r-- mask::r-- other::--- */
const ACL = acl([1, 6, U], [2, 4, NOBODY], [4, 4, U], [0x10, 4, U], [0x20, 0, U]);

let aclProbe: Promise<string | null> | undefined;
/** null if SRC's filesystem (/tmp) takes POSIX ACLs, else the errno (checked once). */
function aclSupport(src: string): Promise<string | null> {
  if (!aclProbe) {
    writeFileSync(join(src, '.aclprobe'), '');
    aclProbe = inChild(`return err(() => sys.setxattr(a[0], 'system.posix_acl_access', a[1]));`, [join(src, '.aclprobe'), ACL]);
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
      const r = await inChild(`
        const [m, s, acl] = a;
        sys.setxattr(m, 'system.posix_acl_access', acl);
        return { mnt: sys.getxattr(m, 'system.posix_acl_access').toString('hex'), src: sys.getxattr(s, 'system.posix_acl_access').toString('hex'),
                 want: acl.toString('hex'), modeMnt: sys.stat(m).mode & 0o7777, modeSrc: sys.stat(s).mode & 0o7777 };
      `, [join(mnt, 'f'), join(src, 'f'), ACL]);
      assert.is(r.src, r.want, 'the ACL in SRC');
      assert.is(r.mnt, r.want, 'the ACL read back through the mount');
      assert.is(r.modeSrc.toString(8), '640', 'SRC mode: group bits are the mask');
      assert.is(r.modeMnt.toString(8), '640', 'mode through the mount');
      const read = `const out = []; for (const q of a) out.push(await attempt(() => sys.readFile(q).toString())); return out;`;
      const [viaMnt, viaSrc] = await inChild<string[]>(read, [join(mnt, 'f'), join(src, 'f')], NOBODY);
      assert.is(viaSrc, 'acl\n', 'uid 65534 reads SRC/f through its ACL entry');
      assert.is(viaMnt, 'acl\n', 'uid 65534 reads MNT/f through its ACL entry');
      const other = await inChild<string[]>(read, [join(mnt, 'f'), join(src, 'f')], NOBODY - 1);
      assert.equal(other, ['EACCES', 'EACCES'], 'uid 65533 (not in the ACL) cannot read either');
      await cleanLog(fx);
    })));
}

// ---- 2. locks ----------------------------------------------------------------------------

/** Opens a[0] O_RDWR as the child's fd 'fd' (kept for the child's later bodies). */
const OPEN = `sys.openfd('fd', a[0], O_RDWR);\n`;
/** One exclusive lock attempt on 'fd': a[1] is "posix" or "flock" ("…w" waits). The errno name or
 * null, and when the answer came (process.hrtime: CLOCK_MONOTONIC, one clock for every process). */
const LOCK = `
  const wait = a[1].endsWith('w');
  const e = await err(() => (a[1].startsWith('posix')
    ? sys.fcntlLock('fd', wait ? F_SETLKW : F_SETLK, L.F_WRLCK, 0, 0)
    : sys.flock('fd', L.LOCK_EX | (wait ? 0 : L.LOCK_NB))));
  return { err: e, at: process.hrtime.bigint() };
`;
/** F_GETLK (asking for a write lock of the whole file) on 'fd': [l_type, l_start, l_len, l_pid] or the errno name. */
const GETLK = `return attempt(() => sys.fcntlLock('fd', F_GETLK, L.F_WRLCK, 0, 0).map(Number));`;
/** A holder's op a[0] on 'fd' ("posix", "unposix", "flock", "unflock"): the errno name or null, and when it started. */
const HOLD = `
  const ops = {
    posix: () => sys.fcntlLock('fd', F_SETLK, L.F_WRLCK, 0, 0), unposix: () => sys.fcntlLock('fd', F_SETLK, L.F_UNLCK, 0, 0),
    flock: () => sys.flock('fd', L.LOCK_EX | L.LOCK_NB), unflock: () => sys.flock('fd', L.LOCK_UN),
  };
  const at = process.hrtime.bigint();
  return { err: await err(ops[a[0]]), at };
`;
interface Attempt { err: string | null; at: bigint; releasedAt?: bigint }
/** A fresh process opens `path` and tries one exclusive lock without waiting. */
const attempt = (path: string, op: 'posix' | 'flock') => inChild<Attempt>(OPEN + LOCK, [path, op]);
const getlk = (path: string) => inChild<[number, number, number, number] | string>(OPEN + GETLK, [path]);

/** A holder: `path` open in a long-running child (its pid known); `say(op)` expects the op to succeed. */
async function holder(path: string) {
  const h = longChild();
  await h.run(OPEN, [path]);
  const op = (o: string) => h.run<{ err: string | null; at: bigint }>(HOLD, [o]);
  const say = async (o: string) => { assert.is((await op(o)).err, null, `holder: ${o}`); };
  return { pid: h.pid, op, say, kill: h.kill };
}

/** B waits for the lock on `path`; holder A (locked) releases it once B's blocking request
 * (SETLKW) has reached the server — an event, so B really waits, however slow the machine. */
async function waitForRelease(fx: Fixture, A: Awaited<ReturnType<typeof holder>>, path: string, kind: 'posix' | 'flock'): Promise<Attempt> {
  const before = await served(fx, 'SETLKW');
  const B = longChild();
  try {
    await B.run(OPEN, [path]);
    const got = B.run<Attempt>(LOCK, [path, `${kind}w`]);
    got.catch(() => { /* awaited below, unless an assertion fails first and B is killed */ });
    assert.ok(await pollAsync(async () => await served(fx, 'SETLKW') > before, WAIT_MS), `B's SETLKW did not reach the server within ${WAIT_MS} ms`);
    const released = await A.op(`un${kind}`);
    assert.is(released.err, null, `holder: un${kind}`);
    return { ...(await got), releasedAt: released.at };
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
          // B blocked until A's release: B was granted the lock after A started releasing it
          // (both read CLOCK_MONOTONIC, through process.hrtime), however long a loaded machine takes.
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
      sys.openfd('fd1', a[0], O_RDWR);
      sys.openfd('fd2', a[0], O_RDWR);
      sys.fcntlLock('fd1', F_SETLK, L.F_WRLCK, 0, 0);
      const second = await err(() => sys.fcntlLock('fd2', F_SETLK, L.F_WRLCK, 0, 0));
      sys.close('fd2');
      return second;
    `;
    /** The body in a child that stays (fd1 still open) while another process tries the lock. */
    const check = async (p: string) => {
      const A = longChild();
      try {
        const second = await A.run(body, [p]);
        return { 'second fd locks': second, 'closing it freed the lock': (await attempt(p, 'posix')).err === null };
      } finally {
        A.kill();
      }
    };
    writeFileSync(join(src, 'f'), 'x\n');
    writeFileSync(join(src, 'g'), 'x\n');
    const direct = await check(join(src, 'g'));
    assert.equal(direct, { 'second fd locks': null, 'closing it freed the lock': true }, 'POSIX semantics on SRC');
    assert.equal(await check(join(mnt, 'f')), direct, 'through the mount');
    await cleanLog(fx);
  })));

test('OFD locks (F_OFD_SETLK) belong to the open file: another open conflicts, and the close releases them (as on SRC)', timed(120_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const body = `
      const lock = (k) => sys.fcntlLock(k, L.F_OFD_SETLK, L.F_WRLCK, 0, 0);
      sys.openfd('fd1', a[0], O_RDWR);
      sys.openfd('fd2', a[0], O_RDWR);
      lock('fd1');
      const second = await err(() => lock('fd2'));
      sys.close('fd1');
      // FUSE sends RELEASE after close() returns: wait for it, however long that takes
      let after;
      for (const end = Date.now() + a[1]; ;) {
        after = await err(() => lock('fd2'));
        if (after === null || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      return { 'another open file': second, 'after the close': after };
    `;
    writeFileSync(join(src, 'f'), 'x\n');
    writeFileSync(join(src, 'g'), 'x\n');
    const direct = await inChild(body, [join(src, 'g'), WAIT_MS]);
    assert.equal(direct, { 'another open file': 'EAGAIN', 'after the close': null }, 'OFD semantics on SRC');
    assert.equal(await inChild(body, [join(mnt, 'f'), WAIT_MS], undefined, 2 * WAIT_MS), direct, 'through the mount');
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
          sys.openfd('fd', a[0], O_RDONLY);
          const size = sys.fstat('fd').size;
          const out = [Number(size)];
          for (const [off, wh] of [[0n, SEEK_DATA], [0n, SEEK_HOLE], [4096n, SEEK_DATA], [2n * 1048576n, SEEK_HOLE], [size, SEEK_DATA], [size + 100n, SEEK_HOLE]]) {
            out.push(await attempt(() => Number(sys.lseek('fd', off, wh))));
          }
          return out;
        `;
        const before = await served(fx, 'LSEEK');
        const viaMnt = await inChild(body, [join(mnt, 'sparse')]);
        const direct = await inChild(body, [join(src, 'sparse')]);
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
      const r = await inChild(`
        sys.openfd('i', a[0], O_RDONLY);
        sys.openfd('o', a[1], O_RDWR);
        sys.openfd('n', a[2], O_RDWR | O_CREAT, 0o644);
        const n1 = Number(sys.copyFileRange('i', 10, 'o', 50, 5000)); // 5000 bytes from offset 10 to offset 50
        let n2 = 0;
        while (n2 < 20000) {
          const n = Number(sys.copyFileRange('i', n2, 'n', n2, 20000 - n2));
          if (n === 0) break;
          n2 += n;
        }
        return [n1, n2];
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
      const r = await inChild(`
        const [d, sd] = a;
        const fd = sys.openfd('t', d, L.O_TMPFILE | O_RDWR, 0o600);
        sys.write('t', 'tmpfile data\\n');
        const r = { back: sys.pread('t', 100, 0).toString(), nlink: sys.fstat('t').nlink, srcBefore: sys.readdir(sd).map(String) };
        // linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, path, AT_SYMLINK_FOLLOW): links the open file, not the magic link
        r.link = await err(() => sys.linkat('/proc/self/fd/' + fd, d + '/named', L.AT_SYMLINK_FOLLOW));
        r.nlinkAfter = sys.fstat('t').nlink;
        sys.write('t', 'more\\n');
        return r;
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
      const r = await inChild(`
        const [m, s] = a;
        const rename = (x, y, flags) => err(() => sys.renameat2(m + '/' + x, m + '/' + y, flags));
        const r = { noreplace: await rename('a', 'b', L.RENAME_NOREPLACE), noreplaceFree: await rename('a', 'c', L.RENAME_NOREPLACE) };
        r.exchange = await rename('c', 'b', L.RENAME_EXCHANGE);
        r.exchangeDir = await rename('b', 'dir', L.RENAME_EXCHANGE);
        r.whiteout = await rename('w', 't', L.RENAME_WHITEOUT);
        r.wMnt = await attempt(() => devinfo(m + '/w'));
        r.wSrc = await attempt(() => devinfo(s + '/w'));
        return r;
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
      const r = await inChild(`
        const [m, s, nodes] = a;
        sys.umask(0o022);
        for (const [n, t, ma, mi] of nodes) sys.mknod(m + '/' + n, t | 0o640, ma, mi);
        return Object.fromEntries(nodes.map(([n]) => [n, [devinfo(m + '/' + n), devinfo(s + '/' + n), sys.lstat(s + '/' + n).mode & 0o7777]]));
      `, [mnt, src, nodes]);
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
      const r = await inChild(`
        const vfs = (p) => { const s = sys.statfs(p); return [s.bsize, s.frsize, s.blocks, s.files, s.namemax, s.bfree, s.ffree]; };
        const statx = (p) => {
          const x = sys.statx(p); // 64-bit fields as decimal strings: exact, and printable in a failed assertion
          return { mask: x.mask, nlink: x.nlink, uid: x.uid, gid: x.gid, mode: x.mode, ino: String(x.ino), size: String(x.size),
                   blocks: String(x.blocks), mtime: x.mtime, btime: x.btime };
        };
        return { mnt: vfs(a[0]), src: vfs(a[1]), xm: statx(a[0] + '/f'), xs: statx(a[1] + '/f') };
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
      const r = await inChild(`
        const fd = sys.openfd('f', a[0] + '/d/f', O_RDWR | O_CREAT, 0o644);
        sys.write('f', 'synced\\n');
        const dfd = sys.openfd('d', a[0] + '/d', O_RDONLY | O_DIRECTORY);
        return [await err(() => fs.fsyncSync(fd)), await err(() => fs.fdatasyncSync(fd)), await err(() => fs.fsyncSync(dfd)),
                await err(() => fs.fdatasyncSync(dfd)), await err(() => sys.syncfs(fd)), await err(() => sys.syncfs(dfd))];
      `, [mnt]);
      assert.equal(r, [null, null, null, null, null, null], 'fsync, fdatasync, fsync and fdatasync of the directory, syncfs of both');
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
      const body = `
        const ok = (p, m) => { try { sys.access(p, m); return true; } catch (e) { code(e); return false; } };
        const { R_OK, W_OK, X_OK } = fs.constants;
        return Object.fromEntries(a.slice(1).map((n) => [n, [R_OK, W_OK, X_OK].map((m) => ok(a[0] + '/' + n, m))]));
      `;
      for (const uid of [0, NOBODY] as const) {
        const direct = await inChild(body, [src, ...names], uid);
        assert.equal(direct, ACCESS_WANT[uid], `SRC as uid ${uid}`);
        assert.equal(await inChild(body, [mnt, ...names], uid), direct, `MNT as uid ${uid}`);
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
    const r = await inChild(`
      const m = a[0];
      sys.umask(0o022);
      return {
        'read 0600': await err(() => sys.open(m + '/secret', O_RDONLY)), 'write 0644': await err(() => sys.open(m + '/ro', O_WRONLY)),
        'create in 0755': await err(() => sys.open(m + '/closed/new', O_CREAT | O_WRONLY, 0o644)),
        'mkdir in 0755': await err(() => sys.mkdir(m + '/closed/dir', 0o777)),
        'unlink in 1777': await err(() => sys.unlink(m + '/sticky/victim')), 'chmod root file': await err(() => sys.chmod(m + '/ro', 0o666)),
        'create in 0777': await err(() => sys.open(m + '/open/mine', O_CREAT | O_WRONLY, 0o644)),
        'chown own file to root': await err(() => sys.chown(m + '/open/mine', 0, 0)),
      };
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
        for (const n of a.slice(1)) {
          const p = a[0] + '/' + n;
          if (n.endsWith('trunc')) sys.truncate(p, 3);
          else if (n.startsWith('open')) sys.open(p, O_WRONLY | O_TRUNC);
          else {
            sys.openfd('w', p, O_WRONLY);
            sys.write('w', 'W');
            sys.close('w');
          }
        }
      `;
      await inChild(write, [mnt, 'own', 'rootw', 'trunc', 'rtrunc', 'sgidNoExec', 'sgidNoExecOwnGroup', 'openTruncates'], NOBODY);
      await inChild(write, [mnt, 'byRoot']);
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
