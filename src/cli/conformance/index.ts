/**
 * `tsfuse conformance MNT`: a POSIX conformance suite in the spirit of
 * pjdfstest and go-fuse's posixtest, for ANY mounted filesystem.
 *
 * - It only makes syscalls on MNT; it never serves a mount. Whatever serves
 *   MNT runs in another process (in CI: `tsfuse passthrough`).
 * - Every case runs in a fresh directory MNT/.tsfuse-conformance-XXXXXX
 *   (mode 0755, owned by the suite's user), removed afterwards.
 * - Real syscalls: Node's fs where it makes the syscall the case is about,
 *   and a Node child process (the as-user helper, src/cli/as-user.ts, with
 *   the native addon) for what Node lacks or does differently — mknod,
 *   mkfifo, renameat2, utimensat with UTIME_NOW/UTIME_OMIT/AT_SYMLINK_NOFOLLOW
 *   and nanoseconds, truncate(2) (Node's truncate is open+ftruncate) — and for
 *   anything done as another user: the child takes uid/gid 65534 with that
 *   user's login groups and reports the errno name.
 * - Cases that need root (device nodes, chown to another user) or a second
 *   user (permission checks as 65534) are skipped, with the reason, when the
 *   suite is not root or uid 65534 cannot reach MNT (no allow_other, or a
 *   parent of MNT not searchable by others).
 * - The process umask is 0 while the suite runs (restored afterwards), so the
 *   modes asked for are the modes expected.
 * - Timestamp checks wait one "tick" before the operation: 20 ms, or 1.1 s on
 *   a filesystem that keeps whole seconds only (probed once per run).
 */
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { resolve } from 'node:path';
import { probe, runCase, type Case } from './harness.js';
import { mkdir, mkfifo, mknod, open } from './create.js';
import { link, rename, symlink } from './names.js';
import { chmod, chown } from './perms.js';
import { rmdir, unlink } from './remove.js';
import { ftruncate, truncate, utimensat } from './sizes.js';

export interface CaseFailure { case: string; error: string }
export interface GroupReport {
  passed: number;
  failed: number;
  skipped: number;
  failures: CaseFailure[];
  /** Cases not run, with why (`error` is the reason). */
  skips: CaseFailure[];
}
/** One entry per group that ran, keyed by group name. */
export type Report = Record<string, GroupReport>;
export interface ConformanceOptions {
  /** Only these groups (default: all, in CONFORMANCE_GROUPS order). */
  groups?: string[];
  /** Receives one line per case ("ok  chmod/x", "FAIL chmod/x: why", "skip …") and per group. */
  log?: (line: string) => void;
  /** Per-case time-out in ms (default 30 000); a case that hangs fails. */
  caseTimeoutMs?: number;
}

const GROUPS: Record<string, Case[]> = {
  chmod, chown, link, mkdir, mkfifo, mknod, open, rename, rmdir, symlink, truncate, unlink, utimensat, ftruncate,
};
/** The groups, in the order they run. */
export const CONFORMANCE_GROUPS: readonly string[] = Object.keys(GROUPS);

/** Runs the suite against the mounted filesystem at `mnt` (served by another process). */
export async function runConformance(mnt: string, opts: ConformanceOptions = {}): Promise<Report> {
  const groups = opts.groups ?? [...CONFORMANCE_GROUPS];
  const unknown = groups.filter((g) => !(g in GROUPS));
  if (unknown.length) throw new Error(`unknown group ${unknown.join(', ')} (groups: ${CONFORMANCE_GROUPS.join(' ')})`);
  const log = opts.log ?? (() => undefined);
  const root = resolve(mnt);
  if (!(await fsp.stat(root)).isDirectory()) throw new Error(`${root} is not a directory`);
  const umask = process.umask(0);
  try {
    const env = await probe(root);
    const report: Report = {};
    for (const g of groups) {
      const r: GroupReport = { passed: 0, failed: 0, skipped: 0, failures: [], skips: [] };
      report[g] = r;
      for (const k of GROUPS[g]) {
        const name = `${g}/${k.name}`;
        const skip = k.needs === 'root' && !env.isRoot ? 'needs root' : k.needs === 'nobody' ? env.noNobody : undefined;
        if (skip) {
          r.skipped++;
          r.skips.push({ case: name, error: skip });
          log(`skip ${name}: ${skip}`);
          continue;
        }
        const error = await runCase(root, env, k, opts.caseTimeoutMs ?? 30_000);
        if (error === undefined) {
          r.passed++;
          log(`ok  ${name}`);
        } else {
          r.failed++;
          r.failures.push({ case: name, error });
          log(`FAIL ${name}: ${error}`);
        }
      }
      log(`${g}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`);
    }
    return report;
  } finally {
    process.umask(umask);
  }
}

/** The filesystem type of the mount holding `p` (from /proc/self/mountinfo), for the header line. */
function fsType(p: string): string {
  let best = '';
  let type = '?';
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const mp = f[4]?.replace(/\\040/g, ' ');
    const dash = f.indexOf('-');
    if (!mp || dash < 0) continue;
    if ((p === mp || p.startsWith(mp === '/' ? '/' : `${mp}/`)) && mp.length >= best.length) {
      best = mp;
      type = f[dash + 1];
    }
  }
  return type;
}

/** `tsfuse conformance MNT [--group NAME]...`: prints one line per case and the totals; 0 only if every case passed. */
export async function runConformanceCli(mnt: string | undefined, groups: string[] = []): Promise<number> {
  if (!mnt) {
    process.stderr.write('tsfuse: conformance needs a mount point\nusage: tsfuse conformance MNT [--group NAME]...\n');
    return 2;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let report: Report;
  try {
    out(`tsfuse conformance: ${resolve(mnt)} (${fsType(resolve(mnt))})`);
    report = await runConformance(mnt, { groups: groups.length ? groups : undefined, log: out });
  } catch (e) {
    process.stderr.write(`tsfuse: conformance: ${(e as Error).message}\n`);
    return 2;
  }
  const all = Object.values(report);
  const sum = (f: 'passed' | 'failed' | 'skipped') => all.reduce((n, r) => n + r[f], 0);
  out(`total: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
  return sum('failed') === 0 ? 0 : 1;
}
