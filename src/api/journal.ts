/**
 * The takeover journal: what the kernel holds of a session, appended as
 * msgpack records to a file, so that a new server process can take the
 * /dev/fuse fd over after a crash and carry on (DESIGN.md "Lifecycle").
 *
 * Records are arrays, first element a one-letter kind:
 *   ['I', negotiated, offer]          INIT as agreed (the new server gets no INIT)
 *   ['C', nextNodeid, nextFh]         id counters (in snapshots)
 *   ['E', id, parent, name, saved?]   an entry handed out: +1 lookup of `id`, dentry
 *                                     parent/name (parent 0: none); `saved` (the inode's
 *                                     saveIdentity()) the first time the id is used
 *   ['F', id, n]                      FORGET of n lookups
 *   ['U', parent, name]               the dentry is gone (unlink, rmdir, replaced)
 *   ['M', p, name, np, newName, flags] rename (flags: RENAME_EXCHANGE swaps)
 *   ['O', fh, id, flags, dir, backing] an open file (dir 1: directory; backing: its kernel passthrough id, 0 none) …
 *   ['R', fh]                         … and its release
 *   ['B', key, opcode]                a non-idempotent request begins (flushed first)
 *   ['D', key, errno, id?, fh?]       … and ended: errno 0 and the entry id / fh it made
 *
 * Names are bytes (nameToBytes), so names that are not UTF-8 survive exactly.
 * Each record is buffered, and the buffer is committed before the reply that
 * depends on it goes out. The file is mapped shared (the addon's mapShared):
 * committing is a copy into the mapping and then a store of the new length in
 * the header, no system call, and what is stored outlives the process (it is
 * the process that crashes, not the machine: no fsync). Layout: 16 bytes of
 * header ("TSFJ", version 1, u32 LE length of the records), the records, then
 * room to grow. Where a file cannot be mapped, each commit is one write(2) to a
 * plain file of records instead. The file is rewritten as a snapshot at
 * takeover and when it grows past `compactBytes`.
 */
import { closeSync, constants as C, fstatSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { decodeMulti, Encoder } from '@msgpack/msgpack';
import { native } from '../transport/index.js';

const MAGIC = 0x4a465354; // "TSFJ" read as u32 LE
const HEADER = 16;
const MIN_CAPACITY = 1 << 20;

/** One journal record: an array whose first element is its kind letter (see the module comment). */
export type JournalRecord = unknown[];

/** Where a filesystem's records go (a Journal, or a part of one: a Vfs backend's records are tagged). */
export interface JournalWriter {
  /** Buffers one record; it is committed before the reply that depends on it. */
  add(rec: JournalRecord): void;
}

/** A filesystem that can be taken over after a crash (an InodeTree, a Vfs): it journals what
 * the kernel holds, and a new process restores that from the records. */
export interface Restorable {
  /** Where it records changes (set by the supervised server; undefined: not journaled). */
  journal: JournalWriter | undefined;
  /** The records that describe it now (they replace the log). */
  snapshot(): Iterable<JournalRecord>;
  /** Rebuilds what a dead process journaled; call before any request is served. */
  restore(records: readonly JournalRecord[], log?: (line: string) => void): Promise<{ nodes: number; lostNodes: number; files: number; lostFiles: number }>;
  /** Whether handle `fh` (of `nodeid`) was opened O_APPEND: its writes are not idempotent. */
  isAppend(fh: number, nodeid?: number): boolean;
}

/** Whether `fs` can be taken over (see Restorable). */
export function isRestorable(fs: unknown): fs is Restorable {
  const r = fs as Partial<Restorable> | null;
  return typeof r?.restore === 'function' && typeof r.snapshot === 'function' && typeof r.isAppend === 'function';
}

/** The takeover journal file: buffered msgpack records, committed through a shared mapping. */
export class Journal implements JournalWriter {
  private fd: number;
  private buf = Buffer.allocUnsafe(64 * 1024);
  private len = 0;
  // bigints encode as 64-bit integers and 64-bit integers decode as bigints (exact:
  // saveIdentity() may be a 64-bit inode number); readers take Number() of ids and flags.
  private readonly enc = new Encoder({ useBigInt64: true });
  /** Bytes of records in the file. */
  size = 0;
  /** The mapped file (undefined: plain writes) and its capacity. */
  private map: Uint8Array | undefined;
  private header: DataView | undefined;
  /** Called (once per flush) when the file has grown past compactBytes: write a snapshot. */
  onLarge: (() => void) | undefined;

  /**
   * Opens (creating) the journal at `path`; an existing journal is kept as it is.
   * @param path - The journal file.
   * @param compactBytes - Size past which `onLarge` asks for a snapshot to replace the records.
   * @param mapped - Commit through a shared mapping (else one write(2) per commit).
   */
  constructor(readonly path: string, readonly compactBytes = 64 * 1024 * 1024, mapped = true) {
    this.fd = openSync(path, C.O_RDWR | C.O_CREAT | C.O_APPEND, 0o600);
    const st = fstatSync(this.fd);
    if (!mapped) {
      this.size = st.size;
      return;
    }
    if (st.size === 0) this.mapFresh(this.fd, MIN_CAPACITY);
    else if (st.size >= HEADER) {
      const h = Buffer.alloc(HEADER);
      if (readHeader(this.fd, h) && h.readUInt32LE(0) === MAGIC) {
        this.mapAt(this.fd, st.size);
        this.size = this.header!.getUint32(8, true);
      }
    }
  }

  /** Maps a new, empty journal file `fd` of `capacity` bytes (falls back to plain writes). */
  private mapFresh(fd: number, capacity: number): void {
    ftruncateSync(fd, capacity);
    if (!this.mapAt(fd, capacity)) {
      ftruncateSync(fd, 0); // a filesystem that cannot map files: plain writes
      return;
    }
    this.header!.setUint32(0, MAGIC, true);
    this.header!.setUint32(4, 1, true);
    this.header!.setUint32(8, 0, true);
    this.size = 0;
  }

  private mapAt(fd: number, capacity: number): boolean {
    try {
      const ab = native.mapShared(fd, capacity);
      this.map = new Uint8Array(ab);
      this.header = new DataView(ab, 0, HEADER);
      return true;
    } catch {
      this.map = undefined;
      this.header = undefined;
      return false;
    }
  }

  /** All records of the journal at `path` (an unreadable tail, from a torn write, ends it). */
  static read(path: string): JournalRecord[] {
    let bytes: Uint8Array = readFileSync(path);
    if (bytes.length >= HEADER && Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32LE(0) === MAGIC) {
      const used = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER).readUInt32LE(8);
      bytes = bytes.subarray(HEADER, HEADER + used);
    }
    const out: JournalRecord[] = [];
    try {
      for (const r of decodeMulti(bytes, { useBigInt64: true })) if (Array.isArray(r)) out.push(r);
    } catch { /* a torn last record */ }
    return out;
  }

  /**
   * Appends one record to the buffer. The hot records (ids, flags, names, a key string)
   * are written by a small msgpack writer here (about 5× faster than the generic encoder,
   * which takes every other value); @msgpack/msgpack reads them all back.
   */
  add(rec: JournalRecord): void {
    this.room(16 + rec.length * 40); // room for the numbers and short strings put() writes without asking
    const start = this.len;
    this.buf[this.len++] = 0x90 | rec.length; // records have < 16 elements
    for (let i = 0; i < rec.length; i++) {
      if (!this.put(rec[i])) { // something only the generic encoder knows: encode the record whole
        this.len = start;
        const b = this.enc.encodeSharedRef(rec);
        this.room(b.length);
        this.buf.set(b, this.len);
        this.len += b.length;
        return;
      }
    }
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** Writes `v` as msgpack the way the generic encoder (useBigInt64) would; false if it
   * is not one of the simple kinds. */
  private put(v: unknown): boolean {
    const b = this.buf;
    if (v === null || v === undefined) { b[this.len++] = 0xc0; return true; }
    if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= 0 && v < 0x100000000) {
        let l = this.len;
        if (v < 0x80) b[l++] = v;
        else { b[l++] = 0xce; b[l++] = v >>> 24; b[l++] = (v >>> 16) & 0xff; b[l++] = (v >>> 8) & 0xff; b[l++] = v & 0xff; }
        this.len = l;
      } else if (Number.isInteger(v) && v < 0 && v >= -0x80000000) {
        b[this.len++] = 0xd2; b.writeInt32BE(v, this.len); this.len += 4;
      } else { // as the encoder does with useBigInt64: other numbers are float64
        b[this.len++] = 0xcb; b.writeDoubleBE(v, this.len); this.len += 8;
      }
      return true;
    }
    if (typeof v === 'string') {
      if (v.length < 32) { // short ASCII (record kinds, passthrough keys): byte by byte
        let l = this.len + 1;
        let ascii = true;
        for (let i = 0; i < v.length; i++) {
          const c = v.charCodeAt(i);
          if (c > 0x7f) { ascii = false; break; }
          b[l++] = c;
        }
        if (ascii) { b[this.len] = 0xa0 | v.length; this.len = l; return true; }
      }
      const n = Buffer.byteLength(v);
      this.room(n + 5);
      if (n < 32) this.buf[this.len++] = 0xa0 | n;
      else if (n < 0x100) { this.buf[this.len++] = 0xd9; this.buf[this.len++] = n; }
      else if (n < 0x10000) { this.buf[this.len++] = 0xda; this.buf.writeUInt16BE(n, this.len); this.len += 2; }
      else return false;
      this.len += this.buf.write(v, this.len, 'utf8');
      return true;
    }
    if (v instanceof Uint8Array) {
      const n = v.length;
      this.room(n + 5);
      if (n < 0x100) { this.buf[this.len++] = 0xc4; this.buf[this.len++] = n; }
      else if (n < 0x10000) { this.buf[this.len++] = 0xc5; this.buf.writeUInt16BE(n, this.len); this.len += 2; }
      else return false;
      this.buf.set(v, this.len);
      this.len += n;
      return true;
    }
    if (typeof v === 'boolean') { b[this.len++] = v ? 0xc3 : 0xc2; return true; }
    return false;
  }

  /** Whether records are buffered and not yet committed. */
  get pending(): boolean {
    return this.len > 0;
  }

  /** Commits what is buffered: into the mapping, then the new length (or one write). */
  flush(): void {
    if (this.len === 0 || this.fd < 0) return;
    if (this.map) {
      if (HEADER + this.size + this.len > this.map.length) {
        const capacity = Math.max(this.map.length * 2, HEADER + this.size + this.len + MIN_CAPACITY);
        ftruncateSync(this.fd, capacity);
        this.mapAt(this.fd, capacity);
      }
    }
    if (this.map) {
      this.map.set(this.buf.subarray(0, this.len), HEADER + this.size);
      this.header!.setUint32(8, this.size + this.len, true); // the commit: records first, then the length
    } else {
      let off = 0;
      while (off < this.len) off += writeSync(this.fd, this.buf, off, this.len - off);
    }
    this.size += this.len;
    this.len = 0;
    if (this.size > this.compactBytes && this.onLarge) this.onLarge();
  }

  /** Replaces the file with `records` (a snapshot), atomically (rename). */
  rewrite(records: Iterable<JournalRecord>): void {
    this.len = 0;
    const tmp = `${this.path}.new`;
    const fd = openSync(tmp, 'w', 0o600);
    const mapped = this.map !== undefined;
    let size = 0;
    try {
      if (mapped) writeAll(fd, Buffer.alloc(HEADER), HEADER); // filled in below
      for (const r of records) {
        this.add(r);
        if (this.len > 1 << 20) { size += this.len; writeAll(fd, this.buf, this.len); this.len = 0; }
      }
      size += this.len;
      writeAll(fd, this.buf, this.len);
      this.len = 0;
      if (mapped) {
        const h = Buffer.alloc(HEADER);
        h.writeUInt32LE(MAGIC, 0);
        h.writeUInt32LE(1, 4);
        h.writeUInt32LE(size, 8);
        writeSync(fd, h, 0, HEADER, 0);
        ftruncateSync(fd, Math.max(MIN_CAPACITY, 2 * (HEADER + size)));
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, C.O_RDWR | C.O_APPEND, 0o600);
    this.size = size;
    if (mapped && !this.mapAt(this.fd, fstatSync(this.fd).size)) this.size = 0; // cannot happen where it mapped before
  }

  /** Closes the file (and removes it with `remove`); later records are dropped. */
  close(remove = false): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.map = undefined; // unmapped when collected
    this.header = undefined;
    if (remove) try { unlinkSync(this.path); } catch { /* gone */ }
  }
}

function readHeader(fd: number, h: Buffer): boolean {
  try {
    return readSync(fd, h, 0, HEADER, 0) === HEADER;
  } catch {
    return false;
  }
}

function writeAll(fd: number, buf: Buffer, len: number): void {
  let off = 0;
  while (off < len) off += writeSync(fd, buf, off, len - off);
}
