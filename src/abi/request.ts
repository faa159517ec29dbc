/**
 * Request decoding and reply framing: bytes in, plain objects out. No I/O.
 */
import { EINVAL, EIO, ENAMETOOLONG, ENOSYS, ESTALE } from './errno.js';
import { nameFromBytes } from './names.js';
import type { Decoded, StructDef } from './struct.js';
import { fuse_in_header, fuse_init_in, fuse_out_header, fuse_setxattr_in } from './structs.js';
import { FUSE_COMPAT_SETXATTR_IN_SIZE, FUSE_EXT_GROUPS, Opcode } from './consts.js';

/** Size of fuse_in_header, which starts every request. */
export const IN_HEADER_SIZE = fuse_in_header.size; // 40
/** Size of fuse_out_header, which starts every reply. */
export const OUT_HEADER_SIZE = fuse_out_header.size; // 16

/** A request the kernel should not have sent: answered with `errno`, logged loudly. */
export class ProtocolError extends Error {
  /**
   * @param errno - The errno the reply carries (positive, e.g. EINVAL).
   * @param answer - A well-formed request refused by policy (a name longer than NAME_MAX): an
   * ordinary error reply, not logged as malformed.
   */
  constructor(readonly errno: number, message: string, readonly answer = false) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * What the decoder needs to know of an opcode: its row in the opcode table
 * (src/api/ops.ts holds the one table; this is its wire half).
 */
export interface WireSpec<B = unknown> {
  /** The opcode this row decodes (enum fuse_opcode). */
  readonly opcode: number;
  /** Kernel name without the FUSE_ prefix, e.g. "LOOKUP". */
  readonly name: string;
  /** Fixed body struct after fuse_in_header, if any. */
  readonly body?: StructDef<any>;
  /** The body size the kernel sends when it is shorter than `body` (compat forms:
   * SETXATTR without FUSE_SETXATTR_EXT, INIT before 7.36); the rest decodes as 0. */
  readonly bodySize?: (opts: DecodeOptions, available: number) => number;
  /** How many NUL-terminated names follow the body (each at most NAME_MAX bytes). */
  readonly names: 0 | 1 | 2;
  /** The second "name" is a path (SYMLINK's target), not limited to NAME_MAX. */
  readonly secondIsPath?: boolean;
  /** The name is not a directory entry's: an extended attribute's name (it may hold '/'),
   * or TMPFILE's, which is the VFS's placeholder "/" (vfs_tmpfile's d_alloc of slash_name).
   * A directory entry's name is never empty and never holds '/' (the kernel sends none
   * such; EINVAL). */
  readonly nameNotEntry?: boolean;
  /** Raw bytes after the names: how many the body announces ('rest': all that follow). */
  readonly data?: (body: B) => number | 'rest';
  /** false for FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY: never answered. */
  readonly reply: boolean;
}

/** One decoded request. `dataView`/`extView` borrow the read buffer: valid only until the
 * handler returns (WRITE and SETXATTR data are copied before a handler sees them). */
export interface Request<B = unknown> {
  /** Total request length from fuse_in_header.len, header included. */
  readonly len: number;
  /** The opcode (enum fuse_opcode) from fuse_in_header. */
  readonly opcode: number;
  /** The opcode's wire row: how the body and names were decoded. */
  readonly row: WireSpec<any>;
  /** The 64-bit `unique` as its two 32-bit halves, copied into the reply unchanged. */
  readonly uniqueLo: number;
  /** High half of `unique` (bit 31 set on a resent request, FUSE_UNIQUE_RESEND_HI). */
  readonly uniqueHi: number;
  /** Node ids are allocated by the filesystem below 2^53 (an id at or above it is refused). */
  readonly nodeid: number;
  /** The caller's fsuid, as the kernel sees it (in the mount's user namespace). */
  readonly uid: number;
  /** The caller's fsgid. */
  readonly gid: number;
  /** The calling thread's id (0 for requests the kernel makes itself, e.g. from writeback). */
  readonly pid: number;
  /** The decoded fixed body (row.body), typed from its struct declaration. */
  readonly body: B;
  /** First NUL-terminated name, decoded losslessly (see names.ts); '' if the row has none. */
  readonly name: string;
  /** Second name (RENAME newname, SYMLINK target). */
  readonly name2: string;
  /** Trailing raw bytes (WRITE data, xattr value, forget array): borrowed view. */
  readonly dataView: Uint8Array;
  /** Request extensions (7.38: secctx, 7.39: supplementary groups): borrowed view. */
  readonly extView: Uint8Array;
  /** The FUSE_EXT_GROUPS extension's groups, if the request has one (checked: a malformed
   * extension area makes the request malformed). */
  readonly suppGroups?: readonly number[];
}

/** Negotiated settings that change how request bodies are laid out. */
export interface DecodeOptions {
  /** FUSE_SETXATTR_EXT negotiated: fuse_setxattr_in is 16 bytes, else 8. */
  setxattrExt: boolean;
}

/**
 * Reads the `unique` of a possibly malformed request, so it can still be
 * answered. Returns undefined when fewer than 16 bytes arrived.
 */
export function peekUnique(view: DataView, n: number): [number, number] | undefined {
  if (n < 16) return undefined;
  return [view.getUint32(8, true), view.getUint32(12, true)];
}

/** Linux's NAME_MAX. The kernel passes longer names (up to FUSE_NAME_MAX, 1024, or
 * PATH_MAX since 6.14), but every Linux filesystem refuses them, statfs reports 255,
 * and a directory entry longer than that could not be listed back: ENAMETOOLONG. */
export const NAME_MAX = 255;

function readName(bytes: Uint8Array, from: number, end: number, what: string, op: string, max: number, entry: boolean): [string, number] {
  const nul = bytes.indexOf(0, from);
  if (nul < 0 || nul >= end) throw new ProtocolError(EINVAL, `${op}: ${what} is not NUL-terminated`);
  if (nul - from > max) throw new ProtocolError(ENAMETOOLONG, `${op}: ${what} is ${nul - from} bytes, more than ${max}`, true);
  if (entry && (nul === from || bytes.subarray(from, nul).includes(0x2f))) throw new ProtocolError(EINVAL, `${op}: ${what} is empty or holds '/'`);
  return [nameFromBytes(bytes.subarray(from, nul)), nul + 1];
}

const TWO32 = 4294967296;

/** The wire half of INIT's row: the transport decodes INIT before any filesystem's
 * table is in play; src/api/ops.ts uses this same row. Kernels before 7.36 send
 * only the first 16 bytes of fuse_init_in. */
export const INIT_WIRE: WireSpec<Decoded<typeof fuse_init_in.fields>> = Object.freeze({
  opcode: Opcode.INIT, name: 'INIT', body: fuse_init_in, names: 0, reply: true,
  bodySize: (_o: DecodeOptions, available: number) => Math.max(16, Math.min(available, fuse_init_in.size)),
});
function initOnly(opcode: number): WireSpec<any> | undefined {
  return opcode === Opcode.INIT ? INIT_WIRE : undefined;
}

/**
 * Decodes the request in `bytes[0..n)` with the row `rowOf(opcode)`. Throws
 * ProtocolError for a request that is short, has a length that disagrees with
 * what was read, an unknown opcode, a name without its NUL, announced data
 * that is missing, or a node id / file handle no filesystem can have handed
 * out (at or above 2^53: ESTALE).
 */
export function decodeRequest<R extends WireSpec<any> = WireSpec<any>>(
  bytes: Uint8Array, view: DataView, n: number, opts: DecodeOptions,
  rowOf: (opcode: number) => R | undefined = initOnly as (opcode: number) => R | undefined,
): Request & { row: R } {
  if (n < IN_HEADER_SIZE) throw new ProtocolError(EIO, `short request: ${n} bytes, header is ${IN_HEADER_SIZE}`);
  const len = view.getUint32(0, true);
  const opcode = view.getUint32(4, true);
  if (len !== n) throw new ProtocolError(EINVAL, `${rowOf(opcode)?.name ?? `OPCODE_${opcode}`}: header says ${len} bytes, read ${n}`);
  const row = rowOf(opcode);
  if (!row) throw new ProtocolError(ENOSYS, `unknown opcode ${opcode}`);
  const extlen = view.getUint16(36, true) * 8;
  const end = n - extlen;
  if (end < IN_HEADER_SIZE) throw new ProtocolError(EINVAL, `${row.name}: extensions (${extlen} bytes) exceed the request`);
  const nodeHi = view.getUint32(20, true);
  if (nodeHi > 0x1fffff) throw new ProtocolError(ESTALE, `${row.name}: node id ${view.getBigUint64(16, true)} was never handed out`);
  let pos = IN_HEADER_SIZE;
  let body: any;
  const def = row.body;
  if (def) {
    const need = row.bodySize ? row.bodySize(opts, end - pos) : def.size;
    if (end - pos < need) throw new ProtocolError(EINVAL, `${row.name}: body is ${end - pos} bytes, need ${need}`);
    if (need < def.size) {
      // The short (compat) form: decode from a zero-padded copy.
      const tmp = new Uint8Array(def.size);
      tmp.set(bytes.subarray(pos, pos + need));
      body = def.decode(new DataView(tmp.buffer), 0);
    } else {
      body = def.decode(view, pos);
    }
    pos += need;
    const bad = def.badId(body);
    if (bad !== undefined) throw new ProtocolError(ESTALE, `${row.name}: ${bad} ${body[bad]} was never handed out`);
  }
  let name = '';
  let name2 = '';
  if (row.names >= 1) [name, pos] = readName(bytes, pos, end, 'name', row.name, NAME_MAX, !row.nameNotEntry);
  if (row.names === 2) {
    const path = row.secondIsPath === true;
    [name2, pos] = readName(bytes, pos, end, path ? 'target' : 'second name', row.name, path ? Infinity : NAME_MAX, !path);
  }
  let dataView: Uint8Array = EMPTY;
  if (row.data) {
    const want = row.data(body);
    if (want !== 'rest' && want > end - pos) throw new ProtocolError(EINVAL, `${row.name}: ${want} data bytes announced, ${end - pos} present`);
    dataView = bytes.subarray(pos, want === 'rest' ? end : pos + want);
  }
  return {
    len, opcode, row,
    uniqueLo: view.getUint32(8, true),
    uniqueHi: view.getUint32(12, true),
    nodeid: view.getUint32(16, true) + nodeHi * TWO32,
    uid: view.getUint32(24, true),
    gid: view.getUint32(28, true),
    pid: view.getUint32(32, true),
    body, name, name2, dataView,
    extView: extlen ? bytes.subarray(end, n) : EMPTY,
    suppGroups: extlen ? extGroups(bytes.subarray(end, n)) : undefined,
  };
}
const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * The supplementary groups in a request's extensions (FUSE_EXT_GROUPS, sent with
 * FUSE_CREATE_SUPP_GROUP on creations: the parent directory's group when the caller
 * has it only as a supplementary group), or undefined when there is none. A malformed
 * extension area is a ProtocolError (EINVAL), never a partial answer.
 */
export function extGroups(ext: Uint8Array): number[] | undefined {
  if (ext.length === 0) return undefined;
  const view = new DataView(ext.buffer, ext.byteOffset, ext.byteLength);
  for (let at = 0; at < ext.length;) {
    if (at + 8 > ext.length) throw new ProtocolError(EINVAL, `request extension header cut at byte ${at}`);
    const size = view.getUint32(at, true);
    const type = view.getUint32(at + 4, true);
    if (size < 8 || size % 8 !== 0 || at + size > ext.length) throw new ProtocolError(EINVAL, `request extension of ${size} bytes at byte ${at}`);
    if (type === FUSE_EXT_GROUPS) {
      if (size < 12) throw new ProtocolError(EINVAL, 'supplementary-groups extension without a count');
      const n = view.getUint32(at + 8, true);
      if (12 + 4 * n > size) throw new ProtocolError(EINVAL, `supplementary-groups extension: ${n} groups in ${size} bytes`);
      const groups: number[] = new Array(n);
      for (let i = 0; i < n; i++) groups[i] = view.getUint32(at + 12 + 4 * i, true);
      return groups;
    }
    at += size;
  }
  return undefined;
}

/** Writes fuse_out_header at offset 0. `error` is 0 or a negative errno. */
export function writeOutHeader(view: DataView, len: number, error: number, uniqueLo: number, uniqueHi: number): void {
  view.setUint32(0, len, true);
  view.setInt32(4, error, true);
  view.setUint32(8, uniqueLo, true);
  view.setUint32(12, uniqueHi, true);
}

/** The size of fuse_setxattr_in the kernel sends for these INIT flags. */
export function setxattrInSize(setxattrExt: boolean): number {
  return setxattrExt ? fuse_setxattr_in.size : FUSE_COMPAT_SETXATTR_IN_SIZE;
}
