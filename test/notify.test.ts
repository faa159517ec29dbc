// Notifications end to end (src/transport/notify.ts through FuseInode's
// notify* methods): the server (test/fixtures/serve-inode.ts, memfs, in a
// child process) changes files behind the kernel's back and tells it — or
// not — over its stdin control channel. The mount caches entries and
// attributes for an hour, so whatever the kernel sees afresh is due to a
// notification. Reads go through file descriptors opened before the change:
// an open without FOPEN_KEEP_CACHE would drop the page cache by itself.
//
// Note: test/helpers.ts' startNode() spawns with stdin 'ignore', so it cannot
// drive the fixture's control channel; the Fixture class below spawns the same
// script with a stdin pipe.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, tempDir, timed, errCode } from './helpers.js';
import { Fixture, withFixture, ourMounts } from './inode-fixture.js';
import type { Answer } from './fixture.js';

// ---- helpers ------------------------------------------------------------------

const CACHE = { attrTimeout: 3_600_000, entryTimeout: 3_600_000 };

/** pread(fd, 4096 bytes, offset) as a string. */
function pread(fd: number, offset = 0): string {
  const b = Buffer.alloc(4096);
  return b.subarray(0, readSync(fd, b, 0, b.length, offset)).toString();
}


const reads = async (f: Fixture) => (await f.stats()).stats.requests.READ ?? 0;

// ---- (a) INVAL_INODE ----------------------------------------------------------------

test('set with notify none: the cached content and size stay; with notify inode: the new ones are read', timed(20_000, () =>
  withFixture('memfs', CACHE, async (f, mnt) => {
    const p = join(mnt, 'f');
    writeFileSync(p, 'one');
    // A write through the mount marks the cached attributes stale (mtime, size): the next
    // stat or read would GETATTR, see a new mtime and (AUTO_INVAL_DATA) drop the page cache.
    // Settle them first.
    assert.is(statSync(p).size, 3);
    const fd = openSync(p, 'r');
    try {
      assert.is(pread(fd), 'one');
      // a READ marks the cached atime stale: the next stat would GETATTR; settle it too
      assert.is(statSync(p).size, 3);
      const n0 = await reads(f);
      const getattrs = (await f.stats()).stats.requests.GETATTR ?? 0;
      let a = await f.ok({ cmd: 'set', path: 'f', data: 'two, longer', notify: 'none' });
      assert.is(a.r, 0);
      assert.is(pread(fd), 'one', 'page cache still holds the old content');
      assert.is(statSync(p).size, 3, 'attributes still cached');
      assert.is(await reads(f), n0, 'no READ reached the server');
      assert.is((await f.stats()).stats.requests.GETATTR ?? 0, getattrs, 'no GETATTR either');
      a = await f.ok({ cmd: 'set', path: 'f', data: 'two, longer', notify: 'inode' });
      assert.ok((a.r as number) > 0, `INVAL_INODE written: r = ${a.r}`);
      assert.is(statSync(p).size, 11, 'attributes refreshed');
      assert.is(pread(fd), 'two, longer', 'content refreshed');
      assert.ok((await reads(f)) > n0, 'the new content came from a READ');
      // again, shorter: the size shrinks too
      await f.ok({ cmd: 'set', path: 'f', data: '3', notify: 'inode' });
      assert.is(pread(fd), '3');
      assert.is(readFileSync(p, 'utf8'), '3');
    } finally {
      closeSync(fd);
    }
  })));

// ---- (b) INVAL_ENTRY / DELETE ---------------------------------------------------------

test('remove with notify none: the cached name still resolves; with notify entry or delete: ENOENT', timed(20_000, () =>
  withFixture('memfs', CACHE, async (f, mnt) => {
    for (const n of ['x', 'y', 'z']) writeFileSync(join(mnt, n), n.repeat(4));
    for (const n of ['x', 'y', 'z']) assert.is(statSync(join(mnt, n)).size, 4);
    const lookups = (await f.stats()).stats.requests.LOOKUP ?? 0;

    let a = await f.ok({ cmd: 'remove', dir: '', name: 'x', notify: 'none' });
    assert.is(a.r, 0);
    assert.is(errCode(() => statSync(join(mnt, 'x'))), undefined, 'x: the dentry is cached for an hour');
    assert.is(readFileSync(join(mnt, 'x'), 'utf8'), 'xxxx', 'and the inode still serves its data');

    a = await f.ok({ cmd: 'remove', dir: '', name: 'y', notify: 'entry' });
    assert.ok((a.r as number) > 0, `INVAL_ENTRY written: r = ${a.r}`);
    assert.is(errCode(() => statSync(join(mnt, 'y'))), 'ENOENT', 'y: the dentry was dropped, LOOKUP says ENOENT');

    a = await f.ok({ cmd: 'remove', dir: '', name: 'z', notify: 'delete' });
    assert.ok((a.r as number) > 0, `DELETE written: r = ${a.r}`);
    assert.is(errCode(() => statSync(join(mnt, 'z'))), 'ENOENT', 'z: deleted');
    assert.ok(((await f.stats()).stats.requests.LOOKUP ?? 0) > lookups, 'the ENOENTs came from LOOKUPs');
    assert.equal((await f.names('')).sort(), [], 'the tree lost all three names');

    // add: the kernel caches no negative entries here (LOOKUP answers ENOENT without a
    // timeout), so a new name is found with or without INVAL_ENTRY
    assert.is(errCode(() => statSync(join(mnt, 'n1'))), 'ENOENT');
    a = await f.ok({ cmd: 'add', dir: '', name: 'n1', data: 'new one', notify: 'none' });
    assert.is(readFileSync(join(mnt, 'n1'), 'utf8'), 'new one');
    a = await f.ok({ cmd: 'add', dir: '', name: 'n2', data: 'new two', notify: 'entry' });
    // INVAL_ENTRY of a name the kernel has no dentry for: ENOENT, reported as r = -2 (not logged)
    assert.is(a.r, -2, `INVAL_ENTRY of an uncached name: r = ${a.r}`);
    assert.is(readFileSync(join(mnt, 'n2'), 'utf8'), 'new two');
    await f.caughtUp();
    assert.is(f.err, '', 'no server log lines');
  })));

// ---- (c) notifications while requests are in flight -------------------------------------

/**
 * Reader process: holds an fd on each of h0..h3 and preads them, opens and
 * reads g0..g3, and stats p0..p3 (missing until added: a LOOKUP in the root
 * every time), loop after loop. It is paced by the test through the file CTL
 * (outside the mount), not by time: each loop starts by reading CTL, and when
 * its content changed the reader prints "SAW <content>" — so the test knows
 * this reader began a loop after that point. "stop": this loop is the last.
 * Reports the last content seen per file, when each p first appeared, and errors.
 */
const READER = `
const fs = require('fs'), path = require('path');
const [mnt, ctl] = process.argv.slice(1);
const buf = Buffer.alloc(4096);
const held = {};
for (let i = 0; i < 4; i++) held['h' + i] = fs.openSync(path.join(mnt, 'h' + i), 'r');
const rep = { loops: 0, rounds: 0, last: {}, found: {}, errors: {}, bad: [] };
const err = (k, e) => { const c = e.code || e.message; rep.errors[c] = (rep.errors[c] || 0) + 1; if (!(k[0] === 'p' && c === 'ENOENT') && rep.bad.length < 20) rep.bad.push(k + ': ' + c); };
let seen;
for (let last = false; !last;) {
  const now = fs.readFileSync(ctl, 'utf8');
  if (now !== seen) { seen = now; rep.rounds++; fs.writeSync(1, 'SAW ' + now + '\\n'); }
  last = now === 'stop';
  rep.loops++;
  for (let i = 0; i < 4; i++) {
    const h = 'h' + i, g = 'g' + i, p = 'p' + i;
    try { rep.last[h] = buf.subarray(0, fs.readSync(held[h], buf, 0, 4096, 0)).toString(); } catch (e) { err(h, e); }
    try { fs.statSync(path.join(mnt, g)); rep.last[g] = fs.readFileSync(path.join(mnt, g), 'utf8'); } catch (e) { err(g, e); }
    try { fs.statSync(path.join(mnt, p)); rep.found[p] = rep.found[p] || rep.loops; rep.last[p] = fs.readFileSync(path.join(mnt, p), 'utf8'); } catch (e) { err(p, e); }
  }
}
for (const fd of Object.values(held)) fs.closeSync(fd);
console.log(JSON.stringify(rep));
`;
interface ReaderReport { loops: number; rounds: number; last: Record<string, string>; found: Record<string, number>; errors: Record<string, number>; bad: string[] }

interface Reader {
  /** Resolves once the reader has begun a loop after CTL was set to `what` (rejects if it exits first). */
  saw(what: string): Promise<void>;
  report: Promise<ReaderReport>;
  kill(): void;
}

function reader(mnt: string, ctl: string): Reader {
  const child = spawn(process.execPath, ['-e', READER, mnt, ctl], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; for (const w of [...waiters]) w(); });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const report = new Promise<ReaderReport>((resolve, reject) => {
    child.on('close', (code, signal) => {
      for (const w of [...waiters]) w();
      if (code !== 0) return reject(new Error(`reader exited ${code ?? signal}: ${err}`));
      try { resolve(JSON.parse(out.slice(out.indexOf('{'))) as ReaderReport); } catch { reject(new Error(`reader: ${out} ${err}`)); }
    });
  });
  report.catch(() => { /* reported by whoever awaits it */ });
  return {
    report,
    saw: (what) => new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.includes(`SAW ${what}\n`)) { waiters.delete(check); resolve(); }
        else if (child.exitCode !== null || child.signalCode !== null) { waiters.delete(check); reject(new Error(`reader exited before "SAW ${what}": ${out} ${err}`)); }
      };
      waiters.add(check);
      check();
    }),
    kill: () => { if (child.exitCode === null) child.kill('SIGKILL'); },
  };
}

test('notifications sent while other requests are in flight: all answered, readers see the new content', timed(120_000, () =>
  withFixture('memfs', CACHE, async (f, mnt) => {
    for (let i = 0; i < 4; i++) {
      writeFileSync(join(mnt, `h${i}`), `h${i} v0`);
      writeFileSync(join(mnt, `g${i}`), `g${i} data`);
    }
    // The readers run from before the first notification to after the last, by
    // construction: each round waits until both readers have begun a loop after it
    // (their "SAW r"), and the last loop of each starts after the last round.
    const dir = tempDir('tsfuse-test-notify-ctl-');
    const ctl = join(dir, 'ctl');
    writeFileSync(ctl, '0');
    const readers = [reader(mnt, ctl), reader(mnt, ctl)];
    try {
      const sawAll = async (what: string) => {
        writeFileSync(`${ctl}.new`, what); // renamed over: a reader never reads a half-written CTL
        renameSync(`${ctl}.new`, ctl);
        await Promise.all(readers.map((x) => x.saw(what)));
      };
      await Promise.all(readers.map((x) => x.saw('0'))); // the readers are running
      const answers: Answer[] = [];
      const ROUNDS = 15;
      for (let r = 1; r <= ROUNDS; r++) {
        // several commands at once: INVAL_INODEs for the held files, and (halfway) new names
        // with INVAL_ENTRY in the root, where the readers' LOOKUPs of p0..p3 keep arriving
        const cmds: object[] = [0, 1, 2, 3].map((i) => ({ cmd: 'set', path: `h${i}`, data: `h${i} v${r}${'.'.repeat(r)}`, notify: 'inode' }));
        if (r === 8) for (let i = 0; i < 4; i++) cmds.push({ cmd: 'add', dir: '', name: `p${i}`, data: `p${i} added`, notify: 'entry' });
        answers.push(...await Promise.all(cmds.map((c) => f.send(c))));
        await sawAll(String(r));
      }
      await sawAll('stop');
      const reps = await Promise.all(readers.map((x) => x.report));
      assert.equal(answers.filter((a) => !a.ok), [], 'every command answered ok');
      const rs = answers.map((a) => a.r as number);
      const loops = reps.map((r) => r.loops);
      console.log(`  ${rs.length} notifications (results ${JSON.stringify(Object.fromEntries(rs.map((r) => [r, rs.filter((x) => x === r).length])))}); reader loops ${loops}`);
      assert.ok(rs.every((r) => typeof r === 'number' && (r > 0 || r === -2)), `notification results: ${JSON.stringify(rs)}`);
      for (const [k, rep] of reps.entries()) {
        assert.equal(rep.bad, [], `reader ${k}: no errors but ENOENT for names not yet added (${JSON.stringify(rep.errors)})`);
        assert.is(rep.rounds, ROUNDS + 2, `reader ${k} began a loop in every round (0, 1…${ROUNDS}, stop): ${rep.rounds}`);
        assert.ok(rep.loops >= ROUNDS + 2, `reader ${k} ran (${rep.loops} loops)`);
        for (let i = 0; i < 4; i++) {
          assert.is(rep.last[`h${i}`], `h${i} v${ROUNDS}${'.'.repeat(ROUNDS)}`, `reader ${k}: final content of h${i} through its held fd`);
          assert.is(rep.last[`g${i}`], `g${i} data`);
          assert.is(rep.last[`p${i}`], `p${i} added`, `reader ${k} found p${i}`);
        }
      }
    } finally {
      for (const x of readers) x.kill();
      cleanup(dir);
    }
    const s = await f.stats();
    assert.is(s.stats.malformed, 0);
    assert.is(s.stats.inFlight, 0);
    await f.caughtUp();
    assert.is(f.err, '', 'no server log lines (a failed notification would be logged)');
  })));

// ---- (d) STORE and (e) RETRIEVE ------------------------------------------------------------

test('store: the stored bytes are read from the page cache, no READ reaches the server', timed(20_000, () =>
  withFixture('memfs', CACHE, async (f, mnt) => {
    const p = join(mnt, 's');
    writeFileSync(p, 'hello world');
    assert.is(statSync(p).size, 11); // settle the attributes the write marked stale (see above)
    const fd = openSync(p, 'r'); // open first: an open without keep_cache drops the page cache
    try {
      const n0 = await reads(f);
      const a = await f.ok({ cmd: 'store', path: 's', offset: 0, data: 'HELLO WORLD' });
      assert.ok((a.r as number) > 0, `NOTIFY_STORE written: r = ${a.r}`);
      assert.is(pread(fd), 'HELLO WORLD', 'the stored bytes, not the server\'s');
      assert.is(await reads(f), n0, 'no READ reached the server');
      // what the kernel has cached is what was stored
      const got = await f.ok({ cmd: 'retrieve', path: 's', offset: 0, size: 4096 });
      assert.is(got.data, 'HELLO WORLD');
    } finally {
      closeSync(fd);
    }
    // a new open drops the cache (no keep_cache): the server's content again
    assert.is(readFileSync(p, 'utf8'), 'hello world');
  })));

test('retrieve: returns what the kernel has cached for a file that was read', timed(20_000, () =>
  withFixture('memfs', CACHE, async (f, mnt) => {
    const p = join(mnt, 'r');
    const text = 'retrieve me, please';
    writeFileSync(p, text);
    assert.is(statSync(p).size, text.length);
    const fd = openSync(p, 'r');
    try {
      assert.is(pread(fd), text);
      let a = await f.ok({ cmd: 'retrieve', path: 'r', offset: 0, size: 4096 });
      assert.is(a.data, text, 'the whole cached file (clipped to its size)');
      a = await f.ok({ cmd: 'retrieve', path: 'r', offset: 3, size: 5 });
      assert.is(a.data, text.slice(3, 8), 'a range');
      // the server's copy changes silently: the cache (and retrieve) keep the old bytes
      await f.ok({ cmd: 'set', path: 'r', data: 'RETRIEVE ME, PLEASE', notify: 'none' });
      a = await f.ok({ cmd: 'retrieve', path: 'r', offset: 0, size: 4096 });
      assert.is(a.data, text, 'retrieve shows the kernel\'s cache, not the server\'s data');
      // after INVAL_INODE the cache is empty
      await f.ok({ cmd: 'set', path: 'r', data: 'RETRIEVE ME, PLEASE', notify: 'inode' });
      a = await f.ok({ cmd: 'retrieve', path: 'r', offset: 0, size: 4096 });
      assert.is(a.data, '', 'nothing cached after the invalidation');
      assert.is(pread(fd), 'RETRIEVE ME, PLEASE');
    } finally {
      closeSync(fd);
    }
  })));

test('no mounts of this file left in /proc/mounts', timed(5000, () => {
  assert.equal(ourMounts(), []);
}));

test.run();
