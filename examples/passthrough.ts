// Mirror a directory: node dist/examples/passthrough.js SRC MNT [never|prefer|mandatory]
// The whole filesystem is src/passthrough (O_PATH inodes, unlink frees space,
// hard-link aliases, as-the-caller credentials); this is how a program embeds it.
import { mount } from '../src/index.js';
import { Passthrough, type InodeHandleMode } from '../src/passthrough/index.js';

const [src, mnt, handles = 'never'] = process.argv.slice(2);
if (!src || !mnt) {
  console.error('usage: node dist/examples/passthrough.js SRC MNT [never|prefer|mandatory]');
  process.exit(2);
}
const session = await mount(mnt, new Passthrough(src, { inodeHandles: handles as InodeHandleMode, nofile: 1 << 20 }), {
  fsname: src, subtype: 'passthrough', defaultPermissions: true, allowOther: process.geteuid?.() === 0,
});
console.log(`mounted ${src} on ${session.mountpoint}`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void session.unmount({ lazy: true }));
const err = await session.closed;
console.log(err ? `session ended: ${err.message}` : 'unmounted');
process.exitCode = err ? 1 : 0;
