// End-to-end: the hello example mounted for real. The server always runs in a
// child process (test/fixtures/serve-hello.ts or the CLI); this process, or
// processes it spawns (ls, cat, stat, node), make the client syscalls.
// Covers: serving, errors from open, mount options in /proc/mounts, failed
// mounts (ENOENT, ENOTDIR, EBUSY, ENOTCONN, EPERM), option errors, unmount
// (SIGTERM, busy → EBUSY, lazy), the CLI, and concurrent readers.
import { spawn, type SpawnOptions } from 'node:child_process';
import {
  chmodSync, closeSync, constants as C, openSync, readdirSync, readFileSync, readSync, statfsSync, statSync, truncateSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hello } from '../examples/hello.js';
import { mount, unmount, type SessionOptions } from '../src/index.js';
import { cleanup, DIST, isMounted, run, startNode, stop, tempDir as newTempDir, timed, type Proc, errCode, WAIT_MS } from './helpers.js';

const FIXTURE = 'test/fixtures/serve-hello.js';
const CLI = 'src/cli/main.js';
const TEXT = 'Hello, world!\n';
const T = 3 * WAIT_MS; // per-test time-out: a hang, never a slow machine

// ---- helpers ----------------------------------------------------------------

/** Every temporary directory this file made, checked by the last test. */
const dirs = new Set<string>();
function tempDir(): string {
  const d = newTempDir();
  dirs.add(d);
  return d;
}

/** Starts the fixture on `mnt` and waits for READY (rejects with its output if the mount fails). */
async function serve(mnt: string, opts: SessionOptions = {}): Promise<Proc> {
  const p = startNode(FIXTURE, [mnt, JSON.stringify(opts)]);
  try {
    await p.waitFor(`READY ${mnt}\n`);
  } catch (e) {
    await stop(p);
    throw new Error(`${(e as Error).message}; stdout: ${p.stdout()}`);
  }
  return p;
}

/** A fresh mount point served by the fixture; always stopped, unmounted and removed afterwards. */
async function withHello(opts: SessionOptions, fn: (mnt: string, p: Proc) => Promise<void> | void): Promise<void> {
  const mnt = tempDir();
  let p: Proc | undefined;
  try {
    p = await serve(mnt, opts);
    await fn(mnt, p);
  } finally {
    if (p) await stop(p);
    cleanup(mnt);
  }
}


interface MountFail { exit: number | null; code: string; message: string }

/**
 * Runs the fixture expecting the mount to fail; returns the code and message
 * it printed. If it mounts after all, it is stopped and the test fails.
 */
async function mountFail(mnt: string, opts: SessionOptions = {}, spawnOpts: SpawnOptions = {}, prefix: string[] = []): Promise<MountFail> {
  const argv = [...prefix, process.execPath, join(DIST, FIXTURE), mnt, JSON.stringify(opts)];
  const child = spawn(argv[0], argv.slice(1), { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const mounted = await new Promise<boolean>((resolve) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('READY')) resolve(true);
    });
    child.on('close', () => resolve(false));
  });
  if (mounted) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    cleanup(mnt);
    assert.unreachable(`the mount on ${mnt} succeeded; expected a failure`);
  }
  const m = /^MOUNTFAIL (\S+) (.*)$/m.exec(stdout);
  assert.ok(m, `no MOUNTFAIL line; exit ${child.exitCode ?? child.signalCode}; stdout: ${stdout}; stderr: ${stderr}`);
  return { exit: child.exitCode, code: m![1], message: m![2] };
}

/** The /proc/mounts line for `mnt`, split into fields, or undefined. */
function procMount(mnt: string): string[] | undefined {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[1] === mnt);
}


/** Resolves with the process's exit, or rejects after `ms` (a hang: pass WAIT_MS). */
function exitWithin(p: Proc, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`server did not exit within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// ---- serving ----------------------------------------------------------------

test('readdir of the root lists exactly ["hello"]', timed(T, () => withHello({}, async (mnt) => {
  assert.equal(readdirSync(mnt), ['hello']);
  const ls = await run('ls', ['-a', mnt]);
  assert.is(ls.code, 0, ls.stderr);
  assert.equal(ls.stdout.split('\n').filter(Boolean).sort(), ['.', '..', 'hello']);
})));

test('stat: the root is a directory, /hello a regular file of 14 bytes with mode 0444', timed(T, () => withHello({}, async (mnt) => {
  const root = statSync(mnt);
  assert.ok(root.isDirectory());
  assert.is(root.mode & 0o7777, 0o755);
  const f = statSync(join(mnt, 'hello'));
  assert.ok(f.isFile());
  assert.is(f.size, 14);
  assert.is(f.mode & 0o7777, 0o444);
  const st = await run('stat', ['-c', '%s %a %F', join(mnt, 'hello')]);
  assert.is(st.code, 0, st.stderr);
  assert.is(st.stdout, '14 444 regular file\n');
})));

test('reading /hello gives the text, from this process and through cat', timed(T, () => withHello({}, async (mnt) => {
  assert.is(readFileSync(join(mnt, 'hello'), 'utf8'), TEXT);
  const cat = await run('cat', [join(mnt, 'hello')]);
  assert.is(cat.code, 0, cat.stderr);
  assert.is(cat.stdout, TEXT);
  // Reads at an offset and past the end.
  const fd = openSync(join(mnt, 'hello'), 'r');
  try {
    const buf = Buffer.alloc(64);
    assert.is(readFileSync(fd).length, 14);
    const n = readSync(fd, buf, 0, 64, 7);
    assert.is(buf.subarray(0, n).toString(), 'world!\n');
    assert.is(readSync(fd, buf, 0, 64, 100), 0);
  } finally {
    closeSync(fd);
  }
})));

test('server statistics count the requests it answered', timed(T, () => withHello({}, async (mnt, p) => {
  readFileSync(join(mnt, 'hello'));
  p.child.kill('SIGUSR2');
  await p.waitFor('STATS ');
  const line = p.stdout().split('\n').find((l) => l.startsWith('STATS '))!;
  const stats = JSON.parse(line.slice(6)) as { requests: Record<string, number>; malformed: number };
  assert.ok((stats.requests.LOOKUP ?? 0) >= 1, line);
  assert.ok((stats.requests.OPEN ?? 0) >= 1, line);
  assert.ok((stats.requests.READ ?? 0) >= 1, line);
  assert.is(stats.malformed, 0);
})));

// ---- errors from open / setattr ----------------------------------------------

test('opening a missing name fails with ENOENT', timed(T, () => withHello({}, (mnt) => {
  assert.is(errCode(() => openSync(join(mnt, 'nope'), 'r')), 'ENOENT');
  assert.is(errCode(() => statSync(join(mnt, 'nope'))), 'ENOENT');
})));

test('opening /hello for writing fails with EACCES; so do truncate and chmod', timed(T, () => withHello({}, (mnt) => {
  const f = join(mnt, 'hello');
  assert.is(errCode(() => openSync(f, 'r+')), 'EACCES');
  assert.is(errCode(() => openSync(f, 'w')), 'EACCES');
  assert.is(errCode(() => openSync(f, 'a')), 'EACCES');
  assert.is(errCode(() => writeFileSync(f, 'x')), 'EACCES');
  assert.is(errCode(() => truncateSync(f, 0)), 'EACCES');
  assert.is(errCode(() => chmodSync(f, 0o644)), 'EACCES');
  assert.is(readFileSync(f, 'utf8'), TEXT);
})));

test('with readOnly: true, opening for writing fails with EROFS and the mount is ro', timed(T, () => withHello({ readOnly: true }, (mnt) => {
  assert.is(errCode(() => openSync(join(mnt, 'hello'), 'r+')), 'EROFS');
  assert.is(errCode(() => openSync(join(mnt, 'new'), 'w')), 'EROFS');
  assert.ok(procMount(mnt)![3].split(',').includes('ro'), procMount(mnt)!.join(' '));
  assert.is(readFileSync(join(mnt, 'hello'), 'utf8'), TEXT);
})));

// ---- /proc/mounts -------------------------------------------------------------

test('/proc/mounts shows type fuse.<subtype> and the fsname as source', timed(T, async () => {
  await withHello({ fsname: 'tsfuse-test-named', subtype: 'hellotest' }, (mnt) => {
    const f = procMount(mnt);
    assert.ok(f, `${mnt} not in /proc/mounts`);
    assert.is(f![0], 'tsfuse-test-named');
    assert.is(f![2], 'fuse.hellotest');
    assert.ok(f![3].split(',').includes('nosuid'), f!.join(' '));
    assert.ok(f![3].split(',').includes('nodev'), f!.join(' '));
  });
  await withHello({}, (mnt) => {
    const f = procMount(mnt)!;
    assert.is(f[0], 'tsfuse-test-hello');
    assert.is(f[2], 'fuse.tsfuse', 'default subtype');
  });
}));

// ---- failed mounts ------------------------------------------------------------

test('a missing mountpoint: mount() rejects with ENOENT and a message naming it', timed(T, async () => {
  const dir = tempDir();
  const mnt = join(dir, 'missing');
  try {
    const err = await mount(mnt, hello, { fsname: 'tsfuse-test-hello' }).then(
      async (s) => { await s.unmount({ lazy: true }); return undefined; }, (e: NodeJS.ErrnoException) => e);
    assert.ok(err, 'mount() succeeded on a missing mountpoint');
    assert.is(err!.code, 'ENOENT');
    assert.ok(err!.message.includes(mnt), err!.message);
    const f = await mountFail(mnt);
    assert.is(f.exit, 3);
    assert.is(f.code, 'ENOENT');
    assert.ok(f.message.includes('does not exist'), f.message);
  } finally {
    cleanup(dir);
  }
}));

test('a regular file as mountpoint: mount() rejects with ENOTDIR', timed(T, async () => {
  const dir = tempDir();
  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  try {
    const err = await mount(file, hello, { fsname: 'tsfuse-test-hello' }).then(
      async (s) => { await s.unmount({ lazy: true }); return undefined; }, (e: NodeJS.ErrnoException) => e);
    assert.ok(err, 'mount() succeeded on a regular file');
    assert.is(err!.code, 'ENOTDIR');
    assert.ok(err!.message.includes('not a directory'), err!.message);
    const f = await mountFail(file);
    assert.is(f.exit, 3);
    assert.is(f.code, 'ENOTDIR');
  } finally {
    cleanup(dir);
  }
}));

test('a directory that already is a mount point: the mount fails with EBUSY', timed(T, () => withHello({}, async (mnt) => {
  const f = await mountFail(mnt);
  assert.is(f.exit, 3);
  assert.is(f.code, 'EBUSY');
  assert.ok(f.message.includes('already a mount point'), f.message);
  // Still exactly one mount there, and it still serves.
  assert.is(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mnt).length, 1);
  assert.is(readFileSync(join(mnt, 'hello'), 'utf8'), TEXT);
})));

test('a dead mount: statfs gives ENOTCONN, a new mount fails with ENOTCONN, cleanStale mounts and serves', timed(T, async () => {
  const mnt = tempDir();
  let p: Proc | undefined;
  try {
    p = await serve(mnt);
    p.child.kill('SIGKILL');
    await exitWithin(p, WAIT_MS);
    assert.ok(isMounted(mnt), 'the mount should outlive a killed server');
    assert.is(errCode(() => statfsSync(mnt)), 'ENOTCONN');

    const f = await mountFail(mnt);
    assert.is(f.exit, 3);
    assert.is(f.code, 'ENOTCONN');
    assert.ok(f.message.includes('cleanStale'), f.message);

    p = await serve(mnt, { cleanStale: true });
    assert.is(readFileSync(join(mnt, 'hello'), 'utf8'), TEXT);
    statfsSync(mnt);
    assert.is(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mnt).length, 1,
      'the dead mount was detached, not stacked over');
  } finally {
    if (p) await stop(p);
    cleanup(mnt);
  }
}));

// Without privilege the real errno depends on /dev/fuse's mode: 0600 (as in
// this container) → open fails with EACCES; 0666 → mount(2) fails with EPERM.
// Either way the message says what is needed.
test('without privilege (uid 65534) mountMethod "mount" fails with EACCES/EPERM naming CAP_SYS_ADMIN', timed(T, async () => {
  const mnt = tempDir();
  chmodSync(mnt, 0o755);
  try {
    const f = await mountFail(mnt, { mountMethod: 'mount' }, { uid: 65534, gid: 65534 });
    const devMode = statSync('/dev/fuse').mode & 0o777;
    assert.is(f.exit, 3);
    assert.is(f.code, devMode & 0o006 ? 'EPERM' : 'EACCES', `got ${f.code}: ${f.message} (/dev/fuse mode ${devMode.toString(8)})`);
    assert.ok(f.message.includes('CAP_SYS_ADMIN'), f.message);
  } finally {
    cleanup(mnt);
  }
}));

test('root without CAP_SYS_ADMIN: mountMethod "mount" fails with EPERM naming the capability', timed(T, async () => {
  const mnt = tempDir();
  try {
    const f = await mountFail(mnt, { mountMethod: 'mount' }, {}, ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin', '--']);
    assert.is(f.exit, 3);
    assert.is(f.code, 'EPERM');
    assert.ok(f.message.includes('CAP_SYS_ADMIN'), f.message);
  } finally {
    cleanup(mnt);
  }
}));

// ---- bad options ----------------------------------------------------------------

test('mount() with maxWrite: 3 rejects with a message naming maxWrite, and mounts nothing', timed(T, async () => {
  const mnt = tempDir();
  try {
    let err: (Error & { code?: string; option?: string }) | undefined;
    try {
      const s = await mount(mnt, hello, { fsname: 'tsfuse-test-hello', maxWrite: 3 });
      await s.unmount({ lazy: true });
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, 'mount() accepted maxWrite: 3');
    assert.ok(err!.message.includes('maxWrite'), err!.message);
    assert.is(err!.code, 'EINVAL');
    assert.not.ok(isMounted(mnt));
  } finally {
    cleanup(mnt);
  }
}));

test('the CLI rejects -o bogus with a non-zero exit and names "bogus" on stderr', timed(T, async () => {
  const mnt = tempDir();
  try {
    const r = await run(process.execPath, [join(DIST, CLI), 'hello', mnt, '-o', 'bogus']);
    assert.ok(r.code !== 0 && r.code !== null, `exit ${r.code ?? r.signal}`);
    assert.ok(r.stderr.includes('bogus'), r.stderr);
    assert.not.ok(isMounted(mnt));
  } finally {
    cleanup(mnt);
  }
}));

// ---- unmount ------------------------------------------------------------------

test('SIGTERM to the server unmounts and it exits 0', timed(T, async () => {
  const mnt = tempDir();
  let p: Proc | undefined;
  try {
    p = await serve(mnt);
    assert.ok(procMount(mnt));
    p.child.kill('SIGTERM');
    const { code, signal } = await exitWithin(p, WAIT_MS);
    assert.is(code, 0, `exit ${code ?? signal}; stdout: ${p.stdout()}; stderr: ${p.stderr()}`);
    assert.is(procMount(mnt), undefined);
    assert.not.ok(isMounted(mnt));
  } finally {
    if (p) await stop(p);
    cleanup(mnt);
  }
}));

test('a busy mount (child with cwd inside): unmount() rejects with EBUSY; lazy unmount succeeds and the server exits', timed(T, async () => {
  const mnt = tempDir();
  let p: Proc | undefined;
  let busy: ReturnType<typeof spawn> | undefined;
  try {
    p = await serve(mnt);
    busy = spawn('sleep', ['60'], { cwd: mnt, stdio: 'ignore' });
    await new Promise((r) => busy!.once('spawn', r));
    const err = await unmount(mnt).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    assert.ok(err, 'unmount of a busy mount succeeded');
    assert.is(err!.code, 'EBUSY');
    assert.ok(err!.message.includes('lazy'), err!.message);
    assert.ok(isMounted(mnt));

    await unmount(mnt, { lazy: true });
    assert.not.ok(isMounted(mnt), 'lazy unmount detaches at once');
    busy.kill('SIGKILL'); // the last user goes: the kernel ends the connection
    const { code } = await exitWithin(p, WAIT_MS);
    assert.is(code, 0, p.stderr());
  } finally {
    busy?.kill('SIGKILL');
    if (p) await stop(p);
    cleanup(mnt);
  }
}));

test('a busy mount (open directory fd): unmount() rejects with EBUSY; lazy unmount succeeds and the server exits', timed(T, async () => {
  const mnt = tempDir();
  let p: Proc | undefined;
  let fd: number | undefined;
  try {
    p = await serve(mnt);
    fd = openSync(mnt, C.O_RDONLY | C.O_DIRECTORY);
    const err = await unmount(mnt).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    assert.ok(err, 'unmount of a busy mount succeeded');
    assert.is(err!.code, 'EBUSY');
    await unmount(mnt, { lazy: true });
    assert.not.ok(isMounted(mnt));
    closeSync(fd);
    fd = undefined;
    const { code } = await exitWithin(p, WAIT_MS);
    assert.is(code, 0, p.stderr());
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (p) await stop(p);
    cleanup(mnt);
  }
}));

// ---- the CLI ----------------------------------------------------------------------

test('the CLI mounts hello, serves it, and exits 0 on SIGINT with the mount gone', timed(T, async () => {
  const mnt = tempDir();
  const p = startNode(CLI, ['hello', mnt, '-f', '-o', 'fsname=tsfuse-test-cli']);
  try {
    await p.waitFor('mounted');
    assert.ok(p.stdout().split('\n').some((l) => l.includes('mounted') && l.includes(mnt)), p.stdout());
    assert.is(procMount(mnt)?.[0], 'tsfuse-test-cli');
    assert.is(readFileSync(join(mnt, 'hello'), 'utf8'), TEXT);
    p.child.kill('SIGINT');
    const { code } = await exitWithin(p, WAIT_MS);
    assert.is(code, 0, p.stderr());
    assert.not.ok(isMounted(mnt));
  } finally {
    await stop(p);
    cleanup(mnt);
  }
}));

// ---- concurrency ------------------------------------------------------------------

test('4 concurrent reader processes × 200 reads all get the text', timed(60_000, () => withHello({}, async (mnt) => {
  const script = `const fs = require('fs'); let ok = 0, bad = 0;
    for (let i = 0; i < 200; i++) { if (fs.readFileSync(process.env.FILE, 'utf8') === ${JSON.stringify(TEXT)}) ok++; else bad++; }
    console.log(ok + ' ' + bad);`;
  const env = { ...process.env, FILE: join(mnt, 'hello') };
  const results = await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, ['-e', script], 45_000, { env })));
  for (const r of results) {
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '200 0\n');
  }
})));

test('no mount point of this file is left mounted', () => {
  // Only our own directories: other test files may be mounting concurrently.
  const left = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '))
    .filter((f) => f[2]?.startsWith('fuse') && dirs.has(f[1]));
  assert.equal(left, []);
});

test.run();
