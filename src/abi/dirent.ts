/**
 * READDIR / READDIRPLUS reply bodies: fuse_dirent (or fuse_direntplus)
 * records, each followed by its name and padded to 8 bytes (FUSE_DIRENT_ALIGN).
 */
import { fuse_dirent, fuse_direntplus, fuse_entry_out } from './structs.js';
import type { Encodable } from './struct.js';
import { nameToBytes } from './names.js';

export const FUSE_NAME_OFFSET = fuse_dirent.size; // 24
export const FUSE_NAME_OFFSET_DIRENTPLUS = fuse_direntplus.size; // 152

/** Rounds up to the next multiple of 8. */
export function direntAlign(x: number): number {
  return (x + 7) & ~7;
}
export function direntSize(nameLen: number): number {
  return direntAlign(FUSE_NAME_OFFSET + nameLen);
}
export function direntplusSize(nameLen: number): number {
  return direntAlign(FUSE_NAME_OFFSET_DIRENTPLUS + nameLen);
}

/**
 * Fills a reply body with directory records up to `capacity` bytes (the
 * request's size). `add…` returns false, writing nothing, when the record does
 * not fit: the caller stops there and the kernel asks again from that offset.
 */
export class DirentWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(readonly capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

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
    fuse_dirent.encode(this.view, this.pos, { ino, off, namelen: nameBytes.length, type });
    this.bytes.set(nameBytes, this.pos + FUSE_NAME_OFFSET);
    this.bytes.fill(0, this.pos + FUSE_NAME_OFFSET + nameBytes.length, this.pos + size);
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

/** The bytes of a directory entry's name, checked as the kernel would (fuse_parse_dirfile
 * refuses a name longer than FUSE_NAME_MAX or holding '/'; an empty name makes no sense). */
function direntName(name: string | Uint8Array): Uint8Array {
  const b = typeof name === 'string' ? nameToBytes(name) : name;
  if (b.length === 0 || b.length > 255 || b.includes(0x2f) || b.includes(0)) {
    throw new RangeError(`directory entry name ${JSON.stringify(typeof name === 'string' ? name : Buffer.from(name).toString('latin1'))} is empty, longer than 255 bytes or holds '/' or NUL`);
  }
  return b;
}
