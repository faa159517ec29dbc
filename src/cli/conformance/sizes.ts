/** Conformance cases for truncate, utimensat and ftruncate (sizes and timestamps). */
import { constants as C } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import {
  NOBODY, REG, eq, check, eqMode, fails, stat, lstat, file, dir, advances, nearNow, c, nobody,
  type Case,
} from './harness.js';

export const truncate: Case[] = [
  c('shrink', async (t) => {
    const f = await file(t.p('f'), 'hello world');
    await t.sys('truncate', f, 5);
    eq((await stat(f)).size, 5, 'size');
    eq(await fsp.readFile(f, 'utf8'), 'hello', 'content');
  }),
  c('grow', async (t) => {
    const f = await file(t.p('f'), 'abc');
    await t.sys('truncate', f, 100_000);
    eq((await stat(f)).size, 100_000, 'size');
    const b = await fsp.readFile(f);
    eq(b.subarray(0, 3).toString(), 'abc', 'the old content');
    check(b.subarray(3).every((x) => x === 0), 'the grown part reads as zeros');
  }),
  c('large', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('truncate', f, 5 * 2 ** 30);
    eq((await stat(f)).size, 5 * 2 ** 30, 'size after truncate to 5 GiB');
  }),
  c('times', async (t) => {
    const f = await file(t.p('f'), 'content');
    await advances(t, [f], ['mtime', 'ctime'], () => t.sys('truncate', f, 3));
  }),
  c('follows-symlink', async (t) => {
    const f = await file(t.p('f'), 'hello world');
    await fsp.symlink('f', t.p('s'));
    await t.sys('truncate', t.p('s'), 2);
    eq((await stat(f)).size, 2, 'size of the target');
  }),
  c('eisdir', async (t) => {
    await dir(t.p('d'));
    await fails('truncate of a directory', () => t.sys('truncate', t.p('d'), 0), 'EISDIR');
  }),
  c('enoent', async (t) => {
    await fails('truncate of a missing file', () => t.sys('truncate', t.p('missing'), 0), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('truncate of f/x (f a file)', () => t.sys('truncate', t.p('f', 'x'), 0), 'ENOTDIR');
  }),
  c('einval-negative', async (t) => {
    const f = await file(t.p('f'), 'x');
    await fails('truncate to -1', () => t.sys('truncate', f, -1), 'EINVAL');
  }),
  nobody('eacces', async (t) => {
    const f = await file(t.p('f'), 'content', 0o644);
    await fails('truncate of a 0644 root file by 65534', () => t.nobody('truncate', f, 0), 'EACCES');
    eq((await stat(f)).size, 7, 'size after the refused truncate');
    const g = await file(t.p('g'), 'content', 0o666);
    await t.nobody('truncate', g, 2);
    eq((await stat(g)).size, 2, 'size after truncate of a 0666 root file by 65534');
  }),
  nobody('clears-setuid', async (t) => {
    const f = await file(t.p('f'), 'content');
    await fsp.chown(f, NOBODY, NOBODY);
    await t.nobody('chmod', f, 0o4755);
    await t.nobody('truncate', f, 1);
    eqMode(await stat(f), REG | 0o755, 'mode after truncate of a 04755 file by its (unprivileged) owner');
  }),
];

const A = [1_000_000_001, 123_456_789] as const;
const M = [1_500_000_000, 987_654_321] as const;
const ns = (t: readonly [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

export const utimensat: Case[] = [
  c('nanoseconds', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, M);
    const s = await stat(f);
    eq(s.atime, ns(A), 'atime (ns)');
    eq(s.mtime, ns(M), 'mtime (ns)');
  }),
  c('now', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, M);
    const from = t.now();
    await t.sys('utimensat', f, 'now', 'now');
    const to = t.now();
    const s = await stat(f);
    nearNow(t, s.atime, from, to, 'atime after UTIME_NOW');
    nearNow(t, s.mtime, from, to, 'mtime after UTIME_NOW');
  }),
  c('omit', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, M);
    await t.sys('utimensat', f, 'omit', [2_000_000_000, 5]);
    let s = await stat(f);
    eq(s.atime, ns(A), 'atime after UTIME_OMIT');
    eq(s.mtime, 2_000_000_000_000_000_005n, 'mtime');
    await t.sys('utimensat', f, [3, 0], 'omit');
    s = await stat(f);
    eq(s.atime, 3_000_000_000n, 'atime');
    eq(s.mtime, 2_000_000_000_000_000_005n, 'mtime after UTIME_OMIT');
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'));
    await t.tick();
    const from = t.now();
    await advances(t, [f], ['ctime'], () => t.sys('utimensat', f, A, M));
    nearNow(t, (await stat(f)).ctime, from, t.now(), 'ctime after setting past times');
  }),
  c('nofollow-symlink', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, A);
    await fsp.symlink('f', t.p('s'));
    await t.sys('utimensat', t.p('s'), M, M, true);
    const [l, s] = [await lstat(t.p('s')), await stat(f)];
    eq(l.mtime, ns(M), 'mtime of the symlink (AT_SYMLINK_NOFOLLOW)');
    eq(l.atime, ns(M), 'atime of the symlink');
    eq(s.mtime, ns(A), 'mtime of the target (untouched)');
  }),
  c('follows-symlink', async (t) => {
    const f = await file(t.p('f'));
    await fsp.symlink('f', t.p('s'));
    const l0 = await lstat(t.p('s'));
    await t.sys('utimensat', t.p('s'), A, M);
    eq((await stat(f)).mtime, ns(M), 'mtime of the target');
    eq((await lstat(t.p('s'))).mtime, l0.mtime, 'mtime of the symlink (untouched)');
  }),
  c('directory', async (t) => {
    const d = await dir(t.p('d'));
    await t.sys('utimensat', d, A, M);
    const s = await stat(d);
    eq(s.atime, ns(A), 'atime of a directory');
    eq(s.mtime, ns(M), 'mtime of a directory');
  }),
  c('after-2038', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, [4_102_444_800, 0], [2_147_483_648, 0]);
    const s = await stat(f);
    eq(s.atime, 4_102_444_800_000_000_000n, 'atime in 2100');
    eq(s.mtime, 2_147_483_648_000_000_000n, 'mtime 2^31 s (2038)');
  }),
  c('before-1970', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, [-1, 0], [-31_536_000, 0]);
    const s = await stat(f);
    eq(s.atime, -1_000_000_000n, 'atime -1 s');
    eq(s.mtime, -31_536_000_000_000_000n, 'mtime in 1969');
  }),
  c('enoent', async (t) => {
    await fails('utimensat of a missing file', () => t.sys('utimensat', t.p('missing'), 'now', 'now'), 'ENOENT');
  }),
  nobody('eperm-explicit-not-owner', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await fails('explicit times by 65534 on a 0666 root file', () => t.nobody('utimensat', f, A, M), 'EPERM');
    await fails('UTIME_NOW and an explicit time by 65534', () => t.nobody('utimensat', f, 'now', M), 'EPERM');
  }),
  nobody('now-not-owner-writable', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await t.sys('utimensat', f, A, M);
    const from = t.now();
    await t.nobody('utimensat', f, 'now', 'now');
    nearNow(t, (await stat(f)).mtime, from, t.now(), 'mtime after UTIME_NOW by 65534 (with write permission)');
  }),
  nobody('now-not-owner-readonly', async (t) => {
    const f = await file(t.p('f'), '', 0o644);
    await fails('UTIME_NOW by 65534 on a 0644 root file', () => t.nobody('utimensat', f, 'now', 'now'), 'EACCES');
  }),
  nobody('owner-explicit', async (t) => {
    const f = await file(t.p('f'), '', 0o600);
    await fsp.chown(f, NOBODY, NOBODY);
    await t.nobody('utimensat', f, A, M);
    eq((await stat(f)).mtime, ns(M), 'mtime set by its owner 65534');
  }),
];

export const ftruncate: Case[] = [
  c('grow', async (t) => {
    const fh = await fsp.open(await file(t.p('f'), 'abc'), 'r+');
    try {
      await fh.truncate(50_000);
      eq(Number((await fh.stat()).size), 50_000, 'fstat size');
      const b = Buffer.alloc(50_000);
      await fh.read(b, 0, b.length, 0);
      eq(b.subarray(0, 3).toString(), 'abc', 'the old content');
      check(b.subarray(3).every((x) => x === 0), 'the grown part reads as zeros');
      await fh.write('end', 50_000);
    } finally {
      await fh.close();
    }
    eq((await stat(t.p('f'))).size, 50_003, 'size after writing at the new end');
  }),
  c('shrink', async (t) => {
    const fh = await fsp.open(await file(t.p('f'), 'hello world'), 'r+');
    try {
      await fh.truncate(4);
      eq(Number((await fh.stat()).size), 4, 'fstat size');
      const b = Buffer.alloc(20);
      const { bytesRead } = await fh.read(b, 0, 20, 0);
      eq(b.subarray(0, bytesRead).toString(), 'hell', 'content read through the fd');
    } finally {
      await fh.close();
    }
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'hell', 'content');
  }),
  c('times', async (t) => {
    const f = await file(t.p('f'), 'content');
    const fh = await fsp.open(f, 'r+');
    try {
      await advances(t, [f], ['mtime', 'ctime'], () => fh.truncate(2));
    } finally {
      await fh.close();
    }
  }),
  c('rdonly-fd', async (t) => {
    const f = await file(t.p('f'), 'content');
    await fails('ftruncate of an O_RDONLY fd', () => t.batch(undefined, [['openfd', 'r', f, C.O_RDONLY], ['ftruncate', 'r', 0]]), 'EINVAL', 'EBADF');
    eq((await stat(f)).size, 7, 'size after the refused ftruncate');
  }),
  c('einval-negative', async (t) => {
    const f = await file(t.p('f'), 'x');
    await fails('ftruncate to -1', () => t.batch(undefined, [['openfd', 'w', f, C.O_RDWR], ['ftruncate', 'w', -1]]), 'EINVAL');
  }),
  c('unlinked', async (t) => {
    const f = await file(t.p('f'), 'content');
    const fh = await fsp.open(f, 'r+');
    try {
      await fsp.unlink(f);
      await fh.truncate(3);
      eq(Number((await fh.stat()).size), 3, 'fstat size after ftruncate of an unlinked file');
    } finally {
      await fh.close();
    }
  }),
  nobody('after-fchmod-0', async (t) => {
    const pub = await t.pub();
    const f = join(pub, 'f');
    await t.batch(NOBODY, [
      ['openfd', 'w', f, C.O_CREAT | C.O_RDWR, 0o644], ['fchmod', 'w', 0], ['ftruncate', 'w', 100], ['write', 'w', 'xyz'], ['close', 'w'],
    ]);
    const s = await stat(f);
    eq(s.size, 100, 'size (ftruncate checks the fd\'s mode, not the file\'s permissions)');
    eqMode(s, REG, 'mode');
  }),
  nobody('clears-setuid', async (t) => {
    const pub = await t.pub();
    const f = join(pub, 'f');
    await t.batch(NOBODY, [['openfd', 'w', f, C.O_CREAT | C.O_RDWR, 0o755], ['fchmod', 'w', 0o4755], ['ftruncate', 'w', 10], ['close', 'w']]);
    eqMode(await stat(f), REG | 0o755, 'mode after ftruncate of a 04755 file by its (unprivileged) owner');
  }),
];
