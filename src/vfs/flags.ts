/**
 * INIT flags under a Vfs: one session, several backends. 64-bit flag numbers
 * (see InitFlag) are combined here without bitwise operators (they are above 2^31).
 */
import { InitFlag, initFlags64, initFlagNames, splitInitFlags } from '../abi/index.js';

/** a & b */
export function and(a: number, b: number): number {
  const [al, ah] = splitInitFlags(a);
  const [bl, bh] = splitInitFlags(b);
  return initFlags64(al & bl, ah & bh);
}
/** a | b */
export function or(a: number, b: number): number {
  const [al, ah] = splitInitFlags(a);
  const [bl, bh] = splitInitFlags(b);
  return initFlags64(al | bl, ah | bh);
}
/** a & ~b */
export function without(a: number, b: number): number {
  const [al, ah] = splitInitFlags(a);
  const [bl, bh] = splitInitFlags(b);
  return initFlags64(al & ~bl, ah & ~bh);
}

/**
 * Flags that change what a request means for the filesystem that answers it: with
 * one of them in the session, a backend that did not ask for it would get requests
 * it misreads (writes gathered by the kernel and O_APPEND left to it, O_TRUNC inside
 * OPEN, a umask not applied, setuid bits left for it to clear, ACLs it must keep,
 * lock requests, "."/".." lookups, cached data it must invalidate itself). The session
 * has such a flag only if every backend wants it.
 *
 * All other flags are capacities (ASYNC_READ, MAX_PAGES, PASSTHROUGH, SETXATTR_EXT …)
 * that cost a backend nothing when it does not use them, and CACHE_SYMLINKS (no
 * POSIX filesystem changes a symlink's target in place): the session has them if any
 * backend wants them. DO_READDIRPLUS is one of these: the Vfs answers READDIRPLUS for
 * a backend without readdirplus by READDIR and a LOOKUP per name.
 */
export const MUST_MATCH =
  InitFlag.WRITEBACK_CACHE + InitFlag.ATOMIC_O_TRUNC + InitFlag.DONT_MASK + InitFlag.HANDLE_KILLPRIV +
  InitFlag.HANDLE_KILLPRIV_V2 + InitFlag.POSIX_ACL + InitFlag.POSIX_LOCKS + InitFlag.FLOCK_LOCKS +
  InitFlag.EXPORT_SUPPORT + InitFlag.EXPLICIT_INVAL_DATA;

/** The names of the flags in `v`, for messages: "WRITEBACK_CACHE, POSIX_ACL". */
export function flagList(v: number): string {
  return initFlagNames(v).join(', ');
}
