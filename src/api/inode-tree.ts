/**
 * InodeTree: the low-level FileSystem implemented on a tree of FuseInodes.
 * It owns the node table, the lookup counts, the dentries and the open
 * handles; the contract is documented once, in src/api/inode.ts.
 */
import { FuseError } from './errors.js';
import type { Context } from './context.js';
import type { FileSystem } from './filesystem.js';
import { FuseInode, unlinkName, type DirEntry, type FileHandle } from './inode.js';
import type {
  Attr, AttrReply, CreateReply, DirentPlusSink, DirentSink, Entry, InitInfo, OpenReply, SetattrChanges,
} from './types.js';
import { FUSE_ROOT_ID } from '../abi/index.js';
import type { Notifier } from '../transport/index.js';

const RENAME_EXCHANGE = 2;

interface OpenFile {
  inode: FuseInode;
  handle: FileHandle | undefined;
  /** Directory listing snapshot taken at offset 0 (opendir handles). */
  entries?: DirEntry[];
}

export interface InodeStats {
  /** Inodes in the node table (root and persistent ones included). */
  inodes: number;
  /** Inodes the kernel holds references to (nlookup > 0), root excluded. */
  referenced: number;
  /** Sum of all lookup counts, root excluded. */
  lookups: number;
  /** Open file and directory handles. */
  handles: number;
}

export interface InodeTreeOptions {
  /** Entry/attr cache times for this tree (ms); default: the server's. */
  entryTimeout?: number;
  attrTimeout?: number;
  /** Called when a FORGET names a node id the tree does not know (should never happen). */
  onUnknownNode?: (nodeid: number, op: string) => void;
}

export class InodeTree implements FileSystem {
  /** node id → inode; owned here. Invariant: every inode in it has _nodeid = its key. */
  private readonly table = new Map<number, FuseInode>();
  /** identity() → inode, for merging hard links. */
  private readonly byIdentity = new Map<string | number | bigint, FuseInode>();
  /** fh → open file; fh 0 is never used. */
  private readonly files = new Map<number, OpenFile>();
  private nextNodeid = FUSE_ROOT_ID + 1;
  private nextFh = 1;
  private notifier: Notifier | undefined;
  getlk?: FileSystem['getlk'];
  setlk?: FileSystem['setlk'];

  constructor(readonly root: FuseInode, private readonly opts: InodeTreeOptions = {}) {
    if (!root.isDirectory) throw new TypeError('InodeTree: the root inode must be a directory (mode S_IFDIR)');
    root._nodeid = FUSE_ROOT_ID;
    root._nlookup = 1;
    root._persistent = true;
    this.table.set(FUSE_ROOT_ID, root);
    // Locks go to the filesystem only when the root's class implements them;
    // otherwise the kernel keeps locks locally (POSIX_LOCKS/FLOCK_LOCKS not asked for).
    const proto = FuseInode.prototype;
    if (root.getlk !== proto.getlk && root.setlk !== proto.setlk) {
      this.getlk = (ctx, nodeid, fh, owner, lock) => { const f = this.file(nodeid, fh); return f.inode.getlk(ctx, f.handle, owner, lock); };
      this.setlk = (ctx, nodeid, fh, owner, lock, wait, flock) => {
        const f = this.file(nodeid, fh);
        return f.inode.setlk(ctx, f.handle, owner, lock, wait, flock);
      };
    }
  }

  // ---- table ----

  /** The inode for a node id; ESTALE for ids the kernel should not be using. */
  get(nodeid: number): FuseInode {
    const i = this.table.get(nodeid);
    if (!i) throw new FuseError('ESTALE', `unknown node id ${nodeid}`);
    return i;
  }

  /**
   * Hands `child` to the kernel as `name` in `parent` (parent undefined: no
   * dentry, e.g. TMPFILE): find-or-create in the table, link the dentry, count
   * the lookup and build the Entry — all synchronously, so no FORGET can come
   * between the increment and the reply.
   */
  private handOut(parent: FuseInode | undefined, name: string, child: FuseInode, attr: Attr): Entry {
    const inode = this.adopt(child);
    if (parent) this.linkDentry(parent, name, inode);
    inode._nlookup++;
    return {
      nodeid: inode._nodeid,
      attr: attr.ino ? attr : { ...attr, ino: inode._nodeid },
      entryTimeout: this.opts.entryTimeout,
      attrTimeout: this.opts.attrTimeout,
    };
  }

  /** Puts `inode` (or the inode it is an alias of) in the table. */
  private adopt(inode: FuseInode): FuseInode {
    if (inode._nodeid && this.table.get(inode._nodeid) === inode) return inode;
    const id = inode.identity();
    if (id !== undefined) {
      const existing = this.byIdentity.get(id);
      if (existing && existing.acceptAlias(inode)) return existing;
      if (existing) existing._identity = undefined; // replaced: a different object with a reused key
      this.byIdentity.set(id, inode);
      inode._identity = id;
    }
    inode._nodeid = this.nextNodeid++;
    inode._notifier = this.notifier;
    this.table.set(inode._nodeid, inode);
    return inode;
  }

  private linkDentry(parent: FuseInode, name: string, child: FuseInode): void {
    if (parent._children.get(name) === child) return;
    const old = parent._children.get(name);
    if (old) this.removeName(parent, name, old);
    parent.addChild(name, child);
  }

  /** Drops the dentry; an inode that lost its last name stops being persistent. */
  private removeName(parent: FuseInode, name: string, child: FuseInode): void {
    unlinkName(parent, name, child);
    if (child._links.size === 0 && child._nodeid !== FUSE_ROOT_ID) this.lostLastName(child);
  }

  /** `inode` has no known name left: not persistent any more; it may release its backing. */
  private lostLastName(inode: FuseInode): void {
    inode._persistent = false;
    this.maybeUnlinked(inode);
    this.maybeDrop(inode);
  }

  /** Calls `onUnlinked()` once the inode has neither a known name nor an open file. */
  private maybeUnlinked(inode: FuseInode): void {
    if (inode._links.size > 0 || inode._opens > 0 || inode._nodeid === FUSE_ROOT_ID) return;
    if (this.table.get(inode._nodeid) !== inode) return;
    let released = false;
    try {
      released = inode.onUnlinked();
    } catch { /* a hook must not break the unlink that already happened: keep the backing */ }
    if (released) this.detachIdentity(inode);
  }

  private detachIdentity(inode: FuseInode): void {
    const id = inode._identity;
    if (id !== undefined && this.byIdentity.get(id) === inode) this.byIdentity.delete(id);
    inode._identity = undefined;
  }

  private maybeDrop(inode: FuseInode): void {
    if (inode._nlookup > 0 || inode._persistent || inode._nodeid === FUSE_ROOT_ID) return;
    if (this.table.get(inode._nodeid) !== inode) return;
    if (inode._opens > 0) return; // still open: it goes with its last release
    this.table.delete(inode._nodeid);
    this.detachIdentity(inode);
    for (const [parent, names] of [...inode._links]) for (const n of [...names]) unlinkName(parent, n, inode);
    try {
      inode.onForget();
    } catch { /* a hook must not break FORGET */ }
  }

  forget(nodeid: number, nlookup: number): void {
    const inode = this.table.get(nodeid);
    if (!inode) {
      this.opts.onUnknownNode?.(nodeid, 'FORGET');
      return;
    }
    if (nodeid === FUSE_ROOT_ID) return; // the root is never forgotten
    inode._nlookup = Math.max(0, inode._nlookup - nlookup);
    this.maybeDrop(inode);
  }

  init(info: InitInfo): void {
    this.notifier = info.notifier;
    for (const i of this.table.values()) i._notifier = this.notifier;
  }

  /** The session ended: the kernel sends no FORGETs at unmount, so release everything. */
  destroy(): void {
    for (const inode of [...this.table.values()]) {
      if (inode._nodeid === FUSE_ROOT_ID) continue;
      inode._nlookup = 0;
      this.table.delete(inode._nodeid);
      inode._notifier = undefined;
      try { inode.onForget(); } catch { /* ignore */ }
    }
    this.byIdentity.clear();
    for (const f of this.files.values()) f.inode._opens = 0;
    this.files.clear();
  }

  stats(): InodeStats {
    let referenced = 0;
    let lookups = 0;
    for (const i of this.table.values()) {
      if (i._nodeid === FUSE_ROOT_ID) continue;
      if (i._nlookup > 0) referenced++;
      lookups += i._nlookup;
    }
    return { inodes: this.table.size, referenced, lookups, handles: this.files.size };
  }

  // ---- entries ----

  private async entryFor(ctx: Context, parent: FuseInode | undefined, name: string, child: FuseInode): Promise<Entry> {
    const attr = await child.getattr(ctx);
    return this.handOut(parent, name, child, attr);
  }

  async lookup(ctx: Context, parent: number, name: string): Promise<Entry> {
    const p = this.get(parent);
    return this.entryFor(ctx, p, name, await p.lookup(ctx, name));
  }
  async mkdir(ctx: Context, parent: number, name: string, mode: number): Promise<Entry> {
    const p = this.get(parent);
    return this.entryFor(ctx, p, name, await p.mkdir(ctx, name, mode));
  }
  async mknod(ctx: Context, parent: number, name: string, mode: number, rdev: number): Promise<Entry> {
    const p = this.get(parent);
    return this.entryFor(ctx, p, name, await p.mknod(ctx, name, mode, rdev));
  }
  async symlink(ctx: Context, parent: number, name: string, target: string): Promise<Entry> {
    const p = this.get(parent);
    return this.entryFor(ctx, p, name, await p.symlink(ctx, name, target));
  }
  async link(ctx: Context, nodeid: number, newParent: number, newName: string): Promise<Entry> {
    const target = this.get(nodeid);
    const p = this.get(newParent);
    return this.entryFor(ctx, p, newName, await p.link(ctx, target, newName));
  }
  async create(ctx: Context, parent: number, name: string, mode: number, flags: number): Promise<CreateReply> {
    const p = this.get(parent);
    const c = await p.create(ctx, name, mode, flags);
    const attr = await c.inode.getattr(ctx, c.handle);
    const entry = this.handOut(p, name, c.inode, attr);
    return { entry, ...this.addFile(this.get(entry.nodeid), c.handle) };
  }
  async tmpfile(ctx: Context, parent: number, mode: number, flags: number): Promise<CreateReply> {
    const p = this.get(parent);
    const c = await p.tmpfile(ctx, mode, flags);
    const attr = await c.inode.getattr(ctx, c.handle);
    const entry = this.handOut(undefined, '', c.inode, attr);
    return { entry, ...this.addFile(this.get(entry.nodeid), c.handle) };
  }

  // ---- names ----

  async unlink(ctx: Context, parent: number, name: string): Promise<void> {
    const p = this.get(parent);
    await p.unlink(ctx, name);
    const c = p._children.get(name);
    if (c) this.removeName(p, name, c);
  }
  async rmdir(ctx: Context, parent: number, name: string): Promise<void> {
    const p = this.get(parent);
    await p.rmdir(ctx, name);
    const c = p._children.get(name);
    if (c) this.removeName(p, name, c);
  }
  async rename(ctx: Context, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    const p = this.get(parent);
    const np = this.get(newParent);
    await p.rename(ctx, name, np, newName, flags);
    const src = p._children.get(name);
    const dst = np._children.get(newName);
    if (src) unlinkName(p, name, src);
    if (dst) unlinkName(np, newName, dst);
    if (flags & RENAME_EXCHANGE) {
      if (dst) p.addChild(name, dst);
      if (src) np.addChild(newName, src);
      return;
    }
    if (src) np.addChild(newName, src);
    if (dst && dst !== src && dst._links.size === 0) this.lostLastName(dst);
  }

  // ---- attributes ----

  async getattr(ctx: Context, nodeid: number, fh: number | undefined): Promise<AttrReply> {
    const inode = this.get(nodeid);
    const attr = await inode.getattr(ctx, fh ? this.files.get(fh)?.handle : undefined);
    return { attr: attr.ino ? attr : { ...attr, ino: nodeid }, timeout: this.opts.attrTimeout };
  }
  async setattr(ctx: Context, nodeid: number, changes: SetattrChanges): Promise<AttrReply> {
    const inode = this.get(nodeid);
    const attr = await inode.setattr(ctx, changes, changes.fh ? this.files.get(changes.fh)?.handle : undefined);
    return { attr: attr.ino ? attr : { ...attr, ino: nodeid }, timeout: this.opts.attrTimeout };
  }
  statx(ctx: Context, nodeid: number, fh: number | undefined, flags: number, mask: number) {
    return this.get(nodeid).statx(ctx, flags, mask, fh ? this.files.get(fh)?.handle : undefined);
  }
  readlink(ctx: Context, nodeid: number) { return this.get(nodeid).readlink(ctx); }
  access(ctx: Context, nodeid: number, mask: number) { return this.get(nodeid).access(ctx, mask); }
  statfs(ctx: Context, nodeid: number) { return this.get(nodeid).statfs(ctx); }
  syncfs(ctx: Context, nodeid: number) { return this.get(nodeid).syncfs(ctx); }
  getxattr(ctx: Context, nodeid: number, name: string) { return this.get(nodeid).getxattr(ctx, name); }
  setxattr(ctx: Context, nodeid: number, name: string, value: Uint8Array, flags: number) {
    return this.get(nodeid).setxattr(ctx, name, value, flags);
  }
  listxattr(ctx: Context, nodeid: number) { return this.get(nodeid).listxattr(ctx); }
  removexattr(ctx: Context, nodeid: number, name: string) { return this.get(nodeid).removexattr(ctx, name); }

  // ---- open files ----

  /** Registers an open file. `counted`: `_opens` was already raised (before an await). */
  private addFile(inode: FuseInode, handle: FileHandle | undefined, entries?: DirEntry[], counted = false): OpenReply {
    const fh = this.nextFh++;
    this.files.set(fh, { inode, handle, entries });
    if (!counted) inode._opens++;
    return { fh, ...handle?.options };
  }

  /**
   * Runs an async open of `inode` with its open count raised first, so that an
   * UNLINK finishing while the open is pending does not let the inode release
   * its backing under a file about to be open. Undone if the open fails.
   */
  private async opening<T>(inode: FuseInode, fn: () => T | Promise<T>): Promise<T> {
    inode._opens++;
    try {
      return await fn();
    } catch (e) {
      inode._opens--;
      this.maybeUnlinked(inode);
      this.maybeDrop(inode);
      throw e;
    }
  }
  /** The open file `fh` of `nodeid` (fh 0 or unknown: the inode without a handle). */
  private file(nodeid: number, fh: number): OpenFile {
    const f = this.files.get(fh);
    if (f && f.inode._nodeid === nodeid) return f;
    return { inode: this.get(nodeid), handle: undefined };
  }

  async open(ctx: Context, nodeid: number, flags: number): Promise<OpenReply> {
    const inode = this.get(nodeid);
    const handle = (await this.opening(inode, () => inode.open(ctx, flags))) ?? undefined;
    return this.addFile(inode, handle, undefined, true);
  }
  read(ctx: Context, nodeid: number, fh: number, offset: number, size: number) {
    const f = this.file(nodeid, fh);
    return f.handle?.read ? f.handle.read(ctx, offset, size) : f.inode.read(ctx, f.handle, offset, size);
  }
  write(ctx: Context, nodeid: number, fh: number, offset: number, data: Uint8Array, flags: number) {
    const f = this.file(nodeid, fh);
    return f.handle?.write ? f.handle.write(ctx, offset, data, flags) : f.inode.write(ctx, f.handle, offset, data, flags);
  }
  flush(ctx: Context, nodeid: number, fh: number, lockOwner: bigint) {
    const f = this.file(nodeid, fh);
    return f.handle?.flush ? f.handle.flush(ctx, lockOwner) : f.inode.flush(ctx, f.handle, lockOwner);
  }
  fsync(ctx: Context, nodeid: number, fh: number, datasync: boolean) {
    const f = this.file(nodeid, fh);
    return f.handle?.fsync ? f.handle.fsync(ctx, datasync) : f.inode.fsync(ctx, f.handle, datasync);
  }
  async release(ctx: Context, nodeid: number, fh: number, flags: number): Promise<void> {
    const f = this.file(nodeid, fh);
    try {
      await (f.handle?.release ? f.handle.release(ctx, flags) : f.inode.release(ctx, f.handle, flags));
    } finally {
      this.closed(fh, f);
    }
  }

  /** `fh` was released: an unlinked inode may let go of its backing, a forgotten one leaves. */
  private closed(fh: number, f: OpenFile): void {
    if (this.files.get(fh) !== f) return; // fh unknown: `f` is the inode without a handle
    this.files.delete(fh);
    f.inode._opens--;
    this.maybeUnlinked(f.inode);
    this.maybeDrop(f.inode);
  }
  fallocate(ctx: Context, nodeid: number, fh: number, offset: number, length: number, mode: number) {
    const f = this.file(nodeid, fh);
    return f.inode.fallocate(ctx, f.handle, offset, length, mode);
  }
  lseek(ctx: Context, nodeid: number, fh: number, offset: number, whence: number) {
    const f = this.file(nodeid, fh);
    return f.inode.lseek(ctx, f.handle, offset, whence);
  }
  copyFileRange(ctx: Context, nodeIn: number, fhIn: number, offIn: number, nodeOut: number, fhOut: number, offOut: number, len: number, flags: number) {
    const a = this.file(nodeIn, fhIn);
    const b = this.file(nodeOut, fhOut);
    return a.inode.copyFileRange(ctx, a.handle, offIn, b.inode, b.handle, offOut, len, flags);
  }

  // ---- directories ----

  async opendir(ctx: Context, nodeid: number, flags: number): Promise<OpenReply> {
    const inode = this.get(nodeid);
    await this.opening(inode, () => inode.opendir(ctx, flags));
    return this.addFile(inode, undefined, undefined, true);
  }
  async releasedir(ctx: Context, nodeid: number, fh: number): Promise<void> {
    const f = this.file(nodeid, fh);
    try {
      await f.inode.releasedir(ctx);
    } finally {
      this.closed(fh, f);
    }
  }
  fsyncdir(ctx: Context, nodeid: number, _fh: number, datasync: boolean) {
    return this.get(nodeid).fsyncdir(ctx, datasync);
  }

  /** The listing of an open directory, taken once at offset 0: ".", "..", then the entries. */
  private async listing(ctx: Context, nodeid: number, fh: number, offset: number): Promise<{ dir: FuseInode; entries: DirEntry[] }> {
    const f = this.files.get(fh);
    const dir = f && f.inode._nodeid === nodeid ? f.inode : this.get(nodeid);
    if (f && f.entries && offset !== 0) return { dir, entries: f.entries };
    const parent = dir.parent ?? dir;
    const entries: DirEntry[] = [
      { name: '.', mode: dir.mode, ino: dir._nodeid, inode: dir },
      { name: '..', mode: parent.mode, ino: parent._nodeid || dir._nodeid },
      ...(await dir.readdir(ctx)),
    ];
    if (f) f.entries = entries;
    return { dir, entries };
  }

  async readdir(ctx: Context, nodeid: number, fh: number, offset: number, out: DirentSink): Promise<void> {
    const { entries } = await this.listing(ctx, nodeid, fh, offset);
    for (let i = offset; i < entries.length; i++) {
      const e = entries[i];
      const ino = e.ino ?? e.inode?._nodeid ?? 0;
      if (!out.add(e.name, ino || 0xffffffff, ((e.mode >>> 12) & 15), i + 1)) break;
    }
  }

  async readdirplus(ctx: Context, nodeid: number, fh: number, offset: number, out: DirentPlusSink): Promise<void> {
    const { dir, entries } = await this.listing(ctx, nodeid, fh, offset);
    for (let i = offset; i < entries.length; i++) {
      const e = entries[i];
      let entry: Entry;
      if (e.name === '.' || e.name === '..') {
        // Not counted as lookups: nodeid 0 tells the kernel "name only".
        entry = { nodeid: 0, attr: { ino: e.ino ?? 1, mode: e.mode } };
      } else {
        let child: FuseInode;
        let attr: Attr;
        try {
          // The listing is a snapshot from offset 0: a name unlinked or renamed away
          // since then must not be linked back in. Trust `e.inode` only while it is
          // still this directory's child of that name; else ask the directory again.
          child = e.inode && dir._children.get(e.name) === e.inode ? e.inode : await dir.lookup(ctx, e.name);
          attr = await child.getattr(ctx);
        } catch {
          continue; // vanished between listing and now
        }
        // Forgotten while getattr awaited (a FORGET in between): name only (nodeid 0,
        // which READDIRPLUS allows); the kernel looks it up when it needs it.
        if (child._nodeid && this.table.get(child._nodeid) !== child) entry = { nodeid: 0, attr: { ino: e.ino ?? 1, mode: e.mode } };
        else entry = this.handOut(dir, e.name, child, attr);
      }
      if (!out.add(e.name, entry, i + 1)) {
        if (entry.nodeid) this.forget(entry.nodeid, 1); // not sent: undo the count
        break;
      }
    }
  }
}
