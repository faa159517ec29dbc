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
  DirentWriter, EIO, ENOENT, ENOSYS, Opcode, errnoName, InitFlag, initFlagNames, OUT_HEADER_SIZE, peekUnique, ProtocolError,
  decodeRequest, writeOutHeader, type Request,
} from '../abi/index.js';
import type { Channel, ConnectionHandler, KernelOffer, Negotiated, Notifier } from '../transport/index.js';
import { has } from '../transport/index.js';
import { RequestContext } from './context.js';
import { entryOut } from './convert.js';
import { describeThrown, toErrno } from './errors.js';
import type { FileSystem } from './filesystem.js';
import { opcodeName, opcodeRow, wantedInitFlags, type Body, type DirentResult, type OpRow, type ReplyTarget } from './ops.js';
import type { DirentPlusSink, DirentSink, Entry, InitInfo, U64 } from './types.js';
import type { Journal } from './journal.js';
import type { RequestLedger } from './ledger.js';

/** Where replies go: the Connection when mounted, a capture buffer in tests. */
export interface ReplySink {
  /** Writes the first `len` bytes of `bytes` (one whole reply) to channel `ch`; returns the bytes written or a negative errno. */
  write(ch: Channel, bytes: Uint8Array, len: number): number;
  /** Writes one reply made of `chunks` (header, body) to channel `ch`; returns the bytes written or a negative errno. */
  writev(ch: Channel, chunks: Uint8Array[]): number;
  /** Present when mounted: notifications and RETRIEVE replies. */
  readonly notifier?: Notifier;
  /** The mount's options (the Connection's): the server reads `handlerTimeout` from them
   * when the sink is attached. */
  readonly options?: { readonly handlerTimeout?: number };
}

/** How a Server answers: default cache times, logging, reply size. */
export interface ServerOptions {
  /** Default entry (name) cache time in ms for replies that do not set one. Default 1000. */
  entryTimeout?: number;
  /** Default attribute cache time in ms. Default 1000. */
  attrTimeout?: number;
  /** How long (ms) the kernel may cache "no such name" (a LOOKUP answered by a negative
   * entry, node id 0, without a time of its own, or by ENOENT from an InodeTree). Default 0:
   * not cached, as libfuse and go-fuse do by default. */
  negativeTimeout?: number;
  /** Log one line per request and per reply. Default false. */
  debug?: boolean;
  /** Where log lines go. Default: stderr, prefixed "tsfuse: ". */
  log?: (line: string) => void;
  /** Largest reply body (READ/READDIR are sized by the kernel's request). Default 1 MiB + 4 KiB. */
  maxReply?: number;
}

/** What `Server.stats()` reports: counts by opcode name. */
export interface ServerStats {
  /** Requests received, by opcode name. */
  requests: Record<string, number>;
  /** Error replies sent, by opcode name. */
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

/** Key of a request's unique: 53 bits are plenty (the kernel counts up from 1); a resent
 * request (bit 63, FUSE_UNIQUE_RESEND) gets a negative key of its own, and its INTERRUPT
 * names it with the same bit. */
function uniqueKey(lo: number, hi: number): number {
  const k = lo + (hi & 0x1fffff) * TWO32;
  return hi & 0x80000000 ? -k - 1 : k;
}

/** "." or "..", as a string or as bytes: never counted as a lookup (the kernel does not). */
function isDotName(name: string | Uint8Array): boolean {
  if (typeof name === 'string') return name === '.' || name === '..';
  return (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** A promise made by this realm's Promise itself: it settles once, and its `then` is ours. */
function isNativePromise(v: unknown): v is Promise<unknown> {
  return v instanceof Promise && Object.getPrototypeOf(v) === Promise.prototype && !Object.hasOwn(v, 'then');
}

/** The protocol core: decodes requests, dispatches them to a FileSystem through the opcode table and encodes the replies. */
export class Server implements ConnectionHandler, ReplyTarget {
  readonly entryTimeout: number;
  readonly attrTimeout: number;
  readonly negativeTimeout: number;
  readonly outBytes: Uint8Array;
  readonly out: DataView;
  /** Set by mount(); tests may set their own. */
  sink: ReplySink | undefined;
  /** What INIT agreed (after the mount). */
  negotiated: Negotiated | undefined;
  /** What the kernel offered in INIT (kept for the takeover journal). */
  offer: KernelOffer | undefined;
  /** The takeover journal (a supervised server): flushed before every reply. */
  journal: Journal | undefined;
  /** De-duplicates non-idempotent requests the kernel re-sends after a takeover. */
  ledger: RequestLedger | undefined;
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
  /** The READDIR/READDIRPLUS reply writer, while no reply is being filled with it. */
  private direntWriter: DirentWriter | undefined;
  private destroyed = false;
  /** The mount option handlerTimeout in ms (0: off), set by attach(); see settleTimed. */
  private handlerTimeoutMs = 0;

  /** @param fs - The filesystem every request is dispatched to. */
  constructor(readonly fs: FileSystem, opts: ServerOptions = {}) {
    this.entryTimeout = opts.entryTimeout ?? 1000;
    this.attrTimeout = opts.attrTimeout ?? 1000;
    this.negativeTimeout = opts.negativeTimeout ?? 0;
    this.debug = opts.debug ?? false;
    this.log = opts.log ?? ((l) => process.stderr.write(`tsfuse: ${l}\n`));
    this.outBytes = new Uint8Array(opts.maxReply ?? 1024 * 1024 + 4096);
    this.out = new DataView(this.outBytes.buffer);
  }

  /** The INIT flags tsfuse asks for by default, given which methods `fs` implements. */
  defaultWant(): number {
    return wantedInitFlags(this.fs);
  }

  // ---- ConnectionHandler ----

  attach(sink: ReplySink): void {
    this.sink = sink;
    this.handlerTimeoutMs = (sink.options?.handlerTimeout ?? 0) * 1000;
  }

  async init(offer: KernelOffer): Promise<number> {
    this.offer = offer;
    const info: InitInfo = {
      kernelMinor: offer.minor, offered: offer.flags, want: this.defaultWant(), notifier: this.sink?.notifier,
      defaultPermissions: offer.defaultPermissions, atime: offer.atime, nodiratime: offer.nodiratime,
    };
    await this.fs.init?.(info);
    return info.want;
  }

  ready(n: Negotiated): void {
    this.negotiated = n;
    if (this.journal && this.offer) {
      this.journal.add(['I', n, this.offer]);
      this.journal.flush();
    }
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
    Promise.resolve().then(() => this.fs.destroy?.()).catch((e) => this.log(`destroy failed: ${describeThrown(e)}`));
  }

  /** Handles one request of `n` bytes; replies go to `this.sink` (now or when a promise
   * settles). Never throws: whatever the request or the handler does, a request that
   * expects a reply gets exactly one. */
  request(bytes: Uint8Array, view: DataView, n: number, ch: Channel): void {
    let req: Request & { row: OpRow };
    try {
      req = decodeRequest(bytes, view, n, this.decodeOpts, opcodeRow);
    } catch (e) {
      this.malformedRequest(view, n, ch, e);
      return;
    }
    const row = req.row;
    const op = req.opcode;
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    if (this.debug) this.trace(req);
    if (row.notice) {
      try {
        row.notice(this, req);
      } catch (e) {
        this.log(`${row.name} failed: ${describeThrown(e)}`);
      }
      return;
    }
    if (!row.reply) return;
    if (!row.call || (row.method && typeof this.fs[row.method] !== 'function')) {
      if (row.fallback) this.finishBody(ch, req, row.fallback(this, req));
      else this.fail(ch, req, ENOSYS);
      return;
    }
    const ctx = new RequestContext(req.uid, req.gid, req.pid, row.umask ? row.umask(req.body) : 0, req.suppGroups);
    const key = uniqueKey(req.uniqueLo, req.uniqueHi);
    if (this.pendingInterrupts.delete(key)) ctx.interrupt();
    let result: unknown;
    try {
      // The ledger chains on the result itself: it gets a thenable already made a Promise.
      result = this.ledger?.tracks(op, req) ? this.ledger.run(this.fs, req, ctx, () => this.adopt(req, row.call!(this.fs, ctx, req, this)))
        : row.call(this.fs, ctx, req, this);
    } catch (e) {
      return this.failWith(ch, req, e);
    }
    if (!isPromise(result)) return this.finish(ch, req, result, ctx);
    this.inflight.set(key, ctx);
    const p = (isNativePromise(result) ? result : this.adopt(req, result)) as Promise<unknown>;
    if (this.handlerTimeoutMs > 0) return this.settleTimed(ch, req, ctx, key, p);
    const done = () => { if (this.inflight.get(key) === ctx) this.inflight.delete(key); };
    p.then(
      (r) => { done(); this.finish(ch, req, r, ctx); },
      (e) => { done(); this.failWith(ch, req, e); },
    ).catch((e) => this.log(`${row.name}: reply failed: ${describeThrown(e)}`));
  }

  /**
   * A handler's thenable that is not a native Promise, as a Promise settled by its first
   * callback. Promise.resolve would adopt it as safely (a `then` that throws, calls back
   * twice or synchronously becomes one settlement, in a later job) but silently: a second
   * callback, or a throw after the first, is a bug in the handler worth one log line. Native
   * Promises (and anything that is not a thenable) are returned as they are.
   */
  private adopt(req: Request, v: unknown): unknown {
    if (!isPromise(v) || isNativePromise(v)) return v;
    return new Promise((resolve, reject) => {
      let first: string | undefined;
      const once = (how: string, settle: (x: unknown) => void) => (x: unknown) => {
        if (first === undefined) {
          first = how;
          return settle(x);
        }
        this.log(`${req.row.name} on node ${req.nodeid} (unique ${req.uniqueLo}): the handler's thenable settled twice ` +
          `(${first}, then ${how}${how === 'rejected' || how === 'threw' ? `: ${describeThrown(x, false)}` : ''}); the second result was ignored`);
      };
      try {
        (v as PromiseLike<unknown>).then(once('resolved', resolve), once('rejected', reject));
      } catch (e) {
        once('threw', reject)(e);
      }
    });
  }

  /**
   * Answers `p`'s settlement, or EIO once the mount option handlerTimeout has passed without
   * one (the request's context is interrupted then). A settlement after that is logged and
   * dropped, and what its result carried is undone as for an undelivered reply: the kernel
   * never saw it (undoUnsent: a LOOKUP entry's lookup forgotten, an OPEN's handle released).
   * Only here is a timer set: with the option off a request costs none.
   */
  private settleTimed(ch: Channel, req: Request & { row: OpRow }, ctx: RequestContext, key: number, p: Promise<unknown>): void {
    const row = req.row;
    let timedOut = false;
    const timer = setTimeout(() => {
      if (this.inflight.get(key) !== ctx) return; // the session ended (end() cleared it)
      timedOut = true;
      this.inflight.delete(key);
      this.log(`${row.name} on node ${req.nodeid} (unique ${req.uniqueLo}) not settled after ${this.handlerTimeoutMs / 1000} s: ` +
        'answered EIO (handler_timeout)');
      ctx.interrupt(Object.assign(new Error(`ETIMEDOUT: not settled within handler_timeout (${this.handlerTimeoutMs / 1000} s); answered EIO`), { code: 'ETIMEDOUT' }));
      this.fail(ch, req, EIO);
    }, this.handlerTimeoutMs);
    timer.unref(); // the session, not a pending answer, keeps the process alive
    /** false (and the request is done) when the answer is still wanted; else logs and drops it. */
    const dropped = (how: string): boolean => {
      if (!timedOut) {
        clearTimeout(timer);
        if (this.inflight.get(key) === ctx) this.inflight.delete(key);
        return false;
      }
      this.log(`${row.name} on node ${req.nodeid} (unique ${req.uniqueLo}) settled (${how}) after it was answered EIO by handler_timeout; result dropped`);
      return true;
    };
    p.then(
      (r) => {
        // The undo (a RELEASE of the handle) gets a context whose signal is not aborted.
        if (dropped('resolved')) this.undoUnsent(row, new RequestContext(ctx.uid, ctx.gid, ctx.pid, ctx.umask, ctx.suppGroups), req, r);
        else this.finish(ch, req, r, ctx);
      },
      (e) => {
        if (!dropped(`rejected: ${describeThrown(e, false)}`)) this.failWith(ch, req, e);
      },
    ).catch((e) => this.log(`${row.name}: reply failed: ${describeThrown(e)}`));
  }

  // ---- the no-reply opcodes (ReplyTarget) ----

  forget(nodeid: number, nlookup: number): void {
    try {
      this.fs.forget?.(nodeid, nlookup);
    } catch (e) {
      this.log(`FORGET of node ${nodeid} threw: ${describeThrown(e, false)}`);
    }
  }

  interrupt(lo: number, hi: number): void {
    const key = uniqueKey(lo, hi);
    const ctx = this.inflight.get(key);
    if (ctx) return ctx.interrupt();
    // Already answered (then it is harmless) or not read yet: remember a bounded few.
    this.pendingInterrupts.add(key);
    if (this.pendingInterrupts.size > MAX_PENDING_INTERRUPTS) {
      this.pendingInterrupts.delete(this.pendingInterrupts.values().next().value!);
    }
  }

  retrieveReply(lo: number, hi: number, data: Uint8Array): void {
    this.sink?.notifier?.retrieveReply(uniqueKey(lo, hi), data);
  }

  malformedNotice(req: Request, message: string): void {
    this.malformed++;
    this.log(`${req.row.name}: ${message}`);
  }

  destroy(): void {
    this.runDestroy();
  }

  private finish(ch: Channel, req: Request & { row: OpRow }, result: unknown, ctx: RequestContext): void {
    const row = req.row;
    // A negative entry the kernel may not cache is ENOENT (the same to the kernel, and what
    // traces and error counts show), answered without an error object having been thrown.
    if (req.opcode === Opcode.LOOKUP && this.negativeTimeout === 0 && (result as Entry | null)?.nodeid === 0 &&
      (result as Entry).entryTimeout === undefined) return this.fail(ch, req, ENOENT);
    let body: Body;
    try {
      body = row.encode!(this, result, req);
    } catch (e) {
      // A bad result (wrong type, out of range): the kernel gets an error, nothing of
      // `result` reached it. Handler errors thrown from encode (ERANGE) are answers.
      this.failWith(ch, req, e, 'returned a bad result');
      this.undoUnsent(row, ctx, req, result);
      return;
    }
    if (this.finishBody(ch, req, body) < 0) this.undoUnsent(row, ctx, req, result); // interrupted
  }

  /** The kernel never saw `result`: release the handle it carried, then undo its entries' lookups. */
  private undoUnsent(row: OpRow, ctx: RequestContext, req: Request, result: unknown): void {
    if (row.unsent) this.releaseUnsent(row, ctx, req, result);
    if (!row.entries) return;
    let ids: number[];
    try {
      ids = row.entries(result);
    } catch {
      return; // a malformed result names no entry we could have counted
    }
    for (const id of ids) if (Number.isSafeInteger(id) && id !== 0) this.forget(id, 1); // 0: a negative entry
  }

  private releaseUnsent(row: OpRow, ctx: RequestContext, req: Request, result: unknown): void {
    const failed = (e: unknown) => this.log(`${row.name}: releasing the handle of an undelivered reply failed: ${describeThrown(e, false)}`);
    try {
      const p = row.unsent!(this.fs, ctx, req, result);
      if (isPromise(p)) p.catch(failed);
    } catch (e) {
      failed(e);
    }
  }

  /** Writes a successful reply; returns the write's result (< 0: not delivered). */
  private finishBody(ch: Channel, req: Request, body: Body): number {
    if (this.debug) this.log(`← ${req.uniqueLo} ${req.row.name} ok${typeof body === 'number' ? ` (${body} bytes)` : ` (${body.length} bytes data)`}`);
    if (!this.sink) return -1;
    try {
      if (this.journal?.pending) this.journal.flush(); // what the reply depends on is on record first
      if (typeof body === 'number') {
        writeOutHeader(this.out, H + body, 0, req.uniqueLo, req.uniqueHi);
        return this.sink.write(ch, this.outBytes, H + body);
      }
      writeOutHeader(this.hdrView, H + body.length, 0, req.uniqueLo, req.uniqueHi);
      return this.sink.writev(ch, [this.hdr, body]);
    } catch (e) {
      this.log(`${req.row.name}: writing the reply failed: ${describeThrown(e, false)}`);
      return -1;
    }
  }

  private failWith(ch: Channel, req: Request, e: unknown, what = 'failed'): void {
    const { errno, unexpected } = toErrno(e);
    if (unexpected) {
      this.log(`${req.row.name} on node ${req.nodeid} ${what}: ${describeThrown(e)} → EIO`);
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
    try {
      if (this.journal?.pending) this.journal.flush();
      this.sink?.write(ch, this.hdr, H);
    } catch (e) {
      this.log(`writing an error reply failed: ${describeThrown(e, false)}`);
    }
  }

  private malformedRequest(view: DataView, n: number, ch: Channel, e: unknown): void {
    const u0 = peekUnique(view, n);
    if (e instanceof ProtocolError && e.answer && u0) { // refused by policy: an ordinary answer
      const op = view.getUint32(4, true);
      this.errorCounts.set(op, (this.errorCounts.get(op) ?? 0) + 1);
      if (this.debug) this.log(`← ${u0[0]} ${opcodeName(op)} ${errnoName(e.errno)} (${e.message})`);
      return this.writeError(ch, u0[0], u0[1], e.errno);
    }
    this.malformed++;
    const errno = e instanceof ProtocolError ? e.errno : toErrno(e).errno;
    const op = n >= 8 ? view.getUint32(4, true) : -1;
    this.log(`malformed request (${n} bytes, ${op >= 0 ? opcodeName(op) : 'no header'}): ${describeThrown(e, false)}`);
    const u = peekUnique(view, n);
    if (!u) return; // not even a unique to answer to
    // No-reply opcodes must stay unanswered even when malformed.
    if (op >= 0 && opcodeRow(op)?.reply === false) return;
    if (op >= 0) this.errorCounts.set(op, (this.errorCounts.get(op) ?? 0) + 1);
    this.writeError(ch, u[0], u[1], errno);
  }

  private trace(req: Request): void {
    // JSON.stringify shows escaped bytes as \udcXX and control characters escaped.
    const names = req.row.names ? ` ${JSON.stringify(req.name)}${req.row.names === 2 ? ` ${JSON.stringify(req.name2)}` : ''}` : '';
    const body = req.body ? ` ${JSON.stringify(req.body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}` : '';
    let tag: string | undefined;
    try {
      tag = this.fs.traceTag?.(req.nodeid);
    } catch { /* a trace word is not worth a failure */ }
    this.log(`→ ${req.uniqueLo} ${req.row.name} node=${req.nodeid}${tag ? ` [${tag}]` : ''}${names}${body} uid=${req.uid} pid=${req.pid}`);
  }

  // ---- ReplyTarget ----

  direntReply(
    req: Request<{ size: number }>, fill: (sink: DirentSink | DirentPlusSink) => unknown, plus: boolean,
  ): DirentResult | Promise<DirentResult> {
    // The kernel asks for at most max_pages pages; a larger size (a bad request) is capped
    // at what one reply can carry instead of allocating up to 4 GiB.
    // One writer is reused while replies are made synchronously (written before the next
    // request is read); a fill that goes async keeps the writer it started with.
    const cap = Math.min(req.body.size, this.outBytes.length - H);
    let w = this.direntWriter;
    if (w && w.bytes.length >= cap) w.reset(cap);
    else w = new DirentWriter(cap, new Uint8Array(Math.max(cap, 64 * 1024)));
    this.direntWriter = undefined;
    const sink = plus
      ? {
        add: (name: string | Uint8Array, e: Entry, off: U64) => {
          const ok = w.addPlus(entryOut(e, this.entryTimeout, this.attrTimeout), name, e.attr?.ino ?? 0, ((e.attr?.mode ?? 0) >>> 12) & 15, off);
          if (ok && e.nodeid && !isDotName(name)) nodeids.push(e.nodeid);
          return ok;
        },
      }
      : {
        add: (name: string | Uint8Array, ino: U64, type: number, off: U64) => w.add(name, ino, type, off),
        addFrom: (src: Uint8Array, start: number, length: number, ino: U64, type: number, off: U64) => w.addFrom(src, start, length, ino, type, off),
      };
    const nodeids: number[] = [];
    const done = (): DirentResult => ({ bytes: w.bytes.subarray(0, w.length), nodeids });
    // An async fill's reply is written after other requests may have run: it keeps a copy,
    // and the writer goes back for the next reply.
    const doneAsync = (): DirentResult => {
      const bytes = w.bytes.slice(0, w.length);
      this.direntWriter ??= w;
      return { bytes, nodeids };
    };
    // A listing that fails halfway is not sent: undo the lookups of the entries added so far.
    const undo = (e: unknown): never => {
      for (const id of nodeids) this.forget(id, 1);
      throw e;
    };
    let r: unknown;
    try {
      r = fill(sink);
    } catch (e) {
      this.direntWriter = w;
      undo(e);
    }
    if (isPromise(r)) return r.then(doneAsync, (e) => { this.direntWriter ??= w; return undo(e); });
    this.direntWriter = w; // its bytes are written before another request can take it
    return done();
  }

  // ---- introspection ----

  /** Request and error counts so far, and the filesystem's own figures. */
  stats(): ServerStats {
    const byName = (m: Map<number, number>) => Object.fromEntries([...m].map(([k, v]) => [opcodeName(k), v]));
    const s: ServerStats = { requests: byName(this.counts), errors: byName(this.errorCounts), inFlight: this.inflight.size, malformed: this.malformed };
    const fs = this.fs.stats?.();
    if (fs) s.fs = fs;
    return s;
  }
}

