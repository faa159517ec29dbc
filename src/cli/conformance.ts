/**
 * `tsfuse conformance MNT`: a POSIX conformance suite in the spirit of
 * pjdfstest and go-fuse's posixtest, for ANY mounted filesystem.
 *
 * - It only makes syscalls on MNT; it never serves a mount. Whatever serves
 *   MNT runs in another process (in CI: `tsfuse passthrough`).
 * - Every case runs in a fresh directory MNT/.tsfuse-conformance-XXXXXX
 *   (mode 0755, owned by the suite's user), removed afterwards.
 * - Real syscalls: Node's fs where it makes the syscall the case is about,
 *   python3 (ctypes) for what Node lacks or does differently — mknod, mkfifo,
 *   renameat2, utimensat with UTIME_NOW/UTIME_OMIT/AT_SYMLINK_NOFOLLOW and
 *   nanoseconds, truncate(2) (Node's truncate is open+ftruncate) — and for
 *   anything done as another user: the child drops to uid/gid 65534 with no
 *   supplementary groups and reports the errno name.
 * - Cases that need root (device nodes, chown to another user) or a second
 *   user (permission checks as 65534) are skipped, with the reason, when the
 *   suite is not root or uid 65534 cannot reach MNT (no allow_other, or a
 *   parent of MNT not searchable by others).
 * - The process umask is 0 while the suite runs (restored afterwards), so the
 *   modes asked for are the modes expected.
 * - Timestamp checks wait one "tick" before the operation: 20 ms, or 1.1 s on
 *   a filesystem that keeps whole seconds only (probed once per run).
 */
import { spawn } from 'node:child_process';
import { constants as C, readFileSync, type BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';

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

const NOBODY = 65534;
const NAME_255 = 'n'.repeat(255);
const NAME_256 = 'n'.repeat(256);
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const S_IFMT = C.S_IFMT;
const REG = C.S_IFREG;
const DIR = C.S_IFDIR;
const LNK = C.S_IFLNK;

// ---- python3: the syscalls Node lacks, and other users ----------------------------

/**
 * argv[1]: JSON list of [op, ...args]; argv[2] (optional): uid to drop to (gid
 * the same, no supplementary groups). Runs the ops in order, stops at the first
 * OSError, prints a JSON list of {ok: value} / {err: "EACCES"}. Fds opened with
 * `openfd` are kept by key for later ops in the same list.
 */
const PY = `
import ctypes, errno, json, os, platform, signal, sys
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
    os.setgroups([])
    os.setgid(int(sys.argv[2]))
    os.setuid(int(sys.argv[2]))
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

type Op = [string, ...unknown[]];

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

const oct = (n: number) => `0${n.toString(8)}`;
function eq<V>(actual: V, expected: V, what: string): void {
  if (actual !== expected) throw new Failure(`${what}: got ${String(actual)}, expected ${String(expected)}`);
}
function check(ok: boolean, what: string): void {
  if (!ok) throw new Failure(what);
}
function eqMode(s: Stat, expected: number, what: string): void {
  if (s.mode !== expected) throw new Failure(`${what}: mode ${oct(s.mode)}, expected ${oct(expected)}`);
}

/** Expects `op` to fail with one of `codes`. */
async function fails(what: string, op: () => Promise<unknown>, ...codes: string[]): Promise<void> {
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

interface Stat {
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
const stat = async (p: string) => toStat(await fsp.stat(p, { bigint: true }));
const lstat = async (p: string) => toStat(await fsp.lstat(p, { bigint: true }));

/** Creates a regular file with `data` and exactly `mode`. */
async function file(p: string, data = '', mode = 0o644): Promise<string> {
  await fsp.writeFile(p, data, { mode, flag: 'wx' });
  await fsp.chmod(p, mode); // in case the filesystem ignored the create mode
  return p;
}
/** Creates a directory with exactly `mode` (sticky and setgid bits included). */
async function dir(p: string, mode = 0o755): Promise<string> {
  await fsp.mkdir(p, mode & 0o777);
  await fsp.chmod(p, mode);
  return p;
}
/** Does this filesystem count subdirectories in a directory's nlink (ext4, xfs, tmpfs: yes; btrfs: no)? */
async function countsSubdirs(p: string): Promise<boolean> {
  return (await stat(p)).nlink >= 2;
}

interface Env {
  tickMs: number;
  /** How far a timestamp may lag the wall clock (filesystem granularity plus the kernel's coarse clock). */
  slackNs: bigint;
  isRoot: boolean;
  /** Why uid 65534 cannot be used, or undefined if it can. */
  noNobody?: string;
}

/** What a case gets: its directory and ways to make syscalls. */
class T {
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
async function advances(t: T, paths: string[], fields: ('mtime' | 'ctime' | 'atime')[], op: () => Promise<unknown>): Promise<void> {
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
function nearNow(t: T, ns: bigint, from: bigint, to: bigint, what: string): void {
  if (ns < from - t.env.slackNs || ns > to + t.env.slackNs) {
    throw new Failure(`${what}: ${ns} ns is not the time of the call (${from}..${to} ns)`);
  }
}

// ---- the cases -----------------------------------------------------------------

type Needs = 'root' | 'nobody';
interface Case { name: string; needs?: Needs; run(t: T): Promise<void> }
const c = (name: string, run: (t: T) => Promise<void>, needs?: Needs): Case => ({ name, run, needs });
const root = (name: string, run: (t: T) => Promise<void>): Case => c(name, run, 'root');
const nobody = (name: string, run: (t: T) => Promise<void>): Case => c(name, run, 'nobody');

const chmod: Case[] = [
  c('file-modes', async (t) => {
    const f = await file(t.p('f'));
    for (const m of [0o640, 0o600, 0o444, 0o777, 0o000, 0o4755, 0o2755, 0o1755, 0o7777]) {
      await fsp.chmod(f, m);
      eqMode(await stat(f), REG | m, `after chmod ${oct(m)}`);
    }
  }),
  c('dir-modes', async (t) => {
    const d = await dir(t.p('d'));
    for (const m of [0o700, 0o711, 0o1777, 0o2755, 0o555, 0o755]) {
      await fsp.chmod(d, m);
      eqMode(await stat(d), DIR | m, `after chmod ${oct(m)}`);
    }
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    const before = await stat(f);
    await advances(t, [f], ['ctime'], () => fsp.chmod(f, 0o600));
    eq((await stat(f)).mtime, before.mtime, 'mtime after chmod');
  }),
  c('follows-symlink', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('l'));
    await fsp.chmod(t.p('l'), 0o600);
    eqMode(await stat(t.p('f')), REG | 0o600, 'target');
    eqMode(await lstat(t.p('l')), LNK | 0o777, 'the symlink itself');
  }),
  c('enoent', async (t) => {
    await fails('chmod of a missing file', () => fsp.chmod(t.p('missing'), 0o644), 'ENOENT');
    await fails('chmod below a missing directory', () => fsp.chmod(t.p('missing', 'f'), 0o644), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('chmod of f/x (f a file)', () => fsp.chmod(t.p('f', 'x'), 0o644), 'ENOTDIR');
  }),
  c('enametoolong', async (t) => {
    await fails('chmod of a 256-byte name', () => fsp.chmod(t.p(NAME_256), 0o644), 'ENAMETOOLONG');
  }),
  nobody('eperm-not-owner', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await fails('chmod of a root file by uid 65534', () => t.nobody('chmod', f, 0o777), 'EPERM');
    eqMode(await stat(f), REG | 0o666, 'mode after the refused chmod');
  }),
  nobody('owner', async (t) => {
    const f = await file(t.p('f'), '', 0o644);
    await fsp.chown(f, NOBODY, NOBODY);
    await t.nobody('chmod', f, 0o4700);
    eqMode(await stat(f), REG | 0o4700, 'mode set by its owner 65534');
  }),
  nobody('sgid-cleared-for-non-member', async (t) => {
    const f = await file(t.p('f'), '', 0o644);
    await fsp.chown(f, NOBODY, 0);
    await t.nobody('chmod', f, 0o2755);
    eqMode(await stat(f), REG | 0o755, 'owner 65534 (not in group 0) set 02755; S_ISGID must be dropped');
  }),
];

const chown: Case[] = [
  root('uid-gid', async (t) => {
    const f = await file(t.p('f'));
    await fsp.chown(f, NOBODY, NOBODY);
    let s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner after chown');
    await fsp.chown(f, -1, 0);
    s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:0`, 'owner after chown(-1, 0)');
    await fsp.chown(f, 0, -1);
    s = await stat(f);
    eq(`${s.uid}:${s.gid}`, '0:0', 'owner after chown(0, -1)');
  }),
  root('dir', async (t) => {
    const d = await dir(t.p('d'));
    await fsp.chown(d, NOBODY, NOBODY);
    const s = await stat(d);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of the directory');
  }),
  c('noop', async (t) => {
    const f = await file(t.p('f'));
    const before = await stat(f);
    await fsp.chown(f, -1, -1);
    const s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${before.uid}:${before.gid}`, 'owner after chown(-1, -1)');
  }),
  root('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    const before = await stat(f);
    await advances(t, [f], ['ctime'], () => fsp.chown(f, NOBODY, NOBODY));
    eq((await stat(f)).mtime, before.mtime, 'mtime after chown');
  }),
  root('follows-symlink', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('l'));
    await fsp.chown(t.p('l'), NOBODY, NOBODY);
    eq((await stat(t.p('f'))).uid, NOBODY, 'uid of the target');
    eq((await lstat(t.p('l'))).uid, 0, 'uid of the symlink itself');
  }),
  root('lchown-symlink', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('l'));
    await fsp.lchown(t.p('l'), NOBODY, NOBODY);
    const l = await lstat(t.p('l'));
    eq(`${l.uid}:${l.gid}`, `${NOBODY}:${NOBODY}`, 'owner of the symlink after lchown');
    eq((await stat(t.p('f'))).uid, 0, 'uid of the target');
  }),
  root('clears-setuid-setgid', async (t) => {
    const f = await file(t.p('f'), '', 0o6755);
    await fsp.chown(f, NOBODY, NOBODY);
    eqMode(await stat(f), REG | 0o755, 'chown of a 06755 file');
    const d = await dir(t.p('d'), 0o2755);
    await fsp.chown(d, NOBODY, NOBODY);
    eqMode(await stat(d), DIR | 0o2755, 'chown of a 02755 directory (keeps S_ISGID)');
  }),
  c('enoent', async (t) => {
    await fails('chown of a missing file', () => fsp.chown(t.p('missing'), -1, -1), 'ENOENT');
    await fails('lchown of a missing file', () => fsp.lchown(t.p('missing'), -1, -1), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('chown of f/x (f a file)', () => fsp.chown(t.p('f', 'x'), -1, -1), 'ENOTDIR');
  }),
  nobody('eperm-give-away', async (t) => {
    const f = await file(t.p('f'));
    await fsp.chown(f, NOBODY, NOBODY);
    await fails('chown to uid 0 by the owner 65534', () => t.nobody('chown', f, 0, -1), 'EPERM');
    await fails('chgrp to gid 0 by the owner 65534 (not a member)', () => t.nobody('chown', f, -1, 0), 'EPERM');
    eq((await stat(f)).uid, NOBODY, 'uid after the refused chown');
  }),
  nobody('eperm-not-owner', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await fails('chown of a root file by 65534', () => t.nobody('chown', f, NOBODY, NOBODY), 'EPERM');
    await fails('chgrp of a root file by 65534', () => t.nobody('chown', f, -1, NOBODY), 'EPERM');
  }),
  nobody('owner-chgrp-own-group', async (t) => {
    const f = await file(t.p('f'));
    await fsp.chown(f, NOBODY, 0);
    await t.nobody('chown', f, -1, NOBODY);
    const s = await stat(f);
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner after chgrp to its own group');
  }),
];

const link: Case[] = [
  c('nlink', async (t) => {
    const f = await file(t.p('f'), 'data');
    await fsp.link(f, t.p('g'));
    const [a, b] = [await stat(f), await stat(t.p('g'))];
    eq(a.ino, b.ino, 'inode of g (same as f)');
    eq(a.nlink, 2, 'nlink of f');
    eq(b.nlink, 2, 'nlink of g');
    await fsp.link(t.p('g'), t.p('h'));
    eq((await stat(f)).nlink, 3, 'nlink after a second link');
    await fsp.unlink(f);
    eq((await stat(t.p('h'))).nlink, 2, 'nlink after unlinking f');
  }),
  c('shared-content', async (t) => {
    const f = await file(t.p('f'), 'one');
    await fsp.link(f, t.p('g'));
    await fsp.writeFile(t.p('g'), 'two, longer');
    eq(await fsp.readFile(f, 'utf8'), 'two, longer', 'f after writing through g');
    eq((await stat(f)).size, 11, 'size of f');
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    await advances(t, [f], ['ctime'], () => fsp.link(f, t.p('g')));
  }),
  c('parent-times', async (t) => {
    const f = await file(t.p('f'));
    const d = await dir(t.p('d'));
    await advances(t, [d], ['mtime', 'ctime'], () => fsp.link(f, join(d, 'g')));
  }),
  c('symlink-not-followed', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('s'));
    await fsp.link(t.p('s'), t.p('h'));
    const h = await lstat(t.p('h'));
    eq(h.mode & S_IFMT, LNK, 'type of the new link (link(2) does not follow)');
    eq(h.nlink, 2, 'nlink of the symlink');
    eq(await fsp.readlink(t.p('h')), 'f', 'target of the new link');
    eq((await stat(t.p('f'))).nlink, 1, 'nlink of the target file');
  }),
  c('eexist', async (t) => {
    const f = await file(t.p('f'));
    await file(t.p('g'));
    await fails('link onto an existing file', () => fsp.link(f, t.p('g')), 'EEXIST');
    await fails('link onto itself', () => fsp.link(f, f), 'EEXIST');
    await fsp.symlink('missing', t.p('s'));
    await fails('link onto a dangling symlink', () => fsp.link(f, t.p('s')), 'EEXIST');
  }),
  c('enoent', async (t) => {
    const f = await file(t.p('f'));
    await fails('link of a missing file', () => fsp.link(t.p('missing'), t.p('g')), 'ENOENT');
    await fails('link into a missing directory', () => fsp.link(f, t.p('missing', 'g')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    const f = await file(t.p('f'));
    await fails('link to f/g (f a file)', () => fsp.link(f, t.p('f', 'g')), 'ENOTDIR');
  }),
  c('dir-eperm', async (t) => {
    await dir(t.p('d'));
    await fails('link of a directory', () => fsp.link(t.p('d'), t.p('e')), 'EPERM');
  }),
  c('enametoolong', async (t) => {
    const f = await file(t.p('f'));
    await fails('link to a 256-byte name', () => fsp.link(f, t.p(NAME_256)), 'ENAMETOOLONG');
    await fsp.link(f, t.p(NAME_255));
    eq((await stat(t.p(NAME_255))).nlink, 2, 'nlink via a 255-byte name');
  }),
  nobody('eacces', async (t) => {
    const pub = await t.pub();
    await t.nobody('open', join(pub, 'f'), C.O_CREAT | C.O_WRONLY, 0o644);
    await fails('link by 65534 into a 0755 root directory', () => t.nobody('link', join(pub, 'f'), t.p('g')), 'EACCES');
    await t.nobody('link', join(pub, 'f'), join(pub, 'g'));
    eq((await stat(join(pub, 'g'))).nlink, 2, 'nlink after the link by 65534 in a 0777 directory');
  }),
];

const mkdir: Case[] = [
  c('modes', async (t) => {
    for (const m of [0o755, 0o700, 0o711, 0o1777, 0o000]) {
      const d = t.p(`d${oct(m)}`);
      await fsp.mkdir(d, m);
      eqMode(await stat(d), DIR | m, `mkdir ${oct(m)}`);
    }
  }),
  c('umask', async (t) => {
    await t.batch(undefined, [['umask', 0o027], ['mkdir', t.p('d'), 0o777]]);
    eqMode(await stat(t.p('d')), DIR | 0o750, 'mkdir 0777 under umask 027');
  }),
  c('owner-nlink', async (t) => {
    const counts = await countsSubdirs(t.dir);
    const before = await stat(t.dir);
    await fsp.mkdir(t.p('d'), 0o755);
    const s = await stat(t.p('d'));
    eq(`${s.uid}:${s.gid}`, `${process.geteuid?.()}:${process.getegid?.()}`, 'owner of the new directory');
    if (counts) {
      eq(s.nlink, 2, 'nlink of the new directory');
      eq((await stat(t.dir)).nlink, before.nlink + 1, 'nlink of the parent');
    }
    eq((await fsp.readdir(t.p('d'))).length, 0, 'entries of the new directory');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.mkdir(t.p('d')));
  }),
  root('setgid-inherited', async (t) => {
    const g = await dir(t.p('g'), 0o2775);
    await fsp.chown(g, 0, NOBODY);
    await fsp.mkdir(join(g, 'd'), 0o755);
    const s = await stat(join(g, 'd'));
    eq(s.gid, NOBODY, 'gid of a directory made in a setgid directory');
    eqMode(s, DIR | 0o2755, 'mode (S_ISGID inherited)');
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fsp.symlink('missing', t.p('s'));
    await fails('mkdir over a file', () => fsp.mkdir(t.p('f')), 'EEXIST');
    await fails('mkdir over a directory', () => fsp.mkdir(t.p('d')), 'EEXIST');
    await fails('mkdir over a dangling symlink', () => fsp.mkdir(t.p('s')), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('mkdir in a missing directory', () => fsp.mkdir(t.p('missing', 'd')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('mkdir f/d (f a file)', () => fsp.mkdir(t.p('f', 'd')), 'ENOTDIR');
  }),
  c('name-255', async (t) => {
    await fsp.mkdir(t.p(NAME_255));
    eq((await stat(t.p(NAME_255))).mode & S_IFMT, DIR, 'type of the 255-byte directory');
    check((await fsp.readdir(t.dir)).includes(NAME_255), 'readdir lists the 255-byte name');
    await file(t.p(NAME_255, NAME_255), 'deep');
    eq(await fsp.readFile(t.p(NAME_255, NAME_255), 'utf8'), 'deep', 'file in it');
  }),
  c('enametoolong', async (t) => {
    await fails('mkdir of a 256-byte name', () => fsp.mkdir(t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  c('long-path', async (t) => {
    let p = t.dir;
    for (let i = 0; i < 6; i++) p = join(p, `${i}${'d'.repeat(199)}`);
    await fsp.mkdir(p, { recursive: true });
    check(relative(t.dir, p).length > 1024, 'the path is over 1024 bytes');
    eq((await stat(p)).mode & S_IFMT, DIR, 'type of the deepest directory');
    await fsp.mkdir(join(p, 'leaf'));
    eq((await fsp.readdir(p)).join(','), 'leaf', 'entries of the deepest directory');
    await fsp.rmdir(join(p, 'leaf'));
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('mkdir', join(pub, 'd'), 0o750);
    const s = await stat(join(pub, 'd'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a directory made by 65534');
    eqMode(s, DIR | 0o750, 'mode');
  }),
  nobody('eacces', async (t) => {
    await fails('mkdir by 65534 in a 0755 root directory', () => t.nobody('mkdir', t.p('d'), 0o755), 'EACCES');
    const x = await dir(t.p('x'), 0o766);
    await fails('mkdir by 65534 in a directory without search permission', () => t.nobody('mkdir', join(x, 'd'), 0o755), 'EACCES');
  }),
];

const mkfifo: Case[] = [
  c('type-mode', async (t) => {
    await t.sys('mkfifo', t.p('p'), 0o640);
    const s = await lstat(t.p('p'));
    eqMode(s, C.S_IFIFO | 0o640, 'mkfifo 0640');
    eq(s.size, 0, 'size');
  }),
  c('io', async (t) => {
    await t.sys('mkfifo', t.p('p'), 0o600);
    eq(await t.sys('fifo_io', t.p('p'), 'through the fifo'), 'through the fifo', 'data read from the fifo');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => t.sys('mkfifo', t.p('p'), 0o644));
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await t.sys('mkfifo', t.p('p'), 0o644);
    await fails('mkfifo over a file', () => t.sys('mkfifo', t.p('f'), 0o644), 'EEXIST');
    await fails('mkfifo over a fifo', () => t.sys('mkfifo', t.p('p'), 0o644), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('mkfifo in a missing directory', () => t.sys('mkfifo', t.p('missing', 'p'), 0o644), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('mkfifo f/p (f a file)', () => t.sys('mkfifo', t.p('f', 'p'), 0o644), 'ENOTDIR');
  }),
  c('enametoolong', async (t) => {
    await fails('mkfifo of a 256-byte name', () => t.sys('mkfifo', t.p(NAME_256), 0o644), 'ENAMETOOLONG');
    await t.sys('mkfifo', t.p(NAME_255), 0o644);
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('mkfifo', join(pub, 'p'), 0o600);
    const s = await lstat(join(pub, 'p'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a fifo made by 65534');
  }),
  nobody('eacces', async (t) => {
    await fails('mkfifo by 65534 in a 0755 root directory', () => t.nobody('mkfifo', t.p('p'), 0o644), 'EACCES');
  }),
];

const mknod: Case[] = [
  c('fifo', async (t) => {
    await t.sys('mknod', t.p('p'), C.S_IFIFO | 0o600);
    eqMode(await lstat(t.p('p')), C.S_IFIFO | 0o600, 'mknod S_IFIFO|0600');
  }),
  c('socket', async (t) => {
    await t.sys('mknod', t.p('s'), C.S_IFSOCK | 0o644);
    eqMode(await lstat(t.p('s')), C.S_IFSOCK | 0o644, 'mknod S_IFSOCK|0644');
  }),
  c('regular', async (t) => {
    await t.sys('mknod', t.p('f'), REG | 0o640);
    const s = await lstat(t.p('f'));
    eqMode(s, REG | 0o640, 'mknod S_IFREG|0640');
    eq(s.size, 0, 'size');
  }),
  root('char-device', async (t) => {
    await t.sys('mknod', t.p('null'), C.S_IFCHR | 0o666, 1, 3);
    const s = await lstat(t.p('null'));
    eqMode(s, C.S_IFCHR | 0o666, 'mknod c 1 3');
    eq(`${s.major}:${s.minor}`, '1:3', 'rdev major:minor');
  }),
  root('block-device', async (t) => {
    await t.sys('mknod', t.p('b'), C.S_IFBLK | 0o600, 8, 1);
    const s = await lstat(t.p('b'));
    eqMode(s, C.S_IFBLK | 0o600, 'mknod b 8 1');
    eq(`${s.major}:${s.minor}`, '8:1', 'rdev major:minor');
  }),
  root('large-device-numbers', async (t) => {
    await t.sys('mknod', t.p('c'), C.S_IFCHR | 0o600, 300, 70000);
    const s = await lstat(t.p('c'));
    eq(`${s.major}:${s.minor}`, '300:70000', 'rdev major:minor beyond 8 bits');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => t.sys('mknod', t.p('p'), C.S_IFIFO | 0o644));
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await fails('mknod over a file', () => t.sys('mknod', t.p('f'), C.S_IFIFO | 0o644), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('mknod in a missing directory', () => t.sys('mknod', t.p('missing', 'p'), C.S_IFIFO | 0o644), 'ENOENT');
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('mknod', join(pub, 's'), C.S_IFSOCK | 0o600);
    const s = await lstat(join(pub, 's'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a socket made by 65534');
  }),
  nobody('eperm-device', async (t) => {
    const pub = await t.pub();
    await fails('mknod c 1 3 by 65534', () => t.nobody('mknod', join(pub, 'c'), C.S_IFCHR | 0o666, 1, 3), 'EPERM');
  }),
  nobody('eacces', async (t) => {
    await fails('mknod by 65534 in a 0755 root directory', () => t.nobody('mknod', t.p('p'), C.S_IFIFO | 0o644), 'EACCES');
  }),
];

const open: Case[] = [
  c('creat-mode', async (t) => {
    const fh = await fsp.open(t.p('f'), C.O_CREAT | C.O_WRONLY, 0o640);
    await fh.close();
    const s = await stat(t.p('f'));
    eqMode(s, REG | 0o640, 'O_CREAT 0640');
    eq(s.size, 0, 'size');
    eq(s.nlink, 1, 'nlink');
    eq(`${s.uid}:${s.gid}`, `${process.geteuid?.()}:${process.getegid?.()}`, 'owner');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], async () => (await fsp.open(t.p('f'), 'w')).close());
  }),
  c('excl-eexist', async (t) => {
    await file(t.p('f'), 'keep');
    await dir(t.p('d'));
    await fsp.symlink('target', t.p('s'));
    const x = C.O_CREAT | C.O_EXCL | C.O_WRONLY;
    await fails('O_CREAT|O_EXCL on a file', () => fsp.open(t.p('f'), x), 'EEXIST');
    await fails('O_CREAT|O_EXCL on a directory', () => fsp.open(t.p('d'), x), 'EEXIST');
    await fails('O_CREAT|O_EXCL on a dangling symlink', () => fsp.open(t.p('s'), x), 'EEXIST');
    await fails('the dangling symlink\'s target', () => fsp.lstat(t.p('target')), 'ENOENT');
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'keep', 'content of f');
  }),
  c('creat-existing', async (t) => {
    await file(t.p('f'), 'keep', 0o600);
    await (await fsp.open(t.p('f'), C.O_CREAT | C.O_RDWR, 0o666)).close();
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'keep', 'content after O_CREAT on an existing file');
    eqMode(await stat(t.p('f')), REG | 0o600, 'mode after O_CREAT on an existing file');
  }),
  c('trunc', async (t) => {
    const f = await file(t.p('f'), 'some content');
    await advances(t, [f], ['mtime', 'ctime'], async () => (await fsp.open(f, C.O_WRONLY | C.O_TRUNC)).close());
    eq((await stat(f)).size, 0, 'size after O_TRUNC');
    eq(await fsp.readFile(f, 'utf8'), '', 'content after O_TRUNC');
  }),
  c('append', async (t) => {
    const f = await file(t.p('f'), 'hello');
    const fh = await fsp.open(f, C.O_WRONLY | C.O_APPEND);
    await fh.write(' world');
    await fh.write('!', 0); // the position is ignored with O_APPEND
    await fh.close();
    eq(await fsp.readFile(f, 'utf8'), 'hello world!', 'content after appending');
  }),
  c('read-write', async (t) => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 8)) & 0xff;
    const fh = await fsp.open(t.p('f'), 'w+');
    await fh.write(data, 0, data.length, 0);
    await fh.write(Buffer.from('tail'), 0, 4, 1_000_000);
    const back = Buffer.alloc(data.length);
    await fh.read(back, 0, back.length, 0);
    const gap = Buffer.alloc(700_000);
    await fh.read(gap, 0, gap.length, 300_000);
    await fh.close();
    check(back.equals(data), 'data read back differs from data written');
    check(gap.every((b) => b === 0), 'the gap of a sparse write reads as zeros');
    eq((await stat(t.p('f'))).size, 1_000_004, 'size');
  }),
  c('nofollow-eloop', async (t) => {
    await file(t.p('f'));
    await fsp.symlink('f', t.p('s'));
    await fails('O_NOFOLLOW on a symlink', () => fsp.open(t.p('s'), C.O_RDONLY | C.O_NOFOLLOW), 'ELOOP');
    await fails('O_NOFOLLOW|O_CREAT on a symlink', () => fsp.open(t.p('s'), C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW), 'ELOOP');
    await (await fsp.open(t.p('f'), C.O_RDONLY | C.O_NOFOLLOW)).close();
  }),
  c('follows-symlink', async (t) => {
    await file(t.p('f'), 'target data');
    await fsp.symlink('f', t.p('s'));
    eq(await fsp.readFile(t.p('s'), 'utf8'), 'target data', 'read through a symlink');
    await fsp.symlink('new', t.p('d'));
    await fsp.writeFile(t.p('d'), 'made'); // O_CREAT through a dangling symlink creates its target
    eq(await fsp.readFile(t.p('new'), 'utf8'), 'made', 'file created through a dangling symlink');
  }),
  c('enoent', async (t) => {
    await fails('open of a missing file', () => fsp.open(t.p('missing')), 'ENOENT');
    await fails('O_CREAT in a missing directory', () => fsp.open(t.p('missing', 'f'), 'w'), 'ENOENT');
    await fsp.symlink('missing', t.p('s'));
    await fails('open of a dangling symlink', () => fsp.open(t.p('s')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('open f/x (f a file)', () => fsp.open(t.p('f', 'x')), 'ENOTDIR');
    await fails('O_DIRECTORY on a file', () => fsp.open(t.p('f'), C.O_RDONLY | C.O_DIRECTORY), 'ENOTDIR');
  }),
  c('eisdir', async (t) => {
    const d = await dir(t.p('d'));
    await fails('O_WRONLY on a directory', () => fsp.open(d, C.O_WRONLY), 'EISDIR');
    await fails('O_RDWR on a directory', () => fsp.open(d, C.O_RDWR), 'EISDIR');
    await (await fsp.open(d, C.O_RDONLY | C.O_DIRECTORY)).close();
  }),
  c('name-255', async (t) => {
    const utf8 = `${'é'.repeat(127)}x`; // 255 bytes in UTF-8
    for (const n of [NAME_255, utf8]) {
      await fsp.writeFile(t.p(n), n);
      eq(await fsp.readFile(t.p(n), 'utf8'), n, `content of a ${Buffer.byteLength(n)}-byte name`);
      check((await fsp.readdir(t.dir)).includes(n), `readdir lists the ${Buffer.byteLength(n)}-byte name`);
    }
  }),
  c('enametoolong', async (t) => {
    await fails('O_CREAT of a 256-byte name', () => fsp.open(t.p(NAME_256), 'w'), 'ENAMETOOLONG');
    await fails('O_CREAT of a 256-byte UTF-8 name', () => fsp.open(t.p('é'.repeat(128)), 'w'), 'ENAMETOOLONG');
    await fails('open of a 256-byte name', () => fsp.open(t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  c('long-path', async (t) => {
    let p = t.dir;
    for (let i = 0; i < 6; i++) p = join(p, `${i}${'p'.repeat(199)}`);
    await fsp.mkdir(p, { recursive: true });
    const f = join(p, 'file');
    check(relative(t.dir, f).length > 1024, 'the path is over 1024 bytes');
    await fsp.writeFile(f, 'deep data');
    eq(await fsp.readFile(f, 'utf8'), 'deep data', 'content at a >1024-byte path');
    eq((await stat(f)).size, 9, 'size');
    await fsp.rename(f, join(p, 'file2'));
    eq((await fsp.readdir(p)).join(','), 'file2', 'entries after a rename');
    await fsp.unlink(join(p, 'file2'));
  }),
  root('root-bypasses-mode', async (t) => {
    const f = await file(t.p('f'), 'secret', 0o000);
    const fh = await fsp.open(f, C.O_RDWR);
    await fh.close();
    eq(await fsp.readFile(f, 'utf8'), 'secret', 'root reads a mode 0000 file');
  }),
  nobody('eacces-rdwr', async (t) => {
    const f = await file(t.p('f'), 'x', 0o644);
    await fails('O_RDWR of a 0644 root file by 65534', () => t.nobody('open', f, C.O_RDWR), 'EACCES');
    await fails('O_WRONLY of a 0644 root file by 65534', () => t.nobody('open', f, C.O_WRONLY), 'EACCES');
    await fails('O_TRUNC of a 0644 root file by 65534', () => t.nobody('open', f, C.O_WRONLY | C.O_TRUNC), 'EACCES');
    await t.nobody('open', f, C.O_RDONLY);
    eq((await stat(f)).size, 1, 'size after the refused O_TRUNC');
    const g = await file(t.p('g'), 'x', 0o640);
    await fails('O_RDONLY of a 0640 root file by 65534', () => t.nobody('open', g, C.O_RDONLY), 'EACCES');
  }),
  nobody('eacces-create', async (t) => {
    await fails('O_CREAT by 65534 in a 0755 root directory', () => t.nobody('open', t.p('f'), C.O_CREAT | C.O_WRONLY), 'EACCES');
  }),
  nobody('creat-owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('open', join(pub, 'f'), C.O_CREAT | C.O_WRONLY, 0o600);
    const s = await stat(join(pub, 'f'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a file created by 65534');
    eqMode(s, REG | 0o600, 'mode');
    const g = await dir(t.p('g'), 0o2777); // setgid, group root: new files get group root
    await t.nobody('open', join(g, 'f'), C.O_CREAT | C.O_WRONLY, 0o640);
    eq((await stat(join(g, 'f'))).gid, (await stat(g)).gid, 'gid of a file created in a setgid directory');
  }),
];

const rename: Case[] = [
  c('file', async (t) => {
    const f = await file(t.p('f'), 'content');
    const ino = (await stat(f)).ino;
    await fsp.rename(f, t.p('g'));
    await fails('stat of the old name', () => fsp.stat(f), 'ENOENT');
    const s = await stat(t.p('g'));
    eq(s.ino, ino, 'inode of the new name');
    eq(s.nlink, 1, 'nlink');
    eq(await fsp.readFile(t.p('g'), 'utf8'), 'content', 'content');
  }),
  c('over-file', async (t) => {
    await file(t.p('f'), 'new');
    await file(t.p('g'), 'old');
    await fsp.link(t.p('g'), t.p('g2'));
    const ino = (await stat(t.p('f'))).ino;
    await fsp.rename(t.p('f'), t.p('g'));
    eq((await stat(t.p('g'))).ino, ino, 'inode at the target name');
    eq(await fsp.readFile(t.p('g'), 'utf8'), 'new', 'content at the target name');
    eq((await stat(t.p('g2'))).nlink, 1, 'nlink of the replaced file\'s other name');
    await fails('stat of the old name', () => fsp.stat(t.p('f')), 'ENOENT');
  }),
  c('over-empty-dir', async (t) => {
    await dir(t.p('a'));
    await file(t.p('a', 'inner'), 'x');
    await dir(t.p('b'));
    const counts = await countsSubdirs(t.dir);
    const n = (await stat(t.dir)).nlink;
    await fsp.rename(t.p('a'), t.p('b'));
    eq(await fsp.readFile(t.p('b', 'inner'), 'utf8'), 'x', 'content of the moved directory');
    await fails('stat of the old name', () => fsp.stat(t.p('a')), 'ENOENT');
    if (counts) eq((await stat(t.dir)).nlink, n - 1, 'nlink of the parent');
  }),
  c('over-nonempty-dir', async (t) => {
    await dir(t.p('a'));
    await dir(t.p('b'));
    await file(t.p('b', 'x'));
    await fails('rename of a directory over a non-empty one', () => fsp.rename(t.p('a'), t.p('b')), 'ENOTEMPTY', 'EEXIST');
  }),
  c('file-over-dir', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fails('rename of a file over a directory', () => fsp.rename(t.p('f'), t.p('d')), 'EISDIR');
  }),
  c('dir-over-file', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fails('rename of a directory over a file', () => fsp.rename(t.p('d'), t.p('f')), 'ENOTDIR');
  }),
  c('into-own-subtree', async (t) => {
    await dir(t.p('d'));
    await dir(t.p('d', 'sub'));
    await fails('rename d to d/sub/x', () => fsp.rename(t.p('d'), t.p('d', 'sub', 'x')), 'EINVAL');
    await fails('rename d to d/x', () => fsp.rename(t.p('d'), t.p('d', 'x')), 'EINVAL');
  }),
  c('enoent', async (t) => {
    await fails('rename of a missing file', () => fsp.rename(t.p('missing'), t.p('g')), 'ENOENT');
    await file(t.p('f'));
    await fails('rename into a missing directory', () => fsp.rename(t.p('f'), t.p('missing', 'g')), 'ENOENT');
  }),
  c('hardlinks-noop', async (t) => {
    await file(t.p('a'), 'x');
    await fsp.link(t.p('a'), t.p('b'));
    await fsp.rename(t.p('a'), t.p('b'));
    eq((await stat(t.p('a'))).nlink, 2, 'nlink of a (rename between links of one file does nothing)');
    eq((await stat(t.p('b'))).nlink, 2, 'nlink of b');
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    const before = await stat(f);
    await t.tick();
    await fsp.rename(f, t.p('g'));
    const s = await stat(t.p('g'));
    check(s.ctime > before.ctime, `ctime of the renamed file did not advance (${before.ctime} -> ${s.ctime} ns)`);
    eq(s.mtime, before.mtime, 'mtime of the renamed file');
  }),
  c('parent-times', async (t) => {
    await dir(t.p('a'));
    await dir(t.p('b'));
    await file(t.p('a', 'f'));
    await advances(t, [t.p('a'), t.p('b')], ['mtime', 'ctime'], () => fsp.rename(t.p('a', 'f'), t.p('b', 'f')));
  }),
  c('dir-between-parents', async (t) => {
    await dir(t.p('a'));
    await dir(t.p('b'));
    await dir(t.p('a', 'd'));
    await file(t.p('a', 'd', 'f'), 'inside');
    const counts = await countsSubdirs(t.dir);
    await fsp.rename(t.p('a', 'd'), t.p('b', 'd'));
    eq((await stat(t.p('b', 'd', '..'))).ino, (await stat(t.p('b'))).ino, 'inode of b/d/..');
    eq(await fsp.readFile(t.p('b', 'd', 'f'), 'utf8'), 'inside', 'content below the moved directory');
    if (counts) {
      eq((await stat(t.p('a'))).nlink, 2, 'nlink of the old parent');
      eq((await stat(t.p('b'))).nlink, 3, 'nlink of the new parent');
    }
  }),
  c('symlink', async (t) => {
    await file(t.p('f'), 'x');
    await fsp.symlink('./f', t.p('s'));
    await fsp.rename(t.p('s'), t.p('s2'));
    eq(await fsp.readlink(t.p('s2')), './f', 'target of the renamed symlink');
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'x', 'the target itself');
  }),
  c('names-255-256', async (t) => {
    await file(t.p('f'), 'x');
    await fsp.rename(t.p('f'), t.p(NAME_255));
    eq(await fsp.readFile(t.p(NAME_255), 'utf8'), 'x', 'content after rename to a 255-byte name');
    await fails('rename to a 256-byte name', () => fsp.rename(t.p(NAME_255), t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  c('noreplace', async (t) => {
    await file(t.p('a'), 'a');
    await file(t.p('b'), 'b');
    await fails('RENAME_NOREPLACE onto an existing file', () => t.sys('renameat2', t.p('a'), t.p('b'), RENAME_NOREPLACE), 'EEXIST');
    eq(await fsp.readFile(t.p('b'), 'utf8'), 'b', 'the existing target');
    eq(await fsp.readFile(t.p('a'), 'utf8'), 'a', 'the source');
    await t.sys('renameat2', t.p('a'), t.p('c'), RENAME_NOREPLACE);
    eq(await fsp.readFile(t.p('c'), 'utf8'), 'a', 'RENAME_NOREPLACE onto a free name');
    await fails('stat of the old name', () => fsp.stat(t.p('a')), 'ENOENT');
  }),
  c('exchange', async (t) => {
    await file(t.p('f'), 'file');
    await dir(t.p('d'));
    await file(t.p('d', 'inner'), 'inner');
    const [fi, di] = [(await stat(t.p('f'))).ino, (await stat(t.p('d'))).ino];
    await t.sys('renameat2', t.p('f'), t.p('d'), RENAME_EXCHANGE);
    eq((await stat(t.p('f'))).ino, di, 'inode now at f');
    eq((await stat(t.p('d'))).ino, fi, 'inode now at d');
    eq(await fsp.readFile(t.p('f', 'inner'), 'utf8'), 'inner', 'content below the directory now at f');
    eq(await fsp.readFile(t.p('d'), 'utf8'), 'file', 'content of the file now at d');
    await fails('RENAME_EXCHANGE with a missing name', () => t.sys('renameat2', t.p('d'), t.p('missing'), RENAME_EXCHANGE), 'ENOENT');
    await fails('RENAME_EXCHANGE|RENAME_NOREPLACE', () => t.sys('renameat2', t.p('d'), t.p('f'), RENAME_EXCHANGE | RENAME_NOREPLACE), 'EINVAL');
  }),
  nobody('sticky', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await file(join(s, 'root'), '', 0o666);
    await fails('rename by 65534 of a root file in a 1777 directory', () => t.nobody('rename', join(s, 'root'), join(s, 'mine')), 'EPERM', 'EACCES');
    await t.nobody('open', join(s, 'own'), C.O_CREAT | C.O_WRONLY);
    await t.nobody('rename', join(s, 'own'), join(s, 'own2'));
    eq((await stat(join(s, 'own2'))).uid, NOBODY, 'its own file renamed by 65534 in a 1777 directory');
  }),
  nobody('eacces', async (t) => {
    await file(t.p('f'), '', 0o666);
    await fails('rename by 65534 in a 0755 root directory', () => t.nobody('rename', t.p('f'), t.p('g')), 'EACCES');
  }),
];

const rmdir: Case[] = [
  c('removes', async (t) => {
    await dir(t.p('d'));
    const counts = await countsSubdirs(t.dir);
    const n = (await stat(t.dir)).nlink;
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.rmdir(t.p('d')));
    await fails('stat after rmdir', () => fsp.stat(t.p('d')), 'ENOENT');
    if (counts) eq((await stat(t.dir)).nlink, n - 1, 'nlink of the parent');
  }),
  c('enotempty', async (t) => {
    await dir(t.p('d'));
    await file(t.p('d', 'f'));
    await fails('rmdir of a non-empty directory', () => fsp.rmdir(t.p('d')), 'ENOTEMPTY', 'EEXIST');
    await fsp.unlink(t.p('d', 'f'));
    await dir(t.p('d', 'sub'));
    await fails('rmdir of a directory with a subdirectory', () => fsp.rmdir(t.p('d')), 'ENOTEMPTY', 'EEXIST');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fsp.symlink('d', t.p('s'));
    await fails('rmdir of a file', () => fsp.rmdir(t.p('f')), 'ENOTDIR');
    await fails('rmdir of a symlink to a directory', () => fsp.rmdir(t.p('s')), 'ENOTDIR');
    await fails('rmdir of f/x (f a file)', () => fsp.rmdir(t.p('f', 'x')), 'ENOTDIR');
  }),
  c('enoent', async (t) => {
    await fails('rmdir of a missing directory', () => fsp.rmdir(t.p('missing')), 'ENOENT');
  }),
  c('einval-dot', async (t) => {
    await dir(t.p('d'));
    await fails('rmdir d/.', () => fsp.rmdir(`${t.p('d')}/.`), 'EINVAL');
  }),
  c('name-255', async (t) => {
    await fsp.mkdir(t.p(NAME_255));
    await fsp.rmdir(t.p(NAME_255));
    await fails('stat after rmdir', () => fsp.stat(t.p(NAME_255)), 'ENOENT');
  }),
  nobody('eacces', async (t) => {
    await dir(t.p('d'), 0o777);
    await fails('rmdir by 65534 in a 0755 root directory', () => t.nobody('rmdir', t.p('d')), 'EACCES');
  }),
  nobody('sticky', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await dir(join(s, 'root'), 0o777);
    await fails('rmdir by 65534 of a root directory in a 1777 directory', () => t.nobody('rmdir', join(s, 'root')), 'EPERM', 'EACCES');
    await t.nobody('mkdir', join(s, 'own'), 0o755);
    await t.nobody('rmdir', join(s, 'own'));
    await fails('stat after rmdir by its owner', () => fsp.stat(join(s, 'own')), 'ENOENT');
  }),
];

const symlink: Case[] = [
  c('target-verbatim', async (t) => {
    const targets = ['f', 'a/../b//c/', '/absolute/path/x', ' spaces and ünïcödé ', '.', '..', 'x'.repeat(1023)];
    for (const [i, target] of targets.entries()) {
      await fsp.symlink(target, t.p(`l${i}`));
      eq(await fsp.readlink(t.p(`l${i}`)), target, 'target read back');
      eq((await lstat(t.p(`l${i}`))).size, Buffer.byteLength(target), `size of the symlink to ${target.slice(0, 20)}`);
    }
  }),
  c('lstat-vs-stat', async (t) => {
    await file(t.p('f'), 'twelve bytes', 0o640);
    await fsp.symlink('f', t.p('s'));
    const [l, s, f] = [await lstat(t.p('s')), await stat(t.p('s')), await stat(t.p('f'))];
    eq(l.mode & S_IFMT, LNK, 'lstat type');
    eq(l.size, 1, 'lstat size (target length)');
    check(l.ino !== f.ino, 'lstat gives the symlink\'s own inode');
    eq(s.ino, f.ino, 'stat inode (the target\'s)');
    eqMode(s, REG | 0o640, 'stat mode (the target\'s)');
    eq(s.size, 12, 'stat size (the target\'s)');
  }),
  c('dangling', async (t) => {
    await fsp.symlink('missing', t.p('s'));
    await fails('stat of a dangling symlink', () => fsp.stat(t.p('s')), 'ENOENT');
    eq((await lstat(t.p('s'))).mode & S_IFMT, LNK, 'lstat type');
    eq(await fsp.readlink(t.p('s')), 'missing', 'target');
  }),
  c('relative-resolution', async (t) => {
    await file(t.p('f'), 'top');
    await dir(t.p('d'));
    await fsp.symlink('../f', t.p('d', 's'));
    eq(await fsp.readFile(t.p('d', 's'), 'utf8'), 'top', 'read through d/s -> ../f');
    await fsp.symlink('d', t.p('dl'));
    eq(await fsp.readFile(t.p('dl', 's'), 'utf8'), 'top', 'read through dl/s (dl -> d)');
  }),
  c('loop', async (t) => {
    await fsp.symlink('b', t.p('a'));
    await fsp.symlink('a', t.p('b'));
    await fails('stat of a symlink loop', () => fsp.stat(t.p('a')), 'ELOOP');
    await fails('open of a symlink loop', () => fsp.open(t.p('a')), 'ELOOP');
  }),
  c('parent-times', async (t) => {
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.symlink('x', t.p('s')));
  }),
  c('eexist', async (t) => {
    await file(t.p('f'));
    await dir(t.p('d'));
    await fsp.symlink('missing', t.p('s'));
    await fails('symlink over a file', () => fsp.symlink('x', t.p('f')), 'EEXIST');
    await fails('symlink over a directory', () => fsp.symlink('x', t.p('d')), 'EEXIST');
    await fails('symlink over a dangling symlink', () => fsp.symlink('x', t.p('s')), 'EEXIST');
  }),
  c('enoent', async (t) => {
    await fails('symlink in a missing directory', () => fsp.symlink('x', t.p('missing', 's')), 'ENOENT');
    await fails('symlink with an empty target', () => fsp.symlink('', t.p('s')), 'ENOENT');
  }),
  c('enametoolong', async (t) => {
    await fails('symlink of a 256-byte name', () => fsp.symlink('x', t.p(NAME_256)), 'ENAMETOOLONG');
    await fsp.symlink('x', t.p(NAME_255));
    eq(await fsp.readlink(t.p(NAME_255)), 'x', 'target of a 255-byte symlink');
  }),
  nobody('owner', async (t) => {
    const pub = await t.pub();
    await t.nobody('symlink', 'target', join(pub, 's'));
    const s = await lstat(join(pub, 's'));
    eq(`${s.uid}:${s.gid}`, `${NOBODY}:${NOBODY}`, 'owner of a symlink made by 65534');
  }),
  nobody('eacces', async (t) => {
    await fails('symlink by 65534 in a 0755 root directory', () => t.nobody('symlink', 'x', t.p('s')), 'EACCES');
  }),
];

const truncate: Case[] = [
  c('shrink', async (t) => {
    const f = await file(t.p('f'), 'hello world');
    await t.sys('truncate', f, 5);
    eq((await stat(f)).size, 5, 'size');
    eq(await fsp.readFile(f, 'utf8'), 'hello', 'content');
  }),
  c('grow', async (t) => {
    const f = await file(t.p('f'), 'abc');
    await t.sys('truncate', f, 100_000);
    eq((await stat(f)).size, 100_000, 'size');
    const b = await fsp.readFile(f);
    eq(b.subarray(0, 3).toString(), 'abc', 'the old content');
    check(b.subarray(3).every((x) => x === 0), 'the grown part reads as zeros');
  }),
  c('large', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('truncate', f, 5 * 2 ** 30);
    eq((await stat(f)).size, 5 * 2 ** 30, 'size after truncate to 5 GiB');
  }),
  c('times', async (t) => {
    const f = await file(t.p('f'), 'content');
    await advances(t, [f], ['mtime', 'ctime'], () => t.sys('truncate', f, 3));
  }),
  c('follows-symlink', async (t) => {
    const f = await file(t.p('f'), 'hello world');
    await fsp.symlink('f', t.p('s'));
    await t.sys('truncate', t.p('s'), 2);
    eq((await stat(f)).size, 2, 'size of the target');
  }),
  c('eisdir', async (t) => {
    await dir(t.p('d'));
    await fails('truncate of a directory', () => t.sys('truncate', t.p('d'), 0), 'EISDIR');
  }),
  c('enoent', async (t) => {
    await fails('truncate of a missing file', () => t.sys('truncate', t.p('missing'), 0), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('truncate of f/x (f a file)', () => t.sys('truncate', t.p('f', 'x'), 0), 'ENOTDIR');
  }),
  c('einval-negative', async (t) => {
    const f = await file(t.p('f'), 'x');
    await fails('truncate to -1', () => t.sys('truncate', f, -1), 'EINVAL');
  }),
  nobody('eacces', async (t) => {
    const f = await file(t.p('f'), 'content', 0o644);
    await fails('truncate of a 0644 root file by 65534', () => t.nobody('truncate', f, 0), 'EACCES');
    eq((await stat(f)).size, 7, 'size after the refused truncate');
    const g = await file(t.p('g'), 'content', 0o666);
    await t.nobody('truncate', g, 2);
    eq((await stat(g)).size, 2, 'size after truncate of a 0666 root file by 65534');
  }),
  nobody('clears-setuid', async (t) => {
    const f = await file(t.p('f'), 'content');
    await fsp.chown(f, NOBODY, NOBODY);
    await t.nobody('chmod', f, 0o4755);
    await t.nobody('truncate', f, 1);
    eqMode(await stat(f), REG | 0o755, 'mode after truncate of a 04755 file by its (unprivileged) owner');
  }),
];

const unlink: Case[] = [
  c('removes', async (t) => {
    const f = await file(t.p('f'));
    await fsp.unlink(f);
    await fails('stat after unlink', () => fsp.stat(f), 'ENOENT');
    check(!(await fsp.readdir(t.dir)).includes('f'), 'readdir no longer lists the name');
  }),
  c('nlink-ctime', async (t) => {
    const f = await file(t.p('f'), 'x');
    await fsp.link(f, t.p('g'));
    await advances(t, [f], ['ctime'], () => fsp.unlink(t.p('g')));
    eq((await stat(f)).nlink, 1, 'nlink of the remaining name');
  }),
  c('parent-times', async (t) => {
    await file(t.p('f'));
    await advances(t, [t.dir], ['mtime', 'ctime'], () => fsp.unlink(t.p('f')));
  }),
  c('open-file', async (t) => {
    const f = await file(t.p('f'), 'still here');
    const fh = await fsp.open(f, 'r+');
    try {
      await fsp.unlink(f);
      eq(Number((await fh.stat({ bigint: true })).nlink), 0, 'nlink of an unlinked open file (fstat)');
      const b = Buffer.alloc(10);
      await fh.read(b, 0, 10, 0);
      eq(b.toString(), 'still here', 'read through the fd after unlink');
      await fh.write('!', 10);
      const b2 = Buffer.alloc(11);
      await fh.read(b2, 0, 11, 0);
      eq(b2.toString(), 'still here!', 'read after a write through the fd after unlink');
    } finally {
      await fh.close();
    }
  }),
  c('eisdir', async (t) => {
    await dir(t.p('d'));
    await fails('unlink of a directory', () => fsp.unlink(t.p('d')), 'EISDIR', 'EPERM');
  }),
  c('enoent', async (t) => {
    await fails('unlink of a missing file', () => fsp.unlink(t.p('missing')), 'ENOENT');
  }),
  c('enotdir', async (t) => {
    await file(t.p('f'));
    await fails('unlink of f/x (f a file)', () => fsp.unlink(t.p('f', 'x')), 'ENOTDIR');
  }),
  c('symlink', async (t) => {
    await file(t.p('f'), 'x');
    await fsp.symlink('f', t.p('s'));
    await fsp.unlink(t.p('s'));
    await fails('lstat of the unlinked symlink', () => fsp.lstat(t.p('s')), 'ENOENT');
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'x', 'the target');
  }),
  c('special-files', async (t) => {
    await t.sys('mkfifo', t.p('p'), 0o644);
    await t.sys('mknod', t.p('s'), C.S_IFSOCK | 0o644);
    await fsp.unlink(t.p('p'));
    await fsp.unlink(t.p('s'));
    eq((await fsp.readdir(t.dir)).length, 0, 'entries after unlinking a fifo and a socket');
  }),
  c('name-255', async (t) => {
    await file(t.p(NAME_255));
    await fsp.unlink(t.p(NAME_255));
    await fails('unlink of a 256-byte name', () => fsp.unlink(t.p(NAME_256)), 'ENAMETOOLONG');
  }),
  nobody('sticky-other', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await file(join(s, 'f'), '', 0o666);
    await fails('unlink by 65534 of a root file in a 1777 directory', () => t.nobody('unlink', join(s, 'f')), 'EPERM', 'EACCES');
    await fsp.stat(join(s, 'f'));
  }),
  nobody('sticky-own', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await t.nobody('open', join(s, 'f'), C.O_CREAT | C.O_WRONLY);
    await t.nobody('unlink', join(s, 'f'));
    await fails('stat after unlink by its owner', () => fsp.stat(join(s, 'f')), 'ENOENT');
  }),
  nobody('sticky-dir-owner', async (t) => {
    const s = await dir(t.p('s'), 0o1777);
    await fsp.chown(s, NOBODY, NOBODY);
    await file(join(s, 'f'), '', 0o644);
    await t.nobody('unlink', join(s, 'f'));
    await fails('stat after unlink by the owner of the sticky directory', () => fsp.stat(join(s, 'f')), 'ENOENT');
  }),
  nobody('eacces', async (t) => {
    await file(t.p('f'), '', 0o666);
    await fails('unlink by 65534 in a 0755 root directory', () => t.nobody('unlink', t.p('f')), 'EACCES');
  }),
];

const A = [1_000_000_001, 123_456_789] as const;
const M = [1_500_000_000, 987_654_321] as const;
const ns = (t: readonly [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

const utimensat: Case[] = [
  c('nanoseconds', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, M);
    const s = await stat(f);
    eq(s.atime, ns(A), 'atime (ns)');
    eq(s.mtime, ns(M), 'mtime (ns)');
  }),
  c('now', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, M);
    const from = t.now();
    await t.sys('utimensat', f, 'now', 'now');
    const to = t.now();
    const s = await stat(f);
    nearNow(t, s.atime, from, to, 'atime after UTIME_NOW');
    nearNow(t, s.mtime, from, to, 'mtime after UTIME_NOW');
  }),
  c('omit', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, M);
    await t.sys('utimensat', f, 'omit', [2_000_000_000, 5]);
    let s = await stat(f);
    eq(s.atime, ns(A), 'atime after UTIME_OMIT');
    eq(s.mtime, 2_000_000_000_000_000_005n, 'mtime');
    await t.sys('utimensat', f, [3, 0], 'omit');
    s = await stat(f);
    eq(s.atime, 3_000_000_000n, 'atime');
    eq(s.mtime, 2_000_000_000_000_000_005n, 'mtime after UTIME_OMIT');
  }),
  c('ctime', async (t) => {
    const f = await file(t.p('f'));
    await t.tick();
    const from = t.now();
    await advances(t, [f], ['ctime'], () => t.sys('utimensat', f, A, M));
    nearNow(t, (await stat(f)).ctime, from, t.now(), 'ctime after setting past times');
  }),
  c('nofollow-symlink', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, A, A);
    await fsp.symlink('f', t.p('s'));
    await t.sys('utimensat', t.p('s'), M, M, true);
    const [l, s] = [await lstat(t.p('s')), await stat(f)];
    eq(l.mtime, ns(M), 'mtime of the symlink (AT_SYMLINK_NOFOLLOW)');
    eq(l.atime, ns(M), 'atime of the symlink');
    eq(s.mtime, ns(A), 'mtime of the target (untouched)');
  }),
  c('follows-symlink', async (t) => {
    const f = await file(t.p('f'));
    await fsp.symlink('f', t.p('s'));
    const l0 = await lstat(t.p('s'));
    await t.sys('utimensat', t.p('s'), A, M);
    eq((await stat(f)).mtime, ns(M), 'mtime of the target');
    eq((await lstat(t.p('s'))).mtime, l0.mtime, 'mtime of the symlink (untouched)');
  }),
  c('directory', async (t) => {
    const d = await dir(t.p('d'));
    await t.sys('utimensat', d, A, M);
    const s = await stat(d);
    eq(s.atime, ns(A), 'atime of a directory');
    eq(s.mtime, ns(M), 'mtime of a directory');
  }),
  c('after-2038', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, [4_102_444_800, 0], [2_147_483_648, 0]);
    const s = await stat(f);
    eq(s.atime, 4_102_444_800_000_000_000n, 'atime in 2100');
    eq(s.mtime, 2_147_483_648_000_000_000n, 'mtime 2^31 s (2038)');
  }),
  c('before-1970', async (t) => {
    const f = await file(t.p('f'));
    await t.sys('utimensat', f, [-1, 0], [-31_536_000, 0]);
    const s = await stat(f);
    eq(s.atime, -1_000_000_000n, 'atime -1 s');
    eq(s.mtime, -31_536_000_000_000_000n, 'mtime in 1969');
  }),
  c('enoent', async (t) => {
    await fails('utimensat of a missing file', () => t.sys('utimensat', t.p('missing'), 'now', 'now'), 'ENOENT');
  }),
  nobody('eperm-explicit-not-owner', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await fails('explicit times by 65534 on a 0666 root file', () => t.nobody('utimensat', f, A, M), 'EPERM');
    await fails('UTIME_NOW and an explicit time by 65534', () => t.nobody('utimensat', f, 'now', M), 'EPERM');
  }),
  nobody('now-not-owner-writable', async (t) => {
    const f = await file(t.p('f'), '', 0o666);
    await t.sys('utimensat', f, A, M);
    const from = t.now();
    await t.nobody('utimensat', f, 'now', 'now');
    nearNow(t, (await stat(f)).mtime, from, t.now(), 'mtime after UTIME_NOW by 65534 (with write permission)');
  }),
  nobody('now-not-owner-readonly', async (t) => {
    const f = await file(t.p('f'), '', 0o644);
    await fails('UTIME_NOW by 65534 on a 0644 root file', () => t.nobody('utimensat', f, 'now', 'now'), 'EACCES');
  }),
  nobody('owner-explicit', async (t) => {
    const f = await file(t.p('f'), '', 0o600);
    await fsp.chown(f, NOBODY, NOBODY);
    await t.nobody('utimensat', f, A, M);
    eq((await stat(f)).mtime, ns(M), 'mtime set by its owner 65534');
  }),
];

const ftruncate: Case[] = [
  c('grow', async (t) => {
    const fh = await fsp.open(await file(t.p('f'), 'abc'), 'r+');
    try {
      await fh.truncate(50_000);
      eq(Number((await fh.stat()).size), 50_000, 'fstat size');
      const b = Buffer.alloc(50_000);
      await fh.read(b, 0, b.length, 0);
      eq(b.subarray(0, 3).toString(), 'abc', 'the old content');
      check(b.subarray(3).every((x) => x === 0), 'the grown part reads as zeros');
      await fh.write('end', 50_000);
    } finally {
      await fh.close();
    }
    eq((await stat(t.p('f'))).size, 50_003, 'size after writing at the new end');
  }),
  c('shrink', async (t) => {
    const fh = await fsp.open(await file(t.p('f'), 'hello world'), 'r+');
    try {
      await fh.truncate(4);
      eq(Number((await fh.stat()).size), 4, 'fstat size');
      const b = Buffer.alloc(20);
      const { bytesRead } = await fh.read(b, 0, 20, 0);
      eq(b.subarray(0, bytesRead).toString(), 'hell', 'content read through the fd');
    } finally {
      await fh.close();
    }
    eq(await fsp.readFile(t.p('f'), 'utf8'), 'hell', 'content');
  }),
  c('times', async (t) => {
    const f = await file(t.p('f'), 'content');
    const fh = await fsp.open(f, 'r+');
    try {
      await advances(t, [f], ['mtime', 'ctime'], () => fh.truncate(2));
    } finally {
      await fh.close();
    }
  }),
  c('rdonly-fd', async (t) => {
    const f = await file(t.p('f'), 'content');
    await fails('ftruncate of an O_RDONLY fd', () => t.batch(undefined, [['openfd', 'r', f, C.O_RDONLY], ['ftruncate', 'r', 0]]), 'EINVAL', 'EBADF');
    eq((await stat(f)).size, 7, 'size after the refused ftruncate');
  }),
  c('einval-negative', async (t) => {
    const f = await file(t.p('f'), 'x');
    await fails('ftruncate to -1', () => t.batch(undefined, [['openfd', 'w', f, C.O_RDWR], ['ftruncate', 'w', -1]]), 'EINVAL');
  }),
  c('unlinked', async (t) => {
    const f = await file(t.p('f'), 'content');
    const fh = await fsp.open(f, 'r+');
    try {
      await fsp.unlink(f);
      await fh.truncate(3);
      eq(Number((await fh.stat()).size), 3, 'fstat size after ftruncate of an unlinked file');
    } finally {
      await fh.close();
    }
  }),
  nobody('after-fchmod-0', async (t) => {
    const pub = await t.pub();
    const f = join(pub, 'f');
    await t.batch(NOBODY, [
      ['openfd', 'w', f, C.O_CREAT | C.O_RDWR, 0o644], ['fchmod', 'w', 0], ['ftruncate', 'w', 100], ['write', 'w', 'xyz'], ['close', 'w'],
    ]);
    const s = await stat(f);
    eq(s.size, 100, 'size (ftruncate checks the fd\'s mode, not the file\'s permissions)');
    eqMode(s, REG, 'mode');
  }),
  nobody('clears-setuid', async (t) => {
    const pub = await t.pub();
    const f = join(pub, 'f');
    await t.batch(NOBODY, [['openfd', 'w', f, C.O_CREAT | C.O_RDWR, 0o755], ['fchmod', 'w', 0o4755], ['ftruncate', 'w', 10], ['close', 'w']]);
    eqMode(await stat(f), REG | 0o755, 'mode after ftruncate of a 04755 file by its (unprivileged) owner');
  }),
];

const GROUPS: Record<string, Case[]> = {
  chmod, chown, link, mkdir, mkfifo, mknod, open, rename, rmdir, symlink, truncate, unlink, utimensat, ftruncate,
};
/** The groups, in the order they run. */
export const CONFORMANCE_GROUPS: readonly string[] = Object.keys(GROUPS);

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
async function probe(mnt: string): Promise<Env> {
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
async function runCase(mnt: string, env: Env, k: Case, ms: number): Promise<string | undefined> {
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
