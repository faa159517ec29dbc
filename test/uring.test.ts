// FUSE over io_uring (`-o io_uring`, mount option ioUring): the passthrough served through
// one ring per CPU, checked from the outside. The server runs in a child process (the CLI
// with -f); clients are other processes (sh, dd, cmp, stat). The fuse module parameter
// enable_uring is set to Y for the tests that need it and put back as it was afterwards.
// That requests really went through the rings is read from /proc/PID/fdinfo of the
// server's io_uring fds (CqTail counts the completions, one per request a ring carried).
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, DIST, isMounted, run, startNode, stop, tempDir, timed, WAIT_MS, type Proc } from './helpers.js';

const CLI = 'src/cli/main.js';
const PARAM = '/sys/module/fuse/parameters/enable_uring';
const T = 4 * WAIT_MS;

/** Runs `fn` with enable_uring set to `value`, restoring the old value after. */
async function withParam(value: 'Y' | 'N', fn: () => Promise<void>): Promise<void> {
  const old = readFileSync(PARAM, 'utf8').trim();
  writeFileSync(PARAM, value);
  try {
    await fn();
  } finally {
    writeFileSync(PARAM, old);
  }
}

/** The passthrough of a fresh source on a fresh mount point, with -o io_uring; torn down after. */
async function withServer(fn: (src: string, mnt: string, p: Proc) => Promise<void>): Promise<void> {
  const src = tempDir();
  const mnt = tempDir();
  let p: Proc | undefined;
  try {
    p = startNode(CLI, ['passthrough', src, mnt, '-f', '-o', 'io_uring']);
    await p.waitFor('mounted on');
    await fn(src, mnt, p);
  } finally {
    if (p) await stop(p);
    cleanup(mnt);
    cleanup(src);
  }
}

/** Completions the server's io_uring fds have delivered so far (sum of CqTail), and how many rings. */
function ringCompletions(pid: number): { rings: number; completions: number } {
  let rings = 0;
  let completions = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    if (target !== 'anon_inode:[io_uring]') continue;
    rings++;
    const m = /CqTail:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    if (m) completions += Number(m[1]);
  }
  return { rings, completions };
}

async function sh(script: string): Promise<string> {
  const r = await run('sh', ['-c', script], WAIT_MS);
  assert.is(r.code, 0, `sh -c ${script}: ${r.stderr}`);
  return r.stdout;
}

test('io_uring: the passthrough serves through one ring per CPU; files, names and data come out right', timed(T, async () => {
  if (!existsSync(PARAM)) throw new Error(`${PARAM} is missing: this kernel has no FUSE over io_uring (Linux 6.14+)`);
  await withParam('Y', () => withServer(async (src, mnt, p) => {
    assert.ok(p.stderr().includes('io_uring: serving through'), `the server says it serves through the rings: ${p.stderr()}`);
    const before = ringCompletions(p.child.pid!);
    assert.ok(before.rings >= 1, `the server holds io_uring fds: ${JSON.stringify(before)}`);
    // Metadata and data from another process, through the mount.
    await sh(`mkdir ${mnt}/d && for i in $(seq 200); do echo "file $i" > ${mnt}/d/f$i; done && mv ${mnt}/d/f1 ${mnt}/d/g1 && rm ${mnt}/d/f2`);
    await sh(`dd if=/dev/urandom of=${src}/big bs=1M count=4 2>/dev/null && echo 3 > /proc/sys/vm/drop_caches && cmp ${src}/big ${mnt}/big`);
    await sh(`dd if=${src}/big of=${mnt}/copy bs=64k 2>/dev/null && cmp ${src}/big ${src}/copy`);
    const names = (await sh(`ls ${mnt}/d`)).split('\n').filter(Boolean).sort();
    assert.is(names.length, 199);
    assert.ok(names.includes('g1') && !names.includes('f1') && !names.includes('f2'));
    assert.is(readFileSync(join(src, 'd', 'f77'), 'utf8'), 'file 77\n');
    assert.is((await sh(`cat ${mnt}/d/f150`)), 'file 150\n');
    const after = ringCompletions(p.child.pid!);
    // Some 200 creations alone are 800+ requests; the /dev/fuse fd carries only FORGET and INTERRUPT.
    assert.ok(after.completions - before.completions >= 800, `requests went through the rings: ${JSON.stringify({ before, after })}`);
    assert.not.match(p.stderr(), /entry \d+ failed/);
  }));
}));

test('io_uring: unmounting (SIGTERM) ends the session cleanly: exit 0, nothing mounted, the rings closed', timed(T, async () => {
  await withParam('Y', async () => {
    const src = tempDir();
    const mnt = tempDir();
    const p = startNode(CLI, ['passthrough', src, mnt, '-f', '-o', 'io_uring']);
    try {
      await p.waitFor('mounted on');
      mkdirSync(join(src, 'x'));
      await sh(`stat ${mnt}/x >/dev/null && ls ${mnt} >/dev/null`);
      p.child.kill('SIGTERM');
      const { code } = await p.exited;
      assert.is(code, 0, `the server exits 0: ${p.stderr()}`);
      assert.not.ok(isMounted(mnt), 'nothing stays mounted');
    } finally {
      await stop(p);
      cleanup(mnt);
      cleanup(src);
    }
  });
}));

test('io_uring asked for where the kernel does not offer it: one line says why, /dev/fuse serves', timed(T, async () => {
  if (!existsSync(PARAM)) return; // no io_uring at all: the same fallback, nothing more to show
  await withParam('N', () => withServer(async (src, mnt, p) => {
    await sh(`echo hi > ${mnt}/a && cat ${mnt}/a >/dev/null`);
    assert.is(readFileSync(join(src, 'a'), 'utf8'), 'hi\n');
    assert.match(p.stderr(), /does not offer FUSE over io_uring .*enable_uring/);
    assert.is(ringCompletions(p.child.pid!).rings, 0, 'no ring was set up');
  }));
}));

test('io_uring with --supervise (crash takeover) is refused: exit non-zero, the message names io_uring, nothing mounted', timed(T, async () => {
  const src = tempDir();
  const mnt = tempDir();
  try {
    const r = await run(process.execPath, [join(DIST, CLI), 'passthrough', src, mnt, '--supervise', '-o', 'io_uring'], WAIT_MS);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /invalid option io_uring: a supervised session \(crash takeover\) reads \/dev\/fuse/);
    assert.not.ok(isMounted(mnt), 'nothing mounted');
  } finally {
    cleanup(mnt);
    cleanup(src);
  }
}));

test.run();
