// End-to-end: what an outside filesystem suite found running against
// `tsfuse passthrough SRC MNT -o allow_other` as root, with and without
// default_permissions. Every expected value is what the same operation does on
// the source itself (tmpfs, and an ext4 image), measured in the same test:
//
// 1. exec needs execute permission only: a 0111 file, or a 0100 file whose
//    POSIX ACL gives uid 65534 x, runs for uid 65534 (the kernel's OPEN for an
//    exec is O_RDONLY|__FMODE_EXEC, which a server opening as the caller for
//    reading refuses); a 0100 file it may not execute stays refused.
// 2. setuid/setgid: a write (buffered, O_DIRECT, append), ftruncate,
//    fallocate (plain, keep-size, punch-hole, zero-range) or copy_file_range
//    into the file by uid 65534 leaves the mode the source leaves, on the
//    source and as `stat -c %a` through the mount shows it right after (the
//    kernel's cached mode); a root writer keeps the bits, as on the source.
// 3. extended attributes up to what the source holds (names of 255 bytes, a
//    list of exactly XATTR_LIST_MAX = 65536 bytes, values of 64 KiB) list, read
//    and remove through the mount as on the source, size probes and ERANGE
//    included; also with max_write=4096, where a 64 KiB value must still fit.
//
// The client syscalls run in python3 children started as root that drop to
// uid/gid 65534 with no groups and no capabilities (setpriv(1) keeps its
// capabilities up to its own execve, so an exec permission check made through
// it passes wherever CAP_DAC_OVERRIDE would).
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, timed } from './helpers.js';
import { bases, dedent, serverLog, withPt, type Env, type PtOptions } from './pt-helpers.js';

const NOBODY = 65534;
const T = 60_000;

// ---- python3 children ---------------------------------------------------------------

const PRELUDE = String.raw`
import ctypes, errno, json, mmap, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p]
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
libc.listxattr.restype = libc.getxattr.restype = ctypes.c_ssize_t
a = sys.argv[1:]
def ename(e):
    return errno.errorcode.get(e, str(e)) if e else 'ok'
def chk(r):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
def become(uid):
    if uid:
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
def as_user(uid, fn):
    """Runs fn() in a child as uid (no groups, no capabilities): its errno name, or 'ok'."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            become(uid)
            fn()
        except OSError as e:
            code = e.errno
        os._exit(code)
    return ename(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
def mode_as_cached(p):
    """The mode as stat -c %a sees it: statx asking for STATX_MODE only (the kernel may answer from its cache)."""
    buf = ctypes.create_string_buffer(256)
    chk(libc.statx(-100, p.encode(), 0, 0x2, buf))
    return struct.unpack_from('<H', buf.raw, 28)[0] & 0o7777
def out(v):
    print(json.dumps(v), flush=True)
`;

/** Runs `body` in python3 as root; its last line of output is JSON. */
async function py<T = any>(body: string, args: string[], ms = 120_000): Promise<T> {
  const r = await run('python3', ['-I', '-u', '-c', `${PRELUDE}\n${dedent(body)}`, ...args], ms);
  if (r.code !== 0) throw new Error(`python3 exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

/** Every line of `rows` where the mount differs from the source, one per line (empty: none). */
function differences<R>(rows: R[], same: (r: R) => boolean): string {
  return rows.filter((r) => !same(r)).map((r) => JSON.stringify(r)).join('\n');
}

/** Each check's differing rows under its title (empty: every check holds), so one failure shows all. */
function report<R>(rows: R[], checks: [string, (r: R) => boolean][]): string {
  return checks.map(([title, same]) => [title, differences(rows, same)]).filter(([, d]) => d).map(([t, d]) => `${t}:\n${d}`).join('\n');
}

const DP = [true, false] as const;

/** Lets uid 65534 reach SRC and MNT (the base directory is made 0700). */
function openUp({ base, src }: Env): void {
  chmodSync(base, 0o755);
  chmodSync(src, 0o755);
}
const dpName = (dp: boolean) => (dp ? 'default_permissions' : 'no default_permissions');

// ---- 1. exec with execute permission only ----------------------------------------------

/** Execs each path as uid 65534 (stdout to /dev/null): exit code, or the errno name of a failed execve. */
const EXEC = `
  res = {}
  for p in a:
      pid = os.fork()
      if pid == 0:
          code = 0
          try:
              become(${NOBODY})
              fd = os.open('/dev/null', os.O_WRONLY)
              os.dup2(fd, 1)
              os.execv(p, [p])
          except OSError as e:
              code = 200 + e.errno
          os._exit(code)
      c = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
      res[os.path.basename(os.path.dirname(p)) + '/' + os.path.basename(p)] = ename(c - 200) if c >= 200 else c
  out(res)
`;

/** system.posix_acl_access for user::--x user:65534:--x group::--- mask::--x other::--- (mode 0110). */
const SET_EXEC_ACL = `
  U = 0xffffffff
  ents = [(1, 1, U), (2, 1, ${NOBODY}), (4, 0, U), (0x10, 1, U), (0x20, 0, U)]
  os.setxattr(a[0], 'system.posix_acl_access', struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, i) for t, p, i in ents))
  out(oct(os.stat(a[0]).st_mode & 0o7777))
`;

for (const dp of DP) {
  test(`exec by uid 65534 needs x only: a 0111 file and a 0100 file with an ACL granting x run, a 0100 file does not, as on the source [${dpName(dp)}]`, timed(T, () =>
    withPt({ defaultPermissions: dp, attrTimeout: 0, entryTimeout: 0 }, async (e) => {
      const { src, mnt } = e;
      openUp(e);
      const files: [string, number][] = [['x0755', 0o755], ['x0111', 0o111], ['x0100', 0o100], ['acl0100', 0o100]];
      for (const [n, m] of files) {
        copyFileSync('/usr/bin/true', join(src, n));
        chmodSync(join(src, n), m);
      }
      assert.is(await py<string>(SET_EXEC_ACL, [join(src, 'acl0100')]), '0o110', 'the ACL is set on the source (tmpfs has POSIX ACLs)');
      const paths = files.flatMap(([n]) => [join(src, n), join(mnt, n)]);
      const r = await py<Record<string, number | string>>(EXEC, paths);
      // The source's own answers: what POSIX says for a caller with x (and no r).
      assert.equal([r['src/x0755'], r['src/x0111'], r['src/x0100'], r['src/acl0100']], [0, 0, 'EACCES', 0], 'on the source');
      for (const [n] of files) assert.is(r[`mnt/${n}`], r[`src/${n}`], `exec of MNT/${n} as on SRC/${n}`);
    }, { tmpfs: true })));
}

// ---- 2. setuid/setgid after writes, truncation, fallocate, copy_file_range ---------------

/**
 * For each mode in a[3] (octal, comma-separated) and each operation: SRC/<op>-<mode>S and
 * SRC/<op>-<mode>M (root's, 8 KiB), the operation done as uid a[2] on the first directly and
 * on the second through MNT (a[1]). Answers one row per pair: the errnos, the mode the source
 * shows for each, and the mode `stat -c %a` through the mount shows right after.
 */
const KILLPRIV = `
  src, mnt, uid = a[0], a[1], int(a[2])
  # '2766g': mode 02766 in the writer's own group (root's group otherwise)
  modes = [(int(m.rstrip('g'), 8), m.endswith('g')) for m in a[3].split(',')]
  def fall(mode, off, length):
      return lambda fd: chk(libc.fallocate(fd, mode, off, length))
  def direct(fd):
      b = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
      b.write(b'd' * 4096)
      os.pwrite(fd, b, 0)
  def copy(fd):
      fi = os.open(os.path.join(os.path.dirname(os.readlink('/proc/self/fd/%d' % fd)), 'plain'), os.O_RDONLY)
      os.copy_file_range(fi, fd, 4096, 0, 0)
  OPS = {
      'write': (os.O_WRONLY, lambda fd: os.pwrite(fd, b'w' * 4096, 0)),
      'direct-write': (os.O_WRONLY | os.O_DIRECT, direct),
      'append': (os.O_WRONLY | os.O_APPEND, lambda fd: os.write(fd, b'x')),
      'ftruncate': (os.O_WRONLY, lambda fd: os.ftruncate(fd, 100)),
      'fallocate': (os.O_WRONLY, fall(0, 0, 16384)),
      'fallocate-keep-size': (os.O_WRONLY, fall(1, 0, 32768)),
      'punch-hole': (os.O_WRONLY, fall(3, 0, 4096)),
      'zero-range': (os.O_WRONLY, fall(0x10, 0, 4096)),
      'copy-file-range': (os.O_WRONLY, copy),
  }
  with open(os.path.join(src, 'plain'), 'wb') as f:
      f.write(b'p' * 8192)
  os.chmod(os.path.join(src, 'plain'), 0o644)
  rows = []
  for mode, own_group in modes:
      for op, (flags, fn) in OPS.items():
          name = '%s-%o%s' % (op, mode, 'g' if own_group else '')
          for w in 'SM':
              p = os.path.join(src, name + w)
              with open(p, 'wb') as f:
                  f.write(b'a' * 8192)
              os.chown(p, 0, uid if own_group else 0)
              os.chmod(p, mode)
          os.stat(os.path.join(mnt, name + 'M'))  # a client looked at it before: the kernel holds its mode
          def doit(path):
              def f():
                  fd = os.open(path, flags)
                  fn(fd)
                  os.close(fd)
              return f
          es = as_user(uid, doit(os.path.join(src, name + 'S')))
          em = as_user(uid, doit(os.path.join(mnt, name + 'M')))
          rows.append({'op': op, 'mode': oct(mode) + (' in group' if own_group else ''), 'errno': es, 'errnoMnt': em,
                       'src': oct(os.stat(os.path.join(src, name + 'S')).st_mode & 0o7777),
                       'srcOfMnt': oct(os.stat(os.path.join(src, name + 'M')).st_mode & 0o7777),
                       'mntShows': oct(mode_as_cached(os.path.join(mnt, name + 'M')))})
  out(rows)
`;

interface KillRow { op: string; mode: string; errno: string; errnoMnt: string; src: string; srcOfMnt: string; mntShows: string }

const SOURCES = [['tmpfs', { tmpfs: true }], ['ext4', { ext4: true }]] as const;

for (const [fsName, how] of SOURCES) {
  for (const dp of DP) {
    test(`uid 65534 writing, truncating, fallocating, copying into a 06777/02766 root file: the mode on SRC and as MNT shows it are the source's [${fsName}, ${dpName(dp)}]`, timed(T, () =>
      withPt({ defaultPermissions: dp }, async (e) => {
        const { src, mnt } = e;
        openUp(e);
        const rows = await py<KillRow[]>(KILLPRIV, [src, mnt, String(NOBODY), '6777,2766,2766g']);
        assert.ok(rows.length === 27, 'every operation ran');
        // What the source does (the expectations below are its own): since Linux 6.2 a writer
        // outside the file's group loses setgid even without group-exec; one inside keeps it.
        assert.equal(rows.filter((r) => r.op === 'write').map((r) => r.src), ['0o777', '0o766', '0o2766'], 'a write on the source');
        assert.is(report(rows, [
          ['errno through the mount differs from the source\'s', (r) => r.errno === r.errnoMnt],
          ['the mode the server leaves on the source (srcOfMnt) is not the source\'s own (src)', (r) => r.srcOfMnt === r.src],
          ['stat -c %a through the mount right after (mntShows) is not the source\'s mode (src)', (r) => r.mntShows === r.src],
        ]), '');
      }, how)));
  }
}

test('root (CAP_FSETID) writing and fallocating into a 06777 file keeps setuid and setgid, as on the source', timed(T, () =>
  withPt({}, async (e) => {
    const { src, mnt } = e;
    openUp(e);
    const rows = await py<KillRow[]>(KILLPRIV, [src, mnt, '0', '6777']);
    assert.ok(rows.every((r) => r.errno !== 'ok' || r.src === '0o6777'), 'root keeps them on the source');
    assert.is(differences(rows, (r) => r.errno === r.errnoMnt && r.srcOfMnt === r.src && r.mntShows === r.src), '', 'through the mount as on the source');
  }, { tmpfs: true })));

test('the kernel\'s flags: exec opens O_RDONLY|__FMODE_EXEC (0x20); writes by uid 65534 carry FUSE_WRITE_KILL_SUIDGID, buffered and O_DIRECT; FALLOCATE carries no such flag', timed(T, () =>
  withPt({ debug: true } as PtOptions, async (e) => {
    const { src, mnt, fx } = e;
    openUp(e);
    copyFileSync('/usr/bin/true', join(src, 'x'));
    chmodSync(join(src, 'x'), 0o111);
    await py(EXEC, [join(mnt, 'x')]);
    await py(KILLPRIV, [src, mnt, String(NOBODY), '6777']);
    const log = await serverLog(fx);
    const bodies = (op: string) => [...log.matchAll(new RegExp(`→ \\d+ ${op} node=\\d+ (\\{[^}]*\\}) uid=${NOBODY}`, 'g'))].map((m) => JSON.parse(m[1]));
    const opens = bodies('OPEN');
    assert.ok(opens.some((b) => (b.flags & 0x20) !== 0 && (b.flags & 3) === 0), `an OPEN with O_RDONLY|__FMODE_EXEC: ${JSON.stringify(opens)}`);
    const writes = bodies('WRITE');
    assert.ok(writes.length >= 3, 'the writes reached the server');
    assert.ok(writes.every((b) => (b.write_flags & 4) !== 0), `every WRITE by uid 65534 has FUSE_WRITE_KILL_SUIDGID: ${JSON.stringify(writes)}`);
    assert.ok(writes.some((b) => (b.flags & 0o40000) !== 0), 'one of them O_DIRECT');
    const fallocs = bodies('FALLOCATE');
    assert.ok(fallocs.length >= 3 && fallocs.every((b) => Object.keys(b).join() === 'fh,offset,length,mode,padding'), `FALLOCATE: ${JSON.stringify(fallocs)}`);
  }, { tmpfs: true })));

// ---- 3. many extended attributes -------------------------------------------------------

/**
 * Fills SRC/f (a[0]) with user.* attributes: names of a[2] bytes with 1-byte values until
 * the source refuses one or the name list reaches a[3] bytes, then one value of a[4] bytes
 * if the source takes it. Answers what the source holds.
 */
const FILL = `
  p, nlen, listmax, big = a[0], int(a[1]), int(a[2]), int(a[3])
  open(p, 'w').close()
  n = size = 0
  stop = 'limit'
  while size + nlen + 1 <= listmax:
      name = ('user.%d.' % n).ljust(nlen, 'x')
      try:
          os.setxattr(p, name, bytes([n % 256]))
      except OSError as e:
          stop = ename(e.errno)
          break
      n += 1
      size += nlen + 1
  if big:
      try:
          os.setxattr(p, 'user.0.'.ljust(nlen, 'x'), os.urandom(big))
      except OSError as e:
          big = ename(e.errno)
  out({'count': n, 'stop': stop, 'big': big})
`;

/** Lists and reads a[0] (SRC/f) and a[1] (MNT/f) the ways clients do; then removes every name through the mount. */
const COMPARE = `
  def probe_list(p):
      n = libc.listxattr(p.encode(), None, 0)
      if n < 0:
          return {'probe': ename(ctypes.get_errno())}
      r = {'probe': n}
      buf = ctypes.create_string_buffer(max(n, 1))
      m = libc.listxattr(p.encode(), buf, n)
      r['call'] = buf.raw[:m].hex() if m >= 0 else ename(ctypes.get_errno())
      if n > 1:
          m = libc.listxattr(p.encode(), buf, n - 1)
          r['short'] = m if m >= 0 else ename(ctypes.get_errno())
      return r
  def values(p):
      vals = {}
      for name in sorted(os.listxattr(p)):
          n = libc.getxattr(p.encode(), name.encode(), None, 0)
          v = os.getxattr(p, name)
          vals[name] = [n, len(v), v[:8].hex(), hash(v)]
      return vals
  def err(f, *x):
      try:
          f(*x)
          return 'ok'
      except OSError as e:
          return ename(e.errno)
  s, m = a[0], a[1]
  res = {'src': {'list': probe_list(s), 'pylist': err(os.listxattr, s)},
         'mnt': {'list': probe_list(m), 'pylist': err(os.listxattr, m)}}
  if res['src']['pylist'] == 'ok':
      res['src']['values'] = values(s)
      res['mnt']['values'] = err(values, m) if res['mnt']['pylist'] != 'ok' else values(m)
  names = os.listxattr(s) if res['src']['pylist'] == 'ok' else []
  removed = {}
  for name in names:
      e = err(os.removexattr, m, name)
      removed[e] = removed.get(e, 0) + 1
  res['removed'] = removed
  res['leftOnSrc'] = len(os.listxattr(s))
  res['leftViaMnt'] = err(os.listxattr, m) if len(os.listxattr(s)) else len(os.listxattr(m))
  out(res)
`;

interface Compare {
  src: { list: Record<string, unknown>; pylist: string; values?: unknown };
  mnt: { list: Record<string, unknown>; pylist: string; values?: unknown };
  removed: Record<string, number>; leftOnSrc: number; leftViaMnt: number | string;
}

async function xattrCase(src: string, mnt: string, nameLen: number, listMax: number, big: number): Promise<{ fill: any; c: Compare }> {
  const fill = await py(FILL, [join(src, 'f'), String(nameLen), String(listMax), String(big)]);
  const c = await py<Compare>(COMPARE, [join(src, 'f'), join(mnt, 'f')]);
  return { fill, c };
}

function sameAsSource({ fill, c }: { fill: any; c: Compare }, what: string): void {
  assert.ok(fill.count > 0, `${what}: the source took some attributes (${JSON.stringify(fill)})`);
  assert.equal(c.mnt.list, c.src.list, `${what}: listxattr size probe, exact call and a call one byte short, as on the source`);
  assert.is(c.mnt.pylist, c.src.pylist, `${what}: os.listxattr as on the source`);
  assert.equal(c.mnt.values, c.src.values, `${what}: every value (probe size, length, bytes) as on the source`);
  assert.equal(c.removed, { ok: fill.count }, `${what}: every name removed through the mount`);
  assert.is(c.leftOnSrc, 0, `${what}: nothing left on the source`);
  assert.is(c.leftViaMnt, 0, `${what}: nothing listed through the mount`);
}

test('xattrs filling the whole 64 KiB list (256 names of 255 bytes) and a 64 KiB value list, read and remove through the mount as on the source [tmpfs]', timed(T, () =>
  withPt({}, async ({ src, mnt }) => {
    const r = await xattrCase(src, mnt, 255, 65536, 65536);
    assert.equal([r.fill.count, r.fill.big], [256, 65536], 'the source holds 256 names (a 65536-byte list) and a 64 KiB value');
    sameAsSource(r, 'tmpfs, 255-byte names');
  }, { tmpfs: true })));

test('xattrs until the source says ENOSPC (short names; 255-byte names) list, read and remove through the mount as on the source [ext4]', timed(T, () =>
  withPt({}, async ({ src, mnt }) => {
    const short = await xattrCase(src, mnt, 12, 65536, 0);
    assert.is(short.fill.stop, 'ENOSPC', 'ext4 ran out of xattr space');
    sameAsSource(short, 'ext4, 12-byte names');
    const long = await xattrCase(src, mnt, 255, 65536, 0);
    sameAsSource(long, 'ext4, 255-byte names');
  }, { ext4: true })));

test('a list beyond XATTR_LIST_MAX: listing fails with E2BIG through the mount as on the source, and removing the known names empties it', timed(T, () =>
  withPt({}, async ({ src, mnt }) => {
    const fill = await py(FILL, [join(src, 'f'), '255', String(65536 + 2 * 256), '0']);
    assert.is(fill.count, 258);
    const r = await py(`
      def err(f, *x):
          try:
              f(*x)
              return 'ok'
          except OSError as e:
              return ename(e.errno)
      names = [('user.%d.' % n).ljust(255, 'x') for n in range(int(a[2]))]
      res = {'src': err(os.listxattr, a[0]), 'mnt': err(os.listxattr, a[1])}
      res['removed'] = sorted(set(err(os.removexattr, a[1], n) for n in names))
      res['left'] = len(os.listxattr(a[0]))
      out(res)
    `, [join(src, 'f'), join(mnt, 'f'), String(fill.count)]);
    assert.equal(r, { src: 'E2BIG', mnt: 'E2BIG', removed: ['ok'], left: 0 });
  }, { tmpfs: true })));

test('with max_write=4096 a 64 KiB xattr value (255-byte name) still sets through the mount, as on the source', timed(T, () =>
  withPt({ maxWrite: 4096 } as PtOptions, async ({ src, mnt }) => {
    const r = await py(`
      v = os.urandom(65536)
      name = 'user.big.'.ljust(255, 'x')
      res = {}
      for k, p in (('src', a[0]), ('mnt', a[1])):
          open(p, 'w').close()
          try:
              os.setxattr(p, name, v)
              res[k] = os.getxattr(a[0] if k == 'src' else a[2], name) == v
          except OSError as e:
              res[k] = ename(e.errno)
      out(res)
    `, [join(src, 'f'), join(mnt, 'g'), join(src, 'g')]);
    assert.equal(r, { src: true, mnt: true }, 'setxattr of 64 KiB through a mount with max_write=4096');
  }, { tmpfs: true })));

// ---- leftovers -------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  assert.equal(mounts.filter((m) => bases.some((b) => m.startsWith(b))), []);
}));

test.run();
