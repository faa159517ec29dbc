// Codec micro-benchmarks (benchmark.js), no mount needed:
//
//   node dist/bench/codec.js
//
// 1. "GETATTR pair": one GETATTR request/reply pair through the struct codecs:
//    encode fuse_in_header + fuse_getattr_in, decode both back, encode the
//    reply (fuse_out_header + fuse_attr_out, unique taken from the decoded
//    request), decode fuse_attr_out back. Input objects are constants, so
//    this measures the codecs, not object building.
//    "server half": only what a server does per request: decode the request
//    (both structs), encode the reply (both structs).
// 2. "decodeRequest": the Server's request decoder on a raw GETATTR request.
// 3. "Server.request": the whole dispatch of a raw GETATTR request (decode,
//    counters, context, synchronous getattr handler, attr_out encode, write)
//    into a no-op sink. This is the per-request JS cost without /dev/fuse.
import { constants as C } from 'node:fs';
import Benchmark from 'benchmark';
import { decodeRequest, Opcode, structs as S } from '../src/abi/index.js';
import { opcodeRow } from '../src/api/ops.js';
import { RequestContext, Server, Vfs, type AttrReply, type FileSystem } from '../src/index.js';
import { memfs } from '../examples/memfs.js';
import type { Channel } from '../src/transport/index.js';

const REQ_LEN = S.fuse_in_header.size + S.fuse_getattr_in.size; // 56
const REPLY_LEN = S.fuse_out_header.size + S.fuse_attr_out.size; // 120

const T = 1700000000;
const ATTR = { ino: 2, size: 4096, blocks: 8, atime: T, mtime: T, ctime: T, atimensec: 0, mtimensec: 0, ctimensec: 0, mode: C.S_IFREG | 0o644, nlink: 1, uid: 0, gid: 0, rdev: 0, blksize: 4096, flags: 0 };
const IN_HEADER = { len: REQ_LEN, opcode: Opcode.GETATTR, unique: 4242, nodeid: 2, uid: 0, gid: 0, pid: 1234, total_extlen: 0, padding: 0 };
const GETATTR_IN = { getattr_flags: 0, dummy: 0, fh: 0 };
const ATTR_OUT = { attr_valid: 0, attr_valid_nsec: 0, dummy: 0, attr: ATTR };

/** Keeps results alive so the optimizer cannot drop the work. */
let sink = 0;

function rawGetattr(): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  S.fuse_in_header.encode(view, 0, IN_HEADER);
  S.fuse_getattr_in.encode(view, S.fuse_in_header.size, GETATTR_IN);
  return { bytes, view };
}

/** A raw request: in_header, then `body` encoded by `def` (if any), then NUL-terminated `name` (if any). */
function rawRequest(opcode: number, nodeid: number, fill?: (v: DataView, at: number) => number, name?: string): { bytes: Uint8Array; view: DataView; len: number } {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  let len = S.fuse_in_header.size;
  if (fill) len += fill(view, len);
  if (name !== undefined) len += Buffer.from(bytes.buffer).write(`${name}\0`, len);
  S.fuse_in_header.encode(view, 0, { ...IN_HEADER, len, opcode, nodeid });
  return { bytes, view, len };
}

/** An InodeTree (memfs) with a directory of 100 files, and requests against it. */
async function treeRequests() {
  const tree = memfs();
  const ctx = new RequestContext(0, 0, 1, 0);
  const dir = (await tree.mkdir(ctx, 1, 'd', 0o755)).nodeid;
  let file = 0;
  for (let i = 0; i < 100; i++) {
    const c = await tree.create(ctx, dir, `file-${i}`, 0o644, 0o102);
    await tree.release(ctx, c.entry.nodeid, c.fh!, 0);
    if (i === 0) file = c.entry.nodeid;
  }
  const fh = (await tree.opendir(ctx, dir, 0)).fh!;
  return {
    tree,
    getattr: rawRequest(Opcode.GETATTR, file, (v, at) => { S.fuse_getattr_in.encode(v, at, GETATTR_IN); return S.fuse_getattr_in.size; }),
    lookupHit: rawRequest(Opcode.LOOKUP, dir, undefined, 'file-7'),
    lookupMiss: rawRequest(Opcode.LOOKUP, dir, undefined, 'no-such-file'),
    readdirplus: rawRequest(Opcode.READDIRPLUS, dir, (v, at) => {
      S.fuse_read_in.encode(v, at, { fh, offset: 0n, size: 32768, read_flags: 0, lock_owner: 0n, flags: 0, padding: 0 });
      return S.fuse_read_in.size;
    }),
  };
}

/** The same memfs attached at /x of a Vfs, and the same requests through it (the VFS layer's cost). */
async function vfsRequests() {
  const t = await treeRequests();
  const vfs = new Vfs({ log: () => {} });
  await vfs.attach('/x', t.tree);
  vfs.init({ kernelMinor: 45, offered: 0, want: 0, defaultPermissions: false });
  const ctx = new RequestContext(0, 0, 1, 0);
  const x = await vfs.lookup(ctx, 1, 'x');
  const d = await vfs.lookup(ctx, x.nodeid, 'd');
  const f = await vfs.lookup(ctx, d.nodeid, 'file-0');
  return {
    vfs,
    getattr: rawRequest(Opcode.GETATTR, f.nodeid, (v, at) => { S.fuse_getattr_in.encode(v, at, GETATTR_IN); return S.fuse_getattr_in.size; }),
    lookupHit: rawRequest(Opcode.LOOKUP, d.nodeid, undefined, 'file-7'),
  };
}

export async function runCodec(): Promise<void> {
  const reqBytes = new Uint8Array(4096);
  const rv = new DataView(reqBytes.buffer);
  const repBytes = new Uint8Array(4096);
  const pv = new DataView(repBytes.buffer);
  const outHeader: { len: number; error: number; unique: bigint } = { len: REPLY_LEN, error: 0, unique: 0n };
  const HS = S.fuse_in_header.size;
  const OS = S.fuse_out_header.size;

  const raw = rawGetattr();
  const decodeOpts = { setxattrExt: true };

  const FILE_REPLY: AttrReply = { attr: { ino: 2, mode: C.S_IFREG | 0o644, nlink: 1, size: 4096, blocks: 8, blksize: 4096, atime: T * 1000, mtime: T * 1000, ctime: T * 1000 } };
  const fs: FileSystem = { getattr: () => FILE_REPLY };
  const server = new Server(fs, { attrTimeout: 0 });
  let written = 0;
  server.sink = { write: () => 0, writev: () => 0 };
  const countingSink = { write: (_c: Channel, _b: Uint8Array, len: number) => { written += len; return 0; }, writev: () => 0 };
  const ch = undefined as unknown as Channel; // the sink ignores the channel

  // Check once that the request is answered as expected (a 120-byte reply).
  server.sink = countingSink;
  server.request(raw.bytes, raw.view, REQ_LEN, ch);
  if (written !== REPLY_LEN) throw new Error(`Server.request wrote ${written} bytes, expected ${REPLY_LEN}`);
  server.sink = { write: () => 0, writev: () => 0 };

  const t = await treeRequests();
  const treeServer = new Server(t.tree, { attrTimeout: 0 });
  let bytesOut = 0;
  treeServer.sink = {
    write: (_c: Channel, _b: Uint8Array, len: number) => { bytesOut = len; return len; },
    writev: (_c: Channel, chunks: Uint8Array[]) => { bytesOut = chunks.reduce((a, c) => a + c.length, 0); return bytesOut; },
  };
  // Check once that each is answered as expected: 102 entries ("." and ".." too) fit one reply.
  for (const [what, r, want] of [['GETATTR', t.getattr, REPLY_LEN], ['LOOKUP', t.lookupHit, 144], ['LOOKUP miss', t.lookupMiss, 16]] as const) {
    treeServer.request(r.bytes, r.view, r.len, ch);
    if (bytesOut !== want) throw new Error(`InodeTree ${what} wrote ${bytesOut} bytes, expected ${want}`);
  }
  treeServer.request(t.readdirplus.bytes, t.readdirplus.view, t.readdirplus.len, ch);
  if (bytesOut < 16 + 102 * 152) throw new Error(`READDIRPLUS wrote ${bytesOut} bytes: not 102 entries`);

  const tv = await vfsRequests();
  const vfsServer = new Server(tv.vfs, { attrTimeout: 0 });
  vfsServer.sink = treeServer.sink;
  for (const [what, r, want] of [['GETATTR', tv.getattr, REPLY_LEN], ['LOOKUP', tv.lookupHit, 144]] as const) {
    vfsServer.request(r.bytes, r.view, r.len, ch);
    if (bytesOut !== want) throw new Error(`Vfs ${what} wrote ${bytesOut} bytes, expected ${want}`);
  }

  return new Promise((resolve, reject) => {
    const suite = new Benchmark.Suite('codec');
    suite
      .add('GETATTR pair: encode+decode request and reply (struct codecs)', () => {
        S.fuse_in_header.encode(rv, 0, IN_HEADER);
        S.fuse_getattr_in.encode(rv, HS, GETATTR_IN);
        const h = S.fuse_in_header.decode(rv, 0);
        const g = S.fuse_getattr_in.decode(rv, HS);
        outHeader.unique = h.unique;
        S.fuse_out_header.encode(pv, 0, outHeader);
        S.fuse_attr_out.encode(pv, OS, ATTR_OUT);
        const o = S.fuse_attr_out.decode(pv, OS);
        sink += h.nodeid + g.fh + Number(o.attr.size);
      })
      .add('GETATTR server half: decode request, encode reply (struct codecs)', () => {
        const h = S.fuse_in_header.decode(raw.view, 0);
        const g = S.fuse_getattr_in.decode(raw.view, HS);
        outHeader.unique = h.unique;
        S.fuse_out_header.encode(pv, 0, outHeader);
        S.fuse_attr_out.encode(pv, OS, ATTR_OUT);
        sink += h.nodeid + g.fh;
      })
      .add('decodeRequest(GETATTR)', () => {
        const r = decodeRequest(raw.bytes, raw.view, REQ_LEN, decodeOpts, opcodeRow);
        sink += r.nodeid;
      })
      .add('Server.request(GETATTR) → no-op sink', () => {
        server.request(raw.bytes, raw.view, REQ_LEN, ch);
      })
      .add('Server.request(GETATTR), InodeTree (memfs)', () => {
        treeServer.request(t.getattr.bytes, t.getattr.view, t.getattr.len, ch);
      })
      .add('Server.request(LOOKUP) of a known name, InodeTree (memfs)', () => {
        treeServer.request(t.lookupHit.bytes, t.lookupHit.view, t.lookupHit.len, ch);
      })
      .add('Server.request(LOOKUP) of a missing name (ENOENT), InodeTree (memfs)', () => {
        treeServer.request(t.lookupMiss.bytes, t.lookupMiss.view, t.lookupMiss.len, ch);
      })
      .add('Server.request(READDIRPLUS) of 100 entries, InodeTree (memfs)', () => {
        treeServer.request(t.readdirplus.bytes, t.readdirplus.view, t.readdirplus.len, ch);
      })
      .add('Server.request(GETATTR), the memfs at /x of a Vfs', () => {
        vfsServer.request(tv.getattr.bytes, tv.getattr.view, tv.getattr.len, ch);
      })
      .add('Server.request(LOOKUP) of a known name, the memfs at /x of a Vfs', () => {
        vfsServer.request(tv.lookupHit.bytes, tv.lookupHit.view, tv.lookupHit.len, ch);
      })
      .on('cycle', (e: Benchmark.Event) => {
        const b = e.target as unknown as Benchmark;
        if (b.error) console.log(`${b.name}: ERROR ${b.error}`);
        else console.log(`${b.name}: ${Math.round(b.hz).toLocaleString('en-US')} ops/s ±${b.stats.rme.toFixed(2)}% (${b.stats.sample.length} runs sampled)`);
      })
      .on('complete', () => {
        if (sink === -1) console.log(''); // use `sink`
        resolve();
      })
      .on('error', (e: Benchmark.Event) => reject((e.target as unknown as Benchmark).error));
    console.log(`# codec benchmarks (benchmark.js ${(Benchmark as unknown as { version: string }).version}, node ${process.version})`);
    suite.run({ async: false });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runCodec().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
