// Threaded sessions: mount(mnt, fs, { threads: N, threadFileSystem: { module, export, arg } })
// serves one mount from N threads — this one and N-1 worker threads, each reading its own
// FUSE_DEV_IOC_CLONE of the session's /dev/fuse fd and answering from its own filesystem
// built from the module spec; the kernel hands each request to whichever thread reads it
// first. What is checked, end to end:
//   1. a stateless filesystem (test/fixtures/threads-fs.ts: 100 files on fixed node ids)
//      served by 3 threads to several client processes: both the main thread and an extra
//      thread answer LOOKUP/GETATTR/READ (their ServerStats say so), every byte read is
//      right and no client sees an error; with debug, each extra thread logs its own
//      requests prefixed "tsfuse[thread K]: " and the main thread "tsfuse: ".
//   2. unmount while idle (from the server, or from outside): the session ends, the worker
//      threads have exited before session.closed resolves (their tasks are gone from
//      /proc), threadStats() holds what each sent at the end, the process exits 0 and
//      nothing is left in /proc/mounts.
//   3. option errors: threads not a whole number 1…64 → EINVAL naming threads; threads > 1
//      without a threadFileSystem → EINVAL naming threadFileSystem; a threadFileSystem that
//      cannot load or lacks its export → the mount rejects naming the thread and the
//      module, nothing stays mounted, and nothing keeps the process alive.
//   4. the CLI: hello -o threads=2 (background, and -f -d); the refusals of passthrough and
//      memfs with threads=2 and of bad values (exit 2, the message names threads).
//   5. threads: 1 (and -o threads=1) is the same as no option: no worker, no second filesystem.
//
// Every server is another process (test/fixtures/serve-threads.ts or the CLI), and every
// access to a mount runs in a child process as well (the client fixture, cat, stat).
// Nothing is timed: each wait is for an event with a generous deadline. Every mount is
// unmounted (lazily if need be) and every process started here is killed in `finally`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DIST, WAIT_MS, alive, cleanup, forceUnmount, mountsAt, mountsBelow, poll, procsWith, run, sleep, startNode, stop, tempDir, timed, type Proc, type Ran,
} from './helpers.js';
import { FILES, fileData, fileName } from './fixtures/threads-fs.js';

const SERVER = 'test/fixtures/serve-threads.js';
const CLIENT = 'test/fixtures/threads-client.js';
const THREADS_FS = join(DIST, 'test/fixtures/threads-fs.js');
const THROWS = join(DIST, 'test/fixtures/threads-throws.js');
/** Has no default export (and does nothing when imported). */
const HELLO = join(DIST, 'examples/hello.js');
const CLI_REL = 'src/cli/main.js';
const CLI = join(DIST, CLI_REL);
/** How long the busy-clients tests wait for both kinds of thread to have answered. */
const SPREAD_MS = 60_000;

const bases: string[] = [];

// ---- an environment per test -----------------------------------------------------------

interface Env {
  base: string;
  mnt: string;
  /** Servers and clients started by the test: stopped (SIGTERM, then SIGKILL) in teardown. */
  procs: Proc[];
  /** Background servers (CLI): killed in teardown if still running. */
  pids: number[];
}

async function withEnv(fn: (e: Env) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-threads-');
  bases.push(base);
  const e: Env = { base, mnt: join(base, 'mnt'), procs: [], pids: [] };
  mkdirSync(e.mnt);
  try {
    await fn(e);
  } finally {
    // Clients first (they may hold the mount), then the servers.
    for (const p of [...e.procs].reverse()) await stop(p, 5_000).catch(() => {});
    for (const pid of e.pids) if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    for (const m of mountsBelow(base).reverse()) forceUnmount(m);
    for (const pid of procsWith(base)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    cleanup(base);
  }
}

// ---- the fixture server's lines ---------------------------------------------------------

/** The JSON values of the stdout lines "WORD {json}" of `p`, in order. */
function linesOf<T>(p: Proc, word: string): T[] {
  return p.stdout().split('\n').filter((l) => l.startsWith(`${word} `)).map((l) => JSON.parse(l.slice(word.length + 1)) as T);
}

interface Stats { requests: Record<string, number>; errors: Record<string, number>; inFlight: number; malformed: number }
interface Ready { pid: number; threads: number }
interface MountFail { code: string | null; option: string | null; message: string }
interface Final {
  error: string | null; main: Stats; threads: Stats[]; threadIds: number[]; workerTids: string[]; liveWorkerTids: string[];
}

/** The fixture's options: mount options plus fsArg, threadFileSystem "auto" (threads-fs.js with fsArg). */
type FixtureOptions = Record<string, unknown>;

/** Starts serve-threads on e.mnt; resolves with its READY, or rejects (MOUNTFAIL, exit). */
async function startServer(e: Env, options: FixtureOptions): Promise<{ p: Proc; ready: Ready }> {
  const p = startNode(SERVER, [e.mnt, JSON.stringify(options)]);
  e.procs.push(p);
  const said = await poll(() => /^(READY|MOUNTFAIL) /m.test(p.stdout()) || p.child.exitCode !== null || p.child.signalCode !== null, WAIT_MS, 20);
  const ready = linesOf<Ready>(p, 'READY')[0];
  assert.ok(said && ready, `no READY from serve-threads ${JSON.stringify(options)}: ${p.stdout()} / ${p.stderr()}`);
  return { p, ready };
}

/** Runs serve-threads expecting the mount to fail: its MOUNTFAIL and how the process ended. */
async function failingServer(e: Env, options: FixtureOptions): Promise<{ fail: MountFail; exit: { code: number | null; signal: NodeJS.Signals | null }; mountedAtFail: number; p: Proc }> {
  const p = startNode(SERVER, [e.mnt, JSON.stringify(options)]);
  e.procs.push(p);
  let mountedAtFail = -1;
  const said = await poll(() => {
    if (!/^MOUNTFAIL /m.test(p.stdout())) return p.child.exitCode !== null || /^READY /m.test(p.stdout());
    mountedAtFail = mountsAt(e.mnt).length;
    return true;
  }, WAIT_MS, 5);
  const fail = linesOf<MountFail>(p, 'MOUNTFAIL')[0];
  assert.ok(said && fail, `no MOUNTFAIL from serve-threads ${JSON.stringify(options)}: ${p.stdout()} / ${p.stderr()}`);
  const t = setTimeout(() => p.child.kill('SIGKILL'), WAIT_MS);
  const exit = await p.exited;
  clearTimeout(t);
  return { fail, exit, mountedAtFail, p };
}

/** Asks the server for its stats (SIGUSR2) and waits for the answer. */
async function askStats(p: Proc): Promise<{ main: Stats; threads: Stats[] }> {
  const before = linesOf(p, 'STATS').length;
  p.child.kill('SIGUSR2');
  assert.ok(await poll(() => linesOf(p, 'STATS').length > before, WAIT_MS, 20), `no STATS: ${p.stdout()} / ${p.stderr()}`);
  return linesOf<{ main: Stats; threads: Stats[] }>(p, 'STATS').at(-1)!;
}

/** SIGTERM: the server unmounts, prints FINAL and exits; returns both. */
async function stopServer(p: Proc): Promise<{ final: Final; exit: { code: number | null; signal: NodeJS.Signals | null } }> {
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), WAIT_MS);
  const exit = await p.exited;
  clearTimeout(t);
  const final = linesOf<Final>(p, 'FINAL')[0];
  assert.ok(final, `no FINAL: ${p.stdout()} / ${p.stderr()}`);
  return { final, exit };
}

const n = (s: Stats, op: string) => s.requests[op] ?? 0;
/** Has this thread answered name and attribute requests and reads? */
const answered = (s: Stats | undefined) => !!s && n(s, 'LOOKUP') + n(s, 'GETATTR') > 0 && n(s, 'READ') > 0;
const brief = (s: Stats) => JSON.stringify(s.requests);

/** The requests a thread answered with an error that a correct instance would have answered (ENOSYS ones aside). */
function wrongErrors(s: Stats): string[] {
  return ['LOOKUP', 'GETATTR', 'OPEN', 'READ', 'READDIR', 'RELEASE'].filter((op) => (s.errors[op] ?? 0) > 0).map((op) => `${op}×${s.errors[op]}`);
}

// ---- clients ----------------------------------------------------------------------------

/** Starts a client process on e.mnt that loops until `stopFile` exists (or maxMs, or maxRounds). */
function startClient(e: Env, stopFile: string, maxMs = 2 * SPREAD_MS, maxRounds?: number): Proc {
  const c = startNode(CLIENT, [e.mnt, stopFile, String(maxMs), ...(maxRounds ? [String(maxRounds)] : [])]);
  e.procs.push(c);
  return c;
}

/** Waits for a client's end; asserts it exited 0, did some rounds and saw nothing wrong. */
async function clientResult(c: Proc, what: string): Promise<{ rounds: number; ops: number }> {
  const t = setTimeout(() => c.child.kill('SIGKILL'), 2 * WAIT_MS);
  const exit = await c.exited;
  clearTimeout(t);
  assert.equal(exit, { code: 0, signal: null }, `${what}: ${c.stderr()}`);
  const r = JSON.parse(c.stdout().trim().split('\n').at(-1)!) as { rounds: number; ops: number; errors: string[] };
  assert.equal(r.errors, [], `${what} saw errors`);
  assert.ok(r.rounds >= 1, `${what} finished no round: ${c.stdout()}`);
  return r;
}

/** `cat path` in a child process. */
const cat = (path: string) => execFileSync('cat', [path], { encoding: 'utf8', timeout: WAIT_MS });

/** `tsfuse ARGS…` to completion. */
const cli = (args: string[]): Promise<Ran> => run(process.execPath, [CLI, ...args], 2 * WAIT_MS);

/** `grep -F mnt /proc/mounts` finds nothing (exit 1). */
async function notInProcMounts(mnt: string, what: string): Promise<void> {
  const g = await run('grep', ['-F', ` ${mnt} `, '/proc/mounts']);
  assert.is(g.code, 1, `${what}: /proc/mounts still has ${mnt}: ${g.stdout}`);
}

/** Nothing mounted on `mnt` and no process naming it. */
async function nothingLeft(mnt: string, what: string): Promise<void> {
  assert.equal(mountsAt(mnt), [], `${what}: still mounted`);
  await notInProcMounts(mnt, what);
  assert.ok(await poll(() => procsWith(mnt).length === 0, WAIT_MS, 20), `${what}: processes left: ${procsWith(mnt).join(' ')}`);
}

/** The server pid a background CLI start printed. */
function serverPid(r: Ran): number {
  const m = /server pid (\d+)/.exec(r.stdout);
  assert.ok(m, `no "server pid" in: ${r.stdout} / ${r.stderr}`);
  return Number(m![1]);
}

// ---- 1. many threads, many clients ------------------------------------------------------

test('threads: 3 — clients in 3 processes read 100 files: the main thread and an extra thread both answer LOOKUP/GETATTR/READ; all data right, no errors', timed(4 * WAIT_MS + 2 * SPREAD_MS, () =>
  withEnv(async (e) => {
    const tidDir = join(e.base, 'tids');
    mkdirSync(tidDir);
    const { p, ready } = await startServer(e, { threads: 3, threadFileSystem: 'auto', fsArg: { tidDir } });
    assert.is(ready.threads, 2, 'session.threads: two workers');
    // Three filesystems were built: the main thread's and one in each worker.
    assert.equal(readdirSync(tidDir).sort(), ['main', 'worker-1', 'worker-2']);
    assert.is(readFileSync(join(tidDir, 'main'), 'utf8'), String(ready.pid));

    const stopFile = join(e.base, 'stop');
    const clients = [0, 1, 2].map(() => startClient(e, stopFile));
    let last: { main: Stats; threads: Stats[] } | undefined;
    const end = Date.now() + SPREAD_MS;
    let spread = false;
    while (!spread && Date.now() < end && clients.every((c) => c.child.exitCode === null)) {
      last = await askStats(p);
      spread = answered(last.main) && last.threads.some(answered);
      if (!spread) await sleep(200);
    }
    writeFileSync(stopFile, '');
    const results = [];
    for (const [i, c] of clients.entries()) results.push(await clientResult(c, `client ${i}`));
    assert.ok(spread, `within ${SPREAD_MS} ms, not both kinds of thread answered: main ${last && brief(last.main)}; ` +
      `threads ${last?.threads.map(brief).join(' | ')}; clients ${results.map((r) => r.rounds).join(',')} rounds`);
    assert.is(last!.threads.length, 2, 'threadStats() has a figure for each extra thread');

    const { final, exit } = await stopServer(p);
    assert.equal(exit, { code: 0, signal: null }, p.stderr());
    assert.is(final.error, null);
    assert.is(final.threads.length, 2, 'each extra thread sent its stats at the end');
    for (const [i, s] of [final.main, ...final.threads].entries()) {
      assert.equal(wrongErrors(s), [], `thread ${i} answered with errors: ${JSON.stringify(s.errors)}`);
      assert.is(s.inFlight, 0, `thread ${i} in flight at the end`);
      assert.is(s.malformed, 0, `thread ${i} malformed`);
    }
    // The end-of-session figures include what the live ones said.
    for (const [i, s] of last!.threads.entries()) {
      for (const op of ['LOOKUP', 'GETATTR', 'READ']) assert.ok(n(final.threads[i], op) >= n(s, op), `thread ${i + 1} ${op}: final ${n(final.threads[i], op)} < live ${n(s, op)}`);
    }
    await nothingLeft(e.mnt, 'after the busy session');
  })));

test('threads: 2, debug — thread 1 logs its requests as "tsfuse[thread 1]: ", the main thread as "tsfuse: "', timed(4 * WAIT_MS + 2 * SPREAD_MS, () =>
  withEnv(async (e) => {
    const { p } = await startServer(e, { threads: 2, threadFileSystem: 'auto', debug: true });
    const stopFile = join(e.base, 'stop');
    const clients = [0, 1].map(() => startClient(e, stopFile));
    const req = (prefix: string) => new RegExp(`^${prefix} → \\d+ (LOOKUP|GETATTR|READ) `, 'm');
    const mainRe = req('tsfuse:');
    const threadRe = req('tsfuse\\[thread 1\\]:');
    const both = await poll(() => mainRe.test(p.stderr()) && threadRe.test(p.stderr()), SPREAD_MS, 50);
    writeFileSync(stopFile, '');
    for (const [i, c] of clients.entries()) await clientResult(c, `client ${i}`);
    const lines = p.stderr().split('\n').filter(Boolean);
    assert.ok(both, `not both logs within ${SPREAD_MS} ms: main ${lines.filter((l) => mainRe.test(l)).length} lines, ` +
      `thread 1 ${lines.filter((l) => threadRe.test(l)).length} lines`);
    const { exit } = await stopServer(p);
    assert.equal(exit, { code: 0, signal: null });
    const stray = p.stderr().split('\n').filter(Boolean).filter((l) => !l.startsWith('tsfuse: ') && !l.startsWith('tsfuse[thread 1]: '));
    assert.equal(stray.slice(0, 5), [], 'every log line carries its thread\'s prefix (and there is no thread 2)');
    await nothingLeft(e.mnt, 'after the debug session');
  })));

// ---- 2. unmount while idle --------------------------------------------------------------

test('unmount while idle (SIGTERM → session.unmount): worker threads exit before session.closed, the process exits 0, /proc/mounts is clean', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const tidDir = join(e.base, 'tids');
    mkdirSync(tidDir);
    const { p, ready } = await startServer(e, { threads: 3, threadFileSystem: 'auto', fsArg: { tidDir } });
    const pid = ready.pid;
    const tids = readdirSync(tidDir).filter((f) => f.startsWith('worker-')).map((f) => readFileSync(join(tidDir, f), 'utf8'));
    assert.is(tids.length, 2);
    for (const t of tids) assert.ok(existsSync(`/proc/${pid}/task/${t}`), `worker task ${t} is a thread of the server ${pid}`);
    assert.ok(readdirSync(`/proc/${pid}/task`).length >= 3, 'at least the main thread and 2 workers');
    // Serves (each file once, then idle).
    for (const i of [0, 57, FILES - 1]) assert.is(cat(join(e.mnt, fileName(i))), fileData(i));
    assert.is(mountsAt(e.mnt).length, 1);

    const { final, exit } = await stopServer(p);
    assert.equal(exit, { code: 0, signal: null }, p.stderr());
    assert.is(final.error, null);
    assert.equal(final.threadIds, [-1, -1], 'every Worker has exited when session.closed resolves');
    assert.equal(final.workerTids.sort(), [...tids].sort());
    assert.equal(final.liveWorkerTids, [], 'the workers\' tasks are gone when session.closed resolves');
    assert.is(final.threads.length, 2, 'threadStats(): each thread\'s figures, sent at the end');
    assert.not.ok(alive(pid), 'server process gone');
    for (const t of tids) assert.not.ok(existsSync(`/proc/${pid}/task/${t}`), `task ${t} gone`);
    await nothingLeft(e.mnt, 'after SIGTERM');
  })));

test('unmount from outside (tsfuse umount) while idle: the session ends by itself, threads gone, exit 0', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const tidDir = join(e.base, 'tids');
    mkdirSync(tidDir);
    const { p, ready } = await startServer(e, { threads: 3, threadFileSystem: 'auto', fsArg: { tidDir } });
    assert.is(cat(join(e.mnt, fileName(3))), fileData(3));
    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    const t = setTimeout(() => p.child.kill('SIGKILL'), WAIT_MS);
    const exit = await p.exited;
    clearTimeout(t);
    assert.equal(exit, { code: 0, signal: null }, p.stderr());
    const final = linesOf<Final>(p, 'FINAL')[0];
    assert.ok(final, p.stdout());
    assert.is(final.error, null);
    assert.equal(final.threadIds, [-1, -1]);
    assert.is(final.workerTids.length, 2);
    assert.equal(final.liveWorkerTids, []);
    assert.not.ok(alive(ready.pid));
    await nothingLeft(e.mnt, 'after tsfuse umount');
  })));

// ---- 3. option errors -------------------------------------------------------------------

test('threads not a whole number 1…64 → EINVAL naming threads; nothing mounted', timed(8 * WAIT_MS, () =>
  withEnv(async (e) => {
    for (const threads of [0, 65, -1, 1.5, '2', null, true, 1e9]) {
      const what = `threads: ${JSON.stringify(threads)}`;
      const { fail, exit, mountedAtFail } = await failingServer(e, { threads, threadFileSystem: 'auto' });
      assert.is(fail.code, 'EINVAL', `${what}: ${fail.message}`);
      assert.is(fail.option, 'threads', what);
      assert.match(fail.message, /\bthreads\b/, what);
      assert.is(mountedAtFail, 0, `${what}: mounted`);
      assert.equal(exit, { code: 3, signal: null }, `${what}: ${exit.code === 4 ? 'something kept the process alive' : ''}`);
    }
    await nothingLeft(e.mnt, 'bad threads');
  })));

test('threads > 1 without threadFileSystem (or without its module) → EINVAL naming threadFileSystem', timed(8 * WAIT_MS, () =>
  withEnv(async (e) => {
    for (const opts of [{ threads: 2 }, { threads: 64 }, { threads: 3, threadFileSystem: {} }, { threads: 2, threadFileSystem: { module: 5 } }]) {
      const what = JSON.stringify(opts);
      const { fail, exit, mountedAtFail } = await failingServer(e, opts);
      assert.is(fail.code, 'EINVAL', `${what}: ${fail.message}`);
      assert.is(fail.option, 'threadFileSystem', what);
      assert.match(fail.message, /threadFileSystem/, what);
      assert.is(mountedAtFail, 0, `${what}: mounted`);
      assert.equal(exit, { code: 3, signal: null }, what);
    }
    await nothingLeft(e.mnt, 'no threadFileSystem');
  })));

test('a threadFileSystem that cannot be built → mount rejects naming the thread (and the module); nothing stays mounted, the process ends', timed(12 * WAIT_MS, () =>
  withEnv(async (e) => {
    const missing = join(e.base, 'no-such-module.js');
    const marker = join(e.base, 'second.marker');
    const cases: { spec: Record<string, unknown>; thread: number; names: RegExp[] }[] = [
      // Cannot load: no such file; no such package.
      { spec: { module: missing }, thread: 1, names: [new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))] },
      { spec: { module: 'tsfuse-test-no-such-package' }, thread: 1, names: [/tsfuse-test-no-such-package/] },
      // The export is missing (named or default).
      { spec: { module: THREADS_FS, export: 'nope' }, thread: 1, names: [new RegExp(THREADS_FS.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /nope/] },
      { spec: { module: HELLO }, thread: 1, names: [new RegExp(HELLO.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /"default"/] },
      // The module throws while loading; the factory throws: the module is named, its own message kept.
      { spec: { module: THROWS }, thread: 1, names: [new RegExp(THROWS.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /this module refuses to load/] },
      { spec: { module: THREADS_FS, export: 'failing' }, thread: 1, names: [new RegExp(THREADS_FS.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /this factory always fails/] },
      // Thread 1 builds, thread 2 cannot: thread 1 is stopped as well.
      { spec: { module: THREADS_FS, export: 'failSecond', arg: { marker } }, thread: 2, names: [/only the first instance is built/] },
    ];
    for (const c of cases) {
      const what = JSON.stringify(c.spec);
      const { fail, exit, mountedAtFail, p } = await failingServer(e, { threads: 3, threadFileSystem: c.spec });
      assert.match(fail.message, new RegExp(`\\bthread ${c.thread}\\b`), `${what}: the thread is named: ${fail.message}`);
      for (const re of c.names) assert.match(fail.message, re, `${what}: ${fail.message}`);
      assert.is(mountedAtFail, 0, `${what}: still mounted when mount() rejected`);
      assert.equal(exit, { code: 3, signal: null }, `${what}: ${exit.code === 4 ? 'something kept the process alive after the failed mount' : p.stderr()}`);
      assert.equal(mountsAt(e.mnt), [], `${what}: mounted after exit`);
    }
    assert.ok(existsSync(marker), 'failSecond was built once (by thread 1)');
    await nothingLeft(e.mnt, 'bad threadFileSystem');
  })));

// ---- 4. the CLI -------------------------------------------------------------------------

test('CLI: hello -o threads=2 in the background serves hello; tsfuse umount stops it', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const r = await cli(['hello', e.mnt, '-o', 'threads=2']);
    assert.is(r.code, 0, r.stderr);
    const pid = serverPid(r);
    e.pids.push(pid);
    assert.ok(alive(pid), `server ${pid}`);
    for (let i = 0; i < 5; i++) assert.is(cat(join(e.mnt, 'hello')), 'Hello, world!\n');
    const ls = execFileSync('ls', ['-A', e.mnt], { encoding: 'utf8', timeout: WAIT_MS });
    assert.equal(ls.split('\n').filter(Boolean), ['hello']);
    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `server ${pid} still running`);
    await nothingLeft(e.mnt, 'hello threads=2 after umount');
  })));

test('CLI: hello -f -d -o threads=2: both threads answer (each logs with its prefix); SIGTERM unmounts, exit 0', timed(4 * WAIT_MS + SPREAD_MS, () =>
  withEnv(async (e) => {
    const p = startNode(CLI_REL, ['hello', e.mnt, '-f', '-d', '-o', 'threads=2,timeout=0']);
    e.procs.push(p);
    await p.waitFor('mounted on');
    const mainRe = /^tsfuse: → \d+ [A-Z]+ /m;
    const threadRe = /^tsfuse\[thread 1\]: → \d+ [A-Z]+ /m;
    const end = Date.now() + SPREAD_MS;
    while (!(mainRe.test(p.stderr()) && threadRe.test(p.stderr())) && Date.now() < end) {
      const r = await run('cat', [join(e.mnt, 'hello')], WAIT_MS);
      assert.is(r.stdout, 'Hello, world!\n', r.stderr);
    }
    assert.ok(mainRe.test(p.stderr()), 'the main thread logged a request');
    assert.ok(threadRe.test(p.stderr()), 'thread 1 logged a request');
    p.child.kill('SIGTERM');
    const t = setTimeout(() => p.child.kill('SIGKILL'), WAIT_MS);
    const exit = await p.exited;
    clearTimeout(t);
    assert.equal(exit, { code: 0, signal: null }, p.stderr().slice(-2000));
    assert.match(p.stdout(), /unmounted/);
    await nothingLeft(e.mnt, 'hello -f threads=2');
  })));

test('CLI: threads=2 refused for passthrough and memfs, and bad values refused — exit 2, the message names threads; nothing mounted', timed(12 * WAIT_MS, () =>
  withEnv(async (e) => {
    const src = join(e.base, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'file'), 'x');
    const refusals: [string[], RegExp][] = [
      [['passthrough', src, e.mnt, '-o', 'threads=2'], /inode table/],
      [['memfs', e.mnt, '-o', 'threads=2'], /inode table/],
      [['memfs', e.mnt, '-f', '-o', 'threads=4'], /inode table/],
      [['passthrough', src, e.mnt, '-o', 'ro,threads=64'], /inode table/],
    ];
    for (const v of ['0', 'x', '65', '', '1.5', '-1', '2x']) refusals.push([['hello', e.mnt, '-o', `threads=${v}`], /whole number from 1 to 64/]);
    refusals.push([['hello', e.mnt, '-o', 'threads'], /whole number from 1 to 64/]);
    for (const [args, why] of refusals) {
      const r = await cli(args);
      const what = args.join(' ');
      assert.is(r.code, 2, `${what}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, /invalid option threads\b/, what);
      assert.match(r.stderr, why, what);
      assert.not.match(r.stdout, /mounted on/, what);
      assert.equal(mountsAt(e.mnt), [], `${what}: mounted`);
    }
    await nothingLeft(e.mnt, 'refusals');
  })));

// ---- 5. threads: 1 ----------------------------------------------------------------------

test('threads: 1 is no option: no worker, no second filesystem, the main thread answers everything, threadStats() empty', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    for (const opts of [{ threads: 1 }, {}]) {
      const what = JSON.stringify(opts);
      const tidDir = join(e.base, `tids-${opts.threads ?? 'none'}`);
      mkdirSync(tidDir);
      const { p, ready } = await startServer(e, { ...opts, fsArg: { tidDir } });
      assert.is(ready.threads, 0, `${what}: session.threads`);
      const c = startClient(e, join(e.base, 'never'), 2 * WAIT_MS, 2);
      await clientResult(c, `${what}: client`);
      const s = await askStats(p);
      assert.equal(s.threads, [], `${what}: threadStats()`);
      assert.ok(answered(s.main), `${what}: main ${brief(s.main)}`);
      assert.equal(readdirSync(tidDir), ['main'], `${what}: filesystems built`);
      const { final, exit } = await stopServer(p);
      assert.equal(exit, { code: 0, signal: null }, p.stderr());
      assert.equal(final.threadIds, []);
      assert.equal(final.threads, []);
      assert.equal(wrongErrors(final.main), []);
      await nothingLeft(e.mnt, what);
    }
  })));

test('CLI: -o threads=1 is accepted by hello, memfs and passthrough, which serve as without it', timed(8 * WAIT_MS, () =>
  withEnv(async (e) => {
    const src = join(e.base, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'file'), 'from the source\n');
    const cases: [string[], () => void][] = [
      [['hello', e.mnt, '-o', 'threads=1'], () => assert.is(cat(join(e.mnt, 'hello')), 'Hello, world!\n')],
      [['passthrough', src, e.mnt, '-o', 'threads=1'], () => assert.is(cat(join(e.mnt, 'file')), 'from the source\n')],
      [['memfs', e.mnt, '-o', 'threads=1'], () => {
        execFileSync('sh', ['-c', 'echo made > "$1/new" && cat "$1/new"', 'sh', e.mnt], { timeout: WAIT_MS });
        assert.is(cat(join(e.mnt, 'new')), 'made\n');
      }],
    ];
    for (const [args, check] of cases) {
      const what = args.join(' ');
      const r = await cli(args);
      assert.is(r.code, 0, `${what}: ${r.stderr}`);
      const pid = serverPid(r);
      e.pids.push(pid);
      check();
      const u = await cli(['umount', e.mnt]);
      assert.is(u.code, 0, `${what}: umount: ${u.stderr}`);
      assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `${what}: server ${pid} still running`);
      await nothingLeft(e.mnt, what);
    }
  })));

test('nothing of this file is left mounted or running', () => {
  assert.equal(bases.flatMap(mountsBelow), []);
  assert.equal(bases.flatMap(procsWith), []);
});

test.run();
