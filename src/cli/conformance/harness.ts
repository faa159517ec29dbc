/** The shared harness of the conformance suite: the python3 child, checks, the per-case context `t`, and the case runner. */
import { spawn } from 'node:child_process';
import { constants as C, type BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, relative } from 'node:path';

export const NOBODY = 65534;
export const NAME_255 = 'n'.repeat(255);
export const NAME_256 = 'n'.repeat(256);
export const S_IFMT = C.S_IFMT;
export const REG = C.S_IFREG;
export const DIR = C.S_IFDIR;
export const LNK = C.S_IFLNK;

// ---- python3: the syscalls Node lacks, and other users ----------------------------

/**
 * argv[1]: JSON list of [op, ...args]; argv[2] (optional): uid to drop to (gid
 * the same, supplementary groups those the group database gives that user, as a
 * login would: a filesystem must take a caller's groups from the caller, not
 * find none). Runs the ops in order, stops at the first
 * OSError, prints a JSON list of {ok: value} / {err: "EACCES"}. Fds opened with
 * `openfd` are kept by key for later ops in the same list.
 */
const PY = `
import ctypes, errno, json, os, platform, pwd, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
NR_RENAMEAT2 = {'x86_64': 316, 'aarch64': 276, 'riscv64': 276, 'ppc64le': 357, 's390x': 347, 'i686': 353, 'armv7l': 382}
class TS(ctypes.Structure):
    _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]
def check(r):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
def ts(t):
    if t == 'now': return TS(0, (1 << 30) - 1)
    if t == 'omit': return TS(0, (1 << 30) - 2)
    return TS(t[0], t[1])
def utimensat(p, a, m, nofollow=False):
    check(libc.utimensat(AT_FDCWD, os.fsencode(p), (TS * 2)(ts(a), ts(m)), 0x100 if nofollow else 0))
def renameat2(a, b, flags):
    L = ctypes.c_long
    check(libc.syscall(L(NR_RENAMEAT2[platform.machine()]), L(AT_FDCWD), ctypes.c_char_p(os.fsencode(a)),
                       L(AT_FDCWD), ctypes.c_char_p(os.fsencode(b)), L(flags)))
def st(s):
    return {'mode': s.st_mode, 'uid': s.st_uid, 'gid': s.st_gid, 'nlink': s.st_nlink, 'size': s.st_size}
def fifo_io(p, text):
    signal.alarm(10)
    pid = os.fork()
    if pid == 0:
        fd = os.open(p, os.O_WRONLY)
        os.write(fd, text.encode())
        os._exit(0)
    fd = os.open(p, os.O_RDONLY)
    data = b''
    while True:
        chunk = os.read(fd, 4096)
        if not chunk: break
        data += chunk
    os.close(fd)
    os.waitpid(pid, 0)
    return data.decode()
fds = {}
def openfd(k, p, flags, mode=0o644):
    fds[k] = os.open(p, flags, mode)
OPS = {
    'umask': os.umask, 'openfd': openfd,
    'open': lambda p, flags, mode=0o644: os.close(os.open(p, flags, mode)),
    'close': lambda k: os.close(fds.pop(k)),
    'fchmod': lambda k, m: os.fchmod(fds[k], m),
    'ftruncate': lambda k, n: os.ftruncate(fds[k], n),
    'fstat': lambda k: st(os.fstat(fds[k])),
    'write': lambda k, s: os.write(fds[k], s.encode()),
    'stat': lambda p: st(os.stat(p)),
    'mkdir': os.mkdir, 'rmdir': os.rmdir, 'unlink': os.unlink, 'rename': os.rename,
    'renameat2': renameat2, 'symlink': os.symlink, 'readlink': os.readlink,
    'link': lambda a, b: os.link(a, b, follow_symlinks=False),
    'chmod': os.chmod, 'chown': os.chown, 'lchown': os.lchown, 'truncate': os.truncate,
    'mknod': lambda p, mode, major=0, minor=0: os.mknod(p, mode, os.makedev(major, minor)),
    'mkfifo': os.mkfifo, 'utimensat': utimensat, 'fifo_io': fifo_io,
}
if len(sys.argv) > 2:
    uid = int(sys.argv[2])
    try:
        os.initgroups(pwd.getpwuid(uid).pw_name, uid)
    except KeyError:
        os.setgroups([])  # no such user: no groups of its own
    os.setgid(uid)
    os.setuid(uid)
os.umask(0)
out = []
for op in json.loads(sys.argv[1]):
    try:
        out.append({'ok': OPS[op[0]](*op[1:])})
    except OSError as e:
        out.append({'err': errno.errorcode.get(e.errno, 'E%d' % e.errno)})
        break
print(json.dumps(out))
`;

export type Op = [string, ...unknown[]];

/** Runs `ops` in one python3 child (as `uid` if given); rejects like Node's fs at the first failing op. */
function python(ops: Op[], uid?: number, ms = 20_000): Promise<unknown[]> {
  return new Promise((resolveOps, reject) => {
    const args = ['-I', '-c', PY, JSON.stringify(ops), ...(uid === undefined ? [] : [String(uid)])];
    const child = spawn('python3', args, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run python3: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`python3 ${ops.map((o) => o[0]).join(',')} exited ${code ?? signal}: ${err.trim()}`));
      const res = JSON.parse(out) as { ok?: unknown; err?: string }[];
      const last = res[res.length - 1];
      if (last?.err) {
        const who = uid === undefined ? '' : ` (as uid ${uid})`;
        return reject(Object.assign(new Error(`${ops[res.length - 1][0]}${who}: ${last.err}`), { code: last.err }));
      }
      resolveOps(res.map((r) => r.ok));
    });
  });
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
  /** One syscall in a python3 child, as the suite's user. */
  async sys(...op: Op): Promise<unknown> { return (await python([op]))[0]; }
  /** One syscall as uid/gid 65534. */
  async nobody(...op: Op): Promise<unknown> { return (await python([op], NOBODY))[0]; }
  batch(uid: number | undefined, ops: Op[]): Promise<unknown[]> { return python(ops, uid); }
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
        await python([['stat', d]], NOBODY);
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
