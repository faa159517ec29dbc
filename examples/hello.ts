// A read-only filesystem with one file, /hello. Run: node dist/examples/hello.js MNT
import { constants as C } from 'node:fs';
import { FuseError, mount, type FileSystem } from '../src/index.js';

const TEXT = new TextEncoder().encode('Hello, world!\n');
const ROOT = { ino: 1, mode: C.S_IFDIR | 0o755, nlink: 2 };
const FILE = { ino: 2, mode: C.S_IFREG | 0o444, size: TEXT.length };

export const hello: FileSystem = {
  lookup(_ctx, parent, name) {
    if (parent !== 1 || name !== 'hello') throw new FuseError('ENOENT');
    return { nodeid: 2, attr: FILE };
  },
  getattr: (_ctx, node) => ({ attr: node === 1 ? ROOT : FILE }),
  setattr() { throw new FuseError('EACCES'); }, // truncate, chmod, utimes: not here
  open(_ctx, _node, flags) {
    if ((flags & 3) !== C.O_RDONLY) throw new FuseError('EACCES'); // O_ACCMODE
    return { keepCache: true };
  },
  // Offsets are bigints (the kernel's 64-bit loff_t); past the end there is nothing.
  read: (_ctx, _node, _fh, offset, size) => (offset < TEXT.length ? TEXT.subarray(Number(offset), Number(offset) + size) : new Uint8Array(0)),
  readdir(_ctx, _node, _fh, offset, out) {
    const names: [string, number, number][] = [['.', 1, 4], ['..', 1, 4], ['hello', 2, 8]];
    for (let i = Number(offset); i < names.length; i++) if (!out.add(names[i][0], names[i][1], names[i][2], i + 1)) break;
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const session = await mount(process.argv[2], hello, { fsname: 'hello', subtype: 'hello' });
  console.log(`mounted on ${session.mountpoint}`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => session.unmount({ lazy: true }));
  await session.closed;
}
