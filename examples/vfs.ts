// Several filesystems under one mount: a passthrough of a directory at /src, the
// in-memory memfs at /mem and hello at /greetings/hello, below a read-only root.
// Run: node dist/examples/vfs.js MNT [SRC]     (SRC defaults to the current directory)
// While it runs, `kill -USR1 PID` detaches /mem (by force) and `kill -USR2 PID`
// attaches a second memfs at /mem2: the layout changes while the mount serves.
import { resolve } from 'node:path';
import { mount, Vfs } from '../src/index.js';
import { Passthrough } from '../src/passthrough/index.js';
import { hello } from './hello.js';
import { memfs } from './memfs.js';

/** The example's layout: what `tsfuse vfs MNT --at /src=passthrough:SRC --at /mem=memfs
 * --at /greetings/hello=hello` mounts. */
export async function exampleVfs(src: string): Promise<Vfs> {
  const vfs = new Vfs();
  await vfs.attach('/src', new Passthrough(src), { spec: `passthrough:${src}` });
  await vfs.attach('/mem', memfs(), { spec: 'memfs', entryTimeout: 5000 });
  await vfs.attach('/greetings/hello', hello, { spec: 'hello', readOnly: true });
  return vfs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [mnt, src = '.'] = process.argv.slice(2);
  if (!mnt) {
    console.error('usage: node dist/examples/vfs.js MNT [SRC]');
    process.exit(2);
  }
  const vfs = await exampleVfs(resolve(src));
  const session = await mount(mnt, vfs, { fsname: 'vfs-example', subtype: 'vfs', defaultPermissions: true });
  console.log(`mounted on ${session.mountpoint}: ${vfs.list().map((b) => b.path).join(' ')}`);
  process.on('SIGUSR1', () => void vfs.detach('/mem', { force: true }).then(() => console.log('detached /mem'), (e) => console.error(e.message)));
  process.on('SIGUSR2', () => void vfs.attach('/mem2', memfs()).then((i) => console.log(`attached /mem2 (index ${i})`), (e) => console.error(e.message)));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => session.unmount({ lazy: true }));
  await session.closed;
  console.log(JSON.stringify(session.stats().fs));
}
