/**
 * Shared test helpers. Every test that can block gets a time-out through
 * `timed()`; every mount is made below tempDir() (TMPDIR, private to each run) so the
 * runner (test/run.mjs) can find and detach anything a crashed test left.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO = new URL('../../', import.meta.url).pathname;
export const DIST = join(REPO, 'dist');

/**
 * How long a test waits for something that should happen promptly (a READY line, an
 * answer, a RELEASE or FORGET the kernel sends asynchronously, a process's exit) before
 * it calls it a hang. Generous on purpose: on a loaded machine "promptly" can take
 * seconds, and only a real hang may fail a test. Tests never assert how fast something
 * happened; they wait for the event itself, or check the order of events.
 */
export const WAIT_MS = 30_000;

/** Wraps a test body so it fails (instead of hanging) after `ms`. */
export function timed<T>(ms: number, fn: () => Promise<T> | T): () => Promise<T> {
  return () => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`test timed out after ${ms} ms`)), ms);
    });
    return Promise.race([Promise.resolve().then(fn), limit]).finally(() => clearTimeout(timer));
  };
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'tsfuse-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Is `dir` a mount point right now (per /proc/self/mountinfo)? */
export function isMounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .some((l) => l.split(' ')[4] === dir);
}

/** Lazily unmounts `dir` if it is mounted; never throws. */
export function forceUnmount(dir: string): void {
  if (!isMounted(dir)) return;
  try { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); } catch { /* best effort */ }
}

/** Removes a temp dir after making sure nothing is mounted on it. */
export function cleanup(dir: string): void {
  forceUnmount(dir);
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* still busy: leave it */ }
}

export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stdout contains `text` (rejects if the process exits first). */
  waitFor(text: string, ms?: number): Promise<void>;
}

/** Starts `node <script> ...args` (a path under dist/) and captures its output. */
export function startNode(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [join(DIST, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child, exited, stdout: () => out, stderr: () => err,
    waitFor(text, ms = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => { stop(); reject(new Error(`no "${text}" within ${ms} ms; stderr: ${err}`)); }, ms);
        const check = () => { if (out.includes(text)) { stop(); resolve(); } };
        const onExit = (code: number | null) => { stop(); reject(new Error(`exited (${code}) before "${text}"; stderr: ${err}`)); };
        const stop = () => { clearTimeout(t); child.stdout!.off('data', check); child.off('exit', onExit); };
        child.stdout!.on('data', check);
        child.on('exit', onExit);
        check();
      });
    },
  };
}

/** Stops a server process: SIGTERM, then SIGKILL after `ms`. */
export async function stop(p: Proc, ms = WAIT_MS): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), ms);
  await p.exited;
  clearTimeout(t);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `step` ms until it holds (true) or `ms` pass (false): for a
 * positive event with no notification of its own; pass a generous `ms` (WAIT_MS). */
export async function poll(cond: () => boolean, ms: number, step = 5): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(step);
  }
}

/** Makes the kernel drop unused dentries and inodes ('2'; '3' also the page cache): FORGETs follow asynchronously. */
export function dropCaches(what: '2' | '3' = '2'): void {
  writeFileSync('/proc/sys/vm/drop_caches', what);
}

export interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a command to completion (killed after `ms`), capturing its output. */
export function run(cmd: string, args: string[], ms = 30_000, opts: SpawnOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
  });
}

/** Runs CommonJS `code` in a child node (`node -e code -- ...args`); its stdout must be one JSON value. */
export async function runNode<T>(code: string, args: string[], ms = 30_000): Promise<T> {
  const r = await run(process.execPath, ['-e', code, '--', ...args], ms);
  if (r.code !== 0) throw new Error(`child node exited ${r.code ?? r.signal}: ${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`child node printed no JSON: ${r.stdout} ${r.stderr}`);
  }
}

/** The error code `f` throws (e.g. 'ENOENT'), or undefined when it does not throw. */
export function errCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

// ---- /dev/fuse mode: changed by a test (unprivileged mounts), always restored ----------

let savedDevFuseMode: number | undefined;
/** Sets /dev/fuse's mode; the first call remembers the original for restoreDevFuseMode
 * (also run at process exit). */
export function setDevFuseMode(mode: number): void {
  if (savedDevFuseMode === undefined) savedDevFuseMode = statSync('/dev/fuse').mode & 0o7777;
  chmodSync('/dev/fuse', mode);
}
export function restoreDevFuseMode(): void {
  if (savedDevFuseMode === undefined) return;
  chmodSync('/dev/fuse', savedDevFuseMode);
  savedDevFuseMode = undefined;
}
process.on('exit', () => { try { restoreDevFuseMode(); } catch { /* reported by the test */ } });

// ---- what the system says: mounts and processes --------------------------------------------

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The lines of /proc/self/mountinfo whose mount point is `path` (stacked mounts: several). */
export function mountsAt(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l && unescapeMount(l.split(' ')[4]) === path);
}

/** Mount points at or below `dir`. */
export function mountsBelow(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => unescapeMount(l.split(' ')[4]))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** State and parent of `pid` from /proc/PID/stat, or undefined if it is gone. */
export function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

/** Is `pid` running (a zombie nobody reaped yet has exited)? */
export function alive(pid: number): boolean {
  const s = procStat(pid);
  return !!s && s.state !== 'Z' && s.state !== 'X';
}

/** Running processes (other than this one) whose command line (arguments joined by spaces) contains `text`. */
export function procsWith(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmd: string;
    try { cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { continue; }
    if (cmd.includes(text) && alive(Number(d))) out.push(Number(d));
  }
  return out;
}

/** Running children of `ppid`. */
export function childrenOf(ppid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => procStat(p)?.ppid === ppid && alive(p));
}

/** The targets of `pid`'s open fds (ls -l /proc/PID/fd). */
export function fdsOf(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return '?'; } });
  } catch {
    return [];
  }
}

/** Detaches each of `mounts` lazily, once per mount stacked there. */
export function detachAll(mounts: string[]): void {
  for (const m of mounts) {
    for (let i = 0; i < 8 && mountsAt(m).length; i++) {
      try { execFileSync('umount', ['-l', m], { stdio: 'ignore' }); } catch { break; }
    }
  }
}

/**
 * The end of a test that started servers (and supervisors) working below `base`: detaches
 * `mounts` lazily — a detached mount ends its session once its last user is gone, and its
 * server exits, its supervisor with it — waits a little for `pids` to end, kills what still
 * runs of them, their children and anything with `base` in its command line, detaches
 * `mounts` and then `more` (e.g. a tmpfs source) again, and removes `base` when nothing is
 * mounted below it any more.
 */
export async function stopServersBelow(base: string, mounts: string[], pids: number[], more: string[] = []): Promise<void> {
  detachAll(mounts);
  await poll(() => pids.every((p) => !alive(p)), 5000, 20);
  for (const pid of pids) {
    for (const k of [...childrenOf(pid), pid]) try { process.kill(k, 'SIGKILL'); } catch { /* gone */ }
  }
  for (const pid of procsWith(base)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  await poll(() => procsWith(base).length === 0, WAIT_MS, 20);
  detachAll([...mounts, ...more]);
  if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
}
