import type { Notifier } from '../transport/index.js';
/**
 * API types: what filesystems return and receive. These are not the wire
 * structs (src/abi): times are milliseconds, flags are booleans, one
 * function per type converts (src/api/convert.ts).
 */

/** An exact time: [seconds since the epoch (may be negative), nanoseconds 0…999999999]. */
export type Timespec = readonly [number, number];

/**
 * Inode attributes, like fs.Stats. Times are milliseconds since the epoch as
 * floating-point numbers (as `Stats.atimeMs`; sub-microsecond precision is
 * lost for present-day dates), or exact `[sec, nsec]` Timespecs. Missing
 * fields are 0 (nlink: 1).
 */
export interface Attr {
  ino: number;
  mode: number;
  size?: number;
  blocks?: number;
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
  generation?: number;
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
  blocks?: number;
  bfree?: number;
  bavail?: number;
  files?: number;
  ffree?: number;
  bsize?: number;
  namelen?: number;
  frsize?: number;
}

/** What SETATTR asks to change; absent fields stay as they are. */
export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
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

/** `Lock.end` of a lock that runs to the end of the file (the kernel's OFFSET_MAX). */
export const LOCK_TO_EOF = Number.MAX_SAFE_INTEGER;

/** A POSIX record lock (fcntl F_GETLK/F_SETLK) or a flock. */
export interface Lock {
  start: number;
  /** Last byte, inclusive; LOCK_TO_EOF (or more) for "to the end of the file". */
  end: number;
  /** F_RDLCK (0), F_WRLCK (1) or F_UNLCK (2). */
  type: number;
  pid: number;
}

/** statx(2) result (7.39). Times in ms like Attr. */
export interface Statx {
  mask: number;
  blksize?: number;
  attributes?: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  mode: number;
  ino: number;
  size?: number;
  blocks?: number;
  attributesMask?: number;
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
  /** `nextOffset`: the offset the kernel passes back to continue after this entry (non-zero). */
  add(name: string, ino: number, type: number, nextOffset: number): boolean;
}

/** Collects READDIRPLUS records (the entry counts as a LOOKUP unless it is "." or ".."). */
export interface DirentPlusSink {
  add(name: string, entry: Entry, nextOffset: number): boolean;
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
}
