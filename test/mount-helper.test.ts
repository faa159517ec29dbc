// The ways a tsfuse server is started and stopped from outside: mount(8) through the
// helper `tsfuse install-helper` writes (mount -t fuse.tsfuse, an fstab line), a
// /dev/fuse fd a privileged manager (this test process) opened and mounted and handed
// to an unprivileged server (`tsfuse passthrough SRC /dev/fd/N`, with -f and in the
// background), `tsfuse umount` of a busy mount (EBUSY naming the holders; -l detaches),
// and SIGTERM/SIGINT to a background server. The helper is installed where mount(8)
// looks for it (/sbin); a file already there is put back afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { native } from '../src/transport/index.js';
import { DIST, WAIT_MS, alive, cleanup, errCode, forceUnmount, isMounted, poll, procsWith, run, tempDir, timed, type Ran } from './helpers.js';

const CLI = join(DIST, 'src/cli/main.js');
const HELPER = '/sbin/mount.fuse.tsfuse';
const TEXT = 'hello through tsfuse\n';
const NESTED = 'nested file\n';
const bases: string[] = [];

interface Tree { base: string; src: string; mnt: string }

/** A fresh base (traversable by uid 65534) with SRC (f, d/g) and an empty MNT. */
function tree(): Tree {
  const base = tempDir('tsfuse-test-mhelper-');
  bases.push(base);
  chmodSync(base, 0o755);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(join(src, 'd'), { recursive: true, mode: 0o755 });
  chmodSync(src, 0o755);
  chmodSync(join(src, 'd'), 0o755);
  mkdirSync(mnt, { mode: 0o755 });
  writeFileSync(join(src, 'f'), TEXT, { mode: 0o644 });
  writeFileSync(join(src, 'd', 'g'), NESTED, { mode: 0o644 });
  chmodSync(join(src, 'f'), 0o644);
  chmodSync(join(src, 'd', 'g'), 0o644);
  return { base, src, mnt };
}

/** `node main.js ...args` to completion. */
function cli(args: string[], opts: SpawnOptions = {}): Promise<Ran> {
  return run(process.execPath, [CLI, ...args], WAIT_MS, opts);
}

/** The "server pid N" a background start printed. */
function serverPid(out: string): number {
  const m = /server pid (\d+)/.exec(out);
  assert.ok(m, `no "server pid N" in: ${out}`);
  return Number(m![1]);
}


const gone = (pid: number) => !alive(pid);
const processesWith = procsWith;

async function waitGone(pid: number, what: string): Promise<void> {
  assert.ok(await poll(() => gone(pid), WAIT_MS, 20), `${what} (pid ${pid}) is still running`);
}

/** SIGKILLs `pid` (a process this test started) if it still runs; never throws. */
function kill(pid: number | undefined): void {
  if (pid === undefined || gone(pid)) return;
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
}


/** The mountinfo line of `mnt`: its per-mount options, fstype and source. */
function mountinfo(mnt: string): { opts: string[]; fstype: string; source: string } {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt);
  assert.ok(line, `${mnt} is not in /proc/self/mountinfo`);
  const [left, right] = line!.split(' - ');
  const [fstype, source] = right.split(' ');
  return { opts: left.split(' ')[5].split(','), fstype, source };
}

/**
 * Runs `fn` with `tsfuse install-helper` having written /sbin/mount.fuse.tsfuse; whatever
 * was there before (a file or a symlink) is put back afterwards, else the helper removed.
 */
async function withSbinHelper(fn: () => Promise<void>): Promise<void> {
  let saved: { link: string } | { data: Buffer; mode: number } | undefined;
  try {
    const st = lstatSync(HELPER);
    saved = st.isSymbolicLink() ? { link: readlinkSync(HELPER) } : { data: readFileSync(HELPER), mode: st.mode & 0o7777 };
  } catch { /* none there */ }
  try {
    const r = await cli(['install-helper']);
    assert.is(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`wrote ${HELPER}`), r.stdout);
    await fn();
  } finally {
    rmSync(HELPER, { force: true });
    if (saved && 'link' in saved) symlinkSync(saved.link, HELPER);
    else if (saved) { writeFileSync(HELPER, saved.data); chmodSync(HELPER, saved.mode); }
  }
}

/** A child process with its output captured (the CLI, with extra fds or another uid). */
interface Child {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(text: string): Promise<void>;
}

function startCli(args: string[], opts: SpawnOptions): Child {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: '/', ...opts });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })));
  return {
    child, exited, out: () => out, err: () => err,
    waitFor: (text) => new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => { off(); reject(new Error(`no "${text}" within ${WAIT_MS} ms; stdout: ${out} stderr: ${err}`)); }, WAIT_MS);
      const check = () => { if (out.includes(text)) { off(); resolve(); } };
      const onExit = (code: number | null) => { off(); reject(new Error(`exited (${code}) before "${text}"; stdout: ${out} stderr: ${err}`)); };
      const off = () => { clearTimeout(t); child.stdout!.off('data', check); child.off('exit', onExit); };
      child.stdout!.on('data', check);
      child.on('exit', onExit);
      check();
    }),
  };
}

/** Waits for `c` to exit, failing (and killing it) after WAIT_MS. */
async function exitOf(c: Child, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { c.child.kill('SIGKILL'); reject(new Error(`${what} did not exit within ${WAIT_MS} ms`)); }, WAIT_MS);
  });
  try {
    return await Promise.race([c.exited, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** The uid (real) of process `pid`, from /proc. */
function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
  return Number(line!.split(/\s+/)[1]);
}

/** Checks, from other processes, that `mnt` mirrors the tree() source `src`. */
async function checkMirror(src: string, mnt: string): Promise<void> {
  const cat = await run('cat', [join(mnt, 'f'), join(mnt, 'd', 'g')]);
  assert.is(cat.code, 0, cat.stderr);
  assert.is(cat.stdout, TEXT + NESTED);
  const ls = await run('ls', ['-a', mnt]);
  assert.is(ls.code, 0, ls.stderr);
  assert.equal(ls.stdout.split('\n').filter(Boolean).sort(), ['.', '..', 'd', 'f']);
  const st = await run('stat', ['-c', '%n|%s|%F|%a', join(mnt, 'f'), join(mnt, 'd')]);
  assert.is(st.code, 0, st.stderr);
  assert.equal(st.stdout.trim().split('\n'), [`${join(mnt, 'f')}|${TEXT.length}|regular file|644`, `${join(mnt, 'd')}|${statSync(join(src, 'd')).size}|directory|755`]);
}

// ---- install-helper and mount(8) ------------------------------------------------------

test('install-helper --dir DIR writes an executable mount.fuse.tsfuse that runs this node and main.js', timed(60_000, async () => {
  const base = tempDir('tsfuse-test-mhelper-');
  bases.push(base);
  const dir = join(base, 'bin', 'sub'); // created if missing
  const r = await cli(['install-helper', '--dir', dir]);
  assert.is(r.code, 0, r.stderr);
  const path = join(dir, 'mount.fuse.tsfuse');
  assert.ok(r.stdout.includes(`wrote ${path}`), r.stdout);
  const st = statSync(path);
  assert.ok(st.isFile());
  assert.is(st.mode & 0o111, 0o111, `mode ${(st.mode & 0o777).toString(8)}`);
  const script = readFileSync(path, 'utf8');
  assert.ok(script.startsWith('#!/bin/sh\n'), script);
  assert.ok(script.includes(`'${process.execPath}'`), script);
  assert.ok(script.includes(`'${CLI}' mount-helper "$@"`), script);
  // It runs: with no arguments, the helper's own usage line (from main.js, through this node).
  const u = await run(path, []);
  assert.is(u.code, 1, u.stderr);
  assert.ok(u.stderr.includes('usage: mount.fuse.tsfuse SRC MNT'), u.stderr);
}));

test('mount -t fuse.tsfuse SRC MNT -o ro through /sbin/mount.fuse.tsfuse: serves read-only in the background; umount(8) stops the server', timed(120_000, async () => {
  const { base, src, mnt } = tree();
  let pid: number | undefined;
  try {
    await withSbinHelper(async () => {
      const m = await run('mount', ['-t', 'fuse.tsfuse', src, mnt, '-o', 'ro'], WAIT_MS);
      assert.is(m.code, 0, m.stderr);
      pid = serverPid(m.stdout);
      assert.ok(isMounted(mnt), 'mounted when mount(8) returned');
      assert.not.ok(gone(pid), 'the server runs in the background');
      const mi = mountinfo(mnt);
      assert.is(mi.fstype, 'fuse.tsfuse');
      assert.is(mi.source, src);
      assert.ok(mi.opts.includes('ro'), mi.opts.join(','));
      const cat = await run('cat', [join(mnt, 'f')]);
      assert.is(cat.code, 0, cat.stderr);
      assert.is(cat.stdout, TEXT);
      assert.is(errCode(() => writeFileSync(join(mnt, 'f'), 'x')), 'EROFS');
      assert.is(errCode(() => writeFileSync(join(mnt, 'new'), 'x')), 'EROFS');
      const sh = await run('sh', ['-c', 'echo x > "$0"', join(mnt, 'f')]);
      assert.ok(sh.code !== 0 && /read-only/i.test(sh.stderr), `${sh.code} ${sh.stderr}`);
      assert.is(readFileSync(join(src, 'f'), 'utf8'), TEXT, 'the source is unchanged');
      const u = await run('umount', [mnt], WAIT_MS);
      assert.is(u.code, 0, u.stderr);
      assert.not.ok(isMounted(mnt));
      await waitGone(pid, 'the server after umount(8)');
    });
  } finally {
    forceUnmount(mnt);
    kill(pid);
    cleanup(base);
  }
}));

test('fstab: "SRC MNT fuse.tsfuse defaults 0 0" in mount --fstab FILE MNT mounts the passthrough; umount stops it', timed(120_000, async () => {
  const { base, src, mnt } = tree();
  let pid: number | undefined;
  try {
    const fstab = join(base, 'fstab');
    writeFileSync(fstab, `# tsfuse test\n${src} ${mnt} fuse.tsfuse defaults 0 0\n`);
    await withSbinHelper(async () => {
      const m = await run('mount', ['--fstab', fstab, mnt], WAIT_MS);
      assert.is(m.code, 0, m.stderr);
      pid = serverPid(m.stdout);
      const mi = mountinfo(mnt);
      assert.is(mi.fstype, 'fuse.tsfuse');
      assert.is(mi.source, src);
      assert.ok(mi.opts.includes('rw'), mi.opts.join(','));
      await checkMirror(src, mnt);
      // rw: a write through the mount reaches the source.
      writeFileSync(join(mnt, 'written'), 'via fstab');
      assert.is(readFileSync(join(src, 'written'), 'utf8'), 'via fstab');
      const u = await run('umount', [mnt], WAIT_MS);
      assert.is(u.code, 0, u.stderr);
      assert.not.ok(isMounted(mnt));
      await waitGone(pid, 'the server after umount(8)');
    });
  } finally {
    forceUnmount(mnt);
    kill(pid);
    cleanup(base);
  }
}));

test('mount -t fuse.tsfuse with a missing source: exit 32, stderr names the source, nothing mounted, no server left', timed(120_000, async () => {
  const { base, mnt } = tree();
  const missing = join(base, 'no-such-source');
  try {
    await withSbinHelper(async () => {
      const m = await run('mount', ['-t', 'fuse.tsfuse', missing, mnt], WAIT_MS);
      assert.is(m.code, 32, `${m.code}: ${m.stderr}`);
      assert.ok(m.stderr.includes(missing), m.stderr);
      assert.ok(/ENOENT|no such file/i.test(m.stderr), m.stderr);
      assert.not.ok(isMounted(mnt));
      assert.equal(processesWith(missing), [], 'no server process for the missing source');
    });
  } finally {
    forceUnmount(mnt);
    cleanup(base);
  }
}));

// ---- a /dev/fuse fd handed over by a privileged manager ---------------------------------

const MS_NOSUID_NODEV = 2 | 4;

for (const mode of ['-f', 'background'] as const) {
  test(`fd hand-off (${mode}): the manager mounts, uid 65534 serves /dev/fd/3; unmounting it stops the server`, timed(120_000, async () => {
    const { base, src, mnt } = tree();
    let fd: number | undefined = native.openDevice('/dev/fuse');
    let c: Child | undefined;
    let pid: number | undefined;
    try {
      native.mount(src, mnt, 'fuse.tsfuse-handoff', MS_NOSUID_NODEV, `fd=${fd},rootmode=40000,user_id=0,group_id=0,allow_other`);
      assert.ok(isMounted(mnt));
      c = startCli(['passthrough', src, '/dev/fd/3', ...(mode === '-f' ? ['-f'] : [])],
        { stdio: ['ignore', 'pipe', 'pipe', fd], uid: 65534, gid: 65534 });
      closeSync(fd); // the server has its copy now
      fd = undefined;
      if (mode === '-f') {
        await c.waitFor('mounted on /dev/fd/3');
        pid = c.child.pid!;
      } else {
        const e = await exitOf(c, 'the starting CLI');
        assert.is(e.code, 0, c.err());
        assert.ok(c.out().includes('mounted on /dev/fd/3'), c.out());
        pid = serverPid(c.out());
        assert.is.not(pid, c.child.pid);
      }
      assert.is(uidOf(pid), 65534, 'the server runs unprivileged');
      await checkMirror(src, mnt);
      assert.is(mountinfo(mnt).fstype, 'fuse.tsfuse-handoff');
      // The manager owns the mount: unmounting it ends the session, and the server exits by itself.
      native.umount2(mnt, 0);
      assert.not.ok(isMounted(mnt));
      if (mode === '-f') {
        const e = await exitOf(c, 'the -f server after the manager unmounted');
        assert.is(e.code, 0, c.err());
        assert.ok(c.out().includes('unmounted /dev/fd/3'), c.out());
      } else {
        await waitGone(pid, 'the background server after the manager unmounted');
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
      forceUnmount(mnt);
      kill(pid);
      if (c) kill(c.child.pid);
      cleanup(base);
    }
  }));
}

test('fd hand-off: a /dev/fd/N that is not /dev/fuse, or not open, fails with a message saying so (-f and background)', timed(120_000, async () => {
  const { base, src } = tree();
  try {
    for (const mode of [['-f'], []]) {
      const what = mode.length ? '-f' : 'background';
      // fd 3 is a regular file.
      const file = openSync(join(src, 'f'), 'r');
      let c: Child;
      try {
        c = startCli(['passthrough', src, '/dev/fd/3', ...mode], { stdio: ['ignore', 'pipe', 'pipe', file], uid: 65534, gid: 65534 });
      } finally {
        closeSync(file);
      }
      let e = await exitOf(c, `${what} with a regular file as fd 3`);
      assert.is(e.code, 1, `${what}: ${c.err()}`);
      assert.ok(c.err().includes('/dev/fd/3: fd 3 is not /dev/fuse'), `${what}: ${c.err()}`);
      // fd 999 is not open at all.
      c = startCli(['passthrough', src, '/dev/fd/999', ...mode], { stdio: ['ignore', 'pipe', 'pipe'], uid: 65534, gid: 65534 });
      e = await exitOf(c, `${what} with fd 999 not open`);
      assert.ok(e.code !== 0 && e.code !== null, `${what}: exit ${e.code ?? e.signal}: ${c.err()}`);
      assert.ok(c.err().includes('/dev/fd/999'), `${what}: ${c.err()}`);
      // -f says "not open"; the background start fails in spawn() with EBADF (see the report).
      assert.ok(mode.length ? c.err().includes('fd 999 is not open') : c.err().includes('EBADF'), `${what}: ${c.err()}`);
    }
    assert.equal(processesWith(`passthrough ${src} /dev/fd/`), [], 'no server left running');
  } finally {
    cleanup(base);
  }
}));

// ---- tsfuse umount of a busy mount ---------------------------------------------------------

/** `tsfuse passthrough SRC MNT` in the background; returns the server's pid. */
async function background(src: string, mnt: string): Promise<number> {
  const r = await cli(['passthrough', src, mnt]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(isMounted(mnt));
  return serverPid(r.stdout);
}

/** Starts `cmd args` in its own process group (for a clean kill) and waits until it runs. */
async function holder(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<ChildProcess> {
  const p = spawn(cmd, args, { stdio: 'ignore', detached: true, ...opts });
  await new Promise<void>((resolve, reject) => { p.once('spawn', resolve); p.once('error', reject); });
  return p;
}

async function killHolder(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ }
  await exited;
}

const link = (p: string) => { try { return readlinkSync(p); } catch { return undefined; } };
const comm = (pid: number) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return undefined; } };

test('tsfuse umount of a busy mount: exit 1, EBUSY naming each holder (cwd, fd) and -l; once they are gone it unmounts and the server exits', timed(120_000, async () => {
  const { base, src, mnt } = tree();
  let pid: number | undefined;
  let cwdHolder: ChildProcess | undefined;
  let fdHolder: ChildProcess | undefined;
  try {
    pid = await background(src, mnt);
    cwdHolder = await holder('sleep', ['600'], { cwd: mnt });
    fdHolder = await holder('sh', ['-c', 'exec 3<"$0"; exec sleep 600', join(mnt, 'f')]);
    const [p1, p2] = [cwdHolder.pid!, fdHolder.pid!];
    assert.ok(await poll(() => link(`/proc/${p1}/cwd`) === mnt, WAIT_MS), 'the sleep has its cwd in MNT');
    assert.ok(await poll(() => link(`/proc/${p2}/fd/3`) === join(mnt, 'f') && comm(p2) === 'sleep', WAIT_MS),
      'the second holder has MNT/f open as fd 3 and runs sleep');

    const busy = await cli(['umount', mnt]);
    assert.is(busy.code, 1, busy.stderr);
    assert.ok(busy.stderr.includes(`EBUSY: ${mnt} is busy`), busy.stderr);
    assert.ok(busy.stderr.includes(`pid ${p1} (sleep): cwd ${mnt}`), busy.stderr);
    assert.ok(busy.stderr.includes(`pid ${p2} (sleep): fd 3 ${join(mnt, 'f')}`), busy.stderr);
    assert.ok(busy.stderr.includes(`tsfuse umount -l ${mnt}`), busy.stderr);
    assert.ok(isMounted(mnt), 'still mounted after EBUSY');
    assert.not.ok(gone(pid), 'the server still runs after EBUSY');

    // Only the holders that remain are named.
    await killHolder(fdHolder);
    const still = await cli(['umount', mnt]);
    assert.is(still.code, 1, still.stderr);
    assert.ok(still.stderr.includes(`pid ${p1} (sleep): cwd ${mnt}`), still.stderr);
    assert.not.ok(still.stderr.includes(`pid ${p2} `), still.stderr);

    await killHolder(cwdHolder);
    const ok = await cli(['umount', mnt]);
    assert.is(ok.code, 0, ok.stderr);
    assert.not.ok(isMounted(mnt));
    await waitGone(pid, 'the server after tsfuse umount');
  } finally {
    await killHolder(fdHolder);
    await killHolder(cwdHolder);
    forceUnmount(mnt);
    kill(pid);
    cleanup(base);
  }
}));

test('tsfuse umount -l of a busy mount detaches it at once; the server exits when the last holder goes', timed(120_000, async () => {
  const { base, src, mnt } = tree();
  let pid: number | undefined;
  let fdHolder: ChildProcess | undefined;
  try {
    pid = await background(src, mnt);
    fdHolder = await holder('sh', ['-c', 'exec 3<"$0"; exec sleep 600', join(mnt, 'f')]);
    const p = fdHolder.pid!;
    assert.ok(await poll(() => link(`/proc/${p}/fd/3`) === join(mnt, 'f'), WAIT_MS), 'the holder has MNT/f open');
    const r = await cli(['umount', '-l', mnt]);
    assert.is(r.code, 0, r.stderr);
    assert.not.ok(isMounted(mnt), 'detached from the tree at once');
    // The holder's open file still reads through the detached mount, so the server still serves it.
    assert.is(readFileSync(`/proc/${p}/fd/3`, 'utf8'), TEXT);
    assert.not.ok(gone(pid), 'the server serves the detached mount while it is held');
    await killHolder(fdHolder);
    await waitGone(pid, 'the server after the last holder of the detached mount went');
  } finally {
    await killHolder(fdHolder);
    forceUnmount(mnt);
    kill(pid);
    cleanup(base);
  }
}));

// ---- signals to a background server ----------------------------------------------------------

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`${sig} to a background server's pid unmounts cleanly and the server exits`, timed(120_000, async () => {
    const { base, src, mnt } = tree();
    let pid: number | undefined;
    try {
      pid = await background(src, mnt);
      await checkMirror(src, mnt);
      process.kill(pid, sig);
      assert.ok(await poll(() => !isMounted(mnt), WAIT_MS, 20), `still mounted after ${sig}`);
      await waitGone(pid, `the server after ${sig}`);
      // A clean unmount, not a dead one: MNT is an ordinary empty directory again.
      assert.equal(readdirSync(mnt), []);
    } finally {
      forceUnmount(mnt);
      kill(pid);
      cleanup(base);
    }
  }));
}

test.after(() => {
  for (const b of bases) cleanup(b);
});

test.run();
