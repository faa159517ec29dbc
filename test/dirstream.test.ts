// InodeTree without a mount: directories listed through a DirStream (cookies
// of the filesystem's choosing, leftovers of a full reply served first,
// resumption at any cookie, bounded memory), READDIRPLUS entries whose lookup
// fails sent name-only, stale names dropped on ENOENT and when an inode turns
// out to be gone; and the supplementary-groups request extension.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as C } from 'node:fs';
import {
  FuseError, FuseInode, InodeTree, RequestContext, type Context, type DirStream, type Entry, type StreamEntry,
} from '../src/index.js';
import { extGroups, FUSE_EXT_GROUPS, ProtocolError } from '../src/abi/index.js';

const ctx: Context = new RequestContext(0, 0, 1, 0);

/** A stream over `names` whose cookies are 2^63 − 1 − 1000·i (any non-zero 64-bit values
 * will do), `batch` entries per read, sync or async. Counts reads and the largest batch. */
class Listing implements DirStream {
  reads = 0;
  closed = false;
  constructor(readonly names: string[], readonly batch: number, readonly async: boolean) {}
  cookie(i: number): bigint { return (1n << 63n) - 1n - 1000n * BigInt(i); }
  read(_c: Context, cookie: bigint): readonly StreamEntry[] | Promise<readonly StreamEntry[]> {
    this.reads++;
    let start = 0;
    if (cookie !== 0n) {
      start = this.names.findIndex((_, i) => this.cookie(i) === cookie) + 1;
      if (start === 0) throw new FuseError('EINVAL', `unknown cookie ${cookie}`);
    }
    const out = this.names.slice(start, start + this.batch).map((name, k) => ({
      name, mode: C.S_IFREG, ino: BigInt(start + k + 100), next: this.cookie(start + k),
    }));
    return this.async ? Promise.resolve(out) : out;
  }
  close(): void { this.closed = true; }
}

class File extends FuseInode {
  constructor(readonly key: string) { super(C.S_IFREG | 0o644); }
  override identity() { return this.key; }
}

class Dir extends FuseInode {
  static override readonly supports = ['readdirplus', 'unlink'] as const;
  stream: Listing | undefined;
  /** Names whose lookup throws this errno. */
  failing = new Map<string, string>();
  backend = new Map<string, File>();
  constructor() { super(C.S_IFDIR | 0o755); }
  override opendir(): DirStream | void { return this.stream; }
  override lookup(_c: Context, name: string): FuseInode {
    const code = this.failing.get(name);
    if (code) throw new FuseError(code);
    const f = this.backend.get(name);
    if (!f) throw new FuseError('ENOENT');
    return f;
  }
  override unlink(_c: Context, name: string): void { this.backend.delete(name); }
}

/** A READDIR sink taking at most `room` entries. */
function sink(room: number) {
  const got: { name: string; ino: bigint; next: bigint }[] = [];
  return {
    got,
    add(name: string | Uint8Array, ino: number | bigint, _type: number, next: number | bigint): boolean {
      if (got.length >= room) return false;
      got.push({ name: String(name), ino: BigInt(ino), next: BigInt(next) });
      return true;
    },
  };
}
function plusSink(room: number) {
  const got: { name: string; entry: Entry; next: bigint }[] = [];
  return {
    got,
    add(name: string | Uint8Array, entry: Entry, next: number | bigint): boolean {
      if (got.length >= room) return false;
      got.push({ name: String(name), entry, next: BigInt(next) });
      return true;
    },
  };
}

const NAMES = Array.from({ length: 250 }, (_, i) => `n${i}`);

for (const async of [false, true]) {
  test(`READDIR through a ${async ? 'async' : 'sync'} DirStream: every entry once, in order, the kernel's cookies resume exactly`, async () => {
    const root = new Dir();
    const tree = new InodeTree(root);
    root.stream = new Listing(NAMES, 64, async);
    const { fh } = await tree.opendir(ctx, 1, 0);
    const seen: string[] = [];
    let offset = 0n;
    for (let calls = 0; calls < 1000; calls++) {
      const s = sink(7 + (calls % 5)); // rooms that never line up with the batches
      await tree.readdir(ctx, 1, fh!, offset, s);
      if (s.got.length === 0) break;
      for (const e of s.got) seen.push(e.name);
      offset = s.got[s.got.length - 1].next;
    }
    assert.equal(seen, NAMES, 'all names, once each, in order');
    // Leftovers were served without re-reading: far fewer reads than READDIR calls.
    assert.ok(root.stream.reads <= Math.ceil(NAMES.length / 64) + 2, `${root.stream.reads} stream reads for ${NAMES.length} entries in batches of 64`);
    // Resuming at an older cookie (a seekdir back) reads from there.
    const s = sink(3);
    await tree.readdir(ctx, 1, fh!, root.stream.cookie(9), s);
    assert.equal(s.got.map((e) => e.name), ['n10', 'n11', 'n12']);
    assert.is(s.got[0].ino, 110n, 'the stream\'s ino is passed on');
    await tree.releasedir(ctx, 1, fh!);
    assert.ok(root.stream.closed, 'RELEASEDIR closes the stream');
    assert.is(tree.stats().handles, 0);
  });
}

test('a DirStream entry with cookie 0 is refused (the kernel would list forever), not sent', async () => {
  const root = new Dir();
  const tree = new InodeTree(root);
  root.stream = { read: () => [{ name: 'a', mode: C.S_IFREG, next: 0n }] } as unknown as Listing;
  const { fh } = await tree.opendir(ctx, 1, 0);
  const s = sink(10);
  assert.throws(() => tree.readdir(ctx, 1, fh!, 0n, s), /cookie/);
  assert.is(s.got.length, 0);
});

for (const code of ['EACCES', 'EMFILE', 'ESTALE', 'ENOENT']) {
  test(`READDIRPLUS: an entry whose lookup fails with ${code} is sent name-only (nodeid 0), never dropped`, async () => {
    const root = new Dir();
    const tree = new InodeTree(root);
    for (const n of ['a', 'b', 'c']) root.backend.set(n, new File(n));
    root.failing.set('b', code);
    root.stream = new Listing(['.', '..', 'a', 'b', 'c'], 2, true);
    const { fh } = await tree.opendir(ctx, 1, 0);
    const all: { name: string; entry: Entry }[] = [];
    let offset = 0n;
    for (;;) {
      const s = plusSink(2);
      await tree.readdirplus!(ctx, 1, fh!, offset, s);
      if (!s.got.length) break;
      all.push(...s.got);
      offset = s.got[s.got.length - 1].next;
    }
    assert.equal(all.map((e) => e.name), ['.', '..', 'a', 'b', 'c']);
    const by = new Map(all.map((e) => [e.name, e.entry]));
    assert.is(by.get('.')!.nodeid, 0, '"." is name-only');
    assert.is(by.get('b')!.nodeid, 0, 'the failed lookup is name-only');
    assert.is(Number(by.get('b')!.attr.ino), 103, 'with the stream\'s ino');
    assert.ok(by.get('a')!.nodeid > 1 && by.get('c')!.nodeid > 1, `the others are handed out: ${JSON.stringify([...by].map(([n, e]) => [n, e.nodeid]))}`);
    assert.is(tree.stats().lookups, 2, 'exactly the two handed-out entries count as lookups');
  });
}

test('LOOKUP answered ENOENT drops the child known under that name (removed behind our back)', async () => {
  const root = new Dir();
  const tree = new InodeTree(root);
  const f = new File('f');
  root.backend.set('f', f);
  await tree.lookup(ctx, 1, 'f');
  assert.is(root.children.get('f'), f);
  root.backend.delete('f'); // behind the framework's back
  // The thrown ENOENT becomes a negative entry (node id 0: "no such name" to the kernel).
  assert.equal(await tree.lookup(ctx, 1, 'f'), { nodeid: 0 });
  assert.is(root.children.get('f'), undefined, 'the stale child is gone from the tree');
  assert.is(f.linkCount, 0);
});

/** A file that says whether it is gone when asked (its "source" has no link left). */
class Linked extends File {
  links = 2;
  asked = 0;
  override onUnlinked(): boolean { this.asked++; return this.links === 0; }
}

test('an inode that lost a name while others remain is asked whether it is gone; if so its stale names go too', async () => {
  const root = new Dir();
  const tree = new InodeTree(root);
  const f = new Linked('inode');
  root.backend.set('f', f);
  root.backend.set('g', f);
  await tree.lookup(ctx, 1, 'f');
  await tree.lookup(ctx, 1, 'g');
  assert.is(f.linkCount, 2, 'hard links merged into one inode with two names');
  // g removed behind our back; f unlinked through us: the source says no link is left.
  root.backend.delete('g');
  f.links = 0;
  await tree.unlink!(ctx, 1, 'f');
  assert.is(f.asked, 1, 'asked once, although the tree still knew the name g');
  assert.is(root.children.get('g'), undefined, 'the stale name g is dropped');
  assert.is(f.linkCount, 0);
  // While another link really exists, nothing is dropped.
  const h = new Linked('other');
  root.backend.set('h', h);
  root.backend.set('k', h);
  await tree.lookup(ctx, 1, 'h');
  await tree.lookup(ctx, 1, 'k');
  h.links = 1;
  await tree.unlink!(ctx, 1, 'h');
  assert.is(h.asked, 1);
  assert.is(root.children.get('k'), h, 'k stays: the inode still exists');
});

test('the supplementary-groups extension decodes exactly; malformed ones are refused, never half-read', () => {
  const ext = (words: number[]) => new Uint8Array(new Uint32Array(words).buffer);
  assert.equal(extGroups(ext([16, FUSE_EXT_GROUPS, 1, 4294967294])), [4294967294]);
  assert.equal(extGroups(ext([24, 7, 0, 0, 0, 0, 16, FUSE_EXT_GROUPS, 1, 5])), [5], 'after a security context');
  assert.equal(extGroups(ext([8, 3])), undefined, 'no groups extension');
  assert.equal(extGroups(new Uint8Array(0)), undefined);
  for (const bad of [[12, FUSE_EXT_GROUPS, 1], [16, FUSE_EXT_GROUPS, 3, 1], [0, FUSE_EXT_GROUPS], [4096, FUSE_EXT_GROUPS, 1, 1], [8]]) {
    assert.throws(() => extGroups(ext(bad)), (e: unknown) => e instanceof ProtocolError, JSON.stringify(bad));
  }
});

test.run();
