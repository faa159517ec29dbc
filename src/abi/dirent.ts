/**
 * READDIR / READDIRPLUS reply bodies: fuse_dirent (or fuse_direntplus)
 * records, each followed by its name and padded to 8 bytes (FUSE_DIRENT_ALIGN).
 */
import { fuse_dirent, fuse_direntplus, fuse_entry_out } from './structs.js';
import type { Encodable } from './struct.js';
import { nameToBytes } from './names.js';

/** Offset of the name in a fuse_dirent record (its fixed part). */
export const FUSE_NAME_OFFSET = fuse_dirent.size; // 24
/** Offset of the name in a fuse_direntplus record (entry_out + dirent). */
export const FUSE_NAME_OFFSET_DIRENTPLUS = fuse_direntplus.size; // 152

/** Rounds up to the next multiple of 8. */
export function direntAlign(x: number): number {
  return (x + 7) & ~7;
}
/** Bytes a READDIR record with a name of `nameLen` bytes takes, padding included. */
export function direntSize(nameLen: number): number {
  return direntAlign(FUSE_NAME_OFFSET + nameLen);
}
/** Bytes a READDIRPLUS record with a name of `nameLen` bytes takes, padding included. */
export function direntplusSize(nameLen: number): number {
  return direntAlign(FUSE_NAME_OFFSET_DIRENTPLUS + nameLen);
}

/**
 * Fills a reply body with directory records up to `capacity` bytes (the
 * request's size). `add…` returns false, writing nothing, when the record does
 * not fit: the caller stops there and the kernel asks again from that offset.
 */
export class DirentWriter {
  /** The reply body being filled; its first `length` bytes are the records so far. */
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  /** A writer of `capacity` bytes, into `bytes` if given (at least that long: a server
   * reuses one buffer for every reply, see `reset`).
   * @param capacity - The most bytes of records the reply may hold (the request's size). */
  constructor(public capacity: number, bytes?: Uint8Array) {
    if (bytes && bytes.length < capacity) throw new RangeError(`DirentWriter: ${bytes.length} bytes cannot hold ${capacity}`);
    this.bytes = bytes ?? new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
  }

  /** Empty again, for a reply of `capacity` bytes (at most the buffer's length). */
  reset(capacity: number): void {
    this.capacity = Math.min(capacity, this.bytes.length);
    this.pos = 0;
  }

  /** Bytes written so far: the size of the reply body. */
  get length(): number {
    return this.pos;
  }

  /** fuse_dirent: `off` is the offset of the *next* entry (what readdir passes back).
   * `name` is a lossless name string (names.ts) or its bytes. Throws RangeError for an
   * empty name, one longer than 255 bytes or holding '/' or NUL, or an ino/off out of range. */
  add(name: string | Uint8Array, ino: number | bigint, type: number, off: number | bigint): boolean {
    const nameBytes = direntName(name);
    const size = direntSize(nameBytes.length);
    if (this.pos + size > this.capacity) return false;
    const v = this.view;
    const at = this.pos;
    setU64(v, at, ino, 'ino');
    setU64(v, at + 8, off, 'off');
    v.setUint32(at + 16, nameBytes.length, true);
    v.setUint32(at + 20, type >>> 0, true);
    this.bytes.set(nameBytes, this.pos + FUSE_NAME_OFFSET);
    for (let i = at + FUSE_NAME_OFFSET + nameBytes.length; i < at + size; i++) this.bytes[i] = 0;
    this.pos += size;
    return true;
  }

  /** `add` with the name as `length` bytes of `src` from `start`, copied straight into the
   * reply (checked as `add` checks it). */
  addFrom(src: Uint8Array, start: number, length: number, ino: number | bigint, type: number, off: number | bigint): boolean {
    if (length === 0 || length > 255 || start < 0 || start + length > src.length) {
      throw new RangeError(`directory entry name of ${length} bytes at ${start} is empty, longer than 255 bytes or outside its buffer`);
    }
    const size = direntSize(length);
    if (this.pos + size > this.capacity) return false;
    const v = this.view;
    const at = this.pos;
    const b = this.bytes;
    const to = at + FUSE_NAME_OFFSET;
    for (let i = 0; i < length; i++) {
      const c = src[start + i];
      if (c === 0x2f || c === 0) throw new RangeError(`directory entry name ${JSON.stringify(Buffer.from(src.subarray(start, start + length)).toString('latin1'))} holds '/' or NUL`);
      b[to + i] = c;
    }
    for (let i = to + length; i < at + size; i++) b[i] = 0;
    setU64(v, at, ino, 'ino');
    setU64(v, at + 8, off, 'off');
    v.setUint32(at + 16, length, true);
    v.setUint32(at + 20, type >>> 0, true);
    this.pos += size;
    return true;
  }

  /** fuse_direntplus: the entry (nodeid 0 = "no entry, just the name") then the dirent. */
  addPlus(entry: Encodable<typeof fuse_entry_out.fields>, name: string | Uint8Array, ino: number | bigint, type: number, off: number | bigint): boolean {
    const nameBytes = direntName(name);
    const size = direntplusSize(nameBytes.length);
    if (this.pos + size > this.capacity) return false;
    fuse_direntplus.encode(this.view, this.pos, {
      entry_out: entry,
      dirent: { ino, off, namelen: nameBytes.length, type },
    });
    this.bytes.set(nameBytes, this.pos + FUSE_NAME_OFFSET_DIRENTPLUS);
    this.bytes.fill(0, this.pos + FUSE_NAME_OFFSET_DIRENTPLUS + nameBytes.length, this.pos + size);
    this.pos += size;
    return true;
  }
}

const MAX_U64 = 0xffffffffffffffffn;
/** A u64 field: a bigint in range or a safe non-negative integer (RangeError otherwise). */
function setU64(v: DataView, at: number, x: number | bigint, what: string): void {
  if (typeof x === 'bigint') {
    if (x < 0n || x > MAX_U64) throw new RangeError(`dirent ${what} ${x} is not a u64`);
    v.setBigUint64(at, x, true);
  } else {
    if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`dirent ${what} ${x} is not a u64`);
    v.setUint32(at, x >>> 0, true);
    v.setUint32(at + 4, Math.floor(x / 0x100000000), true);
  }
}

/** Whether `b` holds '/' or NUL (a loop: for names this short it beats two includes()). */
function hasSlashOrNul(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] === 0x2f || b[i] === 0) return true;
  return false;
}

/** The bytes of a directory entry's name, checked as the kernel would (fuse_parse_dirfile
 * refuses a name longer than FUSE_NAME_MAX or holding '/'; an empty name makes no sense). */
function direntName(name: string | Uint8Array): Uint8Array {
  const b = typeof name === 'string' ? nameToBytes(name) : name;
  if (b.length === 0 || b.length > 255 || hasSlashOrNul(b)) {
    throw new RangeError(`directory entry name ${JSON.stringify(typeof name === 'string' ? name : Buffer.from(name).toString('latin1'))} is empty, longer than 255 bytes or holds '/' or NUL`);
  }
  return b;
}
