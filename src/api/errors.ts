/**
 * errno as a typed error. Handlers throw (or reject with) a FuseError, or a
 * Node fs error (mapped by its `code`); anything else becomes EIO and one log
 * line naming the opcode and node.
 */
import { errnoName, errnoOf, EIO } from '../abi/index.js';

/** The largest errno an error reply may carry (the kernel refuses -512 and below). */
export const MAX_ERRNO = 511;

/** An errno answer: throw it from a handler and the kernel's caller gets `-errno`. */
export class FuseError extends Error {
  /** The errno number, positive (1…MAX_ERRNO). */
  readonly errno: number;
  /** The errno's name, e.g. "ENOENT". */
  readonly code: string;
  /** `errno` is a positive errno number or a code such as "ENOENT". */
  constructor(errno: number | string, message?: string) {
    const n = typeof errno === 'number' ? Math.abs(errno) : errnoOf(errno);
    // The kernel accepts error replies of -1 … -511 only (fuse_dev_do_write: anything else
    // is refused with EINVAL, leaving the caller waiting): refuse the rest here, loudly.
    if (n === undefined || !Number.isInteger(n) || n < 1 || n > MAX_ERRNO) {
      throw new RangeError(`FuseError: ${String(errno)} is not an errno the kernel accepts (1…${MAX_ERRNO})`);
    }
    const code = errnoName(n);
    super(message ? `${code}: ${message}` : code);
    this.name = 'FuseError';
    this.errno = n;
    this.code = code;
  }
}

/**
 * The errno (positive) for a thrown value, and whether it deserves a log line
 * (true for values that are not errno-shaped: bugs, not answers).
 */
export function toErrno(e: unknown): { errno: number; unexpected: boolean } {
  try {
    return errnoOfThrown(e);
  } catch {
    return { errno: EIO, unexpected: true }; // a hostile value (revoked proxy, throwing getter)
  }
}

/** A thrown value as text for a log line; never throws (Symbols, revoked proxies, getters). */
export function describeThrown(e: unknown, stack = true): string {
  try {
    if (e instanceof Error) return (stack ? e.stack : undefined) ?? `${e.name}: ${e.message}`;
    return typeof e === 'symbol' ? e.toString() : String(e);
  } catch {
    try {
      return `a thrown ${typeof e}`;
    } catch {
      return 'a thrown value';
    }
  }
}

function errnoOfThrown(e: unknown): { errno: number; unexpected: boolean } {
  if (e instanceof FuseError) {
    // A subclass may have changed errno after construction: check again.
    if (Number.isInteger(e.errno) && e.errno >= 1 && e.errno <= MAX_ERRNO) return { errno: e.errno, unexpected: false };
    return { errno: EIO, unexpected: true };
  }
  if (e && typeof e === 'object') {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      const n = errnoOf(code);
      if (n !== undefined) return { errno: n, unexpected: false };
      // A system error whose name we do not know: Node-style errors carry -errno. Only
      // kernel errnos (below 512: the kernel refuses larger error replies, leaving the
      // caller waiting); libuv's own codes (-3000 …, e.g. ENOTFOUND) become EIO.
      const num = (e as { errno?: unknown }).errno;
      if (typeof num === 'number' && Number.isInteger(num) && num < 0 && num >= -MAX_ERRNO) return { errno: -num, unexpected: false };
    }
    if ((e as { name?: unknown }).name === 'AbortError') return { errno: errnoOf('EINTR')!, unexpected: false };
  }
  return { errno: EIO, unexpected: true };
}
