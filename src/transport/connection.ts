/**
 * One kernel connection: the /dev/fuse fd(s) of a mount, the read loop, INIT
 * negotiation, reply writing and the end of the session.
 *
 * Read loop (DESIGN.md, "Transport"): the fd is O_NONBLOCK and watched by a
 * uv_poll_t on the Node loop; when readable the addon reads until EAGAIN and
 * calls `onRead(n)` once per request with a borrowed buffer. Read errors:
 * EINTR and ENOENT (the request was interrupted before we read it) → read
 * again; ENODEV → unmounted, end the session; anything else ends it with
 * that error. Write errors: ENOENT → the request is gone (interrupted or
 * unmounted), not an error; EINVAL → a bug of ours, logged.
 */
import {
  decodeRequest, errnoName, FUSE_BUFFER_HEADER_SIZE, FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION, FUSE_MIN_READ_BUFFER, XATTR_SIZE_MAX, InitFlag, initFlags64, negotiateVersion, Opcode,
  OUT_HEADER_SIZE, splitInitFlags, structs, writeOutHeader, ENODEV, ENOENT, EINTR, EAGAIN, EPROTO, EINVAL,
  ETIMEDOUT, ENOTCONN, EPERM, initOutSize,
} from '../abi/index.js';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { checkMountpoint, handedDevice, handedFd, mountDevice, unmount, type MountedDevice, type UnmountOptions } from './mount.js';
import { native, type NativeReader, type NativeUring } from './native.js';
import { Notifier } from './notify.js';
import { resolveMountOptions, type AtimeMode, type MountOptions, type ResolvedMountOptions } from './options.js';

/** What the kernel offered in INIT. */
export interface KernelOffer {
  /** The kernel's protocol major version (7). */
  major: number;
  /** The kernel's protocol minor version (e.g. 45). */
  minor: number;
  /** The kernel's readahead limit in bytes; the reply may lower it. */
  maxReadahead: number;
  /** 64-bit INIT flags (flags | flags2 << 32), see InitFlag. */
  flags: number;
  /** The mount's default_permissions option (the kernel checks permissions). */
  defaultPermissions: boolean;
  /** The mount's access-time flag. The kernel never updates atime on FUSE inodes (S_NOATIME,
   * fs/fuse/inode.c fuse_iget): honouring it is up to the filesystem. */
  atime: AtimeMode;
  /** The mount's nodiratime flag (likewise up to the filesystem). */
  nodiratime: boolean;
}

/** What was agreed in INIT. */
export interface Negotiated {
  /** Protocol minor both sides use. */
  minor: number;
  /** Kernel's offer (64-bit). */
  offered: number;
  /** Flags in effect (offer ∩ want). */
  flags: number;
  /** Largest WRITE the kernel sends, in bytes (the mount's maxWrite, as agreed). */
  maxWrite: number;
  /** Readahead limit in bytes in effect. */
  maxReadahead: number;
  /** Most pages one request may carry (FUSE_MAX_PAGES), which bounds READ and WRITE sizes. */
  maxPages: number;
}

/** The layer above (api's Server) as the connection sees it. */
export interface ConnectionHandler {
  /** Called once, before any request is read: where replies are written. */
  attach?(conn: Connection): void;
  /** INIT arrived: return the INIT flags the filesystem wants (64-bit, see InitFlag).
   * They are intersected with the offer. Throwing (or rejecting) refuses the mount. */
  init(offer: KernelOffer): number | Promise<number>;
  /** INIT was answered; `n` describes what is in effect. */
  ready?(n: Negotiated): void;
  /** One request of `n` bytes in the borrowed `bytes` (valid only during this call). */
  request(bytes: Uint8Array, view: DataView, n: number, channel: Channel): void;
  /** The session ended: `error` is null after a normal unmount. */
  end(error: Error | null): void;
}

/** One /dev/fuse fd with its read buffer. Replies must go to the channel the request came from. */
export class Channel {
  /** The read buffer requests arrive in (borrowed by the handler during one request). */
  readonly bytes: Uint8Array;
  /** A DataView over `bytes`. */
  readonly view: DataView;
  /** Owned by the Connection: set while the channel is read, dropped when the session ends. */
  reader: NativeReader | undefined;
  /** The reader's callback, held here (the addon holds it weakly until started). */
  onRead: ((n: number) => boolean) | undefined;
  /** Set by the Connection when the session ended and `fd` was closed. The number may
   * then belong to another file (even another session's /dev/fuse), so nothing is
   * written to it any more: a late reply gets -ENODEV. */
  closed = false;
  /** FUSE over io_uring: the ring entry this channel stands for (its replies are commits). */
  uring: NativeUring | undefined;
  /** The io_uring entry index, or -1 for a plain /dev/fuse channel. */
  ent = -1;
  /**
   * @param fd - The /dev/fuse fd (the session's, or a clone) this channel reads and writes.
   * @param shared - A buffer several channels read into (the io_uring entries share one).
   */
  constructor(readonly fd: number, bufferSize: number, shared?: Uint8Array) {
    this.bytes = shared ?? new Uint8Array(bufferSize);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }
}

/** Requests the server never answers: through a ring, their entry is handed back empty. */
const NO_REPLY = new Set<number>([Opcode.FORGET, Opcode.INTERRUPT, Opcode.NOTIFY_REPLY, Opcode.BATCH_FORGET]);

/** io_uring entries per queue (one queue per CPU): each holds one request at a time. */
const URING_ENTRIES = 8;

/** A failure of the /dev/fuse connection, shaped like Node's fs errors. */
export class ConnectionError extends Error {
  /**
   * @param code - The errno's name, e.g. 'ENODEV'.
   * @param errno - The errno, negated (as Node's fs errors carry it).
   * @param syscall - What failed: 'read', 'write', 'ioctl' ….
   */
  constructor(readonly code: string, readonly errno: number, readonly syscall: string, message: string) {
    super(`${code}: ${message}`);
    this.name = "ConnectionError";
  }
}

type Log = (line: string) => void;

/** Takes the handler's place once the session ended, so that a Connection someone
 * still holds (a FuseSession kept in a list, a late reply's closure) no longer keeps
 * the Server, and through it the FileSystem and its inodes, alive. */
const DETACHED: ConnectionHandler = { init: () => 0, request: () => {}, end: () => {} };

/** One mount's connection to the kernel: its /dev/fuse channels, the INIT handshake, the read loop and reply writing. */
export class Connection {
  /** The absolute path of the mount point ("/dev/fd/N" for a handed-over fd). */
  readonly mountpoint: string;
  /** How it was mounted: mount(2), fusermount3, or an fd someone else mounted. */
  readonly method: 'mount' | 'fusermount' | 'fd';
  /** The mount options, defaults filled in. */
  readonly options: ResolvedMountOptions;
  /** Set once INIT is answered. */
  negotiated: Negotiated | undefined;
  /** Unsolicited notifications (queued, written off the event loop). */
  readonly notifier: Notifier;
  /** Resolves when the session ends (null: unmounted normally). */
  readonly closed: Promise<Error | null>;
  private channels: Channel[] = [];
  private state: 'init' | 'running' | 'ended' = 'init';
  private resolveClosed!: (e: Error | null) => void;
  private initWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private readonly initBuf = new Uint8Array(OUT_HEADER_SIZE + structs.fuse_init_out.size);
  /** The layer above; DETACHED once the session ended (see end()). */
  private handler: ConnectionHandler;

  private constructor(dev: MountedDevice, options: ResolvedMountOptions, handler: ConnectionHandler, private readonly log: Log, start = true) {
    this.handler = handler;
    this.mountpoint = dev.mountpoint;
    this.method = dev.method;
    this.options = options;
    this.closed = new Promise((r) => { this.resolveClosed = r; });
    this.notifier = new Notifier(() => (this.state === 'running' ? this.channels[0]?.fd : undefined), log);
    handler.attach?.(this);
    this.addChannel(dev.fd, start);
  }

  /**
   * Mounts and serves: resolves once the kernel's INIT has been answered (the
   * mount is live), rejects with the real errno and message otherwise.
   */
  static async mount(mountpoint: string, handler: ConnectionHandler, opts: MountOptions = {}, log: Log = () => {}, extraKeys: readonly string[] = []): Promise<Connection> {
    const o = resolveMountOptions(opts, extraKeys);
    // "/dev/fd/N": a /dev/fuse fd a manager mounted and handed to us (libfuse's convention).
    const fd = handedFd(mountpoint);
    const dev = fd !== undefined ? handedDevice(fd) : await mountDevice(checkMountpoint(mountpoint, o, log), o);
    return Connection.serve(dev, o, handler, log);
  }

  /** Serves a mounted device whose INIT has not been read yet (a supervised server's first
   * start: the supervisor mounted). Resolves once INIT is answered. */
  static async serve(dev: MountedDevice, o: ResolvedMountOptions, handler: ConnectionHandler, log: Log = () => {}): Promise<Connection> {
    const conn = new Connection(dev, o, handler, log);
    try {
      await conn.waitForInit(o.initTimeout);
    } catch (e) {
      await conn.abort();
      throw e;
    }
    return conn;
  }

  /** Size of each channel's read buffer: room for the largest request (a max_write WRITE, a 64 KiB SETXATTR). */
  get bufferSize(): number {
    // A request must fit whole (the kernel fails one that does not: SETXATTR with E2BIG):
    // the largest are a WRITE of max_write bytes and a SETXATTR of a 64 KiB value
    // (XATTR_SIZE_MAX) with its 255-byte name, whatever max_write is.
    return Math.max(FUSE_MIN_READ_BUFFER, Math.max(this.options.maxWrite, XATTR_SIZE_MAX) + FUSE_BUFFER_HEADER_SIZE);
  }

  /**
   * Takeover: continues a session whose INIT a previous server process answered (the
   * kernel sends no second INIT). `handler.init` gets the journaled offer (its answer is
   * ignored: what was agreed stands), `ready` the journaled agreement; `restore` runs
   * before the first request is read; then FUSE_NOTIFY_RESEND asks the kernel to send
   * again every request the dead process read but did not answer, and only then does
   * reading start.
   */
  static async resume(dev: MountedDevice, o: ResolvedMountOptions, handler: ConnectionHandler, offer: KernelOffer, negotiated: Negotiated,
    restore: () => Promise<void>, log: Log = () => {}): Promise<Connection> {
    const conn = await Connection.agreed(dev, o, handler, offer, negotiated, log, restore);
    // RESEND before the first read: the kernel then moves back exactly the requests the dead
    // server had read (all of its "processing" list) to the queue, bit 63 set. Read first,
    // and a request queued during the outage could be read, then re-queued by the RESEND
    // and run twice (an empty listing from a doubly-read directory stream, a second unlink).
    const r = await conn.notifier.resend();
    if (r < 0) log(`takeover: FUSE_NOTIFY_RESEND failed (${errnoName(r)}): requests the dead server read stay unanswered until interrupted`);
    for (const ch of conn.channels) ch.reader?.start();
    return conn;
  }

  /**
   * Serves a clone of a running session's device (FUSE_DEV_IOC_CLONE'd in another thread,
   * `dev.fd`) whose INIT was answered there: no INIT and no RESEND here, just requests, as
   * they come to this fd. `handler.init` gets the offer, `ready` the agreement. Unmounting
   * is the original session's business: this one ends when the kernel does (ENODEV).
   */
  static async join(dev: MountedDevice, o: ResolvedMountOptions, handler: ConnectionHandler, offer: KernelOffer, negotiated: Negotiated,
    log: Log = () => {}): Promise<Connection> {
    const conn = await Connection.agreed(dev, o, handler, offer, negotiated, log);
    for (const ch of conn.channels) ch.reader?.start();
    return conn;
  }

  /** A connection on `dev` whose INIT was answered elsewhere (a dead server, another thread):
   * `handler.init` gets the offer, `ready` the agreement, then `then` runs; nothing is read yet. */
  private static async agreed(dev: MountedDevice, o: ResolvedMountOptions, handler: ConnectionHandler, offer: KernelOffer,
    negotiated: Negotiated, log: Log, then?: () => Promise<void>): Promise<Connection> {
    const conn = new Connection(dev, o, handler, log, false);
    try {
      await handler.init(offer);
      conn.negotiated = negotiated;
      conn.state = 'running';
      handler.ready?.(negotiated);
      await then?.();
    } catch (e) {
      conn.end(e as Error, false);
      throw e;
    }
    return conn;
  }

  /** A new FUSE_DEV_IOC_CLONE of the session's device, for another thread to serve (the
   * caller owns the fd). */
  cloneFd(): number {
    if (this.state !== 'running') throw new ConnectionError('ENODEV', -ENODEV, 'ioctl', `the session on ${this.mountpoint} is not running`);
    return native.cloneDevice(this.channels[0].fd);
  }

  /** The offer the kernel's INIT made (for threads joining the session). */
  offer: KernelOffer | undefined;

  private addChannel(fd: number, start = true): Channel {
    const ch = new Channel(fd, this.bufferSize);
    // The addon holds the callback weakly until start(): the channel keeps it (a takeover
    // starts its reader only after the restore's awaits, when a GC may have run).
    ch.onRead = (n: number) => this.onRead(ch, n);
    ch.reader = new native.Reader(fd, ch.bytes, ch.onRead);
    if (start) ch.reader.start();
    this.channels.push(ch);
    return ch;
  }

  /**
   * Adds a channel on a FUSE_DEV_IOC_CLONE'd fd (its own read queue position
   * and buffer, served by the same loop). Returns the number of channels.
   */
  clone(): number {
    if (this.state === 'ended') throw new ConnectionError('ENODEV', -ENODEV, 'ioctl', `the session on ${this.mountpoint} has ended`);
    const fd = native.cloneDevice(this.channels[0].fd);
    this.addChannel(fd);
    return this.channels.length;
  }

  private waitForInit(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.initWaiter = undefined;
        reject(new ConnectionError('ETIMEDOUT', -ETIMEDOUT, 'read', `no FUSE_INIT from the kernel within ${ms} ms on ${this.mountpoint}: ` +
          'the kernel sends it once, right after mount(2) (a handed-over fd whose INIT another process read gets none); ' +
          'on a slow machine raise initTimeout'));
      }, ms);
      this.initWaiter = {
        resolve: () => { clearTimeout(t); this.initWaiter = undefined; resolve(); },
        reject: (e) => { clearTimeout(t); this.initWaiter = undefined; reject(e); },
      };
    });
  }

  private onRead(ch: Channel, n: number): boolean {
    if (n > 0) {
      if (this.state === 'running') this.handler.request(ch.bytes, ch.view, n, ch);
      else if (this.state === 'init') this.onInit(ch, n);
      return this.state !== 'ended';
    }
    const err = -n;
    if (err === EINTR || err === ENOENT) return true;
    if (err === EAGAIN) return false;
    // EPERM: the kernel's answer to reading a /dev/fuse fd no mount uses yet (fuse_dev_read without fud).
    const why = err === EPERM && this.state === 'init' ? ` (the fd is not mounted: a manager handing over /dev/fd/N mounts it with mount(2) data fd=N first)` : '';
    this.end(err === ENODEV ? null : new ConnectionError(errnoName(err), n, 'read', `reading /dev/fuse failed: ${errnoName(err)}${why}`));
    return false;
  }

  private onInit(ch: Channel, n: number): void {
    let req;
    try {
      req = decodeRequest(ch.bytes, ch.view, n, { setxattrExt: false });
    } catch (e) {
      this.log(`malformed first request: ${(e as Error).message}`);
      return this.failInit(new ConnectionError('EPROTO', -EPROTO, 'read', `malformed INIT: ${(e as Error).message}`));
    }
    if (req.opcode !== Opcode.INIT) {
      this.writeError(ch, req.uniqueLo, req.uniqueHi, EINVAL);
      return this.failInit(new ConnectionError('EPROTO', -EPROTO, 'read', `expected INIT, got opcode ${req.opcode}`));
    }
    const b = req.body as { major: number; minor: number; max_readahead: number; flags: number; flags2: number };
    const v = negotiateVersion(b.major, b.minor);
    if (v.kind === 'retry-major') {
      this.writeInit(ch, req.uniqueLo, req.uniqueHi, { major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION }, 8);
      return;
    }
    if (v.kind === 'refuse') {
      this.writeError(ch, req.uniqueLo, req.uniqueHi, EPROTO);
      return this.failInit(new ConnectionError('EPROTO', -EPROTO, 'init', v.reason));
    }
    const offered = initFlags64(b.flags, (b.flags & InitFlag.INIT_EXT) ? b.flags2 : 0);
    const offer: KernelOffer = {
      major: b.major, minor: b.minor, maxReadahead: b.max_readahead, flags: offered, defaultPermissions: this.options.defaultPermissions,
      atime: this.options.atime, nodiratime: this.options.nodiratime,
    };
    const { uniqueLo, uniqueHi } = req;
    this.offer = offer;
    Promise.resolve()
      .then(() => this.handler.init(offer))
      .then((want) => this.answerInit(ch, uniqueLo, uniqueHi, offer, v.minor, want))
      .catch((e: Error) => {
        this.writeError(ch, uniqueLo, uniqueHi, EPROTO);
        this.failInit(e);
      });
  }

  private answerInit(ch: Channel, lo: number, hi: number, offer: KernelOffer, minor: number, want: number): void {
    // handler.init may be asynchronous: the session can have ended (INIT timed out, unmounted) meanwhile.
    if (this.state !== 'init') return;
    const o = this.options;
    let flags = intersect(offer.flags, want);
    if (offer.flags & InitFlag.INIT_EXT) flags = union(flags, InitFlag.INIT_EXT);
    const maxPages = Math.ceil(o.maxWrite / 4096);
    const maxReadahead = Math.min(offer.maxReadahead, o.maxReadahead ?? offer.maxReadahead);
    if (o.ioUring && !has(flags, InitFlag.OVER_IO_URING)) {
      if (has(offer.flags, InitFlag.OVER_IO_URING)) flags = union(flags, InitFlag.OVER_IO_URING);
      else {
        this.log('io_uring: the kernel does not offer FUSE over io_uring (Linux 6.14+, and the fuse module parameter ' +
          'enable_uring=Y: root can write Y to /sys/module/fuse/parameters/enable_uring before mounting): reading /dev/fuse');
      }
    }
    // The kernel reads request_timeout only from a reply that sets FUSE_REQUEST_TIMEOUT (7.43).
    if (o.requestTimeout > 0) {
      if (has(offer.flags, InitFlag.REQUEST_TIMEOUT)) flags = union(flags, InitFlag.REQUEST_TIMEOUT);
      else this.log(`request_timeout: the kernel does not offer FUSE_REQUEST_TIMEOUT (Linux 6.14+): requests have no time-out`);
    }
    const [f1, f2] = splitInitFlags(flags);
    this.writeInit(ch, lo, hi, {
      major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, max_readahead: maxReadahead, flags: f1,
      max_background: o.maxBackground ?? 0, congestion_threshold: o.congestionThreshold ?? 0,
      max_write: o.maxWrite, time_gran: 1, max_pages: maxPages, flags2: f2,
      request_timeout: has(flags, InitFlag.REQUEST_TIMEOUT) ? o.requestTimeout : 0,
      // Kernel passthrough needs a stack depth: 1, a backing file on a non-stacked filesystem.
      max_stack_depth: has(flags, InitFlag.PASSTHROUGH) ? 1 : 0,
    }, initOutSize(minor));
    this.negotiated = { minor, offered: offer.flags, flags, maxWrite: o.maxWrite, maxReadahead, maxPages };
    this.state = 'running';
    if (has(flags, InitFlag.OVER_IO_URING)) this.startUring(ch);
    this.handler.ready?.(this.negotiated);
    this.initWaiter?.resolve();
  }

  private writeInit(ch: Channel, lo: number, hi: number, out: object, size: number): void {
    const view = new DataView(this.initBuf.buffer);
    this.initBuf.fill(0);
    structs.fuse_init_out.encode(view, OUT_HEADER_SIZE, out);
    writeOutHeader(view, OUT_HEADER_SIZE + size, 0, lo, hi);
    this.write(ch, this.initBuf, OUT_HEADER_SIZE + size);
  }

  private writeError(ch: Channel, lo: number, hi: number, errno: number): void {
    const b = new Uint8Array(OUT_HEADER_SIZE);
    writeOutHeader(new DataView(b.buffer), OUT_HEADER_SIZE, -errno, lo, hi);
    this.write(ch, b, OUT_HEADER_SIZE);
  }

  private failInit(e: Error): void {
    this.initWaiter?.reject(e);
  }

  /** The io_uring rings, while they serve. */
  private uring: NativeUring | undefined;

  /**
   * FUSE over io_uring, after INIT was answered with it: one queue per possible CPU, each
   * with URING_ENTRIES entries; each entry is a channel whose replies are commits. The
   * /dev/fuse reader goes on (FORGET, INTERRUPT and what comes before the rings are ready).
   * A failure leaves the session on /dev/fuse, with one line saying why.
   */
  private startUring(dev: Channel): void {
    const queues = possibleCpus();
    const payload = Math.max(this.options.maxWrite, XATTR_SIZE_MAX) + 4096;
    const buf = new Uint8Array(this.bufferSize);
    const chans: Channel[] = [];
    try {
      const u = new native.Uring(dev.fd, queues, URING_ENTRIES, payload, buf, (n, ent) => {
        const ch = chans[ent];
        if (n > 0 && ch && this.state === 'running') {
          // A request the server answers with nothing (FUSE_NOTIFY_REPLY comes this way) still
          // has to hand its entry back, or the queue runs dry.
          const op = ch.view.getUint32(4, true);
          this.handler.request(ch.bytes, ch.view, n, ch);
          if (NO_REPLY.has(op)) u.answer(ent, 0);
        } else if (n > 0) u.answer(ent, ENODEV); // the session is ending
        else if (n < 0 && n !== -ENOTCONN && n !== -125 /* ECANCELED */ && n !== -ENODEV && this.state === 'running') {
          this.log(`io_uring: entry ${ent} failed: ${errnoName(n)}`);
        }
      });
      for (let i = 0; i < queues * URING_ENTRIES; i++) {
        const ch = new Channel(-1, 0, buf);
        ch.uring = u;
        ch.ent = i;
        chans.push(ch);
      }
      u.start();
      this.uring = u;
      this.log(`io_uring: serving through ${queues} queues of ${URING_ENTRIES} entries`);
    } catch (e) {
      this.log(`io_uring: setting up the rings failed (${(e as Error).message}): reading /dev/fuse`);
    }
  }

  /** Writes a reply; returns bytes written or -errno (ENOENT: the request was interrupted). */
  write(ch: Channel, bytes: Uint8Array, len: number): number {
    if (ch.closed) return -ENODEV;
    if (ch.uring) return ch.uring.commit(ch.ent, bytes, len);
    const r = native.write(ch.fd, bytes, len);
    if (r < 0) this.writeFailed(r);
    return r;
  }

  /** Writes a reply from several chunks (header, then data). */
  writev(ch: Channel, chunks: Uint8Array[]): number {
    if (ch.closed) return -ENODEV;
    if (ch.uring) return ch.uring.commitv(ch.ent, chunks);
    const r = native.writev(ch.fd, chunks);
    if (r < 0) this.writeFailed(r);
    return r;
  }

  private writeFailed(r: number): void {
    if (r === -ENOENT || r === -ENODEV) return; // interrupted / unmounted: nothing to do
    this.log(`writing a reply failed: ${errnoName(r)}${r === -EINVAL ? ' (malformed reply: a tsfuse bug)' : ''}`);
  }

  /** Unmounts; resolves when the session has ended. Busy → EBUSY unless `lazy`. */
  async unmount(opts: UnmountOptions = {}): Promise<void> {
    if (this.state === 'ended') return;
    if (this.method === 'fd') { // the manager owns the mount: we can only let go of the fd
      this.end(null);
      return;
    }
    await unmount(this.mountpoint, { method: this.method, fusermount: this.options.fusermount, ...opts });
    // umount makes reads fail with ENODEV; make sure we do not wait forever if
    // the poller never fires (e.g. the fd was already closed).
    const t = setTimeout(() => this.end(null), 2000);
    await this.closed;
    clearTimeout(t);
  }

  /** Tears down a mount whose INIT failed: lazy unmount, close. */
  private async abort(): Promise<void> {
    if (this.method !== 'fd') try {
      await unmount(this.mountpoint, { method: this.method, lazy: true, fusermount: this.options.fusermount });
    } catch { /* already gone */ }
    this.end(null, false);
  }

  /**
   * Ends the session once: stops the readers (the addon then no longer holds the
   * callbacks and buffers, see native/tsfuse.cc "Lifetime"), closes the fds and
   * lets go of the handler, so nothing of a past session stays reachable from here.
   */
  private end(error: Error | null, notify = true): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.notifier.close();
    for (const ch of this.channels) {
      ch.reader?.stop();
      ch.reader = undefined;
      ch.closed = true;
      native.close(ch.fd); // an error: it was closed already
    }
    this.channels = [];
    this.uring?.stop();
    this.uring = undefined;
    this.initWaiter?.reject(error ?? new ConnectionError('ENODEV', -ENODEV, 'read', 'the mount went away before INIT completed'));
    const handler = this.handler;
    this.handler = DETACHED;
    if (notify) handler.end(error);
    this.resolveClosed(error);
  }

  /** Whether the session has ended (unmounted, aborted, or the device failed). */
  get ended(): boolean {
    return this.state === 'ended';
  }
}

/** The kernel's nr_cpu_ids (one io_uring queue per possible CPU), from /sys, else the CPUs online. */
function possibleCpus(): number {
  try {
    const s = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim(); // "0-1", "0-3,5"
    const last = s.split(/[,-]/).map(Number).filter(Number.isInteger);
    if (last.length) return Math.max(...last) + 1;
  } catch { /* no sysfs: the rings may never become active (the kernel wants every possible CPU's) */ }
  return cpus().length || 1;
}

const TWO32 = 4294967296;
/** The bits set in both 64-bit flag numbers (exported as intersectFlags). */
function intersect(a: number, b: number): number {
  const [a1, a2] = splitInitFlags(a);
  const [b1, b2] = splitInitFlags(b);
  return ((a1 & b1) >>> 0) + ((a2 & b2) >>> 0) * TWO32;
}
/** The bits set in either 64-bit flag number (exported as unionFlags). */
function union(a: number, b: number): number {
  const [a1, a2] = splitInitFlags(a);
  const [b1, b2] = splitInitFlags(b);
  return ((a1 | b1) >>> 0) + ((a2 | b2) >>> 0) * TWO32;
}
/** Is (64-bit) flag `f` set in `v`? */
export function has(v: number, f: number): boolean {
  return Math.floor(v / f) % 2 === 1;
}
export { intersect as intersectFlags, union as unionFlags };
