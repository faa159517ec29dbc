/**
 * FuseInode: the base class filesystems extend (like go-fuse's fs.Inode).
 *
 * ## What the framework does for you (the lookup-count contract, written once)
 *
 * - **Node ids.** Every inode handed to the kernel gets a node id from a
 *   64-bit counter that is never reused within a session (generation 0; the
 *   pair is unique for the session). The root is node 1 and is never forgotten.
 * - **nlookup.** The count goes up by one in exactly one place, for every
 *   reply that hands the kernel an entry: LOOKUP, CREATE, MKNOD, MKDIR,
 *   SYMLINK, LINK, TMPFILE and every READDIRPLUS entry except "." and "..".
 *   FORGET and BATCH_FORGET lower it, saturating at 0. At 0 a non-persistent
 *   inode leaves the node table and the tree, and its `onForget()` runs —
 *   once its last open file is released, if any is still open.
 * - **No races with FORGET.** Find-or-create of the inode, the increment and
 *   the Entry that becomes the reply happen in one synchronous turn (after
 *   your async `lookup`/`getattr` have finished), so a FORGET read in between
 *   cannot drop an inode that is about to be handed out.
 * - **Interrupted replies.** If the kernel never receives a reply (the caller
 *   was interrupted), the lookup increment of its entry is undone and the file
 *   handle it carried (OPEN, OPENDIR, CREATE, TMPFILE) is released: no
 *   RELEASE will come for it.
 * - **Merging happens in that turn too.** An object returned by `lookup` that
 *   the kernel forgot meanwhile (a FORGET read while your `getattr` awaited)
 *   is handed out again under a new node id — fine for in-memory objects, but
 *   not for one whose `onForget()` released its resources. Such filesystems
 *   return a new object with its own resources (as the passthrough does); the
 *   framework merges it into the registered inode of the same `identity()`
 *   (`acceptAlias`) in the synchronous turn that hands it out.
 * - **Unmount.** The kernel sends no FORGETs at unmount: when the session
 *   ends every inode is released (`onForget()` runs for each) and the table is empty.
 * - **The tree.** Parent → child dentries are kept right by lookup, create,
 *   mknod, mkdir, symlink, link, unlink, rmdir and rename (RENAME_EXCHANGE
 *   swaps, an overwritten target loses its name). Hard links: an inode can have
 *   several (parent, name) links; objects returning the same `identity()` are
 *   merged into one inode.
 * - **Persistent inodes** (`makePersistent()`) stay in the table at nlookup 0:
 *   for prebuilt or in-memory trees whose data lives in the inode objects.
 *   Removing the last name (unlink/rmdir/rename over it) makes an inode
 *   non-persistent again, so it goes away once the kernel forgets it.
 *
 * - **Takeover.** Under a supervisor (src/api/supervisor.ts) the tree journals
 *   every node id it hands out (with the name and `saveIdentity()`), lookup
 *   counts, renames, unlinks and open files; a new server process after a crash
 *   restores them under the same ids by calling `restoreChild(name, saved)` on
 *   each restored directory, from the root down, and reopens the files with
 *   `open`/`opendir`. The defaults look the name up again and compare
 *   `saveIdentity()` (default `identity()`): right for a passthrough and for
 *   prebuilt trees. Data that lived only in the dead process (a memfs file) is
 *   not there to find: its ids answer ESTALE and the log says so.
 *
 * ## What you override
 *
 * Methods named after the syscalls. Each says what the kernel expects and what
 * the default does. Directory methods that create things return the new child
 * inode (a new object, or an existing one for links); the framework links it
 * in and counts the lookup. Errors: throw FuseError(errno) or a Node fs error.
 */
import { constants } from 'node:fs';
import { FuseError } from './errors.js';
import type { Context } from './context.js';
import type { Attr, Lock, OpenReply, SetattrChanges, StatFs, StatxReply, U64 } from './types.js';
import { NODE, NodeState } from './inode-state.js';

type R<T> = T | Promise<T>;

/** Per-open state returned by `open`/`create`: its methods serve that open file. */
export interface FileHandle {
  /** FOPEN_* reply flags for this open (direct_io, keep_cache …). */
  readonly options?: Omit<OpenReply, 'fh'>;
  /** READ: up to `size` bytes at `offset`; fewer means end of file (unless direct_io). Absent: the inode's `read`. */
  read?(ctx: Context, offset: bigint, size: number): R<Uint8Array>;
  /** WRITE: store `data` at `offset`; returns how many bytes were written (FUSE_WRITE_* in writeFlags). Absent: the inode's `write`. */
  write?(ctx: Context, offset: bigint, data: Uint8Array, writeFlags: number): R<number>;
  /** FLUSH: a close(2) of a descriptor of this open (several may come per open). Absent: the inode's `flush`. */
  flush?(ctx: Context, lockOwner: bigint): R<void>;
  /** FSYNC: make the data durable (the data only, not the metadata, when `datasync`). Absent: the inode's `fsync`. */
  fsync?(ctx: Context, datasync: boolean): R<void>;
  /** The last close; no more calls follow. */
  release?(ctx: Context, flags: number): R<void>;
}

/** One readdir entry. `inode` (if known) lets READDIRPLUS skip a lookup. */
export interface DirEntry {
  /** The entry's name (lossless, see names.ts). */
  name: string;
  /** File type bits (S_IFREG …); the permission bits are ignored. */
  mode: number;
  /** The inode number readdir reports (d_ino); default: the inode's, or the node id. */
  ino?: U64;
  /** The child's inode, when known: READDIRPLUS hands it out without calling lookup. */
  inode?: FuseInode;
}

/** One entry of a DirStream: a DirEntry and the cookie of the entry after it. */
export interface StreamEntry extends DirEntry {
  /** The offset the kernel passes back to continue after this entry: any non-zero 64-bit
   * value of the filesystem's choosing (the passthrough passes the source's d_off). */
  next: U64;
  /** Where the name's exact bytes are, if the stream has them: `nameLength` bytes of
   * `nameSrc` from `nameStart`. READDIR copies them into the reply as they are (`name` may
   * then be computed only when READDIRPLUS needs it). */
  nameSrc?: Uint8Array;
  /** Offset of the name in `nameSrc`. */
  nameStart?: number;
  /** Length of the name in `nameSrc`, in bytes. */
  nameLength?: number;
}

/**
 * An open directory that lists itself in pieces, returned by `opendir`: for
 * directories too big to list at once, or listings that must follow the
 * offsets of a source. Memory stays bounded: the framework keeps at most one
 * batch per open directory (the entries the kernel had no room for, served
 * first when it asks for the cookie where they start). Without a stream,
 * `readdir()` is called once per opendir and its whole result is kept.
 */
export interface DirStream {
  /** The next batch of entries after `cookie` (0n: from the start), "." and ".." included
   * if the directory lists them; an empty batch is the end. Called again with the cookie
   * of the last entry the kernel took, which may be any `next` this stream returned. */
  read(ctx: Context, cookie: bigint): R<readonly StreamEntry[]>;
  /** The directory was released (after `releasedir`): no more reads follow. */
  close?(): R<void>;
}

/** What `create`/`tmpfile` return. */
export interface Created {
  /** The new inode (the framework links it in and counts the lookup). */
  inode: FuseInode;
  /** The open file it was created as (CREATE/TMPFILE open it at once). */
  handle?: FileHandle;
}

const S_IFMT = 0o170000;

function enosys(): never {
  throw new FuseError('ENOSYS');
}

/**
 * The optional operations a filesystem can declare (`static supports` on its
 * root's class). An operation that is not declared is not offered to the
 * kernel at all: its opcode gets ENOSYS without calling anything (the kernel
 * then stops asking, or falls back: MKNOD+OPEN for CREATE, GETATTR for STATX,
 * local locks for GETLK/SETLK), and INIT does not negotiate what it needs
 * (POSIX_LOCKS/FLOCK_LOCKS for 'getlk'/'setlk', READDIRPLUS for
 * 'readdirplus'). A declared operation calls the inode's method on every
 * inode; an inode class that does not override it answers the method's
 * documented default (e.g. EPERM for `mkdir` on a file). Always offered, with
 * documented defaults: lookup, forget, getattr, opendir, readdir, releasedir,
 * fsyncdir, open, release, flush, fsync, statfs.
 */
export type InodeOp =
  | 'setattr' | 'statx' | 'access' | 'syncfs' | 'mkdir' | 'mknod' | 'symlink' | 'link' | 'create' | 'tmpfile'
  | 'unlink' | 'rmdir' | 'rename' | 'readlink' | 'read' | 'write' | 'fallocate' | 'lseek' | 'copyFileRange'
  | 'getlk' | 'setlk' | 'getxattr' | 'setxattr' | 'listxattr' | 'removexattr' | 'readdirplus';

/** The base class of a tree filesystem's nodes: override the syscall-named methods your files support; the framework keeps ids and lookup counts (see the module comment). */
export class FuseInode {
  /** The framework's bookkeeping (node id, lookup count, dentries, opens): not yours to touch. */
  readonly [NODE] = new NodeState();

  /** What this filesystem supports beyond the always-offered operations (see InodeOp).
   * Read from the root's class when the InodeTree is built. Default: none (read-only,
   * listing and lookup of a prebuilt tree). */
  static readonly supports: readonly InodeOp[] = [];

  /** @param mode - The file type (and default permission) bits, e.g. S_IFDIR | 0o755. */
  constructor(public mode: number) {}

  /** Node id the kernel knows this inode by; 0 until first handed out. */
  get nodeid(): number { return this[NODE].nodeid; }
  /** How many references the kernel holds (see the contract above); 0 when it holds none. */
  lookupCount(): number { return this[NODE].nlookup; }
  /** Whether `mode` says directory (S_IFDIR). */
  get isDirectory(): boolean { return (this.mode & S_IFMT) === constants.S_IFDIR; }
  /** Children the framework knows of (looked up, created or added). */
  get children(): ReadonlyMap<string, FuseInode> { return this[NODE].children; }
  /** One parent (the first link), or undefined for the root and unlinked inodes. */
  get parent(): FuseInode | undefined { return this[NODE].links.keys().next().value; }
  /** Number of names this inode has in the known tree. */
  get linkCount(): number {
    let n = 0;
    for (const names of this[NODE].links.values()) n += names.size;
    return n;
  }
  /** Open files and directories of this inode. */
  get openCount(): number { return this[NODE].opens; }

  /** Keep this inode in the table even when the kernel forgets it (prebuilt/in-memory trees). */
  makePersistent(): this {
    this[NODE].persistent = true;
    return this;
  }
  /** Whether the inode stays in the table at lookup count 0 (see `makePersistent`). */
  get persistent(): boolean { return this[NODE].persistent; }

  /** Adds `child` as `name` below this directory before the kernel asks (prebuilt trees, or
   * a file that appeared behind the kernel's back). Replaces an existing child of that
   * name; on a mounted tree the replaced child loses that name with the same accounting
   * as an unlink (it may be released), and you should `notifyEntry(name)` so the kernel
   * drops a cached dentry. */
  addChild(name: string, child: FuseInode): FuseInode {
    const tree = this[NODE].tree;
    if (tree) tree.linkDentry(this, name, child);
    else linkName(this, name, child);
    return child;
  }

  /** Drops the child `name` (it vanished behind the kernel's back), with the same
   * accounting as an unlink through the mount; returns the child, if there was one.
   * Tell the kernel too (`notifyDelete` or `notifyEntry`). */
  removeChild(name: string): FuseInode | undefined {
    const child = this[NODE].children.get(name);
    if (!child) return undefined;
    const tree = this[NODE].tree;
    if (tree) tree.removeName(this, name, child);
    else unlinkName(this, name, child);
    return child;
  }

  /** Identity for hard links: inodes whose identity is equal are one inode. Default: none. */
  identity(): string | number | bigint | undefined {
    return undefined;
  }

  // ---- takeover (a new server process continues the session after a crash) ----

  /**
   * What identifies this inode across a restart of the server (kept in the takeover
   * journal, msgpack-encoded: plain data, Uint8Array, bigint). `restoreChild` gets it back.
   * Default: `identity()`, or undefined.
   */
  saveIdentity(): unknown {
    return this.identity();
  }

  /**
   * Takeover: rebuild the child that was `name` below this (restored) directory, whose
   * `saveIdentity()` was `saved`. Return the inode, or throw (ESTALE, ENOENT …) if it
   * cannot be had back: the kernel's node id for it then answers ESTALE. The default
   * looks `name` up and accepts the result if its `saveIdentity()` equals `saved` (or if
   * nothing was saved): right for trees whose contents a new process rebuilds the same
   * (prebuilt trees, a passthrough), and failing loudly for data that lived only in the
   * dead process's memory (a memfs file: ENOENT in the new, empty tree).
   */
  restoreChild(ctx: Context, name: string, saved: unknown): R<FuseInode> {
    return then(this.lookup(ctx, name), (child) => {
      if (!child) throw new FuseError('ENOENT');
      if (saved !== undefined && !sameSaved(child.saveIdentity(), saved)) {
        throw new FuseError('ESTALE', `${JSON.stringify(name)} is another object now`);
      }
      return child;
    });
  }

  /** Takeover with kernel passthrough: the kernel still has backing id `id` for this
   * inode's open files (their FOPEN_PASSTHROUGH), registered by the dead server. The
   * inode's opens from now on must reply that id (the kernel refuses another backing file
   * for the same inode while one is in use) and close it after the last release. Default:
   * nothing (a filesystem without kernel passthrough never gets an id). */
  adoptBackingId(_id: number): void {}
  /** Takeover: backing id `id` (adopted, or not) is being closed because no restored open
   * file uses it: forget it. Default: nothing. */
  releaseBackingId(_id: number): void {}

  // ---- hooks ----

  /** The kernel dropped its last reference (or the session ended) and this inode left the table. */
  onForget(): void {}
  /** The inode has no name the framework knows of any more (unlink, rmdir, rename over
   * it, a lookup that found another inode or nothing under its last name) and no open
   * file: called at that moment, or at the last release if files were open then. Also
   * called when it lost a name but the framework still knows others (`linkCount > 0`):
   * those may be stale, removed or renamed behind the framework's back (a passthrough
   * whose source changed). Return true if the inode is gone and released its backing
   * (e.g. its source has no link left and it closed its fd): its identity is then
   * unregistered, any names it still had are dropped from the tree as stale, and aliases
   * found later become new inodes. Return false while it still exists. The kernel may
   * still hold the inode (nlookup > 0) and send GETATTR for it. */
  onUnlinked(): boolean { return false; }
  /** A newly looked-up object `newer` has this inode's identity (a hard link or the same
   * file again). Return true to merge (the framework keeps this inode and drops `newer`;
   * take over its resources if useful), false if `newer` is a different object after all
   * (e.g. the old file was deleted and its number reused): it then replaces this one. */
  acceptAlias(_newer: FuseInode): boolean { return true; }

  // ---- notifications (no-ops before mount) ----

  /** Tell the kernel this inode's attributes and data in [offset, offset+length) changed
   * behind its back (length -1: to the end; offset -1: attributes only). */
  notifyContent(offset = 0, length = -1): Promise<number> {
    return this[NODE].nodeid && this[NODE].notifier ? this[NODE].notifier.invalInode(this[NODE].nodeid, offset, length) : Promise.resolve(0);
  }
  /** Tell the kernel the entry `name` below this directory changed (expireOnly: mark it stale only). */
  notifyEntry(name: string, expireOnly = false): Promise<number> {
    return this[NODE].nodeid && this[NODE].notifier ? this[NODE].notifier.invalEntry(this[NODE].nodeid, name, expireOnly) : Promise.resolve(0);
  }
  /** Tell the kernel `name` (which was `child`) was deleted from this directory. */
  notifyDelete(name: string, child: FuseInode): Promise<number> {
    return this[NODE].nodeid && child[NODE].nodeid && this[NODE].notifier ? this[NODE].notifier.delete(this[NODE].nodeid, child[NODE].nodeid, name) : Promise.resolve(0);
  }
  /** Put data into the kernel's page cache for this inode. */
  notifyStore(offset: number, data: Uint8Array): Promise<number> {
    return this[NODE].nodeid && this[NODE].notifier ? this[NODE].notifier.store(this[NODE].nodeid, offset, data) : Promise.resolve(0);
  }
  /** Read back what the kernel has cached for this inode. */
  retrieveCache(offset: number, size: number): Promise<Uint8Array> {
    if (!this[NODE].nodeid || !this[NODE].notifier) return Promise.resolve(new Uint8Array(0));
    return this[NODE].notifier.retrieve(this[NODE].nodeid, offset, size);
  }

  // ---- attributes ----

  /** GETATTR (stat). Default: `{ ino: nodeid, mode }` with nlink 1 (2 for directories).
   * `handle` is set when called through an open file (fstat). */
  getattr(_ctx: Context, _handle?: FileHandle): R<Attr> {
    return { ino: this[NODE].nodeid, mode: this.mode, nlink: this.isDirectory ? 2 : 1 };
  }
  /** SETATTR (chmod/chown/truncate/utimens): apply `changes`, return the new attributes.
   * Default ENOSYS (the caller sees "Function not implemented"). */
  setattr(_ctx: Context, _changes: SetattrChanges, _handle?: FileHandle): R<Attr> { return enosys(); }
  /** STATX (7.39). Default ENOSYS: the kernel falls back to GETATTR for good. */
  statx(_ctx: Context, _flags: number, _mask: number, _handle?: FileHandle): R<StatxReply> { return enosys(); }
  /** ACCESS (only without default_permissions). Default ENOSYS: the kernel stops asking and allows. */
  access(_ctx: Context, _mask: number): R<void> { return enosys(); }
  /** STATFS. Default: zeros with namelen 255. */
  statfs(_ctx: Context): R<StatFs> { return {}; }
  /** SYNCFS (sent for the root). Default: nothing. */
  syncfs(_ctx: Context): R<void> {}

  // ---- directories ----

  /** LOOKUP `name`: return the child inode, or `undefined` (or throw ENOENT) when there is
   * none: `undefined` is cheaper than a thrown error on a path where "no such name" is normal
   * (a negative lookup before every create, a search along $PATH). Default: the known child of
   * that name (prebuilt trees), else undefined. */
  lookup(_ctx: Context, name: string): R<FuseInode | undefined> {
    return this[NODE].children.get(name);
  }
  /** READDIR/READDIRPLUS listing, without "." and ".." (the framework adds them). Called once
   * per opendir (offset 0); the result is served in pieces. Default: the known children. */
  readdir(_ctx: Context): R<Iterable<DirEntry>> {
    return [...this[NODE].children].map(([name, inode]) => ({ name, mode: inode.mode, inode }));
  }
  /** OPENDIR. Return a DirStream to list this open directory in pieces (READDIR and
   * READDIRPLUS then read it instead of `readdir()`), or nothing for the snapshot from
   * `readdir()`. Default: allowed, snapshot. */
  opendir(_ctx: Context, _flags: number): R<void | DirStream> {}
  /** RELEASEDIR. Default: nothing. */
  releasedir(_ctx: Context): R<void> {}
  /** FSYNCDIR. Default: nothing. */
  fsyncdir(_ctx: Context, _datasync: boolean): R<void> {}
  /** MKDIR `name` with `mode` (umask applied unless FUSE_DONT_MASK; see ctx.umask).
   * Return the new directory inode. Default ENOSYS. */
  mkdir(_ctx: Context, _name: string, _mode: number): R<FuseInode> { return enosys(); }
  /** MKNOD: regular files (when create is missing), fifos, sockets, devices. Default ENOSYS. */
  mknod(_ctx: Context, _name: string, _mode: number, _rdev: number): R<FuseInode> { return enosys(); }
  /** SYMLINK `name` → `target`. Default ENOSYS. */
  symlink(_ctx: Context, _name: string, _target: string): R<FuseInode> { return enosys(); }
  /** LINK: give `target` the new name `name` here; return the inode (normally `target`). Default ENOSYS. */
  link(_ctx: Context, _target: FuseInode, _name: string): R<FuseInode> { return enosys(); }
  /** CREATE: make and open `name`. Default ENOSYS: the kernel uses MKNOD + OPEN instead. */
  create(_ctx: Context, _name: string, _mode: number, _flags: number): R<Created> { return enosys(); }
  /** TMPFILE (O_TMPFILE): an unnamed, opened file. Default ENOSYS. */
  tmpfile(_ctx: Context, _mode: number, _flags: number): R<Created> { return enosys(); }
  /** UNLINK `name` (the framework then drops the dentry). Default ENOSYS. */
  unlink(_ctx: Context, _name: string): R<void> { return enosys(); }
  /** RMDIR `name` (must be empty: ENOTEMPTY). Default ENOSYS. */
  rmdir(_ctx: Context, _name: string): R<void> { return enosys(); }
  /** RENAME `name` to `newName` in `newParent`. flags: RENAME_NOREPLACE 1, RENAME_EXCHANGE 2,
   * RENAME_WHITEOUT 4 (EINVAL if unsupported). The framework moves the dentries. Default ENOSYS. */
  rename(_ctx: Context, _name: string, _newParent: FuseInode, _newName: string, _flags: number): R<void> { return enosys(); }

  // ---- files ----

  /** READLINK. Default EINVAL (not a symlink). */
  readlink(_ctx: Context): R<string | Uint8Array> { throw new FuseError('EINVAL'); }
  /** OPEN with open(2) flags. Return a FileHandle for per-open state (its methods then
   * serve this open), or nothing to use the inode's own read/write. Default: allowed. */
  open(_ctx: Context, _flags: number): R<FileHandle | void> {}
  /** READ (when the handle has no read). Default ENOSYS. */
  read(_ctx: Context, _handle: FileHandle | undefined, _offset: bigint, _size: number): R<Uint8Array> { return enosys(); }
  /** WRITE (when the handle has no write): return bytes written. Default ENOSYS. */
  write(_ctx: Context, _handle: FileHandle | undefined, _offset: bigint, _data: Uint8Array, _flags: number): R<number> { return enosys(); }
  /** FLUSH on every close(2). Default: nothing. */
  flush(_ctx: Context, _handle: FileHandle | undefined, _lockOwner: bigint): R<void> {}
  /** FSYNC. Default: nothing. */
  fsync(_ctx: Context, _handle: FileHandle | undefined, _datasync: boolean): R<void> {}
  /** RELEASE (last close) when the handle has no release. Default: nothing. */
  release(_ctx: Context, _handle: FileHandle | undefined, _flags: number): R<void> {}
  /** FALLOCATE with fallocate(2) mode. Default EOPNOTSUPP. */
  fallocate(_ctx: Context, _handle: FileHandle | undefined, _offset: bigint, _length: bigint, _mode: number): R<void> {
    throw new FuseError('EOPNOTSUPP');
  }
  /** LSEEK with SEEK_DATA (3) / SEEK_HOLE (4). Default ENOSYS: the kernel treats the file as all data. */
  lseek(_ctx: Context, _handle: FileHandle | undefined, _offset: bigint, _whence: number): R<U64> { return enosys(); }
  /** COPY_FILE_RANGE to `out`. Default ENOSYS: the kernel copies through read/write. */
  copyFileRange(_ctx: Context, _handle: FileHandle | undefined, _offIn: bigint, _out: FuseInode, _outHandle: FileHandle | undefined,
    _offOut: bigint, _len: bigint, _flags: bigint): R<U64> { return enosys(); }
  /** GETLK. Only used when the root's class overrides getlk and setlk (else the kernel locks locally). */
  getlk(_ctx: Context, _handle: FileHandle | undefined, _owner: bigint, _lock: Lock): R<Lock> { return enosys(); }
  /** SETLK/SETLKW/flock. Only used when the root's class overrides it. */
  setlk(_ctx: Context, _handle: FileHandle | undefined, _owner: bigint, _lock: Lock, _wait: boolean, _flock: boolean): R<void> { return enosys(); }

  // ---- extended attributes ----

  /** GETXATTR: the value, or ENODATA. Default ENODATA. */
  getxattr(_ctx: Context, _name: string): R<Uint8Array> { throw new FuseError('ENODATA'); }
  /** SETXATTR (flags XATTR_CREATE 1 / XATTR_REPLACE 2). Default EOPNOTSUPP. */
  setxattr(_ctx: Context, _name: string, _value: Uint8Array, _flags: number): R<void> { throw new FuseError('EOPNOTSUPP'); }
  /** LISTXATTR: the names. Default none. */
  listxattr(_ctx: Context): R<string[]> { return []; }
  /** REMOVEXATTR, or ENODATA. Default ENODATA. */
  removexattr(_ctx: Context, _name: string): R<void> { throw new FuseError('ENODATA'); }
}

function then<T, U>(v: R<T>, f: (t: T) => R<U>): R<U> {
  return typeof (v as { then?: unknown } | null)?.then === 'function' ? (v as Promise<T>).then(f) : f(v as T);
}

/** Structural equality of two saveIdentity() values (as msgpack gives them back). */
export function sameSaved(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'bigint' || typeof b === 'bigint') { // the journal gives 64-bit values back as numbers
    const big = (v: unknown) => (typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v as number) : undefined);
    return big(a) !== undefined && big(a) === big(b);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameSaved(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !(a instanceof Uint8Array) && !(b instanceof Uint8Array)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => sameSaved((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

/** Adds the dentry `name` → `child` below `parent`, replacing any other child of that
 * name (tree bookkeeping only: the caller accounts for the replaced one). */
export function linkName(parent: FuseInode, name: string, child: FuseInode): void {
  const old = parent[NODE].children.get(name);
  if (old === child) return;
  if (old) unlinkName(parent, name, old);
  parent[NODE].children.set(name, child);
  let names = child[NODE].links.get(parent);
  if (!names) child[NODE].links.set(parent, (names = new Set()));
  names.add(name);
  child[NODE].tree = parent[NODE].tree;
}

/** Removes the dentry `name` → `child` below `parent` (tree bookkeeping only). */
export function unlinkName(parent: FuseInode, name: string, child: FuseInode): void {
  if (parent[NODE].children.get(name) === child) parent[NODE].children.delete(name);
  const names = child[NODE].links.get(parent);
  if (names) {
    names.delete(name);
    if (names.size === 0) child[NODE].links.delete(parent);
  }
}
