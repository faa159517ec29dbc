// End-to-end: the passthrough lets go of a deleted file even when its names
// went stale behind the mount. After an unlink or a rename through the mount,
// and after any LOOKUP the source answered ENOENT, an inode with no open file
// whose source says st_nlink == 0 closes its O_PATH fd (so the space is freed
// at once, not at FORGET), and the stale names are dropped from the tree.
//
// Stale names come from changes made directly on SRC: a hard link removed, a
// file renamed, a file deleted. The server is test/fixtures/serve-passthrough.ts
// in a child process; its `fds` command lists the readlink of each fd it holds
// (a deleted file shows "… (deleted)"). The space is checked with statfs of
// the tmpfs SRC (a 64 MiB file). Both are polled with a generous deadline: the
// kernel sends RELEASE asynchronously, and no duration is asserted.
//
// The ENOENT scenarios run with entry/attr timeouts 0 (so the kernel asks), and
// a client holds an O_PATH fd on the file through the mount: FUSE evicts an
// inode at its last iput, so without that pin the kernel would FORGET it at
// once and the server would let go of it at FORGET — the test would pass for
// the wrong reason (it did, before the pin). The test checks no FORGET came.
//
// In file-handle mode ('prefer') no inode holds an fd; the same scenarios
// check the names, ENOENT and the freed space there.
import { closeSync, fstatSync, linkSync, openSync, readFileSync, readSync, renameSync, statfsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errCode, sleep, timed } from './helpers.js';
import { bases, type Fixture, type Mode, serverLog, withPt } from './pt-helpers.js';

const MODES: Mode[] = ['never', 'prefer'];
const MiB = 1 << 20;
const BIG = 64 * MiB;
/** How long a release may take to show (the kernel's RELEASE is asynchronous). Not a bound under test. */
const DEADLINE_MS = 25_000;
const T = 60_000;

/** Free bytes of the filesystem holding `dir`. */
function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bfree * s.bsize;
}
const mib = (n: number) => (n / MiB).toFixed(1);

/** The fds the server holds on deleted files below `src`. */
async function deletedHeld(fx: Fixture, src: string): Promise<string[]> {
  return (await fx.fdList()).filter((l) => l.includes(`${src}/`) && l.endsWith(' (deleted)'));
}

/** A 64 MiB file `name` in SRC (on its tmpfs); returns the free bytes before it was written. */
function bigFile(src: string, name: string): number {
  const free0 = freeBytes(src);
  writeFileSync(join(src, name), Buffer.alloc(BIG, 0x5a));
  assert.ok(freeBytes(src) <= free0 - BIG + MiB, `the 64 MiB file takes space on SRC (free ${mib(free0)} → ${mib(freeBytes(src))} MiB)`);
  return free0;
}

/**
 * Polls until the server holds no fd on a deleted file below `src` and the
 * tmpfs has its space back (within 4 MiB of `free0`); fails with what it saw.
 */
async function expectReleased(fx: Fixture, src: string, free0: number, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  let held: string[] = [];
  let free = 0;
  for (;;) {
    held = await deletedHeld(fx, src);
    free = freeBytes(src);
    if (held.length === 0 && free >= free0 - 4 * MiB) return;
    if (Date.now() >= end) break;
    await sleep(100);
  }
  assert.unreachable(`${what}: after ${DEADLINE_MS / 1000} s the server still holds ${JSON.stringify(held)}; `
    + `SRC free ${mib(free)} MiB, ${mib(free0)} MiB before the file`);
}

/** SRC must still be taken by the file (an open file keeps it). */
function expectStillUsed(src: string, free0: number, what: string): void {
  assert.ok(freeBytes(src) <= free0 - BIG + MiB, `${what}: the space went while a client has the file open`);
}

/** Linux O_PATH (Node does not export it): opens no file, so the server sees no OPEN. */
const O_PATH = 0o10000000;

/**
 * An O_PATH fd on MNT/name held by this client: it keeps the kernel's dentry and
 * inode, so no FORGET comes (with entry timeout 0 the kernel would otherwise
 * forget the inode at once and the server would let go of it at FORGET, not at
 * the ENOENT under test), and it is no open file.
 */
function pinned(mnt: string, name: string): number {
  return openSync(join(mnt, name), O_PATH);
}

/** The kernel has sent no FORGET (the test's client pins the inode): only the ENOENT can release it. */
async function expectNoForget(fx: Fixture): Promise<void> {
  const r = (await fx.stats()).stats.requests;
  assert.is((r.FORGET ?? 0) + (r.BATCH_FORGET ?? 0), 0, `FORGETs so far (requests ${JSON.stringify(r)})`);
}

async function cleanLog(fx: Fixture): Promise<void> {
  assert.is(await serverLog(fx), '', 'server log');
}

for (const mode of MODES) {
  /** A new file made on SRC under the old name is a new inode through the mount: its own
 * inode number, size and content. */
function assertNewFile(src: string, mnt: string): void {
  writeFileSync(join(src, 'name'), 'the new file\n');
  const now = statSync(join(mnt, 'name'));
  assert.is(now.ino, statSync(join(src, 'name')).ino, 'the new file\'s inode number');
  assert.is(now.size, 13);
  assert.is(readFileSync(join(mnt, 'name'), 'utf8'), 'the new file\n');
}

// ---- hard links --------------------------------------------------------------------

  test(`hard link removed on SRC, the other unlinked through the mount: no fd on the deleted file, space freed [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = bigFile(src, 'f');
      linkSync(join(src, 'f'), join(src, 'g'));
      const f = statSync(join(mnt, 'f'));
      const g = statSync(join(mnt, 'g'));
      assert.is(g.ino, f.ino, 'f and g are one inode through the mount');
      assert.is(f.nlink, 2);
      unlinkSync(join(src, 'g')); // behind the mount: the tree still knows the name g
      unlinkSync(join(mnt, 'f'));
      assert.is(errCode(() => statSync(join(src, 'f'))), 'ENOENT', 'the unlink reached SRC');
      await expectReleased(fx, src, free0, 'f unlinked through the mount, g removed on SRC');
      await cleanLog(fx);
    }, { tmpfs: true })));

  test(`hard link removed on SRC, the other unlinked through the mount while open: space freed at the close [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = bigFile(src, 'f');
      linkSync(join(src, 'f'), join(src, 'g'));
      statSync(join(mnt, 'f'));
      statSync(join(mnt, 'g'));
      unlinkSync(join(src, 'g'));
      const fd = openSync(join(mnt, 'f'), 'r');
      try {
        unlinkSync(join(mnt, 'f'));
        const buf = Buffer.alloc(4);
        assert.is(readSync(fd, buf, 0, 4, BIG - 4), 4, 'the open file still reads');
        assert.is(buf.toString(), 'ZZZZ');
        expectStillUsed(src, free0, 'open, unlinked');
      } finally {
        closeSync(fd);
      }
      await expectReleased(fx, src, free0, 'closed after its unlink (g removed on SRC)');
      await cleanLog(fx);
    }, { tmpfs: true })));

  // ---- rename behind the mount -------------------------------------------------------

  test(`renamed on SRC (h → k), k looked up and unlinked through the mount: no fd on the deleted file, space freed [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = bigFile(src, 'h');
      const h = statSync(join(mnt, 'h'));
      renameSync(join(src, 'h'), join(src, 'k')); // the tree still knows the name h
      const k = statSync(join(mnt, 'k'));
      assert.is(k.ino, h.ino, 'k is the inode h was');
      assert.is(k.size, BIG);
      unlinkSync(join(mnt, 'k'));
      assert.is(errCode(() => statSync(join(src, 'k'))), 'ENOENT', 'the unlink reached SRC');
      await expectReleased(fx, src, free0, 'k unlinked through the mount, h renamed to k on SRC');
      await cleanLog(fx);
    }, { tmpfs: true })));

  // ---- LOOKUP answered ENOENT ----------------------------------------------------------

  test(`removed on SRC: LOOKUP answers ENOENT, the server lets go of it, and a new file of that name is a new inode [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode, entryTimeout: 0, attrTimeout: 0 }, async ({ src, mnt, fx }) => {
      const free0 = bigFile(src, 'name');
      const pin = pinned(mnt, 'name');
      try {
        assert.is(fstatSync(pin).size, BIG);
        unlinkSync(join(src, 'name'));
        assert.is(errCode(() => statSync(join(mnt, 'name'))), 'ENOENT', 'stat through the mount after the removal on SRC');
        await expectNoForget(fx);
        await expectReleased(fx, src, free0, 'removed on SRC, LOOKUP answered ENOENT');
      } finally {
        closeSync(pin);
      }
      assertNewFile(src, mnt);
      await cleanLog(fx);
    }, { tmpfs: true })));

  // ext4 reuses a freed inode number for the next file: once the old inode is let go,
  // the new file (same name, maybe the same number) must not be taken for the old one.
  test(`removed on SRC (ext4): LOOKUP ENOENT lets go of it; a new file of that name, maybe with its inode number, is new [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode, entryTimeout: 0, attrTimeout: 0 }, async ({ src, mnt, fx }) => {
      writeFileSync(join(src, 'name'), 'the old file, longer\n');
      const pin = pinned(mnt, 'name');
      try {
        assert.is(readFileSync(join(mnt, 'name'), 'utf8'), 'the old file, longer\n');
        unlinkSync(join(src, 'name'));
        assert.is(errCode(() => statSync(join(mnt, 'name'))), 'ENOENT', 'stat through the mount after the removal on SRC');
        await expectNoForget(fx);
        const end = Date.now() + DEADLINE_MS;
        let held = await deletedHeld(fx, src);
        while (held.length && Date.now() < end) { await sleep(100); held = await deletedHeld(fx, src); }
        assert.equal(held, [], 'fds the server holds on deleted files');
      } finally {
        closeSync(pin);
      }
      assertNewFile(src, mnt);
      await cleanLog(fx);
    }, { ext4: true })));

  // ---- open files ------------------------------------------------------------------------

  test(`unlinked through the mount while a client has it open: space kept while open, freed at its close [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const free0 = bigFile(src, 'f');
      const fd = openSync(join(mnt, 'f'), 'r');
      try {
        unlinkSync(join(mnt, 'f'));
        assert.is(errCode(() => statSync(join(mnt, 'f'))), 'ENOENT');
        const buf = Buffer.alloc(4);
        assert.is(readSync(fd, buf, 0, 4, 0), 4, 'the open file still reads');
        assert.is(buf.toString(), 'ZZZZ');
        expectStillUsed(src, free0, 'open, unlinked');
      } finally {
        closeSync(fd);
      }
      await expectReleased(fx, src, free0, 'closed after its unlink');
      await cleanLog(fx);
    }, { tmpfs: true })));
}

// ---- leftovers -------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const left = mounts.filter((m) => bases.some((b) => m.startsWith(b)));
  assert.equal(left, []);
}));

test.run();
