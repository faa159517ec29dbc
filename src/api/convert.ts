/**
 * API types → wire structs (and back for SETATTR). The only place that knows
 * both shapes.
 */
import { FATTR, FOPEN } from '../abi/index.js';
import type { Attr, Entry, OpenReply, SetattrChanges, StatFs, Statx, Timespec } from './types.js';

/** ms (float) → [seconds, nanoseconds], for times and timeouts. */
export function msToTimespec(ms: number): [number, number] {
  if (!(ms > 0)) return ms < 0 && Number.isFinite(ms) ? negTimespec(ms) : [0, 0];
  if (ms >= Number.MAX_SAFE_INTEGER) return [Number.MAX_SAFE_INTEGER, 0];
  const sec = Math.floor(ms / 1000);
  const nsec = Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6));
  return [sec, nsec];
}
function negTimespec(ms: number): [number, number] {
  const sec = Math.floor(ms / 1000);
  if (sec < -(2 ** 63)) return [-(2 ** 63), 0]; // the i64 floor of a time64
  return [sec, Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6))];
}
/** [seconds, nanoseconds] → ms (float); the inverse of `msToTimespec`. */
export function timespecToMs(sec: number, nsec: number): number {
  return sec * 1000 + nsec / 1e6;
}

/** A time given as ms or as an exact Timespec → [sec, nsec]. */
function timeOut(t: number | Timespec | undefined): readonly [number, number] {
  return typeof t === 'object' ? t : msToTimespec(t ?? 0);
}

/** fuse_attr of `a`: the wire fields, with defaults for what `a` leaves out and times as [sec, nsec]. */
export function attrOut(a: Attr) {
  const [atime, atimensec] = timeOut(a.atime);
  const [mtime, mtimensec] = timeOut(a.mtime);
  const [ctime, ctimensec] = timeOut(a.ctime);
  return {
    ino: a.ino, size: a.size ?? 0, blocks: a.blocks ?? 0,
    atime, mtime, ctime, atimensec, mtimensec, ctimensec,
    mode: a.mode, nlink: a.nlink ?? 1, uid: a.uid ?? 0, gid: a.gid ?? 0,
    rdev: a.rdev ?? 0, blksize: a.blksize ?? 0, flags: a.flags ?? 0,
  };
}

/** fuse_entry_out of `e`; a negative entry (node id 0) without a time of its own is cached
 * for `defNegative` ms (0: not at all, the same as ENOENT to the kernel). */
export function entryOut(e: Entry, defEntry: number, defAttr: number, defNegative = 0) {
  const [entry_valid, entry_valid_nsec] = msToTimespec(e.entryTimeout ?? (e.nodeid === 0 ? defNegative : defEntry));
  const [attr_valid, attr_valid_nsec] = msToTimespec(e.attrTimeout ?? defAttr);
  return {
    nodeid: e.nodeid, generation: e.generation ?? 0, entry_valid, attr_valid,
    entry_valid_nsec, attr_valid_nsec, attr: e.nodeid === 0 && !e.attr ? {} : attrOut(e.attr),
  };
}

export function openOut(o: OpenReply) {
  let f = 0;
  if (o.directIo) f |= FOPEN.DIRECT_IO;
  if (o.keepCache) f |= FOPEN.KEEP_CACHE;
  if (o.nonSeekable) f |= FOPEN.NONSEEKABLE;
  if (o.cacheDir) f |= FOPEN.CACHE_DIR;
  if (o.stream) f |= FOPEN.STREAM;
  if (o.noFlush) f |= FOPEN.NOFLUSH;
  if (o.parallelDirectWrites) f |= FOPEN.PARALLEL_DIRECT_WRITES;
  if (o.backingId !== undefined) f |= FOPEN.PASSTHROUGH;
  return { fh: o.fh ?? 0, open_flags: f, backing_id: o.backingId ?? 0 };
}

export function statfsOut(s: StatFs) {
  return {
    st: {
      blocks: s.blocks ?? 0, bfree: s.bfree ?? 0, bavail: s.bavail ?? 0, files: s.files ?? 0,
      ffree: s.ffree ?? 0, bsize: s.bsize ?? 512, namelen: s.namelen ?? 255, frsize: s.frsize ?? s.bsize ?? 512,
    },
  };
}

function sxTime(ms: number | undefined) {
  const [tv_sec, tv_nsec] = msToTimespec(ms ?? 0);
  return { tv_sec, tv_nsec };
}
export function statxOut(s: Statx) {
  return {
    mask: s.mask, blksize: s.blksize ?? 0, attributes: s.attributes ?? 0, nlink: s.nlink ?? 1,
    uid: s.uid ?? 0, gid: s.gid ?? 0, mode: s.mode, ino: s.ino, size: s.size ?? 0, blocks: s.blocks ?? 0,
    attributes_mask: s.attributesMask ?? 0, atime: sxTime(s.atime), btime: sxTime(s.btime),
    ctime: sxTime(s.ctime), mtime: sxTime(s.mtime), rdev_major: s.rdevMajor ?? 0,
    rdev_minor: s.rdevMinor ?? 0, dev_major: s.devMajor ?? 0, dev_minor: s.devMinor ?? 0,
  };
}

/** fuse_setattr_in → SetattrChanges */
export function setattrChanges(b: {
  valid: number; fh: number; size: bigint; lock_owner: bigint; atime: number; mtime: number; ctime: number;
  atimensec: number; mtimensec: number; ctimensec: number; mode: number; uid: number; gid: number;
}): SetattrChanges {
  const v = b.valid;
  const c: SetattrChanges = {};
  if (v & FATTR.MODE) c.mode = b.mode;
  if (v & FATTR.UID) c.uid = b.uid;
  if (v & FATTR.GID) c.gid = b.gid;
  if (v & FATTR.SIZE) c.size = b.size;
  if (v & FATTR.ATIME_NOW) c.atime = 'now';
  else if (v & FATTR.ATIME) { c.atime = timespecToMs(b.atime, b.atimensec); c.atimeSpec = [b.atime, b.atimensec]; }
  if (v & FATTR.MTIME_NOW) c.mtime = 'now';
  else if (v & FATTR.MTIME) { c.mtime = timespecToMs(b.mtime, b.mtimensec); c.mtimeSpec = [b.mtime, b.mtimensec]; }
  if (v & FATTR.CTIME) { c.ctime = timespecToMs(b.ctime, b.ctimensec); c.ctimeSpec = [b.ctime, b.ctimensec]; }
  if (v & FATTR.FH) c.fh = b.fh;
  if (v & FATTR.LOCKOWNER) c.lockOwner = b.lock_owner;
  if (v & FATTR.KILL_SUIDGID) c.killSuidgid = true;
  return c;
}
