/**
 * Syscalls as another user, from a Node child process: the one helper the
 * conformance suite and the tests use to act as a client of a mount (never
 * the serving process itself: a process that serves a mount and touches it
 * synchronously deadlocks).
 *
 * The child (as-user-child.ts) takes its credentials before it runs anything:
 * supplementary groups (a login's groups for `uid` by default, as
 * initgroups(3) gives them), then gid, then uid, then the umask. It then runs
 * JavaScript bodies with `sys` in scope: Node's fs plus what Node lacks
 * (mknod, mkfifo, renameat2, utimensat with UTIME_OMIT/NOW, xattrs,
 * fallocate, 64-bit pread/pwrite/lseek, copy_file_range, locks), through the
 * native addon. Arguments and results travel as JSON over the child's stdin
 * and stdout, with bytes (names that are not UTF-8) and bigints kept exact.
 *
 * @example
 * ```ts
 * const r = await runAs<number>('return (await fsp.stat(a[0])).mode', [path], { uid: 65534 });
 * await runOps([['umask', 0o027], ['mkdir', dir, 0o777]]);
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Who the child is. Everything unset stays as the parent's (root in the tests). */
export interface As {
  /** The uid to become (real, effective and saved). */
  uid?: number;
  /** The gid to become; default: `uid`'s primary group from /etc/passwd, else `uid`. */
  gid?: number;
  /** Supplementary groups: exact numbers, or 'login' (default when `uid` is set): the group
   * database's groups of `uid`'s user, none if it has no passwd entry. */
  groups?: number[] | 'login';
  /** The child's umask (default 0: modes are exactly what the body asks for). */
  umask?: number;
  /** Working directory (default '/'). */
  cwd?: string;
}

/** One step of `runOps`: the name of a `sys` function and its arguments. */
export type Op = [string, ...unknown[]];

/** An error thrown in the child: `code` is the errno name (EACCES) when it was a syscall's. */
export class AsUserError extends Error {
  constructor(message: string, readonly code: string | undefined, readonly errno?: number) {
    super(message);
  }
}

const ERRNOS = constants.errno as Record<string, number>;

/** The errno name of a failed call; Node's libuv names some errnos "Unknown system error -116"
 * (ESTALE), so those are looked up by number. */
export function errnoCode(e: unknown): string {
  const x = e as NodeJS.ErrnoException;
  if (x?.code && !x.code.startsWith('Unknown')) return x.code;
  const n = -(x?.errno ?? 0);
  return Object.entries(ERRNOS).find(([, v]) => v === n)?.[0] ?? x?.code ?? String(e);
}

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'as-user-child.js');

/** JSON with Uint8Array and bigint kept exact (both ways). */
export function encode(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return { $big: x.toString() };
    if (x instanceof Uint8Array) return { $buf: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64') };
    if (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) {
      return { $buf: Buffer.from((x as { data: number[] }).data).toString('base64') }; // Buffer.toJSON ran first
    }
    return x;
  });
}
export function decode(s: string): unknown {
  return JSON.parse(s, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      const o = x as { $big?: string; $buf?: string };
      if (typeof o.$big === 'string') return BigInt(o.$big);
      if (typeof o.$buf === 'string') return Buffer.from(o.$buf, 'base64');
    }
    return x;
  });
}

interface Reply { ok?: unknown; err?: { message: string; code?: string; errno?: number }; i: number }

/**
 * A long-running child acting as `as`: each `run` sends one body and waits for its
 * answer (bodies run one at a time, in order). `close()` ends it; a child that does
 * not answer within `ms` is killed and the call rejects.
 */
export class AsUser {
  private child: ChildProcess;
  private buf = '';
  private err = '';
  private seq = 0;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private exited: string | undefined;

  constructor(readonly as: As = {}) {
    this.child = spawn(process.execPath, [CHILD, encode(as)], { cwd: as.cwd ?? '/', stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => this.onData(d));
    this.child.stderr!.on('data', (d: string) => { this.err = (this.err + d).slice(-4000); });
    this.child.stdin!.on('error', () => { /* the child died; 'close' rejects what waits */ });
    this.child.on('error', (e) => this.fail(`cannot start node: ${e.message}`));
    this.child.on('close', (code, signal) => this.fail(`exited ${code ?? signal}${this.err ? `: ${this.err.trim()}` : ''}`));
  }

  /** The child's pid. */
  get pid(): number | undefined { return this.child.pid; }

  /**
   * Runs `body`, the text of an async function with `a` (the arguments), `sys`, `fs`,
   * `fsp`, `Buffer` and `L` (Linux constants) in scope; resolves with what it returns.
   */
  run<T = unknown>(body: string, args: unknown[] = [], ms = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new AsUserError(`as-user child ${this.exited}`, undefined));
    const i = ++this.seq;
    let line: string;
    try {
      line = encode({ i, body, args }) + '\n';
    } catch (e) {
      return Promise.reject(e); // nothing sent, nothing waits
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(i);
        this.child.kill('SIGKILL');
        reject(new AsUserError(`as-user child: no answer within ${ms} ms${this.err ? `; stderr: ${this.err.trim()}` : ''}`, 'ETIMEDOUT'));
      }, ms);
      this.waiting.set(i, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.stdin!.write(line);
    });
  }

  /** Runs `ops` in order; stops at the first that throws (and rejects with its error). */
  ops(ops: Op[], ms = 60_000): Promise<unknown[]> {
    return this.run('const out = []; for (const [op, ...x] of a) out.push(await sys.op(op, ...x)); return out;', ops, ms);
  }

  /** Ends the child (after the calls already sent). */
  close(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('close', () => resolve());
      this.child.stdin!.end();
    });
  }

  /** Kills the child now. */
  kill(): void { this.child.kill('SIGKILL'); }

  /** Kills the child and resolves once it has exited (its fds and locks are gone). */
  killed(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let r: Reply;
      try {
        r = decode(line) as Reply;
      } catch {
        this.err += `\nnot JSON: ${line.slice(0, 200)}`;
        continue;
      }
      const w = this.waiting.get(r.i);
      if (!w) continue;
      this.waiting.delete(r.i);
      clearTimeout(w.timer);
      if (r.err) {
        const who = this.as.uid === undefined ? '' : ` (as uid ${this.as.uid})`;
        w.reject(new AsUserError(`${r.err.message}${who}`, r.err.code, r.err.errno));
      } else w.resolve(r.ok);
    }
  }

  private fail(why: string): void {
    this.exited ??= why;
    for (const [i, w] of this.waiting) {
      clearTimeout(w.timer);
      this.waiting.delete(i);
      w.reject(new AsUserError(`as-user child ${why}`, undefined));
    }
  }
}

/** Runs one body in a fresh child acting as `as` (see `AsUser.run`). */
export async function runAs<T = unknown>(body: string, args: unknown[] = [], as: As = {}, ms = 60_000): Promise<T> {
  const c = new AsUser(as);
  try {
    return await c.run<T>(body, args, ms);
  } finally {
    await c.killed(); // resolved only when its fds and locks are released
  }
}

/** Runs `ops` (names of `sys` functions with arguments) in a fresh child acting as `as`. */
export async function runOps(ops: Op[], as: As = {}, ms = 60_000): Promise<unknown[]> {
  const c = new AsUser(as);
  try {
    return await c.ops(ops, ms);
  } finally {
    await c.killed();
  }
}
