// POSIX checklist for examples/memfs.ts, end to end: the fixture serves memfs
// from a child process (default_permissions, allow_other) and this process, or
// the processes it spawns (the as-user helper's Node children, cat, sh), makes
// the real syscalls. One mount for the file, a fresh directory per test. A
// behaviour memfs or the framework gets wrong stays here as a failing test
// named "BUG: …".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { cleanup, DIST, isMounted, sleep, stop, tempDir, timed, WAIT_MS, type Proc } from './helpers.js';
import { AsUserError, runOps, type Op } from '../src/cli/as-user.js';
import { L } from '../src/passthrough/sys.js';

const T = 15_000; // per-test time-out (ms)

// ---- the server --------------------------------------------------------------

interface Server extends Proc {
  /** Sends one JSON command to the fixture and resolves with its one-line JSON answer. */
  send(cmd: object, ms?: number): Promise<Record<string, unknown>>;
}

/**
 * `startNode('test/fixtures/serve-inode.js', …)`, except that stdin is a pipe:
 * the fixture takes its commands ({"cmd":"stats"}) on stdin, and startNode
 * spawns with stdin ignored. Same Proc shape, so helpers' `stop()` works on it.
 */
function startServer(mnt: string): Server {
  const child = spawn(process.execPath, [join(DIST, 'test/fixtures/serve-inode.js'), mnt, 'memfs'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  child.stdin!.on('error', () => { /* EPIPE once the server has gone: send() reports that */ });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })));
  let nextId = 1;
  /** Resolves with the first complete stdout line matching `pred`. */
  const waitLine = (pred: (line: string) => boolean, what: string, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const find = () => out.split('\n').slice(0, -1).find(pred);
      const early = find();
      if (early !== undefined) { resolve(early); return; }
      const gone = (code: number | null) => new Error(`server exited (${code}) before ${what}; stderr: ${err}`);
      if (child.exitCode !== null || child.signalCode !== null) { reject(gone(child.exitCode)); return; }
      const done = () => { clearTimeout(t); child.stdout!.off('data', check); child.off('exit', onExit); };
      const check = () => { const line = find(); if (line !== undefined) { done(); resolve(line); } };
      const onExit = (code: number | null) => { done(); reject(gone(code)); };
      const t = setTimeout(() => { done(); reject(new Error(`no ${what} within ${ms} ms; stderr: ${err}`)); }, ms);
      child.stdout!.on('data', check);
      child.on('exit', onExit);
    });
  const answers = (id: number) => (line: string) => {
    try { return line.startsWith('{') && (JSON.parse(line) as { id?: number }).id === id; } catch { return false; }
  };
  return {
    child, exited, stdout: () => out, stderr: () => err,
    async waitFor(text, ms = WAIT_MS) { await waitLine((l) => l.includes(text), `"${text}"`, ms); },
    async send(cmd, ms = WAIT_MS) {
      const id = nextId++;
      child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
      const line = await waitLine(answers(id), `answer to ${JSON.stringify(cmd)}`, ms);
      return JSON.parse(line) as Record<string, unknown>;
    },
  };
}

let mnt = '';
let server: Server | undefined;

test.before(async () => {
  // The temp dir itself is the mount point: its parent (/tmp) is searchable by
  // uid 65534, which the permission test needs.
  mnt = tempDir('tsfuse-test-posix-');
  server = startServer(mnt);
  await server.waitFor('READY');
});

test.after(async () => {
  if (server) {
    await stop(server);
    const exit = await server.exited;
    if (exit.code !== 0) console.error(`memfs fixture exited with ${exit.code ?? exit.signal}; stderr:\n${server.stderr()}`);
  }
  if (!mnt) return;
  cleanup(mnt);
  const left = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => /fuse/.test(l) && l.includes(mnt));
  if (left.length) {
    process.exitCode = 1;
    throw new Error(`still mounted after teardown: ${left.join('; ')}`);
  }
});

// ---- helpers -------------------------------------------------------------------

let dirs = 0;
/** A fresh directory (mode 0755) on the mount for one test. Checks the mount is still
 * there first: a lazily detached mount point would silently send the test to /tmp. */
function fresh(): string {
  if (!isMounted(mnt)) throw new Error(`${mnt} is no longer mounted (server exited or the mount was detached)`);
  const d = join(mnt, `t${++dirs}`);
  fs.mkdirSync(d);
  fs.chmodSync(d, 0o755);
  return d;
}

/** The errno code a sync fs call fails with, or 'OK'. */
function code(fn: () => unknown): string {
  try { fn(); return 'OK'; } catch (e) { return (e as NodeJS.ErrnoException).code ?? String(e); }
}

/** <linux/xattr.h> */
const XATTR_CREATE = 1, XATTR_REPLACE = 2;

/** Runs `ops` (the as-user helper's `sys` calls) in one child process, in order; resolves
 * with '' if all succeeded, else the errno name of the first that failed ("EEXIST"). */
async function sysCode(...ops: Op[]): Promise<string> {
  try {
    await runOps(ops, {}, WAIT_MS);
    return '';
  } catch (e) {
    if (e instanceof AsUserError && e.code) return e.code;
    throw e;
  }
}
/** The results of `ops` run in one child process (rejects at the first failure). */
const sysOut = (...ops: Op[]) => runOps(ops, {}, WAIT_MS);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const type = (p: string, follow = false) => (follow ? fs.statSync(p) : fs.lstatSync(p)).mode & fs.constants.S_IFMT;

// ---- files ---------------------------------------------------------------------

test('create + stat: regular file, requested mode, size 0, owned by the caller', timed(T, () => {
  const d = fresh();
  const f = join(d, 'f');
  const fd = fs.openSync(f, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o640);
  fs.closeSync(fd);
  const st = fs.statSync(f);
  assert.ok(st.isFile());
  assert.is(st.mode & 0o7777, 0o640 & ~process.umask());
  assert.is(st.size, 0);
  assert.is(st.uid, process.getuid!());
  assert.is(st.gid, process.getgid!());
  assert.is(st.nlink, 1);
}));

test('write and read at offsets; the gap of a sparse write reads as zeros', timed(T, () => {
  const f = join(fresh(), 'f');
  const fd = fs.openSync(f, 'w+');
  try {
    fs.writeSync(fd, Buffer.from('abc'), 0, 3, 0);
    fs.writeSync(fd, Buffer.from('xyz'), 0, 3, 10_000);
    fs.writeSync(fd, Buffer.from('B'), 0, 1, 1); // overwrite in the middle
    const buf = Buffer.alloc(3);
    assert.is(fs.readSync(fd, buf, 0, 3, 10_000), 3);
    assert.is(buf.toString(), 'xyz');
    assert.is(fs.readSync(fd, buf, 0, 3, 20_000), 0, 'read past EOF returns 0');
  } finally { fs.closeSync(fd); }
  const all = fs.readFileSync(f);
  assert.is(all.length, 10_003);
  assert.is(all.subarray(0, 3).toString(), 'aBc');
  assert.ok(all.subarray(3, 10_000).every((b) => b === 0), 'the gap reads as zeros');
  assert.is(fs.statSync(f).size, 10_003);
}));

test('O_APPEND writes go to the end, whatever the offset', timed(T, () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, 'hello');
  const fd = fs.openSync(f, 'a');
  try {
    fs.writeSync(fd, ' world');
    fs.writeSync(fd, Buffer.from('!'), 0, 1, 0); // position is ignored with O_APPEND
  } finally { fs.closeSync(fd); }
  assert.is(fs.readFileSync(f, 'utf8'), 'hello world!');
}));

test('truncate up reads zeros, truncate down drops the tail', timed(T, () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, 'abcdef');
  fs.truncateSync(f, 4096);
  let b = fs.readFileSync(f);
  assert.is(b.length, 4096);
  assert.is(b.subarray(0, 6).toString(), 'abcdef');
  assert.ok(b.subarray(6).every((x) => x === 0));
  fs.truncateSync(f, 3);
  b = fs.readFileSync(f);
  assert.is(b.toString(), 'abc');
  assert.is(fs.statSync(f).size, 3);
  fs.truncateSync(f, 5); // the dropped bytes do not come back
  assert.equal([...fs.readFileSync(f)], [97, 98, 99, 0, 0]);
}));

test('open with O_TRUNC empties an existing file', timed(T, () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, 'a longer first content');
  fs.writeFileSync(f, 'short'); // O_WRONLY | O_CREAT | O_TRUNC
  assert.is(fs.readFileSync(f, 'utf8'), 'short');
  assert.is(fs.statSync(f).size, 5);
}));

test('ftruncate through an open descriptor', timed(T, () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '0123456789');
  const fd = fs.openSync(f, 'r+');
  try {
    fs.ftruncateSync(fd, 4);
    assert.is(fs.fstatSync(fd).size, 4);
    fs.ftruncateSync(fd, 8);
    assert.is(fs.fstatSync(fd).size, 8);
  } finally { fs.closeSync(fd); }
  assert.equal([...fs.readFileSync(f)], [...Buffer.from('0123'), 0, 0, 0, 0]);
}));

// ---- rename ----------------------------------------------------------------------

test('rename over an existing file: target replaced, old name gone, link counts right', timed(T, () => {
  const d = fresh();
  const a = join(d, 'a'), b = join(d, 'b'), b2 = join(d, 'b2');
  fs.writeFileSync(a, 'A');
  fs.writeFileSync(b, 'B');
  fs.linkSync(b, b2); // the replaced inode keeps a name: its nlink must drop 2 → 1
  assert.is(fs.statSync(b2).nlink, 2);
  fs.renameSync(a, b);
  assert.is(code(() => fs.statSync(a)), 'ENOENT');
  assert.is(fs.readFileSync(b, 'utf8'), 'A');
  assert.is(fs.statSync(b).nlink, 1);
  assert.is(fs.readFileSync(b2, 'utf8'), 'B');
  assert.is(fs.statSync(b2).nlink, 1);
  assert.equal(fs.readdirSync(d).sort(), ['b', 'b2']);
}));

test('rename a file into another directory', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'x'));
  fs.writeFileSync(join(d, 'f'), 'data');
  fs.renameSync(join(d, 'f'), join(d, 'x', 'g'));
  assert.equal(fs.readdirSync(d), ['x']);
  assert.equal(fs.readdirSync(join(d, 'x')), ['g']);
  assert.is(fs.readFileSync(join(d, 'x', 'g'), 'utf8'), 'data');
}));

test('rename of a directory into its own subtree fails with EINVAL', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'a', 'b'), { recursive: true });
  assert.is(code(() => fs.renameSync(join(d, 'a'), join(d, 'a', 'b', 'c'))), 'EINVAL');
  assert.is(code(() => fs.renameSync(join(d, 'a'), join(d, 'a', 'c'))), 'EINVAL');
  assert.ok(fs.statSync(join(d, 'a', 'b')).isDirectory());
}));

test('rename of a non-empty directory over a non-empty directory fails with ENOTEMPTY', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'a'));
  fs.mkdirSync(join(d, 'b'));
  fs.writeFileSync(join(d, 'a', 'x'), '1');
  fs.writeFileSync(join(d, 'b', 'y'), '2');
  assert.is(code(() => fs.renameSync(join(d, 'a'), join(d, 'b'))), 'ENOTEMPTY');
  assert.equal(fs.readdirSync(join(d, 'a')), ['x']);
  assert.equal(fs.readdirSync(join(d, 'b')), ['y']);
}));

test('rename of a directory over an empty directory replaces it; parent nlink follows', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'p'));
  fs.mkdirSync(join(d, 'a'));
  fs.mkdirSync(join(d, 'p', 'b'));
  fs.writeFileSync(join(d, 'a', 'x'), '1');
  fs.renameSync(join(d, 'a'), join(d, 'p', 'b'));
  assert.equal(fs.readdirSync(join(d, 'p', 'b')), ['x']);
  assert.equal(fs.readdirSync(d), ['p']);
  assert.is(fs.statSync(d).nlink, 3, 'd: 2 + p');
  assert.is(fs.statSync(join(d, 'p')).nlink, 3, 'p: 2 + b');
}));

test('RENAME_NOREPLACE onto an existing name fails with EEXIST; onto a free name it renames', timed(T, async () => {
  const d = fresh();
  const a = join(d, 'a'), b = join(d, 'b'), c = join(d, 'c');
  fs.writeFileSync(a, 'A');
  fs.writeFileSync(b, 'B');
  assert.is(await sysCode(['renameat2', a, b, L.RENAME_NOREPLACE]), 'EEXIST');
  assert.is(fs.readFileSync(a, 'utf8'), 'A');
  assert.is(fs.readFileSync(b, 'utf8'), 'B');
  assert.is(await sysCode(['renameat2', a, c, L.RENAME_NOREPLACE]), '');
  assert.equal(fs.readdirSync(d).sort(), ['b', 'c']);
  assert.is(fs.readFileSync(c, 'utf8'), 'A');
}));

test('RENAME_EXCHANGE swaps two files (contents swapped)', timed(T, async () => {
  const d = fresh();
  const a = join(d, 'a'), b = join(d, 'b');
  fs.writeFileSync(a, 'AAAA');
  fs.writeFileSync(b, 'BB');
  const ia = fs.statSync(a).ino, ib = fs.statSync(b).ino;
  assert.is(await sysCode(['renameat2', a, b, L.RENAME_EXCHANGE]), '');
  assert.is(fs.readFileSync(a, 'utf8'), 'BB');
  assert.is(fs.readFileSync(b, 'utf8'), 'AAAA');
  assert.is(fs.statSync(a).ino, ib);
  assert.is(fs.statSync(b).ino, ia);
  assert.equal(fs.readdirSync(d).sort(), ['a', 'b']);
}));

test('RENAME_EXCHANGE swaps a file with a directory across parents; parents\' nlink follow', timed(T, async () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'p'));
  fs.mkdirSync(join(d, 'q'));
  const f = join(d, 'p', 'f'), s = join(d, 'q', 's');
  fs.writeFileSync(f, 'file');
  fs.mkdirSync(s);
  fs.writeFileSync(join(s, 'inner'), 'in');
  assert.is(await sysCode(['renameat2', f, s, L.RENAME_EXCHANGE]), '');
  assert.ok(fs.statSync(f).isDirectory(), 'p/f is now the directory');
  assert.equal(fs.readdirSync(f), ['inner']);
  assert.is(fs.readFileSync(join(f, 'inner'), 'utf8'), 'in');
  assert.ok(fs.statSync(s).isFile(), 'q/s is now the file');
  assert.is(fs.readFileSync(s, 'utf8'), 'file');
  assert.is(fs.statSync(join(d, 'p')).nlink, 3, 'p gained a subdirectory');
  assert.is(fs.statSync(join(d, 'q')).nlink, 2, 'q lost its subdirectory');
}));

// ---- links and names -------------------------------------------------------------

test('hard link: nlink 1 → 2 → 1, data readable through the remaining name', timed(T, () => {
  const d = fresh();
  const a = join(d, 'a'), b = join(d, 'b');
  fs.writeFileSync(a, 'shared');
  assert.is(fs.statSync(a).nlink, 1);
  fs.linkSync(a, b);
  assert.is(fs.statSync(a).nlink, 2);
  assert.is(fs.statSync(b).nlink, 2);
  assert.is(fs.statSync(a).ino, fs.statSync(b).ino);
  fs.appendFileSync(b, '!'); // one inode: a write through one name shows through the other
  assert.is(fs.readFileSync(a, 'utf8'), 'shared!');
  fs.unlinkSync(a);
  assert.is(code(() => fs.statSync(a)), 'ENOENT');
  assert.is(fs.readFileSync(b, 'utf8'), 'shared!');
  assert.is(fs.statSync(b).nlink, 1);
}));

test('link(2) from another process gives the same inode', timed(T, async () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'a'), 'x');
  assert.is(await sysCode(['link', join(d, 'a'), join(d, 'b')]), '');
  assert.is(fs.statSync(join(d, 'b')).ino, fs.statSync(join(d, 'a')).ino);
}));

test('link to a directory fails with EPERM', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'sub'));
  assert.is(code(() => fs.linkSync(join(d, 'sub'), join(d, 'l'))), 'EPERM');
  assert.is(code(() => fs.lstatSync(join(d, 'l'))), 'ENOENT');
}));

test('unlink of a directory fails with EISDIR', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'sub'));
  assert.is(code(() => fs.unlinkSync(join(d, 'sub'))), 'EISDIR');
  assert.ok(fs.statSync(join(d, 'sub')).isDirectory());
}));

test('rmdir of a non-empty directory fails with ENOTEMPTY', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'sub'));
  fs.writeFileSync(join(d, 'sub', 'f'), '');
  assert.is(code(() => fs.rmdirSync(join(d, 'sub'))), 'ENOTEMPTY');
  fs.unlinkSync(join(d, 'sub', 'f'));
  fs.rmdirSync(join(d, 'sub'));
  assert.equal(fs.readdirSync(d), []);
}));

test('rmdir of a file fails with ENOTDIR', timed(T, () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), '');
  assert.is(code(() => fs.rmdirSync(join(d, 'f'))), 'ENOTDIR');
  assert.ok(fs.statSync(join(d, 'f')).isFile());
}));

test('mkdir of an existing name fails with EEXIST', timed(T, () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'sub'));
  fs.writeFileSync(join(d, 'f'), '');
  assert.is(code(() => fs.mkdirSync(join(d, 'sub'))), 'EEXIST');
  assert.is(code(() => fs.mkdirSync(join(d, 'f'))), 'EEXIST');
}));

test('directory nlink is 2 + number of subdirectories', timed(T, () => {
  const d = fresh();
  assert.is(fs.statSync(d).nlink, 2);
  fs.mkdirSync(join(d, 'a'));
  fs.mkdirSync(join(d, 'b'));
  fs.writeFileSync(join(d, 'f'), ''); // files do not count
  assert.is(fs.statSync(d).nlink, 4);
  fs.rmdirSync(join(d, 'a'));
  assert.is(fs.statSync(d).nlink, 3);
}));

test('symlink: readlink gives the target, lstat is S_IFLNK, stat follows it', timed(T, () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'target'), '12345');
  fs.symlinkSync('target', join(d, 'l'));
  assert.is(fs.readlinkSync(join(d, 'l')), 'target');
  const l = fs.lstatSync(join(d, 'l'));
  assert.is(l.mode & fs.constants.S_IFMT, fs.constants.S_IFLNK);
  assert.is(l.size, 'target'.length);
  const st = fs.statSync(join(d, 'l'));
  assert.ok(st.isFile());
  assert.is(st.size, 5);
  assert.is(st.ino, fs.statSync(join(d, 'target')).ino);
  assert.is(fs.readFileSync(join(d, 'l'), 'utf8'), '12345');
}));

test('mkfifo creates a fifo (S_IFIFO), its mode masked by the caller\'s umask', timed(T, async () => {
  const d = fresh();
  await runOps([['mkfifo', join(d, 'p'), 0o666]], { umask: 0o027 }, WAIT_MS);
  assert.is(type(join(d, 'p')), fs.constants.S_IFIFO);
  assert.is(fs.statSync(join(d, 'p')).mode & 0o777, 0o666 & ~0o027);
}));

// ---- xattrs ----------------------------------------------------------------------

test('xattrs: set, get, list, remove', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  const names = (r: unknown) => (r as Buffer[]).map((n) => n.toString()).sort().join(',');
  const r = await sysOut(
    ['setxattr', f, 'user.one', Buffer.from('1')],
    ['setxattr', f, 'user.two', Buffer.from('\0binary\xff', 'latin1')],
    ['getxattr', f, 'user.one'], ['getxattr', f, 'user.two'], ['listxattr', f],
    ['removexattr', f, 'user.one'], ['listxattr', f],
  );
  const out = [`${(r[2] as Buffer).toString('hex')} ${(r[3] as Buffer).toString('hex')}`, names(r[4]), names(r[6])];
  assert.equal(out, [
    `${Buffer.from('1').toString('hex')} ${Buffer.from('\0binary\xff', 'latin1').toString('hex')}`,
    'user.one,user.two',
    'user.two',
  ]);
}));

test('xattrs: XATTR_CREATE on an existing name → EEXIST', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  assert.is(await sysCode(['setxattr', f, 'user.k', 'v']), '');
  assert.is(await sysCode(['setxattr', f, 'user.k', 'w', XATTR_CREATE]), 'EEXIST');
  assert.is(((await sysOut(['getxattr', f, 'user.k']))[0] as Buffer).toString(), 'v');
}));

test('xattrs: XATTR_REPLACE on a missing name → ENODATA', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  assert.is(await sysCode(['setxattr', f, 'user.k', 'v', XATTR_REPLACE]), 'ENODATA');
  assert.equal((await sysOut(['listxattr', f]))[0], []);
  const r = await sysOut(['setxattr', f, 'user.k', 'v'], ['setxattr', f, 'user.k', 'w', XATTR_REPLACE], ['getxattr', f, 'user.k']);
  assert.is((r[2] as Buffer).toString(), 'w');
}));

test('xattrs: get or remove of a missing name → ENODATA', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  assert.is(await sysCode(['getxattr', f, 'user.missing']), 'ENODATA');
  assert.is(await sysCode(['removexattr', f, 'user.missing']), 'ENODATA');
}));

// ---- times, mode, owner ----------------------------------------------------------

test('utimensat with explicit times: seconds and nanoseconds survive (within 1 µs)', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  const at = 1_234_567_890_123_456_789n, mt = 1_500_000_000_987_654_321n;
  const ts = (ns: bigint) => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
  assert.is(await sysCode(['utimensat', f, ts(at), ts(mt)]), '');
  const st = fs.statSync(f, { bigint: true });
  const near = (x: bigint, y: bigint) => (x > y ? x - y : y - x) <= 1000n;
  assert.ok(near(st.atimeNs, at), `atime ${st.atimeNs} vs ${at}`);
  assert.ok(near(st.mtimeNs, mt), `mtime ${st.mtimeNs} vs ${mt}`);
}));

test('utimensat UTIME_NOW sets ≈ now; UTIME_OMIT leaves that time', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  const past = 1_000_000_000;
  // "Now" is the time between the call and the check, however long a loaded machine
  // takes; 1 s of slack either side only covers clock granularity (a coarse kernel clock).
  const between = (t: number, t0: number, t1: number) => t0 - 1000 <= t && t <= t1 + 1000;
  await sysOut(['utimensat', f, [past, 0], [past, 0]]);
  let t0 = Date.now();
  assert.is(await sysCode(['utimensat', f, 'now', 'omit']), '');
  let st = fs.statSync(f);
  let t1 = Date.now();
  assert.ok(between(st.atimeMs, t0, t1), `atime ${st.atime.toISOString()} ≈ now (${new Date(t0).toISOString()} … ${new Date(t1).toISOString()})`);
  assert.is(st.mtimeMs, past * 1000, 'mtime untouched');
  await sysOut(['utimensat', f, [past, 0], [past, 0]]);
  t0 = Date.now();
  assert.is(await sysCode(['utimensat', f, 'omit', 'now']), '');
  st = fs.statSync(f);
  t1 = Date.now();
  assert.is(st.atimeMs, past * 1000, 'atime untouched');
  assert.ok(between(st.mtimeMs, t0, t1), `mtime ${st.mtime.toISOString()} ≈ now (${new Date(t0).toISOString()} … ${new Date(t1).toISOString()})`);
}));

test('chmod changes the mode and bumps ctime', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  fs.chmodSync(f, 0o600);
  const before = fs.statSync(f, { bigint: true }).ctimeNs;
  await sleep(20);
  fs.chmodSync(f, 0o4751);
  const st = fs.statSync(f, { bigint: true });
  assert.is(Number(st.mode) & 0o7777, 0o4751);
  assert.ok(st.ctimeNs > before, `ctime ${st.ctimeNs} > ${before}`);
  assert.ok(fs.statSync(f).isFile(), 'the type bits are kept');
}));

test('chown (as root) changes uid and gid and bumps ctime', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  const before = fs.statSync(f, { bigint: true }).ctimeNs;
  await sleep(20);
  fs.chownSync(f, 65534, 65534);
  let st = fs.statSync(f, { bigint: true });
  assert.is(Number(st.uid), 65534);
  assert.is(Number(st.gid), 65534);
  assert.ok(st.ctimeNs > before, `ctime ${st.ctimeNs} > ${before}`);
  fs.chownSync(f, -1, 0); // gid only
  st = fs.statSync(f, { bigint: true });
  assert.is(Number(st.uid), 65534);
  assert.is(Number(st.gid), 0);
}));

test('default_permissions: uid 65534 cannot read a root 0600 file (EACCES) but can read a 0644 one', timed(T, () => {
  const d = fresh();
  const secret = join(d, 'secret'), open = join(d, 'open');
  fs.writeFileSync(secret, 'secret');
  fs.writeFileSync(open, 'public');
  fs.chmodSync(secret, 0o600);
  fs.chmodSync(open, 0o644);
  const asNobody = (p: string) => spawnSync('cat', [p], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: WAIT_MS });
  const denied = asNobody(secret);
  assert.is.not(denied.status, 0, 'cat of a 0600 root file as uid 65534 fails');
  assert.match(denied.stderr, /Permission denied/);
  assert.is(denied.stdout, '');
  const allowed = asNobody(open);
  assert.is(allowed.status, 0, allowed.stderr);
  assert.is(allowed.stdout, 'public');
  // and writing the 0644 file is refused too
  const w = spawnSync('sh', ['-c', 'echo x >> "$1"', 'sh', open], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: WAIT_MS });
  assert.is.not(w.status, 0);
  assert.match(w.stderr, /Permission denied/);
  assert.is(fs.readFileSync(open, 'utf8'), 'public');
  // nor can it create a name in the root-owned 0755 directory
  const c = spawnSync('touch', [join(d, 'new')], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: WAIT_MS });
  assert.is.not(c.status, 0);
  assert.match(c.stderr, /Permission denied/);
  assert.is(code(() => fs.statSync(join(d, 'new'))), 'ENOENT');
}));

test('an open file that is unlinked still reads; fstat shows nlink 0', timed(T, () => {
  const d = fresh();
  const f = join(d, 'f');
  fs.writeFileSync(f, 'still here');
  const fd = fs.openSync(f, 'r');
  try {
    fs.unlinkSync(f);
    assert.is(code(() => fs.statSync(f)), 'ENOENT');
    assert.equal(fs.readdirSync(d), []);
    const buf = Buffer.alloc(64);
    const n = fs.readSync(fd, buf, 0, 64, 0);
    assert.is(buf.subarray(0, n).toString(), 'still here');
    assert.is(fs.fstatSync(fd).nlink, 0);
  } finally { fs.closeSync(fd); }
}));

test('readdir lists exactly the created names', timed(T, () => {
  const d = fresh();
  const names = ['a', 'b.txt', 'dir', 'link', 'with space', 'ünï'];
  fs.writeFileSync(join(d, 'a'), '');
  fs.writeFileSync(join(d, 'b.txt'), '');
  fs.mkdirSync(join(d, 'dir'));
  fs.symlinkSync('a', join(d, 'link'));
  fs.writeFileSync(join(d, 'with space'), '');
  fs.writeFileSync(join(d, 'ünï'), '');
  fs.writeFileSync(join(d, 'gone'), '');
  fs.unlinkSync(join(d, 'gone'));
  assert.equal(fs.readdirSync(d).sort(), [...names].sort());
  const types = Object.fromEntries(fs.readdirSync(d, { withFileTypes: true }).map((e) => [e.name, e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : e.isFile() ? 'f' : '?']));
  assert.equal(types, { a: 'f', 'b.txt': 'f', dir: 'd', link: 'l', 'with space': 'f', 'ünï': 'f' });
}));

test('readdir of a directory with many entries returns each name once', timed(T, () => {
  const d = fresh();
  const names = Array.from({ length: 500 }, (_, i) => `file-with-a-longish-name-${i}`);
  for (const n of names) fs.writeFileSync(join(d, n), '');
  assert.equal(fs.readdirSync(d).sort(), [...names].sort());
}));

test('statfs returns the memfs numbers (bsize 4096, namelen 255)', timed(T, async () => {
  assert.ok(isMounted(mnt));
  const s = fs.statfsSync(mnt);
  assert.is(s.bsize, 4096);
  assert.is(s.blocks, 1 << 20);
  assert.is(s.bfree, 1 << 19);
  assert.is(s.bavail, 1 << 19);
  assert.is(s.files, 1 << 20);
  assert.is(s.ffree, 1 << 19);
  const v = (await sysOut(['statfs', mnt]))[0] as { bsize: number; frsize: number; namemax: number };
  assert.equal([v.bsize, v.frsize, v.namemax], [4096, 4096, 255], 'f_bsize, f_frsize, f_namemax');
}));

test('fallocate extends the file with zeros', timed(T, async () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, 'abc');
  const fallocate = (mode: number, len: number) => sysCode(['openfd', 'f', f, fs.constants.O_RDWR], ['fallocate', 'f', mode, 0, len], ['close', 'f']);
  assert.is(await fallocate(0, 1 << 20), '');
  let b = fs.readFileSync(f);
  assert.is(b.length, 1 << 20);
  assert.is(b.subarray(0, 3).toString(), 'abc');
  assert.ok(b.subarray(3).every((x) => x === 0));
  // fallocate(2) itself: no fallback to writing zeros (as posix_fallocate(3) would do) hides a missing FALLOCATE
  assert.is(await fallocate(0, 2 << 20), '');
  assert.is(fs.statSync(f).size, 2 << 20);
  // FALLOC_FL_KEEP_SIZE: the size stays
  assert.is(await fallocate(1, 3 << 20), '');
  assert.is(fs.statSync(f).size, 2 << 20);
  b = fs.readFileSync(f);
  assert.is(b.subarray(0, 3).toString(), 'abc');
}));

test('a large (8 MiB) write and read round-trip', timed(60_000, () => {
  const f = join(fresh(), 'big');
  const data = randomBytes(8 << 20);
  fs.writeFileSync(f, data);
  assert.is(fs.statSync(f).size, data.length);
  const back = fs.readFileSync(f);
  assert.is(back.length, data.length);
  assert.is(sha(back), sha(data));
  // and a read through a fresh process, past the page cache of this one
  const out = execFileSync('sha256sum', [f], { encoding: 'utf8', timeout: 30_000 });
  assert.is(out.split(' ')[0], sha(data));
}));

// ---- the server's own view -----------------------------------------------------

/** Opcodes whose error replies are normal answers to what the checklist does. */
const EXPECTED_ERRORS = new Set([
  'LOOKUP', // ENOENT for names that do not exist
  'GETXATTR', 'SETXATTR', 'REMOVEXATTR', // ENODATA/EEXIST checks (and the kernel's security.* probes)
  'RMDIR', // ENOTEMPTY
  'RENAME', 'RENAME2', // ENOTEMPTY, EEXIST
  'STATX', // ENOSYS: the kernel falls back to GETATTR
]);

test('server stats: no unexpected error opcodes, no unknown node ids', timed(2 * WAIT_MS, async () => {
  const r = await server!.send({ cmd: 'stats' });
  assert.ok(r.ok, JSON.stringify(r));
  type Stats = { errors: Record<string, number>; malformed: number; inFlight: number; fs?: { handles: number } };
  let stats = r.stats as Stats;
  console.log(`  server errors by opcode: ${JSON.stringify(stats.errors)}`);
  const unexpected = Object.keys(stats.errors).filter((op) => !EXPECTED_ERRORS.has(op));
  assert.equal(unexpected, [], `unexpected error replies: ${JSON.stringify(stats.errors)}`);
  assert.is(stats.malformed, 0);
  assert.is(r.unknownNodes, 0);
  // Every descriptor the checklist opened is closed: RELEASE is asynchronous, so wait for it.
  for (const end = Date.now() + WAIT_MS; stats.fs?.handles && Date.now() < end;) {
    await sleep(100);
    stats = (await server!.send({ cmd: 'stats' })).stats as Stats;
  }
  assert.is(stats.fs?.handles, 0, `open handles left: ${JSON.stringify(stats.fs)}`);
}));

test.run();
