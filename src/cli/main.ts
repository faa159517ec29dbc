#!/usr/bin/env node
/**
 * The `tsfuse` command.
 *   tsfuse hello MNT [-o OPTS] [-d]     mount the hello example (foreground)
 *   tsfuse memfs MNT [-o OPTS] [-d]     mount the in-memory read-write example (foreground)
 *   tsfuse demo [MNT]                   the README's run command: hello on a demo mount point
 *   tsfuse umount [-l] MNT              unmount (lazily with -l); cleans dead mounts too
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hello } from '../../examples/hello.js';
import { memfs } from '../../examples/memfs.js';
import { parseOptionString, unmount, type MountOptions } from '../transport/index.js';
import { serveForeground } from './serve.js';

const USAGE = `usage:
  tsfuse hello MNT [-o OPTIONS] [-d]   mount the hello example on MNT (foreground)
  tsfuse memfs MNT [-o OPTIONS] [-d]   mount the in-memory read-write example on MNT
  tsfuse demo [MNT]                    mount the demo filesystem (default MNT: ${join(tmpdir(), 'tsfuse-demo')})
  tsfuse umount [-l] MNT               unmount MNT (-l: lazily, also for dead mounts)

options (-o, comma-separated, as mount(8)):
  fsname=NAME subtype=NAME allow_other default_permissions ro noexec noatime
  max_read=N max_write=N max_readahead=N max_background=N congestion_threshold=N
  request_timeout=SECONDS clean_stale over_mount
  -d   debug: log every request and reply`;

interface Parsed { positional: string[]; options: MountOptions; debug: boolean; lazy: boolean }

function parseArgs(args: string[]): Parsed {
  const p: Parsed = { positional: [], options: {}, debug: false, lazy: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o') {
      if (i + 1 >= args.length) throw new Error('-o needs a value');
      Object.assign(p.options, parseOptionString(args[++i]).options);
    } else if (a.startsWith('-o') && a.length > 2) {
      Object.assign(p.options, parseOptionString(a.slice(2)).options);
    } else if (a === '-d' || a === '--debug') p.debug = true;
    else if (a === '-l' || a === '--lazy') p.lazy = true;
    else if (a.startsWith('-')) throw new Error(`unknown flag ${a}`);
    else p.positional.push(a);
  }
  return p;
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
    case 'hello':
    case 'demo': {
      let mnt = p.positional[0];
      if (!mnt && cmd === 'hello') { process.stderr.write(`tsfuse: hello needs a mount point\n${USAGE}\n`); return 2; }
      if (!mnt) { mnt = join(tmpdir(), 'tsfuse-demo'); mkdirSync(mnt, { recursive: true }); }
      return serveForeground(mnt, hello, { fsname: 'hello', subtype: 'tsfuse', ...p.options, debug: p.debug }, 'hello');
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
    default:
      process.stderr.write(`tsfuse: unknown command "${cmd}"\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  process.stderr.write(`tsfuse: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
