/**
 * READDIR / READDIRPLUS reply bodies: fuse_dirent (or fuse_direntplus)
 * records, each followed by its name and padded to 8 bytes (FUSE_DIRENT_ALIGN).
 */
import { fuse_dirent, fuse_direntplus, fuse_entry_out } from './structs.js';
import type { Encodable } from './struct.js';

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
  private readonly enc = new TextEncoder();

  constructor(readonly capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  get length(): number {
    return this.pos;
  }

  /** fuse_dirent: `off` is the offset of the *next* entry (what readdir passes back). */
  add(name: string, ino: number, type: number, off: number): boolean {
    const nameBytes = this.enc.encode(name);
    const size = direntSize(nameBytes.length);
    if (this.pos + size > this.capacity) return false;
    fuse_dirent.encode(this.view, this.pos, { ino, off, namelen: nameBytes.length, type });
    this.bytes.set(nameBytes, this.pos + FUSE_NAME_OFFSET);
    this.bytes.fill(0, this.pos + FUSE_NAME_OFFSET + nameBytes.length, this.pos + size);
    this.pos += size;
    return true;
  }

  /** fuse_direntplus: the entry (nodeid 0 = "no entry, just the name") then the dirent. */
  addPlus(entry: Encodable<typeof fuse_entry_out.fields>, name: string, ino: number, type: number, off: number): boolean {
    const nameBytes = this.enc.encode(name);
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
