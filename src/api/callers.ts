/**
 * Who the caller of a request is, beyond the uid/gid/pid the kernel puts in
 * every request header: its supplementary groups, and whether it may keep
 * setuid/setgid bits on a write (CAP_FSETID).
 *
 * The kernel sends the groups only in one case (FUSE_CREATE_SUPP_GROUP: on a
 * creation, the parent directory's group when the caller has it as a
 * supplementary group). Everything else comes from /proc/PID/status of the
 * calling thread (the header's pid is the thread id), as libfuse's
 * fuse_req_getgroups() does — but checked: the status is used only while its
 * fsuid/fsgid are the request's, so a pid that was reused, a thread that
 * changed its ids since, or a caller in another pid namespace never lends its
 * groups to a request; then the caller has the kernel's groups only.
 *
 * Reading the status costs about 28 µs, so an answer is kept for `maxAgeMs`
 * per thread (default 100 ms, 0 = read every time): a burst of requests from one
 * process (ls -l, cp -r, tar) reads it once. Within that window a thread
 * that calls setgroups() but keeps its uid and gid is still seen with its
 * former groups; a change of uid or gid (every privilege drop) is seen at once.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { Context } from './context.js';

/** What `callerCreds` knows of a request's caller beyond the request header. */
export interface CallerCreds {
  /** The caller's supplementary groups (its fsgid is `ctx.gid`). */
  readonly groups: readonly number[];
  /** CAP_FSETID in the caller's effective set (from its status; uid 0 when unknown). */
  readonly fsetid: boolean;
  /** Where `groups` came from: the caller's /proc status, or only the kernel's extension. */
  readonly source: 'proc' | 'kernel';
}

interface Cached extends CallerCreds { uid: number; gid: number; at: number }

const cache = new Map<number, Cached>();
const MAX_CACHED = 4096;
const CAP_FSETID = 4n;
let buf = Buffer.allocUnsafe(4096);

/** The caller's supplementary groups and CAP_FSETID (see the module comment). */
export function callerCreds(ctx: Context, maxAgeMs = 100): CallerCreds {
  const now = maxAgeMs > 0 ? performance.now() : 0;
  let c = ctx.pid > 0 ? cache.get(ctx.pid) : undefined;
  if (!c || c.uid !== ctx.uid || c.gid !== ctx.gid || now - c.at > maxAgeMs) {
    c = readStatus(ctx.pid, ctx.uid, ctx.gid, now);
    if (c && maxAgeMs > 0) {
      if (cache.size >= MAX_CACHED) prune(now, maxAgeMs);
      cache.set(ctx.pid, c);
    }
  }
  const kernel = ctx.suppGroups ?? [];
  if (!c) return { groups: kernel, fsetid: ctx.uid === 0, source: 'kernel' };
  if (kernel.every((g) => c!.groups.includes(g))) return c;
  return { groups: [...c.groups, ...kernel.filter((g) => !c!.groups.includes(g))], fsetid: c.fsetid, source: 'proc' };
}

/** Just the groups: `callerCreds(ctx).groups`. */
export function callerGroups(ctx: Context, maxAgeMs = 100): readonly number[] {
  return callerCreds(ctx, maxAgeMs).groups;
}

function prune(now: number, maxAgeMs: number): void {
  for (const [pid, c] of cache) if (now - c.at > maxAgeMs) cache.delete(pid);
  if (cache.size >= MAX_CACHED) cache.clear();
}

/** The status of thread `pid` if its fsuid/fsgid are `uid`/`gid`; undefined otherwise. */
function readStatus(pid: number, uid: number, gid: number, now: number): Cached | undefined {
  if (!(pid > 0)) return undefined;
  let text: string;
  try {
    const fd = openSync(`/proc/${pid}/status`, 'r');
    try {
      let n = 0;
      for (;;) {
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) break;
        n += got;
        if (n === buf.length) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, n);
          buf = bigger;
        }
      }
      text = buf.toString('latin1', 0, n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined; // gone, or not ours to read
  }
  // Uid/Gid: real, effective, saved, filesystem.
  if (field(text, 'Uid', 3) !== uid || field(text, 'Gid', 3) !== gid) return undefined;
  const line = lineOf(text, 'Groups');
  if (line === undefined) return undefined;
  const groups = line.split(/\s+/).filter((w) => w !== '').map(Number);
  if (groups.some((g) => !Number.isInteger(g) || g < 0)) return undefined;
  const cap = lineOf(text, 'CapEff');
  let fsetid = uid === 0;
  if (cap !== undefined && /^[0-9a-f]+$/i.test(cap.trim())) fsetid = ((BigInt(`0x${cap.trim()}`) >> CAP_FSETID) & 1n) === 1n;
  return { uid, gid, groups, fsetid, source: 'proc', at: now };
}

function lineOf(text: string, key: string): string | undefined {
  const at = text.indexOf(`\n${key}:`);
  if (at < 0) return undefined;
  const end = text.indexOf('\n', at + 1);
  return text.slice(at + key.length + 2, end < 0 ? text.length : end);
}
function field(text: string, key: string, i: number): number {
  const words = (lineOf(text, key) ?? '').split(/\s+/).filter((w) => w !== '');
  return words.length > i ? Number(words[i]) : NaN;
}
