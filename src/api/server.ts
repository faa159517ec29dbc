/**
 * The protocol core: request bytes in, reply bytes out, driven by the opcode
 * table (src/abi/opcodes.ts) and the handler table (./handlers.ts).
 *
 * `Server` is the ConnectionHandler of a mounted Connection, and can be fed
 * raw bytes without a mount (tests): give it a ReplySink and call `request`.
 * A malformed request gets an error reply and one log line; the read loop
 * never dies of a request. FORGET, BATCH_FORGET, INTERRUPT and NOTIFY_REPLY
 * are never answered.
 */
import {
  DirentWriter, ENOSYS, errnoName, InitFlag, initFlagNames, IN_HEADER_SIZE, Opcode, opcodeName,
  OUT_HEADER_SIZE, peekUnique, ProtocolError, structs as S, decodeRequest, writeOutHeader, type Request,
} from '../abi/index.js';
import type { Channel, ConnectionHandler, KernelOffer, Negotiated, Notifier } from '../transport/index.js';
import { has } from '../transport/index.js';
import { RequestContext } from './context.js';
import { entryOut } from './convert.js';
import { toErrno } from './errors.js';
import type { FileSystem } from './filesystem.js';
import { HANDLERS, type Body, type DirentResult, type Handler, type ReplyTarget } from './handlers.js';
import type { DirentPlusSink, DirentSink, Entry, InitInfo } from './types.js';

/** Where replies go: the Connection when mounted, a capture buffer in tests. */
export interface ReplySink {
  write(ch: Channel, bytes: Uint8Array, len: number): number;
  writev(ch: Channel, chunks: Uint8Array[]): number;
  /** Present when mounted: notifications and RETRIEVE replies. */
  readonly notifier?: Notifier;
}

export interface ServerOptions {
  /** Default entry (name) cache time in ms for replies that do not set one. Default 1000. */
  entryTimeout?: number;
  /** Default attribute cache time in ms. Default 1000. */
  attrTimeout?: number;
  /** Log one line per request and per reply. Default false. */
  debug?: boolean;
  /** Where log lines go. Default: stderr, prefixed "tsfuse: ". */
  log?: (line: string) => void;
  /** Largest reply body (READ/READDIR are sized by the kernel's request). Default 1 MiB + 4 KiB. */
  maxReply?: number;
}

export interface ServerStats {
  requests: Record<string, number>;
  errors: Record<string, number>;
  /** Requests answered asynchronously and not finished yet. */
  inFlight: number;
  /** Malformed requests (answered with an error). */
  malformed: number;
  /** What the filesystem reports (FileSystem.stats), e.g. InodeTree's live inodes and handles. */
  fs?: object;
}

const H = OUT_HEADER_SIZE;
const MAX_PENDING_INTERRUPTS = 256;
const TWO32 = 4294967296;

/** Key of a request's unique: 53 bits are plenty (the kernel counts up from 1; bit 63 = resent). */
function uniqueKey(lo: number, hi: number): number {
  return lo + (hi & 0x1fffff) * TWO32;
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

export class Server implements ConnectionHandler, ReplyTarget {
  readonly entryTimeout: number;
  readonly attrTimeout: number;
  readonly outBytes: Uint8Array;
  readonly out: DataView;
  /** Set by mount(); tests may set their own. */
  sink: ReplySink | undefined;
  /** What INIT agreed (after the mount). */
  negotiated: Negotiated | undefined;
  private readonly hdr = new Uint8Array(H);
  private readonly hdrView = new DataView(this.hdr.buffer);
  private readonly debug: boolean;
  private readonly log: (line: string) => void;
  private readonly decodeOpts = { setxattrExt: false };
  /** Async requests by unique key; owned by request()/finish(). */
  private readonly inflight = new Map<number, RequestContext>();
  /** INTERRUPTs that arrived before their request (possible with several channels). */
  private readonly pendingInterrupts = new Set<number>();
  private readonly counts = new Map<number, number>();
  private readonly errorCounts = new Map<number, number>();
  private malformed = 0;
  private destroyed = false;

  constructor(readonly fs: FileSystem, opts: ServerOptions = {}) {
    this.entryTimeout = opts.entryTimeout ?? 1000;
    this.attrTimeout = opts.attrTimeout ?? 1000;
    this.debug = opts.debug ?? false;
    this.log = opts.log ?? ((l) => process.stderr.write(`tsfuse: ${l}\n`));
    this.outBytes = new Uint8Array(opts.maxReply ?? 1024 * 1024 + 4096);
    this.out = new DataView(this.outBytes.buffer);
  }

  /** The INIT flags tsfuse asks for by default, given which methods `fs` implements. */
  defaultWant(): number {
    const fs = this.fs;
    const F = InitFlag;
    let w = F.ASYNC_READ + F.BIG_WRITES + F.AUTO_INVAL_DATA + F.ASYNC_DIO + F.PARALLEL_DIROPS +
      F.ABORT_ERROR + F.MAX_PAGES + F.SETXATTR_EXT + F.INIT_EXT + F.DIRECT_IO_ALLOW_MMAP;
    if (fs.setlk) w += F.FLOCK_LOCKS;
    if (fs.getlk && fs.setlk) w += F.POSIX_LOCKS;
    if (fs.readdirplus) w += F.DO_READDIRPLUS + F.READDIRPLUS_AUTO;
    if (!fs.open) w += F.NO_OPEN_SUPPORT;
    if (!fs.opendir) w += F.NO_OPENDIR_SUPPORT;
    return w;
  }

  // ---- ConnectionHandler ----

  attach(sink: ReplySink): void {
    this.sink = sink;
  }

  async init(offer: KernelOffer): Promise<number> {
    const info: InitInfo = {
      kernelMinor: offer.minor, offered: offer.flags, want: this.defaultWant(), notifier: this.sink?.notifier,
      defaultPermissions: offer.defaultPermissions,
    };
    await this.fs.init?.(info);
    return info.want;
  }

  ready(n: Negotiated): void {
    this.negotiated = n;
    this.decodeOpts.setxattrExt = has(n.flags, InitFlag.SETXATTR_EXT);
    if (this.debug) this.log(`INIT: protocol 7.${n.minor}, max_write ${n.maxWrite}, flags ${initFlagNames(n.flags).join('|')}`);
  }

  end(error: Error | null): void {
    if (error) this.log(`session ended: ${error.message}`);
    for (const ctx of this.inflight.values()) ctx.interrupt();
    this.inflight.clear();
    this.runDestroy();
  }

  private runDestroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    Promise.resolve().then(() => this.fs.destroy?.()).catch((e) => this.log(`destroy failed: ${(e as Error).message}`));
  }

  /** Handles one request of `n` bytes; replies go to `this.sink` (now or when a promise settles). */
  request(bytes: Uint8Array, view: DataView, n: number, ch: Channel): void {
    let req: Request;
    try {
      req = decodeRequest(bytes, view, n, this.decodeOpts);
    } catch (e) {
      this.malformedRequest(view, n, ch, e);
      return;
    }
    const op = req.opcode;
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    if (this.debug) this.trace(req);
    if (!req.row.reply) return this.noReply(req, view);
    if (op === Opcode.DESTROY) {
      this.runDestroy();
      this.finishBody(ch, req, 0);
      return;
    }
    const h = HANDLERS[op as Opcode];
    if (!h || !this.fs[h.method]) {
      if (h?.fallback) this.finishBody(ch, req, h.fallback(this, req));
      else this.fail(ch, req, ENOSYS);
      return;
    }
    const umask = op === Opcode.MKNOD || op === Opcode.MKDIR || op === Opcode.CREATE || op === Opcode.TMPFILE ? req.body.umask : 0;
    const ctx = new RequestContext(req.uid, req.gid, req.pid, umask);
    const key = uniqueKey(req.uniqueLo, req.uniqueHi);
    if (this.pendingInterrupts.delete(key)) ctx.interrupt();
    let result: unknown;
    try {
      result = h.call(this.fs, ctx, req, this);
    } catch (e) {
      return this.failWith(ch, req, e);
    }
    if (!isPromise(result)) return this.finish(ch, req, h, result, ctx);
    this.inflight.set(key, ctx);
    result.then(
      (r) => { this.inflight.delete(key); this.finish(ch, req, h, r, ctx); },
      (e) => { this.inflight.delete(key); this.failWith(ch, req, e); },
    );
  }

  private noReply(req: Request, view: DataView): void {
    switch (req.opcode) {
      case Opcode.FORGET:
        this.forget(req.nodeid, req.body.nlookup);
        return;
      case Opcode.BATCH_FORGET: {
        const count = req.body.count as number;
        const d = req.dataView;
        if (d.length < count * S.fuse_forget_one.size) {
          this.malformed++;
          this.log(`BATCH_FORGET: ${count} entries announced, ${Math.floor(d.length / 16)} present; using those`);
        }
        const dv = new DataView(d.buffer, d.byteOffset, d.length);
        for (let i = 0; i < count && (i + 1) * 16 <= d.length; i++) {
          const one = S.fuse_forget_one.decode(dv, i * 16);
          this.forget(one.nodeid, one.nlookup);
        }
        return;
      }
      case Opcode.INTERRUPT: {
        const key = uniqueKey(view.getUint32(IN_HEADER_SIZE, true), view.getUint32(IN_HEADER_SIZE + 4, true));
        const ctx = this.inflight.get(key);
        if (ctx) ctx.interrupt();
        else {
          // Already answered (then it is harmless) or not read yet: remember a bounded few.
          this.pendingInterrupts.add(key);
          if (this.pendingInterrupts.size > MAX_PENDING_INTERRUPTS) {
            this.pendingInterrupts.delete(this.pendingInterrupts.values().next().value!);
          }
        }
        return;
      }
      case Opcode.NOTIFY_REPLY: // the kernel's answer to NOTIFY_RETRIEVE; unique = notify_unique
        this.sink?.notifier?.retrieveReply(req.uniqueLo + (req.uniqueHi & 0x1fffff) * TWO32, req.dataView.subarray(0, req.body.size));
        return;
      default:
        return;
    }
  }

  private forget(nodeid: number, nlookup: number): void {
    try {
      this.fs.forget?.(nodeid, nlookup);
    } catch (e) {
      this.log(`FORGET of node ${nodeid} threw: ${(e as Error).message}`);
    }
  }

  private finish(ch: Channel, req: Request, h: Handler, result: unknown, ctx: RequestContext): void {
    let body: Body;
    try {
      body = h.reply(this, result, req);
    } catch (e) {
      this.failWith(ch, req, e); // the kernel gets an error: nothing of `result` reached it
      this.undoUnsent(h, ctx, req, result);
      return;
    }
    if (this.finishBody(ch, req, body) < 0) this.undoUnsent(h, ctx, req, result); // interrupted
  }

  /** The kernel never saw `result`: release the handle it carried, then undo its entries' lookups. */
  private undoUnsent(h: Handler, ctx: RequestContext, req: Request, result: unknown): void {
    if (h.unsent) this.releaseUnsent(h, ctx, req, result);
    if (!h.entries) return;
    let ids: number[];
    try {
      ids = h.entries(result);
    } catch {
      return; // a malformed result names no entry we could have counted
    }
    for (const id of ids) this.forget(id, 1);
  }

  private releaseUnsent(h: Handler, ctx: RequestContext, req: Request, result: unknown): void {
    const failed = (e: unknown) => this.log(`${req.row.name}: releasing the handle of an undelivered reply failed: ${(e as Error)?.message ?? e}`);
    try {
      const p = h.unsent!(this.fs, ctx, req, result);
      if (isPromise(p)) p.catch(failed);
    } catch (e) {
      failed(e);
    }
  }

  private finishBody(ch: Channel, req: Request, body: Body): number {
    if (this.debug) this.log(`← ${req.uniqueLo} ${req.row.name} ok${typeof body === 'number' ? ` (${body} bytes)` : ` (${body.length} bytes data)`}`);
    if (!this.sink) return -1;
    if (typeof body === 'number') {
      writeOutHeader(this.out, H + body, 0, req.uniqueLo, req.uniqueHi);
      return this.sink.write(ch, this.outBytes, H + body);
    }
    writeOutHeader(this.hdrView, H + body.length, 0, req.uniqueLo, req.uniqueHi);
    return this.sink.writev(ch, [this.hdr, body]);
  }

  private failWith(ch: Channel, req: Request, e: unknown): void {
    const { errno, unexpected } = toErrno(e);
    if (unexpected) {
      this.log(`${req.row.name} on node ${req.nodeid} failed: ${(e as Error)?.stack ?? String(e)} → EIO`);
    }
    this.fail(ch, req, errno);
  }

  private fail(ch: Channel, req: Request, errno: number): void {
    this.errorCounts.set(req.opcode, (this.errorCounts.get(req.opcode) ?? 0) + 1);
    if (this.debug) this.log(`← ${req.uniqueLo} ${req.row.name} ${errnoName(errno)}`);
    this.writeError(ch, req.uniqueLo, req.uniqueHi, errno);
  }

  private writeError(ch: Channel, lo: number, hi: number, errno: number): void {
    writeOutHeader(this.hdrView, H, -errno, lo, hi);
    this.sink?.write(ch, this.hdr, H);
  }

  private malformedRequest(view: DataView, n: number, ch: Channel, e: unknown): void {
    this.malformed++;
    const errno = e instanceof ProtocolError ? e.errno : toErrno(e).errno;
    const op = n >= 8 ? view.getUint32(4, true) : -1;
    this.log(`malformed request (${n} bytes, ${op >= 0 ? opcodeName(op) : 'no header'}): ${(e as Error).message}`);
    const u = peekUnique(view, n);
    if (!u) return; // not even a unique to answer to
    // No-reply opcodes must stay unanswered even when malformed.
    if (op === Opcode.FORGET || op === Opcode.BATCH_FORGET || op === Opcode.INTERRUPT || op === Opcode.NOTIFY_REPLY) return;
    if (op >= 0) this.errorCounts.set(op, (this.errorCounts.get(op) ?? 0) + 1);
    this.writeError(ch, u[0], u[1], errno);
  }

  private trace(req: Request): void {
    const names = req.row.names ? ` "${req.name}"${req.row.names === 2 ? ` "${req.name2}"` : ''}` : '';
    const body = req.body ? ` ${JSON.stringify(req.body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}` : '';
    this.log(`→ ${req.uniqueLo} ${req.row.name} node=${req.nodeid}${names}${body} uid=${req.uid} pid=${req.pid}`);
  }

  // ---- ReplyTarget ----

  direntReply(req: Request, fill: (sink: DirentSink | DirentPlusSink) => unknown, plus: boolean): DirentResult | Promise<DirentResult> {
    const w = new DirentWriter(req.body.size);
    const nodeids: number[] = [];
    const sink = plus
      ? {
        add: (name: string, e: Entry, off: number) => {
          const ok = w.addPlus(entryOut(e, this.entryTimeout, this.attrTimeout), name, e.attr?.ino ?? 0, ((e.attr?.mode ?? 0) >>> 12) & 15, off);
          if (ok && e.nodeid && name !== '.' && name !== '..') nodeids.push(e.nodeid);
          return ok;
        },
      }
      : { add: (name: string, ino: number, type: number, off: number) => w.add(name, ino, type, off) };
    const done = (): DirentResult => ({ bytes: w.bytes.subarray(0, w.length), nodeids });
    const r = fill(sink);
    return isPromise(r) ? r.then(done) : done();
  }

  // ---- introspection ----

  stats(): ServerStats {
    const byName = (m: Map<number, number>) => Object.fromEntries([...m].map(([k, v]) => [opcodeName(k), v]));
    const s: ServerStats = { requests: byName(this.counts), errors: byName(this.errorCounts), inFlight: this.inflight.size, malformed: this.malformed };
    const fs = this.fs.stats?.();
    if (fs) s.fs = fs;
    return s;
  }
}

