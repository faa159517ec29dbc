// End-to-end: replies that never crash, and 64-bit values kept exact, through
// a real mount. The server (test/fixtures/serve-bad.ts, a raw FileSystem)
// runs in a child process; the client syscalls are made by a small C program
// (test/fixtures/syscall-client.ts) in further child processes, so a request
// the server never answers shows up as a hung client, not a hung test.
//
// Part 1: each file misbehaves in one way (a read that returns a string, a
// write that returns NaN, an errno out of range, attributes with NaN/-1/'644',
// a node id of 2^60, a directory entry holding '/' …). For each: the caller
// gets EIO and returns, the server is still alive and serves a good file, its
// log has a line naming the opcode and the node, and its error count for that
// opcode went up.
// Part 2: 64-bit values through the kernel: inode numbers and sizes past 2^53
// on stat, read/write/lseek/lock offsets received exactly, readdir cookies past
// 2^53 that resume a 2000-entry listing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, DIST, run, tempDir, timed, WAIT_MS } from './helpers.js';
import { JsonFixture, type Answer } from './fixture.js';
import { buildClient, hexArg, show, sys, type SysResult } from './fixtures/syscall-client.js';

const FIXTURE = join(DIST, 'test/fixtures/serve-bad.js');
/** How long a client syscall may take before it counts as hung (a hang, not a slow machine). */
const HANG_MS = WAIT_MS;
const T = 3 * HANG_MS;
const GOOD = 'good data\n';

interface Stats { requests: Record<string, number>; errors: Record<string, number> }
interface Log {
  reads: string[]; writes: string[]; seeks: string[]; locks: string[]; releases: string[]; cookies: string[]; badCookies: number;
}

class BadFixture extends JsonFixture {
  static start(mnt: string): Promise<BadFixture> {
    return new BadFixture(process.execPath, [FIXTURE, mnt], mnt).ready();
  }
  async stats(): Promise<Stats> {
    return ((await this.ok({ cmd: 'stats' })) as Answer & { stats: Stats }).stats;
  }
  async files(): Promise<Record<string, number>> {
    return ((await this.ok({ cmd: 'files' })) as Answer & { files: Record<string, number> }).files;
  }
  async log(): Promise<Log> {
    return (await this.ok({ cmd: 'log' })) as unknown as Log;
  }
}

const mounts: string[] = [];
/** A fresh mount of serve-bad; the server is always stopped and the mount point removed. */
async function withBad(fn: (f: BadFixture, mnt: string) => Promise<void>): Promise<void> {
  const mnt = tempDir();
  mounts.push(mnt);
  let f: BadFixture | undefined;
  try {
    f = await BadFixture.start(mnt);
    await fn(f, mnt);
  } finally {
    if (f) await f.stop();
    cleanup(mnt);
  }
}

const path = (mnt: string, name: string) => hexArg(join(mnt, name));

// ---- part 1: replies that never crash ------------------------------------------------

type Op = 'read' | 'write' | 'stat' | 'readdir' | 'readlink' | 'getxattr' | 'lseek';
interface Case {
  file: string;
  /** What the handler does wrong. */
  what: string;
  op: Op;
  /** The opcode whose handler misbehaves (named in the server's log and stats). */
  opcode: string;
  /** The errno the caller must get. */
  errno?: string;
}

function clientArgs(op: Op, p: string): string[] {
  switch (op) {
    case 'read': return ['pread', p, '0', '100'];
    case 'write': return ['pwrite', p, '0', hexArg('hello')];
    case 'stat': return ['stat', p];
    case 'readdir': return ['readdir', p];
    case 'readlink': return ['readlink', p];
    case 'getxattr': return ['getxattr', p, hexArg('user.x')];
    case 'lseek': return ['lseek', p, '0', '3'];
  }
}

const CASES: Case[] = [
  { file: 'read-string', what: 'read() returns a string', op: 'read', opcode: 'READ' },
  { file: 'read-number', what: 'read() returns a number', op: 'read', opcode: 'READ' },
  { file: 'read-undefined', what: 'read() returns undefined', op: 'read', opcode: 'READ' },
  { file: 'read-resolve-later-string', what: 'read() resolves to a string after 300 ms', op: 'read', opcode: 'READ' },
  { file: 'read-fuseerror-600', what: 'read() throws new FuseError(600) (errno out of the kernel\'s range)', op: 'read', opcode: 'READ' },
  { file: 'read-fuseerror-nan', what: 'read() throws new FuseError(NaN)', op: 'read', opcode: 'READ' },
  { file: 'read-fuseerror-frac', what: 'read() throws new FuseError(1.5)', op: 'read', opcode: 'READ' },
  { file: 'read-errno-object', what: "read() throws { code: 'EWHATEVER', errno: -600 }", op: 'read', opcode: 'READ' },
  { file: 'read-throw-string', what: "read() throws 'str'", op: 'read', opcode: 'READ' },
  { file: 'read-throw-null', what: 'read() throws null', op: 'read', opcode: 'READ' },
  { file: 'read-reject-undefined', what: 'read() returns Promise.reject(undefined)', op: 'read', opcode: 'READ' },
  { file: 'read-reject-later', what: 'read() returns a promise that rejects after 300 ms', op: 'read', opcode: 'READ' },
  { file: 'write-nan', what: 'write() returns NaN', op: 'write', opcode: 'WRITE' },
  { file: 'write-more', what: 'write() returns more than the data length', op: 'write', opcode: 'WRITE' },
  { file: 'write-negative', what: 'write() returns -1', op: 'write', opcode: 'WRITE' },
  { file: 'write-string', what: "write() returns the count as a string", op: 'write', opcode: 'WRITE' },
  { file: 'attr-ino-nan', what: 'getattr() returns ino NaN', op: 'stat', opcode: 'GETATTR' },
  { file: 'attr-size-negative', what: 'getattr() returns size -1', op: 'stat', opcode: 'GETATTR' },
  { file: 'attr-mode-string', what: "getattr() returns mode '644'", op: 'stat', opcode: 'GETATTR' },
  { file: 'attr-none', what: 'getattr() returns undefined', op: 'stat', opcode: 'GETATTR' },
  { file: 'nodeid-2p60', what: 'lookup() returns nodeid 2^60 (not a safe integer)', op: 'stat', opcode: 'LOOKUP' },
  { file: 'nodeid-frac', what: 'lookup() returns nodeid 1.5', op: 'stat', opcode: 'LOOKUP' },
  { file: 'nodeid-none', what: 'lookup() returns undefined', op: 'stat', opcode: 'LOOKUP' },
  { file: 'dir-slash', what: "readdir adds an entry named 'a/b'", op: 'readdir', opcode: 'READDIR' },
  { file: 'dir-long', what: 'readdir adds an entry with a 300-byte name', op: 'readdir', opcode: 'READDIR' },
  { file: 'dir-nul', what: 'readdir adds an entry whose name holds NUL', op: 'readdir', opcode: 'READDIR' },
  { file: 'dir-cookie-negative', what: 'readdir adds an entry with nextOffset -1', op: 'readdir', opcode: 'READDIR' },
  { file: 'link-object', what: 'readlink() returns an object', op: 'readlink', opcode: 'READLINK' },
  { file: 'xattr-string', what: 'getxattr() returns a string', op: 'getxattr', opcode: 'GETXATTR' },
  { file: 'lseek-negative', what: 'lseek() returns -1n', op: 'lseek', opcode: 'LSEEK' },
  { file: 'lseek-2p63', what: 'lseek() returns 2n**63n', op: 'lseek', opcode: 'LSEEK' },
  { file: 'open-bad-fh', what: 'open() returns fh 1.5', op: 'read', opcode: 'OPEN' },
];

test('the syscall client compiles (gcc)', () => {
  buildClient();
});

for (const c of CASES) {
  test(`${c.what}: the caller gets ${c.errno ?? 'EIO'}, the server lives on, logs ${c.opcode} and counts the error`, timed(T, () => withBad(async (f, mnt) => {
    const files = await f.files();
    const node = c.opcode === 'LOOKUP' ? 1 : files[c.file];
    assert.ok(node, `the fixture has no file ${c.file}`);
    const before = await f.stats();
    const mark = f.err.length;

    const r = await sys(clientArgs(c.op, path(mnt, c.file)), HANG_MS);
    // Everything that went wrong is collected, so one failure reports them all.
    const problems: string[] = [];
    const want = `ERR ${c.errno ?? 'EIO'}`;
    if (show(r) !== want) problems.push(`the caller got ${show(r)}, expected ${want}`);
    if (!f.alive) problems.push(`the server died: ${f.errors()}`);
    else {
      const good = await sys(['pread', path(mnt, 'good'), '0', '100'], HANG_MS);
      if (show(good) !== `OK ${GOOD.length} ${hexArg(GOOD)}`) problems.push(`reading the good file afterwards gave ${show(good)}`);
      await f.caughtUp(); // the server logged while answering the bad request: after this barrier it is in f.err
      const log = f.err.slice(mark);
      const line = new RegExp(`^tsfuse: ${c.opcode} on node ${node} (failed|returned a bad result)`, 'm');
      if (!line.test(log)) problems.push(`no log line "tsfuse: ${c.opcode} on node ${node} …"; the log: ${JSON.stringify(log.slice(0, 600))}`);
      const entries = log.split('\n').filter((l) => l.startsWith('tsfuse: '));
      if (entries.length !== 1) problems.push(`${entries.length} log entries, expected one: ${JSON.stringify(entries)}`);
      const after = await f.stats();
      if (!((after.errors[c.opcode] ?? 0) > (before.errors[c.opcode] ?? 0))) {
        problems.push(`stats.errors.${c.opcode} did not go up: ${before.errors[c.opcode] ?? 0} → ${after.errors[c.opcode] ?? 0}`);
      }
      if (c.opcode === 'OPEN' && !(await f.log()).releases.includes(`${node}:1.5`)) {
        problems.push(`the handle of the undelivered OPEN reply was not released: ${JSON.stringify((await f.log()).releases)}`);
      }
    }
    assert.equal(problems, [], problems.join('; '));
  })));
}

test('after every kind of bad reply in one session, the server still serves and the kernel still talks to it', timed(4 * HANG_MS, () => withBad(async (f, mnt) => {
  for (const c of CASES) {
    const r = await sys(clientArgs(c.op, path(mnt, c.file)), HANG_MS);
    assert.is(show(r), 'ERR EIO', `${c.what}: ${show(r)}`);
  }
  assert.ok(f.alive, f.errors());
  assert.is(readFileSync(join(mnt, 'good'), 'utf8'), GOOD);
  const s = await f.stats();
  for (const op of new Set(CASES.map((c) => c.opcode))) {
    assert.ok((s.errors[op] ?? 0) >= 1, `${op}: ${JSON.stringify(s.errors)}`);
  }
})));

// ---- part 2: 64-bit values through the kernel -------------------------------------------

const P2 = (n: number) => 2n ** BigInt(n);

function ok(r: SysResult, what: string): string[] {
  assert.is(r.kind, 'ok', `${what}: ${show(r)}`);
  return (r as { fields: string[] }).fields;
}

test('inode numbers 2^60+1 and 2^60+2 are distinct and exact on stat', timed(T, () => withBad(async (_f, mnt) => {
  const a = await run('stat', ['-c', '%i', join(mnt, 'ino-a')]);
  const b = await run('stat', ['-c', '%i', join(mnt, 'ino-b')]);
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
  assert.is(a.stdout.trim(), String(P2(60) + 1n));
  assert.is(b.stdout.trim(), String(P2(60) + 2n));
  assert.is(ok(await sys(['stat', path(mnt, 'ino-a')]), 'statx ino-a')[0], String(P2(60) + 1n));
  // readdir of the root carries them too (d_ino).
  const ls = await run('ls', ['-1i', mnt]);
  assert.ok(ls.stdout.split('\n').includes(`${P2(60) + 2n} ino-b`), ls.stdout);
})));

test('a bigint size of 2^62 and blocks of 2^53+1 show exactly on stat', timed(T, () => withBad(async (_f, mnt) => {
  const st = await run('stat', ['-c', '%s %b', join(mnt, 'huge')]);
  assert.is(st.code, 0, st.stderr);
  assert.is(st.stdout.trim(), `${P2(62)} ${P2(53) + 1n}`);
  const sx = ok(await sys(['stat', path(mnt, 'huge')]), 'statx huge');
  assert.equal(sx.slice(1, 3), [String(P2(62)), String(P2(53) + 1n)]);
})));

test('pread at offsets past 2^53 reaches read() with exactly that bigint offset', timed(T, () => withBad(async (f, mnt) => {
  for (const off of [P2(53) + 1n, P2(60), P2(60) + 12345n, P2(62) - 7n]) {
    const r = ok(await sys(['pread', path(mnt, 'echo'), String(off), '64']), `pread at ${off}`);
    assert.is(Buffer.from(r[1], 'hex').toString(), String(off), `the handler saw another offset than ${off}`);
  }
  assert.equal((await f.log()).reads, [String(P2(53) + 1n), String(P2(60)), String(P2(60) + 12345n), String(P2(62) - 7n)]);
})));

test('pwrite at 2^53+2 arrives as exactly 9007199254740994n (and 2^53+1 as itself)', timed(T, () => withBad(async (f, mnt) => {
  assert.equal(ok(await sys(['pwrite', path(mnt, 'echo'), '9007199254740994', hexArg('x')]), 'pwrite'), ['1']);
  assert.equal(ok(await sys(['pwrite', path(mnt, 'echo'), '9007199254740993', hexArg('yz')]), 'pwrite'), ['2']);
  assert.equal((await f.log()).writes, ['9007199254740994', '9007199254740993']);
})));

test('lseek SEEK_DATA/SEEK_HOLE at huge offsets: offset in and bigint result out, exactly', timed(T, () => withBad(async (f, mnt) => {
  const data = ok(await sys(['lseek', path(mnt, 'seek'), String(P2(60) + 7n), '3']), 'SEEK_DATA');
  assert.equal(data, [String(P2(60) + 7n + P2(59))]);
  const hole = ok(await sys(['lseek', path(mnt, 'seek'), String(P2(53) + 1n), '4']), 'SEEK_HOLE');
  assert.equal(hole, [String(P2(62))]);
  assert.equal((await f.log()).seeks, [`${P2(60) + 7n}:3`, `${P2(53) + 1n}:4`]);
})));

test('F_GETLK: a lock range past 2^60 reaches getlk exactly, and the answered range comes back exactly', timed(T, () => withBad(async (f, mnt) => {
  const start = P2(60) + 3n;
  const len = P2(40);
  const r = ok(await sys(['getlk', path(mnt, 'lock'), String(start), String(len)]), 'F_GETLK');
  assert.equal((await f.log()).locks, [`${start}:${start + len - 1n}:0`]);
  // F_WRLCK (1) from 2^61+1 to EOF (l_len 0), held by the server process.
  assert.equal(r, ['1', String(P2(61) + 1n), '0', String(f.child.pid)]);
})));

test('readdir cookies past 2^53 resume a 2000-entry listing: ls lists every name once, d_off/d_ino are exact', timed(T, () => withBad(async (f, mnt) => {
  const names = Array.from({ length: 2000 }, (_, i) => `e${String(i).padStart(4, '0')}`);
  const r = await sys(['readdir', path(mnt, 'bigdir')], HANG_MS);
  assert.is(r.kind, 'ok', show(r));
  const entries = (r as { lines: string[] }).lines.map((l) => l.split(' '));
  assert.is(entries.length, 2000);
  entries.forEach(([tag, ino, off, name], i) => {
    assert.is(tag, 'E');
    assert.is(Buffer.from(name, 'hex').toString(), names[i]);
    assert.is(ino, String(P2(61) + BigInt(i)), `d_ino of ${names[i]}`);
    assert.is(off, String(P2(60) + BigInt(i + 1) * (P2(32) + 1n)), `d_off of ${names[i]}`);
  });
  const ls = await run('ls', ['-1', join(mnt, 'bigdir')], HANG_MS, { env: { ...process.env, LC_ALL: 'C' } });
  assert.is(ls.code, 0, ls.stderr);
  assert.equal(ls.stdout.split('\n').filter(Boolean), names);

  // The listing resumed from every 97th cookie (the server answers at most 97 a time).
  // Without OPENDIR the kernel caches the directory (FOPEN_CACHE_DIR is its default
  // then), so ls may be served from that cache: one pass or two.
  const log = await f.log();
  assert.is(log.badCookies, 0, 'the kernel passed back a cookie the server never gave');
  const resumed = ['0', ...Array.from({ length: 20 }, (_, k) => String(P2(60) + BigInt(97 * (k + 1)) * (P2(32) + 1n)))];
  const seen = log.cookies.filter((c) => c !== String(P2(60) + 2000n * (P2(32) + 1n)));
  assert.equal(seen.slice(0, resumed.length), resumed);
  assert.ok(seen.length === resumed.length || JSON.stringify(seen) === JSON.stringify([...resumed, ...resumed]), JSON.stringify(seen));
  const s = await f.stats();
  assert.is(s.errors.READDIR ?? 0, 0, JSON.stringify(s.errors));
})));

test('no mount point of this file is left mounted', () => {
  const left = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => mounts.includes(m));
  assert.equal(left, []);
});

test.run();
