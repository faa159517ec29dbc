/** The shared harness of the conformance suite: the syscalls made in child processes, checks, the per-case context `t`, and the case runner. */
import { constants as C, type BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, relative } from 'node:path';
import { AsUser, type Op } from '../as-user.js';

export const NOBODY = 65534;
export const NAME_255 = 'n'.repeat(255);
export const NAME_256 = 'n'.repeat(256);
export const S_IFMT = C.S_IFMT;
export const REG = C.S_IFREG;
export const DIR = C.S_IFDIR;
export const LNK = C.S_IFLNK;

// ---- child processes: the syscalls Node lacks, and other users -------------------

export type { Op };

/**
 * Runs `ops` (names of the as-user helper's `sys` functions with their arguments) in
 * order in one fresh Node child, umask 0, cwd /; as `uid` if given, with gid `uid` and
 * the supplementary groups the group database gives that user, as a login would (a
 * filesystem must take a caller's groups from the caller, not find none). Fds opened
 * with `openfd` are kept by key for later ops in the same list. Rejects at the first
 * failing op with its errno name as `code`, like Node's fs. Settles once the child has
 * exited, so that nothing it opened is still open when the case goes on.
 */
async function inChild(ops: Op[], uid?: number, ms = 20_000): Promise<unknown[]> {
  const child = new AsUser(uid === undefined ? {} : { uid, gid: uid });
  try {
    return await child.ops(ops, ms);
  } finally {
    await child.close();
  }
}

// ---- checks ------------------------------------------------------------------------

/** A conformance failure (as opposed to the suite itself breaking). */
class Failure extends Error {}

export const oct = (n: number) => `0${n.toString(8)}`;
export function eq<V>(actual: V, expected: V, what: string): void {
  if (actual !== expected) throw new Failure(`${what}: got ${String(actual)}, expected ${String(expected)}`);
}
export function check(ok: boolean, what: string): void {
  if (!ok) throw new Failure(what);
}
export function eqMode(s: Stat, expected: number, what: string): void {
  if (s.mode !== expected) throw new Failure(`${what}: mode ${oct(s.mode)}, expected ${oct(expected)}`);
}

/** Expects `op` to fail with one of `codes`. */
export async function fails(what: string, op: () => Promise<unknown>, ...codes: string[]): Promise<void> {
  let r: unknown;
  try {
    r = await op();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code && codes.includes(code)) return;
    throw new Failure(`${what}: ${code ?? (e as Error).message}, expected ${codes.join(' or ')}`);
  }
  if (r && typeof r === 'object' && 'close' in r) await (r as fsp.FileHandle).close();
  throw new Failure(`${what}: succeeded, expected ${codes.join(' or ')}`);
}

export interface Stat {
  mode: number; uid: number; gid: number; nlink: number; size: number; ino: bigint;
  major: number; minor: number; atime: bigint; mtime: bigint; ctime: bigint;
}
function toStat(s: BigIntStats): Stat {
  const r = s.rdev; // glibc's gnu_dev_major/minor
  return {
    mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid), nlink: Number(s.nlink), size: Number(s.size), ino: s.ino,
    major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)),
    atime: s.atimeNs, mtime: s.mtimeNs, ctime: s.ctimeNs,
  };
}
export const stat = async (p: string) => toStat(await fsp.stat(p, { bigint: true }));
export const lstat = async (p: string) => toStat(await fsp.lstat(p, { bigint: true }));

/** Creates a regular file with `data` and exactly `mode`. */
export async function file(p: string, data = '', mode = 0o644): Promise<string> {
  await fsp.writeFile(p, data, { mode, flag: 'wx' });
  await fsp.chmod(p, mode); // in case the filesystem ignored the create mode
  return p;
}
/** Creates a directory with exactly `mode` (sticky and setgid bits included). */
export async function dir(p: string, mode = 0o755): Promise<string> {
  await fsp.mkdir(p, mode & 0o777);
  await fsp.chmod(p, mode);
  return p;
}
/** Does this filesystem count subdirectories in a directory's nlink (ext4, xfs, tmpfs: yes; btrfs: no)? */
export async function countsSubdirs(p: string): Promise<boolean> {
  return (await stat(p)).nlink >= 2;
}

export interface Env {
  tickMs: number;
  /** How far a timestamp may lag the wall clock (filesystem granularity plus the kernel's coarse clock). */
  slackNs: bigint;
  isRoot: boolean;
  /** Why uid 65534 cannot be used, or undefined if it can. */
  noNobody?: string;
}

/** What a case gets: its directory and ways to make syscalls. */
export class T {
  constructor(readonly dir: string, readonly env: Env) {}
  p(...names: string[]): string { return join(this.dir, ...names); }
  tick(): Promise<void> { return new Promise((r) => setTimeout(r, this.env.tickMs)); }
  /** One syscall in a child process, as the suite's user. */
  async sys(...op: Op): Promise<unknown> { return (await inChild([op]))[0]; }
  /** One syscall as uid/gid 65534. */
  async nobody(...op: Op): Promise<unknown> { return (await inChild([op], NOBODY))[0]; }
  batch(uid: number | undefined, ops: Op[]): Promise<unknown[]> { return inChild(ops, uid); }
  /** A directory anyone may create in (0777, owned by us). */
  pub(name = 'pub'): Promise<string> { return dir(this.p(name), 0o777); }
  now(): bigint { return BigInt(Date.now()) * 1_000_000n; }
}

/** Expects `op` to advance `fields` of each path (lstat) past what they were before it. */
export async function advances(t: T, paths: string[], fields: ('mtime' | 'ctime' | 'atime')[], op: () => Promise<unknown>): Promise<void> {
  const before = await Promise.all(paths.map(lstat));
  await t.tick();
  await op();
  const after = await Promise.all(paths.map(lstat));
  paths.forEach((p, i) => {
    for (const f of fields) {
      if (after[i][f] <= before[i][f]) {
        throw new Failure(`${f} of ${relative(t.dir, p) || '.'} did not advance (${before[i][f]} -> ${after[i][f]} ns)`);
      }
    }
  });
}
/** Expects `ns` to lie within [from, to] widened by the clock slack. */
export function nearNow(t: T, ns: bigint, from: bigint, to: bigint, what: string): void {
  if (ns < from - t.env.slackNs || ns > to + t.env.slackNs) {
    throw new Failure(`${what}: ${ns} ns is not the time of the call (${from}..${to} ns)`);
  }
}

// ---- the cases -----------------------------------------------------------------

export type Needs = 'root' | 'nobody';
export interface Case { name: string; needs?: Needs; run(t: T): Promise<void> }
export const c = (name: string, run: (t: T) => Promise<void>, needs?: Needs): Case => ({ name, run, needs });
export const root = (name: string, run: (t: T) => Promise<void>): Case => c(name, run, 'root');
export const nobody = (name: string, run: (t: T) => Promise<void>): Case => c(name, run, 'nobody');

// ---- running ---------------------------------------------------------------------

const PREFIX = '.tsfuse-conformance-';

/** Removes a case directory, making its subdirectories writable first if needed (non-root runs). */
async function removeTree(p: string): Promise<void> {
  try {
    await fsp.rm(p, { recursive: true, force: true });
  } catch {
    const walk = async (d: string): Promise<void> => {
      await fsp.chmod(d, 0o700).catch(() => undefined);
      for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(join(d, e.name));
      }
    };
    await walk(p);
    await fsp.rm(p, { recursive: true, force: true });
  }
}

/** Timestamp granularity, whether uid 65534 can reach MNT, and whether we are root. */
export async function probe(mnt: string): Promise<Env> {
  const isRoot = process.geteuid?.() === 0;
  const d = await fsp.mkdtemp(join(mnt, PREFIX));
  try {
    await fsp.chmod(d, 0o755);
    let coarse = true;
    for (let i = 0; i < 3 && coarse; i++) {
      await fsp.writeFile(join(d, `t${i}`), '');
      coarse = (await stat(join(d, `t${i}`))).ctime % 1_000_000_000n === 0n;
      await new Promise((r) => setTimeout(r, 7));
    }
    let noNobody: string | undefined;
    if (!isRoot) noNobody = 'needs root (to act as uid 65534)';
    else {
      try {
        await inChild([['stat', d]], NOBODY);
      } catch (e) {
        noNobody = `uid 65534 cannot reach ${d} (${(e as Error).message}): mount with allow_other, and make every parent of MNT searchable`;
      }
    }
    return { tickMs: coarse ? 1100 : 20, slackNs: coarse ? 1_100_000_000n : 100_000_000n, isRoot, noNobody };
  } finally {
    await removeTree(d);
  }
}

function withTimeout<V>(p: Promise<V>, ms: number): Promise<V> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Runs one case in a fresh directory; returns undefined on success, or why it failed. */
export async function runCase(mnt: string, env: Env, k: Case, ms: number): Promise<string | undefined> {
  const d = await fsp.mkdtemp(join(mnt, PREFIX));
  let error: string | undefined;
  try {
    await fsp.chmod(d, 0o755);
    await withTimeout(k.run(new T(d, env)), ms);
  } catch (e) {
    const msg = e instanceof Failure ? e.message : `unexpected error: ${(e as Error).message ?? e}`;
    error = msg.split(`${d}/`).join('').split(d).join('.');
  }
  try {
    await removeTree(d);
  } catch (e) {
    error ??= `cleanup: ${(e as Error).message}`;
  }
  return error;
}
