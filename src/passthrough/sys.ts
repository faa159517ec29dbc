/**
 * Typed access to the passthrough's syscalls in the native addon
 * (native/pt.cc). Calls that take `uid, gid` run as that caller
 * (setfsuid/setfsgid; -1 = as ourselves).
 */
import { native } from '../transport/index.js';

export interface PtSys {
  openat(dirfd: number, name: string, flags: number, mode: number, uid: number, gid: number): number;
  /** Fills `out` (Float64Array(24)); see STX below. */
  statx(dirfd: number, name: string, flags: number, out: Float64Array): void;
  mkdirat(dirfd: number, name: string, mode: number, uid: number, gid: number): void;
  mknodat(dirfd: number, name: string, mode: number, dev: number, uid: number, gid: number): void;
  symlinkat(target: string, dirfd: number, name: string, uid: number, gid: number): void;
  linkat(olddirfd: number, oldname: string, newdirfd: number, newname: string, flags: number, uid: number, gid: number): void;
  unlinkat(dirfd: number, name: string, flags: number, uid: number, gid: number): void;
  renameat2(olddirfd: number, oldname: string, newdirfd: number, newname: string, flags: number, uid: number, gid: number): void;
  readlinkat(dirfd: number, name: string): Buffer;
  fchownat(dirfd: number, name: string, uid: number, gid: number, flags: number): void;
  utimensat(dirfd: number, name: string, as: number, ans: number, ms: number, mns: number, flags: number): void;
  readdir(dirfd: number): [string[], number[], number[]];
  getxattr(path: string, name: string): Buffer;
  setxattr(path: string, name: string, value: Uint8Array, flags: number): void;
  listxattr(path: string): Buffer;
  removexattr(path: string, name: string): void;
  nameToHandleAt(dirfd: number, name: string, flags: number): [Buffer, number];
  openByHandleAt(mountfd: number, handle: Uint8Array, flags: number): number;
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  lseek(fd: number, offset: number, whence: number): number;
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, len: number, flags: number): number;
  fcntlLock(fd: number, cmd: number, type: number, start: number, len: number, pid: number): [number, number, number, number];
  flock(fd: number, op: number): void;
  fstatfs(fd: number, out: Float64Array): void;
  syncfs(fd: number): void;
  raiseNofile(want: number): number;
  faccessat(dirfd: number, name: string, mode: number, flags: number, uid: number, gid: number): void;
  setFsIds(uid: number, gid: number): void;
}

export const sys = (native as unknown as { pt: PtSys }).pt;

/** Indexes into the statx output array. */
export const STX = {
  ino: 0, devMajor: 1, devMinor: 2, mntId: 3, mode: 4, nlink: 5, uid: 6, gid: 7, rdevMajor: 8, rdevMinor: 9,
  size: 10, blocks: 11, blksize: 12, atime: 13, atimeNs: 14, mtime: 15, mtimeNs: 16, ctime: 17, ctimeNs: 18,
  btime: 19, btimeNs: 20, mask: 21, attributes: 22,
} as const;

/** Linux constants not in Node's fs.constants. */
export const L = {
  O_PATH: 0o10000000,
  O_TMPFILE: 0o20200000,
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

/** dev_t from major/minor (glibc's makedev). */
export function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) + (minor & 0xff) + ((minor & ~0xff) * 2 ** 12) + ((major & ~0xfff) * 2 ** 32);
}
