// mount(8)'s generic flags on real mounts: dev/suid (off unless asked), exec/noexec,
// ro, sync, dirsync, the atime family, fstab words; errors that name the option;
// dev/suid refused without root; the fusermount3 path as root. The server is the
// `tsfuse passthrough` command in a child process (what the outside test ran), or
// the serve-passthrough fixture for the fusermount3 path. Access times through the
// mount are compared with the same operations on a bind mount of the source that
// carries the same flag.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, openSync, closeSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, cleanup, errCode, forceUnmount, isMounted, run, startNode, stop, tempDir, timed, type Proc } from './helpers.js';
import { withPt, type PtOptions } from './pt-helpers.js';
import { runAs } from '../src/cli/as-user.js';

const CLI = 'src/cli/main.js';
const NOBODY = ['--reuid', '65534', '--regid', '65534', '--clear-groups'];
const bases: string[] = [];

interface Cli { base: string; src: string; mnt: string; p: Proc }

/**
 * `tsfuse passthrough SRC MNT [-o opts]` in a child process on a fresh SRC (a tmpfs with
 * `srcTmpfs` options if given) and MNT, both traversable by uid 65534. Stopped with
 * SIGTERM (the command unmounts, lazily if busy), then unmounted and removed whatever happened.
 */
async function withCli(opts: string | undefined, fn: (e: Cli) => Promise<void>, how: { srcTmpfs?: string; setup?: (src: string) => void } = {}): Promise<void> {
  const base = tempDir('tsfuse-test-mflags-');
  bases.push(base);
  chmodSync(base, 0o755);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src, { mode: 0o755 });
  mkdirSync(mnt, { mode: 0o755 });
  const mounts: string[] = []; // below SRC's tmpfs: detached first
  let p: Proc | undefined;
  try {
    if (how.srcTmpfs !== undefined) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=16m,mode=0755${how.srcTmpfs ? `,${how.srcTmpfs}` : ''}`, 'tsfuse-test-tmpfs', src]);
      mounts.push(src);
    }
    how.setup?.(src);
    p = startNode(CLI, ['passthrough', src, mnt, '-f', ...(opts === undefined ? [] : ['-o', opts])]);
    await p.waitFor('mounted on', 30_000);
    await fn({ base, src, mnt, p });
  } finally {
    if (p) await stop(p);
    forceUnmount(mnt);
    for (const m of [join(base, 'ref'), ...mounts]) forceUnmount(m);
    if (!isMounted(mnt) && !isMounted(src)) cleanup(base);
  }
}

/** The per-mount options (mountinfo field 6) and the superblock options (after " - ") of `mnt`. */
function mountinfo(mnt: string): { mount: string[]; sb: string[] } {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt);
  assert.ok(line, `${mnt} is not mounted`);
  const [left, right] = line!.split(' - ');
  return { mount: left.split(' ')[5].split(','), sb: right.split(' ')[2].split(',') };
}

/** Opens `path` for writing, writes a byte, closes: the errno code, or 'ok'. */
function writeByte(path: string): string {
  return errCode(() => { const fd = openSync(path, 'w'); try { writeSync(fd, 'x'); } finally { closeSync(fd); } }) ?? 'ok';
}

/** A char device like /dev/null (1:3) and a setuid-root copy of id(1) in `src`. */
function devAndSetuid(src: string): void {
  execFileSync('mknod', ['-m', '0666', join(src, 'null'), 'c', '1', '3']);
  copyFileSync('/usr/bin/id', join(src, 'id'));
  chmodSync(join(src, 'id'), 0o4755);
}

/** `id -u` (the effective uid) of the copy on the mount, run as uid 65534. */
async function euidAsNobody(mnt: string): Promise<string> {
  const r = await run('setpriv', [...NOBODY, join(mnt, 'id'), '-u'], 30_000, { cwd: '/' });
  return r.code === 0 ? r.stdout.trim() : `exit ${r.code}: ${r.stderr.trim()}`;
}

// ---- dev, suid, exec --------------------------------------------------------------

test('defaults: nosuid,nodev,relatime — a device node is EACCES and a setuid program keeps the caller\'s uid', timed(60_000, () =>
  withCli('allow_other', async ({ mnt }) => {
    const mi = mountinfo(mnt);
    for (const f of ['rw', 'nosuid', 'nodev', 'relatime']) assert.ok(mi.mount.includes(f), `${f} in ${mi.mount}`);
    assert.is(writeByte(join(mnt, 'null')), 'EACCES');
    assert.is(await euidAsNobody(mnt), '65534');
  }, { setup: devAndSetuid })));

test('-o dev,suid: the device node works through the mount and the setuid program runs as root', timed(60_000, () =>
  withCli('dev,suid', async ({ mnt }) => {
    const mi = mountinfo(mnt);
    assert.not.ok(mi.mount.includes('nodev') || mi.mount.includes('nosuid'), mi.mount.join(','));
    assert.is(writeByte(join(mnt, 'null')), 'ok');
    assert.is(readFileSync(join(mnt, 'null')).length, 0, 'reads like /dev/null');
    assert.is(await euidAsNobody(mnt), '0');
  }, { setup: devAndSetuid })));

test('later words win, as in mount(8): dev,nodev is nodev; nosuid,suid is suid', timed(60_000, () =>
  withCli('dev,nodev,nosuid,suid', async ({ mnt }) => {
    assert.is(writeByte(join(mnt, 'null')), 'EACCES');
    assert.is(await euidAsNobody(mnt), '0');
  }, { setup: devAndSetuid })));

test('-o noexec refuses exec (EACCES); -o exec (and the default) allow it', timed(90_000, async () => {
  for (const [opts, ok] of [['noexec', false], ['noexec,exec', true], [undefined, true]] as const) {
    await withCli(opts, async ({ mnt }) => {
      // Through sh, which reports a refused execve (126, "Permission denied") instead of a spawn error.
      const r = await run('sh', ['-c', 'exec "$0" -u', join(mnt, 'id')], 30_000);
      if (ok) assert.is(r.stdout.trim(), '0', `${opts}: ${r.stderr}`);
      else assert.ok(r.code === 126 && /denied/i.test(r.stderr), `${opts}: ${r.code} ${r.stderr}`);
      assert.is(mountinfo(mnt).mount.includes('noexec'), !ok);
    }, { setup: devAndSetuid });
  }
}));

test('ro, sync, dirsync, lazytime, nodiratime, nosymfollow, strictatime reach mount(2) and show in mountinfo', timed(60_000, () =>
  withCli('ro,sync,dirsync,lazytime,nodiratime,nosymfollow,strictatime', async ({ mnt }) => {
    const mi = mountinfo(mnt);
    for (const f of ['ro', 'nodiratime', 'nosymfollow', 'nosuid', 'nodev']) assert.ok(mi.mount.includes(f), `${f} in ${mi.mount}`);
    assert.not.ok(mi.mount.includes('relatime') || mi.mount.includes('noatime'), `strictatime: ${mi.mount}`);
    for (const f of ['ro', 'sync', 'dirsync', 'lazytime']) assert.ok(mi.sb.includes(f), `${f} in ${mi.sb}`);
    assert.is(writeByte(join(mnt, 'new')), 'EROFS');
  })));

test('fstab words are accepted and change nothing: defaults,auto,noauto,nouser,_netdev,nofail,x-*,comment=', timed(60_000, () =>
  withCli('defaults,auto,noauto,nouser,_netdev,nofail,x-systemd.automount,comment=tsfuse,rw,atime,diratime,async', async ({ mnt }) => {
    const mi = mountinfo(mnt);
    for (const f of ['rw', 'nosuid', 'nodev', 'relatime']) assert.ok(mi.mount.includes(f), `${f} in ${mi.mount}`);
    assert.not.ok(mi.sb.includes('sync'), mi.sb.join(','));
  })));

// ---- errors that name the option ------------------------------------------------------

test('a bad -o word or value: exit 2 before anything is mounted, the message names the option as typed', timed(60_000, async () => {
  const base = tempDir('tsfuse-test-mflags-');
  bases.push(base);
  try {
    for (const [opts, name] of [
      ['dev=1', 'dev'], ['strictatime=yes', 'strictatime'], ['max_write=3', 'max_write'], ['max_read=lots', 'max_read'],
      ['suid,bogus', 'bogus'], ['max_background=4,congestion_threshold=9', 'congestion_threshold'], ['fsname=', 'fsname'],
    ]) {
      const r = await run(process.execPath, [join(DIST, CLI), 'passthrough', base, base, '-f', '-o', opts], 30_000);
      assert.is(r.code, 2, `${opts}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`invalid option ${name}:`), `${opts}: ${r.stderr}`);
      assert.not.ok(isMounted(base));
    }
  } finally {
    forceUnmount(base);
    cleanup(base);
  }
}));

test('dev and suid without root: refused naming the option (fusermount3 would only drop them), nothing mounted', timed(60_000, async () => {
  const base = tempDir('tsfuse-test-mflags-');
  bases.push(base);
  chmodSync(base, 0o777);
  try {
    for (const opt of ['dev', 'suid']) {
      const r = await run('setpriv', [...NOBODY, process.execPath, join(DIST, CLI), 'hello', base, '-f', '-o', opt], 30_000, { cwd: '/' });
      assert.is(r.code, 1, r.stderr);
      assert.ok(r.stderr.includes(`invalid option ${opt}: needs root`), r.stderr);
      assert.not.ok(isMounted(base));
    }
  } finally {
    forceUnmount(base);
    cleanup(base);
  }
}));

test('fusermount3 as root passes dev, suid, noexec, noatime; strictatime is passed or refused naming atime', timed(90_000, async () => {
  const opts = { mountMethod: 'fusermount', dev: true, suid: true, noexec: true, atime: 'noatime' } as PtOptions;
  await withPt(opts, ({ mnt }) => {
    const mi = mountinfo(mnt);
    assert.not.ok(mi.mount.includes('nodev') || mi.mount.includes('nosuid'), mi.mount.join(','));
    assert.ok(mi.mount.includes('noexec') && mi.mount.includes('noatime'), mi.mount.join(','));
  });
  // fusermount3 3.14.0 and 3.18+ do not know the word; 3.14.1 … 3.17 do.
  try {
    await withPt({ mountMethod: 'fusermount', atime: 'strictatime' } as PtOptions, ({ mnt }) => {
      const mi = mountinfo(mnt);
      assert.not.ok(mi.mount.includes('relatime') || mi.mount.includes('noatime'), mi.mount.join(','));
    });
  } catch (e) {
    assert.match(String((e as Error).message), /MOUNTFAIL EINVAL invalid option atime: strictatime: fusermount3 does not know it/);
  }
}));

// ---- access times ------------------------------------------------------------------

/**
 * The same three operations on a file and a directory of SRC, once through `ref` (a bind
 * mount of SRC with the flag under test) and once through the FUSE mount: did each move
 * the source's atime? Run in a Node child (src/cli/as-user.ts); waits > one clock tick after each
 * timestamp change, so a coarse-clock atime is never older than a fine-grained ctime.
 */
const ATIME = `
  const [src, views] = a;
  const PAST = 1577836800;
  const atime = (p) => sys.stat(p).atimeNs;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
  const read = (p) => fs.readFileSync(p);
  const out = {};
  for (const [via, root] of Object.entries(views)) {
    const f = src + '/f-' + via, d = src + '/d-' + via;
    fs.writeFileSync(f, 'hello\\n');
    fs.mkdirSync(d);
    fs.closeSync(fs.openSync(d + '/x', 'w'));
    const r = {};
    sys.utimensat(f, [PAST, 0], 'omit'); await settle();
    read(root + '/f-' + via); r['read with atime in the past'] = atime(f) !== BigInt(PAST) * 1000000000n;
    const t = atime(f); await settle();
    read(root + '/f-' + via); r['re-read in a new open, atime recent'] = atime(f) !== t;
    sys.utimensat(d, [PAST, 0], 'omit'); await settle();
    fs.readdirSync(root + '/d-' + via); r['listing with atime in the past'] = atime(d) !== BigInt(PAST) * 1000000000n;
    out[via] = r;
  }
  return out;
`;

async function atimeRun(flag: string, srcTmpfs = ''): Promise<{ ref: Record<string, boolean>; mnt: Record<string, boolean> }> {
  let res: { ref: Record<string, boolean>; mnt: Record<string, boolean> } | undefined;
  await withCli(flag, async ({ base, src, mnt }) => {
    const ref = join(base, 'ref');
    mkdirSync(ref);
    execFileSync('mount', ['--bind', src, ref]);
    execFileSync('mount', ['-o', `remount,bind,${flag}`, ref]);
    res = await runAs(ATIME, [src, { ref, mnt }], {}, 60_000);
  }, { srcTmpfs });
  return res!;
}

const EXPECT: Record<string, Record<string, boolean>> = {
  relatime: { 'read with atime in the past': true, 're-read in a new open, atime recent': false, 'listing with atime in the past': true },
  strictatime: { 'read with atime in the past': true, 're-read in a new open, atime recent': true, 'listing with atime in the past': true },
  noatime: { 'read with atime in the past': false, 're-read in a new open, atime recent': false, 'listing with atime in the past': false },
  nodiratime: { 'read with atime in the past': true, 're-read in a new open, atime recent': false, 'listing with atime in the past': false },
};

test('relatime: reads and listings through the mount move the source\'s atime as on a relatime mount of the source', timed(60_000, async () => {
  const r = await atimeRun('relatime');
  assert.equal(r.ref, EXPECT.relatime, 'the reference bind mount');
  assert.equal(r.mnt, r.ref);
}));

// FUSE inodes are S_NOATIME (fs/fuse/inode.c, fuse_iget): the kernel leaves atime to the
// server, whose reads of the source follow the source's own mount. A source mounted
// strictatime is strict through the mount too.
test('strictatime over a strictatime source: every read through the mount moves the atime, as on the source', timed(60_000, async () => {
  const r = await atimeRun('strictatime', 'strictatime');
  assert.equal(r.ref, EXPECT.strictatime, 'the reference bind mount');
  assert.equal(r.mnt, r.ref);
}));

// These two need the passthrough to honour the mount's flag (O_NOATIME on the source),
// since the kernel never applies it to FUSE inodes.
test('noatime: reads and listings through the mount leave the source\'s atime alone, as a noatime mount of it does', timed(60_000, async () => {
  const r = await atimeRun('noatime');
  assert.equal(r.ref, EXPECT.noatime, 'the reference bind mount');
  assert.equal(r.mnt, r.ref);
}));

test('nodiratime: listing a directory through the mount leaves its atime alone; file reads still move it', timed(60_000, async () => {
  const r = await atimeRun('nodiratime');
  assert.equal(r.ref, EXPECT.nodiratime, 'the reference bind mount');
  assert.equal(r.mnt, r.ref);
}));

test('nothing of this file is left mounted', () => {
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
    .filter((m) => m && bases.some((b) => m.startsWith(b)));
  assert.equal(left, []);
});

test.run();
