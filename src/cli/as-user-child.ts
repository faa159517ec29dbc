/**
 * The child of `AsUser` (as-user.ts): takes the credentials given in argv[2],
 * then runs one body per line of stdin and answers one line each on stdout.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { sys as pt, L, STX, STXB, STX_NUM, STX_BIG } from '../passthrough/sys.js';
import { decode, encode, type As } from './as-user.js';

type P = string | Uint8Array;

function passwdOf(uid: number): { name: string; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 4 && Number(f[2]) === uid) return { name: f[0], gid: Number(f[3]) };
    }
  } catch { /* no passwd: no user */ }
  return undefined;
}

/** The credential calls (Node has them on POSIX; its types mark them optional). */
const ids = process as unknown as {
  initgroups(user: string, extra: number): void; setgroups(g: number[]): void; setgid(g: number): void; setuid(u: number): void;
};

function become(as: As): void {
  if (as.uid !== undefined) {
    const pw = passwdOf(as.uid);
    const gid = as.gid ?? pw?.gid ?? as.uid;
    const groups = as.groups ?? 'login';
    if (groups === 'login') {
      if (pw) ids.initgroups(pw.name, gid);
      else ids.setgroups([]);
    } else ids.setgroups(groups);
    ids.setgid(gid);
    ids.setuid(as.uid);
  } else {
    if (Array.isArray(as.groups)) ids.setgroups(as.groups);
    if (as.gid !== undefined) ids.setgid(as.gid);
  }
  process.umask(as.umask ?? 0);
}

let umask = 0;
const fds = new Map<unknown, number>();
const fdOf = (k: unknown): number => fds.get(k) ?? (typeof k === 'number' ? k : (() => { throw new Error(`no fd ${String(k)}`); })());
const buf = (p: P): string | Buffer => (typeof p === 'string' ? p : Buffer.from(p));
const ts = (t: 'now' | 'omit' | [number, number]): [number, number] =>
  t === 'now' ? [0, L.UTIME_NOW] : t === 'omit' ? [0, L.UTIME_OMIT] : t;
/** glibc's makedev. */
const makedev = (major: number, minor: number): bigint => {
  const M = BigInt(major), m = BigInt(minor);
  return ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn);
};
const st = (s: fs.BigIntStats) => ({
  mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid), nlink: Number(s.nlink), size: s.size, ino: s.ino, dev: s.dev,
  rdev: s.rdev, blocks: s.blocks, atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
});

/** What bodies get as `sys`: Node's calls with Linux's argument conventions, and what Node lacks. */
const sys = {
  /** Runs the function named `name` with `args` (the `runOps` vocabulary). */
  async op(name: string, ...args: unknown[]): Promise<unknown> {
    const f = (sys as unknown as Record<string, (...x: unknown[]) => unknown>)[name];
    if (typeof f !== 'function' || name === 'op') throw new Error(`as-user: no op ${name}`);
    return f(...args);
  },
  umask(m: number): number { umask = m; return process.umask(m); },
  openfd(k: unknown, p: P, flags: number, mode = 0o644): number { const fd = fs.openSync(buf(p), flags, mode); fds.set(k, fd); return fd; },
  open(p: P, flags: number, mode = 0o644): void { fs.closeSync(fs.openSync(buf(p), flags, mode)); },
  close(k: unknown): void { fs.closeSync(fdOf(k)); fds.delete(k); },
  fchmod(k: unknown, m: number): void { fs.fchmodSync(fdOf(k), m); },
  fchown(k: unknown, u: number, g: number): void { fs.fchownSync(fdOf(k), u, g); },
  ftruncate(k: unknown, n: number | bigint): void { pt.ftruncate(fdOf(k), BigInt(n)); },
  fstat(k: unknown) { return st(fs.fstatSync(fdOf(k), { bigint: true })); },
  fsync(k: unknown): void { fs.fsyncSync(fdOf(k)); },
  /** syncfs(2) of the filesystem holding fd `k`. */
  syncfs(k: unknown): void { pt.syncfs(fdOf(k)); },
  /** statfs(2) of `p` (through an O_PATH fd): the fields statvfs(3) gives, as numbers. */
  statfs(p: P) {
    const fd = fs.openSync(buf(p), L.O_PATH), o = new BigUint64Array(8);
    try { pt.fstatfs(fd, o); } finally { fs.closeSync(fd); }
    const [blocks, bfree, bavail, files, ffree, bsize, namemax, frsize] = Array.from(o, Number);
    return { bsize, frsize, blocks, bfree, bavail, files, ffree, namemax };
  },
  /** write(2) at the file position; `s` a string (UTF-8) or bytes. */
  write(k: unknown, s: string | Uint8Array): number { return fs.writeSync(fdOf(k), typeof s === 'string' ? Buffer.from(s) : s); },
  read(k: unknown, n: number): Buffer { const b = Buffer.alloc(n); return b.subarray(0, fs.readSync(fdOf(k), b, 0, n, null)); },
  /** pread(2) of up to `n` bytes at a 64-bit `pos`. */
  pread(k: unknown, n: number, pos: number | bigint): Buffer { const b = Buffer.alloc(n); return b.subarray(0, pt.pread(fdOf(k), b, BigInt(pos))); },
  pwrite(k: unknown, data: string | Uint8Array, pos: number | bigint): number {
    return pt.pwrite(fdOf(k), typeof data === 'string' ? Buffer.from(data) : data, BigInt(pos));
  },
  lseek(k: unknown, off: number | bigint, whence: number): bigint { return pt.lseek(fdOf(k), BigInt(off), whence); },
  fallocate(k: unknown, mode: number, off: number | bigint, len: number | bigint): void { pt.fallocate(fdOf(k), mode, BigInt(off), BigInt(len)); },
  copyFileRange(ki: unknown, offIn: number | bigint, ko: unknown, offOut: number | bigint, len: number | bigint): bigint {
    return pt.copyFileRange(fdOf(ki), BigInt(offIn), fdOf(ko), BigInt(offOut), BigInt(len), 0);
  },
  flock(k: unknown, op: number): void { pt.flock(fdOf(k), op); },
  /** fcntl(F_OFD_*) locks: [type, start, len, pid]. */
  fcntlLock(k: unknown, cmd: number, type: number, start: number | bigint, len: number | bigint) {
    return pt.fcntlLock(fdOf(k), cmd, type, BigInt(start), BigInt(len), 0);
  },
  stat(p: P) { return st(fs.statSync(buf(p), { bigint: true })); },
  lstat(p: P) { return st(fs.lstatSync(buf(p), { bigint: true })); },
  /** statx(2) without following a final symlink: mode, uid, gid, nlink, ino, size, blocks, times, the mask of what the
   * filesystem filled (STATX_*) and btime (meaningful only with STATX_BTIME in the mask). */
  statx(p: P, flags: number = L.AT_SYMLINK_NOFOLLOW) {
    const num = new Float64Array(STX_NUM), big = new BigUint64Array(STX_BIG);
    pt.statx(L.AT_FDCWD, p, flags, num, big);
    return {
      mode: num[STX.mode], uid: num[STX.uid], gid: num[STX.gid], nlink: num[STX.nlink], ino: big[STXB.ino], size: big[STXB.size],
      blocks: big[STXB.blocks], rdevMajor: num[STX.rdevMajor], rdevMinor: num[STX.rdevMinor],
      atime: [num[STX.atime], num[STX.atimeNs]], mtime: [num[STX.mtime], num[STX.mtimeNs]], ctime: [num[STX.ctime], num[STX.ctimeNs]],
      btime: [num[STX.btime], num[STX.btimeNs]], mask: num[STX.mask],
    };
  },
  mkdir(p: P, mode = 0o777): void { fs.mkdirSync(buf(p), mode); },
  rmdir(p: P): void { fs.rmdirSync(buf(p)); },
  unlink(p: P): void { fs.unlinkSync(buf(p)); },
  rename(a: P, b: P): void { fs.renameSync(buf(a), buf(b)); },
  renameat2(a: P, b: P, flags: number): void { pt.renameat2(L.AT_FDCWD, a, L.AT_FDCWD, b, flags, -1, -1); },
  symlink(target: P, p: P): void { fs.symlinkSync(buf(target), buf(p)); },
  readlink(p: P): Buffer { return pt.readlinkat(L.AT_FDCWD, p); },
  /** readlinkat(2) relative to the fd of key `k`; `p` '' reads the symlink an O_PATH|O_NOFOLLOW fd is open on. */
  readlinkat(k: unknown, p: P): Buffer { return pt.readlinkat(fdOf(k), p); },
  /** link(2): a symlink `a` is linked itself, not followed. */
  link(a: P, b: P): void { pt.linkat(L.AT_FDCWD, a, L.AT_FDCWD, b, 0, -1, -1); },
  /** linkat(2) with `flags` (AT_SYMLINK_FOLLOW: link an O_TMPFILE fd through /proc/self/fd/N). */
  linkat(a: P, b: P, flags: number): void { pt.linkat(L.AT_FDCWD, a, L.AT_FDCWD, b, flags, -1, -1); },
  chmod(p: P, m: number): void { fs.chmodSync(buf(p), m); },
  chown(p: P, u: number, g: number): void { fs.chownSync(buf(p), u, g); },
  lchown(p: P, u: number, g: number): void { fs.lchownSync(buf(p), u, g); },
  /** truncate(2): by path, not open+ftruncate (Node's truncate), so a FUSE server gets SETATTR without a file handle. */
  truncate(p: P, n: number | bigint): void { pt.truncate(p, BigInt(n)); },
  mknod(p: P, mode: number, major = 0, minor = 0): void { pt.mknodat(L.AT_FDCWD, p, mode, makedev(major, minor), -1, -1, umask); },
  mkfifo(p: P, mode = 0o666): void { pt.mknodat(L.AT_FDCWD, p, fs.constants.S_IFIFO | (mode & 0o7777), 0, -1, -1, umask); },
  /** utimensat(2): each time is [sec, nsec], 'now' or 'omit'. */
  utimensat(p: P, a: 'now' | 'omit' | [number, number], m: 'now' | 'omit' | [number, number], nofollow = false): void {
    const [as, ans] = ts(a), [ms, mns] = ts(m);
    pt.utimensat(L.AT_FDCWD, p, as, ans, ms, mns, nofollow ? L.AT_SYMLINK_NOFOLLOW : 0);
  },
  /** access(2) with the real ids (faccessat without AT_EACCESS). */
  access(p: P, mode: number): void { pt.faccessat(L.AT_FDCWD, p, mode, 0, -1, -1); },
  readdir(p: P): Buffer[] { return fs.readdirSync(buf(p), { encoding: 'buffer' }); },
  /** One getdents64(2) of up to `size` bytes on the directory fd `k`: [name, d_ino, d_type] per
   * entry (Node's Dirent has no d_ino); [] at the end. */
  async getdents(k: unknown, size = 32768): Promise<[Buffer, bigint, number][]> {
    const b = Buffer.alloc(size), n = await pt.getdentsAsync(fdOf(k), b, false, 0n), out: [Buffer, bigint, number][] = [];
    for (let i = 0; i < n; i += b.readUInt16LE(i + 16)) out.push([Buffer.from(b.subarray(i + 19, b.indexOf(0, i + 19))), b.readBigUInt64LE(i), b[i + 18]]);
    return out;
  },
  /** Every entry of directory `p` as getdents64 of `size` bytes gives them: [name, d_ino, d_type]. */
  async dirents(p: P, size = 32768): Promise<[Buffer, bigint, number][]> {
    const fd = fs.openSync(buf(p), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY), out: [Buffer, bigint, number][] = [];
    try { for (let e; (e = await sys.getdents(fd, size)).length;) out.push(...e); } finally { fs.closeSync(fd); }
    return out;
  },
  readFile(p: P): Buffer { return fs.readFileSync(buf(p)); },
  writeFile(p: P, data: string | Uint8Array, mode = 0o644): void { fs.writeFileSync(buf(p), data, { mode }); },
  getxattr(p: P, name: P): Buffer { return pt.getxattr(p, name); },
  setxattr(p: P, name: P, value: string | Uint8Array, flags = 0): void { pt.setxattr(p, name, typeof value === 'string' ? Buffer.from(value) : value, flags); },
  /** The names, as bytes. */
  listxattr(p: P): Buffer[] {
    const raw = pt.listxattr(p);
    const out: Buffer[] = [];
    for (let i = 0; i < raw.length;) { const z = raw.indexOf(0, i); out.push(raw.subarray(i, z)); i = z + 1; }
    return out;
  },
  removexattr(p: P, name: P): void { pt.removexattr(p, name); },
  /** One listxattr(2) with a `size`-byte buffer: the count (size 0: the size probe), else the bytes it gave. */
  listxattrSized(p: P, size: number): number | Buffer { const b = Buffer.alloc(size), n = pt.listxattrInto(p, b); return size ? b.subarray(0, n) : n; },
  /** One getxattr(2) with a `size`-byte buffer: the count (size 0: the size probe), else the bytes it gave. */
  getxattrSized(p: P, name: P, size: number): number | Buffer { const b = Buffer.alloc(size), n = pt.getxattrInto(p, name, b); return size ? b.subarray(0, n) : n; },
  /** Writes `text` into the fifo `p` from one open and reads it back through another. */
  async fifo_io(p: P, text: string): Promise<string> {
    const w = (async () => { const h = await fsp.open(buf(p), 'w'); try { await h.write(text); } finally { await h.close(); } })();
    const data = await fsp.readFile(buf(p), 'utf8');
    await w;
    return data;
  },
};

export type Sys = typeof sys;

// eslint-disable-next-line @typescript-eslint/no-empty-function
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...a: string[]) => (...x: unknown[]) => Promise<unknown>;

function main(): void {
  const as = decode(process.argv[2] ?? '{}') as As;
  become(as);
  umask = as.umask ?? 0;
  const rl = createInterface({ input: process.stdin });
  // One body at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      const { i, body, args } = decode(line) as { i: number; body: string; args: unknown[] };
      let out: string;
      try {
        const f = new AsyncFunction('a', 'sys', 'fs', 'fsp', 'Buffer', 'L', body);
        out = encode({ i, ok: (await f(args, sys, fs, fsp, Buffer, L)) ?? null });
      } catch (e) {
        const x = e as NodeJS.ErrnoException;
        out = encode({ i, err: { message: x?.message ?? String(e), code: typeof x?.code === 'string' ? x.code : undefined, errno: x?.errno } });
      }
      process.stdout.write(out + '\n');
    });
  });
}

main();
