/**
 * One handler per answered opcode: which FileSystem method serves it, how the
 * decoded request becomes its arguments, and how its result becomes the reply
 * body. The wire side of each row is in src/abi/opcodes.ts.
 */
import {
  EINVAL, ERANGE, FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_LK_FLOCK, FUSE_RELEASE_FLUSH,
  Opcode, OUT_HEADER_SIZE, structs as S, type Request,
} from '../abi/index.js';
import type { Context } from './context.js';
import { attrOut, entryOut, msToTimespec, openOut, setattrChanges, statfsOut, statxOut } from './convert.js';
import { FuseError } from './errors.js';
import type { FileSystem, FileSystemMethod } from './filesystem.js';
import { LOCK_TO_EOF, type AttrReply, type CreateReply, type Entry, type IoctlReply, type Lock, type OpenReply, type StatFs, type StatxReply } from './types.js';

/** Where replies are encoded: the body starts at OUT_HEADER_SIZE. */
export interface ReplyTarget {
  readonly out: DataView;
  readonly outBytes: Uint8Array;
  readonly entryTimeout: number;
  readonly attrTimeout: number;
  /** READDIR/READDIRPLUS: runs `fill` with a sink sized for the request. */
  direntReply(req: Request, fill: (sink: any) => unknown, plus: boolean): DirentResult | Promise<DirentResult>;
}

/** Encoded directory records, and the node ids READDIRPLUS handed out (they count as lookups). */
export interface DirentResult {
  bytes: Uint8Array;
  nodeids: number[];
}

/** A reply body: bytes already encoded in `out` (their length), or a data chunk. */
export type Body = number | Uint8Array;

export interface Handler {
  /** The FileSystem method; a missing method answers ENOSYS (or `fallback`). */
  readonly method: FileSystemMethod;
  call(fs: any, ctx: Context, req: Request, t: ReplyTarget): unknown;
  reply(t: ReplyTarget, result: any, req: Request): Body;
  /** Answer used when the method is missing, instead of ENOSYS. */
  readonly fallback?: (t: ReplyTarget, req: Request) => Body;
  /** Node ids this reply hands to the kernel (each counts as one lookup). */
  readonly entries?: (result: any) => number[];
  /** A file handle this reply hands to the kernel: if the reply never arrives (the
   * caller was interrupted), no RELEASE will come, so it is released here. */
  readonly unsent?: (fs: any, ctx: Context, req: Request, result: any) => unknown;
}

const H = OUT_HEADER_SIZE;
const none = (): Body => 0;

function entry(t: ReplyTarget, e: Entry): Body {
  S.fuse_entry_out.encode(t.out, H, entryOut(e, t.entryTimeout, t.attrTimeout));
  return S.fuse_entry_out.size;
}
function attr(t: ReplyTarget, r: AttrReply): Body {
  const [attr_valid, attr_valid_nsec] = msToTimespec(r.timeout ?? t.attrTimeout);
  S.fuse_attr_out.encode(t.out, H, { attr_valid, attr_valid_nsec, attr: attrOut(r.attr) });
  return S.fuse_attr_out.size;
}
function open(t: ReplyTarget, r: OpenReply | undefined): Body {
  S.fuse_open_out.encode(t.out, H, openOut(r ?? {}));
  return S.fuse_open_out.size;
}
function create(t: ReplyTarget, r: CreateReply): Body {
  S.fuse_entry_out.encode(t.out, H, entryOut(r.entry, t.entryTimeout, t.attrTimeout));
  S.fuse_open_out.encode(t.out, H + S.fuse_entry_out.size, openOut(r));
  return S.fuse_entry_out.size + S.fuse_open_out.size;
}
function u64(t: ReplyTarget, def: { encode: (v: DataView, o: number, x: any) => void; size: number }, value: object): Body {
  def.encode(t.out, H, value);
  return def.size;
}
const entryIds = (e: Entry) => (e.nodeid ? [e.nodeid] : []);
const createIds = (r: CreateReply) => (r.entry.nodeid ? [r.entry.nodeid] : []);
const releaseCreated = (fs: FileSystem, c: Context, r: Request, v: CreateReply) =>
  (v.entry.nodeid ? fs.release?.(c, v.entry.nodeid, v.fh ?? 0, r.body.flags, 0n, false) : undefined);

/** GETXATTR/LISTXATTR: size 0 asks for the length; a value longer than `size` is ERANGE. */
function sized(t: ReplyTarget, value: Uint8Array, size: number): Body {
  if (size === 0) {
    S.fuse_getxattr_out.encode(t.out, H, { size: value.length });
    return S.fuse_getxattr_out.size;
  }
  if (value.length > size) throw new FuseError(ERANGE);
  return value;
}
const enc = new TextEncoder();
function xattrNames(names: string[]): Uint8Array {
  const parts = names.map((n) => enc.encode(`${n}\0`));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
const OFFSET_MAX = 0x7fffffffffffffffn;
/** Wire → API: an end of OFFSET_MAX (to EOF) becomes LOCK_TO_EOF. */
function lockIn(l: { start: number; end: bigint; type: number; pid: number }): Lock {
  return { start: l.start, end: l.end >= OFFSET_MAX ? LOCK_TO_EOF : Number(l.end), type: l.type, pid: l.pid };
}
/** API → wire: any end at or past 2^53 means "to EOF" (OFFSET_MAX; the kernel rejects more with EIO). */
function lockOut(l: Lock): { start: number; end: bigint; type: number; pid: number } {
  return { start: l.start, end: l.end >= LOCK_TO_EOF ? OFFSET_MAX : BigInt(Math.max(0, Math.floor(l.end))), type: l.type, pid: l.pid };
}
function copyOf(view: Uint8Array, size: number): Uint8Array {
  const n = Math.min(size, view.length);
  const b = Buffer.allocUnsafe(n);
  b.set(view.subarray(0, n));
  return b;
}
function toBytes(v: string | Uint8Array): Uint8Array {
  return typeof v === 'string' ? enc.encode(v) : v;
}

const O = Opcode;
export const HANDLERS: Partial<Record<Opcode, Handler>> = {
  [O.LOOKUP]: { method: 'lookup', call: (fs: FileSystem, c, r) => fs.lookup!(c, r.nodeid, r.name), reply: entry, entries: entryIds },
  [O.GETATTR]: {
    method: 'getattr',
    call: (fs: FileSystem, c, r) => fs.getattr!(c, r.nodeid, r.body.getattr_flags & FUSE_GETATTR_FH ? r.body.fh : undefined),
    reply: attr,
  },
  [O.SETATTR]: { method: 'setattr', call: (fs: FileSystem, c, r) => fs.setattr!(c, r.nodeid, setattrChanges(r.body)), reply: attr },
  [O.READLINK]: { method: 'readlink', call: (fs: FileSystem, c, r) => fs.readlink!(c, r.nodeid), reply: (_t, v) => toBytes(v) },
  [O.SYMLINK]: { method: 'symlink', call: (fs: FileSystem, c, r) => fs.symlink!(c, r.nodeid, r.name, r.name2), reply: entry, entries: entryIds },
  [O.MKNOD]: { method: 'mknod', call: (fs: FileSystem, c, r) => fs.mknod!(c, r.nodeid, r.name, r.body.mode, r.body.rdev), reply: entry, entries: entryIds },
  [O.MKDIR]: { method: 'mkdir', call: (fs: FileSystem, c, r) => fs.mkdir!(c, r.nodeid, r.name, r.body.mode), reply: entry, entries: entryIds },
  [O.UNLINK]: { method: 'unlink', call: (fs: FileSystem, c, r) => fs.unlink!(c, r.nodeid, r.name), reply: none },
  [O.RMDIR]: { method: 'rmdir', call: (fs: FileSystem, c, r) => fs.rmdir!(c, r.nodeid, r.name), reply: none },
  [O.RENAME]: { method: 'rename', call: (fs: FileSystem, c, r) => fs.rename!(c, r.nodeid, r.name, r.body.newdir, r.name2, 0), reply: none },
  [O.RENAME2]: {
    method: 'rename', call: (fs: FileSystem, c, r) => fs.rename!(c, r.nodeid, r.name, r.body.newdir, r.name2, r.body.flags), reply: none,
  },
  [O.LINK]: { method: 'link', call: (fs: FileSystem, c, r) => fs.link!(c, r.body.oldnodeid, r.nodeid, r.name), reply: entry, entries: entryIds },
  [O.OPEN]: {
    method: 'open', call: (fs: FileSystem, c, r) => fs.open!(c, r.nodeid, r.body.flags), reply: open,
    unsent: (fs: FileSystem, c, r, v: OpenReply) => fs.release?.(c, r.nodeid, v.fh ?? 0, r.body.flags, 0n, false),
  },
  [O.READ]: {
    method: 'read', call: (fs: FileSystem, c, r) => fs.read!(c, r.nodeid, r.body.fh, r.body.offset, r.body.size),
    reply: (_t, v: Uint8Array, r) => (v.length > r.body.size ? v.subarray(0, r.body.size) : v),
  },
  [O.WRITE]: {
    method: 'write',
    // The data is copied out of the read buffer: the handler may keep it across awaits.
    // (allocUnsafe: the copy overwrites every byte, so no zero-filling first.)
    call: (fs: FileSystem, c, r) => fs.write!(c, r.nodeid, r.body.fh, r.body.offset, copyOf(r.dataView, r.body.size), r.body.write_flags),
    reply: (t, n: number) => u64(t, S.fuse_write_out, { size: n }),
  },
  [O.STATFS]: {
    method: 'statfs', call: (fs: FileSystem, c, r) => fs.statfs!(c, r.nodeid),
    reply: (t, s: StatFs) => u64(t, S.fuse_statfs_out, statfsOut(s)),
    fallback: (t) => u64(t, S.fuse_statfs_out, statfsOut({})),
  },
  [O.RELEASE]: {
    method: 'release',
    call: (fs: FileSystem, c, r) => fs.release!(c, r.nodeid, r.body.fh, r.body.flags, r.body.lock_owner, !!(r.body.release_flags & FUSE_RELEASE_FLUSH)),
    reply: none, fallback: none,
  },
  [O.FSYNC]: { method: 'fsync', call: (fs: FileSystem, c, r) => fs.fsync!(c, r.nodeid, r.body.fh, !!(r.body.fsync_flags & FUSE_FSYNC_FDATASYNC)), reply: none },
  [O.SETXATTR]: {
    method: 'setxattr',
    call: (fs: FileSystem, c, r) => {
      if (r.dataView.length < r.body.size) throw new FuseError(EINVAL, 'SETXATTR value shorter than its size');
      return fs.setxattr!(c, r.nodeid, r.name, r.dataView.slice(0, r.body.size), r.body.flags);
    },
    reply: none,
  },
  [O.GETXATTR]: { method: 'getxattr', call: (fs: FileSystem, c, r) => fs.getxattr!(c, r.nodeid, r.name), reply: (t, v, r) => sized(t, v, r.body.size) },
  [O.LISTXATTR]: { method: 'listxattr', call: (fs: FileSystem, c, r) => fs.listxattr!(c, r.nodeid), reply: (t, v, r) => sized(t, xattrNames(v), r.body.size) },
  [O.REMOVEXATTR]: { method: 'removexattr', call: (fs: FileSystem, c, r) => fs.removexattr!(c, r.nodeid, r.name), reply: none },
  [O.FLUSH]: { method: 'flush', call: (fs: FileSystem, c, r) => fs.flush!(c, r.nodeid, r.body.fh, r.body.lock_owner), reply: none },
  [O.OPENDIR]: {
    method: 'opendir', call: (fs: FileSystem, c, r) => fs.opendir!(c, r.nodeid, r.body.flags), reply: open,
    unsent: (fs: FileSystem, c, r, v: OpenReply) => fs.releasedir?.(c, r.nodeid, v.fh ?? 0, r.body.flags),
  },
  [O.READDIR]: {
    method: 'readdir',
    call: (fs: FileSystem, c, r, t) => t.direntReply(r, (sink) => fs.readdir!(c, r.nodeid, r.body.fh, r.body.offset, sink), false),
    reply: (_t, v: DirentResult) => v.bytes,
  },
  [O.READDIRPLUS]: {
    method: 'readdirplus',
    call: (fs: FileSystem, c, r, t) => t.direntReply(r, (sink) => fs.readdirplus!(c, r.nodeid, r.body.fh, r.body.offset, sink), true),
    reply: (_t, v: DirentResult) => v.bytes,
    entries: (v: DirentResult) => v.nodeids,
  },
  [O.RELEASEDIR]: { method: 'releasedir', call: (fs: FileSystem, c, r) => fs.releasedir!(c, r.nodeid, r.body.fh, r.body.flags), reply: none, fallback: none },
  [O.FSYNCDIR]: { method: 'fsyncdir', call: (fs: FileSystem, c, r) => fs.fsyncdir!(c, r.nodeid, r.body.fh, !!(r.body.fsync_flags & FUSE_FSYNC_FDATASYNC)), reply: none },
  [O.GETLK]: {
    method: 'getlk', call: (fs: FileSystem, c, r) => fs.getlk!(c, r.nodeid, r.body.fh, r.body.owner, lockIn(r.body.lk)),
    reply: (t, l: Lock) => u64(t, S.fuse_lk_out, { lk: lockOut(l) }),
  },
  [O.SETLK]: {
    method: 'setlk', call: (fs: FileSystem, c, r) => fs.setlk!(c, r.nodeid, r.body.fh, r.body.owner, lockIn(r.body.lk), false, !!(r.body.lk_flags & FUSE_LK_FLOCK)),
    reply: none,
  },
  [O.SETLKW]: {
    method: 'setlk', call: (fs: FileSystem, c, r) => fs.setlk!(c, r.nodeid, r.body.fh, r.body.owner, lockIn(r.body.lk), true, !!(r.body.lk_flags & FUSE_LK_FLOCK)),
    reply: none,
  },
  [O.ACCESS]: { method: 'access', call: (fs: FileSystem, c, r) => fs.access!(c, r.nodeid, r.body.mask), reply: none },
  [O.CREATE]: {
    method: 'create', call: (fs: FileSystem, c, r) => fs.create!(c, r.nodeid, r.name, r.body.mode, r.body.flags),
    reply: create, entries: createIds, unsent: releaseCreated,
  },
  [O.TMPFILE]: {
    method: 'tmpfile', call: (fs: FileSystem, c, r) => fs.tmpfile!(c, r.nodeid, r.body.mode, r.body.flags),
    reply: create, entries: createIds, unsent: releaseCreated,
  },
  [O.BMAP]: {
    method: 'bmap', call: (fs: FileSystem, c, r) => fs.bmap!(c, r.nodeid, r.body.blocksize, r.body.block),
    reply: (t, b: number) => u64(t, S.fuse_bmap_out, { block: b }),
  },
  [O.IOCTL]: {
    method: 'ioctl',
    call: (fs: FileSystem, c, r) => fs.ioctl!(c, r.nodeid, r.body.fh, r.body.cmd, r.body.arg, r.dataView.slice(0, r.body.in_size), r.body.out_size, r.body.flags),
    reply: (t, v: IoctlReply, r) => {
      const data = v.data ?? new Uint8Array(0);
      if (data.length > r.body.out_size) throw new FuseError(EINVAL, 'IOCTL reply larger than out_size');
      S.fuse_ioctl_out.encode(t.out, H, { result: v.result });
      t.outBytes.set(data, H + S.fuse_ioctl_out.size);
      return S.fuse_ioctl_out.size + data.length;
    },
  },
  [O.POLL]: {
    method: 'poll', call: (fs: FileSystem, c, r) => fs.poll!(c, r.nodeid, r.body.fh, r.body.kh, r.body.events, r.body.flags),
    reply: (t, ev: number) => u64(t, S.fuse_poll_out, { revents: ev }),
  },
  [O.FALLOCATE]: {
    method: 'fallocate', call: (fs: FileSystem, c, r) => fs.fallocate!(c, r.nodeid, r.body.fh, r.body.offset, r.body.length, r.body.mode), reply: none,
  },
  [O.LSEEK]: {
    method: 'lseek', call: (fs: FileSystem, c, r) => fs.lseek!(c, r.nodeid, r.body.fh, r.body.offset, r.body.whence),
    reply: (t, off: number) => u64(t, S.fuse_lseek_out, { offset: off }),
  },
  [O.COPY_FILE_RANGE]: {
    method: 'copyFileRange', call: copyRange,
    reply: (t, n: number) => u64(t, S.fuse_write_out, { size: Math.min(n, 0xffffffff) }),
  },
  [O.COPY_FILE_RANGE_64]: {
    method: 'copyFileRange', call: copyRange,
    reply: (t, n: number) => u64(t, S.fuse_copy_file_range_out, { bytes_copied: n }),
  },
  [O.SYNCFS]: { method: 'syncfs', call: (fs: FileSystem, c, r) => fs.syncfs!(c, r.nodeid), reply: none },
  [O.STATX]: {
    method: 'statx',
    call: (fs: FileSystem, c, r) => fs.statx!(c, r.nodeid, r.body.getattr_flags & FUSE_GETATTR_FH ? r.body.fh : undefined, r.body.sx_flags, r.body.sx_mask),
    reply: (t, v: StatxReply) => {
      const [attr_valid, attr_valid_nsec] = msToTimespec(v.timeout ?? t.attrTimeout);
      S.fuse_statx_out.encode(t.out, H, { attr_valid, attr_valid_nsec, stat: statxOut(v.statx) });
      return S.fuse_statx_out.size;
    },
  },
};

function copyRange(fs: FileSystem, c: Context, r: Request) {
  const b = r.body;
  return fs.copyFileRange!(c, r.nodeid, b.fh_in, b.off_in, b.nodeid_out, b.fh_out, b.off_out, b.len, b.flags);
}
