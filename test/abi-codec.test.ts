/**
 * The struct codec, DirentWriter and decodeRequest. Expected bytes are written
 * here by hand at the offsets of linux/fuse.h (Buffer.writeUInt32LE & co.),
 * never with the codec under test (STYLE.md 14); test/abi-layout.test.ts checks
 * those offsets against the C compiler.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants } from 'node:os';
import {
  structs, decodeRequest, DirentWriter, direntSize, ProtocolError,
  type FieldSpec, type StructDef, type Request,
} from '../src/abi/index.js';
import { opcodeRow, type OpRow } from '../src/api/ops.js';

const { EIO, EINVAL, ENAMETOOLONG, ENOSYS, ESTALE } = constants.errno;
const TWO32 = 4294967296;

type AnyStruct = StructDef<readonly FieldSpec[]>;
const ALL: [string, AnyStruct][] = Object.entries(structs as unknown as Record<string, AnyStruct>)
  .filter(([, v]) => typeof v?.encode === 'function');

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
/** Encodes `value` into a fresh, zeroed buffer of exactly `def.size` bytes. */
function encode(def: AnyStruct, value: unknown): Uint8Array {
  const bytes = new Uint8Array(def.size);
  def.encode(new DataView(bytes.buffer), 0, value as never);
  return bytes;
}
function decode(def: AnyStruct, bytes: Uint8Array): Record<string, unknown> {
  return def.decode(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0) as Record<string, unknown>;
}

// ---- round trips of every struct ----

/**
 * A value for `def` whose fields are all distinct and non-zero: u32 above 2^31
 * (sign trouble), id above 2^32, i32/time64 negative, u64 above 2^63, i64 below -2^62.
 */
function sample(def: AnyStruct, seq: { n: number }): Record<string, unknown> {
  const v: Record<string, unknown> = {};
  for (const f of def.fields) {
    if (f.length === 3) continue; // reserved array: not part of the value
    const n = ++seq.n;
    const t = f[1];
    if (typeof t !== 'string') { v[f[0]] = sample(t, seq); continue; }
    switch (t) {
      case 'u8': v[f[0]] = 0x80 + (n % 0x7f); break;
      case 'u16': v[f[0]] = 0x8000 + n; break;
      case 'u32': v[f[0]] = 0x80000000 + n * 0x10101; break;
      case 'i32': v[f[0]] = -(0x1000000 + n); break;
      case 'id': v[f[0]] = 2 ** 40 + n * TWO32 + n; break;
      case 'time64': v[f[0]] = -(2 ** 40 + n * TWO32 + n); break;
      case 'u64': v[f[0]] = (1n << 63n) + BigInt(n) * 0x100000001n; break;
      case 'i64': v[f[0]] = -(1n << 62n) - BigInt(n) * 0x100000001n; break;
    }
  }
  return v;
}

test('every struct round-trips a value with distinct non-zero fields (id > 2^32, negative i32/time64, u64 > 2^63, i64 < -2^62)', () => {
  assert.ok(ALL.length >= 75, `only ${ALL.length} structs`);
  for (const [name, def] of ALL) {
    const value = sample(def, { n: 0 });
    const bytes = encode(def, value);
    assert.equal(decode(def, bytes), value, name);
  }
});

test('every struct round-trips at a non-zero offset and writes nothing outside its own bytes', () => {
  for (const [name, def] of ALL) {
    const value = sample(def, { n: 100 });
    const buf = new Uint8Array(def.size + 24).fill(0xa5);
    const view = new DataView(buf.buffer);
    def.encode(view, 8, value as never);
    assert.ok(buf.subarray(0, 8).every((b) => b === 0xa5), `${name}: bytes before the struct untouched`);
    assert.ok(buf.subarray(8 + def.size).every((b) => b === 0xa5), `${name}: bytes after the struct untouched`);
    assert.equal(def.decode(view, 8), value, name);
  }
});

test('encoding an empty value writes zero to every byte, reserved arrays and padding included', () => {
  for (const [name, def] of ALL) {
    const buf = new Uint8Array(def.size).fill(0xff);
    def.encode(new DataView(buf.buffer), 0, {} as never);
    assert.is(hex(buf), '00'.repeat(def.size), name);
  }
});

test('reserved arrays are zeroed on encode and left out of the decoded value', () => {
  const def = structs.fuse_init_in;
  const buf = new Uint8Array(64).fill(0xee);
  def.encode(new DataView(buf.buffer), 0, { major: 7, minor: 45, max_readahead: 1, flags: 2, flags2: 3 });
  assert.is(hex(buf.subarray(20, 64)), '00'.repeat(44), 'unused[11] (u32) at 20..64 zeroed');
  buf.fill(0x77, 20, 64);
  const d = def.decode(new DataView(buf.buffer), 0);
  assert.equal(d, { major: 7, minor: 45, max_readahead: 1, flags: 2, flags2: 3 });
  assert.not.ok('unused' in d);
});

test('id and i64 edge values: id 2^53-1 exact, 2^32 and 2^32-1 split across the halves, i64 -1 is all ones (i64 decodes to a bigint)', () => {
  const def = structs.fuse_notify_inval_inode_out; // ino id @0, off i64 @8, len i64 @16
  const bytes = encode(def, { ino: Number.MAX_SAFE_INTEGER, off: -1, len: TWO32 });
  const b = Buffer.from(bytes);
  assert.is(b.readBigUInt64LE(0), 2n ** 53n - 1n);
  assert.is(hex(bytes.subarray(8, 16)), 'ff'.repeat(8));
  assert.is(b.readBigInt64LE(16), 1n << 32n);
  assert.equal(decode(def, bytes), { ino: Number.MAX_SAFE_INTEGER, off: -1n, len: 1n << 32n });
  const lo = encode(def, { ino: TWO32 - 1, off: -(2 ** 52), len: 0 });
  assert.is(Buffer.from(lo).readBigUInt64LE(0), (1n << 32n) - 1n);
  assert.is(Buffer.from(lo).readBigInt64LE(8), -(2n ** 52n));
  assert.equal(decode(def, lo), { ino: TWO32 - 1, off: -(2n ** 52n), len: 0n });
});

test('u64 values at and above 2^53, up to 2^64-1, round-trip exactly (and i64 to its limits)', () => {
  const def = structs.fuse_read_in; // fh id @0, offset u64 @8, size @16, read_flags @20, lock_owner u64 @24, flags @32
  for (const v of [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n]) {
    const bytes = encode(def, { fh: 1, offset: v, lock_owner: v });
    assert.is(Buffer.from(bytes).readBigUInt64LE(8), v, `offset ${v} written exactly`);
    assert.is(Buffer.from(bytes).readBigUInt64LE(24), v, `lock_owner ${v} written exactly`);
    const d = decode(def, bytes);
    assert.is(d.offset, v, `offset ${v} decoded exactly`);
    assert.is(d.lock_owner, v);
  }
  // Hand-built bytes decode to the exact bigint: 2^64-1 is not rounded to 2^64.
  const b = Buffer.alloc(structs.fuse_read_in.size);
  b.fill(0xff, 8, 16);
  b.writeBigUInt64LE(0x0020_0000_0000_0001n, 24); // 2^53 + 1: not a double
  const d = decode(def, new Uint8Array(b));
  assert.is(d.offset, 0xffff_ffff_ffff_ffffn);
  assert.is(d.lock_owner, 2n ** 53n + 1n);
  // fuse_attr: inode numbers and sizes beyond 2^53 (overlayfs xino) too.
  const attr = encode(structs.fuse_attr, { ino: 2n ** 64n - 1n, size: 2n ** 63n + 3n, blocks: 2n ** 53n + 1n });
  assert.is(hex(attr.subarray(0, 8)), 'ff'.repeat(8));
  const da = decode(structs.fuse_attr, attr);
  assert.equal([da.ino, da.size, da.blocks], [2n ** 64n - 1n, 2n ** 63n + 3n, 2n ** 53n + 1n]);
  // i64 at both ends.
  const inval = structs.fuse_notify_inval_inode_out;
  const ib = encode(inval, { ino: 1, off: -(2n ** 63n), len: 2n ** 63n - 1n });
  assert.is(Buffer.from(ib).readBigInt64LE(8), -(2n ** 63n));
  assert.is(Buffer.from(ib).readBigInt64LE(16), 2n ** 63n - 1n);
  assert.equal(decode(inval, ib), { ino: 1, off: -(2n ** 63n), len: 2n ** 63n - 1n });
});

test('u64 keeps all 64 bits (lock owners)', () => {
  const def = structs.fuse_release_in; // fh @0, flags @8, release_flags @12, lock_owner @16
  const owner = 0xfedcba9876543211n;
  const bytes = encode(def, { fh: 1, flags: 2, release_flags: 3, lock_owner: owner });
  assert.is(Buffer.from(bytes).readBigUInt64LE(16), owner);
  assert.is(decode(def, bytes).lock_owner, owner);
});

/** Runs `f`, which must throw a RangeError; returns its message. */
function rangeError(f: () => unknown, what: string): string {
  try {
    f();
  } catch (e) {
    assert.instance(e, RangeError, what);
    return (e as Error).message;
  }
  assert.unreachable(`${what}: no RangeError`);
  throw new Error('unreachable');
}

test('encoding is strict: NaN, 1.5, -1, out-of-range values and wrong types throw RangeError (u32, id, u64)', () => {
  const u32Def = structs.fuse_write_out; // size u32 @0
  const idDef = structs.fuse_open_out; // fh id @0
  const u64Def = structs.fuse_lseek_out; // offset u64 @0
  for (const bad of [NaN, 1.5, -1, 2 ** 32, Infinity, '5', true, {}]) {
    rangeError(() => encode(u32Def, { size: bad }), `u32 ${String(bad)}`);
  }
  for (const bad of [NaN, 1.5, -1, 2 ** 53, -Infinity, '7', 1n << 53n, -1n]) {
    rangeError(() => encode(idDef, { fh: bad }), `id ${String(bad)}`);
  }
  for (const bad of [NaN, 1.5, -1, 2 ** 53, 2 ** 64, '9', -1n, 1n << 64n]) {
    rangeError(() => encode(u64Def, { offset: bad }), `u64 ${String(bad)}`);
  }
  rangeError(() => encode(structs.fuse_attr_out, { attr: { mode: 0.5 } }), 'nested u32');
  rangeError(() => encode(structs.fuse_ioctl_out, { result: 2 ** 31 }), 'i32 2^31');
  assert.ok(rangeError(() => encode(u32Def, { size: NaN }), 'label').includes('fuse_write_out.size'), 'the message names the field');
  // What is allowed: integers in range (also as a bigint), and missing/undefined/null → 0.
  assert.is(hex(encode(u32Def, { size: 0xffffffff })), 'ffffffff00000000');
  assert.is(hex(encode(idDef, { fh: 2 ** 53 - 1, open_flags: undefined, backing_id: null as never })), 'ffffffffffff1f00' + '00'.repeat(8));
  assert.is(decode(idDef, encode(idDef, { fh: 5n as never })).fh, 5);
  assert.is(hex(encode(u64Def, { offset: null as never })), '00'.repeat(8));
});

// ---- hand-built bytes ----

test('fuse_in_header: encode equals hand-built bytes, and decodes them back', () => {
  const b = Buffer.alloc(40);
  b.writeUInt32LE(0x1234, 0); // len
  b.writeUInt32LE(16, 4); // opcode
  b.writeBigUInt64LE(0x0000_0102_0304_0506n, 8); // unique
  b.writeBigUInt64LE(0x0000_0007_0000_0001n, 16); // nodeid
  b.writeUInt32LE(1000, 24); // uid
  b.writeUInt32LE(0xfffffffe, 28); // gid
  b.writeUInt32LE(4242, 32); // pid
  b.writeUInt16LE(3, 36); // total_extlen
  b.writeUInt16LE(0, 38); // padding
  const value = {
    len: 0x1234, opcode: 16, unique: 0x0102_0304_0506n, nodeid: 0x7_0000_0001, uid: 1000, gid: 0xfffffffe,
    pid: 4242, total_extlen: 3, padding: 0,
  };
  assert.is(structs.fuse_in_header.size, 40);
  assert.is(hex(encode(structs.fuse_in_header, value)), hex(b));
  assert.equal(decode(structs.fuse_in_header, new Uint8Array(b)), value);
});

/** fuse_attr (88 bytes) at `at` of `b`, from a 16-number list in header order. */
function writeAttr(b: Buffer, at: number, a: number[]): void {
  for (let i = 0; i < 6; i++) b.writeBigUInt64LE(BigInt(a[i]), at + i * 8); // ino size blocks atime mtime ctime
  for (let i = 6; i < 16; i++) b.writeUInt32LE(a[i], at + 48 + (i - 6) * 4); // atimensec … flags
}
const ATTR_NUMS = [
  0x1_0000_0002, 0x20_0000_0000, 4096, 1_700_000_000, 1_700_000_001, 1_700_000_002,
  999_999_999, 1, 2, 0o100644, 3, 1000, 1001, 0x0803, 4096, 1,
];
const ATTR_VALUE = {
  ino: BigInt(ATTR_NUMS[0]), size: BigInt(ATTR_NUMS[1]), blocks: BigInt(ATTR_NUMS[2]), atime: ATTR_NUMS[3], mtime: ATTR_NUMS[4],
  ctime: ATTR_NUMS[5], atimensec: ATTR_NUMS[6], mtimensec: ATTR_NUMS[7], ctimensec: ATTR_NUMS[8],
  mode: ATTR_NUMS[9], nlink: ATTR_NUMS[10], uid: ATTR_NUMS[11], gid: ATTR_NUMS[12], rdev: ATTR_NUMS[13],
  blksize: ATTR_NUMS[14], flags: ATTR_NUMS[15],
};

test('fuse_entry_out: encode equals hand-built bytes (attr at 40), and decodes them back', () => {
  const b = Buffer.alloc(128);
  b.writeBigUInt64LE(0x5_0000_0001n, 0); // nodeid
  b.writeBigUInt64LE(7n, 8); // generation
  b.writeBigUInt64LE(86400n, 16); // entry_valid
  b.writeBigUInt64LE(1n, 24); // attr_valid
  b.writeUInt32LE(500_000_000, 32); // entry_valid_nsec
  b.writeUInt32LE(250_000_000, 36); // attr_valid_nsec
  writeAttr(b, 40, ATTR_NUMS);
  const value = {
    nodeid: 0x5_0000_0001, generation: 7n, entry_valid: 86400, attr_valid: 1,
    entry_valid_nsec: 500_000_000, attr_valid_nsec: 250_000_000, attr: ATTR_VALUE,
  };
  assert.is(structs.fuse_entry_out.size, 128);
  assert.is(hex(encode(structs.fuse_entry_out, value)), hex(b));
  assert.equal(decode(structs.fuse_entry_out, new Uint8Array(b)), value);
});

test('fuse_attr_out: encode equals hand-built bytes (attr at 16), and decodes them back', () => {
  const b = Buffer.alloc(104);
  b.writeBigUInt64LE(3n, 0); // attr_valid
  b.writeUInt32LE(123, 8); // attr_valid_nsec
  b.writeUInt32LE(0, 12); // dummy
  writeAttr(b, 16, ATTR_NUMS);
  const value = { attr_valid: 3, attr_valid_nsec: 123, dummy: 0, attr: ATTR_VALUE };
  assert.is(structs.fuse_attr_out.size, 104);
  assert.is(hex(encode(structs.fuse_attr_out, value)), hex(b));
  assert.equal(decode(structs.fuse_attr_out, new Uint8Array(b)), value);
});

test('fuse_init_out (7.45): encode equals hand-built bytes, unused[11] zero, and decodes them back', () => {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(7, 0); // major
  b.writeUInt32LE(45, 4); // minor
  b.writeUInt32LE(131072, 8); // max_readahead
  b.writeUInt32LE(0xc000_1234, 12); // flags (INIT_RESERVED | INIT_EXT | …)
  b.writeUInt16LE(64, 16); // max_background
  b.writeUInt16LE(48, 18); // congestion_threshold
  b.writeUInt32LE(1 << 20, 20); // max_write
  b.writeUInt32LE(1, 24); // time_gran
  b.writeUInt16LE(256, 28); // max_pages
  b.writeUInt16LE(12, 30); // map_alignment
  b.writeUInt32LE(0x0000_0426, 32); // flags2
  b.writeUInt32LE(1, 36); // max_stack_depth (7.40)
  b.writeUInt16LE(30, 40); // request_timeout (7.43); 42..64 unused
  const value = {
    major: 7, minor: 45, max_readahead: 131072, flags: 0xc000_1234, max_background: 64,
    congestion_threshold: 48, max_write: 1 << 20, time_gran: 1, max_pages: 256, map_alignment: 12,
    flags2: 0x426, max_stack_depth: 1, request_timeout: 30,
  };
  const dirty = new Uint8Array(64).fill(0xcc);
  structs.fuse_init_out.encode(new DataView(dirty.buffer), 0, value);
  assert.is(hex(dirty), hex(b));
  assert.equal(decode(structs.fuse_init_out, new Uint8Array(b)), value);
});

test('fuse_dirent: encode equals hand-built bytes, and decodes them back', () => {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(0x3_0000_0009n, 0); // ino
  b.writeBigUInt64LE(0x1_0000_0000n, 8); // off
  b.writeUInt32LE(11, 16); // namelen
  b.writeUInt32LE(4, 20); // type (DT_DIR)
  const value = { ino: 0x3_0000_0009n, off: 1n << 32n, namelen: 11, type: 4 };
  assert.is(hex(encode(structs.fuse_dirent, value)), hex(b));
  assert.equal(decode(structs.fuse_dirent, new Uint8Array(b)), value);
});

test('decode reads at the given offset of a view that itself starts inside a buffer', () => {
  const b = Buffer.alloc(64, 0xff);
  b.writeUInt32LE(77, 24 + 0); // fuse_write_out.size at offset 16 of a view starting at 8
  b.writeUInt32LE(0, 24 + 4);
  const view = new DataView(b.buffer, b.byteOffset + 8, 48);
  assert.equal(structs.fuse_write_out.decode(view, 16), { size: 77, padding: 0 });
});

// ---- DirentWriter ----

test('direntSize: 24-byte header plus the name, rounded up to 8', () => {
  assert.equal([0, 1, 7, 8, 9, 16, 255].map(direntSize), [24, 32, 32, 32, 40, 40, 280]);
});

/** A fuse_dirent record built by hand: header, name bytes, zero padding to 8. */
function direntBytes(ino: number, off: number, type: number, name: string): Buffer {
  const nb = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(Math.ceil((24 + nb.length) / 8) * 8);
  b.writeBigUInt64LE(BigInt(ino), 0);
  b.writeBigUInt64LE(BigInt(off), 8);
  b.writeUInt32LE(nb.length, 16);
  b.writeUInt32LE(type, 20);
  nb.copy(b, 24);
  return b;
}

test('DirentWriter: records are 8-byte aligned, names are not NUL-terminated, padding is zeroed', () => {
  const w = new DirentWriter(4096);
  w.bytes.fill(0xab); // a reused buffer: padding must be written, not assumed
  assert.ok(w.add('a', 2, 8, 1));
  assert.ok(w.add('abcdefgh', 3, 4, 2)); // 24 + 8: exactly 32, no byte for a NUL
  assert.ok(w.add('héllo', 0x1_0000_0004, 10, 3)); // 6 UTF-8 bytes
  const expected = Buffer.concat([
    direntBytes(2, 1, 8, 'a'), direntBytes(3, 2, 4, 'abcdefgh'), direntBytes(0x1_0000_0004, 3, 10, 'héllo'),
  ]);
  assert.is(w.length, 32 + 32 + 32);
  assert.is(hex(w.bytes.subarray(0, w.length)), hex(expected));
  assert.is(w.bytes[32 + 24 + 8 - 1], 'h'.charCodeAt(0), 'the 8-byte name fills its record to the end');
  assert.is(Buffer.from(w.bytes).readUInt32LE(64 + 16), 6, 'namelen counts UTF-8 bytes');
  assert.ok(w.bytes.subarray(w.length).every((x) => x === 0xab), 'nothing written past the last record');
});

test('DirentWriter.add returns false when the record does not fit, and writes nothing', () => {
  const w = new DirentWriter(72);
  w.bytes.fill(0xab);
  assert.ok(w.add('one', 1, 8, 1)); // 32
  assert.ok(w.add('two', 2, 8, 2)); // 64
  const before = hex(w.bytes);
  assert.not.ok(w.add('x', 3, 8, 3), 'a 32-byte record does not fit in the 8 bytes left');
  assert.is(w.length, 64);
  assert.is(hex(w.bytes), before, 'buffer unchanged by the refused add');
  assert.ok(w.bytes.subarray(64).every((x) => x === 0xab));
});

test('DirentWriter accepts a record that fits exactly, then refuses the next', () => {
  const w = new DirentWriter(40);
  assert.ok(w.add('123456789', 9, 8, 1)); // 24 + 9 → 40
  assert.is(w.length, 40);
  assert.not.ok(w.add('b', 1, 8, 2)); // the smallest record (32 bytes) does not fit in the 0 left
  assert.is(w.length, 40);
  assert.is(hex(w.bytes), hex(direntBytes(9, 1, 8, '123456789')));
});

test('DirentWriter.addPlus: fuse_entry_out, then fuse_dirent at 128, name at 152, padded to 8', () => {
  const w = new DirentWriter(4096);
  w.bytes.fill(0xab);
  const entry = {
    nodeid: 0x2_0000_0005, generation: 1, entry_valid: 2, attr_valid: 3, entry_valid_nsec: 4, attr_valid_nsec: 5,
    attr: ATTR_VALUE,
  };
  assert.ok(w.addPlus(entry, 'file', 0x2_0000_0005, 8, 7));
  const b = Buffer.alloc(160);
  b.writeBigUInt64LE(0x2_0000_0005n, 0);
  b.writeBigUInt64LE(1n, 8);
  b.writeBigUInt64LE(2n, 16);
  b.writeBigUInt64LE(3n, 24);
  b.writeUInt32LE(4, 32);
  b.writeUInt32LE(5, 36);
  writeAttr(b, 40, ATTR_NUMS);
  direntBytes(0x2_0000_0005, 7, 8, 'file').copy(b, 128);
  assert.is(w.length, 160);
  assert.is(hex(w.bytes.subarray(0, 160)), hex(b));
  const small = new DirentWriter(159);
  assert.not.ok(small.addPlus(entry, 'file', 1, 8, 1));
  assert.is(small.length, 0);
  assert.ok(small.bytes.every((x) => x === 0));
});

test('DirentWriter names: bytes are written as given, escaped strings as their bytes, bigint ino/off exactly', () => {
  const w = new DirentWriter(4096);
  const raw = Uint8Array.of(0x66, 0xff, 0xfe); // 'f' + two bytes that are not UTF-8
  assert.ok(w.add(raw, 2n ** 64n - 1n, 8, 2n ** 63n + 1n));
  assert.ok(w.add('\udcff\udcfe', 2n ** 53n + 1n, 8, 2n ** 53n)); // the lossless name of ff fe
  assert.ok(w.add('\ufffd', 3, 8, 4)); // U+FFFD itself: three UTF-8 bytes, not ff fe
  const b = Buffer.from(w.bytes);
  assert.is(b.readBigUInt64LE(0), 2n ** 64n - 1n);
  assert.is(b.readBigUInt64LE(8), 2n ** 63n + 1n);
  assert.is(b.readUInt32LE(16), 3);
  assert.is(hex(b.subarray(24, 27)), '66fffe');
  assert.is(b.readBigUInt64LE(32), 2n ** 53n + 1n);
  assert.is(b.readBigUInt64LE(40), 2n ** 53n);
  assert.is(b.readUInt32LE(48), 2);
  assert.is(hex(b.subarray(56, 58)), 'fffe');
  assert.is(b.readUInt32LE(64 + 16), 3);
  assert.is(hex(b.subarray(64 + 24, 64 + 27)), 'efbfbd');
  assert.is(w.length, 96);
});

test('DirentWriter refuses (RangeError) an empty name, one over 255 bytes, or one holding / or NUL, and writes nothing', () => {
  const w = new DirentWriter(4096);
  w.bytes.fill(0xab);
  for (const [name, what] of [
    ['', 'empty'], [new Uint8Array(0), 'empty bytes'], ['x'.repeat(256), '256 bytes'], ['é'.repeat(128), '256 UTF-8 bytes'],
    ['a/b', 'slash'], ['a\0b', 'NUL'], [Uint8Array.of(0x61, 0x2f), 'slash byte'], [Uint8Array.of(0x61, 0), 'NUL byte'],
  ] as [string | Uint8Array, string][]) {
    rangeError(() => w.add(name, 1, 8, 1), `add: ${what}`);
    rangeError(() => w.addPlus({ nodeid: 1 }, name, 1, 8, 1), `addPlus: ${what}`);
  }
  assert.is(w.length, 0);
  assert.ok(w.bytes.every((x) => x === 0xab), 'nothing written by a refused add');
  assert.ok(w.add('x'.repeat(255), 1, 8, 1), '255 bytes is the limit, inclusive');
  assert.is(w.length, direntSize(255));
});

// ---- decodeRequest on hand-built requests ----

interface Hdr { unique?: bigint; nodeid?: bigint; uid?: number; gid?: number; pid?: number; extlen?: number; len?: number }

/** fuse_in_header (40 bytes, offsets of linux/fuse.h) followed by `parts`. */
function request(opcode: number, parts: Buffer[], h: Hdr = {}): Uint8Array {
  const body = Buffer.concat(parts);
  const b = Buffer.alloc(40 + body.length);
  b.writeUInt32LE(h.len ?? b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(h.unique ?? 0x0000_0001_0000_0002n, 8);
  b.writeBigUInt64LE(h.nodeid ?? 1n, 16);
  b.writeUInt32LE(h.uid ?? 1000, 24);
  b.writeUInt32LE(h.gid ?? 100, 28);
  b.writeUInt32LE(h.pid ?? 4242, 32);
  b.writeUInt16LE(h.extlen ?? 0, 36);
  body.copy(b, 40);
  return new Uint8Array(b); // a copy with its own ArrayBuffer, as the read buffer is
}
function u32(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; }
function u64(v: bigint): Buffer { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; }
function cstr(s: string): Buffer { return Buffer.from(`${s}\0`, 'utf8'); }

function dec(bytes: Uint8Array, n = bytes.length, setxattrExt = false): Request & { row: OpRow } {
  return decodeRequest(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), n, { setxattrExt }, opcodeRow);
}
function decodeFails(bytes: Uint8Array, n = bytes.length, setxattrExt = false): ProtocolError {
  try {
    dec(bytes, n, setxattrExt);
  } catch (e) {
    assert.instance(e, ProtocolError);
    return e as ProtocolError;
  }
  assert.unreachable('decodeRequest accepted a malformed request');
  throw new Error('unreachable');
}

test('LOOKUP: header fields, a 64-bit unique and nodeid, and the name', () => {
  const r = dec(request(1, [cstr('hello.txt')], {
    unique: 0xdead_beef_0000_0042n, nodeid: 0x1_0000_0003n, uid: 501, gid: 20, pid: 77,
  }));
  assert.is(r.opcode, 1);
  assert.is(r.row.name, 'LOOKUP');
  assert.is(r.len, 40 + 10);
  assert.is(r.uniqueLo, 0x0000_0042);
  assert.is(r.uniqueHi, 0xdead_beef);
  assert.is(r.nodeid, 0x1_0000_0003);
  assert.equal([r.uid, r.gid, r.pid], [501, 20, 77]);
  assert.is(r.name, 'hello.txt');
  assert.is(r.name2, '');
  assert.is(r.body, undefined);
  assert.is(r.dataView.length, 0);
  assert.is(r.extView.length, 0);
});

test('a UTF-8 name is decoded as UTF-8', () => {
  assert.is(dec(request(1, [cstr('naïve-日本')])).name, 'naïve-日本');
});

test('a name that is not UTF-8 (ff fe) decodes losslessly to U+DCFF U+DCFE; a literal U+FFFD name stays distinct', () => {
  const bad = dec(request(1, [Buffer.from([0xff, 0xfe, 0])]));
  assert.is(bad.name, '\udcff\udcfe');
  const replacement = dec(request(1, [cstr('\ufffd')])); // ef bf bd
  assert.is(replacement.name, '\ufffd');
  assert.is.not(bad.name, replacement.name, 'two different byte names never become one string');
  const twoReplacements = dec(request(1, [cstr('\ufffd\ufffd')]));
  assert.is.not(bad.name, twoReplacements.name);
  // Both names of a two-name request; a valid sequence next to a bad byte stays UTF-8.
  const r = dec(request(12, [u64(2n), Buffer.from([0x61, 0xc3, 0xa9, 0xff, 0]), Buffer.from([0xc3, 0x28, 0])]));
  assert.is(r.name, 'aé\udcff');
  assert.is(r.name2, '\udcc3(');
});

test('a header nodeid at or above 2^53 names nothing handed out: ProtocolError ESTALE; 2^53-1 decodes', () => {
  for (const nodeid of [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
    assert.is(decodeFails(request(1, [cstr('x')], { nodeid })).errno, ESTALE, `LOOKUP nodeid ${nodeid}`);
    assert.is(decodeFails(request(3, [u32(0), u32(0), u64(0n)], { nodeid })).errno, ESTALE, `GETATTR nodeid ${nodeid}`);
  }
  assert.is(dec(request(1, [cstr('x')], { nodeid: 2n ** 53n - 1n })).nodeid, Number.MAX_SAFE_INTEGER);
});

test('a body file handle (or node id) at or above 2^53 is ProtocolError ESTALE; 2^53-1 decodes', () => {
  for (const fh of [2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
    assert.is(decodeFails(request(15, [writeIn(fh, 0n, 4096)])).errno, ESTALE, `READ fh ${fh}`);
    assert.is(decodeFails(request(16, [writeIn(fh, 0n, 1), Buffer.from('x')])).errno, ESTALE, `WRITE fh ${fh}`);
    assert.is(decodeFails(request(3, [u32(1), u32(0), u64(fh)])).errno, ESTALE, `GETATTR fh ${fh}`);
    assert.is(decodeFails(request(12, [u64(fh), cstr('a'), cstr('b')])).errno, ESTALE, `RENAME newdir ${fh}`);
  }
  const body = dec(request(15, [writeIn(2n ** 53n - 1n, 2n ** 64n - 1n, 4096)])).body as { fh: number; offset: bigint };
  assert.is(body.fh, Number.MAX_SAFE_INTEGER);
  assert.is(body.offset, 2n ** 64n - 1n, 'a u64 offset is not an id: the whole range decodes');
});

test('fewer than 40 bytes is a short header: ProtocolError EIO', () => {
  const full = request(1, [cstr('x')]);
  for (const n of [0, 1, 16, 39]) assert.is(decodeFails(full, n).errno, EIO, `n = ${n}`);
});

test('a header len that disagrees with the bytes read is EINVAL', () => {
  assert.is(decodeFails(request(1, [cstr('abc')], { len: 48 })).errno, EINVAL, 'len larger than read');
  assert.is(decodeFails(request(1, [cstr('abc')], { len: 40 })).errno, EINVAL, 'len smaller than read');
  const ok = request(1, [cstr('abc')]);
  assert.is(decodeFails(ok, ok.length - 1).errno, EINVAL, 'read cut short');
});

test('an unknown opcode is ENOSYS (99, and the unused 7 and 19)', () => {
  for (const op of [99, 7, 19, 54, 4097]) assert.is(decodeFails(request(op, [u64(0n)])).errno, ENOSYS, `opcode ${op}`);
});

test('a name without its NUL is EINVAL', () => {
  assert.is(decodeFails(request(1, [Buffer.from('hello')])).errno, EINVAL);
});

test('a missing NUL is not found in the read buffer beyond the request', () => {
  const req = request(1, [Buffer.from('hello')]);
  const readBuf = new Uint8Array(4096); // zeroes after the request, as in the transport's reused buffer
  readBuf.set(req);
  assert.is(decodeFails(readBuf, req.length).errno, EINVAL);
});

test('a request decodes from a larger read buffer: data stops at n', () => {
  const data = Buffer.from('0123456789');
  const req = request(16, [writeIn(5n, 0n, 10), data]);
  const readBuf = new Uint8Array(8192).fill(0x55);
  readBuf.set(req);
  const r = dec(readBuf, req.length);
  assert.is(hex(r.dataView), hex(data));
});

test('RENAME: fuse_rename_in then two names', () => {
  const r = dec(request(12, [u64(0x4_0000_0007n), cstr('old'), cstr('new name')]));
  assert.equal(r.body, { newdir: 0x4_0000_0007 });
  assert.is(r.name, 'old');
  assert.is(r.name2, 'new name');
});

test('RENAME with the second name unterminated is EINVAL', () => {
  assert.is(decodeFails(request(12, [u64(2n), cstr('old'), Buffer.from('new')])).errno, EINVAL);
});

test('SYMLINK: no body, the link name then the target', () => {
  const r = dec(request(6, [cstr('link'), cstr('../target/path')]));
  assert.is(r.body, undefined);
  assert.is(r.name, 'link');
  assert.is(r.name2, '../target/path');
});

/** fuse_write_in: fh @0, offset @8, size @16, write_flags @20, lock_owner @24, flags @32, padding @36. */
function writeIn(fh: bigint, offset: bigint, size: number, writeFlags = 0, lockOwner = 0n, flags = 0): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(fh, 0);
  b.writeBigUInt64LE(offset, 8);
  b.writeUInt32LE(size, 16);
  b.writeUInt32LE(writeFlags, 20);
  b.writeBigUInt64LE(lockOwner, 24);
  b.writeUInt32LE(flags, 32);
  return b;
}

test('WRITE: fuse_write_in and the data, as a view into the request bytes', () => {
  const data = Buffer.from('hello, world');
  const bytes = request(16, [writeIn(9n, 0x1_0000_0000n, data.length, 2, 0x8000_0000_0000_0001n, 0o2), data]);
  const r = dec(bytes);
  assert.equal(r.body, {
    fh: 9, offset: 1n << 32n, size: data.length, write_flags: 2, lock_owner: 0x8000_0000_0000_0001n, flags: 0o2, padding: 0,
  });
  assert.is(Buffer.from(r.dataView).toString(), 'hello, world');
  assert.is(r.dataView.buffer, bytes.buffer, 'dataView borrows the request buffer');
  assert.is(r.dataView.byteOffset, 80);
});

test('WRITE announcing more data than present is EINVAL', () => {
  assert.is(decodeFails(request(16, [writeIn(1n, 0n, 100), Buffer.from('short')])).errno, EINVAL);
});

test('a fixed body shorter than its struct is EINVAL (GETATTR with 8 of 16 bytes)', () => {
  assert.is(decodeFails(request(3, [u64(0n)])).errno, EINVAL);
});

test('SETXATTR without FUSE_SETXATTR_EXT: 8-byte body (size, flags), name, value', () => {
  const value = Buffer.from('v4lue');
  const r = dec(request(21, [u32(value.length), u32(1), cstr('user.key'), value]), undefined, false);
  assert.equal(r.body, { size: value.length, flags: 1, setxattr_flags: 0, padding: 0 });
  assert.is(r.name, 'user.key');
  assert.is(Buffer.from(r.dataView).toString(), 'v4lue');
});

test('SETXATTR with FUSE_SETXATTR_EXT: 16-byte body with setxattr_flags', () => {
  const value = Buffer.from([0, 1, 2, 0]);
  const r = dec(request(21, [u32(4), u32(2), u32(1), u32(0), cstr('system.posix_acl_access'), value]), undefined, true);
  assert.equal(r.body, { size: 4, flags: 2, setxattr_flags: 1, padding: 0 });
  assert.is(r.name, 'system.posix_acl_access');
  assert.is(hex(r.dataView), '00010200');
});

test('SETXATTR: the body size follows the setxattrExt option (8 vs 16 bytes before the name)', () => {
  // The same bytes read with the wrong option place the name 8 bytes later.
  const bytes = request(21, [u32(0), u32(0), cstr('user.abcdefgh')]);
  assert.is(dec(bytes, undefined, false).name, 'user.abcdefgh');
  assert.is(dec(bytes, undefined, true).name, 'defgh');
  assert.is(decodeFails(request(21, [u32(0), u32(0), Buffer.from('ab\0')]), undefined, true).errno, EINVAL,
    '11 bytes after the header cannot hold the 16-byte body');
});

test('INIT with a 16-byte body (kernels before 7.36): flags2 and the rest decode as 0', () => {
  const r = dec(request(26, [u32(7), u32(31), u32(65536), u32(0x0000_1fff)]));
  assert.is(r.len, 56);
  assert.equal(r.body, { major: 7, minor: 31, max_readahead: 65536, flags: 0x1fff, flags2: 0 });
});

test('INIT with the full 64-byte body decodes flags2', () => {
  const r = dec(request(26, [u32(7), u32(45), u32(131072), u32(0x4000_0000), u32(0x0000_0204), Buffer.alloc(44)]));
  assert.equal(r.body, { major: 7, minor: 45, max_readahead: 131072, flags: 0x4000_0000, flags2: 0x204 });
});

test('without a row lookup decodeRequest knows INIT alone (the transport decodes it before any table): others are ENOSYS', () => {
  const init = request(26, [u32(7), u32(45), u32(131072), u32(1), u32(2), Buffer.alloc(44)]);
  const r = decodeRequest(init, new DataView(init.buffer), init.length, { setxattrExt: false });
  assert.is(r.row.name, 'INIT');
  assert.equal(r.body, { major: 7, minor: 45, max_readahead: 131072, flags: 1, flags2: 2 });
  const lookup = request(1, [cstr('x')]);
  try {
    decodeRequest(lookup, new DataView(lookup.buffer), lookup.length, { setxattrExt: false });
    assert.unreachable('LOOKUP decoded without a row lookup');
  } catch (e) {
    assert.instance(e, ProtocolError);
    assert.is((e as ProtocolError).errno, ENOSYS);
  }
});

test('INIT shorter than 16 bytes is EINVAL', () => {
  assert.is(decodeFails(request(26, [u32(7), u32(45), u32(0)])).errno, EINVAL);
});

/** A fuse_ext_header (size, type) + payload, padded to 8 bytes: FUSE_EXT_GROUPS with gids. */
function groupsExt(gids: number[]): Buffer {
  const payload = Buffer.concat([u32(gids.length), ...gids.map(u32)]);
  const size = Math.ceil((8 + payload.length) / 8) * 8;
  const b = Buffer.alloc(size);
  b.writeUInt32LE(size, 0);
  b.writeUInt32LE(32, 4); // FUSE_EXT_GROUPS
  payload.copy(b, 8);
  return b;
}

test('total_extlen: extensions follow the body and are not part of the names', () => {
  const ext = groupsExt([10, 20, 30]); // 8 + 16 = 24 bytes
  // MKDIR: fuse_mkdir_in (mode, umask), name, then the extension block.
  const r = dec(request(9, [u32(0o40755), u32(0o022), cstr('dir'), ext], { extlen: ext.length / 8 }));
  assert.equal(r.body, { mode: 0o40755, umask: 0o022 });
  assert.is(r.name, 'dir');
  assert.is(hex(r.extView), hex(ext));
});

test('total_extlen: a name whose only NUL is inside the extensions is EINVAL', () => {
  const ext = groupsExt([0]); // contains zero bytes
  assert.is(decodeFails(request(1, [Buffer.from('abc'), ext], { extlen: ext.length / 8 })).errno, EINVAL);
});

test('total_extlen: trailing data stops where the extensions start', () => {
  const ext = groupsExt([7]);
  const data = Buffer.from('abcd');
  const r = dec(request(16, [writeIn(1n, 0n, 4), data, ext], { extlen: ext.length / 8 }));
  assert.is(hex(r.dataView), hex(data));
  assert.is(hex(r.extView), hex(ext));
});

test('total_extlen larger than the request is EINVAL', () => {
  assert.is(decodeFails(request(1, [cstr('a')], { extlen: 100 })).errno, EINVAL);
});

test('FORGET decodes its body; the row says no reply', () => {
  const r = dec(request(2, [u64(0x1_0000_0002n)], { nodeid: 9n }));
  assert.equal(r.body, { nlookup: 0x1_0000_0002 });
  assert.is(r.row.reply, false);
});

test('BATCH_FORGET: fuse_batch_forget_in then count × fuse_forget_one as data', () => {
  const one = Buffer.concat([u64(5n), u64(2n), u64(6n), u64(1n)]);
  const r = dec(request(42, [u32(2), u32(0), one]));
  assert.equal(r.body, { count: 2, dummy: 0 });
  assert.is(hex(r.dataView), hex(one));
  assert.equal(structs.fuse_forget_one.decode(new DataView(r.dataView.buffer, r.dataView.byteOffset), 16),
    { nodeid: 6, nlookup: 1 });
});

test('names: 255 bytes decode, 256 are ENAMETOOLONG (an answer, not a malformed request); a symlink target may be longer', () => {
  const n255 = Buffer.alloc(255, 0xe9);
  assert.is(dec(request(1, [n255, Buffer.of(0)])).name.length, 255);
  const e = decodeFails(request(1, [Buffer.alloc(256, 0x61), Buffer.of(0)]));
  assert.is(e.errno, ENAMETOOLONG);
  assert.ok(e.answer, 'refused by policy: answered quietly');
  const e2 = decodeFails(request(12, [u64(1n), Buffer.from('a\0'), Buffer.alloc(256, 0x62), Buffer.of(0)]));
  assert.is(e2.errno, ENAMETOOLONG, 'the new name of a rename too');
  const target = Buffer.alloc(1000, 0x74);
  const r = dec(request(6, [Buffer.from('l\0'), target, Buffer.of(0)]));
  assert.is(r.name2.length, 1000, 'a symlink target is a path: up to PATH_MAX');
});

test('small integer fields take a bigint in range too (a handler may return one), and refuse one out of range', () => {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  structs.fuse_write_out.encode(v, 0, { size: 5n as unknown as number });
  assert.is(v.getUint32(0, true), 5);
  assert.throws(() => structs.fuse_write_out.encode(v, 0, { size: (1n << 32n) as unknown as number }), RangeError);
});

test('an entry name that is empty or holds "/" is EINVAL (the kernel sends none); an xattr name may hold "/"', () => {
  assert.is(decodeFails(request(1, [Buffer.from('\0')])).errno, EINVAL, 'LOOKUP ""');
  assert.is(decodeFails(request(1, [Buffer.from('a/b\0')])).errno, EINVAL, 'LOOKUP "a/b"');
  assert.is(decodeFails(request(12, [u64(1n), Buffer.from('a\0b/c\0')])).errno, EINVAL, 'RENAME to "b/c"');
  assert.is(dec(request(1, [Buffer.from('..\0')])).name, '..', 'LOOKUP ".." (export ops) decodes');
  const getxattr = Buffer.alloc(8);
  getxattr.writeUInt32LE(64, 0);
  assert.is(dec(request(22, [getxattr, Buffer.from('user.a/b\0')])).name, 'user.a/b');
  assert.is(dec(request(6, [Buffer.from('l\0'), Buffer.from('../x/y\0')])).name2, '../x/y', 'a symlink target is a path');
  const create = Buffer.alloc(16);
  assert.is(dec(request(51, [create, Buffer.from('/\0')])).name, '/', 'TMPFILE carries the VFS placeholder name "/"');
});

test.run();
