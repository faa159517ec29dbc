/**
 * The passthrough filesystem: mirrors a source directory, built on FuseInode.
 *
 * - Every inode holds one O_PATH|O_NOFOLLOW fd, opened with
 *   openat(parentFd, name) — never an absolute path, so deep trees work — and
 *   is keyed by (st_dev, st_ino, mnt_id), so all hard links reach one inode.
 *   In file-handle mode it holds a name_to_handle_at handle instead and opens
 *   an fd only for the duration of one operation.
 * - Unlink frees space: when the last name we know of an inode goes and no
 *   file of it is open, and the source says it has no link left (st_nlink 0),
 *   its fd is closed at once (not at FORGET) and its key is released, so a new
 *   file that reuses the inode number becomes a new inode. GETATTR of the
 *   closed inode (the kernel may still hold it) answers its last attributes.
 *   An inode that still has a link we did not know of (made behind the mount)
 *   keeps its fd — it holds no space — and a later lookup of that link finds it.
 * - Keys: (st_dev, st_ino, mnt_id) while an fd pins the inode (its number
 *   cannot be reused while we hold it); in file-handle mode the handle itself,
 *   which carries the generation, so a reused number is never a false alias.
 *   A lookup builds a new object with its own fd; the tree merges it into the
 *   registered inode of the same key when it hands it out (acceptAlias closes
 *   the newcomer's fd), in the same synchronous turn as a FORGET could drop it.
 * - No races on the fd: every native call is synchronous (a creation waits for
 *   the addon's creator thread) and reads `inode.fd` immediately before the
 *   call, never across an await, so a close can never interleave with a use,
 *   and a recycled fd number is never used by a stale holder.
 * - As the caller: name resolution, creation and open run with
 *   setfsuid/setfsgid of the request, so the source filesystem checks
 *   permissions and assigns ownership for the caller. Creations run on the
 *   addon's creator thread, whose umask is its own (the process umask is never
 *   touched): 0 when the kernel applied the caller's, or, with POSIX ACLs on
 *   (DONT_MASK), the caller's, which the source ignores where the parent has a
 *   default ACL. Supplementary groups are not switched (only the primary gid).
 * - Exact values: names reach the source as the kernel's bytes (nameToBytes)
 *   and come back losslessly (nameFromBytes); inode numbers, sizes and
 *   offsets are exact over 64 bits (bigint), and an offset the source cannot
 *   take gets its errno (pread/pwrite at 2^63 or more: EINVAL).
 * - Nothing escapes the source: names with '/', '.' and '..' are refused;
 *   symlinks are returned as links and never followed by the server.
 */
import { chmodSync, closeSync, constants as C } from 'node:fs';
import {
  callerCreds, FuseError, FuseInode, InodeTree, LOCK_TO_EOF, type Attr, type Context, type Created, type DirStream,
  type FileHandle, type InitInfo, type InodeOp, type Lock, type SetattrChanges, type StatFs, type StreamEntry,
} from '../api/index.js';
import { EINVAL, EMFILE, ENFILE, ENOENT, EOPNOTSUPP, errnoName, errnoOf, FUSE_WRITE_CACHE, FUSE_WRITE_KILL_SUIDGID, InitFlag, nameFromBytes, nameToBytes } from '../abi/index.js';
import { has } from '../transport/index.js';
import { L, STX, STX_BIG, STX_NUM, STXB, sys } from './sys.js';

const FMODE_EXEC = L.FMODE_EXEC;
/** O_NOATIME (asm-generic/fcntl.h). */
const O_NOATIME = 0o1000000;

/** How inodes are kept: 'never' an O_PATH fd each; 'prefer' file handles where the source supports them, else fds; 'mandatory' file handles or refuse to start. */
export type InodeHandleMode = 'never' | 'prefer' | 'mandatory';

/** Options of a Passthrough. */
export interface PassthroughOptions {
  /** Key and reopen inodes through file handles instead of holding an fd each. Default 'never'. */
  inodeHandles?: InodeHandleMode;
  /** Serve requests as the calling uid/gid (needs root). Default: true when running as root. */
  asCaller?: boolean;
  /** Raise RLIMIT_NOFILE to this (up to the hard limit) at start: one fd per inode the kernel
   * holds adds up. Default: leave it alone (a library changes no process-wide state unless
   * asked); the `tsfuse` command and examples/passthrough.ts ask for 1048576. */
  nofile?: number;
  /** How long (ms) a caller's supplementary groups read from /proc/PID/status are reused
   * for that thread while its uid and gid stay the same (see callerCreds). Default 100;
   * 0 reads them for every request. */
  groupsMaxAge?: number;
  /** Where file-handle mode falls back to fds ('prefer'), it says so here (one line). Default: stderr. */
  log?: (line: string) => void;
  /**
   * Kernel passthrough (Linux 6.9+, FUSE_PASSTHROUGH): regular files are opened with
   * FOPEN_PASSTHROUGH and a backing id, so the kernel reads, writes and maps the source file
   * itself and no READ or WRITE reaches the server. One backing id per inode, shared by its
   * opens and closed after the last release. Needs CAP_SYS_ADMIN and no writeback cache;
   * where the kernel refuses, files are served normally and one line says why. Writes then
   * run with the server's credentials in the kernel: a write by a non-root caller does not
   * clear setuid/setgid as it would through the server. Default false.
   */
  kernelPassthrough?: boolean;
  /**
   * The kernel's writeback cache (FUSE_WRITEBACK_CACHE): writes are gathered in the page
   * cache and sent in large WRITEs later; the kernel keeps mtime and size itself. Files
   * opened write-only are opened read-write on the source (the kernel reads to fill partial
   * pages) and O_APPEND is left to the kernel (it sends the offsets). Excludes kernel
   * passthrough. Default false (as libfuse and go-fuse).
   */
  writebackCache?: boolean;
  /**
   * FOPEN_KEEP_CACHE when a file is unchanged since it was last opened (same size and
   * mtime at open as at the previous open's release): its cached pages survive the open.
   * Default true, except on a strictatime mount (every read must reach the source to move
   * its atime).
   */
  keepCache?: boolean;
}

const EUID = process.geteuid?.() ?? -1;
const EGID = process.getegid?.() ?? -1;

/** statx output, filled by each sys.statx call and read right after it (one thread). */
const st = new Float64Array(STX_NUM);
const stBig = new BigUint64Array(STX_BIG);
const statbuf = new BigUint64Array(9);

/** The kernel's 32-bit dev encoding (new_encode_dev), as fuse_attr.rdev carries it. */
export function encodeFuseDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}
/** glibc makedev from the kernel's 32-bit encoding (MKNOD's rdev). */
function devFromFuse(rdev: number): number {
  const major = (rdev & 0xfff00) >>> 8;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  return ((major & 0xfff) << 8) + (minor & 0xff) + (minor & ~0xff) * 4096 + Math.floor(major / 4096) * 2 ** 32;
}

/** The exact bytes of `name`, a name of one directory entry ('', '.', '..', '/' and NUL refused). */
function checkName(name: string): Buffer {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FuseError('EINVAL', `refusing name ${JSON.stringify(name)}`);
  }
  try {
    return nameToBytes(name);
  } catch {
    throw new FuseError('EINVAL', `name ${JSON.stringify(name)} names no bytes`);
  }
}
/** The bytes of a name that need not be a directory entry's (xattr names, symlink targets). */
function bytesOf(name: string): Buffer {
  try {
    return nameToBytes(name);
  } catch {
    throw new FuseError('EINVAL', `name ${JSON.stringify(name)} names no bytes`);
  }
}

function attrFromStatx(): Attr {
  return {
    ino: stBig[STXB.ino], mode: st[STX.mode], nlink: st[STX.nlink], uid: st[STX.uid], gid: st[STX.gid],
    rdev: encodeFuseDev(st[STX.rdevMajor], st[STX.rdevMinor]), size: stBig[STXB.size], blocks: stBig[STXB.blocks],
    blksize: st[STX.blksize], atime: [st[STX.atime], st[STX.atimeNs]],
    mtime: [st[STX.mtime], st[STX.mtimeNs]], ctime: [st[STX.ctime], st[STX.ctimeNs]],
  };
}

/**
 * An fd that I/O on the thread pool may be using: closed only once no call is
 * in flight (a RELEASE can overtake a READ whose caller was interrupted: the
 * fd number must not be reused under it).
 */
class SharedFd {
  private busy = 0;
  private closing = false;
  constructor(public fd: number) {}
  get open(): boolean { return this.fd >= 0 && !this.closing; }
  /** Runs `io` with the fd; the fd stays open until the promise settles. */
  async use<T>(io: (fd: number) => Promise<T>): Promise<T> {
    if (!this.open) throw new FuseError('EBADF');
    this.busy++;
    try {
      return await io(this.fd);
    } finally {
      if (--this.busy === 0 && this.closing) this.closeNow();
    }
  }
  close(): void {
    if (this.fd < 0 || this.closing) return;
    this.closing = true;
    if (this.busy === 0) this.closeNow();
  }
  private closeNow(): void {
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }
}

/** How data I/O of a source mount runs. */
const enum IoMode {
  /** At once: memory filesystems (tmpfs, ramfs) never wait for a device. */
  Now,
  /** What can be done without blocking at once (RWF_NOWAIT), the rest on the thread pool. */
  Nowait,
  /** On the thread pool (FUSE, network and other sources that cannot say whether they would block). */
  Pool,
}
const TMPFS_MAGIC = 0x01021994n;
const RAMFS_MAGIC = 0x858458f6n;
/** `sys.pread` or `sys.pwrite` now, as a byte count or −errno (never throws). */
function ioNow(io: (fd: number, b: Uint8Array, pos: bigint) => number, fd: number, b: Uint8Array, pos: bigint): number {
  try { return io(fd, b, pos); } catch (e) { return -(errnoOf((e as NodeJS.ErrnoException).code ?? 'EIO') ?? 5); }
}

/** The largest offset a loff_t holds. */
const MAX_LOFF = 2n ** 63n - 1n;
/** Replies a READ makes at once are built here (written before the next request is read). */
const scratch = Buffer.allocUnsafe(1 << 20);

/** An open file of the source. Data I/O runs on the thread pool (a slow source stalls
 * only the requests that wait for it). */
class PtHandle implements FileHandle {
  readonly file: SharedFd;
  /** The OPEN reply's flags: FOPEN_PASSTHROUGH with the inode's backing id (kernel passthrough). */
  options: { backingId?: number; keepCache?: boolean } | undefined;
  /** The kernel passthrough backing this open holds a count of (see PtInode.backing). */
  backing: Backing | undefined;
  /** Opened for writing (its release drops the keep_cache stamp: see PtInode.unstamp). */
  writable = false;
  constructor(readonly inode: PtInode, fd: number) { this.file = new SharedFd(fd); }
  /** The fd for synchronous calls (−1 once released). */
  get fd(): number { return this.file.open ? this.file.fd : -1; }

  /** What the page cache has is read at once (preadv2 RWF_NOWAIT, into a buffer reused for
   * replies made at once: a result returned synchronously is valid until the next read of
   * any handle, as the server writes it out at once); the rest, or all of it when it would
   * block, on the thread pool. */
  read(_ctx: Context, offset: bigint, size: number): Uint8Array | Promise<Uint8Array> {
    const fd = this.fd;
    let got = 0;
    const mode = fd >= 0 ? this.inode.fs.ioMode(this.inode.mntId, fd) : IoMode.Pool;
    if (mode !== IoMode.Pool) {
      const buf = size <= scratch.length ? scratch : Buffer.allocUnsafe(size);
      const n = mode === IoMode.Now ? ioNow(sys.pread, fd, buf.subarray(0, size), offset) : sys.preadNowait(fd, buf.subarray(0, size), offset, 0);
      if (n === size || n === 0) return buf.subarray(0, n); // all of it, or the end of the file
      if (n === -EOPNOTSUPP || n === -EINVAL && offset < MAX_LOFF) this.inode.fs.noNowait(this.inode.mntId); // the source cannot say
      if (n > 0) {
        got = n;
        const own = Buffer.allocUnsafe(size); // the rest comes later: off the shared buffer
        own.set(buf.subarray(0, n));
        return this.file.use(async (f) => own.subarray(0, got + await sys.preadAsync(f, own.subarray(got), offset + BigInt(got))));
      }
    }
    const buf = Buffer.allocUnsafe(size);
    return this.file.use(async (f) => buf.subarray(0, await sys.preadAsync(f, buf, offset)));
  }
  /** Written at once when it needs no blocking (pwritev2 RWF_NOWAIT), else on the thread pool. */
  write(ctx: Context, offset: bigint, data: Uint8Array, flags: number): number | Promise<number> {
    const fd = this.fd;
    let done = 0;
    const mode = fd >= 0 && !(flags & FUSE_WRITE_KILL_SUIDGID) ? this.inode.fs.ioMode(this.inode.mntId, fd) : IoMode.Pool;
    if (mode !== IoMode.Pool) {
      const n = mode === IoMode.Now ? ioNow(sys.pwrite, fd, data, offset) : sys.pwriteNowait(fd, data, offset, 0);
      if (n === data.length) return n;
      if (n === -EOPNOTSUPP || n === -EINVAL && offset < MAX_LOFF) this.inode.fs.noNowait(this.inode.mntId);
      if (n > 0) done = n;
    }
    // The kernel's writeback (FUSE_WRITE_CACHE) takes no short count: fuse_writepage_end
    // looks at the error only, so the pages not written would count as written. Write all
    // of it, or answer the error (ENOSPC, EIO), which fsync() and close() then report.
    const whole = (flags & FUSE_WRITE_CACHE) !== 0;
    return this.file.use(async (f) => {
      let n = done;
      try {
        do {
          const k = await sys.pwriteAsync(f, n ? data.subarray(n) : data, offset + BigInt(n));
          if (k === 0) break;
          n += k;
        } while (whole && n < data.length);
      } catch (e) {
        if (n > 0 && !whole) return n; // a short write: what reached the file is what the caller learns
        throw e;
      }
      if (whole && n < data.length) throw new FuseError('EIO', `the source took ${n} of ${data.length} bytes of a writeback write and then none`);
      if (flags & FUSE_WRITE_KILL_SUIDGID && this.file.open) await this.inode.killSuidgid(this.file.fd, ctx);
      return n;
    });
  }
  fsync(_ctx: Context, datasync: boolean): Promise<void> {
    return this.file.use(async (fd) => { await sys.fsyncAsync(fd, datasync); });
  }
  close(): void { this.file.close(); }
  // flush and release are PtInode's: the tree calls them on the inode the kernel
  // knows, which may not be `this.inode` (a duplicate merged into it at hand-out).
}

/** One entry of a source listing: where its name's bytes are, decoded only if asked. */
class PtEntry implements StreamEntry {
  private decoded: string | undefined;
  constructor(readonly nameSrc: Uint8Array, readonly nameStart: number, readonly nameLength: number,
    readonly ino: number | bigint, readonly mode: number, readonly next: number | bigint) {}
  get name(): string {
    return (this.decoded ??= nameFromBytes(this.nameSrc.subarray(this.nameStart, this.nameStart + this.nameLength)));
  }
}
/** A u64 field: a number when exact (the common case: no BigInt made), else a bigint. */
function u64(v: DataView, at: number): number | bigint {
  const hi = v.getUint32(at + 4, true);
  return hi < 0x200000 ? hi * 0x100000000 + v.getUint32(at, true) : v.getBigUint64(at, true);
}

/** A kernel passthrough backing id, shared by every open of one inode (the kernel refuses
 * a second backing file for an inode while one is in use), closed after the last release. */
interface Backing {
  readonly id: number;
  opens: number;
}

/** The fd-mode key of the inode whose statx is in `st`: (device, inode number, mount). */
function keyOf(): string {
  return `${st[STX.devMajor]}:${st[STX.devMinor]}:${stBig[STXB.ino]}:${st[STX.mntId]}`;
}

/** linux_dirent64 records per getdents64 call: a batch (the tree keeps what the kernel
 * had no room for, at most one batch per open directory). */
const DIR_BATCH = 32 * 1024;

/**
 * An open directory of the source, listed in pieces with getdents64 on the thread
 * pool. Cookies are the source's own d_off values, passed to the kernel unchanged
 * and given back to lseek(): they stay valid across calls and across changes to
 * the directory exactly as far as the source's own are (ext4 hash cookies, tmpfs's
 * stable offsets), as for a program listing the source directly. The fd was opened
 * as the caller, so listing needs the caller's read permission on the directory.
 */
class PtDirStream implements DirStream {
  private readonly dir: SharedFd;
  /** The fd's position: the d_off of the last entry read (0 at open). */
  private pos = 0n;
  private buf: Buffer | undefined = Buffer.allocUnsafe(DIR_BATCH);
  constructor(fd: number) { this.dir = new SharedFd(fd); }

  read(_ctx: Context, cookie: bigint): Promise<readonly StreamEntry[]> {
    const buf = this.buf ?? Buffer.allocUnsafe(DIR_BATCH); // in use by a read still in flight
    this.buf = undefined;
    return this.dir.use(async (fd) => {
      // An unknown position (a failed read) always seeks.
      // d_off is signed (an loff_t); the kernel got it as the u64 it carries.
      const n = await sys.getdentsAsync(fd, buf, cookie !== this.pos, BigInt.asIntN(64, cookie));
      this.pos = -1n;
      const out: StreamEntry[] = [];
      const view = new DataView(buf.buffer, buf.byteOffset, n);
      // The batch's records are copied out once (the buffer is reused for the next batch);
      // each entry points at its name in the copy.
      const names = new Uint8Array(n);
      names.set(buf.subarray(0, n));
      for (let at = 0; at < n;) {
        const reclen = view.getUint16(at + 16, true);
        if (reclen < 20 || at + reclen > n) throw new FuseError('EIO', `getdents64: bad record length ${reclen}`);
        let end = at + 19;
        while (end < at + reclen && buf[end] !== 0) end++;
        out.push(new PtEntry(names, at + 19, end - at - 19, u64(view, at), buf[at + 18] << 12, u64(view, at + 8)));
        at += reclen;
      }
      this.pos = out.length ? BigInt(out[out.length - 1].next) : cookie;
      this.buf = buf;
      return out;
    });
  }
  close(): void { this.dir.close(); }
}

/** An inode of the source directory: held by an O_PATH fd or a file handle, every operation done on the source with the *at syscalls. */
export class PtInode extends FuseInode {
  /** Everything the source can do (statx is left to GETATTR: the kernel falls back to it). */
  static override readonly supports: readonly InodeOp[] = [
    'setattr', 'access', 'syncfs', 'mkdir', 'mknod', 'symlink', 'link', 'create', 'tmpfile', 'unlink', 'rmdir', 'rename',
    'readlink', 'read', 'write', 'fallocate', 'lseek', 'copyFileRange', 'getlk', 'setlk',
    'getxattr', 'setxattr', 'listxattr', 'removexattr', 'readdirplus',
  ];

  /** O_PATH fd; -1 once closed (unlinked) or in file-handle mode. Owned by this inode. */
  fd: number;
  /** name_to_handle_at result in file-handle mode. */
  handle: Buffer | undefined;
  /** The last attributes, kept when the fd is closed after the unlink. */
  private gone: Attr | undefined;
  /** A deleted symlink's target, read before its fd closed (READLINK of an O_PATH fd still held). */
  private goneTarget: Uint8Array | undefined;
  /** The attributes read when this object was made (a lookup or creation): the tree asks
   * for them in the same turn, to build the entry, and gets these instead of a second statx. */
  fresh: Attr | undefined;

  /**
   * Call with `st` holding this inode's statx.
   * @param fs - The Passthrough this inode belongs to.
   * @param mntId - The source mount the inode lives on (statx stx_mnt_id).
   * @param key - The inode's identity: device, inode number and mount id.
   */
  constructor(readonly fs: Passthrough, fd: number, handle: Buffer | undefined, readonly mntId: number, readonly key: string) {
    super(st[STX.mode]);
    this.fd = fd;
    this.handle = handle;
  }

  override identity(): string { return this.key; }

  /** Runs `fn` with an O_PATH fd of this inode (opened from the handle for the call if needed). */
  withFd<T>(fn: (fd: number) => T): T {
    if (this.fd >= 0) return fn(this.fd);
    if (!this.handle) throw new FuseError('ESTALE', 'the inode was deleted and its fd closed');
    let fd: number;
    try {
      fd = sys.openByHandleAt(this.fs.mountFd(this.mntId), this.handle, L.O_PATH);
    } catch (e) {
      // open_by_handle_at answers ENOMEM now and then for an inode being deleted (seen on
      // ext4, Linux 6.18, against a concurrent unlink): the inode is gone, not the memory.
      if ((e as NodeJS.ErrnoException).code === 'ENOMEM') throw new FuseError('ESTALE', 'the inode was deleted (open_by_handle_at: ENOMEM)');
      throw e;
    }
    try { return fn(fd); } finally { closeSync(fd); }
  }
  private proc(fd: number): string { return `/proc/self/fd/${fd}`; }

  /** A new lookup of this inode (or of another hard link of it): keep ours, close the
   * newcomer's fd. We are registered, so our fd is open and pins the inode: the key
   * cannot belong to another file. */
  override acceptAlias(newer: FuseInode): boolean {
    (newer as PtInode).fresh = undefined;
    // A creation's open registered its backing on the newcomer: the kernel's inode is ours.
    if (!this.backing && (newer as PtInode).backing) this.backing = (newer as PtInode).backing;
    (newer as PtInode).closeBacking();
    (newer as PtInode).mergedInto = this;
    return true;
  }
  /** The registered inode this duplicate was merged into (its handles still point here). */
  mergedInto: PtInode | undefined;
  /** Kernel passthrough: the backing id this inode's opens share, while any is open. */
  backing: Backing | undefined;

  /** Kernel passthrough for a new open of this inode through `h`: its backing id (registered
   * with the first open), or nothing (not a regular file, or passthrough is off or refused). */
  passthrough(h: PtHandle): void {
    if (!this.fs.kernelPassthrough || (this.mode & C.S_IFMT) !== C.S_IFREG) return;
    // A creation's newcomer of a file the kernel already knows (CREATE of an existing name)
    // is merged into the registered inode at hand-out: its opens share that one's backing.
    const home = (this.fs.registered(this.key) as PtInode | undefined) ?? this;
    let b = home.backing;
    if (!b) {
      const id = this.fs.backingOpen(h.fd);
      if (id === undefined) return;
      b = home.backing = { id, opens: 0 };
    }
    b.opens++;
    h.backing = b;
    h.options = { ...h.options, backingId: b.id };
  }
  /** The size and mtime seen at the last open (or writable release) of this file. */
  private stamp: [bigint, number, number] | undefined;
  /** FOPEN_KEEP_CACHE for `h` when the file is what it was when last opened or written
   * through us (the kernel's cached pages are still its contents); records what it is now. */
  keepCacheHint(h: PtHandle): void {
    if (!this.fs.keepCache || h.backing || h.fd < 0) return;
    sys.statx(h.fd, '', L.AT_EMPTY_PATH, st, stBig);
    const s = this.stamp;
    const size = stBig[STXB.size];
    if (s && s[0] === size && s[1] === st[STX.mtime] && s[2] === st[STX.mtimeNs]) h.options = { ...h.options, keepCache: true };
    this.stamp = [size, st[STX.mtime], st[STX.mtimeNs]];
  }
  /** A writable open was released: what the file is now may come from its writes or from
   * someone else's behind the mount (indistinguishable), so the next open drops the cache. */
  unstamp(): void {
    this.stamp = undefined;
  }
  /** An open holding a count of `b` was released: the last one closes the backing id. */
  dropBacking(b: Backing): void {
    if (--b.opens > 0) return;
    this.fs.backingClose(b.id);
    if (this.backing === b) this.backing = undefined;
    if (this.mergedInto?.backing === b) this.mergedInto.backing = undefined;
  }
  override adoptBackingId(id: number): void {
    if (!this.backing) this.backing = { id, opens: 0 };
  }
  override releaseBackingId(id: number): void {
    if (this.backing?.id === id && this.backing.opens === 0) this.backing = undefined;
  }

  /** A close() of a file of this inode by some process: POSIX says its locks here go. */
  override flush(_ctx: Context, _h: FileHandle | undefined, lockOwner: bigint): void {
    this.releaseLocks(lockOwner);
  }
  /** The last close of one open file: its fd, and the OFD locks taken through it
   * (their owner is the open file itself, and no FLUSH names it), go. */
  override release(_ctx: Context, h: FileHandle | undefined): void {
    const ph = h as PtHandle | undefined;
    if (!ph || ph.fd < 0) return;
    for (const [owner, l] of [...(this.locks ?? [])]) if (l.via === ph) this.releaseLocks(owner);
    if (ph.writable) this.unstamp();
    ph.close();
    if (ph.backing) this.dropBacking(ph.backing);
    ph.backing = undefined;
  }

  override onUnlinked(): boolean {
    if (this.fd < 0) return false; // file-handle mode: nothing held; the handle key stays unique
    sys.statx(this.fd, '', L.AT_EMPTY_PATH, st, stBig);
    if (st[STX.nlink] > 0) return false; // still linked behind the mount: holds no space
    this.gone = attrFromStatx();
    // A symlink the kernel still holds (an O_PATH fd of it) can still be read: keep its target.
    if ((st[STX.mode] & C.S_IFMT) === C.S_IFLNK) this.goneTarget = sys.readlinkat(this.fd, '');
    this.closeBacking();
    return true;
  }
  /** Closes the O_PATH fd (and forgets the handle). */
  closeBacking(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (this.handle) this.fs.releaseMount(this.mntId);
    this.handle = undefined;
  }
  override onForget(): void {
    for (const owner of [...(this.locks?.keys() ?? [])]) this.releaseLocks(owner);
    this.closeBacking();
  }

  /**
   * Clears setuid and setgid after a change to the file's data by a caller without
   * CAP_FSETID (the kernel's setattr_should_drop_suidgid, which the source would apply
   * had the caller written it directly): setuid always; setgid when group-exec is set,
   * or when the caller is not in the file's group. Regular files only. As ourselves.
   */
  killSuidgid(fd: number, ctx: Context): Promise<unknown> | undefined {
    sys.statx(fd, '', L.AT_EMPTY_PATH, st, stBig);
    const mode = st[STX.mode];
    if ((mode & C.S_IFMT) !== C.S_IFREG) return;
    let kill = mode & 0o4000;
    if (mode & 0o2000 && (mode & 0o010 || !this.fs.inGroup(ctx, st[STX.gid]))) kill |= 0o2000;
    if (!kill) return undefined;
    chmodSync(this.proc(fd), mode & 0o7777 & ~kill);
    // The kernel keeps the old mode cached after a WRITE, FALLOCATE or COPY_FILE_RANGE:
    // invalidate its attributes before the reply (attributes only: no page or inode lock
    // is taken, so the writer waiting for the reply cannot deadlock it).
    return (this.mergedInto ?? this).notifyContent(-1, 0).catch(() => {});
  }

  // ---- attributes ----

  override getattr(_ctx: Context, h?: FileHandle): Attr {
    const fresh = this.fresh;
    if (fresh) {
      this.fresh = undefined;
      return fresh;
    }
    const hfd = (h as PtHandle | undefined)?.fd;
    if (hfd !== undefined && hfd >= 0) sys.statx(hfd, '', L.AT_EMPTY_PATH, st, stBig);
    else if (this.gone) return this.gone; // deleted and closed: its fd never reopens
    else this.withFd((fd) => sys.statx(fd, '', L.AT_EMPTY_PATH | L.AT_SYMLINK_NOFOLLOW, st, stBig));
    return attrFromStatx();
  }

  override setattr(ctx: Context, c: SetattrChanges, h?: FileHandle): Attr {
    this.withFd((fd) => this.fs.asCaller(ctx, () => {
      const path = this.proc(fd);
      if (c.mode !== undefined) chmodSync(path, c.mode & 0o7777);
      if (c.uid !== undefined || c.gid !== undefined) sys.fchownat(fd, '', c.uid ?? -1, c.gid ?? -1, L.AT_EMPTY_PATH);
      if (c.size !== undefined) {
        const hfd = (h as PtHandle | undefined)?.fd;
        if (hfd !== undefined && hfd >= 0) sys.ftruncate(hfd, c.size);
        else {
          const w = sys.openat(L.AT_FDCWD, path, C.O_WRONLY, 0, -1, -1);
          try { sys.ftruncate(w, c.size); } finally { closeSync(w); }
        }
      }
      if (c.atime !== undefined || c.mtime !== undefined) {
        const t = (v: number | 'now' | undefined, exact: readonly [number, number] | undefined): readonly [number, number] =>
          v === undefined ? [0, L.UTIME_OMIT] : v === 'now' ? [0, L.UTIME_NOW] : exact ?? [Math.floor(v / 1000), Math.round((v - Math.floor(v / 1000) * 1000) * 1e6)];
        const [as, ans] = t(c.atime, c.atimeSpec);
        const [ms, mns] = t(c.mtime, c.mtimeSpec);
        if ((this.mode & C.S_IFMT) === C.S_IFLNK) sys.utimensat(fd, '', as, ans, ms, mns, L.AT_EMPTY_PATH);
        else sys.utimensat(L.AT_FDCWD, path, as, ans, ms, mns, 0);
      }
    }));
    // As ourselves: the caller may not own the file. (A truncate as the caller lets the
    // source clear them already, unless the caller is root without CAP_FSETID.)
    if (c.size !== undefined && c.killSuidgid) this.withFd((fd) => this.killSuidgid(fd, ctx)); // the reply's attributes update the kernel
    return this.getattr(ctx, h);
  }

  override access(ctx: Context, mask: number): void {
    this.withFd((fd) => this.fs.asCaller(ctx, () => sys.faccessat(L.AT_FDCWD, this.proc(fd), mask, L.AT_EACCESS, -1, -1)));
  }

  override statfs(): StatFs {
    this.withFd((fd) => sys.fstatfs(fd, statbuf));
    return {
      blocks: statbuf[0], bfree: statbuf[1], bavail: statbuf[2], files: statbuf[3], ffree: statbuf[4],
      bsize: Number(statbuf[5]), namelen: Number(statbuf[6]), frsize: Number(statbuf[7]),
    };
  }
  override syncfs(): void { this.withFd((fd) => { const d = sys.openat(fd, '.', C.O_RDONLY, 0, -1, -1); try { sys.syncfs(d); } finally { closeSync(d); } }); }

  override async fsyncdir(_ctx: Context, datasync: boolean): Promise<void> {
    const d = this.withFd((fd) => sys.openat(fd, '.', C.O_RDONLY | C.O_DIRECTORY, 0, -1, -1));
    try { await sys.fsyncAsync(d, datasync); } finally { closeSync(d); }
  }

  override readlink(): Uint8Array { return this.goneTarget ?? this.withFd((fd) => sys.readlinkat(fd, '')); }

  // ---- directories ----

  /** undefined: no such name (answered without building an error). */
  override lookup(ctx: Context, name: string): FuseInode | undefined {
    const b = checkName(name);
    const known = this.children.get(name) as PtInode | undefined;
    return this.withFd((dirfd) => {
      const again = known ? this.fs.revalidate(dirfd, b, ctx, known) : false;
      return again === false ? this.fs.lookupNode(dirfd, b, ctx) : again;
    });
  }
  /** Takeover: what the restore looks up is not handed out in this turn: no fresh attributes. */
  override restoreChild(ctx: Context, name: string, saved: unknown): FuseInode {
    const c = super.restoreChild(ctx, name, saved) as PtInode; // synchronous: so is lookup
    c.fresh = undefined;
    return c;
  }

  /** The directory opened as the caller (read permission, as opendir(3) on the source
   * needs), listed in pieces from the source (PtDirStream). */
  override opendir(ctx: Context): DirStream {
    const fd = this.withFd((f) => this.fs.openAtime(ctx, this.proc(f), C.O_RDONLY | C.O_DIRECTORY, this.fs.dirNoatime));
    return new PtDirStream(fd);
  }

  override mkdir(ctx: Context, name: string, mode: number): FuseInode {
    const b = checkName(name);
    return this.withFd((dirfd) => {
      this.fs.asCaller(ctx, () => sys.mkdirat(dirfd, b, mode & 0o7777, -1, -1, this.fs.umask(ctx)));
      return this.fs.openNode(dirfd, b, ctx);
    });
  }
  override mknod(ctx: Context, name: string, mode: number, rdev: number): FuseInode {
    const b = checkName(name);
    return this.withFd((dirfd) => {
      this.fs.asCaller(ctx, () => sys.mknodat(dirfd, b, mode, devFromFuse(rdev), -1, -1, this.fs.umask(ctx)));
      return this.fs.openNode(dirfd, b, ctx);
    });
  }
  override symlink(ctx: Context, name: string, target: string): FuseInode {
    const b = checkName(name);
    return this.withFd((dirfd) => {
      this.fs.asCaller(ctx, () => sys.symlinkat(bytesOf(target), dirfd, b, -1, -1));
      return this.fs.openNode(dirfd, b, ctx);
    });
  }
  override link(ctx: Context, target: FuseInode, name: string): FuseInode {
    const b = checkName(name);
    const t = target as PtInode;
    return this.withFd((dirfd) => t.withFd((tfd) => {
      this.fs.asCaller(ctx, () => sys.linkat(L.AT_FDCWD, this.proc(tfd), dirfd, b, L.AT_SYMLINK_FOLLOW, -1, -1));
      return this.fs.openNode(dirfd, b, ctx);
    }));
  }
  override create(ctx: Context, name: string, mode: number, flags: number): Created {
    const b = checkName(name);
    return this.withFd((dirfd) => {
      const asked = (flags | C.O_CREAT | C.O_NOFOLLOW) & ~(C.O_NOCTTY | C.O_DIRECT | FMODE_EXEC);
      const create = (f: number) => this.fs.asCaller(ctx, () => sys.openat(dirfd, b, f, mode & 0o7777, -1, -1, this.fs.umask(ctx)));
      let fd: number;
      try {
        fd = create(this.fs.sourceFlags(asked));
      } catch (e) {
        // An existing file the caller may write but not read (writeback cache makes write-only
        // read-write): the caller's own open decides, then the server opens it read-write.
        if ((e as NodeJS.ErrnoException).code !== 'EACCES' || this.fs.sourceFlags(asked) === asked) throw e;
        closeSync(create(asked & ~C.O_APPEND));
        fd = sys.openat(dirfd, b, this.fs.sourceFlags(asked) & ~(C.O_CREAT | C.O_EXCL | C.O_TRUNC), 0, -1, -1);
      }
      try {
        const inode = this.fs.openNode(dirfd, b, ctx) as PtInode;
        const handle = new PtHandle(inode, fd);
        handle.writable = true;
        inode.passthrough(handle);
        return { inode, handle };
      } catch (e) {
        closeSync(fd);
        throw e;
      }
    });
  }
  override tmpfile(ctx: Context, mode: number, flags: number): Created {
    return this.withFd((dirfd) => {
      const fd = this.fs.asCaller(ctx, () => sys.openat(dirfd, '.', (flags & ~(C.O_CREAT | C.O_EXCL | FMODE_EXEC)) | L.O_TMPFILE, mode & 0o7777,
        -1, -1, this.fs.umask(ctx)));
      const inode = this.fs.openNode(L.AT_FDCWD, `/proc/self/fd/${fd}`, ctx, true) as PtInode;
      const handle = new PtHandle(inode, fd);
      inode.passthrough(handle);
      return { inode, handle };
    });
  }
  override unlink(ctx: Context, name: string): void {
    const b = checkName(name);
    this.withFd((dirfd) => this.fs.asCaller(ctx, () => sys.unlinkat(dirfd, b, 0, -1, -1)));
  }
  override rmdir(ctx: Context, name: string): void {
    const b = checkName(name);
    this.withFd((dirfd) => this.fs.asCaller(ctx, () => sys.unlinkat(dirfd, b, L.AT_REMOVEDIR, -1, -1)));
  }
  override rename(ctx: Context, name: string, newParent: FuseInode, newName: string, flags: number): void {
    const from = checkName(name);
    const to = checkName(newName);
    const np = newParent as PtInode;
    this.withFd((a) => np.withFd((b) => this.fs.asCaller(ctx, () => sys.renameat2(a, from, b, to, flags, -1, -1))));
  }

  // ---- files ----

  override open(ctx: Context, flags: number): FileHandle {
    // O_DIRECT is the kernel's business (it sends direct I/O as READ/WRITE with the
    // client's alignment); our buffers are not aligned, so the source is opened without it.
    // O_NOFOLLOW too: the kernel resolved the path already, and /proc/self/fd/N is a symlink.
    const f2 = flags & ~(C.O_CREAT | C.O_EXCL | C.O_NOCTTY | C.O_DIRECT | C.O_NOFOLLOW | FMODE_EXEC);
    const fd = this.withFd((f) => {
      const path = this.proc(f);
      // An exec (execve, uselib) needs execute permission, not read: a 0111 file runs. The
      // caller's right to execute is checked as the caller (the kernel checked it too with
      // default_permissions); the file is then read by us, as the kernel reads it for exec.
      if (flags & FMODE_EXEC && (flags & 3) === C.O_RDONLY) {
        this.fs.asCaller(ctx, () => sys.faccessat(L.AT_FDCWD, path, C.X_OK, L.AT_EACCESS, -1, -1));
        return this.fs.openAtime(null, path, f2, this.fs.noatime);
      }
      const f3 = this.fs.sourceFlags(f2);
      if (f3 === f2) return this.fs.openAtime(ctx, path, f2, this.fs.noatime);
      try {
        return this.fs.openAtime(ctx, path, f3, this.fs.noatime);
      } catch (e) {
        // Write-only to the caller: the caller may open it as it asked (checked as the caller),
        // and the kernel must read to fill partial pages (writeback cache): opened by us.
        if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
        closeSync(this.fs.openAtime(ctx, path, f2 & ~(C.O_APPEND | C.O_TRUNC), this.fs.noatime));
        return this.fs.openAtime(null, path, f3, this.fs.noatime);
      }
    });
    const handle = new PtHandle(this, fd);
    handle.writable = (flags & 3) !== C.O_RDONLY || (flags & C.O_TRUNC) !== 0;
    this.passthrough(handle);
    this.keepCacheHint(handle);
    return handle;
  }

  override fallocate(ctx: Context, h: FileHandle | undefined, offset: bigint, length: bigint, mode: number): Promise<void> | void {
    const fd = fdOf(h);
    sys.fallocate(fd, mode, offset, length);
    // The kernel leaves this to us with HANDLE_KILLPRIV_V2 and sends no flag: like the
    // source's own fallocate (file_modified), a caller without CAP_FSETID loses setuid
    // and setgid (setgid only with group-exec), whatever the mode.
    const killed = this.fs.callerFsetid(ctx) ? undefined : this.killSuidgid(fd, ctx);
    return killed?.then(() => {});
  }
  override lseek(_ctx: Context, h: FileHandle | undefined, offset: bigint, whence: number): bigint {
    // The kernel carries its loff_t in the u64: a value ≥ 2^63 is a negative offset.
    return sys.lseek(fdOf(h), BigInt.asIntN(64, offset), whence);
  }
  override copyFileRange(ctx: Context, h: FileHandle | undefined, offIn: bigint, out: FuseInode, outH: FileHandle | undefined,
    offOut: bigint, len: bigint, flags: bigint): bigint | Promise<bigint> {
    if (flags > 0xffffffffn) throw new FuseError('EINVAL', 'copy_file_range flags beyond 32 bits');
    const outFd = fdOf(outH);
    const n = sys.copyFileRange(fdOf(h), offIn, outFd, offOut, len, Number(flags));
    // The kernel sends no flag for it: the written file loses setuid/setgid as on the source.
    const killed = this.fs.callerFsetid(ctx) ? undefined : (out as PtInode).killSuidgid(outFd, ctx);
    return killed ? killed.then(() => n) : n;
  }
  // ---- locks ----
  // POSIX locks belong to a lock owner (a client process), not to an open file:
  // each owner gets an open file description of its own on this inode and its
  // locks are OFD locks on it, so one owner's locks never conflict with each
  // other, conflict with everyone else's (other owners, and processes locking
  // the source directly), and all go at once when the owner closes any file of
  // the inode (FLUSH). flock() locks belong to the open file: the handle's fd.

  /** owner → its lock fd, the pid of its last SETLK (for GETLK replies) and the open
   * file it first came through (an OFD lock's owner is that open file: its locks go
   * at its RELEASE; POSIX owners' go at FLUSH, before). */
  private locks: Map<bigint, { fd: number; pid: number; via: PtHandle }> | undefined;

  private lockFd(owner: bigint, pid: number, via: PtHandle): number {
    let l = this.locks?.get(owner);
    if (!l) {
      // Opened as the server (the kernel checked the client's access mode for the lock
      // type), read-write if it can be, as one owner may take read and write locks.
      const fd = this.withFd((f) => openAnyMode(this.proc(f)));
      l = { fd, pid, via };
      (this.locks ??= new Map()).set(owner, l);
    }
    l.pid = pid;
    return l.fd;
  }
  /** Drops all POSIX locks of `owner` on this inode (a file of it was closed). */
  releaseLocks(owner: bigint): void {
    const l = this.locks?.get(owner);
    if (!l) return;
    this.locks!.delete(owner);
    closeSync(l.fd);
  }

  override getlk(ctx: Context, h: FileHandle | undefined, owner: bigint, lock: Lock): Lock {
    const mine = this.locks?.get(owner)?.fd;
    const [type, start, len, pid] = sys.fcntlLock(mine ?? fdOf(h), L.F_OFD_GETLK, lock.type, lock.start, lockLen(lock), 0);
    // pid -1: an OFD lock, i.e. another owner's through this server: the owner that
    // does not see the conflict from its own fd is the one holding it (with several
    // other owners holding locks, each sees the others': then the pid is 0).
    let holder = pid;
    if (type !== L.F_UNLCK && pid === -1) {
      holder = 0;
      for (const [o, l] of this.locks ?? []) {
        if (o === owner) continue;
        if (sys.fcntlLock(l.fd, L.F_OFD_GETLK, lock.type, lock.start, lockLen(lock), 0)[0] === L.F_UNLCK) { holder = l.pid; break; }
      }
    }
    return { type, start, end: len === 0n ? LOCK_TO_EOF : start + len - 1n, pid: type === L.F_UNLCK ? 0 : holder };
  }
  override async setlk(ctx: Context, h: FileHandle | undefined, owner: bigint, lock: Lock, wait: boolean, flock: boolean): Promise<void> {
    const hfd = fdOf(h);
    const ph = h as PtHandle;
    if (!flock && lock.type === L.F_UNLCK && !this.locks?.has(owner)) return; // holds nothing here
    // The fd is looked up at each attempt: a FLUSH may close the owner's lock fd between two.
    const attempt = () => {
      if (flock) sys.flock(hfd, (lock.type === L.F_UNLCK ? L.LOCK_UN : lock.type === L.F_RDLCK ? L.LOCK_SH : L.LOCK_EX) | L.LOCK_NB);
      else sys.fcntlLock(this.lockFd(owner, ctx.pid, ph), L.F_OFD_SETLK, lock.type, lock.start, lockLen(lock), 0);
    };
    // SETLKW must not block the event loop: retry until granted or interrupted.
    for (;;) {
      try { return attempt(); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (!wait || (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EACCES')) throw e;
      }
      if (ctx.signal.aborted) throw new FuseError('EINTR');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  // ---- xattrs (through /proc/self/fd: an O_PATH fd cannot f*xattr) ----

  override getxattr(ctx: Context, name: string): Uint8Array {
    const b = bytesOf(name);
    return this.withFd((fd) => this.fs.asCaller(ctx, () => sys.getxattr(this.proc(fd), b)));
  }
  override setxattr(ctx: Context, name: string, value: Uint8Array, flags: number): void {
    const b = bytesOf(name);
    this.withFd((fd) => this.fs.asCaller(ctx, () => sys.setxattr(this.proc(fd), b, value, flags)));
  }
  override listxattr(ctx: Context): string[] {
    const list = this.withFd((fd) => this.fs.asCaller(ctx, () => sys.listxattr(this.proc(fd))));
    const names: string[] = [];
    for (let at = 0; at < list.length;) {
      let end = list.indexOf(0, at);
      if (end < 0) end = list.length;
      if (end > at) names.push(nameFromBytes(list.subarray(at, end)));
      at = end + 1;
    }
    return names;
  }
  override removexattr(ctx: Context, name: string): void {
    const b = bytesOf(name);
    this.withFd((fd) => this.fs.asCaller(ctx, () => sys.removexattr(this.proc(fd), b)));
  }
}

/** The source directory's O_PATH fd; an error names the directory, why and what to do. */
function openSource(source: string | Uint8Array): number {
  try {
    return sys.openat(L.AT_FDCWD, source, L.O_PATH | C.O_DIRECTORY, 0, -1, -1);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'ENOENT: it does not exist: create it, or name an existing directory'
      : err.code === 'ENOTDIR' ? 'ENOTDIR: it is not a directory: name a directory'
        : err.code === 'EACCES' ? 'EACCES: permission denied: the server\'s user must be allowed to search it and every directory above it'
          : err.message;
    err.message = `cannot use source directory ${typeof source === 'string' ? source : nameFromBytes(source)}: ${why}`;
    throw err;
  }
}

/** Why file handles cannot be used on the source (undefined: they can): a handle of its
 * root must come back through open_by_handle_at (EPERM without CAP_DAC_READ_SEARCH,
 * EOPNOTSUPP on filesystems that cannot export handles). */
function handlesUnusable(rootFd: number, mountFd: number): { text: string; code: string } | undefined {
  let fd: number;
  try {
    fd = sys.openByHandleAt(mountFd, sys.nameToHandleAt(rootFd, '', L.AT_EMPTY_PATH)[0], L.O_PATH);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const code = err.code ?? 'EIO';
    return { text: `${err.syscall ?? 'file handle'} failed with ${code}${code === 'EPERM' ? ' (it needs CAP_DAC_READ_SEARCH)' : ''}`, code };
  }
  closeSync(fd);
  return undefined;
}

function fdOf(h: FileHandle | undefined): number {
  const fd = (h as PtHandle | undefined)?.fd;
  if (fd === undefined || fd < 0) throw new FuseError('EBADF');
  return fd;
}
/** l_len for `l` (0: to the end of the file). */
function lockLen(l: Lock): bigint {
  return l.end >= LOCK_TO_EOF || l.end < l.start ? 0n : l.end - l.start + 1n;
}
/** An fd on `path` for locking: read-write if possible (any lock type), else what the file allows. */
function openAnyMode(path: string): number {
  const extra = C.O_NONBLOCK | C.O_NOCTTY;
  try { return sys.openat(L.AT_FDCWD, path, C.O_RDWR | extra, 0, -1, -1); } catch { /* read-only file or filesystem */ }
  try { return sys.openat(L.AT_FDCWD, path, C.O_RDONLY | extra, 0, -1, -1); } catch { /* write-only */ }
  return sys.openat(L.AT_FDCWD, path, C.O_WRONLY | extra, 0, -1, -1);
}

/** The passthrough FileSystem: `mount(mnt, new Passthrough(src), opts)`. */
export class Passthrough extends InodeTree {
  /** The source directory: a path, or its bytes (a path need not be UTF-8). */
  readonly source: string | Uint8Array;
  /** The inode-handle mode in effect ('prefer' becomes 'never' where handles cannot be opened). */
  readonly mode: InodeHandleMode;
  private readonly asCallerOn: boolean;
  /**
   * File-handle mode: a readable fd on each mount inodes live on, for open_by_handle_at
   * (which refuses O_PATH fds), counted by the inodes that hold handles of it. Opened
   * with the first such inode and closed with the last, so a mount below the source can
   * be unmounted once the kernel has forgotten its inodes. The source's own is kept.
   */
  private readonly mounts = new Map<number, { fd: number; refs: number }>();
  private readonly groupsMaxAge: number;
  /** RLIMIT_NOFILE in effect after the start (raised if `opts.nofile` asked for it). */
  readonly nofile: number;
  /** Kernel passthrough asked for (option) and, after INIT, in effect. */
  kernelPassthrough: boolean;
  private readonly ptLog: (line: string) => void;
  private devNotifier: InitInfo['notifier'];

  constructor(source: string | Uint8Array, opts: PassthroughOptions = {}) {
    if (opts.inodeHandles !== undefined && !['never', 'prefer', 'mandatory'].includes(opts.inodeHandles)) {
      throw new TypeError(`Passthrough: option inodeHandles must be 'never', 'prefer' or 'mandatory', not ${JSON.stringify(opts.inodeHandles)}`);
    }
    const groupsMaxAge = opts.groupsMaxAge ?? 100;
    if (!(groupsMaxAge >= 0) || !Number.isFinite(groupsMaxAge)) {
      throw new TypeError(`Passthrough: option groupsMaxAge must be a number of milliseconds ≥ 0, not ${String(opts.groupsMaxAge)}`);
    }
    const rootFd = openSource(source);
    let mode = opts.inodeHandles ?? 'never';
    let mountFd = -1;
    try {
      sys.statx(rootFd, '', L.AT_EMPTY_PATH, st, stBig);
      if (mode !== 'never') {
        mountFd = sys.openat(rootFd, '.', C.O_RDONLY | C.O_DIRECTORY, 0, -1, -1);
        const why = handlesUnusable(rootFd, mountFd);
        if (why && mode === 'mandatory') {
          throw Object.assign(new Error(`Passthrough: inodeHandles 'mandatory' is impossible here: ${why.text}; ` +
            "use 'prefer' (an fd per inode where handles fail) or 'never'"), { code: why.code });
        }
        if (why) {
          (opts.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(
            `tsfuse passthrough: file handles cannot be used here (${why.text}): each inode keeps an fd instead`);
          mode = 'never';
          closeSync(mountFd);
          mountFd = -1;
        }
      }
    } catch (e) {
      closeSync(rootFd);
      if (mountFd >= 0) closeSync(mountFd);
      throw e;
    }
    const mntId = st[STX.mntId];
    // The root is created before `this` exists; it is rebound below.
    const root = new PtInode(undefined as unknown as Passthrough, rootFd, undefined, mntId, 'root');
    super(root, {});
    (root as { fs: Passthrough }).fs = this;
    this.source = source;
    this.mode = mode;
    this.groupsMaxAge = groupsMaxAge;
    this.asCallerOn = opts.asCaller ?? process.geteuid?.() === 0;
    if (mountFd >= 0) this.mounts.set(mntId, { fd: mountFd, refs: 1 }); // the source's own: for the session
    this.nofile = sys.raiseNofile(opts.nofile ?? 0); // 0: no change, just read the limit
    this.kernelPassthrough = opts.kernelPassthrough ?? false;
    this.writeback = opts.writebackCache ?? false;
    this.keepCache = opts.keepCache ?? true;
    this.ptLog = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  }

  /** FOPEN_KEEP_CACHE for unchanged files (see PassthroughOptions.keepCache; off on a
   * strictatime mount: a read from the cache would not reach the source, nor move its atime). */
  keepCache: boolean;
  /** Writeback cache asked for (option) and, after INIT, in effect. */
  writeback: boolean;
  /** How data I/O runs on each source mount (by mount id), decided at its first file. */
  private readonly ioModes = new Map<number, IoMode>();
  /** How data I/O runs on source mount `mntId` (decided from `fd`'s filesystem the first time). */
  ioMode(mntId: number, fd: number): IoMode {
    let m = this.ioModes.get(mntId);
    if (m === undefined) {
      try {
        sys.fstatfs(fd, statbuf);
        m = statbuf[8] === TMPFS_MAGIC || statbuf[8] === RAMFS_MAGIC ? IoMode.Now : IoMode.Nowait;
      } catch {
        m = IoMode.Pool;
      }
      this.ioModes.set(mntId, m);
    }
    return m;
  }
  /** RWF_NOWAIT is refused on mount `mntId` (FUSE, network filesystems): the thread pool from now on. */
  noNowait(mntId: number): void {
    this.ioModes.set(mntId, IoMode.Pool);
  }

  /** The flags a source file is opened with for open(2) flags `flags`: with the writeback
   * cache, write-only becomes read-write and O_APPEND goes (the kernel sends the offsets). */
  sourceFlags(flags: number): number {
    if (!this.writeback) return flags;
    let f = flags & ~C.O_APPEND;
    if ((f & 3) === C.O_WRONLY) f = (f & ~3) | C.O_RDWR;
    return f;
  }

  /**
   * Reads the process umask again. Creations run on the calling thread when the umask
   * read when the addon loaded gives the mode they need: a program that changes its umask
   * later calls this (else such creations would get the old umask's mode). Returns it.
   */
  static refreshUmask(): number {
    return sys.refreshUmask();
  }

  /** The registered inode of identity `key`, if any. */
  registered(key: string): FuseInode | undefined {
    return this.registeredAs(key);
  }

  /** A backing id for open file `fd` (kernel passthrough), or undefined: then passthrough is
   * off from now on, and one line says why. */
  backingOpen(fd: number): number | undefined {
    const id = this.devNotifier ? this.devNotifier.backingOpen(fd) : -95;
    if (id > 0) return id;
    this.kernelPassthrough = false;
    const code = errnoName(id);
    this.ptLog(`tsfuse passthrough: kernel passthrough refused (FUSE_DEV_IOC_BACKING_OPEN: ${code}${code === 'EPERM' ? ', it needs CAP_SYS_ADMIN and no writeback cache' : ''}): ` +
      'files are read and written through the server');
    return undefined;
  }
  /** Releases backing id `id` (FUSE_DEV_IOC_BACKING_CLOSE). */
  backingClose(id: number): void {
    this.devNotifier?.backingClose(id);
  }

  override init(info: InitInfo): void {
    super.init(info);
    this.devNotifier = info.notifier;
    if (this.writeback) {
      if (!has(info.offered, InitFlag.WRITEBACK_CACHE)) {
        this.writeback = false;
        this.ptLog('tsfuse passthrough: the kernel offers no writeback cache: writes go through as they come');
      } else if (!has(info.want, InitFlag.WRITEBACK_CACHE)) {
        info.want += InitFlag.WRITEBACK_CACHE;
      }
    }
    if (this.kernelPassthrough) {
      if (!has(info.offered, InitFlag.PASSTHROUGH)) {
        this.kernelPassthrough = false;
        this.ptLog('tsfuse passthrough: the kernel offers no FUSE_PASSTHROUGH (Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH): files are read and written through the server');
      } else if (this.writeback || has(info.want, InitFlag.WRITEBACK_CACHE)) {
        this.kernelPassthrough = false;
        this.ptLog('tsfuse passthrough: kernel passthrough cannot be had with the writeback cache: files are read and written through the server');
      } else if (!has(info.want, InitFlag.PASSTHROUGH)) {
        info.want += InitFlag.PASSTHROUGH;
      }
    }
    // FUSE inodes are S_NOATIME: the kernel applies no atime flag of the mount, our reads
    // of the source are what moves its atimes. noatime and nodiratime are honoured here.
    this.noatime = info.atime === 'noatime';
    if (info.atime === 'strictatime') this.keepCache = false;
    this.dirNoatime = this.noatime || info.nodiratime === true;
    const want = (flag: number) => { if (has(info.offered, flag) && !has(info.want, flag)) info.want += flag; };
    // We clear setuid/setgid ourselves on write/truncate (root writes would keep them).
    want(InitFlag.HANDLE_KILLPRIV_V2);
    // The kernel keeps a symlink's target in its page cache: a symlink cannot change in
    // place (another target is another inode, which a lookup finds), so nothing goes stale.
    want(InitFlag.CACHE_SYMLINKS);
    // The kernel's word on the one supplementary group that decides a creation's
    // permission (the parent's group): used with the caller's /proc status (asCaller).
    want(InitFlag.CREATE_SUPP_GROUP);
    // With default_permissions the kernel checks permissions, and only with POSIX_ACL
    // does it read ACLs for that (POSIX_ACL would force default_permissions on, so not
    // without it). Then the kernel leaves the umask to us (DONT_MASK): the source
    // applies it only where the parent has no default ACL, as POSIX says.
    if (info.defaultPermissions && has(info.offered, InitFlag.POSIX_ACL) && has(info.offered, InitFlag.DONT_MASK)) {
      want(InitFlag.POSIX_ACL);
      want(InitFlag.DONT_MASK);
      this.umaskPerRequest = true;
    }
  }

  /** The mount is noatime: reads of the source leave its atimes alone. Set in init. */
  noatime = false;
  /** The mount is noatime or nodiratime: listings leave directory atimes alone. Set in init. */
  dirNoatime = false;

  /**
   * Opens `path` as `ctx`'s caller (as ourselves for null), with O_NOATIME if `noatime`.
   * The kernel allows O_NOATIME to the file's owner and to CAP_FOWNER only: for anyone
   * else (EPERM) the open is repeated without it, as tar and rsync do.
   */
  openAtime(ctx: Context | null, path: string, flags: number, noatime: boolean): number {
    const open = (f: number) => sys.openat(L.AT_FDCWD, path, f, 0, -1, -1);
    const asCaller = (f: number) => (ctx ? this.asCaller(ctx, () => open(f)) : open(f));
    if (noatime && !(flags & O_NOATIME)) {
      try {
        return asCaller(flags | O_NOATIME);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      }
    }
    return asCaller(flags);
  }

  /** DONT_MASK negotiated: creations run under the caller's umask. */
  private umaskPerRequest = false;
  /** The umask a creation for `ctx` runs under (on the addon's creator thread; the process
   * umask is never touched): 0 when the kernel applied the caller's already, else the caller's. */
  umask(ctx: Context): number {
    return this.umaskPerRequest ? ctx.umask : 0;
  }

  /** True while `asCaller` runs: nested calls run as the same caller. */
  private inCaller = false;
  /**
   * Runs synchronous `fn` with the caller's credentials: fsuid, fsgid and supplementary
   * groups (callerCreds: its /proc status, checked against the request's ids, merged with
   * the kernel's FUSE_CREATE_SUPP_GROUP group), switched for this thread only and for
   * creations on the addon's creator thread. Node's sync fs calls inside run as the caller
   * too. A root caller keeps our groups (its capabilities decide, not its groups).
   * Open-by-handle needs CAP_DAC_READ_SEARCH, which a non-root fsuid drops: call `withFd`
   * outside, `asCaller` inside.
   */
  asCaller<T>(ctx: Context, fn: () => T): T {
    // A root caller of a root server is us (it keeps our groups): nothing to switch.
    if (!this.asCallerOn || this.inCaller || (ctx.uid === 0 && ctx.uid === EUID && ctx.gid === EGID)) return fn();
    sys.become(ctx.uid, ctx.gid, ctx.uid === 0 ? null : this.groupsOf(ctx));
    this.inCaller = true;
    try {
      return fn();
    } finally {
      this.inCaller = false;
      sys.become(-1, -1, null);
    }
  }
  private readonly groupArrays = new WeakMap<readonly number[], Uint32Array>();
  private groupsOf(ctx: Context): Uint32Array {
    const { groups } = callerCreds(ctx, this.groupsMaxAge);
    let a = this.groupArrays.get(groups);
    if (!a) this.groupArrays.set(groups, (a = Uint32Array.from(groups)));
    return a;
  }
  /** Whether `gid` is the caller's fsgid or one of its supplementary groups. */
  inGroup(ctx: Context, gid: number): boolean {
    return ctx.gid === gid || callerCreds(ctx, this.groupsMaxAge).groups.includes(gid);
  }
  /** Whether the caller keeps setuid/setgid bits on a change it makes (CAP_FSETID). */
  callerFsetid(ctx: Context): boolean {
    return callerCreds(ctx, this.groupsMaxAge).fsetid;
  }

  /** The fd on the mount `mntId` for open_by_handle_at (held by the inode asking). */
  mountFd(mntId: number): number {
    const m = this.mounts.get(mntId);
    if (!m) throw new FuseError('ESTALE', `no fd for mount ${mntId}`);
    return m.fd;
  }
  /** One more inode holds a handle on mount `mntId`: opens its fd with `open` if none is. */
  private holdMount(mntId: number, open: () => number): void {
    const m = this.mounts.get(mntId);
    if (m) m.refs++;
    else this.mounts.set(mntId, { fd: open(), refs: 1 });
  }
  /** An inode holding a handle on mount `mntId` let go of it: the last one closes the fd. */
  releaseMount(mntId: number): void {
    const m = this.mounts.get(mntId);
    if (!m || --m.refs > 0) return;
    this.mounts.delete(mntId);
    closeSync(m.fd);
  }

  /**
   * A lookup of a name whose inode we know (the kernel revalidating its dentry, READDIRPLUS):
   * one statx by name, no open. The same (device, inode, mount) as `known`, which holds an fd
   * on its inode (so its number cannot have been reused), is the same file: `known`, with
   * these attributes. undefined: no such name. false: another file or an error — the caller
   * does the full lookup.
   */
  revalidate(dirfd: number, name: Uint8Array, ctx: Context, known: PtInode): PtInode | undefined | false {
    if (known.fd < 0) return false; // file-handle mode, or closed after its unlink
    const r = this.asCaller(ctx, () => sys.statat(dirfd, name, st, stBig));
    if (r === -ENOENT) return undefined;
    if (r < 0 || keyOf() !== known.key) return false;
    known.fresh = attrFromStatx();
    return known;
  }

  /** The fd limit was reported (once). */
  private saidNoFds = false;

  /** A new inode object for `name` in `dirfd` (the tree merges it with a known alias), or
   * undefined if there is no such name; other errors throw. One native call opens and stats. */
  lookupNode(dirfd: number, name: Uint8Array, ctx: Context): PtInode | undefined {
    const fd = this.asCaller(ctx, () => sys.lookupat(dirfd, name, st, stBig));
    if (fd >= 0) return this.nodeOf(fd, dirfd);
    if (fd === -ENOENT) return undefined;
    if ((fd === -EMFILE || fd === -ENFILE) && !this.saidNoFds) {
      this.saidNoFds = true;
      this.ptLog(`tsfuse passthrough: out of file descriptors (${errnoName(fd)}; RLIMIT_NOFILE ${this.nofile}): each inode the kernel ` +
        'holds keeps one open; lookups fail until the kernel forgets some. Raise the limit, or use --handles prefer (file handles, no fd per inode)');
    }
    throw new FuseError(-fd, `lookup of ${JSON.stringify(nameFromBytes(name))}`);
  }

  /** A new inode object for `name` in `dirfd` (the tree merges it with a known alias). */
  openNode(dirfd: number, name: Uint8Array | string, ctx: Context, follow = false): PtInode {
    if (!follow && typeof name !== 'string') {
      const node = this.lookupNode(dirfd, name, ctx);
      if (!node) throw new FuseError('ENOENT', `${JSON.stringify(nameFromBytes(name))} is gone`);
      return node;
    }
    const fd = this.asCaller(ctx, () => sys.openat(dirfd, name, L.O_PATH | (follow ? 0 : C.O_NOFOLLOW), 0, -1, -1));
    try {
      sys.statx(fd, '', L.AT_EMPTY_PATH, st, stBig);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return this.nodeOf(fd, dirfd);
  }

  /** The inode object for O_PATH `fd` (owned from now on), with `st` holding its statx. */
  private nodeOf(fd: number, dirfd: number): PtInode {
    let handle: Buffer | undefined;
    try {
      const mntId = st[STX.mntId];
      const key = keyOf();
      const fmt = st[STX.mode] & C.S_IFMT;
      if (this.mode !== 'never') {
        try {
          handle = sys.nameToHandleAt(fd, '', L.AT_EMPTY_PATH)[0];
          // A readable fd on the inode's mount: the directory itself, a regular file reopened,
          // else (device, fifo, socket, symlink) its directory, which is on the same mount.
          this.holdMount(mntId, () => fmt === C.S_IFDIR ? sys.openat(fd, '.', C.O_RDONLY | C.O_DIRECTORY, 0, -1, -1)
            : fmt === C.S_IFREG ? sys.openat(L.AT_FDCWD, `/proc/self/fd/${fd}`, C.O_RDONLY | C.O_NONBLOCK | C.O_NOCTTY, 0, -1, -1)
              : sys.openat(dirfd, '.', C.O_RDONLY | C.O_DIRECTORY, 0, -1, -1));
        } catch (e) {
          handle = undefined;
          if (this.mode === 'mandatory') throw e;
          // 'prefer': this inode (a filesystem without handles, an fd we cannot open) keeps its fd.
        }
      }
      const attr = attrFromStatx();
      if (handle) closeSync(fd);
      // Always a new object: the tree merges it into the known inode of this key (if
      // that is still registered) in the synchronous turn that hands it out.
      const node = new PtInode(this, handle ? -1 : fd, handle, mntId, handle ? `h${mntId}:${handle.toString('hex')}` : key);
      node.fresh = attr;
      return node;
    } catch (e) {
      if (!handle) try { closeSync(fd); } catch { /* closed */ }
      throw e;
    }
  }

  override destroy(): void {
    super.destroy();
    for (const m of this.mounts.values()) try { closeSync(m.fd); } catch { /* closed */ }
    this.mounts.clear();
  }
}
