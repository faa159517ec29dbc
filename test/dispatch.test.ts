/**
 * Server dispatch, driven from raw request bytes: every request below is
 * written by hand (Buffer writes at the offsets of linux/fuse.h), and every
 * expected reply is built byte by byte here, never with the abi codec.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { Server, type ServerOptions } from '../src/api/server.js';
import { FuseError } from '../src/api/errors.js';
import type { FileSystem } from '../src/api/filesystem.js';
import type { Context } from '../src/api/context.js';
import { LOCK_TO_EOF, type DirentSink, type Entry, type Lock } from '../src/api/types.js';

const E = constants.errno as Record<string, number>;
const TWO32 = 4294967296;

// Opcode numbers from linux/fuse.h (written out: the table under test is not the source).
const LOOKUP = 1, FORGET = 2, GETATTR = 3, SYMLINK = 6, RENAME = 12, READ = 15, WRITE = 16,
  STATFS = 17, RELEASE = 18, GETXATTR = 22, LISTXATTR = 23, READDIR = 28, GETLK = 31, SETLK = 32,
  INTERRUPT = 36, DESTROY = 38, BATCH_FORGET = 42, LSEEK = 46;

// ---- request building ----

interface HeaderOpts { uid?: number; gid?: number; pid?: number; totalExtlen?: number; len?: number }

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
function u64(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}
function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

/** fuse_in_header (40 bytes) + body; `len` defaults to the true length. */
function request(opcode: number, unique: bigint, nodeid: bigint | number, body: Buffer = Buffer.alloc(0), o: HeaderOpts = {}): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32LE(o.len ?? 40 + body.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeBigUInt64LE(unique, 8);
  h.writeBigUInt64LE(BigInt(nodeid), 16);
  h.writeUInt32LE(o.uid ?? 1000, 24);
  h.writeUInt32LE(o.gid ?? 100, 28);
  h.writeUInt32LE(o.pid ?? 4242, 32);
  h.writeUInt16LE(o.totalExtlen ?? 0, 36);
  h.writeUInt16LE(0, 38);
  return Buffer.concat([h, body]);
}

/** fuse_read_in / fuse_write_in (same 40-byte layout). */
function rwIn(fh: number, offset: bigint, size: number, flags = 0): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeBigUInt64LE(offset, 8);
  b.writeUInt32LE(size, 16);
  b.writeUInt32LE(flags, 20); // read_flags / write_flags
  b.writeBigUInt64LE(0n, 24); // lock_owner
  b.writeUInt32LE(0, 32); // flags
  b.writeUInt32LE(0, 36); // padding
  return b;
}
function getattrIn(getattrFlags: number, fh: number): Buffer {
  return Buffer.concat([u32(getattrFlags), u32(0), u64(fh)]);
}
function getxattrIn(size: number): Buffer {
  return Buffer.concat([u32(size), u32(0)]);
}

// ---- reply building ----

/** fuse_out_header. */
function outHeader(len: number, error: number, unique: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  b.writeBigUInt64LE(unique, 8);
  return b;
}
function errorReply(errno: number, unique: bigint): string {
  return hex(outHeader(16, -errno, unique));
}

interface AttrBytes {
  ino: number | bigint; size: number | bigint; blocks: number | bigint; atime: number; mtime: number; ctime: number;
  atimensec: number; mtimensec: number; ctimensec: number; mode: number; nlink: number;
  uid: number; gid: number; rdev: number; blksize: number; flags: number;
}
/** fuse_attr: 88 bytes. */
function attrBytes(a: AttrBytes): Buffer {
  const b = Buffer.alloc(88);
  b.writeBigUInt64LE(BigInt(a.ino), 0);
  b.writeBigUInt64LE(BigInt(a.size), 8);
  b.writeBigUInt64LE(BigInt(a.blocks), 16);
  b.writeBigUInt64LE(BigInt(a.atime), 24);
  b.writeBigUInt64LE(BigInt(a.mtime), 32);
  b.writeBigUInt64LE(BigInt(a.ctime), 40);
  b.writeUInt32LE(a.atimensec, 48);
  b.writeUInt32LE(a.mtimensec, 52);
  b.writeUInt32LE(a.ctimensec, 56);
  b.writeUInt32LE(a.mode, 60);
  b.writeUInt32LE(a.nlink, 64);
  b.writeUInt32LE(a.uid, 68);
  b.writeUInt32LE(a.gid, 72);
  b.writeUInt32LE(a.rdev, 76);
  b.writeUInt32LE(a.blksize, 80);
  b.writeUInt32LE(a.flags, 84);
  return b;
}
const ZERO_ATTR: AttrBytes = {
  ino: 0, size: 0, blocks: 0, atime: 0, mtime: 0, ctime: 0, atimensec: 0, mtimensec: 0, ctimensec: 0,
  mode: 0, nlink: 1, uid: 0, gid: 0, rdev: 0, blksize: 0, flags: 0,
};

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

// ---- harness ----

interface Reply { via: 'write' | 'writev'; bytes: Uint8Array; chunks: Uint8Array[] }

function readHeader(r: Reply): { len: number; error: number; unique: bigint } {
  const b = Buffer.from(r.bytes);
  return { len: b.readUInt32LE(0), error: b.readInt32LE(4), unique: b.readBigUInt64LE(8) };
}

function harness(fs: FileSystem, opts: ServerOptions = {}) {
  const logs: string[] = [];
  const replies: Reply[] = [];
  const server = new Server(fs, { log: (l) => logs.push(l), ...opts });
  /** What the sink's write and writev return; default: success (the length). */
  let writeResult: (len: number) => number = (len) => len;
  server.sink = {
    write(_ch, bytes, len) {
      const copy = bytes.slice(0, len);
      replies.push({ via: 'write', bytes: copy, chunks: [copy] });
      return writeResult(len);
    },
    writev(_ch, chunks) {
      const copies = chunks.map((c) => c.slice());
      replies.push({ via: 'writev', bytes: Buffer.concat(copies), chunks: copies });
      return writeResult(copies.reduce((a, c) => a + c.length, 0));
    },
  };
  const ch = {} as any;
  /** The read buffer, like the transport's: larger than any request and reused. */
  const readBuf = new Uint8Array(64 * 1024);
  const readView = new DataView(readBuf.buffer);
  return {
    server, logs, replies, readBuf,
    setWriteResult(f: (len: number) => number) { writeResult = f; },
    /** Feeds `req` through the shared read buffer (zeroed after it, as a fresh read leaves it). */
    send(req: Uint8Array, n = req.length) {
      readBuf.fill(0);
      readBuf.set(req.subarray(0, Math.min(n, req.length)));
      server.request(readBuf, readView, n, ch);
    },
  };
}

async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** Rejects with the signal's reason when it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

const simpleAttr = { ino: 5, mode: 0o100644 };

/** A GETATTR that must be answered with fuse_attr_out (used after malformed input). */
function assertStillServes(h: ReturnType<typeof harness>, unique: bigint): void {
  const before = h.replies.length;
  h.send(request(GETATTR, unique, 1, getattrIn(0, 0)));
  assert.is(h.replies.length, before + 1, 'the request after the malformed one is answered');
  const hd = readHeader(h.replies[before]);
  assert.is(hd.error, 0);
  assert.is(hd.unique, unique);
  assert.is(hd.len, 16 + 104);
}
const servingFs = (): FileSystem => ({ getattr: () => ({ attr: simpleAttr }) });

// ---- LOOKUP / GETATTR reply bytes ----

test('LOOKUP replies fuse_out_header + 128-byte fuse_entry_out with timeouts in sec+nsec and 64-bit fields', () => {
  const calls: unknown[][] = [];
  const fs: FileSystem = {
    lookup(ctx: Context, parent: number, name: string): Entry {
      calls.push([parent, name, ctx.uid, ctx.gid, ctx.pid, ctx.umask]);
      return {
        nodeid: TWO32 + 7, generation: 3, entryTimeout: 2500, attrTimeout: 0.75,
        attr: {
          ino: TWO32 + 9, mode: 0o100644, size: 2 * TWO32 + 1, blocks: 16, nlink: 2, uid: 1000, gid: 100,
          rdev: 0, blksize: 4096, atime: 1700000000123.5, mtime: 1500.25, ctime: 2000,
        },
      };
    },
  };
  const h = harness(fs);
  const unique = 0x1234_0000_0042n;
  h.send(request(LOOKUP, unique, 1, cstr('hello.txt'), { uid: 1000, gid: 100, pid: 4242 }));

  assert.equal(calls, [[1, 'hello.txt', 1000, 100, 4242, 0]]);
  assert.is(h.replies.length, 1);
  const entry = Buffer.alloc(40);
  entry.writeBigUInt64LE(BigInt(TWO32 + 7), 0); // nodeid
  entry.writeBigUInt64LE(3n, 8); // generation
  entry.writeBigUInt64LE(2n, 16); // entry_valid: 2500 ms = 2 s
  entry.writeBigUInt64LE(0n, 24); // attr_valid: 0.75 ms = 0 s
  entry.writeUInt32LE(500_000_000, 32); // entry_valid_nsec
  entry.writeUInt32LE(750_000, 36); // attr_valid_nsec
  const attr = attrBytes({
    ino: TWO32 + 9, size: 2 * TWO32 + 1, blocks: 16,
    atime: 1700000000, mtime: 1, ctime: 2, atimensec: 123_500_000, mtimensec: 500_250_000, ctimensec: 0,
    mode: 0o100644, nlink: 2, uid: 1000, gid: 100, rdev: 0, blksize: 4096, flags: 0,
  });
  const expected = Buffer.concat([outHeader(144, 0, unique), entry, attr]);
  assert.is(expected.length, 16 + 128);
  assert.is(hex(h.replies[0].bytes), hex(expected));
});

test('LOOKUP without per-entry timeouts uses the server options (entryTimeout 1500 ms, attrTimeout 0)', () => {
  const h = harness({ lookup: () => ({ nodeid: 2, attr: { ino: 2, mode: 0o40755 } }) }, { entryTimeout: 1500, attrTimeout: 0 });
  h.send(request(LOOKUP, 5n, 1, cstr('d')));
  const b = Buffer.from(h.replies[0].bytes);
  assert.is(b.readBigUInt64LE(16 + 16), 1n, 'entry_valid');
  assert.is(b.readUInt32LE(16 + 32), 500_000_000, 'entry_valid_nsec');
  assert.is(b.readBigUInt64LE(16 + 24), 0n, 'attr_valid');
  assert.is(b.readUInt32LE(16 + 36), 0, 'attr_valid_nsec');
});

test('GETATTR with attrTimeout option 0 replies attr_valid 0 and times converted from ms to sec/nsec', () => {
  const h = harness({
    getattr: () => ({
      attr: { ino: 77, mode: 0o40755, nlink: 3, atime: 1234.5, mtime: 1700000000999.25, ctime: 0.001, uid: 7, gid: 8, size: 4096 },
    }),
  }, { attrTimeout: 0 });
  h.send(request(GETATTR, 9n, 77, getattrIn(0, 0)));
  const body = Buffer.alloc(16); // attr_valid u64, attr_valid_nsec u32, dummy u32: all 0
  const attr = attrBytes({
    ...ZERO_ATTR, ino: 77, mode: 0o40755, nlink: 3, uid: 7, gid: 8, size: 4096,
    atime: 1, atimensec: 234_500_000, mtime: 1700000000, mtimensec: 999_250_000, ctime: 0, ctimensec: 1_000,
  });
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(120, 0, 9n), body, attr])));
});

test('GETATTR passes fh only when FUSE_GETATTR_FH is set', () => {
  const seen: unknown[] = [];
  const h = harness({ getattr: (_c, _n, fh) => { seen.push(fh); return { attr: simpleAttr }; } });
  h.send(request(GETATTR, 1n, 3, getattrIn(0, 55)));
  h.send(request(GETATTR, 2n, 3, getattrIn(1, TWO32 + 55)));
  assert.equal(seen, [undefined, TWO32 + 55]);
});

test('a GETATTR reply after a LOOKUP reply carries no stale bytes from the reused reply buffer', () => {
  const h = harness({
    lookup: () => ({ nodeid: 0xffffffff, generation: 0xffffffff, attr: { ino: 0xffffffff, mode: 0xffffffff, flags: 0xffffffff } }),
    getattr: () => ({ attr: { ino: 1, mode: 0o40755 }, timeout: 0 }),
  });
  h.send(request(LOOKUP, 1n, 1, cstr('x')));
  h.send(request(GETATTR, 2n, 1, getattrIn(0, 0)));
  const expected = Buffer.concat([outHeader(120, 0, 2n), Buffer.alloc(16), attrBytes({ ...ZERO_ATTR, ino: 1, mode: 0o40755 })]);
  assert.is(hex(h.replies[1].bytes), hex(expected));
});

// ---- malformed requests ----

test('a request shorter than the 40-byte header but with a unique gets EIO for that unique, is logged and counted', () => {
  const h = harness(servingFs());
  const full = request(GETATTR, 0xabcd_0000_0011n, 1, getattrIn(0, 0));
  h.send(full, 20);
  assert.is(h.replies.length, 1);
  assert.is(hex(h.replies[0].bytes), errorReply(E.EIO, 0xabcd_0000_0011n));
  assert.is(h.logs.length, 1, 'one log line');
  assert.is(h.server.stats().malformed, 1);
  assertStillServes(h, 2n);
});

test('a request shorter than 16 bytes gets no reply, does not throw, and is logged and counted', () => {
  const h = harness(servingFs());
  const full = request(GETATTR, 7n, 1, getattrIn(0, 0));
  h.send(full, 10);
  h.send(full, 0);
  assert.is(h.replies.length, 0);
  assert.is(h.logs.length, 2);
  assert.is(h.server.stats().malformed, 2);
  assertStillServes(h, 8n);
});

test('a header len that disagrees with the bytes read gets EINVAL', () => {
  const h = harness(servingFs());
  const body = getattrIn(0, 0);
  h.send(request(GETATTR, 11n, 1, body, { len: 40 + body.length + 8 })); // claims more than read
  h.send(request(GETATTR, 12n, 1, body, { len: 40 })); // claims less than read
  assert.is(h.replies.length, 2);
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 11n));
  assert.is(hex(h.replies[1].bytes), errorReply(E.EINVAL, 12n));
  assert.is(h.logs.length, 2);
  assert.is(h.server.stats().malformed, 2);
  assertStillServes(h, 13n);
});

test('an unknown opcode (99) gets ENOSYS, is logged and counted under OPCODE_99', () => {
  const h = harness(servingFs());
  h.send(request(99, 21n, 1, Buffer.alloc(8)));
  assert.is(hex(h.replies[0].bytes), errorReply(E.ENOSYS, 21n));
  assert.is(h.logs.length, 1);
  assert.ok(h.logs[0].includes('99'), h.logs[0]);
  const st = h.server.stats();
  assert.is(st.malformed, 1);
  assert.is(st.errors.OPCODE_99, 1);
  assertStillServes(h, 22n);
});

test('a LOOKUP whose name has no NUL before the end of the request gets EINVAL (a NUL after the end does not count)', () => {
  let called = false;
  const h = harness({ ...servingFs(), lookup: () => { called = true; return { nodeid: 2, attr: simpleAttr }; } });
  h.send(request(LOOKUP, 31n, 1, Buffer.from('noterm')));
  assert.is(h.readBuf[40 + 6], 0, 'the read buffer holds a 0 right after the request');
  assert.not.ok(called);
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 31n));
  assert.is(h.logs.length, 1);
  assert.is(h.server.stats().malformed, 1);
  assertStillServes(h, 32n);
});

test('a LOOKUP whose only NUL lies inside the request extensions gets EINVAL', () => {
  const h = harness({ ...servingFs(), lookup: () => ({ nodeid: 2, attr: simpleAttr }) });
  // 8 bytes of name without NUL, then one 8-byte extension block (total_extlen counts 8-byte units) with zeros.
  h.send(request(LOOKUP, 33n, 1, Buffer.concat([Buffer.from('abcdefgh'), Buffer.alloc(8)]), { totalExtlen: 1 }));
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 33n));
  assertStillServes(h, 34n);
});

test('a request whose extensions are longer than the request gets EINVAL', () => {
  const h = harness(servingFs());
  h.send(request(GETATTR, 35n, 1, getattrIn(0, 0), { totalExtlen: 100 }));
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 35n));
  assertStillServes(h, 36n);
});

test('a GETATTR with a body shorter than fuse_getattr_in gets EINVAL', () => {
  let called = false;
  const h = harness({ getattr: () => { called = true; return { attr: simpleAttr }; } });
  h.send(request(GETATTR, 41n, 1, Buffer.alloc(8)));
  assert.not.ok(called);
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 41n));
  assert.is(h.logs.length, 1);
  assert.is(h.server.stats().malformed, 1);
  assertStillServes(h, 42n);
});

test('a malformed FORGET or INTERRUPT (short body) is logged and counted but never answered', () => {
  let forgets = 0;
  const h = harness({ ...servingFs(), forget: () => { forgets++; } });
  h.send(request(FORGET, 51n, 9, Buffer.alloc(4)));
  h.send(request(INTERRUPT, 52n, 0, Buffer.alloc(4)));
  h.send(request(BATCH_FORGET, 53n, 0, Buffer.alloc(4)));
  assert.is(h.replies.length, 0);
  assert.is(forgets, 0);
  assert.is(h.logs.length, 3);
  assert.is(h.server.stats().malformed, 3);
  assertStillServes(h, 54n);
});

test('a request whose header nodeid is at or above 2^53 gets ESTALE without calling the handler, logged and counted (2^53-1 is served)', () => {
  const calls: unknown[][] = [];
  const h = harness({
    getattr: (_c, n) => { calls.push(['getattr', n]); return { attr: simpleAttr }; },
    lookup: (_c, p) => { calls.push(['lookup', p]); return { nodeid: 2, attr: simpleAttr }; },
    forget: (n, k) => { calls.push(['forget', n, k]); },
  });
  h.send(request(GETATTR, 201n, 2n ** 53n, getattrIn(0, 0)));
  h.send(request(LOOKUP, 202n, 2n ** 64n - 1n, cstr('x')));
  h.send(request(FORGET, 203n, 2n ** 53n + 1n, u64(1))); // no-reply: never answered, even when refused
  assert.equal(calls, []);
  assert.is(h.replies.length, 2);
  assert.is(hex(h.replies[0].bytes), errorReply(E.ESTALE, 201n));
  assert.is(hex(h.replies[1].bytes), errorReply(E.ESTALE, 202n));
  assert.is(h.logs.length, 3);
  assert.is(h.server.stats().malformed, 3);
  h.send(request(GETATTR, 204n, 2n ** 53n - 1n, getattrIn(0, 0)));
  assert.equal(calls, [['getattr', Number.MAX_SAFE_INTEGER]]);
  assert.is(readHeader(h.replies[2]).error, 0);
});

test('a READ/WRITE/GETATTR whose file handle is at or above 2^53 gets ESTALE without calling the handler', () => {
  let called = 0;
  const h = harness({
    read: () => { called++; return Buffer.alloc(0); },
    write: () => { called++; return 0; },
    getattr: () => { called++; return { attr: simpleAttr }; },
  });
  h.send(request(READ, 211n, 2, rwIn(2 ** 53, 0n, 10)));
  h.send(request(WRITE, 212n, 2, Buffer.concat([rwIn(0, 0n, 1), Buffer.from('x')]).fill(0xff, 0, 8))); // fh 2^64-1
  h.send(request(GETATTR, 213n, 2, getattrIn(1, 2 ** 53)));
  assert.is(called, 0);
  assert.equal(h.replies.map((r) => hex(r.bytes)), [errorReply(E.ESTALE, 211n), errorReply(E.ESTALE, 212n), errorReply(E.ESTALE, 213n)]);
  assert.is(h.server.stats().malformed, 3);
  h.send(request(READ, 214n, 2, rwIn(2 ** 53 - 1, 0n, 10)));
  assert.is(called, 1, 'fh 2^53-1 is served');
});

// ---- two names ----

test('RENAME passes (parent, name, newdir, newname, flags 0) with a 64-bit newdir and UTF-8 names', () => {
  const calls: unknown[][] = [];
  const h = harness({ rename: (_c, p, n, np, nn, f) => { calls.push([p, n, np, nn, f]); } });
  h.send(request(RENAME, 61n, TWO32 + 1, Buffer.concat([u64(TWO32 + 9), cstr('olé'), cstr('nouveau')])));
  assert.equal(calls, [[TWO32 + 1, 'olé', TWO32 + 9, 'nouveau', 0]]);
  assert.is(hex(h.replies[0].bytes), hex(outHeader(16, 0, 61n)));
});

test('a RENAME with only one NUL-terminated name gets EINVAL and no call', () => {
  let called = false;
  const h = harness({ rename: () => { called = true; } });
  h.send(request(RENAME, 62n, 1, Buffer.concat([u64(1), cstr('old'), Buffer.from('new')])));
  assert.not.ok(called);
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 62n));
});

test('SYMLINK passes the entry name first and the link target second', () => {
  const calls: unknown[][] = [];
  const h = harness({
    symlink: (_c, p, name, target) => { calls.push([p, name, target]); return { nodeid: 40, attr: { ino: 40, mode: 0o120777 } }; },
  });
  h.send(request(SYMLINK, 63n, 1, Buffer.concat([cstr('link'), cstr('../some/target')])));
  assert.equal(calls, [[1, 'link', '../some/target']]);
  const hd = readHeader(h.replies[0]);
  assert.equal([hd.len, hd.error, hd.unique], [144, 0, 63n]);
  assert.is(Buffer.from(h.replies[0].bytes).readBigUInt64LE(16), 40n);
});

test('a name that is not UTF-8 (ff fe) reaches the handler as U+DCFF U+DCFE, distinct from a literal U+FFFD name', () => {
  const names: string[] = [];
  const h = harness({ lookup: (_c, _p, name) => { names.push(name); return { nodeid: 0, attr: { ino: 0, mode: 0 } }; } });
  h.send(request(LOOKUP, 65n, 1, Buffer.from([0xff, 0xfe, 0])));
  h.send(request(LOOKUP, 66n, 1, cstr('\ufffd')));
  assert.equal(names, ['\udcff\udcfe', '\ufffd']);
  assert.is(h.replies.length, 2);
});

// ---- defaults for missing methods ----

test('a missing method answers ENOSYS', () => {
  const h = harness({});
  h.send(request(LOOKUP, 71n, 1, cstr('x')));
  h.send(request(READ, 72n, 1, rwIn(0, 0n, 10)));
  assert.is(hex(h.replies[0].bytes), errorReply(E.ENOSYS, 71n));
  assert.is(hex(h.replies[1].bytes), errorReply(E.ENOSYS, 72n));
  assert.is(h.logs.length, 0, 'ENOSYS for a missing method is an answer, not a fault');
});

test('STATFS without a statfs method replies a zeroed fuse_statfs_out with bsize 512, namelen 255, frsize 512', () => {
  const h = harness({});
  h.send(request(STATFS, 73n, 1));
  const st = Buffer.alloc(80); // fuse_kstatfs
  st.writeUInt32LE(512, 40); // bsize
  st.writeUInt32LE(255, 44); // namelen
  st.writeUInt32LE(512, 48); // frsize
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(96, 0, 73n), st])));
});

test('RELEASE without a release method succeeds with a header-only reply', () => {
  const h = harness({});
  const releaseIn = Buffer.concat([u64(3), u32(0), u32(0), u64(0)]);
  h.send(request(RELEASE, 74n, 5, releaseIn));
  assert.is(hex(h.replies[0].bytes), hex(outHeader(16, 0, 74n)));
});

// ---- FORGET / BATCH_FORGET ----

test('FORGET calls fs.forget(nodeid, nlookup) with 64-bit values and sends no reply', () => {
  const calls: number[][] = [];
  const h = harness({ forget: (n, k) => { calls.push([n, k]); } });
  h.send(request(FORGET, 81n, TWO32 + 5, u64(TWO32 + 3)));
  assert.equal(calls, [[TWO32 + 5, TWO32 + 3]]);
  assert.is(h.replies.length, 0);
});

test('BATCH_FORGET calls fs.forget for every (nodeid, nlookup) pair and sends no reply', () => {
  const calls: number[][] = [];
  const h = harness({ forget: (n, k) => { calls.push([n, k]); } });
  const pairs: [number, number][] = [[TWO32 + 1, 1], [7, TWO32 * 3 + 2], [2 ** 40 + 17, 5]];
  const body = Buffer.concat([u32(pairs.length), u32(0), ...pairs.flatMap(([n, k]) => [u64(n), u64(k)])]);
  h.send(request(BATCH_FORGET, 82n, 0, body));
  assert.equal(calls, pairs);
  assert.is(h.replies.length, 0);
});

test('BATCH_FORGET announcing more entries than present forgets those present, logs, and does not reply', () => {
  const calls: number[][] = [];
  const h = harness({ forget: (n, k) => { calls.push([n, k]); } });
  const body = Buffer.concat([u32(3), u32(0), u64(10), u64(1), u64(11), u64(2)]);
  h.send(request(BATCH_FORGET, 83n, 0, body));
  assert.equal(calls, [[10, 1], [11, 2]]);
  assert.is(h.replies.length, 0);
  assert.is(h.logs.length, 1);
});

test('BATCH_FORGET skips a pair whose nodeid is at or above 2^53 and forgets the others', () => {
  const calls: number[][] = [];
  const h = harness({ forget: (n, k) => { calls.push([n, k]); } });
  const pairs: [bigint, bigint][] = [[5n, 1n], [2n ** 53n, 1n], [2n ** 64n - 1n, 2n], [6n, 2n]];
  const body = Buffer.concat([u32(pairs.length), u32(0), ...pairs.flatMap(([n, k]) => [u64(n), u64(k)])]);
  h.send(request(BATCH_FORGET, 84n, 0, body));
  assert.equal(calls, [[5, 1], [6, 2]]);
  assert.is(h.replies.length, 0);
});

// ---- INTERRUPT ----

test('INTERRUPT aborts only the signal of the request it names; that one replies EINTR, the other completes; INTERRUPT is not answered', async () => {
  const gate = deferred();
  const abortedNames: string[] = [];
  const h = harness({
    async lookup(ctx, _p, name) {
      ctx.signal.addEventListener('abort', () => abortedNames.push(name));
      await Promise.race([gate.promise, aborted(ctx.signal)]);
      return { nodeid: name === 'first' ? 10 : 11, attr: simpleAttr };
    },
  });
  const firstUnique = 0x7_0000_0100n; // high half set: keys must use all of it
  const secondUnique = 0x7_0000_0102n;
  h.send(request(LOOKUP, firstUnique, 1, cstr('first')));
  h.send(request(LOOKUP, secondUnique, 1, cstr('second')));
  await ticks();
  assert.is(h.replies.length, 0);
  assert.is(h.server.stats().inFlight, 2);

  h.send(request(INTERRUPT, 0x7_0000_0104n, 0, u64(secondUnique)));
  await ticks();
  assert.equal(abortedNames, ['second']);
  assert.is(h.replies.length, 1, 'only the interrupted request is answered (INTERRUPT itself is not)');
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINTR, secondUnique));
  assert.is(h.logs.length, 0, 'EINTR from the signal reason is not logged as a failure');

  gate.resolve();
  await ticks();
  assert.is(h.replies.length, 2);
  const hd = readHeader(h.replies[1]);
  assert.equal([hd.len, hd.error, hd.unique], [144, 0, firstUnique]);
  assert.is(Buffer.from(h.replies[1].bytes).readBigUInt64LE(16), 10n);
  assert.equal(abortedNames, ['second']);
  assert.is(h.server.stats().inFlight, 0);
});

test('INTERRUPT that arrives before its request: the request starts with its signal already aborted', async () => {
  const seen: unknown[] = [];
  const h = harness({
    lookup(ctx) {
      seen.push(ctx.signal.aborted, (ctx.signal.reason as NodeJS.ErrnoException)?.code);
      throw ctx.signal.reason;
    },
  });
  h.send(request(INTERRUPT, 91n, 0, u64(90n)));
  assert.is(h.replies.length, 0);
  h.send(request(LOOKUP, 90n, 1, cstr('late')));
  await ticks();
  assert.equal(seen, [true, 'EINTR']);
  assert.is(h.replies.length, 1);
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINTR, 90n));
});

test('INTERRUPT naming another unique does not abort a pending request', async () => {
  const gate = deferred();
  let abortedFlag = false;
  const h = harness({
    async lookup(ctx) {
      ctx.signal.addEventListener('abort', () => { abortedFlag = true; });
      await gate.promise;
      return { nodeid: 3, attr: simpleAttr };
    },
  });
  h.send(request(LOOKUP, 0x1_0000_0010n, 1, cstr('a')));
  h.send(request(INTERRUPT, 0x1_0000_0012n, 0, u64(0x2_0000_0010n))); // same low half, other high half
  await ticks();
  assert.not.ok(abortedFlag);
  gate.resolve();
  await ticks();
  assert.is(readHeader(h.replies[0]).error, 0);
});

// ---- errors ----

test('a handler throwing FuseError("ENOENT") replies -ENOENT and logs nothing', () => {
  const h = harness({ lookup: () => { throw new FuseError('ENOENT'); } });
  h.send(request(LOOKUP, 101n, 1, cstr('missing')));
  assert.is(hex(h.replies[0].bytes), errorReply(E.ENOENT, 101n));
  assert.is(h.logs.length, 0);
});

test('a handler throwing a Node fs error replies the errno of its code and logs nothing', () => {
  const h = harness({
    lookup: () => { statSync('/nonexistent-tsfuse-dispatch-test'); return { nodeid: 2, attr: simpleAttr }; },
    getattr: () => { statSync('/etc/hostname/not-a-dir'); return { attr: simpleAttr }; },
  });
  h.send(request(LOOKUP, 102n, 1, cstr('x')));
  h.send(request(GETATTR, 103n, 1, getattrIn(0, 0)));
  assert.is(hex(h.replies[0].bytes), errorReply(E.ENOENT, 102n));
  assert.is(hex(h.replies[1].bytes), errorReply(E.ENOTDIR, 103n));
  assert.is(h.logs.length, 0);
});

test('a handler throwing a plain Error replies EIO and logs one line naming the opcode', () => {
  const h = harness({ getattr: () => { throw new Error('boom'); } });
  h.send(request(GETATTR, 104n, 12345, getattrIn(0, 0)));
  assert.is(hex(h.replies[0].bytes), errorReply(E.EIO, 104n));
  assert.is(h.logs.length, 1);
  assert.ok(h.logs[0].includes('GETATTR'), h.logs[0]);
  assert.ok(h.logs[0].includes('12345'), `names the node: ${h.logs[0]}`);
  assert.ok(h.logs[0].includes('boom'), h.logs[0]);
});

test('a rejected promise maps like a throw: FuseError → its errno, fs error → its code, plain Error → EIO + one log line', async () => {
  const h = harness({
    async lookup(_c, _p, name) {
      await ticks(1);
      if (name === 'fuse') throw new FuseError('EACCES');
      if (name === 'node') statSync('/nonexistent-tsfuse-dispatch-test');
      throw new TypeError('bad');
    },
  });
  h.send(request(LOOKUP, 111n, 1, cstr('fuse')));
  h.send(request(LOOKUP, 112n, 1, cstr('node')));
  h.send(request(LOOKUP, 113n, 1, cstr('plain')));
  assert.is(h.replies.length, 0, 'nothing is replied before the promises settle');
  await ticks();
  const byUnique = new Map(h.replies.map((r) => [readHeader(r).unique, hex(r.bytes)]));
  assert.is(byUnique.get(111n), errorReply(E.EACCES, 111n));
  assert.is(byUnique.get(112n), errorReply(E.ENOENT, 112n));
  assert.is(byUnique.get(113n), errorReply(E.EIO, 113n));
  assert.is(h.logs.length, 1);
  assert.ok(h.logs[0].includes('LOOKUP'), h.logs[0]);
});

// ---- xattrs ----

test('GETXATTR size 0 replies fuse_getxattr_out with the value length', () => {
  const names: string[] = [];
  const h = harness({ getxattr: (_c, _n, name) => { names.push(name); return Buffer.from('hello'); } });
  h.send(request(GETXATTR, 121n, 4, Buffer.concat([getxattrIn(0), cstr('user.greeting')])));
  assert.equal(names, ['user.greeting']);
  const out = Buffer.concat([u32(5), u32(0)]);
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(24, 0, 121n), out])));
});

test('GETXATTR with a size smaller than the value replies ERANGE', () => {
  const h = harness({ getxattr: () => Buffer.from('hello') });
  h.send(request(GETXATTR, 122n, 4, Buffer.concat([getxattrIn(4), cstr('user.greeting')])));
  assert.is(hex(h.replies[0].bytes), errorReply(E.ERANGE, 122n));
  assert.is(h.logs.length, 0);
});

test('GETXATTR with a size that fits (exactly or more) replies the value bytes', () => {
  const h = harness({ getxattr: () => Buffer.from('hello') });
  h.send(request(GETXATTR, 123n, 4, Buffer.concat([getxattrIn(5), cstr('user.greeting')])));
  h.send(request(GETXATTR, 124n, 4, Buffer.concat([getxattrIn(4096), cstr('user.greeting')])));
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(21, 0, 123n), Buffer.from('hello')])));
  assert.is(hex(h.replies[1].bytes), hex(Buffer.concat([outHeader(21, 0, 124n), Buffer.from('hello')])));
});

test('LISTXATTR replies NUL-separated names, answers the size probe and ERANGE', () => {
  const h = harness({ listxattr: () => ['user.a', 'security.bé'] });
  const list = Buffer.from('user.a\0security.bé\0', 'utf8');
  h.send(request(LISTXATTR, 131n, 4, getxattrIn(0)));
  h.send(request(LISTXATTR, 132n, 4, getxattrIn(list.length - 1)));
  h.send(request(LISTXATTR, 133n, 4, getxattrIn(1024)));
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(24, 0, 131n), u32(list.length), u32(0)])));
  assert.is(hex(h.replies[1].bytes), errorReply(E.ERANGE, 132n));
  assert.is(hex(h.replies[2].bytes), hex(Buffer.concat([outHeader(16 + list.length, 0, 133n), list])));
});

// ---- READ / WRITE ----

test('READ replies through writev (header chunk + data chunk) truncated to the requested size', () => {
  const calls: unknown[][] = [];
  const data = Buffer.from('0123456789');
  const h = harness({ read: (_c, n, fh, off, size) => { calls.push([n, fh, off, size]); return data; } });
  h.send(request(READ, 141n, 6, rwIn(TWO32 + 2, BigInt(TWO32) * 2n + 5n, 4)));
  assert.equal(calls, [[6, TWO32 + 2, 2n * 2n ** 32n + 5n, 4]]);
  const r = h.replies[0];
  assert.is(r.via, 'writev');
  assert.is(r.chunks.length, 2);
  assert.is(hex(r.chunks[0]), hex(outHeader(20, 0, 141n)));
  assert.is(hex(r.chunks[1]), hex(Buffer.from('0123')));
});

test('READ returning fewer bytes than asked (end of file) replies just those bytes', async () => {
  const h = harness({ read: async () => Buffer.from('ab') });
  h.send(request(READ, 142n, 6, rwIn(1, 0n, 4096)));
  await ticks();
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(18, 0, 142n), Buffer.from('ab')])));
});

test('WRITE hands the handler a copy of the data (later changes to the read buffer do not reach it) and replies fuse_write_out', async () => {
  const kept: Uint8Array[] = [];
  const calls: unknown[][] = [];
  const h = harness({
    async write(_c, n, fh, off, data, flags) {
      calls.push([n, fh, off, flags]);
      kept.push(data);
      await ticks(1);
      return data.length;
    },
  });
  const payload = Buffer.from('abcdef');
  h.send(request(WRITE, 151n, 8, Buffer.concat([rwIn(TWO32 + 4, 100n, payload.length, 1), payload])));
  h.readBuf.fill(0x5a); // the transport reuses its read buffer for the next request
  await ticks();
  assert.equal(calls, [[8, TWO32 + 4, 100n, 1]]);
  assert.is(Buffer.from(kept[0]).toString(), 'abcdef');
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(24, 0, 151n), u32(6), u32(0)])));
});

test('WRITE with more trailing bytes than fuse_write_in.size passes exactly size bytes', () => {
  const kept: Uint8Array[] = [];
  const h = harness({ write: (_c, _n, _fh, _o, data) => { kept.push(data); return data.length; } });
  h.send(request(WRITE, 152n, 8, Buffer.concat([rwIn(1, 0n, 3), Buffer.from('xyzEXTRA')])));
  assert.is(Buffer.from(kept[0]).toString(), 'xyz');
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(24, 0, 152n), u32(3), u32(0)])));
});

test('WRITE whose data is shorter than fuse_write_in.size is a malformed request (EINVAL, logged), not a short write', () => {
  const kept: Uint8Array[] = [];
  const h = harness({ write: (_c, _n, _fh, _o, data) => { kept.push(data); return data.length; } });
  h.send(request(WRITE, 153n, 8, Buffer.concat([rwIn(1, 0n, 100), Buffer.from('only10byte')])));
  assert.is(kept.length, 0, 'the handler is not called with fewer bytes than the kernel announced');
  assert.is(hex(h.replies[0].bytes), errorReply(E.EINVAL, 153n));
});

test('LSEEK passes the offset as an exact bigint and replies a bigint result exactly', () => {
  const calls: unknown[][] = [];
  const h = harness({ lseek: (_c, n, fh, off, whence) => { calls.push([n, fh, off, whence]); return 2n ** 62n + 3n; } });
  const lseekIn = Buffer.concat([u64(7), u64(2n ** 63n - 1n), u32(3), u32(0)]);
  h.send(request(LSEEK, 155n, 6, lseekIn));
  assert.equal(calls, [[6, 7, 2n ** 63n - 1n, 3]]);
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(24, 0, 155n), u64(2n ** 62n + 3n)])));
});

test('attributes returned as bigints beyond 2^53 (ino up to 2^64-1, size, blocks) are encoded exactly', () => {
  const h = harness({ getattr: () => ({ attr: { ino: 2n ** 64n - 1n, mode: 0o100644, size: 2n ** 63n + 1n, blocks: 2n ** 53n + 1n }, timeout: 0 }) });
  h.send(request(GETATTR, 156n, 2, getattrIn(0, 0)));
  const attr = attrBytes({ ...ZERO_ATTR, ino: 2n ** 64n - 1n, mode: 0o100644, size: 2n ** 63n + 1n, blocks: 2n ** 53n + 1n });
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(120, 0, 156n), Buffer.alloc(16), attr])));
});

test('a handler result of the wrong type or out of range replies EIO and logs one line naming the opcode', async () => {
  const h = harness({
    read: () => 'not bytes' as never,
    write: (_c, n, _fh, _o, data) => (n === 2 ? data.length + 1 : 1.5),
    getattr: (_c, n) => {
      if (n === 2) return { attr: { ino: 1.5, mode: 0o100644 } };
      if (n === 3) return { attr: { ino: 3, mode: 0o100644, size: 2 ** 53 } }; // not a safe integer: a bigint is needed
      if (n === 4) return { attr: { ino: -1, mode: 0o100644 } };
      return { attr: { ino: 5, mode: 0o100644, nlink: NaN } };
    },
    lseek: async () => -1,
  });
  h.send(request(READ, 191n, 2, rwIn(1, 0n, 10)));
  h.send(request(WRITE, 192n, 2, Buffer.concat([rwIn(1, 0n, 3), Buffer.from('abc')]))); // 4 of 3 bytes written
  h.send(request(WRITE, 193n, 3, Buffer.concat([rwIn(1, 0n, 3), Buffer.from('abc')])));
  for (const n of [2, 3, 4, 5]) h.send(request(GETATTR, 193n + BigInt(n), n, getattrIn(0, 0)));
  h.send(request(LSEEK, 199n, 2, Buffer.concat([u64(1), u64(0), u32(3), u32(0)])));
  await ticks();
  const uniques = [191n, 192n, 193n, 195n, 196n, 197n, 198n, 199n];
  assert.equal(h.replies.map((r) => hex(r.bytes)), uniques.map((u) => errorReply(E.EIO, u)));
  assert.is(h.logs.length, uniques.length, 'one log line per bad result');
  const ops = ['READ', 'WRITE', 'WRITE', 'GETATTR', 'GETATTR', 'GETATTR', 'GETATTR', 'LSEEK'];
  h.logs.forEach((l, i) => assert.ok(l.includes(ops[i]), l));
  assert.is(h.server.stats().malformed, 0, 'a bad result is not a malformed request');
});

test('an entry whose result fails to encode replies EIO and undoes its lookup (fs.forget(nodeid, 1))', () => {
  const forgets: number[][] = [];
  const h = harness({
    lookup: (_c, _p, name) => (name === 'bad-attr'
      ? { nodeid: 80, attr: { ino: 'x' as never, mode: 0o100644 } }
      : { nodeid: 2 ** 53, attr: simpleAttr }), // a node id no kernel can hold: refused, nothing to undo
    forget: (n, k) => { forgets.push([n, k]); },
  });
  h.send(request(LOOKUP, 157n, 1, cstr('bad-attr')));
  h.send(request(LOOKUP, 158n, 1, cstr('bad-nodeid')));
  assert.is(hex(h.replies[0].bytes), errorReply(E.EIO, 157n));
  assert.is(hex(h.replies[1].bytes), errorReply(E.EIO, 158n));
  assert.equal(forgets, [[80, 1]]);
  assert.is(h.logs.length, 2);
});

// ---- READDIR ----

test('READDIR packs 8-byte-aligned fuse_dirent records and add() returns false once the requested size is full', () => {
  const results: boolean[] = [];
  const h = harness({
    readdir(_c, _n, _fh, _off, out: DirentSink) {
      results.push(out.add('a', 5, 8, 1n));
      results.push(out.add('bcdefghij', TWO32 + 6, 4, 2n));
      results.push(out.add('x', 7, 8, 3n));
    },
  });
  h.send(request(READDIR, 161n, 1, rwIn(0, 0n, 80)));
  assert.equal(results, [true, true, false]);
  function dirent(ino: number, off: number, name: string, type: number, size: number): Buffer {
    const b = Buffer.alloc(size); // zero padding up to the 8-byte boundary
    b.writeBigUInt64LE(BigInt(ino), 0);
    b.writeBigUInt64LE(BigInt(off), 8);
    b.writeUInt32LE(Buffer.byteLength(name), 16);
    b.writeUInt32LE(type, 20);
    b.write(name, 24);
    return b;
  }
  const records = Buffer.concat([dirent(5, 1, 'a', 8, 32), dirent(TWO32 + 6, 2, 'bcdefghij', 4, 40)]);
  assert.is(records.length % 8, 0);
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(16 + 72, 0, 161n), records])));
});

test('READDIR with a record that fills the size exactly accepts it', () => {
  const results: boolean[] = [];
  const h = harness({ readdir(_c, _n, _fh, _off, out) { results.push(out.add('abcdefgh', 1, 8, 1n), out.add('b', 2, 8, 2n)); } });
  h.send(request(READDIR, 162n, 1, rwIn(0, 0n, 32)));
  assert.equal(results, [true, false]);
  assert.is(readHeader(h.replies[0]).len, 16 + 32);
});

test('READDIR passes the offset as an exact bigint; add() takes byte names and bigint ino/offsets beyond 2^53', () => {
  const offsets: bigint[] = [];
  const h = harness({
    readdir(_c, _n, _fh, off, out) {
      offsets.push(off);
      out.add(Uint8Array.of(0xff, 0xfe), 2n ** 64n - 1n, 8, 2n ** 63n + 7n);
      out.add('\udcff', 2n ** 53n + 1n, 4, 0xffff_ffff_ffff_fff0n);
    },
  });
  h.send(request(READDIR, 163n, 1, rwIn(0, 0xffff_ffff_ffff_ffefn, 4096)));
  assert.equal(offsets, [0xffff_ffff_ffff_ffefn]);
  const rec = (ino: bigint, off: bigint, type: number, name: number[]) => {
    const b = Buffer.alloc(32);
    b.writeBigUInt64LE(ino, 0);
    b.writeBigUInt64LE(off, 8);
    b.writeUInt32LE(name.length, 16);
    b.writeUInt32LE(type, 20);
    Buffer.from(name).copy(b, 24);
    return b;
  };
  const records = Buffer.concat([rec(2n ** 64n - 1n, 2n ** 63n + 7n, 8, [0xff, 0xfe]), rec(2n ** 53n + 1n, 0xffff_ffff_ffff_fff0n, 4, [0xff])]);
  assert.is(hex(h.replies[0].bytes), hex(Buffer.concat([outHeader(16 + 64, 0, 163n), records])));
});

test('READDIR whose handler adds an invalid name (with a slash) replies EIO and logs it', () => {
  const h = harness({ readdir(_c, _n, _fh, _off, out) { out.add('a/b', 1, 8, 1n); } });
  h.send(request(READDIR, 164n, 1, rwIn(0, 0n, 4096)));
  assert.is(hex(h.replies[0].bytes), errorReply(E.EIO, 164n));
  assert.is(h.logs.length, 1);
  assert.ok(h.logs[0].includes('READDIR'), h.logs[0]);
});

test('an undelivered READDIRPLUS reply forgets the entries it handed out, but never "." or ".." (as strings or as bytes)', () => {
  const READDIRPLUS = 44;
  const forgets: number[][] = [];
  const entry = (nodeid: number): Entry => ({ nodeid, attr: { ino: nodeid, mode: 0o40755 } });
  const h = harness({
    readdirplus(_c, _n, _fh, _off, out) {
      out.add('.', entry(1), 1n);
      out.add('..', entry(1), 2n);
      out.add(Uint8Array.of(0x2e), entry(1), 3n); // "." given as bytes
      out.add(Uint8Array.of(0x2e, 0x2e), entry(1), 4n); // ".." given as bytes
      out.add('child', entry(50), 5n);
      out.add(Uint8Array.of(0x63, 0xff), entry(51), 6n);
    },
    forget: (n, k) => { forgets.push([n, k]); },
  });
  h.setWriteResult(() => -2);
  h.send(request(READDIRPLUS, 165n, 1, rwIn(0, 0n, 4096)));
  assert.is(readHeader(h.replies[0]).len, 16 + 6 * 160);
  assert.equal(forgets, [[50, 1], [51, 1]]);
});

// ---- locks ----

/** fuse_lk_in: fh @0, owner @8, lk { start @16, end @24, type @32, pid @36 }, lk_flags @40, padding @44. */
function lkIn(fh: number, owner: bigint, start: bigint, end: bigint, type: number, pid: number, lkFlags = 0): Buffer {
  return Buffer.concat([u64(fh), u64(owner), u64(start), u64(end), u32(type), u32(pid), u32(lkFlags), u32(0)]);
}

test('SETLK/GETLK: lock ranges and owners are exact bigints; an end of OFFSET_MAX is LOCK_TO_EOF both ways', () => {
  const calls: unknown[][] = [];
  const h = harness({
    setlk: (_c, n, fh, owner, lock, wait, flock) => { calls.push([n, fh, owner, lock, wait, flock]); },
    getlk: (_c, _n, _fh, _owner, lock) => { calls.push(['getlk', lock]); return { start: 2n ** 53n + 1n, end: LOCK_TO_EOF, type: 1, pid: 77 }; },
  });
  const owner = 0xfedc_ba98_7654_3211n;
  h.send(request(SETLK, 221n, 3, lkIn(9, owner, 2n ** 53n + 1n, 2n ** 63n - 1n, 1, 42)));
  h.send(request(GETLK, 222n, 3, lkIn(9, owner, 0n, 2n ** 62n, 0, 42)));
  const setLock: Lock = { start: 2n ** 53n + 1n, end: LOCK_TO_EOF, type: 1, pid: 42 };
  assert.equal(calls, [[3, 9, owner, setLock, false, false], ['getlk', { start: 0n, end: 2n ** 62n, type: 0, pid: 42 }]]);
  assert.is(LOCK_TO_EOF, 2n ** 63n - 1n);
  assert.is(hex(h.replies[0].bytes), hex(outHeader(16, 0, 221n)));
  const lkOut = Buffer.concat([u64(2n ** 53n + 1n), u64(2n ** 63n - 1n), u32(1), u32(77)]);
  assert.is(hex(h.replies[1].bytes), hex(Buffer.concat([outHeader(40, 0, 222n), lkOut])));
});

test('GETLK returning a Lock with number offsets (or a range past OFFSET_MAX) replies EIO and logs', () => {
  const h = harness({
    setlk: () => {},
    getlk: (_c, n) => (n === 1
      ? { start: 0, end: 10, type: 1, pid: 1 } as unknown as Lock
      : { start: 0n, end: 2n ** 63n, type: 1, pid: 1 }),
  });
  h.send(request(GETLK, 223n, 1, lkIn(1, 0n, 0n, 0n, 0, 1)));
  h.send(request(GETLK, 224n, 2, lkIn(1, 0n, 0n, 0n, 0, 1)));
  assert.is(hex(h.replies[0].bytes), errorReply(E.EIO, 223n));
  assert.is(hex(h.replies[1].bytes), errorReply(E.EIO, 224n));
  assert.is(h.logs.length, 2);
});

// ---- entry undo ----

test('an entry reply the sink rejects with -ENOENT (interrupted) is undone with fs.forget(nodeid, 1)', async () => {
  const forgets: number[][] = [];
  const h = harness({
    lookup: (_c, _p, name) => (name === 'async'
      ? Promise.resolve({ nodeid: TWO32 + 70, attr: simpleAttr })
      : { nodeid: TWO32 + 71, attr: simpleAttr }),
    forget: (n, k) => { forgets.push([n, k]); },
  });
  h.setWriteResult(() => -2);
  h.send(request(LOOKUP, 171n, 1, cstr('sync')));
  h.send(request(LOOKUP, 172n, 1, cstr('async')));
  await ticks();
  assert.equal(forgets, [[TWO32 + 71, 1], [TWO32 + 70, 1]]);
});

test('an OPEN/OPENDIR/CREATE reply the sink rejects (interrupted) releases its handle; CREATE then forgets', async () => {
  const OPEN = 14, OPENDIR = 27, CREATE = 35;
  const calls: string[] = [];
  const h = harness({
    open: (_c, n, flags) => ({ fh: 500 + n, directIo: flags === 2 }),
    opendir: async (_c, n) => ({ fh: 600 + n }),
    create: (_c, p, name) => ({ entry: { nodeid: 90, attr: simpleAttr }, fh: 700 + p + name.length }),
    release: (_c, n, fh, flags) => { calls.push(`release ${n} ${fh} ${flags}`); },
    releasedir: (_c, n, fh) => { calls.push(`releasedir ${n} ${fh}`); },
    forget: (n, k) => { calls.push(`forget ${n} ${k}`); },
  });
  h.setWriteResult(() => -2);
  h.send(request(OPEN, 181n, 5, Buffer.concat([u32(2), u32(0)])));
  h.send(request(OPENDIR, 182n, 6, Buffer.concat([u32(0), u32(0)])));
  h.send(request(CREATE, 183n, 1, Buffer.concat([u32(0o101), u32(0o100644), u32(0o22), u32(0), cstr('new')])));
  await ticks();
  assert.equal(calls, ['release 5 505 2', 'release 90 704 65', 'forget 90 1', 'releasedir 6 606']);
  h.setWriteResult((len) => len);
  calls.length = 0;
  h.send(request(OPEN, 184n, 5, Buffer.concat([u32(0), u32(0)])));
  assert.equal(calls, [], 'a delivered OPEN reply releases nothing');
});

test('an entry reply the sink accepts does not call fs.forget', async () => {
  const forgets: number[][] = [];
  const h = harness({
    lookup: () => ({ nodeid: 70, attr: simpleAttr }),
    symlink: async () => ({ nodeid: 71, attr: simpleAttr }),
    forget: (n, k) => { forgets.push([n, k]); },
  });
  h.send(request(LOOKUP, 173n, 1, cstr('a')));
  h.send(request(SYMLINK, 174n, 1, Buffer.concat([cstr('l'), cstr('t')])));
  await ticks();
  assert.is(h.replies.length, 2);
  assert.equal(forgets, []);
});

test('a negative entry (nodeid 0) the sink rejects is not forgotten', () => {
  const forgets: number[][] = [];
  const h = harness({ lookup: () => ({ nodeid: 0, entryTimeout: 1000, attr: { ino: 0, mode: 0 } }), forget: (n, k) => { forgets.push([n, k]); } });
  h.setWriteResult(() => -2);
  h.send(request(LOOKUP, 175n, 1, cstr('nope')));
  assert.equal(forgets, []);
});

// ---- stats / DESTROY ----

test('stats() counts requests and errors per opcode name', async () => {
  const h = harness({
    lookup: (_c, _p, name) => { if (name === 'no') throw new FuseError('ENOENT'); return { nodeid: 2, attr: simpleAttr }; },
    getattr: async () => ({ attr: simpleAttr }),
    forget: () => {},
  });
  h.send(request(LOOKUP, 1n, 1, cstr('yes')));
  h.send(request(LOOKUP, 2n, 1, cstr('yes')));
  h.send(request(LOOKUP, 3n, 1, cstr('no')));
  h.send(request(GETATTR, 4n, 1, getattrIn(0, 0)));
  assert.is(h.server.stats().inFlight, 1);
  h.send(request(FORGET, 5n, 2, u64(1)));
  h.send(request(READ, 6n, 1, rwIn(0, 0n, 1))); // no read method: ENOSYS
  await ticks();
  assert.equal(h.server.stats(), {
    requests: { LOOKUP: 3, GETATTR: 1, FORGET: 1, READ: 1 },
    errors: { LOOKUP: 1, READ: 1 },
    inFlight: 0,
    malformed: 0,
  });
});

test('DESTROY replies success and calls fs.destroy once, also when repeated', async () => {
  let destroyed = 0;
  const h = harness({ destroy: () => { destroyed++; } });
  h.send(request(DESTROY, 181n, 0));
  await ticks();
  assert.is(hex(h.replies[0].bytes), hex(outHeader(16, 0, 181n)));
  assert.is(destroyed, 1);
  h.send(request(DESTROY, 182n, 0));
  await ticks();
  assert.is(hex(h.replies[1].bytes), hex(outHeader(16, 0, 182n)));
  assert.is(destroyed, 1);
});

test.run();
