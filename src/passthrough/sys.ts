/**
 * Typed access to the passthrough's syscalls in the native addon
 * (native/pt.cc). Calls that take `uid, gid` run as that caller
 * (setfsuid/setfsgid; -1 = as ourselves).
 *
 * Names and paths (`Name`) are bytes: a Buffer/Uint8Array goes to the kernel
 * exactly (any byte but '/' and NUL makes a name); a string is taken as UTF-8
 * and is meant for the paths we build ('', '.', '/proc/self/fd/N'). A NUL in
 * either is refused (EINVAL). 64-bit offsets and sizes are bigints in and out
 * (a safe-integer number is accepted too); a value the syscall cannot take is
 * refused with the errno the kernel gives (EINVAL; EFBIG for ftruncate).
 *
 * Creations (mkdirat, mknodat, openat with O_CREAT or O_TMPFILE) take a
 * `umask` and run on the addon's creator thread, whose umask is its own: the
 * process umask is never read or changed.
 */
import { native } from '../transport/native.js';

export type Name = Uint8Array | string;

export interface PtSys {
  /** With O_CREAT or O_TMPFILE in `flags`, runs under `umask` (default 0) on the creator thread. */
  openat(dirfd: number, name: Name, flags: number, mode: number, uid: number, gid: number, umask?: number): number;
  /** openat(dirfd, name, O_PATH|O_NOFOLLOW) as this thread's caller, then statx of it into
   * `num`/`big` (as statx()): the fd, or −errno (never throws: ENOENT is a lookup's normal answer). */
  lookupat(dirfd: number, name: Name, num: Float64Array, big: BigUint64Array): number;
  /** statx of `name` in dirfd (no symlink followed) as this thread's caller into `num`/`big`:
   * 0, or −errno (never throws). */
  statat(dirfd: number, name: Name, num: Float64Array, big: BigUint64Array): number;
  /** Reads the process umask again (a program that changed it after start calls this): creations
   * whose mode it leaves as the needed umask would run on the calling thread. Returns it. */
  refreshUmask(): number;
  /** Fills `num` (Float64Array(STX_NUM)) and `big` (BigUint64Array(STX_BIG)); see STX, STXB. */
  statx(dirfd: number, name: Name, flags: number, num: Float64Array, big: BigUint64Array): void;
  mkdirat(dirfd: number, name: Name, mode: number, uid: number, gid: number, umask: number): void;
  /** `dev` is glibc's dev_t. */
  mknodat(dirfd: number, name: Name, mode: number, dev: number | bigint, uid: number, gid: number, umask: number): void;
  symlinkat(target: Name, dirfd: number, name: Name, uid: number, gid: number): void;
  linkat(olddirfd: number, oldname: Name, newdirfd: number, newname: Name, flags: number, uid: number, gid: number): void;
  unlinkat(dirfd: number, name: Name, flags: number, uid: number, gid: number): void;
  renameat2(olddirfd: number, oldname: Name, newdirfd: number, newname: Name, flags: number, uid: number, gid: number): void;
  /** The target's bytes. */
  readlinkat(dirfd: number, name: Name): Buffer;
  fchownat(dirfd: number, name: Name, uid: number, gid: number, flags: number): void;
  utimensat(dirfd: number, name: Name, as: number, ans: number, ms: number, mns: number, flags: number): void;
  getxattr(path: Name, name: Name): Buffer;
  setxattr(path: Name, name: Name, value: Uint8Array, flags: number): void;
  /** The raw list: each name's bytes and a NUL. */
  listxattr(path: Name): Buffer;
  removexattr(path: Name, name: Name): void;
  /** One listxattr(2) with `buf` (its length is the size; an empty buf makes the size probe):
   * the count the call answered (ERANGE when the list does not fit). */
  listxattrInto(path: Name, buf: Uint8Array): number;
  /** One getxattr(2) with `buf` (its length is the size; an empty buf makes the size probe). */
  getxattrInto(path: Name, name: Name, buf: Uint8Array): number;
  nameToHandleAt(dirfd: number, name: Name, flags: number): [Buffer, number];
  openByHandleAt(mountfd: number, handle: Uint8Array, flags: number): number;
  /** Reads up to `buf.length` bytes at `pos` (EINVAL for pos ≥ 2^63). */
  pread(fd: number, buf: Uint8Array, pos: bigint): number;
  /** Writes `data` at `pos` (EINVAL for pos ≥ 2^63). */
  pwrite(fd: number, data: Uint8Array, pos: bigint): number;
  /** EFBIG for size ≥ 2^63. */
  ftruncate(fd: number, size: bigint): void;
  /** truncate(2) by path (a FUSE server sees SETATTR without a file handle). */
  truncate(path: Name, size: bigint): void;
  fallocate(fd: number, mode: number, offset: bigint, length: bigint): void;
  /** `offset` is signed (a loff_t). */
  lseek(fd: number, offset: bigint, whence: number): bigint;
  copyFileRange(fdIn: number, offIn: bigint, fdOut: number, offOut: bigint, len: bigint, flags: number): bigint;
  /** l_whence SEEK_SET; answers [type, start, len, pid] (F_GETLK fills them). */
  fcntlLock(fd: number, cmd: number, type: number, start: bigint, len: bigint, pid: number): [number, bigint, bigint, number];
  flock(fd: number, op: number): void;
  /** Fills `out` (BigUint64Array(8)): blocks, bfree, bavail, files, ffree, bsize, namelen, frsize;
   * and f_type if it has a 9th element. */
  fstatfs(fd: number, out: BigUint64Array): void;
  syncfs(fd: number): void;
  raiseNofile(want: number): number;
  faccessat(dirfd: number, name: Name, mode: number, flags: number, uid: number, gid: number): void;
  /** This thread runs as uid/gid with `groups` as its supplementary groups (null: keep ours)
   * until become(-1, -1, null); creations on the creator thread take the same credentials. */
  become(uid: number, gid: number, groups: Uint32Array | null): void;
  /** preadv2(RWF_NOWAIT) into buf[at..] at `pos`: the bytes that could be read without blocking
   * (from the page cache), or −errno (EAGAIN: it would block). Never throws. */
  preadNowait(fd: number, buf: Uint8Array, pos: bigint, at: number): number;
  /** pwritev2(RWF_NOWAIT) of data[at..] at `pos`: bytes written without blocking, or −errno. */
  pwriteNowait(fd: number, data: Uint8Array, pos: bigint, at: number): number;
  /** On the libuv thread pool (a slow source stalls no request): bytes read into `buf`. */
  preadAsync(fd: number, buf: Uint8Array, pos: bigint): Promise<number>;
  /** On the thread pool: bytes written. */
  pwriteAsync(fd: number, data: Uint8Array, pos: bigint): Promise<number>;
  fsyncAsync(fd: number, datasync: boolean): Promise<number>;
  /** On the thread pool: bytes of linux_dirent64 records read into `buf` (0: the end).
   * seek: lseek to `pos` first (a d_off the source gave, signed, or 0); else go on. */
  getdentsAsync(fd: number, buf: Uint8Array, seek: boolean, pos: bigint): Promise<number>;
}

export const sys = (native as unknown as { pt: PtSys }).pt;

/** Indexes into statx's `num` output (Float64Array(STX_NUM)): the fields a double holds exactly. */
export const STX = {
  devMajor: 0, devMinor: 1, mntId: 2, mode: 3, nlink: 4, uid: 5, gid: 6, rdevMajor: 7, rdevMinor: 8,
  blksize: 9, atime: 10, atimeNs: 11, mtime: 12, mtimeNs: 13, ctime: 14, ctimeNs: 15,
  btime: 16, btimeNs: 17, mask: 18,
} as const;
export const STX_NUM = 19;
/** Indexes into statx's `big` output (BigUint64Array(STX_BIG)): the 64-bit fields, exact. */
export const STXB = { ino: 0, size: 1, blocks: 2, attributes: 3 } as const;
export const STX_BIG = 4;

/** Linux constants not in Node's fs.constants. */
export const L = {
  O_PATH: 0o10000000,
  O_TMPFILE: 0o20200000,
  /** __FMODE_EXEC: an open for execve() (the kernel passes it in FUSE_OPEN's flags). */
  FMODE_EXEC: 0o40,
  AT_FDCWD: -100,
  AT_EMPTY_PATH: 0x1000,
  AT_SYMLINK_NOFOLLOW: 0x100,
  AT_SYMLINK_FOLLOW: 0x400,
  AT_REMOVEDIR: 0x200,
  AT_EACCESS: 0x200,
  UTIME_NOW: (1 << 30) - 1,
  UTIME_OMIT: (1 << 30) - 2,
  RENAME_NOREPLACE: 1,
  RENAME_EXCHANGE: 2,
  RENAME_WHITEOUT: 4,
  F_OFD_GETLK: 36,
  F_OFD_SETLK: 37,
  LOCK_SH: 1, LOCK_EX: 2, LOCK_NB: 4, LOCK_UN: 8,
  F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2,
} as const;
