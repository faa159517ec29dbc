// Faults in the backing store, and handlers that misbehave: what the client
// sees, written down per fault (issue 13, part 6).
//
// 1. A source that fails writes. The source of a passthrough is itself a tsfuse
//    mount (test/fixtures/faults-store.ts, its own process) that holds
//    `capacity` bytes (a write past it is short, then ENOSPC) or has a bad block
//    (a write over byte `eioAt` is EIO and writes nothing). A client writes
//    4 KiB at a time through the passthrough (the CLI, its own process):
//      - default (write-through): the write() that reaches the full disk returns
//        the short count, the next write() ENOSPC; the write() over the bad block
//        EIO; fsync() and close() then succeed; the source holds exactly the
//        bytes those write()s reported;
//      - writeback_cache: every write() succeeds (they land in the page cache);
//        the error comes at fsync() (EIO / ENOSPC), or at close() when there was
//        no fsync; the source holds a prefix of the data, nothing past the fault.
// 2. The source directory removed while mounted (rm -rf SRC): the mount's root
//    still stats (nlink 0) and lists empty, every name in it is ENOENT (stat,
//    open, readdir of a subdirectory, create, mkdir), a file opened before
//    still reads; SRC renamed away and a new directory made at its path: the
//    mount follows the renamed directory (as a bind mount does), the new one is
//    not seen. The server stays up and a new mount of the new SRC works.
// 3. The fd limit (RLIMIT_NOFILE of the server, through prlimit): opens beyond
//    it fail with EMFILE (as libfuse's passthrough answers), logged once; the
//    server keeps serving, and once the client closes its files and the kernel
//    forgets the inodes, its fd count is back where it started.
// 4. A handler that never settles: with -o handler_timeout=S the client's stat
//    or read gets EIO after S seconds, and the client is never in state D while
//    it waits (and dies when killed while it waits); a late result is dropped
//    and undone (the lookup forgotten, the opened handle released). Without the
//    option a waiting client sleeps interruptibly (S) until a signal; once
//    killed it waits in D for the answer (the kernel's request_wait_answer: the
//    request was read by the server) until the server answers or goes away.
// 5. A handler whose thenable settles twice: the first result reaches the
//    client, the second is logged, the server carries on.
// 6. request_timeout: sent in INIT (FUSE_REQUEST_TIMEOUT) when set; when the
//    kernel's timer fires the whole connection is aborted: the waiting client
//    gets ECONNABORTED, every later access ENOTCONN.
// Plus the protocol core without a mount: no timer per request with the option
// off, one with it on; late results undone; double settlements logged.
//
// No test asserts a duration: every wait is for an event, with a generous
// deadline (WAIT_MS).
import { constants as C, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsUser, AsUserError } from '../src/cli/as-user.js';
import { Server, type ReplySink } from '../src/api/server.js';
import type { FileSystem } from '../src/api/filesystem.js';
import type { Entry } from '../src/api/types.js';
import { OptionError, parseOptionString, resolveMountOptions } from '../src/transport/options.js';
import {
  alive, cleanup, dropCaches, forceUnmount, isMounted, mountsBelow, poll, procStat, sleep, startNode, stop, tempDir, timed, WAIT_MS, type Proc,
} from './helpers.js';
import { bases, Fixture, serverLog, withPt } from './pt-helpers.js';

const CLI = 'src/cli/main.js';
const CHUNK = 4096;

// ---- helpers -------------------------------------------------------------------------------

/** Waits until `p` has printed `line` (a whole line) `n` times. */
async function waitLine(p: Proc, line: string, n = 1): Promise<void> {
  const count = () => p.stdout().split('\n').filter((l) => l === line).length;
  assert.ok(await poll(() => count() >= n, WAIT_MS, 10), `no "${line}" (×${n}) within ${WAIT_MS} ms; stdout ${p.stdout()}; stderr ${p.stderr()}`);
}

/** Lines of `text` that contain `part`. */
const linesWith = (text: string, part: string) => text.split('\n').filter((l) => l.includes(part));

/** The error code a client call failed with ('EIO'), or 'ok: VALUE' when it succeeded. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    return `ok: ${JSON.stringify(await p)}`;
  } catch (e) {
    return (e as AsUserError).code ?? String(e);
  }
}

/** A client child; closed (killed) after `fn`. */
async function withClient<T>(fn: (c: AsUser) => Promise<T>): Promise<T> {
  const c = new AsUser();
  try {
    return await fn(c);
  } finally {
    c.kill();
  }
}

/** Bytes `i*4096 … (i+1)*4096-1` hold the letter A+i: the data the writers write. */
function written(chunks: number): Buffer {
  return Buffer.concat(Array.from({ length: chunks }, (_, i) => Buffer.alloc(CHUNK, 65 + i)));
}

// ---- 1. ENOSPC and EIO in the middle of writes ------------------------------------------------

interface Stack { base: string; src: string; mnt: string; store: Proc; pt: Proc }

/** The failing store on SRC, the passthrough (CLI, -o `words`) on MNT over it. */
async function withStack(storeOpts: object, words: string, fn: (s: Stack) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-faults-');
  bases.push(base);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  let store: Proc | undefined;
  let pt: Proc | undefined;
  try {
    store = startNode('test/fixtures/faults-store.js', [src, JSON.stringify(storeOpts)]);
    await store.waitFor('READY');
    pt = startNode(CLI, ['passthrough', src, mnt, '-f', '-o', `entry_timeout=0,attr_timeout=0${words ? `,${words}` : ''}`]);
    await pt.waitFor('mounted on');
    await fn({ base, src, mnt, store, pt });
  } finally {
    if (pt) await stop(pt);
    forceUnmount(mnt);
    if (store) await stop(store);
    forceUnmount(src);
    cleanup(base);
  }
}

/** A client writes `chunks` × 4 KiB to MNT/f, then fsync()s (if `fsync`) and close()s:
 * one line per call, "write 4096", "write ENOSPC", "fsync ok", "close EIO". */
function writeCalls(mnt: string, chunks: number, fsync: boolean): Promise<string[]> {
  return withClient((c) => c.run<string[]>(`
    const [path, chunks, doFsync] = a;
    const out = [];
    const call = (what, f) => {
      try { const v = f(); out.push(what + ' ' + (v === undefined ? 'ok' : v)); } catch (e) { out.push(what + ' ' + (e.code ?? e.message)); }
    };
    const fd = fs.openSync(path, 'w');
    for (let i = 0; i < chunks; i++) call('write', () => fs.writeSync(fd, Buffer.alloc(${CHUNK}, 65 + i)));
    if (doFsync) call('fsync', () => fs.fsyncSync(fd));
    call('close', () => fs.closeSync(fd));
    return out;`, [join(mnt, 'f'), chunks, fsync]));
}

/** What the client reads back through the mount (after the kernel dropped its caches). */
function readBack(mnt: string): Promise<Buffer> {
  dropCaches('3');
  return withClient((c) => c.run<Buffer>('return fs.readFileSync(a[0]);', [join(mnt, 'f')]));
}

test('ENOSPC mid-write (write-through): the write() that fills the disk returns the short count, the next write() ENOSPC; fsync() and close() succeed; exactly the reported bytes are stored', timed(120_000, () =>
  withStack({ capacity: 10_000 }, '', async ({ src, mnt, pt }) => {
    const calls = await writeCalls(mnt, 5, true);
    assert.equal(calls, ['write 4096', 'write 4096', 'write 1808', 'write ENOSPC', 'write ENOSPC', 'fsync ok', 'close ok']);
    const stored = readFileSync(join(src, 'f'));
    assert.is(stored.length, 10_000, 'the store holds what fitted');
    assert.ok(stored.equals(written(3).subarray(0, 10_000)), 'the bytes before the fault are there, in order');
    assert.ok((await readBack(mnt)).equals(stored), 'the client reads back the same through the mount');
    assert.is(pt.stderr(), '', 'the passthrough logs nothing: ENOSPC is an answer, not a fault of its own');
  })));

test('EIO mid-write (write-through, bad block at byte 9000): the write() over it gets EIO (so do the retries at the same offset); fsync() and close() succeed; the bytes before are stored, nothing after', timed(120_000, () =>
  withStack({ eioAt: 9000 }, '', async ({ src, mnt, store }) => {
    const calls = await writeCalls(mnt, 5, true);
    assert.equal(calls, ['write 4096', 'write 4096', 'write EIO', 'write EIO', 'write EIO', 'fsync ok', 'close ok']);
    const stored = readFileSync(join(src, 'f'));
    assert.ok(stored.equals(written(2)), `the store holds the two chunks before the bad one, nothing after (${stored.length} bytes)`);
    assert.ok((await readBack(mnt)).equals(stored));
    assert.ok(linesWith(store.stdout(), '→ EIO').length >= 3, store.stdout());
  })));

for (const withFsync of [true, false]) {
  const at = withFsync ? 'fsync()' : 'close()';
  test(`EIO with writeback_cache${withFsync ? '' : ', no fsync'}: every write() succeeds, ${at} gets EIO; the store holds a prefix, nothing from the bad block on`, timed(120_000, () =>
    withStack({ eioAt: 9000 }, 'writeback_cache', async ({ src, mnt }) => {
      const calls = await writeCalls(mnt, 5, withFsync);
      assert.equal(calls, [...Array(5).fill('write 4096'), ...(withFsync ? ['fsync EIO', 'close ok'] : ['close EIO'])]);
      // The kernel writes the dirty pages back in runs of its choosing: a run holding byte
      // 9000 is refused whole, so less than 8192 bytes may be stored, never more.
      const stored = readFileSync(join(src, 'f'));
      assert.ok(stored.length <= 8192 && stored.equals(written(5).subarray(0, stored.length)), `a prefix of at most 8192 bytes: ${stored.length}`);
    })));

  // The kernel's writeback takes no short count (fuse_writepage_end looks at the error
  // only): a source that writes part of a writeback WRITE must be answered with its error.
  test(`ENOSPC with writeback_cache${withFsync ? '' : ', no fsync'}: every write() succeeds, ${at} gets ENOSPC; the store holds what fitted`, timed(120_000, () =>
    withStack({ capacity: 10_000 }, 'writeback_cache', async ({ src, mnt }) => {
      const calls = await writeCalls(mnt, 5, withFsync);
      assert.equal(calls, [...Array(5).fill('write 4096'), ...(withFsync ? ['fsync ENOSPC', 'close ok'] : ['close ENOSPC'])]);
      const stored = readFileSync(join(src, 'f'));
      assert.ok(stored.length <= 10_000 && stored.equals(written(5).subarray(0, stored.length)), `a prefix of at most 10000 bytes: ${stored.length}`);
    })));
}

// ---- 2. The source directory removed or replaced while mounted ----------------------------------

/** What a client sees in the mount, one entry per call (value, or the error code). */
const PROBE = `
  const m = a[0];
  const r = {};
  const t = (k, f) => { try { const v = f(); r[k] = v === undefined ? 'ok' : v; } catch (e) { r[k] = e.code ?? e.message; } };
  t('rootNlink', () => fs.statSync(m).nlink);
  t('readdirRoot', () => fs.readdirSync(m).sort());
  t('statA', () => fs.statSync(m + '/a').size);
  t('readA', () => fs.readFileSync(m + '/a', 'utf8'));
  t('readSubB', () => fs.readFileSync(m + '/sub/b', 'utf8'));
  t('readdirSub', () => fs.readdirSync(m + '/sub'));
  t('statNew', () => fs.statSync(m + '/new').size);
  t('createC', () => fs.writeFileSync(m + '/c', 'c'));
  t('mkdirD', () => fs.mkdirSync(m + '/d'));
  return r;`;

function fillSrc(src: string): void {
  writeFileSync(join(src, 'a'), 'hello\n');
  mkdirSync(join(src, 'sub'));
  writeFileSync(join(src, 'sub', 'b'), 'inner\n');
}

/** A second passthrough of `src` on a new mount point: `fn` runs while it serves. */
async function secondMount(base: string, src: string, fn: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = join(base, 'mnt2');
  mkdirSync(mnt);
  const fx = await Fixture.start(src, mnt, { entryTimeout: 0, attrTimeout: 0 });
  try {
    await fn(mnt);
  } finally {
    await fx.stop();
    forceUnmount(mnt);
  }
}

for (const inodeHandles of ['never', 'prefer'] as const) {
  test(`SRC removed (rm -rf) while mounted, inodeHandles "${inodeHandles}": root stats (nlink 0) and lists empty, names are ENOENT, create/mkdir ENOENT, an open file still reads; the server stays up; a new mount of a new SRC works`, timed(120_000, () =>
    withPt({ entryTimeout: 0, attrTimeout: 0, inodeHandles }, async ({ base, src, mnt, fx }) => {
      fillSrc(src);
      await withClient(async (c) => {
        const before = await c.run<Record<string, unknown>>(PROBE, [mnt]);
        assert.equal([before.readdirRoot, before.readA, before.readSubB], [['a', 'sub'], 'hello\n', 'inner\n'], 'the mount works before');
        await c.ops([['openfd', 'held', join(mnt, 'a'), C.O_RDONLY]]);
        rmSync(src, { recursive: true });
        dropCaches();
        const after = await c.run<Record<string, unknown>>(PROBE, [mnt]);
        assert.equal(after, {
          rootNlink: 0, readdirRoot: [], statA: 'ENOENT', readA: 'ENOENT', readSubB: 'ENOENT', readdirSub: 'ENOENT',
          statNew: 'ENOENT', createC: 'ENOENT', mkdirD: 'ENOENT',
        });
        const held = await c.ops([['pread', 'held', 100, 0], ['close', 'held']]);
        assert.is(Buffer.from(held[0] as Buffer).toString(), 'hello\n', 'a file opened before the removal still reads');
      });
      assert.ok(fx.alive, 'the server is up');
      await fx.stats();
      // A new directory at SRC's path: this mount stays with the removed one ...
      mkdirSync(src);
      writeFileSync(join(src, 'new'), 'fresh\n');
      const again = await withClient((c) => c.run<Record<string, unknown>>(PROBE, [mnt]));
      assert.equal([again.readdirRoot, again.statNew], [[], 'ENOENT'], 'the mount is bound to the removed directory, not to the path');
      // ... and a new mount of it works.
      await secondMount(base, src, async (mnt2) => {
        const fresh = await withClient((c) => c.run<Record<string, unknown>>(PROBE, [mnt2]));
        assert.equal([fresh.readdirRoot, fresh.statNew, fresh.createC], [['new'], 6, 'ok']);
      });
      assert.is(await serverLog(fx), '', 'ENOENT is an answer: the server logs nothing');
    })));
}

test('SRC renamed away and a new directory made at its path: the mount follows the renamed directory (reads, creates land there), the new one is not seen; a new mount sees the new one', timed(120_000, () =>
  withPt({ entryTimeout: 0, attrTimeout: 0 }, async ({ base, src, mnt, fx }) => {
    fillSrc(src);
    const moved = join(base, 'src.old');
    renameSync(src, moved);
    mkdirSync(src);
    writeFileSync(join(src, 'new'), 'fresh\n');
    dropCaches();
    const r = await withClient((c) => c.run<Record<string, unknown>>(PROBE, [mnt]));
    assert.equal(r, {
      rootNlink: 3, readdirRoot: ['a', 'sub'], statA: 6, readA: 'hello\n', readSubB: 'inner\n', readdirSub: ['b'],
      statNew: 'ENOENT', createC: 'ok', mkdirD: 'ok',
    });
    assert.ok(existsSync(join(moved, 'c')) && existsSync(join(moved, 'd')), 'what the client created is in the renamed directory');
    assert.ok(!existsSync(join(src, 'c')), '… not in the new one');
    await secondMount(base, src, async (mnt2) => {
      const fresh = await withClient((c) => c.run<Record<string, unknown>>(PROBE, [mnt2]));
      assert.equal([fresh.readdirRoot, fresh.statNew], [['new'], 6]);
    });
    assert.ok(fx.alive);
    assert.is(await serverLog(fx), '');
  })));

// ---- 3. The fd limit ------------------------------------------------------------------------

const NOFILE = 128;
const FILES = 300;

test(`fd limit (server under RLIMIT_NOFILE ${NOFILE}): a client holding ${FILES} files open gets EMFILE past the limit, the server logs it once and keeps serving; after the closes and FORGETs its fd count is back to the start`, timed(180_000, () =>
  withPt({ inodeHandles: 'never', nofile: NOFILE, entryTimeout: 0, attrTimeout: 0 }, async ({ src, mnt, fx }) => {
    for (let i = 0; i < FILES; i++) writeFileSync(join(src, `f${i}`), `${i}\n`);
    const s0 = await fx.stats();
    assert.is(s0.nofile, NOFILE, 'the server runs under the low limit');
    assert.ok(s0.fds !== null, 'the server can count its fds');
    await withClient(async (c) => {
      const opened = await c.run<{ ok: number; errors: Record<string, number> }>(`
        const out = { ok: 0, errors: {} };
        for (let i = 0; i < a[1]; i++) {
          try { sys.openfd(i, a[0] + '/f' + i, 0); out.ok++; } catch (e) { out.errors[e.code] = (out.errors[e.code] ?? 0) + 1; }
        }
        return out;`, [mnt, FILES]);
      console.log(`  opened ${opened.ok} of ${FILES}; errors ${JSON.stringify(opened.errors)}`);
      assert.ok(opened.ok > 0 && opened.ok < FILES, `some opens succeed, not all: ${opened.ok}`);
      assert.equal(Object.keys(opened.errors), ['EMFILE'], 'the only error is EMFILE');
      assert.is(opened.errors.EMFILE + opened.ok, FILES);
      // The server still answers: through a file already open, and a name looked up anew
      // (the lookup itself needs an fd: it is EMFILE too until fds are free).
      assert.is(Buffer.from((await c.ops([['pread', 0, 10, 0]]))[0] as Buffer).toString(), '0\n');
      assert.is(await outcome(c.run('return fs.statSync(a[0]).isDirectory();', [mnt])), 'ok: true');
      // Close everything: the kernel RELEASEs the handles, and after drop_caches FORGETs the inodes.
      await c.run('for (let i = 0; i < a[0]; i++) { try { sys.close(i); } catch {} }', [FILES]);
    });
    let fds: number | null = null;
    for (const end = Date.now() + WAIT_MS; Date.now() < end; await sleep(200)) {
      dropCaches();
      fds = (await fx.stats()).fds;
      if (fds !== null && fds <= s0.fds!) break;
    }
    assert.ok(fds !== null && fds <= s0.fds!, `the server's fds return to ${s0.fds} (now ${fds})`);
    const reopened = await withClient((c) => c.run<string>(`
      for (let i = 0; i < 20; i++) sys.openfd(i, a[0] + '/f' + (${FILES} - 1 - i), 0);
      return sys.pread(19, 10, 0).toString();`, [mnt]));
    assert.is(reopened, `${FILES - 20}\n`, 'opens work again');
    const log = await serverLog(fx);
    assert.is(linesWith(log, 'out of file descriptors').length, 1, `one line about the limit: ${log}`);
    assert.ok(log.includes('EMFILE'), log);
  }, { nofile: NOFILE })));

// ---- 4-6. Handlers that never settle, settle late, settle twice; request_timeout -----------------

interface HangEnv { mnt: string; srv: Proc }

/** The faults-hang fixture on a fresh MNT with session options `opts`. */
async function withHang(opts: object, fn: (e: HangEnv) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-faults-hang-');
  bases.push(base);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  let srv: Proc | undefined;
  try {
    srv = startNode('test/fixtures/faults-hang.js', [mnt, JSON.stringify(opts)]);
    await srv.waitFor('READY');
    await fn({ mnt, srv });
  } finally {
    if (srv) {
      srv.child.kill('SIGUSR2'); // answer whatever is held
      await stop(srv);
    }
    forceUnmount(mnt);
    cleanup(base);
  }
}

/** Samples /proc/PID/stat's state every few ms while `during()` holds, until `until`
 * settles; returns the states seen. */
async function statesWhile(pid: number, until: Promise<unknown>, during: () => boolean): Promise<string[]> {
  const seen: string[] = [];
  let done = false;
  void until.then(() => { done = true; }, () => { done = true; });
  while (!done) {
    const s = during() ? procStat(pid)?.state : undefined;
    if (s && !done) seen.push(s);
    await new Promise((r) => setTimeout(r, 2));
  }
  return seen;
}

test('handler_timeout=1: a LOOKUP that never settles is answered EIO (the client\'s stat gets EIO), a READ that never settles too (read gets EIO, direct_io or buffered); the client is never in D while its stat or direct read waits; one log line each; the server goes on', timed(120_000, () =>
  withHang({ handlerTimeout: 1 }, async ({ mnt, srv }) => {
    await withClient(async (c) => {
      await c.run('return 1;'); // started: what Node does at start-up (page faults: D) is not sampled
      // Sampled from when the request is in the handler until the client has its answer.
      const stat = outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'hang')]));
      const states = await statesWhile(c.pid!, stat, () => srv.stdout().includes('REQ LOOKUP hang\n'));
      assert.is(await stat, 'EIO');
      assert.ok(states.length > 0 && !states.includes('D'), `never in D: ${states.join(',')}`);
      const read = outcome(c.run('const fd = fs.openSync(a[0]); return fs.readSync(fd, Buffer.alloc(100), 0, 100, 0);', [join(mnt, 'hang-read')]));
      const readStates = await statesWhile(c.pid!, read, () => srv.stdout().includes('REQ READ hang-read\n'));
      assert.is(await read, 'EIO');
      assert.ok(readStates.length > 0 && !readStates.includes('D'), `never in D: ${readStates.join(',')}`);
      // A buffered read waits on the page while the kernel's readahead READ is out: a killable
      // sleep, which /proc shows as D (TASK_KILLABLE); it too ends with EIO.
      assert.is(await outcome(c.run('const fd = fs.openSync(a[0]); return fs.readSync(fd, Buffer.alloc(100), 0, 100, 0);', [join(mnt, 'hang-read-cached')])), 'EIO');
      assert.is(await outcome(c.run('return fs.readFileSync(a[0], "utf8");', [join(mnt, 'ok')])), 'ok: "ok\\n"', 'other requests are answered');
    });
    await waitLine(srv, 'ABORTED LOOKUP hang ETIMEDOUT: not settled within handler_timeout (1 s); answered EIO'); // ctx.signal says why
    const log = srv.stderr();
    assert.is(linesWith(log, 'LOOKUP on node 1 (unique ').filter((l) => l.endsWith('not settled after 1 s: answered EIO (handler_timeout)')).length, 1, log);
    assert.ok(linesWith(log, 'READ on node 4 (unique ').every((l) => l.endsWith('not settled after 1 s: answered EIO (handler_timeout)')), log);
    assert.ok(alive(srv.child.pid!));
  })));

test('handler_timeout=1: a client killed while its request hangs dies (the EIO answer frees it)', timed(120_000, () =>
  withHang({ handlerTimeout: 1 }, async ({ mnt, srv }) => {
    const c = new AsUser();
    try {
      const pending = outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'hang')]));
      await waitLine(srv, 'REQ LOOKUP hang');
      c.kill();
      assert.ok(await poll(() => !alive(c.pid!), WAIT_MS, 10), `the killed client exits (state ${procStat(c.pid!)?.state})`);
      await pending;
    } finally {
      c.kill();
    }
  })));

test('handler_timeout=1: a LOOKUP and an OPEN that settle after their EIO are dropped and undone: the entry\'s lookup forgotten (FORGET 5 1), the handle released (RELEASE 6 77)', timed(120_000, () =>
  withHang({ handlerTimeout: 1 }, async ({ mnt, srv }) => {
    await withClient(async (c) => {
      assert.is(await outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'late')])), 'EIO');
      assert.is(await outcome(c.run('fs.openSync(a[0]); return 1;', [join(mnt, 'late-open')])), 'EIO');
    });
    assert.ok(!srv.stdout().includes('FORGET 5') && !srv.stdout().includes('RELEASE 6'), 'nothing undone before the results come');
    srv.child.kill('SIGUSR2');
    await waitLine(srv, 'FORGET 5 1');
    await waitLine(srv, 'RELEASE 6 77');
    await poll(() => linesWith(srv.stderr(), 'result dropped').length >= 2, WAIT_MS, 10);
    const dropped = linesWith(srv.stderr(), 'settled (resolved) after it was answered EIO by handler_timeout; result dropped');
    assert.is(dropped.length, 2, srv.stderr());
    assert.ok(dropped[0].startsWith('tsfuse: LOOKUP on node 1 (unique ') && dropped[1].startsWith('tsfuse: OPEN on node 6 (unique '), dropped.join('\n'));
    // A barrier: the kernel forgets what it holds (node 6, looked up for the open) ...
    dropCaches();
    await waitLine(srv, 'FORGET 6 1');
    // ... and never node 5, which it never got: its one FORGET is the server's undo.
    assert.is(srv.stdout().split('\n').filter((l) => l.startsWith('FORGET 5 ')).length, 1, srv.stdout());
  })));

test('no handler_timeout: a client waiting on a LOOKUP that never settles sleeps interruptibly (S); killed, it waits in D until the server goes away, then dies; a buffered read\'s waiter (D, killable) dies when killed; INIT carries no request_timeout', timed(120_000, () =>
  withHang({ debug: true }, async ({ mnt, srv }) => {
    assert.ok(!linesWith(srv.stderr(), 'INIT: protocol').some((l) => l.includes('REQUEST_TIMEOUT')), srv.stderr());
    const reader = new AsUser();
    try {
      const pending = outcome(reader.run('const fd = fs.openSync(a[0]); return fs.readSync(fd, Buffer.alloc(100), 0, 100, 0);', [join(mnt, 'hang-read-cached')]));
      await waitLine(srv, 'REQ READ hang-read-cached');
      assert.ok(await poll(() => procStat(reader.pid!)?.state === 'D', WAIT_MS, 5), 'waiting on the page: D (TASK_KILLABLE)');
      reader.kill();
      assert.ok(await poll(() => !alive(reader.pid!), WAIT_MS, 10), 'killed, it exits though the READ is still unanswered');
      await pending;
    } finally {
      reader.kill();
    }
    const c = new AsUser();
    try {
      const pending = outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'hang')]));
      await waitLine(srv, 'REQ LOOKUP hang');
      assert.ok(await poll(() => procStat(c.pid!)?.state === 'S', WAIT_MS, 5), 'waiting: S');
      c.kill();
      await waitLine(srv, 'ABORTED LOOKUP hang EINTR: interrupted by the kernel (FUSE_INTERRUPT)');
      // The kernel sent INTERRUPT; the request was already read, so after a fatal signal it
      // waits without interruption for the answer (fs/fuse/dev.c, request_wait_answer).
      assert.ok(await poll(() => procStat(c.pid!)?.state === 'D', WAIT_MS, 5), `killed: D (state ${procStat(c.pid!)?.state})`);
      assert.ok(alive(c.pid!), 'still there after the INTERRUPT reached the server');
      srv.child.kill('SIGKILL'); // the device closes: the kernel aborts the connection and ends the request
      assert.ok(await poll(() => !alive(c.pid!), WAIT_MS, 10), 'the client exits once the server is gone');
      await pending;
    } finally {
      c.kill();
    }
  })));

test('a handler\'s thenable that settles twice: the first result reaches the client (stat sees size 5, not 99, not EIO), the second is logged, the server goes on', timed(60_000, () =>
  withHang({}, async ({ mnt, srv }) => {
    await withClient(async (c) => {
      assert.is(await outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'twice')])), 'ok: 5');
      assert.is(await outcome(c.run('return fs.readFileSync(a[0], "utf8");', [join(mnt, 'ok')])), 'ok: "ok\\n"');
    });
    const twice = linesWith(srv.stderr(), 'settled twice');
    assert.ok(twice.some((l) => /^tsfuse: LOOKUP on node 1 \(unique \d+\): the handler's thenable settled twice \(resolved, then resolved\); the second result was ignored$/.test(l)), twice.join('\n'));
    assert.ok(twice.some((l) => /^tsfuse: GETATTR on node 7 \(unique \d+\): the handler's thenable settled twice \(resolved, then rejected: FuseError: EIO\); the second result was ignored$/.test(l)), twice.join('\n'));
    assert.ok(alive(srv.child.pid!));
  })));

test('request_timeout=1 (7.43): sent in INIT; when the kernel\'s timer fires on a LOOKUP that never settles, the connection is aborted: the waiting client gets ECONNABORTED, later accesses ENOTCONN, the server\'s session ends', timed(180_000, () =>
  withHang({ requestTimeout: 1, debug: true }, async ({ mnt, srv }) => {
    const init = linesWith(srv.stderr(), 'INIT: protocol');
    assert.ok(init.length === 1 && init[0].includes('REQUEST_TIMEOUT'), `INIT agreed FUSE_REQUEST_TIMEOUT: ${init}`);
    await withClient(async (c) => {
      // The kernel checks its requests every few seconds: a generous deadline, no duration asserted.
      assert.is(await outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'hang')], 150_000)), 'ECONNABORTED');
      assert.is(await outcome(c.run('return fs.statSync(a[0]).size;', [join(mnt, 'ok')])), 'ENOTCONN');
    });
    assert.ok(await poll(() => !alive(srv.child.pid!), WAIT_MS, 20), 'the server\'s session ended and it exited');
    assert.ok(isMounted(mnt), 'the dead mount stays until unmounted');
  })));

// ---- the protocol core, without a mount ----------------------------------------------------------

const LOOKUP = 1, CREATE = 35;

/** fuse_in_header + body, written by hand (linux/fuse.h offsets). */
function request(opcode: number, unique: number, nodeid: number, body: Buffer): Uint8Array {
  const h = Buffer.alloc(40);
  h.writeUInt32LE(40 + body.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeBigUInt64LE(BigInt(unique), 8);
  h.writeBigUInt64LE(BigInt(nodeid), 16);
  return new Uint8Array(Buffer.concat([h, body]));
}
const lookupReq = (unique: number, name: string) => request(LOOKUP, unique, 1, Buffer.from(`${name}\0`));
/** fuse_create_in: flags, mode, umask, open_flags; then the name. */
const createReq = (unique: number, name: string) => {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(0o101, 0);
  b.writeUInt32LE(0o100644, 4);
  return request(CREATE, unique, 1, Buffer.concat([b, Buffer.from(`${name}\0`)]));
};

/** A Server answering into a list, with `handlerTimeout` (seconds) as the mount's option. */
function core(fs: FileSystem, handlerTimeout?: number) {
  const replies: { unique: number; error: number; len: number }[] = [];
  const logs: string[] = [];
  const server = new Server(fs, { log: (l) => logs.push(l) });
  const sink: ReplySink = {
    write(_ch, bytes, len) {
      const b = Buffer.from(bytes.buffer, bytes.byteOffset, len);
      replies.push({ len: b.readUInt32LE(0), error: b.readInt32LE(4), unique: Number(b.readBigUInt64LE(8)) });
      return len;
    },
    writev(ch, chunks) {
      const all = Buffer.concat(chunks);
      return this.write(ch, all, all.length);
    },
    options: handlerTimeout === undefined ? undefined : { handlerTimeout },
  };
  server.attach(sink);
  const send = (req: Uint8Array) => server.request(req, new DataView(req.buffer, req.byteOffset, req.byteLength), req.length, {} as never);
  return { server, replies, logs, send };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

const ATTR = { ino: 9, mode: 0o100644 };
const EIO = -5;

test('core: with handlerTimeout 0 (default) an async request sets no timer; with it on, one per request, cleared when the handler settles in time', async () => {
  const real = globalThis.setTimeout;
  let timers = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => { timers++; return real(...args); }) as typeof setTimeout;
  try {
    for (const [ht, want] of [[undefined, 0], [0, 0], [30, 1]] as const) {
      const d = deferred<Entry>();
      const h = core({ lookup: () => d.promise }, ht);
      timers = 0;
      h.send(lookupReq(7, 'x'));
      assert.is(timers, want, `handlerTimeout ${ht}: timers set for one request`);
      d.resolve({ nodeid: 9, attr: ATTR });
      await poll(() => h.replies.length === 1, WAIT_MS);
      assert.equal(h.replies.map((r) => [r.unique, r.error]), [[7, 0]], 'answered with its entry');
      assert.is(h.server.stats().inFlight, 0);
    }
  } finally {
    globalThis.setTimeout = real;
  }
});

test('core: a LOOKUP settling after handlerTimeout is answered EIO once; its entry then comes and is forgotten (forget(nodeid, 1)); a late CREATE is released and forgotten; a late rejection is only logged', async () => {
  const calls: string[] = [];
  const look = deferred<Entry>();
  const made = deferred<object>();
  const failing = deferred<Entry>();
  const h = core({
    lookup: (_c, _p, name) => (name === 'late' ? look.promise : failing.promise),
    create: () => made.promise as never,
    forget: (n, k) => { calls.push(`forget ${n} ${k}`); },
    release: (_c, n, fh) => { calls.push(`release ${n} ${fh}`); },
  }, 0.05);
  h.send(lookupReq(11, 'late'));
  h.send(createReq(12, 'new'));
  h.send(lookupReq(13, 'gone'));
  assert.ok(await poll(() => h.replies.length === 3, WAIT_MS), 'all three answered');
  assert.equal(h.replies.map((r) => [r.unique, r.error, r.len]).sort(), [[11, EIO, 16], [12, EIO, 16], [13, EIO, 16]]);
  assert.is(h.server.stats().inFlight, 0);
  assert.equal(calls, []);
  look.resolve({ nodeid: 40, attr: ATTR });
  made.resolve({ entry: { nodeid: 41, attr: ATTR }, fh: 99 });
  failing.reject(new Error('backend down'));
  assert.ok(await poll(() => calls.length === 3 && h.logs.length === 6, WAIT_MS), `${calls} ${h.logs.join('\n')}`);
  assert.equal(calls.sort(), ['forget 40 1', 'forget 41 1', 'release 41 99']);
  assert.is(h.replies.length, 3, 'nothing more is written');
  assert.equal(h.logs.filter((l) => l.endsWith('not settled after 0.05 s: answered EIO (handler_timeout)')).length, 3, h.logs.join('\n'));
  assert.ok(h.logs.includes('LOOKUP on node 1 (unique 11) settled (resolved) after it was answered EIO by handler_timeout; result dropped'), h.logs.join('\n'));
  assert.ok(h.logs.includes('CREATE on node 1 (unique 12) settled (resolved) after it was answered EIO by handler_timeout; result dropped'), h.logs.join('\n'));
  assert.ok(h.logs.includes('LOOKUP on node 1 (unique 13) settled (rejected: Error: backend down) after it was answered EIO by handler_timeout; result dropped'), h.logs.join('\n'));
});

test('core: handlerTimeout interrupts the request\'s context (ctx.signal aborts)', async () => {
  let aborted = false;
  const h = core({ lookup: (ctx) => new Promise(() => { ctx.signal.addEventListener('abort', () => { aborted = true; }); }) }, 0.05);
  h.send(lookupReq(21, 'x'));
  assert.ok(await poll(() => h.replies.length === 1, WAIT_MS));
  assert.ok(aborted, 'the handler was told');
});

test('core: thenables that settle twice get the first settlement answered and the second logged; a plain Promise and a thenable settling once log nothing', async () => {
  const cases: [string, () => unknown, number, RegExp | undefined][] = [
    ['resolve, resolve', () => ({ then(res: (v: unknown) => void) { res({ nodeid: 5, attr: ATTR }); res({ nodeid: 6, attr: ATTR }); } }), 0,
      /^LOOKUP on node 1 \(unique 31\): the handler's thenable settled twice \(resolved, then resolved\); the second result was ignored$/],
    ['resolve, reject', () => ({ then(res: (v: unknown) => void, rej: (e: unknown) => void) { res({ nodeid: 5, attr: ATTR }); rej(new Error('late')); } }), 0,
      /^LOOKUP on node 1 \(unique 31\): the handler's thenable settled twice \(resolved, then rejected: Error: late\); the second result was ignored$/],
    ['reject, resolve', () => ({ then(res: (v: unknown) => void, rej: (e: unknown) => void) { rej(Object.assign(new Error('no'), { code: 'ENOENT' })); res({ nodeid: 5, attr: ATTR }); } }), -2,
      /^LOOKUP on node 1 \(unique 31\): the handler's thenable settled twice \(rejected, then resolved\); the second result was ignored$/],
    ['resolve, then throw', () => ({ then(res: (v: unknown) => void) { res({ nodeid: 5, attr: ATTR }); throw new Error('after'); } }), 0,
      /^LOOKUP on node 1 \(unique 31\): the handler's thenable settled twice \(resolved, then threw: Error: after\); the second result was ignored$/],
    ['once', () => ({ then(res: (v: unknown) => void) { res({ nodeid: 5, attr: ATTR }); } }), 0, undefined],
    ['a Promise', () => Promise.resolve({ nodeid: 5, attr: ATTR }), 0, undefined],
  ];
  for (const [what, lookup, error, logged] of cases) {
    for (const ht of [undefined, 30]) {
      const h = core({ lookup } as FileSystem, ht);
      h.send(lookupReq(31, 'x'));
      assert.ok(await poll(() => h.replies.length === 1 && h.server.stats().inFlight === 0, WAIT_MS), what);
      await new Promise((r) => setImmediate(r));
      assert.equal(h.replies.map((r) => r.error), [error], `${what} (handlerTimeout ${ht}): one reply, from the first settlement`);
      if (logged) assert.ok(h.logs.length === 1 && logged.test(h.logs[0]), `${what}: ${h.logs.join('\n')}`);
      else assert.equal(h.logs, [], what);
    }
  }
});

test('options: handlerTimeout is seconds (fractions allowed) from 0 to 65535, default 0; -o handler_timeout=S; bad values name the option', () => {
  assert.is(resolveMountOptions({}).handlerTimeout, 0);
  assert.is(resolveMountOptions({ handlerTimeout: 0.25 }).handlerTimeout, 0.25);
  assert.equal(parseOptionString('handler_timeout=2.5,request_timeout=30').options, { handlerTimeout: 2.5, requestTimeout: 30 });
  for (const v of [-1, 65536, NaN, Infinity, '1' as unknown as number]) {
    try {
      resolveMountOptions({ handlerTimeout: v });
      assert.unreachable(`handlerTimeout ${v} accepted`);
    } catch (e) {
      assert.instance(e, OptionError);
      assert.is((e as OptionError).option, 'handlerTimeout');
    }
  }
  for (const s of ['handler_timeout=abc', 'handler_timeout=-1', 'handler_timeout=', 'handler_timeout', 'handler_timeout=1e3']) {
    try {
      parseOptionString(s);
      assert.unreachable(`${s} accepted`);
    } catch (e) {
      assert.instance(e, OptionError);
      assert.is((e as OptionError).option, 'handler_timeout', s);
    }
  }
});

test('nothing of this file is left mounted', () => {
  for (const b of bases) assert.equal(mountsBelow(b), [], b);
});

test.run();
