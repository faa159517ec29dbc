// End-to-end: a directory of 1,000,000 entries lists exactly through the
// passthrough, in bounded server memory.
//
// The source is a tmpfs mounted by each test, holding one directory of
// 1,000,000 distinct empty files made by a small C program compiled here
// with cc (openat(O_CREAT|O_EXCL) + close in a loop: 5 s on an idle 2-CPU
// machine, 10 to 20 s on a busy one; a loop in a scripting language is
// several times slower, and hard links to one file would make every name one
// inode, which no real tree does). Every 1000th name is not UTF-8:
// "f<7 digits>" followed by a lone 0x80, by ED B2 80 (what a lax decoder
// reads as U+DC80, the very code point tsfuse uses for the lone byte 0x80),
// by FF, or by C3 28 — 1000 such names in all, each of which must come back
// as exactly its bytes and never collide with another.
//
// Clients are child processes (ls -U | wc -l, find, fs.opendir in a Node
// child of src/cli/as-user.ts), never this process: the server runs in
// test/fixtures/serve-passthrough.ts.
// Checked:
// - the count is exact (1,000,000; find also prints the directory itself);
// - the names are exactly the source's (sorted sha256 through the mount = on
//   the source), the 1000 that are not UTF-8 included;
// - the server's peak RSS growth during one `ls -U` stays below
//   MAX_GROWTH_MIB (VmHWM after minus VmRSS before, the peak reset through
//   /proc/PID/clear_refs first);
// - two handles listing at once (two processes, and one process stepping two
//   opendir handles in turn) both get every name once, the server's peak
//   RSS growth for the two processes again below MAX_GROWTH_MIB;
// - a listing while the source directory churns (a C loop creating and
//   removing other names) ends, and returns each name that existed
//   throughout exactly once (POSIX leaves only added or removed names
//   unspecified).
// Figures (times, RSS) go to the test log for the record; only the memory
// bound is asserted, never a duration.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, isMounted, poll, run, tempDir, timed } from './helpers.js';
import { bases, withPt, type Fixture } from './pt-helpers.js';
import { runAs } from '../src/cli/as-user.js';

const N = 1_000_000;
/** Names that are not UTF-8: every 1000th. */
const NON_UTF8 = N / 1000;
/**
 * The bound on the server's peak RSS growth while one client lists the
 * 1,000,000-entry directory once. A server that streams the listing holds, per
 * open directory handle, one getdents buffer and the reply being built (tens
 * of KiB); what it allocates per entry is garbage of the current batch, which
 * V8's young generation (a few 16 MiB semi-spaces) recycles. 96 MiB leaves
 * room for that and for the libuv pool threads. A server that reads the whole
 * directory at OPENDIR and keeps it per handle as JS objects (name string,
 * bigint ino, mode: some 180 bytes an entry) needs about 180 MiB here, and
 * 320 MiB for two handles at once — above the bound, as it should be.
 * Measured (2-CPU machine, kernel 6.18): the streaming server 28 MiB for one
 * listing, 31 MiB for two at once; the whole-listing server 180 and 320 MiB.
 */
const MAX_GROWTH_MIB = 96;
/** Listings take seconds; a time-out only catches a hang or an endless listing. */
const LIST_MS = 5 * 60_000;

// ---- the source -------------------------------------------------------------------------

/** mkentries DIR N: N distinct empty files in DIR; every 1000th name is not UTF-8 (four forms in turn). */
const MKENTRIES_C = String.raw`
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (dir < 0) { perror(argv[1]); return 1; }
  long n = atol(argv[2]);
  static const char *tails[] = { "\x80", "\xed\xb2\x80", "\xff", "\xc3\x28" };
  char name[64];
  for (long i = 0; i < n; i++) {
    int len = snprintf(name, sizeof name, "f%07ld", i);
    if (i % 1000 == 999) strcpy(name + len, tails[(i / 1000) % 4]);
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) { perror(name); return 1; }
    close(fd);
  }
  return 0;
}
`;

/** churn DIR: creates c<k> and removes c<k-500> in a loop (never reusing a name) until SIGTERM;
 * prints "CHURNING" once 500 names exist and "created C removed R" at the end. */
const CHURN_C = String.raw`
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }
int main(int argc, char **argv) {
  int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
  if (dir < 0) { perror(argv[1]); return 1; }
  signal(SIGTERM, on_term);
  char name[32];
  long created = 0, removed = 0;
  while (!stop) {
    snprintf(name, sizeof name, "c%ld", created);
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) { perror(name); return 1; }
    close(fd);
    if (++created == 500) { printf("CHURNING\n"); fflush(stdout); }
    if (created > 500) {
      snprintf(name, sizeof name, "c%ld", removed++);
      if (unlinkat(dir, name, 0) < 0) { perror(name); return 1; }
    }
  }
  printf("created %ld removed %ld\n", created, removed);
  return 0;
}
`;

/** Compiles `code` to `dir/name` with cc. */
function compile(dir: string, name: string, code: string): string {
  const c = join(dir, `${name}.c`);
  writeFileSync(c, code);
  execFileSync('cc', ['-O2', '-o', join(dir, name), c]);
  return join(dir, name);
}

interface Big { base: string; src: string; dir: string; tools: string }

/** Every source base made here (the last test checks none is still mounted). */
const sources: string[] = [];

/**
 * A tmpfs with SRC/dir holding the N entries; unmounted and removed in finally.
 * Empty files use no tmpfs pages (size only caps accidents); nr_inodes must
 * exceed N (its default, half the RAM's pages, is machine-dependent).
 */
async function withBigSource(fn: (b: Big) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-bigdir-');
  sources.push(base);
  const src = join(base, 'src');
  const tools = join(base, 'tools');
  mkdirSync(src);
  mkdirSync(tools);
  let mounted = false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=1g,nr_inodes=${2 * N},mode=0755`, 'tsfuse-test-bigdir', src]);
    mounted = true;
    const dir = join(src, 'dir');
    mkdirSync(dir);
    const t0 = Date.now();
    const r = await run(compile(tools, 'mkentries', MKENTRIES_C), [dir, String(N)], 5 * 60_000);
    assert.is(r.code, 0, `mkentries: ${r.stderr}`);
    log(`made ${N} entries on the tmpfs in ${Date.now() - t0} ms`);
    await fn({ base, src, dir, tools });
  } finally {
    if (mounted) {
      // A plain umount may meet a passing reference (any process walking /tmp): retry,
      // then detach lazily (the tmpfs is freed once the last reference goes).
      if (!await poll(() => { try { execFileSync('umount', [src], { stdio: 'ignore' }); return true; } catch { return false; } }, 10_000, 200)) {
        execFileSync('umount', ['-l', src]);
      }
    }
    if (!isMounted(src)) cleanup(base);
  }
}

/** The passthrough over the big source, with the server's pid. */
function withBigPt(fn: (b: Big, mnt: string, fx: Fixture) => Promise<void>): Promise<void> {
  return withBigSource((b) => withPt({}, ({ mnt, fx }) => fn(b, mnt, fx), { src: b.src }));
}

// ---- clients and measurements ---------------------------------------------------------

const log = (s: string) => console.log(`  [bigdir] ${s}`);
const MiB = 1024 * 1024;

/** A /proc/PID/status field in bytes (VmRSS, VmHWM). */
function vm(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s*(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${field} of ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * Runs `work` and answers the server's peak RSS growth over it: the peak is
 * reset to the current RSS first (clear_refs 5, Linux 4.0), so the growth is
 * VmHWM after minus VmRSS before.
 */
async function peakGrowth<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; growth: number; before: number; ms: number }> {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = vm(pid, 'VmRSS');
  const t0 = process.hrtime.bigint();
  const result = await work();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { result, growth: vm(pid, 'VmHWM') - before, before, ms };
}

/** Runs a shell pipeline (args as $1…) in a child; its stdout, trimmed. */
async function sh(script: string, ...args: string[]): Promise<string> {
  const r = await run('sh', ['-c', script, 'sh', ...args], LIST_MS);
  assert.is(r.code, 0, `sh -c '${script}' exited ${r.code ?? r.signal}: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * What the bodies below get: `summary(names)` of names as latin1 strings (one char per byte,
 * so sorting them sorts the bytes): count, distinct, the sha256 of the sorted names each
 * followed by a NUL, and how many are not UTF-8.
 */
const PRELUDE = String.raw`
  const { createHash } = await import('node:crypto');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const summary = (names) => {
    const h = createHash('sha256');
    for (const n of [...names].sort()) h.update(n + '\0', 'latin1');
    let bad = 0;
    for (const n of names) {
      if (!/[\x80-\xff]/.test(n)) continue;
      try { utf8.decode(Buffer.from(n, 'latin1')); } catch { bad++; }
    }
    return { count: names.length, distinct: new Set(names).size, sha256: h.digest('hex'), nonUtf8: bad };
  };
`;

interface Summary { count: number; distinct: number; sha256: string; nonUtf8: number }

/** Runs the PRELUDE and `body` (an async function's text; `a` its arguments) in a Node child. */
function js<T>(body: string, ...args: unknown[]): Promise<T> {
  return runAs<T>(PRELUDE + body, args, {}, LIST_MS);
}

/** Every name in `dir` (readdir: one handle, read to the end). */
const listing = (dir: string) => js<Summary>("return summary(fs.readdirSync(a[0], { encoding: 'latin1' }));", dir);

// ---- tests ------------------------------------------------------------------------------

test(`a directory of ${N} entries lists exactly, the server's memory growing less than ${MAX_GROWTH_MIB} MiB`, timed(5 * 60_000, () =>
  withBigPt(async (_b, mnt, fx) => {
    const pid = fx.child.pid!;
    const d = join(mnt, 'dir');
    const ls = await peakGrowth(pid, () => sh('ls -U "$1" | wc -l', d));
    log(`ls -U | wc -l: ${ls.result} in ${ls.ms.toFixed(0)} ms; server VmRSS before ${(ls.before / MiB).toFixed(1)} MiB, peak growth ${(ls.growth / MiB).toFixed(1)} MiB (bound ${MAX_GROWTH_MIB} MiB)`);
    const find = await peakGrowth(pid, () => sh('find "$1" -maxdepth 1 | wc -l', d));
    log(`find -maxdepth 1 | wc -l: ${find.result} in ${find.ms.toFixed(0)} ms; peak growth ${(find.growth / MiB).toFixed(1)} MiB`);
    const scan = await peakGrowth(pid, () => js<number>('const d = fs.opendirSync(a[0]); let n = 0; while (d.readSync()) n++; d.closeSync(); return n;', d));
    log(`fs.opendir: ${scan.result} in ${scan.ms.toFixed(0)} ms; peak growth ${(scan.growth / MiB).toFixed(1)} MiB`);
    assert.is(ls.result, String(N), 'ls -U | wc -l');
    assert.is(find.result, String(N + 1), 'find -maxdepth 1 | wc -l (the directory itself, then every entry)');
    assert.is(scan.result, N, 'fs.opendir, read to the end');
    assert.ok(ls.growth < MAX_GROWTH_MIB * MiB, `server peak RSS grew ${(ls.growth / MiB).toFixed(1)} MiB during one listing (bound ${MAX_GROWTH_MIB} MiB)`);
  })));

test('names that are not UTF-8 come back as exactly their bytes, distinct', timed(5 * 60_000, () =>
  withBigPt(async (b, mnt) => {
    const d = join(mnt, 'dir');
    const [through, direct] = [await listing(d), await listing(b.dir)];
    log(`through the mount: ${JSON.stringify(through)}`);
    assert.equal(direct, { count: N, distinct: N, sha256: direct.sha256, nonUtf8: NON_UTF8 }, 'the source as made');
    assert.equal(through, direct, 'names through the mount = names on the source');
    // Each form is there under its exact bytes (a lookup by those bytes too), and no lossy twin is.
    const want: [string, Buffer][] = [
      ['f0000999\\x80', Buffer.from('f0000999\x80', 'latin1')],
      ['f0001999\\xed\\xb2\\x80', Buffer.from('f0001999\xed\xb2\x80', 'latin1')],
      ['f0002999\\xff', Buffer.from('f0002999\xff', 'latin1')],
      ['f0003999\\xc3(', Buffer.from('f0003999\xc3(', 'latin1')],
      ['no f0000999\\ufffd', Buffer.from('f0000999\ufffd')],
      ['no f0000999\\udc80 as UTF-8', Buffer.from('f0000999\xed\xb2\x80', 'latin1')],
    ];
    const found = await js<Record<string, boolean>>(`
      const [dir, want] = a;
      const names = new Set(fs.readdirSync(dir, { encoding: 'latin1' }));
      const lexists = (n) => { try { fs.lstatSync(Buffer.concat([Buffer.from(dir + '/'), n])); return true; } catch (e) { if (e.code !== 'ENOENT') throw e; return false; } };
      const out = {};
      for (const [k, n] of want) {
        const listed = names.has(n.toString('latin1'));
        out[k] = listed === !k.startsWith('no ') && lexists(n) === listed;
      }
      return out;`, d, want);
    assert.equal(found, Object.fromEntries(Object.keys(found).map((k) => [k, true])), 'each name by its bytes');
  })));

test('two handles listing the same big directory at once both get every name once', timed(5 * 60_000, () =>
  withBigPt(async (b, mnt, fx) => {
    const d = join(mnt, 'dir');
    const direct = await listing(b.dir);
    // Two processes at once.
    const two = await peakGrowth(fx.child.pid!, () => Promise.all([sh('ls -U "$1" | wc -l', d), sh('ls -U "$1" | wc -l', d)]));
    log(`two ls -U at once: ${two.result.join(', ')} in ${two.ms.toFixed(0)} ms; server peak growth ${(two.growth / MiB).toFixed(1)} MiB`);
    assert.equal(two.result, [String(N), String(N)], 'two ls -U | wc -l at once');
    // Bounded per handle: a second open handle adds a buffer, not a second listing.
    assert.ok(two.growth < MAX_GROWTH_MIB * MiB, `server peak RSS grew ${(two.growth / MiB).toFixed(1)} MiB during two listings at once (bound ${MAX_GROWTH_MIB} MiB)`);
    // One process, two open handles read in turn (each opendir is its own open directory).
    const turns = await js<{ x: Summary; y: Summary }>(`
      const out = [[], []], dirs = [fs.opendirSync(a[0], { encoding: 'latin1' }), fs.opendirSync(a[0], { encoding: 'latin1' })];
      const live = [true, true];
      while (live.some(Boolean)) {
        for (let i = 0; i < 2; i++) {
          if (!live[i]) continue;
          for (let k = 0; k < 1000; k++) {
            const e = dirs[i].readSync();
            if (e === null) { live[i] = false; dirs[i].closeSync(); break; }
            out[i].push(e.name);
          }
        }
      }
      return { x: summary(out[0]), y: summary(out[1]) };`, d);
    log(`two opendir handles in turn: ${turns.x.count} and ${turns.y.count} names`);
    assert.equal(turns.x, direct, 'first handle');
    assert.equal(turns.y, direct, 'second handle');
  })));

test('a listing while the source directory churns ends and returns each name that stayed exactly once', timed(5 * 60_000, () =>
  withBigPt(async (b, mnt) => {
    const direct = await listing(b.dir);
    const churn = spawn(compile(b.tools, 'churn', CHURN_C), [b.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    churn.stdout!.on('data', (x) => { out += x; });
    churn.stderr!.on('data', (x) => { err += x; });
    const ended = new Promise<number | null>((resolve) => churn.on('close', (code) => resolve(code)));
    try {
      const started = await Promise.race([
        new Promise<boolean>((resolve) => churn.stdout!.on('data', () => { if (out.includes('CHURNING')) resolve(true); })),
        ended.then(() => false),
      ]);
      assert.ok(started, `churn did not start: ${err}`);
      // Reads through the mount while names come and go; stops (and says so) past
      // 3 N names, which only a listing that never ends would reach.
      const seen = await js<{ looped: boolean; total: number; stable: Summary; churned: number; churnedDistinct: number }>(`
        const [dir, n] = a;
        const stable = [], churned = [], d = fs.opendirSync(dir, { encoding: 'latin1' });
        let looped = false;
        for (let e; (e = d.readSync()) !== null;) {
          (e.name.startsWith('c') ? churned : stable).push(e.name);
          if (stable.length + churned.length > 3 * n) { looped = true; break; }
        }
        d.closeSync();
        return { looped, total: stable.length + churned.length, stable: summary(stable), churned: churned.length, churnedDistinct: new Set(churned).size };`,
      join(mnt, 'dir'), N);
      churn.kill('SIGTERM');
      assert.is(await ended, 0, `churn: ${err}`);
      log(`listing during churn: ${seen.total} names (${seen.stable.count} that stayed, ${seen.churned} churned, ${seen.churnedDistinct} distinct); churn ${out.trim().split('\n').pop()}`);
      assert.not.ok(seen.looped, `the listing did not end: past ${3 * N} names`);
      assert.equal(seen.stable, direct, 'the names that existed throughout: each exactly once');
    } finally {
      if (churn.exitCode === null && churn.signalCode === null) churn.kill('SIGKILL');
      await ended;
    }
  })));

test('nothing is left mounted', () => {
  for (const b of bases) assert.not.ok(isMounted(join(b, 'mnt')), `${b}/mnt still mounted`);
  for (const b of sources) assert.not.ok(isMounted(join(b, 'src')), `${b}/src still mounted`);
});

test.run();
