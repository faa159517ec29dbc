/**
 * Vfs: several filesystems under one mount, attached and detached while it
 * serves (like fuse-backend-rs's Vfs). The Vfs is itself a low-level
 * `FileSystem`: `mount(mnt, vfs)` as any other.
 *
 * The mount root and the directories above attach points are a read-only
 * pseudo filesystem. Each attached filesystem (a backend) gets an index
 * (1, 2, …) and keeps its own node id space: the kernel sees
 *
 *     node id = index × 2^localBits + the backend's own node id
 *
 * with indexBits + localBits = 53 (node ids are JavaScript numbers below
 * 2^53). The default split is 16 + 37: 65 535 backends (fuse-backend-rs has
 * 255) and 137 billion node ids per backend. An InodeTree never reuses an id,
 * so 2^37 is what bounds a backend's lifetime: 16 days of 100 000 new inodes
 * per second, without pause; `indexBits` moves the split. File handles are
 * not translated: every request that carries one also carries its node id.
 *
 * The Vfs counts what the kernel holds of each backend (lookups per node id,
 * open handles), so a request naming an id its backend never handed out (or
 * already forgot) is ESTALE before any backend sees it, FORGETs go to the
 * backend that handed the id out, a detach knows when a backend is busy, and
 * stats() can say what each backend holds. See the README ("VFS") for the
 * semantics: EXDEV across backends, EROFS in the pseudo directories, INIT.
 */
import { constants as C } from 'node:fs';
import { FUSE_ROOT_ID, InitFlag, nameToBytes, nameFromBytes } from '../abi/index.js';
import {
  callerGroups, FuseError, RequestContext, wantedInitFlags, type Attr, type AttrReply, type Context, type CreateReply, type DirentPlusSink,
  type DirentSink, type Entry, type FileSystem, type InitInfo, type IoctlReply, type JournalRecord, type JournalWriter, type Lock,
  type OpenReply, type Restorable, type RestoreReport, type SetattrChanges, type StatFs, type U64,
} from '../api/index.js';
import type { Notifier } from '../transport/index.js';
import { and, flagList, MUST_MATCH, or, without } from './flags.js';

type R<T> = T | Promise<T>;

/** Options of a Vfs. */
export interface VfsOptions {
  /** Bits of a node id that name the backend (default 16: 65 535 backends, 2^37 ids each). 1 … 32. */
  indexBits?: number;
  /** Builds a backend from the `spec` it was attached with: how a restarted server (crash
   * takeover) re-attaches each backend, and what the control socket attaches. */
  build?: (spec: string) => R<FileSystem>;
  /** Where the Vfs logs (attach, detach, refusals). Default: stderr, prefixed "tsfuse vfs: ". */
  log?: (line: string) => void;
}

/** How one backend is attached. */
export interface BackendOptions {
  /** Entry and attribute cache times (ms) for this backend's replies that set none. */
  entryTimeout?: number;
  /** Attribute cache time (ms) for this backend's replies that set none. */
  attrTimeout?: number;
  /** Every change is EROFS (as a read-only mount answers). */
  readOnly?: boolean;
  /** The Vfs checks the mode bits of this backend's inodes for the caller (its uid, gid and
   * supplementary groups), as the kernel's default_permissions does for a whole mount. */
  defaultPermissions?: boolean;
  /** How to build this backend again (see VfsOptions.build); kept in the takeover journal. */
  spec?: string;
}

/** How a backend is detached. */
export interface DetachOptions {
  /** Detach even when busy: its node ids then answer ESTALE. */
  force?: boolean;
}

/** One attached backend, as `list()` reports it. */
export interface BackendInfo {
  /** Where it is attached, below the mount root (e.g. "/a/b"). */
  path: string;
  /** Its index: the high bits of its node ids. */
  index: number;
  /** The spec it was attached with, if any. */
  spec?: string;
  /** Whether it was attached read-only. */
  readOnly: boolean;
}

/** What one backend handles and holds, as `stats()` reports it. */
export interface BackendStats {
  /** The backend's index. */
  index: number;
  /** Requests routed to it, and how many of them failed. */
  requests: number;
  /** Of `requests`, how many were answered with an error. */
  errors: number;
  /** Node ids the kernel holds (lookup count > 0), the root excluded, and their lookup counts. */
  inodes: number;
  /** Sum of the lookup counts of those node ids. */
  lookups: number;
  /** Open files and directories. */
  handles: number;
  /** What the backend itself reports (FileSystem.stats). */
  fs?: object;
}

/** What `Vfs.stats()` reports. */
export interface VfsStats {
  /** The pseudo directories: how many there are, and the requests they answered. */
  pseudo: { dirs: number; requests: number };
  /** Each attached backend's figures, by path. */
  backends: Record<string, BackendStats>;
  /** Backends detached by force whose node ids the kernel still holds (path → ids held). */
  detached: Record<string, number>;
}

const S_IFMT = C.S_IFMT;
const S_IFDIR = C.S_IFDIR;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
const FMODE_EXEC = 0x20;
const R_OK = 4;
const W_OK = 2;
const X_OK = 1;
const TWO48 = 2 ** 48;
const MASK64 = (1n << 64n) - 1n;
/** Poll's mask when a filesystem has no poll (the kernel's DEFAULT_POLLMASK). */
const DEFAULT_POLLMASK = 0x145;

class PseudoDir {
  readonly children = new Map<string, PseudoDir | Backend>();
  mtime = Date.now();
  constructor(readonly id: number, readonly name: string, readonly parent: PseudoDir | undefined) {}
  get path(): string {
    return this.parent ? `${this.parent.parent ? this.parent.path : ''}/${this.name}` : '/';
  }
}

class Backend {
  /** Lookups the kernel holds, by the backend's own node id. */
  readonly held = new Map<number, number>();
  /** Open handles by the backend's own node id, and their sum. */
  readonly opens = new Map<number, number>();
  handles = 0;
  open(local: number, n = 1): void {
    this.opens.set(local, (this.opens.get(local) ?? 0) + n);
    this.handles += n;
  }
  /** One handle of `local` closed; false if it has none open (a RELEASE not to pass on). */
  close(local: number): boolean {
    const n = this.opens.get(local);
    if (!n) return false;
    if (n === 1) this.opens.delete(local);
    else this.opens.set(local, n - 1);
    this.handles--;
    return true;
  }
  requests = 0;
  errors = 0;
  /** false once detached: its ids answer ESTALE, FORGETs and RELEASEs are taken. */
  live = true;
  /** Being detached: its name is not found. */
  hidden = false;
  /** init() has run (the session's flags are known to it). */
  inited = false;
  /** Its root's inode number as we report it (READDIR of the pseudo parent lists it). */
  rootIno: U64 = 0;
  constructor(
    readonly index: number, readonly base: number, readonly name: string, public parent: PseudoDir,
    public fs: FileSystem | undefined, readonly opts: BackendOptions,
  ) {
    // A backend that keeps no journal of its own (no restore()): the Vfs journals its lookups.
    this.selfJournal = typeof (fs as Partial<Takeover> | undefined)?.restore !== 'function';
  }
  readonly selfJournal: boolean;
  get path(): string {
    return `${this.parent.parent ? this.parent.path : ''}/${this.name}`;
  }
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

function then<T, U>(v: R<T>, f: (t: T) => R<U>): R<U> {
  return isPromise(v) ? (v as Promise<T>).then(f) : f(v as T);
}

const EROFS = () => new FuseError('EROFS', 'a pseudo directory of the VFS (attach a filesystem to write below it)');

/** Several filesystems under one mount, attached and detached while it serves (see the module comment). */
export class Vfs implements FileSystem, Restorable {
  /** Bits of a node id that name the backend (option `indexBits`). */
  readonly indexBits: number;
  /** 2^localBits: the ids of backend `i` are i × span + 1 … (i + 1) × span − 1. */
  readonly span: number;
  private readonly maxIndex: number;
  private readonly slots: (Backend | undefined)[] = [];
  private readonly pseudo = new Map<number, PseudoDir>();
  private readonly root: PseudoDir;
  private nextPseudo = FUSE_ROOT_ID + 1;
  /** No index below this one is free. */
  private lowestFree = 1;
  /** Indexes of attaches whose init() is running. */
  private readonly reserved = new Set<number>();
  private pseudoRequests = 0;
  /** Pseudo directory listings by handle (a snapshot taken at OPENDIR). */
  private readonly listings = new Map<number, [string, U64, number][]>();
  private nextFh = 1;
  private readonly log: (line: string) => void;
  private readonly build: VfsOptions['build'];
  /** What INIT said (set by init()): the kernel's offer, the notifier … */
  private initInfo: InitInfo | undefined;
  /** The flags in effect for the session (known after INIT). */
  private session: number | undefined;
  /** The takeover journal (a supervised server). */
  private journalSink: JournalWriter | undefined;

  constructor(opts: VfsOptions = {}) {
    const bits = opts.indexBits ?? 16;
    if (!Number.isInteger(bits) || bits < 1 || bits > 32) throw new RangeError(`Vfs: indexBits must be a whole number from 1 to 32, got ${bits}`);
    this.indexBits = bits;
    this.span = 2 ** (53 - bits);
    this.maxIndex = 2 ** bits - 1;
    this.log = opts.log ?? ((l) => process.stderr.write(`tsfuse vfs: ${l}\n`));
    this.build = opts.build;
    this.root = new PseudoDir(FUSE_ROOT_ID, '', undefined);
    this.pseudo.set(FUSE_ROOT_ID, this.root);
  }

  // ---- layout ----

  /**
   * Attaches `fs` at `path` ("/a", "/x/y": the directories above it are made as pseudo
   * directories). Before the mount, or while it serves: then the backend's init() runs
   * at once with what the session agreed, and a backend that needs a flag the session
   * lacks (or cannot live with one it has) is refused. Resolves to the backend's index.
   */
  async attach(path: string, fs: FileSystem, opts: BackendOptions = {}): Promise<number> {
    checkBackendOptions(opts);
    if (!fs || typeof fs !== 'object') throw new TypeError(`Vfs.attach ${path}: expected a FileSystem, got ${typeof fs}`);
    const names = splitPath(path);
    const name = names[names.length - 1];
    const parent = this.walk(names.slice(0, -1), path, false);
    if (parent?.children.has(name)) throw err('EEXIST', `${path}: something is attached there already (detach it first, or attach elsewhere)`);
    const index = this.freeIndex();
    const b = new Backend(index, index * this.span, name, parent ?? this.root, fs, opts);
    // The index is ours while init runs (another attach meanwhile takes the next one).
    this.reserved.add(index);
    try {
      if (this.session !== undefined) await this.initLate(b);
    } finally {
      this.reserved.delete(index);
    }
    // Checked again: another attach may have taken the name while init ran.
    const p = this.walk(names.slice(0, -1), path, true)!;
    if (p.children.has(name) || this.slots[index]) throw err('EEXIST', `${path}: something is attached there already`);
    b.parent = p;
    this.slots[index] = b;
    p.children.set(name, b);
    p.mtime = Date.now();
    this.journalSink?.add(['V', 'A', index, path, opts.spec ?? null, backendOpts(opts)]);
    this.sync(fs, index);
    await this.learnRootIno(b);
    if (this.initInfo?.notifier) {
      // A cached "no such name" (negative_timeout) and the parent's attributes go.
      await this.initInfo.notifier.invalEntry(p.id, name);
      await this.initInfo.notifier.invalInode(p.id, -1, 0);
    }
    this.log(`attached ${b.path} (index ${index}${opts.spec ? `, ${opts.spec}` : ''})`);
    return index;
  }

  /**
   * Detaches the backend at `path`. The kernel is first told to drop its dentries (what
   * no process uses is forgotten then); a backend still busy after that — an open file,
   * a working directory or a mount inside it — is EBUSY, unless `force`: then its node
   * ids answer ESTALE, the kernel's cached attributes and data of them are dropped, and
   * the backend is destroyed. Its index is reused once the kernel forgot all its ids.
   */
  async detach(path: string, opts: DetachOptions = {}): Promise<void> {
    const names = splitPath(path);
    const p = this.walk(names.slice(0, -1), path, false);
    const b = p?.children.get(names[names.length - 1]);
    if (!(b instanceof Backend) || b.hidden) throw err('ENOENT', `${path}: no filesystem is attached there (tsfuse vfs-list shows what is)`);
    b.hidden = true;
    const n = this.initInfo?.notifier;
    try {
      if (n) {
        await n.invalEntry(b.parent.id, b.name);
        await this.settle(b);
      }
    } catch (e) {
      b.hidden = false;
      throw e;
    }
    const busy = b.handles > 0 || this.heldIds(b) > 0;
    if (busy && !opts.force) {
      b.hidden = false;
      throw err('EBUSY', `${b.path} is busy: ${b.handles} open file(s) and ${this.heldIds(b)} node id(s) the kernel still holds ` +
        '(a working directory or an open file inside it); detach with force to cut it off (its node ids then answer ESTALE)');
    }
    b.live = false;
    b.parent.children.delete(b.name);
    b.parent.mtime = Date.now();
    this.journalSink?.add(['V', 'D', b.index]);
    if (n) {
      await n.invalInode(b.parent.id, -1, 0);
      // What the kernel still holds answers ESTALE from now on; its cached pages and
      // attributes must not answer for it.
      for (const id of b.held.keys()) await n.invalInode(b.base + id, 0, -1);
    }
    const fs = b.fs;
    b.fs = undefined;
    try {
      await fs?.destroy?.();
    } catch (e) {
      this.log(`detach ${path}: the backend's destroy failed: ${(e as Error).message}`);
    }
    this.freeIfDone(b);
    this.log(`detached ${path} (index ${b.index})${busy ? ` by force: ${this.heldIds(b)} node id(s) and ${b.handles} handle(s) answer ESTALE` : ''}`);
  }

  /** The attached backends, in index order. */
  list(): BackendInfo[] {
    return this.slots.filter((b): b is Backend => !!b && b.live).map((b) => ({ path: b.path, index: b.index, spec: b.opts.spec, readOnly: !!b.opts.readOnly }));
  }

  /** Waits until the kernel's FORGETs for what it dropped have been read (they are queued
   * by the notification itself; the read loop takes them on its next turns). */
  private async settle(b: Backend): Promise<void> {
    // Until the count has not moved for 50 ms (at most 2 s): a loaded machine reads late.
    let last = this.heldIds(b);
    let quiet = 0;
    for (let t = 0; t < 2000 && last > 0 && quiet < 50; t += 10) {
      await new Promise((r) => setTimeout(r, 10));
      const now = this.heldIds(b);
      quiet = now === last ? quiet + 10 : 0;
      last = now;
    }
  }

  private heldIds(b: Backend): number {
    return b.held.size;
  }

  /** The backend root's inode number, for listings of its pseudo parent. */
  private async learnRootIno(b: Backend): Promise<void> {
    b.rootIno = this.ino(b, FUSE_ROOT_ID);
    try {
      const r = await b.fs?.getattr?.(new RequestContext(0, 0, 0, 0), FUSE_ROOT_ID, undefined);
      if (r?.attr) b.rootIno = this.ino(b, r.attr.ino);
    } catch { /* the listing shows index·2^48 + 1 until a lookup tells */ }
  }

  /** The lowest index no backend uses and whose ids the kernel no longer holds. */
  private freeIndex(): number {
    for (let i = this.lowestFree; i <= this.maxIndex; i++) if (!this.slots[i] && !this.reserved.has(i)) { this.lowestFree = i; return i; }
    throw err('ENOSPC', `no free backend index: ${this.maxIndex} backends are attached or still held by the kernel (indexBits ${this.indexBits})`);
  }

  private freeIfDone(b: Backend): void {
    if (!b.live && b.held.size === 0 && b.handles === 0 && this.slots[b.index] === b) {
      this.slots[b.index] = undefined;
      this.lowestFree = Math.min(this.lowestFree, b.index);
    }
  }

  /** The pseudo directory at `names` (made when `make`); undefined if missing. Throws when
   * the path runs into a backend. */
  private walk(names: string[], path: string, make: boolean): PseudoDir | undefined {
    let d = this.root;
    for (const n of names) {
      const c = d.children.get(n);
      if (c instanceof Backend) throw err('EEXIST', `${path}: ${c.path} is a backend; attach inside it is not possible (attach beside it)`);
      if (c) { d = c; continue; }
      if (!make) return undefined;
      const nd = new PseudoDir(this.nextPseudo++, n, d);
      this.pseudo.set(nd.id, nd);
      d.children.set(n, nd);
      d.mtime = Date.now();
      this.journalSink?.add(['V', 'P', nd.id, d.id, nameToBytes(n)]);
      if (this.initInfo?.notifier) void this.initInfo.notifier.invalEntry(d.id, n);
      d = nd;
    }
    return d;
  }

  // ---- INIT ----

  init(info: InitInfo): R<void> {
    this.initInfo = info;
    const backends = this.slots.filter((b): b is Backend => !!b && b.live);
    const base = without(info.want, or(MUST_MATCH, InitFlag.DO_READDIRPLUS + InitFlag.READDIRPLUS_AUTO));
    return then(this.initAll(backends, info, info.offered), (wants) => {
      let common = MUST_MATCH;
      let any = base;
      for (const w of wants) { common = and(common, w); any = or(any, without(w, MUST_MATCH)); }
      if (!wants.length) common = 0;
      const dropped = wants.map((w) => without(and(w, MUST_MATCH), common));
      const again = backends.filter((_b, i) => dropped[i] !== 0);
      const finish = () => {
        info.want = or(any, common);
        this.session = and(info.offered, info.want);
        for (const b of backends) b.inited = true;
      };
      if (!again.length) return finish();
      // Flags one backend wanted and another cannot live with are left out of the session:
      // the backends that wanted them are asked again with an offer without them.
      const offer = without(info.offered, without(MUST_MATCH, common));
      return then(this.initAll(again, info, offer, true), (wants2) => {
        wants2.forEach((w, i) => {
          const extra = without(and(w, MUST_MATCH), common);
          if (extra) {
            const others = backends.filter((_b, j) => and(wants[j], extra) !== extra).map((b) => b.path).join(', ');
            throw new Error(`VFS: backend ${again[i].path} needs ${flagList(extra)}, which ${others || 'another backend'} cannot live with ` +
              '(one session has one set of INIT flags): mount them separately, or configure them alike');
          }
          any = or(any, without(w, MUST_MATCH));
        });
        finish();
      });
    });
  }

  /** Runs each backend's init with its own InitInfo (offered `offered`); their wants. */
  private initAll(bs: Backend[], info: InitInfo, offered: number, masked = false): R<number[]> {
    const wants: number[] = [];
    let chain: R<void> = undefined;
    for (const b of bs) {
      const want = masked ? and(wantedInitFlags(b.fs!), offered) : wantedInitFlags(b.fs!);
      chain = then(chain, () => then(this.initBackend(b, info, offered, want), (w) => { wants.push(w); }));
    }
    return then(chain, () => wants);
  }

  private initBackend(b: Backend, info: InitInfo, offered: number, want: number): R<number> {
    const bi: InitInfo = {
      notifier: info.notifier ? scopedNotifier(info.notifier, b.base) : undefined, kernelMinor: info.kernelMinor, offered, want,
      defaultPermissions: info.defaultPermissions || !!b.opts.defaultPermissions, atime: info.atime, nodiratime: info.nodiratime,
    };
    try {
      return then(b.fs!.init?.(bi), () => bi.want);
    } catch (e) {
      throw new Error(`VFS: backend ${b.path} refused the session: ${(e as Error).message}`);
    }
  }

  /** A backend attached after INIT: offered what the session agreed; refused if it wants
   * more, or cannot live with a flag that changes what requests mean. */
  private async initLate(b: Backend): Promise<void> {
    const session = this.session!;
    const want = await this.initBackend(b, this.initInfo!, session, and(wantedInitFlags(b.fs!), session));
    const needs = without(want, session);
    if (needs) {
      throw err('EINVAL', `cannot attach ${b.path}: it needs ${flagList(needs)}, which this session did not negotiate at INIT ` +
        '(attach it before mounting, or mount with what it needs)');
    }
    const cannot = without(and(session, MUST_MATCH), want);
    if (cannot) {
      throw err('EINVAL', `cannot attach ${b.path}: the session has ${flagList(cannot)}, which change what requests mean and this filesystem did not ask for`);
    }
    b.inited = true;
  }

  destroy(): R<void> {
    const all = this.slots.filter((b): b is Backend => !!b && !!b.fs);
    // The kernel sends no FORGET at the end: it holds nothing any more.
    for (const b of all) { b.held.clear(); b.opens.clear(); b.handles = 0; }
    return then(Promise.all(all.map(async (b) => {
      try {
        await b.fs!.destroy?.();
      } catch (e) {
        this.log(`destroy of ${b.path} failed: ${(e as Error).message}`);
      }
    })), () => undefined);
  }

  // ---- routing ----

  /** The backend of `nodeid` (undefined: a pseudo directory), or ESTALE. */
  private route(nodeid: number): Backend | undefined {
    if (nodeid < this.span) {
      if (this.pseudo.has(nodeid)) { this.pseudoRequests++; return undefined; }
      throw new FuseError('ESTALE', `node id ${nodeid} is no pseudo directory of the VFS`);
    }
    const b = this.slots[Math.floor(nodeid / this.span)];
    if (!b) throw new FuseError('ESTALE', `node id ${nodeid} belongs to no attached filesystem`);
    if (!b.live) throw new FuseError('ESTALE', `node id ${nodeid} belonged to ${b.path}, detached by force`);
    const local = nodeid - b.base;
    if (local !== FUSE_ROOT_ID && !b.held.has(local)) throw new FuseError('ESTALE', `node id ${nodeid} was not handed out by ${b.path} (or was forgotten)`);
    b.requests++;
    return b;
  }

  /** Runs a backend call, counting its failure; `map` turns its result into ours. */
  /**
   * Runs a backend call, counting its failure; `map` turns its result into ours. `alt`
   * answers for a backend that throws ENOSYS: the kernel would take ENOSYS as "never ask
   * again" for the whole connection (no more OPEN, FSYNC, ACCESS, xattrs … for any
   * backend), so for those opcodes one backend's ENOSYS becomes what it means for it alone.
   */
  private run<T, U>(b: Backend, f: () => R<T>, map?: (v: T) => U, alt?: () => R<U>): R<U> {
    const failed = (e: unknown): R<U> => {
      if (alt && isEnosys(e)) return alt();
      b.errors++;
      throw e;
    };
    let r: R<T>;
    try {
      r = f();
    } catch (e) {
      return failed(e);
    }
    if (isPromise(r)) return (r as Promise<T>).then(map as (v: T) => U, failed) as Promise<U>;
    return map ? map(r as T) : (r as unknown as U);
  }

  private fs(b: Backend): FileSystem {
    return b.fs!;
  }

  /** An Entry of backend `b` as the kernel must see it: our node id, tagged ino, its times. */
  private entry(b: Backend, e: Entry): Entry {
    if (!e || typeof e !== 'object') return e;
    const local = e.nodeid;
    if (local === 0) return e.attr ? { ...e, attr: this.attr(b, e.attr) } : e;
    if (!Number.isSafeInteger(local) || local < 1 || local >= this.span) {
      if (Number.isSafeInteger(local)) try { b.fs?.forget?.(local, 1); } catch { /* ignore */ }
      this.log(`${b.path} handed out node id ${local}, outside its id space (1 … 2^${53 - this.indexBits} − 1): answered EIO`);
      throw new FuseError('EIO');
    }
    b.held.set(local, (b.held.get(local) ?? 0) + 1);
    // The backend's root is handed out by the Vfs (a LOOKUP in a pseudo directory): journaled here.
    if (this.journalSink && (local === FUSE_ROOT_ID || b.selfJournal)) this.journalSink.add(['V', 'E', b.index, local]);
    return {
      nodeid: b.base + local, generation: e.generation, attr: this.attr(b, e.attr),
      // Our own permission checks (defaultPermissions on a mount without the kernel's): the
      // kernel checks no search permission on a cached name, so names are not cached.
      entryTimeout: b.opts.defaultPermissions && !this.initInfo?.defaultPermissions ? 0 : e.entryTimeout ?? b.opts.entryTimeout,
      attrTimeout: e.attrTimeout ?? b.opts.attrTimeout,
    };
  }

  private attr(b: Backend, a: Attr): Attr {
    if (!a || typeof a !== 'object') return a;
    return { ...a, ino: this.ino(b, a.ino) };
  }

  /** The backend's inode number with its index in bits 48…63: two backends never report the
   * same number for inode numbers below 2^48 (ext4, xfs, btrfs, tmpfs …), and each keeps
   * its own numbers distinct. */
  private ino(b: Backend, ino: U64): U64 {
    if (typeof ino === 'number' && ino >= 0 && ino < TWO48 && b.index < 32) return ino + b.index * TWO48;
    // Indexes above 2^16 − 1 (indexBits > 16) fold their high bits into bits 32…47.
    const tag = (BigInt(b.index & 0xffff) << 48n) | (BigInt(Math.floor(b.index / 65536)) << 32n);
    return (BigInt(ino ?? 0) ^ tag) & MASK64;
  }

  private attrReply(b: Backend, r: AttrReply): AttrReply {
    if (!r || typeof r !== 'object') return r;
    return { attr: this.attr(b, r.attr), timeout: r.timeout ?? b.opts.attrTimeout };
  }

  private opened<T extends OpenReply>(b: Backend, local: number, r: T): T {
    b.open(local);
    if (this.journalSink && b.selfJournal) this.journalSink.add(['V', 'O', b.index, local]);
    return r;
  }

  private local(b: Backend, nodeid: number): number {
    return nodeid - b.base;
  }

  /** For a change: EROFS in a read-only backend. */
  private writable(b: Backend): void {
    if (b.opts.readOnly) throw new FuseError('EROFS', `${b.path} is attached read-only`);
  }

  /** The backend of both node ids, or EXDEV (a rename or link across filesystems). */
  private same(a: number, c: number): Backend {
    const ba = this.route(a);
    const bc = this.route(c);
    if (!ba && !bc) throw EROFS();
    if (ba !== bc) throw new FuseError('EXDEV', 'across filesystems of the VFS');
    return ba!;
  }

  // ---- permissions (BackendOptions.defaultPermissions) ----

  /** Checks `mask` (R_OK|W_OK|X_OK) on the backend's node `local` for the caller. */
  private permit(ctx: Context, b: Backend, local: number, mask: number): R<void> {
    if (!b.opts.defaultPermissions || mask === 0 || !b.fs?.getattr) return;
    return then(b.fs.getattr(ctx, local, undefined), (r) => checkMode(ctx, r.attr, mask));
  }

  /** SETATTR's checks (the owner changes mode and times, root the owner …); returns the
   * changes to make: a chmod by an owner outside the file's group drops S_ISGID, as the
   * kernel's setattr_prepare does. */
  private permitSetattr(ctx: Context, b: Backend, local: number, c: SetattrChanges): R<SetattrChanges> {
    if (!b.opts.defaultPermissions || ctx.uid === 0 || !b.fs?.getattr) return c;
    return then(b.fs.getattr(ctx, local, undefined), (r) => {
      const a = r.attr;
      const owner = ctx.uid === (a.uid ?? 0);
      if (c.mode !== undefined && !owner) throw new FuseError('EPERM', 'chmod: not the owner');
      if (c.uid !== undefined && (c.uid !== (a.uid ?? 0) || !owner)) throw new FuseError('EPERM', 'chown: only root gives a file away');
      if (c.gid !== undefined && (!owner || (c.gid !== (a.gid ?? 0) && c.gid !== ctx.gid && !callerGroups(ctx).includes(c.gid)))) {
        throw new FuseError('EPERM', 'chgrp: not the owner, or not a member of that group');
      }
      const explicit = typeof c.atime === 'number' || typeof c.mtime === 'number';
      if (explicit && !owner) throw new FuseError('EPERM', 'utimes: only the owner sets times');
      if ((c.atime === 'now' || c.mtime === 'now') && !owner) checkMode(ctx, a, W_OK);
      if (c.size !== undefined && c.fh === undefined) checkMode(ctx, a, W_OK);
      if (c.mode !== undefined && c.mode & S_ISGID) {
        const gid = c.gid ?? a.gid ?? 0;
        if (gid !== ctx.gid && !callerGroups(ctx).includes(gid)) return { ...c, mode: c.mode & ~S_ISGID };
      }
      return c;
    });
  }

  /** A removal or rename of `name` in a sticky directory: only the owner of the directory or
   * of the entry (or root) may (the kernel's may_delete). */
  private permitSticky(ctx: Context, b: Backend, parent: number, name: string): R<void> {
    const fs = b.fs!;
    if (!b.opts.defaultPermissions || ctx.uid === 0 || !fs.getattr || !fs.lookup) return;
    return then(fs.getattr(ctx, parent, undefined), (r) => {
      if (!(r.attr.mode & S_ISVTX) || ctx.uid === (r.attr.uid ?? 0)) return;
      return then(fs.lookup!(ctx, parent, name), (e) => {
        if (!e || !e.nodeid) return; // no such name: the operation answers that
        try { fs.forget?.(e.nodeid, 1); } catch { /* counted back */ }
        if (ctx.uid !== (e.attr?.uid ?? 0)) throw new FuseError('EPERM', 'the directory is sticky: only the owner of the entry or of the directory may remove it');
      });
    });
  }

  // ---- the pseudo filesystem ----

  private pseudoAttr(d: PseudoDir): Attr {
    let subdirs = 0;
    for (const c of d.children.values()) if (!(c instanceof Backend) || !c.hidden) subdirs++;
    return { ino: d.id, mode: S_IFDIR | 0o755, nlink: 2 + subdirs, uid: 0, gid: 0, size: 4096, blksize: 4096, atime: d.mtime, mtime: d.mtime, ctime: d.mtime };
  }

  private pseudoEntry(ctx: Context, d: PseudoDir, name: string): R<Entry> {
    const c = name === '..' ? (d.parent ?? d) : name === '.' ? d : d.children.get(name);
    if (!c || (c instanceof Backend && c.hidden)) return { nodeid: 0 } as Entry;
    if (c instanceof PseudoDir) return { nodeid: c.id, attr: this.pseudoAttr(c) };
    // A backend's root: its attributes, under our id.
    const b = c;
    b.requests++;
    const fs = b.fs!;
    if (!fs.getattr) return this.entry(b, { nodeid: FUSE_ROOT_ID, attr: { ino: FUSE_ROOT_ID, mode: S_IFDIR | 0o755 } });
    return this.run(b, () => fs.getattr!(ctx, FUSE_ROOT_ID, undefined), (r) => {
      const e = this.entry(b, { nodeid: FUSE_ROOT_ID, attr: r.attr, attrTimeout: r.timeout });
      if (e?.attr) b.rootIno = e.attr.ino;
      return e;
    });
  }

  private pseudoList(d: PseudoDir): [string, U64, number][] {
    const l: [string, U64, number][] = [['.', d.id, 4], ['..', (d.parent ?? d).id, 4]];
    for (const [n, c] of d.children) {
      if (c instanceof Backend) { if (!c.hidden) l.push([n, c.rootIno || this.ino(c, FUSE_ROOT_ID), 4]); } else l.push([n, c.id, 4]);
    }
    return l;
  }

  // ---- FileSystem ----

  lookup(ctx: Context, parent: number, name: string): R<Entry> {
    const b = this.route(parent);
    if (!b) return this.pseudoEntry(ctx, this.pseudo.get(parent)!, name);
    const local = this.local(b, parent);
    if (local === FUSE_ROOT_ID && name === '..') return this.pseudoEntry(ctx, b.parent, '.'); // `..` of a backend root
    const fs = this.fs(b);
    if (!fs.lookup) { b.errors++; return { nodeid: 0 } as Entry; }
    return this.run(b, () => then(this.permit(ctx, b, local, X_OK), () => fs.lookup!(ctx, local, name)), (e) => {
      if (e?.nodeid === 0) b.errors++;
      return this.entry(b, e);
    });
  }

  forget(nodeid: number, nlookup: number): void {
    if (nodeid < this.span) return; // pseudo directories live as long as the Vfs
    const b = this.slots[Math.floor(nodeid / this.span)];
    if (!b) return;
    const local = nodeid - b.base;
    const n = b.held.get(local);
    if (n === undefined) return; // never handed out (or forgotten already): not passed on
    if (n <= nlookup) b.held.delete(local);
    else b.held.set(local, n - nlookup);
    if (this.journalSink && (local === FUSE_ROOT_ID || b.selfJournal || !b.live)) this.journalSink.add(['V', 'F', b.index, local, Math.min(n, nlookup)]);
    // The root's entries are the Vfs's (a LOOKUP in the pseudo parent): not the backend's to forget.
    if (b.live && local !== FUSE_ROOT_ID) b.fs?.forget?.(local, Math.min(n, nlookup));
    else this.freeIfDone(b);
  }

  getattr(ctx: Context, nodeid: number, fh: number | undefined): R<AttrReply> {
    const b = this.route(nodeid);
    if (!b) return { attr: this.pseudoAttr(this.pseudo.get(nodeid)!) };
    const fs = this.fs(b);
    if (!fs.getattr) throw new FuseError('ENOSYS');
    return this.run(b, () => fs.getattr!(ctx, this.local(b, nodeid), fh), (r) => this.attrReply(b, r));
  }

  setattr(ctx: Context, nodeid: number, changes: SetattrChanges): R<AttrReply> {
    const b = this.route(nodeid);
    if (!b) throw EROFS();
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.setattr) throw new FuseError('EPERM', `${b.path} does not change attributes`);
    const local = this.local(b, nodeid);
    return this.run(b, () => then(this.permitSetattr(ctx, b, local, changes), (c) => fs.setattr!(ctx, local, c)), (r) => this.attrReply(b, r));
  }

  readlink(ctx: Context, nodeid: number): R<string | Uint8Array> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('EINVAL');
    const fs = this.fs(b);
    if (!fs.readlink) throw new FuseError('EINVAL');
    return this.run(b, () => fs.readlink!(ctx, this.local(b, nodeid)));
  }

  /** A creation in directory `parent`: EROFS in a pseudo directory or a read-only backend,
   * W and X on the parent with defaultPermissions. */
  private creating(ctx: Context, parent: number, what: keyof FileSystem): { b: Backend; fs: FileSystem; local: number; ok: R<void> } {
    const b = this.route(parent);
    if (!b) throw EROFS();
    this.writable(b);
    const fs = this.fs(b);
    if (typeof fs[what] !== 'function') throw new FuseError('EPERM', `${b.path} does not support ${what}`);
    const local = this.local(b, parent);
    return { b, fs, local, ok: this.permit(ctx, b, local, W_OK | X_OK) };
  }

  symlink(ctx: Context, parent: number, name: string, target: string): R<Entry> {
    const { b, fs, local, ok } = this.creating(ctx, parent, 'symlink');
    return this.run(b, () => then(ok, () => fs.symlink!(ctx, local, name, target)), (e) => this.entry(b, e));
  }

  mknod(ctx: Context, parent: number, name: string, mode: number, rdev: number): R<Entry> {
    const { b, fs, local, ok } = this.creating(ctx, parent, 'mknod');
    return this.run(b, () => then(ok, () => fs.mknod!(ctx, local, name, mode, rdev)), (e) => this.entry(b, e));
  }

  mkdir(ctx: Context, parent: number, name: string, mode: number): R<Entry> {
    const { b, fs, local, ok } = this.creating(ctx, parent, 'mkdir');
    return this.run(b, () => then(ok, () => fs.mkdir!(ctx, local, name, mode)), (e) => this.entry(b, e));
  }

  unlink(ctx: Context, parent: number, name: string): R<void> {
    const { b, fs, local, ok } = this.creating(ctx, parent, 'unlink');
    return this.run(b, () => then(ok, () => then(this.permitSticky(ctx, b, local, name), () => fs.unlink!(ctx, local, name))));
  }

  rmdir(ctx: Context, parent: number, name: string): R<void> {
    const { b, fs, local, ok } = this.creating(ctx, parent, 'rmdir');
    return this.run(b, () => then(ok, () => then(this.permitSticky(ctx, b, local, name), () => fs.rmdir!(ctx, local, name))));
  }

  rename(ctx: Context, parent: number, name: string, newParent: number, newName: string, flags: number): R<void> {
    const b = this.same(parent, newParent);
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.rename) throw new FuseError('EPERM', `${b.path} does not rename`);
    const [lp, lnp] = [this.local(b, parent), this.local(b, newParent)];
    return this.run(b, () => then(this.permit(ctx, b, lp, W_OK | X_OK), () => then(lp === lnp ? undefined : this.permit(ctx, b, lnp, W_OK | X_OK),
      () => then(this.permitSticky(ctx, b, lp, name), () => then(this.permitSticky(ctx, b, lnp, newName), () => fs.rename!(ctx, lp, name, lnp, newName, flags))))));
  }

  link(ctx: Context, nodeid: number, newParent: number, newName: string): R<Entry> {
    const b = this.same(nodeid, newParent);
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.link) throw new FuseError('EPERM', `${b.path} does not make hard links`);
    const lnp = this.local(b, newParent);
    return this.run(b, () => then(this.permit(ctx, b, lnp, W_OK | X_OK), () => fs.link!(ctx, this.local(b, nodeid), lnp, newName)), (e) => this.entry(b, e));
  }

  open(ctx: Context, nodeid: number, flags: number): R<OpenReply> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('EISDIR');
    const acc = flags & O_ACCMODE;
    const writes = acc !== 0 || (flags & O_TRUNC) !== 0;
    if (writes) this.writable(b);
    const fs = this.fs(b);
    const local = this.local(b, nodeid);
    // An exec open (__FMODE_EXEC) needs X, not R (execute-only files run).
    const exec = (flags & FMODE_EXEC) !== 0;
    const mask = (exec ? X_OK : acc === 0 ? R_OK : acc === 1 ? W_OK : R_OK | W_OK) | (flags & O_TRUNC ? W_OK : 0);
    return this.run(b, () => then(this.permit(ctx, b, local, mask), () => (fs.open ? fs.open(ctx, local, flags) : {})), (r) => this.opened(b, local, r),
      () => this.opened(b, local, {}));
  }

  read(ctx: Context, nodeid: number, fh: number, offset: bigint, size: number): R<Uint8Array> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('EISDIR');
    const fs = this.fs(b);
    if (!fs.read) throw new FuseError('EINVAL', `${b.path} does not read`);
    return this.run(b, () => fs.read!(ctx, this.local(b, nodeid), fh, offset, size));
  }

  write(ctx: Context, nodeid: number, fh: number, offset: bigint, data: Uint8Array, writeFlags: number): R<number> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('EISDIR');
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.write) throw new FuseError('EINVAL', `${b.path} does not write`);
    return this.run(b, () => fs.write!(ctx, this.local(b, nodeid), fh, offset, data, writeFlags));
  }

  statfs(ctx: Context, nodeid: number): R<StatFs> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.statfs) return { namelen: 255, bsize: 512 };
    return this.run(b, () => b.fs!.statfs!(ctx, this.local(b, nodeid)));
  }

  release(ctx: Context, nodeid: number, fh: number, flags: number, lockOwner: bigint, flush: boolean): R<void> {
    const b = this.closing(nodeid);
    if (!b?.fs?.release) return;
    return this.run(b, () => b.fs!.release!(ctx, this.local(b, nodeid), fh, flags, lockOwner, flush));
  }

  /** RELEASE/RELEASEDIR: the handle's count goes down even for a backend detached by force. */
  private closing(nodeid: number): Backend | undefined {
    if (nodeid < this.span) return undefined;
    const b = this.slots[Math.floor(nodeid / this.span)];
    const local = b ? nodeid - b.base : 0;
    // Only a handle that was opened on that node id (and not released yet) is passed on.
    if (!b || !b.close(local)) return undefined;
    if (this.journalSink && (b.selfJournal || !b.live)) this.journalSink.add(['V', 'R', b.index, local]);
    if (!b.live) { this.freeIfDone(b); return undefined; }
    b.requests++;
    return b;
  }

  fsync(ctx: Context, nodeid: number, fh: number, datasync: boolean): R<void> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.fsync) return;
    return this.run(b, () => b.fs!.fsync!(ctx, this.local(b, nodeid), fh, datasync), undefined, ok);
  }

  setxattr(ctx: Context, nodeid: number, name: string, value: Uint8Array, flags: number): R<void> {
    const b = this.route(nodeid);
    if (!b) throw EROFS();
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.setxattr) throw new FuseError('EOPNOTSUPP');
    const local = this.local(b, nodeid);
    return this.run(b, () => then(this.permit(ctx, b, local, name.startsWith('user.') ? W_OK : 0), () => fs.setxattr!(ctx, local, name, value, flags)), undefined, fails('EOPNOTSUPP'));
  }

  getxattr(ctx: Context, nodeid: number, name: string): R<Uint8Array> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('ENODATA');
    const fs = this.fs(b);
    if (!fs.getxattr) throw new FuseError('EOPNOTSUPP');
    const local = this.local(b, nodeid);
    return this.run(b, () => then(this.permit(ctx, b, local, name.startsWith('user.') ? R_OK : 0), () => fs.getxattr!(ctx, local, name)), undefined, fails('EOPNOTSUPP'));
  }

  listxattr(ctx: Context, nodeid: number): R<string[]> {
    const b = this.route(nodeid);
    if (!b) return [];
    const fs = this.fs(b);
    if (!fs.listxattr) return [];
    return this.run(b, () => fs.listxattr!(ctx, this.local(b, nodeid)), undefined, () => []);
  }

  removexattr(ctx: Context, nodeid: number, name: string): R<void> {
    const b = this.route(nodeid);
    if (!b) throw EROFS();
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.removexattr) throw new FuseError('EOPNOTSUPP');
    const local = this.local(b, nodeid);
    return this.run(b, () => then(this.permit(ctx, b, local, name.startsWith('user.') ? W_OK : 0), () => fs.removexattr!(ctx, local, name)), undefined, fails('EOPNOTSUPP'));
  }

  flush(ctx: Context, nodeid: number, fh: number, lockOwner: bigint): R<void> {
    // close(2) of a file of a backend detached by force succeeds (what it wrote went to
    // the backend before, or failed with ESTALE then).
    if (nodeid >= this.span && this.slots[Math.floor(nodeid / this.span)]?.live === false) return;
    const b = this.route(nodeid);
    if (!b || !b.fs!.flush) return;
    return this.run(b, () => b.fs!.flush!(ctx, this.local(b, nodeid), fh, lockOwner), undefined, ok);
  }

  opendir(ctx: Context, nodeid: number, flags: number): R<OpenReply> {
    const b = this.route(nodeid);
    if (!b) {
      const fh = this.nextFh++;
      this.listings.set(fh, this.pseudoList(this.pseudo.get(nodeid)!));
      return { fh };
    }
    const fs = this.fs(b);
    const local = this.local(b, nodeid);
    return this.run(b, () => then(this.permit(ctx, b, local, R_OK), () => (fs.opendir ? fs.opendir(ctx, local, flags) : {})), (r) => this.opened(b, local, r),
      () => this.opened(b, local, {}));
  }

  readdir(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentSink): R<void> {
    const b = this.route(nodeid);
    if (!b) {
      const l = this.listings.get(fh) ?? this.pseudoList(this.pseudo.get(nodeid)!);
      for (let i = Number(offset); i < l.length; i++) if (!out.add(l[i][0], l[i][1], l[i][2], i + 1)) break;
      return;
    }
    const fs = this.fs(b);
    if (!fs.readdir) throw new FuseError('ENOTDIR');
    const local = this.local(b, nodeid);
    return this.run(b, () => fs.readdir!(ctx, local, fh, offset, this.direntSink(b, local, out)));
  }

  /** The backend's records with tagged inode numbers (`..` of its root: the pseudo parent). */
  private direntSink(b: Backend, local: number, out: DirentSink): DirentSink {
    const up = local === FUSE_ROOT_ID ? b.parent.id : -1;
    const sink: DirentSink = {
      add: (name, ino, type, off) => out.add(name, up > 0 && isDotDot(name) ? up : this.ino(b, ino), type, off),
    };
    if (out.addFrom) {
      const addFrom = out.addFrom.bind(out);
      sink.addFrom = (src, start, length, ino, type, off) => addFrom(src, start, length,
        up > 0 && length === 2 && src[start] === 0x2e && src[start + 1] === 0x2e ? up : this.ino(b, ino), type, off);
    }
    return sink;
  }

  readdirplus(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentPlusSink): R<void> {
    const b = this.route(nodeid);
    if (!b) return this.pseudoReaddirplus(ctx, nodeid, fh, offset, out);
    const fs = this.fs(b);
    const local = this.local(b, nodeid);
    const up = local === FUSE_ROOT_ID ? b.parent : undefined;
    const sink: DirentPlusSink = {
      add: (name, e, off) => {
        if (isDot(name)) {
          const attr = up && isDotDot(name) ? this.pseudoAttr(up) : this.attr(b, e?.attr);
          return out.add(name, { nodeid: 0, attr } as Entry, off);
        }
        const mine = this.entry(b, e);
        let sent: boolean;
        try {
          sent = out.add(name, mine, off);
        } catch (x) {
          if (mine.nodeid) this.unhold(b, mine.nodeid - b.base); // not sent (a bad entry): the backend undoes its own count
          throw x;
        }
        if (sent) return true;
        if (mine.nodeid) this.unhold(b, mine.nodeid - b.base); // not sent: the backend counts it as not sent either
        return false;
      },
    };
    if (fs.readdirplus) return this.run(b, () => fs.readdirplus!(ctx, local, fh, offset, sink));
    if (!fs.readdir) throw new FuseError('ENOTDIR');
    // A backend without readdirplus: its READDIR, and a LOOKUP per name.
    return this.run(b, () => this.emulatePlus(ctx, b, fs, local, fh, offset, sink));
  }

  private unhold(b: Backend, local: number): void {
    const n = b.held.get(local);
    if (n === undefined) return;
    if (this.journalSink && (local === FUSE_ROOT_ID || b.selfJournal)) this.journalSink.add(['V', 'F', b.index, local, 1]);
    if (n <= 1) b.held.delete(local);
    else b.held.set(local, n - 1);
  }

  private async emulatePlus(ctx: Context, b: Backend, fs: FileSystem, local: number, fh: number, offset: bigint, sink: DirentPlusSink): Promise<void> {
    const got: [string | Uint8Array, U64, number, U64][] = [];
    await fs.readdir!(ctx, local, fh, offset, {
      add: (name, ino, type, off) => got.length < 128 && !!got.push([typeof name === 'string' ? name : nameFromBytes(name), ino, type, off]),
    });
    for (const [name, ino, type, off] of got) {
      if (isDot(name)) {
        if (!sink.add(name, { nodeid: 0, attr: { ino, mode: type << 12 } } as Entry, off)) return;
        continue;
      }
      let e: Entry | undefined;
      try {
        e = await fs.lookup!(ctx, local, name as string);
      } catch {
        e = undefined;
      }
      // A name whose LOOKUP failed is still listed, without an entry (as READDIR would).
      if (!e || !e.nodeid) {
        if (!sink.add(name, { nodeid: 0, attr: { ino, mode: type << 12 } } as Entry, off)) return;
        continue;
      }
      let sent = false;
      try {
        sent = sink.add(name, e, off);
      } finally {
        if (!sent) fs.forget?.(e.nodeid, 1);
      }
      if (!sent) return;
    }
  }

  private pseudoReaddirplus(ctx: Context, nodeid: number, fh: number, offset: bigint, out: DirentPlusSink): R<void> {
    const d = this.pseudo.get(nodeid)!;
    const l = this.listings.get(fh) ?? this.pseudoList(d);
    const step = (i: number): R<void> => {
      for (; i < l.length; i++) {
        const [name, ino] = l[i];
        if (isDot(name)) {
          if (!out.add(name, { nodeid: 0, attr: { ino, mode: S_IFDIR | 0o755 } } as Entry, i + 1)) return;
          continue;
        }
        const c = d.children.get(name);
        if (!c || (c instanceof Backend && c.hidden)) continue;
        const next = i + 1;
        // A backend whose root fails (its source gone) is listed without an entry.
        const bare = { nodeid: 0, attr: { ino: l[i][1], mode: S_IFDIR | 0o755 } } as Entry;
        let e: R<Entry>;
        try {
          e = this.pseudoEntry(ctx, d, name);
        } catch {
          e = bare;
        }
        if (isPromise(e)) e = (e as Promise<Entry>).catch(() => bare);
        const add = (en: Entry): R<void> => {
          if (out.add(name, en, next)) return step(next);
          if (c instanceof Backend && en.nodeid) this.forget(en.nodeid, 1); // not sent
        };
        return isPromise(e) ? (e as Promise<Entry>).then(add) : add(e as Entry);
      }
    };
    return step(Number(offset));
  }

  releasedir(ctx: Context, nodeid: number, fh: number, flags: number): R<void> {
    if (nodeid < this.span) { this.listings.delete(fh); return; }
    const b = this.closing(nodeid);
    if (!b?.fs?.releasedir) return;
    return this.run(b, () => b.fs!.releasedir!(ctx, this.local(b, nodeid), fh, flags));
  }

  fsyncdir(ctx: Context, nodeid: number, fh: number, datasync: boolean): R<void> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.fsyncdir) return;
    return this.run(b, () => b.fs!.fsyncdir!(ctx, this.local(b, nodeid), fh, datasync), undefined, ok);
  }

  getlk(ctx: Context, nodeid: number, fh: number, owner: bigint, lock: Lock): R<Lock> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.getlk) throw new FuseError('ENOLCK', 'this filesystem keeps no locks');
    return this.run(b, () => b.fs!.getlk!(ctx, this.local(b, nodeid), fh, owner, lock), undefined, fails('ENOLCK'));
  }

  setlk(ctx: Context, nodeid: number, fh: number, owner: bigint, lock: Lock, wait: boolean, flock: boolean): R<void> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.setlk) throw new FuseError('ENOLCK', 'this filesystem keeps no locks');
    return this.run(b, () => b.fs!.setlk!(ctx, this.local(b, nodeid), fh, owner, lock, wait, flock), undefined, fails('ENOLCK'));
  }

  access(ctx: Context, nodeid: number, mask: number): R<void> {
    const b = this.route(nodeid);
    if (!b) {
      if (mask & W_OK) throw EROFS();
      return;
    }
    if (mask & W_OK) this.writable(b);
    const fs = this.fs(b);
    const local = this.local(b, nodeid);
    return this.run(b, () => then(this.permit(ctx, b, local, mask & 7), () => fs.access?.(ctx, local, mask)), undefined, ok);
  }

  create(ctx: Context, parent: number, name: string, mode: number, flags: number): R<CreateReply> {
    const b = this.route(parent);
    if (!b) throw EROFS();
    this.writable(b);
    const fs = this.fs(b);
    const local = this.local(b, parent);
    const made = (r: CreateReply): CreateReply => this.createdEntry(ctx, b, r, flags);
    // Without create (or ENOSYS from it): MKNOD and OPEN, as the kernel would do.
    const split = () => {
      if (!fs.mknod) throw new FuseError('EPERM', `${b.path} does not create files`);
      return this.run(b, () => then(fs.mknod!(ctx, local, name, (mode & ~S_IFMT) | C.S_IFREG, 0), async (entry) => {
        try {
          return { ...(fs.open ? await fs.open(ctx, entry.nodeid, flags & ~(C.O_CREAT | C.O_EXCL)) : {}), entry };
        } catch (e) {
          fs.forget?.(entry.nodeid, 1); // the file is made, but the kernel never hears of it
          throw e;
        }
      }), made, fails('EPERM'));
    };
    const checked = this.permit(ctx, b, local, W_OK | X_OK);
    if (fs.create) return then(checked, () => this.run(b, () => fs.create!(ctx, local, name, mode, flags), made, split));
    return then(checked, split);
  }

  /** CREATE/TMPFILE's reply as ours; a refused entry releases the handle the backend made. */
  private createdEntry(ctx: Context, b: Backend, r: CreateReply, flags: number): CreateReply {
    let entry: Entry;
    try {
      entry = this.entry(b, r?.entry);
    } catch (e) {
      if (r?.entry && Number.isSafeInteger(r.entry.nodeid)) {
        try {
          const p = b.fs?.release?.(ctx, r.entry.nodeid, r.fh ?? 0, flags, 0n, false);
          if (isPromise(p)) p.catch(() => {});
        } catch { /* the entry's failure is the answer */ }
      }
      throw e;
    }
    b.open(entry.nodeid - b.base);
    if (this.journalSink && b.selfJournal) this.journalSink.add(['V', 'O', b.index, entry.nodeid - b.base]);
    return { ...r, entry };
  }

  bmap(ctx: Context, nodeid: number, blocksize: number, block: bigint): R<U64> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.bmap) throw new FuseError('EINVAL');
    return this.run(b, () => b.fs!.bmap!(ctx, this.local(b, nodeid), blocksize, block), undefined, fails('EINVAL'));
  }

  ioctl(ctx: Context, nodeid: number, fh: number, cmd: number, arg: bigint, inData: Uint8Array, outSize: number, flags: number): R<IoctlReply> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.ioctl) throw new FuseError('ENOTTY');
    return this.run(b, () => b.fs!.ioctl!(ctx, this.local(b, nodeid), fh, cmd, arg, inData, outSize, flags), undefined, fails('ENOTTY'));
  }

  poll(ctx: Context, nodeid: number, fh: number, kh: bigint, events: number, flags: number): R<number> {
    const b = this.route(nodeid);
    if (!b || !b.fs!.poll) return DEFAULT_POLLMASK;
    return this.run(b, () => b.fs!.poll!(ctx, this.local(b, nodeid), fh, kh, events, flags), undefined, () => DEFAULT_POLLMASK);
  }

  fallocate(ctx: Context, nodeid: number, fh: number, offset: bigint, length: bigint, mode: number): R<void> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('EISDIR');
    this.writable(b);
    if (!b.fs!.fallocate) throw new FuseError('EOPNOTSUPP');
    return this.run(b, () => b.fs!.fallocate!(ctx, this.local(b, nodeid), fh, offset, length, mode), undefined, fails('EOPNOTSUPP'));
  }

  lseek(ctx: Context, nodeid: number, fh: number, offset: bigint, whence: number): R<U64> {
    const b = this.route(nodeid);
    if (!b) throw new FuseError('EINVAL');
    const fs = this.fs(b);
    const local = this.local(b, nodeid);
    // As the kernel's own fallback: all data, one hole at the end.
    const plain = () => this.run(b, () => fs.getattr!(ctx, local, fh), (r) => {
      const size = BigInt(r.attr.size ?? 0);
      if (offset >= size) throw new FuseError('ENXIO');
      return whence === 3 ? offset : size;
    });
    if (fs.lseek) return this.run(b, () => fs.lseek!(ctx, local, fh, offset, whence), undefined, plain);
    return plain();
  }

  copyFileRange(ctx: Context, nodeIn: number, fhIn: number, offIn: bigint, nodeOut: number, fhOut: number, offOut: bigint, len: bigint, flags: bigint): R<U64> {
    const b = this.route(nodeIn);
    const bo = this.route(nodeOut);
    if (!b || b !== bo) throw new FuseError('EXDEV', 'across filesystems of the VFS'); // the kernel copies by itself then
    this.writable(b);
    if (!b.fs!.copyFileRange) throw new FuseError('EOPNOTSUPP');
    return this.run(b, () => b.fs!.copyFileRange!(ctx, this.local(b, nodeIn), fhIn, offIn, this.local(b, nodeOut), fhOut, offOut, len, flags), undefined, fails('EOPNOTSUPP'));
  }

  syncfs(ctx: Context, nodeid: number): R<void> {
    const b = this.route(nodeid);
    if (!b) {
      // The whole mount: every backend.
      // syncfs(2) of the mount: every backend, each failure its own (ENOSYS: nothing to sync).
      const live = this.slots.filter((s): s is Backend => !!s?.live && typeof s.fs?.syncfs === 'function');
      return Promise.allSettled(live.map((s) => { s.requests++; return this.run(s, () => s.fs!.syncfs!(ctx, FUSE_ROOT_ID), undefined, ok); }))
        .then((rs) => { const bad = rs.find((r) => r.status === 'rejected'); if (bad) throw (bad as PromiseRejectedResult).reason; });
    }
    if (!b.fs!.syncfs) return;
    return this.run(b, () => b.fs!.syncfs!(ctx, this.local(b, nodeid)), undefined, ok);
  }

  tmpfile(ctx: Context, parent: number, mode: number, flags: number): R<CreateReply> {
    const b = this.route(parent);
    if (!b) throw EROFS();
    this.writable(b);
    const fs = this.fs(b);
    if (!fs.tmpfile) throw new FuseError('EOPNOTSUPP');
    const local = this.local(b, parent);
    return this.run(b, () => then(this.permit(ctx, b, local, W_OK | X_OK), () => fs.tmpfile!(ctx, local, mode, flags)),
      (r) => this.createdEntry(ctx, b, r, flags), fails('EOPNOTSUPP'));
  }

  /** The backend's path for the debug trace (Server: "[/a]"). */
  traceTag(nodeid: number): string | undefined {
    if (nodeid < this.span) return undefined;
    return this.slots[Math.floor(nodeid / this.span)]?.path;
  }

  stats(): VfsStats {
    const backends: Record<string, BackendStats> = {};
    const detached: Record<string, number> = {};
    for (const b of this.slots) {
      if (!b) continue;
      if (!b.live) { detached[`${b.path}#${b.index}`] = b.held.size; continue; }
      let lookups = 0;
      let inodes = 0;
      for (const [id, n] of b.held) if (id !== FUSE_ROOT_ID) { lookups += n; inodes++; }
      const s: BackendStats = { index: b.index, requests: b.requests, errors: b.errors, inodes, lookups, handles: b.handles };
      const fs = b.fs?.stats?.();
      if (fs) s.fs = fs;
      backends[b.path] = s;
    }
    return { pseudo: { dirs: this.pseudo.size, requests: this.pseudoRequests }, backends, detached };
  }

  // ---- takeover (a supervised server: src/api/supervisor.ts) ----

  /** The journal: the layout is recorded in it, and each backend that keeps one gets its own
   * part of it (its records tagged with its index). */
  get journal(): JournalWriter | undefined {
    return this.journalSink;
  }
  set journal(j: JournalWriter | undefined) {
    const fresh = j !== undefined && this.journalSink === undefined;
    this.journalSink = j;
    // What was attached before there was a journal goes on record first (the backends a
    // server starts with), then each backend that keeps a journal gets its part of it.
    if (fresh && !this.restored) for (const r of this.layoutRecords()) j.add(r);
    for (const b of this.slots) if (b?.live && b.fs) this.sync(b.fs, b.index);
  }

  /** Set by restore(): the journal then gets a snapshot, not the layout again. */
  private restored = false;

  private *layoutRecords(): Generator<JournalRecord> {
    const dirs = [...this.pseudo.values()].filter((d) => d.parent).sort((a, c) => a.id - c.id);
    for (const d of dirs) yield ['V', 'P', d.id, d.parent!.id, nameToBytes(d.name)];
    for (const b of this.slots) if (b?.live) yield ['V', 'A', b.index, b.path, b.opts.spec ?? null, backendOpts(b.opts)];
  }

  private sync(fs: FileSystem, index: number): void {
    const t = fs as Partial<Takeover>;
    if (this.journalSink && typeof t.restore === 'function') t.journal = scopedJournal(this.journalSink, index);
  }

  /** Whether `fh` of `nodeid` is a file opened O_APPEND (the ledger de-duplicates its writes). */
  isAppend(fh: number, nodeid?: number): boolean {
    if (nodeid === undefined || nodeid < this.span) return false;
    const b = this.slots[Math.floor(nodeid / this.span)];
    return (b?.fs as Partial<Takeover> | undefined)?.isAppend?.(fh, nodeid - b!.base) ?? false;
  }

  /** The records that describe the layout and every backend now (a snapshot). */
  *snapshot(): Generator<JournalRecord> {
    const dirs = [...this.pseudo.values()].filter((d) => d.parent).sort((a, c) => a.id - c.id);
    for (const d of dirs) yield ['V', 'P', d.id, d.parent!.id, nameToBytes(d.name)];
    for (const b of this.slots) {
      if (!b) continue;
      if (!b.live) {
        yield ['V', 'X', b.index, b.path, [...b.opens], [...b.held]];
        continue;
      }
      yield ['V', 'A', b.index, b.path, b.opts.spec ?? null, backendOpts(b.opts)];
      yield ['V', 'H', b.index, [...b.opens], [...b.held]];
      const t = b.fs as Partial<Takeover>;
      if (typeof t.snapshot === 'function') for (const r of t.snapshot()) yield ['@', b.index, ...r];
    }
  }

  /**
   * Takeover: rebuilds the layout a dead server journaled — the pseudo directories under
   * their ids, each backend at its index, built again from its spec (VfsOptions.build) —
   * then hands each backend its own records to restore. A backend that cannot be built
   * again (no spec, no build, or build failed) keeps its index: its node ids answer ESTALE.
   */
  async restore(records: readonly JournalRecord[], log: (line: string) => void = () => {}): Promise<RestoreReport> {
    const init = records.find((r) => r[0] === 'I') as [string, { flags: number }, unknown] | undefined;
    if (init) this.session = Number(init[1].flags);
    const mine = new Map<number, JournalRecord[]>();
    const layout: { index: number; path: string; spec: string | null; opts: BackendOptions }[] = [];
    const gone = new Map<number, string>();
    const counts = new Map<number, { opens: Map<number, number>; held: Map<number, number> }>();
    const count = (i: number) => {
      let c = counts.get(i);
      if (!c) counts.set(i, (c = { opens: new Map(), held: new Map() }));
      return c;
    };
    const pairs = (v: unknown) => new Map(((v ?? []) as [number, number][]).map(([a, n]) => [Number(a), Number(n)]));
    for (const r of records) {
      if (r[0] === '@') {
        const i = Number(r[1]);
        let l = mine.get(i);
        if (!l) mine.set(i, (l = []));
        const rec = r.slice(2);
        l.push(rec);
        const c = count(i);
        const id = Number(rec[1]);
        if (rec[0] === 'E') c.held.set(id, (c.held.get(id) ?? 0) + 1);
        else if (rec[0] === 'N') { if (Number(rec[2]) > 0) c.held.set(id, Number(rec[2])); }
        else if (rec[0] === 'F') { const n = (c.held.get(id) ?? 0) - Number(rec[2]); if (n > 0) c.held.set(id, n); else c.held.delete(id); }
        continue;
      }
      if (r[0] !== 'V') continue;
      switch (r[1]) {
        case 'P': {
          const parent = this.pseudo.get(Number(r[3]));
          const name = nameFromBytes(r[4] as Uint8Array);
          if (!parent || this.pseudo.has(Number(r[2]))) break;
          const d = new PseudoDir(Number(r[2]), name, parent);
          this.pseudo.set(d.id, d);
          parent.children.set(name, d);
          this.nextPseudo = Math.max(this.nextPseudo, d.id + 1);
          break;
        }
        case 'A': mine.delete(Number(r[2])); counts.delete(Number(r[2])); layout.push({ index: Number(r[2]), path: String(r[3]), spec: (r[4] as string | null) ?? null, opts: (r[5] ?? {}) as BackendOptions }); gone.delete(Number(r[2])); break;
        case 'D': {
          const i = Number(r[2]);
          const at = layout.findIndex((l) => l.index === i);
          if (at >= 0) gone.set(i, layout.splice(at, 1)[0].path);
          break;
        }
        case 'X': { gone.set(Number(r[2]), String(r[3])); const c = count(Number(r[2])); c.opens = pairs(r[4]); c.held = pairs(r[5]); break; }
        case 'E': { const c = count(Number(r[2])); const id = Number(r[3]); c.held.set(id, (c.held.get(id) ?? 0) + 1); break; }
        case 'F': { const c = count(Number(r[2])); const id = Number(r[3]); const n = (c.held.get(id) ?? 0) - Number(r[4]); if (n > 0) c.held.set(id, n); else c.held.delete(id); break; }
        case 'O': { const c = count(Number(r[2])); const id = Number(r[3]); c.opens.set(id, (c.opens.get(id) ?? 0) + 1); break; }
        case 'R': { const c = count(Number(r[2])); const id = Number(r[3]); const n = (c.opens.get(id) ?? 0) - 1; if (n > 0) c.opens.set(id, n); else c.opens.delete(id); break; }
        case 'H': { const c = count(Number(r[2])); c.opens = pairs(r[3]); c.held = pairs(r[4]); break; }
        default: break;
      }
    }
    // Handles: opens and releases of each backend's files, from its own records.
    for (const [i, l] of mine) {
      const open = new Map<number, number>(); // fh → node id
      for (const rec of l) { if (rec[0] === 'O') open.set(Number(rec[1]), Number(rec[2])); else if (rec[0] === 'R') open.delete(Number(rec[1])); }
      if (!l.some((rec) => rec[0] === 'O' || rec[0] === 'R')) continue;
      const c = count(i);
      c.opens = new Map();
      for (const id of open.values()) if (id) c.opens.set(id, (c.opens.get(id) ?? 0) + 1); // id 0: a file lost in an earlier takeover
    }
    let nodes = 0;
    let lostNodes = 0;
    let files = 0;
    let lostFiles = 0;
    this.restored = true;
    // Backends attached before the restore (a server started with its layout, as the CLI's
    // --at) are the journal's when they sit at the same index and path; any other is taken
    // off (the journal says what the kernel's node ids mean).
    const before = new Map<number, Backend>();
    for (const b of this.slots) {
      if (!b) continue;
      this.slots[b.index] = undefined;
      b.parent.children.delete(b.name);
      if (layout.some((l) => l.index === b.index && l.path === b.path && l.spec === (b.opts.spec ?? null))) before.set(b.index, b);
      else {
        log(`takeover: ${b.path} (index ${b.index}, ${b.opts.spec ?? 'no spec'}) is not what the journal has there: not attached`);
        try { await b.fs?.destroy?.(); } catch { /* ignore */ }
      }
    }
    this.lowestFree = 1;
    for (const l of layout) {
      const names = splitPath(l.path);
      const parent = this.walk(names.slice(0, -1), l.path, true)!;
      const c = count(l.index);
      let fs: FileSystem | undefined = before.get(l.index)?.fs;
      try {
        if (fs) { /* attached at start, as before the crash */ }
        else if (l.spec === null) throw new Error('it was attached without a spec');
        else if (!this.build) throw new Error('the Vfs has no build function');
        else fs = await this.build(l.spec);
      } catch (e) {
        log(`takeover: ${l.path} (index ${l.index}) cannot be attached again: ${(e as Error).message}; its node ids answer ESTALE`);
      }
      const b = new Backend(l.index, l.index * this.span, names[names.length - 1], parent, fs, l.opts);
      for (const [id, n] of c.held) b.held.set(id, n);
      for (const [id, n] of c.opens) b.open(id, n);
      this.slots[l.index] = b;
      if (!fs) { b.live = false; b.hidden = true; lostNodes += b.held.size; lostFiles += b.handles; continue; }
      parent.children.set(b.name, b);
      await this.learnRootIno(b);
      if (this.initInfo && this.session !== undefined) {
        await this.initBackend(b, this.initInfo, this.session, and(wantedInitFlags(fs), this.session));
        b.inited = true;
      }
      const t = fs as Partial<Takeover>;
      if (typeof t.restore === 'function') {
        const rep = await t.restore(mine.get(l.index) ?? [], (line) => log(`${l.path}: ${line}`));
        nodes += rep.nodes; lostNodes += rep.lostNodes; files += rep.files; lostFiles += rep.lostFiles;
      } else if (b.held.size > 0) {
        log(`takeover: ${l.path} has no restore(): its ${b.held.size} node id(s) are passed to it as they were`);
      }
    }
    for (const [i, path] of gone) {
      const c = count(i);
      if (!c.held.size && !c.opens.size) continue;
      const names = splitPath(path);
      const b = new Backend(i, i * this.span, names[names.length - 1], this.root, undefined, {});
      b.live = false;
      for (const [id, n] of c.held) b.held.set(id, n);
      for (const [id, n] of c.opens) b.open(id, n);
      this.slots[i] = b;
    }
    log(`takeover: VFS layout restored: ${layout.map((l) => `${l.path}#${l.index}`).join(', ') || 'no backends'}`);
    return { nodes, lostNodes, files, lostFiles };
  }
}

/** What a backend offers for crash takeover (InodeTree does). */
type Takeover = Restorable;

/** A journal whose records are tagged with a backend's index. */
function scopedJournal(j: JournalWriter, index: number): JournalWriter {
  return { add: (rec: JournalRecord) => j.add(['@', index, ...rec]) };
}

/** The notifier a backend gets: its node ids become ours. */
function scopedNotifier(n: Notifier, base: number): Notifier {
  const g = (id: number) => (id === 0 ? 0 : base + id);
  const s = {
    backingOpen: (fd: number) => n.backingOpen(fd),
    backingClose: (id: number) => n.backingClose(id),
    invalInode: (id: number, off?: number, len?: number) => n.invalInode(g(id), off, len),
    invalEntry: (parent: number, name: string, expireOnly?: boolean) => n.invalEntry(g(parent), name, expireOnly),
    delete: (parent: number, child: number, name: string) => n.delete(g(parent), g(child), name),
    store: (id: number, off: number, data: Uint8Array) => n.store(g(id), off, data),
    retrieve: (id: number, off: number, size: number) => n.retrieve(g(id), off, size),
    retrieveReply: (u: number, data: Uint8Array) => n.retrieveReply(u, data),
    pollWakeup: (kh: number) => n.pollWakeup(kh),
    prune: (ids: number[]) => n.prune(ids.map(g)),
    incEpoch: () => n.incEpoch(),
    resend: () => n.resend(),
    close: () => { /* the session's, not the backend's */ },
  };
  return s as unknown as Notifier;
}

function isEnosys(e: unknown): boolean {
  const x = e as { errno?: unknown; code?: unknown } | null;
  return x?.code === 'ENOSYS' || (e instanceof FuseError && e.errno === 38);
}

const ok = () => undefined;
const fails = (code: string) => (): never => { throw new FuseError(code); };

function err(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function isDot(name: string | Uint8Array): boolean {
  if (typeof name === 'string') return name === '.' || name === '..';
  return (name.length === 1 && name[0] === 0x2e) || isDotDot(name);
}

function isDotDot(name: string | Uint8Array): boolean {
  if (typeof name === 'string') return name === '..';
  return name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
}

/** Checks `mask` against `a`'s mode bits for the caller, as the kernel's generic_permission. */
function checkMode(ctx: Context, a: Attr, mask: number): void {
  const mode = a.mode;
  if (ctx.uid === 0) {
    // root: everything, except executing a file no one may execute.
    if (mask & X_OK && (mode & S_IFMT) !== S_IFDIR && (mode & 0o111) === 0) throw new FuseError('EACCES');
    return;
  }
  let bits: number;
  if (ctx.uid === (a.uid ?? 0)) bits = (mode >> 6) & 7;
  else if (ctx.gid === (a.gid ?? 0) || callerGroups(ctx).includes(a.gid ?? 0)) bits = (mode >> 3) & 7;
  else bits = mode & 7;
  if ((bits & mask) !== mask) throw new FuseError('EACCES');
}

/** "/a/b" → ["a", "b"]; refuses "/", relative paths, "." and ".." and empty names. */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) throw err('EINVAL', `VFS path ${JSON.stringify(path)}: must start with "/"`);
  const names = path.split('/').filter((n) => n !== '');
  if (!names.length) throw err('EINVAL', 'VFS path "/": the root is the VFS\'s own directory; attach below it ("/name")');
  for (const n of names) {
    if (n === '.' || n === '..') throw err('EINVAL', `VFS path ${JSON.stringify(path)}: "." and ".." are not names`);
    if (n.includes('\0')) throw err('EINVAL', `VFS path ${JSON.stringify(path)}: a name cannot hold a NUL byte`);
    if (nameToBytes(n).length > 255) throw err('ENAMETOOLONG', `VFS path ${JSON.stringify(path)}: a name is longer than 255 bytes`);
  }
  return names;
}

function checkBackendOptions(o: BackendOptions): void {
  for (const k of ['entryTimeout', 'attrTimeout'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) {
      throw Object.assign(new Error(`invalid backend option ${k}: must be a number of milliseconds ≥ 0, got ${JSON.stringify(v)}`), { code: 'EINVAL', option: k });
    }
  }
  if (o.spec !== undefined && typeof o.spec !== 'string') throw Object.assign(new Error('invalid backend option spec: must be a string'), { code: 'EINVAL', option: 'spec' });
}

/** The options worth keeping in the journal (no functions). */
function backendOpts(o: BackendOptions): BackendOptions {
  const r: BackendOptions = {};
  if (o.entryTimeout !== undefined) r.entryTimeout = o.entryTimeout;
  if (o.attrTimeout !== undefined) r.attrTimeout = o.attrTimeout;
  if (o.readOnly) r.readOnly = true;
  if (o.defaultPermissions) r.defaultPermissions = true;
  if (o.spec !== undefined) r.spec = o.spec;
  return r;
}
