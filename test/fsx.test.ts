// fsx-like random-operation exerciser (test/fixtures/fsx.ts, run as a Node
// child process) on the passthrough, mounted through the CLI in a child
// process. The exerciser keeps a model of the
// file and checks every read (pread, mmap) and the size after every op
// against it, through pwrite/pread, ftruncate, shared mmap + fdatasync,
// fallocate (0, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE), copy_file_range (within
// the file and to/from a peer file on the same mount), fsync and reopen.
// Runs: natively on the source directory (sanity check of the exerciser),
// twice on the mount with different seeds, and once with max_write=65536 so
// large writes are split into several WRITE requests. After each mounted run
// the source files must equal what the mount shows (sha256).
// Two more runs cover O_DIRECT I/O through the passthrough and the file-handle
// inode mode (--handles prefer); both were bugs found by this exerciser. The
// same seed must give the same op sequence (its verbose log), so a failure
// (whose output names the seed) can be replayed.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, DIST, isMounted, startNode, stop, tempDir as newTempDir, timed, type Proc } from './helpers.js';

const FSX = join(DIST, 'test', 'fixtures', 'fsx.js');
const CLI = 'src/cli/main.js';
const FSNAME = 'tsfuse-test-fsx';
const OPS = 10_000;
const FSX_MS = 6 * 60_000; // one fsx run (killed after this)
const T = 8 * 60_000; // one test

const dirs = new Set<string>();
function tempDir(): string {
  const d = newTempDir('tsfuse-test-fsx-');
  dirs.add(d);
  return d;
}

interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** Runs the exerciser to completion (SIGKILLed after FSX_MS). */
function fsx(file: string, seed: number, extra: string[] = [], ops = OPS): Promise<Ran> {
  const args = [FSX, file, '--ops', String(ops), '--seed', String(seed), ...extra];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), FSX_MS);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

/** Asserts a clean fsx run and returns its summary line. */
function assertOk(r: Ran, what: string, ops = OPS): string {
  const out = `${what}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''} after ${r.ms} ms\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
  assert.is(r.code, 0, out);
  const m = r.stdout.match(new RegExp(`^fsx: ${ops} ops ok \\((.*)\\).*$`, 'm'));
  assert.ok(m, `no summary line\n${out}`);
  for (const op of ['write', 'read', 'truncate', 'mapread', 'mapwrite', 'copy_range', 'copy_peer', 'fsync', 'reopen']) {
    assert.match(m![1], new RegExp(`\\b${op}=\\d+`), `${op} never ran\n${out}`);
  }
  if (process.env.FSX_VERBOSE) process.stdout.write(`\n  ${what}: ${m![0]} [${r.ms} ms]\n`);
  return m![0];
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The source's files must read the same directly and through the mount. */
function assertSame(src: string, mnt: string, names: string[]): void {
  for (const n of names) {
    const a = readFileSync(join(src, n));
    const b = readFileSync(join(mnt, n));
    assert.is(b.length, a.length, `${n}: size on the mount ${b.length}, in the source ${a.length}`);
    assert.is(sha(join(mnt, n)), sha(join(src, n)), `${n}: contents differ between source and mount`);
  }
}

/**
 * Mounts the passthrough of a fresh SRC on a fresh MNT via the CLI, runs `fn`,
 * then SIGTERMs the server (it unmounts) and removes both directories.
 */
async function withPassthrough(extraOpts: string, flags: string[], fn: (src: string, mnt: string, p: Proc) => Promise<void>): Promise<void> {
  const src = tempDir();
  const mnt = tempDir();
  let p: Proc | undefined;
  try {
    p = startNode(CLI, ['passthrough', src, mnt, '-f', '-o', `fsname=${FSNAME}${extraOpts}`, ...flags]);
    await p.waitFor(' mounted on ');
    assert.ok(isMounted(mnt), `${mnt} is not a mount point`);
    await fn(src, mnt, p);
  } finally {
    if (p) await stop(p);
    cleanup(mnt);
    cleanup(src);
  }
}

/** Server stderr lines other than debug traces (errors the framework logged). */
function serverErrors(p: Proc): string[] {
  return p.stderr().split('\n').filter((l) => l && !/^tsfuse: (→|←|INIT:)/.test(l));
}

// ---- tests ------------------------------------------------------------------

test('fsx is reproducible: the same seed gives the same op sequence, another seed another one', timed(T, async () => {
  const src = tempDir();
  try {
    const ops = 400;
    const log = async (seed: number, name: string) => {
      const r = await fsx(join(src, name), seed, ['--copy-peer', join(src, `${name}-peer`), '--direct', '--verbose'], ops);
      assertOk(r, `native seed ${seed} --verbose`, ops);
      const lines = r.stdout.split('\n').filter((l) => /^#\d+ /.test(l));
      assert.ok(lines.length >= ops, `only ${lines.length} op lines for ${ops} ops`);
      return lines.join('\n');
    };
    const a = await log(1234, 'a');
    assert.fixture(await log(1234, 'b'), a, 'seed 1234 run twice: op sequences differ');
    assert.is.not(await log(1235, 'c'), a, 'seeds 1234 and 1235 gave the same op sequence');
  } finally {
    cleanup(src);
  }
}));

test('fsx natively on the source directory (sanity check of the exerciser)', timed(T, async () => {
  const src = tempDir();
  try {
    assertOk(await fsx(join(src, 'file'), 1, ['--copy-peer', join(src, 'peer')]), 'native seed 1');
    const r = await fsx(join(src, 'direct'), 5, ['--copy-peer', join(src, 'peer'), '--direct']);
    assert.match(assertOk(r, 'native seed 5 --direct'), /\bdread=\d+ dwrite=\d+/);
  } finally {
    cleanup(src);
  }
}));

for (const seed of [1, 20240607]) {
  test(`fsx on the passthrough mount, ${OPS} ops, seed ${seed}`, timed(T, async () => {
    await withPassthrough('', [], async (src, mnt, p) => {
      assertOk(await fsx(join(mnt, 'file'), seed, ['--copy-peer', join(mnt, 'peer')]), `mount seed ${seed}`);
      assertSame(src, mnt, ['file', 'peer']);
      assert.equal(serverErrors(p), [], `server logged errors:\n${p.stderr()}`);
    });
  }));
}

test(`fsx on the passthrough mount with max_write=65536 (split writes), ${OPS} ops`, timed(T, async () => {
  // -d: the request trace shows the negotiated max_write and every WRITE's size.
  await withPassthrough(',max_write=65536', ['-d'], async (src, mnt, p) => {
    assertOk(await fsx(join(mnt, 'file'), 7, ['--copy-peer', join(mnt, 'peer'), '--maxop', '512K']), 'mount max_write=65536');
    assertSame(src, mnt, ['file', 'peer']);
    const log = p.stderr();
    assert.match(log, /INIT: protocol 7\.\d+, max_write 65536,/);
    const sizes = [...log.matchAll(/→ \d+ WRITE node=\d+ \{[^}]*"size":(\d+)/g)].map((m) => Number(m[1]));
    assert.ok(sizes.length > 1000, `only ${sizes.length} WRITE requests traced`);
    assert.is(Math.max(...sizes), 65536, 'largest WRITE');
    assert.ok(sizes.filter((s) => s === 65536).length > 100, 'few full 64 KiB WRITEs: were writes split?');
    assert.equal(serverErrors(p), [], `server logged errors:\n${serverErrors(p).slice(0, 20).join('\n')}`);
  });
}));

// The passthrough opens the source file with the caller's flags, O_DIRECT
// included, then reads into / writes from Node buffers that are not aligned
// (PtHandle.read: fs.readBuffer(); WRITE data: a slice of the request), so
// ext4 answers EINVAL to page-aligned O_DIRECT pread/pwrite that work natively.
test('fsx --direct on the passthrough: aligned O_DIRECT pread/pwrite work (the source is opened without O_DIRECT)',
  timed(T, async () => {
    await withPassthrough('', [], async (src, mnt) => {
      assertOk(await fsx(join(mnt, 'file'), 5, ['--copy-peer', join(mnt, 'peer'), '--direct']), 'mount seed 5 --direct');
      assertSame(src, mnt, ['file', 'peer']);
    });
  }));

// File-handle mode: Passthrough keeps the O_PATH root fd as the mount fd for
// open_by_handle_at, which the kernel refuses with EBADF (mount_fd must not
// be O_PATH), so every withFd() of a non-root inode fails: OPEN of an
// existing file, GETXATTR, SETATTR … answer EBADF.
test('fsx on the passthrough with --handles prefer: file-handle inodes serve open/truncate/xattr (readable mount fd for open_by_handle_at)',
  timed(T, async () => {
    await withPassthrough('', ['--handles', 'prefer'], async (src, mnt) => {
      assertOk(await fsx(join(mnt, 'file'), 1, ['--copy-peer', join(mnt, 'peer')]), 'mount --handles prefer seed 1');
      assertSame(src, mnt, ['file', 'peer']);
    });
  }));

test('no fsx mounts or temporary directories left', () => {
  // Mounts of this file made by this run (below its private TMPDIR): another run on the
  // machine (a second checkout, CI) may serve the same fsname at the same moment.
  const left = readFileSync('/proc/mounts', 'utf8').split('\n')
    .filter((l) => l.split(' ')[0] === FSNAME && l.split(' ')[1]?.startsWith(`${tmpdir()}/`));
  assert.equal(left, [], 'fuse mounts of this file still in /proc/mounts');
  for (const d of dirs) {
    assert.not.ok(isMounted(d), `${d} still mounted`);
    assert.not.ok(existsSync(d), `${d} not removed`);
  }
});

test.run();
