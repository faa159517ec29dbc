/**
 * After a takeover the kernel re-sends (FUSE_NOTIFY_RESEND, bit 63 of `unique`
 * set) every request the dead server read but did not answer. Most are safe to
 * run again; these are not: CREATE, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR,
 * RENAME, RENAME2, and WRITE to a file opened O_APPEND (the source appends
 * wherever the offset says, so a second run appends the data again). Run twice, a mkdir that succeeded answers EEXIST and an
 * unlink ENOENT. So each is journaled: 'B' (begun, written before it runs) and
 * 'D' (its outcome, written before its reply). A re-sent request is then
 *   - unknown (never begun): run normally;
 *   - done: answered as it was, without running again (an entry is looked up
 *     again, a created file opened again; the unsent entry's lookup and file
 *     handle of the dead process are released; a write answers its count);
 *   - begun, not done (the crash came in between): run; EEXIST (create-like) or
 *     ENOENT (remove-like) then mean "it was applied" and are answered as done.
 *     (An append write caught there runs again and appends twice: the window is from
 *     its 'B' to its 'D', the pwrite on the thread pool and its callback.)
 */
import { Opcode, type Request } from '../abi/index.js';
import type { Context } from './context.js';
import { FuseError, toErrno } from './errors.js';
import type { FileSystem } from './filesystem.js';
import type { Journal, JournalRecord } from './journal.js';
import type { CreateReply, Entry } from './types.js';

const CREATES = new Set<number>([Opcode.CREATE, Opcode.MKNOD, Opcode.MKDIR, Opcode.SYMLINK, Opcode.LINK]);
const REMOVES = new Set<number>([Opcode.UNLINK, Opcode.RMDIR, Opcode.RENAME, Opcode.RENAME2]);
const EEXIST = 17;
const ENOENT = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
/** Outcomes of the previous process kept for re-sent requests (the kernel re-sends at once). */
const KEEP = 4096;

interface Outcome { errno?: number; id?: number; fh?: number; count?: number }

type R<T> = T | Promise<T>;
function isPromise<T>(v: R<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
function then<T, U>(v: R<T>, f: (t: T) => R<U>): R<U> {
  return isPromise(v) ? v.then(f) : f(v);
}

function record(k: number, o: Outcome): JournalRecord {
  return o.errno === undefined ? ['B', k, 0] : ['D', k, o.errno, o.id ?? null, o.fh ?? null, o.count ?? null];
}

/** Journals the non-idempotent requests and answers their re-sent copies after a takeover (see the module comment). */
export class RequestLedger {
  /** The previous process's non-idempotent requests by unique (bit 63 clear). */
  private readonly prior = new Map<number, Outcome>();
  /** This process's own tracked requests (the last KEEP), so that a snapshot written while
   * one is in flight (journal compaction) keeps its record. */
  private readonly recent = new Map<number, Outcome>();
  /** Re-sent requests answered from the record (for stats and tests). */
  replayed = 0;

  /** Whether file handle `fh` was opened O_APPEND (set for an InodeTree). */
  appendHandle: ((fh: number, nodeid: number) => boolean) | undefined;

  constructor(private readonly journal: Journal) {}

  /** Reads the 'B'/'D' records of a dead process's journal (the last KEEP of them). */
  load(records: readonly JournalRecord[]): void {
    for (const r of records) {
      if (r[0] === 'B') this.prior.set(Number(r[1]), {});
      else if (r[0] === 'D') {
        const opt = (v: unknown) => (v == null ? undefined : Number(v));
        this.prior.set(Number(r[1]), { errno: Number(r[2]), id: opt(r[3]), fh: opt(r[4]), count: opt(r[5]) });
      }
    }
    while (this.prior.size > KEEP) this.prior.delete(this.prior.keys().next().value!);
  }

  /** The records a snapshot keeps (outcomes a re-send may still ask about). */
  *snapshot(): Generator<JournalRecord> {
    for (const [k, o] of this.prior) if (!this.recent.has(k)) yield record(k, o);
    for (const [k, o] of this.recent) yield record(k, o);
  }

  /** Whether `req` is one of the non-idempotent requests this ledger journals. */
  tracks(op: number, req: Request): boolean {
    if (op === Opcode.WRITE) return this.appendHandle?.((req.body as { fh: number }).fh, req.nodeid) ?? false;
    return CREATES.has(op) || REMOVES.has(op);
  }

  /** Runs `call` for a tracked request, journaled; answers a re-sent one as it was answered. */
  run(fs: FileSystem, req: Request, ctx: Context, call: () => unknown): unknown {
    const key = req.uniqueLo + (req.uniqueHi & 0x1fffff) * 4294967296;
    const prev = req.uniqueHi & 0x80000000 ? this.prior.get(key) : undefined;
    if (prev?.errno === 0) {
      this.replayed++;
      return this.record(key, this.replay(fs, req, ctx, prev));
    }
    if (prev?.errno !== undefined) throw new FuseError(prev.errno, 're-sent request: answered as before');
    this.remember(key, {});
    this.journal.add(['B', key, req.opcode]);
    this.journal.flush(); // on record before it runs: a crash in between is "begun"
    const failed = (e: unknown): unknown => {
      const { errno } = toErrno(e);
      if (prev && (CREATES.has(req.opcode) ? errno === EEXIST : errno === ENOENT)) {
        this.replayed++;
        return this.record(key, this.replay(fs, req, ctx, {}));
      }
      this.remember(key, { errno });
      this.journal.add(['D', key, errno]);
      throw e;
    };
    let r: unknown;
    try {
      r = call();
    } catch (e) {
      return failed(e);
    }
    const done = (v: unknown) => this.done(key, v);
    return isPromise(r) ? r.then(done, failed) : done(r);
  }

  private record(key: number, r: unknown): unknown {
    const done = (v: unknown) => this.done(key, v);
    const failed = (e: unknown): never => {
      const { errno } = toErrno(e);
      this.remember(key, { errno });
      this.journal.add(['D', key, errno]);
      throw e;
    };
    return isPromise(r) ? r.then(done, failed) : done(r);
  }

  private done(key: number, v: unknown): unknown {
    if (typeof v === 'number') { // a write's count
      this.remember(key, { errno: 0, count: v });
      this.journal.add(['D', key, 0, null, null, v]);
      return v;
    }
    const c = v as Partial<CreateReply> & Partial<Entry> | undefined;
    const id = c?.entry?.nodeid ?? c?.nodeid;
    this.remember(key, { errno: 0, id, fh: c?.fh });
    this.journal.add(['D', key, 0, id ?? null, c?.fh ?? null]);
    return v;
  }

  private remember(key: number, o: Outcome): void {
    const had = this.recent.has(key); // B then D of one request: updated in place (cheap)
    this.recent.set(key, o);
    if (!had && this.recent.size > KEEP) this.recent.delete(this.recent.keys().next().value!);
  }

  /** The answer a request that was applied gets: looked up (and opened) again. */
  private replay(fs: FileSystem, req: Request, ctx: Context, prev: Outcome): unknown {
    if (REMOVES.has(req.opcode)) return undefined;
    if (req.opcode === Opcode.WRITE) {
      if (prev.count !== undefined) return prev.count;
      throw new FuseError('EIO', 'a re-sent append write: whether the dead server wrote it is unknown');
    }
    const parent = req.nodeid;
    const body = req.body as { flags?: number } | undefined;
    const entry = fs.lookup!(ctx, parent, req.name as string);
    // The dead process handed out the entry (and opened the file) in a reply the kernel
    // never got: give those back once the new lookup holds the inode.
    const release = () => {
      if (prev.fh !== undefined && prev.id !== undefined) {
        try { void Promise.resolve(fs.release?.(ctx, prev.id, prev.fh, 0, 0n, false)).catch(() => {}); } catch { /* gone */ }
      }
      if (prev.id !== undefined) fs.forget?.(prev.id, 1);
    };
    if (req.opcode !== Opcode.CREATE) return then(entry, (e) => { release(); return e; });
    return then(entry, (e) => then(fs.open!(ctx, e.nodeid, (body?.flags ?? 0) & ~(O_CREAT | O_EXCL | O_TRUNC)), (o) => {
      release();
      return { entry: e, ...o };
    }));
  }
}
