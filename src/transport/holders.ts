/**
 * Which processes keep a mount busy: what `umount` answers EBUSY for. Read from
 * /proc by readlink only (never a stat through the mount, whose server may be
 * the one asking, or dead): cwd, root, exe, open fds and mapped files.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** A process that keeps a mount busy, and by what. */
export interface Holder {
  /** The holding process's pid. */
  pid: number;
  /** The command name (/proc/PID/comm). */
  command: string;
  /** What holds the mount: "cwd", "root", "exe", "fd 3", "mmap". */
  what: string;
  /** The path it holds, below the mount point. */
  path: string;
}

function below(path: string, mnt: string): boolean {
  const p = path.endsWith(' (deleted)') ? path.slice(0, -10) : path;
  return p === mnt || p.startsWith(mnt === '/' ? '/' : `${mnt}/`);
}

/** Processes (in this pid namespace) holding something below `mnt` (an absolute path). */
export function mountHolders(mnt: string, limit = 50): Holder[] {
  const out: Holder[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  const link = (p: string): string | undefined => { try { return readlinkSync(p); } catch { return undefined; } };
  for (const d of pids) {
    if (out.length >= limit) break;
    const pid = Number(d);
    if (pid === process.pid) continue;
    let command = '?';
    try { command = readFileSync(`/proc/${d}/comm`, 'utf8').trim(); } catch { continue; /* gone */ }
    const add = (what: string, path: string | undefined) => { if (path && below(path, mnt)) out.push({ pid, command, what, path }); };
    for (const w of ['cwd', 'root', 'exe']) add(w, link(`/proc/${d}/${w}`));
    let fds: string[] = [];
    try { fds = readdirSync(`/proc/${d}/fd`); } catch { /* not ours to read, or gone */ }
    for (const fd of fds) add(`fd ${fd}`, link(`/proc/${d}/fd/${fd}`));
    try {
      const seen = new Set<string>();
      for (const line of readFileSync(`/proc/${d}/maps`, 'utf8').split('\n')) {
        const i = line.indexOf('/');
        if (i < 0) continue;
        const p = line.slice(i);
        if (!seen.has(p)) { seen.add(p); add('mmap', p); }
      }
    } catch { /* not readable */ }
  }
  return out;
}

/** One line per holder: "pid 123 (bash): cwd /mnt/x". */
export function describeHolders(holders: Holder[]): string {
  return holders.map((h) => `pid ${h.pid} (${h.command}): ${h.what} ${h.path}`).join('; ');
}
