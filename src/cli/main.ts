#!/usr/bin/env node
/**
 * The `tsfuse` command.
 *   tsfuse passthrough SRC MNT [-o OPTS] [--handles MODE] [-d]   mirror SRC on MNT (foreground)
 *   tsfuse hello MNT [-o OPTS] [-d]     mount the hello example (foreground)
 *   tsfuse memfs MNT [-o OPTS] [-d]     mount the in-memory read-write example (foreground)
 *   tsfuse demo [SRC [MNT]]             the README's run command: passthrough of a demo directory
 *   tsfuse umount [-l] MNT              unmount (lazily with -l); cleans dead mounts too
 *   tsfuse conformance MNT [--group NAME]   POSIX conformance suite against any mounted filesystem
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hello } from '../../examples/hello.js';
import { memfs } from '../../examples/memfs.js';
import { OptionError, optionWord, parseOptionString, resolveMountOptions, unmount, type MountOptions } from '../transport/index.js';
import { Passthrough, type InodeHandleMode } from '../passthrough/index.js';
import { serveForeground } from './serve.js';
import { runConformanceCli } from './conformance/index.js';

const USAGE = `usage:
  tsfuse passthrough SRC MNT [-o OPTIONS] [--handles never|prefer|mandatory] [-d]
                                       mirror directory SRC on MNT (foreground; Ctrl-C unmounts)
  tsfuse hello MNT [-o OPTIONS] [-d]   mount the hello example on MNT (foreground)
  tsfuse memfs MNT [-o OPTIONS] [-d]   mount the in-memory read-write example on MNT
  tsfuse demo [SRC [MNT]]              passthrough of SRC (default: a built-in demo directory,
                                       ${join(tmpdir(), 'tsfuse-demo-src')}) on MNT (default ${join(tmpdir(), 'tsfuse-demo')})
  tsfuse umount [-l] MNT               unmount MNT (-l: lazily, also for dead mounts)
  tsfuse conformance MNT [--group NAME]   run the POSIX conformance suite against the filesystem mounted on MNT

options (-o, comma-separated, as mount(8); later words win):
  fsname=NAME subtype=NAME allow_other default_permissions max_read=N max_write=N max_readahead=N
  max_background=N congestion_threshold=N request_timeout=SECONDS clean_stale over_mount
  mount(8) flags: ro rw dev nodev suid nosuid exec noexec sync async dirsync relatime strictatime
    noatime atime diratime nodiratime lazytime symfollow nosymfollow   (default: rw,nosuid,nodev,
    relatime; dev and suid need root: fusermount3 forces nosuid,nodev on others)
  fstab words, accepted and changing nothing: defaults auto noauto nouser _netdev nofail x-* comment=
    (user, users: noexec,nosuid,nodev; owner, group: nosuid,nodev — unless later words say otherwise)
  noNAME turns flag NAME off (nodefault_permissions)
  -d   debug: log every request and reply
  --handles MODE   passthrough: key inodes by file handles (prefer|mandatory) instead of one fd each
passthrough defaults: default_permissions on (nodefault_permissions: the source filesystem checks,
  as the caller); requests run as the calling user when root.`;

interface Parsed { positional: string[]; options: MountOptions; debug: boolean; lazy: boolean; handles: InodeHandleMode; groups: string[] }

function parseArgs(args: string[]): Parsed {
  const p: Parsed = { positional: [], options: {}, debug: false, lazy: false, handles: 'never', groups: [] };
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
    else if (a === '--handles') {
      const v = args[++i];
      if (v !== 'never' && v !== 'prefer' && v !== 'mandatory') throw new Error(`--handles must be never, prefer or mandatory, got ${v}`);
      p.handles = v;
    }
    else if (a === '--group' && i + 1 < args.length) p.groups.push(args[++i]);
    else if (a.startsWith('-')) throw new Error(`unknown flag ${a}`);
    else p.positional.push(a);
  }
  p.options = parseOptionString(dashO.join(',')).options;
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

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return cmd ? 0 : 2;
  }
  let p: Parsed;
  try {
    p = parseArgs(rest);
  } catch (e) {
    process.stderr.write(`tsfuse: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  switch (cmd) {
    case 'hello': {
      const mnt = p.positional[0];
      if (!mnt) { process.stderr.write(`tsfuse: hello needs a mount point\n${USAGE}\n`); return 2; }
      return serveForeground(mnt, hello, { fsname: 'hello', subtype: 'tsfuse', ...p.options, debug: p.debug }, 'hello');
    }
    case 'demo':
    case 'passthrough': {
      let [src, mnt] = p.positional;
      if (cmd === 'passthrough' && (!src || !mnt)) { process.stderr.write(`tsfuse: passthrough needs SRC and MNT\n${USAGE}\n`); return 2; }
      if (!src) src = demoSource();
      if (!mnt) { mnt = join(tmpdir(), 'tsfuse-demo'); mkdirSync(mnt, { recursive: true }); }
      let fs: Passthrough;
      try {
        fs = new Passthrough(src, { inodeHandles: p.handles, nofile: 1 << 20 });
      } catch (e) {
        process.stderr.write(`tsfuse: cannot use source directory ${src}: ${(e as Error).message}\n`);
        return 1;
      }
      return serveForeground(mnt, fs, {
        fsname: src, subtype: 'passthrough', defaultPermissions: true, allowOther: process.geteuid?.() === 0, ...p.options, debug: p.debug,
      }, `passthrough of ${src}`);
    }
    case 'memfs': {
      const mnt = p.positional[0];
      if (!mnt) { process.stderr.write(`tsfuse: memfs needs a mount point\n${USAGE}\n`); return 2; }
      return serveForeground(mnt, memfs(), { fsname: 'memfs', subtype: 'memfs', defaultPermissions: true, ...p.options, debug: p.debug }, 'memfs');
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
    default:
      process.stderr.write(`tsfuse: unknown command "${cmd}"\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  process.stderr.write(`tsfuse: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
