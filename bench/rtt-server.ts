// The tsfuse side of the stat() round-trip benchmark (bench/rtt.sh).
//
// Serves the same filesystem as kernel-probes' `rtt` (kp.h's test fs): a root
// directory (node 1) holding one regular file `f` (node 2, 4096 bytes).
// GETATTR is answered with attr_valid 0 and LOOKUP with a one-hour entry
// timeout, so once the dentry is warm every stat("MNT/f") is exactly one
// GETATTR round trip through /dev/fuse. getattr is synchronous (returns a
// value, not a promise) and allocates nothing: the replies are constants.
//
//   node dist/bench/rtt-server.js MNT
//
// VFS=1: the same filesystem attached at /x of a Vfs (stat MNT/x/f): the cost of the
// VFS layer (bench/vfs.sh).
//
// Prints "READY" on stdout once mounted (INIT answered). On SIGTERM/SIGINT it
// unmounts (lazily if busy), prints "STATS getattr=N lookup=N" and exits.
// CPU pinning is done from the shell: `taskset -c 0 node ...`.
import { constants as C } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { FuseError, FuseInode, InodeTree, mount, Vfs, type Attr, type AttrReply, type Entry, type FileSystem } from '../src/index.js';

const T = 1700000000 * 1000; // same timestamps as kp_fill_attr (seconds → ms)
const ROOT = { ino: 1, mode: C.S_IFDIR | 0o755, nlink: 2, size: 0, blocks: 0, blksize: 4096, atime: T, mtime: T, ctime: T };
const FILE = { ino: 2, mode: C.S_IFREG | 0o644, nlink: 1, size: 4096, blocks: 8, blksize: 4096, atime: T, mtime: T, ctime: T };
const ROOT_REPLY: AttrReply = { attr: ROOT };
const FILE_REPLY: AttrReply = { attr: FILE };
const FILE_ENTRY: Entry = { nodeid: 2, generation: 1, attr: FILE };

let getattrs = 0;
let lookups = 0;

export const benchFs: FileSystem = {
  lookup(_ctx, parent, name) {
    lookups++;
    if (parent === 1 && name === 'f') return FILE_ENTRY;
    throw new FuseError('ENOENT');
  },
  getattr(_ctx, node) {
    getattrs++;
    if (node === 2) return FILE_REPLY;
    if (node === 1) return ROOT_REPLY;
    throw new FuseError('ENOENT');
  },
  readdir(_ctx, _node, _fh, offset, out) {
    const names: [string, number, number][] = [['.', 1, 4], ['..', 1, 4], ['f', 2, 8]];
    for (let i = Number(offset); i < names.length; i++) if (!out.add(names[i][0], names[i][1], names[i][2], i + 1)) break;
  },
};

/** The same tree as an InodeTree of FuseInodes (TREE=1): what most filesystems are written as. */
class TreeFile extends FuseInode {
  constructor() { super(C.S_IFREG | 0o644); }
  override getattr(): Attr { getattrs++; return FILE; }
}
class TreeDir extends FuseInode {
  constructor() { super(C.S_IFDIR | 0o755); }
  override getattr(): Attr { getattrs++; return ROOT; }
}
export function treeFs(): FileSystem {
  const root = new TreeDir();
  root.addChild('f', new TreeFile());
  return new InodeTree(root);
}

async function main(): Promise<void> {
  const mnt = process.argv[2];
  if (!mnt) {
    process.stderr.write('usage: node dist/bench/rtt-server.js MOUNTPOINT\n');
    process.exit(2);
  }
  // THREADS=N: N threads, each with its own clone of the device and its own benchFs.
  const threads = Number(process.env.THREADS ?? 1);
  let fs = process.env.TREE === '1' ? treeFs() : benchFs;
  if (process.env.VFS === '1') {
    const vfs = new Vfs({ log: () => {} });
    await vfs.attach('/x', fs, { attrTimeout: 0, entryTimeout: 3600_000 });
    fs = vfs;
  }
  const session = await mount(mnt, fs, {
    fsname: 'tsfuse-bench', attrTimeout: 0, entryTimeout: 3600_000, ioUring: process.env.URING === '1',
    ...(threads > 1 ? { threads, threadFileSystem: { module: fileURLToPath(import.meta.url), export: 'benchFs' } } : {}),
  });
  process.stdout.write('READY\n');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await session.unmount();
    } catch {
      await session.unmount({ lazy: true }).catch((e) => process.stderr.write(`rtt-server: unmount failed: ${(e as Error).message}\n`));
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const others = session.threadStats();
  const err = await session.closed;
  // Each extra thread counted its own requests (its last figures, from just before the end).
  let [g, l] = [getattrs, lookups];
  for (const s of others()) { g += s.requests.GETATTR ?? 0; l += s.requests.LOOKUP ?? 0; }
  process.stdout.write(`STATS getattr=${g} lookup=${l}\n`);
  if (err) process.stderr.write(`rtt-server: session ended with ${err.message}\n`);
  process.exit(err && !stopping ? 1 : 0);
}

if (isMainThread && import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`rtt-server: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  });
}
