/**
 * Mount options: the ones mount(8) users know (fsname, subtype, allow_other,
 * default_permissions, ro, max_read, …) and tsfuse's own. Checked once, with
 * a message that names the option; parsed from `-o a,b=c` strings for the CLI.
 */

export type MountMethod = 'auto' | 'mount' | 'fusermount';

export interface MountOptions {
  /** Source shown in /proc/mounts (`fsname=`). Default: the subtype. */
  fsname?: string;
  /** Type shown as `fuse.<subtype>`. Default "tsfuse". */
  subtype?: string;
  /** Let other users access the mount (`allow_other`). Default false. */
  allowOther?: boolean;
  /** Let the kernel check permissions from the mode bits (`default_permissions`). Default false. */
  defaultPermissions?: boolean;
  /** Mount read-only (`ro`). Default false. */
  readOnly?: boolean;
  /** Do not allow programs to be executed (`noexec`). Default false. */
  noexec?: boolean;
  /** Do not update access times (`noatime`). Default false. */
  noatime?: boolean;
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
  /** FUSE_REQUEST_TIMEOUT (7.43) in seconds: the kernel aborts the connection if a request is
   * not answered in time. 0 = none (default). */
  requestTimeout?: number;
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
  /** Milliseconds to wait for the kernel's INIT after mount(2). Default 10000. */
  initTimeout?: number;
}

export class OptionError extends Error {
  readonly code = 'EINVAL';
  constructor(readonly option: string, message: string) {
    super(`invalid option ${option}: ${message}`);
    this.name = 'OptionError';
  }
}

export const MAX_WRITE_LIMIT = 1024 * 1024;
const PAGE = 4096;

function int(o: Record<string, unknown>, key: string, min: number, max: number): void {
  const v = o[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new OptionError(key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
}

const BOOLEANS = ['allowOther', 'defaultPermissions', 'readOnly', 'noexec', 'noatime', 'cleanStale', 'overMount'] as const;
const KNOWN = new Set<string>([
  ...BOOLEANS, 'fsname', 'subtype', 'maxRead', 'maxWrite', 'maxReadahead', 'maxBackground',
  'congestionThreshold', 'requestTimeout', 'mountMethod', 'fusermount', 'initTimeout',
]);

/** Validated options with defaults filled in. */
export type ResolvedMountOptions = Required<Omit<MountOptions, 'maxReadahead' | 'fusermount' | 'maxBackground' | 'congestionThreshold'>> &
  Pick<MountOptions, 'maxReadahead' | 'fusermount' | 'maxBackground' | 'congestionThreshold'>;

/** Checks `opts` (throws OptionError naming the bad option) and fills in defaults. */
export function resolveMountOptions(opts: MountOptions = {}, extraKeys: readonly string[] = []): ResolvedMountOptions {
  const o = opts as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k) && !extraKeys.includes(k)) throw new OptionError(k, 'unknown option');
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
  int(o, 'initTimeout', 1, 3_600_000);
  if (opts.congestionThreshold !== undefined && opts.congestionThreshold > (opts.maxBackground ?? 12)) {
    throw new OptionError('congestionThreshold', `must not exceed maxBackground (${opts.maxBackground ?? 12})`);
  }
  if (opts.mountMethod !== undefined && !['auto', 'mount', 'fusermount'].includes(opts.mountMethod)) {
    throw new OptionError('mountMethod', `must be "auto", "mount" or "fusermount", got ${JSON.stringify(opts.mountMethod)}`);
  }
  const subtype = opts.subtype ?? 'tsfuse';
  return {
    fsname: opts.fsname ?? subtype,
    subtype,
    allowOther: opts.allowOther ?? false,
    defaultPermissions: opts.defaultPermissions ?? false,
    readOnly: opts.readOnly ?? false,
    noexec: opts.noexec ?? false,
    noatime: opts.noatime ?? false,
    maxRead: opts.maxRead ?? 0,
    maxWrite: opts.maxWrite ?? MAX_WRITE_LIMIT,
    maxReadahead: opts.maxReadahead,
    maxBackground: opts.maxBackground,
    congestionThreshold: opts.congestionThreshold,
    requestTimeout: opts.requestTimeout ?? 0,
    mountMethod: opts.mountMethod ?? 'auto',
    fusermount: opts.fusermount,
    cleanStale: opts.cleanStale ?? false,
    overMount: opts.overMount ?? false,
    initTimeout: opts.initTimeout ?? 10_000,
  };
}

/** `-o` names (as mount(8) and libfuse spell them) → our option keys. */
const DASH_O: Record<string, { key: keyof MountOptions; kind: 'flag' | 'string' | 'int' }> = {
  fsname: { key: 'fsname', kind: 'string' },
  subtype: { key: 'subtype', kind: 'string' },
  allow_other: { key: 'allowOther', kind: 'flag' },
  default_permissions: { key: 'defaultPermissions', kind: 'flag' },
  ro: { key: 'readOnly', kind: 'flag' },
  noexec: { key: 'noexec', kind: 'flag' },
  noatime: { key: 'noatime', kind: 'flag' },
  max_read: { key: 'maxRead', kind: 'int' },
  max_write: { key: 'maxWrite', kind: 'int' },
  max_readahead: { key: 'maxReadahead', kind: 'int' },
  max_background: { key: 'maxBackground', kind: 'int' },
  congestion_threshold: { key: 'congestionThreshold', kind: 'int' },
  request_timeout: { key: 'requestTimeout', kind: 'int' },
  clean_stale: { key: 'cleanStale', kind: 'flag' },
  over_mount: { key: 'overMount', kind: 'flag' },
};

/**
 * Parses a mount(8)-style option string ("allow_other,fsname=x,max_read=131072").
 * `rw` is accepted (the default); `noNAME` turns the flag NAME off. Unknown names throw OptionError naming them,
 * unless `extra` knows them (their raw values are returned in `rest`).
 */
export function parseOptionString(s: string, extra: readonly string[] = []): { options: MountOptions; rest: Record<string, string | true> } {
  const options: Record<string, unknown> = {};
  const rest: Record<string, string | true> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (name === 'rw') continue;
    // "noNAME" turns a flag off (nodefault_permissions, noallow_other); noexec/noatime are flags of their own.
    const negated = !DASH_O[name] && name.startsWith('no') && DASH_O[name.slice(2)]?.kind === 'flag' ? DASH_O[name.slice(2)] : undefined;
    if (negated) {
      if (value !== undefined) throw new OptionError(name, 'takes no value');
      options[negated.key] = false;
      continue;
    }
    const d = DASH_O[name];
    if (!d) {
      if (extra.includes(name)) { rest[name] = value ?? true; continue; }
      throw new OptionError(name, `unknown mount option (known: ${[...Object.keys(DASH_O), ...extra].join(', ')})`);
    }
    if (d.kind === 'flag') {
      if (value !== undefined) throw new OptionError(name, 'takes no value');
      options[d.key] = true;
    } else if (value === undefined || value === '') {
      throw new OptionError(name, 'needs a value (name=value)');
    } else if (d.kind === 'int') {
      if (!/^\d+$/.test(value)) throw new OptionError(name, `must be a non-negative integer, got "${value}"`);
      options[d.key] = Number(value);
    } else {
      options[d.key] = value;
    }
  }
  return { options: options as MountOptions, rest };
}
