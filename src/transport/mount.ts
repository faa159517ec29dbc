/**
 * Getting a /dev/fuse fd attached to a mount point, and taking it away again.
 *
 * Privileged: open /dev/fuse and call mount(2) with type `fuse.<subtype>` and
 * data `fd=N,rootmode=40000,user_id=U,group_id=G[,…]`.
 * Unprivileged: run the setuid `fusermount3` with `_FUSE_COMMFD` set to one
 * end of a socketpair; it mounts and sends the opened fd back (SCM_RIGHTS).
 *
 * Before mounting, the mount point is checked so that failures carry the real
 * errno and a message that says what to do: missing, not a directory, a dead
 * FUSE mount (ENOTCONN), or already a mount point (EBUSY).
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, fstatSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { MNT, MS, native } from './native.js';
import { OptionError, type ResolvedMountOptions } from './options.js';
import { describeHolders, mountHolders } from './holders.js';

/** An error shaped like Node's fs errors. */
export class MountError extends Error {
  /**
   * @param code - The errno's name, e.g. 'EACCES'.
   * @param errno - The errno, negated (as Node's fs errors carry it).
   * @param syscall - What failed: 'mount', 'umount2', 'stat', 'fusermount3' ….
   * @param path - The path it failed on (the mount point, or /dev/fuse).
   */
  constructor(readonly code: string, readonly errno: number, readonly syscall: string, readonly path: string, message: string) {
    super(message);
    this.name = 'MountError';
  }
}

const ERRNO: Record<string, number> = { EBADF: -9, ENOENT: -2, ENOTDIR: -20, EBUSY: -16, ENOTCONN: -107, EPERM: -1, EACCES: -13, EINVAL: -22, EIO: -5 };

function mountError(code: string, path: string, message: string, syscall = 'mount'): MountError {
  return new MountError(code, ERRNO[code] ?? -5, syscall, path, `${code}: ${message}`);
}

/** Every mount's mount point in /proc/self/mountinfo (field 5, with \040-style escapes
 * decoded), in order; a point with stacked mounts appears once for each. */
export function mountTargets(): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => unescape(l.split(' ')[4]));
}

/** Mount points listed in /proc/self/mountinfo. */
export function mountPoints(): Set<string> {
  return new Set(mountTargets());
}

/** Detaches a mount point (umount2 MNT_DETACH); used for dead mounts. */
export function detach(mountpoint: string): void {
  native.umount2(mountpoint, MNT.DETACH);
}

/**
 * Checks that `mountpoint` can be mounted on; returns its absolute path.
 * A dead FUSE mount is detached when `cleanStale` is set, else reported.
 */
export function checkMountpoint(mountpoint: string, opts: Pick<ResolvedMountOptions, 'cleanStale' | 'overMount' | 'mountMethod'>,
  log: (line: string) => void = () => {}): string {
  const mnt = resolve(mountpoint);
  let st;
  try {
    st = statSync(mnt);
    // stat() of a dead FUSE root can be answered from the attribute cache;
    // statfs() always asks the server, so it tells a dead mount from a live one.
    if (mountPoints().has(mnt)) statfsSync(mnt);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') return cleanDeadMount(mnt, opts, log);
    if (code === 'ENOENT') throw mountError('ENOENT', mnt, `mount point ${mnt} does not exist: create it first (mkdir -p ${mnt})`, 'stat');
    throw mountError(code, mnt, `cannot access mount point ${mnt} (${(e as Error).message}): ` +
      (code === 'EACCES' ? 'the mounting user must be allowed to search every directory above it' : 'check the path'), 'stat');
  }
  if (!st.isDirectory()) throw mountError('ENOTDIR', mnt, `mount point ${mnt} is not a directory: mount on a directory`, 'stat');
  if (!opts.overMount && mountPoints().has(mnt)) {
    throw mountError('EBUSY', mnt, `${mnt} is already a mount point; refusing to stack another mount on it ` +
      `(unmount it first: \`tsfuse umount ${mnt}\`; or pass overMount / -o over_mount to stack)`);
  }
  return mnt;
}

/** Is `mnt` a FUSE mount whose server is gone ("Transport endpoint is not connected")? */
export function isDeadMount(mnt: string): boolean {
  try {
    statfsSync(mnt);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' || code === 'ECONNABORTED';
  }
}

function cleanDeadMount(mnt: string, opts: Pick<ResolvedMountOptions, 'cleanStale' | 'overMount' | 'mountMethod'>, log: (line: string) => void): string {
  if (!opts.cleanStale) {
    throw mountError('ENOTCONN', mnt, `${mnt} is a dead FUSE mount (Transport endpoint is not connected): ` +
      `its server is gone. Unmount it (\`tsfuse umount -l ${mnt}\` or \`umount -l\`) or mount with cleanStale / -o clean_stale`, 'statfs');
  }
  try {
    if (opts.mountMethod === 'fusermount' || (opts.mountMethod === 'auto' && process.geteuid?.() !== 0)) {
      runFusermountSync(['-u', '-z', mnt]);
    } else {
      detach(mnt);
    }
  } catch (err) {
    throw mountError('ENOTCONN', mnt, `${mnt} is a dead FUSE mount and detaching it failed: ${(err as Error).message}`, 'umount2');
  }
  log(`${mnt} was a dead FUSE mount (Transport endpoint is not connected: its server is gone); detached it`);
  return checkMountpoint(mnt, { ...opts, cleanStale: false }, log);
}

/** The `key=value,…` mount data common to both methods (except fd=). */
function dataOptions(o: ResolvedMountOptions, withIds: boolean): string[] {
  const d: string[] = [];
  if (withIds) d.push('rootmode=40000', `user_id=${process.geteuid!()}`, `group_id=${process.getegid!()}`);
  if (o.allowOther) d.push('allow_other');
  if (o.defaultPermissions) d.push('default_permissions');
  if (o.maxRead) d.push(`max_read=${o.maxRead}`);
  return d;
}

/** mount(2) flags that native.ts's MS does not list (linux/mount.h). */
const MS_MORE = { NOSYMFOLLOW: 256, RELATIME: 1 << 21, STRICTATIME: 1 << 24, LAZYTIME: 1 << 25 } as const;

/**
 * The MS_* flags for mount(2), as mount(8) would pass them. nosuid and nodev unless
 * `suid`/`dev` ask otherwise: fusermount3's defaults, and what a mount that serves
 * user-controlled files should start from.
 */
export function mountFlags(o: ResolvedMountOptions): number {
  let f = o.atime === 'noatime' ? MS.NOATIME : o.atime === 'strictatime' ? MS_MORE.STRICTATIME : MS_MORE.RELATIME;
  if (!o.suid) f |= MS.NOSUID;
  if (!o.dev) f |= MS.NODEV;
  if (o.readOnly) f |= MS.RDONLY;
  if (o.noexec) f |= MS.NOEXEC;
  if (o.sync) f |= MS.SYNCHRONOUS;
  if (o.dirsync) f |= MS.DIRSYNC;
  if (o.nodiratime) f |= MS.NODIRATIME;
  if (o.lazytime) f |= MS_MORE.LAZYTIME;
  if (o.nosymfollow) f |= MS_MORE.NOSYMFOLLOW;
  return f;
}

/**
 * The flag words for fusermount3 (its mount_flags table). `uid` is the real uid
 * fusermount3 will see: for anyone but root it drops suid and dev with only a warning
 * ("unsafe option ... ignored"), so asking for them is refused here, naming the option.
 * relatime is the kernel's default and is not spelled out (fusermount3 3.14.0 does not
 * know the word); a word this fusermount3 does not know fails in runFusermount, named.
 */
export function fusermountFlags(o: ResolvedMountOptions, uid: number): string[] {
  for (const key of ['dev', 'suid'] as const) {
    if (o[key] && uid !== 0) {
      throw new OptionError(key, `needs root: fusermount3 mounts nosuid,nodev for ordinary users (it would ignore ${key}); ` +
        'mount as root to use it', 'EPERM');
    }
  }
  const w = [o.suid ? 'suid' : 'nosuid', o.dev ? 'dev' : 'nodev'];
  if (o.readOnly) w.push('ro');
  if (o.noexec) w.push('noexec');
  if (o.sync) w.push('sync');
  if (o.dirsync) w.push('dirsync');
  if (o.atime !== 'relatime') w.push(o.atime);
  if (o.nodiratime) w.push('nodiratime');
  if (o.lazytime) w.push('lazytime');
  if (o.nosymfollow) w.push('nosymfollow');
  return w;
}

/** Our option key for a fusermount3 flag word, where the two differ (errors name the option). */
const KEY_OF_WORD: Record<string, string> = { noatime: 'atime', strictatime: 'atime' };

/** A mounted /dev/fuse: the fd the session reads and where it is mounted. */
export interface MountedDevice {
  /** The /dev/fuse fd the kernel sends this mount's requests on. */
  fd: number;
  /** The absolute path of the mount point ("/dev/fd/N" for a handed-over fd). */
  mountpoint: string;
  /** 'fd': a /dev/fuse fd handed to us, mounted by someone else (mountpoint "/dev/fd/N"). */
  method: 'mount' | 'fusermount' | 'fd';
}

/** The fd of a mountpoint spelled "/dev/fd/N" (libfuse's convention for a handed-over
 * /dev/fuse fd), else undefined. */
export function handedFd(mountpoint: string): number | undefined {
  const m = /^\/dev\/fd\/(\d+)$/.exec(mountpoint);
  return m ? Number(m[1]) : undefined;
}

/** The character device number of /dev/fuse (10, 229), as stat's rdev gives it. */
const FUSE_RDEV = (10 << 8) | 229;

/**
 * A /dev/fuse fd a privileged manager opened and mounted (mount(2) with fd=N) and handed
 * to us: checked to be /dev/fuse, made non-blocking. Nothing is mounted here and nothing
 * is unmounted at the end: the manager owns the mount.
 */
export function handedDevice(fd: number): MountedDevice {
  const where = `/dev/fd/${fd}`;
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    throw mountError('EBADF', where, `${where}: fd ${fd} is not open in this process (the manager must pass its /dev/fuse fd as fd ${fd})`, 'fstat');
  }
  if (!st.isCharacterDevice() || st.rdev !== FUSE_RDEV) {
    throw mountError('EINVAL', where, `${where}: fd ${fd} is not /dev/fuse (pass the fd the manager opened on /dev/fuse and mounted with fd=N)`, 'fstat');
  }
  native.setNonBlocking(fd, true);
  return { fd, mountpoint: where, method: 'fd' };
}

/** Mounts with mount(2): needs CAP_SYS_ADMIN. */
function mountSyscall(mnt: string, o: ResolvedMountOptions): MountedDevice {
  let fd: number;
  try {
    fd = native.openDevice('/dev/fuse');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EPERM') {
      err.message = `${err.code}: cannot open /dev/fuse (${err.code === 'EACCES' ? 'Permission denied' : 'Operation not permitted'}): ` +
        'mount(2) needs CAP_SYS_ADMIN (run as root, or use mountMethod "fusermount" with fusermount3 installed)';
    } else if (err.code === 'ENOENT') {
      err.message = 'ENOENT: /dev/fuse does not exist (load the fuse module: modprobe fuse; in a container, pass the device in: --device /dev/fuse)';
    }
    throw err;
  }
  try {
    const data = [`fd=${fd}`, ...dataOptions(o, true)].join(',');
    native.mount(o.fsname, mnt, `fuse.${o.subtype}`, mountFlags(o), data);
  } catch (e) {
    closeSync(fd);
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EPERM') {
      err.message = `EPERM: mount(2) of ${mnt} is not permitted: it needs CAP_SYS_ADMIN ` +
        '(run as root, or use mountMethod "fusermount" with fusermount3 installed)';
    }
    throw err;
  }
  return { fd, mountpoint: mnt, method: 'mount' };
}

function fusermountPath(o: { fusermount?: string }): string {
  return o.fusermount ?? 'fusermount3';
}

/** What to do about fusermount3's refusals that a user can fix (its texts as of fuse 3.14). */
const FUSERMOUNT_ADVICE: [RegExp, string][] = [
  [/failed to open \/dev\/fuse: Permission denied/, 'this user may not open /dev/fuse (fusermount3 opens it as the user): ' +
    'make it mode 0666, as the fuse3 package\'s udev rule does, or mount as root'],
  [/allow_other only allowed if 'user_allow_other'/, 'add the line user_allow_other to /etc/fuse.conf, or mount without allow_other'],
  [/no write access to mountpoint/, 'mount on a directory this user owns or may write to'],
];

/** Runs fusermount3 and waits; rejects with its stderr. */
function runFusermount(args: string[], o: { fusermount?: string } = {}, commFd?: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'ignore', 'pipe'];
    if (commFd !== undefined) stdio.push(commFd);
    const env = { ...process.env, ...(commFd !== undefined ? { _FUSE_COMMFD: '3' } : {}) };
    const child = spawn(fusermountPath(o), args, { stdio, env });
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    child.on('error', (e) => reject(mountError('ENOENT', args[args.length - 1],
      `cannot run ${fusermountPath(o)} (${e.message}); install fuse3 or mount as root`, 'spawn')));
    child.on('exit', (code, signal) => {
      if (code === 0) return resolvePromise();
      const text = err.trim() || `exited with ${code ?? signal}`;
      // fusermount3 exits on a flag word its version does not know (strictatime,
      // lazytime and nodiratime came and went between 3.14 and 3.18).
      const unknown = /unknown option '([^']*)'/.exec(text);
      if (unknown) {
        return reject(new OptionError(KEY_OF_WORD[unknown[1]] ?? unknown[1], `${unknown[1]}: ${fusermountPath(o)} does not know it ` +
          `(${text}); mount as root (mount(2), mountMethod "mount") to use it`));
      }
      // Match strerror() texts: EACCES is "Permission denied", EPERM "Operation not permitted".
      const code2 = /permission denied|no write access/i.test(text) ? 'EACCES' : /not permitted|not allowed|only allowed if/i.test(text) ? 'EPERM'
        : /no such file/i.test(text) ? 'ENOENT' : /not a directory/i.test(text) ? 'ENOTDIR'
          : /busy/i.test(text) ? 'EBUSY' : /not connected/i.test(text) ? 'ENOTCONN' : /not found in \/etc\/mtab/.test(text) ? 'EINVAL' : 'EIO';
      const prefixed = /^fusermount3?:/.test(text) ? text : `${fusermountPath(o)}: ${text}`;
      const advice = FUSERMOUNT_ADVICE.find(([re]) => re.test(text))?.[1];
      reject(mountError(code2, args[args.length - 1], advice ? `${prefixed}: ${advice}` : prefixed, 'fusermount3'));
    });
  });
}

function runFusermountSync(args: string[]): void {
  execFileSync('fusermount3', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Mounts through fusermount3 (works without privileges when /dev/fuse is 0666). */
async function mountFusermount(mnt: string, o: ResolvedMountOptions): Promise<MountedDevice> {
  const flags = fusermountFlags(o, process.getuid!()); // before anything is opened: it may refuse
  const [mine, theirs] = native.socketpair();
  try {
    const opts = [`fsname=${o.fsname}`, `subtype=${o.subtype}`, ...flags, ...dataOptions(o, false)];
    const run = runFusermount(['-o', opts.join(','), '--', mnt], o, theirs);
    closeSync(theirs); // the child has its copy; EOF on `mine` once it exits
    await run;
    const fd = native.recvFd(mine);
    if (fd < 0) throw mountError('EIO', mnt, 'fusermount3 succeeded but sent no /dev/fuse fd');
    native.setNonBlocking(fd, true);
    return { fd, mountpoint: mnt, method: 'fusermount' };
  } finally {
    closeSync(mine);
  }
}

/** Mounts `mnt` (already checked) and returns the /dev/fuse fd; INIT is not yet answered. */
export async function mountDevice(mnt: string, o: ResolvedMountOptions): Promise<MountedDevice> {
  const method = o.mountMethod === 'auto' ? (process.geteuid?.() === 0 ? 'mount' : 'fusermount') : o.mountMethod;
  return method === 'mount' ? mountSyscall(mnt, o) : mountFusermount(mnt, o);
}

/** How `unmount` detaches a mount. */
export interface UnmountOptions {
  /** Detach now even if busy (MNT_DETACH / fusermount3 -z); the mount goes away when no longer used. */
  lazy?: boolean;
  /** 'mount' = umount2(2) (root), 'fusermount' = fusermount3 -u. Default: by effective uid. */
  method?: 'mount' | 'fusermount' | 'fd';
  /** Path of fusermount3 (default: found on PATH). */
  fusermount?: string;
}

/**
 * Unmounts `mountpoint`. A busy mount fails with EBUSY and a message that
 * says how to detach it lazily.
 */
export async function unmount(mountpoint: string, opts: UnmountOptions = {}): Promise<void> {
  const mnt = resolve(mountpoint);
  const method = opts.method === 'fd' || !opts.method ? (process.geteuid?.() === 0 ? 'mount' : 'fusermount') : opts.method;
  try {
    if (method === 'mount') native.umount2(mnt, opts.lazy ? MNT.DETACH : 0);
    else await runFusermount(opts.lazy ? ['-u', '-z', mnt] : ['-u', mnt], opts);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EBUSY') {
      const holders = mountHolders(mnt);
      (err as { holders?: unknown }).holders = holders;
      err.message = `EBUSY: ${mnt} is busy: ${holders.length ? `held by ${describeHolders(holders)}` : 'a process (in another pid or mount namespace, or a submount) uses it'}. ` +
        `Close those, or detach it lazily (it goes away when no longer used): \`tsfuse umount -l ${mnt}\` (lazy: true)`;
    } else if (err.code === 'EINVAL') {
      err.message = method === 'mount' ? `EINVAL: ${mnt} is not a mount point: nothing is mounted there to unmount (findmnt lists what is)`
        : `EINVAL: ${mnt} is not a mount point this user mounted (${err.message.replace(/^EINVAL: /, '')}): ` +
          'nothing to unmount, or another user\'s mount (root unmounts it)';
    } else if (err.code === 'ENOENT' && method === 'mount') {
      err.message = `ENOENT: ${mnt} does not exist: nothing to unmount there (check the path)`;
    }
    throw err;
  }
}
