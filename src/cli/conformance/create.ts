/** Conformance cases for mkdir, mkfifo, mknod and open. */
import { constants as C } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  NOBODY, NAME_255, NAME_256, S_IFMT, REG, DIR, oct, eq, check, eqMode, fails, stat, lstat, file,
  dir, countsSubdirs, advances, c, root, nobody, type Case,
} from './harness.js';

export const mkdir: Case[] = [
  c('modes', async (t) => {
    for (const m of [0o755, 0o700, 0o711, 0o1777, 0o000]) {
      const d = t.p(`d${oct(m)}`);
      await fsp.mkdir(d, m);
      eqMode(await stat(d), DIR | m, `mkdir ${oct(m)}`);
    }
  }),
  c('umask', async (t) => {
    await t.batch(undefined, [['umask', 0o027], ['mkdir', t.p('d'), 0o777]]);
    eqMode(await stat(t.p('d')), DIR | 0o750, 'mkdir 0777 under umask 027');
  }),
  c('owner-nlink', async (t) => {
    const counts = await countsSubdirs(t.dir);
    const before = await stat(t.dir);
    await fsp.mkdir(t.p('d'), 0o755);
    const s = await stat(t.p('d'));
    eq(`${s.uid}:${s.gid}`, `${process.geteuid?.()}:${process.getegid?.()}`, 'owner of the new directory');
    if (counts) {
      eq(s.nlink, 2, 'nlink of the new directory');
      eq((await stat(t.dir)).nlink, before.nlink + 1, 'nlink of the parent');
    }
    eq((await fsp.readdir(t.p('d'))).length, 0, 'entries of the new directory');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.mkdir(t.p('d')));
  }),
  root('setgid-inherited', async (t) => {
    const g = await dir(t.p('g'), 0o2775);
    await fsp.chown(g, 0, NOBODY);
    await fsp.mkdir(join(g, 'd'), 0o755);
    const s = await stat(join(g, 'd'));
    eq(s.gid, NOBODY, 'gid of a directory made in a setgid directory');
    eqMode(s, DIR | 0o2755, 'mode (S_ISGID inherited)');
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fsp.symlink('missing', t.p('s'));
    await fails('mkdir over a file', () => fsp.mkdir(t.p('f')), 'EEXIST');
    await fails('mkdir over a directory', () => fsp.mkdir(t.p('d')), 'EEXIST');
    await fails('mkdir over a dangling symlink', () => fsp.mkdir(t.p('s')), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('mkdir in a missing directory', () => fsp.mkdir(t.p('missing', 'd')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('mkdir f/d (f a file)', () => fsp.mkdir(t.p('f', 'd')), 'ENOTDIR');
  }),
  c('name-255', async (t) => {
    await fsp.mkdir(t.p(NAME_255));
    eq((await stat(t.p(NAME_255))).mode & S_IFMT, DIR, 'type of the 255-byte directory');
    check((await fsp.readdir(t.dir)).includes(NAME_255), 'readdir lists the 255-byte name');
    await file(t.p(NAME_255, NAME_255), 'deep');
    eq(await fsp.readFile(t.p(NAME_255, NAME_255), 'utf8'), 'deep', 'file in it');
  }),
  c('enametoolong', async (t) => {
    await fails('mkdir of a 256-byte name', () => fsp.mkdir(t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  c('long-path', async (t) => {
    let p = t.dir;
    for (let i = 0; i < 6; i++) p = join(p, `${i}${'d'.repeat(199)}`);
    await fsp.mkdir(p, { recursive: true });
    check(relative(t.dir, p).length > 1024, 'the path is over 1024 bytes');
    eq((await stat(p)).mode & S_IFMT, DIR, 'type of the deepest directory');
    await fsp.mkdir(join(p, 'leaf'));
    eq((await fsp.readdir(p)).join(','), 'leaf', 'entries of the deepest directory');
    await fsp.rmdir(join(p, 'leaf'));
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('mkdir', join(pub, 'd'), 0o750);
    const s = await stat(join(pub, 'd'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a directory made by 65534');
    eqMode(s, DIR | 0o750, 'mode');
  }),
  nobody('eacces', async (t) => {
    await fails('mkdir by 65534 in a 0755 root directory', () => t.nobody('mkdir', t.p('d'), 0o755), 'EACCES');
    const x = await dir(t.p('x'), 0o766);
    await fails('mkdir by 65534 in a directory without search permission', () => t.nobody('mkdir', join(x, 'd'), 0o755), 'EACCES');
  }),
];

export const mkfifo: Case[] = [
  c('type-mode', async (t) => {
    await t.sys('mkfifo', t.p('p'), 0o640);
    const s = await lstat(t.p('p'));
    eqMode(s, C.S_IFIFO | 0o640, 'mkfifo 0640');
    eq(s.size, 0, 'size');
  }),
  c('io', async (t) => {
    await t.sys('mkfifo', t.p('p'), 0o600);
    eq(await t.sys('fifo_io', t.p('p'), 'through the fifo'), 'through the fifo', 'data read from the fifo');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => t.sys('mkfifo', t.p('p'), 0o644));
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await t.sys('mkfifo', t.p('p'), 0o644);
    await fails('mkfifo over a file', () => t.sys('mkfifo', t.p('f'), 0o644), 'EEXIST');
    await fails('mkfifo over a fifo', () => t.sys('mkfifo', t.p('p'), 0o644), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('mkfifo in a missing directory', () => t.sys('mkfifo', t.p('missing', 'p'), 0o644), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('mkfifo f/p (f a file)', () => t.sys('mkfifo', t.p('f', 'p'), 0o644), 'ENOTDIR');
  }),
  c('enametoolong', async (t) => {
    await fails('mkfifo of a 256-byte name', () => t.sys('mkfifo', t.p(NAME_256), 0o644), 'ENAMETOOLONG');
    await t.sys('mkfifo', t.p(NAME_255), 0o644);
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('mkfifo', join(pub, 'p'), 0o600);
    const s = await lstat(join(pub, 'p'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a fifo made by 65534');
  }),
  nobody('eacces', async (t) => {
    await fails('mkfifo by 65534 in a 0755 root directory', () => t.nobody('mkfifo', t.p('p'), 0o644), 'EACCES');
  }),
];

export const mknod: Case[] = [
  c('fifo', async (t) => {
    await t.sys('mknod', t.p('p'), C.S_IFIFO | 0o600);
    eqMode(await lstat(t.p('p')), C.S_IFIFO | 0o600, 'mknod S_IFIFO|0600');
  }),
  c('socket', async (t) => {
    await t.sys('mknod', t.p('s'), C.S_IFSOCK | 0o644);
    eqMode(await lstat(t.p('s')), C.S_IFSOCK | 0o644, 'mknod S_IFSOCK|0644');
  }),
  c('regular', async (t) => {
    await t.sys('mknod', t.p('f'), REG | 0o640);
    const s = await lstat(t.p('f'));
    eqMode(s, REG | 0o640, 'mknod S_IFREG|0640');
    eq(s.size, 0, 'size');
  }),
  root('char-device', async (t) => {
    await t.sys('mknod', t.p('null'), C.S_IFCHR | 0o666, 1, 3);
    const s = await lstat(t.p('null'));
    eqMode(s, C.S_IFCHR | 0o666, 'mknod c 1 3');
    eq(`${s.major}:${s.minor}`, '1:3', 'rdev major:minor');
  }),
  root('block-device', async (t) => {
    await t.sys('mknod', t.p('b'), C.S_IFBLK | 0o600, 8, 1);
    const s = await lstat(t.p('b'));
    eqMode(s, C.S_IFBLK | 0o600, 'mknod b 8 1');
    eq(`${s.major}:${s.minor}`, '8:1', 'rdev major:minor');
  }),
  root('large-device-numbers', async (t) => {
    await t.sys('mknod', t.p('c'), C.S_IFCHR | 0o600, 300, 70000);
    const s = await lstat(t.p('c'));
    eq(`${s.major}:${s.minor}`, '300:70000', 'rdev major:minor beyond 8 bits');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => t.sys('mknod', t.p('p'), C.S_IFIFO | 0o644));
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await fails('mknod over a file', () => t.sys('mknod', t.p('f'), C.S_IFIFO | 0o644), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('mknod in a missing directory', () => t.sys('mknod', t.p('missing', 'p'), C.S_IFIFO | 0o644), 'ENOENT');
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('mknod', join(pub, 's'), C.S_IFSOCK | 0o600);
    const s = await lstat(join(pub, 's'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a socket made by 65534');
  }),
  nobody('eperm-device', async (t) => {
    const pub = await t.pub();
    await fails('mknod c 1 3 by 65534', () => t.nobody('mknod', join(pub, 'c'), C.S_IFCHR | 0o666, 1, 3), 'EPERM');
  }),
  nobody('eacces', async (t) => {
    await fails('mknod by 65534 in a 0755 root directory', () => t.nobody('mknod', t.p('p'), C.S_IFIFO | 0o644), 'EACCES');
  }),
];

export const open: Case[] = [
  c('creat-mode', async (t) => {
    const fh = await fsp.open(t.p('f'), C.O_CREAT | C.O_WRONLY, 0o640);
    await fh.close();
    const s = await stat(t.p('f'));
    eqMode(s, REG | 0o640, 'O_CREAT 0640');
    eq(s.size, 0, 'size');
    eq(s.nlink, 1, 'nlink');
    eq(`${s.uid}:${s.gid}`, `${process.geteuid?.()}:${process.getegid?.()}`, 'owner');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], async () => (await fsp.open(t.p('f'), 'w')).close());
  }),
  c('excl-eexist', async (t) => {
    await file(t.p('f'), 'keep');
    await dir(t.p('d'));
    await fsp.symlink('target', t.p('s'));
    const x = C.O_CREAT | C.O_EXCL | C.O_WRONLY;
    await fails('O_CREAT|O_EXCL on a file', () => fsp.open(t.p('f'), x), 'EEXIST');
    await fails('O_CREAT|O_EXCL on a directory', () => fsp.open(t.p('d'), x), 'EEXIST');
    await fails('O_CREAT|O_EXCL on a dangling symlink', () => fsp.open(t.p('s'), x), 'EEXIST');
    await fails('the dangling symlink\'s target', () => fsp.lstat(t.p('target')), 'ENOENT');
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'keep', 'content of f');
  }),
  c('creat-existing', async (t) => {
    await file(t.p('f'), 'keep', 0o600);
    await (await fsp.open(t.p('f'), C.O_CREAT | C.O_RDWR, 0o666)).close();
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'keep', 'content after O_CREAT on an existing file');
    eqMode(await stat(t.p('f')), REG | 0o600, 'mode after O_CREAT on an existing file');
  }),
  c('trunc', async (t) => {
    const f = await file(t.p('f'), 'some content');
    await advances(t, [f], ['mtime', 'ctime'], async () => (await fsp.open(f, C.O_WRONLY | C.O_TRUNC)).close());
    eq((await stat(f)).size, 0, 'size after O_TRUNC');
    eq(await fsp.readFile(f, 'utf8'), '', 'content after O_TRUNC');
  }),
  c('append', async (t) => {
    const f = await file(t.p('f'), 'hello');
    const fh = await fsp.open(f, C.O_WRONLY | C.O_APPEND);
    await fh.write(' world');
    await fh.write('!', 0); // the position is ignored with O_APPEND
    await fh.close();
    eq(await fsp.readFile(f, 'utf8'), 'hello world!', 'content after appending');
  }),
  c('read-write', async (t) => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 8)) & 0xff;
    const fh = await fsp.open(t.p('f'), 'w+');
    await fh.write(data, 0, data.length, 0);
    await fh.write(Buffer.from('tail'), 0, 4, 1_000_000);
    const back = Buffer.alloc(data.length);
    await fh.read(back, 0, back.length, 0);
    const gap = Buffer.alloc(700_000);
    await fh.read(gap, 0, gap.length, 300_000);
    await fh.close();
    check(back.equals(data), 'data read back differs from data written');
    check(gap.every((b) => b === 0), 'the gap of a sparse write reads as zeros');
    eq((await stat(t.p('f'))).size, 1_000_004, 'size');
  }),
  c('nofollow-eloop', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('s'));
    await fails('O_NOFOLLOW on a symlink', () => fsp.open(t.p('s'), C.O_RDONLY | C.O_NOFOLLOW), 'ELOOP');
    await fails('O_NOFOLLOW|O_CREAT on a symlink', () => fsp.open(t.p('s'), C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW), 'ELOOP');
    await (await fsp.open(t.p('f'), C.O_RDONLY | C.O_NOFOLLOW)).close();
  }),
  c('follows-symlink', async (t) => {
    await file(t.p('f'), 'target data');
    await fsp.symlink('f', t.p('s'));
    eq(await fsp.readFile(t.p('s'), 'utf8'), 'target data', 'read through a symlink');
    await fsp.symlink('new', t.p('d'));
    await fsp.writeFile(t.p('d'), 'made'); // O_CREAT through a dangling symlink creates its target
    eq(await fsp.readFile(t.p('new'), 'utf8'), 'made', 'file created through a dangling symlink');
  }),
  c('enoent', async (t) => {
    await fails('open of a missing file', () => fsp.open(t.p('missing')), 'ENOENT');
    await fails('O_CREAT in a missing directory', () => fsp.open(t.p('missing', 'f'), 'w'), 'ENOENT');
    await fsp.symlink('missing', t.p('s'));
    await fails('open of a dangling symlink', () => fsp.open(t.p('s')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('open f/x (f a file)', () => fsp.open(t.p('f', 'x')), 'ENOTDIR');
    await fails('O_DIRECTORY on a file', () => fsp.open(t.p('f'), C.O_RDONLY | C.O_DIRECTORY), 'ENOTDIR');
  }),
  c('eisdir', async (t) => {
    const d = await dir(t.p('d'));
    await fails('O_WRONLY on a directory', () => fsp.open(d, C.O_WRONLY), 'EISDIR');
    await fails('O_RDWR on a directory', () => fsp.open(d, C.O_RDWR), 'EISDIR');
    await (await fsp.open(d, C.O_RDONLY | C.O_DIRECTORY)).close();
  }),
  c('name-255', async (t) => {
    const utf8 = `${'é'.repeat(127)}x`; // 255 bytes in UTF-8
    for (const n of [NAME_255, utf8]) {
      await fsp.writeFile(t.p(n), n);
      eq(await fsp.readFile(t.p(n), 'utf8'), n, `content of a ${Buffer.byteLength(n)}-byte name`);
      check((await fsp.readdir(t.dir)).includes(n), `readdir lists the ${Buffer.byteLength(n)}-byte name`);
    }
  }),
  c('enametoolong', async (t) => {
    await fails('O_CREAT of a 256-byte name', () => fsp.open(t.p(NAME_256), 'w'), 'ENAMETOOLONG');
    await fails('O_CREAT of a 256-byte UTF-8 name', () => fsp.open(t.p('é'.repeat(128)), 'w'), 'ENAMETOOLONG');
    await fails('open of a 256-byte name', () => fsp.open(t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  c('long-path', async (t) => {
    let p = t.dir;
    for (let i = 0; i < 6; i++) p = join(p, `${i}${'p'.repeat(199)}`);
    await fsp.mkdir(p, { recursive: true });
    const f = join(p, 'file');
    check(relative(t.dir, f).length > 1024, 'the path is over 1024 bytes');
    await fsp.writeFile(f, 'deep data');
    eq(await fsp.readFile(f, 'utf8'), 'deep data', 'content at a >1024-byte path');
    eq((await stat(f)).size, 9, 'size');
    await fsp.rename(f, join(p, 'file2'));
    eq((await fsp.readdir(p)).join(','), 'file2', 'entries after a rename');
    await fsp.unlink(join(p, 'file2'));
  }),
  root('root-bypasses-mode', async (t) => {
    const f = await file(t.p('f'), 'secret', 0o000);
    const fh = await fsp.open(f, C.O_RDWR);
    await fh.close();
    eq(await fsp.readFile(f, 'utf8'), 'secret', 'root reads a mode 0000 file');
  }),
  nobody('eacces-rdwr', async (t) => {
    const f = await file(t.p('f'), 'x', 0o644);
    await fails('O_RDWR of a 0644 root file by 65534', () => t.nobody('open', f, C.O_RDWR), 'EACCES');
    await fails('O_WRONLY of a 0644 root file by 65534', () => t.nobody('open', f, C.O_WRONLY), 'EACCES');
    await fails('O_TRUNC of a 0644 root file by 65534', () => t.nobody('open', f, C.O_WRONLY | C.O_TRUNC), 'EACCES');
    await t.nobody('open', f, C.O_RDONLY);
    eq((await stat(f)).size, 1, 'size after the refused O_TRUNC');
    const g = await file(t.p('g'), 'x', 0o640);
    await fails('O_RDONLY of a 0640 root file by 65534', () => t.nobody('open', g, C.O_RDONLY), 'EACCES');
  }),
  nobody('eacces-create', async (t) => {
    await fails('O_CREAT by 65534 in a 0755 root directory', () => t.nobody('open', t.p('f'), C.O_CREAT | C.O_WRONLY), 'EACCES');
  }),
  nobody('creat-owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('open', join(pub, 'f'), C.O_CREAT | C.O_WRONLY, 0o600);
    const s = await stat(join(pub, 'f'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a file created by 65534');
    eqMode(s, REG | 0o600, 'mode');
    const g = await dir(t.p('g'), 0o2777); // setgid, group root: new files get group root
    await t.nobody('open', join(g, 'f'), C.O_CREAT | C.O_WRONLY, 0o640);
    eq((await stat(join(g, 'f'))).gid, (await stat(g)).gid, 'gid of a file created in a setgid directory');
  }),
];
