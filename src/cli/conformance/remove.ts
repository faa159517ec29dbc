/** Conformance cases for rmdir and unlink. */
import { constants as C } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import {
  NOBODY, NAME_255, NAME_256, eq, check, fails, stat, file, dir, countsSubdirs, advances, c, nobody,
  type Case,
} from './harness.js';

export const rmdir: Case[] = [
  c('removes', async (t) => {
    await dir(t.p('d'));
    const counts = await countsSubdirs(t.dir);
    const n = (await stat(t.dir)).nlink;
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.rmdir(t.p('d')));
    await fails('stat after rmdir', () => fsp.stat(t.p('d')), 'ENOENT');
    if (counts) eq((await stat(t.dir)).nlink, n - 1, 'nlink of the parent');
  }),
  c('enotempty', async (t) => {
    await dir(t.p('d'));
    await file(t.p('d', 'f'));
    await fails('rmdir of a non-empty directory', () => fsp.rmdir(t.p('d')), 'ENOTEMPTY', 'EEXIST');
    await fsp.unlink(t.p('d', 'f'));
    await dir(t.p('d', 'sub'));
    await fails('rmdir of a directory with a subdirectory', () => fsp.rmdir(t.p('d')), 'ENOTEMPTY', 'EEXIST');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fsp.symlink('d', t.p('s'));
    await fails('rmdir of a file', () => fsp.rmdir(t.p('f')), 'ENOTDIR');
    await fails('rmdir of a symlink to a directory', () => fsp.rmdir(t.p('s')), 'ENOTDIR');
    await fails('rmdir of f/x (f a file)', () => fsp.rmdir(t.p('f', 'x')), 'ENOTDIR');
  }),
  c('enoent', async (t) => {
    await fails('rmdir of a missing directory', () => fsp.rmdir(t.p('missing')), 'ENOENT');
  }),
  c('einval-dot', async (t) => {
    await dir(t.p('d'));
    await fails('rmdir d/.', () => fsp.rmdir(`${t.p('d')}/.`), 'EINVAL');
  }),
  c('name-255', async (t) => {
    await fsp.mkdir(t.p(NAME_255));
    await fsp.rmdir(t.p(NAME_255));
    await fails('stat after rmdir', () => fsp.stat(t.p(NAME_255)), 'ENOENT');
  }),
  nobody('eacces', async (t) => {
    await dir(t.p('d'), 0o777);
    await fails('rmdir by 65534 in a 0755 root directory', () => t.nobody('rmdir', t.p('d')), 'EACCES');
  }),
  nobody('sticky', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await dir(join(s, 'root'), 0o777);
    await fails('rmdir by 65534 of a root directory in a 1777 directory', () => t.nobody('rmdir', join(s, 'root')), 'EPERM', 'EACCES');
    await t.nobody('mkdir', join(s, 'own'), 0o755);
    await t.nobody('rmdir', join(s, 'own'));
    await fails('stat after rmdir by its owner', () => fsp.stat(join(s, 'own')), 'ENOENT');
  }),
];

export const unlink: Case[] = [
  c('removes', async (t) => {
    const f = await file(t.p('f'));
    await fsp.unlink(f);
    await fails('stat after unlink', () => fsp.stat(f), 'ENOENT');
    check(!(await fsp.readdir(t.dir)).includes('f'), 'readdir no longer lists the name');
  }),
  c('nlink-ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    await fsp.link(f, t.p('g'));
    await advances(t, [f], ['ctime'], () => fsp.unlink(t.p('g')));
    eq((await stat(f)).nlink, 1, 'nlink of the remaining name');
  }),
  c('parent-times', async (t) => {
    await file(t.p('f'));
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.unlink(t.p('f')));
  }),
  c('open-file', async (t) => {
    const f = await file(t.p('f'), 'still here');
    const fh = await fsp.open(f, 'r+');
    try {
      await fsp.unlink(f);
      eq(Number((await fh.stat({ bigint: true })).nlink), 0, 'nlink of an unlinked open file (fstat)');
      const b = Buffer.alloc(10);
      await fh.read(b, 0, 10, 0);
      eq(b.toString(), 'still here', 'read through the fd after unlink');
      await fh.write('!', 10);
      const b2 = Buffer.alloc(11);
      await fh.read(b2, 0, 11, 0);
      eq(b2.toString(), 'still here!', 'read after a write through the fd after unlink');
    } finally {
      await fh.close();
    }
  }),
  c('eisdir', async (t) => {
    await dir(t.p('d'));
    await fails('unlink of a directory', () => fsp.unlink(t.p('d')), 'EISDIR', 'EPERM');
  }),
  c('enoent', async (t) => {
    await fails('unlink of a missing file', () => fsp.unlink(t.p('missing')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('unlink of f/x (f a file)', () => fsp.unlink(t.p('f', 'x')), 'ENOTDIR');
  }),
  c('symlink', async (t) => {
    await file(t.p('f'), 'x');
    await fsp.symlink('f', t.p('s'));
    await fsp.unlink(t.p('s'));
    await fails('lstat of the unlinked symlink', () => fsp.lstat(t.p('s')), 'ENOENT');
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'x', 'the target');
  }),
  c('special-files', async (t) => {
    await t.sys('mkfifo', t.p('p'), 0o644);
    await t.sys('mknod', t.p('s'), C.S_IFSOCK | 0o644);
    await fsp.unlink(t.p('p'));
    await fsp.unlink(t.p('s'));
    eq((await fsp.readdir(t.dir)).length, 0, 'entries after unlinking a fifo and a socket');
  }),
  c('name-255', async (t) => {
    await file(t.p(NAME_255));
    await fsp.unlink(t.p(NAME_255));
    await fails('unlink of a 256-byte name', () => fsp.unlink(t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  nobody('sticky-other', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await file(join(s, 'f'), '', 0o666);
    await fails('unlink by 65534 of a root file in a 1777 directory', () => t.nobody('unlink', join(s, 'f')), 'EPERM', 'EACCES');
    await fsp.stat(join(s, 'f'));
  }),
  nobody('sticky-own', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await t.nobody('open', join(s, 'f'), C.O_CREAT | C.O_WRONLY);
    await t.nobody('unlink', join(s, 'f'));
    await fails('stat after unlink by its owner', () => fsp.stat(join(s, 'f')), 'ENOENT');
  }),
  nobody('sticky-dir-owner', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await fsp.chown(s, NOBODY, NOBODY);
    await file(join(s, 'f'), '', 0o644);
    await t.nobody('unlink', join(s, 'f'));
    await fails('stat after unlink by the owner of the sticky directory', () => fsp.stat(join(s, 'f')), 'ENOENT');
  }),
  nobody('eacces', async (t) => {
    await file(t.p('f'), '', 0o666);
    await fails('unlink by 65534 in a 0755 root directory', () => t.nobody('unlink', t.p('f')), 'EACCES');
  }),
];
