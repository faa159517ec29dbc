// End-to-end: names are bytes. memfs (examples/memfs.ts, an InodeTree) is
// served by test/fixtures/serve-inode.ts in a child process; this process
// makes the client syscalls with Buffer paths, so names that are not UTF-8
// reach the kernel byte for byte. Checked: every name comes back from readdir
// exactly and distinct (nothing merged into U+FFFD), lookups by those bytes
// find the right file, rename/link/unlink/symlink keep them apart, symlink
// targets and xattr names that are not UTF-8 survive, and a 256-byte name is
// ENAMETOOLONG. Xattrs use the C syscall client
// (test/fixtures/syscall-client.ts): Node has no xattr calls.
import {
  linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync,
  unlinkSync, writeFileSync,
} from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nameFromBytes } from '../src/index.js';
import { run, timed, errCode } from './helpers.js';
import { ourMounts, withFixture, type Fixture } from './inode-fixture.js';
import { hexArg, show, sys } from './fixtures/syscall-client.js';

const T = 20_000;
const b = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

const FF = b([0xff]);
const FE = b([0xfe]);
const REPLACEMENT = b([0xef, 0xbf, 0xbd]); // U+FFFD itself, valid UTF-8
const LATIN1 = b('caf', [0xe9]);
const CAFE = b('café'); // the same word in UTF-8: another name
const LONG = Buffer.from(Array.from({ length: 255 }, (_, i) => 0x80 + (i % 128)));
const SURROGATE = b([0xed, 0xa0, 0x80]); // UTF-8 of U+D800: invalid, three escaped bytes
const TRUNCATED = b('x', [0xc3]);
const OVERLONG = b([0xc0, 0xaf]);
const BEYOND = b([0xf4, 0x90, 0x80, 0x80]); // past U+10FFFF
const NAMES = [FF, FE, REPLACEMENT, LATIN1, CAFE, LONG, SURROGATE, TRUNCATED, OVERLONG, BEYOND];

/** `mnt/…names` as a Buffer path. */
const at = (mnt: string, ...names: Buffer[]) => Buffer.concat([Buffer.from(mnt), ...names.flatMap((n) => [Buffer.from('/'), n])]);
const hexes = (names: Buffer[]) => names.map((n) => n.toString('hex')).sort();
const listing = (dir: Buffer | string) => hexes(readdirSync(dir, { encoding: 'buffer' }));


const withMemfs = (fn: (f: Fixture, mnt: string) => Promise<void> | void) => withFixture('memfs', undefined, async (f, mnt) => { await fn(f, mnt); });

test('names that are not UTF-8 come back from readdir byte for byte, each distinct, and find their own file', timed(T, () => withMemfs(async (f, mnt) => {
  NAMES.forEach((n, i) => writeFileSync(at(mnt, n), `file ${i}`));
  assert.equal(listing(mnt), hexes(NAMES));
  NAMES.forEach((n, i) => assert.is(readFileSync(at(mnt, n), 'utf8'), `file ${i}`, `contents of ${n.toString('hex')}`));
  // The server holds each as its lossless string (escaped bytes, never U+FFFD for a byte).
  assert.equal((await f.names()).sort(), NAMES.map((n) => nameFromBytes(n)).sort());
  assert.is(new Set(await f.names()).size, NAMES.length);
})));

test('a directory with a non-UTF-8 name holds files with non-UTF-8 names', timed(T, () => withMemfs((_f, mnt) => {
  mkdirSync(at(mnt, FF));
  writeFileSync(at(mnt, FF, FE), 'inner fe');
  writeFileSync(at(mnt, FF, REPLACEMENT), 'inner fffd');
  writeFileSync(at(mnt, FE), 'outer fe');
  assert.equal(listing(at(mnt, FF)), hexes([FE, REPLACEMENT]));
  assert.is(readFileSync(at(mnt, FF, FE), 'utf8'), 'inner fe');
  assert.is(readFileSync(at(mnt, FF, REPLACEMENT), 'utf8'), 'inner fffd');
  assert.is(readFileSync(at(mnt, FE), 'utf8'), 'outer fe');
  assert.ok(statSync(at(mnt, FF)).isDirectory());
})));

test('rename a → \\xff overwrites neither \\xfe nor U+FFFD; renames onto them replace only the one named', timed(T, () => withMemfs((_f, mnt) => {
  writeFileSync(at(mnt, FE), 'fe');
  writeFileSync(at(mnt, REPLACEMENT), 'fffd');
  writeFileSync(at(mnt, b('a')), 'a');
  renameSync(at(mnt, b('a')), at(mnt, FF));
  assert.equal(listing(mnt), hexes([FF, FE, REPLACEMENT]));
  assert.is(readFileSync(at(mnt, FF), 'utf8'), 'a');
  assert.is(readFileSync(at(mnt, FE), 'utf8'), 'fe');
  assert.is(readFileSync(at(mnt, REPLACEMENT), 'utf8'), 'fffd');

  writeFileSync(at(mnt, b('b')), 'b');
  renameSync(at(mnt, b('b')), at(mnt, REPLACEMENT)); // replaces U+FFFD only
  renameSync(at(mnt, FF), at(mnt, FE)); // replaces \xfe only
  assert.equal(listing(mnt), hexes([FE, REPLACEMENT]));
  assert.is(readFileSync(at(mnt, FE), 'utf8'), 'a');
  assert.is(readFileSync(at(mnt, REPLACEMENT), 'utf8'), 'b');
  assert.is(errCode(() => statSync(at(mnt, FF))), 'ENOENT');
})));

test('link and unlink with non-UTF-8 names touch only the names given', timed(T, () => withMemfs((_f, mnt) => {
  const other = b([0xfd, 0xfc]);
  writeFileSync(at(mnt, FF), 'ff');
  writeFileSync(at(mnt, FE), 'fe');
  linkSync(at(mnt, FF), at(mnt, other));
  assert.equal(listing(mnt), hexes([FF, FE, other]));
  assert.is(statSync(at(mnt, FF)).nlink, 2);
  assert.is(statSync(at(mnt, other)).ino, statSync(at(mnt, FF)).ino);
  assert.is(readFileSync(at(mnt, other), 'utf8'), 'ff');
  unlinkSync(at(mnt, other));
  assert.equal(listing(mnt), hexes([FF, FE]));
  assert.is(statSync(at(mnt, FF)).nlink, 1);
  unlinkSync(at(mnt, FF));
  assert.equal(listing(mnt), hexes([FE]));
  assert.is(readFileSync(at(mnt, FE), 'utf8'), 'fe');
})));

test('a symlink whose target is not UTF-8: readlink gives the exact bytes, lstat the byte length, and it resolves', timed(T, () => withMemfs((_f, mnt) => {
  const target = b([0xff], '/', [0xfe], 'x', [0xef, 0xbf, 0xbd], [0xc3]);
  const link = b([0x80]);
  symlinkSync(target, at(mnt, link));
  assert.equal(listing(mnt), hexes([link]));
  assert.is(readlinkSync(at(mnt, link), { encoding: 'buffer' }).toString('hex'), target.toString('hex'));

  // A relative target naming a file by its bytes: following the link finds that file.
  writeFileSync(at(mnt, FF), 'through the link');
  const toFF = b([0x81]);
  symlinkSync(FF, at(mnt, toFF));
  assert.is(readFileSync(at(mnt, toFF), 'utf8'), 'through the link');
  assert.is(readlinkSync(at(mnt, toFF), { encoding: 'buffer' }).toString('hex'), 'ff');
  assert.is(lstatSync(at(mnt, toFF)).size, 1, 'st_size of a symlink to the 1-byte name \\xff');
  assert.is(lstatSync(at(mnt, link)).size, target.length, 'a symlink\'s st_size is the length of its target in bytes');
})));

test('xattr names that are not UTF-8 stay distinct: set, get and list by bytes', timed(T, () => withMemfs(async (_f, mnt) => {
  writeFileSync(at(mnt, b('x')), '');
  const p = hexArg(at(mnt, b('x')));
  const names = [b('user.', [0xff]), b('user.', [0xfe]), b('user.', [0xef, 0xbf, 0xbd]), b('user.caf', [0xe9]), b('user.café')];
  const value = (i: number) => b([0xff, i, 0x00, 0x80]);
  for (const [i, n] of names.entries()) {
    const r = await sys(['setxattr', p, hexArg(n), hexArg(value(i))]);
    assert.is(show(r), 'OK ', `setxattr ${n.toString('hex')}`);
  }
  for (const [i, n] of names.entries()) {
    assert.is(show(await sys(['getxattr', p, hexArg(n)])), `OK ${value(i).toString('hex')}`, `getxattr ${n.toString('hex')}`);
  }
  const list = await sys(['listxattr', p]);
  assert.is(list.kind, 'ok', show(list));
  const listed = Buffer.from((list as { fields: string[] }).fields[0], 'hex');
  const got: Buffer[] = [];
  for (let i = 0; i < listed.length;) {
    const end = listed.indexOf(0, i);
    got.push(listed.subarray(i, end));
    i = end + 1;
  }
  assert.equal(hexes(got), hexes(names));
  assert.is(show(await sys(['getxattr', p, hexArg(b('user.', [0xfd]))])), 'ERR ENODATA');
})));

test('a 255-byte name of bytes 0x80…0xff works: create, stat, read, readdir', timed(T, () => withMemfs((_f, mnt) => {
  writeFileSync(at(mnt, LONG), 'long');
  assert.is(readFileSync(at(mnt, LONG), 'utf8'), 'long');
  assert.ok(statSync(at(mnt, LONG)).isFile());
  assert.equal(listing(mnt), hexes([LONG]));
})));

// The kernel passes names up to FUSE_NAME_MAX to the server (1024 bytes before Linux
// 6.14, PATH_MAX-1 since when MAX_PAGES is negotiated); NAME_MAX (255) is each
// filesystem's own limit, and memfs declares namelen 255 in statfs. So a 256-byte
// name must be refused by the server, and whatever it accepts it must be able to list.
test('a 256-byte name is ENAMETOOLONG (memfs says namelen 255); the directory stays listable', timed(T, () => withMemfs(async (_f, mnt) => {
  const name256 = Buffer.concat([LONG, b([0x80])]);
  const namelen = await run('stat', ['-f', '-c', '%l', mnt]);
  assert.is(namelen.stdout.trim(), '255', namelen.stderr);
  writeFileSync(at(mnt, LONG), 'long');
  const problems: string[] = [];
  const created = errCode(() => writeFileSync(at(mnt, name256), 'x'));
  if (created !== 'ENAMETOOLONG') problems.push(`creating a 256-byte name gave ${created ?? 'success'}, expected ENAMETOOLONG`);
  const made = errCode(() => mkdirSync(at(mnt, Buffer.concat([LONG, b([0x81])]))));
  if (made !== 'ENAMETOOLONG') problems.push(`mkdir of a 256-byte name gave ${made ?? 'success'}, expected ENAMETOOLONG`);
  const renamed = errCode(() => renameSync(at(mnt, LONG), at(mnt, Buffer.concat([LONG, b([0x82])]))));
  if (renamed !== 'ENAMETOOLONG') problems.push(`rename to a 256-byte name gave ${renamed ?? 'success'}, expected ENAMETOOLONG`);
  // Whatever was accepted must also be listable: a readdir that fails is a directory lost.
  let listed: string[] | string;
  try {
    listed = listing(mnt);
  } catch (e) {
    listed = (e as NodeJS.ErrnoException).code ?? String(e);
  }
  if (typeof listed === 'string') problems.push(`readdir of the directory now fails with ${listed}`);
  assert.equal(problems, [], problems.join('; '));
})));

test('a 4096-byte name (past PATH_MAX) is ENAMETOOLONG from the kernel, never sent to the server', timed(T, () => withMemfs(async (f, mnt) => {
  const nameTooLong = Buffer.alloc(4096, 0xfe);
  const before = (await f.stats()).stats.requests;
  assert.is(errCode(() => writeFileSync(at(mnt, nameTooLong), 'x')), 'ENAMETOOLONG');
  assert.is(errCode(() => statSync(at(mnt, nameTooLong))), 'ENAMETOOLONG');
  assert.is(errCode(() => mkdirSync(at(mnt, nameTooLong))), 'ENAMETOOLONG');
  const after = (await f.stats()).stats.requests;
  for (const op of ['LOOKUP', 'CREATE', 'MKNOD', 'MKDIR']) {
    assert.is(after[op] ?? 0, before[op] ?? 0, `the kernel sent ${op} for a 4096-byte name`);
  }
  assert.equal(listing(mnt), []);
})));

test('no mount point of this file is left mounted', () => {
  assert.equal(ourMounts(), []);
});

test.run();
