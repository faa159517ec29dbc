// End-to-end: the passthrough's fast paths and cache options, through the CLI
// (`tsfuse passthrough SRC MNT -f -d -o WORDS` in a child process; its -d log, one
// line per request and reply, is how a test sees what reached the server):
//
// 1. kernel_passthrough: reads, writes and mmap of regular files go to the source
//    file in the kernel (no READ or WRITE in the log; OPEN/CREATE/FLUSH/RELEASE do
//    appear); overlapping opens of one inode (also through a hard link's name) share
//    one backing id, which is let go after the last RELEASE (an unlinked file's space is
//    freed); with writeback_cache it is refused with one line.
// 2. writeback_cache: negotiated in INIT; O_WRONLY partial-page writes, O_APPEND
//    appenders, a write-only (0200) file of a non-root user.
// 3. keep_cache (default) / nokeep_cache: an unchanged file keeps its pages across
//    opens (no READ the second time); a file changed on the source is read fresh.
// 4. negative_timeout: a missing name is cached (no second LOOKUP), and creating it
//    through the mount works; without it each stat sends a LOOKUP answered ENOENT.
// 5. entry_timeout/attr_timeout/timeout accepted (and taking effect); bad values and
//    passthrough-only words for memfs/hello exit 2 naming the option.
// 6. READDIR's fast path (names copied from getdents records): 5,000 names, most not
//    UTF-8, list byte for byte as on the source (ext4 with 64-bit hash cookies, and
//    tmpfs), concurrent listings too; lstat of every entry gives the source's inodes.
// 7. Creations (files, directories, symlinks, O_TMPFILE) by a non-root user (own
//    group, a supplementary group), by root and by root with another group, under umasks
//    022, 077 and 0, with the server's umask 022 and 077 (the calling-thread and the
//    helper-thread paths): owner, group and mode as on a local filesystem (setgid
//    directory, default ACL), on the source and as the mount reports them.
//
// Every client runs in a child process (node -e, cat, cmp, dd, ls, stat); this process
// only reads and writes the SOURCE directly. Nothing is timed: waits are for events
// (a log line, a RELEASE) with generous deadlines. A check that something stayed cached
// (no READ, no LOOKUP) is repeated if anyone on the machine dropped the caches meanwhile
// (/proc/vmstat counts drop_caches). Every mount is unmounted (lazily if busy) and every
// user and group made here is deleted, whatever happens.
//
// Three tests guard bugs these tests found and that were fixed (regression()): a CREATE
// of a name the kernel believed missing but whose inode had a backing id, a write-only file
// under the writeback cache, and keep_cache after a change behind the mount.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DIST, REPO, WAIT_MS, mountsAt, mountsBelow, poll, run, tempDir, timed, type Ran } from './helpers.js';

const CLI = join(DIST, 'src/cli/main.js');
const ADDON = join(REPO, 'build/Release/tsfuse.node');
const MiB = 1 << 20;
const bases: string[] = [];

// ---- regressions -----------------------------------------------------------------------

/** The assertions guarding a fixed bug: a failure names the bug. */
async function regression(what: string, check: () => Promise<void> | void): Promise<void> {
  try {
    await check();
  } catch (e) {
    if (e instanceof assert.Assertion) e.message = `regression of "${what}": ${e.message}`;
    throw e;
  }
}

// ---- users and groups made for the non-root tests --------------------------------------

interface User { user: string; uid: number; gid: number; group2: string; gid2: number }
let madeUser: User | undefined;
const undo: string[][] = [];

/** One user with its own primary group and one supplementary group (made once, removed at the end). */
function testUser(): User {
  if (madeUser) return madeUser;
  const tag = `tsfp${process.pid}`;
  const [g1, g2, user] = [`${tag}a`, `${tag}b`, `${tag}u`];
  execFileSync('groupadd', [g1]);
  undo.push(['groupdel', g1]);
  execFileSync('groupadd', [g2]);
  undo.push(['groupdel', g2]);
  execFileSync('useradd', ['-M', '-N', '-g', g1, '-G', g2, '-s', '/usr/sbin/nologin', user]);
  undo.unshift(['userdel', user]); // before its groups
  const num = (cmd: string, args: string[]) => Number(execFileSync(cmd, args, { encoding: 'utf8' }).trim().split(':')[2] ?? 'x');
  madeUser = {
    user, uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim()), gid: num('getent', ['group', g1]), group2: g2, gid2: num('getent', ['group', g2]),
  };
  assert.ok(Number.isInteger(madeUser.uid) && Number.isInteger(madeUser.gid) && Number.isInteger(madeUser.gid2), `ids of ${user}: ${JSON.stringify(madeUser)}`);
  return madeUser;
}
function removeUsers(): void {
  while (undo.length) {
    const [cmd, ...args] = undo.shift()!;
    try { execFileSync(cmd, args, { stdio: 'ignore' }); } catch { /* gone already */ }
  }
  madeUser = undefined;
}
process.on('exit', removeUsers);

// ---- the server: the CLI in a child process ----------------------------------------------

interface Env {
  base: string; src: string; mnt: string;
  server: ChildProcess;
  /** The server's stderr so far (the -d log). */
  log(): string;
  /** A position in the log (see since()). */
  mark(): number;
  /** The log after `mark`. */
  since(mark: number): string;
  /** Afterwards log() holds every request the kernel sent for client calls that returned before it. */
  barrier(): Promise<void>;
}

interface MountHow {
  /** -o words (without -o), or none. */
  words?: string;
  /** The source is its own filesystem: a tmpfs, or a loop-mounted ext4 image. */
  fs?: 'tmpfs' | 'ext4';
  /** The server's umask (default: this process's). */
  umask?: number;
  /** Called with SRC before the server starts. */
  setup?: (src: string) => void;
}

let barriers = 0;

/** A fresh base/{src,mnt} (0755), served by `tsfuse passthrough SRC MNT -f -d [-o words]`;
 * stopped, unmounted and removed afterwards. */
async function withMount(how: MountHow, fn: (e: Env) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-fp-');
  bases.push(base);
  chmodSync(base, 0o755);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src, { mode: 0o755 });
  mkdirSync(mnt, { mode: 0o755 });
  let srcMounted = false;
  let server: ChildProcess | undefined;
  try {
    if (how.fs === 'tmpfs') {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m,mode=0755', 'tsfuse-test-fp', src]);
      srcMounted = true;
    } else if (how.fs === 'ext4') {
      const img = join(base, 'ext4.img');
      execFileSync('truncate', ['-s', '128M', img]);
      execFileSync('mkfs.ext4', ['-q', '-F', '-N', '32768', img]);
      execFileSync('mount', ['-o', 'loop', img, src]);
      srcMounted = true;
      chmodSync(src, 0o755);
    }
    how.setup?.(src);
    const args = [CLI, 'passthrough', src, mnt, '-f', '-d', ...(how.words ? ['-o', how.words] : [])];
    server = how.umask === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/bin/sh', ['-c', `umask ${how.umask.toString(8).padStart(3, '0')} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    server.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const s = server;
    const up = await poll(() => out.includes('mounted') || s.exitCode !== null || s.signalCode !== null, WAIT_MS, 10);
    assert.ok(up && out.includes('mounted'), `the server did not say "mounted" (exit ${s.exitCode ?? s.signalCode}); stdout ${out}; stderr ${err.slice(-2000)}`);
    const e: Env = {
      base, src, mnt, server: s,
      log: () => err,
      mark: () => err.length,
      since: (m) => err.slice(m),
      async barrier() {
        const name = `.barrier-${++barriers}`;
        const r = await run('stat', [join(mnt, name)], WAIT_MS);
        assert.ok(r.code !== 0, `barrier ${name} exists?`);
        assert.ok(await poll(() => err.includes(`"${name}"`), WAIT_MS, 10), `the LOOKUP of ${name} is not in the log`);
      },
    };
    await fn(e);
  } finally {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM'); // -f: unmounts (lazily when busy) and exits
      const t = setTimeout(() => server!.kill('SIGKILL'), WAIT_MS);
      await exited;
      clearTimeout(t);
    }
    for (let i = 0; i < 8 && mountsAt(mnt).length; i++) {
      try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); } catch { break; }
    }
    if (srcMounted) {
      try { execFileSync('umount', [src], { stdio: 'ignore' }); } catch { try { execFileSync('umount', ['-l', src], { stdio: 'ignore' }); } catch { /* reported below */ } }
    }
    if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
  }
}

// ---- reading the -d log ---------------------------------------------------------------

/** The request lines of opcode `op` ("→ 24 OPEN node=3 …") in `log`, barrier lookups left out. */
function requests(log: string, op: string): string[] {
  const re = new RegExp(`→ \\d+ ${op} node=`);
  return log.split('\n').filter((l) => re.test(l) && !l.includes('".barrier-'));
}
const count = (log: string, op: string) => requests(log, op).length;
/** Replies that say the server failed in a way no test here provokes. */
function badReplies(log: string): string[] {
  return log.split('\n').filter((l) => /← \d+ \w+ (EIO|EBADF|EBUSY|EINVAL|EFAULT|ERANGE|EOVERFLOW)\b/.test(l) || / failed: /.test(l));
}
function assertClean(e: Env, what = ''): void {
  const bad = badReplies(e.log());
  assert.equal(bad, [], `${what}server replies that say it failed: ${bad.slice(0, 5).join(' | ')}`);
}
/** The flags of the -d log's INIT line. */
function initFlags(e: Env): string[] {
  const l = e.log().split('\n').find((x) => x.includes('INIT:') && x.includes('flags'));
  assert.ok(l, `no INIT line in the log: ${e.log().slice(0, 1000)}`);
  return l!.slice(l!.indexOf('flags ') + 6).trim().split('|');
}

// ---- clients: children -------------------------------------------------------------------

const PRELUDE = String.raw`
const fs = require('fs'), crypto = require('crypto'), C = fs.constants;
const a = process.argv.slice(1);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const err = (f) => { try { f(); return null; } catch (e) { return e.code || String(e); } };
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hex = (h) => Buffer.from(h, 'hex');
// The whole file through read(2) alone (no fstat: the kernel's idea of the size is not asked for).
function readAll(p) {
  const fd = fs.openSync(p, 'r');
  const chunks = [];
  for (let pos = 0;;) {
    const b = Buffer.alloc(256 * 1024);
    const n = fs.readSync(fd, b, 0, b.length, pos);
    if (n === 0) break;
    chunks.push(b.subarray(0, n));
    pos += n;
  }
  fs.closeSync(fd);
  return Buffer.concat(chunks);
}
`;

interface As { user: string; uid: number; gid: number }

/** Runs CommonJS `body` in a child node (as `as`, with that user's groups, if given; under
 * `umask` if given); its last line of output is JSON. */
async function client<T = any>(body: string, args: string[] = [], opts: { as?: As; umask?: number; ms?: number } = {}): Promise<T> {
  const who = opts.as
    ? `process.initgroups(${JSON.stringify(opts.as.user)}, ${opts.as.gid}); process.setgid(${opts.as.gid}); process.setuid(${opts.as.uid});\n`
    : '';
  const mask = opts.umask === undefined ? '' : `process.umask(${opts.umask});\n`;
  const r = await run(process.execPath, ['-e', `${PRELUDE}${who}${mask}${body}`, '--', ...args], opts.ms ?? WAIT_MS);
  if (r.code !== 0) throw new Error(`client node exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  const last = r.stdout.trim().split('\n').pop()!;
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`client node printed no JSON: ${r.stdout} ${r.stderr}`);
  }
}

/** A command's raw stdout (names are bytes: no decoding). */
function runRaw(cmd: string, args: string[], ms = WAIT_MS): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => chunks.push(d));
    child.stderr!.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout: Buffer.concat(chunks), stderr }); });
  });
}

async function must(cmd: string, args: string[], ms = WAIT_MS): Promise<Ran> {
  const r = await run(cmd, args, ms);
  assert.is(r.code, 0, `${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}; ${r.stderr.trim()}`);
  return r;
}

/** echo 3 > /proc/sys/vm/drop_caches, from a child. */
const dropCaches = () => must('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Waits until `path` on the source holds exactly `want` (a write-back may land after close). */
async function sourceBecomes(path: string, want: Buffer, what: string): Promise<void> {
  let last: Buffer | undefined;
  const ok = await poll(() => {
    try { last = readFileSync(path); } catch { return false; }
    return last.equals(want);
  }, WAIT_MS, 20);
  if (!ok) {
    const first = last ? [...want].findIndex((b, i) => last![i] !== b) : -1;
    assert.unreachable(`${what}: the source holds ${last?.length} bytes (first difference at ${first}), want ${want.length}`);
  }
}

/** drop_caches so far on this machine, by anyone (/proc/vmstat): another test run may drop
 * the caches at any moment, which would make a cached page or entry be asked for again. */
function drops(): number {
  const v = readFileSync('/proc/vmstat', 'utf8');
  return ['drop_pagecache', 'drop_slab'].reduce((n, k) => n + Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(v)?.[1] ?? 0), 0);
}

/** Runs `round` (which primes a cache and measures what stayed cached) until a round ran with
 * no drop_caches anywhere meanwhile (at most 10 rounds); returns that round's result. */
async function undisturbed<T>(round: (n: number) => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    const before = drops();
    const r = await round(n);
    if (drops() === before || n >= 9) return r;
    console.log(`  (caches were dropped during round ${n}: again)`);
  }
}

/** Whether the log says the kernel offers no FUSE_PASSTHROUGH at all (then those tests are skipped). */
function noKernelPassthrough(e: Env): boolean {
  if (!/offers no FUSE_PASSTHROUGH/.test(e.log())) return false;
  console.log('  skipped: this kernel offers no FUSE_PASSTHROUGH');
  return true;
}

// ---- 1. kernel passthrough ----------------------------------------------------------------

test('kernel_passthrough: several MiB read (after drop_caches) and written (CREATE, O_WRONLY at an odd offset) through the mount equal the source; no READ or WRITE reaches the server, OPEN/CREATE/FLUSH/RELEASE do', timed(180_000, () =>
  withMount({ words: 'kernel_passthrough' }, async (e) => {
    if (noKernelPassthrough(e)) return;
    const big = randomBytes(5 * MiB + 4321);
    writeFileSync(join(e.src, 'big'), big);
    const payload = randomBytes(4 * MiB + 777);
    writeFileSync(join(e.base, 'payload'), payload);
    const patch = randomBytes(MiB + 3);
    writeFileSync(join(e.base, 'patch'), patch);
    await poll(() => e.log().includes('INIT:'), WAIT_MS, 10);
    assert.ok(initFlags(e).includes('PASSTHROUGH'), `INIT flags: ${initFlags(e).join('|')}`);

    await dropCaches();
    await must('cmp', [join(e.mnt, 'big'), join(e.src, 'big')]);
    const r = await client<{ sha: string; n: number }>(`const b = readAll(a[0]); out({ sha: sha(b), n: b.length });`, [join(e.mnt, 'big')]);
    assert.equal(r, { sha: sha(big), n: big.length }, 'read(2) through the mount');

    await must('dd', [`if=${join(e.base, 'payload')}`, `of=${join(e.mnt, 'new')}`, 'bs=1M', 'conv=fsync', 'status=none']);
    await must('dd', [`if=${join(e.base, 'patch')}`, `of=${join(e.mnt, 'big')}`, 'bs=64K', 'oflag=seek_bytes', 'seek=1234567', 'conv=notrunc,fsync', 'status=none']);
    const want = Buffer.from(big);
    patch.copy(want, 1234567);
    assert.ok(readFileSync(join(e.src, 'new')).equals(payload), 'the created file on the source');
    assert.ok(readFileSync(join(e.src, 'big')).equals(want), 'the patched file on the source');
    await dropCaches();
    await must('cmp', [join(e.mnt, 'new'), join(e.base, 'payload')]);
    await must('cmp', [join(e.mnt, 'big'), join(e.src, 'big')]);

    await e.barrier();
    const opens = count(e.log(), 'OPEN') + count(e.log(), 'CREATE');
    assert.ok(await poll(() => count(e.log(), 'RELEASE') >= opens, WAIT_MS, 20), `${count(e.log(), 'RELEASE')} RELEASEs for ${opens} opens`);
    const log = e.log();
    assert.equal(requests(log, 'READ'), [], 'no READ reached the server');
    assert.equal(requests(log, 'WRITE'), [], 'no WRITE reached the server');
    for (const op of ['OPEN', 'CREATE', 'FLUSH', 'RELEASE']) assert.ok(count(log, op) > 0, `no ${op} in the log`);
    assert.not.match(log, /kernel passthrough refused|cannot be had/, 'no refusal');
    assertClean(e);
  })));

test('kernel_passthrough: overlapping opens of one file (reader, writer, read-write through a hard link\'s name) all work and see each other\'s writes; open/close cycles and chains of overlapping opens keep working', timed(180_000, () =>
  withMount({ words: 'kernel_passthrough' }, async (e) => {
    if (noKernelPassthrough(e)) return;
    const orig = randomBytes(MiB + 5);
    writeFileSync(join(e.src, 'f'), orig);
    linkSync(join(e.src, 'f'), join(e.src, 'f-link'));
    const r = await client(`
      const [p, q] = a;
      const res = {};
      const rd = fs.openSync(p, 'r');
      const wr = fs.openSync(p, C.O_WRONLY);
      const rw = fs.openSync(q, C.O_RDWR); // the same inode through its other name
      fs.writeSync(wr, Buffer.from('WRITER'), 0, 6, 4097);
      const b = Buffer.alloc(6);
      fs.readSync(rd, b, 0, 6, 4097);
      res.readerSeesWriter = b.toString();
      fs.writeSync(rw, Buffer.from('LINK'), 0, 4, 100000);
      fs.readSync(rd, b, 0, 4, 100000);
      res.readerSeesLink = b.subarray(0, 4).toString();
      fs.readSync(rw, b, 0, 6, 4097);
      res.linkSeesWriter = b.toString();
      fs.closeSync(wr);
      const rd2 = fs.openSync(q, 'r');
      fs.readSync(rd2, b, 0, 4, 100000);
      res.newOpenWhileOthersOpen = b.subarray(0, 4).toString();
      fs.closeSync(rd2); fs.closeSync(rd); fs.closeSync(rw);
      res.cycles = [];
      for (let i = 0; i < 40; i++) {
        res.cycles.push(err(() => {
          const fd = fs.openSync(i % 2 ? p : q, i % 3 ? 'r' : 'r+');
          const one = Buffer.alloc(1);
          if (fs.readSync(fd, one, 0, 1, i) !== 1) throw new Error('short read');
          fs.closeSync(fd);
        }));
      }
      res.chains = [];
      for (let i = 0; i < 20; i++) {
        res.chains.push(err(() => {
          const A = fs.openSync(p, 'r');
          const B = fs.openSync(q, 'r+');
          fs.closeSync(A);
          const Cc = fs.openSync(p, 'r');
          fs.writeSync(B, Buffer.from([i]), 0, 1, 200000 + i);
          const one = Buffer.alloc(1);
          fs.readSync(Cc, one, 0, 1, 200000 + i);
          if (one[0] !== i) throw new Error('C does not see B write ' + i);
          fs.closeSync(B);
          fs.closeSync(Cc);
        }));
      }
      res.sha = sha(readAll(p));
      out(res);
    `, [join(e.mnt, 'f'), join(e.mnt, 'f-link')]);
    assert.is(r.readerSeesWriter, 'WRITER');
    assert.is(r.readerSeesLink, 'LINK');
    assert.is(r.linkSeesWriter, 'WRITER');
    assert.is(r.newOpenWhileOthersOpen, 'LINK');
    assert.equal(r.cycles, Array(40).fill(null), 'open/read/close cycles');
    assert.equal(r.chains, Array(20).fill(null), 'chains of overlapping opens');
    const want = Buffer.from(orig);
    want.write('WRITER', 4097);
    want.write('LINK', 100000);
    for (let i = 0; i < 20; i++) want[200000 + i] = i;
    assert.ok(readFileSync(join(e.src, 'f')).equals(want), 'the source holds every write');
    assert.is(r.sha, sha(want), 'read back through the mount');
    await e.barrier();
    assert.ok(count(e.log(), 'OPEN') >= 4 + 40 + 60, `${count(e.log(), 'OPEN')} OPENs`);
    assert.equal(requests(e.log(), 'READ'), [], 'no READ reached the server');
    assert.equal(requests(e.log(), 'WRITE'), [], 'no WRITE reached the server');
    assertClean(e);
  })));

test('kernel_passthrough: the backing file is let go after the last RELEASE: 32 MiB files on a tmpfs source (one created through the mount), opened overlapping, closed and unlinked through the mount, free their space once the kernel forgot them', timed(120_000, () =>
  withMount({ words: 'kernel_passthrough', fs: 'tmpfs' }, async (e) => {
    if (noKernelPassthrough(e)) return;
    const used = () => { const s = statfsSync(e.src); return (s.blocks - s.bfree) * s.bsize; };
    const base = used();
    writeFileSync(join(e.src, 'big'), randomBytes(32 * MiB));
    writeFileSync(join(e.base, 'payload'), randomBytes(32 * MiB));
    await must('dd', [`if=${join(e.base, 'payload')}`, `of=${join(e.mnt, 'made')}`, 'bs=1M', 'status=none']);
    assert.ok(used() - base >= 64 * MiB, `the source holds the two files: ${used() - base} bytes`);
    const r = await client(`
      const res = [];
      for (const p of a) {
        res.push(err(() => {
          const A = fs.openSync(p, 'r'), B = fs.openSync(p, 'r+');
          fs.closeSync(A);
          const Cc = fs.openSync(p, 'r');
          const b = Buffer.alloc(4096);
          fs.readSync(Cc, b, 0, b.length, 12345);
          fs.writeSync(B, b, 0, 16, 0);
          fs.closeSync(B); fs.closeSync(Cc);
        }));
      }
      // made: opened while its creator still has it open
      res.push(err(() => {
        const W = fs.openSync(a[1] + '2', 'wx');
        fs.writeSync(W, Buffer.alloc(1 << 20, 1));
        const R = fs.openSync(a[1] + '2', 'r');
        fs.closeSync(W); fs.closeSync(R);
      }));
      for (const p of [...a, a[1] + '2']) fs.unlinkSync(p);
      out(res);
    `, [join(e.mnt, 'big'), join(e.mnt, 'made')]);
    assert.equal(r, [null, null, null]);
    await e.barrier();
    assert.ok(await poll(() => count(e.log(), 'RELEASE') >= count(e.log(), 'OPEN') + count(e.log(), 'CREATE'), WAIT_MS, 20), 'every open released');
    await dropCaches(); // FORGETs: the server closes its own fds of the unlinked files
    const freed = await poll(() => used() - base < 8 * MiB, WAIT_MS, 50);
    assert.ok(freed, `the unlinked files' space is still in use (${used() - base} bytes): a backing file was not closed`);
    assert.equal(requests(e.log(), 'READ'), [], 'no READ reached the server');
    assertClean(e);
  })));

test('kernel_passthrough: a shared mmap through the mount reads the source\'s bytes, and its stores land in the source file', timed(120_000, () =>
  withMount({ words: 'kernel_passthrough' }, async (e) => {
    if (noKernelPassthrough(e)) return;
    const orig = randomBytes(3 * 4096 + 100);
    writeFileSync(join(e.src, 'm'), orig);
    await dropCaches();
    const r = await client<{ sha: string }>(`
      const native = require(${JSON.stringify(ADDON)});
      const fd = fs.openSync(a[0], 'r+');
      const v = new Uint8Array(native.mapShared(fd, ${orig.length}));
      fs.closeSync(fd); // the mapping stays
      const seen = sha(v);
      v.set(Buffer.from('MAPPED'), 5000);
      v[${orig.length - 1}] = 0x42;
      out({ sha: seen });
    `, [join(e.mnt, 'm')]);
    assert.is(r.sha, sha(orig), 'the mapping holds the source\'s bytes');
    const want = Buffer.from(orig);
    want.write('MAPPED', 5000);
    want[orig.length - 1] = 0x42;
    await sourceBecomes(join(e.src, 'm'), want, 'stores through the mapping');
    await must('cmp', [join(e.mnt, 'm'), join(e.src, 'm')]);
    await e.barrier();
    assert.equal(requests(e.log(), 'READ'), [], 'no READ reached the server');
    assert.equal(requests(e.log(), 'WRITE'), [], 'no WRITE reached the server');
    assertClean(e);
  })));

test('kernel_passthrough,writeback_cache: the mount works, one line says kernel passthrough cannot be had with the writeback cache, and READ/WRITE reach the server', timed(120_000, () =>
  withMount({ words: 'kernel_passthrough,writeback_cache' }, async (e) => {
    const data = randomBytes(2 * MiB + 99);
    writeFileSync(join(e.base, 'data'), data);
    await poll(() => e.log().includes('INIT:'), WAIT_MS, 10);
    assert.ok(initFlags(e).includes('WRITEBACK_CACHE'), `INIT flags: ${initFlags(e).join('|')}`);
    assert.not.ok(initFlags(e).includes('PASSTHROUGH'), 'PASSTHROUGH not negotiated');
    await must('dd', [`if=${join(e.base, 'data')}`, `of=${join(e.mnt, 'w')}`, 'bs=1M', 'conv=fsync', 'status=none']);
    assert.ok(readFileSync(join(e.src, 'w')).equals(data), 'the written file on the source');
    await dropCaches();
    await must('cmp', [join(e.mnt, 'w'), join(e.base, 'data')]);
    await e.barrier();
    const lines = e.log().split('\n').filter((l) => /kernel passthrough cannot be had with the writeback cache/.test(l));
    assert.is(lines.length, 1, `lines saying so: ${JSON.stringify(lines)}`);
    assert.ok(count(e.log(), 'WRITE') > 0, 'WRITEs reached the server');
    assert.ok(count(e.log(), 'READ') > 0, 'READs reached the server');
    assertClean(e);
  })));

test('kernel_passthrough with a cached negative name: O_CREAT of it, once it became (on the source) a hard link of a file open through the mount, opens that file', timed(120_000, () =>
  withMount({ words: 'kernel_passthrough,negative_timeout=60' }, async (e) => {
    if (noKernelPassthrough(e)) return;
    writeFileSync(join(e.src, 'f'), 'original contents\n');
    const r = await client(`
      const [mf, mg, sf, sg] = a;
      const held = fs.openSync(mf, 'r'); // f open through the mount: its inode has a backing id
      const res = { neg: err(() => fs.lstatSync(mg)) }; // g: a cached negative entry
      fs.linkSync(sf, sg); // g appears on the source, as the same inode
      res.create = err(() => {
        const fd = fs.openSync(mg, C.O_WRONLY | C.O_CREAT);
        fs.writeSync(fd, Buffer.from('CREATED'), 0, 7, 0);
        fs.closeSync(fd);
      });
      const b = Buffer.alloc(7);
      fs.readSync(held, b, 0, 7, 0);
      res.heldSees = b.toString();
      fs.closeSync(held);
      out(res);
    `, [join(e.mnt, 'f'), join(e.mnt, 'g'), join(e.src, 'f'), join(e.src, 'g')]);
    assert.is(r.neg, 'ENOENT');
    await regression('CREATE of an existing inode that already has a backing id registers a second one: the kernel refuses it and the open fails with EIO', () => {
      assert.is(r.create, null, 'open(g, O_WRONLY|O_CREAT) through the mount');
      assert.is(r.heldSees, 'CREATED');
    });
    assert.equal(badReplies(e.log()).filter((l) => !/CREATE|RELEASE/.test(l)), [], 'no other failure');
  })));

// ---- 2. writeback cache ----------------------------------------------------------------------

/** [offset, bytes] writes; `applied` puts them on `base` (growing it, with a hole of zeros). */
function applied(base: Buffer, writes: [number, Buffer][]): Buffer {
  const end = Math.max(base.length, ...writes.map(([o, b]) => o + b.length));
  const out = Buffer.alloc(end);
  base.copy(out);
  for (const [o, b] of writes) b.copy(out, o);
  return out;
}
const WRITES_JS = `
  const fd = fs.openSync(a[0], C.O_WRONLY);
  for (const [o, h] of JSON.parse(a[1])) { const b = hex(h); if (fs.writeSync(fd, b, 0, b.length, o) !== b.length) throw new Error('short write'); }
  fs.closeSync(fd);
  out(sha(readAll(a[0])));
`;
const writesArg = (w: [number, Buffer][]) => JSON.stringify(w.map(([o, b]) => [o, b.toString('hex')]));

test('writeback_cache: INIT negotiates WRITEBACK_CACHE; O_WRONLY partial-page writes at odd offsets (and past EOF) end up on the source byte for byte', timed(120_000, () =>
  withMount({ words: 'writeback_cache' }, async (e) => {
    await poll(() => e.log().includes('INIT:'), WAIT_MS, 10);
    assert.ok(initFlags(e).includes('WRITEBACK_CACHE'), `INIT flags: ${initFlags(e).join('|')}`);
    const orig = randomBytes(20000);
    writeFileSync(join(e.src, 'f'), orig);
    const writes: [number, Buffer][] = [
      [1, Buffer.from('a')], [4095, Buffer.from('bc')], [9000, randomBytes(300)], [12287, randomBytes(4098)], [19998, Buffer.from('tail-01')], [24577, Buffer.from('xyz')],
    ];
    const want = applied(orig, writes);
    const seen = await client<string>(WRITES_JS, [join(e.mnt, 'f'), writesArg(writes)]);
    await sourceBecomes(join(e.src, 'f'), want, 'O_WRONLY partial-page writes');
    assert.is(seen, sha(want), 'read back through the mount (page cache)');
    await dropCaches();
    assert.is(await client<string>('out(sha(readAll(a[0])))', [join(e.mnt, 'f')]), sha(want), 'read back through the mount after drop_caches');
    await e.barrier();
    assert.ok(count(e.log(), 'WRITE') > 0, 'WRITEs reached the server');
    assertClean(e);
  })));

test('writeback_cache: O_APPEND writes of appenders one after the other land at the end, in order (an existing and a new file)', timed(120_000, () =>
  withMount({ words: 'writeback_cache' }, async (e) => {
    writeFileSync(join(e.src, 'log'), 'start\n');
    const append = (p: string, ...lines: string[]) => client(`
      const fd = fs.openSync(a[0], 'a');
      for (const l of a.slice(1)) fs.writeSync(fd, l);
      fs.closeSync(fd);
      out(null);
    `, [p, ...lines]);
    await append(join(e.mnt, 'log'), 'A1\n', 'A2 a longer line\n');
    await append(join(e.mnt, 'log'), 'B1\n', 'B2\n');
    await must('sh', ['-c', `printf 'C1\\n' >> "$0"`, join(e.mnt, 'log')]);
    await append(join(e.mnt, 'log'), 'D'.repeat(5000) + '\n');
    const want = Buffer.from(`start\nA1\nA2 a longer line\nB1\nB2\nC1\n${'D'.repeat(5000)}\n`);
    await sourceBecomes(join(e.src, 'log'), want, 'appends to an existing file');
    await append(join(e.mnt, 'new'), 'n1\n');
    await append(join(e.mnt, 'new'), 'n2\n', 'n3\n');
    await sourceBecomes(join(e.src, 'new'), Buffer.from('n1\nn2\nn3\n'), 'appends to a new file');
    await dropCaches();
    assert.is(await client<string>('out(sha(readAll(a[0])))', [join(e.mnt, 'log')]), sha(want), 'read back through the mount');
    assertClean(e);
  })));

test('writeback_cache: a mode 0200 file (write-only to its non-root owner) opened O_WRONLY by that user and written at odd offsets', timed(120_000, () =>
  withMount({ words: 'writeback_cache' }, async (e) => {
    const u = testUser();
    const orig = randomBytes(20000);
    const p = join(e.src, 'wo');
    writeFileSync(p, orig);
    chownSync(p, u.uid, u.gid);
    chmodSync(p, 0o200);
    const writes: [number, Buffer][] = [[3, Buffer.from('HELLO')], [5001, randomBytes(10)], [8190, Buffer.from('edge')], [19990, randomBytes(20)]];
    const want = applied(orig, writes);
    const r = await client(`
      const res = { read: err(() => fs.openSync(a[0], 'r')) };
      res.write = err(() => {
        const fd = fs.openSync(a[0], C.O_WRONLY);
        for (const [o, h] of JSON.parse(a[1])) { const b = hex(h); fs.writeSync(fd, b, 0, b.length, o); }
        fs.closeSync(fd);
      });
      out(res);
    `, [join(e.mnt, 'wo'), writesArg(writes)], { as: u });
    assert.is(r.read, 'EACCES', 'the owner may not read it');
    await regression('writeback_cache + a file the caller may only write: the source is opened write-only, the kernel\'s READ to fill a partial page fails with EBADF, and so does the write(2)', async () => {
      assert.is(r.write, null, 'O_WRONLY open and writes by the owner');
      await sourceBecomes(p, want, 'writes to a write-only file');
      assertClean(e);
    });
    const s = lstatSync(p);
    assert.equal([s.mode & 0o7777, s.uid, s.gid], [0o200, u.uid, u.gid], 'mode and owner unchanged');
  })));

// ---- 3. keep_cache ---------------------------------------------------------------------------

/** Reads `file` through the mount (read(2) only) in a child; returns its sha and the READ requests it caused. */
async function readCounting(e: Env, file: string): Promise<{ sha: string; reads: number; opens: number }> {
  const m = e.mark();
  const s = await client<string>('out(sha(readAll(a[0])))', [join(e.mnt, file)]);
  await e.barrier();
  const w = e.since(m);
  return { sha: s, reads: count(w, 'READ'), opens: count(w, 'OPEN') };
}

test('keep_cache (default), attr_timeout=0: a second open+read of an unchanged file sends no READ; after changes on the source (new size; same size, new mtime) the new contents are read; after a write through the mount too', timed(120_000, () =>
  withMount({ words: 'attr_timeout=0' }, async (e) => {
    const p = join(e.src, 'k');
    let cur = randomBytes(300 * 1024 + 7);
    writeFileSync(p, cur);
    const r1 = await readCounting(e, 'k');
    assert.is(r1.sha, sha(cur), 'first read');
    assert.ok(r1.reads > 0, 'the first read reached the server');
    const r2 = await undisturbed(async (n) => {
      if (n) assert.is((await readCounting(e, 'k')).sha, sha(cur), 'first read again');
      return readCounting(e, 'k');
    });
    assert.is(r2.sha, sha(cur), 'second read');
    assert.is(r2.opens, 1, 'the second read opened the file');
    assert.is(r2.reads, 0, 'the second read came from the kept page cache');

    cur = randomBytes(400 * 1024 + 5); // a new size
    writeFileSync(p, cur);
    const size = await client<number>('out(fs.statSync(a[0]).size)', [join(e.mnt, 'k')]);
    assert.is(size, cur.length, 'stat through the mount sees the new size');
    const r3 = await readCounting(e, 'k');
    assert.is(r3.sha, sha(cur), 'a file grown on the source is read fresh');
    assert.ok(r3.reads > 0);
    const r4 = await undisturbed(async (n) => {
      if (n) assert.is((await readCounting(e, 'k')).sha, sha(cur));
      return readCounting(e, 'k');
    });
    assert.is(r4.sha, sha(cur));
    assert.is(r4.reads, 0, 'unchanged again: kept');

    cur = randomBytes(cur.length); // the same size, a new mtime
    writeFileSync(p, cur);
    utimesSync(p, 1_000_000, 1_000_000);
    const r5 = await readCounting(e, 'k');
    assert.is(r5.sha, sha(cur), 'same size, new mtime: read fresh');

    await client(`const fd = fs.openSync(a[0], 'r+'); fs.writeSync(fd, Buffer.from('THROUGH THE MOUNT'), 0, 17, 1000); fs.closeSync(fd); out(null);`, [join(e.mnt, 'k')]);
    cur.write('THROUGH THE MOUNT', 1000);
    assert.ok(readFileSync(p).equals(cur), 'the write is on the source');
    const r6 = await readCounting(e, 'k');
    assert.is(r6.sha, sha(cur), 'a write through the mount is seen by the next open');
    assertClean(e);
  })));

test('keep_cache with entries and attributes cached (timeout=60): a same-size change on the source with a new mtime is read fresh (the OPEN reply alone decides)', timed(120_000, () =>
  withMount({ words: 'timeout=60' }, async (e) => {
    const p = join(e.src, 'k');
    let cur = randomBytes(200 * 1024);
    writeFileSync(p, cur);
    const again = await undisturbed(async () => {
      assert.is((await readCounting(e, 'k')).sha, sha(cur));
      return readCounting(e, 'k');
    });
    assert.equal([again.sha, again.reads], [sha(cur), 0], 'unchanged: kept');
    cur = randomBytes(cur.length);
    writeFileSync(p, cur);
    utimesSync(p, 2_000_000, 2_000_000);
    const fresh = await readCounting(e, 'k');
    assert.is(fresh.sha, sha(cur), 'read fresh after the change');
    assert.ok(fresh.reads > 0, 'the pages were dropped: READs');
    assertClean(e);
  })));

test('keep_cache (timeout=60): a change on the source while a writer has the file open through the mount is read fresh after the writer closes', timed(120_000, () =>
  withMount({ words: 'timeout=60' }, async (e) => {
    const p = join(e.src, 'k');
    const { r, old, now } = await undisturbed(async (n) => {
      const old = randomBytes(100_000);
      writeFileSync(p, old);
      utimesSync(p, 3_000_000 + 2 * n, 3_000_000 + 2 * n);
      assert.is((await readCounting(e, 'k')).sha, sha(old));
      const now = randomBytes(old.length);
      writeFileSync(join(e.base, 'now'), now);
      await client(`
        const w = fs.openSync(a[0], C.O_WRONLY); // opened through the mount, nothing written
        fs.copyFileSync(a[2], a[1]);             // the source changes: same size, new contents
        fs.utimesSync(a[1], +a[3], +a[3]);       // and a new mtime
        fs.closeSync(w);
        out(null);
      `, [join(e.mnt, 'k'), p, join(e.base, 'now'), String(3_000_001 + 2 * n)]);
      return { r: await readCounting(e, 'k'), old, now };
    });
    await regression('a writable open\'s RELEASE records the source\'s size and mtime as "what the page cache holds" even when the change came from outside: the next OPEN gets keep_cache and stale pages are read', () => {
      assert.is(r.sha === sha(old) ? 'the old contents' : r.sha === sha(now) ? 'the new contents' : 'something else', 'the new contents', 'read through the mount');
    });
    assertClean(e);
  })));

test('nokeep_cache: every open reads the file from the server again', timed(120_000, () =>
  withMount({ words: 'nokeep_cache,attr_timeout=0' }, async (e) => {
    const cur = randomBytes(300 * 1024);
    writeFileSync(join(e.src, 'k'), cur);
    const r1 = await readCounting(e, 'k');
    const r2 = await readCounting(e, 'k');
    assert.equal([r1.sha, r2.sha], [sha(cur), sha(cur)]);
    assert.ok(r1.reads > 0 && r2.reads > 0, `READs: ${r1.reads}, then ${r2.reads}`);
    assertClean(e);
  })));

// ---- 4. negative entries ------------------------------------------------------------------------

/** The LOOKUP requests for `name` in `log` and the replies to them. */
function lookupsOf(log: string, name: string): { uniques: string[]; replies: string[] } {
  const uniques = log.split('\n').map((l) => new RegExp(`→ (\\d+) LOOKUP node=\\d+ ${JSON.stringify(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`).exec(l)?.[1])
    .filter((u): u is string => !!u);
  const replies = uniques.map((u) => log.split('\n').find((l) => l.startsWith(`tsfuse: ← ${u} LOOKUP`)) ?? `no reply to ${u}`);
  return { uniques, replies };
}

test('negative_timeout=60: a second stat of a missing name sends no LOOKUP; creating it through the mount (file, directory, rename onto it, symlink) works and stat finds it', timed(120_000, () =>
  withMount({ words: 'negative_timeout=60' }, async (e) => {
    writeFileSync(join(e.src, 'other'), 'other\n');
    const { r, missing, third, lookups } = await undisturbed(async (n) => {
      const missing = `missing${n}`;
      const m = e.mark();
      const r = await client(`
        const m = a[0];
        const res = { first: err(() => fs.lstatSync(m + '/' + a[1])), second: err(() => fs.lstatSync(m + '/' + a[1])) };
        for (const n of ['nd', 'nr', 'ns']) res['neg-' + n] = err(() => fs.lstatSync(m + '/' + n));
        out(res);
      `, [e.mnt, missing]);
      const third = await client('out(err(() => fs.statSync(a[0])))', [join(e.mnt, missing)]);
      await e.barrier();
      return { r, missing, third, lookups: lookupsOf(e.since(m), missing) };
    });
    assert.equal([r.first, r.second], ['ENOENT', 'ENOENT']);
    assert.is(third, 'ENOENT', 'a third stat, another process');
    assert.is(lookups.uniques.length, 1, `LOOKUPs of "${missing}": ${JSON.stringify(lookups)}`);
    const c = await client(`
      const m = a[0];
      const missing = a[1];
      const res = {};
      res.create = err(() => fs.writeFileSync(m + '/' + missing, 'made\\n', { flag: 'wx' }));
      res.statFile = err(() => { if (!fs.lstatSync(m + '/' + missing).isFile()) throw new Error('not a file'); });
      res.mkdir = err(() => fs.mkdirSync(m + '/nd'));
      res.statDir = err(() => { if (!fs.lstatSync(m + '/nd').isDirectory()) throw new Error('not a directory'); });
      res.rename = err(() => fs.renameSync(m + '/other', m + '/nr'));
      res.statRenamed = err(() => { if (fs.readFileSync(m + '/nr', 'utf8') !== 'other\\n') throw new Error('wrong contents'); });
      res.symlink = err(() => fs.symlinkSync(missing, m + '/ns'));
      res.readLink = err(() => { if (fs.readFileSync(m + '/ns', 'utf8') !== 'made\\n') throw new Error('wrong contents'); });
      res.oldName = err(() => fs.lstatSync(m + '/other'));
      out(res);
    `, [e.mnt, missing]);
    assert.equal(c, {
      create: null, statFile: null, mkdir: null, statDir: null, rename: null, statRenamed: null, symlink: null, readLink: null, oldName: 'ENOENT',
    });
    assert.is(readFileSync(join(e.src, missing), 'utf8'), 'made\n');
    assert.ok(lstatSync(join(e.src, 'nd')).isDirectory());
    assert.is(readFileSync(join(e.src, 'nr'), 'utf8'), 'other\n');
    assertClean(e);
  })));

test('negative_timeout default (0): each stat of a missing name sends a LOOKUP, answered ENOENT', timed(60_000, () =>
  withMount({}, async (e) => {
    const r = await client(`out([err(() => fs.lstatSync(a[0])), err(() => fs.lstatSync(a[0]))])`, [join(e.mnt, 'missing')]);
    assert.equal(r, ['ENOENT', 'ENOENT']);
    assert.is(await client('out(err(() => fs.statSync(a[0])))', [join(e.mnt, 'missing')]), 'ENOENT');
    await e.barrier();
    const l = lookupsOf(e.log(), 'missing');
    assert.is(l.uniques.length, 3, `LOOKUPs: ${JSON.stringify(l)}`);
    for (const reply of l.replies) assert.match(reply, /LOOKUP ENOENT$/);
    assertClean(e);
  })));

test('CACHE_SYMLINKS: INIT asks for it; a symlink read three times sends one READLINK; replaced on the source, the new target is read once the entry expires', timed(60_000, () =>
  withMount({ words: 'timeout=0.2' }, async (e) => {
    assert.match(e.log(), /INIT:.*CACHE_SYMLINKS/);
    const { w } = await undisturbed(async (n) => {
      const name = `l${n}`;
      symlinkSync('target-one', join(e.src, name));
      await e.barrier();
      const m = e.mark();
      const r = await client('out([fs.readlinkSync(a[0]), fs.readlinkSync(a[0]), fs.readlinkSync(a[0])])', [join(e.mnt, name)]);
      assert.equal(r, ['target-one', 'target-one', 'target-one']);
      await e.barrier();
      return { w: e.since(m), name };
    });
    assert.is(requests(w, 'READLINK').length, 1, `one READLINK: ${requests(w, 'READLINK').join('\n')}`);
    rmSync(join(e.src, 'l-new'), { force: true });
    symlinkSync('target-one', join(e.src, 'l-new'));
    assert.is(await client('out(fs.readlinkSync(a[0]))', [join(e.mnt, 'l-new')]), 'target-one');
    rmSync(join(e.src, 'l-new'));
    symlinkSync('target-two', join(e.src, 'l-new')); // another inode: a lookup finds it
    // Once the 0.2 s entry expires, a lookup finds the new inode (waited for, not timed).
    let seen = '';
    for (const until = Date.now() + WAIT_MS; Date.now() < until;) {
      seen = await client('out(fs.readlinkSync(a[0]))', [join(e.mnt, 'l-new')]) as string;
      if (seen === 'target-two') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.is(seen, 'target-two', 'the replaced symlink reads its new target');
    assertClean(e);
  })));

// ---- 5. the cache-time options, and bad -o words -------------------------------------------------

for (const words of ['timeout=60', 'entry_timeout=60,attr_timeout=60']) {
  test(`-o ${words}: a second stat of a file sends neither LOOKUP nor GETATTR (entries and attributes cached)`, timed(60_000, () =>
    withMount({ words }, async (e) => {
      const { w, name } = await undisturbed(async (n) => {
        const name = `e${n}`;
        writeFileSync(join(e.src, name), 'x\n');
        assert.is(await client('out(fs.lstatSync(a[0]).size)', [join(e.mnt, name)]), 2);
        await e.barrier();
        const m = e.mark();
        assert.is(await client('out(fs.lstatSync(a[0]).size)', [join(e.mnt, name)]), 2);
        await e.barrier();
        return { w: e.since(m), name };
      });
      assert.equal(lookupsOf(w, name).uniques, [], 'no LOOKUP');
      assert.equal(requests(w, 'GETATTR').filter((l) => !/node=1 /.test(l)), [], 'no GETATTR of the file');
      assertClean(e);
    })));
}

test('-o entry_timeout=0,attr_timeout=0: every stat sends a LOOKUP again; fractional seconds and negative_timeout with them are accepted', timed(60_000, async () => {
  await withMount({ words: 'entry_timeout=0,attr_timeout=0' }, async (e) => {
    writeFileSync(join(e.src, 'e'), 'x\n');
    assert.equal(await client('out([fs.lstatSync(a[0]).size, fs.lstatSync(a[0]).size])', [join(e.mnt, 'e')]), [2, 2]);
    await e.barrier();
    assert.is(lookupsOf(e.log(), 'e').uniques.length, 2, 'two LOOKUPs');
  });
  await withMount({ words: 'entry_timeout=0.25,attr_timeout=1.5,negative_timeout=0.5' }, async (e) => {
    writeFileSync(join(e.src, 'e'), 'x\n');
    assert.is(await client('out(fs.readFileSync(a[0], "utf8"))', [join(e.mnt, 'e')]), 'x\n');
  });
}));

test('bad -o values make the CLI exit 2 naming the option, and mount nothing', timed(180_000, async () => {
  const base = tempDir('tsfuse-test-fp-');
  bases.push(base);
  const [src, mnt] = [join(base, 'src'), join(base, 'mnt')];
  mkdirSync(src);
  mkdirSync(mnt);
  try {
    const cases: [string, string][] = [
      ['entry_timeout=abc', 'entry_timeout'], ['negative_timeout=-1', 'negative_timeout'], ['kernel_passthrough=1', 'kernel_passthrough'],
      ['attr_timeout=', 'attr_timeout'], ['entry_timeout', 'entry_timeout'], ['timeout=1h', 'timeout'], ['writeback_cache=yes', 'writeback_cache'],
      ['nokeep_cache=0', 'keep_cache'], ['ro,attr_timeout=x,nosuid', 'attr_timeout'],
    ];
    for (const [words, name] of cases) {
      const r = await run(process.execPath, [CLI, 'passthrough', src, mnt, '-f', '-o', words], 2 * WAIT_MS);
      assert.is(r.code, 2, `-o ${words}: exit ${r.code ?? r.signal}; stdout ${r.stdout}; stderr ${r.stderr}`);
      assert.ok(r.stderr.includes(name), `-o ${words}: the message names ${name}: ${r.stderr}`);
      assert.equal(mountsAt(mnt), [], `-o ${words}: nothing mounted`);
    }
  } finally {
    for (let i = 0; i < 8 && mountsAt(mnt).length; i++) { try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); } catch { break; } }
    if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
  }
}));

test('memfs/hello -o kernel_passthrough (writeback_cache, keep_cache, nokeep_cache): exit 2, "applies to the passthrough only"; memfs takes the cache times', timed(180_000, async () => {
  const base = tempDir('tsfuse-test-fp-');
  bases.push(base);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  let server: ChildProcess | undefined;
  try {
    for (const [cmd, word] of [['memfs', 'kernel_passthrough'], ['memfs', 'writeback_cache'], ['memfs', 'nokeep_cache'], ['hello', 'kernel_passthrough'], ['hello', 'keep_cache']]) {
      const r = await run(process.execPath, [CLI, cmd, mnt, '-f', '-o', `entry_timeout=1,${word}`], 2 * WAIT_MS);
      assert.is(r.code, 2, `${cmd} -o ${word}: exit ${r.code ?? r.signal}; stderr ${r.stderr}`);
      assert.ok(r.stderr.includes(word.replace(/^no/, '')) && /passthrough only/.test(r.stderr), `${cmd} -o ${word}: ${r.stderr}`);
      assert.equal(mountsAt(mnt), [], `${cmd} -o ${word}: nothing mounted`);
    }
    server = spawn(process.execPath, [CLI, 'memfs', mnt, '-f', '-o', 'entry_timeout=1,attr_timeout=0.5,negative_timeout=2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    server.stdout!.on('data', (d) => { out += d; });
    server.stderr!.on('data', (d) => { err += d; });
    const s = server;
    assert.ok(await poll(() => out.includes('mounted') || s.exitCode !== null, WAIT_MS, 10) && out.includes('mounted'), `memfs with cache times: ${out} ${err}`);
    assert.is(await client(`fs.writeFileSync(a[0], 'm'); out(fs.readFileSync(a[0], 'utf8'))`, [join(mnt, 'f')]), 'm');
  } finally {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      const t = setTimeout(() => server!.kill('SIGKILL'), WAIT_MS);
      await exited;
      clearTimeout(t);
    }
    for (let i = 0; i < 8 && mountsAt(mnt).length; i++) { try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); } catch { break; } }
    if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
  }
}));

// ---- 6. READDIR fast path: many names that are not UTF-8 ------------------------------------------

/** Names that are bytes, not text: invalid UTF-8 of every kind, the bytes of a lone
 * surrogate (what a lax decoder reads as tsfuse's own escapes), a BOM, 255-byte names,
 * a multi-byte character cut at the end; then `n` more, mostly not UTF-8, of varied lengths. */
function awkwardNames(n: number): Buffer[] {
  const special = [
    [0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xb3, 0xbf], [0xed, 0xb2, 0x80], [0xef, 0xbb, 0xbf, 0x61], [0xf4, 0x90, 0x80, 0x80],
    [0xf0, 0x9f, 0x98, 0x80], [0x01, 0x7f, 0x20, 0x5c], [0xc3, 0x28], [0xe2, 0x82], [0xfe, 0xff, 0xfe],
  ].map((b) => Buffer.from(b));
  special.push(Buffer.from('café'), Buffer.from('日本語'), Buffer.alloc(255, 0xfe), Buffer.from('é'.repeat(128)).subarray(0, 255), Buffer.from('a'.repeat(255)),
    Buffer.concat([Buffer.from('x'.repeat(252)), Buffer.from([0xe6, 0x97, 0xa5])]));
  for (let i = 0; i < n; i++) {
    const head = Buffer.from(`n${i}_`);
    const tail = Buffer.from([0x80 + (i % 128), 0xc0 + (i % 64), 0xff - (i % 50)]);
    const pad = i % 7 === 0 ? Buffer.alloc(Math.min(255 - head.length - tail.length, 40 + (i % 200)), 0x80 + (i % 120)) : Buffer.alloc(0);
    special.push(i % 11 === 0 ? Buffer.from(`plain-${i}`) : Buffer.concat([head, pad, tail]));
  }
  return special;
}

/** Makes `dir` (bytes path) with `names`: mostly files, every 97th a directory, every 89th a symlink. */
function populate(dir: Buffer, names: Buffer[]): void {
  mkdirSync(dir);
  names.forEach((nm, i) => {
    const p = Buffer.concat([dir, Buffer.from('/'), nm]);
    if (i % 97 === 5) mkdirSync(p);
    else if (i % 89 === 3) symlinkSync('target', p);
    else closeSync(openSync(p, 'wx'));
  });
}

/** The source's listing of `dir`: hex name → [ino, mode] (from lstat). */
function sourceListing(dir: Buffer): Map<string, [string, number]> {
  const m = new Map<string, [string, number]>();
  for (const nm of readdirSync(dir, { encoding: 'buffer' })) {
    const s = lstatSync(Buffer.concat([dir, Buffer.from('/'), nm]), { bigint: true });
    m.set(hexOf(nm), [s.ino.toString(), Number(s.mode)]);
  }
  return m;
}

const LIST_JS = `
  const d = hex(a[0]);
  const names = fs.readdirSync(d, { encoding: 'buffer' });
  const res = { names: names.map((n) => n.toString('hex')) };
  if (a[1] === 'stat') res.stat = names.map((n) => { const s = fs.lstatSync(Buffer.concat([d, Buffer.from('/'), n]), { bigint: true }); return [n.toString('hex'), s.ino.toString(), Number(s.mode)]; });
  out(res);
`;

/** `ls -f DIR` (and with -i) output, split into byte-string names (hex). */
async function lsNames(dir: Buffer, inodes = false): Promise<string[][]> {
  // The directory's own path is ASCII (only the names in it are not): it passes as text.
  const r = await runRaw('ls', [inodes ? '-fi' : '-f', dir.toString('latin1')]);
  assert.is(r.code, 0, `ls: ${r.stderr}`);
  const lines: Buffer[] = [];
  for (let at = 0; at < r.stdout.length;) {
    const nl = r.stdout.indexOf(0x0a, at);
    lines.push(r.stdout.subarray(at, nl < 0 ? r.stdout.length : nl));
    at = nl < 0 ? r.stdout.length : nl + 1;
  }
  return lines.map((l) => {
    if (!inodes) return [hexOf(l)];
    const s = l.toString('latin1');
    const m = /^\s*(\d+) /.exec(s)!;
    return [hexOf(l.subarray(m[0].length)), m[1]];
  });
}

for (const fsKind of ['ext4', 'tmpfs'] as const) {
  test(`READDIR on ${fsKind === 'ext4' ? 'an ext4 source (64-bit hash cookies)' : 'a tmpfs source'}: 5,000 names, most not UTF-8, list byte for byte as on the source (readdir as buffers, ls -f, ls -fi inodes), through plain READDIR; lstat of every entry (READDIRPLUS) gives the source's inode numbers and types`, timed(300_000, () =>
    withMount({ fs: fsKind, words: 'timeout=60' }, async (e) => {
      const names = awkwardNames(5000);
      assert.is(new Set(names.map(hexOf)).size, names.length, 'the names are distinct');
      const srcDir = Buffer.from(join(e.src, 'big'));
      populate(srcDir, names);
      const want = sourceListing(srcDir);
      assert.is(want.size, names.length);
      const mntDir = Buffer.from(join(e.mnt, 'big'));
      const wantNames = [...want.keys()].sort();

      const m = e.mark();
      const plain = await client<{ names: string[] }>(LIST_JS, [hexOf(mntDir)]);
      assert.is(plain.names.length, want.size, 'as many names as on the source');
      assert.equal([...plain.names].sort(), wantNames, 'readdir through the mount: the same byte strings');
      await e.barrier();
      assert.ok(count(e.since(m), 'READDIR') > 0, 'plain READDIR requests served part of the listing');

      const ls = (await lsNames(mntDir)).map((x) => x[0]).filter((h) => h !== '2e' && h !== '2e2e').sort();
      assert.equal(ls, wantNames, 'ls -f through the mount');
      const lsi = await lsNames(mntDir, true);
      const inoBad = lsi.filter(([h, ino]) => h !== '2e' && h !== '2e2e' && want.get(h)?.[0] !== ino);
      assert.equal(inoBad.slice(0, 5), [], `ls -fi: inode numbers differ from the source's for ${inoBad.length} names`);

      const withStat = await client<{ names: string[]; stat: [string, string, number][] }>(LIST_JS, [hexOf(mntDir), 'stat'], { ms: 2 * WAIT_MS });
      const statBad = withStat.stat.filter(([h, ino, mode]) => {
        const s = want.get(h);
        return !s || s[0] !== ino || s[1] !== mode;
      });
      assert.equal(statBad.slice(0, 5), [], `lstat through the mount differs from the source for ${statBad.length} names`);
      assert.is(withStat.stat.length, want.size);
      await e.barrier();
      assert.ok(count(e.log(), 'READDIRPLUS') > 0, 'READDIRPLUS requests too');
      assertClean(e);
    })));
}

test('READDIR: eight concurrent listings of two large directories (plain and with lstat) are each exact', timed(300_000, () =>
  withMount({ words: 'entry_timeout=0' }, async (e) => {
    const dirs = [Buffer.from(join(e.src, 'a')), Buffer.from(join(e.src, 'b'))];
    const all = awkwardNames(3000);
    populate(dirs[0], all.slice(0, 1500));
    populate(dirs[1], all.slice(1500));
    const want = dirs.map((d) => [...sourceListing(d).keys()].sort());
    for (let round = 0; round < 2; round++) {
      const jobs = [0, 1, 0, 1, 0, 1, 0, 1].map((i, k) =>
        client<{ names: string[] }>(LIST_JS, [hexOf(Buffer.from(join(e.mnt, i ? 'b' : 'a'))), k >= 6 ? 'stat' : ''], { ms: 2 * WAIT_MS }).then((r) => ({ i, r })));
      for (const { i, r } of await Promise.all(jobs)) {
        assert.is(r.names.length, want[i].length, `round ${round}: listing of ${i ? 'b' : 'a'}: count`);
        assert.equal([...r.names].sort(), want[i], `round ${round}: listing of ${i ? 'b' : 'a'}`);
      }
    }
    assertClean(e);
  })));

// ---- 7. creations by a non-root user: owner, group, mode under its umask --------------------------

/** A default ACL on `dir` (rwx for all), or why not. */
function defaultAcl(dir: string): string | null {
  try {
    execFileSync('setfacl', ['-d', '-m', 'u::rwx,g::rwx,o::rwx', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    return null;
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? err).trim();
  }
}

const CREATE_JS = `
  const [m, tag] = a;
  const res = {};
  const mk = (k, f) => { res[k] = err(f); };
  mk('pub/f666', () => fs.closeSync(fs.openSync(m + '/pub/f666-' + tag, 'wx', 0o666)));
  mk('pub/f640', () => fs.closeSync(fs.openSync(m + '/pub/f640-' + tag, 'wx', 0o640)));
  mk('pub/f600', () => fs.writeFileSync(m + '/pub/f600-' + tag, 'data', { mode: 0o600, flag: 'wx' }));
  mk('pub/again', () => fs.closeSync(fs.openSync(m + '/pub/f666-' + tag, 'wx', 0o666)));
  mk('pub/d777', () => fs.mkdirSync(m + '/pub/d777-' + tag, 0o777));
  mk('pub/d750', () => fs.mkdirSync(m + '/pub/d750-' + tag, 0o750));
  mk('pub/sub', () => fs.closeSync(fs.openSync(m + '/pub/d777-' + tag + '/inner', 'wx', 0o666)));
  mk('pub/link', () => fs.symlinkSync('f666-' + tag, m + '/pub/l-' + tag));
  mk('grp/f666', () => fs.closeSync(fs.openSync(m + '/grp/f666-' + tag, 'wx', 0o666)));
  mk('sgid/f666', () => fs.closeSync(fs.openSync(m + '/sgid/f666-' + tag, 'wx', 0o666)));
  mk('sgid/d777', () => fs.mkdirSync(m + '/sgid/d777-' + tag, 0o777));
  // O_TMPFILE (TMPFILE): an unnamed file; its owner and mode as fstat sees them through the mount.
  res.tmpfile = err(() => {
    const fd = fs.openSync(m + '/pub', C.O_RDWR | 0o20000000 | C.O_DIRECTORY, 0o666);
    const s = fs.fstatSync(fd);
    res.tmp = [s.uid, s.gid, s.mode & 0o7777];
    fs.closeSync(fd);
  });
  if (a[2] === 'acl') {
    mk('acl/f666', () => fs.closeSync(fs.openSync(m + '/acl/f666-' + tag, 'wx', 0o666)));
    mk('acl/d777', () => fs.mkdirSync(m + '/acl/d777-' + tag, 0o777));
  }
  // What the mount says right after creating (the CREATE/MKDIR reply's attributes).
  res.seen = {};
  for (const k of Object.keys(res)) {
    if (k === 'seen' || k === 'tmp' || k === 'tmpfile' || k.endsWith('again') || res[k] !== null) continue;
    const [d, what] = k.split('/');
    const p = m + '/' + (what === 'sub' ? d + '/d777-' + tag + '/inner' : what === 'link' ? d + '/l-' + tag : d + '/' + what + '-' + tag);
    const s = fs.lstatSync(p);
    res.seen[k] = [s.uid, s.gid, s.mode & 0o7777];
  }
  out(res);
`;

for (const serverUmask of [0o022, 0o077]) {
  test(`creations by a non-root user (server umask ${serverUmask.toString(8).padStart(3, '0')}), client umasks 022, 077, 000, and by root: owner and group are the caller's (a supplementary group lets it into a group directory; a setgid directory gives its group), modes honour the umask (a default ACL overrides it)`, timed(180_000, async () => {
    const u = testUser();
    let acl: string | null = 'not tried';
    await withMount({
      umask: serverUmask,
      setup: (src) => {
        for (const [d, mode, gid] of [['pub', 0o1777, 0], ['grp', 0o770, u.gid2], ['sgid', 0o2777, u.gid2], ['acl', 0o777, 0]] as const) {
          mkdirSync(join(src, d));
          chownSync(join(src, d), 0, gid);
          chmodSync(join(src, d), mode);
        }
        acl = defaultAcl(join(src, 'acl'));
        if (acl) console.log(`  (no default-ACL case: setfacl: ${acl})`);
      },
    }, async (e) => {
      const callers: [string, As | undefined, number][] = [
        ['u022', u, 0o022], ['u077', u, 0o077], ['u000', u, 0], ['r077', undefined, 0o077], ['r000', undefined, 0], ['r022', undefined, 0o022],
        // root with another primary group: not the server's credentials, so they are switched
        ['rg077', { user: 'root', uid: 0, gid: u.gid2 }, 0o077], ['rg022', { user: 'root', uid: 0, gid: u.gid2 }, 0o022],
      ];
      for (const [tag, as, mask] of callers) {
        const r = await client<Record<string, any>>(CREATE_JS, [e.mnt, tag, acl ? '' : 'acl'], { as, umask: mask });
        const [uid, gid] = as ? [as.uid, as.gid] : [0, 0];
        const what = `${tag} (${as ? as.user : 'root'}, umask ${mask.toString(8).padStart(3, '0')})`;
        const expect: Record<string, [number, number, number]> = {
          'pub/f666': [uid, gid, 0o666 & ~mask], 'pub/f640': [uid, gid, 0o640 & ~mask], 'pub/f600': [uid, gid, 0o600 & ~mask],
          'pub/d777': [uid, gid, 0o777 & ~mask], 'pub/d750': [uid, gid, 0o750 & ~mask], 'pub/sub': [uid, gid, 0o666 & ~mask],
          'pub/link': [uid, gid, 0o777], 'grp/f666': [uid, gid, 0o666 & ~mask],
          'sgid/f666': [uid, u.gid2, 0o666 & ~mask], 'sgid/d777': [uid, u.gid2, 0o2000 | (0o777 & ~mask)],
        };
        if (!acl) Object.assign(expect, { 'acl/f666': [uid, gid, 0o666], 'acl/d777': [uid, gid, 0o777] });
        const errs = Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'seen' && k !== 'tmp'));
        assert.equal(errs, { ...Object.fromEntries(Object.keys(expect).map((k) => [k, null])), 'pub/again': 'EEXIST', tmpfile: null }, `${what}: errors`);
        assert.equal(r.tmp, [uid, gid, 0o666 & ~mask], `${what}: an O_TMPFILE file's uid, gid, mode`);
        for (const [k, [wu, wg, wm]] of Object.entries(expect)) {
          const [d, kind] = k.split('/');
          const p = kind === 'sub' ? join(e.src, d, `d777-${tag}`, 'inner') : kind === 'link' ? join(e.src, d, `l-${tag}`) : join(e.src, d, `${kind}-${tag}`);
          const s = lstatSync(p);
          const got = [s.uid, s.gid, s.mode & 0o7777];
          const fmt = (x: number[]) => `uid ${x[0]} gid ${x[1]} mode ${x[2].toString(8)}`;
          assert.is(fmt(got), fmt([wu, wg, wm]), `${what}: ${k} on the source`);
          assert.is(fmt(r.seen[k]), fmt(got), `${what}: ${k} through the mount right after creating`);
        }
      }
      assertClean(e);
    });
  }));
}

test.after(() => {
  removeUsers();
});

test('nothing of this file is still mounted, no user or group of it is left', () => {
  for (const b of bases) assert.equal(mountsBelow(b), [], `${b} still has mounts`);
  removeUsers();
  const tag = `tsfp${process.pid}`;
  assert.not.ok(readFileSync('/etc/passwd', 'utf8').includes(tag), 'user removed');
  assert.not.ok(readFileSync('/etc/group', 'utf8').includes(tag), 'groups removed');
});

test.run();
