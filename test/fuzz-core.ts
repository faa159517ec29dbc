/**
 * A seeded, reproducible fuzzer for the protocol core (issue 8 item 7).
 *
 * It feeds `Server.request` well-formed, mutated and random requests — bad
 * lengths, truncated bodies, names without their NUL, huge BATCH_FORGET
 * counts, unknown opcodes, node ids never handed out, 64-bit extremes,
 * non-UTF-8 names, NOTIFY_REPLYs nobody asked for, INTERRUPTs for anything —
 * against a raw FileSystem whose methods misbehave on purpose and against the
 * memfs InodeTree, and checks:
 *
 * - nothing throws out of `Server.request`;
 * - every request that expects a reply (the header's unique was read: n ≥ 16,
 *   and the opcode is not FORGET/INTERRUPT/NOTIFY_REPLY/BATCH_FORGET) gets
 *   exactly one reply, every other request none;
 * - every reply is well formed: fuse_out_header.len equals the bytes written,
 *   error is 0 or -1…-511, an error reply is 16 bytes, a success reply has the
 *   size of its opcode's out struct (or at most what the request asked for),
 *   directory listings are whole records, entry node ids are below 2^53;
 * - what the raw filesystem did decides the answer: FuseError(e) → -e, a bad
 *   result or a thrown non-errno value → EIO, a valid result → success;
 * - names reach the filesystem as the exact bytes sent (nameToBytes(name));
 * - memfs (InodeTree) never answers EIO from an unexpected exception (one
 *   caused by a name the kernel never sends — empty, holding "/", longer than
 *   1024 bytes — is counted, not failed);
 * - at the end of each session (every 250,000 cases the three servers are
 *   "unmounted" and replaced), after the kernel (us) released every handle
 *   and forgot every entry it was handed, no lookup count, handle or request
 *   in flight is left (raw fs and InodeTree), and every inode the InodeTree
 *   still holds has a name;
 * - heap growth after GC stays bounded (64 MiB from 10% of the run to its
 *   end, plus 4 KiB per extra memfs inode).
 *
 * Like the kernel under memory pressure, the harness forgets node ids and
 * releases handles it no longer picks from (every 5,000 cases), so what it
 * tracks stays bounded over millions of cases.
 *
 * Everything random comes from one seed (TSFUSE_FUZZ_SEED) and each case's
 * generator from (seed, case index), so a run is reproduced by its seed and
 * case count (TSFUSE_FUZZ_CASES): a failure prints both, with the request in hex.
 * Request bytes are built here from the struct declarations (field names and
 * offsets of src/abi/structs.ts) with plain DataView writes — not with the
 * codec under test — and replies are parsed at fixed linux/fuse.h offsets.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { constants as OSC } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Server } from '../src/api/server.js';
import { FuseError } from '../src/api/errors.js';
import { OPCODES, opcodeRow } from '../src/api/ops.js';
import type { FileSystem } from '../src/api/filesystem.js';
import type { InodeTree } from '../src/api/inode-tree.js';
import { structs as S, type StructDef } from '../src/abi/index.js';
import { nameFromBytes, nameToBytes, nameByteLength, writeName } from '../src/abi/names.js';
import { decodeRequest, ProtocolError } from '../src/abi/request.js';
import { Notifier } from '../src/transport/notify.js';
import { memfs } from '../examples/memfs.js';

const E = OSC.errno as Record<string, number>;
const EIO = E.EIO, ENOENT = E.ENOENT, ERANGE = E.ERANGE, EINTR = E.EINTR;
const TWO32 = 4294967296;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const U64_MAX = (1n << 64n) - 1n;
const OFFSET_MAX = (1n << 63n) - 1n;

// ---- opcode numbers and reply sizes, from linux/fuse.h (written out: not the table under test) ----

export const OP = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10,
  RMDIR: 11, RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20,
  SETXATTR: 21, GETXATTR: 22, LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28,
  RELEASEDIR: 29, FSYNCDIR: 30, GETLK: 31, SETLK: 32, SETLKW: 33, ACCESS: 34, CREATE: 35, INTERRUPT: 36,
  BMAP: 37, DESTROY: 38, IOCTL: 39, POLL: 40, NOTIFY_REPLY: 41, BATCH_FORGET: 42, FALLOCATE: 43,
  READDIRPLUS: 44, RENAME2: 45, LSEEK: 46, COPY_FILE_RANGE: 47, SETUPMAPPING: 48, REMOVEMAPPING: 49,
  SYNCFS: 50, TMPFILE: 51, STATX: 52, COPY_FILE_RANGE_64: 53, CUSE_INIT: 4096,
} as const;
/** Never answered. */
export const NO_REPLY: ReadonlySet<number> = new Set([OP.FORGET, OP.INTERRUPT, OP.NOTIFY_REPLY, OP.BATCH_FORGET]);
/** Success body size of the opcodes with a fixed out struct (fuse_entry_out 128, fuse_attr_out 104,
 * fuse_open_out 16, fuse_write_out 8, fuse_statfs_out 80, fuse_lk_out 24, fuse_bmap_out 8,
 * fuse_poll_out 8, fuse_lseek_out 8, fuse_statx_out 288, fuse_copy_file_range_out 8). */
const FIXED_OUT: ReadonlyMap<number, number> = new Map([
  [OP.LOOKUP, 128], [OP.GETATTR, 104], [OP.SETATTR, 104], [OP.SYMLINK, 128], [OP.MKNOD, 128], [OP.MKDIR, 128],
  [OP.LINK, 128], [OP.UNLINK, 0], [OP.RMDIR, 0], [OP.RENAME, 0], [OP.RENAME2, 0], [OP.OPEN, 16], [OP.OPENDIR, 16],
  [OP.WRITE, 8], [OP.STATFS, 80], [OP.RELEASE, 0], [OP.RELEASEDIR, 0], [OP.FSYNC, 0], [OP.FSYNCDIR, 0],
  [OP.SETXATTR, 0], [OP.REMOVEXATTR, 0], [OP.FLUSH, 0], [OP.SETLK, 0], [OP.SETLKW, 0], [OP.ACCESS, 0],
  [OP.FALLOCATE, 0], [OP.SYNCFS, 0], [OP.DESTROY, 0], [OP.GETLK, 24], [OP.CREATE, 144], [OP.TMPFILE, 144],
  [OP.BMAP, 8], [OP.POLL, 8], [OP.LSEEK, 8], [OP.COPY_FILE_RANGE, 8], [OP.COPY_FILE_RANGE_64, 8], [OP.STATX, 288],
]);
const ENTRY_OPS = new Set<number>([OP.LOOKUP, OP.SYMLINK, OP.MKNOD, OP.MKDIR, OP.LINK]);
const CREATION_OPS = new Set<number>([OP.SYMLINK, OP.MKNOD, OP.MKDIR, OP.CREATE, OP.TMPFILE]);
const UNKNOWN_OPCODES = [0, 7, 19, 54, 55, 63, 64, 100, 1000, 4095, 4097, 65535, 0x7fffffff, 0xffffffff];

// ---- PRNG: xoshiro128** seeded with splitmix32 ----

function mix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number, stream = 0) {
    let s = mix32((seed >>> 0) ^ mix32(stream >>> 0) ^ Math.imul(Math.floor(stream / TWO32), 0x27d4eb2f));
    const next = () => (s = mix32(s));
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d; this.c ^= t; this.d = rotl(this.d, 11);
    return r;
  }
  /** 0 … n-1 */
  int(n: number): number { return n <= 1 ? 0 : Math.floor((this.u32() / TWO32) * n); }
  chance(p: number): boolean { return this.u32() < p * TWO32; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  fill(b: Uint8Array, from = 0, to = b.length): Uint8Array {
    for (let i = from; i < to; i += 4) {
      const r = this.u32();
      b[i] = r; if (i + 1 < to) b[i + 1] = r >>> 8; if (i + 2 < to) b[i + 2] = r >>> 16; if (i + 3 < to) b[i + 3] = r >>> 24;
    }
    return b;
  }
  bytes(n: number): Uint8Array { return this.fill(new Uint8Array(n)); }
}
function rotl(x: number, k: number): number { return (x << k) | (x >>> (32 - k)); }

// ---- values ----

const U32_EXTREMES = [0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const U64_EXTREMES = [
  0n, 1n, 2n, 1n << 31n, (1n << 32n) - 1n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n,
  OFFSET_MAX, 1n << 63n, U64_MAX - 1n, U64_MAX,
];
function u32v(r: Rng): number {
  const k = r.int(10);
  return k < 4 ? r.int(65) : k < 7 ? r.pick(U32_EXTREMES) : r.u32();
}
function u64v(r: Rng): bigint {
  const k = r.int(10);
  return k < 4 ? BigInt(r.int(4097)) : k < 7 ? r.pick(U64_EXTREMES) : r.u64();
}
/** A small valid errno (1…133), for handlers that answer an error. */
const ERRNOS = [E.EPERM, E.ENOENT, E.EIO, E.EACCES, E.EEXIST, E.ENOTDIR, E.EISDIR, E.EINVAL, E.ENOSPC, E.EROFS,
  E.ENAMETOOLONG, E.ENOTEMPTY, E.ENODATA, E.EOPNOTSUPP, E.ESTALE, E.EAGAIN, E.EBADF, E.ERANGE, E.EFBIG, E.EINTR, 511];

// ---- names ----

const ASCII = 'abcdefghijklmnopqrstuvwxyz0123456789._-';
/** Names memfs sees again and again (so creations collide and the tree stays small). */
const POOL: readonly Uint8Array[] = [
  ...'abcdefghijkl'.split('').map((c) => Buffer.from(c)),
  Buffer.from('café'), Buffer.from([0xff]), Buffer.from([0xef, 0xbb, 0xbf, 0x61]), Buffer.from([0x63, 0x61, 0x66, 0xe9]),
];
/** Tricky UTF-8: BOM, a 2/3/4-byte char, an encoded surrogate, overlong '/', a truncated sequence, > U+10FFFF. */
const UTF8_BITS: readonly number[][] = [
  [0xef, 0xbb, 0xbf], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xb2, 0x80],
  [0xc0, 0xaf], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xff], [0xfe], [0x41], [0x2e], [0xc2, 0x80], [0xf0, 0x90, 0x80],
];
export function genName(r: Rng, pooled: boolean): Uint8Array {
  const k = r.int(100);
  if (pooled && k < 65) return r.pick(POOL);
  if (k < 70) {
    const n = 1 + r.int(12);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = ASCII.charCodeAt(r.int(ASCII.length));
    return b;
  }
  if (k < 80) return nonNul(r.bytes(1 + r.int(20)));
  if (k < 88) {
    const parts: number[] = [];
    const n = 1 + r.int(6);
    for (let i = 0; i < n; i++) parts.push(...r.pick(UTF8_BITS));
    return Uint8Array.from(parts);
  }
  if (k < 90) return new Uint8Array(0);
  if (k < 93) return Buffer.from(r.chance(0.5) ? '.' : '..');
  if (k < 97) return new Uint8Array(r.pick([255, 256, 1024, 4095, 4096])).fill(0x61 + r.int(26));
  return nonNul(r.bytes(1 + r.int(300)));
}
function nonNul(b: Uint8Array): Uint8Array {
  for (let i = 0; i < b.length; i++) if (b[i] === 0) b[i] = 1 + (i % 255);
  return b;
}

// ---- little-endian writers ----

function put64(dv: DataView, at: number, v: bigint | number): void {
  if (typeof v === 'number') {
    dv.setUint32(at, v % TWO32, true);
    dv.setUint32(at + 4, Math.floor(v / TWO32), true);
  } else dv.setBigUint64(at, BigInt.asUintN(64, v), true);
}
function get64n(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;
}

// ---- verdicts: what the raw filesystem did decides the answer ----

/** 'ok': must succeed; 'eio': must be -EIO; 'error': any error; number: exactly that errno; 'any'. */
export type Verdict = 'ok' | 'eio' | 'error' | 'any' | number;

// ---- records ----

interface Target {
  name: string;
  kind: 'raw' | 'memfs';
  server: Server;
  tree?: InodeTree;
  raw?: RawFs;
  setxattrExt: boolean;
  /** Node ids handed out (delivered entry replies) → times. */
  nodes: Map<number, number>;
  nodeList: number[];
  /** File handles handed out (delivered OPEN/OPENDIR/CREATE/TMPFILE) → each time: node id and kind. */
  fhs: Map<number, { nodeid: number; dir: boolean }[]>;
  fhList: number[];
  /** Successful creations (memfs: bound for the inode count). */
  creations: number;
  logs: Map<string, number>;
  lastLog: string;
}

interface Rec {
  seq: number;
  lo: number;
  hi: number;
  target: Target;
  op: number;
  n: number;
  expect: boolean;
  replies: number;
  verdict: Verdict | undefined;
  mutated: string;
  /** A failure was recorded for it already. */
  failed?: boolean;
  /** The request (first 8 KiB): for the report and for reply checks. */
  req: Uint8Array;
}

export interface Failure {
  kind: string;
  seed: number;
  caseIndex: number;
  target: string;
  opcode: string;
  detail: string;
  hex: string;
}

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** Include the hostile handler behaviours (thenables, revoked proxies). Default true. */
  hostile?: boolean;
  /** Heap growth bound in bytes (10% → end). Default 64 MiB. */
  heapBound?: number;
  /** A case that does not return within this long is a hang: reported, then the process is killed. Default 120 s. */
  watchdogMs?: number;
  progress?: (line: string) => void;
}

export interface FuzzTotals {
  seed: number;
  cases: number;
  requestsByTarget: Record<string, number>;
  repliesChecked: number;
  errorReplies: number;
  successReplies: number;
  noReplyRequests: number;
  mutated: number;
  opcodesCovered: number;
  opcodesInTable: number;
  rawFsCalls: number;
  asyncResults: number;
  failures: number;
  failuresByKind: Record<string, number>;
  /** Distinct failures (kind: opcode: message with numbers blanked) → count. */
  failureSignatures: Record<string, number>;
  examples: Failure[];
  heap: { at10: number; end: number; growth: number; bound: number; rss: number; external: number };
  /** The last session's memfs at its end; creations and orphans summed over sessions, maxInodes their largest tree. */
  memfs: { inodes: number; creations: number; lookupsLeft: number; handlesLeft: number; reachable: number; orphans: number; eioAfterImpossibleNames: number; maxInodes?: number };
  /** Mounts (sessions) run: every 250,000 cases the targets are unmounted, checked and replaced. */
  sessions: number;
  raw: { lookupsLeft: number; handlesLeft: number };
  logLines: Record<string, number>;
  durationMs: number;
}

const CH = {} as any;
const OUT_MAX = 1024 * 1024 + 4096; // ServerOptions.maxReply default
const REQ_BUF = 2 * 1024 * 1024;

// ---- the raw filesystem: valid results mostly, bad ones on purpose ----

type Cur = { rec: Rec; rng: Rng; method: string | undefined; names: Uint8Array[] | null; called: boolean };

class RawFs {
  calls = 0;
  asyncResults = 0;
  pending = 0;
  private nextId = 2;
  private nextFh = 1;
  private ids: number[] = [];
  /** Lookups this filesystem handed out minus FORGETs received, by node id (as a filesystem
   * counts them: never below 0; an id at 0 is dropped). */
  readonly lookups = new Map<number, number>();
  /** Handles opened minus released (likewise). */
  readonly handles = new Map<number, number>();
  constructor(private readonly fz: Fuzzer, readonly full: boolean) {}

  fs(): FileSystem {
    const all: FileSystem = {
      lookup: (c, p, name) => this.entryOp('lookup', [name]),
      forget: (id, n) => bump(this.lookups, id, -n),
      getattr: () => this.attrOp('getattr'),
      setattr: () => this.attrOp('setattr'),
      readlink: () => this.behave('readlink', (r) => (r.chance(0.5) ? asciiString(r, r.int(200)) : r.bytes(r.int(300))),
        [undefined, 42, {}, '\ud800x']),
      symlink: (c, p, name, target) => this.entryOp('symlink', [name, target]),
      mknod: (c, p, name) => this.entryOp('mknod', [name]),
      mkdir: (c, p, name) => this.entryOp('mkdir', [name]),
      unlink: (c, p, name) => this.voidOp('unlink', [name]),
      rmdir: (c, p, name) => this.voidOp('rmdir', [name]),
      rename: (c, p, name, np, newName) => this.voidOp('rename', [name, newName]),
      link: (c, id, np, name) => this.entryOp('link', [name]),
      open: () => this.openOp('open'),
      read: (c, id, fh, off, size) => this.behave('read', (r) => r.bytes(r.chance(0.2) ? Math.min(size, 4096) + r.int(64) : r.int(Math.min(size, 4096) + 1)),
        ['string', undefined, 42, [1, 2, 3], null]),
      write: (c, id, fh, off, data) => this.behave('write', (r) => (r.chance(0.5) ? data.length : r.chance(0.5) ? r.int(data.length + 1) : BigInt(data.length)),
        [NaN, -1, 1.5, data.length + 1, 2 ** 53, 'x', undefined, -1n]),
      statfs: () => this.behave('statfs', (r) => (r.chance(0.2) ? undefined : {
        blocks: r.chance(0.3) ? U64_MAX : r.int(1 << 20), bfree: r.u64(), bavail: 0, files: r.int(100), ffree: r.int(100),
        bsize: r.pick([512, 4096, 0xffffffff]), namelen: 255, frsize: r.chance(0.5) ? undefined : 4096,
      }), [{ blocks: -1 }, { bsize: 2 ** 32 }, { blocks: 1.5 }, { files: U64_MAX + 1n }]),
      release: () => this.voidOp('release', []),
      fsync: () => this.voidOp('fsync', []),
      setxattr: (c, id, name) => this.voidOp('setxattr', [name]),
      getxattr: (c, id, name) => this.xattrOp('getxattr', [name]),
      listxattr: () => this.xattrOp('listxattr', []),
      removexattr: (c, id, name) => this.voidOp('removexattr', [name]),
      flush: () => this.voidOp('flush', []),
      opendir: () => this.openOp('opendir'),
      readdir: (c, id, fh, off, out) => this.direntOp('readdir', out, false),
      readdirplus: (c, id, fh, off, out) => this.direntOp('readdirplus', out, true),
      releasedir: () => this.voidOp('releasedir', []),
      fsyncdir: () => this.voidOp('fsyncdir', []),
      getlk: (c, id, fh, owner, lk) => this.behave('getlk', (r) => (r.chance(0.5) ? { ...lk, type: 2 }
        : { start: 0n, end: r.chance(0.5) ? OFFSET_MAX : BigInt(r.int(1000)), type: r.int(3), pid: r.u32() }),
      [undefined, { start: 0, end: 1 }, { start: 5n, end: 1n, type: 0, pid: 0 }, { start: 0n, end: 1n << 63n, type: 0, pid: 0 },
        { start: 0n, end: 1n, type: -1, pid: 0 }], [], () => {}, (v: any) => (v.start < 0n || v.end < v.start || v.end > OFFSET_MAX ? 'eio' : 'ok')),
      setlk: () => this.voidOp('setlk', []),
      access: () => this.voidOp('access', []),
      create: (c, p, name) => this.createOp('create', [name]),
      bmap: () => this.behave('bmap', (r) => (r.chance(0.5) ? r.u64() : r.int(1000)), [-1, U64_MAX + 1n, NaN, 'x']),
      ioctl: (c, id, fh, cmd, arg, inData, outSize) => this.behave('ioctl', (r) => {
        const n = Math.min(outSize, r.chance(0.8) ? r.int(64) : r.int(70000));
        return r.chance(0.3) ? { result: r.int(10) - 5 } : { result: r.u32() | 0, data: r.bytes(n) };
      }, [{ result: NaN }, { result: 0, data: 'x' }, { result: 2 ** 31 }, undefined]),
      poll: () => this.behave('poll', (r) => r.u32(), [-1, NaN, 2 ** 32, 'x']),
      fallocate: () => this.voidOp('fallocate', []),
      lseek: () => this.behave('lseek', (r) => (r.chance(0.5) ? OFFSET_MAX : BigInt(r.int(1 << 20))), [-1, 1n << 63n, NaN, undefined]),
      copyFileRange: (c, a, b, d, e, f, g, len) => this.behave('copyFileRange', (r) => {
        const cap = this.fz.cur?.rec.op === OP.COPY_FILE_RANGE && len > 0xffffffffn ? 0xffffffffn : len;
        return r.chance(0.5) ? cap : cap > 0n ? r.u64() % cap : 0n;
      }, [-1, len + 1n, NaN, 'x']),
      syncfs: () => this.voidOp('syncfs', []),
      tmpfile: () => this.createOp('tmpfile', []),
      statx: () => this.behave('statx', (r) => ({
        statx: {
          mask: r.u32(), mode: r.int(0x10000), ino: r.chance(0.3) ? U64_MAX : r.int(1000), size: r.u64(),
          atime: r.int(2 ** 40), btime: -r.int(2 ** 40), nlink: r.u32(),
        },
        timeout: r.pick([undefined, 0, 1.5, 1e300, Infinity, NaN]),
      }), [undefined, { statx: null }, { statx: { mask: 0, mode: 0x10000, ino: 1 } }, { statx: { mask: -1, mode: 0, ino: 1 } }]),
      destroy: () => this.voidOp('destroy', []),
    };
    if (this.full) return all;
    const sparse: FileSystem = {};
    for (const k of ['lookup', 'forget', 'getattr', 'open', 'read', 'write', 'readdir', 'opendir', 'mkdir', 'unlink', 'getxattr', 'statx'] as const) {
      (sparse as any)[k] = all[k];
    }
    return sparse;
  }

  private rng(): Rng { return this.fz.cur?.rng ?? this.fz.fsRng; }

  /** The primary call of the current request: its verdict is checked against the reply. */
  private primary(method: string, names: string[]): Cur | undefined {
    this.calls++;
    const c = this.fz.cur;
    if (!c || c.called || c.method !== method) return undefined;
    c.called = true;
    if (c.names) {
      const got = names.map((n) => Buffer.from(nameToBytes(n)).toString('hex'));
      const want = c.names.map((b) => Buffer.from(b).toString('hex'));
      for (let i = 0; i < want.length && i < got.length; i++) {
        if (got[i] !== want[i]) this.fz.fail('name-mismatch', c.rec, `${method}: name ${i + 1} sent as bytes ${want[i]}, the filesystem got ${JSON.stringify(names[i])} (bytes ${got[i]})`);
      }
    }
    return c;
  }

  /**
   * Runs one handler: a valid result (sync or later), a FuseError, an invalid
   * errno, a thrown non-Error, a bad result, or (hostile) a misbehaving thenable.
   */
  private behave(method: string, valid: (r: Rng) => unknown, bad: readonly unknown[] | null, names: string[] = [],
    onValue: (v: unknown) => void = () => {}, validVerdict: (v: unknown) => Verdict = () => 'ok'): any {
    const c = this.primary(method, names);
    const r = this.rng();
    const set = (v: Verdict) => { if (c) c.rec.verdict = v; };
    const roll = r.int(1000);
    const async = r.chance(0.3);
    if (roll < 600) {
      const v = valid(r);
      set(validVerdict(v));
      onValue(v);
      return async ? this.later(r, v) : v;
    }
    if (roll < 720) {
      const e = r.pick(ERRNOS);
      set(e);
      const code = errnoCode(e);
      const err = new FuseError(code && r.chance(0.5) ? code : e);
      if (async) return this.laterReject(r, err);
      throw err;
    }
    if (roll < 790) {
      const [thrown, verdict] = r.pick(NON_ERRORS)();
      set(verdict);
      if (async) return this.laterReject(r, thrown);
      throw thrown;
    }
    if (roll < 800) {
      set('eio');
      return this.laterReject(r, undefined);
    }
    if (roll < 815) {
      // An errno the kernel refuses (≤ -512 or not an integer): the reply must still be a valid error.
      const n = r.pick([512, 600, 4095, 2 ** 31, 2 ** 40, NaN, 1.5, -600]);
      set('error');
      const err = new FuseError(n);
      if (async) return this.laterReject(r, err);
      throw err;
    }
    if (roll < 980) {
      if (!bad) {
        set('any');
        const v = r.pick(JUNK);
        return async ? this.later(r, v) : v;
      }
      const v = r.pick(bad);
      set('eio');
      onValue(v);
      return async ? this.later(r, v) : v;
    }
    if (!this.fz.hostile) {
      const v = valid(r);
      set(validVerdict(v));
      onValue(v);
      return v;
    }
    // Hostile: still exactly one well-formed reply, nothing thrown out of request().
    set('any');
    const v = valid(r);
    const h = r.pick(HOSTILE);
    if (h.delivers) onValue(v);
    return h.fn(v);
  }

  private later(r: Rng, v: unknown): Promise<unknown> {
    this.asyncResults++;
    this.pending++;
    const hops = r.int(3);
    return new Promise((resolve) => {
      const done = () => { this.pending--; resolve(v); };
      if (hops === 0) queueMicrotask(done);
      else if (hops === 1) setImmediate(done);
      else setImmediate(() => setImmediate(done));
    });
  }
  private laterReject(r: Rng, e: unknown): Promise<unknown> {
    this.asyncResults++;
    this.pending++;
    const hops = r.int(2);
    return new Promise((_resolve, reject) => {
      const done = () => { this.pending--; reject(e); };
      if (hops === 0) queueMicrotask(done);
      else setImmediate(done);
    });
  }

  private newId(r: Rng): number {
    const k = r.int(100);
    if (k < 10 && this.ids.length) return r.pick(this.ids);
    if (k < 12) return MAX_SAFE - r.int(1000);
    const id = this.nextId++;
    if (this.ids.length < 1000) this.ids.push(id); else this.ids[r.int(1000)] = id;
    return id;
  }
  private countEntry(e: any): void {
    const id = e?.nodeid;
    if (Number.isSafeInteger(id) && id !== 0) bump(this.lookups, id, 1);
  }
  private countHandle(o: any): void {
    const fh = o === null || o === undefined ? 0 : (o as { fh?: unknown }).fh ?? 0;
    if (Number.isSafeInteger(fh)) bump(this.handles, fh as number, 1);
  }

  private attr(r: Rng): Record<string, unknown> {
    const time = (): unknown => {
      const k = r.int(6);
      if (k === 0) return undefined;
      if (k === 1) return [r.int(2 ** 31) - 2 ** 30, r.int(1e9)];
      if (k === 2) return [r.chance(0.5) ? MAX_SAFE : -MAX_SAFE, 999_999_999];
      if (k === 3) return r.chance(0.5) ? Infinity : NaN;
      return (r.int(2 ** 31) - 2 ** 30) * 1000 + r.int(1000) / 7;
    };
    return {
      ino: r.chance(0.2) ? r.pick([U64_MAX, 1n << 63n, 1n << 53n]) : r.int(1 << 20),
      mode: r.chance(0.8) ? r.pick([0o100644, 0o40755, 0o120777, 0o10644, 0o20644]) : r.u32(),
      size: r.chance(0.3) ? r.pick([U64_MAX, OFFSET_MAX, 0n]) : r.int(1 << 20),
      blocks: r.chance(0.1) ? U64_MAX : undefined,
      nlink: r.chance(0.5) ? undefined : r.u32(),
      uid: r.u32(), gid: r.u32(), rdev: r.chance(0.9) ? 0 : r.u32(), blksize: 4096,
      atime: time(), mtime: time(), ctime: time(),
      flags: r.chance(0.9) ? 0 : r.u32(),
    };
  }
  private entry(r: Rng, negativeOk: boolean): Record<string, unknown> {
    if (negativeOk && r.chance(0.1)) return { nodeid: 0, entryTimeout: r.pick([0, 1000, 1e300, NaN]) };
    return {
      nodeid: this.newId(r), attr: this.attr(r),
      generation: r.chance(0.2) ? r.pick([U64_MAX, 1n << 63n, 7]) : undefined,
      entryTimeout: r.chance(0.2) ? r.pick([0, 0.5, 1e300, Infinity, NaN, 2 ** 53]) : undefined,
      attrTimeout: r.chance(0.2) ? r.pick([0, 999.9999999, 1e15]) : undefined,
    };
  }
  private badEntries(r: Rng): unknown[] {
    const attr = this.attr(r);
    return [undefined, null, 'str', 42, { nodeid: 2 ** 60, attr }, { nodeid: -1, attr }, { nodeid: 1.5, attr },
      { nodeid: 'x', attr }, { nodeid: this.newId(r) }, { nodeid: this.newId(r), attr: { ino: U64_MAX + 1n, mode: 0 } },
      { nodeid: this.newId(r), attr: { ino: 1, mode: -1 } }, { nodeid: this.newId(r), attr, generation: -1 }, { nodeid: NaN, attr }];
  }

  private entryOp(method: string, names: string[]): any {
    const r = this.rng();
    return this.behave(method, (rr) => this.entry(rr, method === 'lookup'), this.badEntries(r), names, (v) => this.countEntry(v));
  }
  private createOp(method: string, names: string[]): any {
    const r = this.rng();
    const attr = this.attr(r);
    const bad = [undefined, { entry: undefined }, { entry: { nodeid: 2 ** 60, attr } }, { entry: { nodeid: this.newId(r), attr }, fh: -1 },
      { entry: { nodeid: this.newId(r), attr }, fh: 2 ** 60 }, 'x'];
    return this.behave(method, (rr) => ({ entry: this.entry(rr, false), fh: this.nextFh++, directIo: rr.chance(0.5), keepCache: rr.chance(0.5) }),
      bad, names, (v: any) => { this.countEntry(v?.entry); if (v && typeof v === 'object' && v.entry?.nodeid) this.countHandle(v); });
  }
  private openOp(method: string): any {
    return this.behave(method, (rr) => (rr.chance(0.1) ? undefined : { fh: rr.chance(0.05) ? MAX_SAFE : this.nextFh++, cacheDir: rr.chance(0.5), backingId: rr.chance(0.05) ? rr.u32() | 0 : undefined }),
      [{ fh: -1 }, { fh: 2 ** 60 }, { fh: 1.5 }, { backingId: 2 ** 40 }], [], (v) => this.countHandle(v));
  }
  private attrOp(method: string): any {
    return this.behave(method, (r) => ({ attr: this.attr(r), timeout: r.chance(0.2) ? r.pick([0, 1e300, NaN, 0.001]) : undefined }),
      [undefined, null, { attr: undefined }, { attr: 'x' }, { attr: { ino: -1, mode: 0 } }, { attr: { ino: 1, mode: 2 ** 32 } },
        { attr: { ino: 1, mode: 0, size: -1n } }, { attr: { ino: 1, mode: 0, nlink: NaN } }, { attr: { ino: 1, mode: 0, atime: [0, -1] } }]);
  }
  private voidOp(method: string, names: string[]): any {
    return this.behave(method, () => undefined, null, names);
  }
  private xattrOp(method: string, names: string[]): any {
    const c = this.fz.cur;
    const size = c && c.rec.n >= 44 ? new DataView(c.rec.req.buffer, c.rec.req.byteOffset).getUint32(40, true) : 0;
    const list = method === 'listxattr';
    return this.behave(method, (r) => (list
      ? Array.from({ length: r.int(5) }, () => asciiString(r, 1 + r.int(20)))
      : r.bytes(r.chance(0.7) ? r.int(64) : r.int(70000))),
    list ? [undefined, 'str', {}, ['a\ud800']] : ['str', undefined, 42], names, () => {}, (v) => {
      const len = list ? (v as string[]).reduce((a, s) => a + Buffer.byteLength(s) + 1, 0) : (v as Uint8Array).length;
      return size !== 0 && len > size ? ERANGE : 'ok';
    });
  }
  private direntOp(method: string, out: any, plus: boolean): any {
    const r = this.rng();
    const c = this.primary(method, []);
    // One bad record (bad name/ino/entry) makes add throw: that is an EIO.
    const fill = (rr: Rng): void => {
      const n = rr.int(8);
      for (let i = 0; i < n; i++) {
        const bad = rr.chance(0.03);
        let name: string | Uint8Array = i === 0 ? '.' : i === 1 ? '..' : asciiString(rr, 1 + rr.int(30));
        if (rr.chance(0.2)) name = nameFromBytes(genName(rr, false));
        if (bad) name = rr.pick(['', 'a/b', 'x\u0000y', 'y'.repeat(256)]);
        if (rr.chance(0.1) && typeof name === 'string' && !bad) name = nameToBytes(name);
        const nb = typeof name === 'string' ? safeNameBytes(name) : name;
        const validName = nb !== undefined && nb.length >= 1 && nb.length <= 255 && !nb.includes(0x2f) && !nb.includes(0);
        let ok: boolean;
        try {
          if (plus) {
            const e = rr.chance(0.05) ? { nodeid: 2 ** 60, attr: {} } : rr.chance(0.3) ? { nodeid: 0, attr: { ino: 1, mode: 0o40755 } } : this.entry(rr, false);
            const dot = nb !== undefined && ((nb.length === 1 && nb[0] === 0x2e) || (nb.length === 2 && nb[0] === 0x2e && nb[1] === 0x2e));
            ok = out.add(name, e, i + 1);
            if (ok && !dot) this.countEntry(e);
          } else {
            ok = out.add(name, rr.chance(0.1) ? U64_MAX : rr.int(1000), rr.int(16), rr.chance(0.05) ? U64_MAX : i + 1);
          }
        } catch (e) {
          if (c) c.rec.verdict = 'eio';
          throw e;
        }
        if (!validName && c) this.fz.fail('dirent-accepted', c.rec, `${method}: add accepted an invalid name ${JSON.stringify(String(name))}`);
        if (!ok) break;
      }
    };
    const roll = r.int(100);
    if (roll < 70) {
      if (c) c.rec.verdict = 'ok';
      fill(r);
      return undefined;
    }
    if (roll < 85) {
      // Entries added after an await.
      if (c) c.rec.verdict = 'ok';
      this.pending++;
      this.asyncResults++;
      return new Promise<void>((resolve, reject) => setImmediate(() => {
        this.pending--;
        try { fill(r); resolve(); } catch (e) { reject(e); }
      }));
    }
    if (roll < 95) {
      // Fails half-way: the entries added so far are not sent (their lookups are undone).
      fill(r);
      const e = r.pick(ERRNOS);
      if (c) c.rec.verdict = e;
      throw new FuseError(e);
    }
    if (c) c.rec.verdict = 'any';
    return r.pick(JUNK);
  }

  release(fh: number): void {
    bump(this.handles, fh, -1);
  }
}

function bump(m: Map<number, number>, k: number, d: number): void {
  const v = Math.max(0, (m.get(k) ?? 0) + d);
  if (v) m.set(k, v); else m.delete(k);
}
function safeNameBytes(s: string): Uint8Array | undefined {
  try { return nameToBytes(s); } catch { return undefined; }
}
function asciiString(r: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ASCII[r.int(ASCII.length)];
  return s;
}
function errnoCode(n: number): string | undefined {
  for (const [k, v] of Object.entries(E)) if (v === n) return k;
  return undefined;
}

/** Thrown values that are not FuseErrors, with the errno the kernel must get. */
const NON_ERRORS: readonly (() => [unknown, Verdict])[] = [
  () => ['boom', 'eio'], () => [42, 'eio'], () => [null, 'eio'], () => [undefined, 'eio'],
  () => [{ code: 'ENOENT' }, ENOENT], () => [{ code: 'EWHATEVER', errno: -22 }, 22], () => [{ code: 'EWHATEVER', errno: -3008 }, 'eio'],
  () => [{ code: 'EWHATEVER', errno: -512 }, 'eio'], () => [{ name: 'AbortError' }, EINTR],
  () => [Object.assign(new Error('fs error'), { code: 'EACCES' }), E.EACCES], () => [new Error('plain'), 'eio'],
  () => [new TypeError('type'), 'eio'], () => [Symbol('s'), 'eio'], () => [7n, 'eio'], () => [{ code: 42 }, 'eio'],
];
/** Junk results of methods whose result is not encoded (or is lenient). */
const JUNK: readonly unknown[] = [undefined, null, 'str', 42, NaN, {}, [], 5n, () => 1];

/** Misbehaving results: thenables that are not Promises, values that throw when looked at. */
const HOSTILE: readonly { delivers: boolean; fn: (v: unknown) => unknown }[] = [
  // A minimal thenable: then() returns undefined.
  { delivers: true, fn: (v) => ({ then(res: (x: unknown) => void) { res(v); } }) },
  // Settles twice.
  { delivers: true, fn: (v) => ({ then(res: (x: unknown) => void) { res(v); res(v); return Promise.resolve(); } }) },
  // Resolves then rejects.
  { delivers: true, fn: (v) => ({ then(res: (x: unknown) => void, rej: (e: unknown) => void) { res(v); rej(new FuseError('EIO')); return Promise.resolve(); } }) },
  // then() throws.
  { delivers: false, fn: () => ({ then() { throw new FuseError('EAGAIN'); } }) },
  // A thrown value that throws when inspected (revoked proxy).
  { delivers: false, fn: () => { const p = Proxy.revocable({}, {}); p.revoke(); throw p.proxy; } },
  // A thrown object whose `code` getter throws.
  { delivers: false, fn: () => { throw { get code(): string { throw new Error('code getter'); } }; } },
];

// ---- a watchdog for requests that never return ----

/**
 * A handler stuck in a synchronous loop stops the whole loop (and this fuzzer) forever. A
 * worker watches a heartbeat the main thread bumps for every case; after `limitMs` without
 * one it pauses the main thread through the inspector, prints the case, its request and the
 * stuck stack, and kills the process (the test runner then counts the file as failed).
 */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const inspector = require('node:inspector');
const fs = require('node:fs');
const beat = new Int32Array(workerData.sab, 0, 4); // heartbeat, case index, request length, stop
const bytes = new Uint8Array(workerData.sab, 16);
let last = -1, since = Date.now();
const timer = setInterval(() => {
  if (Atomics.load(beat, 3)) return clearInterval(timer);
  const b = Atomics.load(beat, 0);
  if (b !== last) { last = b; since = Date.now(); return; }
  if (Date.now() - since < workerData.limitMs) return;
  clearInterval(timer);
  const n = Atomics.load(beat, 2);
  let out = '\\nfuzz watchdog: no progress for ' + workerData.limitMs / 1000 + ' s at case ' + Atomics.load(beat, 1) +
    ' (seed ' + workerData.seed + '); its request: ' + Buffer.from(bytes.subarray(0, Math.min(n, bytes.length))).toString('hex') + '\\n';
  const die = (more) => { fs.writeSync(2, out + more + '\\n'); process.kill(process.pid, 'SIGKILL'); };
  try {
    const s = new inspector.Session();
    s.connectToMainThread();
    const urls = new Map();
    s.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
    s.on('Debugger.paused', (m) => die('stuck in:\\n' + m.params.callFrames.slice(0, 25)
      .map((f) => '    at ' + (f.functionName || '<anonymous>') + ' ' + (f.url || urls.get(f.location.scriptId) || '?') + ':' + (f.location.lineNumber + 1)).join('\\n')));
    s.post('Debugger.enable', () => s.post('Debugger.pause'));
    setTimeout(() => die('(no stack: the main thread did not pause)'), 5000);
  } catch (e) { die('(no stack: ' + e.message + ')'); }
}, 1000);
`;

// ---- the fuzzer ----

export class Fuzzer {
  readonly seed: number;
  readonly cases: number;
  readonly hostile: boolean;
  readonly fsRng: Rng;
  private readonly sinkRng: Rng;
  cur: Cur | undefined;
  private readonly buf = Buffer.alloc(REQ_BUF);
  private readonly view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private readonly records = new Map<number, Rec>();
  private readonly targets: Target[] = [];
  private nextUnique = 1;
  private caseIndex = -1;
  private readonly failures: Failure[] = [];
  private readonly failureCounts = new Map<string, number>();
  private readonly failureSigs = new Map<string, number>();
  private failureTotal = 0;
  private readonly opsSeen = new Set<number>();
  private readonly allOpcodes: number[];
  private readonly t: Record<string, number> = {
    repliesChecked: 0, errorReplies: 0, successReplies: 0, noReplyRequests: 0, mutated: 0, memfsImpossible: 0,
  };
  private readonly perTarget: Record<string, number> = {};
  private readonly gc: () => void;
  private readonly heapBound: number;
  private readonly watchdogMs: number;
  private heapAt10 = 0;
  private sessions = 0;
  private rawCalls = 0;
  private rawAsync = 0;
  private orphans = 0;
  private creations = 0;
  private maxInodes = 0;
  private inodesAt10 = 0;
  private readonly progress: (line: string) => void;

  constructor(opts: FuzzOptions) {
    this.seed = opts.seed >>> 0;
    this.cases = opts.cases;
    this.hostile = opts.hostile ?? true;
    this.heapBound = opts.heapBound ?? 64 * 1024 * 1024;
    this.watchdogMs = opts.watchdogMs ?? 120_000;
    this.progress = opts.progress ?? (() => {});
    this.fsRng = new Rng(this.seed, 0xf5f5f5f5);
    this.sinkRng = new Rng(this.seed, 0x5157a11);
    this.allOpcodes = [...OPCODES.keys()].sort((a, b) => a - b);
    v8.setFlagsFromString('--expose-gc');
    this.gc = vm.runInNewContext('gc') as () => void;
    this.newSession();
  }

  // ---- targets ----

  private baseTarget(name: string, kind: 'raw' | 'memfs', server: Server, setxattrExt: boolean): Target {
    const t: Target = {
      name, kind, server, setxattrExt, nodes: new Map(), nodeList: [], fhs: new Map(), fhList: [], creations: 0,
      logs: new Map(), lastLog: '',
    };
    const notifier = new Notifier(() => undefined, (l) => this.onLog(t, l));
    server.sink = {
      write: (_ch, bytes, len) => this.onReply(t, bytes.subarray(0, len), len),
      writev: (_ch, chunks) => {
        let total = 0;
        for (const c of chunks) total += c.length;
        return this.onReply(t, Buffer.concat(chunks, total), total);
      },
      notifier,
    };
    if (setxattrExt) {
      // What INIT would have agreed: SETXATTR_EXT (fuse_setxattr_in is 16 bytes).
      server.ready({ minor: 45, offered: 2 ** 29, flags: 2 ** 29, maxWrite: 1 << 20, maxReadahead: 1 << 20, maxPages: 256 });
    }
    this.perTarget[name] ??= 0;
    return t;
  }
  private makeRaw(name: string, full: boolean, ext: boolean): Target {
    const raw = new RawFs(this, full);
    const fs = raw.fs();
    if (fs.release) {
      const rel = fs.release;
      fs.release = (c, id, fh, ...rest) => { raw.release(fh); return rel(c, id, fh, ...rest); };
    }
    if (fs.releasedir) {
      const rel = fs.releasedir;
      fs.releasedir = (c, id, fh, ...rest) => { raw.release(fh); return rel(c, id, fh, ...rest); };
    }
    let t: Target;
    const server = new Server(fs, { log: (l) => this.onLog(t, l) });
    t = this.baseTarget(name, 'raw', server, ext);
    t.raw = raw;
    return t;
  }
  private makeMemfs(ext: boolean): Target {
    const tree = memfs();
    let t: Target;
    const server = new Server(tree, { log: (l) => this.onLog(t, l) });
    t = this.baseTarget('memfs', 'memfs', server, ext);
    t.tree = tree;
    return t;
  }

  private onLog(t: Target, line: string): void {
    const key = line.startsWith('malformed request') ? 'malformed request'
      : /→ EIO$/.test(line) ? 'unexpected exception → EIO'
        : /^[A-Z0-9_]+: reply failed: /.test(line) ? 'reply failed'
          : line.includes('writing the reply failed') ? 'writing the reply failed'
            : line.includes('NOTIFY_REPLY for unknown') ? 'NOTIFY_REPLY for unknown retrieve'
              : line.replace(/[0-9]+/g, 'N').slice(0, 60);
    t.logs.set(key, (t.logs.get(key) ?? 0) + 1);
    t.lastLog = line;
    // A throw inside the asynchronous reply path (the request is then left unanswered).
    if (key === 'reply failed') this.fail('async-throw', this.cur?.rec, `${t.name}: ${line.slice(0, 600)}`, t);
    // memfs handlers throw FuseErrors only: anything else is a bug in the InodeTree path (or memfs)
    // — unless a request the kernel never sends caused it (see kernelImpossibleName).
    if (t.kind === 'memfs' && key === 'unexpected exception → EIO') {
      if (kernelImpossibleName(line)) this.t.memfsImpossible++;
      else this.fail('memfs-eio', this.cur?.rec, line.slice(0, 900), t);
    }
  }

  // ---- failures ----

  fail(kind: string, rec: Rec | undefined, detail: string, t?: Target, what?: string): void {
    this.failureTotal++;
    this.failureCounts.set(kind, (this.failureCounts.get(kind) ?? 0) + 1);
    // Examples: the first two of each distinct failure (kind + message with names, hex and numbers blanked).
    const first = what ?? detail.split('\n')[0].replace(/^[a-z-]+: /, '').replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
      .replace(/\b[0-9a-f]{8,}\b/g, 'H').replace(/[0-9]+/g, 'N');
    const sig = `${kind}: ${rec?.failed && kind === 'no-reply' ? 'after an earlier failure of the same request' : first.slice(0, 140)}`;
    if (rec) rec.failed = true;
    const n = (this.failureSigs.get(sig) ?? 0) + 1;
    this.failureSigs.set(sig, n);
    if (n > 2 || this.failures.length >= 80) return;
    this.failures.push({
      kind, seed: this.seed, caseIndex: rec ? rec.seq : this.caseIndex, target: rec?.target.name ?? t?.name ?? '-',
      opcode: rec ? opName(rec.op) : '-', detail: detail + (rec?.mutated ? ` [mutation: ${rec.mutated}]` : ''),
      hex: rec ? hexOf(rec.req, rec.n) : '',
    });
  }

  // ---- replies ----

  private onReply(t: Target, b: Uint8Array, total: number): number {
    this.t.repliesChecked++;
    if (b.length < 16) {
      this.fail('malformed-reply', undefined, `${t.name}: a ${b.length}-byte reply (shorter than fuse_out_header)`, t);
      return b.length;
    }
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const len = dv.getUint32(0, true);
    const error = dv.getInt32(4, true);
    const lo = dv.getUint32(8, true);
    const hi = dv.getUint32(12, true);
    const rec = this.records.get(lo);
    if (!rec || rec.hi !== hi || rec.target !== t) {
      this.fail('unexpected-reply', undefined, `${t.name}: reply to unique ${hi}:${lo} that no request awaits: ${hexOf(b, 64)}`, t);
      return total;
    }
    rec.replies++;
    if (!rec.expect) this.fail('reply-to-no-reply', rec, `a reply (${hexOf(b, 32)}) to a request that must stay unanswered`);
    if (rec.replies > 1) {
      this.fail('double-reply', rec, `${opName(rec.op)}: reply #${rec.replies} (${error ? `error ${error}` : `success, ${total} bytes`}): ${hexOf(b, 32)}`,
        t, `a second reply (${error ? 'an error' : 'a success'})`);
    }
    if (len !== total) this.fail('malformed-reply', rec, `fuse_out_header.len ${len}, ${total} bytes written`);
    if (error > 0 || error < -511) this.fail('malformed-reply', rec, `error ${error} is not 0 or -1…-511 (the kernel refuses the reply: the caller would hang)`);
    if (error !== 0) {
      this.t.errorReplies++;
      if (total !== 16) this.fail('malformed-reply', rec, `error reply of ${total} bytes`);
      const v = rec.verdict;
      if (v === 'ok') this.fail('verdict', rec, `the filesystem returned a valid result, the reply is error ${error}`);
      else if (v === 'eio' && error !== -EIO) this.fail('verdict', rec, `expected -EIO (bad result), got ${error}`);
      else if (typeof v === 'number' && error !== -v) this.fail('verdict', rec, `the filesystem threw errno ${v}, the reply is ${error}`);
      return total;
    }
    this.t.successReplies++;
    const v = rec.verdict;
    if (v === 'eio' || v === 'error' || typeof v === 'number') this.fail('verdict', rec, `expected an error (${v}), got a success reply of ${total} bytes`);
    const body = b.subarray(16);
    if (CREATION_OPS.has(rec.op)) t.creations++;
    const bad = this.checkBody(rec, body);
    if (bad) this.fail('malformed-reply', rec, bad);
    // Sometimes the write fails as when the request was interrupted (ENOENT) or the fd broke (throw).
    const k = this.sinkRng.int(1000);
    if (k < 30) return -ENOENT;
    if (k < 35) throw new Error('sink: EBADF (fuzz)');
    if (!bad) this.track(t, rec, body);
    return total;
  }

  /** Shape of a success body, for the request that asked. */
  private checkBody(rec: Rec, body: Uint8Array): string | undefined {
    const op = rec.op;
    const q = new DataView(rec.req.buffer, rec.req.byteOffset, rec.req.length);
    const bd = new DataView(body.buffer, body.byteOffset, body.length);
    const fixed = FIXED_OUT.get(op);
    if (fixed !== undefined) {
      if (body.length !== fixed) return `success body of ${body.length} bytes, ${opName(op)} replies ${fixed}`;
      if (ENTRY_OPS.has(op) || op === OP.CREATE || op === OP.TMPFILE) return checkEntry(bd, 0);
      if (op === OP.GETATTR || op === OP.SETATTR || op === OP.STATX) {
        if (bd.getUint32(8, true) > 999_999_999) return `attr_valid_nsec ${bd.getUint32(8, true)}`;
      }
      if (op === OP.WRITE && bd.getUint32(0, true) > q.getUint32(40 + 16, true)) return `wrote ${bd.getUint32(0, true)} of ${q.getUint32(56, true)} bytes`;
      if (op === OP.LSEEK && bd.getBigUint64(0, true) > OFFSET_MAX) return `lseek offset ${bd.getBigUint64(0, true)}`;
      if (op === OP.COPY_FILE_RANGE && BigInt(bd.getUint32(0, true)) > q.getBigUint64(40 + 40, true)) return 'copied more than asked';
      if (op === OP.COPY_FILE_RANGE_64 && bd.getBigUint64(0, true) > q.getBigUint64(40 + 40, true)) return 'copied more than asked';
      if (op === OP.GETLK) {
        const s = bd.getBigUint64(0, true), e = bd.getBigUint64(8, true);
        if (e < s || e > OFFSET_MAX) return `lock range ${s}…${e}`;
      }
      return undefined;
    }
    switch (op) {
      case OP.READ: {
        const size = q.getUint32(40 + 16, true);
        return body.length > size ? `READ of ${size} bytes answered ${body.length}` : undefined;
      }
      case OP.READLINK:
        return body.length > OUT_MAX ? `READLINK reply of ${body.length} bytes` : undefined;
      case OP.READDIR: case OP.READDIRPLUS:
        return checkDirents(body, q.getUint32(40 + 16, true), op === OP.READDIRPLUS);
      case OP.GETXATTR: case OP.LISTXATTR: {
        const size = q.getUint32(40, true);
        if (size === 0) return body.length === 8 ? undefined : `size probe answered ${body.length} bytes, not fuse_getxattr_out`;
        if (body.length > size) return `xattr reply of ${body.length} bytes for size ${size}`;
        if (op === OP.LISTXATTR && body.length && body[body.length - 1] !== 0) return 'LISTXATTR names not NUL-terminated';
        return undefined;
      }
      case OP.IOCTL: {
        const outSize = q.getUint32(40 + 28, true);
        if (body.length < 16) return `IOCTL reply of ${body.length} bytes`;
        return body.length - 16 > outSize ? `IOCTL data ${body.length - 16} > out_size ${outSize}` : undefined;
      }
      default:
        return `${opName(op)} must not succeed (no handler), got ${body.length} bytes`;
    }
  }

  /** Records what a delivered success reply handed to the kernel. */
  private track(t: Target, rec: Rec, body: Uint8Array): void {
    const op = rec.op;
    const bd = new DataView(body.buffer, body.byteOffset, body.length);
    const reqNode = get64n(new DataView(rec.req.buffer, rec.req.byteOffset, rec.req.length), 16);
    if (ENTRY_OPS.has(op) || op === OP.CREATE || op === OP.TMPFILE) {
      const id = get64n(bd, 0);
      if (id !== 0) this.trackNode(t, id);
      if (op === OP.CREATE || op === OP.TMPFILE) this.trackFh(t, get64n(bd, 128), id, false);
    } else if (op === OP.OPEN || op === OP.OPENDIR) {
      this.trackFh(t, get64n(bd, 0), reqNode, op === OP.OPENDIR);
    } else if (op === OP.READDIRPLUS) {
      for (let p = 0; p + 152 <= body.length;) {
        const id = get64n(bd, p);
        const namelen = bd.getUint32(p + 128 + 16, true);
        const name = body.subarray(p + 152, p + 152 + namelen);
        const dot = (namelen === 1 && name[0] === 0x2e) || (namelen === 2 && name[0] === 0x2e && name[1] === 0x2e);
        if (id !== 0 && !dot) this.trackNode(t, id);
        p += (152 + namelen + 7) & ~7;
      }
    }
  }
  private trackNode(t: Target, id: number): void {
    const c = t.nodes.get(id);
    t.nodes.set(id, (c ?? 0) + 1);
    if (c === undefined) {
      if (t.nodeList.length < 8192) t.nodeList.push(id);
      else t.nodeList[this.sinkRng.int(8192)] = id;
    }
  }
  private trackFh(t: Target, fh: number, nodeid: number, dir: boolean): void {
    const l = t.fhs.get(fh);
    if (l) { l.push({ nodeid, dir }); return; }
    t.fhs.set(fh, [{ nodeid, dir }]);
    if (t.fhList.length < 4096) t.fhList.push(fh);
    else t.fhList[this.sinkRng.int(4096)] = fh;
  }

  // ---- request generation ----

  private pickNode(r: Rng, t: Target): number | bigint {
    const k = r.int(100);
    if (k < 50 && t.nodeList.length) return r.pick(t.nodeList);
    if (k < 72) return 1;
    if (k < 76) return 0;
    if (k < 84) return (t.nodeList.length ? Math.max(...t.nodeList.slice(-8)) : 1) + 1 + r.int(100); // never handed out
    if (k < 90) return r.pick(U64_EXTREMES.filter((x) => x >= 1n << 53n));
    if (k < 94) return r.u64();
    return 2 + r.int(50);
  }
  private pickFh(r: Rng, t: Target): number | bigint {
    const k = r.int(100);
    if (k < 55 && t.fhList.length) return r.pick(t.fhList);
    if (k < 70) return 0;
    if (k < 80) return 1 + r.int(100);
    if (k < 90) return r.pick(U64_EXTREMES);
    return r.u64();
  }

  private pickOpcode(r: Rng, t: Target): number {
    // Tree-building operations more often; every opcode of the table some of the time.
    const k = r.int(100);
    if (k < 45) {
      const hot = t.kind === 'memfs'
        ? [OP.LOOKUP, OP.LOOKUP, OP.MKDIR, OP.CREATE, OP.CREATE, OP.MKNOD, OP.SYMLINK, OP.LINK, OP.UNLINK, OP.RMDIR, OP.RENAME, OP.RENAME2,
          OP.GETATTR, OP.SETATTR, OP.OPEN, OP.READ, OP.WRITE, OP.WRITE, OP.RELEASE, OP.OPENDIR, OP.READDIR, OP.READDIRPLUS,
          OP.RELEASEDIR, OP.FORGET, OP.BATCH_FORGET, OP.SETXATTR, OP.GETXATTR, OP.LISTXATTR, OP.READLINK]
        : [OP.LOOKUP, OP.MKDIR, OP.CREATE, OP.OPEN, OP.OPENDIR, OP.READ, OP.WRITE, OP.READDIR, OP.READDIRPLUS, OP.GETATTR, OP.RELEASE, OP.FORGET];
      return r.pick(hot);
    }
    let op = r.pick(this.allOpcodes);
    if (op === OP.DESTROY && t.kind === 'memfs') op = OP.STATFS; // DESTROY empties the tree: sent at the end instead
    return op;
  }

  /** Builds a well-formed request for `op` into buf; returns its length and the names it carries. */
  private build(r: Rng, t: Target, op: number): { n: number; names: Uint8Array[] } {
    const dv = this.view;
    const buf = this.buf;
    const row = opcodeRow(op);
    // fuse_in_header
    dv.setUint32(4, op, true);
    put64(dv, 16, this.pickNode(r, t));
    const ids = [0, 1000, 65534, 0xffffffff];
    dv.setUint32(24, r.chance(0.8) ? r.pick(ids) : r.u32(), true);
    dv.setUint32(28, r.chance(0.8) ? r.pick(ids) : r.u32(), true);
    dv.setUint32(32, r.chance(0.8) ? 4242 : r.u32(), true);
    dv.setUint16(36, 0, true);
    dv.setUint16(38, r.chance(0.95) ? 0 : r.int(65536), true);
    let pos = 40;
    const def: StructDef<any> | undefined = row?.body;
    let bodySize = def?.size ?? 0;
    if (op === OP.SETXATTR) bodySize = t.setxattrExt ? 16 : 8;
    if (op === OP.INIT && r.chance(0.3)) bodySize = 16;
    if (def) this.fillStruct(r, t, def, pos, bodySize);
    if (op === OP.READ || op === OP.READDIR || op === OP.READDIRPLUS) {
      // The Server sizes a listing buffer by the request: a 4 GiB size costs a 4 GiB allocation
      // (and a full GC), so the extremes come rarely here.
      dv.setUint32(40 + 16, r.chance(0.995) ? r.pick([0, 1, 2, 24, 100, 151, 152, 4096, 65536, 131072, 1052672]) : r.pick(U32_EXTREMES), true);
    }
    pos += bodySize;
    // names
    const names: Uint8Array[] = [];
    const pooled = t.kind === 'memfs';
    for (let i = 0; i < (row?.names ?? 0); i++) {
      const nm = genName(r, pooled && !(op === OP.SYMLINK && i === 1));
      names.push(nm);
      buf.set(nm, pos);
      pos += nm.length;
      buf[pos++] = 0;
    }
    // data
    const memfsSafe = t.kind === 'memfs';
    switch (op) {
      case OP.WRITE: {
        const n = r.chance(0.9) ? r.int(600) : r.int(128 * 1024);
        r.fill(buf, pos, pos + n);
        dv.setUint32(40 + 16, n, true);
        if (memfsSafe) put64(dv, 40 + 8, memfsOffset(r));
        pos += n;
        break;
      }
      case OP.SETXATTR: {
        const n = r.chance(0.9) ? r.int(100) : r.int(70000);
        r.fill(buf, pos, pos + n);
        dv.setUint32(40, n, true);
        pos += n;
        break;
      }
      case OP.IOCTL: {
        const n = r.int(300);
        r.fill(buf, pos, pos + n);
        dv.setUint32(40 + 24, n, true);
        pos += n;
        break;
      }
      case OP.BATCH_FORGET: {
        const n = r.int(8);
        dv.setUint32(40, n, true);
        for (let i = 0; i < n; i++) {
          put64(dv, pos, this.pickNode(r, t));
          put64(dv, pos + 8, r.chance(0.8) ? 1 + r.int(3) : u64v(r));
          pos += 16;
        }
        break;
      }
      case OP.NOTIFY_REPLY: {
        const n = r.int(200);
        r.fill(buf, pos, pos + n);
        dv.setUint32(40 + 16, r.chance(0.8) ? n : u32v(r), true);
        pos += n;
        break;
      }
      case OP.REMOVEMAPPING: {
        const n = r.int(4);
        dv.setUint32(40, n, true);
        r.fill(buf, pos, pos + 16 * n);
        pos += 16 * n;
        break;
      }
      case OP.CUSE_INIT: {
        const n = r.int(64);
        r.fill(buf, pos, pos + n);
        pos += n;
        break;
      }
      case OP.FORGET:
        if (r.chance(0.7)) put64(dv, 40, 1 + r.int(3));
        break;
      case OP.INTERRUPT: {
        // A request in flight, one not read yet, or anything.
        const k = r.int(3);
        const target = k === 0 ? this.nextUnique + 1 + r.int(3) : k === 1 ? Math.max(1, this.nextUnique - 1 - r.int(50)) : r.u32();
        put64(dv, 40, target);
        break;
      }
      case OP.SETATTR:
        if (memfsSafe) put64(dv, 40 + 16, memfsOffset(r));
        break;
      case OP.FALLOCATE:
        if (memfsSafe) { put64(dv, 40 + 8, memfsOffset(r)); put64(dv, 40 + 16, memfsOffset(r)); dv.setUint32(40 + 24, r.int(4), true); }
        break;
    }
    // request extensions (7.38+): 8-byte units, counted in total_extlen
    if (r.chance(0.03)) {
      const units = 1 + r.int(4);
      r.fill(buf, pos, pos + units * 8);
      pos += units * 8;
      dv.setUint16(36, units, true);
    }
    dv.setUint32(0, pos, true);
    return { n: pos, names };
  }

  private fillStruct(r: Rng, t: Target, def: StructDef<any>, at: number, limit: number): void {
    const dv = this.view;
    for (const f of def.fields) {
      const [name, type] = f as readonly [string, any, number?];
      const off = at + def.offsets[name];
      if (off - at >= limit) break;
      if ((f as any[]).length === 3) {
        // Reserved array: zero, sometimes garbage.
        const size = (typeof type === 'string' ? SCALAR[type as keyof typeof SCALAR] : type.size) * (f as any)[2];
        if (r.chance(0.9)) this.buf.fill(0, off, Math.min(off + size, at + limit)); else r.fill(this.buf, off, Math.min(off + size, at + limit));
        continue;
      }
      if (typeof type !== 'string') { this.fillStruct(r, t, type, off, at + limit - off); continue; }
      switch (type) {
        case 'u8': dv.setUint8(off, r.u32() & 255); break;
        case 'u16': dv.setUint16(off, r.chance(0.5) ? r.int(0o10000) : r.u32() & 0xffff, true); break;
        case 'u32': case 'i32': dv.setUint32(off, this.u32Field(r, name), true); break;
        case 'u64': case 'i64': case 'time64': put64(dv, off, u64v(r)); break;
        case 'id': {
          const v = name === 'fh' || name === 'fh_in' || name === 'fh_out' ? this.pickFh(r, t)
            : name === 'nlookup' ? (r.chance(0.7) ? 1 + r.int(3) : u64v(r)) : this.pickNode(r, t);
          put64(dv, off, v);
          break;
        }
      }
    }
  }
  private u32Field(r: Rng, name: string): number {
    switch (name) {
      case 'size': return r.chance(0.7) ? r.pick([0, 1, 24, 100, 4096, 65536, 131072, 1048576]) : r.pick(U32_EXTREMES);
      case 'mode': return r.chance(0.8) ? r.pick([0o100644, 0o40755, 0o120777, 0o10644, 0o140755, 0o20600, 0o644, 0]) : r.u32();
      case 'valid': return r.u32() & (r.chance(0.5) ? 0xfff : 0xffffffff);
      case 'flags': case 'open_flags': return r.chance(0.6) ? r.int(4) : r.u32();
      case 'getattr_flags': return r.int(2);
      case 'whence': return r.int(6);
      case 'type': return r.int(4);
      default: return u32v(r);
    }
  }

  /** Mutates the request in buf[0..n); returns the new n and a description. */
  private mutate(r: Rng, n: number, op: number): { n: number; what: string } {
    const dv = this.view;
    const k = r.int(11);
    switch (k) {
      case 0: { const m = r.int(n); return { n: m, what: `truncated to ${m} (len field ${n})` }; }
      case 1: {
        const m = 40 + r.int(Math.max(1, n - 40));
        if (m >= 4) dv.setUint32(0, m, true);
        return { n: m, what: `truncated body: ${m} bytes with a matching len` };
      }
      case 2: {
        const flips = 1 + r.int(4);
        const at: number[] = [];
        for (let i = 0; i < flips; i++) {
          let p = r.int(n);
          if (p >= 8 && p < 16) p = 16 + r.int(Math.max(1, n - 16));
          if (p < n) { this.buf[p] ^= 1 << r.int(8); at.push(p); }
        }
        return { n, what: `bits flipped at ${at.join(',')}` };
      }
      case 3: { const v = r.pick([0, 1, 39, 40, n - 1, n + 1, n + 4096, 0xffffffff, r.u32()]) >>> 0; dv.setUint32(0, v, true); return { n, what: `len field ${v} (read ${n})` }; }
      case 4: { const v = r.pick([1, 5, 0x1000, 0xffff, Math.ceil(n / 8)]); dv.setUint16(36, v, true); return { n, what: `total_extlen ${v}` }; }
      case 5: {
        // Drop the last byte (the final NUL of a name-only request) and fix len.
        if (n <= 40) return { n, what: 'none' };
        dv.setUint32(0, n - 1, true);
        return { n: n - 1, what: `last byte dropped (0x${this.buf[n - 1].toString(16)})` };
      }
      case 6: {
        // Replace every NUL after the body by 'x': names lose their terminator.
        let c = 0;
        for (let i = 40; i < n; i++) if (this.buf[i] === 0 && r.chance(0.5)) { this.buf[i] = 0x78; c++; }
        return { n, what: `${c} NULs replaced` };
      }
      case 7: {
        const extra = r.int(64);
        r.fill(this.buf, n, n + extra);
        dv.setUint32(0, n + extra, true);
        return { n: n + extra, what: `${extra} trailing bytes` };
      }
      case 8: {
        const o = r.chance(0.5) ? r.pick(UNKNOWN_OPCODES) : r.pick(this.allOpcodes);
        dv.setUint32(4, o, true);
        return { n, what: `opcode ${op} → ${o}` };
      }
      case 9: {
        put64(dv, 16, r.pick(U64_EXTREMES));
        return { n, what: 'nodeid replaced by an extreme' };
      }
      default: {
        // Body fields overwritten with 64-bit extremes.
        if (n <= 48) return { n, what: 'none' };
        const p = 40 + 8 * r.int(Math.floor((n - 40) / 8));
        put64(dv, p, r.pick(U64_EXTREMES));
        return { n, what: `u64 extreme at ${p}` };
      }
    }
  }

  /** memfs keeps a file in one Buffer: a size in the 1 MiB … 4 GiB band is an honest allocation of
   * that much (not a server bug), so such write offsets / truncate sizes / fallocate ranges are cut
   * down after mutation. Past 4 GiB memfs answers EFBIG (kept). */
  private sanitizeMemfs(n: number): void {
    if (n < 8) return;
    const dv = this.view;
    const op = dv.getUint32(4, true);
    if (op === OP.DESTROY) dv.setUint32(4, OP.STATFS, true); // DESTROY empties the tree: sent once, at the end
    const at = op === OP.WRITE ? [48] : op === OP.SETATTR ? [56] : op === OP.FALLOCATE ? [48, 56] : [];
    for (const p of at) {
      if (p + 8 > n) continue;
      const v = dv.getBigUint64(p, true);
      if (v >= 1n << 20n && v < (1n << 32n) + (1n << 20n)) put64(dv, p, v & 0xffffn);
    }
    if ((op === OP.RENAME || op === OP.RENAME2) && n >= 48) this.vfsRenameChecks(n, op);
  }

  /**
   * The VFS checks every rename before FUSE sees it: the new parent is a directory, and with
   * RENAME_EXCHANGE the target is not an ancestor of the source (do_renameat2: EINVAL).
   * memfs and the InodeTree do not check either (test "found: …rename…"): a rename into a
   * regular file gives the file a child, an exchange with an ancestor detaches a directory
   * cycle, and memfs's ancestor walk in rename then loops forever — the whole server hangs.
   * Found at seed 0x7f4a7c15, case 922048 of the 10M run; such renames are turned into ones
   * the kernel could send so that a long run can go on.
   */
  private vfsRenameChecks(n: number, op: number): void {
    const tree = this.targets.find((t) => t.tree)?.tree;
    if (!tree) return;
    const dv = this.view;
    const inode = (at: number) => {
      try { return tree.get(get64n(dv, at)); } catch { return undefined; }
    };
    const newdir = inode(40);
    if (newdir && !newdir.isDirectory) put64(dv, 40, 1);
    if (op !== OP.RENAME2 || n < 56 || !(dv.getUint32(48, true) & 2)) return;
    const parent = inode(16);
    const nul1 = this.buf.indexOf(0, 56);
    const nul2 = nul1 < 0 ? -1 : this.buf.indexOf(0, nul1 + 1);
    if (!parent || nul2 < 0 || nul2 >= n) return;
    const dst = inode(40)?.children.get(nameFromBytes(this.buf.subarray(nul1 + 1, nul2)));
    for (let p: typeof parent | undefined = parent, k = 0; p && k < 100000; p = p.parent, k++) {
      if (p === dst) { dv.setUint32(48, dv.getUint32(48, true) & ~2, true); return; }
    }
  }

  private readonly beatSab = new SharedArrayBuffer(16 + 1024);
  private readonly beat = new Int32Array(this.beatSab, 0, 4);
  private readonly beatBytes = new Uint8Array(this.beatSab, 16);

  /** One case: a request into the target's server, with its reply expectation recorded. */
  private oneCase(i: number, r: Rng, t: Target): void {
    this.caseIndex = i;
    const dv = this.view;
    let n: number;
    let names: Uint8Array[] | null = null;
    let mutated = '';
    const kind = r.int(100);
    if (kind < 78) {
      const op = this.pickOpcode(r, t);
      const b = this.build(r, t, op);
      n = b.n;
      names = b.names;
      if (r.chance(0.3)) {
        const m = this.mutate(r, n, op);
        if (m.what !== 'none') { n = m.n; mutated = m.what; names = null; }
        if (r.chance(0.2)) {
          const m2 = this.mutate(r, n, op);
          if (m2.what !== 'none') { n = m2.n; mutated = mutated ? `${mutated}; ${m2.what}` : m2.what; names = null; }
        }
      }
    } else if (kind < 82) {
      // BATCH_FORGET announcing far more entries than present.
      const b = this.build(r, t, OP.BATCH_FORGET);
      n = b.n;
      dv.setUint32(40, r.pick([0xffffffff, 0x80000000, 0x10000000, 1000]), true);
      mutated = 'huge BATCH_FORGET count';
    } else if (kind < 85) {
      // NOTIFY_REPLY nobody asked for (unique = a notify_unique never sent).
      const b = this.build(r, t, OP.NOTIFY_REPLY);
      n = b.n;
      mutated = 'unsolicited NOTIFY_REPLY';
    } else if (kind < 87) {
      const b = this.build(r, t, OP.INTERRUPT);
      n = b.n;
    } else if (kind < 91) {
      // Unknown opcode with a random body.
      const op = r.pick(UNKNOWN_OPCODES);
      this.build(r, t, OP.GETATTR);
      const len = 40 + r.int(100);
      r.fill(this.buf, 40, len);
      dv.setUint32(0, len, true);
      dv.setUint32(4, op, true);
      n = len;
      mutated = `unknown opcode ${op}`;
    } else if (kind < 95) {
      // Shorter than the header (n < 40), or even than the unique (n < 16).
      const b = this.build(r, t, this.pickOpcode(r, t));
      n = r.chance(0.5) ? r.int(16) : 16 + r.int(24);
      if (n >= 4 && r.chance(0.5)) dv.setUint32(0, n, true);
      void b;
      mutated = `${n}-byte request`;
    } else {
      // Random bytes with a plausible length and opcode.
      n = r.int(300);
      r.fill(this.buf, 0, n);
      if (n >= 4 && r.chance(0.7)) dv.setUint32(0, n, true);
      if (n >= 8 && r.chance(0.7)) dv.setUint32(4, r.pick(this.allOpcodes), true);
      if (n >= 24 && r.chance(0.5)) put64(dv, 16, this.pickNode(r, t));
      if (n >= 38 && r.chance(0.7)) dv.setUint16(36, 0, true);
      mutated = 'random bytes';
    }
    if (t.kind === 'memfs') this.sanitizeMemfs(n);
    // unique: fresh, sometimes with bit 63 (a resent request) or other high bits
    const lo = this.nextUnique++ >>> 0;
    const hi = r.chance(0.9) ? 0 : r.chance(0.7) ? 0x80000000 : r.u32();
    if (n >= 12) dv.setUint32(8, lo, true);
    if (n >= 16) dv.setUint32(12, hi, true);
    const op = n >= 8 ? dv.getUint32(4, true) : -1;
    const expect = n >= 16 && !NO_REPLY.has(op);
    const rec: Rec = {
      seq: i, lo, hi, target: t, op, n, expect, replies: 0, verdict: undefined, mutated,
      req: new Uint8Array(this.buf.subarray(0, Math.min(n, 8192))),
    };
    if (op >= 0) this.opsSeen.add(op);
    if (mutated) this.t.mutated++;
    if (!expect) this.t.noReplyRequests++;
    this.perTarget[t.name]++;
    if (n >= 16) this.records.set(lo, rec);
    const row = op >= 0 ? opcodeRow(op) : undefined;
    this.cur = { rec, rng: r, method: row?.method, names, called: false };
    Atomics.add(this.beat, 0, 1);
    Atomics.store(this.beat, 1, i);
    Atomics.store(this.beat, 2, n);
    this.beatBytes.set(this.buf.subarray(0, Math.min(n, this.beatBytes.length)));
    try {
      t.server.request(this.buf, dv, n, CH);
    } catch (e) {
      this.fail('throw', rec, `Server.request threw: ${(e as Error)?.stack ?? String(e)}`.slice(0, 900));
    }
    this.cur = undefined;
  }

  // ---- driving ----

  /** Lets every handler result settle: the raw filesystem's pending results are all released
   * within two setImmediate turns. A request the Server still counts in flight after that
   * (and after the count stopped changing) is stuck: its entry is never removed. */
  private async settle(): Promise<void> {
    let last = -1, still = 0;
    for (let i = 0; i < 100; i++) {
      await new Promise((res) => setImmediate(res));
      const pending = this.targets.reduce((a, t) => a + (t.raw?.pending ?? 0), 0);
      const inFlight = this.inFlight();
      if (pending === 0 && inFlight === last) { if (++still >= 3) return; } else still = 0;
      last = inFlight;
    }
  }
  private inFlight(): number {
    return this.targets.reduce((a, t) => a + t.server.stats().inFlight, 0);
  }

  /** Every request of the batch got exactly what it expects; the batch is forgotten. */
  private async checkpoint(): Promise<void> {
    await this.settle();
    for (const rec of this.records.values()) {
      if (rec.expect && rec.replies === 0) this.fail('no-reply', rec, `no reply to ${opName(rec.op)} (handler verdict ${String(rec.verdict)})`, rec.target, 'no reply');
    }
    this.records.clear();
    const m = this.targets.find((t) => t.tree);
    if (m?.tree) {
      const s = m.tree.stats();
      if (s.inodes > 1 + m.creations) this.fail('leak', undefined, `memfs holds ${s.inodes} inodes after ${m.creations} creations`, m);
    }
  }

  private memfsInodes(): number {
    return this.targets.reduce((a, t) => a + (t.tree?.stats().inodes ?? 0), 0);
  }

  private heap(): number {
    this.gc();
    this.gc();
    return process.memoryUsage().heapUsed;
  }

  async run(): Promise<FuzzTotals> {
    // A rejection nobody handles or an exception thrown from a callback would end the process:
    // they are failures of the request being handled (or of an earlier one still settling).
    const onUnhandled = (kind: string) => (e: unknown) => {
      let text: string;
      try { text = (e as Error)?.stack ?? String(e); } catch { text = Object.prototype.toString.call(e); }
      this.fail(kind, this.cur?.rec, text.slice(0, 900));
    };
    const rej = onUnhandled('unhandled-rejection');
    const exc = onUnhandled('uncaught-exception');
    process.on('unhandledRejection', rej);
    process.on('uncaughtException', exc);
    const watchdog = new Worker(WATCHDOG, {
      eval: true, workerData: { sab: this.beatSab, limitMs: this.watchdogMs, seed: `0x${this.seed.toString(16)}` },
    });
    watchdog.unref();
    try {
      return await this.runCases();
    } finally {
      Atomics.store(this.beat, 3, 1);
      await watchdog.terminate();
      process.off('unhandledRejection', rej);
      process.off('uncaughtException', exc);
    }
  }

  private async runCases(): Promise<FuzzTotals> {
    const t0 = Date.now();
    const CHECK_EVERY = 5000;
    const SESSION = 250_000; // cases per mount: then every target is unmounted, checked and replaced
    const tenth = Math.max(1, Math.floor(this.cases / 10));
    let lastProgress = t0;
    for (let i = 0; i < this.cases; i++) {
      const r = new Rng(this.seed, i + 1);
      const k = r.int(100);
      const t = k < 40 ? this.targets[0] : k < 55 ? this.targets[1] : this.targets[2];
      this.oneCase(i, r, t);
      if (r.chance(1 / 128)) await new Promise((res) => setImmediate(res)); // let some async handlers finish mid-batch
      if ((i + 1) % CHECK_EVERY === 0) { this.evict(); await this.checkpoint(); }
      if ((i + 1) % SESSION === 0 && i + 1 < this.cases) { await this.endSession(); this.newSession(); }
      if (i + 1 === tenth) { await this.checkpoint(); this.heapAt10 = this.heap(); this.inodesAt10 = this.memfsInodes(); }
      if ((i + 1) % 100000 === 0 && Date.now() - lastProgress > 10000) {
        lastProgress = Date.now();
        this.progress(`fuzz: ${i + 1}/${this.cases} cases, ${this.failureTotal} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    }
    await this.checkpoint();
    const end = await this.endSession();
    const heapEnd = end.heapEnd;
    if (!this.heapAt10) this.heapAt10 = heapEnd;
    const growth = heapEnd - this.heapAt10;
    // The memfs tree may legitimately hold more named inodes at the end: 4 KiB each on top (measured: ~1.1 KiB).
    const bound = this.heapBound + 4096 * Math.max(0, end.memfs.inodes - this.inodesAt10);
    if (growth > bound) this.fail('memory', undefined, `heap grew ${(growth / 2 ** 20).toFixed(1)} MiB from 10% to the end (bound ${(bound / 2 ** 20).toFixed(1)} MiB: 64 MiB + 4 KiB × ${end.memfs.inodes - this.inodesAt10} more memfs inodes)`);
    const logLines: Record<string, number> = {};
    for (const t of this.targets) for (const [k, v] of t.logs) logLines[`${t.name}: ${k}`] = v;
    const missing = this.allOpcodes.filter((o) => !this.opsSeen.has(o));
    if (this.cases >= 10000 && missing.length) this.fail('coverage', undefined, `opcodes never generated: ${missing.join(',')}`);
    return {
      seed: this.seed, cases: this.cases, requestsByTarget: { ...this.perTarget },
      repliesChecked: this.t.repliesChecked, errorReplies: this.t.errorReplies, successReplies: this.t.successReplies,
      noReplyRequests: this.t.noReplyRequests, mutated: this.t.mutated,
      opcodesCovered: this.allOpcodes.length - missing.length, opcodesInTable: this.allOpcodes.length,
      rawFsCalls: this.rawCalls, asyncResults: this.rawAsync,
      failures: this.failureTotal, failuresByKind: Object.fromEntries(this.failureCounts), examples: this.failures,
      failureSignatures: Object.fromEntries([...this.failureSigs].sort((a, b) => b[1] - a[1])),
      heap: { at10: this.heapAt10, end: heapEnd, growth, bound, rss: process.memoryUsage().rss, external: process.memoryUsage().external },
      memfs: { ...end.memfs, creations: this.creations, orphans: this.orphans, maxInodes: this.maxInodes }, sessions: this.sessions,
      raw: end.raw, logLines, durationMs: Date.now() - t0,
    };
  }

  /** As the kernel at the end of a session: release every handle, forget every entry; then nothing may be left. */
  /** A well-formed request from the harness itself (the kernel's FORGET/RELEASE/DESTROY). */
  private send(t: Target, op: number, nodeid: number, body: (at: number) => number, why: string): void {
    const dv = this.view;
    const n = 40 + body(40);
    dv.setUint32(0, n, true);
    dv.setUint32(4, op, true);
    const lo = this.nextUnique++ >>> 0;
    dv.setUint32(8, lo, true);
    dv.setUint32(12, 0, true);
    put64(dv, 16, nodeid);
    dv.setUint32(24, 0, true); dv.setUint32(28, 0, true); dv.setUint32(32, 1, true); dv.setUint32(36, 0, true);
    const rec: Rec = {
      seq: this.caseIndex, lo, hi: 0, target: t, op, n, expect: !NO_REPLY.has(op), replies: 0, verdict: undefined, mutated: why,
      req: new Uint8Array(this.buf.subarray(0, n)),
    };
    this.records.set(lo, rec);
    try {
      t.server.request(this.buf, dv, n, CH);
    } catch (e) {
      this.fail('throw', rec, `Server.request threw: ${(e as Error)?.stack ?? String(e)}`.slice(0, 900));
    }
  }
  private release(t: Target, fh: number, l: { nodeid: number; dir: boolean }[], why: string): void {
    const dv = this.view;
    for (const { nodeid, dir } of l) {
      this.send(t, dir ? OP.RELEASEDIR : OP.RELEASE, nodeid, (at) => {
        put64(dv, at, fh); dv.setUint32(at + 8, 0, true); dv.setUint32(at + 12, 0, true); put64(dv, at + 16, 0);
        return 24;
      }, why);
    }
  }
  private forget(t: Target, id: number, count: number, why: string): void {
    this.send(t, OP.FORGET, id, (at) => { put64(this.view, at, count); return 8; }, why);
  }

  /**
   * As the kernel evicting inodes and closing files under memory pressure: node ids and
   * handles the harness no longer picks from are forgotten / released, so what it tracks
   * (and what the filesystems hold) stays bounded over millions of cases.
   */
  private evict(): void {
    for (const t of this.targets) {
      if (t.nodes.size > 16384) {
        const keep = new Set(t.nodeList);
        for (const [id, count] of t.nodes) if (!keep.has(id)) { this.forget(t, id, count, 'eviction'); t.nodes.delete(id); }
      }
      if (t.fhs.size > 8192) {
        const keep = new Set(t.fhList);
        for (const [fh, l] of t.fhs) if (!keep.has(fh)) { this.release(t, fh, l, 'eviction'); t.fhs.delete(fh); }
      }
    }
  }

  /**
   * The end of a session (as at unmount): every handle the kernel (we) got is released and every
   * entry forgotten; then nothing may be left in the filesystems, nothing in flight. DESTROY
   * follows. `heapEnd` is measured before DESTROY empties the tree.
   */
  private async endSession(): Promise<{ memfs: FuzzTotals['memfs']; raw: FuzzTotals['raw']; heapEnd: number }> {
    for (const t of this.targets) for (const [fh, l] of t.fhs) this.release(t, fh, l, 'end of session');
    await this.checkpoint();
    for (const t of this.targets) for (const [id, count] of t.nodes) this.forget(t, id, count, 'end of session');
    await this.checkpoint();
    const memfsOut = { inodes: 0, creations: 0, lookupsLeft: 0, handlesLeft: 0, reachable: 0, orphans: 0, eioAfterImpossibleNames: this.t.memfsImpossible };
    const rawOut = { lookupsLeft: 0, handlesLeft: 0 };
    for (const t of this.targets) {
      if (t.tree) {
        const s = t.tree.stats();
        const { reachable, orphans, nameless } = unreachable(t.tree);
        Object.assign(memfsOut, { inodes: s.inodes, creations: t.creations, lookupsLeft: s.lookups, handlesLeft: s.handles, reachable, orphans });
        if (s.lookups !== 0 || s.referenced !== 0) this.fail('leak', undefined, `memfs: ${s.lookups} lookups on ${s.referenced} inodes left after forgetting every entry handed out`, t);
        if (s.handles !== 0) this.fail('leak', undefined, `memfs: ${s.handles} handles left after releasing every handle handed out`, t);
        if (nameless.length) this.fail('leak', undefined, `memfs: ${nameless.length} inodes in the table with no name, no lookup and no open file: node ids ${nameless.slice(0, 10).join(' ')}`, t);
      }
      if (t.raw) {
        const lk = [...t.raw.lookups].filter(([, c]) => c > 0);
        const hd = t.raw.full ? [...t.raw.handles].filter(([, c]) => c > 0) : [];
        rawOut.lookupsLeft += lk.reduce((a, [, c]) => a + c, 0);
        rawOut.handlesLeft += hd.reduce((a, [, c]) => a + c, 0);
        if (lk.length) this.fail('leak', undefined, `${t.name}: lookups never forgotten on ${lk.length} node ids, e.g. ${lk.slice(0, 5).map(([id, c]) => `${id}×${c}`).join(' ')}`, t);
        if (hd.length) this.fail('leak', undefined, `${t.name}: handles never released: ${hd.slice(0, 5).map(([fh, c]) => `${fh}×${c}`).join(' ')}`, t);
      }
    }
    for (const t of this.targets) {
      const n = t.server.stats().inFlight;
      if (n) this.fail('leak', undefined, `${t.name}: ${n} requests still counted in flight after every handler settled`, t);
    }
    // Measured before DESTROY empties the tree.
    const heapEnd = this.heap();
    // The session ends (as at unmount): DESTROY to every server, answered once.
    for (const t of this.targets) this.send(t, OP.DESTROY, 0, () => 0, 'end of session');
    await this.checkpoint();
    this.sessions++;
    for (const t of this.targets) { this.rawCalls += t.raw?.calls ?? 0; this.rawAsync += t.raw?.asyncResults ?? 0; }
    this.orphans += memfsOut.orphans;
    this.creations += memfsOut.creations;
    this.maxInodes = Math.max(this.maxInodes, memfsOut.inodes);
    return { memfs: memfsOut, raw: rawOut, heapEnd };
  }

  /** Fresh servers and filesystems (a new mount): keeps a long run's tree and tables bounded. */
  private newSession(): void {
    this.targets.length = 0;
    this.targets.push(this.makeRaw('raw-full', true, false), this.makeRaw('raw-sparse', false, true), this.makeMemfs(false));
  }
}

/** A memfs offset/size: small, or past what a Buffer can hold (EFBIG) — never the 1 MiB…4 GiB
 * band, where memfs would honestly allocate (its files are one Buffer). */
function memfsOffset(r: Rng): bigint {
  return r.chance(0.85) ? BigInt(r.int(70000)) : r.pick([1n << 32n, (1n << 32n) + 1n, 1n << 53n, OFFSET_MAX, 1n << 63n, U64_MAX]);
}

/**
 * The tree's inodes not reachable by name from the root, after every lookup was forgotten and
 * every handle released. One without any name is a leak. One named below a directory that was
 * removed (and then dropped) is an orphan: only a request the kernel never sends (a creation or
 * rename into a removed directory, IS_DEADDIR) puts it there, so it is counted, not failed.
 * Reads the tree's node table (private) for this check only.
 */
function unreachable(tree: InodeTree): { reachable: number; orphans: number; nameless: number[] } {
  const seen = new Set<FuseInodeLike>([tree.root]);
  const stack: FuseInodeLike[] = [tree.root];
  while (stack.length) {
    const i = stack.pop()!;
    for (const c of i.children.values()) if (!seen.has(c)) { seen.add(c); stack.push(c); }
  }
  const table = (tree as unknown as { table?: unknown }).table;
  const nameless: number[] = [];
  let orphans = 0;
  if (table instanceof Map) {
    for (const [id, inode] of table as Map<number, FuseInodeLike>) {
      if (seen.has(inode)) continue;
      if (inode.parent === undefined) nameless.push(id);
      else orphans++;
    }
  }
  return { reachable: seen.size, orphans, nameless };
}
type FuseInodeLike = { readonly children: ReadonlyMap<string, FuseInodeLike>; readonly parent: FuseInodeLike | undefined };

const SCALAR = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8, id: 8, time64: 8 } as const;

/** fuse_entry_out: a node id below 2^53 (the framework's ids are), timeouts' nsec below 10^9. */
function checkEntry(bd: DataView, at: number): string | undefined {
  const id = bd.getBigUint64(at, true);
  if (id > BigInt(MAX_SAFE)) return `entry node id ${id} ≥ 2^53 (never handed out by design)`;
  if (bd.getUint32(at + 32, true) > 999_999_999 || bd.getUint32(at + 36, true) > 999_999_999) return 'entry/attr valid nsec ≥ 10^9';
  return undefined;
}

/** READDIR(PLUS) body: whole 8-byte-aligned records, names 1…255 bytes without '/' or NUL. */
function checkDirents(b: Uint8Array, size: number, plus: boolean): string | undefined {
  if (b.length > size) return `listing of ${b.length} bytes for size ${size}`;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const head = plus ? 152 : 24;
  let p = 0;
  while (p < b.length) {
    if (p + head > b.length) return `truncated record at ${p}`;
    const d = plus ? p + 128 : p;
    if (plus) {
      const bad = checkEntry(dv, p);
      if (bad) return bad;
    }
    const namelen = dv.getUint32(d + 16, true);
    if (namelen < 1 || namelen > 255) return `namelen ${namelen} at ${p}`;
    const end = p + ((head + namelen + 7) & ~7);
    if (end > b.length) return `record at ${p} runs past the body`;
    const name = b.subarray(p + head, p + head + namelen);
    if (name.includes(0) || name.includes(0x2f)) return `name with NUL or '/' at ${p}`;
    for (let i = p + head + namelen; i < end; i++) if (b[i] !== 0) return `non-zero padding at ${i}`;
    p = end;
  }
  return undefined;
}

/**
 * A directory listing refused an entry name the kernel can never have sent (empty, holding '/',
 * or longer than FUSE_NAME_MAX = 1024 bytes: fuse_lookup answers ENAMETOOLONG before any
 * creation). Names of 256…1024 bytes the kernel does send, so those stay failures.
 */
function kernelImpossibleName(line: string): boolean {
  const m = /directory entry name ("(?:[^"\\]|\\.)*") is empty/.exec(line);
  if (!m) return false;
  let b: Uint8Array | undefined;
  try { b = safeNameBytes(JSON.parse(m[1]) as string); } catch { return false; }
  return !b || b.length === 0 || b.length > 1024 || b.includes(0x2f) || b.includes(0);
}

function opName(op: number): string {
  return op < 0 ? 'none' : opcodeRow(op)?.name ?? `OPCODE_${op}`;
}
function hexOf(b: Uint8Array, n: number): string {
  const h = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, n, 4096)).toString('hex');
  return n > 4096 ? `${h}… (${n} bytes)` : h;
}

// ---- codec fuzzing ----

/** Random and mutated bytes into decodeRequest: it returns a sane request or throws ProtocolError. */
export function fuzzDecode(seed: number, cases: number): { cases: number; decoded: number; refused: number; failures: string[] } {
  const failures: string[] = [];
  let decoded = 0, refused = 0;
  const buf = Buffer.alloc(70000);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const ops = [...OPCODES.keys()];
  for (let i = 0; i < cases && failures.length < 10; i++) {
    const r = new Rng(seed ^ 0xdec0de, i + 1);
    const n = r.chance(0.3) ? r.int(48) : r.int(r.chance(0.95) ? 400 : 70000);
    r.fill(buf, 0, n);
    if (n >= 4 && r.chance(0.8)) dv.setUint32(0, n, true);
    if (n >= 8 && r.chance(0.8)) dv.setUint32(4, r.chance(0.9) ? r.pick(ops) : r.pick(UNKNOWN_OPCODES), true);
    if (n >= 24 && r.chance(0.7)) dv.setUint32(20, r.int(3) === 0 ? r.u32() : 0, true);
    if (n >= 38 && r.chance(0.8)) dv.setUint16(36, r.chance(0.9) ? 0 : r.int(8), true);
    if (r.chance(0.5)) {
      // Sprinkle NULs so names often terminate.
      for (let k = 0; k < 4; k++) buf[40 + r.int(Math.max(1, n - 40))] = 0;
    }
    const opts = { setxattrExt: r.chance(0.5) };
    try {
      const q = decodeRequest(buf, dv, n, opts, opcodeRow);
      decoded++;
      const bad = checkDecoded(q, buf, n);
      if (bad) failures.push(`case ${i}: ${bad}: ${hexOf(buf, n)}`);
    } catch (e) {
      refused++;
      if (!(e instanceof ProtocolError)) failures.push(`case ${i}: decodeRequest threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}: ${hexOf(buf, n)}`);
      else if (!(e.errno > 0 && e.errno < 512)) failures.push(`case ${i}: ProtocolError errno ${e.errno}: ${hexOf(buf, n)}`);
    }
  }
  return { cases, decoded, refused, failures };
}
function checkDecoded(q: any, buf: Uint8Array, n: number): string | undefined {
  if (q.len !== n) return `len ${q.len} for ${n} bytes`;
  if (!Number.isSafeInteger(q.nodeid) || q.nodeid < 0) return `nodeid ${q.nodeid}`;
  if (q.row?.opcode !== q.opcode) return 'row/opcode mismatch';
  for (const nm of [q.name, q.name2]) if (typeof nm !== 'string') return 'name is not a string';
  if (q.row.names >= 1) {
    // The name is exactly the bytes after the body up to the first NUL.
    const bytes = nameToBytes(q.name);
    if (bytes.includes(0)) return 'name holds a NUL';
  }
  if (q.dataView.byteOffset + q.dataView.length > buf.byteOffset + n) return 'dataView runs past the request';
  if (q.extView.length % 8 !== 0) return `extView of ${q.extView.length} bytes`;
  if (q.body) {
    for (const k of q.row.body.ids) if (!Number.isSafeInteger(q.body[k])) return `body.${k} ${q.body[k]} is not a safe integer`;
  }
  return undefined;
}

/** Names are bytes: nameToBytes(nameFromBytes(b)) is b, for any bytes; the helpers agree. */
export function fuzzNames(seed: number, cases: number): { cases: number; failures: string[] } {
  const failures: string[] = [];
  const out = new Uint8Array(4 * 1024);
  for (let i = 0; i < cases && failures.length < 10; i++) {
    const r = new Rng(seed ^ 0x4a3e5, i + 1);
    let b: Uint8Array;
    const k = r.int(4);
    if (k === 0) b = r.bytes(r.int(40));
    else if (k === 1) b = genName(r, false);
    else {
      const parts: number[] = [];
      const m = r.int(8);
      for (let j = 0; j < m; j++) parts.push(...(r.chance(0.6) ? r.pick(UTF8_BITS) : [r.u32() & 255]));
      b = Uint8Array.from(parts);
    }
    let s: string;
    try {
      s = nameFromBytes(b);
      const back = nameToBytes(s);
      if (Buffer.compare(Buffer.from(back), Buffer.from(b)) !== 0) {
        failures.push(`case ${i}: bytes ${Buffer.from(b).toString('hex')} → ${JSON.stringify(s)} → bytes ${Buffer.from(back).toString('hex')}`);
        continue;
      }
      if (nameByteLength(s) !== b.length) failures.push(`case ${i}: nameByteLength ${nameByteLength(s)} for ${b.length} bytes (${Buffer.from(b).toString('hex')})`);
      if (b.length <= out.length) {
        const w = writeName(out, 0, s);
        if (w !== b.length || Buffer.compare(Buffer.from(out.subarray(0, w)), Buffer.from(b)) !== 0) failures.push(`case ${i}: writeName wrote ${Buffer.from(out.subarray(0, w)).toString('hex')} for ${Buffer.from(b).toString('hex')}`);
      }
    } catch (e) {
      failures.push(`case ${i}: ${(e as Error)?.message} for bytes ${Buffer.from(b).toString('hex')}`);
    }
  }
  return { cases, failures };
}

export function envSeed(): number {
  const s = process.env.TSFUSE_FUZZ_SEED;
  if (!s) return 0x7f4a7c15;
  const v = Number(s);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`TSFUSE_FUZZ_SEED must be an integer in 0…2^32-1, got ${s}`);
  return v;
}
export function envCases(def: number): number {
  const s = process.env.TSFUSE_FUZZ_CASES;
  if (!s) return def;
  const v = Number(s.replace(/_/g, ''));
  if (!Number.isInteger(v) || v < 1) throw new Error(`TSFUSE_FUZZ_CASES must be a positive integer, got ${s}`);
  return v;
}

/** The opcode table's no-reply rows are exactly the kernel's (a check of the assumption above). */
export function noReplyRowsMatch(): string | undefined {
  for (const [op, row] of OPCODES) if (NO_REPLY.has(op) === row.reply) return `${row.name}: reply=${row.reply}`;
  return undefined;
}

