// End-to-end: the passthrough is exact and leaves the process alone.
//
// - Names are bytes: any byte but '/' and NUL, valid UTF-8 or not, lists,
//   creates, renames, links, unlinks, symlinks (targets too) and xattr names
//   reach the source as exactly those bytes — a name that is not UTF-8 never
//   collides with U+FFFD or another undecodable name.
// - 64-bit values: writes and reads at offsets a double cannot hold (2^53+2,
//   2^60+1) land at exactly that offset of the source (a tmpfs: its maximum
//   file size is 2^63-1); sizes, fallocate, SEEK_DATA/SEEK_HOLE,
//   copy_file_range and lock ranges keep every bit; what the source cannot
//   take fails as it fails natively.
// - Inode numbers above 2^53 (a FUSE source, test/fixtures/serve-bigino.ts,
//   whose files are st_ino 2^60+1 and 2^60+2) stay two files with their exact
//   numbers.
// - The server's umask never changes (creations run under the caller's umask
//   on the addon's creator thread); a parent's default ACL wins over it.
//
// The server is test/fixtures/serve-passthrough.ts in a child process; client
// syscalls run in Node children (src/cli/as-user.ts: 64-bit offsets, xattrs,
// locks and getdents through the addon) or in this process; results are
// checked on the source directly.
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Passthrough } from '../src/passthrough/index.js';
import { cleanup, forceUnmount, run, startNode, stop, tempDir, timed, WAIT_MS } from './helpers.js';
import { acl, bases, serverLog, U, withPt, type Fixture } from './pt-helpers.js';
import { AsUser, runAs, runOps } from '../src/cli/as-user.js';

// ---- helpers --------------------------------------------------------------------------------

/** Bodies get `err(f)`: null, or the errno name f threw. */
const PRELUDE = 'const err = (f) => { try { f(); return null; } catch (e) { if (!e.code) throw e; return e.code; } };\n';

/** Runs `body` (the text of an async function; `a` its arguments) in a Node child as root. */
function js<T = any>(body: string, args: unknown[], ms = WAIT_MS): Promise<T> {
  return runAs<T>(PRELUDE + body, args, {}, ms);
}

/** `dir/name` as bytes (Node's fs takes Buffer paths as they are). */
const at = (dir: string, ...names: Buffer[]) => Buffer.concat([Buffer.from(dir), ...names.flatMap((n) => [Buffer.from('/'), n])]);
const b = (...bytes: number[]) => Buffer.from(bytes);
const sortedHex = (names: Buffer[]) => names.map((n) => n.toString('hex')).sort();
const listHex = (dir: string | Buffer) => sortedHex(readdirSync(dir, { encoding: 'buffer' }));

async function cleanLog(fx: Fixture): Promise<void> {
  assert.is(await serverLog(fx), '', 'server log');
}

/** The Umask line of /proc/PID/status (the thread group leader's, i.e. the process umask). */
function umaskOf(pid: number | 'self'): string {
  return /^Umask:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

// ---- 1. names are bytes ------------------------------------------------------------------

/** 255 bytes: a prefix, then every invalid-alone byte 0x80…0xff over and over. */
const LONG = Buffer.concat([Buffer.from('long-'), Buffer.from(Array.from({ length: 250 }, (_, i) => 0x80 + (i % 128)))]);
const NAMES: Buffer[] = [
  b(0xff),
  b(0xef, 0xbf, 0xbd), // U+FFFD itself, as valid UTF-8: what a lossy decoder turns \xff into
  b(0xfe),
  Buffer.from('caf\xe9 na\xefve', 'latin1'),
  b(0xed, 0xa0, 0x80), // a UTF-8-encoded surrogate: invalid UTF-8
  b(0xc0, 0xaf), // an overlong '/': must stay these two bytes
  Buffer.from('é😀'),
  LONG,
];

test('readdir through the mount lists exactly the bytes of SRC\'s names, and each name opens its own file', timed(30_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    assert.is(LONG.length, 255);
    NAMES.forEach((n, i) => writeFileSync(at(src, n), `file ${i}\n`));
    mkdirSync(at(src, b(0xff, 0x2e)));
    writeFileSync(at(src, b(0xff, 0x2e), b(0x80)), 'deep\n');
    assert.equal(listHex(mnt), listHex(src), 'MNT lists the bytes SRC holds');
    assert.equal(listHex(at(mnt, b(0xff, 0x2e))), [b(0x80).toString('hex')], 'and so does a subdirectory');
    NAMES.forEach((n, i) => assert.is(readFileSync(at(mnt, n), 'utf8'), `file ${i}\n`, `MNT/${n.toString('hex')} is its own file`));
    assert.is(readFileSync(at(mnt, b(0xff, 0x2e), b(0x80)), 'utf8'), 'deep\n');
    // `ls -b` (octal escapes for every non-printable byte) agrees too.
    const ls = async (d: string) => (await run('ls', ['-b', '-a', d], WAIT_MS, { env: { ...process.env, LC_ALL: 'C' } })).stdout;
    assert.is(await ls(mnt), await ls(src), 'ls -b of MNT equals that of SRC');
    await cleanLog(fx);
  })));

test('create, rename, link, unlink, mkdir and symlink through the mount hit exactly those bytes in SRC', timed(30_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const FFFD = b(0xef, 0xbf, 0xbd);
    writeFileSync(at(src, FFFD), 'keep\n');
    writeFileSync(at(src, Buffer.from('a')), 'moved\n');
    // create
    NAMES.filter((n) => !n.equals(FFFD)).forEach((n, i) => writeFileSync(at(mnt, n), `new ${i}\n`));
    assert.equal(listHex(src), sortedHex([...NAMES, Buffer.from('a')]), 'the created names are in SRC, byte for byte');
    assert.is(readFileSync(at(src, FFFD), 'utf8'), 'keep\n', 'creating \\xff did not touch the U+FFFD file');
    for (const n of NAMES.filter((x) => !x.equals(FFFD))) unlinkSync(at(mnt, n));
    assert.equal(listHex(src), sortedHex([FFFD, Buffer.from('a')]), 'unlink removed exactly those names');
    // rename a → \xff, then \xff → \xfe: never onto U+FFFD
    renameSync(at(mnt, Buffer.from('a')), at(mnt, b(0xff)));
    assert.equal(listHex(src), sortedHex([FFFD, b(0xff)]), 'mv a $\'\\xff\' made \\xff in SRC');
    renameSync(at(mnt, b(0xff)), at(mnt, b(0xfe)));
    assert.equal(listHex(src), sortedHex([FFFD, b(0xfe)]));
    assert.is(readFileSync(at(src, b(0xfe)), 'utf8'), 'moved\n');
    assert.is(readFileSync(at(src, FFFD), 'utf8'), 'keep\n', 'the U+FFFD file was never overwritten');
    // link
    linkSync(at(mnt, b(0xfe)), at(mnt, b(0x6c, 0xfe, 0x80)));
    assert.is(statSync(at(src, b(0x6c, 0xfe, 0x80))).ino, statSync(at(src, b(0xfe))).ino, 'the new link names the same file in SRC');
    unlinkSync(at(mnt, b(0xfe)));
    assert.equal(listHex(src), sortedHex([FFFD, b(0x6c, 0xfe, 0x80)]), 'unlink \\xfe left the link and U+FFFD');
    // mkdir, and a file inside named by an overlong '/'
    mkdirSync(at(mnt, b(0x64, 0xff)));
    writeFileSync(at(mnt, b(0x64, 0xff), b(0xc0, 0xaf)), 'inside\n');
    assert.equal(listHex(at(src, b(0x64, 0xff))), [b(0xc0, 0xaf).toString('hex')], 'SRC/d\\xff holds \\xc0\\xaf');
    assert.is(readFileSync(at(src, b(0x64, 0xff), b(0xc0, 0xaf)), 'utf8'), 'inside\n');
    // symlink: the target's bytes are kept, through the mount and in SRC
    const target = Buffer.from([0x2e, 0x2e, 0x2f, 0x74, 0xff, 0x2f, 0x80, 0x78, 0xef, 0xbf, 0xbd]);
    symlinkSync(target, at(mnt, b(0x73, 0xff)));
    assert.is(readlinkSync(at(src, b(0x73, 0xff)), { encoding: 'buffer' }).toString('hex'), target.toString('hex'), 'SRC\'s link target is those bytes');
    assert.is(readlinkSync(at(mnt, b(0x73, 0xff)), { encoding: 'buffer' }).toString('hex'), target.toString('hex'), 'and readlink through the mount answers them');
    // the 255-byte name: created, listed, removed
    closeSync(openSync(at(mnt, LONG), 'w'));
    assert.ok(listHex(src).includes(LONG.toString('hex')), 'the 255-byte name is in SRC');
    unlinkSync(at(mnt, LONG));
    assert.ok(!listHex(src).includes(LONG.toString('hex')));
    await cleanLog(fx);
  })));

test('xattr names and values through the mount are SRC\'s bytes (set, get, list, remove)', timed(30_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    writeFileSync(at(src, b(0xff)), 'x\n');
    const xnames = ['user.\xff\xfe', 'user.\xef\xbf\xbd', 'user.caf\xe9', 'user.\xed\xa0\x80'].map((n) => Buffer.from(n, 'latin1'));
    const r = await js(`
      const [m, s, names] = a;
      names.forEach((n, i) => sys.setxattr(m, n, Buffer.from([0, 0xff, i])));
      const values = (p) => Object.fromEntries(names.map((n) => [n.toString('hex'), sys.getxattr(p, n).toString('hex')]));
      const user = (p) => sys.listxattr(p).filter((n) => n.subarray(0, 5).equals(Buffer.from('user.'))).map((n) => n.toString('hex')).sort();
      const r = { src: values(s), mnt: values(m), listMnt: user(m), listSrc: user(s) };
      sys.removexattr(m, names[0]);
      r.removed = err(() => sys.getxattr(s, names[0]));
      r.kept = sys.getxattr(s, names[1]).toString('hex');
      return r;
    `, [at(mnt, b(0xff)), at(src, b(0xff)), xnames]);
    const names = ['user.\xff\xfe', 'user.\xef\xbf\xbd', 'user.caf\xe9', 'user.\xed\xa0\x80'].map((n) => Buffer.from(n, 'latin1').toString('hex'));
    names.forEach((n, i) => {
      assert.is(r.src[n], `00ff0${i}`, `SRC holds xattr ${n} with its value`);
      assert.is(r.mnt[n], `00ff0${i}`, `getxattr ${n} through the mount`);
    });
    assert.equal(r.listSrc, [...names].sort(), 'SRC lists exactly those names');
    assert.equal(r.listMnt, r.listSrc, 'and listxattr through the mount answers the same bytes');
    assert.is(r.removed, 'ENODATA', 'removexattr \\xff\\xfe removed it in SRC');
    assert.is(r.kept, '00ff01', 'and left the U+FFFD one');
    await cleanLog(fx);
  })));

// ---- 2. offsets and sizes keep 64 bits -------------------------------------------------------

test('writes and reads at 2^53+2 and 2^60+1 land at exactly those offsets of SRC; sizes, truncate and EFBIG are exact', timed(60_000, () =>
  withPt({ entryTimeout: 0, attrTimeout: 0 }, async ({ src, mnt, fx }) => {
    const r = await js(`
      const [m, s] = a;
      const { O_CREAT, O_RDWR, O_RDONLY, O_DIRECT } = fs.constants;
      const P53 = 2n ** 53n + 2n, P60 = 2n ** 60n + 1n;
      const hex = (k, n, pos) => sys.pread(k, n, pos).toString('hex');
      sys.openfd('fd', m + '/big', O_CREAT | O_RDWR, 0o644);
      sys.pwrite('fd', 'head', 0);
      const w = [sys.pwrite('fd', 'Y', P53), sys.pwrite('fd', 'Z', P60)];
      sys.openfd('sfd', s + '/big', O_RDWR);
      const r = { w, head: hex('sfd', 4, 0), at53: hex('sfd', 3, P53 - 1n), at60: hex('sfd', 3, P60 - 1n),
        srcSize: String(sys.fstat('sfd').size), mntSize: String(sys.stat(m + '/big').size) };
      // Written on SRC behind the mount, read through it with O_DIRECT (READ at the exact offset).
      sys.pwrite('sfd', 'Q', 2n ** 61n + 3n);
      sys.openfd('dfd', m + '/big', O_RDONLY | O_DIRECT);
      r.readQ = hex('dfd', 3, 2n ** 61n + 2n);
      r.readZ = hex('dfd', 3, P60 - 1n);
      r.readY = hex('dfd', 3, P53 - 1n);
      r.sizeQ = String(sys.fstat('fd').size);
      // The largest size tmpfs takes, then one byte past the end of the largest file: as natively.
      sys.openfd('nfd', s + '/native', O_CREAT | O_RDWR, 0o644);
      r.truncMnt = err(() => sys.ftruncate('fd', 2n ** 63n - 1n));
      r.truncSrc = err(() => sys.ftruncate('nfd', 2n ** 63n - 1n));
      r.sizeMax = [String(sys.stat(m + '/big').size), String(sys.fstat('sfd').size)];
      r.efbigMnt = err(() => sys.pwrite('fd', 'x', 2n ** 63n - 1n));
      r.efbigSrc = err(() => sys.pwrite('nfd', 'x', 2n ** 63n - 1n));
      r.lastMnt = sys.pwrite('fd', 'L', 2n ** 63n - 2n);
      r.last = hex('sfd', 1, 2n ** 63n - 2n);
      r.head2 = hex('sfd', 4, 0);
      return r;
    `, [mnt, src]);
    assert.equal(r.w, [1, 1], 'both writes wrote one byte');
    assert.is(r.head, Buffer.from('head').toString('hex'), 'offset 0 was not overwritten');
    assert.is(r.at53, '005900', 'Y is at exactly 2^53+2 in SRC');
    assert.is(r.at60, '005a', 'Z is at exactly 2^60+1 in SRC (the last byte)');
    assert.is(r.srcSize, String(2n ** 60n + 2n));
    assert.is(r.mntSize, r.srcSize, 'stat through the mount: the exact size');
    assert.is(r.readQ, '0051', 'O_DIRECT read at 2^61+2 through the mount (Q, the last byte, at 2^61+3)');
    assert.is(r.readZ, '005a00');
    assert.is(r.readY, '005900');
    assert.is(r.sizeQ, String(2n ** 61n + 4n));
    assert.is(r.truncMnt, r.truncSrc, 'ftruncate to 2^63-1: as natively');
    assert.is(r.truncSrc, null);
    assert.equal(r.sizeMax, [String(2n ** 63n - 1n), String(2n ** 63n - 1n)], 'the size 2^63-1 exactly');
    assert.is(r.efbigMnt, r.efbigSrc, 'a write past the largest file fails as natively');
    assert.is(r.efbigSrc, 'EINVAL', '(pos + count overflows a loff_t)');
    assert.is(r.lastMnt, 1, 'the last byte a file can hold is written');
    assert.is(r.last, '4c');
    assert.is(r.head2, Buffer.from('head').toString('hex'));
    await cleanLog(fx);
  }, { tmpfs: true })));

test('beyond the source\'s maximum file size (ext4: 16 TiB) a write or truncate is EFBIG, as natively', timed(30_000, () =>
  withPt({}, async ({ src, mnt, fx }) => {
    const type = (await run('stat', ['-f', '-c', '%T', src], WAIT_MS)).stdout.trim();
    assert.is(type, 'ext2/ext3', 'SRC is the loop-mounted ext4 image');
    const r = await js(`
      const [m, s, offs] = a;
      const { O_CREAT, O_RDWR, O_RDONLY } = fs.constants;
      sys.openfd('fd', m + '/f', O_CREAT | O_RDWR, 0o644);
      sys.openfd('nfd', s + '/native', O_CREAT | O_RDWR, 0o644);
      const r = {};
      for (const off of offs) {
        r[String(off)] = [err(() => sys.pwrite('fd', 'x', off)), err(() => sys.pwrite('nfd', 'x', off)),
          err(() => sys.ftruncate('fd', off)), err(() => sys.ftruncate('nfd', off))];
      }
      sys.openfd('f', s + '/f', O_RDONLY);
      r.size = Number(sys.fstat('f').size);
      return r;
    `, [mnt, src, [2n ** 50n, 2n ** 53n + 2n, 2n ** 62n]]);
    for (const off of [2n ** 50n, 2n ** 53n + 2n, 2n ** 62n]) {
      assert.equal(r[String(off)], ['EFBIG', 'EFBIG', 'EFBIG', 'EFBIG'], `pwrite and ftruncate at ${off}: through the mount as natively`);
    }
    assert.is(r.size, 0, 'nothing was written anywhere (no write at the file position)');
    await cleanLog(fx);
  }, { ext4: true })));

test('fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range and lock ranges above 2^53 answer what SRC answers', timed(60_000, () =>
  withPt({ entryTimeout: 0, attrTimeout: 0 }, async ({ src, mnt, fx }) => {
    // One child does it all and keeps holding its lock; another process's open file asks F_GETLK.
    const holder = new AsUser();
    let r: any;
    try {
      r = await holder.run(PRELUDE + `
        const [m, s] = a;
        const { O_CREAT, O_RDWR, O_RDONLY } = fs.constants;
        const P = 2n ** 60n + 4096n, SEEK_DATA = 3, SEEK_HOLE = 4, F_SETLK = 6;
        sys.openfd('fd', m + '/f', O_CREAT | O_RDWR, 0o644);
        sys.openfd('sfd', s + '/f', O_RDWR);
        sys.pwrite('fd', 'Z', P + 1n);
        sys.fallocate('fd', 0, 2n ** 61n, 8192);
        const r = { size: [String(sys.fstat('fd').size), String(sys.fstat('sfd').size)], blocks: sys.fstat('sfd').blocks };
        sys.fallocate('fd', 1, 2n ** 62n + 1n, 4096); // FALLOC_FL_KEEP_SIZE
        r.keep = [String(sys.fstat('fd').size), String(sys.fstat('sfd').size), sys.fstat('sfd').blocks > r.blocks];
        const seek = (k, o, w) => { try { return String(sys.lseek(k, o, w)); } catch (e) { if (!e.code) throw e; return e.code; } };
        const seeks = [[2n ** 59n, SEEK_DATA], [P + 2n, SEEK_HOLE], [P + 4096n, SEEK_DATA], [2n ** 61n + 100n, SEEK_HOLE],
          [2n ** 62n, SEEK_DATA], [2n ** 61n + 8192n, SEEK_HOLE]];
        r.seekMnt = seeks.map(([o, w]) => seek('fd', o, w));
        r.seekSrc = seeks.map(([o, w]) => seek('sfd', o, w));
        // copy_file_range between two files of the mount, at offsets above 2^60
        sys.openfd('gfd', m + '/g', O_CREAT | O_RDWR, 0o644);
        r.copied = Number(sys.copyFileRange('fd', P, 'gfd', 2n ** 61n + 5n, 3));
        sys.openfd('g', s + '/g', O_RDONLY);
        r.copy = sys.pread('g', 3, 2n ** 61n + 5n).toString('hex');
        r.gsize = String(sys.fstat('g').size);
        // A lock far out, held by this process (F_SETLK: a POSIX record lock).
        sys.fcntlLock('fd', F_SETLK, L.F_WRLCK, 2n ** 62n + 1n, 10);
        r.pid = process.pid;
        return r;
      `, [mnt, src]);
      r.getlk = await js(`
        const F_GETLK = 5;
        sys.openfd('c', a[0], fs.constants.O_RDWR);
        const getlk = (start) => { const [t, s, l, pid] = sys.fcntlLock('c', F_GETLK, L.F_WRLCK, start, 0); return [t, String(s), String(l), pid]; };
        return [getlk(0), getlk(2n ** 62n + 11n)];
      `, [join(mnt, 'f')]);
    } finally {
      holder.kill();
    }
    const P = 2n ** 60n + 4096n;
    assert.equal(r.size, [String(2n ** 61n + 8192n), String(2n ** 61n + 8192n)], 'fallocate at 2^61 grew the file to exactly its end');
    assert.equal(r.keep, [String(2n ** 61n + 8192n), String(2n ** 61n + 8192n), true], 'KEEP_SIZE at 2^62+1 allocated without growing');
    assert.equal(r.seekMnt, r.seekSrc, 'SEEK_DATA/SEEK_HOLE through the mount answer what SRC answers');
    assert.is(r.seekSrc[0], String(P), 'the data page at 2^60+4096');
    assert.is(r.seekSrc[4], 'ENXIO', 'SEEK_DATA past the end: ENXIO, through the mount too');
    assert.is(r.copied, 3);
    assert.is(r.copy, '005a00', 'copy_file_range copied from 2^60+4096 to 2^61+5');
    assert.is(r.gsize, String(2n ** 61n + 8n));
    const [whole, after] = r.getlk as [number, string, string, number][][];
    assert.equal(whole, [1, String(2n ** 62n + 1n), '10', r.pid], 'F_GETLK names the lock at 2^62+1 exactly, and its holder');
    assert.is(after[0], 2, 'nothing locked past it (F_UNLCK)');
    await cleanLog(fx);
  }, { tmpfs: true })));

// ---- 3. inode numbers above 2^53 ---------------------------------------------------------------

test('a source whose inode numbers round to one double (2^60+1, 2^60+2) keeps two files with their exact st_ino', timed(30_000, async () => {
  const base = tempDir('tsfuse-test-bigino-');
  bases.push(base);
  const bigsrc = join(base, 'src');
  mkdirSync(bigsrc);
  const server = startNode('test/fixtures/serve-bigino.js', [bigsrc]);
  try {
    await server.waitFor('READY\n');
    await withPt({}, async ({ mnt, fx }) => {
      const r = await js(`
        const [m, s] = a;
        const abc = ['a', 'b', 'c'];
        // statx: st_ino unsigned and exact; getdents64: d_ino (what scandir's inode() gives)
        const view = async (d) => ({
          stat: Object.fromEntries(abc.map((n) => [n, String(sys.statx(d + '/' + n, 0).ino)])),
          dino: Object.fromEntries((await sys.dirents(d)).filter(([n]) => !['.', '..'].includes(n.toString())).map(([n, ino]) => [n.toString(), String(ino)])),
          data: Object.fromEntries(abc.map((n) => [n, sys.readFile(d + '/' + n).toString()])),
        });
        sys.openfd('fa', m + '/a', fs.constants.O_RDONLY);
        sys.openfd('fb', m + '/b', fs.constants.O_RDONLY);
        const both = [sys.read('fa', 10).toString(), sys.read('fb', 10).toString()];
        return { src: await view(s), mnt: await view(m), both };
      `, [mnt, bigsrc]);
      const want = { a: String(2n ** 60n + 1n), b: String(2n ** 60n + 2n), c: String(2n ** 53n + 1n) };
      assert.equal(r.src.stat, want, 'the source fixture reports the huge numbers');
      assert.equal(r.mnt.stat, want, 'stat through the passthrough shows the source\'s exact st_ino');
      assert.equal(r.mnt.dino, want, 'and readdir\'s d_ino too');
      assert.equal(r.mnt.data, { a: 'A\n', b: 'B\n', c: 'C\n' }, 'a and b stay two files');
      assert.equal(r.both, ['A\n', 'B\n'], 'open at once, each reads its own content');
      await cleanLog(fx);
    }, { src: bigsrc });
  } finally {
    await stop(server);
    forceUnmount(bigsrc);
    cleanup(base);
  }
}));

test('an overlayfs source with xino (inode numbers 2^63+n from the lower layer) keeps its files apart', timed(60_000, async () => {
  // The report: overlayfs with xino=on gives lower-layer files inode numbers with the
  // top bit set (the layer index); as doubles 2^63+2 and 2^63+3 were one key, and reading b
  // returned a's data.
  const base = tempDir('tsfuse-test-ovl-');
  bases.push(base);
  const [lower, upper, ovl] = ['lower', 'upper', 'ovl'].map((d) => join(base, d));
  for (const d of [lower, upper, ovl]) mkdirSync(d);
  const mounted: string[] = [];
  const mnt = (args: string[], at: string) => { execFileSync('mount', [...args, at]); mounted.unshift(at); };
  try {
    mnt(['-t', 'tmpfs', 'tsfuse-test-lower'], lower);
    mnt(['-t', 'tmpfs', 'tsfuse-test-upper'], upper);
    for (const n of ['a', 'b', 'c']) writeFileSync(join(lower, n), `${n.toUpperCase()}\n`);
    mkdirSync(join(upper, 'up'));
    mkdirSync(join(upper, 'work'));
    writeFileSync(join(upper, 'up', 'u'), 'U\n');
    mnt(['-t', 'overlay', 'tsfuse-test-ovl', '-o', `lowerdir=${lower},upperdir=${upper}/up,workdir=${upper}/work,xino=on`], ovl);
    // Node's bigint stat reads st_ino as signed (BigInt64Array): take it back to u64.
    const ino = (p: string) => BigInt.asUintN(64, statSync(p, { bigint: true }).ino);
    assert.ok(ino(join(ovl, 'a')) >= 2n ** 63n, `xino gives the lower layer's files the top bit (${ino(join(ovl, 'a'))})`);
    await withPt({ entryTimeout: 0, attrTimeout: 0 }, async ({ mnt: m, fx }) => {
      for (const n of ['a', 'b', 'c', 'u']) {
        assert.is(readFileSync(join(m, n), 'utf8'), `${n.toUpperCase()}\n`, `${n} reads its own data`);
        assert.is(ino(join(m, n)), ino(join(ovl, n)), `${n}: st_ino through the mount is the overlay's, exactly`);
      }
      const dino = Object.fromEntries(readdirSync(m).map((n) => [n, ino(join(m, n))]));
      assert.is(new Set(Object.values(dino).map(String)).size, 4, 'four distinct inodes');
      writeFileSync(join(m, 'b'), 'changed\n'); // copy-up on the overlay: b moves to the upper layer
      assert.is(readFileSync(join(m, 'b'), 'utf8'), 'changed\n');
      assert.is(readFileSync(join(m, 'a'), 'utf8'), 'A\n', 'a is untouched by the write to b');
      assert.is(readFileSync(join(upper, 'up', 'b'), 'utf8'), 'changed\n', 'the write went to b on the overlay');
      await cleanLog(fx);
    }, { src: ovl });
  } finally {
    for (const d of mounted) {
      try { execFileSync('umount', [d]); } catch { execFileSync('umount', ['-l', d]); }
    }
    cleanup(base);
  }
}));

// ---- 4. the umask ------------------------------------------------------------------------------

test('constructing a Passthrough leaves the process umask alone', timed(10_000, async () => {
  const dir = tempDir('tsfuse-test-umask-');
  try {
    const before = umaskOf('self');
    const fs = new Passthrough(dir, { nofile: 1 });
    assert.is(umaskOf('self'), before);
    fs.destroy();
  } finally {
    cleanup(dir);
  }
}));

for (const dp of [true, false]) {
  test(`creations get mode & ~(caller's umask) and the server's umask never changes (default_permissions ${dp ? 'on: DONT_MASK' : 'off: the kernel masks'})`, timed(30_000, () =>
    withPt({ defaultPermissions: dp }, async ({ src, mnt, fx }) => {
      const mine = umaskOf('self');
      const pid = fx.child.pid!;
      assert.is(umaskOf(pid), mine, 'the server runs with the umask it inherited');
      await js(`
        const m = a[0];
        const { O_CREAT, O_WRONLY } = fs.constants;
        for (const mask of [0o027, 0o000, 0o777]) {
          sys.umask(mask);
          const k = mask.toString(8);
          sys.open(m + '/f' + k, O_CREAT | O_WRONLY, 0o666);
          sys.mkdir(m + '/d' + k, 0o777);
          sys.mkfifo(m + '/p' + k, 0o666);
          const t = sys.openfd('t', m, L.O_TMPFILE | O_WRONLY, 0o666);
          sys.linkat('/proc/self/fd/' + t, m + '/t' + k, L.AT_SYMLINK_FOLLOW);
          sys.close('t');
        }
      `, [mnt]);
      for (const [mask, k] of [[0o027, '27'], [0o000, '0'], [0o777, '777']] as const) {
        const mode = (n: string) => statSync(join(src, n + k)).mode & 0o7777;
        assert.is(mode('f').toString(8), (0o666 & ~mask).toString(8), `create under umask ${k}`);
        assert.is(mode('d').toString(8), (0o777 & ~mask).toString(8), `mkdir under umask ${k}`);
        assert.is(mode('p').toString(8), (0o666 & ~mask).toString(8), `mkfifo under umask ${k}`);
        assert.is(mode('t').toString(8), (0o666 & ~mask).toString(8), `O_TMPFILE under umask ${k}`);
      }
      assert.is(umaskOf(pid), mine, 'the server\'s umask is unchanged after the creations');
      await cleanLog(fx);
    })));
}

test('with default_permissions (POSIX ACLs, DONT_MASK) a parent\'s default ACL wins over the caller\'s umask', timed(30_000, () =>
  withPt({ defaultPermissions: true }, async ({ src, mnt, fx }) => {
    mkdirSync(join(src, 'acl'));
    mkdirSync(join(src, 'plain'));
    const probe = await runOps([['setxattr', join(src, 'acl'), 'system.posix_acl_default', acl([1, 7, U], [4, 7, U], [0x20, 7, U])]])
      .then(() => null, (e: { code?: string }) => e.code ?? String(e));
    if (probe !== null) {
      console.log(`  default ACL: skipped, the source filesystem refuses POSIX ACLs (${probe})`);
      return;
    }
    await js(`
      const m = a[0];
      sys.umask(0o077);
      for (const d of ['/acl', '/plain']) {
        sys.open(m + d + '/f', fs.constants.O_CREAT | fs.constants.O_WRONLY, 0o666);
        sys.mkdir(m + d + '/d', 0o777);
      }
    `, [mnt]);
    const mode = (p: string) => (statSync(join(src, p)).mode & 0o7777).toString(8);
    assert.is(mode('acl/f'), '666', 'a file below the default ACL (rwx for all) ignores umask 077');
    assert.is(mode('acl/d'), '777', 'so does a directory');
    assert.is(mode('plain/f'), '600', 'without a default ACL the umask applies');
    assert.is(mode('plain/d'), '700');
    await cleanLog(fx);
  })));

// ---- leftovers -------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const left = mounts.filter((m) => bases.some((x) => m.startsWith(x)));
  assert.equal(left, []);
}));

test.run();
