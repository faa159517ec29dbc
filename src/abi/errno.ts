/**
 * Linux errno values, taken from Node's own table (os.constants.errno) so they
 * match the platform. Replies carry them negated in fuse_out_header.error.
 */
import { constants } from 'node:os';

const E = constants.errno as Record<string, number>;

export const {
  /** Operation not permitted (not the owner, or not privileged). */ EPERM,
  /** No such file or directory; as a LOOKUP answer, a negative entry the kernel may cache. */ ENOENT,
  /** Interrupted: the answer to a request the kernel sent INTERRUPT for. */ EINTR,
  /** I/O error; also what a handler that throws something unexpected answers. */ EIO,
  /** No such device or address (e.g. opening a FIFO for writing with no reader, O_NONBLOCK). */ ENXIO,
  /** Argument list too long; for xattrs, a value or list beyond the kernel's maximum. */ E2BIG,
  /** Bad file handle. */ EBADF,
  /** Try again: a non-blocking operation would block (SETLK on a held lock). */ EAGAIN,
  /** Out of memory. */ ENOMEM,
  /** Permission denied by the mode bits or ACLs. */ EACCES,
  /** Bad address. */ EFAULT,
  /** Resource busy (e.g. a mount point, or a directory in use). */ EBUSY,
  /** The name already exists (MKNOD, MKDIR, CREATE with O_EXCL, LINK, SYMLINK). */ EEXIST,
  /** Cross-device link or rename; the caller falls back to copying. */ EXDEV,
  /** No such device; reading /dev/fuse answers it once the mount is gone. */ ENODEV,
  /** A path component, or the target of a directory operation, is not a directory. */ ENOTDIR,
  /** The target is a directory where a non-directory was required. */ EISDIR,
  /** Invalid argument. */ EINVAL,
  /** The system-wide limit on open files was reached. */ ENFILE,
  /** The process's limit on open files (RLIMIT_NOFILE) was reached. */ EMFILE,
  /** Inappropriate ioctl for this file. */ ENOTTY,
  /** File too large (beyond the filesystem's or RLIMIT_FSIZE's limit). */ EFBIG,
  /** No space left on the device. */ ENOSPC,
  /** Illegal seek (a pipe, or a non-seekable file). */ ESPIPE,
  /** Read-only filesystem. */ EROFS,
  /** Too many hard links. */ EMLINK,
  /** Result too large for the caller's buffer (GETXATTR, LISTXATTR with a size). */ ERANGE,
  /** A name is longer than NAME_MAX (255 bytes). */ ENAMETOOLONG,
  /** Operation not implemented: for most opcodes the kernel then stops sending it. */ ENOSYS,
  /** Directory not empty (RMDIR, RENAME over a directory). */ ENOTEMPTY,
  /** Too many symbolic links, or O_NOFOLLOW met a symlink. */ ELOOP,
  /** No such extended attribute (GETXATTR, REMOVEXATTR); Linux's ENOATTR. */ ENODATA,
  /** Protocol error: a reply or request the other side cannot parse. */ EPROTO,
  /** A value does not fit the type the caller asked for (an offset, a size). */ EOVERFLOW,
  /** Operation not supported on this file (the same number as ENOTSUP on Linux). */ EOPNOTSUPP,
  /** Operation not supported (an alias of EOPNOTSUPP on Linux). */ ENOTSUP,
  /** Connection aborted: what /dev/fuse answers after an abort (fusectl), with FUSE_ABORT_ERROR. */ ECONNABORTED,
  /** Not connected: the mount's server is gone ("Transport endpoint is not connected"). */ ENOTCONN,
  /** Stale file handle: the node id or handle no longer names a live object. */ ESTALE,
  /** Timed out. */ ETIMEDOUT,
  /** A blocking lock would deadlock (SETLKW). */ EDEADLK,
  /** No locks available. */ ENOLCK,
} = E as Record<string, number>;

const BY_NUMBER = new Map<number, string>();
for (const [code, n] of Object.entries(E)) if (!BY_NUMBER.has(n)) BY_NUMBER.set(n, code);

/** errno number for a code such as "ENOENT", or undefined. */
export function errnoOf(code: string): number | undefined {
  return E[code];
}
/** Code such as "ENOENT" for an errno number (positive or negative). */
export function errnoName(n: number): string {
  return BY_NUMBER.get(Math.abs(n)) ?? `E${Math.abs(n)}`;
}
