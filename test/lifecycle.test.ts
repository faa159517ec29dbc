// The lifecycle of a server process, end to end: `tsfuse passthrough SRC MNT` returns
// (exit 0) only once the mount serves, leaving the server detached; a start that
// cannot succeed exits non-zero with the reason on stderr and leaves nothing mounted
// and no process behind; -f stays attached and unmounts on SIGTERM (lazily when busy,
// saying so); NOTIFY_SOCKET gets READY=1 (and MAINPID=<server> in the background);
// spawnMount() is the library's form of the same; a dead mount a killed server left
// is detached by the next start, with a message; --log receives the server's output.
//
// Every server here is another process, so the test may use the mounts directly; the
// reads that prove "it serves" still run in child processes (cat, stat), as a user
// would. Nothing is timed: each wait is for an event, with a generous deadline
// (WAIT_MS). Every mount is unmounted (lazily if need be) and every process that
// names one of this file's directories is killed in `finally`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonError, spawnMount, type SpawnedMount } from '../src/api/index.js';
import {
  DIST, WAIT_MS, alive, mountsAt, mountsBelow, poll, procsWith, restoreDevFuseMode, run, setDevFuseMode, startNode, tempDir, timed, type Proc, type Ran,
} from './helpers.js';

const CLI_REL = 'src/cli/main.js';
const CLI = join(DIST, CLI_REL);
const FIXTURE = join(DIST, 'test/fixtures/lifecycle-fs.js');
const bases: string[] = [];

// ---- what the system says: mounts and processes ------------------------------------------



/** The filesystem type and source of a mountinfo line ("fuse.passthrough", "/src"). */
function fsOf(line: string): { type: string; source: string } {
  const [type, source] = line.split(' - ')[1].split(' ');
  return { type, source };
}



const cmdlineOf = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; } };

// ---- running things ------------------------------------------------------------------------

/** `tsfuse ARGS…` to completion (the background form exits once the mount serves or failed). */
function cli(args: string[], opts: Parameters<typeof run>[3] = {}): Promise<Ran> {
  return run(process.execPath, [CLI, ...args], 2 * WAIT_MS, opts);
}

/** The pid a background start printed ("server pid N"). */
function serverPid(r: Ran): number {
  const m = /server pid (\d+)/.exec(r.stdout);
  assert.ok(m, `no "server pid" in stdout: ${r.stdout} / stderr: ${r.stderr}`);
  return Number(m![1]);
}

/** `cat path` in a child process. */
function cat(path: string): string {
  return execFileSync('cat', [path], { encoding: 'utf8', timeout: WAIT_MS });
}

/** Any command with captured stdout and a wait for a line of it. */
interface Cmd { child: ChildProcess; out: () => string; waitFor(text: string): Promise<void> }
function startCmd(cmd: string, args: string[]): Cmd {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  return {
    child, out: () => out,
    async waitFor(text) {
      const ok = await poll(() => out.includes(text) || child.exitCode !== null, WAIT_MS, 10);
      assert.ok(ok && out.includes(text), `${cmd}: no "${text}" (exit ${child.exitCode}); stdout ${out}; stderr ${err}`);
    },
  };
}

/** A Proc's exit, or a failure after WAIT_MS. */
async function exitOf(p: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let t: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`pid ${p.child.pid} did not exit within ${WAIT_MS} ms; stderr: ${p.stderr()}`)), WAIT_MS); });
  try {
    return await Promise.race([p.exited, limit]);
  } finally {
    clearTimeout(t);
  }
}

// ---- one fresh SRC/MNT per test, and everything undone after it -----------------------------

interface Env {
  base: string; src: string; mnt: string;
  /** A file only the source has, and its content. */
  file: string; text: string;
  /** Extra mount points (bind mounts, …), unmounted before MNT. */
  mounts: string[];
  /** Pids to kill at the end if still alive. */
  pids: number[];
  /** Started commands to kill at the end. */
  children: ChildProcess[];
  spawned: SpawnedMount[];
}

async function withEnv(fn: (e: Env) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-life-');
  bases.push(base);
  chmodSync(base, 0o755); // uid 65534 goes through it in one test
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src, { mode: 0o755 });
  mkdirSync(mnt, { mode: 0o755 });
  const file = `only-in-src-${base.slice(-6)}`;
  const text = `served from ${src}\n`;
  writeFileSync(join(src, file), text, { mode: 0o644 });
  const e: Env = { base, src, mnt, file, text, mounts: [], pids: [], children: [], spawned: [] };
  try {
    await fn(e);
  } finally {
    for (const c of e.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const m of e.spawned) await m.unmount({ lazy: true }).catch(() => {});
    for (const m of [...e.mounts, mnt]) {
      for (let i = 0; i < 8 && mountsAt(m).length; i++) {
        try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { break; }
      }
    }
    // Servers end by themselves once unmounted; whatever still names this directory is killed.
    for (const pid of new Set([...e.pids, ...procsWith(base)])) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await poll(() => procsWith(base).length === 0, WAIT_MS, 20);
    if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
  }
}

/** Background start of the passthrough of e.src on e.mnt (plus `extra`): asserts exit 0, returns the server pid. */
async function bgMount(e: Env, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<{ pid: number; r: Ran }> {
  const r = await cli(['passthrough', e.src, e.mnt, ...extra], env ? { env: { ...process.env, ...env } } : {});
  const m = /server pid (\d+)/.exec(r.stdout);
  if (m) e.pids.push(Number(m[1]));
  assert.is(r.code, 0, `background start: exit ${r.code ?? r.signal}; stderr: ${r.stderr}`);
  return { pid: serverPid(r), r };
}

/** A failed start left nothing: no mount at `mnt`, no process naming it. */
function assertNothingLeft(mnt: string, what: string): void {
  assert.equal(mountsAt(mnt), [], `${what}: still mounted on ${mnt}`);
  const left = procsWith(mnt);
  assert.equal(left, [], `${what}: processes left: ${left.map((p) => `${p}: ${cmdlineOf(p)}`).join('; ')}`);
}

// ---- 1. readiness ------------------------------------------------------------------------

test('background start: exit 0 only once the mount serves; one mount, a live server; `tsfuse umount` ends both', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const { pid, r } = await bgMount(e);
    // At once, from another process: the mount serves.
    assert.is(cat(join(e.mnt, e.file)), e.text);
    assert.match(r.stdout, `mounted on ${e.mnt}`);
    assert.ok(alive(pid), `server ${pid} is not running`);
    assert.ok(cmdlineOf(pid).includes(e.mnt), `pid ${pid} is not the server of ${e.mnt}: ${cmdlineOf(pid)}`);
    const lines = mountsAt(e.mnt);
    assert.is(lines.length, 1, lines.join('\n'));
    assert.ok(fsOf(lines[0]).type.startsWith('fuse'), lines[0]);
    assert.is(fsOf(lines[0]).source, e.src);

    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `server ${pid} still running after the unmount`);
    assertNothingLeft(e.mnt, 'after tsfuse umount');
  })));

// ---- 2. the Kubernetes scenario ----------------------------------------------------------

test('bind mount right after the start returns (Kubernetes): the bind shows the FUSE contents; one mount on MNT', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const other = join(e.base, 'other');
    mkdirSync(other);
    const { pid } = await bgMount(e);
    execFileSync('mount', ['--bind', e.mnt, other], { timeout: WAIT_MS });
    e.mounts.push(other);

    assert.is(cat(join(other, e.file)), e.text, 'the bind mount serves the source\'s file');
    const bound = mountsAt(other);
    assert.is(bound.length, 1, bound.join('\n'));
    assert.ok(fsOf(bound[0]).type.startsWith('fuse'), `bound the FUSE mount, not the empty directory: ${bound[0]}`);
    assert.is(mountsAt(e.mnt).length, 1, mountsAt(e.mnt).join('\n'));

    execFileSync('umount', [other], { timeout: WAIT_MS });
    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `server ${pid} still running after both unmounts`);
    assert.equal(mountsAt(other), []);
    assertNothingLeft(e.mnt, 'after unmounting both');
  })));

// ---- 3. failures: non-zero, the reason, nothing left --------------------------------------

test('failure: missing SRC — exit non-zero naming the source, nothing mounted, no process', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const r = await cli(['passthrough', join(e.base, 'no-such-src'), e.mnt]);
    assert.not.equal(r.code, 0, r.stdout);
    assert.match(r.stderr, /cannot use source directory/);
    assert.match(r.stderr, /ENOENT|No such file/);
    assertNothingLeft(e.mnt, 'missing SRC');
  })));

test('failure: MNT is not a directory — exit non-zero with ENOTDIR, nothing mounted, no process', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const notDir = join(e.base, 'a-file');
    writeFileSync(notDir, 'x');
    const r = await cli(['passthrough', e.src, notDir]);
    assert.not.equal(r.code, 0, r.stdout);
    assert.match(r.stderr, /ENOTDIR|not a directory/);
    assertNothingLeft(notDir, 'MNT a file');
  })));

test('failure: MNT already a live mount — exit non-zero (already a mount point); the first mount serves on, alone', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const { pid } = await bgMount(e);
    const r = await cli(['passthrough', e.src, e.mnt]);
    assert.not.equal(r.code, 0, r.stdout);
    assert.match(r.stderr, /already a mount point/);
    assert.is(mountsAt(e.mnt).length, 1, mountsAt(e.mnt).join('\n'));
    assert.equal(procsWith(e.mnt), [pid], `only the first server: ${procsWith(e.mnt).map(cmdlineOf).join('; ')}`);
    assert.is(cat(join(e.mnt, e.file)), e.text);
  })));

test('failure: a bad -o value (max_write=3) and an unknown -o word — exit non-zero naming the option, nothing left', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    for (const [opt, re] of [['max_write=3', /invalid option max_write/], ['frobnicate', /invalid option frobnicate: unknown mount option/]] as const) {
      const r = await cli(['passthrough', e.src, e.mnt, '-o', opt]);
      assert.not.equal(r.code, 0, `${opt}: ${r.stdout}`);
      assert.match(r.stderr, re, opt);
      assertNothingLeft(e.mnt, `-o ${opt}`);
    }
  })));

test('failure: no permission (uid 65534 on a root-owned 0700 MNT) — exit non-zero, Permission denied, nothing left', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    chmodSync(e.mnt, 0o700);
    try {
      setDevFuseMode(0o666); // so the refusal is the mount point's, not /dev/fuse's
      const r = await cli(['passthrough', e.src, e.mnt], { uid: 65534, gid: 65534, cwd: '/' });
      assert.not.equal(r.code, 0, r.stdout);
      assert.match(r.stderr, /Permission denied|EACCES/);
      assertNothingLeft(e.mnt, 'no permission');
    } finally {
      restoreDevFuseMode();
    }
  })));

test('failure: spawnMount of a server that dies in INIT (SIGKILL) — DaemonError, the dead mount it left is gone', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const marker = join(e.base, 'marker');
    const err = await spawnMount(e.mnt, { module: FIXTURE, export: 'killedInInit', arg: { marker, mountpoint: e.mnt } })
      .then((m) => { e.spawned.push(m); return undefined; }, (x: unknown) => x);
    assert.ok(err instanceof DaemonError, `rejected with a DaemonError, got ${String(err)}`);
    const d = err as DaemonError;
    assert.is(d.code, 'ESRCH', d.message);
    assert.is(d.signal, 'SIGKILL', d.message);
    assert.is(d.exitCode, null);
    assert.match(d.message, /SIGKILL/);
    assert.is(readFileSync(marker, 'utf8'), '1', 'the kernel mount existed when the server died');
    assertNothingLeft(e.mnt, 'server killed in INIT');
  })));

test('failure: spawnMount of a server that never answers INIT (timeout 2000) — ETIMEDOUT, stopped, nothing mounted', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const marker = join(e.base, 'marker');
    const err = await spawnMount(e.mnt, { module: FIXTURE, export: 'hangsInInit', arg: { marker, mountpoint: e.mnt }, timeout: 2000 })
      .then((m) => { e.spawned.push(m); return undefined; }, (x: unknown) => x);
    assert.ok(err instanceof DaemonError, `rejected with a DaemonError, got ${String(err)}`);
    assert.is((err as DaemonError).code, 'ETIMEDOUT', (err as Error).message);
    assert.is(readFileSync(marker, 'utf8'), '1', 'the kernel mount existed while INIT was pending');
    assertNothingLeft(e.mnt, 'INIT never answered');
  })));

// ---- 4. spawnMount -----------------------------------------------------------------------

test('spawnMount: a factory export with arg serves from another process; unmount() ends the server', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const name = 'from-arg.txt';
    const text = `made by the factory for ${e.mnt}\n`;
    const m = await spawnMount(e.mnt, { module: FIXTURE, arg: { name, text }, options: { fsname: 'lifecycle-spawn' } });
    e.spawned.push(m);
    e.pids.push(m.pid);
    assert.is(m.mountpoint, e.mnt);
    assert.ok(m.pid !== process.pid && alive(m.pid), `server pid ${m.pid}`);
    assert.ok(procsWith(e.mnt).includes(m.pid), `pid ${m.pid} is not the server of ${e.mnt}`);
    assert.is(cat(join(e.mnt, name)), text);
    assert.equal(execFileSync('ls', ['-A', e.mnt], { encoding: 'utf8', timeout: WAIT_MS }).split('\n').filter(Boolean), [name]);
    const lines = mountsAt(e.mnt);
    assert.is(lines.length, 1, lines.join('\n'));
    assert.is(fsOf(lines[0]).source, 'lifecycle-spawn');

    await m.unmount();
    e.spawned.length = 0;
    assert.not.ok(alive(m.pid), `server ${m.pid} still running after unmount() resolved`);
    assertNothingLeft(e.mnt, 'after unmount()');
  })));

// ---- 5. foreground -----------------------------------------------------------------------

test('-f: stays attached, serves; SIGTERM unmounts and the process exits 0', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const p = startNode(CLI_REL, ['passthrough', e.src, e.mnt, '-f']);
    e.children.push(p.child);
    await p.waitFor('mounted on');
    assert.ok(await poll(() => mountsAt(e.mnt).length === 1, WAIT_MS, 10), 'mounted');
    assert.is(cat(join(e.mnt, e.file)), e.text);
    assert.ok(procsWith(e.mnt).includes(p.child.pid!), 'the -f process is the server');
    p.child.kill('SIGTERM');
    const x = await exitOf(p);
    assert.equal(x, { code: 0, signal: null }, p.stderr());
    assert.match(p.stdout(), /unmounted/);
    assertNothingLeft(e.mnt, '-f after SIGTERM');
  })));

test('-f with a busy mount: SIGTERM detaches lazily and says so; the process exits 0', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const p = startNode(CLI_REL, ['passthrough', e.src, e.mnt, '-f']);
    e.children.push(p.child);
    await p.waitFor('mounted on');
    const holder = startCmd('sh', ['-c', 'cd "$1" && echo IN && exec sleep 600', 'sh', e.mnt]);
    e.children.push(holder.child);
    await holder.waitFor('IN');
    p.child.kill('SIGTERM');
    const x = await exitOf(p);
    assert.equal(x, { code: 0, signal: null }, p.stderr());
    assert.match(p.stderr(), /busy; detaching it lazily/);
    assert.ok(holder.child.exitCode === null, 'the holder was left alone');
    assert.equal(mountsAt(e.mnt), [], 'detached from the namespace');
    holder.child.kill('SIGKILL');
    assert.ok(await poll(() => procsWith(e.mnt).length === 0, WAIT_MS, 20), `left: ${procsWith(e.mnt).map(cmdlineOf).join('; ')}`);
  })));

// ---- 6. NOTIFY_SOCKET ----------------------------------------------------------------------

/**
 * Prints each datagram that arrives on fd 3 (an AF_UNIX SOCK_DGRAM socket) as a JSON line,
 * with a synchronous write: the loop never gives the event loop a turn.
 */
const RECEIVER_JS = `
const fs = require('fs');
const b = Buffer.alloc(65536);
for (;;) {
  let n;
  try {
    n = fs.readSync(3, b, 0, b.length, null);
  } catch (e) {
    if (e.code !== 'EAGAIN') throw e;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    continue;
  }
  fs.writeSync(1, JSON.stringify(b.toString('utf8', 0, n)) + '\\n');
}
`;

/**
 * Receives datagrams on an AF_UNIX SOCK_DGRAM socket at `path`, each as a list of lines. Node
 * has no unix datagram sockets: systemd-socket-activate binds it and, at the first datagram,
 * execs RECEIVER_JS in Node with the socket as fd 3 (the pid stays the same).
 */
async function notifyReceiver(e: Env): Promise<{ path: string; messages: () => string[][] }> {
  const path = join(e.base, 'notify.sock');
  const r = startCmd('systemd-socket-activate', ['--datagram', '--listen', path, process.execPath, '-e', RECEIVER_JS]);
  e.children.push(r.child);
  const bound = () => { try { return lstatSync(path).isSocket(); } catch { return false; } };
  assert.ok(await poll(() => bound() || r.child.exitCode !== null, WAIT_MS, 10) && r.child.exitCode === null,
    `systemd-socket-activate did not bind ${path} (exit ${r.child.exitCode})`);
  return {
    path,
    messages: () => r.out().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as string).split('\n').filter(Boolean)),
  };
}

test('NOTIFY_SOCKET, -f: READY=1 arrives once the mount serves (MAINPID, if given, is the process itself)', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const rx = await notifyReceiver(e);
    const p = startNode(CLI_REL, ['passthrough', e.src, e.mnt, '-f'], { NOTIFY_SOCKET: rx.path });
    e.children.push(p.child);
    let mountedAtReady = -1;
    const got = await poll(() => {
      if (!rx.messages().some((m) => m.includes('READY=1'))) return false;
      mountedAtReady = mountsAt(e.mnt).length;
      return true;
    }, WAIT_MS, 10);
    assert.ok(got, `no READY=1; got ${JSON.stringify(rx.messages())}; stderr ${p.stderr()}`);
    assert.is(mountedAtReady, 1, 'mounted when READY=1 arrived');
    const ready = rx.messages().find((m) => m.includes('READY=1'))!;
    const mainpid = ready.find((l) => l.startsWith('MAINPID='));
    if (mainpid) assert.is(mainpid, `MAINPID=${p.child.pid}`);
    assert.is(cat(join(e.mnt, e.file)), e.text);
    p.child.kill('SIGTERM');
    assert.equal(await exitOf(p), { code: 0, signal: null }, p.stderr());
    assertNothingLeft(e.mnt, '-f with NOTIFY_SOCKET');
  })));

test('NOTIFY_SOCKET, background: READY=1 with MAINPID=<the server pid printed>', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const rx = await notifyReceiver(e);
    const { pid } = await bgMount(e, [], { NOTIFY_SOCKET: rx.path });
    const got = await poll(() => rx.messages().some((m) => m.includes('READY=1')), WAIT_MS, 10);
    assert.ok(got, `no READY=1; got ${JSON.stringify(rx.messages())}`);
    for (const m of rx.messages().filter((x) => x.includes('READY=1'))) {
      assert.ok(m.includes(`MAINPID=${pid}`), `READY without MAINPID=${pid}: ${JSON.stringify(m)}`);
    }
    assert.is(cat(join(e.mnt, e.file)), e.text);
    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `server ${pid} still running`);
  })));

// ---- 7. dead mount -----------------------------------------------------------------------

test('dead mount: server killed (ENOTCONN); the next start detaches it with a message and serves, one mount', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const first = await bgMount(e);
    process.kill(first.pid, 'SIGKILL');
    assert.ok(await poll(() => !alive(first.pid), WAIT_MS, 20), 'killed server gone');
    // A stat that races with the kernel's abort of the connection (the dying server's
    // threads still hold /dev/fuse) fails with ECONNABORTED; once aborted, every request
    // is ENOTCONN: wait for that.
    let last = '';
    const dead = await poll(() => {
      try {
        execFileSync('stat', [e.mnt], { stdio: ['ignore', 'ignore', 'pipe'], timeout: WAIT_MS });
        last = 'stat succeeded';
      } catch (x) {
        last = String((x as { stderr?: Buffer }).stderr ?? x);
      }
      return /Transport endpoint is not connected/.test(last);
    }, WAIT_MS, 20);
    assert.ok(dead, `stat of the dead mount: ${last}`);
    assert.is(mountsAt(e.mnt).length, 1, 'the dead mount is still there');

    const { pid, r } = await bgMount(e);
    assert.match(r.stderr, /dead FUSE mount/);
    assert.match(r.stderr, /detached/);
    assert.ok(pid !== first.pid && alive(pid), `new server ${pid}`);
    assert.is(cat(join(e.mnt, e.file)), e.text);
    assert.is(mountsAt(e.mnt).length, 1, mountsAt(e.mnt).join('\n'));
    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `server ${pid} still running`);
    assertNothingLeft(e.mnt, 'after the restart and umount');
  })));

// ---- 8. --log ----------------------------------------------------------------------------

test('--log FILE: a -d background server writes its request trace there after ready', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const log = join(e.base, 'server.log');
    const { pid, r } = await bgMount(e, ['-d', '--log', log]);
    execFileSync('stat', [join(e.mnt, e.file)], { stdio: 'ignore', timeout: WAIT_MS });
    const traced = () => existsSync(log) && /LOOKUP/.test(readFileSync(log, 'utf8')) && readFileSync(log, 'utf8').includes(`"${e.file}"`);
    assert.ok(await poll(traced, WAIT_MS, 20), `no LOOKUP of ${e.file} in ${log}: ${existsSync(log) ? readFileSync(log, 'utf8') : '(missing)'}`);
    assert.not.ok(r.stdout.includes(e.file) || r.stderr.includes(e.file), 'the trace after ready is not the CLI\'s output');
    const u = await cli(['umount', e.mnt]);
    assert.is(u.code, 0, u.stderr);
    assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `server ${pid} still running`);
  })));

test('nothing of this file is left mounted or running', () => {
  const left = bases.flatMap(mountsBelow);
  assert.equal(left, []);
  assert.equal(bases.flatMap(procsWith), []);
});

test.run();
