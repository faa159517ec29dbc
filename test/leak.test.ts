// No leaks, no global side effects (issue 8, item 5). In ONE process: mount and
// unmount many sessions and check that every past session's FileSystem, inodes,
// Server, Connection and read buffers can be garbage-collected, that memory and
// open fds come back to where they were, and that mounting changes nothing
// process-wide (umask, ids, signal/exit listeners, timers).
//
// The servers run on this process's event loop, so client syscalls go through
// child processes that are awaited asynchronously (a synchronous spawn would
// block the loop that has to answer them).
import { execFile } from 'node:child_process';
import { closeSync, constants as C, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FuseError, FuseInode, InodeTree, mount, type FileSystem, type FuseSession } from '../src/index.js';
import { native, type NativeReader } from '../src/transport/native.js';
import { cleanup, forceUnmount, isMounted, tempDir, timed } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SESSIONS = 200;
const WARMUP = 10;
const MiB = 1024 * 1024;
const TEXT = new TextEncoder().encode('Hello, world!\n');
/** Bytes [offset, offset+size) of TEXT (offsets may be numbers or bigints). */
const slice = (offset: number | bigint, size: number) => TEXT.subarray(Number(offset), Number(offset) + size);

// ---- two small filesystems, a fresh object graph per mount ------------------

/** A hello-style FileSystem: one file /hello. A new object (with its own state) each call. */
function helloFs(): FileSystem {
  const root = { ino: 1, mode: C.S_IFDIR | 0o755, nlink: 2 };
  const file = { ino: 2, mode: C.S_IFREG | 0o444, size: TEXT.length };
  return {
    lookup(_ctx, parent, name) {
      if (parent !== 1 || name !== 'hello') throw new FuseError('ENOENT');
      return { nodeid: 2, attr: file };
    },
    getattr: (_ctx, node) => ({ attr: node === 1 ? root : file }),
    open: () => ({ keepCache: true }),
    read: (_ctx, _node, _fh, offset, size) => slice(offset, size),
    readdir(_ctx, _node, _fh, offset, out) {
      const names: [string, number, number][] = [['.', 1, 4], ['..', 1, 4], ['hello', 2, 8]];
      for (let i = Number(offset); i < names.length; i++) if (!out.add(names[i][0], names[i][1], names[i][2], i + 1)) break;
    },
  };
}

class HelloFile extends FuseInode {
  constructor() { super(C.S_IFREG | 0o444); this.makePersistent(); }
  override getattr() { return { ino: this.nodeid, mode: this.mode, size: TEXT.length }; }
  override read(_ctx: unknown, _h: unknown, offset: number | bigint, size: number) { return slice(offset, size); }
}

class HelloDir extends FuseInode {
  static override readonly supports = ['read'] as const;
}

/** An InodeTree with a root directory and one file /hello. */
function treeFs(): { fs: InodeTree; inodes: FuseInode[] } {
  const root = new HelloDir(C.S_IFDIR | 0o755);
  const file = root.addChild('hello', new HelloFile());
  return { fs: new InodeTree(root), inodes: [root, file] };
}

// ---- helpers ----------------------------------------------------------------

/** Runs `cmd args` in a child process without blocking this loop; resolves with its stdout. */
function client(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout));
  });
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Full collections with loop turns in between: N-API finalizers run from an immediate,
 * and what they release is only collectable by the next collection. */
async function collect(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc();
    await tick();
    await new Promise((r) => setTimeout(r, 5));
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

interface Sample { heapUsed: number; external: number; arrayBuffers: number; fds: number }
async function sample(): Promise<Sample> {
  await collect();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, fds: openFds() };
}
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

/** Mounts `fs` on `mnt`, runs `fn`, and always unmounts (lazily if the plain unmount fails). */
async function withMount(mnt: string, fs: FileSystem, fn: (s: FuseSession) => Promise<void> | void): Promise<FuseSession> {
  const s = await mount(mnt, fs, { fsname: 'leak', subtype: 'leak', log: () => {} });
  try {
    await fn(s);
  } finally {
    try {
      await s.unmount();
    } catch {
      try { await s.unmount({ lazy: true }); } catch { /* already gone */ }
      forceUnmount(mnt);
    }
  }
  return s;
}

/** Everything of one session that must not outlive it. */
interface Tracked { label: string; ref: WeakRef<object> }

/** Mounts session `i` on `mnt`; every 10th one serves a few requests from a child process. */
async function oneSession(mnt: string, i: number, tracked: Tracked[]): Promise<void> {
  const tree = i % 2 === 1 ? treeFs() : undefined;
  const fs: FileSystem = tree?.fs ?? helloFs();
  const session = await withMount(mnt, fs, async () => {
    if (i % 10 === 0) {
      assert.is(await client('cat', [join(mnt, 'hello')]), 'Hello, world!\n');
      assert.ok((await client('ls', [mnt])).includes('hello'));
    }
  });
  assert.ok(session.connection.ended, `session ${i} ended`);
  tracked.push({ label: `FileSystem #${i}`, ref: new WeakRef(fs) });
  tracked.push({ label: `Server #${i}`, ref: new WeakRef(session.server) });
  tracked.push({ label: `Connection #${i}`, ref: new WeakRef(session.connection) });
  tracked.push({ label: `FuseSession #${i}`, ref: new WeakRef(session) });
  for (const n of tree?.inodes ?? []) tracked.push({ label: `inode ${n.constructor.name} #${i}`, ref: new WeakRef(n) });
}

// ---- tests ------------------------------------------------------------------

test('200 sessions mounted and unmounted in one process: every FileSystem, inode, Server and read buffer is freed',
  timed(300_000, async () => {
    const mnt = tempDir('tsfuse-leak-');
    const tracked: Tracked[] = [];
    try {
      for (let i = 0; i < WARMUP; i++) await oneSession(mnt, i, tracked);
      const base = await sample();
      for (let i = WARMUP; i < SESSIONS; i++) await oneSession(mnt, i, tracked);
      const after = await sample();
      assert.not.ok(isMounted(mnt), 'unmounted');

      const alive = tracked.filter((t) => t.ref.deref() !== undefined).map((t) => t.label);
      const perKind = (kind: string) => alive.filter((l) => l.startsWith(kind)).length;
      console.log(`leak: after ${WARMUP} sessions heapUsed ${mib(base.heapUsed)}, external ${mib(base.external)}, ` +
        `arrayBuffers ${mib(base.arrayBuffers)}, fds ${base.fds}`);
      console.log(`leak: after ${SESSIONS} sessions heapUsed ${mib(after.heapUsed)}, external ${mib(after.external)}, ` +
        `arrayBuffers ${mib(after.arrayBuffers)}, fds ${after.fds}; still alive: ${alive.length} of ${tracked.length} objects ` +
        `(FileSystem ${perKind('FileSystem')}, Server ${perKind('Server')}, Connection ${perKind('Connection')}, inodes ${perKind('inode')})`);

      // One or two stragglers (the last session may still be referenced from a register or a
      // not yet collected closure) are tolerated; a leak keeps all of them.
      for (const kind of ['FileSystem', 'Server', 'Connection', 'FuseSession', 'inode']) {
        assert.ok(perKind(kind) <= 2, `${perKind(kind)} ${kind} objects of past sessions still alive: ${alive.filter((l) => l.startsWith(kind)).slice(0, 10).join(', ')}…`);
      }
      // Each session allocates a ~1 MiB read buffer: 190 leaked sessions would be ~190 MiB.
      assert.ok(after.arrayBuffers - base.arrayBuffers < 16 * MiB,
        `arrayBuffers grew by ${mib(after.arrayBuffers - base.arrayBuffers)} over ${SESSIONS - WARMUP} sessions`);
      assert.ok(after.external - base.external < 16 * MiB,
        `external memory grew by ${mib(after.external - base.external)} over ${SESSIONS - WARMUP} sessions`);
      assert.ok(after.heapUsed - base.heapUsed < 8 * MiB,
        `heapUsed grew by ${mib(after.heapUsed - base.heapUsed)} over ${SESSIONS - WARMUP} sessions`);
      // Every /dev/fuse fd is closed at the end of its session.
      assert.ok(after.fds <= base.fds + 2, `open fds went from ${base.fds} to ${after.fds}`);
    } finally {
      cleanup(mnt);
    }
  }));

test('a Connection kept after its session ended does not keep the Server or the FileSystem alive', timed(120_000, async () => {
  const mnt = tempDir('tsfuse-leak-');
  const kept: unknown[] = [];
  const tracked: Tracked[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const fs = i % 2 ? treeFs().fs : helloFs();
      const s = await withMount(mnt, fs, async () => {
        if (i % 5 === 0) assert.is(await client('cat', [join(mnt, 'hello')]), 'Hello, world!\n');
      });
      kept.push(s.connection);
      tracked.push({ label: `FileSystem #${i}`, ref: new WeakRef(fs) }, { label: `Server #${i}`, ref: new WeakRef(s.server) });
    }
    await collect();
    const alive = tracked.filter((t) => t.ref.deref() !== undefined).map((t) => t.label);
    assert.ok(alive.length <= 2, `still alive with their Connection kept: ${alive.join(', ')}`);
    assert.is(kept.length, 20);
  } finally {
    cleanup(mnt);
  }
}));

// ---- the addon's Reader on its own (a socketpair instead of /dev/fuse) ------

/** A non-blocking socketpair: [the end a Reader watches, the end the test writes to]. */
function pair(): [number, number] {
  const [a, b] = native.socketpair();
  native.setNonBlocking(a, true);
  return [a, b];
}

/** A Reader whose callback closes over an owner that holds the Reader — the shape of a session. */
function cyclicReader(fd: number, onRead: (n: number) => boolean = () => true, size = MiB): { owner: object; reader: NativeReader } {
  const owner: { buf: Uint8Array; reader?: NativeReader } = { buf: new Uint8Array(size) };
  owner.reader = new native.Reader(fd, owner.buf, (n) => (owner.reader ? onRead(n) : false));
  return { owner, reader: owner.reader };
}

test('a stopped or never started Reader does not keep its callback, its buffer or itself alive', timed(60_000, async () => {
  const refs: WeakRef<object>[] = [];
  const before = (await sample()).arrayBuffers;
  for (let i = 0; i < 50; i++) {
    const [a, b] = pair();
    try {
      const { owner, reader } = cyclicReader(a);
      if (i % 2 === 0) {
        reader.start();
        writeSync(b, new Uint8Array([i]));
        await tick();
        reader.stop();
      }
      refs.push(new WeakRef(owner), new WeakRef(reader));
    } finally {
      closeSync(a);
      closeSync(b);
    }
  }
  const after = (await sample()).arrayBuffers;
  const alive = refs.filter((r) => r.deref() !== undefined).length;
  assert.ok(alive <= 2, `${alive} of ${refs.length} Readers and their owners still alive after stop`);
  assert.ok(after - before < 8 * MiB, `arrayBuffers grew by ${mib(after - before)} for 50 stopped Readers`);
}));

test('Reader.stop is idempotent, and once stopped from inside onRead nothing more is delivered', timed(30_000, async () => {
  const [a, b] = pair();
  try {
    const calls: number[] = [];
    // A 1-byte buffer: three bytes are three reads in one wake-up, unless stop() ends it.
    // onRead asks for more (returns true), so only the stop can keep the loop from reading on.
    const { reader } = cyclicReader(a, (n) => { calls.push(n); reader.stop(); reader.stop(); return true; }, 1);
    reader.stop(); // before start: nothing to stop
    reader.start();
    reader.start(); // already started: no second poll handle
    writeSync(b, new Uint8Array([1, 2, 3]));
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(calls, [1], `onRead calls after stop() from inside onRead: ${calls.length}`);
    writeSync(b, new Uint8Array([4]));
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(calls, [1], 'no call after stop() for later data');
    // A stopped Reader can be started again (its buffer and callback are still held by the owner).
    reader.start();
    for (let i = 0; i < 20 && calls.length < 2; i++) await tick();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(calls, [1, 1], 'restarted: one more byte read, then stopped again');
  } finally {
    closeSync(a);
    closeSync(b);
  }
}));

/** What a library must not change process-wide. */
function globals() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGPIPE', 'exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'warning'];
  return {
    // Read from /proc: process.umask() without an argument is deprecated (DEP0139).
    umask: /^Umask:\s*(\d+)$/m.exec(status)?.[1],
    uid: process.getuid!(), euid: process.geteuid!(), gid: process.getgid!(), egid: process.getegid!(),
    groups: process.getgroups!().join(','),
    fsids: [/^Uid:.*$/m.exec(status)?.[0], /^Gid:.*$/m.exec(status)?.[0]],
    cwd: process.cwd(),
    // RLIMIT_NOFILE: a library raises it only when asked (Passthrough's `nofile` option).
    nofile: /^Max open files.*$/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[0],
    listeners: Object.fromEntries(events.map((e) => [e, process.listenerCount(e)])),
    // Timers or other handles a finished session left running (Node-owned resources).
    resources: process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').sort().join(','),
  };
}

test('mounting and unmounting (FileSystem object and InodeTree) leaves umask, ids, listeners and timers unchanged',
  timed(60_000, async () => {
    const mnt = tempDir('tsfuse-global-');
    try {
      await collect(1);
      const before = globals();
      await withMount(mnt, helloFs(), async () => {
        assert.equal(globals().umask, before.umask, 'umask while mounted');
        assert.is(await client('cat', [join(mnt, 'hello')]), 'Hello, world!\n');
      });
      await withMount(mnt, treeFs().fs, async () => {
        assert.is(await client('cat', [join(mnt, 'hello')]), 'Hello, world!\n');
        await client('stat', [mnt]);
      });
      await tick();
      assert.equal(globals(), before);
    } finally {
      cleanup(mnt);
    }
  }));

test('constructing, mounting and unmounting a Passthrough leaves the umask and RLIMIT_NOFILE unchanged', timed(60_000, async () => {
  const { Passthrough } = await import('../src/passthrough/index.js');
  const src = tempDir('tsfuse-global-src-');
  const mnt = tempDir('tsfuse-global-');
  const before = globals().umask;
  const nofile = globals().nofile;
  try {
    const fs = new Passthrough(src);
    assert.is(globals().umask, before, 'umask after new Passthrough()');
    assert.is(globals().nofile, nofile, 'RLIMIT_NOFILE after new Passthrough() (not asked to raise it)');
    await withMount(mnt, fs, async () => {
      await client('sh', ['-c', `umask 022 && echo hi > ${join(mnt, 'f')}`]);
    });
    assert.is(globals().umask, before, 'umask after unmount');
  } finally {
    if (before !== undefined && globals().umask !== before) process.umask(parseInt(before, 8));
    cleanup(mnt);
    cleanup(src);
  }
}));

test.run();
