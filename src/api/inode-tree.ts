/**
 * InodeTree: the low-level FileSystem implemented on a tree of FuseInodes.
 * It owns the node table, the lookup counts, the dentries and the open
 * handles; the contract is documented once, in src/api/inode.ts.
 */
import { FuseError } from './errors.js';
import type { Context } from './context.js';
import type { FileSystem } from './filesystem.js';
import {
  FuseInode, linkName, unlinkName, type Created, type DirEntry, type DirStream, type FileHandle, type InodeOp, type StreamEntry,
} from './inode.js';
import { NODE } from './inode-state.js';
import type {
  Attr, AttrReply, CreateReply, DirentPlusSink, DirentSink, Entry, InitInfo, Lock, OpenReply, SetattrChanges, U64,
} from './types.js';
import { FUSE_ROOT_ID, nameFromBytes, nameToBytes } from '../abi/index.js';
import { RequestContext } from './context.js';
import type { JournalRecord, JournalWriter } from './journal.js';
import type { Notifier } from '../transport/index.js';

/** A negative LOOKUP reply (cached for the server's negativeTimeout). */
const NEGATIVE: Entry = Object.freeze({ nodeid: 0 }) as Entry;

const RENAME_EXCHANGE = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;

/** What a takeover restored. */
export interface RestoreReport {
  /** Node ids restored (the root not counted). */
  nodes: number;
  /** Node ids that answer ESTALE. */
  lostNodes: number;
  /** Open files and directories reopened. */
  files: number;
  /** File handles that answer ESTALE. */
  lostFiles: number;
}

interface OpenFile {
  inode: FuseInode;
  handle: FileHandle | undefined;
  /** The open(2) flags it was opened with (for a takeover's reopen). */
  flags?: number;
  /** A directory (OPENDIR). */
  dir?: boolean;
  /** Directory listing snapshot taken at offset 0 (opendir handles without a stream). */
  entries?: DirEntry[];
  /** The DirStream opendir returned, and the rest of its last batch the kernel had no
   * room for (`from`: the cookie where `entries[i]` starts). */
  stream?: DirStream;
  pending?: { entries: readonly StreamEntry[]; i: number; from: bigint };
}

/** Counts of what an InodeTree holds, for `stats()` and leak checks. */
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

/** Options of an InodeTree. */
export interface InodeTreeOptions {
  /** Entry/attr cache times for this tree (ms); default: the server's. */
  entryTimeout?: number;
  /** Attribute cache time for this tree (ms); default: the server's. */
  attrTimeout?: number;
  /** Called when a FORGET names a node id the tree does not know (should never happen). */
  onUnknownNode?: (nodeid: number, op: string) => void;
}

/** The FileSystem that serves a tree of FuseInodes: it owns node ids, lookup counts, dentries and open files. */
export class InodeTree implements FileSystem {
  /** node id → inode; owned here. Invariant: every inode in it has _nodeid = its key. */
  private readonly table = new Map<number, FuseInode>();
  /** identity() → inode, for merging hard links. */
  private readonly byIdentity = new Map<string | number | bigint, FuseInode>();
  /** The registered inode whose identity() is `id` (the one a newcomer of that identity
   * will be merged into when it is handed out), if any. */
  protected registeredAs(id: string | number | bigint): FuseInode | undefined {
    return this.byIdentity.get(id);
  }
  /** fh → open file; fh 0 is never used. */
  private readonly files = new Map<number, OpenFile>();
  private nextNodeid = FUSE_ROOT_ID + 1;
  private nextFh = 1;
  private notifier: Notifier | undefined;
  /** The takeover journal (set by the supervised server): every change of what the kernel
   * holds is recorded before the reply that makes it. */
  journal: JournalWriter | undefined;
  /** Node ids (→ lookup count) a takeover could not restore: they answer ESTALE. */
  private readonly lostNodes = new Map<number, number>();
  /** File handles a takeover could not reopen: they answer ESTALE. */
  private readonly lostFiles = new Set<number>();
  /** The operations this filesystem declared (the root class's `supports`). */
  readonly supports: ReadonlySet<InodeOp>;

  /** @param root - The root directory's inode: node 1, never forgotten. */
  constructor(readonly root: FuseInode, private readonly opts: InodeTreeOptions = {}) {
    if (!root.isDirectory) throw new TypeError('InodeTree: the root inode must be a directory (mode S_IFDIR)');
    const st = root[NODE];
    st.nodeid = FUSE_ROOT_ID;
    st.nlookup = 1;
    st.persistent = true;
    st.tree = this;
    this.table.set(FUSE_ROOT_ID, root);
    // Prebuilt children (addChild before the tree existed) belong to this tree now.
    const attach = (i: FuseInode) => {
      for (const c of i[NODE].children.values()) if (c[NODE].tree !== this) { c[NODE].tree = this; attach(c); }
    };
    attach(root);
    const declared = (root.constructor as typeof FuseInode).supports ?? [];
    for (const op of declared) {
      if (!OPTIONAL_OPS.includes(op)) throw new TypeError(`${root.constructor.name}.supports: unknown operation ${JSON.stringify(op)}`);
    }
    this.supports = new Set(declared);
    // Undeclared operations are not offered: the Server answers ENOSYS without a call,
    // and INIT does not ask for what they need (locks, READDIRPLUS).
    for (const op of OPTIONAL_OPS) {
      if (!this.supports.has(op)) Object.defineProperty(this, op, { value: undefined, enumerable: false });
    }
  }

  // ---- table ----

  /** The inode for a node id; ESTALE for ids the kernel should not be using. */
  get(nodeid: number): FuseInode {
    const i = this.table.get(nodeid);
    if (!i) {
      throw new FuseError('ESTALE', this.lostNodes.has(nodeid) ? `node id ${nodeid} was lost in a takeover (its inode could not be restored)`
        : `unknown node id ${nodeid}`);
    }
    return i;
  }

  /** The directory for a node id: ENOTDIR if it is not one (the kernel never asks so). */
  private dir(nodeid: number): FuseInode {
    const i = this.get(nodeid);
    if (!i.isDirectory) throw new FuseError('ENOTDIR', `node ${nodeid} is not a directory`);
    return i;
  }

  /**
   * Hands `child` to the kernel as `name` in `parent` (parent undefined: no
   * dentry, e.g. TMPFILE): find-or-create in the table, link the dentry, count
   * the lookup and build the Entry — all synchronously, so no FORGET can come
   * between the increment and the reply.
   */
  private handOut(parent: FuseInode | undefined, name: string, child: FuseInode, attr: Attr): Entry {
    if (!(child instanceof FuseInode)) throw new TypeError(`expected a FuseInode for ${JSON.stringify(name)}, got ${typeof child}`);
    if (!attr || typeof attr !== 'object') throw new TypeError(`getattr of ${JSON.stringify(name)} returned ${typeof attr}, not an Attr`);
    const known = child[NODE].nodeid !== 0 && this.table.get(child[NODE].nodeid) === child;
    const inode = this.adopt(child);
    if (parent) this.linkDentry(parent, name, inode);
    inode[NODE].nlookup++;
    if (this.journal) {
      const fresh = !known && inode === child;
      this.journal.add(['E', inode[NODE].nodeid, parent ? parent[NODE].nodeid : 0, parent ? nameToBytes(name) : null, fresh ? inode.saveIdentity() ?? null : null]);
    }
    return {
      nodeid: inode[NODE].nodeid,
      attr: attr.ino ? attr : { ...attr, ino: inode[NODE].nodeid },
      entryTimeout: this.opts.entryTimeout,
      attrTimeout: this.opts.attrTimeout,
    };
  }

  /** Puts `inode` (or the inode it is an alias of) in the table. */
  private adopt(inode: FuseInode): FuseInode {
    if (inode[NODE].nodeid && this.table.get(inode[NODE].nodeid) === inode) return inode;
    const id = inode.identity();
    if (id !== undefined) {
      const existing = this.byIdentity.get(id);
      if (existing && existing.acceptAlias(inode)) return existing;
      if (existing) existing[NODE].identity = undefined; // replaced: a different object with a reused key
      this.byIdentity.set(id, inode);
      inode[NODE].identity = id;
    }
    inode[NODE].nodeid = this.nextNodeid++;
    inode[NODE].notifier = this.notifier;
    this.table.set(inode[NODE].nodeid, inode);
    return inode;
  }

  /** Links `child` as `name` below `parent`; a child it replaces loses that name. */
  linkDentry(parent: FuseInode, name: string, child: FuseInode): void {
    if (parent[NODE].children.get(name) === child) return;
    const old = parent[NODE].children.get(name);
    if (old) this.removeName(parent, name, old);
    linkName(parent, name, child);
  }

  /** Drops the dentry; an inode that lost its last name stops being persistent. One that
   * still has names is asked whether it is gone (they may be stale: see onUnlinked). */
  removeName(parent: FuseInode, name: string, child: FuseInode): void {
    unlinkName(parent, name, child);
    this.journal?.add(['U', parent[NODE].nodeid, nameToBytes(name)]);
    if (child[NODE].nodeid === FUSE_ROOT_ID) return;
    if (child[NODE].links.size === 0) {
      this.lostLastName(child);
    } else {
      child[NODE].nameLost = true;
      this.maybeUnlinked(child);
    }
  }

  /** `inode` has no known name left: not persistent any more; it may release its backing. */
  private lostLastName(inode: FuseInode): void {
    inode[NODE].persistent = false;
    this.maybeUnlinked(inode);
    this.maybeDrop(inode);
  }

  /** Calls `onUnlinked()` once the inode has no open file and either no known name, or
   * lost one while others remain (maybe stale); if it is gone, its stale names go too. */
  private maybeUnlinked(inode: FuseInode): void {
    const st = inode[NODE];
    if ((st.links.size > 0 && !st.nameLost) || st.opens > 0 || st.nodeid === FUSE_ROOT_ID) return;
    if (this.table.get(st.nodeid) !== inode) return;
    st.nameLost = false;
    let released = false;
    try {
      released = inode.onUnlinked();
    } catch { /* a hook must not break the unlink that already happened: keep the backing */ }
    if (!released) return;
    this.detachIdentity(inode);
    if (st.links.size === 0) return;
    // Gone although we knew names of it: they were removed behind our back.
    for (const [parent, names] of [...st.links]) for (const n of [...names]) unlinkName(parent, n, inode);
    st.persistent = false;
    this.maybeDrop(inode);
  }

  private detachIdentity(inode: FuseInode): void {
    const id = inode[NODE].identity;
    if (id !== undefined && this.byIdentity.get(id) === inode) this.byIdentity.delete(id);
    inode[NODE].identity = undefined;
  }

  private maybeDrop(inode: FuseInode): void {
    if (inode[NODE].nlookup > 0 || inode[NODE].persistent || inode[NODE].nodeid === FUSE_ROOT_ID) return;
    if (this.table.get(inode[NODE].nodeid) !== inode) return;
    if (inode[NODE].opens > 0) return; // still open: it goes with its last release
    this.table.delete(inode[NODE].nodeid);
    this.detachIdentity(inode);
    for (const [parent, names] of [...inode[NODE].links]) for (const n of [...names]) unlinkName(parent, n, inode);
    try {
      inode.onForget();
    } catch { /* a hook must not break FORGET */ }
  }

  forget(nodeid: number, nlookup: number): void {
    const inode = this.table.get(nodeid);
    if (!inode) {
      const lost = this.lostNodes.get(nodeid);
      if (lost === undefined) this.opts.onUnknownNode?.(nodeid, 'FORGET');
      else if (lost <= nlookup) this.lostNodes.delete(nodeid);
      else this.lostNodes.set(nodeid, lost - nlookup);
      this.journal?.add(['F', nodeid, nlookup]);
      return;
    }
    if (nodeid === FUSE_ROOT_ID) return; // the root is never forgotten
    this.journal?.add(['F', nodeid, nlookup]);
    inode[NODE].nlookup = Math.max(0, inode[NODE].nlookup - nlookup);
    this.maybeDrop(inode);
  }

  init(info: InitInfo): void {
    this.notifier = info.notifier;
    for (const i of this.table.values()) i[NODE].notifier = this.notifier;
  }

  /** The session ended: the kernel sends no FORGETs at unmount, so release everything. */
  destroy(): void {
    for (const inode of [...this.table.values()]) {
      if (inode[NODE].nodeid === FUSE_ROOT_ID) continue;
      inode[NODE].nlookup = 0;
      this.table.delete(inode[NODE].nodeid);
      inode[NODE].notifier = undefined;
      try { inode.onForget(); } catch { /* ignore */ }
    }
    this.byIdentity.clear();
    for (const f of this.files.values()) f.inode[NODE].opens = 0;
    this.files.clear();
  }

  stats(): InodeStats {
    let referenced = 0;
    let lookups = 0;
    for (const i of this.table.values()) {
      if (i[NODE].nodeid === FUSE_ROOT_ID) continue;
      if (i[NODE].nlookup > 0) referenced++;
      lookups += i[NODE].nlookup;
    }
    return { inodes: this.table.size, referenced, lookups, handles: this.files.size };
  }

  // ---- takeover ----

  /** Whether `fh` is a file opened with O_APPEND (its writes are not idempotent). */
  isAppend(fh: number): boolean {
    return ((this.files.get(fh)?.flags ?? 0) & O_APPEND) !== 0;
  }

  /** The journal records that describe the tree now (a snapshot: replaces the log). */
  *snapshot(): Generator<JournalRecord> {
    yield ['C', this.nextNodeid, this.nextFh];
    for (const [id, inode] of this.table) {
      if (id === FUSE_ROOT_ID) continue;
      const names: [number, Uint8Array][] = [];
      for (const [parent, set] of inode[NODE].links) for (const n of set) names.push([parent[NODE].nodeid, nameToBytes(n)]);
      yield ['N', id, inode[NODE].nlookup, inode.saveIdentity() ?? null, names];
    }
    for (const [id, n] of this.lostNodes) yield ['N', id, n, null, [], 1];
    for (const [fh, f] of this.files) yield ['O', fh, f.inode[NODE].nodeid, f.flags ?? 0, f.dir ? 1 : 0, f.handle?.options?.backingId ?? 0];
    for (const fh of this.lostFiles) yield ['O', fh, 0, 0, 0];
  }

  /**
   * Takeover: rebuilds the node table, lookup counts, dentries and open files a dead
   * server process journaled, under the same node ids and file handles, by asking each
   * restored directory for its children (`restoreChild`) from the root down, and
   * reopening the files. What cannot be had back is logged and answers ESTALE; its
   * FORGETs and RELEASEs are accepted. Call before any request is served.
   */
  async restore(records: readonly JournalRecord[], log: (line: string) => void = () => {}): Promise<RestoreReport> {
    interface Saved { n: number; saved: unknown; names: [number, string][]; lost?: boolean }
    const nodes = new Map<number, Saved>();
    const dent = new Map<string, number>();
    const files = new Map<number, { id: number; flags: number; dir: boolean; backing: number }>();
    let nextId = FUSE_ROOT_ID + 1;
    let nextFh = 1;
    const dkey = (p: number, name: string) => `${p}/${name}`;
    const node = (id: number, saved: unknown = null): Saved => {
      let n = nodes.get(id);
      if (!n) nodes.set(id, (n = { n: 0, saved, names: [] }));
      if (id >= nextId) nextId = id + 1;
      return n;
    };
    const unlinkD = (p: number, name: string) => {
      const k = dkey(p, name);
      const id = dent.get(k);
      if (id === undefined) return;
      dent.delete(k);
      const n = nodes.get(id);
      if (n) n.names = n.names.filter(([pp, nn]) => pp !== p || nn !== name);
    };
    const linkD = (p: number, name: string, id: number) => {
      unlinkD(p, name);
      dent.set(dkey(p, name), id);
      node(id).names.push([p, name]);
    };
    const str = (b: unknown) => nameFromBytes(b as Uint8Array);
    for (const r of records) {
      const num = (i: number) => Number(r[i]);
      switch (r[0]) {
        case 'C': nextId = Math.max(nextId, num(1)); nextFh = Math.max(nextFh, num(2)); break;
        case 'E': {
          const n = node(num(1), r[4]);
          if ((n.saved === null || n.saved === undefined) && r[4] !== null) n.saved = r[4];
          n.n++;
          if (num(2)) linkD(num(2), str(r[3]), num(1));
          break;
        }
        case 'N': {
          const n = node(num(1), r[3]);
          n.n = num(2);
          n.saved = r[3];
          if (r[5]) n.lost = true;
          for (const [p, name] of r[4] as [number, Uint8Array][]) linkD(Number(p), str(name), num(1));
          break;
        }
        case 'F': { const n = nodes.get(num(1)); if (n) n.n -= num(2); break; }
        case 'U': unlinkD(num(1), str(r[2])); break;
        case 'M': {
          const [p, name, np, nn] = [num(1), str(r[2]), num(3), str(r[4])];
          const a = dent.get(dkey(p, name));
          const b = dent.get(dkey(np, nn));
          if (num(5) & RENAME_EXCHANGE) {
            unlinkD(p, name); unlinkD(np, nn);
            if (b !== undefined) linkD(p, name, b);
            if (a !== undefined) linkD(np, nn, a);
          } else {
            unlinkD(np, nn); unlinkD(p, name);
            if (a !== undefined) linkD(np, nn, a);
          }
          break;
        }
        case 'O': files.set(num(1), { id: num(2), flags: num(3), dir: !!r[4], backing: r.length > 5 ? num(5) : 0 }); if (num(1) >= nextFh) nextFh = num(1) + 1; break;
        case 'R': files.delete(num(1)); break;
        default: break; // records of other layers (INIT, the request ledger)
      }
    }
    const open = new Set([...files.values()].map((f) => f.id));
    const live = (id: number) => { const n = nodes.get(id); return !!n && !n.lost && (n.n > 0 || open.has(id)); };
    const children = new Map<number, [string, number][]>();
    for (const [k, id] of dent) {
      const slash = k.indexOf('/');
      const p = Number(k.slice(0, slash));
      let l = children.get(p);
      if (!l) children.set(p, (l = []));
      l.push([k.slice(slash + 1), id]);
    }
    const ctx = new RequestContext(0, 0, 0, 0);
    const failures = new Map<number, string>();
    const queue = [FUSE_ROOT_ID];
    const place = (id: number, inode: FuseInode): boolean => {
      if (!(inode instanceof FuseInode) || (inode[NODE].nodeid && this.table.has(inode[NODE].nodeid))) return false;
      const st = inode[NODE];
      st.nodeid = id;
      st.nlookup = Math.max(0, nodes.get(id)!.n);
      st.tree = this;
      st.notifier = this.notifier;
      this.table.set(id, inode);
      const key = inode.identity();
      if (key !== undefined && !this.byIdentity.has(key)) { this.byIdentity.set(key, inode); st.identity = key; }
      return true;
    };
    for (let qi = 0; qi < queue.length; qi++) {
      const pid = queue[qi];
      const parent = this.table.get(pid)!;
      for (const [name, cid] of children.get(pid) ?? []) {
        if (!live(cid)) continue;
        const have = this.table.get(cid);
        if (have) { linkName(parent, name, have); continue; }
        try {
          const child = await parent.restoreChild(ctx, name, nodes.get(cid)!.saved ?? undefined);
          if (!place(cid, child)) throw new Error('restoreChild returned an inode that is already in the table');
          linkName(parent, name, child);
          queue.push(cid);
        } catch (e) {
          if (!failures.has(cid)) failures.set(cid, `${JSON.stringify(name)}: ${(e as Error).message}`);
        }
      }
    }
    for (const [id, n] of nodes) {
      if (!live(id) && !n.lost) continue;
      if (this.table.has(id)) continue;
      if (n.n > 0) this.lostNodes.set(id, n.n);
      if (!n.lost && !failures.has(id)) failures.set(id, 'no name of it is known (unlinked, or below a lost directory)');
    }
    let reopened = 0;
    // Kernel passthrough ids in the journal (→ the inode, if restored) and those a reopened file uses.
    const backings = new Map<number, FuseInode | undefined>();
    const backingsInUse = new Set<number>();
    for (const [fh, f] of files) {
      const inode = f.id ? this.table.get(f.id) : undefined;
      if (f.backing) backings.set(f.backing, inode);
      if (!inode) { this.lostFiles.add(fh); continue; }
      try {
        if (f.dir) {
          const stream = await inode.opendir(ctx, f.flags);
          this.files.set(fh, { inode, handle: undefined, stream: stream || undefined, flags: f.flags, dir: true });
        } else {
          // Kernel passthrough: the kernel's open files still use this backing id; the
          // inode's new opens must share it (another one for the same inode is refused).
          if (f.backing) inode.adoptBackingId(f.backing);
          const handle = await inode.open(ctx, f.flags & ~(O_CREAT | O_EXCL | O_TRUNC));
          this.files.set(fh, { inode, handle: handle ?? undefined, flags: f.flags });
          if (f.backing && handle?.options?.backingId === f.backing) backingsInUse.add(f.backing);
        }
        inode[NODE].opens++;
        reopened++;
      } catch (e) {
        this.lostFiles.add(fh);
        log(`takeover: file handle ${fh} of node ${f.id} could not be reopened: ${(e as Error).message}`);
      }
    }
    // Ids no restored file uses (their files were lost): the kernel's open files keep their
    // own reference to the backing file, so the id can go now (else it pins the file, an
    // unlinked one's space too, until the session ends).
    for (const [id, inode] of backings) {
      if (backingsInUse.has(id)) continue;
      inode?.releaseBackingId(id);
      this.notifier?.backingClose(id);
    }
    this.nextNodeid = Math.max(this.nextNodeid, nextId);
    this.nextFh = Math.max(this.nextFh, nextFh);
    const lost = [...failures];
    if (lost.length) {
      log(`takeover: ${lost.length} node id(s) could not be restored and answer ESTALE from now on ` +
        `(a filesystem whose data lived in the dead process's memory loses it): ${lost.slice(0, 5).map(([id, why]) => `node ${id} ${why}`).join('; ')}` +
        `${lost.length > 5 ? ' …' : ''}`);
    }
    return { nodes: this.table.size - 1, lostNodes: this.lostNodes.size, files: reopened, lostFiles: this.lostFiles.size };
  }

  // ---- entries ----
  // Every entry point returns synchronously when the inode's methods do (the
  // reply then goes out in the same turn), and a Promise only when one of them
  // does: `then` chains without an await.

  private entryFor(ctx: Context, parent: FuseInode | undefined, name: string, child: R<FuseInode>): R<Entry> {
    return then(child, (c) => {
      if (!(c instanceof FuseInode)) throw new TypeError(`expected a FuseInode for ${JSON.stringify(name)}, got ${describe(c)}`);
      return then(c.getattr(ctx), (attr) => this.handOut(parent, name, c, attr));
    });
  }

  /** LOOKUP: "no such name" (undefined or ENOENT from the inode) is a negative entry,
   * node id 0, which the server caches for its negativeTimeout (0: the same as ENOENT). */
  lookup(ctx: Context, parent: number, name: string): R<Entry> {
    const p = this.dir(parent);
    return then(this.lookupIn(ctx, p, name), (c) => (c === undefined ? NEGATIVE : this.entryFor(ctx, p, name, c)));
  }

  /** `p.lookup(name)`; "no such name" (undefined, or a thrown ENOENT) drops the child we
   * knew under that name (it was removed behind our back), so an inode whose last name it
   * was can release its backing, and answers undefined. */
  private lookupIn(ctx: Context, p: FuseInode, name: string): R<FuseInode | undefined> {
    const none = (): undefined => {
      const stale = p[NODE].children.get(name);
      if (stale) this.removeName(p, name, stale);
      return undefined;
    };
    const gone = (e: unknown): undefined => {
      if ((e as { code?: unknown } | null)?.code === 'ENOENT') return none();
      throw e;
    };
    let r: R<FuseInode | undefined>;
    try {
      r = p.lookup(ctx, name);
    } catch (e) {
      return gone(e);
    }
    if (isPromise(r)) return r.then((c) => (c === undefined || c === null ? none() : c), gone);
    return r === undefined || r === null ? none() : r;
  }
  mkdir(ctx: Context, parent: number, name: string, mode: number): R<Entry> {
    const p = this.dir(parent);
    return this.entryFor(ctx, p, name, p.mkdir(ctx, name, mode));
  }
  mknod(ctx: Context, parent: number, name: string, mode: number, rdev: number): R<Entry> {
    const p = this.dir(parent);
    return this.entryFor(ctx, p, name, p.mknod(ctx, name, mode, rdev));
  }
  symlink(ctx: Context, parent: number, name: string, target: string): R<Entry> {
    const p = this.dir(parent);
    return this.entryFor(ctx, p, name, p.symlink(ctx, name, target));
  }
  link(ctx: Context, nodeid: number, newParent: number, newName: string): R<Entry> {
    const target = this.get(nodeid);
    const p = this.dir(newParent);
    return this.entryFor(ctx, p, newName, p.link(ctx, target, newName));
  }
  private created(ctx: Context, parent: FuseInode | undefined, name: string, made: R<Created>, flags: number): R<CreateReply> {
    return then(made, (c) => {
      if (!c || !(c.inode instanceof FuseInode)) throw new TypeError(`create/tmpfile must return { inode: FuseInode }, got ${describe(c)}`);
      return then(c.inode.getattr(ctx, c.handle), (attr) => {
        const entry = this.handOut(parent, name, c.inode, attr);
        return { entry, ...this.addFile(this.get(entry.nodeid), c.handle, undefined, false, undefined, flags) };
      });
    });
  }
  create(ctx: Context, parent: number, name: string, mode: number, flags: number): R<CreateReply> {
    const p = this.dir(parent);
    return this.created(ctx, p, name, p.create(ctx, name, mode, flags), flags);
  }
  tmpfile(ctx: Context, parent: number, mode: number, flags: number): R<CreateReply> {
    return this.created(ctx, undefined, '', this.dir(parent).tmpfile(ctx, mode, flags), flags);
  }

  // ---- names ----

  unlink(ctx: Context, parent: number, name: string): R<void> {
    const p = this.dir(parent);
    return then(p.unlink(ctx, name), () => this.dropName(p, name));
  }
  rmdir(ctx: Context, parent: number, name: string): R<void> {
    const p = this.dir(parent);
    return then(p.rmdir(ctx, name), () => this.dropName(p, name));
  }
  private dropName(p: FuseInode, name: string): void {
    const c = p[NODE].children.get(name);
    if (c) this.removeName(p, name, c);
  }
  rename(ctx: Context, parent: number, name: string, newParent: number, newName: string, flags: number): R<void> {
    const p = this.dir(parent);
    const np = this.dir(newParent);
    // The kernel's VFS refuses these before asking (ENOTDIR above, EINVAL for a directory
    // moved below itself); refused here too, so that no request can make a cycle in the tree.
    const moving = p[NODE].children.get(name);
    if (moving && isAncestorOf(moving, np)) throw new FuseError('EINVAL', 'rename of a directory below itself');
    const other = flags & RENAME_EXCHANGE ? np[NODE].children.get(newName) : undefined;
    if (other && isAncestorOf(other, p)) throw new FuseError('EINVAL', 'exchange of a directory with its own ancestor');
    return then(p.rename(ctx, name, np, newName, flags), () => {
      this.journal?.add(['M', p[NODE].nodeid, nameToBytes(name), np[NODE].nodeid, nameToBytes(newName), flags]);
      const src = p[NODE].children.get(name);
      const dst = np[NODE].children.get(newName);
      if (src) unlinkName(p, name, src);
      if (dst) unlinkName(np, newName, dst);
      if (flags & RENAME_EXCHANGE) {
        if (dst) linkName(p, name, dst);
        if (src) linkName(np, newName, src);
        return;
      }
      if (src) linkName(np, newName, src);
      if (dst && dst !== src && dst[NODE].links.size === 0) this.lostLastName(dst);
    });
  }

  // ---- attributes ----

  private attrReply(nodeid: number, attr: Attr): AttrReply {
    if (!attr || typeof attr !== 'object') throw new TypeError(`getattr/setattr returned ${describe(attr)}, not an Attr`);
    return { attr: attr.ino ? attr : { ...attr, ino: nodeid }, timeout: this.opts.attrTimeout };
  }
  getattr(ctx: Context, nodeid: number, fh: number | undefined): R<AttrReply> {
    const inode = this.get(nodeid);
    return then(inode.getattr(ctx, fh ? this.files.get(fh)?.handle : undefined), (a) => this.attrReply(nodeid, a));
  }
  setattr(ctx: Context, nodeid: number, changes: SetattrChanges): R<AttrReply> {
    const inode = this.get(nodeid);
    return then(inode.setattr(ctx, changes, changes.fh ? this.files.get(changes.fh)?.handle : undefined), (a) => this.attrReply(nodeid, a));
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

  /** Registers an open file. `counted`: `opens` was already raised (before an await). */
  private addFile(inode: FuseInode, handle: FileHandle | undefined, entries?: DirEntry[], counted = false, stream?: DirStream, flags = 0, dir = false): OpenReply {
    const fh = this.nextFh++;
    this.files.set(fh, stream ? { inode, handle, entries, stream, flags, dir } : { inode, handle, entries, flags, dir });
    if (!counted) inode[NODE].opens++;
    this.journal?.add(['O', fh, inode[NODE].nodeid, flags, dir ? 1 : 0, handle?.options?.backingId ?? 0]);
    return { fh, ...handle?.options };
  }

  /**
   * Runs an open of `inode` with its open count raised first, so that an
   * UNLINK finishing while an async open is pending does not let the inode
   * release its backing under a file about to be open. Undone if the open fails.
   */
  private opening<T>(inode: FuseInode, fn: () => R<T>): R<T> {
    inode[NODE].opens++;
    const undo = (e: unknown): never => {
      inode[NODE].opens--;
      this.maybeUnlinked(inode);
      this.maybeDrop(inode);
      throw e;
    };
    let r: R<T>;
    try {
      r = fn();
    } catch (e) {
      return undo(e);
    }
    return isPromise(r) ? r.then(undefined, undo) : r;
  }
  /** The open file `fh` of `nodeid` (fh 0 or unknown: the inode without a handle). */
  private file(nodeid: number, fh: number): OpenFile {
    const f = this.files.get(fh);
    if (f && f.inode[NODE].nodeid === nodeid) return f;
    if (this.lostFiles.has(fh)) throw new FuseError('ESTALE', `file handle ${fh} was lost in a takeover (its file could not be reopened)`);
    return { inode: this.get(nodeid), handle: undefined };
  }

  open(ctx: Context, nodeid: number, flags: number): R<OpenReply> {
    const inode = this.get(nodeid);
    return then(this.opening(inode, () => inode.open(ctx, flags)), (handle) => this.addFile(inode, handle ?? undefined, undefined, true, undefined, flags));
  }
  read(ctx: Context, nodeid: number, fh: number, offset: bigint, size: number) {
    const f = this.file(nodeid, fh);
    return f.handle?.read ? f.handle.read(ctx, offset, size) : f.inode.read(ctx, f.handle, offset, size);
  }
  write(ctx: Context, nodeid: number, fh: number, offset: bigint, data: Uint8Array, flags: number) {
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
  release(ctx: Context, nodeid: number, fh: number, flags: number): R<void> {
    if (this.lostFiles.delete(fh)) return void this.journal?.add(['R', fh]);
    const f = this.file(nodeid, fh);
    return finallyDo(() => (f.handle?.release ? f.handle.release(ctx, flags) : f.inode.release(ctx, f.handle, flags)), () => this.closed(fh, f));
  }

  /** `fh` was released: an unlinked inode may let go of its backing, a forgotten one leaves. */
  private closed(fh: number, f: OpenFile): void {
    if (this.files.get(fh) !== f) return; // fh unknown: `f` is the inode without a handle
    this.files.delete(fh);
    this.journal?.add(['R', fh]);
    f.inode[NODE].opens--;
    this.maybeUnlinked(f.inode);
    this.maybeDrop(f.inode);
  }
  fallocate(ctx: Context, nodeid: number, fh: number, offset: bigint, length: bigint, mode: number) {
    const f = this.file(nodeid, fh);
    return f.inode.fallocate(ctx, f.handle, offset, length, mode);
  }
  lseek(ctx: Context, nodeid: number, fh: number, offset: bigint, whence: number) {
    const f = this.file(nodeid, fh);
    return f.inode.lseek(ctx, f.handle, offset, whence);
  }
  copyFileRange(ctx: Context, nodeIn: number, fhIn: number, offIn: bigint, nodeOut: number, fhOut: number, offOut: bigint, len: bigint, flags: bigint) {
    const a = this.file(nodeIn, fhIn);
    const b = this.file(nodeOut, fhOut);
    return a.inode.copyFileRange(ctx, a.handle, offIn, b.inode, b.handle, offOut, len, flags);
  }
  getlk(ctx: Context, nodeid: number, fh: number, owner: bigint, lock: Lock) {
    const f = this.file(nodeid, fh);
    return f.inode.getlk(ctx, f.handle, owner, lock);
  }
  setlk(ctx: Context, nodeid: number, fh: number, owner: bigint, lock: Lock, wait: boolean, flock: boolean) {
    const f = this.file(nodeid, fh);
    return f.inode.setlk(ctx, f.handle, owner, lock, wait, flock);
  }

  // ---- directories ----

  opendir(ctx: Context, nodeid: number, flags: number): R<OpenReply> {
    const inode = this.get(nodeid);
    // The check runs inside opening(): a bad result undoes the open count like a throw.
    const open = () => then(inode.opendir(ctx, flags), (stream) => {
      if (stream && typeof (stream as DirStream).read !== 'function') {
        throw new TypeError(`opendir must return a DirStream or nothing, got ${describe(stream)}`);
      }
      return stream || undefined;
    });
    return then(this.opening(inode, open), (stream) => this.addFile(inode, undefined, undefined, true, stream, flags, true));
  }
  releasedir(ctx: Context, nodeid: number, fh: number): R<void> {
    if (this.lostFiles.delete(fh)) return void this.journal?.add(['R', fh]);
    const f = this.file(nodeid, fh);
    const stream = f.stream;
    f.stream = undefined;
    f.pending = undefined;
    return finallyDo(() => f.inode.releasedir(ctx), () => {
      this.closed(fh, f);
      if (stream?.close) closeQuietly(stream);
    });
  }
  fsyncdir(ctx: Context, nodeid: number, _fh: number, datasync: boolean) {
    return this.get(nodeid).fsyncdir(ctx, datasync);
  }

  /** The listing of an open directory, taken once at offset 0: ".", "..", then the entries. */
  private listing(ctx: Context, nodeid: number, fh: number, offset: number): R<{ dir: FuseInode; entries: DirEntry[] }> {
    const f = this.files.get(fh);
    const dir = f && f.inode[NODE].nodeid === nodeid ? f.inode : this.get(nodeid);
    if (f && f.entries && offset !== 0) return { dir, entries: f.entries };
    const parent = dir.parent ?? dir;
    return then(dir.readdir(ctx), (list) => {
      if (!list || typeof (list as Iterable<DirEntry>)[Symbol.iterator] !== 'function') throw new TypeError(`readdir returned ${describe(list)}, not an iterable`);
      const entries: DirEntry[] = [
        { name: '.', mode: dir.mode, ino: dir[NODE].nodeid, inode: dir },
        { name: '..', mode: parent.mode, ino: parent[NODE].nodeid || dir[NODE].nodeid },
        ...list,
      ];
      if (f) f.entries = entries;
      return { dir, entries };
    });
  }

  readdir(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentSink): R<void> {
    const f = this.streamOf(nodeid, fh);
    if (f) {
      return this.fromStream(ctx, f, offset, (e) => (e.nameSrc && out.addFrom
        ? out.addFrom(e.nameSrc, e.nameStart ?? 0, e.nameLength ?? 0, e.ino || 0xffffffff, (e.mode >>> 12) & 15, e.next)
        : out.add(e.name, e.ino || e.inode?.[NODE].nodeid || 0xffffffff, (e.mode >>> 12) & 15, e.next)));
    }
    const start = cookieIndex(offset);
    return then(this.listing(ctx, nodeid, fh, start), ({ entries }) => {
      for (let i = start; i < entries.length; i++) {
        const e = entries[i];
        const ino = e.ino ?? e.inode?.[NODE].nodeid ?? 0;
        if (!out.add(e.name, ino || 0xffffffff, ((e.mode >>> 12) & 15), i + 1)) break;
      }
    });
  }

  readdirplus(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentPlusSink): R<void> {
    const f = this.streamOf(nodeid, fh);
    if (f) return this.fromStream(ctx, f, offset, (e) => this.plusEntry(ctx, f.inode, e, e.next, out));
    const start = cookieIndex(offset);
    return then(this.listing(ctx, nodeid, fh, start), ({ dir, entries }) => this.plusFrom(ctx, dir, entries, start, out));
  }

  /** READDIRPLUS entries from index `i`: synchronous while the inodes are. */
  private plusFrom(ctx: Context, dir: FuseInode, entries: DirEntry[], i: number, out: DirentPlusSink): R<void> {
    for (; i < entries.length; i++) {
      const more = this.plusEntry(ctx, dir, entries[i], i + 1, out);
      if (isPromise(more)) {
        const idx = i;
        return more.then((go) => (go ? this.plusFrom(ctx, dir, entries, idx + 1, out) : undefined));
      }
      if (!more) return;
    }
  }

  /**
   * One READDIRPLUS entry: handed out with its attributes (a lookup) when the lookup
   * succeeds, else sent name-only (nodeid 0, which READDIRPLUS allows: the kernel lists
   * the name and looks it up when it needs it) — never dropped, whatever the lookup
   * answered (EACCES for a caller without search permission, EMFILE, ESTALE …).
   * False: the reply is full.
   */
  private plusEntry(ctx: Context, dir: FuseInode, e: DirEntry, next: U64, out: DirentPlusSink): R<boolean> {
    const nameOnly = (): boolean => out.add(e.name, { nodeid: 0, attr: { ino: e.ino || 1, mode: e.mode } }, next);
    // "." and ".." are not lookups.
    if (e.name === '.' || e.name === '..') return nameOnly();
    // A snapshot listing may be old: a name unlinked or renamed away since then must not
    // be linked back in. Trust `e.inode` only while it is still this directory's child of
    // that name; else ask the directory again.
    let step: R<{ child: FuseInode; attr: Attr }>;
    const known = e.inode && dir[NODE].children.get(e.name) === e.inode ? e.inode : undefined;
    try {
      const child = known ?? this.lookupIn(ctx, dir, e.name);
      step = then(child, (c) => {
        if (c === undefined) throw new FuseError('ENOENT'); // gone since the listing: name only
        if (!(c instanceof FuseInode)) throw new TypeError(`expected a FuseInode for ${JSON.stringify(e.name)}, got ${describe(c)}`);
        return then(c.getattr(ctx), (attr) => ({ child: c, attr }));
      });
    } catch {
      return nameOnly();
    }
    const emit = ({ child, attr }: { child: FuseInode; attr: Attr }): boolean => {
      // The listing's inode, forgotten while getattr awaited (a FORGET in between): its
      // onForget() may have released it, so name only. (What `lookup` returns is handed
      // out as the contract says: again, under a new node id, if it was forgotten.)
      if (known && known[NODE].nodeid && this.table.get(known[NODE].nodeid) !== known) return nameOnly();
      const entry = this.handOut(dir, e.name, child, attr);
      // An entry counts once add() took it; if it is refused (full) or cannot be encoded
      // (throws), the kernel never sees it: undo the count handOut made.
      let added: boolean;
      try {
        added = out.add(e.name, entry, next);
      } catch (err) {
        this.forget(entry.nodeid, 1);
        throw err;
      }
      if (!added) this.forget(entry.nodeid, 1);
      return added;
    };
    return isPromise(step) ? step.then(emit, nameOnly) : emit(step);
  }

  /** The open directory `fh` of `nodeid` if it lists through a DirStream. */
  private streamOf(nodeid: number, fh: number): (OpenFile & { stream: DirStream }) | undefined {
    const f = this.files.get(fh);
    return f && f.stream && f.inode[NODE].nodeid === nodeid ? (f as OpenFile & { stream: DirStream }) : undefined;
  }

  /**
   * Feeds `emit` the entries after `offset` from the directory's stream until it answers
   * false (the reply is full) or the stream ends. What the kernel had no room for is kept
   * (one batch at most) and served first if the next call continues at its cookie.
   */
  private fromStream(ctx: Context, f: OpenFile & { stream: DirStream }, offset: bigint, emit: (e: StreamEntry) => R<boolean>): R<void> {
    const held = f.pending;
    f.pending = undefined;
    const hold = (entries: readonly StreamEntry[], i: number, from: bigint): void => {
      if (f.stream) f.pending = { entries, i, from };
    };
    const read = (from: bigint): R<void> => then(f.stream.read(ctx, from), (batch) => {
      if (!Array.isArray(batch)) throw new TypeError(`DirStream.read returned ${describe(batch)}, not an array`);
      return batch.length ? run(batch, 0, from) : undefined;
    });
    // `from` is the cookie entries[i] starts at: `offset` for the first, then the previous
    // entry's next (made a bigint only where needed: a hold, a read).
    const run = (entries: readonly StreamEntry[], i: number, from: bigint): R<void> => {
      const start = i;
      const fromOf = (j: number): bigint => (j === start ? from : toCookie(entries[j - 1].next));
      for (; i < entries.length; i++) {
        const e = entries[i];
        checkCookie(e);
        const took = emit(e);
        if (isPromise(took)) {
          const idx = i;
          return took.then((ok) => (ok ? run(entries, idx + 1, toCookie(e.next)) : hold(entries, idx, fromOf(idx))));
        }
        if (!took) return hold(entries, i, fromOf(i));
      }
      return read(fromOf(i));
    };
    if (held && held.from === offset) return run(held.entries, held.i, offset);
    return read(offset);
  }
}

type R<T> = T | Promise<T>;

function isPromise<T>(v: R<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
/** `f(v)`, now if `v` is a value, when it settles if it is a Promise. */
function then<T, U>(v: R<T>, f: (t: T) => R<U>): R<U> {
  return isPromise(v) ? v.then(f) : f(v);
}
/** Runs `fn`, then `after` whether it threw or not (synchronously when `fn` is). */
function finallyDo<T>(fn: () => R<T>, after: () => void): R<T> {
  let r: R<T>;
  try {
    r = fn();
  } catch (e) {
    after();
    throw e;
  }
  if (isPromise(r)) return r.finally(after);
  after();
  return r;
}
/** `a` is `b` or one of its ancestors (by first parents; bounded, as a cycle must not hang us). */
function isAncestorOf(a: FuseInode, b: FuseInode): boolean {
  let n: FuseInode | undefined = b;
  for (let steps = 0; n && steps < 1 << 20; steps++, n = n.parent) if (n === a) return true;
  return false;
}
/** Checks the `next` cookie of a stream entry: a non-zero u64 (the kernel would loop on 0). */
function checkCookie(e: StreamEntry): void {
  const c = e?.next;
  if (typeof c === 'number' ? Number.isSafeInteger(c) && c > 0 : typeof c === 'bigint' && c > 0n && c <= 0xffffffffffffffffn) return;
  throw new TypeError(`DirStream entry ${JSON.stringify(e?.name)}: next cookie ${String(c)} is not a non-zero 64-bit value`);
}
/** A checked cookie as a bigint. */
function toCookie(c: U64): bigint {
  return typeof c === 'bigint' ? c : BigInt(c);
}
/** Closes a released directory's stream; its failure has no one to go to. */
function closeQuietly(s: DirStream): void {
  try {
    const r = s.close!();
    if (isPromise(r)) r.then(undefined, () => {});
  } catch { /* released anyway */ }
}
/** A readdir offset is an index into the listing we gave; beyond it lists nothing. */
function cookieIndex(offset: bigint): number {
  return offset > 0xffffffffn ? 0xffffffff : Number(offset);
}
function describe(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

/** The optional operations (see InodeOp); everything else is always offered. */
const OPTIONAL_OPS: readonly InodeOp[] = [
  'setattr', 'statx', 'access', 'syncfs', 'mkdir', 'mknod', 'symlink', 'link', 'create', 'tmpfile', 'unlink', 'rmdir',
  'rename', 'readlink', 'read', 'write', 'fallocate', 'lseek', 'copyFileRange', 'getlk', 'setlk', 'getxattr',
  'setxattr', 'listxattr', 'removexattr', 'readdirplus',
];
