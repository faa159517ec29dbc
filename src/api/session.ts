/**
 * mount(): the one call most users make. Resolves only after the kernel's
 * INIT has been answered (the mount is live); rejects with the real errno and
 * a message otherwise.
 */
import { Worker } from 'node:worker_threads';
import { closeSync } from 'node:fs';
import { Connection, resolveMountOptions, type MountOptions, type Negotiated, type UnmountOptions } from '../transport/index.js';
import type { FileSystem } from './filesystem.js';
import type { FileSystemSpec } from './load.js';
import { Server, type ServerOptions, type ServerStats } from './server.js';

/** Serving one mount from several threads. */
export interface ThreadOptions {
  /**
   * Serve with this many threads (default 1): the first is this one, each other a worker
   * thread with its own clone of the /dev/fuse fd (FUSE_DEV_IOC_CLONE), its own event loop
   * and its own filesystem built from `threadFileSystem`; the kernel gives each request to
   * whichever thread reads it first. Every thread must answer every node id the same way,
   * so this is for filesystems whose node ids mean the same in every instance (stateless or
   * built the same from the same data, like hello, or sharing their state themselves): an
   * InodeTree (memfs, the passthrough) hands out ids from its own table and cannot be
   * threaded this way.
   */
  threads?: number;
  /** Where each extra thread gets its filesystem (needed with threads > 1). */
  threadFileSystem?: FileSystemSpec;
}

/** Everything `mount()` accepts: mount options, server options and thread options. */
export type SessionOptions = MountOptions & ServerOptions & ThreadOptions;

const SERVER_KEYS = ['entryTimeout', 'attrTimeout', 'negativeTimeout', 'debug', 'log', 'maxReply'] as const;
const THREAD_KEYS = ['threads', 'threadFileSystem'] as const;

/** A live mount: the connection to the kernel and the Server answering it (what `mount()` resolves to). */
export class FuseSession {
  /** Resolves when the session ends: null after a normal unmount, else the error. */
  readonly closed: Promise<Error | null>;

  /** The extra threads (option `threads`), each serving its own clone of the device. */
  readonly threads: Worker[] = [];

  /** @param connection - The mount's /dev/fuse connection. @param server - The Server answering its requests. */
  constructor(readonly connection: Connection, readonly server: Server) {
    this.closed = connection.closed.then(async (e) => {
      // The threads' reads fail with ENODEV once the kernel ends the session: they finish.
      await Promise.all(this.threads.map((w) => threadExit(w)));
      return e;
    });
  }

  /** The absolute path of the mount point. */
  get mountpoint(): string {
    return this.connection.mountpoint;
  }
  /** What INIT agreed with the kernel (protocol minor, flags, sizes). */
  get negotiated(): Negotiated {
    return this.connection.negotiated!;
  }

  /** Unmounts and waits for the session to end. A busy mount rejects with EBUSY unless `lazy`. */
  unmount(opts?: UnmountOptions): Promise<void> {
    return this.connection.unmount(opts);
  }

  /** Adds a channel on a cloned /dev/fuse fd (FUSE_DEV_IOC_CLONE). */
  clone(): number {
    return this.connection.clone();
  }

  /**
   * The extra threads' stats as they last reported them: each thread sends its figures
   * when the session ends (and on a "stats" message). Returns a function
   * giving the latest list.
   */
  threadStats(): () => ServerStats[] {
    const latest: ServerStats[] = [];
    this.threads.forEach((w, i) => w.on('message', (m: { stats?: ServerStats }) => { if (m.stats) latest[i] = m.stats; }));
    return () => latest.filter(Boolean);
  }

  /** This thread's Server stats (see `threadStats` for the others). */
  stats(): ServerStats {
    return this.server.stats();
  }
}

/** Splits session options into the Server's and the mount's (checking the timeouts). */
export function splitSessionOptions(options: SessionOptions): { serverOpts: ServerOptions; mountOpts: MountOptions; threadOpts: ThreadOptions } {
  const serverOpts: ServerOptions = {};
  const mountOpts: Record<string, unknown> = { ...options };
  const threadOpts: ThreadOptions = {};
  for (const k of THREAD_KEYS) {
    if (k in mountOpts) {
      (threadOpts as Record<string, unknown>)[k] = mountOpts[k];
      delete mountOpts[k];
    }
  }
  const n = threadOpts.threads;
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 64)) {
    throw Object.assign(new Error(`invalid option threads: must be a whole number from 1 to 64, got ${JSON.stringify(n)}`), { code: 'EINVAL', option: 'threads' });
  }
  if ((n ?? 1) > 1 && (mountOpts as MountOptions).ioUring) {
    throw Object.assign(new Error('invalid option threads: the io_uring queues are served by the first thread (use one or the other)'), { code: 'EINVAL', option: 'threads' });
  }
  if ((n ?? 1) > 1 && (!threadOpts.threadFileSystem || typeof threadOpts.threadFileSystem.module !== 'string')) {
    throw Object.assign(new Error('invalid option threads: more than one thread needs threadFileSystem ({ module, export, arg }): ' +
      'each thread builds its own filesystem, as JavaScript objects cannot be shared between threads'), { code: 'EINVAL', option: 'threadFileSystem' });
  }
  for (const k of SERVER_KEYS) {
    if (k in mountOpts) {
      (serverOpts as Record<string, unknown>)[k] = mountOpts[k];
      delete mountOpts[k];
    }
  }
  for (const k of ['entryTimeout', 'attrTimeout', 'negativeTimeout'] as const) {
    const v = serverOpts[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0)) {
      throw Object.assign(new Error(`invalid option ${k}: must be a number of milliseconds ≥ 0, got ${JSON.stringify(v)}`), { code: 'EINVAL', option: k });
    }
  }
  return { serverOpts, mountOpts: mountOpts as MountOptions, threadOpts };
}

/** The log a session writes to: `log`, or stderr prefixed "tsfuse: ". */
export function sessionLog(o: ServerOptions): (line: string) => void {
  return o.log ?? ((l: string) => process.stderr.write(`tsfuse: ${l}\n`));
}

/** Mounts `fs` on `mountpoint` and serves it on this process's event loop. */
export async function mount(mountpoint: string, fs: FileSystem, options: SessionOptions = {}): Promise<FuseSession> {
  const { serverOpts, mountOpts, threadOpts } = splitSessionOptions(options);
  const server = new Server(fs, serverOpts);
  const log = sessionLog(serverOpts);
  // The session's own keys are taken out above; named as known, an unknown key's message lists them too.
  const conn = await Connection.mount(mountpoint, server, mountOpts as MountOptions, log, [...SERVER_KEYS, ...THREAD_KEYS]);
  const session = new FuseSession(conn, server);
  try {
    for (let i = 1; i < (threadOpts.threads ?? 1); i++) session.threads.push(await startThread(conn, i, mountOpts, serverOpts, threadOpts.threadFileSystem!));
  } catch (e) {
    await conn.unmount({ lazy: true }).catch(() => {});
    throw e;
  }
  return session;
}

/** Starts extra thread `index` on a new clone of `conn`'s device; resolves once it serves. */
async function startThread(conn: Connection, index: number, mountOpts: MountOptions, serverOpts: ServerOptions, spec: FileSystemSpec): Promise<Worker> {
  const fd = conn.cloneFd();
  const { log: _log, ...plain } = serverOpts; // a function cannot cross to a thread
  let w: Worker;
  try {
    w = new Worker(new URL('./thread-worker.js', import.meta.url), {
      // The parent's flags but those that apply only to its own entry (`node --input-type=module
      // -e …` would make every worker fail: --input-type needs string input).
      execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
      workerData: {
        index, fd, mountpoint: conn.mountpoint, options: resolveMountOptions(mountOpts), serverOpts: plain,
        offer: conn.offer, negotiated: conn.negotiated, spec,
      },
    });
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      w.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(`thread ${index}: ${m.error ?? 'failed to start'}`))));
      w.once('error', (e) => reject(new Error(`thread ${index}: ${e.message}`)));
      w.once('exit', (code) => reject(new Error(`thread ${index} exited (${code}) before serving`)));
    });
  } catch (e) {
    await w.terminate(); // the thread owns the fd: it closed it when it failed
    throw e;
  }
  w.unref();
  return w;
}

/** Resolves when thread `w` has finished (terminated if it has not within 5 s). */
function threadExit(w: Worker): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { void w.terminate(); }, 5000);
    t.unref();
    w.ref(); // keep this process alive until the thread has finished
    w.once('exit', () => { clearTimeout(t); resolve(); });
    if (w.threadId < 0) { clearTimeout(t); resolve(); } // exited already
  });
}
