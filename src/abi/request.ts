/**
 * Request decoding and reply framing: bytes in, plain objects out. No I/O.
 */
import { EINVAL, EIO, ENOSYS } from './errno.js';
import { opcodeName, opcodeRow, type OpcodeRow } from './opcodes.js';
import { fuse_in_header, fuse_out_header, fuse_setxattr_in } from './structs.js';
import { FUSE_COMPAT_SETXATTR_IN_SIZE, Opcode } from './consts.js';

export const IN_HEADER_SIZE = fuse_in_header.size; // 40
export const OUT_HEADER_SIZE = fuse_out_header.size; // 16

/** A request the kernel should not have sent: answered with `errno`, logged loudly. */
export class ProtocolError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** One decoded request. `dataView` borrows the read buffer: valid only until the handler returns. */
export interface Request {
  readonly len: number;
  readonly opcode: number;
  readonly row: OpcodeRow;
  /** The 64-bit `unique` as its two 32-bit halves, copied into the reply unchanged. */
  readonly uniqueLo: number;
  readonly uniqueHi: number;
  readonly nodeid: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** The decoded fixed body (row.body), or undefined. */
  readonly body: any;
  /** First NUL-terminated name, if the row has names ('' otherwise). */
  readonly name: string;
  /** Second name (RENAME newname, SYMLINK target). */
  readonly name2: string;
  /** Trailing raw bytes (WRITE data, xattr value, forget array): borrowed view. */
  readonly dataView: Uint8Array;
  /** Request extensions (7.38: secctx, 7.39: supplementary groups): borrowed view. */
  readonly extView: Uint8Array;
}

export interface DecodeOptions {
  /** FUSE_SETXATTR_EXT negotiated: fuse_setxattr_in is 16 bytes, else 8. */
  setxattrExt: boolean;
}

const utf8 = new TextDecoder('utf-8');

/**
 * Reads the `unique` of a possibly malformed request, so it can still be
 * answered. Returns undefined when fewer than 16 bytes arrived.
 */
export function peekUnique(view: DataView, n: number): [number, number] | undefined {
  if (n < 16) return undefined;
  return [view.getUint32(8, true), view.getUint32(12, true)];
}

function readName(bytes: Uint8Array, from: number, end: number, what: string, op: string): [string, number] {
  const nul = bytes.indexOf(0, from);
  if (nul < 0 || nul >= end) throw new ProtocolError(EINVAL, `${op}: ${what} is not NUL-terminated`);
  return [utf8.decode(bytes.subarray(from, nul)), nul + 1];
}

/**
 * Decodes the request in `bytes[0..n)`. Throws ProtocolError for a request
 * that is short, has a length that disagrees with what was read, an unknown
 * opcode, or a name without its NUL.
 */
export function decodeRequest(bytes: Uint8Array, view: DataView, n: number, opts: DecodeOptions): Request {
  if (n < IN_HEADER_SIZE) throw new ProtocolError(EIO, `short request: ${n} bytes, header is ${IN_HEADER_SIZE}`);
  const len = view.getUint32(0, true);
  const opcode = view.getUint32(4, true);
  if (len !== n) throw new ProtocolError(EINVAL, `${opcodeName(opcode)}: header says ${len} bytes, read ${n}`);
  const row = opcodeRow(opcode);
  if (!row) throw new ProtocolError(ENOSYS, `unknown opcode ${opcode}`);
  const extlen = view.getUint16(36, true) * 8;
  const end = n - extlen;
  if (end < IN_HEADER_SIZE) throw new ProtocolError(EINVAL, `${row.name}: extensions (${extlen} bytes) exceed the request`);
  let pos = IN_HEADER_SIZE;
  let body: unknown;
  if (row.body) {
    let need = row.body.size;
    if (opcode === Opcode.SETXATTR && !opts.setxattrExt) need = FUSE_COMPAT_SETXATTR_IN_SIZE;
    if (opcode === Opcode.INIT) need = 16; // kernels before 7.36 send 16 bytes
    if (end - pos < need) throw new ProtocolError(EINVAL, `${row.name}: body is ${end - pos} bytes, need ${need}`);
    if (need < row.body.size) {
      // Decode the short (compat) form from a zero-padded copy.
      const tmp = new Uint8Array(row.body.size);
      // Only the bytes that belong to the body: SETXATTR's compat body is exactly 8
      // (a name follows); INIT's is as long as the kernel sent, up to the full struct.
      const avail = opcode === Opcode.SETXATTR ? need : Math.min(end - pos, row.body.size);
      tmp.set(bytes.subarray(pos, pos + avail));
      body = row.body.decode(new DataView(tmp.buffer), 0);
      pos += avail;
    } else {
      body = row.body.decode(view, pos);
      pos += row.body.size;
    }
  }
  let name = '';
  let name2 = '';
  if (row.names >= 1) [name, pos] = readName(bytes, pos, end, 'name', row.name);
  if (row.names === 2) [name2, pos] = readName(bytes, pos, end, 'second name', row.name);
  const need = dataSize(opcode, body);
  if (need > end - pos) throw new ProtocolError(EINVAL, `${row.name}: ${need} data bytes announced, ${end - pos} present`);
  return {
    len, opcode, row,
    uniqueLo: view.getUint32(8, true),
    uniqueHi: view.getUint32(12, true),
    nodeid: view.getUint32(16, true) + view.getUint32(20, true) * 4294967296,
    uid: view.getUint32(24, true),
    gid: view.getUint32(28, true),
    pid: view.getUint32(32, true),
    body, name, name2,
    dataView: row.data ? bytes.subarray(pos, end) : EMPTY,
    extView: extlen ? bytes.subarray(end, n) : EMPTY,
  };
}
const EMPTY = new Uint8Array(0);

/** Trailing data bytes a request announces in its body (they must all be there). */
function dataSize(opcode: number, body: any): number {
  switch (opcode) {
    case Opcode.WRITE: return body.size;
    case Opcode.SETXATTR: return body.size;
    case Opcode.IOCTL: return body.in_size;
    default: return 0;
  }
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
