// End-to-end: a slow source does not stall the passthrough.
//
// The source of the passthrough is itself a tsfuse mount
// (test/fixtures/serve-slow.ts, in its own process) that holds a READ of its
// file "slow", a WRITE of "slow-write", an FSYNC of "slow-fsync" or a READDIR
// of "slow-dir" until told to answer (SIGUSR2), while it answers everything
// else at once from its own event loop. While one client waits in such a
// read, write, fsync or directory listing through the passthrough (entry and
// attribute time-outs 0, so every stat reaches the server), other clients'
// `stat MNT/fast`, `cat MNT/fast` and `ls MNT` must complete: the passthrough
// does its source I/O off its event loop. A server that calls pread, pwrite,
// fsync or getdents on its event loop answers them only after the held
// request; the test sees that (the probes are still running after a generous
// deadline) and fails instead of hanging. Then it releases the held request
// and checks the slow operation itself completed with the right data.
//
// Ordering, not durations, is asserted: a probe "completed while the slow
// request was pending" when it exited before the slow server printed
// ANSWERED and before the waiting client exited. The slow server holds for
// minutes (not the fixture's default 5 s) and is released explicitly, so that
// this never depends on how fast the machine is. Probe durations are logged
// for the record. Every wait has its own deadline, and the held request is
// released before any client is reaped, so a stalled server fails the test
// instead of hanging it.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, isMounted, poll, run, startNode, stop, tempDir, timed, type Proc } from './helpers.js';
import { bases, withPt } from './pt-helpers.js';
import { AsUser } from '../src/cli/as-user.js';

/** How long the slow server holds a request unless released: longer than any test here runs. */
const HOLD_MS = 10 * 60_000;
/** How long the probes may take while the slow request is held (generous: they take milliseconds when not stalled). */
const PROBE_DEADLINE_MS = 30_000;

interface Client {
  name: string;
  /** Kills the client's process. */
  kill(): void;
  done: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit (for the log). */
  ms: number;
  /** What held at the moment it exited (set by the `snapshot` given to client()). */
  at?: { slowAnswered: boolean; waiterDone: boolean };
  exited: Promise<void>;
}

/** Starts `cmd args…` with captured output; `snapshot` is taken in its exit handler. */
function client(name: string, cmd: string, args: string[], snapshot?: () => Client['at']): Client {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const c: Client = { name, kill: () => child.kill('SIGKILL'), done: false, code: null, signal: null, stdout: '', stderr: '', ms: NaN, exited: undefined! };
  child.stdout!.on('data', (d) => { c.stdout += d; });
  child.stderr!.on('data', (d) => { c.stderr += d; });
  c.exited = new Promise((resolve) => {
    child.on('error', (e) => { c.stderr += String(e); });
    child.on('close', (code, signal) => {
      c.ms = Number(process.hrtime.bigint() - t0) / 1e6;
      c.at = snapshot?.();
      Object.assign(c, { done: true, code, signal });
      resolve();
    });
  });
  return c;
}

function killAll(cs: Client[]): void {
  for (const c of cs) if (!c.done) c.kill();
}

/**
 * Runs `body` in a Node child (src/cli/as-user.ts) as a client: what it returns is its
 * stdout (code 0), what it throws its stderr (code 1).
 */
function nodeClient(name: string, body: string, args: unknown[]): Client {
  const t0 = process.hrtime.bigint();
  const child = new AsUser();
  const c: Client = { name, kill: () => child.kill(), done: false, code: null, signal: null, stdout: '', stderr: '', ms: NaN, exited: undefined! };
  c.exited = child.run<string>(body, args, HOLD_MS)
    .then((out) => { c.stdout = out; c.code = 0; }, (e: Error) => { c.stderr = e.message; c.code = 1; })
    .finally(() => {
      c.ms = Number(process.hrtime.bigint() - t0) / 1e6;
      c.done = true;
      child.kill();
    });
  return c;
}

interface SlowEnv { slow: Proc; mnt: string }

/**
 * The slow server on its own mount, the passthrough over it (time-outs 0). In
 * finally: held requests released (so a stalled passthrough can stop), the
 * passthrough stopped and unmounted (lazily; withPt), then the slow server.
 */
async function withSlowPt(fn: (e: SlowEnv) => Promise<void>): Promise<void> {
  const dir = tempDir('tsfuse-test-slow-');
  bases.push(dir);
  const src = join(dir, 'src');
  mkdirSync(src);
  let slow: Proc | undefined;
  try {
    slow = startNode('test/fixtures/serve-slow.js', [src, JSON.stringify({ holdMs: HOLD_MS })]);
    await slow.waitFor('READY');
    const s = slow;
    await withPt({ entryTimeout: 0, attrTimeout: 0 }, async ({ mnt }) => {
      try {
        await fn({ slow: s, mnt });
      } finally {
        if (s.child.exitCode === null) s.child.kill('SIGUSR2');
      }
    }, { src });
  } finally {
    if (slow) await stop(slow);
    cleanup(dir);
  }
}

/** The held operation a[0] on a[1], one syscall each (read(2) of 64 KiB, write(2), fsync(2)); answers what it printed. */
const OP = String.raw`
  const [op, path] = a;
  if (op === 'readdir') return JSON.stringify(fs.readdirSync(path).sort()) + '\n';
  let out;
  const fd = fs.openSync(path, op === 'read' ? fs.constants.O_RDONLY : fs.constants.O_WRONLY);
  if (op === 'read') {
    const data = sys.read(fd, 65536);
    out = data.length + ' ' + data.filter((c) => c === 0x73).length + '\n';
  } else if (op === 'write') {
    out = sys.write(fd, 'written\n') + '\n';
  } else if (op === 'fsync') {
    sys.write(fd, 'synced\n');
    fs.fsyncSync(fd);
    out = 'fsynced\n';
  }
  fs.closeSync(fd);
  return out;
`;

/**
 * Starts `op` on MNT/`file` in a client, waits for the slow server to hold
 * it, runs the probes, then releases. Asserts each probe completed while the
 * held request was pending, and the slow client's own result.
 */
async function probeWhileHeld(e: SlowEnv, op: 'read' | 'write' | 'fsync' | 'readdir', file: string, expect: string): Promise<void> {
  const all: Client[] = [];
  try {
    const waiter = nodeClient(`${op} ${file}`, OP, [op, join(e.mnt, file)]);
    all.push(waiter);
    await e.slow.waitFor(`HELD ${op} ${file}`, 20_000);
    const snapshot = () => ({ slowAnswered: e.slow.stdout().includes(`ANSWERED ${op} ${file}`), waiterDone: waiter.done });
    const probes = [
      client('stat MNT/fast', 'stat', ['-c', '%s', join(e.mnt, 'fast')], snapshot),
      client('cat MNT/fast', 'cat', [join(e.mnt, 'fast')], snapshot),
      client('ls MNT', 'ls', ['-U', e.mnt], snapshot),
    ];
    all.push(...probes);
    const finished = await poll(() => probes.every((p) => p.done), PROBE_DEADLINE_MS, 20);
    for (const p of probes) {
      console.log(`  [slow-source] while ${op} ${file} was held: ${p.name} ${p.done ? `took ${p.ms.toFixed(1)} ms` : `still running after ${PROBE_DEADLINE_MS} ms`}`);
    }
    assert.ok(finished, `${probes.filter((p) => !p.done).map((p) => p.name).join(', ')} did not complete within ${PROBE_DEADLINE_MS} ms while the source held ${op} ${file}: the passthrough is stalled behind the slow request`);
    for (const p of probes) {
      assert.equal(p.at, { slowAnswered: false, waiterDone: false }, `${p.name} completed while ${op} ${file} was still pending`);
      assert.is(p.code, 0, `${p.name}: ${p.stderr}`);
    }
    assert.is(probes[0].stdout, '5\n', 'stat MNT/fast size');
    assert.is(probes[1].stdout, 'fast\n', 'cat MNT/fast');
    assert.equal(probes[2].stdout.split('\n').filter(Boolean).sort(), ['fast', 'slow', 'slow-dir', 'slow-fsync', 'slow-write'], 'ls MNT');
    // Released: the slow request itself completes, with the right data.
    e.slow.child.kill('SIGUSR2');
    await e.slow.waitFor(`ANSWERED ${op} ${file}`, 20_000);
    assert.ok(await poll(() => waiter.done, 30_000, 20), `${op} ${file} did not complete after the source answered`);
    assert.is(waiter.code, 0, `${op} ${file}: ${waiter.stderr}`);
    assert.is(waiter.stdout, expect, `${op} ${file} result`);
  } finally {
    // Answer first: a client whose request the server has already read cannot be
    // killed out of it (the kernel's request_wait_answer waits for the reply).
    if (e.slow.child.exitCode === null) e.slow.child.kill('SIGUSR2');
    killAll(all);
    await poll(() => all.every((c) => c.done), 30_000, 20);
  }
}

test('stat, read and ls of other files complete while a read of the source is pending', timed(180_000, () =>
  withSlowPt((e) => probeWhileHeld(e, 'read', 'slow', '4096 4096\n'))));

test('stat, read and ls of other files complete while a write to the source is pending', timed(180_000, () =>
  withSlowPt(async (e) => {
    await probeWhileHeld(e, 'write', 'slow-write', '8\n');
    const r = await run('cat', [join(e.mnt, 'slow-write')], 20_000);
    assert.is(r.stdout, 'written\n', `the held write landed on the source (${r.stderr})`);
  })));

test('stat, read and ls of other files complete while an fsync of the source is pending', timed(180_000, () =>
  withSlowPt((e) => probeWhileHeld(e, 'fsync', 'slow-fsync', 'fsynced\n'))));

test('stat, read and ls of other files complete while a listing of a source directory is pending', timed(180_000, () =>
  withSlowPt((e) => probeWhileHeld(e, 'readdir', 'slow-dir', '["inside"]\n'))));

test('nothing is left mounted', () => {
  for (const b of bases) {
    assert.not.ok(isMounted(join(b, 'mnt')), `${b}/mnt still mounted`);
    assert.not.ok(isMounted(join(b, 'src')), `${b}/src still mounted`);
  }
});

test.run();
