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
  /** Inode number (st_ino) as stat(2) shows it; not the node id. */
  ino: U64;
  /** File type and permission bits (st_mode), e.g. S_IFREG | 0o644. */
  mode: number;
  /** Size in bytes. */
  size?: U64;
  /** Space used, in 512-byte blocks. */
  blocks?: U64;
  /** Number of hard links. */
  nlink?: number;
  /** Owner's uid. */
  uid?: number;
  /** Group's gid. */
  gid?: number;
  /** Device number of a device file (makedev(major, minor), as the kernel encodes it). */
  rdev?: number;
  /** Preferred I/O size (st_blksize); 0: the filesystem's block size. */
  blksize?: number;
  /** Last access time. */
  atime?: number | Timespec;
  /** Last modification of the data. */
  mtime?: number | Timespec;
  /** Last change of the inode (attributes or data). */
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
  /** The inode's attributes (ignored for a negative entry). */
  attr: Attr;
  /** How long the kernel may cache the name → node binding, in ms. Default: the server's `entryTimeout`. */
  entryTimeout?: number;
  /** How long the kernel may cache the attributes, in ms. Default: the server's `attrTimeout`. */
  attrTimeout?: number;
}

/** A reply to GETATTR/SETATTR. */
export interface AttrReply {
  /** The attributes. */
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
  /** The new file's entry (counts as a lookup). */
  entry: Entry;
}

/** A reply to STATFS (statfs(2)); missing fields are 0. */
export interface StatFs {
  /** Size of the filesystem, in `frsize` units. */
  blocks?: U64;
  /** Free blocks. */
  bfree?: U64;
  /** Free blocks available to unprivileged users. */
  bavail?: U64;
  /** Total inodes. */
  files?: U64;
  /** Free inodes. */
  ffree?: U64;
  /** Preferred I/O block size. */
  bsize?: number;
  /** Longest file name, in bytes. */
  namelen?: number;
  /** Fragment size: the unit of `blocks`, `bfree` and `bavail`. */
  frsize?: number;
}

/** What SETATTR asks to change; absent fields stay as they are. */
export interface SetattrChanges {
  /** New permission bits (chmod); the file type bits are the file's own. */
  mode?: number;
  /** New owner (chown). */
  uid?: number;
  /** New group (chown, chgrp). */
  gid?: number;
  /** New size (truncate); the kernel's loff_t, 0 … 2^63-1. */
  size?: bigint;
  /** ms since the epoch, or 'now' (UTIME_NOW). Exact values are in atimeSpec/mtimeSpec/ctimeSpec. */
  atime?: number | 'now';
  /** New modification time: ms since the epoch, or 'now' (UTIME_NOW). */
  mtime?: number | 'now';
  /** New change time, ms since the epoch (sent with writeback caching, where the kernel keeps the times). */
  ctime?: number;
  /** The same times exactly, as the kernel sent them (set when atime/mtime/ctime are numbers). */
  atimeSpec?: Timespec;
  /** `mtime` exactly, as [sec, nsec]. */
  mtimeSpec?: Timespec;
  /** `ctime` exactly, as [sec, nsec]. */
  ctimeSpec?: Timespec;
  /** The file handle when the change came through an open file (ftruncate, fchmod…). */
  fh?: number;
  /** The caller's lock owner (FATTR_LOCKOWNER), sent with a truncate. */
  lockOwner?: bigint;
  /** FATTR_KILL_SUIDGID: clear setuid/setgid (HANDLE_KILLPRIV_V2). */
  killSuidgid?: boolean;
}

/** `Lock.end` of a lock that runs to the end of the file (the kernel's OFFSET_MAX, 2^63-1). */
export const LOCK_TO_EOF = 0x7fffffffffffffffn;

/** A POSIX record lock (fcntl F_GETLK/F_SETLK) or a flock. */
export interface Lock {
  /** First byte of the range. */
  start: bigint;
  /** Last byte, inclusive; LOCK_TO_EOF for "to the end of the file". */
  end: bigint;
  /** F_RDLCK (0), F_WRLCK (1) or F_UNLCK (2). */
  type: number;
  /** The process holding the lock (GETLK's answer); 0 when unknown. */
  pid: number;
}

/** statx(2) result (7.39). Times in ms like Attr. */
export interface Statx {
  /** Which fields are filled in (STATX_* bits). */
  mask: number;
  /** Preferred I/O size. */
  blksize?: number;
  /** STATX_ATTR_* flags of the file (immutable, append-only, …). */
  attributes?: U64;
  /** Number of hard links. */
  nlink?: number;
  /** Owner's uid. */
  uid?: number;
  /** Group's gid. */
  gid?: number;
  /** File type and permission bits. */
  mode: number;
  /** Inode number. */
  ino: U64;
  /** Size in bytes. */
  size?: U64;
  /** Space used, in 512-byte blocks. */
  blocks?: U64;
  /** Which `attributes` bits this filesystem supports. */
  attributesMask?: U64;
  /** Last access time. */
  atime?: number;
  /** Creation (birth) time. */
  btime?: number;
  /** Last change of the inode. */
  ctime?: number;
  /** Last modification of the data. */
  mtime?: number;
  /** Major number of a device file's device. */
  rdevMajor?: number;
  /** Minor number of a device file's device. */
  rdevMinor?: number;
  /** Major number of the device the file lives on. */
  devMajor?: number;
  /** Minor number of the device the file lives on. */
  devMinor?: number;
}

/** A reply to STATX (7.39). */
export interface StatxReply {
  /** The file's statx fields. */
  statx: Statx;
  /** Attribute cache time in ms. Default: the server's `attrTimeout`. */
  timeout?: number;
}

/** A reply to IOCTL. */
export interface IoctlReply {
  /** What ioctl(2) returns to the caller. */
  result: number;
  /** The bytes copied back to the caller's buffer (at most the request's out_size). */
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
  /** Adds `name` with its `entry` (as LOOKUP would answer); `nextOffset` as in DirentSink. */
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
