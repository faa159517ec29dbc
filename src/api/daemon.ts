/**
 * Background mounts that tell the truth (DESIGN.md "Lifecycle").
 *
 * Node cannot fork(), so a background server is a new process: the parent
 * spawns it detached (its own session and process group) with its stdout and
 * stderr piped to the parent and a status pipe, and waits for one line on
 * that pipe: `ready` once the kernel's INIT has been answered. Until then the
 * child's output is the parent's (an error reaches the user's terminal); at
 * `ready` the child points its stdout/stderr at its log (default /dev/null)
 * and closes the status pipe, and the parent returns. A child that exits (or
 * is still starting at the time-out) is stopped with its process group, and
 * whatever it left mounted is detached: a failed start leaves nothing behind.
 *
 * The child side is `DaemonStatus` (from TSFUSE_STATUS_FD). `spawnMount` is the
 * library's form: a server process for a module that exports a filesystem.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { handedFd, mountTargets, native, unmount } from '../transport/index.js';
import type { FileSystem } from './filesystem.js';
import { mount, type FuseSession, type SessionOptions } from './session.js';
import { mountSupervised, supervisedSpec } from './supervisor.js';

const STATUS_ENV = 'TSFUSE_STATUS_FD';
const LOG_ENV = 'TSFUSE_LOG';

/** Sends `message` to systemd's NOTIFY_SOCKET, if set (Type=notify services). Returns
 * false when there is no socket or the send failed (a service manager is optional). */
export function sdNotify(message: string, socket = process.env.NOTIFY_SOCKET): boolean {
  if (!socket) return false;
  return native.notifySocket(socket, message) === 0;
}

/** How many mounts are stacked on `mnt` (from /proc/self/mountinfo). */
export function mountCount(mnt: string): number {
  const abs = resolve(mnt);
  return mountTargets().filter((m) => m === abs).length;
}

/**
 * The child's side of the status pipe. `ready()` once the mount serves: stdout and
 * stderr move to the log (the parent is about to exit and its pipes close), then the
 * parent is told. Without TSFUSE_STATUS_FD (a foreground run) both are no-ops.
 */
export class DaemonStatus {
  private constructor(private fd: number, private readonly log: string) {}

  /** The status pipe this process was given, if any (the variables are removed from the
   * environment, so the server's own children do not inherit them). */
  static fromEnv(): DaemonStatus | undefined {
    const v = process.env[STATUS_ENV];
    const log = process.env[LOG_ENV] ?? '/dev/null';
    delete process.env[STATUS_ENV];
    delete process.env[LOG_ENV];
    if (!v || !/^\d+$/.test(v)) return undefined;
    return new DaemonStatus(Number(v), log);
  }

  /** The mount serves: detach our output from the parent and say so. */
  ready(info: object = {}): void {
    if (this.fd < 0) return;
    let out: number;
    try {
      out = openSync(this.log, 'a');
    } catch (e) {
      process.stderr.write(`tsfuse: cannot open the log ${this.log} (${(e as Error).message}); logging to /dev/null\n`);
      out = openSync('/dev/null', 'a');
    }
    native.dup2(out, 1);
    native.dup2(out, 2);
    closeSync(out);
    this.send(`ready ${JSON.stringify({ pid: process.pid, ...info })}\n`);
  }

  /** Starting failed: the message is already on stderr; this only closes the pipe. */
  failed(): void {
    if (this.fd >= 0) this.send('');
  }

  private send(line: string): void {
    try {
      if (line) writeSync(this.fd, line);
      closeSync(this.fd);
    } catch { /* the parent is gone: nothing to tell */ }
    this.fd = -1;
  }
}

/** How `startDaemon` starts a server process and waits for it. */
export interface DaemonOptions {
  /** The mount point the child mounts on: a start that fails or times out detaches what
   * it left mounted there. Undefined: no mount to check (a handed-over /dev/fd/N). */
  mountpoint?: string;
  /** How long to wait for `ready`, in ms. Default 30 000. */
  timeout?: number;
  /** Copy the child's stdout/stderr to ours while it starts (the CLI). Default false: they
   * are collected and a failure's error carries them. */
  forward?: boolean;
  /** Where the child's stdout/stderr go once it is ready. Default /dev/null. */
  log?: string;
  /** Extra environment for the child. */
  env?: NodeJS.ProcessEnv;
  /** Extra fds for the child: child fd i ← our fd `fds[i]` (i ≥ 3). */
  fds?: Record<number, number>;
}

/** A start that failed: the child's exit status and what it wrote on stderr. */
export class DaemonError extends Error {
  /**
   * @param code - Why: 'ENOENT' (the program could not be started), 'ESRCH' (it exited
   * before it was ready) or 'ETIMEDOUT' (not ready in time; it was stopped).
   * @param exitCode - The child's exit status, null when it was killed or never ran.
   * @param signal - The signal that killed the child, or null.
   * @param stderr - What the child wrote on stderr while starting (up to 64 KiB).
   */
  constructor(message: string, readonly code: string, readonly exitCode: number | null, readonly signal: string | null, readonly stderr: string) {
    super(message);
    this.name = 'DaemonError';
  }
}

/** A server process that reported `ready`. */
export interface Daemon {
  /** The server process's pid. */
  pid: number;
  /** What the child said with `ready` (its pid, mount point …). */
  info: Record<string, unknown>;
  /** The child process (unreferenced: it does not keep this process alive). */
  child: ChildProcess;
}

/**
 * Starts `argv` (argv[0] the program) as a detached server and resolves once it reports
 * `ready` on its status pipe; rejects with a DaemonError when it exits first, or when
 * `timeout` passes (then it is stopped). Either way nothing is left mounted.
 */
export function startDaemon(argv: string[], opts: DaemonOptions = {}): Promise<Daemon> {
  const timeout = opts.timeout ?? 30_000;
  const mnt = opts.mountpoint && handedFd(opts.mountpoint) === undefined ? resolve(opts.mountpoint) : undefined;
  const before = mnt ? mountCount(mnt) : 0;
  const extra = opts.fds ?? {};
  const top = Math.max(3, ...Object.keys(extra).map(Number));
  let statusIndex = 3;
  while (statusIndex in extra) statusIndex++;
  const stdio: (string | number)[] = ['ignore', 'pipe', 'pipe'];
  for (let i = 3; i <= Math.max(top, statusIndex); i++) stdio.push(i === statusIndex ? 'pipe' : i in extra ? extra[i] : 'ignore');
  const child = spawn(argv[0], argv.slice(1), {
    detached: true,
    stdio: stdio as ('pipe' | 'ignore' | number)[],
    env: { ...process.env, ...opts.env, [STATUS_ENV]: String(statusIndex), [LOG_ENV]: opts.log ?? '/dev/null' },
  });
  return new Promise<Daemon>((resolvePromise, reject) => {
    let stderr = '';
    let status = '';
    let settled = false;
    const status$ = child.stdio[statusIndex] as NodeJS.ReadableStream;
    child.stdout!.on('data', (d: Buffer) => { if (opts.forward) process.stdout.write(d); });
    child.stderr!.on('data', (d: Buffer) => {
      if (opts.forward) process.stderr.write(d);
      if (stderr.length < 65536) stderr += d.toString();
    });
    const detachStreams = () => {
      for (const s of [child.stdout, child.stderr, status$] as ({ destroy?: () => void } | null)[]) s?.destroy?.();
    };
    const fail = async (message: string, code: string, exitCode: number | null, signal: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      await stop(child);
      const cleaned = mnt ? cleanup(mnt, before) : '';
      detachStreams();
      reject(new DaemonError(message + cleaned, code, exitCode, signal, stderr.trim()));
    };
    status$.on('data', (d: Buffer) => {
      status += d.toString();
      const m = /^ready (.*)\n/.exec(status);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      detachStreams();
      child.unref();
      let info: Record<string, unknown> = {};
      try { info = JSON.parse(m[1]); } catch { /* a bare ready */ }
      resolvePromise({ pid: child.pid!, info, child });
    });
    child.on('error', (e) => void fail(`cannot start ${argv[0]}: ${e.message}`, 'ENOENT', null, null));
    // 'close', not 'exit': after the child's stderr is drained, so its error is complete.
    child.on('close', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      void fail(`the server ${how} before the mount was ready${!stderr.trim() ? '' : opts.forward ? ' (its reason is above)' : `: ${lastLines(stderr)}`}`,
        'ESRCH', code, signal);
    });
    const timer = setTimeout(() => void fail(`the mount was not ready within ${timeout} ms (no INIT answered); ` +
      `the server (pid ${child.pid}) was stopped: give it longer (option timeout; the CLI's --timeout SECONDS), ` +
      'or run it in the foreground (-f -d) to see where it stops', 'ETIMEDOUT', null, null), timeout);
  });
}

function lastLines(s: string): string {
  return s.trim().split('\n').slice(-5).join('\n');
}

/** Stops a starting child and its process group: SIGTERM, then SIGKILL after 2 s. */
async function stop(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (!pid) return;
  const exited = child.exitCode !== null || child.signalCode !== null;
  const kill = (sig: NodeJS.Signals) => { try { process.kill(-pid, sig); } catch { /* the group is gone */ } };
  if (!exited) {
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    kill('SIGTERM');
    const t = setTimeout(() => kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
  kill('SIGKILL'); // the rest of the group (a fusermount3 it started, say)
}

/** Detaches what a failed start left mounted on `mnt` (beyond the `before` mounts there). */
function cleanup(mnt: string, before: number): string {
  let n = 0;
  while (mountCount(mnt) > before && n < 8) {
    n++;
    try {
      native.umount2(mnt, 2 /* MNT_DETACH */);
    } catch {
      // not root: fusermount3 -u -z (best effort, synchronous enough for a failed start)
      void unmount(mnt, { lazy: true }).catch(() => {});
      break;
    }
  }
  return n ? `; the mount it left on ${mnt} was detached` : '';
}

/** What `spawnMount` serves, and how. */
export interface SpawnMountOptions extends DaemonOptions {
  /** The module (a path, or a package specifier) whose export is the filesystem. */
  module: string;
  /** The export to use (default "default"): a FileSystem (an InodeTree, a Passthrough …),
   * or a function of `arg` that returns one (or a Promise of one). */
  export?: string;
  /** Passed to the export when it is a function (JSON-serialisable). */
  arg?: unknown;
  /** Mount and server options (JSON-serialisable: no `log` function). */
  options?: Record<string, unknown>;
  /** Run under a supervisor that restarts a server that dies, without unmounting
   * (crash takeover; src/api/supervisor.ts). The returned pid is the supervisor's. */
  supervise?: boolean;
  /** Supervised: give up when the server died more than this many times within a minute. Default 10. */
  maxRestarts?: number;
}

/** A mount served by a background process started by `spawnMount`. */
export interface SpawnedMount {
  /** The server's pid (the supervisor's, with `supervise`). */
  pid: number;
  /** The absolute path of the mount point. */
  mountpoint: string;
  /** Unmounts (lazily with `lazy`) and waits for the server process to exit. */
  unmount(opts?: { lazy?: boolean }): Promise<void>;
}

/** The child entry of spawnMount (compiled next to this file). */
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'daemon-child.js');

/**
 * Starts a server process that mounts the filesystem `opts.module` exports on `mountpoint`;
 * resolves once the kernel's INIT has been answered, rejects with the child's error (a
 * DaemonError carrying its stderr) otherwise. The server runs detached until unmounted.
 */
export async function spawnMount(mountpoint: string, opts: SpawnMountOptions): Promise<SpawnedMount> {
  const mod = /^[./]/.test(opts.module) ? resolve(opts.module) : opts.module;
  const spec = JSON.stringify({ module: mod, export: opts.export ?? 'default', arg: opts.arg, mountpoint, options: opts.options ?? {}, supervise: !!opts.supervise, maxRestarts: opts.maxRestarts });
  const d = await startDaemon([process.execPath, CHILD, spec], { ...opts, mountpoint });
  const exited = new Promise<void>((r) => {
    if (d.child.exitCode !== null || d.child.signalCode !== null) r();
    else d.child.once('exit', () => r());
  });
  return {
    pid: d.pid,
    mountpoint: handedFd(mountpoint) === undefined ? resolve(mountpoint) : mountpoint,
    unmount: async (u = {}) => {
      d.child.ref(); // until it has exited
      try {
        await unmount(mountpoint, { lazy: u.lazy });
        await exited;
      } finally {
        d.child.unref();
      }
    },
  };
}

/**
 * Mounts `fs` and serves it until unmounted: the body of every server process (the CLI's,
 * foreground or background, and spawnMount's). Reports readiness (the status pipe of a
 * background start, systemd's READY=1), unmounts on SIGINT/SIGTERM (lazily if busy,
 * saying so), and returns the exit status: 0 after a clean unmount, 1 on failure.
 */
export async function serveUntilUnmounted(mountpoint: string, fs: FileSystem, opts: SessionOptions, what: string,
  /** Runs once the mount serves, before it is reported ready (e.g. a control socket); what it
   * returns is called when the session ends. Failing fails the start. */
  onServing?: (session: FuseSession) => Promise<(() => void) | void>): Promise<number> {
  const status = DaemonStatus.fromEnv();
  const supervised = supervisedSpec();
  let session;
  try {
    session = supervised ? await mountSupervised(supervised, fs, opts) : await mount(mountpoint, fs, opts);
  } catch (e) {
    process.stderr.write(`tsfuse: mounting ${what} on ${mountpoint} failed: ${(e as Error).message}\n`);
    status?.failed();
    return 1;
  }
  const where = session.mountpoint;
  let done: (() => void) | void;
  try {
    done = await onServing?.(session);
  } catch (e) {
    process.stderr.write(`tsfuse: ${what} on ${where}: ${(e as Error).message}\n`);
    status?.failed();
    await session.unmount({ lazy: true }).catch(() => {});
    return 1;
  }
  const stopHow = session.connection.method === 'fd' ? 'Ctrl-C to stop (the manager that mounted it unmounts it)'
    : `Ctrl-C or \`tsfuse umount ${where}\` to stop`;
  if (status) {
    status.ready({ mountpoint: where }); // the parent says it: our stdout is the log from here
  } else if (supervised) {
    // the supervisor says it
  } else {
    process.stdout.write(`tsfuse: ${what} mounted on ${where} (${stopHow})\n`);
    sdNotify(`READY=1\nSTATUS=serving ${where}\nMAINPID=${process.pid}`);
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    sdNotify('STOPPING=1');
    try {
      await session.unmount();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') {
        process.stderr.write(`tsfuse: unmounting ${where} failed: ${(e as Error).message}\n`);
        stopping = false;
        return;
      }
      process.stderr.write(`tsfuse: ${where} is busy; detaching it lazily (${sig})\n`);
      await session.unmount({ lazy: true });
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGHUP', () => { /* a closed terminal is not a reason to stop serving */ });
  const err = await session.closed;
  if (done) done();
  if (err) {
    process.stderr.write(`tsfuse: session on ${where} ended: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(`tsfuse: unmounted ${where}\n`);
  return 0;
}
