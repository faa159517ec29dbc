// End-to-end FORGET accounting of the inode layer (src/api/inode-tree.ts).
// The server is test/fixtures/serve-inode.ts in a child process, driven over
// its stdin/stdout JSON control channel; this process (or processes it spawns)
// makes the client syscalls. FORGETs are provoked with `echo 2 >
// /proc/sys/vm/drop_caches` (dentries and inodes) and arrive asynchronously,
// so the stats are polled.
// The fixture control is test/inode-fixture.ts (shared with inode-race and notify).
import { spawn } from 'node:child_process';
import {
  linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, dropCaches, isMounted, sleep, timed, WAIT_MS } from './helpers.js';
import { Fixture, type StatsAnswer, withFixture, pollStats, newMountpoint, ourMounts } from './inode-fixture.js';

// ---- the gen tree -------------------------------------------------------------

/** readdir + stat everything in the gen tree, read a few files; returns the number of distinct nodes visited. */
function walkGen(mnt: string): number {
  let nodes = 0;
  const dirs = readdirSync(mnt).sort();
  assert.equal(dirs, ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7']);
  for (const d of dirs) {
    assert.ok(statSync(join(mnt, d)).isDirectory());
    nodes++;
    const files = readdirSync(join(mnt, d)).sort();
    assert.equal(files, ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7']);
    for (const f of files) {
      const st = statSync(join(mnt, d, f));
      assert.is(st.size, `/${d}/${f}`.length);
      nodes++;
    }
    assert.is(readFileSync(join(mnt, d, 'f3'), 'utf8'), `/${d}/f3`);
  }
  return nodes;
}

const rootOnly = (s: StatsAnswer) => s.stats.fs.inodes === 1 && s.stats.fs.referenced === 0 && s.stats.fs.lookups === 0;

test('gen: a full walk is referenced; drop_caches brings the table back to the root only', timed(4 * WAIT_MS, () =>
  withFixture('gen', undefined, async (f, mnt) => {
    const before = await f.stats();
    assert.equal(before.stats.fs, { inodes: 1, referenced: 0, lookups: 0, handles: 0 }, 'fresh mount: root only');
    const visited = walkGen(mnt);
    assert.is(visited, 72);
    const walked = await f.stats();
    assert.ok(walked.stats.fs.referenced > 0, `referenced after the walk: ${JSON.stringify(walked.stats.fs)}`);
    assert.is(walked.stats.fs.inodes, 1 + walked.stats.fs.referenced, 'gen inodes are in the table only while referenced');
    dropCaches();
    const s = await pollStats(f, rootOnly);
    assert.equal(s.stats.fs, { inodes: 1, referenced: 0, lookups: 0, handles: 0 }, `after drop_caches: ${JSON.stringify(s)}`);
    assert.is(s.unknownNodes, 0, 'no FORGET named an unknown node');
    assert.is(s.stats.malformed, 0);
    assert.ok((s.stats.requests.FORGET ?? 0) + (s.stats.requests.BATCH_FORGET ?? 0) > 0, 'FORGETs arrived');
    // everything is still reachable afterwards (fresh node ids)
    assert.is(walkGen(mnt), 72);
  })));

test('gen: two walks in a row count every lookup; referenced = distinct nodes; drop → root only', timed(4 * WAIT_MS, () =>
  withFixture('gen', undefined, async (f, mnt) => {
    const visited = walkGen(mnt);
    const one = (await f.stats()).stats.fs;
    walkGen(mnt);
    const two = (await f.stats()).stats.fs;
    assert.is(one.referenced, visited, `after one walk: ${JSON.stringify(one)}`);
    assert.is(two.referenced, visited, `after two walks: ${JSON.stringify(two)}`);
    assert.is(two.inodes, 1 + visited);
    assert.ok(one.lookups >= visited, `lookups ${one.lookups} ≥ ${visited}`);
    // the second walk's READDIRPLUS hands every entry out again: the kernel counts them all
    assert.ok(two.lookups > one.lookups, `second walk counted: ${one.lookups} → ${two.lookups}`);
    dropCaches();
    const s = await pollStats(f, rootOnly);
    assert.equal(s.stats.fs, { inodes: 1, referenced: 0, lookups: 0, handles: 0 }, `after drop_caches: ${JSON.stringify(s)}`);
    assert.is(s.unknownNodes, 0);
  })));

// ---- memfs ------------------------------------------------------------------

test('memfs: drop_caches forgets everything; linked (persistent) inodes stay, unlinked ones go', timed(4 * WAIT_MS, () =>
  withFixture('memfs', undefined, async (f, mnt) => {
    const p = (...a: string[]) => join(mnt, ...a);
    mkdirSync(p('d1'));
    mkdirSync(p('d2'));
    mkdirSync(p('d2', 'sub'));
    writeFileSync(p('d1', 'a'), 'aaa');
    writeFileSync(p('d1', 'b'), 'bbb');
    writeFileSync(p('d2', 'c'), 'ccc');
    writeFileSync(p('top'), 'top');
    writeFileSync(p('gone1'), 'x');
    writeFileSync(p('gone2'), 'y');
    mkdirSync(p('gonedir'));
    linkSync(p('d1', 'a'), p('d2', 'a2')); // same inode as d1/a
    linkSync(p('d1', 'b'), p('bl')); // b keeps a name through this link
    symlinkSync('d1/a', p('s'));
    unlinkSync(p('gone1'));
    unlinkSync(p('d1', 'b'));
    renameSync(p('gone2'), p('d2', 'sub', 'moved'));
    writeFileSync(p('over'), 'old');
    writeFileSync(p('src'), 'new');
    renameSync(p('src'), p('over')); // the old "over" loses its last name
    rmdirSync(p('gonedir'));
    assert.is(readFileSync(p('d2', 'a2'), 'utf8'), 'aaa');
    assert.is(readFileSync(p('bl'), 'utf8'), 'bbb');
    assert.is(readFileSync(p('over'), 'utf8'), 'new');

    // linked nodes: d1, d1/a (= d2/a2), d2, d2/c, d2/sub, d2/sub/moved, top, bl, s, over
    const linked = 10;
    const inos = new Set<number>();
    const visit = (dir: string) => {
      for (const n of readdirSync(dir)) {
        const st = lstatSync(join(dir, n));
        inos.add(st.ino);
        if (st.isDirectory()) visit(join(dir, n));
      }
    };
    visit(mnt);
    assert.is(inos.size, linked, 'distinct inodes visible through the mount');
    assert.equal((await f.names('')).sort(), ['bl', 'd1', 'd2', 'over', 's', 'top']);
    assert.equal((await f.names('d1')).sort(), ['a']);
    assert.equal((await f.names('d2')).sort(), ['a2', 'c', 'sub']);
    assert.equal((await f.names('d2/sub')).sort(), ['moved']);

    dropCaches();
    const s = await pollStats(f, (x) => x.stats.fs.lookups === 0 && x.stats.fs.inodes === 1 + linked);
    assert.is(s.stats.fs.lookups, 0, `lookups after drop: ${JSON.stringify(s.stats.fs)}`);
    assert.is(s.stats.fs.referenced, 0);
    assert.is(s.stats.fs.handles, 0);
    assert.is(s.stats.fs.inodes, 1 + linked, `root + the linked inodes stay, the unlinked ones are gone: ${JSON.stringify(s.stats.fs)}`);
    assert.is(s.stats.malformed, 0);
    // the persistent inodes still serve their data after being forgotten by the kernel
    assert.is(readFileSync(p('d2', 'a2'), 'utf8'), 'aaa');
    assert.is(readFileSync(p('d2', 'sub', 'moved'), 'utf8'), 'y');
    assert.is(statSync(p('d1', 'a')).nlink, 2);
    assert.throws(() => statSync(p('gone1')), /ENOENT/);
  })));

/** A child process holding `file` open; reads it (pread at 0) on "read", closes and exits on "close". */
function holder(file: string) {
  const script = `
    const fs = require('fs');
    const fd = fs.openSync(process.argv[1], 'r');
    console.log('OPEN');
    require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
      if (l === 'read') {
        const b = Buffer.alloc(4096);
        try { const n = fs.readSync(fd, b, 0, 4096, 0); console.log(JSON.stringify({ data: b.subarray(0, n).toString() })); }
        catch (e) { console.log(JSON.stringify({ error: e.code })); }
      } else if (l === 'close') { fs.closeSync(fd); console.log('CLOSED'); process.exit(0); }
    });`;
  const child = spawn(process.execPath, ['-e', script, file], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const waitLine = async (pred: (l: string) => boolean, ms = WAIT_MS) => {
    const end = Date.now() + ms;
    for (;;) {
      const l = out.split('\n').find(pred);
      if (l !== undefined) return l;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`holder: no line; stdout ${out}; stderr ${err}`);
      await sleep(20);
    }
  };
  return {
    child, exited,
    ready: () => waitLine((l) => l === 'OPEN'),
    async read(): Promise<{ data?: string; error?: string }> {
      out = out.split('\n').filter((l) => !l.startsWith('{')).join('\n');
      child.stdin.write('read\n');
      return JSON.parse(await waitLine((l) => l.startsWith('{')));
    },
    async close() { child.stdin.write('close\n'); await waitLine((l) => l === 'CLOSED'); return exited; },
    kill() { if (child.exitCode === null) child.kill('SIGKILL'); },
  };
}

// The entry timeout is an hour: with the default (1 s) a slow start of the holder would
// find tmp's dentry expired and revalidate it with a second LOOKUP (the kernel then holds
// two lookups of the file), so the count checked below would depend on the machine's speed.
test('memfs: an unlinked file held open stays readable after drop_caches, and goes after its close', timed(4 * WAIT_MS, () =>
  withFixture('memfs', { entryTimeout: 3_600_000 }, async (f, mnt) => {
    writeFileSync(join(mnt, 'keep'), 'kept');
    writeFileSync(join(mnt, 'tmp'), 'still here');
    const h = holder(join(mnt, 'tmp'));
    try {
      await h.ready();
      unlinkSync(join(mnt, 'tmp'));
      assert.throws(() => statSync(join(mnt, 'tmp')), /ENOENT/);
      assert.equal(await f.names(''), ['keep']);
      dropCaches('3'); // also the page cache: the next read must reach the server
      const s = await pollStats(f, (x) => x.stats.fs.lookups === 1);
      assert.equal(s.stats.fs, { inodes: 3, referenced: 1, lookups: 1, handles: 1 },
        `root + keep + the open unlinked file (the kernel still references it): ${JSON.stringify(s.stats.fs)}`);
      const reads = s.stats.requests.READ ?? 0;
      assert.equal(await h.read(), { data: 'still here' });
      const s2 = await f.stats();
      assert.ok((s2.stats.requests.READ ?? 0) > reads, 'the read reached the server after the page cache was dropped');
      assert.is(await h.close(), 0);
      dropCaches();
      const s3 = await pollStats(f, (x) => x.stats.fs.inodes === 2 && x.stats.fs.handles === 0 && x.stats.fs.lookups === 0);
      assert.equal(s3.stats.fs, { inodes: 2, referenced: 0, lookups: 0, handles: 0 },
        `after close + drop: root + keep only: ${JSON.stringify(s3.stats.fs)}`);
      assert.is(readFileSync(join(mnt, 'keep'), 'utf8'), 'kept');
    } finally {
      h.kill();
    }
  })));

test('unmount command: the fixture exits 0 and nothing is left mounted', timed(2 * WAIT_MS, async () => {
  const mnt = newMountpoint();
  let f: Fixture | undefined;
  try {
    f = await Fixture.start(mnt, 'gen');
    walkGen(mnt); // the kernel holds references at unmount: it sends no FORGETs, the session releases them
    const s = await f.stats();
    assert.ok(s.stats.fs.referenced > 0);
    void f.send({ cmd: 'unmount' }).catch(() => undefined); // rejected once the fixture has gone
    const ex = await f.exited;
    // The fixture exits as soon as the session closes, usually before it can
    // answer the unmount command or be asked for stats, so the released table
    // cannot be inspected from here (InodeTree.destroy() is covered by the
    // unit tests). What is checked: a clean exit and no mount left. Its output
    // is complete once its pipes are closed ('exit' may come first).
    await f.closed;
    assert.equal(ex, { code: 0, signal: null }, `fixture exit; stderr: ${f.err}`);
    assert.not.ok(isMounted(mnt), 'unmounted');
    assert.is(f.err, '', 'no server log lines');
  } finally {
    if (f) await f.stop();
    cleanup(mnt);
  }
}));

test('no tsfuse test mounts left in /proc/mounts', timed(5000, () => {
  assert.equal(ourMounts(), []);
}));

test.run();
