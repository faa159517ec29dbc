/**
 * Linux errno values, taken from Node's own table (os.constants.errno) so they
 * match the platform. Replies carry them negated in fuse_out_header.error.
 */
import { constants } from 'node:os';

const E = constants.errno as Record<string, number>;

export const {
  EPERM, ENOENT, EINTR, EIO, ENXIO, E2BIG, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY,
  EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, ENOTTY, EFBIG, ENOSPC,
  ESPIPE, EROFS, EMLINK, ERANGE, ENAMETOOLONG, ENOSYS, ENOTEMPTY, ELOOP, ENODATA, EPROTO,
  EOVERFLOW, EOPNOTSUPP, ENOTSUP, ECONNABORTED, ENOTCONN, ESTALE, ETIMEDOUT, EDEADLK, ENOLCK,
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
