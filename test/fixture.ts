// A test fixture server in a child process, driven by JSON lines: it prints
// "READY" once mounted ("MOUNTFAIL …" if not), then answers each
// {"id", "cmd", …} line on stdin with one {"id", "ok", …} line on stdout.
// SIGTERM makes it unmount lazily and exit. Used by serve-inode.ts and
// serve-passthrough.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import * as assert from 'uvu/assert';
import { WAIT_MS } from './helpers.js';

export interface Answer { id: number; ok: boolean; error?: string; [k: string]: unknown }
export interface FsStats { inodes: number; referenced: number; lookups: number; handles: number }
export interface ServerStats {
  requests: Record<string, number>; errors: Record<string, number>; inFlight: number; malformed: number; fs: FsStats;
}

export class JsonFixture {
  out = '';
  err = '';
  private line = '';
  private nextId = 1;
  /** Commands sent and not answered yet: resolve with the answer, or reject when the fixture is gone. */
  private readonly waiting = new Map<number, { answer: (a: Answer) => void; gone: (e: Error) => void }>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process has exited and its stdout and stderr are read to the end
   * ('exit' may come before the last output: Node's 'close' event). */
  readonly closed: Promise<void>;

  /** Spawns `cmd args…` with pipes on all three streams. */
  protected constructor(cmd: string, args: string[], readonly mnt: string) {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
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
        this.waiting.get(a.id)?.answer(a);
        this.waiting.delete(a.id);
      }
    });
    child.stderr!.on('data', (d: string) => { this.err += d; });
    child.stdin!.on('error', () => { /* the fixture exited */ });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    this.closed = new Promise((resolve) => child.on('close', () => {
      for (const w of this.waiting.values()) w.gone(new Error(`the fixture exited before answering; stderr ${this.err}`));
      this.waiting.clear();
      resolve();
    }));
  }
  readonly child: ChildProcess;

  /** Resolves once the fixture printed READY; stops it and rejects on MOUNTFAIL, exit or time-out. */
  protected async ready(ms = WAIT_MS): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => done(new Error(`no READY within ${ms} ms; stdout ${this.out}; stderr ${this.err}`)), ms);
      const check = () => {
        if (this.out.includes('READY\n')) done();
        else if (this.out.includes('MOUNTFAIL')) done(new Error(`mount failed: ${this.out} ${this.err}`));
      };
      const onExit = (code: number | null) => done(new Error(`fixture exited (${code}) before READY; stderr ${this.err}`));
      const done = (e?: Error) => {
        clearTimeout(t);
        this.child.stdout!.off('data', check);
        this.child.off('exit', onExit);
        if (e) reject(e); else resolve();
      };
      this.child.stdout!.on('data', check);
      this.child.on('exit', onExit);
      check();
    }).catch(async (e) => { await this.stop(); throw e; });
    return this;
  }

  get alive(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /** Sends one command; resolves with its answer (rejects after `ms`, or once the fixture has exited without answering). */
  send(cmd: object, ms = WAIT_MS): Promise<Answer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting.delete(id); reject(new Error(`no answer to ${JSON.stringify(cmd)} within ${ms} ms`)); }, ms);
      this.waiting.set(id, {
        answer: (a) => { clearTimeout(t); resolve(a); },
        gone: (e) => { clearTimeout(t); reject(e); },
      });
      if (this.alive) this.child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
      else {
        this.waiting.get(id)!.gone(new Error('the fixture has exited'));
        this.waiting.delete(id);
      }
    });
  }

  /** Sends a command that must succeed. */
  async ok(cmd: object, ms?: number): Promise<Answer> {
    const a = await this.send(cmd, ms);
    assert.ok(a.ok, `${JSON.stringify(cmd)} failed: ${a.error}`);
    return a;
  }

  /** Server log (the framework logs unexpected handler errors as "… failed: … → EIO"). */
  errors(): string {
    return this.err.trim();
  }

  /**
   * A barrier for `err`: afterwards it holds everything the fixture logged before now.
   * The fixture writes stdout and stderr synchronously (pipes, Linux), so whatever it
   * logged before answering a stats command is in the stderr pipe before the answer is
   * in the stdout pipe; this process may still handle the stderr data after the answer
   * in the same poll phase, hence one more turn of the loop (setImmediate runs after
   * the poll phase). A fixture that has exited: its output read to the end instead.
   */
  async caughtUp(): Promise<void> {
    if (this.alive) await this.send({ cmd: 'stats' }).catch(() => undefined);
    if (!this.alive) await this.closed;
    await new Promise((r) => setImmediate(r));
  }

  /** SIGTERM (the fixture unmounts lazily), SIGKILL after `ms`. */
  async stop(ms = WAIT_MS): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
  }
}
