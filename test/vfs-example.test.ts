// examples/vfs.ts end to end: the example server in a child process, syscalls from here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, forceUnmount, isMounted, poll, startNode, stop, tempDir, timed, WAIT_MS, type Proc } from './helpers.js';

test('examples/vfs.js: passthrough, memfs and hello side by side; attach and detach while it serves', timed(WAIT_MS * 3, async () => {
  const base = tempDir('tsfuse-test-vfsex-');
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  writeFileSync(join(src, 'data.txt'), 'from the source\n');
  let p: Proc | undefined;
  try {
    p = startNode('examples/vfs.js', [mnt, src]);
    await p.waitFor('mounted on');
    assert.equal(readdirSync(mnt).sort(), ['greetings', 'mem', 'src']);
    assert.is(readFileSync(join(mnt, 'src', 'data.txt'), 'utf8'), 'from the source\n');
    assert.is(readFileSync(join(mnt, 'greetings', 'hello', 'hello'), 'utf8'), 'Hello, world!\n');
    writeFileSync(join(mnt, 'mem', 'note'), 'in memory');
    assert.is(readFileSync(join(mnt, 'mem', 'note'), 'utf8'), 'in memory');
    // hello is attached read-only; the root is the VFS's own, read-only.
    assert.throws(() => writeFileSync(join(mnt, 'greetings', 'hello', 'x'), 'no'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    assert.throws(() => mkdirSync(join(mnt, 'new')), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    p.child.kill('SIGUSR2');
    await p.waitFor('attached /mem2');
    assert.ok(await poll(() => readdirSync(mnt).includes('mem2'), WAIT_MS), 'mem2 appears in the root');
    p.child.kill('SIGUSR1');
    await p.waitFor('detached /mem');
    assert.ok(await poll(() => !readdirSync(mnt).includes('mem'), WAIT_MS), 'mem is gone from the root');
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    assert.is(code, 0, p.stderr());
    const stats = JSON.parse(p.stdout().trim().split('\n').pop()!) as { backends: Record<string, { requests: number }> };
    assert.ok(stats.backends['/src'].requests > 0, 'per-backend stats printed at the end');
    assert.not.ok(isMounted(mnt));
  } finally {
    if (p) await stop(p);
    if (isMounted(mnt)) forceUnmount(mnt);
    cleanup(base);
  }
}));

test.run();
