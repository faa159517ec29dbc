// End-to-end: the passthrough filesystem (src/passthrough) against the
// problems of MISSION.md point 5 — unlink must free space at once, hard links
// in other directories (aliases) keep working after the name the server knew
// goes, renames over hard links, a bounded race of lookups against unlink +
// re-link, inode numbers reused behind the mount's back, fd exhaustion under a
// low RLIMIT_NOFILE (file-handle modes), and the `tsfuse passthrough` CLI.
//
// The server is test/fixtures/serve-passthrough.ts in a child process (under
// `prlimit --nofile=N:N` where a low limit is wanted: Node cannot setrlimit).
// This process, or processes it spawns, make the client syscalls.
import { spawn } from 'node:child_process';
import {
  closeSync, existsSync, fstatSync, linkSync, lstatSync, mkdirSync, opendirSync, openSync, readdirSync, readFileSync, readSync,
  renameSync, rmSync, statfsSync, statSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, DIST, dropCaches, forceUnmount, isMounted, poll, run, runNode, sleep, tempDir, timed, errCode, WAIT_MS } from './helpers.js';
import { bases, type Fixture, type PtOptions, serverLog, withPt } from './pt-helpers.js';

const CLI = join(DIST, 'src/cli/main.js');
const MiB = 1 << 20;


// ---- small helpers --------------------------------------------------------------

/** Free bytes of the filesystem holding `p`. */
function freeBytes(p: string): number {
  const s = statfsSync(p);
  return s.bfree * s.bsize;
}

/** Writes `mib` MiB to `path` (each MiB starts with a tag), closing the file. */
function writeBig(path: string, mib: number, tag: string): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = Buffer.alloc(MiB, 0x5a);
    for (let i = 0; i < mib; i++) {
      chunk.write(`${tag}:${i}:`, 0, 'latin1');
      let off = 0;
      while (off < MiB) off += writeSync(fd, chunk, off, MiB - off, i * MiB + off);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Waits until the server holds no open file. The kernel sends RELEASE after close()
 * has returned (asynchronously), so "the server closed it" is this event, not a time.
 */
async function allReleased(fx: Fixture): Promise<void> {
  const end = Date.now() + WAIT_MS;
  let s = await fx.stats();
  while (s.stats.fs.handles !== 0 && Date.now() < end) {
    await sleep(10);
    s = await fx.stats();
  }
  assert.is(s.stats.fs.handles, 0, `open files the server still holds (no RELEASE within ${WAIT_MS} ms): ${JSON.stringify(s.stats.fs)}`);
}

/** Reads and writes through MNT/b/g after MNT/a/f went; checks SRC/b/g. */
function checkAlias(src: string, mnt: string, before: string): void {
  const g = join(mnt, 'b', 'g');
  assert.not.ok(existsSync(join(mnt, 'a', 'f')));
  assert.not.ok(existsSync(join(src, 'a', 'f')));
  assert.is(readFileSync(g, 'utf8'), before, 'content through the alias');
  const fd = openSync(g, 'r+');
  try {
    writeSync(fd, 'TWO\n', before.length);
    assert.is(fstatSync(fd).size, before.length + 4);
  } finally {
    closeSync(fd);
  }
  assert.is(readFileSync(join(src, 'b', 'g'), 'utf8'), `${before}TWO\n`, 'written data is in SRC/b/g');
  assert.is(readFileSync(g, 'utf8'), `${before}TWO\n`, 'and reads back through the mount');
  const st = statSync(g);
  assert.is(st.nlink, 1);
  assert.is(st.ino, statSync(join(src, 'b', 'g')).ino, 'the mount reports the source inode number');
}

for (const mode of ['never', 'mandatory'] as const) {
  // ---- 1. unlink frees space at once ---------------------------------------------------

  test(`unlink of a 64 MiB file frees its space on the source (tmpfs) at once [${mode}]`, timed(120_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = freeBytes(src);
      writeBig(join(mnt, 'f'), 64, 'big');
      assert.is(statSync(join(src, 'f')).size, 64 * MiB, 'the data went to the source');
      const used = free0 - freeBytes(src);
      assert.ok(used >= 63 * MiB, `the source's free space dropped by ${used / MiB} MiB, expected ≥ 63`);
      unlinkSync(join(mnt, 'f'));
      // "At once" is an order, not a time: the server closes the inode's fd while it
      // handles the UNLINK (no name and no open file left), the open file's fd at its
      // RELEASE (sent after close(), asynchronously). Once both happened the space is
      // free, with no FORGET needed (none is provoked here).
      await allReleased(fx);
      assert.ok(freeBytes(src) >= free0 - MiB, `space not freed once unlinked and released: ${(free0 - freeBytes(src)) / MiB} MiB still used; server fds: ${(await fx.fdList()).join(', ')}`);
      assert.not.ok(existsSync(join(src, 'f')));
      assert.is(await serverLog(fx), '', 'server log');
    }, { tmpfs: true })));

  test(`unlink of a 64 MiB file created behind the mount and read through it frees its space at once [${mode}]`, timed(120_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = freeBytes(src);
      writeBig(join(src, 'f'), 64, 'behind');
      assert.is(statSync(join(mnt, 'f')).size, 64 * MiB);
      const fd = openSync(join(mnt, 'f'), 'r');
      const b = Buffer.alloc(16);
      readSync(fd, b, 0, 16, 5 * MiB);
      closeSync(fd);
      assert.is(b.toString('latin1', 0, 9), 'behind:5:');
      unlinkSync(join(mnt, 'f'));
      await allReleased(fx); // the reader's close: RELEASE follows asynchronously
      assert.ok(freeBytes(src) >= free0 - MiB, `space not freed once unlinked and released: ${(free0 - freeBytes(src)) / MiB} MiB used; server fds: ${(await fx.fdList()).join(', ')}`);
      assert.is(await serverLog(fx), '', 'server log');
    }, { tmpfs: true })));

  test(`unlink while another process holds the file open: space stays until its close, then goes at once [${mode}]`, timed(120_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = freeBytes(src);
      const path = join(mnt, 'f');
      writeBig(path, 64, 'held');
      // The holder: opens the file, says OPEN, reads the 5th MiB's tag after the
      // unlink when told (a line on stdin), says the tag, and closes when stdin ends.
      const holder = spawn('bash', ['-c', 'exec 3<"$1"; echo OPEN; read -r _; dd bs=1M skip=5 count=1 <&3 2>/dev/null | head -c 7; echo; read -r _; exec 3<&-; echo CLOSED', 'holder', path],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      holder.stdout!.on('data', (d) => { out += d; });
      const holderExit = new Promise((r) => holder.on('exit', r));
      try {
        assert.ok(await poll(() => out.includes('OPEN\n'), WAIT_MS), `the holder opened the file: ${JSON.stringify(out)}`);
        unlinkSync(path);
        assert.not.ok(existsSync(join(src, 'f')), 'the name is gone from the source');
        // Nothing announces "the server did not free it": a stats round trip shows it has
        // handled the UNLINK and gone on; the check is repeated after the holder's read.
        await fx.stats();
        const usedWhileOpen = free0 - freeBytes(src);
        assert.ok(usedWhileOpen >= 63 * MiB, `space must stay allocated while the file is open; used ${usedWhileOpen / MiB} MiB`);
        holder.stdin!.write('\n');
        assert.ok(await poll(() => out.split('\n').length >= 3, WAIT_MS), `holder read after unlink: ${JSON.stringify(out)}`);
        assert.is(out.split('\n')[1], 'held:5:', 'the open file still reads its data after the unlink');
        const usedAfterRead = free0 - freeBytes(src);
        assert.ok(usedAfterRead >= 63 * MiB, `space must stay allocated until the last close; used ${usedAfterRead / MiB} MiB`);
        holder.stdin!.end('\n');
        await holderExit;
        assert.ok(out.includes('CLOSED'));
        await allReleased(fx); // the holder's close (and the writer's): RELEASEs follow asynchronously
        assert.ok(freeBytes(src) >= free0 - MiB, `space not freed once the last close was released: ${(free0 - freeBytes(src)) / MiB} MiB used; server fds: ${(await fx.fdList()).join(', ')}`);
      } finally {
        holder.kill('SIGKILL');
      }
      assert.is(await serverLog(fx), '', 'server log');
    }, { tmpfs: true })));

  // ---- 2. hard links in two directories ------------------------------------------------

  test(`hard links in two directories (made through the mount): unlink a/f, then read and write b/g [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(mnt, 'a'));
      mkdirSync(join(mnt, 'b'));
      writeFileSync(join(mnt, 'a', 'f'), 'one\n');
      linkSync(join(mnt, 'a', 'f'), join(mnt, 'b', 'g'));
      assert.is(statSync(join(mnt, 'b', 'g')).nlink, 2);
      assert.is(statSync(join(src, 'b', 'g')).ino, statSync(join(src, 'a', 'f')).ino);
      unlinkSync(join(mnt, 'a', 'f'));
      checkAlias(src, mnt, 'one\n');
      assert.is(await serverLog(fx), '', 'server log');
    })));

  test(`hard link made in SRC behind the mount: unlink the only name the server knows, then use the alias [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(src, 'a'));
      mkdirSync(join(src, 'b'));
      writeFileSync(join(mnt, 'a', 'f'), 'one\n');
      assert.is(readFileSync(join(mnt, 'a', 'f'), 'utf8'), 'one\n');
      linkSync(join(src, 'a', 'f'), join(src, 'b', 'g')); // behind the mount
      unlinkSync(join(mnt, 'a', 'f')); // the server's last known name: its fd is closed
      checkAlias(src, mnt, 'one\n');
      // The alias found later got its own fd: nothing refers to a closed one.
      dropCaches();
      assert.is(readFileSync(join(mnt, 'b', 'g'), 'utf8'), 'one\nTWO\n');
      assert.is(await serverLog(fx), '', 'server log');
    })));

  test(`hard link made in SRC, both names looked up before the unlink [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(src, 'a'));
      mkdirSync(join(src, 'b'));
      writeFileSync(join(src, 'a', 'f'), 'one\n');
      linkSync(join(src, 'a', 'f'), join(src, 'b', 'g'));
      const a = statSync(join(mnt, 'a', 'f'));
      const b = statSync(join(mnt, 'b', 'g'));
      assert.is(a.ino, b.ino);
      assert.is(a.nlink, 2);
      unlinkSync(join(mnt, 'a', 'f'));
      checkAlias(src, mnt, 'one\n');
      assert.is(await serverLog(fx), '', 'server log');
    })));

  test(`hard link in SRC while a/f is open through the mount: unlink, read b/g, close [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(src, 'a'));
      mkdirSync(join(src, 'b'));
      writeFileSync(join(src, 'a', 'f'), 'one\n');
      const fd = openSync(join(mnt, 'a', 'f'), 'r');
      try {
        linkSync(join(src, 'a', 'f'), join(src, 'b', 'g'));
        unlinkSync(join(mnt, 'a', 'f'));
        assert.is(readFileSync(join(mnt, 'b', 'g'), 'utf8'), 'one\n');
        const buf = Buffer.alloc(4);
        assert.is(readSync(fd, buf, 0, 4, 0), 4);
        assert.is(buf.toString(), 'one\n');
      } finally {
        closeSync(fd);
      }
      checkAlias(src, mnt, 'one\n');
      assert.is(await serverLog(fx), '', 'server log');
    })));

  // ---- 3. rename over a hard-linked file ------------------------------------------------

  test(`rename over one name of a hard-linked file: the other keeps the old content with nlink 1 [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      writeFileSync(join(mnt, 'f'), 'old\n');
      linkSync(join(mnt, 'f'), join(mnt, 'g'));
      writeFileSync(join(mnt, 'h'), 'new content\n');
      assert.is(statSync(join(mnt, 'f')).nlink, 2);
      renameSync(join(mnt, 'h'), join(mnt, 'g'));
      assert.is(readFileSync(join(mnt, 'f'), 'utf8'), 'old\n');
      assert.is(statSync(join(mnt, 'f')).nlink, 1);
      assert.is(readFileSync(join(mnt, 'g'), 'utf8'), 'new content\n');
      assert.is(statSync(join(mnt, 'g')).nlink, 1);
      assert.not.ok(existsSync(join(mnt, 'h')));
      assert.equal(readdirSync(src).sort(), ['f', 'g']);
      assert.is(readFileSync(join(src, 'f'), 'utf8'), 'old\n');
      assert.is(readFileSync(join(src, 'g'), 'utf8'), 'new content\n');
      dropCaches();
      assert.is(readFileSync(join(mnt, 'f'), 'utf8'), 'old\n');
      assert.is(await serverLog(fx), '', 'server log');
    })));

  test(`rename over b/g when only b/g was looked up (a/f linked behind the mount), g held open meanwhile [${mode}]`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(src, 'a'));
      mkdirSync(join(src, 'b'));
      writeFileSync(join(src, 'a', 'f'), 'old\n');
      linkSync(join(src, 'a', 'f'), join(src, 'b', 'g'));
      writeFileSync(join(mnt, 'b', 'h'), 'new content\n');
      const fd = openSync(join(mnt, 'b', 'g'), 'r');
      renameSync(join(mnt, 'b', 'h'), join(mnt, 'b', 'g')); // the old inode loses the only name the server knows
      const buf = Buffer.alloc(4);
      assert.is(readSync(fd, buf, 0, 4, 0), 4);
      assert.is(buf.toString(), 'old\n', 'the open file keeps its content');
      closeSync(fd); // the server may close its fd now …
      // … and a later lookup of the other name gets the inode back.
      assert.is(readFileSync(join(mnt, 'a', 'f'), 'utf8'), 'old\n');
      assert.is(statSync(join(mnt, 'a', 'f')).nlink, 1);
      assert.is(readFileSync(join(mnt, 'b', 'g'), 'utf8'), 'new content\n');
      writeFileSync(join(mnt, 'a', 'f'), 'old, rewritten\n');
      assert.is(readFileSync(join(src, 'a', 'f'), 'utf8'), 'old, rewritten\n');
      assert.is(await serverLog(fx), '', 'server log');
    })));
}

// ---- 4. race stress -----------------------------------------------------------------

const REP = 1000; // each generation's file is its 11-byte tag "GEN:nnnnnn:" repeated
const tagOf = (n: number) => `GEN:${String(n).padStart(6, '0')}:`;
/** The writer makes at least this many generations, each reader at least this many operations,
 * however long it takes (a loaded machine is slow; the run is at least its `ms` long too). */
const MIN_GENS = 21;
const MIN_OPS = 21;

/**
 * The three processes are ordered by files in CTL (a directory outside the mount), not by
 * time: each reader creates CTL/started-ID after its first pass, the writer starts once
 * both readers have, and the test creates CTL/stop when the writer is done. A reader's
 * pass that begins after it saw CTL/stop is its last, so every reader reads after the
 * last generation, and the readers run during the whole of the writer's run.
 */
const WAIT_FILE = `
const waitFile = (f) => { const a = new Int32Array(new SharedArrayBuffer(4)); while (!fs.existsSync(f)) Atomics.wait(a, 0, 0, 10); };
`;

/**
 * The writer: generation n is a fresh file written through the mount as
 * a/f.new, which replaces a/f (rename over, or unlink + link, or unlink +
 * rename), then becomes b/g too — through the mount for even n, by link +
 * rename directly in SRC (behind the mount) for odd n. So a/f and b/g are
 * aliases most of the time, and the server often knows only one of the names.
 */
const WRITER = `
const fs = require('fs'), path = require('path');
const [mnt, src, ms, ctl] = process.argv.slice(1);
const A = path.join(mnt, 'a'), B = path.join(mnt, 'b'), SA = path.join(src, 'a'), SB = path.join(src, 'b');
${WAIT_FILE}
for (const id of ['1', '2']) waitFile(path.join(ctl, 'started-' + id));
const tag = (n) => 'GEN:' + String(n).padStart(6, '0') + ':';
const errors = {}, notes = [];
let linkEnoent = 0;
const step = (op, fn, ok = []) => { try { fn(); return true; } catch (e) { if (ok.includes(e.code)) return false; const c = e.code || e.message; errors[c] = (errors[c] || 0) + 1; if (notes.length < 10) notes.push(op + ': ' + c); return false; } };
const end = Date.now() + Number(ms);
let n = 1;
for (; Date.now() < end || n <= ${MIN_GENS}; n++) {
  step('write a/f.new', () => fs.writeFileSync(path.join(A, 'f.new'), tag(n).repeat(${REP})));
  if (n % 3 === 0) step('rename a/f.new a/f', () => fs.renameSync(path.join(A, 'f.new'), path.join(A, 'f')));
  else {
    step('unlink a/f', () => fs.unlinkSync(path.join(A, 'f')), ['ENOENT']);
    if (n % 3 === 1) {
      step('link a/f.new a/f', () => fs.linkSync(path.join(A, 'f.new'), path.join(A, 'f')));
      step('unlink a/f.new', () => fs.unlinkSync(path.join(A, 'f.new')));
    } else step('rename a/f.new a/f (free)', () => fs.renameSync(path.join(A, 'f.new'), path.join(A, 'f')));
  }
  const [a, b] = n % 2 === 0 ? [A, B] : [SA, SB];
  // Through the mount, link() may fail ENOENT in the kernel itself (see raceStress).
  const linked = step('link a/f b/g.new' + (a === SA ? ' (src)' : ''), () => {
    try { fs.linkSync(path.join(a, 'f'), path.join(b, 'g.new')); } catch (e) { if (a === A && e.code === 'ENOENT') { linkEnoent++; return; } throw e; }
  }) && fs.existsSync(path.join(b, 'g.new'));
  if (linked) step('rename b/g.new b/g' + (a === SA ? ' (src)' : ''), () => fs.renameSync(path.join(b, 'g.new'), path.join(b, 'g')));
}
process.stdout.write(JSON.stringify({ gens: n - 1, errors, notes, linkEnoent }));
`;

/** A reader: stat / read / open+fstat+pread of the given names until the writer is done (CTL/stop); checks every byte. */
const READER = `
const fs = require('fs'), path = require('path');
const [mnt, ctl, id, ...names] = process.argv.slice(1);
const SIZE = 11 * ${REP};
const r = { ops: 0, enoent: 0, estale: 0, errors: {}, notes: [], bad: [], nbad: 0, minGen: Infinity, maxGen: -1 };
const fail = (op, p, e) => { if (e.code === 'ENOENT') { r.enoent++; return; } if (e.code === 'ESTALE' || e.errno === -116) { r.estale++; return; } /* libuv has no name for ESTALE */ const c = e.code || e.message; r.errors[c] = (r.errors[c] || 0) + 1; if (r.notes.length < 10) r.notes.push(op + ' ' + p + ': ' + c); };
const bad = (p, what) => { r.nbad++; if (r.bad.length < 10) r.bad.push(p + ': ' + what); };
const check = (p, buf) => {
  if (buf.length !== SIZE) return bad(p, 'length ' + buf.length);
  const t = buf.toString('latin1', 0, 11);
  if (!/^GEN:[0-9]{6}:$/.test(t)) return bad(p, 'no tag: ' + JSON.stringify(t));
  if (!buf.equals(Buffer.from(t.repeat(${REP}), 'latin1'))) {
    let i = 0; while (i < SIZE && buf[i] === t.charCodeAt(i % 11)) i++;
    return bad(p, 'bytes of another file at offset ' + i + ' in ' + t + ': ' + JSON.stringify(buf.toString('latin1', i - (i % 11), i - (i % 11) + 11)));
  }
  const g = Number(t.slice(4, 10)); if (g < r.minGen) r.minGen = g; if (g > r.maxGen) r.maxGen = g;
};
const paths = names.map((n) => path.join(mnt, n));
const stop = path.join(ctl, 'stop');
let i = 0;
for (let last = false; !last;) {
  last = r.ops >= ${MIN_OPS} && fs.existsSync(stop); // this pass begins after the writer's last generation
  for (const p of paths) {
    r.ops++;
    try { const st = fs.statSync(p); if (st.size !== SIZE) bad(p, 'stat size ' + st.size); } catch (e) { fail('stat', p, e); }
    try { check(p, fs.readFileSync(p)); } catch (e) { fail('read', p, e); }
    try {
      const fd = fs.openSync(p, 'r');
      try {
        const st = fs.fstatSync(fd);
        if (st.size !== SIZE) bad(p, 'fstat size ' + st.size);
        const buf = Buffer.alloc(SIZE);
        let off = 8192; while (off < SIZE) { const n = fs.readSync(fd, buf, off, SIZE - off, off); if (!n) break; off += n; }
        off = 0; while (off < 8192) { const n = fs.readSync(fd, buf, off, 8192 - off, off); if (!n) break; off += n; }
        check(p, buf);
      } finally { fs.closeSync(fd); }
    } catch (e) { fail('open', p, e); }
    try { fs.lstatSync(p); } catch (e) { fail('lstat', p, e); }
  }
  if (++i % 16 === 0) for (const d of ['a', 'b']) try { fs.readdirSync(path.join(mnt, d)); } catch (e) { fail('readdir', d, e); }
  if (i === 1) fs.writeFileSync(path.join(ctl, 'started-' + id), '');
}
if (r.minGen === Infinity) r.minGen = -1;
process.stdout.write(JSON.stringify(r));
`;

interface ReaderResult { ops: number; enoent: number; estale: number; errors: Record<string, number>; notes: string[]; bad: string[]; nbad: number; minGen: number; maxGen: number }
interface WriterResult { gens: number; errors: Record<string, number>; notes: string[]; linkEnoent: number }

async function raceStress(opts: PtOptions, ms: number): Promise<void> {
  await withPt(opts, async ({ base, src, mnt, fx }) => {
    mkdirSync(join(mnt, 'a'));
    mkdirSync(join(mnt, 'b'));
    writeFileSync(join(mnt, 'a', 'f'), tagOf(0).repeat(REP));
    linkSync(join(mnt, 'a', 'f'), join(mnt, 'b', 'g'));
    const ctl = join(base, 'ctl');
    mkdirSync(ctl);
    dropCaches();
    const start = await fx.stats();
    const limit = ms + 4 * WAIT_MS; // a hung process (the run itself takes ms and a little more)
    const writer = runNode<WriterResult>(WRITER, [mnt, src, String(ms), ctl], limit)
      .finally(() => writeFileSync(join(ctl, 'stop'), ''));
    const [w, r1, r2] = await Promise.all([
      writer,
      runNode<ReaderResult>(READER, [mnt, ctl, '1', 'b/g'], limit),
      runNode<ReaderResult>(READER, [mnt, ctl, '2', 'a/f', 'b/g'], limit),
    ]);
    const log = await serverLog(fx);
    const end0 = await fx.stats();
    const report = `${JSON.stringify({ writer: w, readerG: r1, readerBoth: r2 })}; server log: ${log.split('\n').filter((l) => !l.startsWith('    at ')).slice(0, 6).join(' | ')}`;
    console.log(`  race (${JSON.stringify(opts)}): ${w.gens} generations; b/g reader ${r1.ops} ops (${r1.enoent} ENOENT, ${r1.estale} ESTALE, gens ${r1.minGen}…${r1.maxGen}); both-reader ${r2.ops} ops (${r2.enoent} ENOENT, ${r2.estale} ESTALE)`);
    assert.ok(w.gens >= MIN_GENS, `the writer made progress: ${report}`);
    assert.ok(r1.ops >= MIN_OPS && r2.ops >= MIN_OPS, `the readers made progress: ${report}`);
    assert.equal(w.errors, {}, `writer errors: ${report}`);
    // link(a/f) through the mount can fail ENOENT without reaching us: the kernel
    // checks its cached i_nlink, and a GETATTR reply (nlink 1) racing an UNLINK of
    // the other name can leave it at 0 (fuse_entry_unlinked drops it after the
    // refresh) until the attributes expire. Never our LINK reply: the server
    // answered every LINK without an error.
    const linkErrors = (end0.stats.errors.LINK ?? 0) - (start.stats.errors.LINK ?? 0);
    assert.is(linkErrors, 0, `LINK requests the server failed: ${report}`);
    assert.ok(w.linkEnoent <= w.gens / 100, `link ENOENT (kernel nlink) in more than 1% of the generations: ${report}`);
    assert.equal(r1.errors, {}, `b/g reader errors (EBADF/EIO/ESTALE …): ${report}`);
    assert.equal(r2.errors, {}, `a/f+b/g reader errors: ${report}`);
    // ESTALE: the name was found, then its file was deleted before the operation reached
    // it, and again on the VFS's retry with a fresh lookup (the writer replaces a
    // generation every few ms). Rare by nature; EBADF/EIO/wrong data never are.
    for (const r of [r1, r2]) assert.ok(r.estale <= r.ops / 100, `ESTALE in more than 1% of the operations: ${report}`);
    assert.equal(r1.bad, [], `b/g reader saw wrong data: ${report}`);
    assert.equal(r2.bad, [], `a/f+b/g reader saw wrong data: ${report}`);
    assert.ok(r1.maxGen > 0, `the b/g reader saw new generations: ${report}`);
    // Afterwards: the server's log is clean and, once the kernel forgets, its fds are back.
    assert.is(log, '', 'server log');
    // The last b/g may have been linked behind the mount: let the cached entry expire (the
    // kernel's 1 s entry timeout runs from the readers' last lookup, before this sleep began).
    if (opts.entryTimeout !== 0) await sleep(1100);
    assert.is(readFileSync(join(mnt, 'b', 'g'), 'utf8'), readFileSync(join(src, 'b', 'g'), 'utf8'), 'b/g reads the current generation afterwards');
    const end = Date.now() + WAIT_MS; // FORGETs arrive asynchronously
    let s = await fx.stats();
    while (Date.now() < end && (s.fds ?? Infinity) > (start.fds ?? 0) + 2) {
      dropCaches();
      await sleep(100);
      s = await fx.stats();
    }
    assert.ok(s.fds !== null && start.fds !== null && s.fds <= start.fds + 2,
      `fds after the race and drop_caches: ${s.fds} (start ${start.fds}); fs ${JSON.stringify(s.stats.fs)}; ${(await fx.fdList()).join(', ')}`);
  });
}

test('race: lookups/reads of alias b/g against unlink + re-link of a/f (5 s, entry/attr timeouts 0)', timed(240_000, () =>
  raceStress({ entryTimeout: 0, attrTimeout: 0 }, 5000)));

test('race: the same with the default cache timeouts (3 s)', timed(240_000, () => raceStress({}, 3000)));

test('race: inodeHandles "mandatory", entry/attr timeouts 0 (3 s)', timed(240_000, () =>
  raceStress({ inodeHandles: 'mandatory', entryTimeout: 0, attrTimeout: 0 }, 3000)));

// ---- 5. inode number reuse behind the mount --------------------------------------------

/**
 * Rounds of: create N files in SRC/d directly, stat and read each through the
 * mount (so the kernel and the server hold them), delete them in SRC directly,
 * and again. The source here is ext4 (/tmp), which hands freed inode numbers
 * out again. Entry/attr timeouts 0: the kernel asks the server every time, so
 * the mount must report the current file (with caching it may legitimately
 * show the old one for up to the timeout).
 */
async function inodeReuse(opts: PtOptions, rounds: number, n: number, waitMs = 0): Promise<void> {
  await withPt(opts, async ({ src, mnt, fx }) => {
    mkdirSync(join(src, 'd'));
    const seen = new Set<number>();
    let reused = 0;
    const problems: string[] = [];
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < n; i++) writeFileSync(join(src, 'd', `f${i}`), `round ${r} file ${i} `.padEnd(20 + ((r * 7 + i) % 50), '.'));
      if (waitMs) await sleep(waitMs);
      for (let i = 0; i < n; i++) {
        const want = `round ${r} file ${i} `.padEnd(20 + ((r * 7 + i) % 50), '.');
        const ino = lstatSync(join(src, 'd', `f${i}`)).ino;
        if (seen.has(ino)) reused++;
        seen.add(ino);
        try {
          const st = statSync(join(mnt, 'd', `f${i}`));
          if (st.size !== want.length || st.ino !== ino) problems.push(`round ${r} f${i}: stat size ${st.size}/${want.length} ino ${st.ino}/${ino}`);
          const got = readFileSync(join(mnt, 'd', `f${i}`), 'utf8');
          if (got !== want) problems.push(`round ${r} f${i}: read ${JSON.stringify(got)}`);
        } catch (e) {
          problems.push(`round ${r} f${i} (ino ${ino}${seen.has(ino) ? ', reused' : ''}): ${(e as NodeJS.ErrnoException).code ?? e}`);
        }
      }
      for (let i = 0; i < n; i++) unlinkSync(join(src, 'd', `f${i}`));
    }
    console.log(`  inode reuse (${JSON.stringify(opts)}): ${reused} of ${rounds * n} files got a reused inode number; ${problems.length} problems`);
    const log = await serverLog(fx);
    assert.equal(problems.slice(0, 12), [], `${problems.length} problems; server log: ${log.slice(0, 1500)}`);
    assert.is(await serverLog(fx), '', 'server log');
  });
}

test('inode number reuse behind the mount: stat/read through the mount show the current file', timed(60_000, () =>
  inodeReuse({ entryTimeout: 0, attrTimeout: 0 }, 6, 200)));

test('inode number reuse behind the mount, default cache timeouts (reads after the 1 s entry timeout)', timed(60_000, () =>
  inodeReuse({}, 3, 100, 1100)));

test('inode number reuse with inodeHandles "mandatory" (stale handle kept for a reused inode number)', timed(60_000, () =>
  inodeReuse({ inodeHandles: 'mandatory', entryTimeout: 0, attrTimeout: 0 }, 4, 50)));

/**
 * A client holds an O_PATH fd on MNT/x (no OPEN reaches the server, but the
 * kernel keeps x's inode and node id). x is opened, unlinked through the
 * mount and closed: the server closes its backing fd at that close (the file
 * had no name left), yet the node id stays known to the kernel. Then a new
 * file MNT/y is created; ext4 usually hands it x's freed inode number, so it
 * has the same (dev, ino, mnt id) key as x's node.
 */
const HOLDER = String.raw`$| = 1; sysopen(my $fh, $ARGV[0], 2097152) or die "open: $!\n"; print "OPEN\n";
while (<STDIN>) { my @s = stat($fh); print(@s ? "STAT $s[1] $s[7] $s[3]\n" : "ERR $!\n"); }`;

interface Recycled { oldIno: number; newIno: number; yRead: string; yStat: string; holder: string }

async function recycledInode(fx: Fixture, src: string, mnt: string, round: number): Promise<Recycled> {
  const x = join(mnt, `x${round}`);
  const y = join(mnt, `y${round}`);
  writeFileSync(x, 'old\n');
  const oldIno = lstatSync(join(src, `x${round}`)).ino;
  const holder = spawn('perl', ['-e', HOLDER, x], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  holder.stdout!.on('data', (d) => { out += d; });
  try {
    assert.ok(await poll(() => out.includes('OPEN\n'), WAIT_MS), `O_PATH holder: ${out}`);
    const fd = openSync(x, 'r');
    unlinkSync(x);
    closeSync(fd);
    await allReleased(fx); // x's RELEASE done: the server has closed its fd
    writeFileSync(y, 'new file\n');
    const newIno = lstatSync(join(src, `y${round}`)).ino;
    let yRead: string;
    let yStat: string;
    try { yRead = readFileSync(y, 'utf8'); } catch (e) { yRead = (e as NodeJS.ErrnoException).code ?? String(e); }
    try { const st = statSync(y); yStat = `ino ${st.ino} size ${st.size}`; } catch (e) { yStat = (e as NodeJS.ErrnoException).code ?? String(e); }
    holder.stdin!.write('\n');
    assert.ok(await poll(() => /(STAT|ERR).*\n/.test(out), WAIT_MS), `O_PATH holder did not answer: ${out}`);
    const holderLine = /(STAT|ERR)[^\n]*/.exec(out)?.[0] ?? '(no answer)';
    return { oldIno, newIno, yRead, yStat, holder: holderLine };
  } finally {
    holder.kill('SIGKILL');
  }
}

test('a new file that gets an unlinked inode\'s recycled number is merged into it and its fd is closed twice (EBADF/ENOENT, or another file\'s data)', timed(120_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const results: Recycled[] = [];
    for (let r = 0; r < 3; r++) results.push(await recycledInode(fx, src, mnt, r));
    const reused = results.filter((x) => x.oldIno === x.newIno).length;
    console.log(`  recycled inode: ${reused}/3 rounds reused x's inode number; ${JSON.stringify(results.map((x) => [x.yRead, x.yStat]))}`);
    for (const x of results) {
      assert.is(x.yRead, 'new file\n', `reading the new file y (inode ${x.newIno}, x was ${x.oldIno}): ${JSON.stringify(results)}`);
      assert.is(x.yStat, `ino ${x.newIno} size 9`, `stat of y: ${JSON.stringify(results)}`);
    }
    assert.is(await serverLog(fx), '', 'server log');
  })));

test('the deleted file held by an O_PATH fd takes on the attributes of an unrelated new file that reuses its inode number', timed(120_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const results: Recycled[] = [];
    for (let r = 0; r < 3; r++) results.push(await recycledInode(fx, src, mnt, r));
    for (const x of results) {
      // fstat of the holder's fd: x's own inode — 4 bytes, no links left.
      assert.is(x.holder, `STAT ${x.oldIno} 4 0`, `fstat of the deleted x through the holder's O_PATH fd (y: inode ${x.newIno}, size 9): ${JSON.stringify(results)}`);
    }
  })));

test('a directory renamed behind the mount stays usable for a client inside it after its old name is looked up again', timed(120_000, () =>
  withPt({ entryTimeout: 0, attrTimeout: 0 }, async ({ src, mnt, fx }) => {
    mkdirSync(join(src, 'dir'));
    writeFileSync(join(src, 'dir', 'f'), 'hi\n');
    // A shell whose cwd is MNT/dir, and an open directory handle on it.
    const sh = spawn('bash', ['-c', 'echo READY; read -r _; ls; cat f; touch newfile && echo TOUCHED'], { cwd: join(mnt, 'dir'), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    sh.stdout!.on('data', (d) => { out += d; });
    sh.stderr!.on('data', (d) => { err += d; });
    const exited = new Promise((r) => sh.on('exit', r));
    const dir = opendirSync(join(mnt, 'dir'));
    try {
      assert.ok(await poll(() => out.includes('READY\n'), WAIT_MS), `shell: ${out} ${err}`);
      // Behind the mount: the directory moves to dir2 and a new, empty dir takes its name.
      renameSync(join(src, 'dir'), join(src, 'dir2'));
      mkdirSync(join(src, 'dir'));
      assert.equal(readdirSync(join(mnt, 'dir')), [], 'MNT/dir is the new directory'); // LOOKUP dir → the new inode
      sh.stdin!.end('\n');
      await exited;
      let listed: string;
      try {
        const names: string[] = [];
        for (let e = dir.readSync(); e; e = dir.readSync()) names.push(e.name);
        listed = names.sort().join(',');
      } catch (e) {
        listed = (e as NodeJS.ErrnoException).code ?? String(e);
      }
      assert.is(`${out}${err}`, 'READY\nf\nhi\nTOUCHED\n', 'ls, cat and touch in the cwd (the moved directory)');
      assert.ok(existsSync(join(src, 'dir2', 'newfile')));
      assert.is(listed, 'f,newfile', 'reading the open directory handle');
    } finally {
      sh.kill('SIGKILL');
      try { dir.closeSync(); } catch { /* closed */ }
    }
    assert.is(await serverLog(fx), '', 'server log');
  })));

// ---- handle modes: basic function ------------------------------------------------------

for (const mode of ['prefer', 'mandatory'] as const) {
  test(`inodeHandles "${mode}": lookup, read, write, link, unlink below the root`, timed(30_000, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      mkdirSync(join(src, 'd'));
      writeFileSync(join(src, 'd', 'f'), 'hello\n');
      assert.is(errCode(() => statSync(join(mnt, 'd'))), undefined, 'stat of a directory below the root');
      assert.is(readFileSync(join(mnt, 'd', 'f'), 'utf8'), 'hello\n');
      writeFileSync(join(mnt, 'd', 'g'), 'written\n');
      assert.is(readFileSync(join(src, 'd', 'g'), 'utf8'), 'written\n');
      linkSync(join(mnt, 'd', 'g'), join(mnt, 'h'));
      unlinkSync(join(mnt, 'd', 'g'));
      assert.is(readFileSync(join(mnt, 'h'), 'utf8'), 'written\n');
      const s = await fx.stats();
      assert.ok((s.fds ?? 99) < 40, `no fd per inode in handle mode: ${s.fds}`);
      assert.is(await serverLog(fx), '', 'server log');
    })));
}

// ---- 6. fd exhaustion ------------------------------------------------------------------

const DIRS = 10;
const PER_DIR = 1000;
let manyBase: string | undefined;
/** SRC with 10 dirs of 1,000 files, made once (on ext4) and shared by the fd tests. */
function manyFiles(): string {
  if (manyBase) return join(manyBase, 'src');
  const base = tempDir('tsfuse-test-pt-many-');
  manyBase = base;
  const src = join(base, 'src');
  for (let d = 0; d < DIRS; d++) {
    mkdirSync(join(src, `d${d}`), { recursive: true });
    for (let i = 0; i < PER_DIR; i++) writeFileSync(join(src, `d${d}`, `f${i}`), `${d}/${i}`);
  }
  return src;
}

/** stat()s all 10,000 files through the mount; returns error codes with counts. */
function statAll(mnt: string): { errors: Record<string, number>; first: string[]; ok: number } {
  const errors: Record<string, number> = {};
  const first: string[] = [];
  let ok = 0;
  for (let d = 0; d < DIRS; d++) {
    for (let i = 0; i < PER_DIR; i++) {
      const p = join(mnt, `d${d}`, `f${i}`);
      try {
        const st = statSync(p);
        if (st.size !== `${d}/${i}`.length) throw Object.assign(new Error('wrong size'), { code: 'WRONGSIZE' });
        ok++;
      } catch (e) {
        const c = (e as NodeJS.ErrnoException).code ?? String(e);
        errors[c] = (errors[c] ?? 0) + 1;
        if (first.length < 5) first.push(`${p}: ${c}`);
      }
    }
  }
  return { errors, first, ok };
}

for (const mode of ['mandatory', 'prefer'] as const) {
  test(`fd exhaustion: inodeHandles "${mode}" under RLIMIT_NOFILE 256 looks up 10,000 files with no EMFILE`, timed(120_000, () =>
    withPt({ inodeHandles: mode, nofile: 256 }, async ({ mnt, fx }) => {
      const s0 = await fx.stats();
      assert.is(s0.nofile, 256, 'the fixture runs with RLIMIT_NOFILE 256');
      const r = statAll(mnt);
      const s = await fx.stats();
      console.log(`  ${mode}: ${r.ok} ok, errors ${JSON.stringify(r.errors)}; server fds ${s0.fds} → ${s.fds}, referenced ${s.stats.fs.referenced}`);
      assert.equal(r.errors, {}, `errors: ${r.first.join('; ')}`);
      assert.is(r.ok, DIRS * PER_DIR);
      assert.ok(s.fds !== null && s.fds < 64, `the server's fd count stays far below 256: ${s.fds}`);
      assert.ok(s.stats.fs.referenced >= DIRS * PER_DIR, `the kernel holds them all: ${JSON.stringify(s.stats.fs)}`);
      assert.is(await serverLog(fx), '', 'server log');
    }, { src: manyFiles(), nofile: 256 })));
}

test('fd exhaustion contrast: inodeHandles "never" under RLIMIT_NOFILE 256 (reported; the server must survive)', timed(120_000, () =>
  withPt({ inodeHandles: 'never', nofile: 256 }, async ({ mnt, fx }) => {
    const s0 = await fx.stats();
    assert.is(s0.nofile, 256);
    const r = statAll(mnt);
    const s = await fx.stats(); // the server answers …
    assert.ok(fx.alive, 'the server is alive');
    assert.ok(statSync(mnt).isDirectory(), '… and so does the mount');
    dropCaches();
    await sleep(300);
    const again = errCode(() => statSync(join(mnt, 'd9', 'f999')));
    const s2 = await fx.stats();
    const log = await serverLog(fx);
    console.log(`  never: ${r.ok} ok, errors ${JSON.stringify(r.errors)} (first: ${r.first.slice(0, 2).join('; ')}); `
      + `server fds ${s0.fds} → ${s.fds ?? 'n/a (EMFILE)'}; referenced ${s.stats.fs.referenced}; `
      + `after drop_caches: fds ${s2.fds}, a new lookup → ${again ?? 'ok'}; server log lines: ${log.split('\n').filter(Boolean).length}`);
  }, { src: manyFiles(), nofile: 256 })));

// ---- 7. CLI ------------------------------------------------------------------------------

interface Served { src: string; mnt: string; args: string[]; env?: NodeJS.ProcessEnv; mountLine: string }

/** Starts `node args…` (from `setup(base)`), runs `check` once it says it mounted, then SIGTERM must unmount it (exit 0). */
async function servesAndUnmounts(setup: (base: string) => Served, check: (s: Served) => void): Promise<void> {
  const base = tempDir('tsfuse-test-pt-cli-');
  bases.push(base);
  const s = setup(base);
  const child = spawn(process.execPath, s.args, { stdio: ['ignore', 'pipe', 'pipe'], env: s.env ?? process.env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  try {
    assert.ok(await poll(() => out.includes('mounted '), WAIT_MS, 20), `no "mounted" line: ${out} ${err}`);
    assert.ok(isMounted(s.mnt), `${s.mnt} is mounted`);
    assert.match(readFileSync('/proc/mounts', 'utf8'), s.mountLine);
    check(s);
    child.kill('SIGTERM');
    assert.is(await exited, 0, `exit status; stderr ${err}`);
    assert.match(out, 'unmounted');
    assert.not.ok(isMounted(s.mnt));
  } finally {
    child.kill('SIGKILL');
    forceUnmount(s.mnt);
    cleanup(base);
  }
}

/** SRC with sub/file.txt and an empty MNT below `base`, served by `node args(src, mnt)…`. */
function subTree(base: string, args: (src: string, mnt: string) => string[], fsname: (src: string) => string): Served {
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(join(src, 'sub'), { recursive: true });
  mkdirSync(mnt);
  writeFileSync(join(src, 'sub', 'file.txt'), 'from the source\n');
  return { src, mnt, args: args(src, mnt), mountLine: `${fsname(src)} ${mnt} fuse.passthrough` };
}
function servesSubTree({ src, mnt }: Served): void {
  assert.equal(readdirSync(mnt), ['sub']);
  assert.is(readFileSync(join(mnt, 'sub', 'file.txt'), 'utf8'), 'from the source\n');
  writeFileSync(join(mnt, 'sub', 'new.txt'), 'through the mount\n');
  assert.is(readFileSync(join(src, 'sub', 'new.txt'), 'utf8'), 'through the mount\n');
}

test('CLI: `tsfuse passthrough SRC MNT` mounts, serves, and unmounts on SIGTERM; --help prints usage', timed(120_000, async () => {
  const help = await run(process.execPath, [CLI, '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, 'tsfuse passthrough SRC MNT');
  const noArgs = await run(process.execPath, [CLI, 'passthrough']);
  assert.is(noArgs.code, 2);
  assert.match(noArgs.stderr, 'passthrough needs SRC and MNT');
  await servesAndUnmounts((base) => subTree(base, (src, mnt) => [CLI, 'passthrough', src, mnt, '-f', '-o', 'fsname=tsfuse-test-pt-cli'],
    () => 'tsfuse-test-pt-cli'), servesSubTree);
}));

test('`tsfuse demo` (what `npm start` runs) mirrors the built-in demo directory and unmounts on SIGTERM', timed(90_000, () =>
  servesAndUnmounts((base) => ({
    // The demo's defaults live in the temporary directory: TMPDIR/tsfuse-demo-src on TMPDIR/tsfuse-demo.
    src: join(base, 'tsfuse-demo-src'), mnt: join(base, 'tsfuse-demo'), args: [CLI, 'demo'], env: { ...process.env, TMPDIR: base },
    mountLine: `${join(base, 'tsfuse-demo-src')} ${join(base, 'tsfuse-demo')} fuse.passthrough`,
  }), ({ src, mnt }) => {
    assert.equal(readdirSync(mnt).sort(), ['docs', 'hello.txt']);
    assert.is(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'Hello from the tsfuse passthrough demo!\n');
    writeFileSync(join(mnt, 'new.txt'), 'hi\n');
    assert.is(readFileSync(join(src, 'new.txt'), 'utf8'), 'hi\n');
  })));

test('examples/passthrough.js SRC MNT mounts, serves, and unmounts on SIGTERM; a bad handle mode is refused', timed(120_000, async () => {
  const example = join(DIST, 'examples/passthrough.js');
  await servesAndUnmounts((base) => subTree(base, (src, mnt) => [example, src, mnt, 'prefer'], (src) => src), servesSubTree);
  const bad = await run(process.execPath, [example, '/tmp', '/nonexistent', 'sometimes']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, 'inodeHandles');
}));

// ---- leftovers ---------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  if (manyBase) rmSync(manyBase, { recursive: true, force: true });
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const left = mounts.filter((m) => bases.some((b) => m.startsWith(b)));
  assert.equal(left, []);
}));

test.run();
