/**
 * Protocol version rules (the kernel's "Version negotiation" comment):
 * equal majors → both use the smaller minor; a kernel with a larger major gets
 * a reply with only our major/minor and sends INIT again; older majors, and
 * minors before FUSE_MIN_KERNEL_MINOR_VERSION, are refused.
 * Sizes that depend on the negotiated minor live here and nowhere else.
 */
import {
  FUSE_COMPAT_22_INIT_OUT_SIZE, FUSE_COMPAT_ATTR_OUT_SIZE, FUSE_COMPAT_ENTRY_OUT_SIZE,
  FUSE_COMPAT_INIT_OUT_SIZE, FUSE_COMPAT_STATFS_SIZE, FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION, FUSE_MIN_KERNEL_MINOR_VERSION,
} from './consts.js';
import { fuse_attr_out, fuse_entry_out, fuse_init_out, fuse_statfs_out } from './structs.js';

/** The outcome of INIT's version check: the minor both sides use, a retry, or a refusal. */
export type Negotiation =
  | { kind: 'ok'; minor: number }
  /** Kernel major is newer: answer with our version only and wait for a new INIT. */
  | { kind: 'retry-major' }
  | { kind: 'refuse'; reason: string };

/** Applies the version rules to the kernel's INIT major/minor. */
export function negotiateVersion(major: number, minor: number): Negotiation {
  if (major > FUSE_KERNEL_VERSION) return { kind: 'retry-major' };
  if (major < FUSE_KERNEL_VERSION || minor < FUSE_MIN_KERNEL_MINOR_VERSION) {
    return {
      kind: 'refuse',
      reason: `kernel FUSE protocol ${major}.${minor} is too old: tsfuse needs ` +
        `${FUSE_KERNEL_VERSION}.${FUSE_MIN_KERNEL_MINOR_VERSION} or newer (Linux 4.20+)`,
    };
  }
  return { kind: 'ok', minor: Math.min(minor, FUSE_KERNEL_MINOR_VERSION) };
}

/** Bytes of fuse_init_out to send for a negotiated minor. */
export function initOutSize(minor: number): number {
  if (minor < 5) return FUSE_COMPAT_INIT_OUT_SIZE;
  if (minor < 23) return FUSE_COMPAT_22_INIT_OUT_SIZE;
  return fuse_init_out.size;
}
/** Bytes of fuse_entry_out (also inside direntplus) for a negotiated minor. */
export function entryOutSize(minor: number): number {
  return minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : fuse_entry_out.size;
}
/** Bytes of fuse_attr_out for a negotiated minor. */
export function attrOutSize(minor: number): number {
  return minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : fuse_attr_out.size;
}
/** Bytes of fuse_statfs_out for a negotiated minor. */
export function statfsOutSize(minor: number): number {
  return minor < 4 ? FUSE_COMPAT_STATFS_SIZE : fuse_statfs_out.size;
}
