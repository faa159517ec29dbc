/**
 * The one opcode table. Each row is everything tsfuse knows of an opcode:
 * its wire layout (body struct, compat sizes, names, trailing data), whether
 * it is answered, the umask it carries, the INIT flag it needs, the
 * FileSystem method that serves it, how the request becomes that method's
 * arguments and how the result becomes the reply. Decoding, dispatch, the
 * no-reply opcodes, INIT's wanted flags, debug logs and statistics all read
 * it. Adding an opcode is one row here and one FileSystem method.
 *
 * Request bodies are typed from their struct declarations (`r.body.offset` is
 * a bigint because fuse_read_in declares it u64; a misspelt field does not
 * compile). Reply encoders validate what a handler returned: a wrong type or
 * an out-of-range value throws, and the Server answers EIO with one log line.
 */
import {
  ERANGE, FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_LK_FLOCK, FUSE_RELEASE_FLUSH, INIT_WIRE, InitFlag,
  nameToBytes, Opcode, OUT_HEADER_SIZE, setxattrInSize, structs as S,
  type Decoded, type DecodeOptions, type Request, type StructDef, type WireSpec,
} from '../abi/index.js';
import type { Context } from './context.js';
import { attrOut, entryOut, msToTimespec, openOut, setattrChanges, statfsOut, statxOut } from './convert.js';
import { FuseError } from './errors.js';
import type { FileSystem, FileSystemMethod } from './filesystem.js';
import {
  LOCK_TO_EOF, type AttrReply, type CreateReply, type Entry, type IoctlReply, type Lock, type OpenReply, type StatFs,
  type StatxReply, type U64,
} from './types.js';

/** Where replies are encoded (the Server): the body starts at OUT_HEADER_SIZE. */
export interface ReplyTarget {
  /** View of `outBytes`, where handlers' reply bodies are encoded. */
  readonly out: DataView;
  /** The reply buffer: the header's room, then the body (reused for every reply). */
  readonly outBytes: Uint8Array;
  /** Entry cache time (ms) for replies that set none. */
  readonly entryTimeout: number;
  /** Attribute cache time (ms) for replies that set none. */
  readonly attrTimeout: number;
  /** Cache time (ms) of a negative LOOKUP answer that sets none. */
  readonly negativeTimeout: number;
  /** READDIR/READDIRPLUS: runs `fill` with a sink sized for the request. */
  direntReply(req: Request<Decoded<typeof S.fuse_read_in.fields>>, fill: (sink: any) => unknown, plus: boolean): DirentResult | Promise<DirentResult>;
  /** DESTROY: the session ends. */
  destroy(): void;
  // ---- the no-reply opcodes ----
  /** FORGET (and each node of BATCH_FORGET): the kernel drops `nlookup` lookups of `nodeid`. */
  forget(nodeid: number, nlookup: number): void;
  /** INTERRUPT of the request with this `unique`: its handler's `ctx.signal` aborts. */
  interrupt(uniqueLo: number, uniqueHi: number): void;
  /** NOTIFY_REPLY: the data a NOTIFY_RETRIEVE asked for, matched by its `unique`. */
  retrieveReply(uniqueLo: number, uniqueHi: number, data: Uint8Array): void;
  /** A no-reply request that was malformed: counted and logged, never answered. */
  malformedNotice(req: Request, message: string): void;
}

/** Encoded directory records, and the node ids READDIRPLUS handed out (they count as lookups). */
export interface DirentResult {
  bytes: Uint8Array;
  nodeids: number[];
}

/** A reply body: bytes already encoded in `out` (their length), or a data chunk. */
export type Body = number | Uint8Array;

/** One row of the table; `B` is the decoded body. */
export interface OpRow<B = any> extends WireSpec<B> {
  readonly opcode: Opcode;
  /** What a successful reply carries (documentation and the layout test). */
  readonly out: StructDef<any> | 'none' | 'data' | 'entry+open' | 'xattr' | 'ioctl';
  /** The FileSystem method that serves it; a missing method answers `fallback` or ENOSYS.
   * Rows without one (DESTROY, the no-reply opcodes) are handled by the Server itself. */
  readonly method?: FileSystemMethod;
  /** The caller's umask (MKNOD, MKDIR, CREATE, TMPFILE). */
  readonly umask?: (body: B) => number;
  /** INIT flags asked for when the filesystem has `method` (and `when` holds). */
  readonly init?: {
    /** The INIT flags (64-bit). */
    readonly flags: number;
    /** Ask for them only when this holds (POSIX_LOCKS for getlk only when setlk exists too). */
    readonly when?: (fs: FileSystem) => boolean;
  };
  /** INIT flags asked for when the filesystem lacks `method` (NO_OPEN_SUPPORT …). */
  readonly initMissing?: number;
  /** Calls the handler with the decoded arguments (rows whose method takes more than the body). */
  call?(fs: FileSystem, ctx: Context, req: Request<B>, t: ReplyTarget): unknown;
  /** Encodes the handler's result; throws (TypeError/RangeError/FuseError) for a bad one. */
  encode?(t: ReplyTarget, result: any, req: Request<B>): Body;
  /** Answer used when the method is missing, instead of ENOSYS. */
  readonly fallback?: (t: ReplyTarget, req: Request<B>) => Body;
  /** Node ids this reply hands to the kernel (each counts as one lookup). */
  readonly entries?: (result: any) => number[];
  /** A file handle this reply hands to the kernel: if the reply never arrives (the
   * caller was interrupted), no RELEASE will come, so it is released here. */
  readonly unsent?: (fs: FileSystem, ctx: Context, req: Request<B>, result: any) => unknown;
  /** The no-reply opcodes: what the request does. */
  readonly notice?: (t: ReplyTarget, req: Request<B>) => void;
}

type BodyOf<D> = D extends StructDef<infer F> ? Decoded<F> : undefined;
type Spec<B> = Omit<OpRow<B>, 'opcode' | 'name' | 'body' | 'names' | 'reply' | 'out'> & {
  names?: 0 | 1 | 2; out?: OpRow['out']; reply?: boolean;
};

function op<D extends StructDef<any> | undefined>(opcode: Opcode, body: D, spec: Spec<BodyOf<D>>): OpRow<BodyOf<D>> {
  return Object.freeze({
    ...spec, opcode, name: Opcode[opcode], body, names: spec.names ?? 0, reply: spec.reply ?? true, out: spec.out ?? 'none',
  }) as OpRow<BodyOf<D>>;
}

const H = OUT_HEADER_SIZE;
const none = (): Body => 0;

function entry(t: ReplyTarget, e: Entry): Body {
  if (!e || typeof e !== 'object') throw new TypeError(`expected an Entry, got ${typeof e}`);
  S.fuse_entry_out.encode(t.out, H, entryOut(e, t.entryTimeout, t.attrTimeout, t.negativeTimeout));
  return S.fuse_entry_out.size;
}
function attr(t: ReplyTarget, r: AttrReply): Body {
  if (!r || typeof r.attr !== 'object') throw new TypeError('expected { attr }');
  const [attr_valid, attr_valid_nsec] = msToTimespec(r.timeout ?? t.attrTimeout);
  S.fuse_attr_out.encode(t.out, H, { attr_valid, attr_valid_nsec, attr: attrOut(r.attr) });
  return S.fuse_attr_out.size;
}
function open(t: ReplyTarget, r: OpenReply | undefined): Body {
  S.fuse_open_out.encode(t.out, H, openOut(r ?? {}));
  return S.fuse_open_out.size;
}
function create(t: ReplyTarget, r: CreateReply): Body {
  if (!r || typeof r.entry !== 'object') throw new TypeError('expected { entry, fh }');
  S.fuse_entry_out.encode(t.out, H, entryOut(r.entry, t.entryTimeout, t.attrTimeout, t.negativeTimeout));
  S.fuse_open_out.encode(t.out, H + S.fuse_entry_out.size, openOut(r));
  return S.fuse_entry_out.size + S.fuse_open_out.size;
}
function fixed<F extends readonly any[]>(t: ReplyTarget, def: StructDef<F>, value: object): Body {
  def.encode(t.out, H, value as never);
  return def.size;
}
function bytes(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new TypeError(`${what} must return a Uint8Array, got ${v === null ? 'null' : typeof v}`);
}
/** A count the handler returned: an integer in [0, max]. */
function count(v: unknown, max: U64, what: string): U64 {
  if ((typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max) || (typeof v === 'bigint' && v >= 0n && v <= BigInt(max))) return v;
  throw new RangeError(`${what} returned ${String(v)}: expected an integer in [0, ${max}]`);
}
const entryIds = (e: Entry) => (e?.nodeid ? [e.nodeid] : []);
const createIds = (r: CreateReply) => (r?.entry?.nodeid ? [r.entry.nodeid] : []);
function releaseCreated(fs: FileSystem, c: Context, r: Request<{ flags: number }>, v: CreateReply) {
  return v.entry.nodeid ? fs.release?.(c, v.entry.nodeid, v.fh ?? 0, r.body.flags, 0n, false) : undefined;
}

/** GETXATTR/LISTXATTR: size 0 asks for the length; a value longer than `size` is ERANGE. */
function sized(t: ReplyTarget, value: Uint8Array, size: number): Body {
  if (size === 0) return fixed(t, S.fuse_getxattr_out, { size: value.length });
  if (value.length > size) throw new FuseError(ERANGE);
  return value;
}
function xattrNames(names: unknown): Uint8Array {
  if (!Array.isArray(names)) throw new TypeError('listxattr must return an array of names');
  const parts = names.map((n) => Buffer.concat([nameToBytes(String(n)), Buffer.of(0)]));
  return Buffer.concat(parts);
}
const OFFSET_MAX = 0x7fffffffffffffffn;
type WireLock = { start: bigint; end: bigint; type: number; pid: number };
/** Wire → API: an end at or past OFFSET_MAX ("to EOF") is LOCK_TO_EOF. */
function lockIn(l: WireLock): Lock {
  return { start: l.start, end: l.end >= OFFSET_MAX ? LOCK_TO_EOF : l.end, type: l.type, pid: l.pid };
}
/** API → wire; the kernel refuses an end past OFFSET_MAX (EIO), so that is our error. */
function lockOut(l: Lock): WireLock {
  if (!l || typeof l.start !== 'bigint' || typeof l.end !== 'bigint') throw new TypeError('getlk must return a Lock with bigint start and end');
  if (l.start < 0n || l.end < l.start || l.end > OFFSET_MAX) throw new RangeError(`lock range ${l.start}…${l.end} is not within 0…2^63-1`);
  return { start: l.start, end: l.end, type: l.type, pid: l.pid };
}
function copyOf(view: Uint8Array, size: number): Uint8Array {
  const n = Math.min(size, view.length);
  const b = Buffer.allocUnsafe(n); // the copy overwrites every byte: no zero-filling first
  b.set(view.subarray(0, n));
  return b;
}
const fhIf = (flags: number, fh: number) => (flags & FUSE_GETATTR_FH ? fh : undefined);
const datasync = (flags: number) => !!(flags & FUSE_FSYNC_FDATASYNC);
const modeUmask = (b: { umask: number }) => b.umask;

function copyRange(fs: FileSystem, c: Context, r: Request<Decoded<typeof S.fuse_copy_file_range_in.fields>>) {
  const b = r.body;
  return fs.copyFileRange!(c, r.nodeid, b.fh_in, b.off_in, b.nodeid_out, b.fh_out, b.off_out, b.len, b.flags);
}

const O = Opcode;
const F = InitFlag;
const ROWS: OpRow[] = [
  op(O.LOOKUP, undefined, {
    names: 1, out: S.fuse_entry_out, method: 'lookup',
    call: (fs, c, r) => fs.lookup!(c, r.nodeid, r.name), encode: entry, entries: entryIds,
  }),
  op(O.FORGET, S.fuse_forget_in, { reply: false, notice: (t, r) => t.forget(r.nodeid, r.body.nlookup) }),
  op(O.GETATTR, S.fuse_getattr_in, {
    out: S.fuse_attr_out, method: 'getattr',
    call: (fs, c, r) => fs.getattr!(c, r.nodeid, fhIf(r.body.getattr_flags, r.body.fh)), encode: attr,
  }),
  op(O.SETATTR, S.fuse_setattr_in, {
    out: S.fuse_attr_out, method: 'setattr', call: (fs, c, r) => fs.setattr!(c, r.nodeid, setattrChanges(r.body)), encode: attr,
  }),
  op(O.READLINK, undefined, {
    out: 'data', method: 'readlink', call: (fs, c, r) => fs.readlink!(c, r.nodeid),
    encode: (_t, v) => (typeof v === 'string' ? nameToBytes(v) : bytes(v, 'readlink')),
  }),
  op(O.SYMLINK, undefined, { // name, then the link target
    names: 2, secondIsPath: true, out: S.fuse_entry_out, method: 'symlink',
    call: (fs, c, r) => fs.symlink!(c, r.nodeid, r.name, r.name2), encode: entry, entries: entryIds,
  }),
  op(O.MKNOD, S.fuse_mknod_in, {
    names: 1, out: S.fuse_entry_out, method: 'mknod', umask: modeUmask,
    call: (fs, c, r) => fs.mknod!(c, r.nodeid, r.name, r.body.mode, r.body.rdev), encode: entry, entries: entryIds,
  }),
  op(O.MKDIR, S.fuse_mkdir_in, {
    names: 1, out: S.fuse_entry_out, method: 'mkdir', umask: modeUmask,
    call: (fs, c, r) => fs.mkdir!(c, r.nodeid, r.name, r.body.mode), encode: entry, entries: entryIds,
  }),
  op(O.UNLINK, undefined, { names: 1, method: 'unlink', call: (fs, c, r) => fs.unlink!(c, r.nodeid, r.name), encode: none }),
  op(O.RMDIR, undefined, { names: 1, method: 'rmdir', call: (fs, c, r) => fs.rmdir!(c, r.nodeid, r.name), encode: none }),
  op(O.RENAME, S.fuse_rename_in, {
    names: 2, method: 'rename', call: (fs, c, r) => fs.rename!(c, r.nodeid, r.name, r.body.newdir, r.name2, 0), encode: none,
  }),
  op(O.LINK, S.fuse_link_in, {
    names: 1, out: S.fuse_entry_out, method: 'link',
    call: (fs, c, r) => fs.link!(c, r.body.oldnodeid, r.nodeid, r.name), encode: entry, entries: entryIds,
  }),
  op(O.OPEN, S.fuse_open_in, {
    out: S.fuse_open_out, method: 'open', initMissing: F.NO_OPEN_SUPPORT,
    call: (fs, c, r) => fs.open!(c, r.nodeid, r.body.flags), encode: open,
    unsent: (fs, c, r, v: OpenReply) => fs.release?.(c, r.nodeid, v?.fh ?? 0, r.body.flags, 0n, false),
  }),
  op(O.READ, S.fuse_read_in, {
    out: 'data', method: 'read', call: (fs, c, r) => fs.read!(c, r.nodeid, r.body.fh, r.body.offset, r.body.size),
    encode: (_t, v, r) => {
      const b = bytes(v, 'read');
      return b.length > r.body.size ? b.subarray(0, r.body.size) : b;
    },
  }),
  op(O.WRITE, S.fuse_write_in, {
    out: S.fuse_write_out, method: 'write', data: (b) => b.size,
    // The data is copied out of the read buffer: the handler may keep it across awaits.
    call: (fs, c, r) => fs.write!(c, r.nodeid, r.body.fh, r.body.offset, copyOf(r.dataView, r.body.size), r.body.write_flags),
    encode: (t, n, r) => fixed(t, S.fuse_write_out, { size: count(n, r.body.size, 'write') }),
  }),
  op(O.STATFS, undefined, {
    out: S.fuse_statfs_out, method: 'statfs', call: (fs, c, r) => fs.statfs!(c, r.nodeid),
    encode: (t, s: StatFs) => fixed(t, S.fuse_statfs_out, statfsOut(s ?? {})),
    fallback: (t) => fixed(t, S.fuse_statfs_out, statfsOut({})),
  }),
  op(O.RELEASE, S.fuse_release_in, {
    method: 'release', encode: none, fallback: none,
    call: (fs, c, r) => fs.release!(c, r.nodeid, r.body.fh, r.body.flags, r.body.lock_owner, !!(r.body.release_flags & FUSE_RELEASE_FLUSH)),
  }),
  op(O.FSYNC, S.fuse_fsync_in, {
    method: 'fsync', call: (fs, c, r) => fs.fsync!(c, r.nodeid, r.body.fh, datasync(r.body.fsync_flags)), encode: none,
  }),
  op(O.SETXATTR, S.fuse_setxattr_in, { // 8 bytes without FUSE_SETXATTR_EXT
    names: 1, nameNotEntry: true, method: 'setxattr', bodySize: (o: DecodeOptions) => setxattrInSize(o.setxattrExt), data: (b) => b.size,
    call: (fs, c, r) => fs.setxattr!(c, r.nodeid, r.name, r.dataView.slice(0, r.body.size), r.body.flags), encode: none,
  }),
  op(O.GETXATTR, S.fuse_getxattr_in, {
    names: 1, nameNotEntry: true, out: 'xattr', method: 'getxattr',
    call: (fs, c, r) => fs.getxattr!(c, r.nodeid, r.name), encode: (t, v, r) => sized(t, bytes(v, 'getxattr'), r.body.size),
  }),
  op(O.LISTXATTR, S.fuse_getxattr_in, {
    out: 'xattr', method: 'listxattr',
    call: (fs, c, r) => fs.listxattr!(c, r.nodeid), encode: (t, v, r) => sized(t, xattrNames(v), r.body.size),
  }),
  op(O.REMOVEXATTR, undefined, { names: 1, nameNotEntry: true, method: 'removexattr', call: (fs, c, r) => fs.removexattr!(c, r.nodeid, r.name), encode: none }),
  op(O.FLUSH, S.fuse_flush_in, { method: 'flush', call: (fs, c, r) => fs.flush!(c, r.nodeid, r.body.fh, r.body.lock_owner), encode: none }),
  // Negotiated by the transport (src/transport/connection.ts) before this table is in play.
  { ...INIT_WIRE, out: S.fuse_init_out } as OpRow,
  op(O.OPENDIR, S.fuse_open_in, {
    out: S.fuse_open_out, method: 'opendir', initMissing: F.NO_OPENDIR_SUPPORT,
    call: (fs, c, r) => fs.opendir!(c, r.nodeid, r.body.flags), encode: open,
    unsent: (fs, c, r, v: OpenReply) => fs.releasedir?.(c, r.nodeid, v?.fh ?? 0, r.body.flags),
  }),
  op(O.READDIR, S.fuse_read_in, {
    out: 'data', method: 'readdir', encode: (_t, v: DirentResult) => v.bytes,
    call: (fs, c, r, t) => t.direntReply(r, (sink) => fs.readdir!(c, r.nodeid, r.body.fh, r.body.offset, sink), false),
  }),
  op(O.RELEASEDIR, S.fuse_release_in, {
    method: 'releasedir', call: (fs, c, r) => fs.releasedir!(c, r.nodeid, r.body.fh, r.body.flags), encode: none, fallback: none,
  }),
  op(O.FSYNCDIR, S.fuse_fsync_in, {
    method: 'fsyncdir', call: (fs, c, r) => fs.fsyncdir!(c, r.nodeid, r.body.fh, datasync(r.body.fsync_flags)), encode: none,
  }),
  op(O.GETLK, S.fuse_lk_in, {
    out: S.fuse_lk_out, method: 'getlk', init: { flags: F.POSIX_LOCKS, when: (fs) => !!fs.setlk },
    call: (fs, c, r) => fs.getlk!(c, r.nodeid, r.body.fh, r.body.owner, lockIn(r.body.lk)),
    encode: (t, l: Lock) => fixed(t, S.fuse_lk_out, { lk: lockOut(l) }),
  }),
  op(O.SETLK, S.fuse_lk_in, {
    method: 'setlk', init: { flags: F.FLOCK_LOCKS }, encode: none,
    call: (fs, c, r) => fs.setlk!(c, r.nodeid, r.body.fh, r.body.owner, lockIn(r.body.lk), false, !!(r.body.lk_flags & FUSE_LK_FLOCK)),
  }),
  op(O.SETLKW, S.fuse_lk_in, {
    method: 'setlk', encode: none,
    call: (fs, c, r) => fs.setlk!(c, r.nodeid, r.body.fh, r.body.owner, lockIn(r.body.lk), true, !!(r.body.lk_flags & FUSE_LK_FLOCK)),
  }),
  op(O.ACCESS, S.fuse_access_in, { method: 'access', call: (fs, c, r) => fs.access!(c, r.nodeid, r.body.mask), encode: none }),
  op(O.CREATE, S.fuse_create_in, {
    names: 1, out: 'entry+open', method: 'create', umask: modeUmask,
    call: (fs, c, r) => fs.create!(c, r.nodeid, r.name, r.body.mode, r.body.flags),
    encode: create, entries: createIds, unsent: releaseCreated,
  }),
  op(O.INTERRUPT, S.fuse_interrupt_in, {
    reply: false, notice: (t, r) => t.interrupt(Number(r.body.unique & 0xffffffffn), Number(r.body.unique >> 32n)),
  }),
  op(O.BMAP, S.fuse_bmap_in, {
    out: S.fuse_bmap_out, method: 'bmap', call: (fs, c, r) => fs.bmap!(c, r.nodeid, r.body.blocksize, r.body.block),
    encode: (t, b) => fixed(t, S.fuse_bmap_out, { block: count(b, 2n ** 64n - 1n, 'bmap') }),
  }),
  op(O.DESTROY, undefined, { call: (_fs, _c, _r, t) => t.destroy(), encode: none }),
  op(O.IOCTL, S.fuse_ioctl_in, { // reply: fuse_ioctl_out + out data
    out: 'ioctl', method: 'ioctl', data: (b) => b.in_size,
    call: (fs, c, r) => fs.ioctl!(c, r.nodeid, r.body.fh, r.body.cmd, r.body.arg, r.dataView.slice(0, r.body.in_size), r.body.out_size, r.body.flags),
    encode: (t, v: IoctlReply, r) => {
      const data = v?.data === undefined ? new Uint8Array(0) : bytes(v.data, 'ioctl');
      if (data.length > r.body.out_size) throw new RangeError('ioctl reply data larger than out_size');
      S.fuse_ioctl_out.encode(t.out, H, { result: v.result });
      t.outBytes.set(data, H + S.fuse_ioctl_out.size);
      return S.fuse_ioctl_out.size + data.length;
    },
  }),
  op(O.POLL, S.fuse_poll_in, {
    out: S.fuse_poll_out, method: 'poll',
    call: (fs, c, r) => fs.poll!(c, r.nodeid, r.body.fh, r.body.kh, r.body.events, r.body.flags),
    encode: (t, ev: number) => fixed(t, S.fuse_poll_out, { revents: ev }),
  }),
  op(O.NOTIFY_REPLY, S.fuse_notify_retrieve_in, { // the kernel's answer to NOTIFY_RETRIEVE; unique = notify_unique
    reply: false, data: () => 'rest',
    notice: (t, r) => {
      if (r.dataView.length < r.body.size) t.malformedNotice(r, `${r.body.size} bytes announced, ${r.dataView.length} present`);
      t.retrieveReply(r.uniqueLo, r.uniqueHi, r.dataView.subarray(0, r.body.size));
    },
  }),
  op(O.BATCH_FORGET, S.fuse_batch_forget_in, { // count × fuse_forget_one
    reply: false, data: () => 'rest',
    notice: (t, r) => {
      const d = r.dataView;
      const n = Math.min(r.body.count, Math.floor(d.length / S.fuse_forget_one.size));
      if (n < r.body.count) t.malformedNotice(r, `${r.body.count} entries announced, ${n} present; using those`);
      const dv = new DataView(d.buffer, d.byteOffset, d.length);
      for (let i = 0; i < n; i++) {
        const one = S.fuse_forget_one.decode(dv, i * S.fuse_forget_one.size);
        if (one.nodeid <= Number.MAX_SAFE_INTEGER) t.forget(one.nodeid, one.nlookup);
      }
    },
  }),
  op(O.FALLOCATE, S.fuse_fallocate_in, {
    method: 'fallocate', encode: none,
    call: (fs, c, r) => fs.fallocate!(c, r.nodeid, r.body.fh, r.body.offset, r.body.length, r.body.mode),
  }),
  op(O.READDIRPLUS, S.fuse_read_in, {
    out: 'data', method: 'readdirplus', init: { flags: F.DO_READDIRPLUS | F.READDIRPLUS_AUTO },
    call: (fs, c, r, t) => t.direntReply(r, (sink) => fs.readdirplus!(c, r.nodeid, r.body.fh, r.body.offset, sink), true),
    encode: (_t, v: DirentResult) => v.bytes, entries: (v: DirentResult) => v.nodeids,
  }),
  op(O.RENAME2, S.fuse_rename2_in, {
    names: 2, method: 'rename', encode: none,
    call: (fs, c, r) => fs.rename!(c, r.nodeid, r.name, r.body.newdir, r.name2, r.body.flags),
  }),
  op(O.LSEEK, S.fuse_lseek_in, {
    out: S.fuse_lseek_out, method: 'lseek', call: (fs, c, r) => fs.lseek!(c, r.nodeid, r.body.fh, r.body.offset, r.body.whence),
    encode: (t, off) => fixed(t, S.fuse_lseek_out, { offset: count(off, OFFSET_MAX, 'lseek') }),
  }),
  op(O.COPY_FILE_RANGE, S.fuse_copy_file_range_in, {
    out: S.fuse_write_out, method: 'copyFileRange', call: copyRange,
    // fuse_write_out.size is 32 bits: the kernel asks for at most that much here.
    encode: (t, n, r) => fixed(t, S.fuse_write_out, { size: Number(count(n, r.body.len < 0xffffffffn ? r.body.len : 0xffffffffn, 'copyFileRange')) }),
  }),
  op(O.SETUPMAPPING, S.fuse_setupmapping_in, {}), // DAX: not served (ENOSYS)
  op(O.REMOVEMAPPING, S.fuse_removemapping_in, { data: () => 'rest' }), // DAX: not served (ENOSYS)
  op(O.SYNCFS, S.fuse_syncfs_in, { method: 'syncfs', call: (fs, c, r) => fs.syncfs!(c, r.nodeid), encode: none }),
  op(O.TMPFILE, S.fuse_create_in, {
    names: 1, nameNotEntry: true, out: 'entry+open', method: 'tmpfile', umask: modeUmask, // the name is the VFS's placeholder "/"
    call: (fs, c, r) => fs.tmpfile!(c, r.nodeid, r.body.mode, r.body.flags),
    encode: create, entries: createIds, unsent: releaseCreated,
  }),
  op(O.STATX, S.fuse_statx_in, {
    out: S.fuse_statx_out, method: 'statx',
    call: (fs, c, r) => fs.statx!(c, r.nodeid, fhIf(r.body.getattr_flags, r.body.fh), r.body.sx_flags, r.body.sx_mask),
    encode: (t, v: StatxReply) => {
      if (!v || typeof v.statx !== 'object') throw new TypeError('statx must return { statx }');
      const [attr_valid, attr_valid_nsec] = msToTimespec(v.timeout ?? t.attrTimeout);
      return fixed(t, S.fuse_statx_out, { attr_valid, attr_valid_nsec, stat: statxOut(v.statx) });
    },
  }),
  op(O.COPY_FILE_RANGE_64, S.fuse_copy_file_range_in, {
    out: S.fuse_copy_file_range_out, method: 'copyFileRange', call: copyRange,
    encode: (t, n, r) => fixed(t, S.fuse_copy_file_range_out, { bytes_copied: count(n, r.body.len, 'copyFileRange') }),
  }),
  op(O.CUSE_INIT, S.cuse_init_in, { out: S.cuse_init_out, data: () => 'rest' }), // CUSE: not served (ENOSYS)
];

/** Every row by opcode number. */
export const OPCODES: ReadonlyMap<number, OpRow> = new Map(ROWS.map((r) => [r.opcode, r]));
/** Dense lookup for the hot path: index = opcode (0..63). */
const DENSE: (OpRow | undefined)[] = [];
for (const r of ROWS) if (r.opcode < 64) DENSE[r.opcode] = r;

/** The table row of an opcode, or undefined for one tsfuse does not know. */
export function opcodeRow(opcode: number): OpRow | undefined {
  return opcode < 64 ? DENSE[opcode] : OPCODES.get(opcode);
}

/** Name for logs, also for unknown opcodes ("OPCODE_99"). */
export function opcodeName(opcode: number): string {
  return opcodeRow(opcode)?.name ?? `OPCODE_${opcode}`;
}

/** The INIT flags tsfuse asks for, given which methods `fs` has (read from the rows). */
export function wantedInitFlags(fs: FileSystem): number {
  let w = F.ASYNC_READ + F.BIG_WRITES + F.AUTO_INVAL_DATA + F.ASYNC_DIO + F.PARALLEL_DIROPS +
    F.ABORT_ERROR + F.MAX_PAGES + F.SETXATTR_EXT + F.INIT_EXT + F.DIRECT_IO_ALLOW_MMAP;
  let flags = 0;
  for (const r of ROWS) {
    if (!r.method) continue;
    const has = typeof fs[r.method] === 'function';
    if (has && r.init && (!r.init.when || r.init.when(fs))) flags |= r.init.flags;
    if (!has && r.initMissing) flags |= r.initMissing;
  }
  // `w` holds flags above 2^31 (not bitwise-safe in a number): add the missing bits one by one.
  for (let bit = 1; bit <= 0x40000000; bit *= 2) if (flags & bit && Math.floor(w / bit) % 2 === 0) w += bit;
  return w;
}
