/**
 * The low-level filesystem interface: node-id based, one method per opcode,
 * like libfuse's lowlevel ops and fuse-backend-rs's FileSystem trait.
 *
 * Names are strings decoded losslessly from the kernel's bytes (invalid UTF-8
 * bytes become U+DC80…U+DCFF; `nameToBytes` gives the exact bytes back).
 * 64-bit values the kernel sends (offsets, u64 sizes, lock ranges, readdir
 * cookies) are bigints; what you return may be a number or a bigint (U64).
 * Node ids and file handles you return are numbers below 2^53. A result of
 * the wrong type or out of range is answered EIO with one log line.
 *
 * Every method is optional. A missing method answers ENOSYS, which the kernel
 * remembers for the rest of the connection for most opcodes (so ENOSYS is a
 * contract: "never ask again"), except where a default is documented.
 * Methods may return a value or a Promise. Errors: throw/reject with a
 * FuseError(errno) or a Node fs error (mapped by `code`); anything else is EIO
 * plus a log line.
 *
 * Lookup counts (low-level contract, as in libfuse): every successful reply
 * that carries an Entry (lookup, mknod, mkdir, symlink, link, create, tmpfile,
 * and each readdirplus entry other than "." and "..") adds one to that node's
 * lookup count; `forget(nodeid, n)` takes n away; at 0 the kernel has
 * forgotten the node. If an Entry reply cannot be delivered (the request was
 * interrupted), the Server calls `forget(nodeid, 1)` for you so the counts stay
 * right. The kernel sends no FORGET at unmount: `destroy` is the end.
 * The `FuseInode` layer (src/api/inode.ts) keeps these counts for you.
 */
import type { Context } from './context.js';
import type {
  AttrReply, CreateReply, DirentPlusSink, DirentSink, Entry, InitInfo, IoctlReply, Lock, OpenReply,
  SetattrChanges, StatFs, StatxReply, U64,
} from './types.js';

type R<T> = T | Promise<T>;

/** The low-level interface a Server dispatches to: one optional method per opcode (see the module comment). */
export interface FileSystem {
  /** INIT: the connection is being set up. Adjust `info.want` to ask for (or drop) kernel
   * features. Throwing refuses the mount (mount() rejects with that error). Default: nothing. */
  init?(info: InitInfo): R<void>;
  /** The session ended (unmount, DESTROY, or connection loss). Release everything;
   * no FORGETs follow. Default: nothing. */
  destroy?(): R<void>;

  /** LOOKUP `name` in directory `parent`. Return the Entry (counts as a lookup), or
   * `{ nodeid: 0, entryTimeout }` for a cacheable negative entry, or throw ENOENT. */
  lookup?(ctx: Context, parent: number, name: string): R<Entry>;
  /** FORGET/BATCH_FORGET: the kernel dropped `nlookup` references to `nodeid`. Never
   * answered. Default: nothing (fine for filesystems with static node ids). */
  forget?(nodeid: number, nlookup: number): void;
  /** GETATTR (stat). `fh` is set when the kernel asks through an open file (fstat). */
  getattr?(ctx: Context, nodeid: number, fh: number | undefined): R<AttrReply>;
  /** SETATTR (chmod, chown, truncate, utimens). Return the new attributes. */
  setattr?(ctx: Context, nodeid: number, changes: SetattrChanges): R<AttrReply>;
  /** READLINK: the symlink's target. */
  readlink?(ctx: Context, nodeid: number): R<string | Uint8Array>;
  /** SYMLINK `name` → `target` in `parent`. */
  symlink?(ctx: Context, parent: number, name: string, target: string): R<Entry>;
  /** MKNOD (regular files when CREATE is missing, fifos, sockets, devices). */
  mknod?(ctx: Context, parent: number, name: string, mode: number, rdev: number): R<Entry>;
  /** MKDIR; `mode` has no S_IFDIR bit on some kernels (add it yourself). */
  mkdir?(ctx: Context, parent: number, name: string, mode: number): R<Entry>;
  /** UNLINK `name` in `parent` (the node may live on: open files, other links, lookups). */
  unlink?(ctx: Context, parent: number, name: string): R<void>;
  /** RMDIR: ENOTEMPTY if not empty. */
  rmdir?(ctx: Context, parent: number, name: string): R<void>;
  /** RENAME/RENAME2. `flags`: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2), RENAME_WHITEOUT (4);
   * answer EINVAL for flags you do not support. */
  rename?(ctx: Context, parent: number, name: string, newParent: number, newName: string, flags: number): R<void>;
  /** LINK: a new name `newName` in `newParent` for `nodeid`. */
  link?(ctx: Context, nodeid: number, newParent: number, newName: string): R<Entry>;
  /** OPEN with open(2) `flags`. Default when missing: the kernel is told ENOSYS, and with
   * FUSE_NO_OPEN_SUPPORT it stops sending OPEN ("zero-message open", fh 0). */
  open?(ctx: Context, nodeid: number, flags: number): R<OpenReply>;
  /** READ `size` bytes at `offset` (0 … 2^63-1). Return at most `size` bytes (a Uint8Array);
   * fewer only at end of file (or with direct_io). */
  read?(ctx: Context, nodeid: number, fh: number, offset: bigint, size: number): R<Uint8Array>;
  /** WRITE `data` at `offset` (0 … 2^63-1; an offset your store cannot take is EFBIG, as
   * the kernel answers past s_maxbytes); return the number of bytes written (0 … data.length). `data` is a copy the
   * handler may keep. `writeFlags`: FUSE_WRITE_CACHE, FUSE_WRITE_KILL_SUIDGID … */
  write?(ctx: Context, nodeid: number, fh: number, offset: bigint, data: Uint8Array, writeFlags: number): R<number>;
  /** STATFS. Default when missing: a zeroed statfs with namelen 255 and bsize 512 (as libfuse). */
  statfs?(ctx: Context, nodeid: number): R<StatFs>;
  /** RELEASE: the last close of an open file. Errors are ignored by the kernel. */
  release?(ctx: Context, nodeid: number, fh: number, flags: number, lockOwner: bigint, flush: boolean): R<void>;
  /** FSYNC (`datasync`: fdatasync). */
  fsync?(ctx: Context, nodeid: number, fh: number, datasync: boolean): R<void>;
  /** SETXATTR; `flags`: XATTR_CREATE (1) / XATTR_REPLACE (2). */
  setxattr?(ctx: Context, nodeid: number, name: string, value: Uint8Array, flags: number): R<void>;
  /** GETXATTR: return the whole value; the Server answers size probes (size 0) and ERANGE.
   * Missing attribute: ENODATA. */
  getxattr?(ctx: Context, nodeid: number, name: string): R<Uint8Array>;
  /** LISTXATTR: return the names; the Server encodes them, answers size probes and ERANGE. */
  listxattr?(ctx: Context, nodeid: number): R<string[]>;
  /** REMOVEXATTR: ENODATA if absent. */
  removexattr?(ctx: Context, nodeid: number, name: string): R<void>;
  /** FLUSH: called on every close(2) of a file descriptor. */
  flush?(ctx: Context, nodeid: number, fh: number, lockOwner: bigint): R<void>;
  /** OPENDIR. Default when missing: ENOSYS (with FUSE_NO_OPENDIR_SUPPORT: no more OPENDIRs). */
  opendir?(ctx: Context, nodeid: number, flags: number): R<OpenReply>;
  /** READDIR from `offset` (0 = start; else a `nextOffset` you gave). Add entries until
   * `out.add` returns false. Include "." and ".." if you want them listed. */
  readdir?(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentSink): R<void>;
  /** READDIRPLUS: like readdir with an Entry per name. Only requested when implemented.
   * An entry (other than "." and "..") counts as a lookup once `out.add` returned true for
   * it; one that add() refused (false: the reply is full) or threw on was not sent. If the
   * listing then fails or is never delivered, the Server forgets the counted ones for you. */
  readdirplus?(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentPlusSink): R<void>;
  /** RELEASEDIR */
  releasedir?(ctx: Context, nodeid: number, fh: number, flags: number): R<void>;
  /** FSYNCDIR */
  fsyncdir?(ctx: Context, nodeid: number, fh: number, datasync: boolean): R<void>;
  /** GETLK: the first lock that would conflict with `lock`, or `lock` with type F_UNLCK. */
  getlk?(ctx: Context, nodeid: number, fh: number, owner: bigint, lock: Lock): R<Lock>;
  /** SETLK/SETLKW (`wait`), and flock(2) when `flock` (FUSE_LK_FLOCK). Missing getlk/setlk:
   * the kernel does locking locally (POSIX_LOCKS/FLOCK_LOCKS are not requested). */
  setlk?(ctx: Context, nodeid: number, fh: number, owner: bigint, lock: Lock, wait: boolean, flock: boolean): R<void>;
  /** ACCESS (access(2) without default_permissions). Default when missing: ENOSYS, after
   * which the kernel allows all access checks. */
  access?(ctx: Context, nodeid: number, mask: number): R<void>;
  /** CREATE: make and open `name` atomically. Missing: the kernel uses MKNOD + OPEN. */
  create?(ctx: Context, parent: number, name: string, mode: number, flags: number): R<CreateReply>;
  /** BMAP (block-device filesystems only). */
  bmap?(ctx: Context, nodeid: number, blocksize: number, block: bigint): R<U64>;
  /** IOCTL: restricted ioctls only (the kernel passes `inData` of the size the command says). */
  ioctl?(ctx: Context, nodeid: number, fh: number, cmd: number, arg: bigint, inData: Uint8Array, outSize: number, flags: number): R<IoctlReply>;
  /** POLL: return the ready events (POLLIN…); keep `kh` to wake the poller later. */
  poll?(ctx: Context, nodeid: number, fh: number, kh: bigint, events: number, flags: number): R<number>;
  /** FALLOCATE with fallocate(2) `mode`. */
  fallocate?(ctx: Context, nodeid: number, fh: number, offset: bigint, length: bigint, mode: number): R<void>;
  /** LSEEK (SEEK_DATA = 3 / SEEK_HOLE = 4; others are handled by the kernel). */
  lseek?(ctx: Context, nodeid: number, fh: number, offset: bigint, whence: number): R<U64>;
  /** COPY_FILE_RANGE / COPY_FILE_RANGE_64: return the number of bytes copied. */
  copyFileRange?(ctx: Context, nodeIn: number, fhIn: number, offIn: bigint, nodeOut: number, fhOut: number, offOut: bigint, len: bigint, flags: bigint): R<U64>;
  /** SYNCFS */
  syncfs?(ctx: Context, nodeid: number): R<void>;
  /** TMPFILE (O_TMPFILE): an unnamed file in `parent`, opened. */
  tmpfile?(ctx: Context, parent: number, mode: number, flags: number): R<CreateReply>;
  /** STATX (7.39): statx(2) with `mask`/`flags`. Missing: the kernel falls back to GETATTR. */
  statx?(ctx: Context, nodeid: number, fh: number | undefined, flags: number, mask: number): R<StatxReply>;
  /** A word for the debug trace naming who answers requests on `nodeid` (a Vfs: the
   * backend's path, shown as "[/a]"). Default: nothing. */
  traceTag?(nodeid: number): string | undefined;
  /** Filesystem-specific counters merged into `session.stats()` (e.g. live inodes). */
  stats?(): object;
}

/** FileSystem method names, for capability checks. */
export type FileSystemMethod = keyof FileSystem;
