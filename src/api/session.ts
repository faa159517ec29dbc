/**
 * mount(): the one call most users make. Resolves only after the kernel's
 * INIT has been answered (the mount is live); rejects with the real errno and
 * a message otherwise.
 */
import { Connection, type MountOptions, type Negotiated, type UnmountOptions } from '../transport/index.js';
import type { FileSystem } from './filesystem.js';
import { Server, type ServerOptions, type ServerStats } from './server.js';

export type SessionOptions = MountOptions & ServerOptions;

const SERVER_KEYS = ['entryTimeout', 'attrTimeout', 'negativeTimeout', 'debug', 'log', 'maxReply'] as const;

export class FuseSession {
  /** Resolves when the session ends: null after a normal unmount, else the error. */
  readonly closed: Promise<Error | null>;

  constructor(readonly connection: Connection, readonly server: Server) {
    this.closed = connection.closed;
  }

  get mountpoint(): string {
    return this.connection.mountpoint;
  }
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

  stats(): ServerStats {
    return this.server.stats();
  }
}

/** Splits session options into the Server's and the mount's (checking the timeouts). */
export function splitSessionOptions(options: SessionOptions): { serverOpts: ServerOptions; mountOpts: MountOptions } {
  const serverOpts: ServerOptions = {};
  const mountOpts: Record<string, unknown> = { ...options };
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
  return { serverOpts, mountOpts: mountOpts as MountOptions };
}

/** The log a session writes to: `log`, or stderr prefixed "tsfuse: ". */
export function sessionLog(o: ServerOptions): (line: string) => void {
  return o.log ?? ((l: string) => process.stderr.write(`tsfuse: ${l}\n`));
}

/** Mounts `fs` on `mountpoint` and serves it on this process's event loop. */
export async function mount(mountpoint: string, fs: FileSystem, options: SessionOptions = {}): Promise<FuseSession> {
  const { serverOpts, mountOpts } = splitSessionOptions(options);
  const server = new Server(fs, serverOpts);
  const log = sessionLog(serverOpts);
  const conn = await Connection.mount(mountpoint, server, mountOpts as MountOptions, log);
  return new FuseSession(conn, server);
}
