/** Conformance cases for link, rename and symlink. */
import { constants as C } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import {
  NOBODY, NAME_255, NAME_256, S_IFMT, REG, LNK, eq, check, eqMode, fails, stat, lstat, file, dir,
  countsSubdirs, advances, c, nobody, type Case,
} from './harness.js';

export const link: Case[] = [
  c('nlink', async (t) => {
    const f = await file(t.p('f'), 'data');
    await fsp.link(f, t.p('g'));
    const [a, b] = [await stat(f), await stat(t.p('g'))];
    eq(a.ino, b.ino, 'inode of g (same as f)');
    eq(a.nlink, 2, 'nlink of f');
    eq(b.nlink, 2, 'nlink of g');
    await fsp.link(t.p('g'), t.p('h'));
    eq((await stat(f)).nlink, 3, 'nlink after a second link');
    await fsp.unlink(f);
    eq((await stat(t.p('h'))).nlink, 2, 'nlink after unlinking f');
  }),
  c('shared-content', async (t) => {
    const f = await file(t.p('f'), 'one');
    await fsp.link(f, t.p('g'));
    await fsp.writeFile(t.p('g'), 'two, longer');
    eq(await fsp.readFile(f, 'utf8'), 'two, longer', 'f after writing through g');
    eq((await stat(f)).size, 11, 'size of f');
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    await advances(t, [f], ['ctime'], () => fsp.link(f, t.p('g')));
  }),
  c('parent-times', async (t) => {
    const f = await file(t.p('f'));
    const d = await dir(t.p('d'));
    await advances(t, [d], ['mtime', 'ctime'], () => fsp.link(f, join(d, 'g')));
  }),
  c('symlink-not-followed', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('s'));
    await fsp.link(t.p('s'), t.p('h'));
    const h = await lstat(t.p('h'));
    eq(h.mode & S_IFMT, LNK, 'type of the new link (link(2) does not follow)');
    eq(h.nlink, 2, 'nlink of the symlink');
    eq(await fsp.readlink(t.p('h')), 'f', 'target of the new link');
    eq((await stat(t.p('f'))).nlink, 1, 'nlink of the target file');
  }),
  c('eexist', async (t) => {
    const f = await file(t.p('f'));
    await file(t.p('g'));
    await fails('link onto an existing file', () => fsp.link(f, t.p('g')), 'EEXIST');
    await fails('link onto itself', () => fsp.link(f, f), 'EEXIST');
    await fsp.symlink('missing', t.p('s'));
    await fails('link onto a dangling symlink', () => fsp.link(f, t.p('s')), 'EEXIST');
  }),
  c('enoent', async (t) => {
    const f = await file(t.p('f'));
    await fails('link of a missing file', () => fsp.link(t.p('missing'), t.p('g')), 'ENOENT');
    await fails('link into a missing directory', () => fsp.link(f, t.p('missing', 'g')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    const f = await file(t.p('f'));
    await fails('link to f/g (f a file)', () => fsp.link(f, t.p('f', 'g')), 'ENOTDIR');
  }),
  c('dir-eperm', async (t) => {
    await dir(t.p('d'));
    await fails('link of a directory', () => fsp.link(t.p('d'), t.p('e')), 'EPERM');
  }),
  c('enametoolong', async (t) => {
    const f = await file(t.p('f'));
    await fails('link to a 256-byte name', () => fsp.link(f, t.p(NAME_256)), 'ENAMETOOLONG');
    await fsp.link(f, t.p(NAME_255));
    eq((await stat(t.p(NAME_255))).nlink, 2, 'nlink via a 255-byte name');
  }),
  nobody('eacces', async (t) => {
    const pub = await t.pub();
    await t.nobody('open', join(pub, 'f'), C.O_CREAT | C.O_WRONLY, 0o644);
    await fails('link by 65534 into a 0755 root directory', () => t.nobody('link', join(pub, 'f'), t.p('g')), 'EACCES');
    await t.nobody('link', join(pub, 'f'), join(pub, 'g'));
    eq((await stat(join(pub, 'g'))).nlink, 2, 'nlink after the link by 65534 in a 0777 directory');
  }),
];

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

export const rename: Case[] = [
  c('file', async (t) => {
    const f = await file(t.p('f'), 'content');
    const ino = (await stat(f)).ino;
    await fsp.rename(f, t.p('g'));
    await fails('stat of the old name', () => fsp.stat(f), 'ENOENT');
    const s = await stat(t.p('g'));
    eq(s.ino, ino, 'inode of the new name');
    eq(s.nlink, 1, 'nlink');
    eq(await fsp.readFile(t.p('g'), 'utf8'), 'content', 'content');
  }),
  c('over-file', async (t) => {
    await file(t.p('f'), 'new');
    await file(t.p('g'), 'old');
    await fsp.link(t.p('g'), t.p('g2'));
    const ino = (await stat(t.p('f'))).ino;
    await fsp.rename(t.p('f'), t.p('g'));
    eq((await stat(t.p('g'))).ino, ino, 'inode at the target name');
    eq(await fsp.readFile(t.p('g'), 'utf8'), 'new', 'content at the target name');
    eq((await stat(t.p('g2'))).nlink, 1, 'nlink of the replaced file\'s other name');
    await fails('stat of the old name', () => fsp.stat(t.p('f')), 'ENOENT');
  }),
  c('over-empty-dir', async (t) => {
    await dir(t.p('a'));
    await file(t.p('a', 'inner'), 'x');
    await dir(t.p('b'));
    const counts = await countsSubdirs(t.dir);
    const n = (await stat(t.dir)).nlink;
    await fsp.rename(t.p('a'), t.p('b'));
    eq(await fsp.readFile(t.p('b', 'inner'), 'utf8'), 'x', 'content of the moved directory');
    await fails('stat of the old name', () => fsp.stat(t.p('a')), 'ENOENT');
    if (counts) eq((await stat(t.dir)).nlink, n - 1, 'nlink of the parent');
  }),
  c('over-nonempty-dir', async (t) => {
    await dir(t.p('a'));
    await dir(t.p('b'));
    await file(t.p('b', 'x'));
    await fails('rename of a directory over a non-empty one', () => fsp.rename(t.p('a'), t.p('b')), 'ENOTEMPTY', 'EEXIST');
  }),
  c('file-over-dir', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fails('rename of a file over a directory', () => fsp.rename(t.p('f'), t.p('d')), 'EISDIR');
  }),
  c('dir-over-file', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fails('rename of a directory over a file', () => fsp.rename(t.p('d'), t.p('f')), 'ENOTDIR');
  }),
  c('into-own-subtree', async (t) => {
    await dir(t.p('d'));
    await dir(t.p('d', 'sub'));
    await fails('rename d to d/sub/x', () => fsp.rename(t.p('d'), t.p('d', 'sub', 'x')), 'EINVAL');
    await fails('rename d to d/x', () => fsp.rename(t.p('d'), t.p('d', 'x')), 'EINVAL');
  }),
  c('enoent', async (t) => {
    await fails('rename of a missing file', () => fsp.rename(t.p('missing'), t.p('g')), 'ENOENT');
    await file(t.p('f'));
    await fails('rename into a missing directory', () => fsp.rename(t.p('f'), t.p('missing', 'g')), 'ENOENT');
  }),
  c('hardlinks-noop', async (t) => {
    await file(t.p('a'), 'x');
    await fsp.link(t.p('a'), t.p('b'));
    await fsp.rename(t.p('a'), t.p('b'));
    eq((await stat(t.p('a'))).nlink, 2, 'nlink of a (rename between links of one file does nothing)');
    eq((await stat(t.p('b'))).nlink, 2, 'nlink of b');
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    const before = await stat(f);
    await t.tick();
    await fsp.rename(f, t.p('g'));
    const s = await stat(t.p('g'));
    check(s.ctime > before.ctime, `ctime of the renamed file did not advance (${before.ctime} -> ${s.ctime} ns)`);
    eq(s.mtime, before.mtime, 'mtime of the renamed file');
  }),
  c('parent-times', async (t) => {
    await dir(t.p('a'));
    await dir(t.p('b'));
    await file(t.p('a', 'f'));
    await advances(t, [t.p('a'), t.p('b')], ['mtime', 'ctime'], () => fsp.rename(t.p('a', 'f'), t.p('b', 'f')));
  }),
  c('dir-between-parents', async (t) => {
    await dir(t.p('a'));
    await dir(t.p('b'));
    await dir(t.p('a', 'd'));
    await file(t.p('a', 'd', 'f'), 'inside');
    const counts = await countsSubdirs(t.dir);
    await fsp.rename(t.p('a', 'd'), t.p('b', 'd'));
    eq((await stat(t.p('b', 'd', '..'))).ino, (await stat(t.p('b'))).ino, 'inode of b/d/..');
    eq(await fsp.readFile(t.p('b', 'd', 'f'), 'utf8'), 'inside', 'content below the moved directory');
    if (counts) {
      eq((await stat(t.p('a'))).nlink, 2, 'nlink of the old parent');
      eq((await stat(t.p('b'))).nlink, 3, 'nlink of the new parent');
    }
  }),
  c('symlink', async (t) => {
    await file(t.p('f'), 'x');
    await fsp.symlink('./f', t.p('s'));
    await fsp.rename(t.p('s'), t.p('s2'));
    eq(await fsp.readlink(t.p('s2')), './f', 'target of the renamed symlink');
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'x', 'the target itself');
  }),
  c('names-255-256', async (t) => {
    await file(t.p('f'), 'x');
    await fsp.rename(t.p('f'), t.p(NAME_255));
    eq(await fsp.readFile(t.p(NAME_255), 'utf8'), 'x', 'content after rename to a 255-byte name');
    await fails('rename to a 256-byte name', () => fsp.rename(t.p(NAME_255), t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  c('noreplace', async (t) => {
    await file(t.p('a'), 'a');
    await file(t.p('b'), 'b');
    await fails('RENAME_NOREPLACE onto an existing file', () => t.sys('renameat2', t.p('a'), t.p('b'), RENAME_NOREPLACE), 'EEXIST');
    eq(await fsp.readFile(t.p('b'), 'utf8'), 'b', 'the existing target');
    eq(await fsp.readFile(t.p('a'), 'utf8'), 'a', 'the source');
    await t.sys('renameat2', t.p('a'), t.p('c'), RENAME_NOREPLACE);
    eq(await fsp.readFile(t.p('c'), 'utf8'), 'a', 'RENAME_NOREPLACE onto a free name');
    await fails('stat of the old name', () => fsp.stat(t.p('a')), 'ENOENT');
  }),
  c('exchange', async (t) => {
    await file(t.p('f'), 'file');
    await dir(t.p('d'));
    await file(t.p('d', 'inner'), 'inner');
    const [fi, di] = [(await stat(t.p('f'))).ino, (await stat(t.p('d'))).ino];
    await t.sys('renameat2', t.p('f'), t.p('d'), RENAME_EXCHANGE);
    eq((await stat(t.p('f'))).ino, di, 'inode now at f');
    eq((await stat(t.p('d'))).ino, fi, 'inode now at d');
    eq(await fsp.readFile(t.p('f', 'inner'), 'utf8'), 'inner', 'content below the directory now at f');
    eq(await fsp.readFile(t.p('d'), 'utf8'), 'file', 'content of the file now at d');
    await fails('RENAME_EXCHANGE with a missing name', () => t.sys('renameat2', t.p('d'), t.p('missing'), RENAME_EXCHANGE), 'ENOENT');
    await fails('RENAME_EXCHANGE|RENAME_NOREPLACE', () => t.sys('renameat2', t.p('d'), t.p('f'), RENAME_EXCHANGE | RENAME_NOREPLACE), 'EINVAL');
  }),
  nobody('sticky', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await file(join(s, 'root'), '', 0o666);
    await fails('rename by 65534 of a root file in a 1777 directory', () => t.nobody('rename', join(s, 'root'), join(s, 'mine')), 'EPERM', 'EACCES');
    await t.nobody('open', join(s, 'own'), C.O_CREAT | C.O_WRONLY);
    await t.nobody('rename', join(s, 'own'), join(s, 'own2'));
    eq((await stat(join(s, 'own2'))).uid, NOBODY, 'its own file renamed by 65534 in a 1777 directory');
  }),
  nobody('eacces', async (t) => {
    await file(t.p('f'), '', 0o666);
    await fails('rename by 65534 in a 0755 root directory', () => t.nobody('rename', t.p('f'), t.p('g')), 'EACCES');
  }),
];

export const symlink: Case[] = [
  c('target-verbatim', async (t) => {
    const targets = ['f', 'a/../b//c/', '/absolute/path/x', ' spaces and ünïcödé ', '.', '..', 'x'.repeat(1023)];
    for (const [i, target] of targets.entries()) {
      await fsp.symlink(target, t.p(`l${i}`));
      eq(await fsp.readlink(t.p(`l${i}`)), target, 'target read back');
      eq((await lstat(t.p(`l${i}`))).size, Buffer.byteLength(target), `size of the symlink to ${target.slice(0, 20)}`);
    }
  }),
  c('lstat-vs-stat', async (t) => {
    await file(t.p('f'), 'twelve bytes', 0o640);
    await fsp.symlink('f', t.p('s'));
    const [l, s, f] = [await lstat(t.p('s')), await stat(t.p('s')), await stat(t.p('f'))];
    eq(l.mode & S_IFMT, LNK, 'lstat type');
    eq(l.size, 1, 'lstat size (target length)');
    check(l.ino !== f.ino, 'lstat gives the symlink\'s own inode');
    eq(s.ino, f.ino, 'stat inode (the target\'s)');
    eqMode(s, REG | 0o640, 'stat mode (the target\'s)');
    eq(s.size, 12, 'stat size (the target\'s)');
  }),
  c('dangling', async (t) => {
    await fsp.symlink('missing', t.p('s'));
    await fails('stat of a dangling symlink', () => fsp.stat(t.p('s')), 'ENOENT');
    eq((await lstat(t.p('s'))).mode & S_IFMT, LNK, 'lstat type');
    eq(await fsp.readlink(t.p('s')), 'missing', 'target');
  }),
  c('relative-resolution', async (t) => {
    await file(t.p('f'), 'top');
    await dir(t.p('d'));
    await fsp.symlink('../f', t.p('d', 's'));
    eq(await fsp.readFile(t.p('d', 's'), 'utf8'), 'top', 'read through d/s -> ../f');
    await fsp.symlink('d', t.p('dl'));
    eq(await fsp.readFile(t.p('dl', 's'), 'utf8'), 'top', 'read through dl/s (dl -> d)');
  }),
  c('loop', async (t) => {
    await fsp.symlink('b', t.p('a'));
    await fsp.symlink('a', t.p('b'));
    await fails('stat of a symlink loop', () => fsp.stat(t.p('a')), 'ELOOP');
    await fails('open of a symlink loop', () => fsp.open(t.p('a')), 'ELOOP');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.symlink('x', t.p('s')));
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fsp.symlink('missing', t.p('s'));
    await fails('symlink over a file', () => fsp.symlink('x', t.p('f')), 'EEXIST');
    await fails('symlink over a directory', () => fsp.symlink('x', t.p('d')), 'EEXIST');
    await fails('symlink over a dangling symlink', () => fsp.symlink('x', t.p('s')), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('symlink in a missing directory', () => fsp.symlink('x', t.p('missing', 's')), 'ENOENT');
    await fails('symlink with an empty target', () => fsp.symlink('', t.p('s')), 'ENOENT');
  }),
  c('enametoolong', async (t) => {
    await fails('symlink of a 256-byte name', () => fsp.symlink('x', t.p(NAME_256)), 'ENAMETOOLONG');
    await fsp.symlink('x', t.p(NAME_255));
    eq(await fsp.readlink(t.p(NAME_255)), 'x', 'target of a 255-byte symlink');
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('symlink', 'target', join(pub, 's'));
    const s = await lstat(join(pub, 's'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a symlink made by 65534');
  }),
  nobody('eacces', async (t) => {
    await fails('symlink by 65534 in a 0755 root directory', () => t.nobody('symlink', 'x', t.p('s')), 'EACCES');
  }),
];
