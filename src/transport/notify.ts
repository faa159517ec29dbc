/**
 * Unsolicited notifications (fuse_out_header with unique 0 and error = the
 * notify code), FUSE 7.11+.
 *
 * They are queued and written one at a time by a libuv pool thread (fs.write),
 * never synchronously on the event loop: the kernel blocks an INVAL_ENTRY
 * write while a LOOKUP in that directory is unanswered (DESIGN.md), and that
 * LOOKUP may be waiting for this very loop. Ordering is kept: each write
 * starts after the previous one finished.
 */
import { write as fsWrite } from 'node:fs';
import { native } from './native.js';
import { FUSE_EXPIRE_ONLY, NotifyCode, OUT_HEADER_SIZE, structs as S, writeOutHeader, errnoName, nameToBytes } from '../abi/index.js';

type Log = (line: string) => void;

interface Pending {
  bytes: Uint8Array;
  resolve: (r: number) => void;
}

/** Sends notifications to the kernel (invalidations, store, retrieve, poll wakeups, backing ids) without blocking the event loop. */
export class Notifier {
  private readonly queue: Pending[] = [];
  private writing = false;
  private nextRetrieve = 1;
  /** RETRIEVE requests waiting for their NOTIFY_REPLY, by notify_unique. */
  private readonly retrieves = new Map<number, (data: Uint8Array) => void>();
  private closed = false;

  constructor(private readonly fd: () => number | undefined, private readonly log: Log = () => {}) {}

  /**
   * Kernel passthrough (7.40, FUSE_PASSTHROUGH negotiated): registers open file `fd` with the
   * connection and returns its backing id (> 0) for an OPEN/CREATE reply's FOPEN_PASSTHROUGH,
   * or -errno: EPERM without CAP_SYS_ADMIN (or with writeback cache), EOPNOTSUPP or EINVAL
   * where the kernel has no passthrough. The kernel keeps its own reference to the file.
   */
  backingOpen(fd: number): number {
    const dev = this.fd();
    return dev === undefined ? -19 : native.backingOpen(dev, fd);
  }
  /** Drops backing id `id` (the opens that use it keep their file): 0 or -errno. */
  backingClose(id: number): number {
    const dev = this.fd();
    return dev === undefined ? -19 : native.backingClose(dev, id);
  }

  private frame(code: NotifyCode, bodySize: number, fill: (v: DataView, b: Uint8Array) => void): Uint8Array {
    const b = new Uint8Array(OUT_HEADER_SIZE + bodySize);
    const v = new DataView(b.buffer);
    writeOutHeader(v, b.length, code, 0, 0);
    fill(v, b);
    return b;
  }

  /** Queues a frame; resolves with bytes written or -errno (ENOENT: the kernel no longer knows that node). */
  private send(bytes: Uint8Array): Promise<number> {
    if (this.closed) return Promise.resolve(-19);
    return new Promise((resolve) => {
      this.queue.push({ bytes, resolve });
      this.pump();
    });
  }

  private pump(): void {
    if (this.writing) return;
    const p = this.queue.shift();
    if (!p) return;
    const fd = this.fd();
    if (fd === undefined) { p.resolve(-19); return this.pump(); }
    this.writing = true;
    fsWrite(fd, p.bytes, 0, p.bytes.length, null, (err, n) => {
      this.writing = false;
      // Node reports errno negative (-2 for ENOENT); keep our -errno convention.
      const res = err ? -Math.abs((err as NodeJS.ErrnoException).errno ?? 5) : n;
      if (err && res !== -2) this.log(`notification failed: ${errnoName(res)}`);
      p.resolve(res);
      this.pump();
    });
  }

  /** INVAL_INODE: drop cached attributes and the data in [offset, offset+length) (length < 0: to the end; offset < 0: attributes only). */
  invalInode(nodeid: number, offset = 0, length = -1): Promise<number> {
    return this.send(this.frame(NotifyCode.INVAL_INODE, S.fuse_notify_inval_inode_out.size, (v) =>
      S.fuse_notify_inval_inode_out.encode(v, OUT_HEADER_SIZE, { ino: nodeid, off: offset, len: length })));
  }

  /** INVAL_ENTRY: drop the dentry `name` in `parent` (expireOnly: just mark it stale, FUSE_EXPIRE_ONLY). */
  invalEntry(parent: number, name: string, expireOnly = false): Promise<number> {
    const n = nameToBytes(name);
    return this.send(this.frame(NotifyCode.INVAL_ENTRY, S.fuse_notify_inval_entry_out.size + n.length + 1, (v, b) => {
      S.fuse_notify_inval_entry_out.encode(v, OUT_HEADER_SIZE, { parent, namelen: n.length, flags: expireOnly ? FUSE_EXPIRE_ONLY : 0 });
      b.set(n, OUT_HEADER_SIZE + S.fuse_notify_inval_entry_out.size);
    }));
  }

  /** DELETE: `name` in `parent` (which was `child`) is gone; the kernel also drops it from its dcache. */
  delete(parent: number, child: number, name: string): Promise<number> {
    const n = nameToBytes(name);
    return this.send(this.frame(NotifyCode.DELETE, S.fuse_notify_delete_out.size + n.length + 1, (v, b) => {
      S.fuse_notify_delete_out.encode(v, OUT_HEADER_SIZE, { parent, child, namelen: n.length });
      b.set(n, OUT_HEADER_SIZE + S.fuse_notify_delete_out.size);
    }));
  }

  /** STORE: put `data` into the kernel's page cache of `nodeid` at `offset`. */
  store(nodeid: number, offset: number, data: Uint8Array): Promise<number> {
    return this.send(this.frame(NotifyCode.STORE, S.fuse_notify_store_out.size + data.length, (v, b) => {
      S.fuse_notify_store_out.encode(v, OUT_HEADER_SIZE, { nodeid, offset, size: data.length });
      b.set(data, OUT_HEADER_SIZE + S.fuse_notify_store_out.size);
    }));
  }

  /** RETRIEVE: ask the kernel for cached data of `nodeid`; resolves with what it had (maybe less). */
  async retrieve(nodeid: number, offset: number, size: number): Promise<Uint8Array> {
    const unique = this.nextRetrieve++;
    const got = new Promise<Uint8Array>((resolve) => this.retrieves.set(unique, resolve));
    const r = await this.send(this.frame(NotifyCode.RETRIEVE, S.fuse_notify_retrieve_out.size, (v) =>
      S.fuse_notify_retrieve_out.encode(v, OUT_HEADER_SIZE, { notify_unique: unique, nodeid, offset, size })));
    if (r < 0) {
      this.retrieves.delete(unique);
      throw Object.assign(new Error(`${errnoName(r)}: NOTIFY_RETRIEVE of node ${nodeid} failed`), { code: errnoName(r), errno: r });
    }
    return got;
  }

  /** The kernel's NOTIFY_REPLY to a RETRIEVE (called by the Server). */
  retrieveReply(notifyUnique: number, data: Uint8Array): void {
    const r = this.retrieves.get(notifyUnique);
    if (!r) return this.log(`NOTIFY_REPLY for unknown retrieve ${notifyUnique}`);
    this.retrieves.delete(notifyUnique);
    r(data.slice());
  }

  /** POLL: wake a poller registered with handle `kh`. */
  pollWakeup(kh: number): Promise<number> {
    return this.send(this.frame(NotifyCode.POLL, S.fuse_notify_poll_wakeup_out.size, (v) =>
      S.fuse_notify_poll_wakeup_out.encode(v, OUT_HEADER_SIZE, { kh })));
  }

  /** PRUNE (7.45): ask the kernel to forget these nodes if unused. */
  prune(nodeids: number[]): Promise<number> {
    return this.send(this.frame(NotifyCode.PRUNE, S.fuse_notify_prune_out.size + 8 * nodeids.length, (v) => {
      S.fuse_notify_prune_out.encode(v, OUT_HEADER_SIZE, { count: nodeids.length });
      nodeids.forEach((id, i) => {
        const o = OUT_HEADER_SIZE + S.fuse_notify_prune_out.size + 8 * i;
        v.setUint32(o, id % 4294967296, true);
        v.setUint32(o + 4, Math.floor(id / 4294967296), true);
      });
    }));
  }

  /** INC_EPOCH (7.44): invalidate every cached dentry at once. */
  incEpoch(): Promise<number> {
    return this.send(this.frame(NotifyCode.INC_EPOCH, 0, () => {}));
  }

  /** RESEND (7.40): ask the kernel to send again every request it is still waiting for. */
  resend(): Promise<number> {
    return this.send(this.frame(NotifyCode.RESEND, 0, () => {}));
  }

  /** The session ended: fail what is queued. */
  close(): void {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.resolve(-19);
    this.retrieves.clear();
  }
}
