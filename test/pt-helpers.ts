// Shared by the passthrough end-to-end tests: the serve-passthrough fixture in
// a child process (JSON commands on stdin), a fresh SRC/MNT per test, and
// small helpers for client processes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { cleanup, DIST, forceUnmount, isMounted, tempDir } from './helpers.js';

const FIXTURE = join(DIST, 'test/fixtures/serve-passthrough.js');

export type Mode = 'never' | 'prefer' | 'mandatory';
export interface PtOptions { inodeHandles?: Mode; nofile?: number; entryTimeout?: number; attrTimeout?: number; defaultPermissions?: boolean }

export interface FsStats { inodes: number; referenced: number; lookups: number; handles: number }
export interface Answer { id: number; ok: boolean; error?: string; [k: string]: unknown }
export interface StatsAnswer extends Answer {
  stats: { requests: Record<string, number>; errors: Record<string, number>; fs: FsStats };
  fds: number | null;
  nofile: number;
}

export class Fixture {
  out = '';
  err = '';
  private line = '';
  private nextId = 1;
  private readonly waiting = new Map<number, (a: Answer) => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.out += d;
      this.line += d;
      let i: number;
      while ((i = this.line.indexOf('\n')) >= 0) {
        const l = this.line.slice(0, i);
        this.line = this.line.slice(i + 1);
        if (!l.startsWith('{')) continue;
        const a = JSON.parse(l) as Answer;
        this.waiting.get(a.id)?.(a);
        this.waiting.delete(a.id);
      }
    });
    child.stderr!.on('data', (d: string) => { this.err += d; });
    child.stdin!.on('error', () => { /* the fixture exited */ });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Starts the fixture (through `prlimit --nofile=N:N` if `nofile`) and waits for READY. */
  static async start(src: string, mnt: string, opts: PtOptions, nofile?: number): Promise<Fixture> {
    const args = [FIXTURE, src, mnt, JSON.stringify(opts)];
    const child = nofile
      ? spawn('prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const f = new Fixture(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => done(new Error(`no READY within 10 s; stdout ${f.out}; stderr ${f.err}`)), 10_000);
      const check = () => {
        if (f.out.includes('READY\n')) done();
        else if (f.out.includes('MOUNTFAIL')) done(new Error(`mount failed: ${f.out} ${f.err}`));
      };
      const onExit = (code: number | null) => done(new Error(`fixture exited (${code}) before READY; stderr ${f.err}`));
      const done = (e?: Error) => {
        clearTimeout(t);
        f.child.stdout!.off('data', check);
        f.child.off('exit', onExit);
        if (e) reject(e); else resolve();
      };
      f.child.stdout!.on('data', check);
      f.child.on('exit', onExit);
      check();
    }).catch(async (e) => { await f.stop(); throw e; });
    return f;
  }

  get alive(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  send(cmd: object, ms = 10_000): Promise<Answer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting.delete(id); reject(new Error(`no answer to ${JSON.stringify(cmd)} within ${ms} ms`)); }, ms);
      this.waiting.set(id, (a) => { clearTimeout(t); resolve(a); });
      this.child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }
  async stats(): Promise<StatsAnswer> {
    const a = await this.send({ cmd: 'stats' });
    assert.ok(a.ok, `stats failed: ${a.error}`);
    return a as StatsAnswer;
  }
  async fdList(): Promise<string[]> {
    const a = await this.send({ cmd: 'fds' });
    return (a.fds as string[] | undefined) ?? [`fds failed: ${a.error}`];
  }
  /** Server log lines (the framework logs unexpected handler errors as "… failed: … → EIO"). */
  errors(): string {
    return this.err.trim();
  }

  async stop(ms = 5000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
  }
}

export interface Env { base: string; src: string; mnt: string; fx: Fixture }

/** Every base directory made here (a test file's last test checks none is still mounted). */
export const bases: string[] = [];

/**
 * A fresh SRC and MNT (MNT always under `base`; SRC on its own tmpfs if asked)
 * served by the fixture; stopped, unmounted and removed afterwards.
 */
export async function withPt(opts: PtOptions, fn: (e: Env) => Promise<void> | void, how: { tmpfs?: boolean; nofile?: number; src?: string } = {}): Promise<void> {
  const base = tempDir('tsfuse-test-pt-');
  bases.push(base);
  const src = how.src ?? join(base, 'src');
  const mnt = join(base, 'mnt');
  if (!how.src) mkdirSync(src);
  mkdirSync(mnt);
  let tmpfs = false;
  let fx: Fixture | undefined;
  try {
    if (how.tmpfs) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tsfuse-test-tmpfs', src]);
      tmpfs = true;
    }
    fx = await Fixture.start(src, mnt, opts, how.nofile);
    await fn({ base, src, mnt, fx });
  } finally {
    if (fx) await fx.stop();
    forceUnmount(mnt);
    if (tmpfs) {
      try { execFileSync('umount', [src]); } catch { execFileSync('umount', ['-l', src]); }
    }
    if (!isMounted(mnt)) cleanup(base);
  }
}

// ---- small helpers --------------------------------------------------------------

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function poll(cond: () => boolean, ms: number, step = 5): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(step);
  }
}

/** Makes the kernel forget unused dentries and inodes (FORGETs reach the server). */
export function dropCaches(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '2');
}

/** The fixture's stderr once it has caught up (a stats round trip, then a moment for the stderr pipe). */
export async function serverLog(fx: Fixture): Promise<string> {
  if (fx.alive) await fx.stats();
  await sleep(50);
  return fx.errors();
}

export function errCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

export interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a child to completion (killed after `ms`), capturing its output. */
export function run(cmd: string, args: string[], ms = 30_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

