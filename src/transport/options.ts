/**
 * Mount options: the ones mount(8) users know (fsname, subtype, allow_other,
 * default_permissions, ro, max_read, …) and tsfuse's own. Checked once, with
 * a message that names the option; parsed from `-o a,b=c` strings for the CLI.
 */

export type MountMethod = 'auto' | 'mount' | 'fusermount';

/**
 * How the kernel is asked to treat access times on the mount (`relatime`,
 * `strictatime`, `noatime`: the MS_* flags of mount(2)).
 *
 * FUSE itself never updates an access time: the kernel marks every FUSE inode
 * S_NOATIME (fs/fuse/inode.c, fuse_iget), so atime is whatever the server's own
 * I/O does. The flag is shown in /proc/mounts and handed to the filesystem
 * (Connection.options.atime); a filesystem that mirrors another one (the
 * passthrough) decides what to do with it. Reads the kernel answers from its
 * page cache never reach the server at all.
 */
export type AtimeMode = 'relatime' | 'strictatime' | 'noatime';

/** Options of a mount: what mount(2)/fusermount3 are given, and limits negotiated in INIT. */
export interface MountOptions {
  /** Source shown in /proc/mounts (`fsname=`). Default: the subtype. */
  fsname?: string;
  /** Type shown as `fuse.<subtype>`. Default "tsfuse". */
  subtype?: string;
  /** Let other users access the mount (`allow_other`). Default false. */
  allowOther?: boolean;
  /** Let the kernel check permissions from the mode bits (`default_permissions`). Default false. */
  defaultPermissions?: boolean;
  /** Mount read-only (`ro`; MS_RDONLY). Default false (`rw`). */
  readOnly?: boolean;
  /** Honour device nodes (`dev`): opening a char/block device on the mount opens the device.
   * Default false (`nodev`: such an open fails with EACCES), as fusermount3 forces for
   * ordinary users. Needs root: mount(2), or fusermount3 run by root. */
  dev?: boolean;
  /** Honour setuid/setgid bits and file capabilities on exec (`suid`). Default false
   * (`nosuid`), as fusermount3 forces for ordinary users. Needs root, as `dev`. */
  suid?: boolean;
  /** Do not allow programs to be executed (`noexec`; MS_NOEXEC). Default false (`exec`). */
  noexec?: boolean;
  /** Access-time updates (see AtimeMode). Default 'relatime', the kernel's default. */
  atime?: AtimeMode;
  /** Same as `atime: 'noatime'` (kept for existing callers). */
  noatime?: boolean;
  /** Do not update directory access times (`nodiratime`; MS_NODIRATIME). Default false. */
  nodiratime?: boolean;
  /** Keep timestamp updates in memory only (`lazytime`; MS_LAZYTIME). Default false. Not
   * through fusermount3, which does not know the flag. */
  lazytime?: boolean;
  /** Writes are synchronous (`sync`; MS_SYNCHRONOUS). Default false (`async`). */
  sync?: boolean;
  /** Directory changes are synchronous (`dirsync`; MS_DIRSYNC). Default false. */
  dirsync?: boolean;
  /** Do not follow symlinks on this mount in path lookups (`nosymfollow`; MS_NOSYMFOLLOW,
   * Linux 5.10). Default false. */
  nosymfollow?: boolean;
  /** Largest READ request in bytes (`max_read`); 0 = kernel default. */
  maxRead?: number;
  /** Largest WRITE request in bytes: 4096 … 1 MiB (FUSE_MAX_PAGES × 4 KiB). Default 1 MiB. */
  maxWrite?: number;
  /** Readahead in bytes; default: what the kernel offers. */
  maxReadahead?: number;
  /** Background (async) requests the kernel keeps in flight: 1 … 65535. Default: kernel's (12). */
  maxBackground?: number;
  /** Background requests at which the kernel reports congestion: ≤ maxBackground. Default: kernel's. */
  congestionThreshold?: number;
  /** FUSE_REQUEST_TIMEOUT (7.43) in seconds, 0 … 65535: the kernel aborts the whole connection
   * when a request is not answered in time (it checks only every so often, 15 s in Linux
   * 6.14+, so the abort can come tens of seconds late): every waiting caller gets
   * ECONNABORTED, then every access ENOTCONN until the mount is unmounted, and the session
   * ends. A last resort against a wedged server; for one slow request use `handlerTimeout`,
   * which fails that request alone. Where the kernel does not offer it (before 6.14) there
   * is none, and one line says so; fs.fuse.max_request_timeout caps it, and with 0 the
   * kernel applies fs.fuse.default_request_timeout (0 unless set). 0 = none (default). */
  requestTimeout?: number;
  /**
   * Seconds (fractions allowed, 0 … 65535) a handler may take: a request whose handler's
   * promise has not settled by then is answered EIO, its context's `signal` aborted and one
   * line logged (opcode, node, unique); a result that comes later is logged and dropped, and
   * what it carried is undone as for an undelivered reply (a lookup forgotten, an opened
   * handle released). Unlike `requestTimeout` the connection and every other request carry
   * on. It also bounds how long a caller killed while it waits stays in state D (the kernel
   * waits for the answer to a request the server has read). A handler that blocks
   * synchronously (a loop, a blocking syscall) stops the event loop and cannot be timed
   * out. 0 = off (default), as in libfuse and go-fuse, which have no such timer:
   * slow backends (network sources, a disk spinning up, a big fsync) legitimately take long,
   * and an EIO to a caller whose operation then completes anyway is worse than waiting.
   * `-o handler_timeout=S`.
   */
  handlerTimeout?: number;
  /** How to mount: `mount` = mount(2) (needs CAP_SYS_ADMIN), `fusermount` = the setuid
   * fusermount3 helper, `auto` (default) = mount(2) when root, else fusermount3. */
  mountMethod?: MountMethod;
  /** Path of fusermount3 (default: found on PATH). */
  fusermount?: string;
  /** A mountpoint left dead by a crashed server ("Transport endpoint is not connected")
   * is detached first instead of failing with ENOTCONN. Default false. */
  cleanStale?: boolean;
  /** Allow mounting over a directory that already is a mount point (stacking). Default
   * false: stacked mounts are how CSI drivers lost volumes (MISSION.md, point 1). */
  overMount?: boolean;
  /**
   * FUSE over io_uring (Linux 6.14+, needs the fuse module parameter enable_uring=Y when
   * the session starts): requests come through one io_uring queue per CPU instead of
   * read(2) on /dev/fuse (FORGET and INTERRUPT still come that way). Where the kernel does
   * not offer it, the session reads /dev/fuse and one line says why. Default false.
   */
  ioUring?: boolean;
  /** Milliseconds to wait for the kernel's INIT after mount(2). Default 10000. */
  initTimeout?: number;
}

/** A mount option that is invalid, or not allowed to this caller; the message names the option. */
export class OptionError extends Error {
  /** EINVAL for a bad name or value; EPERM for an option this caller may not use (dev/suid without root). */
  readonly code: 'EINVAL' | 'EPERM';
  /** What is wrong, without the option's name (the message is "invalid option NAME: reason"). */
  readonly reason: string;
  /** @param option - The option's name, as the caller spelled it (e.g. 'maxWrite', 'allow_other'). */
  constructor(readonly option: string, reason: string, code: 'EINVAL' | 'EPERM' = 'EINVAL') {
    super(`invalid option ${option}: ${reason}`);
    this.reason = reason;
    this.name = 'OptionError';
    this.code = code;
  }
}

/** The largest maxWrite accepted (1 MiB), and the default: the kernel's limit with FUSE_MAX_PAGES (256 pages). */
export const MAX_WRITE_LIMIT = 1024 * 1024;
const PAGE = 4096;
const ATIME_MODES: readonly AtimeMode[] = ['relatime', 'strictatime', 'noatime'];

function int(o: Record<string, unknown>, key: string, min: number, max: number): void {
  const v = o[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OptionError(key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
}

const BOOLEANS = [
  'allowOther', 'defaultPermissions', 'readOnly', 'dev', 'suid', 'noexec', 'noatime', 'nodiratime', 'lazytime',
  'sync', 'dirsync', 'nosymfollow', 'cleanStale', 'overMount', 'ioUring',
] as const;
const KNOWN = new Set<string>([
  ...BOOLEANS, 'fsname', 'subtype', 'atime', 'maxRead', 'maxWrite', 'maxReadahead', 'maxBackground',
  'congestionThreshold', 'requestTimeout', 'handlerTimeout', 'mountMethod', 'fusermount', 'initTimeout',
]);

/** Keys that stay optional once resolved (no default: the kernel's or PATH's). */
type Unset = 'maxReadahead' | 'fusermount' | 'maxBackground' | 'congestionThreshold';

/** Validated options with defaults filled in; `noatime` is folded into `atime`. */
export type ResolvedMountOptions = Required<Omit<MountOptions, Unset | 'noatime'>> & Pick<MountOptions, Unset>;

/** Checks `opts` (throws OptionError naming the bad option) and fills in defaults. */
export function resolveMountOptions(opts: MountOptions = {}, extraKeys: readonly string[] = []): ResolvedMountOptions {
  const o = opts as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k) && !extraKeys.includes(k)) throw new OptionError(k, `unknown option (known: ${[...KNOWN, ...extraKeys].join(', ')})`);
  }
  for (const k of BOOLEANS) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new OptionError(k, `must be true or false, got ${JSON.stringify(o[k])}`);
  }
  for (const k of ['fsname', 'subtype', 'fusermount'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '' || /[,\s\0]/.test(v)) {
      throw new OptionError(k, `must be a non-empty string without commas, spaces or NULs, got ${JSON.stringify(v)}`);
    }
  }
  int(o, 'maxRead', 0, 0x7fffffff);
  int(o, 'maxWrite', PAGE, MAX_WRITE_LIMIT);
  int(o, 'maxReadahead', 0, 0x7fffffff);
  int(o, 'maxBackground', 1, 65535);
  int(o, 'congestionThreshold', 1, 65535);
  int(o, 'requestTimeout', 0, 65535);
  const ht = o.handlerTimeout;
  if (ht !== undefined && !(typeof ht === 'number' && ht >= 0 && ht <= 65535)) {
    throw new OptionError('handlerTimeout', `must be a number of seconds from 0 to 65535 (fractions allowed), got ${JSON.stringify(ht)}`);
  }
  int(o, 'initTimeout', 1, 3_600_000);
  if (opts.congestionThreshold !== undefined && opts.congestionThreshold > (opts.maxBackground ?? 12)) {
    throw new OptionError('congestionThreshold', `must not exceed the background limit (maxBackground, max_background: ${opts.maxBackground ?? 12})`);
  }
  if (opts.mountMethod !== undefined && !['auto', 'mount', 'fusermount'].includes(opts.mountMethod)) {
    throw new OptionError('mountMethod', `must be "auto", "mount" or "fusermount", got ${JSON.stringify(opts.mountMethod)}`);
  }
  if (opts.atime !== undefined && !ATIME_MODES.includes(opts.atime)) {
    throw new OptionError('atime', `must be "relatime", "strictatime" or "noatime", got ${JSON.stringify(opts.atime)}`);
  }
  if (opts.noatime && opts.atime !== undefined && opts.atime !== 'noatime') {
    throw new OptionError('noatime', `contradicts atime: ${JSON.stringify(opts.atime)} (noatime: true is atime: "noatime")`);
  }
  const subtype = opts.subtype ?? 'tsfuse';
  return {
    fsname: opts.fsname ?? subtype,
    subtype,
    allowOther: opts.allowOther ?? false,
    defaultPermissions: opts.defaultPermissions ?? false,
    readOnly: opts.readOnly ?? false,
    dev: opts.dev ?? false,
    suid: opts.suid ?? false,
    noexec: opts.noexec ?? false,
    atime: opts.atime ?? (opts.noatime ? 'noatime' : 'relatime'),
    nodiratime: opts.nodiratime ?? false,
    lazytime: opts.lazytime ?? false,
    sync: opts.sync ?? false,
    dirsync: opts.dirsync ?? false,
    nosymfollow: opts.nosymfollow ?? false,
    maxRead: opts.maxRead ?? 0,
    maxWrite: opts.maxWrite ?? MAX_WRITE_LIMIT,
    maxReadahead: opts.maxReadahead,
    maxBackground: opts.maxBackground,
    congestionThreshold: opts.congestionThreshold,
    requestTimeout: opts.requestTimeout ?? 0,
    handlerTimeout: opts.handlerTimeout ?? 0,
    mountMethod: opts.mountMethod ?? 'auto',
    fusermount: opts.fusermount,
    cleanStale: opts.cleanStale ?? false,
    overMount: opts.overMount ?? false,
    ioUring: opts.ioUring ?? false,
    initTimeout: opts.initTimeout ?? 10_000,
  };
}

// ---- -o strings ----------------------------------------------------------------

/**
 * A word of mount(8)'s generic vocabulary: what it does to the options parsed so far.
 * Later words override earlier ones, as in mount(8) ("nodev,dev" is dev).
 */
const WORDS: Record<string, (o: MountOptions) => void> = {
  ro: (o) => { o.readOnly = true; },
  rw: (o) => { o.readOnly = false; },
  dev: (o) => { o.dev = true; },
  nodev: (o) => { o.dev = false; },
  suid: (o) => { o.suid = true; },
  nosuid: (o) => { o.suid = false; },
  exec: (o) => { o.noexec = false; },
  noexec: (o) => { o.noexec = true; },
  sync: (o) => { o.sync = true; },
  async: (o) => { o.sync = false; },
  dirsync: (o) => { o.dirsync = true; },
  noatime: (o) => { o.atime = 'noatime'; },
  // mount(8): "atime: do not use the noatime feature" (clears MS_NOATIME only).
  atime: (o) => { if (o.atime === 'noatime') o.atime = 'relatime'; },
  relatime: (o) => { o.atime = 'relatime'; },
  // Clears MS_RELATIME, which the kernel has applied by default since 2.6.30 unless
  // noatime or strictatime is given: on its own it changes nothing (as with mount(8)).
  norelatime: () => {},
  strictatime: (o) => { o.atime = 'strictatime'; },
  nostrictatime: (o) => { if (o.atime === 'strictatime') o.atime = 'relatime'; },
  diratime: (o) => { o.nodiratime = false; },
  nodiratime: (o) => { o.nodiratime = true; },
  lazytime: (o) => { o.lazytime = true; },
  nolazytime: (o) => { o.lazytime = false; },
  symfollow: (o) => { o.nosymfollow = false; },
  nosymfollow: (o) => { o.nosymfollow = true; },
  // fstab words for mount(8) itself. "defaults" is rw,suid,dev,exec,async in mount(8)'s
  // words, i.e. the kernel's defaults; here it changes nothing, so tsfuse's safe
  // defaults (nosuid,nodev) stay: ask for dev and suid by name.
  defaults: () => {},
  auto: () => {},
  noauto: () => {},
  nouser: () => {},
  _netdev: () => {},
  nofail: () => {},
  // mount(8): user and users imply noexec,nosuid,nodev, owner and group nosuid,nodev,
  // unless later words say otherwise ("user,exec,dev,suid").
  user: (o) => { o.noexec = true; o.suid = false; o.dev = false; },
  users: (o) => { o.noexec = true; o.suid = false; o.dev = false; },
  owner: (o) => { o.suid = false; o.dev = false; },
  group: (o) => { o.suid = false; o.dev = false; },
};

/** `-o name=value` and tsfuse's own flags (as libfuse spells them) → our option keys. */
const VALUED: Record<string, { key: keyof MountOptions; kind: 'flag' | 'string' | 'int' | 'seconds' }> = {
  fsname: { key: 'fsname', kind: 'string' },
  subtype: { key: 'subtype', kind: 'string' },
  allow_other: { key: 'allowOther', kind: 'flag' },
  default_permissions: { key: 'defaultPermissions', kind: 'flag' },
  max_read: { key: 'maxRead', kind: 'int' },
  max_write: { key: 'maxWrite', kind: 'int' },
  max_readahead: { key: 'maxReadahead', kind: 'int' },
  max_background: { key: 'maxBackground', kind: 'int' },
  congestion_threshold: { key: 'congestionThreshold', kind: 'int' },
  request_timeout: { key: 'requestTimeout', kind: 'int' },
  handler_timeout: { key: 'handlerTimeout', kind: 'seconds' },
  clean_stale: { key: 'cleanStale', kind: 'flag' },
  over_mount: { key: 'overMount', kind: 'flag' },
  io_uring: { key: 'ioUring', kind: 'flag' },
};

/** Every name parseOptionString knows (for messages and the CLI's usage). */
export const OPTION_NAMES: readonly string[] = [...Object.keys(VALUED), ...Object.keys(WORDS)];

const WORD_OF_KEY: Record<string, string> = {
  ...Object.fromEntries(Object.entries(VALUED).map(([word, d]) => [d.key, word])), readOnly: 'ro',
};

/** The `-o` spelling of MountOptions key `key` (max_write for maxWrite, ro for readOnly; dev is dev). */
export function optionWord(key: string): string {
  return WORD_OF_KEY[key] ?? key;
}

/**
 * Parses a mount(8)-style option string ("allow_other,fsname=x,max_read=131072,dev,suid").
 * mount(8)'s generic words (ro/rw, dev/nodev, suid/nosuid, exec/noexec, sync/async, dirsync,
 * atime/noatime/relatime/strictatime, diratime/nodiratime, lazytime, symfollow) set the
 * matching option, later words winning; fstab words (defaults, auto, noauto, nouser,
 * _netdev, nofail, x-*, comment=) are accepted and change nothing; user/users/owner/group
 * imply what mount(8) says they imply. `noNAME` turns tsfuse's own flag NAME off
 * (nodefault_permissions). Unknown names throw OptionError naming them, unless `extra`
 * knows them (their raw values are returned in `rest`).
 */
export function parseOptionString(s: string, extra: readonly string[] = []): { options: MountOptions; rest: Record<string, string | true> } {
  const options: MountOptions = {};
  const set = options as Record<string, unknown>;
  const rest: Record<string, string | true> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    // Words for fstab and systemd (x-systemd.automount, comment=…): not the filesystem's.
    if (name.startsWith('x-') || name === 'comment') continue;
    const word = WORDS[name];
    if (word) {
      if (value !== undefined) throw new OptionError(name, 'takes no value');
      word(options);
      continue;
    }
    // "noNAME" turns one of our flags off (nodefault_permissions, noallow_other).
    const negated = !VALUED[name] && name.startsWith('no') && VALUED[name.slice(2)]?.kind === 'flag' ? VALUED[name.slice(2)] : undefined;
    if (negated) {
      if (value !== undefined) throw new OptionError(name, 'takes no value');
      set[negated.key] = false;
      continue;
    }
    const d = VALUED[name];
    if (!d) {
      if (extra.includes(name)) { rest[name] = value ?? true; continue; }
      throw new OptionError(name, `unknown mount option (known: ${[...OPTION_NAMES, ...extra].join(', ')})`);
    }
    if (d.kind === 'flag') {
      if (value !== undefined) throw new OptionError(name, 'takes no value');
      set[d.key] = true;
    } else if (value === undefined || value === '') {
      throw new OptionError(name, 'needs a value (name=value)');
    } else if (d.kind === 'int') {
      if (!/^\d+$/.test(value)) throw new OptionError(name, `must be a non-negative integer, got "${value}"`);
      set[d.key] = Number(value);
    } else if (d.kind === 'seconds') {
      if (!/^\d+(\.\d+)?$/.test(value)) throw new OptionError(name, `must be a number of seconds ≥ 0, got "${value}"`);
      set[d.key] = Number(value);
    } else {
      set[d.key] = value;
    }
  }
  return { options, rest };
}
