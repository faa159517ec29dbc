import type { AtimeMode, Notifier } from '../transport/index.js';
/**
 * API types: what filesystems return and receive. These are not the wire
 * structs (src/abi): times are milliseconds, flags are booleans, one
 * function per type converts (src/api/convert.ts).
 *
 * 64-bit values keep their whole range. What the kernel sends that it or a
 * source filesystem chooses (offsets, sizes, lock ranges, readdir cookies) is
 * a `bigint`; what a filesystem returns may be a `number` (a safe integer) or
 * a `bigint` (`U64`) — inode numbers above 2^53 (overlayfs xino, Lustre FIDs)
 * need the bigint. Node ids and file handles are numbers: the filesystem
 * allocates them, and one at or above 2^53 is refused when it is returned.
 * Names are strings decoded losslessly from bytes (see src/abi/names.ts:
 * `nameToBytes`/`nameFromBytes`).
 */

/** An unsigned 64-bit value a filesystem returns: a safe-integer number or a bigint. */
export type U64 = number | bigint;

/** An exact time: [seconds since the epoch (may be negative), nanoseconds 0…999999999]. */
export type Timespec = readonly [number, number];

/**
 * Inode attributes, like fs.Stats. Times are milliseconds since the epoch as
 * floating-point numbers (as `Stats.atimeMs`; sub-microsecond precision is
 * lost for present-day dates), or exact `[sec, nsec]` Timespecs. Missing
 * fields are 0 (nlink: 1).
 */
export interface Attr {
  ino: U64;
  mode: number;
  size?: U64;
  blocks?: U64;
  nlink?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
  blksize?: number;
  atime?: number | Timespec;
  mtime?: number | Timespec;
  ctime?: number | Timespec;
  /** FUSE_ATTR_SUBMOUNT / FUSE_ATTR_DAX */
  flags?: number;
}

/** A reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE, TMPFILE and READDIRPLUS entries. */
export interface Entry {
  /** Node id the kernel will use for this inode; 0 = negative entry (cached ENOENT, LOOKUP only). */
  nodeid: number;
  /** nodeid + generation must be unique for the life of the filesystem. Default 0. */
  generation?: U64;
  attr: Attr;
  /** How long the kernel may cache the name → node binding, in ms. Default: the server's `entryTimeout`. */
  entryTimeout?: number;
  /** How long the kernel may cache the attributes, in ms. Default: the server's `attrTimeout`. */
  attrTimeout?: number;
}

/** A reply to GETATTR/SETATTR. */
export interface AttrReply {
  attr: Attr;
  /** Attribute cache time in ms. Default: the server's `attrTimeout`. */
  timeout?: number;
}

/** A reply to OPEN/OPENDIR (and the open half of CREATE/TMPFILE). */
export interface OpenReply {
  /** File handle passed back on READ/WRITE/RELEASE…; the filesystem's choice. Default 0. */
  fh?: number;
  /** FOPEN_DIRECT_IO: bypass the page cache. */
  directIo?: boolean;
  /** FOPEN_KEEP_CACHE: keep cached data from earlier opens. */
  keepCache?: boolean;
  /** FOPEN_NONSEEKABLE */
  nonSeekable?: boolean;
  /** FOPEN_CACHE_DIR (OPENDIR): let the kernel cache readdir results. */
  cacheDir?: boolean;
  /** FOPEN_STREAM: no file position at all. */
  stream?: boolean;
  /** FOPEN_NOFLUSH: no FLUSH on close. */
  noFlush?: boolean;
  /** FOPEN_PARALLEL_DIRECT_WRITES */
  parallelDirectWrites?: boolean;
  /** FOPEN_PASSTHROUGH with this backing id (FUSE_DEV_IOC_BACKING_OPEN, 7.40). */
  backingId?: number;
}

/** A reply to CREATE and TMPFILE. */
export interface CreateReply extends OpenReply {
  entry: Entry;
}

export interface StatFs {
  blocks?: U64;
  bfree?: U64;
  bavail?: U64;
  files?: U64;
  ffree?: U64;
  bsize?: number;
  namelen?: number;
  frsize?: number;
}

/** What SETATTR asks to change; absent fields stay as they are. */
export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  /** New size (truncate); the kernel's loff_t, 0 … 2^63-1. */
  size?: bigint;
  /** ms since the epoch, or 'now' (UTIME_NOW). Exact values are in atimeSpec/mtimeSpec/ctimeSpec. */
  atime?: number | 'now';
  mtime?: number | 'now';
  ctime?: number;
  /** The same times exactly, as the kernel sent them (set when atime/mtime/ctime are numbers). */
  atimeSpec?: Timespec;
  mtimeSpec?: Timespec;
  ctimeSpec?: Timespec;
  /** The file handle when the change came through an open file (ftruncate, fchmod…). */
  fh?: number;
  lockOwner?: bigint;
  /** FATTR_KILL_SUIDGID: clear setuid/setgid (HANDLE_KILLPRIV_V2). */
  killSuidgid?: boolean;
}

/** `Lock.end` of a lock that runs to the end of the file (the kernel's OFFSET_MAX, 2^63-1). */
export const LOCK_TO_EOF = 0x7fffffffffffffffn;

/** A POSIX record lock (fcntl F_GETLK/F_SETLK) or a flock. */
export interface Lock {
  start: bigint;
  /** Last byte, inclusive; LOCK_TO_EOF for "to the end of the file". */
  end: bigint;
  /** F_RDLCK (0), F_WRLCK (1) or F_UNLCK (2). */
  type: number;
  pid: number;
}

/** statx(2) result (7.39). Times in ms like Attr. */
export interface Statx {
  mask: number;
  blksize?: number;
  attributes?: U64;
  nlink?: number;
  uid?: number;
  gid?: number;
  mode: number;
  ino: U64;
  size?: U64;
  blocks?: U64;
  attributesMask?: U64;
  atime?: number;
  btime?: number;
  ctime?: number;
  mtime?: number;
  rdevMajor?: number;
  rdevMinor?: number;
  devMajor?: number;
  devMinor?: number;
}

export interface StatxReply {
  statx: Statx;
  timeout?: number;
}

export interface IoctlReply {
  result: number;
  data?: Uint8Array;
}

/** Collects READDIR records; `add` returns false when the reply is full (stop there). */
export interface DirentSink {
  /** `name`: a name string (lossless, see names.ts) or its bytes. `nextOffset`: the offset
   * (cookie) the kernel passes back to continue after this entry (non-zero). */
  add(name: string | Uint8Array, ino: U64, type: number, nextOffset: U64): boolean;
  /** The same with the name as `length` bytes of `src` from `start` (no copy made first). */
  addFrom?(src: Uint8Array, start: number, length: number, ino: U64, type: number, nextOffset: U64): boolean;
}

/** Collects READDIRPLUS records (the entry counts as a LOOKUP unless it is "." or ".."). */
export interface DirentPlusSink {
  add(name: string | Uint8Array, entry: Entry, nextOffset: U64): boolean;
}

/** What INIT offered and what the filesystem wants. */
export interface InitInfo {
  /** Notifications to the kernel (inval_inode, inval_entry, store, retrieve …); absent without a mount. */
  notifier?: Notifier;
  /** Protocol minor the kernel speaks. */
  kernelMinor: number;
  /** Flags the kernel offered (64-bit number, see InitFlag). */
  offered: number;
  /** Flags tsfuse will ask for; the filesystem may change it in `init`. */
  want: number;
  /** Mounted with default_permissions (POSIX_ACL would turn it on, so ask for that only then). */
  defaultPermissions: boolean;
  /** The mount's relatime/strictatime/noatime flag. The kernel marks FUSE inodes S_NOATIME and
   * never updates an access time itself: atime moves only with what your own I/O does.
   * Absent without a mount (a unit test). */
  atime?: AtimeMode;
  /** The mount's nodiratime flag (likewise yours to honour). */
  nodiratime?: boolean;
}
