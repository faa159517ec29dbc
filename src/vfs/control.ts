/**
 * The control socket of a mounted Vfs: attach, detach and list while it serves
 * (`tsfuse vfs-attach`, `vfs-detach`, `vfs-list`). A unix stream socket the
 * server owns; one JSON line per request, one JSON line per answer.
 *
 * Who may use it is decided by the file's permissions: mode 0600 and owned by
 * the server's user (root-only when the server is root), or 0660 with a group
 * (`gid`). The default one sits in a directory of its own, 0700 (0710 with a
 * group), made before the socket: it is never reachable by others, whatever the
 * process umask.
 * Whoever may use it may attach any directory the server can read (with the
 * server's privileges, visible to all with allow_other): give a group that
 * right only where its members could read those directories anyway.
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, realpathSync, rmdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { FileSystem } from '../api/index.js';
import type { BackendOptions, Vfs } from './vfs.js';

/** A request on the control socket (one JSON line): attach, detach, list or stats. */
export type ControlRequest =
  | { op: 'attach'; path: string; spec: string; options?: BackendOptions }
  | { op: 'detach'; path: string; force?: boolean }
  | { op: 'list' }
  | { op: 'stats' };

/** The answer to a ControlRequest (one JSON line). */
export interface ControlAnswer {
  /** Whether the request succeeded. */
  ok: boolean;
  /** Why it failed (a message for people). */
  error?: string;
  /** Why it failed, as an errno name (EINVAL, EBUSY, ENOENT …). */
  code?: string;
  /** attach: the new backend's index. */
  index?: number;
  /** list: the attached backends. */
  list?: ReturnType<Vfs['list']>;
  /** stats: the Vfs's stats. */
  stats?: ReturnType<Vfs['stats']>;
}

/** Options of the control socket server. */
export interface ControlOptions {
  /** Builds a backend from a spec ("passthrough:/srv/a", "memfs" …). */
  build: (spec: string) => FileSystem | Promise<FileSystem>;
  /** Group allowed to use the socket (mode 0660); default none (mode 0600). */
  gid?: number;
  /** The socket's directory is its own (controlPath's): made, or checked, 0700 (0710 with
   * `gid`) before the socket exists. Otherwise the directory is the caller's affair. */
  ownDirectory?: boolean;
  /** Where a failed request is logged (one line). Default: not logged. */
  log?: (line: string) => void;
}

/** Where the control socket of the Vfs mounted on `mountpoint` lives by default:
 * /run/tsfuse-vfs/<hash of the mount point>/control.sock (root), else in the temp directory. */
export function controlPath(mountpoint: string): string {
  // The mount point itself is never looked at: it may be the very mount this process is
  // about to serve (a supervised server), and a stat of it would wait for ourselves.
  let abs = resolve(mountpoint);
  try {
    abs = join(realpathSync(dirname(abs)), basename(abs));
  } catch { /* not there (yet): the path as given */ }
  const h = createHash('sha256').update(abs).digest('hex').slice(0, 20);
  const dir = process.geteuid?.() === 0 ? '/run/tsfuse-vfs' : join(tmpdir(), `tsfuse-vfs-${process.geteuid?.() ?? 0}`);
  return join(dir, h, 'control.sock');
}

/** Makes `dir` (mode `mode`) or checks the one there: ours, and writable by no one else. */
function ownDir(dir: string, mode: number, gid?: number): void {
  mkdirSync(dir, { recursive: true, mode });
  const d = lstatSync(dir);
  const me = process.geteuid?.() ?? 0;
  if (!d.isDirectory() || d.uid !== me || (d.mode & 0o022) !== 0) {
    throw new Error(`control socket directory ${dir} is not a directory of uid ${me} that only it may write to: refusing to put a socket there`);
  }
  if (gid !== undefined) chownSync(dir, me, gid);
  chmodSync(dir, mode);
}

/** Listens on `path` for control requests to `vfs`. Resolves once listening. */
export async function serveControl(vfs: Vfs, path: string, opts: ControlOptions): Promise<{
  /** Stops listening and removes the socket (and its directory, with `ownDirectory`). */
  close(): void;
}> {
  const dir = dirname(path);
  // The default path's own directory (…/HASH) is 0700 (0710 for a group) before the socket
  // exists: no moment in which others could reach it, whatever the umask. A path of the
  // caller's (--control) lives where the caller put it (bound, then chmod-ed).
  if (opts.ownDirectory) {
    ownDir(dirname(dir), 0o711);
    ownDir(dir, opts.gid !== undefined ? 0o710 : 0o700, opts.gid);
  } else mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path); // a dead server's (a takeover, a crash)
  } catch { /* none */ }
  const server: NetServer = createServer((sock) => handle(vfs, sock, opts));
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => { server.off('error', rej); res(); });
  });
  try {
    if (opts.gid !== undefined) {
      chownSync(path, process.geteuid?.() ?? 0, opts.gid);
      chmodSync(path, 0o660);
    } else chmodSync(path, 0o600);
  } catch (e) {
    server.close();
    throw e;
  }
  server.unref();
  return {
    close: () => {
      server.close();
      try { unlinkSync(path); } catch { /* gone */ }
      if (opts.ownDirectory) try { rmdirSync(dir); } catch { /* not empty, or gone */ }
    },
  };
}

function handle(vfs: Vfs, sock: Socket, opts: ControlOptions): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('error', () => { /* the client went away */ });
  sock.on('data', (d: string) => {
    buf += d;
    if (buf.length > 1 << 20) { sock.destroy(); return; }
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      void answer(vfs, line, opts).then((a) => sock.write(`${JSON.stringify(a)}\n`));
    }
  });
}

async function answer(vfs: Vfs, line: string, opts: ControlOptions): Promise<ControlAnswer> {
  let req: ControlRequest;
  try {
    req = JSON.parse(line) as ControlRequest;
  } catch {
    return { ok: false, code: 'EINVAL', error: 'the request is not JSON' };
  }
  try {
    switch (req?.op) {
      case 'attach': {
        if (typeof req.path !== 'string' || typeof req.spec !== 'string') throw Object.assign(new Error('attach needs a path and a spec'), { code: 'EINVAL' });
        const fs = await opts.build(req.spec);
        let index: number;
        try {
          index = await vfs.attach(req.path, fs, { ...(req.options ?? {}), spec: req.spec });
        } catch (e) {
          await fs.destroy?.();
          throw e;
        }
        return { ok: true, index };
      }
      case 'detach':
        if (typeof req.path !== 'string') throw Object.assign(new Error('detach needs a path'), { code: 'EINVAL' });
        await vfs.detach(req.path, { force: !!req.force });
        return { ok: true };
      case 'list':
        return { ok: true, list: vfs.list() };
      case 'stats':
        return { ok: true, stats: vfs.stats() };
      default:
        return { ok: false, code: 'EINVAL', error: `unknown request ${JSON.stringify((req as { op?: unknown })?.op)}` };
    }
  } catch (e) {
    opts.log?.(`control: ${req.op} failed: ${(e as Error).message}`);
    return { ok: false, code: (e as NodeJS.ErrnoException).code ?? 'EIO', error: (e as Error).message };
  }
}

/** Sends one request to the control socket at `path`; resolves with the answer. */
export function controlRequest(path: string, req: ControlRequest, timeoutMs = 60_000): Promise<ControlAnswer> {
  return new Promise((res, rej) => {
    const sock = createConnection(path);
    let buf = '';
    const t = setTimeout(() => { sock.destroy(); rej(new Error(`no answer from ${path} within ${timeoutMs / 1000} s`)); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(t);
      sock.end();
      try {
        res(JSON.parse(buf.slice(0, i)) as ControlAnswer);
      } catch (e) {
        rej(e as Error);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'no VFS server listens there: is a `tsfuse vfs` serving that mount point? (start one with `tsfuse vfs MNT --at …`; ' +
        'one started with --control SOCK is reached with the same --control SOCK)'
        : e.code === 'EACCES' ? 'permission denied (the control socket is root-only unless the server was started with --control-group)' : e.message;
      rej(Object.assign(new Error(`control socket ${path}: ${why}`), { code: e.code }));
    });
  });
}
