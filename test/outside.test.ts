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
// The client syscalls run in Node children (src/cli/as-user.ts) that are root
// or uid/gid 65534 with no groups and no capabilities from their start (setpriv(1)
// keeps its capabilities up to its own execve, so an exec permission check made
// through it passes wherever CAP_DAC_OVERRIDE would); the execs are spawned by
// such a uid 65534 child.
import { chmodSync, chownSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, timed } from './helpers.js';
import { bases, serverLog, withPt, type Env, type PtOptions } from './pt-helpers.js';
import { AsUser, runAs, runOps, type As } from '../src/cli/as-user.js';

const NOBODY = 65534;
const T = 60_000;

// ---- Node children ---------------------------------------------------------------------

/** uid/gid 65534, no supplementary groups, no capabilities. */
const AS_NOBODY: As = { uid: NOBODY, gid: NOBODY, groups: [] };

/** Bodies get `ename(f)`: 'ok', or the errno name f threw (await it: f may be async). */
const PRELUDE = "const ename = async (f) => { try { await f(); return 'ok'; } catch (e) { if (!e.code) throw e; return e.code; } };\n";

/** Runs `body` (an async function's text; `a` its arguments) in a Node child, as root unless `as` says. */
function js<T = any>(body: string, args: unknown[], as: As = {}, ms = 120_000): Promise<T> {
  return runAs<T>(PRELUDE + body, args, as, ms);
}

/** A mode's permission bits as '0o6777'. */
const oct = (m: number) => `0o${(m & 0o7777).toString(8)}`;

/** The mode as `stat -c %a` sees it: statx asking for STATX_MODE only (the kernel may answer from its cache). */
async function modeAsCached(p: string): Promise<string> {
  const r = await run('stat', ['-c', '%a', p], 30_000);
  if (r.code !== 0) throw new Error(`stat -c %a ${p}: ${r.stderr.trim()}`);
  return `0o${r.stdout.trim()}`;
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
function exec(paths: string[]): Promise<Record<string, number | string>> {
  return js(`
    const { spawnSync } = await import('node:child_process');
    const res = {};
    for (const p of a) {
      const r = spawnSync(p, [], { stdio: ['inherit', 'ignore', 'inherit'] });
      if (r.error && !r.error.code) throw r.error;
      res[p.split('/').slice(-2).join('/')] = r.error ? r.error.code : r.status;
    }
    return res;
  `, paths, AS_NOBODY);
}

/** Sets system.posix_acl_access on `p` to user::--x user:65534:--x group::--- mask::--x other::--- (mode 0110). */
async function setExecAcl(p: string): Promise<string> {
  const U = 0xffffffff;
  const ents = [[1, 1, U], [2, 1, NOBODY], [4, 0, U], [0x10, 1, U], [0x20, 0, U]];
  const v = Buffer.alloc(4 + 8 * ents.length);
  v.writeUInt32LE(2, 0);
  ents.forEach(([t, perm, id], k) => { v.writeUInt16LE(t, 4 + 8 * k); v.writeUInt16LE(perm, 6 + 8 * k); v.writeUInt32LE(id, 8 + 8 * k); });
  await runOps([['setxattr', p, 'system.posix_acl_access', v]]);
  return oct(statSync(p).mode);
}

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
      assert.is(await setExecAcl(join(src, 'acl0100')), '0o110', 'the ACL is set on the source (tmpfs has POSIX ACLs)');
      const paths = files.flatMap(([n]) => [join(src, n), join(mnt, n)]);
      const r = await exec(paths);
      // The source's own answers: what POSIX says for a caller with x (and no r).
      assert.equal([r['src/x0755'], r['src/x0111'], r['src/x0100'], r['src/acl0100']], [0, 0, 'EACCES', 0], 'on the source');
      for (const [n] of files) assert.is(r[`mnt/${n}`], r[`src/${n}`], `exec of MNT/${n} as on SRC/${n}`);
    }, { tmpfs: true })));
}

// ---- 2. setuid/setgid after writes, truncation, fallocate, copy_file_range ---------------

/** Opens `a[0]` for the operation a[1], does it and closes: 'ok', or the errno name. */
const OP = `
  const [path, op] = a;
  const { O_WRONLY, O_DIRECT, O_APPEND, O_RDONLY } = fs.constants;
  const W = O_WRONLY;
  const OPS = {
    'write': [W, (fd) => sys.pwrite(fd, Buffer.alloc(4096, 'w'), 0)],
    // WebAssembly memory is page-aligned, as O_DIRECT wants.
    'direct-write': [W | O_DIRECT, (fd) => sys.pwrite(fd, new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer, 0, 4096).fill(0x64), 0)],
    'append': [W | O_APPEND, (fd) => sys.write(fd, 'x')],
    'ftruncate': [W, (fd) => sys.ftruncate(fd, 100)],
    'fallocate': [W, (fd) => sys.fallocate(fd, 0, 0, 16384)],
    'fallocate-keep-size': [W, (fd) => sys.fallocate(fd, 1, 0, 32768)],
    'punch-hole': [W, (fd) => sys.fallocate(fd, 3, 0, 4096)],
    'zero-range': [W, (fd) => sys.fallocate(fd, 0x10, 0, 4096)],
    'copy-file-range': [W, (fd) => {
      const fi = fs.openSync(path.slice(0, path.lastIndexOf('/')) + '/plain', O_RDONLY);
      try { sys.copyFileRange(fi, 0, fd, 0, 4096); } finally { fs.closeSync(fi); }
    }],
  };
  const [flags, fn] = OPS[op];
  let fd = -1;
  return ename(() => {
    try {
      fd = fs.openSync(path, flags);
      fn(fd);
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  });
`;
const KILL_OPS = ['write', 'direct-write', 'append', 'ftruncate', 'fallocate', 'fallocate-keep-size', 'punch-hole', 'zero-range', 'copy-file-range'];

/**
 * For each mode ('2766g': mode 02766 in the writer's own group, root's group otherwise) and
 * each operation: SRC/<op>-<mode>S and SRC/<op>-<mode>M (root's, 8 KiB), the operation done
 * as `uid` (no groups; root if 0) on the first directly and on the second through MNT.
 * Answers one row per pair: the errnos, the mode the source shows for each, and the mode
 * `stat -c %a` through the mount shows right after.
 */
async function killpriv(src: string, mnt: string, uid: number, modes: string[]): Promise<KillRow[]> {
  writeFileSync(join(src, 'plain'), 'p'.repeat(8192));
  chmodSync(join(src, 'plain'), 0o644);
  const writer = new AsUser(uid ? { uid, gid: uid, groups: [] } : {});
  const rows: KillRow[] = [];
  try {
    for (const m of modes) {
      const [mode, ownGroup] = [parseInt(m, 8), m.endsWith('g')];
      for (const op of KILL_OPS) {
        const name = `${op}-${mode.toString(8)}${ownGroup ? 'g' : ''}`;
        for (const w of 'SM') {
          const f = join(src, name + w);
          writeFileSync(f, 'a'.repeat(8192));
          chownSync(f, 0, ownGroup ? uid : 0);
          chmodSync(f, mode);
        }
        statSync(join(mnt, `${name}M`)); // a client looked at it before: the kernel holds its mode
        const errno = await writer.run<string>(PRELUDE + OP, [join(src, `${name}S`), op]);
        const errnoMnt = await writer.run<string>(PRELUDE + OP, [join(mnt, `${name}M`), op]);
        rows.push({
          op, mode: oct(mode) + (ownGroup ? ' in group' : ''), errno, errnoMnt,
          src: oct(statSync(join(src, `${name}S`)).mode), srcOfMnt: oct(statSync(join(src, `${name}M`)).mode),
          mntShows: await modeAsCached(join(mnt, `${name}M`)),
        });
      }
    }
  } finally {
    await writer.close();
  }
  return rows;
}

interface KillRow { op: string; mode: string; errno: string; errnoMnt: string; src: string; srcOfMnt: string; mntShows: string }

const SOURCES = [['tmpfs', { tmpfs: true }], ['ext4', { ext4: true }]] as const;

for (const [fsName, how] of SOURCES) {
  for (const dp of DP) {
    test(`uid 65534 writing, truncating, fallocating, copying into a 06777/02766 root file: the mode on SRC and as MNT shows it are the source's [${fsName}, ${dpName(dp)}]`, timed(T, () =>
      withPt({ defaultPermissions: dp }, async (e) => {
        const { src, mnt } = e;
        openUp(e);
        const rows = await killpriv(src, mnt, NOBODY, ['6777', '2766', '2766g']);
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
    const rows = await killpriv(src, mnt, 0, ['6777']);
    assert.ok(rows.every((r) => r.errno !== 'ok' || r.src === '0o6777'), 'root keeps them on the source');
    assert.is(differences(rows, (r) => r.errno === r.errnoMnt && r.srcOfMnt === r.src && r.mntShows === r.src), '', 'through the mount as on the source');
  }, { tmpfs: true })));

test('the kernel\'s flags: exec opens O_RDONLY|__FMODE_EXEC (0x20); writes by uid 65534 carry FUSE_WRITE_KILL_SUIDGID, buffered and O_DIRECT; FALLOCATE carries no such flag', timed(T, () =>
  withPt({ debug: true } as PtOptions, async (e) => {
    const { src, mnt, fx } = e;
    openUp(e);
    copyFileSync('/usr/bin/true', join(src, 'x'));
    chmodSync(join(src, 'x'), 0o111);
    await exec([join(mnt, 'x')]);
    await killpriv(src, mnt, NOBODY, ['6777']);
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
 * Fills SRC/f (a[0]) with user.* attributes: names of a[1] bytes with 1-byte values until
 * the source refuses one or the name list reaches a[2] bytes, then one value of a[3] bytes
 * if the source takes it. Answers what the source holds.
 */
const FILL = `
  const [p, nlen, listmax] = a;
  let big = a[3];
  fs.closeSync(fs.openSync(p, 'w'));
  let n = 0, size = 0, stop = 'limit';
  while (size + nlen + 1 <= listmax) {
    const name = ('user.' + n + '.').padEnd(nlen, 'x');
    const e = await ename(() => sys.setxattr(p, name, Buffer.from([n % 256])));
    if (e !== 'ok') { stop = e; break; }
    n++;
    size += nlen + 1;
  }
  if (big) {
    const { randomBytes } = await import('node:crypto');
    const e = await ename(() => sys.setxattr(p, 'user.0.'.padEnd(nlen, 'x'), randomBytes(big)));
    if (e !== 'ok') big = e;
  }
  return { count: n, stop, big };
`;

/**
 * Lists and reads a[0] (SRC/f) and a[1] (MNT/f) the ways clients do — the size probe, the
 * call with the size it answered, one a byte short, and the addon's listxattr (probe and
 * call until it fits) —; then removes every name through the mount.
 */
const COMPARE = `
  const { createHash } = await import('node:crypto');
  const probeList = async (p) => {
    let n, call, short;
    const e = await ename(() => { n = sys.listxattrSized(p, 0); });
    if (e !== 'ok') return { probe: e };
    const r = { probe: n };
    const ec = await ename(() => { call = n ? sys.listxattrSized(p, n) : Buffer.alloc(0); });
    r.call = ec === 'ok' ? call.toString('hex') : ec;
    if (n > 1) {
      const es = await ename(() => { short = sys.listxattrSized(p, n - 1); });
      r.short = es === 'ok' ? short.length : es;
    }
    return r;
  };
  const values = (p) => {
    const vals = {};
    for (const name of sys.listxattr(p).map(String).sort()) {
      const v = sys.getxattr(p, name);
      vals[name] = [sys.getxattrSized(p, name, 0), v.length, v.subarray(0, 8).toString('hex'), createHash('sha256').update(v).digest('hex')];
    }
    return vals;
  };
  const [s, m] = a;
  const res = { src: { list: await probeList(s), listing: await ename(() => sys.listxattr(s)) },
    mnt: { list: await probeList(m), listing: await ename(() => sys.listxattr(m)) } };
  if (res.src.listing === 'ok') {
    res.src.values = values(s);
    res.mnt.values = res.mnt.listing !== 'ok' ? await ename(() => values(m)) : values(m);
  }
  const names = res.src.listing === 'ok' ? sys.listxattr(s) : [];
  const removed = {};
  for (const name of names) {
    const e = await ename(() => sys.removexattr(m, name));
    removed[e] = (removed[e] ?? 0) + 1;
  }
  res.removed = removed;
  res.leftOnSrc = sys.listxattr(s).length;
  res.leftViaMnt = sys.listxattr(s).length ? await ename(() => sys.listxattr(m)) : sys.listxattr(m).length;
  return res;
`;

interface Compare {
  src: { list: Record<string, unknown>; listing: string; values?: unknown };
  mnt: { list: Record<string, unknown>; listing: string; values?: unknown };
  removed: Record<string, number>; leftOnSrc: number; leftViaMnt: number | string;
}

async function xattrCase(src: string, mnt: string, nameLen: number, listMax: number, big: number): Promise<{ fill: any; c: Compare }> {
  const fill = await js(FILL, [join(src, 'f'), nameLen, listMax, big]);
  const c = await js<Compare>(COMPARE, [join(src, 'f'), join(mnt, 'f')]);
  return { fill, c };
}

function sameAsSource({ fill, c }: { fill: any; c: Compare }, what: string): void {
  assert.ok(fill.count > 0, `${what}: the source took some attributes (${JSON.stringify(fill)})`);
  assert.equal(c.mnt.list, c.src.list, `${what}: listxattr size probe, exact call and a call one byte short, as on the source`);
  assert.is(c.mnt.listing, c.src.listing, `${what}: listing as on the source`);
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
    const fill = await js(FILL, [join(src, 'f'), 255, 65536 + 2 * 256, 0]);
    assert.is(fill.count, 258);
    const r = await js(`
      const names = Array.from({ length: a[2] }, (_, n) => ('user.' + n + '.').padEnd(255, 'x'));
      const res = { src: await ename(() => sys.listxattr(a[0])), mnt: await ename(() => sys.listxattr(a[1])) };
      const removed = new Set();
      for (const n of names) removed.add(await ename(() => sys.removexattr(a[1], n)));
      res.removed = [...removed].sort();
      res.left = sys.listxattr(a[0]).length;
      return res;
    `, [join(src, 'f'), join(mnt, 'f'), fill.count]);
    assert.equal(r, { src: 'E2BIG', mnt: 'E2BIG', removed: ['ok'], left: 0 });
  }, { tmpfs: true })));

test('with max_write=4096 a 64 KiB xattr value (255-byte name) still sets through the mount, as on the source', timed(T, () =>
  withPt({ maxWrite: 4096 } as PtOptions, async ({ src, mnt }) => {
    const r = await js(`
      const v = (await import('node:crypto')).randomBytes(65536);
      const name = 'user.big.'.padEnd(255, 'x');
      const res = {};
      for (const [k, p] of [['src', a[0]], ['mnt', a[1]]]) {
        fs.closeSync(fs.openSync(p, 'w'));
        const e = await ename(() => {
          sys.setxattr(p, name, v);
          res[k] = sys.getxattr(k === 'src' ? a[0] : a[2], name).equals(v);
        });
        if (e !== 'ok') res[k] = e;
      }
      return res;
    `, [join(src, 'f'), join(mnt, 'g'), join(src, 'g')]);
    assert.equal(r, { src: true, mnt: true }, 'setxattr of 64 KiB through a mount with max_write=4096');
  }, { tmpfs: true })));

// ---- leftovers -------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  assert.equal(mounts.filter((m) => bases.some((b) => m.startsWith(b))), []);
}));

test.run();
