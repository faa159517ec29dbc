#!/usr/bin/env node
/**
 * The `tsfuse` command.
 *   tsfuse passthrough SRC MNT [-o OPTS] [--handles MODE] [-d] [-f]   mirror SRC on MNT
 *   tsfuse hello MNT [-o OPTS] [-d] [-f]    mount the hello example
 *   tsfuse memfs MNT [-o OPTS] [-d] [-f]    mount the in-memory read-write example
 *     (in the background, returning once the mount serves; -f: in the foreground)
 *   tsfuse mount-helper SRC MNT [-o OPTS]   what mount(8) runs for type fuse.tsfuse
 *   tsfuse install-helper [--dir DIR]       writes DIR/mount.fuse.tsfuse (default /sbin)
 *   tsfuse demo [SRC [MNT]]             the README's run command: passthrough of a demo directory
 *   tsfuse umount [-l] MNT              unmount (lazily with -l); cleans dead mounts too
 *   tsfuse conformance MNT [--group NAME]   POSIX conformance suite against any mounted filesystem
 *   tsfuse vfs MNT --at /a=passthrough:SRC --at /m=memfs [--config FILE]   several filesystems under one mount
 *   tsfuse vfs-attach MNT /c=passthrough:SRC | vfs-detach MNT /c [--force] | vfs-list MNT   while it serves
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSupervisor, sdNotify, startDaemon } from '../api/index.js';
import { hello } from '../../examples/hello.js';
import { memfs } from '../../examples/memfs.js';
import { handedDevice, handedFd, OptionError, optionWord, parseOptionString, resolveMountOptions, unmount, type MountOptions } from '../transport/index.js';
import { Passthrough, type InodeHandleMode } from '../passthrough/index.js';
import { serveForeground } from './serve.js';
import type { FileSystem, SessionOptions } from '../api/index.js';
import { runConformanceCli } from './conformance/index.js';
import { controlPath, controlRequest, serveControl, Vfs, type BackendOptions } from '../vfs/index.js';
import { getgrnam } from './groups.js';

const USAGE = `usage:
  tsfuse passthrough SRC MNT [-o OPTIONS] [--handles never|prefer|mandatory] [-d] [-f]
                                       mirror directory SRC on MNT
  tsfuse hello MNT [-o OPTIONS] [-d] [-f]   mount the hello example on MNT
  tsfuse memfs MNT [-o OPTIONS] [-d] [-f]   mount the in-memory read-write example on MNT
      These return once the mount serves (INIT answered), leaving the server in the
      background; they exit non-zero with the reason, leaving nothing mounted, if it cannot.
      MNT may be /dev/fd/N: serve a /dev/fuse fd a privileged manager opened and mounted.
    -f, --foreground      stay attached (Ctrl-C unmounts); systemd Type=notify gets READY=1
    --timeout SECONDS     give up a background start after this long (default 30)
    --log FILE            the background server's output (default /dev/null)
    --supervise           crash takeover: a supervisor keeps the /dev/fuse fd and restarts a
                          server that dies; the new one restores the node and file tables
                          from a journal and carries on without unmounting
    --max-restarts N      supervised: give up (detach the mount) when the server died more
                          than N times within a minute (default 10)
  tsfuse mount-helper SRC MNT [-o OPTIONS]   what mount(8) runs for \`mount -t fuse.tsfuse SRC MNT\`
  tsfuse install-helper [--dir DIR]    write DIR/mount.fuse.tsfuse for mount(8) and fstab (default /sbin)
  tsfuse demo [SRC [MNT]]              passthrough of SRC (default: a built-in demo directory,
                                       ${join(tmpdir(), 'tsfuse-demo-src')}) on MNT (default ${join(tmpdir(), 'tsfuse-demo')})
  tsfuse umount [-l] MNT               unmount MNT (-l: lazily); a busy mount lists who holds it
  tsfuse conformance MNT [--group NAME]   run the POSIX conformance suite against the filesystem mounted on MNT
  tsfuse vfs MNT [--at PATH=FS[,WORD…]]… [--config FILE] [-o OPTIONS] [-f] [-d] [--supervise]
                                       several filesystems under one mount, below a read-only root
      FS: passthrough:DIR | memfs | hello.  WORDs: ro, entry_timeout=S, attr_timeout=S, timeout=S,
      default_permissions (the VFS checks mode bits for this one; the mount's own
      default_permissions, on by default, checks for all: -o nodefault_permissions to leave it
      to each). --config FILE: {"mounts": [{"path": "/a", "fs": "passthrough:/srv/a",
      "readOnly": false, "entryTimeout": 1, "attrTimeout": 1, "defaultPermissions": false}]}
      --control SOCK        the control socket (default: /run/tsfuse-vfs/HASH/control.sock, root-only)
      --control-group NAME  members of group NAME may use it too (mode 0660)
  tsfuse vfs-attach MNT PATH=FS[,WORD…] [--control SOCK]   attach while mounted
  tsfuse vfs-detach MNT PATH [--force] [--control SOCK]    detach (busy: refused unless --force;
                                       then what is still open inside answers ESTALE)
  tsfuse vfs-list MNT [--control SOCK]   the attached filesystems: PATH INDEX FS

options (-o, comma-separated, as mount(8); later words win):
  fsname=NAME subtype=NAME allow_other default_permissions max_read=N max_write=N max_readahead=N
  max_background=N congestion_threshold=N request_timeout=SECONDS over_mount
  handler_timeout=SECONDS (a handler not settled by then is answered EIO, its late result dropped
    and logged; default 0 = off. request_timeout is the kernel's: when it fires it aborts the mount)
  clean_stale (on in the CLI: a dead mount a crashed server left is detached, with a message; noclean_stale)
  mount(8) flags: ro rw dev nodev suid nosuid exec noexec sync async dirsync relatime strictatime
    noatime atime diratime nodiratime lazytime symfollow nosymfollow   (default: rw,nosuid,nodev,
    relatime; dev and suid need root: fusermount3 forces nosuid,nodev on others)
  fstab words, accepted and changing nothing: defaults auto noauto nouser _netdev nofail x-* comment=
    (user, users: noexec,nosuid,nodev; owner, group: nosuid,nodev — unless later words say otherwise)
  noNAME turns flag NAME off (nodefault_permissions)
  caching and fast paths (server options, not mount(2)'s):
    entry_timeout=SEC attr_timeout=SEC (default 1) timeout=SEC (both) negative_timeout=SEC (default 0)
    threads=N   hello only: N threads, each on its own clone of the /dev/fuse fd
    io_uring    FUSE over io_uring (Linux 6.14+ with the fuse module's enable_uring=Y; else /dev/fuse)
    passthrough only: kernel_passthrough (the kernel reads and writes the source files itself;
      needs CAP_SYS_ADMIN, Linux 6.9+), writeback_cache (the kernel gathers writes), keep_cache
      (default on: an unchanged file keeps its cached pages across opens; nokeep_cache)
  -d   debug: log every request and reply
  --handles MODE   passthrough: key inodes by file handles (prefer|mandatory) instead of one fd each
passthrough defaults: default_permissions on (nodefault_permissions: the source filesystem checks,
  as the caller); requests run as the calling user when root.`;

interface Parsed {
  positional: string[]; options: MountOptions; debug: boolean; lazy: boolean; handles: InodeHandleMode; groups: string[];
  foreground: boolean; timeout: number; log: string | undefined; dir: string | undefined; supervise: boolean; maxRestarts: number | undefined;
  /** Cache times and fast paths from -o (not mount(2) options). */
  tuning: Tuning;
  /** vfs: --at values, --config, --control, --control-group, --force. */
  ats: string[]; config: string | undefined; control: string | undefined; controlGroup: string | undefined; force: boolean;
}

/** The -o words that tune the server rather than the mount. */
interface Tuning {
  entryTimeout?: number; attrTimeout?: number; negativeTimeout?: number;
  kernelPassthrough?: boolean; writebackCache?: boolean; keepCache?: boolean;
  threads?: number;
}
const SECONDS_WORDS: Record<string, Array<'entryTimeout' | 'attrTimeout' | 'negativeTimeout'>> = {
  entry_timeout: ['entryTimeout'], attr_timeout: ['attrTimeout'], negative_timeout: ['negativeTimeout'], timeout: ['entryTimeout', 'attrTimeout'],
};
const FLAG_WORDS: Record<string, 'kernelPassthrough' | 'writebackCache' | 'keepCache'> = {
  kernel_passthrough: 'kernelPassthrough', writeback_cache: 'writebackCache', keep_cache: 'keepCache',
};
/** The session's cache times from the tuning words. */
function cacheTimes(t: Tuning): SessionOptions {
  const o: SessionOptions = {};
  if (t.entryTimeout !== undefined) o.entryTimeout = t.entryTimeout;
  if (t.attrTimeout !== undefined) o.attrTimeout = t.attrTimeout;
  if (t.negativeTimeout !== undefined) o.negativeTimeout = t.negativeTimeout;
  return o;
}
/** Refuses the passthrough-only tuning words for another filesystem. */
function passthroughOnly(t: Tuning, what: string): void {
  for (const [word, key] of Object.entries(FLAG_WORDS)) {
    if (t[key] !== undefined) throw new OptionError(word, `applies to the passthrough only, not to ${what}`);
  }
}

/** Takes the tuning words out of `words` (a comma-joined -o list), returning the rest. */
function takeTuning(words: string, t: Tuning): string {
  const rest: string[] = [];
  for (const w of words.split(',')) {
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    const v = eq < 0 ? undefined : w.slice(eq + 1);
    if (name === 'threads') {
      if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 64) throw new OptionError(name, `must be a whole number from 1 to 64, got ${JSON.stringify(v ?? '')}`);
      t.threads = Number(v);
    } else if (name in SECONDS_WORDS) {
      const sec = Number(v);
      if (v === undefined || !/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(sec)) {
        throw new OptionError(name, `must be a number of seconds ≥ 0, got ${JSON.stringify(v ?? '')}`);
      }
      for (const k of SECONDS_WORDS[name]) t[k] = sec * 1000;
    } else if (name in FLAG_WORDS || (name.startsWith('no') && name.slice(2) in FLAG_WORDS)) {
      if (v !== undefined) throw new OptionError(name, 'takes no value');
      const on = name in FLAG_WORDS;
      t[FLAG_WORDS[on ? name : name.slice(2)]] = on;
    } else rest.push(w);
  }
  return rest.join(',');
}

function parseArgs(args: string[]): Parsed {
  const p: Parsed = {
    positional: [], options: {}, debug: false, lazy: false, handles: 'never', groups: [], foreground: false, timeout: 30_000, log: undefined,
    dir: undefined, supervise: false, maxRestarts: undefined, tuning: {},
    ats: [], config: undefined, control: undefined, controlGroup: undefined, force: false,
  };
  const value = (i: number, flag: string): string => {
    if (i >= args.length) throw new Error(`${flag} needs a value`);
    return args[i];
  };
  const dashO: string[] = []; // every -o, read as one list: "-o noatime -o atime" is "noatime,atime"
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o') {
      if (i + 1 >= args.length) throw new Error('-o needs a value');
      dashO.push(args[++i]);
    } else if (a.startsWith('-o') && a.length > 2) {
      dashO.push(a.slice(2));
    } else if (a === '-d' || a === '--debug') p.debug = true;
    else if (a === '-l' || a === '--lazy') p.lazy = true;
    else if (a === '-f' || a === '--foreground') p.foreground = true;
    else if (a === '--supervise') p.supervise = true;
    else if (a === '--max-restarts') {
      const v = value(++i, a);
      if (!/^\d+$/.test(v)) throw new Error(`--max-restarts must be a whole number, got ${JSON.stringify(v)}`);
      p.maxRestarts = Number(v);
    }
    else if (a === '--timeout') {
      const v = value(++i, a);
      const sec = Number(v);
      if (!/^\d+(\.\d+)?$/.test(v) || !(sec > 0)) throw new Error(`--timeout must be a number of seconds > 0, got ${JSON.stringify(v)}`);
      p.timeout = sec * 1000;
    } else if (a === '--log') p.log = resolve(value(++i, a));
    else if (a === '--dir') p.dir = value(++i, a);
    else if (a === '--handles') {
      const v = value(++i, a);
      if (v !== 'never' && v !== 'prefer' && v !== 'mandatory') throw new Error(`--handles must be never, prefer or mandatory, got ${JSON.stringify(v)}`);
      p.handles = v;
    }
    else if (a === '--group' && i + 1 < args.length) p.groups.push(args[++i]);
    else if (a === '--at') p.ats.push(value(++i, a));
    else if (a === '--config') p.config = resolve(value(++i, a));
    else if (a === '--control') p.control = resolve(value(++i, a));
    else if (a === '--control-group') p.controlGroup = value(++i, a);
    else if (a === '--force') p.force = true;
    else if (a.startsWith('-')) throw new Error(`unknown flag ${a}`);
    else p.positional.push(a);
  }
  // The CLI cleans a dead mount left by a crashed server (with a message); -o noclean_stale keeps it.
  p.options = { cleanStale: true, ...parseOptionString(takeTuning(dashO.join(','), p.tuning)).options };
  checkOptions(p.options);
  return p;
}

/** Checks the merged -o options now (a usage error, before anything is opened), naming a bad
 * one as it was typed: max_write=3 is "max_write", not the library's "maxWrite". */
function checkOptions(o: MountOptions): void {
  try {
    resolveMountOptions(o);
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    throw new OptionError(optionWord(e.option), e.reason, e.code);
  }
}

/** This program, for starting its background server. */
const SELF = fileURLToPath(import.meta.url);

/** The argv this process was started with, for the background child (which adds -f). */
let ARGV: string[] = [];

/**
 * Serves `make()` on `mnt`: in this process with -f (or `foreground`), else as a detached
 * child started with this command line plus -f, returning once it reports the mount ready.
 */
async function serve(p: Parsed, mnt: string, what: string, make: () => FileSystem | Promise<FileSystem>, defaults: SessionOptions, foreground = false,
  onServing?: Parameters<typeof serveForeground>[4], forFs?: (fs: FileSystem) => void): Promise<number> {
  if ((p.foreground || foreground) && p.supervise) {
    // This process supervises; each server is this command again, in the foreground, unsupervised.
    const serverArgv = [process.execPath, ...process.execArgv, SELF, ...ARGV.filter((a) => a !== '--supervise'), '--foreground'];
    return runSupervisor(mnt, { ...defaults, ...p.options, ...cacheTimes(p.tuning), debug: p.debug }, serverArgv, what, { maxRestarts: p.maxRestarts });
  }
  if (p.foreground || foreground) {
    let fs: FileSystem;
    try {
      fs = await make();
      forFs?.(fs);
    } catch (e) {
      process.stderr.write(`tsfuse: ${(e as Error).message}\n`);
      return 1;
    }
    return serveForeground(mnt, fs, { ...defaults, ...p.options, ...cacheTimes(p.tuning), debug: p.debug }, what, onServing);
  }
  const fd = handedFd(mnt);
  if (fd !== undefined && fd < 3) {
    process.stderr.write(`tsfuse: ${mnt}: fd ${fd} is a standard stream; hand /dev/fuse over as fd 3 or above, or use -f\n`);
    return 2;
  }
  if (fd !== undefined) {
    try {
      handedDevice(fd); // checked here too: an fd that is not open cannot even be passed on
    } catch (e) {
      process.stderr.write(`tsfuse: mounting ${what} on ${mnt} failed: ${(e as Error).message}\n`);
      return 1;
    }
  }
  try {
    const d = await startDaemon([process.execPath, ...process.execArgv, SELF, ...ARGV, '--foreground'], {
      mountpoint: mnt, timeout: p.timeout, forward: true, log: p.log, fds: fd !== undefined ? { [fd]: fd } : undefined,
    });
    const where = (d.info.mountpoint as string | undefined) ?? mnt;
    const stops = fd !== undefined ? 'unmounting it (by the manager that mounted it) stops it' : `\`tsfuse umount ${where}\` stops it`;
    const who = d.info.supervisor ? `supervisor pid ${d.pid}: it restarts a server that dies` : `server pid ${d.pid}`;
    process.stdout.write(`tsfuse: ${what} mounted on ${where} (${who}; ${stops})\n`);
    sdNotify(`READY=1\nMAINPID=${d.pid}`);
    return 0;
  } catch (e) {
    process.stderr.write(`tsfuse: mounting ${what} on ${mnt} failed: ${(e as Error).message}\n`);
    return 1;
  }
}

function passthrough(p: Parsed, src: string, mnt: string, subtype: string, foreground = false): Promise<number> {
  const make = () => {
    try {
      return new Passthrough(src, {
        inodeHandles: p.handles, nofile: 1 << 20, kernelPassthrough: p.tuning.kernelPassthrough, keepCache: p.tuning.keepCache,
        writebackCache: p.tuning.writebackCache,
      });
    } catch (e) {
      throw sourceError(src, e as Error);
    }
  };
  return serve(p, mnt, `passthrough of ${src}`, make, {
    fsname: src, subtype, defaultPermissions: true, allowOther: process.geteuid?.() === 0,
  }, foreground);
}

/** A Passthrough that could not start, named by its source (once: the Passthrough's own message may name it already). */
function sourceError(src: string, e: Error): Error {
  return e.message.startsWith('cannot use source directory') ? e : new Error(`cannot use source directory ${src}: ${e.message}`);
}

/**
 * mount(8)'s helper for type fuse.tsfuse: `mount.fuse.tsfuse SRC MNT [-sfnv] [-N NS] [-o OPTS]`.
 * -s (sloppy), -n (no mtab) and -v change nothing here; -f (fake) mounts nothing; -N is
 * refused. The passthrough of SRC starts in the background and mount(8) returns when it serves.
 */
async function mountHelper(args: string[]): Promise<number> {
  const pos: string[] = [];
  const opts: string[] = [];
  let fake = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o') opts.push(args[++i] ?? '');
    else if (a.startsWith('-o')) opts.push(a.slice(2));
    else if (a === '-t') i++;
    else if (a === '-N' || a.startsWith('--namespace')) {
      process.stderr.write('mount.fuse.tsfuse: -N (mount in another namespace) is not supported: run mount inside that namespace (nsenter) instead\n');
      return 32;
    } else if (/^-[sfnvi]+$/.test(a)) fake ||= a.includes('f');
    else if (a.startsWith('-')) { process.stderr.write(`mount.fuse.tsfuse: unknown flag ${a}\n`); return 1; }
    else pos.push(a);
  }
  const [src, mnt] = pos;
  if (!src || !mnt) { process.stderr.write('usage: mount.fuse.tsfuse SRC MNT [-o OPTIONS]\n'); return 1; }
  let p: Parsed;
  try {
    p = parseArgs(opts.filter(Boolean).flatMap((o) => ['-o', o]));
  } catch (e) {
    process.stderr.write(`mount.fuse.tsfuse: ${(e as Error).message}\n`);
    return 1;
  }
  if (fake) return 0;
  ARGV = ['passthrough', src, mnt, ...opts.filter(Boolean).flatMap((o) => ['-o', o]), '-o', 'subtype=tsfuse'];
  // mount(8)'s exit codes: 32 = mount failure.
  return (await passthrough(p, src, mnt, 'tsfuse')) === 0 ? 0 : 32;
}

/** Writes DIR/mount.fuse.tsfuse: a shell script running this CLI with this Node. */
function installHelper(dir: string): number {
  const path = join(dir, 'mount.fuse.tsfuse');
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const script = '#!/bin/sh\n' +
    '# mount(8) helper for type fuse.tsfuse, written by `tsfuse install-helper`:\n' +
    '#   mount -t fuse.tsfuse SRC MNT -o OPTIONS   or in fstab:   SRC MNT fuse.tsfuse defaults 0 0\n' +
    `exec ${q(process.execPath)} ${q(SELF)} mount-helper "$@"\n`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, script, { mode: 0o755 });
  } catch (e) {
    process.stderr.write(`tsfuse: cannot write ${path}: ${(e as Error).message}${(e as NodeJS.ErrnoException).code === 'EACCES' ? ' (run as root, or pass --dir DIR of a directory you may write to)' : ''}\n`);
    return 1;
  }
  process.stdout.write(`tsfuse: wrote ${path}; now \`mount -t fuse.tsfuse SRC MNT\` and fstab lines \`SRC MNT fuse.tsfuse defaults 0 0\` work\n`);
  return 0;
}

function demoMountpoint(): string {
  const mnt = join(tmpdir(), 'tsfuse-demo');
  mkdirSync(mnt, { recursive: true });
  return mnt;
}

/** A small demo tree for `tsfuse demo` without a source directory. */
function demoSource(): string {
  const src = join(tmpdir(), 'tsfuse-demo-src');
  if (!existsSync(src)) {
    mkdirSync(join(src, 'docs'), { recursive: true });
    writeFileSync(join(src, 'hello.txt'), 'Hello from the tsfuse passthrough demo!\n');
    writeFileSync(join(src, 'docs', 'README.txt'), 'Files here are mirrored from ' + src + '.\nEdit them through the mount point.\n');
  }
  return src;
}

// ---- vfs ----

interface Layout { path: string; spec: string; options: BackendOptions }

/** Builds a backend from its spec: passthrough:DIR, memfs or hello. */
function buildSpec(spec: string): FileSystem {
  if (spec === 'memfs') return memfs();
  if (spec === 'hello') return hello;
  if (spec.startsWith('passthrough:')) {
    const src = spec.slice('passthrough:'.length);
    try {
      return new Passthrough(src, { nofile: 1 << 20 });
    } catch (e) {
      throw sourceError(src, e as Error);
    }
  }
  throw new Error(`unknown filesystem ${JSON.stringify(spec)}: passthrough:DIR, memfs or hello`);
}

/** Checks a spec now (before a background server starts) and makes its path absolute. */
function checkSpec(spec: string, where: string): string {
  if (spec === 'memfs' || spec === 'hello') return spec;
  if (spec.startsWith('passthrough:')) {
    const dir = spec.slice('passthrough:'.length);
    if (!dir) throw new Error(`${where}: passthrough needs a directory (passthrough:DIR)`);
    const abs = resolve(dir);
    let st;
    try {
      st = statSync(abs);
    } catch (e) {
      throw new Error(`${where}: source directory ${abs}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist: create it, or name an existing directory' : (e as Error).message}`);
    }
    if (!st.isDirectory()) throw new Error(`${where}: source ${abs} is not a directory: name a directory`);
    return `passthrough:${abs}`;
  }
  throw new Error(`${where}: unknown filesystem ${JSON.stringify(spec)} (passthrough:DIR, memfs or hello)`);
}

function seconds(word: string, v: string | undefined, where: string): number {
  if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) throw new Error(`${where}: ${word} must be a number of seconds ≥ 0, got ${JSON.stringify(v ?? '')}`);
  return Number(v) * 1000;
}

/** "/a=passthrough:DIR,ro,entry_timeout=5" */
function parseAt(v: string): Layout {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new Error(`--at ${JSON.stringify(v)}: expected PATH=FS (e.g. /a=passthrough:/srv/a or /m=memfs)`);
  const path = v.slice(0, eq);
  const [fsWord, ...words] = v.slice(eq + 1).split(',');
  const where = `--at ${path}`;
  const options: BackendOptions = {};
  for (const w of words) {
    const i = w.indexOf('=');
    const name = i < 0 ? w : w.slice(0, i);
    const val = i < 0 ? undefined : w.slice(i + 1);
    if (name === 'ro') options.readOnly = true;
    else if (name === 'rw') options.readOnly = false;
    else if (name === 'default_permissions') options.defaultPermissions = true;
    else if (name === 'nodefault_permissions') options.defaultPermissions = false;
    else if (name === 'entry_timeout') options.entryTimeout = seconds(name, val, where);
    else if (name === 'attr_timeout') options.attrTimeout = seconds(name, val, where);
    else if (name === 'timeout') options.entryTimeout = options.attrTimeout = seconds(name, val, where);
    else throw new Error(`${where}: unknown word ${JSON.stringify(w)} (ro, rw, entry_timeout=S, attr_timeout=S, timeout=S, default_permissions)`);
    if (i >= 0 && !name.endsWith('timeout')) throw new Error(`${where}: ${name} takes no value`);
  }
  return { path, spec: checkSpec(fsWord, where), options };
}

/** A config file: {"mounts": [{"path", "fs", "readOnly", "entryTimeout", "attrTimeout", "defaultPermissions"}],
 * "options": "-o words"}. */
function readConfig(file: string): { mounts: Layout[]; options?: string } {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`--config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON: ${(e as Error).message}`}`);
  }
  const mounts = (j as { mounts?: unknown })?.mounts;
  if (!j || typeof j !== 'object' || !Array.isArray(mounts)) throw new Error(`--config ${file}: expected {"mounts": [{"path": "/a", "fs": "passthrough:DIR"}, …]}`);
  for (const k of Object.keys(j)) if (k !== 'mounts' && k !== 'options') throw new Error(`--config ${file}: unknown key ${JSON.stringify(k)} ("mounts", "options")`);
  const options = (j as { options?: unknown }).options;
  if (options !== undefined && typeof options !== 'string') throw new Error(`--config ${file}: "options" must be a string of -o words ("allow_other,entry_timeout=5")`);
  const KEYS = ['path', 'fs', 'readOnly', 'entryTimeout', 'attrTimeout', 'defaultPermissions'];
  return { options, mounts: mounts.map((m: Record<string, unknown>, i: number) => {
    const where = `--config ${file}: mounts[${i}]`;
    if (!m || typeof m !== 'object') throw new Error(`${where}: expected an object`);
    for (const k of Object.keys(m)) if (!KEYS.includes(k)) throw new Error(`${where}: unknown key ${JSON.stringify(k)} (${KEYS.join(', ')})`);
    if (typeof m.path !== 'string') throw new Error(`${where}: "path" must be a string such as "/a"`);
    if (typeof m.fs !== 'string') throw new Error(`${where}: "fs" must be a string such as "passthrough:/srv/a" or "memfs"`);
    const options: BackendOptions = {};
    for (const k of ['readOnly', 'defaultPermissions'] as const) {
      if (m[k] === undefined) continue;
      if (typeof m[k] !== 'boolean') throw new Error(`${where}: "${k}" must be true or false`);
      options[k] = m[k] as boolean;
    }
    for (const k of ['entryTimeout', 'attrTimeout'] as const) {
      if (m[k] === undefined) continue;
      if (typeof m[k] !== 'number' || !((m[k] as number) >= 0)) throw new Error(`${where}: "${k}" must be a number of seconds ≥ 0`);
      options[k] = (m[k] as number) * 1000;
    }
    return { path: m.path, spec: checkSpec(m.fs, where), options };
  }) };
}

async function vfsCommand(p: Parsed): Promise<number> {
  const mnt = p.positional[0];
  if (!mnt) { process.stderr.write(`tsfuse: vfs needs a mount point\n${USAGE}\n`); return 2; }
  let layout: Layout[];
  let gid: number | undefined;
  try {
    const cfg = p.config ? readConfig(p.config) : { mounts: [] };
    if (cfg.options) {
      // The file's -o words first; the command line's win.
      p.options = { ...parseOptionString(takeTuning(cfg.options, p.tuning)).options, ...p.options };
      checkOptions(p.options);
    }
    passthroughOnly(p.tuning, 'vfs');
    layout = [...cfg.mounts, ...p.ats.map(parseAt)];
    const seen = new Set<string>();
    for (const l of layout) {
      const key = l.path.replace(/\/+$/, '');
      if (seen.has(key)) throw new Error(`two filesystems at ${l.path}: each path takes one (attach the second elsewhere)`);
      seen.add(key);
    }
    if (p.controlGroup !== undefined) gid = getgrnam(p.controlGroup);
  } catch (e) {
    process.stderr.write(`tsfuse: ${(e as Error).message}\n`);
    return 2;
  }
  const control = p.control ?? controlPath(mnt);
  let vfs: Vfs | undefined;
  const make = async () => {
    const v = new Vfs({ build: buildSpec });
    for (const l of layout) await v.attach(l.path, buildSpec(l.spec), { ...l.options, spec: l.spec });
    return v;
  };
  const what = `vfs (${layout.map((l) => `${l.path}=${l.spec}`).join(' ') || 'no filesystems yet'})`;
  return serve(p, mnt, what, make, { fsname: 'vfs', subtype: 'vfs', defaultPermissions: true, allowOther: process.geteuid?.() === 0 }, false,
    async () => {
      const c = await serveControl(vfs!, control, { build: buildSpec, gid, ownDirectory: !p.control, log: (l) => process.stderr.write(`tsfuse vfs: ${l}\n`) });
      return () => c.close();
    }, (fs) => { vfs = fs as Vfs; });
}

async function vfsControl(cmd: string, p: Parsed): Promise<number> {
  const [mnt, arg] = p.positional;
  if (!mnt || (cmd !== 'vfs-list' && !arg)) {
    process.stderr.write(`tsfuse: ${cmd} needs ${cmd === 'vfs-list' ? 'MNT' : cmd === 'vfs-attach' ? 'MNT PATH=FS' : 'MNT PATH'}\n${USAGE}\n`);
    return 2;
  }
  const sock = p.control ?? controlPath(mnt);
  try {
    if (cmd === 'vfs-attach') {
      const l = parseAt(arg);
      const a = await controlRequest(sock, { op: 'attach', path: l.path, spec: l.spec, options: l.options });
      if (!a.ok) throw new Error(`attaching ${l.path} failed: ${a.error} (${a.code})`);
      process.stdout.write(`tsfuse: attached ${l.path} (index ${a.index})\n`);
    } else if (cmd === 'vfs-detach') {
      const a = await controlRequest(sock, { op: 'detach', path: arg, force: p.force });
      if (!a.ok) throw new Error(`detaching ${arg} failed: ${a.error} (${a.code})`);
      process.stdout.write(`tsfuse: detached ${arg}\n`);
    } else {
      const a = await controlRequest(sock, { op: 'list' });
      if (!a.ok) throw new Error(`listing failed: ${a.error}`);
      for (const b of a.list ?? []) process.stdout.write(`${b.path} ${b.index} ${b.spec ?? '-'}${b.readOnly ? ' ro' : ''}\n`);
    }
    return 0;
  } catch (e) {
    process.stderr.write(`tsfuse: ${(e as Error).message}\n`);
    return 1;
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  ARGV = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return cmd ? 0 : 2;
  }
  if (cmd === 'mount-helper') return mountHelper(rest);
  let p: Parsed;
  try {
    p = parseArgs(rest);
  } catch (e) {
    process.stderr.write(`tsfuse: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (cmd === 'hello' || cmd === 'memfs' || cmd === 'passthrough' || cmd === 'demo' || cmd === 'vfs') {
    try {
      if (cmd !== 'passthrough' && cmd !== 'demo') passthroughOnly(p.tuning, cmd);
      if (cmd !== 'hello' && (p.tuning.threads ?? 1) > 1) {
        throw new OptionError('threads', `applies to filesystems each thread can build alike (hello; the library's threadFileSystem), not to ${cmd}: ` +
          'its inode table lives in one thread, and the kernel gives any request to any thread');
      }
    } catch (e) {
      process.stderr.write(`tsfuse: ${(e as Error).message}\n`);
      return 2;
    }
  }
  switch (cmd) {
    case 'hello': {
      const mnt = p.positional[0];
      if (!mnt) { process.stderr.write(`tsfuse: hello needs a mount point\n${USAGE}\n`); return 2; }
      const threads = p.tuning.threads ?? 1;
      return serve(p, mnt, 'hello', () => hello, {
        fsname: 'hello', subtype: 'tsfuse',
        ...(threads > 1 ? { threads, threadFileSystem: { module: fileURLToPath(new URL('../../examples/hello.js', import.meta.url)), export: 'hello' } } : {}),
      });
    }
    case 'demo':
      // The README's run command: an interactive demo, in the foreground (Ctrl-C unmounts).
      return passthrough(p, p.positional[0] ?? demoSource(), p.positional[1] ?? demoMountpoint(), 'passthrough', true);
    case 'passthrough': {
      const [src, mnt] = p.positional;
      if (!src || !mnt) { process.stderr.write(`tsfuse: passthrough needs SRC and MNT\n${USAGE}\n`); return 2; }
      return passthrough(p, src, mnt, 'passthrough');
    }
    case 'install-helper':
      return installHelper(p.dir ?? '/sbin');
    case 'memfs': {
      const mnt = p.positional[0];
      if (!mnt) { process.stderr.write(`tsfuse: memfs needs a mount point\n${USAGE}\n`); return 2; }
      return serve(p, mnt, 'memfs', () => memfs(), { fsname: 'memfs', subtype: 'memfs', defaultPermissions: true });
    }
    case 'umount':
    case 'unmount': {
      const mnt = p.positional[0];
      if (!mnt) { process.stderr.write(`tsfuse: umount needs a mount point\n`); return 2; }
      try {
        await unmount(mnt, { lazy: p.lazy });
        return 0;
      } catch (e) {
        process.stderr.write(`tsfuse: ${(e as Error).message}\n`);
        return 1;
      }
    }
    case 'conformance':
      return runConformanceCli(p.positional[0], p.groups);
    case 'vfs':
      return vfsCommand(p);
    case 'vfs-attach':
    case 'vfs-detach':
    case 'vfs-list':
      return vfsControl(cmd, p);
    default:
      process.stderr.write(`tsfuse: unknown command "${cmd}"\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  process.stderr.write(`tsfuse: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
