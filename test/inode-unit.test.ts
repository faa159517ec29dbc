// InodeTree accounting without a mount: node ids, nlookup, FORGET saturation,
// hard-link merging, dentries on rename/unlink, interrupted-reply undo.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as C } from 'node:fs';
import { FuseError, FuseInode, InodeTree, Server, RequestContext, type Context } from '../src/index.js';

const ctx: Context = new RequestContext(0, 0, 1, 0);

class Node extends FuseInode {
  constructor(mode: number, readonly key?: string) { super(mode); }
  override identity() { return this.key; }
}
class Dir extends Node {
  static override readonly supports = ['mknod', 'link', 'unlink', 'rename'] as const;
  backend = new Map<string, Node>(); // what the "storage" has
  constructor(key?: string) { super(C.S_IFDIR | 0o755, key); }
  override lookup(_c: Context, name: string): FuseInode {
    const n = this.backend.get(name);
    if (!n) throw new FuseError('ENOENT');
    return n;
  }
  override mknod(_c: Context, name: string, mode: number): FuseInode {
    const n = new Node(mode, `${this.key}/${name}`);
    this.backend.set(name, n);
    return n;
  }
  override link(_c: Context, target: FuseInode, name: string): FuseInode {
    this.backend.set(name, target as Node);
    return target;
  }
  override unlink(_c: Context, name: string): void { this.backend.delete(name); }
  override rename(_c: Context, name: string, to: FuseInode, newName: string): void {
    const n = this.backend.get(name)!;
    this.backend.delete(name);
    (to as Dir).backend.set(newName, n);
  }
}

function setup() {
  const root = new Dir('root');
  const tree = new InodeTree(root);
  return { root, tree };
}

test('root is node 1, never forgotten; new inodes get increasing ids never reused', async () => {
  const { root, tree } = setup();
  assert.is(root.nodeid, 1);
  tree.forget(1, 100);
  assert.is(tree.get(1), root);
  root.backend.set('a', new Node(C.S_IFREG | 0o644, 'a'));
  const e1 = await tree.lookup(ctx, 1, 'a');
  assert.is(e1.nodeid, 2);
  tree.forget(2, 1);
  assert.throws(() => tree.get(2), (e: FuseError) => e.code === 'ESTALE');
  root.backend.set('a', new Node(C.S_IFREG | 0o644, 'a'));
  const e2 = await tree.lookup(ctx, 1, 'a');
  assert.is(e2.nodeid, 3, 'a forgotten node id is not reused');
});

test('each entry reply counts one lookup; FORGET lowers it and saturates at 0', async () => {
  const { root, tree } = setup();
  root.backend.set('a', new Node(C.S_IFREG | 0o644, 'a'));
  for (let i = 0; i < 3; i++) await tree.lookup(ctx, 1, 'a');
  const a = root.children.get('a')!;
  assert.is(a.lookupCount(), 3);
  tree.forget(a.nodeid, 2);
  assert.is(a.lookupCount(), 1);
  assert.is(tree.get(a.nodeid), a);
  tree.forget(a.nodeid, 5); // more than we counted: saturate, drop
  assert.is(a.lookupCount(), 0);
  assert.equal(tree.stats(), { inodes: 1, referenced: 0, lookups: 0, handles: 0 });
  assert.not.ok(root.children.has('a'), 'a dropped inode leaves the tree');
});

test('hard links with one identity are one inode; unlink keeps the other name', async () => {
  const { root, tree } = setup();
  const d = new Dir('root/d');
  root.backend.set('d', d);
  await tree.lookup(ctx, 1, 'd');
  const f = await tree.mknod(ctx, 1, 'f', C.S_IFREG | 0o644, 0);
  const l = await tree.link(ctx, f.nodeid, d.nodeid, 'g');
  assert.is(l.nodeid, f.nodeid);
  const inode = tree.get(f.nodeid);
  assert.is(inode.linkCount, 2);
  assert.is(inode.lookupCount(), 2);
  await tree.unlink(ctx, 1, 'f');
  assert.is(inode.linkCount, 1);
  assert.is(d.children.get('g'), inode);
  // a second object with the same identity merges into the existing inode
  const twin = new Node(C.S_IFREG | 0o644, 'root/f');
  d.backend.set('twin', twin);
  const t = await tree.lookup(ctx, d.nodeid, 'twin');
  assert.is(t.nodeid, f.nodeid);
});

test('rename moves the dentry; rename over a name drops the overwritten inode once forgotten', async () => {
  const { root, tree } = setup();
  const a = await tree.mknod(ctx, 1, 'a', C.S_IFREG | 0o644, 0);
  const b = await tree.mknod(ctx, 1, 'b', C.S_IFREG | 0o644, 0);
  await tree.rename(ctx, 1, 'a', 1, 'b', 0);
  assert.is(root.children.get('b')!.nodeid, a.nodeid);
  assert.not.ok(root.children.has('a'));
  const old = tree.get(b.nodeid);
  assert.is(old.linkCount, 0);
  tree.forget(b.nodeid, 1);
  assert.throws(() => tree.get(b.nodeid));
});

test('an entry reply the kernel never got (write ENOENT) is forgotten by the Server', async () => {
  const { root, tree } = setup();
  root.backend.set('a', new Node(C.S_IFREG | 0o644, 'a'));
  const server = new Server(tree);
  server.sink = { write: () => -2, writev: () => -2 }; // interrupted
  const req = Buffer.alloc(42);
  req.writeUInt32LE(42, 0); req.writeUInt32LE(1, 4); req.writeUInt32LE(7, 8); req.writeUInt32LE(1, 16);
  req.write('a\0', 40);
  const view = new DataView(req.buffer, req.byteOffset, req.length);
  server.request(req, view, 42, {} as never);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(tree.stats().lookups, 0, 'the increment was undone');
  assert.is(tree.stats().inodes, 1);
});

test('destroy releases every inode and runs onForget (no FORGETs come at unmount)', async () => {
  const { root, tree } = setup();
  let forgotten = 0;
  class Counted extends Node { override onForget() { forgotten++; } }
  root.backend.set('a', new Counted(C.S_IFREG | 0o644, 'a'));
  root.backend.set('b', new Counted(C.S_IFREG | 0o644, 'b'));
  await tree.lookup(ctx, 1, 'a');
  await tree.lookup(ctx, 1, 'b');
  tree.destroy();
  assert.is(forgotten, 2);
  assert.is(tree.stats().inodes, 1);
});

test('persistent inodes stay at nlookup 0 until their last name goes', async () => {
  const { root, tree } = setup();
  const p = new Node(C.S_IFREG | 0o644, 'p').makePersistent();
  root.addChild('p', p);
  root.backend.set('p', p);
  const e = await tree.lookup(ctx, 1, 'p');
  tree.forget(e.nodeid, 1);
  assert.is(tree.get(e.nodeid), p, 'persistent: kept');
  await tree.unlink(ctx, 1, 'p');
  assert.throws(() => tree.get(e.nodeid), undefined, 'unlinked and forgotten: gone');
});

class Backed extends Node {
  events: string[] = [];
  // An open that is still pending (awaiting its backing) when the UNLINK is answered.
  override async open(): Promise<undefined> { this.events.push('open'); await new Promise((r) => setImmediate(r)); return undefined; }
  override onUnlinked(): boolean { this.events.push('onUnlinked'); return true; }
  override onForget(): void { this.events.push('onForget'); }
}

test('onUnlinked waits for an OPEN that was pending when the UNLINK finished, and runs at its release', async () => {
  const { root, tree } = setup();
  const f = new Backed(C.S_IFREG | 0o644, 'f');
  root.backend.set('f', f);
  const e = await tree.lookup(ctx, 1, 'f');
  // The OPEN is read first and is still pending when the UNLINK (synchronous here) is answered.
  const [opened] = await Promise.all([tree.open(ctx, e.nodeid, 0), tree.unlink(ctx, 1, 'f')]);
  assert.equal(f.events, ['open'], 'no onUnlinked while the file is being opened');
  await tree.release(ctx, e.nodeid, opened.fh!, 0);
  assert.equal(f.events, ['open', 'onUnlinked'], 'onUnlinked at the last release');
  tree.forget(e.nodeid, 1);
  assert.equal(f.events, ['open', 'onUnlinked', 'onForget']);
});

test('a failed OPEN does not leave the inode counted open', async () => {
  const { root, tree } = setup();
  const f = new Backed(C.S_IFREG | 0o644, 'g');
  f.open = () => { throw new FuseError('EACCES'); };
  root.backend.set('g', f);
  const e = await tree.lookup(ctx, 1, 'g');
  await Promise.resolve().then(() => tree.open(ctx, e.nodeid, 0)).then(() => assert.unreachable('open must fail'), (err: FuseError) => assert.is(err.code, 'EACCES'));
  await tree.unlink(ctx, 1, 'g');
  assert.equal(f.events, ['onUnlinked'], 'unlinked at once: nothing is open');
  assert.is(tree.stats().handles, 0);
});


// ---- synchronous replies ----

/** A raw request: fuse_in_header (40 bytes, built by hand) + body + names. */
function rawRequest(opcode: number, unique: number, nodeid: number, body: Buffer): { bytes: Uint8Array; view: DataView; n: number } {
  const b = Buffer.alloc(40 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(BigInt(unique), 8);
  b.writeBigUInt64LE(BigInt(nodeid), 16);
  body.copy(b, 40);
  const bytes = new Uint8Array(b.buffer, b.byteOffset, b.length);
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.length), n: b.length };
}

test('an InodeTree of synchronous inodes replies within Server.request (no microtask): LOOKUP, GETATTR, READ', () => {
  class Text extends FuseInode {
    constructor() { super(C.S_IFREG | 0o444); }
    override read(_c: Context, _h: unknown, off: bigint, size: number) { return Buffer.from('hello').subarray(Number(off), Number(off) + size); }
  }
  class Root extends FuseInode { static override readonly supports = ['read'] as const; }
  const root = new Root(C.S_IFDIR | 0o755);
  root.addChild('t', new Text());
  const server = new Server(new InodeTree(root));
  const replies: Buffer[] = [];
  server.sink = {
    write: (_ch, bytes, len) => { replies.push(Buffer.from(bytes.subarray(0, len))); return len; },
    writev: (_ch, chunks) => { replies.push(Buffer.concat(chunks.map((c) => Buffer.from(c)))); return 0; },
  };
  const ch = undefined as never;
  const lookup = rawRequest(1, 11, 1, Buffer.from('t\0'));
  server.request(lookup.bytes, lookup.view, lookup.n, ch);
  assert.is(replies.length, 1, 'LOOKUP answered before request() returned');
  assert.is(replies[0].readInt32LE(4), 0, 'LOOKUP succeeded');
  const nodeid = Number(replies[0].readBigUInt64LE(16));
  assert.ok(nodeid > 1);
  const getattr = rawRequest(3, 12, nodeid, Buffer.alloc(16));
  server.request(getattr.bytes, getattr.view, getattr.n, ch);
  assert.is(replies.length, 2, 'GETATTR answered before request() returned');
  assert.is(replies[1].readInt32LE(4), 0);
  const readIn = Buffer.alloc(40);
  readIn.writeBigUInt64LE(1n, 8); // offset 1
  readIn.writeUInt32LE(3, 16); // size 3
  const read = rawRequest(15, 13, nodeid, readIn);
  server.request(read.bytes, read.view, read.n, ch);
  assert.is(replies.length, 3, 'READ answered before request() returned');
  assert.is(replies[2].subarray(16).toString(), 'ell');
  // An undeclared operation is ENOSYS without calling the inode (MKDIR: not in supports).
  const mkdir = rawRequest(9, 14, 1, Buffer.concat([Buffer.alloc(8), Buffer.from('d\0')]));
  server.request(mkdir.bytes, mkdir.view, mkdir.n, ch);
  assert.is(replies[3].readInt32LE(4), -38, 'MKDIR not declared: ENOSYS (38)');
  assert.is(Math.floor(server.defaultWant() / 2 ** 13) % 2, 0, 'READDIRPLUS (bit 13) not declared: not asked for');
});

test('supports naming an operation that does not exist is refused when the tree is built', () => {
  class Bad extends FuseInode { static override readonly supports = ['mkdri'] as never; }
  assert.throws(() => new InodeTree(new Bad(C.S_IFDIR | 0o755)), /unknown operation "mkdri"/);
});

test('addChild on a mounted tree replaces a looked-up child with unlink accounting; removeChild drops it', async () => {
  const { root, tree } = setup();
  const f = new Backed(C.S_IFREG | 0o644, 'f');
  root.backend.set('f', f);
  const e = await tree.lookup(ctx, 1, 'f');
  root.addChild('f', new Node(C.S_IFREG | 0o644, 'f2'));
  assert.equal(f.events, ['onUnlinked'], 'the replaced child lost its last name');
  assert.is(f.lookupCount(), 1, 'the kernel still holds it');
  tree.forget(e.nodeid, 1);
  assert.equal(f.events, ['onUnlinked', 'onForget']);
  const g = root.removeChild('f');
  assert.ok(g && g.linkCount === 0 && !root.children.has('f'));
  assert.is(root.removeChild('nothing'), undefined);
});

test.run();
