/**
 * Constants of the FUSE kernel protocol 7.45 (include/uapi/linux/fuse.h).
 * 64-bit INIT flags are split as the kernel splits them: bits 0–31 in
 * `flags`, bits 32–63 in `flags2` (only read when FUSE_INIT_EXT is set).
 * Here they are JavaScript numbers (exact up to 2^53), combined with
 * {@link initFlags64} / split with {@link splitInitFlags}.
 */

/** The protocol major version (FUSE_KERNEL_VERSION); the kernel and tsfuse must agree on it. */
export const FUSE_KERNEL_VERSION = 7;
/** The protocol minor version tsfuse speaks. */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/** Oldest kernel minor tsfuse accepts (Linux 4.20: FUSE_ABORT_ERROR, 7.27). */
export const FUSE_MIN_KERNEL_MINOR_VERSION = 27;
/** Node id of the mount's root directory: always known to the kernel, never forgotten. */
export const FUSE_ROOT_ID = 1;
/** The read buffer must hold at least this much (and max_write + headers). */
export const FUSE_MIN_READ_BUFFER = 8192;
/** Request header + the largest fixed request struct (fuse_write_in) + slack. */
export const FUSE_BUFFER_HEADER_SIZE = 4096;
/** The largest extended attribute value Linux allows (XATTR_SIZE_MAX): a SETXATTR
 * request carries up to this much whatever max_write is. */
export const XATTR_SIZE_MAX = 65536;

/** Size of fuse_entry_out for protocol minors below 9 (fuse_attr without blksize). */
export const FUSE_COMPAT_ENTRY_OUT_SIZE = 120;
/** Size of fuse_attr_out for protocol minors below 9. */
export const FUSE_COMPAT_ATTR_OUT_SIZE = 96;
/** Size of fuse_mknod_in for protocol minors below 12 (no umask). */
export const FUSE_COMPAT_MKNOD_IN_SIZE = 8;
/** Size of fuse_write_in for protocol minors below 9 (no lock_owner, flags). */
export const FUSE_COMPAT_WRITE_IN_SIZE = 24;
/** Size of fuse_statfs_out for protocol minors below 4. */
export const FUSE_COMPAT_STATFS_SIZE = 48;
/** Size of fuse_setxattr_in when FUSE_SETXATTR_EXT is not negotiated (no setxattr_flags). */
export const FUSE_COMPAT_SETXATTR_IN_SIZE = 8;
/** Size of fuse_init_out for protocol minors below 5. */
export const FUSE_COMPAT_INIT_OUT_SIZE = 8;
/** Size of fuse_init_out for protocol minors below 23 (no time_gran and later fields). */
export const FUSE_COMPAT_22_INIT_OUT_SIZE = 24;

/** Bit 63 of `unique`: a request re-sent after FUSE_NOTIFY_RESEND (7.40). */
export const FUSE_UNIQUE_RESEND_HI = 0x80000000;

/** The opcodes (enum fuse_opcode). 7 and 19 are unused by the kernel. */
export enum Opcode {
  LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, SYMLINK = 6,
  MKNOD = 8, MKDIR = 9, UNLINK = 10, RMDIR = 11, RENAME = 12, LINK = 13, OPEN = 14,
  READ = 15, WRITE = 16, STATFS = 17, RELEASE = 18, FSYNC = 20, SETXATTR = 21,
  GETXATTR = 22, LISTXATTR = 23, REMOVEXATTR = 24, FLUSH = 25, INIT = 26, OPENDIR = 27,
  READDIR = 28, RELEASEDIR = 29, FSYNCDIR = 30, GETLK = 31, SETLK = 32, SETLKW = 33,
  ACCESS = 34, CREATE = 35, INTERRUPT = 36, BMAP = 37, DESTROY = 38, IOCTL = 39, POLL = 40,
  NOTIFY_REPLY = 41, BATCH_FORGET = 42, FALLOCATE = 43, READDIRPLUS = 44, RENAME2 = 45,
  LSEEK = 46, COPY_FILE_RANGE = 47, SETUPMAPPING = 48, REMOVEMAPPING = 49, SYNCFS = 50,
  TMPFILE = 51, /** 7.39 */ STATX = 52, /** 7.45 */ COPY_FILE_RANGE_64 = 53,
  CUSE_INIT = 4096,
}

/** enum fuse_notify_code */
export enum NotifyCode {
  POLL = 1, INVAL_INODE = 2, INVAL_ENTRY = 3, STORE = 4, RETRIEVE = 5, DELETE = 6,
  /** 7.40 */ RESEND = 7, /** 7.44 */ INC_EPOCH = 8, /** 7.45 */ PRUNE = 9,
}

/** INIT flags (fuse_init_in/out `flags` and, shifted by 32, `flags2`). */
export const InitFlag = {
  ASYNC_READ: 2 ** 0, POSIX_LOCKS: 2 ** 1, FILE_OPS: 2 ** 2, ATOMIC_O_TRUNC: 2 ** 3,
  EXPORT_SUPPORT: 2 ** 4, BIG_WRITES: 2 ** 5, DONT_MASK: 2 ** 6, SPLICE_WRITE: 2 ** 7,
  SPLICE_MOVE: 2 ** 8, SPLICE_READ: 2 ** 9, FLOCK_LOCKS: 2 ** 10, HAS_IOCTL_DIR: 2 ** 11,
  AUTO_INVAL_DATA: 2 ** 12, DO_READDIRPLUS: 2 ** 13, READDIRPLUS_AUTO: 2 ** 14,
  ASYNC_DIO: 2 ** 15, WRITEBACK_CACHE: 2 ** 16, NO_OPEN_SUPPORT: 2 ** 17,
  PARALLEL_DIROPS: 2 ** 18, HANDLE_KILLPRIV: 2 ** 19, POSIX_ACL: 2 ** 20,
  ABORT_ERROR: 2 ** 21, MAX_PAGES: 2 ** 22, CACHE_SYMLINKS: 2 ** 23,
  NO_OPENDIR_SUPPORT: 2 ** 24, EXPLICIT_INVAL_DATA: 2 ** 25, MAP_ALIGNMENT: 2 ** 26,
  SUBMOUNTS: 2 ** 27, HANDLE_KILLPRIV_V2: 2 ** 28, SETXATTR_EXT: 2 ** 29,
  INIT_EXT: 2 ** 30, INIT_RESERVED: 2 ** 31,
  SECURITY_CTX: 2 ** 32, HAS_INODE_DAX: 2 ** 33, CREATE_SUPP_GROUP: 2 ** 34,
  HAS_EXPIRE_ONLY: 2 ** 35, /** 7.39 */ DIRECT_IO_ALLOW_MMAP: 2 ** 36,
  /** 7.40 */ PASSTHROUGH: 2 ** 37, /** 7.40 */ NO_EXPORT_SUPPORT: 2 ** 38,
  /** 7.40 */ HAS_RESEND: 2 ** 39, /** 7.41 */ ALLOW_IDMAP: 2 ** 40,
  /** 7.42 */ OVER_IO_URING: 2 ** 41, /** 7.43 */ REQUEST_TIMEOUT: 2 ** 42,
} as const;
/** The name of one INIT flag, e.g. 'WRITEBACK_CACHE'. */
export type InitFlagName = keyof typeof InitFlag;

const TWO32 = 4294967296;
/** Combines `flags` and `flags2` into one 64-bit flag number. */
export function initFlags64(flags: number, flags2: number): number {
  return (flags >>> 0) + (flags2 >>> 0) * TWO32;
}
/** Splits a 64-bit flag number into [flags, flags2]. */
export function splitInitFlags(v: number): [number, number] {
  const hi = Math.floor(v / TWO32);
  return [(v - hi * TWO32) >>> 0, hi >>> 0];
}
/** The names of the set bits, for logs. */
export function initFlagNames(v: number): InitFlagName[] {
  return (Object.keys(InitFlag) as InitFlagName[]).filter((k) => Math.floor(v / InitFlag[k]) % 2 === 1);
}

/** fuse_setattr_in.valid */
export const FATTR = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5,
  FH: 1 << 6, ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8, LOCKOWNER: 1 << 9, CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags */
export const FOPEN = {
  DIRECT_IO: 1 << 0, KEEP_CACHE: 1 << 1, NONSEEKABLE: 1 << 2, CACHE_DIR: 1 << 3,
  STREAM: 1 << 4, NOFLUSH: 1 << 5, PARALLEL_DIRECT_WRITES: 1 << 6, /** 7.40 */ PASSTHROUGH: 1 << 7,
} as const;

/** fuse_open_in/fuse_create_in.open_flags */
export const FUSE_OPEN_KILL_SUIDGID = 1 << 0;
/** fuse_setxattr_in.setxattr_flags */
export const FUSE_SETXATTR_ACL_KILL_SGID = 1 << 0;
/** fuse_release_in.release_flags */
export const FUSE_RELEASE_FLUSH = 1 << 0;
/** release_flags: also drop the flock() locks the closing file holds. */
export const FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1;
/** fuse_getattr_in.getattr_flags */
export const FUSE_GETATTR_FH = 1 << 0;
/** fuse_lk_in.lk_flags */
export const FUSE_LK_FLOCK = 1 << 0;
/** fuse_write_in.write_flags */
export const FUSE_WRITE_CACHE = 1 << 0;
/** write_flags: fuse_write_in.lock_owner is valid. */
export const FUSE_WRITE_LOCKOWNER = 1 << 1;
/** write_flags: clear the file's setuid/setgid bits (an unprivileged writer, FUSE_HANDLE_KILLPRIV_V2). */
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
/** fuse_read_in.read_flags */
export const FUSE_READ_LOCKOWNER = 1 << 1;
/** fuse_fsync_in.fsync_flags */
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
/** fuse_attr.flags */
export const FUSE_ATTR_SUBMOUNT = 1 << 0;
/** fuse_attr.flags: the file uses DAX (direct access to the backing memory, virtiofs). */
export const FUSE_ATTR_DAX = 1 << 1;
/** fuse_notify_inval_entry_out.flags */
export const FUSE_EXPIRE_ONLY = 1 << 0;
/** fuse_poll_in.flags */
export const FUSE_POLL_SCHEDULE_NOTIFY = 1 << 0;
/** fuse_ioctl_in/out.flags */
export const FUSE_IOCTL = {
  COMPAT: 1 << 0, UNRESTRICTED: 1 << 1, RETRY: 1 << 2, BIT32: 1 << 3, DIR: 1 << 4, COMPAT_X32: 1 << 5,
} as const;
/** Most iovecs an IOCTL retry (FUSE_IOCTL_RETRY) may ask for. */
export const FUSE_IOCTL_MAX_IOV = 256;
/** fuse_setupmapping_in.flags */
export const FUSE_SETUPMAPPING_FLAG_WRITE = 1 << 0;
/** fuse_setupmapping_in.flags: map for reading (DAX). */
export const FUSE_SETUPMAPPING_FLAG_READ = 1 << 1;
/** enum fuse_ext_type: 0..31 are secctx counts; 32 = supplementary groups (7.39). */
export const FUSE_MAX_NR_SECCTX = 31;
/** Extension type of the supplementary groups of the caller (7.39, FUSE_CREATE_SUPP_GROUP). */
export const FUSE_EXT_GROUPS = 32;
/** CUSE_INIT flags */
export const CUSE_UNRESTRICTED_IOCTL = 1 << 0;

/** /dev/fuse ioctls (magic 229). */
export const FUSE_DEV_IOC_CLONE = 0x8004e500; // _IOR(229, 0, uint32_t)
/** Registers a backing file for FOPEN_PASSTHROUGH; answers its backing id (7.40). */
export const FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501; // _IOW(229, 1, struct fuse_backing_map), 7.40
/** Drops a backing id registered with FUSE_DEV_IOC_BACKING_OPEN (7.40). */
export const FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502; // _IOW(229, 2, uint32_t), 7.40
/** Asks for INIT to be answered before mount(2) returns (7.45). */
export const FUSE_DEV_IOC_SYNC_INIT = 0xe503; // _IO(229, 3), 7.45

/** FUSE over io_uring (7.42). */
export const FUSE_URING_IN_OUT_HEADER_SZ = 128;
/** Size of the per-opcode area of an io_uring entry (7.42). */
export const FUSE_URING_OP_IN_OUT_SZ = 128;
/** io_uring command numbers (enum fuse_uring_cmd, 7.42). */
export enum UringCmd { INVALID = 0, REGISTER = 1, COMMIT_AND_FETCH = 2 }
