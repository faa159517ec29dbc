/** Conformance cases for chmod and chown. */
import * as fsp from 'node:fs/promises';
import {
  NOBODY, NAME_256, REG, DIR, LNK, oct, eq, eqMode, fails, stat, lstat, file, dir, advances, c, root,
  nobody, type Case,
} from './harness.js';

export const chmod: Case[] = [
  c('file-modes', async (t) => {
    const f = await file(t.p('f'));
    for (const m of [0o640, 0o600, 0o444, 0o777, 0o000, 0o4755, 0o2755, 0o1755, 0o7777]) {
      await fsp.chmod(f, m);
      eqMode(await stat(f), REG | m, `after chmod ${oct(m)}`);
    }
  }),
  c('dir-modes', async (t) => {
    const d = await dir(t.p('d'));
    for (const m of [0o700, 0o711, 0o1777, 0o2755, 0o555, 0o755]) {
      await fsp.chmod(d, m);
      eqMode(await stat(d), DIR | m, `after chmod ${oct(m)}`);
    }
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    const before = await stat(f);
    await advances(t, [f], ['ctime'], () => fsp.chmod(f, 0o600));
    eq((await stat(f)).mtime, before.mtime, 'mtime after chmod');
  }),
  c('follows-symlink', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('l'));
    await fsp.chmod(t.p('l'), 0o600);
    eqMode(await stat(t.p('f')), REG | 0o600, 'target');
    eqMode(await lstat(t.p('l')), LNK | 0o777, 'the symlink itself');
  }),
  c('enoent', async (t) => {
    await fails('chmod of a missing file', () => fsp.chmod(t.p('missing'), 0o644), 'ENOENT');
    await fails('chmod below a missing directory', () => fsp.chmod(t.p('missing', 'f'), 0o644), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('chmod of f/x (f a file)', () => fsp.chmod(t.p('f', 'x'), 0o644), 'ENOTDIR');
  }),
  c('enametoolong', async (t) => {
    await fails('chmod of a 256-byte name', () => fsp.chmod(t.p(NAME_256), 0o644), 'ENAMETOOLONG');
  }),
  nobody('eperm-not-owner', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await fails('chmod of a root file by uid 65534', () => t.nobody('chmod', f, 0o777), 'EPERM');
    eqMode(await stat(f), REG | 0o666, 'mode after the refused chmod');
  }),
  nobody('owner', async (t) => {
    const f = await file(t.p('f'), '', 0o644);
    await fsp.chown(f, NOBODY, NOBODY);
    await t.nobody('chmod', f, 0o4700);
    eqMode(await stat(f), REG | 0o4700, 'mode set by its owner 65534');
  }),
  nobody('sgid-cleared-for-non-member', async (t) => {
    const f = await file(t.p('f'), '', 0o644);
    await fsp.chown(f, NOBODY, 0);
    await t.nobody('chmod', f, 0o2755);
    eqMode(await stat(f), REG | 0o755, 'owner 65534 (not in group 0) set 02755; S_ISGID must be dropped');
  }),
];

export const chown: Case[] = [
  root('uid-gid', async (t) => {
    const f = await file(t.p('f'));
    await fsp.chown(f, NOBODY, NOBODY);
    let s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner after chown');
    await fsp.chown(f, -1, 0);
    s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:0`, 'owner after chown(-1, 0)');
    await fsp.chown(f, 0, -1);
    s = await stat(f);
    eq(`${s.uid}:${s.gid}`, '0:0', 'owner after chown(0, -1)');
  }),
  root('dir', async (t) => {
    const d = await dir(t.p('d'));
    await fsp.chown(d, NOBODY, NOBODY);
    const s = await stat(d);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of the directory');
  }),
  c('noop', async (t) => {
    const f = await file(t.p('f'));
    const before = await stat(f);
    await fsp.chown(f, -1, -1);
    const s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${before.uid}:${before.gid}`, 'owner after chown(-1, -1)');
  }),
  root('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    const before = await stat(f);
    await advances(t, [f], ['ctime'], () => fsp.chown(f, NOBODY, NOBODY));
    eq((await stat(f)).mtime, before.mtime, 'mtime after chown');
  }),
  root('follows-symlink', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('l'));
    await fsp.chown(t.p('l'), NOBODY, NOBODY);
    eq((await stat(t.p('f'))).uid, NOBODY, 'uid of the target');
    eq((await lstat(t.p('l'))).uid, 0, 'uid of the symlink itself');
  }),
  root('lchown-symlink', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('l'));
    await fsp.lchown(t.p('l'), NOBODY, NOBODY);
    const l = await lstat(t.p('l'));
    eq(`${l.uid}:${l.gid}`, `${NOBODY}:${NOBODY}`, 'owner of the symlink after lchown');
    eq((await stat(t.p('f'))).uid, 0, 'uid of the target');
  }),
  root('clears-setuid-setgid', async (t) => {
    const f = await file(t.p('f'), '', 0o6755);
    await fsp.chown(f, NOBODY, NOBODY);
    eqMode(await stat(f), REG | 0o755, 'chown of a 06755 file');
    const d = await dir(t.p('d'), 0o2755);
    await fsp.chown(d, NOBODY, NOBODY);
    eqMode(await stat(d), DIR | 0o2755, 'chown of a 02755 directory (keeps S_ISGID)');
  }),
  c('enoent', async (t) => {
    await fails('chown of a missing file', () => fsp.chown(t.p('missing'), -1, -1), 'ENOENT');
    await fails('lchown of a missing file', () => fsp.lchown(t.p('missing'), -1, -1), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('chown of f/x (f a file)', () => fsp.chown(t.p('f', 'x'), -1, -1), 'ENOTDIR');
  }),
  nobody('eperm-give-away', async (t) => {
    const f = await file(t.p('f'));
    await fsp.chown(f, NOBODY, NOBODY);
    await fails('chown to uid 0 by the owner 65534', () => t.nobody('chown', f, 0, -1), 'EPERM');
    await fails('chgrp to gid 0 by the owner 65534 (not a member)', () => t.nobody('chown', f, -1, 0), 'EPERM');
    eq((await stat(f)).uid, NOBODY, 'uid after the refused chown');
  }),
  nobody('eperm-not-owner', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await fails('chown of a root file by 65534', () => t.nobody('chown', f, NOBODY, NOBODY), 'EPERM');
    await fails('chgrp of a root file by 65534', () => t.nobody('chown', f, -1, NOBODY), 'EPERM');
  }),
  nobody('owner-chgrp-own-group', async (t) => {
    const f = await file(t.p('f'));
    await fsp.chown(f, NOBODY, 0);
    await t.nobody('chown', f, -1, NOBODY);
    const s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner after chgrp to its own group');
  }),
];
