/**
 * The multi-filesystem VFS (src/vfs) driven from raw request bytes, without a
 * mount: a `Server` over a `Vfs` gets requests through `server.request` and
 * answers into a capture sink, as in dispatch.test.ts and fuzz-core.ts.
 *
 * - node id partition: id = index * 2^(53-indexBits) + backend-local id; every
 *   backend sees only its own local ids (a recording backend checks each id it
 *   receives is one it handed out);
 * - a seeded fuzz of random requests over ids of every kind (held, forgotten,
 *   of a backend detached by force, forged inside an attached index, of no
 *   backend, 0, 2^53-1, random), with an async backend that is detached and
 *   attached again now and then and replies the kernel never got: one reply
 *   each, ESTALE for ids not held, EXDEV across backends, EROFS in the pseudo
 *   fs, FORGET routed, and in the end every backend's lookup and handle counts
 *   equal to what the kernel (the fuzzer) holds (TSFUSE_VFS_SEED, TSFUSE_VFS_CASES);
 * - FORGET / BATCH_FORGET routing and vfs.stats() lookups;
 * - INIT negotiation across backends and attach after INIT;
 * - cross-backend RENAME/LINK (EXDEV), the read-only pseudo root (EROFS), its
 *   listing, detach (ENOENT, EBUSY, ESTALE after a forced detach, a request
 *   pending across a forced detach, index reuse);
 * - what one backend does must not change the mount for the others (ENOSYS the
 *   kernel remembers), handles of refused replies, per-backend options;
 * - the indexBits option: more backends, the limit, local ids too large (EIO),
 *   st_ino and readdir inode numbers of many backends.
 *
 * Request bodies are encoded with the struct declarations of src/abi (the codec
 * is not under test here); replies are read at the struct offsets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants } from 'node:os';
import { Server, type ServerOptions } from '../src/api/server.js';
import { FuseError } from '../src/api/errors.js';
import type { FileSystem } from '../src/api/filesystem.js';
import type { Attr, Entry, InitInfo } from '../src/api/types.js';
import type { KernelOffer } from '../src/transport/index.js';
import { Notifier } from '../src/transport/notify.js';
import { structs as S, InitFlag, initFlagNames, FATTR, type StructDef } from '../src/abi/index.js';
import { OP, NO_REPLY, Rng } from './fuzz-core.js';
import { memfs } from '../examples/memfs.js';
import { Vfs, type VfsOptions } from '../src/vfs/index.js';

const E = constants.errno as Record<string, number>;
const TWO32 = 4294967296;
const MAX_ID = 2 ** 53 - 1;
const errName = (e: number) => (e === 0 ? 'OK' : Object.entries(E).find(([, v]) => v === -e)?.[0] ?? String(e));

// ---- node id arithmetic (the documented layout) ----

const localBits = (indexBits = 16) => 53 - indexBits;
const indexOf = (id: number, indexBits = 16) => Math.floor(id / 2 ** localBits(indexBits));
const localOf = (id: number, indexBits = 16) => id % 2 ** localBits(indexBits);
const globalId = (index: number, local: number, indexBits = 16) => index * 2 ** localBits(indexBits) + local;

// ---- request bodies (struct encode) ----

function enc<F extends readonly any[]>(def: StructDef<F>, value: Record<string, unknown> = {}): Buffer {
  const b = Buffer.alloc(def.size);
  def.encode(new DataView(b.buffer, b.byteOffset, b.length), 0, value as any);
  return b;
}
const cstr = (s: string | Uint8Array) => Buffer.concat([Buffer.from(s as any), Buffer.from([0])]);
const body = {
  lookup: (name: string) => cstr(name),
  getattr: (fh = 0) => enc(S.fuse_getattr_in, { getattr_flags: fh ? 1 : 0, fh }),
  forget: (n: number) => enc(S.fuse_forget_in, { nlookup: n }),
  batchForget: (items: [number | bigint, number][]) => {
    const one = S.fuse_forget_one.size;
    const b = Buffer.alloc(S.fuse_batch_forget_in.size + items.length * one);
    b.writeUInt32LE(items.length, S.fuse_batch_forget_in.offsets.count);
    items.forEach(([id, n], i) => {
      const at = S.fuse_batch_forget_in.size + i * one;
      b.writeBigUInt64LE(BigInt(id), at + S.fuse_forget_one.offsets.nodeid);
      b.writeBigUInt64LE(BigInt(n), at + S.fuse_forget_one.offsets.nlookup);
    });
    return b;
  },
  open: (flags = 0) => enc(S.fuse_open_in, { flags }),
  read: (fh: number, size = 4096, offset = 0n) => enc(S.fuse_read_in, { fh, size, offset }),
  release: (fh: number) => enc(S.fuse_release_in, { fh }),
  rename: (newdir: number | bigint, from: string, to: string) => Buffer.concat([u64(newdir), cstr(from), cstr(to)]),
  rename2: (newdir: number | bigint, from: string, to: string, flags = 0) => {
    const b = enc(S.fuse_rename2_in, { flags });
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(newdir)), S.fuse_rename2_in.offsets.newdir);
    return Buffer.concat([b, cstr(from), cstr(to)]);
  },
  link: (oldnodeid: number | bigint, name: string) => Buffer.concat([u64(oldnodeid), cstr(name)]),
  setattrMode: (mode: number) => enc(S.fuse_setattr_in, { valid: FATTR.MODE, mode }),
  mkdir: (name: string, mode = 0o755) => Buffer.concat([enc(S.fuse_mkdir_in, { mode, umask: 0 }), cstr(name)]),
  mknod: (name: string, mode = 0o100644) => Buffer.concat([enc(S.fuse_mknod_in, { mode }), cstr(name)]),
  create: (name: string, mode = 0o100644, flags = 2) => Buffer.concat([enc(S.fuse_create_in, { flags, mode }), cstr(name)]),
  symlink: (name: string, target: string) => Buffer.concat([cstr(name), cstr(target)]),
  name: (name: string) => cstr(name),
  access: (mask = 0) => enc(S.fuse_access_in, { mask }),
  getxattr: (name: string, size = 0) => Buffer.concat([enc(S.fuse_getxattr_in, { size }), cstr(name)]),
  listxattr: (size = 0) => enc(S.fuse_getxattr_in, { size }),
  flush: (fh: number) => enc(S.fuse_flush_in, { fh }),
  fsync: (fh: number) => enc(S.fuse_fsync_in, { fh }),
  empty: () => Buffer.alloc(0),
};
function u64(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
  return b;
}

// ---- replies ----

const H = S.fuse_out_header.size;
const errorOf = (r: Buffer) => r.readInt32LE(S.fuse_out_header.offsets.error);
const entryNode = (r: Buffer) => Number(r.readBigUInt64LE(H + S.fuse_entry_out.offsets.nodeid));
const entryIno = (r: Buffer) => r.readBigUInt64LE(H + S.fuse_entry_out.offsets.attr + S.fuse_attr.offsets.ino);
const attrIno = (r: Buffer) => r.readBigUInt64LE(H + S.fuse_attr_out.offsets.attr + S.fuse_attr.offsets.ino);
const openFh = (r: Buffer) => Number(r.readBigUInt64LE(H + S.fuse_open_out.offsets.fh));
/** CREATE: fuse_entry_out then fuse_open_out. */
const createFh = (r: Buffer) => Number(r.readBigUInt64LE(H + S.fuse_entry_out.size + S.fuse_open_out.offsets.fh));
/** READDIR records: [name, ino]. */
function dirents(r: Buffer): [string, bigint][] {
  const out: [string, bigint][] = [];
  let p = H;
  while (p + S.fuse_dirent.size <= r.length) {
    const ino = r.readBigUInt64LE(p + S.fuse_dirent.offsets.ino);
    const len = r.readUInt32LE(p + S.fuse_dirent.offsets.namelen);
    out.push([r.subarray(p + S.fuse_dirent.size, p + S.fuse_dirent.size + len).toString('latin1'), ino]);
    p += (S.fuse_dirent.size + len + 7) & ~7;
  }
  return out;
}
/** READDIRPLUS records: [name, nodeid]. */
function direntsPlus(r: Buffer): [string, number][] {
  const out: [string, number][] = [];
  let p = H;
  const d = S.fuse_direntplus.offsets.dirent;
  while (p + S.fuse_direntplus.size <= r.length) {
    const node = Number(r.readBigUInt64LE(p + S.fuse_direntplus.offsets.entry_out + S.fuse_entry_out.offsets.nodeid));
    const len = r.readUInt32LE(p + d + S.fuse_dirent.offsets.namelen);
    out.push([r.subarray(p + S.fuse_direntplus.size, p + S.fuse_direntplus.size + len).toString('latin1'), node]);
    p += (S.fuse_direntplus.size + len + 7) & ~7;
  }
  return out;
}

// ---- the harness: a Server over a Vfs, a capture sink ----

const ALL_FLAGS = Object.values(InitFlag).reduce((a, b) => a + b, 0);
function intersect64(a: number, b: number): number {
  return Number(BigInt(a) & BigInt(b));
}
const hasFlag = (v: number, f: number) => Math.floor(v / f) % 2 === 1;

async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

class Harness {
  readonly server: Server;
  readonly logs: string[] = [];
  /** Replies by unique. */
  readonly replies = new Map<number, Buffer[]>();
  /** Replies to uniques never sent (must stay empty). */
  readonly stray: Buffer[] = [];
  private unique = 1;
  private readonly buf = Buffer.alloc(1 << 20);
  private readonly view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  /** Negotiated flags after start(). */
  flags = 0;
  /** Uniques whose (successful) reply the sink reports as not delivered (-ENOENT: the
   * request was interrupted), as the kernel's write does; the reply is still recorded. */
  readonly undeliver = new Set<number>();

  constructor(readonly vfs: Vfs, opts: ServerOptions = {}) {
    this.server = new Server(vfs, { log: (l) => this.logs.push(l), ...opts });
    const take = (b: Buffer) => {
      const u = Number(b.readBigUInt64LE(S.fuse_out_header.offsets.unique));
      const list = this.replies.get(u);
      if (list) list.push(b);
      else this.stray.push(b);
      return this.undeliver.has(u) ? -E.ENOENT : b.length;
    };
    this.server.sink = {
      write: (_c, bytes, len) => take(Buffer.from(bytes.subarray(0, len))),
      writev: (_c, chunks) => take(Buffer.concat(chunks.map((c) => Buffer.from(c)))),
      notifier: new Notifier(() => undefined, (l) => this.logs.push(`notify: ${l}`)),
    };
  }

  /** INIT as a mount would run it: the offer, the Vfs's want, then ready(). Returns the want. */
  async start(offer: Partial<KernelOffer> = {}): Promise<number> {
    const o: KernelOffer = {
      major: 7, minor: 45, maxReadahead: 1 << 17, flags: ALL_FLAGS, defaultPermissions: false, atime: 'relatime',
      nodiratime: false, ...offer,
    };
    const want = await this.server.init(o);
    this.flags = intersect64(o.flags, want);
    this.server.ready({ minor: 45, offered: o.flags, flags: this.flags, maxWrite: 1 << 20, maxReadahead: o.maxReadahead, maxPages: 256 });
    return want;
  }

  /** The unique the next send() uses. */
  get nextUnique(): number { return this.unique; }

  /** Sends one request; returns its unique. Throws if request() throws. */
  send(opcode: number, nodeid: number | bigint, b: Uint8Array = Buffer.alloc(0)): number {
    const u = this.unique++;
    const n = 40 + b.length;
    this.buf.fill(0, 0, n + 64);
    S.fuse_in_header.encode(this.view, 0, { len: n, opcode, unique: BigInt(u), uid: 0, gid: 0, pid: 4242 });
    this.view.setBigUint64(16, BigInt.asUintN(64, BigInt(nodeid)), true);
    this.buf.set(b, 40);
    if (!NO_REPLY.has(opcode)) this.replies.set(u, []);
    this.server.request(this.buf, this.view, n, {} as any);
    return u;
  }

  /** Waits (a bounded number of event-loop turns) for the reply to `u`. */
  async wait(u: number, maxTurns = 200): Promise<Buffer[]> {
    const list = this.replies.get(u)!;
    for (let i = 0; i < maxTurns && list.length === 0; i++) await turns(1);
    return list;
  }

  /** One request, its one reply. */
  async call(opcode: number, nodeid: number | bigint, b?: Uint8Array): Promise<Buffer> {
    const u = this.send(opcode, nodeid, b);
    const list = await this.wait(u);
    assert.is(list.length, 1, `opcode ${opcode} node ${nodeid}: one reply (logs: ${this.logs.slice(-5).join(' | ')})`);
    return list[0];
  }
  /** A request that must succeed; its reply. */
  async ok(opcode: number, nodeid: number | bigint, b?: Uint8Array): Promise<Buffer> {
    const r = await this.call(opcode, nodeid, b);
    assert.is(errName(errorOf(r)), 'OK', `opcode ${opcode} node ${nodeid} (logs: ${this.logs.slice(-5).join(' | ')})`);
    return r;
  }
  async errno(opcode: number, nodeid: number | bigint, b?: Uint8Array): Promise<string> {
    return errName(errorOf(await this.call(opcode, nodeid, b)));
  }
  async lookup(parent: number, name: string): Promise<number> {
    return entryNode(await this.ok(OP.LOOKUP, parent, body.lookup(name)));
  }
  async listdir(node: number): Promise<string[]> {
    const fh = openFh(await this.ok(OP.OPENDIR, node, body.open()));
    const r = await this.ok(OP.READDIR, node, body.read(fh, 65536));
    await this.ok(OP.RELEASEDIR, node, body.release(fh));
    return dirents(r).map(([n]) => n);
  }
}

/** The Vfs's own log lines (attach, detach, refusals), kept bounded. */
const vfsLogs: string[] = [];
function newVfs(o: VfsOptions = {}): Vfs {
  return new Vfs({ log: (l) => { if (vfsLogs.length < 2000) vfsLogs.push(l); }, ...o });
}

// ---- a recording backend: every node id it receives must be one it handed out ----

interface RecOpts {
  /** The next local id handed out (default 2). */
  firstId?: number;
  /** Ids at or above this are "not mine" (default 2^37). */
  limit?: number;
  init?: (info: InitInfo) => void;
  /** Extra methods / overrides. */
  extra?: Partial<FileSystem>;
  /** Answer every request (but forget/init) later, from a promise settled on a later turn. */
  async?: boolean;
}

/** Which backend is being called right now (set by the fuzzer around each request). */
let currentCase = -1;

class RecFs {
  /** Local ids handed out (the root, 1, is always valid). */
  readonly handed = new Set<number>([1]);
  /** Lookups counted by this backend (entries handed out minus forgets), root excluded. */
  readonly lookups = new Map<number, number>();
  readonly forgets: [number, number][] = [];
  /** [method, ids...] of every call, with the fuzz case it came in. */
  readonly calls: { m: string; ids: number[]; caseNo: number }[] = [];
  /** Violations: ids not handed out, ids out of range, negative counts. */
  readonly bad: string[] = [];
  readonly dirs = new Set<number>([1]);
  readonly openFhs = new Map<number, number>();
  private next: number;
  private nextFh = 1;
  private readonly byName = new Map<string, number>();
  readonly limit: number;
  readonly fs: FileSystem;

  constructor(readonly label: string, readonly opts: RecOpts = {}) {
    this.next = opts.firstId ?? 2;
    this.limit = opts.limit ?? 2 ** 37;
    const o = this;
    const fs: FileSystem = {
      lookup: (_c, parent, name) => { o.seen('lookup', parent); if (name.startsWith('x')) throw new FuseError('ENOENT'); return o.entry(parent, name); },
      forget: (id, n) => {
        o.seen('forget', id);
        o.forgets.push([id, n]);
        if (id === 1) return;
        const c = (o.lookups.get(id) ?? 0) - n;
        if (c < 0) o.bad.push(`${o.label}: forget(${id}, ${n}) below 0 (count was ${c + n})`);
        if (c <= 0) o.lookups.delete(id);
        else o.lookups.set(id, c);
      },
      getattr: (_c, id) => { o.seen('getattr', id); return { attr: o.attr(id) }; },
      setattr: (_c, id) => { o.seen('setattr', id); return { attr: o.attr(id) }; },
      readlink: (_c, id) => { o.seen('readlink', id); return 'target'; },
      mkdir: (_c, p, name) => { o.seen('mkdir', p); return o.entry(p, name, true); },
      mknod: (_c, p, name) => { o.seen('mknod', p); return o.entry(p, name); },
      symlink: (_c, p, name) => { o.seen('symlink', p); return o.entry(p, name); },
      create: (_c, p, name) => { o.seen('create', p); return { entry: o.entry(p, name), fh: o.open() }; },
      unlink: (_c, p) => { o.seen('unlink', p); },
      rmdir: (_c, p) => { o.seen('rmdir', p); },
      rename: (_c, p, _n, np) => { o.seen('rename', p, np); },
      link: (_c, id, np, name) => {
        o.seen('link', id, np);
        if (o.dirs.has(id)) throw new FuseError('EPERM'); // no hard links to directories (the kernel refuses them first)
        return o.entry(np, name, false, id);
      },
      open: (_c, id) => { o.seen('open', id); return { fh: o.open() }; },
      opendir: (_c, id) => { o.seen('opendir', id); return { fh: o.open() }; },
      read: (_c, id) => { o.seen('read', id); return new Uint8Array(0); },
      write: (_c, id, _fh, _off, data) => { o.seen('write', id); return data.length; },
      release: (_c, id, fh) => { o.seen('release', id); o.close(fh); },
      releasedir: (_c, id, fh) => { o.seen('releasedir', id); o.close(fh); },
      readdir: (_c, id, _fh, offset, out) => {
        o.seen('readdir', id);
        if (offset === 0n) out.add('.', id, 4, 1) && out.add('..', 1, 4, 2) && out.add(`f${id}`, 77, 8, 3);
      },
      statfs: (_c, id) => { o.seen('statfs', id); return { bsize: 4096, blocks: 100 + id, namelen: 255 }; },
      access: (_c, id) => { o.seen('access', id); },
      flush: (_c, id) => { o.seen('flush', id); },
      fsync: (_c, id) => { o.seen('fsync', id); },
      getxattr: (_c, id) => { o.seen('getxattr', id); throw new FuseError('ENODATA'); },
      listxattr: (_c, id) => { o.seen('listxattr', id); return []; },
      ...(opts.init ? { init: opts.init } : {}),
      ...opts.extra,
    };
    if (opts.async) {
      for (const [k, f] of Object.entries(fs)) {
        if (k === 'forget' || k === 'init' || typeof f !== 'function') continue;
        (fs as any)[k] = (...a: unknown[]) => new Promise((res, rej) => setImmediate(() => {
          try { res((f as (...x: unknown[]) => unknown)(...a)); } catch (e) { rej(e); }
        }));
      }
    }
    this.fs = fs;
  }

  seen(m: string, ...ids: number[]): void {
    this.calls.push({ m, ids, caseNo: currentCase });
    for (const id of ids) {
      if (!Number.isSafeInteger(id) || id < 1 || id >= this.limit) this.bad.push(`${this.label}: ${m}(${id}): out of the local id range`);
      else if (!this.handed.has(id)) this.bad.push(`${this.label}: ${m}(${id}): never handed out`);
    }
  }
  attr(id: number): Attr {
    return { ino: id, mode: this.dirs.has(id) ? 0o40755 : 0o100644, nlink: 1 };
  }
  entry(parent: number, name: string, dir = name.startsWith('d'), id?: number): Entry {
    const key = `${parent}/${name}`;
    let n = id ?? this.byName.get(key);
    if (n === undefined) {
      n = this.next++;
      this.byName.set(key, n);
      if (dir) this.dirs.add(n);
    }
    this.handed.add(n);
    this.lookups.set(n, (this.lookups.get(n) ?? 0) + 1);
    return { nodeid: n, attr: this.attr(n) };
  }
  open(): number {
    const fh = this.nextFh++;
    this.openFhs.set(fh, 1);
    return fh;
  }
  close(fh: number): void {
    if (!this.openFhs.delete(fh)) this.bad.push(`${this.label}: release of fh ${fh} never opened (or released twice)`);
  }
  /** Calls since `mark` (an index in calls). */
  since(mark: number) { return this.calls.slice(mark); }
  totalLookups(): number { let s = 0; for (const v of this.lookups.values()) s += v; return s; }
}

function backendStats(vfs: Vfs, path: string): { index: number; lookups: number; handles: number; requests: number; errors: number } {
  const s = vfs.stats() as any;
  const b = s.backends[path];
  assert.ok(b, `vfs.stats().backends has ${path}: ${JSON.stringify(Object.keys(s.backends))}`);
  return b;
}

async function threeBackends(opts: VfsOptions = {}) {
  const vfs = newVfs(opts);
  const a = new RecFs('a'), b = new RecFs('b'), c = new RecFs('c');
  assert.is(await vfs.attach('/a', a.fs), 1);
  assert.is(await vfs.attach('/b', b.fs), 2);
  assert.is(await vfs.attach('/c', c.fs), 3);
  const h = new Harness(vfs);
  await h.start();
  return { vfs, h, rec: { a, b, c } as Record<string, RecFs>, recs: [a, b, c] };
}

// ======================================================================
// 1. node id partition
// ======================================================================

test('partition: LOOKUP of /a, /b, /c in the root answers ids of index 1, 2, 3; backends see only their own local ids', async () => {
  const { vfs, h, rec, recs } = await threeBackends();
  assert.equal(vfs.list().map((l) => [l.path, l.index]), [['/a', 1], ['/b', 2], ['/c', 3]]);
  const roots: Record<string, number> = {};
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const id = await h.lookup(1, name);
    assert.is(indexOf(id), i + 1, `${name}: node id ${id} has index ${i + 1}`);
    assert.ok(id < 2 ** 53);
    roots[name] = id;
  }
  // Below each root: the backend gets lookup(its local parent), answers a local id; the
  // node id handed to the kernel is that local id in its index.
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const r = rec[name];
    const mark = recs.map((x) => x.calls.length);
    const reply = await h.ok(OP.LOOKUP, roots[name], body.lookup(`file-${name}`));
    const id = entryNode(reply);
    assert.is(indexOf(id), i + 1);
    const local = localOf(id);
    assert.ok(r.handed.has(local), `${name}: local id ${local} was handed out by backend ${name}`);
    assert.equal(r.since(mark[i]).filter((c) => c.m === 'lookup').map((c) => c.ids), [[1]], `${name}: lookup in its local root (1)`);
    // st_ino: the backend's ino (its local id here) with the index XOR-ed into bits 48..63.
    assert.is(entryIno(reply), BigInt(local) ^ (BigInt(i + 1) << 48n), `${name}: st_ino`);
    recs.forEach((x, j) => { if (j !== i) assert.is(x.calls.length, mark[j], `backend ${x.label} saw nothing of a lookup in /${name}`); });
    // GETATTR of the handed-out id reaches the same backend with the local id.
    const m2 = r.calls.length;
    const ga = await h.ok(OP.GETATTR, id, body.getattr());
    assert.equal(r.since(m2).map((c) => [c.m, c.ids]), [['getattr', [local]]]);
    assert.is(attrIno(ga), BigInt(local) ^ (BigInt(i + 1) << 48n));
  }
  for (const r of recs) {
    assert.equal(r.bad, [], r.bad.join('\n'));
    for (const c of r.calls) for (const id of c.ids) assert.ok(id < 2 ** 37, `${r.label}: ${c.m}(${id}) < 2^37`);
  }
});

test('partition: a deep path (/x/y) gets pseudo directories in index 0; its backend ids are its index', async () => {
  const vfs = newVfs();
  const a = new RecFs('a');
  const y = new RecFs('y');
  await vfs.attach('/a', a.fs);
  const iy = await vfs.attach('/x/y', y.fs);
  assert.is(iy, 2);
  const h = new Harness(vfs);
  await h.start();
  const x = await h.lookup(1, 'x');
  assert.is(indexOf(x), 0, 'the pseudo directory x is in index 0');
  assert.equal((await h.listdir(x)).filter((n) => n !== '.' && n !== '..'), ['y']);
  const yr = await h.lookup(x, 'y');
  assert.is(indexOf(yr), 2);
  const f = await h.lookup(yr, 'f');
  assert.is(indexOf(f), 2);
  assert.ok(y.handed.has(localOf(f)));
  // /a saw nothing but the GETATTR of its own root the attach makes (for listings of its parent).
  assert.equal(a.calls, [{ m: 'getattr', ids: [1], caseNo: -1 }]);
  assert.equal(y.bad, []);
});

// ======================================================================
// 2. fuzz
// ======================================================================

const FUZZ_SEED = (() => {
  const s = process.env.TSFUSE_VFS_SEED ?? process.env.TSFUSE_FUZZ_SEED;
  return s ? Number(s) >>> 0 : 0x5eed0f5;
})();
const FUZZ_CASES = Number(process.env.TSFUSE_VFS_CASES ?? 5000);

/**
 * What a node id is, for the kernel (us): 'live' — handed out and held (or a pseudo
 * directory, or a backend root); 'forgotten' — handed out, then forgotten to 0; 'dead' — of a
 * backend detached by force;
 * 'forged' — in an attached index, but never handed out; 'nobackend' — an index with no
 * backend; 'zero'; 'huge' (2^53-1); 'random' (below 2^53, in an index with no backend).
 * Only 'live' ids may reach a backend; every other one is ESTALE before any backend sees it.
 */
type Kind = 'live' | 'forgotten' | 'dead' | 'forged' | 'nobackend' | 'zero' | 'huge' | 'random';

test(`fuzz: ${FUZZ_CASES} random requests (seed 0x${FUZZ_SEED.toString(16)}): one reply each, ESTALE for ids of no backend, backends see only their ids, counts stay right`, async () => {
  console.log(`vfs fuzz: seed 0x${FUZZ_SEED.toString(16)} (TSFUSE_VFS_SEED), ${FUZZ_CASES} cases (TSFUSE_VFS_CASES)`);
  const rng = new Rng(FUZZ_SEED, 0x7f5);
  const vfs = newVfs();
  // The backends: a sync recorder at /a, an async one at /b (detached and attached again
  // now and then), one below a pseudo directory at /x/y, and memfs (an InodeTree) at /m.
  interface Slot { path: string; index: number; rec?: RecFs; tree?: ReturnType<typeof memfs> }
  const tree = memfs();
  let bGen = 0;
  const slots: Slot[] = [
    { path: '/a', index: 0, rec: new RecFs('a') },
    { path: '/b', index: 0, rec: new RecFs(`b${bGen}`, { async: true }) },
    { path: '/x/y', index: 0, rec: new RecFs('xy') },
    { path: '/m', index: 0, tree },
  ];
  for (const sl of slots) sl.index = await vfs.attach(sl.path, sl.rec ? sl.rec.fs : sl.tree!);
  assert.equal(slots.map((sl) => sl.index), [1, 2, 3, 4]);
  const byIndex = new Map(slots.map((sl) => [sl.index, sl]));
  /** Every recorder ever attached (detached ones must not be called again). */
  const allRecs: RecFs[] = slots.flatMap((sl) => (sl.rec ? [sl.rec] : []));
  /** Indexes of backends detached by force (their ids: 'dead'). */
  const dead = new Set<number>();
  const h = new Harness(vfs);
  await h.start();

  // What the kernel (we) holds: node id → lookups, from the entry replies received.
  const held = new Map<number, number>();
  const hold = (id: number) => held.set(id, (held.get(id) ?? 0) + 1);
  const known = new Set<number>([1]);
  let knownList: number[] = [1];
  const addKnown = (id: number) => { if (!known.has(id)) { known.add(id); knownList.push(id); } };
  let fhs: { node: number; fh: number; dir: boolean }[] = [];
  const failures: string[] = [];
  const fail = (caseNo: number, what: string) => { if (failures.length < 40) failures.push(`case ${caseNo}: ${what}`); };
  const outcomes: Record<string, number> = {};
  const count = (k: string) => { outcomes[k] = (outcomes[k] ?? 0) + 1; };

  for (const n of ['a', 'b', 'x', 'm']) {
    const id = await h.lookup(1, n);
    hold(id);
    addKnown(id);
  }
  const x = await h.lookup(1, 'x');
  hold(x);
  const yRoot = await h.lookup(x, 'y');
  hold(yRoot);
  addKnown(yRoot);

  const NAMES = ['f1', 'f2', 'd1', 'd2', 'xmissing', 'a', 'b', 'x', 'm', 'y', 'g'];
  const kindOf = (id: number): Kind => {
    if (dead.has(indexOf(id))) return 'dead';
    return indexOf(id) === 0 || localOf(id) === 1 || (held.get(id) ?? 0) > 0 ? 'live' : 'forgotten';
  };
  function noBackendId(): number {
    let i = 9 + rng.int(65527);
    while (byIndex.has(i) || dead.has(i)) i = 9 + rng.int(65527);
    return globalId(i, rng.chance(0.5) ? 1 : 1 + rng.int(1000));
  }
  function pickId(): { id: number; kind: Kind } {
    const k = rng.int(100);
    if (k < 6) { const id = rng.pick([1, x]); return { id, kind: kindOf(id) }; }
    if (k < 66) { const id = rng.pick(knownList); return { id, kind: kindOf(id) }; }
    if (k < 74) return { id: globalId(rng.pick([...byIndex.keys()]), 2 ** 30 + rng.int(2 ** 30)), kind: 'forged' };
    if (k < 84) return { id: noBackendId(), kind: 'nobackend' };
    if (k < 88) return { id: 0, kind: 'zero' };
    if (k < 92) return { id: MAX_ID, kind: 'huge' };
    for (;;) {
      const id = Math.floor((rng.u32() / TWO32) * 2 ** 21) * TWO32 + rng.u32();
      if (!byIndex.has(indexOf(id)) && !dead.has(indexOf(id)) && indexOf(id) !== 0) return { id, kind: 'random' };
    }
  }
  const OPS = [OP.GETATTR, OP.LOOKUP, OP.FORGET, OP.BATCH_FORGET, OP.OPEN, OP.OPENDIR, OP.READ, OP.READDIR, OP.READDIRPLUS,
    OP.RELEASE, OP.RELEASEDIR, OP.RENAME, OP.RENAME2, OP.LINK, OP.SETATTR, OP.STATFS, OP.MKDIR, OP.MKNOD, OP.CREATE,
    OP.UNLINK, OP.RMDIR, OP.SYMLINK, OP.READLINK, OP.ACCESS, OP.GETXATTR, OP.LISTXATTR, OP.FLUSH, OP.FSYNC];
  const ENTRY = new Set<number>([OP.LOOKUP, OP.MKDIR, OP.MKNOD, OP.SYMLINK, OP.LINK, OP.CREATE]);
  const PSEUDO_CHANGES = new Set<number>([OP.MKDIR, OP.MKNOD, OP.CREATE, OP.SYMLINK, OP.UNLINK, OP.RMDIR, OP.SETATTR]);
  const HANDS_OUT = new Set<number>([...ENTRY, OP.OPEN, OP.OPENDIR, OP.READDIRPLUS]);
  const statsKey = () => JSON.stringify((vfs.stats() as any).backends, (k, v) => (k === 'requests' || k === 'errors' || k === 'fs' ? undefined : v));

  for (let caseNo = 0; caseNo < FUZZ_CASES; caseNo++) {
    currentCase = caseNo;
    // Now and then: detach /b (by force, or politely) and attach a new one there.
    if (rng.chance(0.004)) {
      const sl = slots[1];
      const force = rng.chance(0.7);
      const holding = [...held.keys()].some((id) => indexOf(id) === sl.index) || fhs.some((f) => indexOf(f.node) === sl.index);
      let refused: any;
      try { await vfs.detach('/b', { force }); } catch (e) { refused = e; }
      if (refused) {
        if (force || refused.code !== 'EBUSY') fail(caseNo, `detach /b (force ${force}): ${refused}`);
        if (!holding) fail(caseNo, `detach /b: EBUSY though the kernel holds nothing of it`);
        count('detach:EBUSY');
        continue;
      }
      if (!force && holding) fail(caseNo, 'detach /b without force succeeded while the kernel holds ids / handles of it');
      count(force ? 'detach:forced' : 'detach:ok');
      byIndex.delete(sl.index);
      dead.add(sl.index);
      const rec = new RecFs(`b${++bGen}`, { async: true });
      allRecs.push(rec);
      const idx = await vfs.attach('/b', rec.fs);
      if (byIndex.has(idx)) fail(caseNo, `attach /b: index ${idx} is in use`);
      if (dead.has(idx)) {
        const still = [...held.keys()].filter((id) => indexOf(id) === idx);
        if (still.length || fhs.some((f) => indexOf(f.node) === idx)) fail(caseNo, `attach /b: index ${idx} reused while the kernel holds ${still.length} of its old ids or handles`);
        dead.delete(idx);
        // Old ids of that index are gone from the kernel: forget them here too.
        knownList = knownList.filter((id) => indexOf(id) !== idx);
        for (const id of [...known]) if (indexOf(id) === idx) known.delete(id);
      }
      Object.assign(sl, { index: idx, rec });
      byIndex.set(idx, sl);
      // The kernel finds the new one by its name.
      const nb = await h.lookup(1, 'b');
      if (indexOf(nb) !== idx) fail(caseNo, `LOOKUP b after attach: index ${indexOf(nb)}, attached at ${idx}`);
      hold(nb);
      addKnown(nb);
      continue;
    }
    const op = rng.pick(OPS);
    let { id: node, kind } = pickId();
    const name = rng.pick(NAMES);
    let b: Buffer;
    let fhRec: { node: number; fh: number; dir: boolean } | undefined;
    let second: { id: number; kind: Kind } | undefined;
    const forgets: [number, number][] = [];
    switch (op) {
      case OP.LOOKUP: case OP.UNLINK: case OP.RMDIR: b = body.name(name); break;
      case OP.GETATTR: b = body.getattr(); break;
      case OP.FORGET: case OP.BATCH_FORGET: {
        // The kernel never forgets more than it holds: an id it holds gets at most its count
        // (an open file keeps one); any other id, anything.
        const n = op === OP.FORGET ? 1 : rng.int(6);
        const taken = new Map<number, number>();
        for (let i = 0; i < n; i++) {
          const p = i === 0 ? { id: node, kind } : pickId();
          if ((p.kind === 'live' || p.kind === 'dead') && indexOf(p.id) !== 0) {
            const pinned = fhs.some((f) => f.node === p.id) ? 1 : 0;
            const left = (held.get(p.id) ?? 0) - (taken.get(p.id) ?? 0) - pinned;
            if (left <= 0) { if (op === OP.FORGET) { node = MAX_ID; kind = 'huge'; forgets.push([node, 1]); } continue; }
            const c = 1 + rng.int(left);
            taken.set(p.id, (taken.get(p.id) ?? 0) + c);
            forgets.push([p.id, c]);
          } else forgets.push([p.id, 1 + rng.int(3)]);
        }
        b = op === OP.FORGET ? body.forget(forgets[0][1]) : body.batchForget(forgets);
        if (op === OP.FORGET) node = forgets[0][0];
        break;
      }
      case OP.OPEN: b = body.open(2); break;
      case OP.OPENDIR: b = body.open(0); break;
      case OP.READ: case OP.READDIR: case OP.READDIRPLUS: case OP.RELEASE: case OP.RELEASEDIR: case OP.FLUSH: case OP.FSYNC: {
        // Mostly a handle we hold, on its node; else a random handle on the picked node.
        const dirOp = op === OP.READDIR || op === OP.READDIRPLUS || op === OP.RELEASEDIR;
        const releasing = op === OP.RELEASE || op === OP.RELEASEDIR;
        const mine = fhs.filter((f) => f.dir === dirOp);
        let fh = rng.int(50);
        if (mine.length && (releasing || rng.chance(0.8))) {
          fhRec = rng.pick(mine);
          node = fhRec.node;
          kind = kindOf(node) === 'dead' ? 'dead' : 'live';
          fh = fhRec.fh;
        } else if (releasing && (kind === 'live' || kind === 'forgotten' || kind === 'forged' || kind === 'dead')) {
          // The kernel releases only what it opened (forged releases: a test of their own below).
          node = noBackendId();
          kind = 'nobackend';
        }
        b = releasing ? body.release(fh) : op === OP.FLUSH ? body.flush(fh) : op === OP.FSYNC ? body.fsync(fh) : body.read(fh, 4096);
        break;
      }
      case OP.RENAME: case OP.RENAME2: case OP.LINK:
        second = pickId();
        b = op === OP.LINK ? body.link(second.id, name) // node: the new parent; oldnodeid: the source
          : op === OP.RENAME ? body.rename(second.id, name, rng.pick(NAMES)) : body.rename2(second.id, name, rng.pick(NAMES));
        break;
      case OP.SETATTR: b = body.setattrMode(0o644); break;
      case OP.STATFS: case OP.READLINK: b = body.empty(); break;
      case OP.MKDIR: b = body.mkdir(`d${name}`); break;
      case OP.MKNOD: b = body.mknod(name); break;
      case OP.CREATE: b = body.create(name); break;
      case OP.SYMLINK: b = body.symlink(name, 'tgt'); break;
      case OP.ACCESS: b = body.access(4); break;
      case OP.GETXATTR: b = body.getxattr('user.x'); break;
      case OP.LISTXATTR: b = body.listxattr(); break;
      default: throw new Error(`op ${op}`);
    }
    const recs = allRecs;
    const marks = recs.map((r) => r.calls.length);
    const lookupsBefore = recs.map((r) => r.totalLookups());
    const treeBefore = tree.stats().lookups;
    const statsBefore = statsKey();
    // Some replies that hand out something (entries, handles) are not delivered: the kernel
    // never saw them, so the Server undoes them (forget, release) through the Vfs.
    const undelivered = HANDS_OUT.has(op) && rng.chance(0.06);
    if (undelivered) h.undeliver.add(h.nextUnique);
    const desc = `op ${op} node ${node} (${kind}${second ? `, second ${second.id} ${second.kind}` : ''}) name ${name}${undelivered ? ' (reply not delivered)' : ''}`;
    let u: number;
    try {
      u = h.send(op, node, b);
    } catch (e) {
      fail(caseNo, `${desc}: request() threw ${String(e)}`);
      continue;
    }
    if (NO_REPLY.has(op)) {
      await turns(2);
      const touched = new Set<RecFs | typeof tree>();
      for (const [fid, n] of forgets) {
        const k = kindOf(fid);
        if ((k !== 'live' && k !== 'dead') || !known.has(fid)) continue;
        const sl = byIndex.get(indexOf(fid));
        if (k === 'live' && sl) touched.add(sl.rec ?? sl.tree!);
        const c = (held.get(fid) ?? 0) - n;
        if (c <= 0) held.delete(fid); else held.set(fid, c);
      }
      if (h.stray.length) fail(caseNo, `${desc}: a no-reply opcode was answered`);
      // A FORGET reaches only the backends of the ids held in it; other ids change no count.
      recs.forEach((r, i) => {
        const calls = r.since(marks[i]);
        if (!touched.has(r) && calls.length) fail(caseNo, `${desc}: ${r.label} got ${JSON.stringify(calls)}`);
        if (!touched.has(r) && r.totalLookups() !== lookupsBefore[i]) fail(caseNo, `${desc}: ${r.label}'s lookups changed`);
        for (const c of calls) if (c.m !== 'forget') fail(caseNo, `${desc}: ${r.label} got ${c.m} for a FORGET`);
      });
      if (!touched.has(tree) && tree.stats().lookups !== treeBefore) fail(caseNo, `${desc}: memfs's lookups changed`);
      if (!touched.size && !forgets.some(([fid]) => kindOf(fid) === 'dead') && statsKey() !== statsBefore) {
        fail(caseNo, `${desc}: vfs.stats() changed by a FORGET of ids not held: ${statsBefore} → ${statsKey()}`);
      }
      count(op === OP.FORGET ? 'FORGET' : 'BATCH_FORGET');
      continue;
    }
    const list = await h.wait(u, 400);
    if (list.length !== 1) { fail(caseNo, `${desc}: ${list.length} replies`); continue; }
    const r = list[0];
    const err = errorOf(r);
    count(`${kind}:${errName(err)}`);
    if (process.env.VFS_TRACE && -err === E.EIO) console.log(`TRACE case ${caseNo}: ${desc} → EIO; logs: ${h.logs.slice(-2).join(' | ')}`);
    if (r.readUInt32LE(0) !== r.length) fail(caseNo, `${desc}: header len ${r.readUInt32LE(0)} != ${r.length}`);
    const noBackendCalls = () => recs.forEach((rr, i) => {
      if (rr.calls.length !== marks[i]) fail(caseNo, `${desc}: backend ${rr.label} was called: ${JSON.stringify(rr.since(marks[i]))}`);
    });
    const releasing = op === OP.RELEASE || op === OP.RELEASEDIR;
    // FLUSH of a backend detached by force succeeds too (close(2) of a held fd is not an error).
    const lenient = releasing || (op === OP.FLUSH && kind === 'dead');
    if (kind !== 'live') {
      // RELEASE of a handle of a backend detached by force, or naming an id of no backend: taken (0) or ESTALE.
      if (lenient ? err !== 0 && -err !== E.ESTALE : -err !== E.ESTALE) fail(caseNo, `${desc}: ${errName(err)}, expected ESTALE`);
      noBackendCalls();
      if (tree.stats().lookups !== treeBefore) fail(caseNo, `${desc}: memfs's lookups changed`);
      if (releasing && fhRec) fhs.splice(fhs.indexOf(fhRec), 1);
      continue;
    }
    if (second && second.kind !== 'live') {
      if (-err !== E.ESTALE) fail(caseNo, `${desc}: ${errName(err)} with a second node id not held, expected ESTALE`);
      noBackendCalls();
      continue;
    }
    if (-err === E.ESTALE) fail(caseNo, `${desc}: ESTALE for a node id the kernel holds`);
    // No backend here misbehaves (memfs and the recorders answer valid results or errnos): no EIO.
    if (-err === E.EIO) fail(caseNo, `${desc}: EIO (${h.logs.at(-1)})`);
    if (second) {
      const i1 = indexOf(node), i2 = indexOf(second.id);
      if (i1 !== i2) {
        if (-err !== E.EXDEV) fail(caseNo, `${desc}: ${errName(err)} across indexes ${i1} and ${i2}, expected EXDEV`);
        noBackendCalls();
      } else if (i1 === 0 && -err !== E.EROFS) fail(caseNo, `${desc}: ${errName(err)} in the pseudo fs, expected EROFS`);
    }
    // Calls for a node of backend i reach only backend i.
    if (indexOf(node) !== 0) {
      const mine = byIndex.get(indexOf(node))?.rec;
      recs.forEach((rr, i) => {
        if (rr !== mine && rr.calls.length !== marks[i]) {
          fail(caseNo, `${desc}: backend ${rr.label} was called for a node of index ${indexOf(node)}: ${JSON.stringify(rr.since(marks[i]))}`);
        }
      });
    } else if (PSEUDO_CHANGES.has(op) && -err !== E.EROFS) {
      fail(caseNo, `${desc}: ${errName(err)} for a change in the pseudo fs, expected EROFS`);
    }
    if (err !== 0) continue;
    if (undelivered) {
      count('undelivered');
      await turns(3); // the Server's undo (an async backend's release) runs now, not in the next case
      continue;
    }
    // Successful entries: what we hold now.
    if (ENTRY.has(op)) {
      const e = entryNode(r);
      if (e !== 0) {
        if (!Number.isSafeInteger(e) || e > MAX_ID) fail(caseNo, `${desc}: entry node id ${e}`);
        if (indexOf(node) !== 0 && indexOf(e) !== indexOf(node)) fail(caseNo, `${desc}: entry ${e} in index ${indexOf(e)}, parent in ${indexOf(node)}`);
        const sl = byIndex.get(indexOf(e));
        if (indexOf(e) !== 0 && !sl) fail(caseNo, `${desc}: entry ${e} in index ${indexOf(e)}, where nothing is attached`);
        if (sl?.rec && !sl.rec.handed.has(localOf(e))) fail(caseNo, `${desc}: entry ${e}: local id ${localOf(e)} was not handed out by ${sl.rec.label}`);
        hold(e);
        addKnown(e);
      }
      if (op === OP.CREATE) fhs.push({ node: e, fh: createFh(r), dir: false });
    }
    if (op === OP.READDIRPLUS) {
      for (const [n, e] of direntsPlus(r)) {
        if (n === '.' || n === '..' || e === 0) continue;
        hold(e);
        addKnown(e);
      }
    }
    if (op === OP.OPEN || op === OP.OPENDIR) fhs.push({ node, fh: openFh(r), dir: op === OP.OPENDIR });
    if (releasing && fhRec) fhs.splice(fhs.indexOf(fhRec), 1);
  }
  currentCase = -1;
  await turns(10);
  for (const [u, list] of h.replies) if (list.length > 1) failures.push(`unique ${u}: ${list.length} replies`);
  if (h.stray.length) failures.push(`${h.stray.length} replies to requests never sent or not expecting one`);
  for (const r of allRecs) for (const b of r.bad) failures.push(`backend: ${b}`);

  // Lookup counts: each backend holds exactly what we hold of its ids (roots excluded), and so does vfs.stats().
  const st = vfs.stats() as any;
  for (const sl of byIndex.values()) {
    const want = new Map<number, number>();
    for (const [id, n] of held) if (indexOf(id) === sl.index && localOf(id) !== 1) want.set(localOf(id), n);
    let sum = 0;
    for (const n of want.values()) sum += n;
    if (st.backends[sl.path]?.lookups !== sum) failures.push(`stats ${sl.path}: lookups ${st.backends[sl.path]?.lookups}, the kernel holds ${sum}`);
    if (sl.tree) {
      if (sl.tree.stats().lookups !== sum) failures.push(`memfs: lookups ${sl.tree.stats().lookups}, the kernel holds ${sum}`);
      continue;
    }
    const got = new Map([...sl.rec!.lookups].filter(([, n]) => n > 0));
    const diff = [...new Set([...want.keys(), ...got.keys()])].filter((k) => want.get(k) !== got.get(k));
    if (diff.length) failures.push(`${sl.rec!.label}: lookup counts differ for local ids ${diff.slice(0, 10).map((k) => `${k}: backend ${got.get(k)}, kernel ${want.get(k)}`).join(', ')}`);
  }
  // Release what we hold, forget everything: no handle and no lookup left anywhere, no detached backend left.
  for (const f of [...fhs]) await h.call(f.dir ? OP.RELEASEDIR : OP.RELEASE, f.node, body.release(f.fh));
  fhs = [];
  const items = [...held].filter(([id]) => indexOf(id) !== 0);
  for (let i = 0; i < items.length; i += 50) h.send(OP.BATCH_FORGET, 0, body.batchForget(items.slice(i, i + 50)));
  await turns(10);
  for (const sl of byIndex.values()) {
    const r = sl.rec;
    if (!r) continue;
    if (r.totalLookups() !== 0) failures.push(`${r.label}: ${r.totalLookups()} lookups left after forgetting everything: ${JSON.stringify([...r.lookups])}`);
    if (r.openFhs.size) failures.push(`${r.label}: ${r.openFhs.size} handles left after releasing everything`);
  }
  for (const r of allRecs) for (const b of r.bad) if (!failures.includes(`backend: ${b}`)) failures.push(`backend: ${b}`);
  const ts = tree.stats();
  if (ts.lookups !== 0 || ts.handles !== 0) failures.push(`memfs: ${JSON.stringify(ts)} after forgetting/releasing everything`);
  const st2 = vfs.stats() as any;
  for (const sl of byIndex.values()) {
    const bs = st2.backends[sl.path];
    if (bs.handles !== 0) failures.push(`stats ${sl.path}: handles ${bs.handles} after releasing everything`);
    if (bs.lookups !== 0) failures.push(`stats ${sl.path}: lookups ${bs.lookups} after forgetting everything`);
  }
  if (Object.keys(st2.detached ?? {}).length) failures.push(`stats: detached backends still held after forgetting everything: ${JSON.stringify(st2.detached)} opens ${JSON.stringify((vfs as any).slots.filter((x: any) => x && !x.live).map((x: any) => [...x.opens]))}`);
  console.log(`vfs fuzz: outcomes by node kind and errno: ${JSON.stringify(outcomes)}`);
  const bCalls = allRecs.filter((r) => r.label.startsWith('b')).reduce((a, r) => a + r.calls.length, 0);
  console.log(`vfs fuzz: backend calls ${allRecs.filter((r) => !r.label.startsWith('b')).map((r) => `${r.label} ${r.calls.length}`).join(', ')}, ` +
    `/b ${bCalls} over ${bGen + 1} attachments (now index ${slots[1].index}); memfs ${JSON.stringify(tree.stats())}`);
  assert.equal(failures, [], `seed 0x${FUZZ_SEED.toString(16)}:\n${failures.join('\n')}`);
});

test('ids inside an attached index that its backend never handed out (or forgot) answer ESTALE and never reach it', async () => {
  const { h, recs } = await threeBackends();
  const aRoot = await h.lookup(1, 'a');
  const f = await h.lookup(aRoot, 'f1');
  const marks = recs.map((r) => r.calls.length);
  for (const local of [localOf(f) + 1000, 2 ** 37 - 1, 2 ** 36, 0]) {
    const id = globalId(1, local);
    assert.is(await h.errno(OP.GETATTR, id, body.getattr()), 'ESTALE', `GETATTR of ${id} (index 1, local ${local})`);
    assert.is(await h.errno(OP.LOOKUP, id, body.lookup('f1')), 'ESTALE');
    assert.is(await h.errno(OP.RENAME, aRoot, body.rename(id, 'f1', 'g')), 'ESTALE');
    assert.is(await h.errno(OP.LINK, aRoot, body.link(id, 'g')), 'ESTALE');
  }
  assert.equal(recs.map((r) => r.calls.length), marks, 'no backend was called');
  // Forgotten: ESTALE too.
  h.send(OP.FORGET, f, body.forget(1));
  await turns();
  assert.is(await h.errno(OP.GETATTR, f, body.getattr()), 'ESTALE');
  assert.equal(recs[0].bad, []);
});

test('RELEASE / RELEASEDIR naming a node id its backend never handed out reach no backend and leave the handle count alone', async () => {
  // Not what a kernel sends (it releases what it opened, on the node it opened), but the
  // Vfs promises that an id its backend never handed out reaches no backend.
  const { vfs, h, recs } = await threeBackends();
  const aRoot = await h.lookup(1, 'a');
  const f = await h.lookup(aRoot, 'f1');
  const fh = openFh(await h.ok(OP.OPEN, f, body.open()));
  assert.is(backendStats(vfs, '/a').handles, 1);
  const marks = recs.map((r) => r.calls.length);
  const forged = globalId(1, 12345);
  const r1 = await h.errno(OP.RELEASE, forged, body.release(fh));
  const r2 = await h.errno(OP.RELEASEDIR, globalId(2, 777), body.release(3));
  const problems: string[] = [];
  const seen = recs.map((r, i) => r.since(marks[i]).map((c) => `${r.label}.${c.m}(${c.ids})`)).flat();
  if (seen.length) problems.push(`RELEASE of forged ${forged} (${r1}) / RELEASEDIR of forged ${globalId(2, 777)} (${r2}) reached: ${seen.join(', ')}`);
  const after = backendStats(vfs, '/a').handles;
  if (after !== 1) problems.push(`/a's handle count went from 1 to ${after} on a RELEASE naming an id it never handed out`);
  // The real RELEASE must still reach the backend (its open file is closed).
  await h.ok(OP.RELEASE, f, body.release(fh));
  if (recs[0].openFhs.has(fh)) problems.push(`the real RELEASE of fh ${fh} on ${f} never reached /a: its open file leaks`);
  if (backendStats(vfs, '/a').handles !== 0) problems.push(`/a's handle count is ${backendStats(vfs, '/a').handles} after the real RELEASE`);
  assert.equal(problems, [], problems.join('\n'));
});

test('CREATE answered with a local id out of range: EIO, and the file the backend opened is released, its lookup forgotten', async () => {
  const vfs = newVfs();
  const released: number[] = [];
  const forgot: [number, number][] = [];
  const fs: FileSystem = {
    getattr: () => ({ attr: { ino: 1, mode: 0o40755 } }),
    create: () => ({ entry: { nodeid: 2 ** 37 + 5, attr: { ino: 9, mode: 0o100644 } }, fh: 77 }),
    release: (_c, _id, fh) => { released.push(fh); },
    forget: (id, n) => { forgot.push([id, n]); },
  };
  await vfs.attach('/a', fs);
  const h = new Harness(vfs);
  await h.start();
  const a = await h.lookup(1, 'a');
  assert.is(await h.errno(OP.CREATE, a, body.create('f')), 'EIO');
  await turns();
  assert.equal(forgot, [[2 ** 37 + 5, 1]], 'the entry is forgotten to the backend');
  assert.equal(released, [77], 'the handle the backend opened is released (nobody else will)');
  assert.is(backendStats(vfs, '/a').handles, 0);
});

test('ENOSYS from one backend does not reach the kernel for opcodes whose ENOSYS it remembers for the whole mount', async () => {
  // The kernel keeps ENOSYS per connection for OPEN/OPENDIR (zero-message opens), FLUSH, FSYNC,
  // the xattr opcodes, ACCESS (then it allows everything), CREATE …: one backend saying so
  // would switch the opcode off for every backend of the mount.
  const vfs = newVfs();
  const enosys = () => { throw new FuseError('ENOSYS'); };
  const bad = new RecFs('bad', {
    extra: { open: enosys, opendir: enosys, flush: enosys, fsync: enosys, getxattr: enosys, listxattr: enosys, access: enosys, create: enosys },
  });
  await vfs.attach('/good', new RecFs('good').fs);
  await vfs.attach('/bad', bad.fs);
  const h = new Harness(vfs);
  await h.start();
  const root = await h.lookup(1, 'bad');
  const f = await h.lookup(root, 'f1');
  const cases: [string, number, number, Buffer][] = [
    ['OPEN', OP.OPEN, f, body.open()], ['OPENDIR', OP.OPENDIR, root, body.open()], ['FLUSH', OP.FLUSH, f, body.flush(1)],
    ['FSYNC', OP.FSYNC, f, body.fsync(1)], ['GETXATTR', OP.GETXATTR, f, body.getxattr('user.x', 100)],
    ['LISTXATTR', OP.LISTXATTR, f, body.listxattr(100)], ['ACCESS', OP.ACCESS, f, body.access(4)], ['CREATE', OP.CREATE, root, body.create('n')],
  ];
  const leaked: string[] = [];
  for (const [name, op, node, b] of cases) {
    const e = await h.errno(op, node, b);
    if (e === 'ENOSYS') leaked.push(name);
  }
  assert.equal(leaked, [], `ENOSYS of /bad reached the kernel for ${leaked.join(', ')} (the kernel would stop sending them for /good too)`);
});

test('per-backend options: readOnly answers EROFS for changes (reads work); entryTimeout/attrTimeout go into its replies', async () => {
  const vfs = newVfs();
  const ro = new RecFs('ro');
  const t = new RecFs('t');
  await vfs.attach('/ro', ro.fs, { readOnly: true });
  await vfs.attach('/t', t.fs, { entryTimeout: 7000, attrTimeout: 3000 });
  const h = new Harness(vfs);
  await h.start();
  const r = await h.lookup(1, 'ro');
  const f = await h.lookup(r, 'f1');
  await h.ok(OP.GETATTR, f, body.getattr());
  const mark = ro.calls.length;
  for (const [op, node, b] of [[OP.MKDIR, r, body.mkdir('d')], [OP.CREATE, r, body.create('n')], [OP.UNLINK, r, body.name('f1')],
    [OP.SETATTR, f, body.setattrMode(0o600)], [OP.OPEN, f, body.open(2)], [OP.RENAME, r, body.rename(r, 'f1', 'g')]] as [number, number, Buffer][]) {
    assert.is(await h.errno(op, node, b), 'EROFS', `opcode ${op}`);
  }
  assert.equal(ro.since(mark), [], 'the read-only backend saw none of them');
  const fh = openFh(await h.ok(OP.OPEN, f, body.open(0)));
  await h.ok(OP.RELEASE, f, body.release(fh));
  const tr = await h.lookup(1, 't');
  const e = await h.ok(OP.LOOKUP, tr, body.lookup('f1'));
  assert.is(Number(e.readBigUInt64LE(H + S.fuse_entry_out.offsets.entry_valid)), 7);
  assert.is(Number(e.readBigUInt64LE(H + S.fuse_entry_out.offsets.attr_valid)), 3);
});

// ======================================================================
// 3. FORGET routing
// ======================================================================

test('FORGET and BATCH_FORGET reach the right backend with the local id and count; stats lookups follow', async () => {
  const { vfs, h, rec } = await threeBackends();
  const aRoot = await h.lookup(1, 'a');
  const bRoot = await h.lookup(1, 'b');
  const base = { a: backendStats(vfs, '/a').lookups, b: backendStats(vfs, '/b').lookups };
  const fa = await h.lookup(aRoot, 'f1');
  await h.lookup(aRoot, 'f1'); // twice: count 2
  await h.lookup(aRoot, 'f1'); // three
  const ga = await h.lookup(aRoot, 'g');
  const fb = await h.lookup(bRoot, 'f1');
  await h.lookup(bRoot, 'f1');
  assert.is(indexOf(fa), 1);
  assert.is(indexOf(fb), 2);
  assert.is(localOf(fa), localOf(fb), 'the two backends hand out the same local id (2): the node ids differ only by index');
  assert.is.not(fa, fb);
  assert.is(backendStats(vfs, '/a').lookups - base.a, 4);
  assert.is(backendStats(vfs, '/b').lookups - base.b, 2);

  h.send(OP.FORGET, fa, body.forget(2));
  await turns();
  assert.equal(rec.a.forgets, [[localOf(fa), 2]]);
  assert.equal(rec.b.forgets, []);
  assert.equal(rec.c.forgets, []);
  assert.is(rec.a.lookups.get(localOf(fa)), 1);
  assert.is(backendStats(vfs, '/a').lookups - base.a, 2);
  assert.is(backendStats(vfs, '/b').lookups - base.b, 2);

  // One batch: ids of a and b, and ids of no backend (ignored).
  h.send(OP.BATCH_FORGET, 0, body.batchForget([[fb, 2], [fa, 1], [globalId(9, 2), 5], [globalId(3, 999), 1], [ga, 1], [MAX_ID, 1]]));
  await turns();
  assert.equal(rec.a.forgets, [[localOf(fa), 2], [localOf(fa), 1], [localOf(ga), 1]]);
  assert.equal(rec.b.forgets, [[localOf(fb), 2]]);
  assert.equal(rec.c.forgets.filter(([id]) => id === 999), [], 'c never handed out 999: not passed on');
  assert.is(rec.a.totalLookups(), 0);
  assert.is(rec.b.totalLookups(), 0);
  assert.is(backendStats(vfs, '/a').lookups, base.a);
  assert.is(backendStats(vfs, '/b').lookups, base.b);
  for (const r of Object.values(rec)) assert.equal(r.bad, [], r.bad.join('\n'));
  // Requests after the FORGET of unknown ids still work.
  await h.ok(OP.GETATTR, aRoot, body.getattr());
});

test('FORGET of ids of no backend (and of id 0, 2^53-1) reaches no backend and changes no count', async () => {
  const { vfs, h, recs } = await threeBackends();
  const aRoot = await h.lookup(1, 'a');
  await h.lookup(aRoot, 'f1');
  const before = JSON.stringify(vfs.stats());
  const calls = recs.map((r) => r.calls.length);
  for (const id of [0, MAX_ID, globalId(4, 2), globalId(100, 2), globalId(65535, 1), 2 ** 52 + 7]) h.send(OP.FORGET, id, body.forget(1));
  h.send(OP.BATCH_FORGET, 0, body.batchForget([[0, 1], [globalId(4, 2), 3], [MAX_ID, 1]]));
  await turns();
  assert.equal(recs.map((r) => r.calls.length), calls);
  const after = vfs.stats() as any;
  const b = JSON.parse(before);
  for (const p of ['/a', '/b', '/c']) assert.is(after.backends[p].lookups, b.backends[p].lookups, p);
  assert.equal(h.stray, []);
});

// ======================================================================
// 4. INIT negotiation
// ======================================================================

const WBC = InitFlag.WRITEBACK_CACHE;
/** Asks for the writeback cache when offered (as the passthrough backend does). */
const wantsWbc = (info: InitInfo) => { if (hasFlag(info.offered, WBC) && !hasFlag(info.want, WBC)) info.want += WBC; };
/** Asks for it whatever the offer. */
const insistsWbc = (info: InitInfo) => { if (!hasFlag(info.want, WBC)) info.want += WBC; };
const dropWbc = (info: InitInfo) => { if (hasFlag(info.want, WBC)) info.want -= WBC; };

test('INIT: a semantic flag (WRITEBACK_CACHE) only if every backend wants it', async () => {
  {
    const vfs = newVfs();
    await vfs.attach('/a', new RecFs('a', { init: wantsWbc }).fs);
    await vfs.attach('/b', new RecFs('b', { init: dropWbc }).fs);
    const h = new Harness(vfs);
    const want = await h.start();
    assert.not.ok(hasFlag(want, WBC), `one backend does not want WRITEBACK_CACHE: want ${initFlagNames(want).join('|')}`);
  }
  {
    const vfs = newVfs();
    await vfs.attach('/a', new RecFs('a', { init: wantsWbc }).fs);
    await vfs.attach('/b', new RecFs('b', { init: wantsWbc }).fs);
    const h = new Harness(vfs);
    const want = await h.start();
    assert.ok(hasFlag(want, WBC), `both want WRITEBACK_CACHE: want ${initFlagNames(want).join('|')}`);
  }
  {
    // One insisting on it (wants it even when not offered) next to one that does not want it.
    const vfs = newVfs();
    await vfs.attach('/a', new RecFs('a', { init: insistsWbc }).fs);
    await vfs.attach('/b', new RecFs('b', { init: dropWbc }).fs);
    const h = new Harness(vfs);
    let err: any;
    let want = 0;
    try { want = await h.start(); } catch (e) { err = e; }
    console.log(`  INIT with a backend insisting on WRITEBACK_CACHE beside one without: ${err ? `refused: ${err.message}` : `want ${initFlagNames(want).join('|')}`}`);
    if (err) assert.match(String(err.message), /WRITEBACK_CACHE/);
    else assert.not.ok(hasFlag(want, WBC));
  }
  {
    // Every backend's init() is called once, with the kernel's offer.
    const seen: string[] = [];
    const vfs = newVfs();
    await vfs.attach('/a', new RecFs('a', { init: (i) => { seen.push(`a ${i.offered === ALL_FLAGS}`); } }).fs);
    await vfs.attach('/b', new RecFs('b', { init: (i) => { seen.push(`b ${i.offered === ALL_FLAGS}`); } }).fs);
    await new Harness(vfs).start();
    assert.equal(seen.sort(), ['a true', 'b true']);
  }
});

test('INIT: a backend attached after INIT that wants a flag the session lacks, or lacks a semantic flag it has, is refused naming the flag', async () => {
  {
    const vfs = newVfs();
    await vfs.attach('/a', new RecFs('a', { init: dropWbc }).fs);
    const h = new Harness(vfs);
    const want = await h.start();
    assert.not.ok(hasFlag(h.flags, WBC), initFlagNames(want).join('|'));
    let err: any;
    try { await vfs.attach('/late', new RecFs('late', { init: insistsWbc }).fs); } catch (e) { err = e; }
    assert.ok(err instanceof Error, 'attach rejects');
    assert.match(String(err.message), /WRITEBACK_CACHE/);
    assert.equal(vfs.list().map((l) => l.path), ['/a']);
    assert.is(await h.errno(OP.LOOKUP, 1, body.lookup('late')), 'ENOENT');
    // One that asks for it only when offered is accepted (and runs without it).
    const seen: boolean[] = [];
    assert.is(await vfs.attach('/polite', new RecFs('polite', { init: (i) => { seen.push(hasFlag(i.offered, WBC)); wantsWbc(i); } }).fs), 2);
    assert.equal(seen, [false], 'offered what the session has: no WRITEBACK_CACHE');
  }
  {
    const vfs = newVfs();
    await vfs.attach('/a', new RecFs('a', { init: wantsWbc }).fs);
    const h = new Harness(vfs);
    await h.start();
    assert.ok(hasFlag(h.flags, WBC));
    let err: any;
    try { await vfs.attach('/late', new RecFs('late', { init: dropWbc }).fs); } catch (e) { err = e; }
    assert.ok(err instanceof Error, 'attach rejects');
    assert.match(String(err.message), /WRITEBACK_CACHE/);
    // One that can live with it is accepted.
    const idx = await vfs.attach('/ok', new RecFs('ok', { init: wantsWbc }).fs);
    assert.is(idx, 2);
  }
});

// ======================================================================
// 5. cross-backend, pseudo root, detach
// ======================================================================

test('cross-backend: RENAME and LINK from /a to /b are EXDEV; the pseudo root is read-only; READDIR lists the attached names', async () => {
  const vfs = newVfs();
  const ta = memfs(), tb = memfs();
  await vfs.attach('/a', ta);
  await vfs.attach('/b', tb);
  const h = new Harness(vfs);
  await h.start();
  const a = await h.lookup(1, 'a');
  const b = await h.lookup(1, 'b');
  const cr = await h.ok(OP.CREATE, a, body.create('f'));
  const f = entryNode(cr);
  await h.ok(OP.RELEASE, f, body.release(createFh(cr)));
  assert.is(await h.errno(OP.RENAME, a, body.rename(b, 'f', 'g')), 'EXDEV');
  assert.is(await h.errno(OP.RENAME2, a, body.rename2(b, 'f', 'g', 1)), 'EXDEV');
  assert.is(await h.errno(OP.LINK, b, body.link(f, 'g')), 'EXDEV');
  // pseudo ↔ backend
  assert.is(await h.errno(OP.RENAME, a, body.rename(1, 'f', 'g')), 'EXDEV');
  assert.is(await h.errno(OP.LINK, 1, body.link(f, 'g')), 'EXDEV');
  // Within one backend they work.
  await h.ok(OP.RENAME, a, body.rename(a, 'f', 'g'));
  await h.ok(OP.LINK, a, body.link(f, 'h'));
  assert.equal((await h.listdir(a)).filter((n) => n !== '.' && n !== '..').sort(), ['g', 'h']);
  assert.equal((await h.listdir(b)).filter((n) => n !== '.' && n !== '..'), []);
  // The pseudo root: EROFS for every change.
  assert.is(await h.errno(OP.MKDIR, 1, body.mkdir('new')), 'EROFS');
  assert.is(await h.errno(OP.MKNOD, 1, body.mknod('new')), 'EROFS');
  assert.is(await h.errno(OP.CREATE, 1, body.create('new')), 'EROFS');
  assert.is(await h.errno(OP.SYMLINK, 1, body.symlink('new', 't')), 'EROFS');
  assert.is(await h.errno(OP.UNLINK, 1, body.name('a')), 'EROFS');
  assert.is(await h.errno(OP.RMDIR, 1, body.name('a')), 'EROFS');
  assert.is(await h.errno(OP.RENAME, 1, body.rename(1, 'a', 'c')), 'EROFS');
  assert.is(await h.errno(OP.SETATTR, 1, body.setattrMode(0o777)), 'EROFS');
  // READDIR of the root: the attached names (and . ..).
  assert.equal((await h.listdir(1)).filter((n) => n !== '.' && n !== '..').sort(), ['a', 'b']);
  // ".." of a backend root is the pseudo root: its ino in the backend root's listing is the root's.
  const rootIno = attrIno(await h.ok(OP.GETATTR, 1, body.getattr()));
  const fh = openFh(await h.ok(OP.OPENDIR, a, body.open()));
  const dd = dirents(await h.ok(OP.READDIR, a, body.read(fh, 65536))).find(([n]) => n === '..');
  await h.ok(OP.RELEASEDIR, a, body.release(fh));
  if (dd) assert.is(dd[1], rootIno, '".." of /a is the pseudo root');
  // STATFS per backend (memfs answers its own numbers).
  const sf = await h.ok(OP.STATFS, a);
  assert.is(Number(sf.readBigUInt64LE(H + S.fuse_kstatfs.offsets.blocks)), 1 << 20);
});

test('detach: the name goes away (ENOENT); busy → EBUSY; after a forced detach old ids answer ESTALE', async () => {
  const vfs = newVfs();
  const ra = new RecFs('a'), rb = new RecFs('b'), rc = new RecFs('c');
  await vfs.attach('/a', ra.fs);
  await vfs.attach('/b', rb.fs);
  await vfs.attach('/c', rc.fs);
  const h = new Harness(vfs);
  await h.start();
  // /c: never looked up → detaches; its name is gone.
  await vfs.detach('/c');
  assert.equal(vfs.list().map((l) => l.path), ['/a', '/b']);
  assert.is(await h.errno(OP.LOOKUP, 1, body.lookup('c')), 'ENOENT');
  assert.equal((await h.listdir(1)).filter((n) => n !== '.' && n !== '..').sort(), ['a', 'b']);
  // /b: an open file inside → EBUSY unless forced.
  const b = await h.lookup(1, 'b');
  const f = await h.lookup(b, 'f1');
  const fh = openFh(await h.ok(OP.OPEN, f, body.open()));
  let err: any;
  try { await vfs.detach('/b'); } catch (e) { err = e; }
  assert.ok(err, 'detach of a busy backend rejects');
  assert.is(err.code, 'EBUSY', String(err));
  assert.ok(vfs.list().some((l) => l.path === '/b'));
  await h.ok(OP.GETATTR, f, body.getattr());
  await vfs.detach('/b', { force: true });
  assert.equal(vfs.list().map((l) => l.path), ['/a']);
  const mark = rb.calls.length;
  assert.is(await h.errno(OP.GETATTR, f, body.getattr()), 'ESTALE');
  assert.is(await h.errno(OP.GETATTR, b, body.getattr()), 'ESTALE');
  assert.is(await h.errno(OP.READ, f, body.read(fh)), 'ESTALE');
  assert.is(await h.errno(OP.LOOKUP, b, body.lookup('f2')), 'ESTALE');
  assert.is(await h.errno(OP.LOOKUP, 1, body.lookup('b')), 'ENOENT');
  assert.equal((await h.listdir(1)).filter((n) => n !== '.' && n !== '..'), ['a']);
  // The kernel's late RELEASE/FORGET for the old ids: answered / ignored, never reaching anyone else.
  const rel = await h.call(OP.RELEASE, f, body.release(fh));
  assert.ok(errorOf(rel) === 0 || -errorOf(rel) === E.ESTALE, errName(errorOf(rel)));
  h.send(OP.FORGET, f, body.forget(1));
  await turns();
  assert.equal(ra.bad, []);
  assert.ok(rb.calls.slice(mark).every((c) => c.m === 'release' || c.m === 'forget' || c.m === 'destroy'),
    `after a forced detach b gets nothing but release/forget: ${JSON.stringify(rb.calls.slice(mark))}`);
  // A new backend at /b gets a fresh index (the old index is not reused while its ids may live in the kernel).
  const rb2 = new RecFs('b2');
  const i2 = await vfs.attach('/b', rb2.fs);
  const b2 = await h.lookup(1, 'b');
  assert.is(indexOf(b2), i2);
  if (i2 === 2) {
    // If the index is reused, the old ids must still not reach the new backend.
    const e = await h.errno(OP.GETATTR, f, body.getattr());
    assert.is(e, 'ESTALE', 'an id of the detached backend reaches the new one at the same index');
  }
});

test('a LOOKUP pending in a backend detached by force: its id answers ESTALE, is forgotten to no one, and its index is not reused while held', async () => {
  const vfs = newVfs();
  const a = new RecFs('a');
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const b = new RecFs('b', { extra: {} });
  const lookup = b.fs.lookup!;
  b.fs.lookup = async (c, p, n) => { await gate; return lookup(c, p, n); };
  await vfs.attach('/a', a.fs);
  await vfs.attach('/b', b.fs);
  const h = new Harness(vfs);
  await h.start();
  const bRoot = await h.lookup(1, 'b');
  const u = h.send(OP.LOOKUP, bRoot, body.lookup('late'));
  await turns();
  await vfs.detach('/b', { force: true });
  release();
  const [r] = await h.wait(u);
  const err = errorOf(r);
  const late = err === 0 ? entryNode(r) : 0;
  console.log(`  LOOKUP answered after the forced detach: ${errName(err)}${late ? ` node ${late} (index ${indexOf(late)})` : ''}`);
  if (late) {
    assert.is(indexOf(late), 2);
    assert.is(await h.errno(OP.GETATTR, late, body.getattr()), 'ESTALE');
  }
  // The kernel forgets the root; the late entry (if any) is still held: index 2 stays taken.
  h.send(OP.FORGET, bRoot, body.forget(1));
  await turns();
  const c = new RecFs('c');
  const ic = await vfs.attach('/c', c.fs);
  if (late) assert.is.not(ic, 2, 'index 2 is reused while the kernel still holds a node id of it');
  const cRoot = await h.lookup(1, 'c');
  const cf = await h.lookup(cRoot, 'f1');
  if (late) {
    assert.is.not(cf, late, 'a new backend hands out the very node id the kernel holds for a file of the old one');
    h.send(OP.FORGET, late, body.forget(1));
    await turns();
  }
  assert.equal(c.calls.filter((x) => x.m === 'forget'), [], 'the old ids\' FORGETs reach no one');
  assert.equal([...a.bad, ...c.bad], []);
  assert.equal(Object.keys((vfs.stats() as any).detached ?? {}), [], 'nothing of /b is held any more');
});

test('READDIR of the pseudo root with 40 backends: every name, with the ino GETATTR reports for it', async () => {
  const vfs = newVfs();
  for (let i = 1; i <= 40; i++) await vfs.attach(`/n${i}`, new RecFs(`n${i}`).fs);
  const h = new Harness(vfs);
  await h.start();
  const fh = openFh(await h.ok(OP.OPENDIR, 1, body.open()));
  const r = await h.call(OP.READDIR, 1, body.read(fh, 65536));
  assert.is(errName(errorOf(r)), 'OK', `READDIR of the root (logs: ${h.logs.slice(-3).join(' | ')})`);
  const list = dirents(r).filter(([n]) => n !== '.' && n !== '..');
  assert.is(list.length, 40);
  for (const [name, ino] of list) {
    const id = await h.lookup(1, name);
    const ga = attrIno(await h.ok(OP.GETATTR, id, body.getattr()));
    assert.is(ino, ga, `${name} (index ${indexOf(id)}): readdir ino ${ino}, stat ino ${ga}`);
  }
  const inos = new Set(list.map(([, ino]) => ino));
  assert.is(inos.size, 40, 'distinct inode numbers');
});

// ======================================================================
// 6. indexBits
// ======================================================================

test('indexBits: 20 bits → node id = index * 2^33 + local; a local id at 2^33 is EIO, 2^33-1 is fine', async () => {
  const vlog: string[] = [];
  const vfs = newVfs({ indexBits: 20, log: (l) => vlog.push(l) });
  const ids = new Map<string, number>([['ok', 2 ** 33 - 1], ['big', 2 ** 33], ['huge', 2 ** 40], ['max', MAX_ID]]);
  const rec = new RecFs('a', {
    limit: 2 ** 33,
    extra: {
      lookup: (_c, parent, name) => {
        rec.seen('lookup', parent);
        const n = ids.get(name) ?? 5;
        rec.handed.add(n);
        return { nodeid: n, attr: { ino: n, mode: 0o100644 } };
      },
    },
  });
  await vfs.attach('/a', rec.fs);
  const h = new Harness(vfs);
  await h.start();
  const a = await h.lookup(1, 'a');
  assert.is(indexOf(a, 20), 1);
  assert.is(Math.floor(a / 2 ** 33), 1);
  const ok = await h.lookup(a, 'ok');
  assert.is(ok, 2 ** 33 + 2 ** 33 - 1);
  for (const name of ['big', 'huge', 'max']) {
    assert.is(await h.errno(OP.LOOKUP, a, body.lookup(name)), 'EIO', `local id ${ids.get(name)} does not fit 33 bits`);
  }
  assert.ok([...vlog, ...h.logs].some((l) => /2\^33/.test(l)), `a log line about the id: ${[...vlog, ...h.logs].join(' | ')}`);
  // The refused entries are forgotten to the backend (it counted them).
  assert.equal(rec.forgets.map(([id, n]) => [id, n]).sort(), [[2 ** 33, 1], [2 ** 40, 1], [MAX_ID, 1]].sort());
});

test('indexBits default (16): a backend handing out a local id ≥ 2^37 gets EIO, not a wrong id', async () => {
  const vfs = newVfs();
  const forgot: [number, number][] = [];
  const fs: FileSystem = {
    lookup: (_c, _p, name) => ({ nodeid: name === 'ok' ? 2 ** 37 - 1 : 2 ** 37 + 5, attr: { ino: 9, mode: 0o100644 } }),
    getattr: () => ({ attr: { ino: 1, mode: 0o40755 } }),
    forget: (id, n) => { forgot.push([id, n]); },
  };
  await vfs.attach('/a', new RecFs('pad').fs);
  await vfs.attach('/b', fs);
  const h = new Harness(vfs);
  await h.start();
  const b = await h.lookup(1, 'b');
  assert.is(await h.errno(OP.LOOKUP, b, body.lookup('bad')), 'EIO');
  const ok = await h.lookup(b, 'ok');
  assert.is(ok, 2 * 2 ** 37 + 2 ** 37 - 1);
  assert.is(indexOf(ok), 2);
  // The refused entry's lookup is handed back to the backend (it counted one).
  assert.equal(forgot.filter(([id]) => id === 2 ** 37 + 5), [[2 ** 37 + 5, 1]], 'the refused entry is forgotten to its backend');
});

test('indexBits: attaching more than 2^indexBits - 1 backends fails clearly; more bits allow more', async () => {
  const small = newVfs({ indexBits: 3 });
  const fs = () => new RecFs('n').fs;
  for (let i = 1; i <= 7; i++) assert.is(await small.attach(`/n${i}`, fs()), i);
  let err: any;
  try { await small.attach('/n8', fs()); } catch (e) { err = e; }
  assert.ok(err instanceof Error, 'the 8th backend (2^3 - 1 = 7 allowed) is refused');
  assert.match(String(err.message), /index|indexBits|backends|full|limit|many/i);
  assert.is(small.list().length, 7);
  for (const bad of [0, 33, 1.5, -1]) assert.throws(() => new Vfs({ indexBits: bad }), /indexBits/, `indexBits ${bad}`);
  const more = newVfs({ indexBits: 4 });
  for (let i = 1; i <= 8; i++) await more.attach(`/n${i}`, fs());
  assert.is(more.list().length, 8);
  // The default: the documented 16 bits.
  const h = new Harness(more);
  await h.start();
  const n8 = await h.lookup(1, 'n8');
  assert.is(Math.floor(n8 / 2 ** 49), 8);
});

test('indexBits 20 allows more than 2^16 - 1 backends', async () => {
  const vfs = newVfs({ indexBits: 20 });
  const fs: FileSystem = { getattr: () => ({ attr: { ino: 1, mode: 0o40755 } }) };
  const t0 = Date.now();
  const N = 65536 + 3;
  for (let i = 1; i <= N; i++) {
    const idx = await vfs.attach(`/n${i}`, fs);
    if (idx !== i) assert.is(idx, i);
  }
  console.log(`  ${N} backends attached in ${Date.now() - t0} ms`);
  assert.is(vfs.list().length, N);
  const h = new Harness(vfs);
  await h.start();
  const last = await h.lookup(1, `n${N}`);
  assert.is(indexOf(last, 20), N);
  // Two backends never report the same st_ino for their roots (same st_dev: one mount).
  const ino = async (name: string) => attrIno(await h.ok(OP.GETATTR, await h.lookup(1, name), body.getattr()));
  const i1 = await ino('n1');
  const i65537 = await ino('n65537');
  assert.is.not(i1, i65537, `st_ino of /n1 (${i1}) and /n65537 (${i65537})`);
});

test.run();
