// End-to-end: the UNPRIVILEGED mount path through the setuid fusermount3
// (Debian package fuse3). The server (test/fixtures/serve-hello-user.ts) runs
// as uid/gid 65534; so do all client operations, because a FUSE mount without
// allow_other refuses everyone but the mounting user (root included: EACCES).
//
// fusermount3 only works for ordinary users when /dev/fuse is mode 0666, as
// distributions ship it; on the test machines it is 0600. Each test sets the
// mode it needs and puts back the exact old mode in its teardown (finally,
// plus an after.each safety net for a timed-out body, plus process exit).
// Needs root (to chmod /dev/fuse, chown the mount point and setuid children)
// and fusermount3; the tests are skipped otherwise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants as C, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DIST, cleanup, forceUnmount, isMounted, restoreDevFuseMode, setDevFuseMode, stop, tempDir, timed, WAIT_MS, type Proc,
} from './helpers.js';

const UID = 65534;
const GID = 65534;
const FIXTURE = 'test/fixtures/serve-hello-user.js';
const INDEX = join(DIST, 'src/index.js');

function haveFusermount(): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    try { accessSync(join(dir, 'fusermount3'), C.X_OK); return true; } catch { /* next */ }
  }
  return false;
}
const RUNNABLE = process.geteuid?.() === 0 && haveFusermount();


// ---- processes and mounts of the current test, torn down as root --------
let procs: Proc[] = [];
let dirs: string[] = [];

async function teardown(): Promise<void> {
  const ps = procs;
  const ds = dirs;
  procs = [];
  dirs = [];
  // Holders (cwd inside the mount) first, so the fixture's unmount can succeed.
  for (const p of [...ps].reverse()) await stop(p, 3000).catch(() => { p.child.kill('SIGKILL'); });
  for (const d of ds) {
    forceUnmount(d); // as root: only if a test left it mounted
    cleanup(d);
  }
  restoreDevFuseMode();
}

/** A fresh mount point owned by the unprivileged user. */
function userDir(): string {
  const d = tempDir('tsfuse-test-user-');
  chownSync(d, UID, GID);
  chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}

/** Starts a command as uid/gid 65534 and captures its output (a helpers.Proc). */
function startAsUser(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'], uid: UID, gid: GID,
    env: { ...process.env, HOME: '/nonexistent' },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })));
  const p: Proc = {
    child, exited, stdout: () => out, stderr: () => err,
    waitFor(text, ms = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => { off(); reject(new Error(`no "${text}" within ${ms} ms; stdout: ${out}; stderr: ${err}`)); }, ms);
        const check = () => { if (out.includes(text)) { off(); resolve(); } };
        const onExit = (code: number | null) => { off(); reject(new Error(`exited (${code}) before "${text}"; stdout: ${out}; stderr: ${err}`)); };
        const off = () => { clearTimeout(t); child.stdout!.off('data', check); child.off('exit', onExit); };
        child.stdout!.on('data', check);
        child.on('exit', onExit);
        check();
      });
    },
  };
  procs.push(p);
  return p;
}

/** The fixture server, as the user. */
function serveAsUser(mnt: string, method: 'auto' | 'fusermount'): Proc {
  return startAsUser(process.execPath, [join(DIST, FIXTURE), mnt, method]);
}

/** Runs a client command as the user (bounded: a hung mount fails the test, not the run). */
function runAsUser(cmd: string, args: string[], timeout = WAIT_MS): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    uid: UID, gid: GID, encoding: 'utf8', timeout, killSignal: 'SIGKILL',
    env: { ...process.env, HOME: '/nonexistent' },
  });
}

/** Calls tsfuse's unmount() in a separate Node process running as the user. */
function unmountAsUser(mnt: string, opts: object = {}): { ok: boolean; code?: string; message?: string; raw: string } {
  const script = `
    import { unmount } from ${JSON.stringify(`file://${INDEX}`)};
    try { await unmount(process.argv[1], JSON.parse(process.argv[2])); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, message: e.message })); }`;
  const r = runAsUser(process.execPath, ['--input-type=module', '-e', script, mnt, JSON.stringify(opts)]);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return { ...JSON.parse(line), raw: r.stdout + r.stderr };
  } catch {
    throw new Error(`unmount helper gave no result (status ${r.status}, signal ${r.signal}): ${r.stdout} ${r.stderr}`);
  }
}

/** The /proc/mounts entry for `mnt`: [source, target, type, options]. */
function mountEntry(mnt: string): string[] | undefined {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '))
    .find((f) => f[1] === mnt.replace(/ /g, '\\040'));
}

function exitWithin(p: Proc, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`still running after ${ms} ms; stdout: ${p.stdout()}; stderr: ${p.stderr()}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

test.after.each(teardown);

const maybe = RUNNABLE ? test : test.skip;

if (process.geteuid?.() === 0 && !haveFusermount()) {
  // As root nothing else stops these tests: a missing fusermount3 is a set-up error, not a skip.
  test('fusermount3 is installed (apt-get install fuse3)', () => {
    assert.unreachable('fusermount3 not found on PATH: the unprivileged mount path cannot be tested');
  });
}

maybe('uid 65534, mountMethod auto → fusermount3: mounted as the user, served, unmounted on SIGTERM', timed(4 * WAIT_MS, async () => {
  try {
    setDevFuseMode(0o666);
    const mnt = userDir();
    const server = serveAsUser(mnt, 'auto');
    await server.waitFor('READY');
    assert.is(server.stdout().trim(), `READY ${mnt} fusermount`, 'non-root auto must pick fusermount3');

    const entry = mountEntry(mnt);
    assert.ok(entry, `${mnt} not in /proc/mounts`);
    const [source, , type, options] = entry!;
    assert.is(source, 'tsfuse-test-user');
    assert.ok(type === 'fuse.tsfuse' || type === 'fuse', `type ${type}`);
    const opts = options.split(',');
    assert.ok(opts.includes(`user_id=${UID}`), options);
    assert.ok(opts.includes(`group_id=${GID}`), options);
    assert.ok(opts.includes('nosuid') && opts.includes('nodev'), options);

    const cat = runAsUser('cat', [join(mnt, 'hello')]);
    assert.is(cat.status, 0, `cat: ${cat.stderr} ${cat.error ?? ''}`);
    assert.is(cat.stdout, 'Hello, world!\n');

    const ls = runAsUser('ls', [mnt]);
    assert.is(ls.status, 0, `ls: ${ls.stderr} ${ls.error ?? ''}`);
    assert.is(ls.stdout, 'hello\n');

    const st = runAsUser('stat', ['-c', '%s %a %F', join(mnt, 'hello')]);
    assert.is(st.status, 0, `stat: ${st.stderr} ${st.error ?? ''}`);
    assert.is(st.stdout.trim(), '14 444 regular file');

    // No allow_other: even root is refused, by the kernel, before the server is asked.
    try {
      readdirSync(mnt);
      assert.unreachable('root could read a mount without allow_other');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'EACCES', String(e));
    }

    server.child.kill('SIGTERM');
    const { code, signal } = await exitWithin(server, WAIT_MS);
    assert.is(signal, null, `killed by ${signal}; stderr: ${server.stderr()}`);
    assert.is(code, 0, `exit ${code}; stdout: ${server.stdout()}; stderr: ${server.stderr()}`);
    assert.not.ok(mountEntry(mnt), `${mnt} still in /proc/mounts after SIGTERM`);
    assert.not.ok(isMounted(mnt));
  } finally {
    await teardown();
  }
}));

maybe('/dev/fuse 0600: the unprivileged mount fails with fusermount3\'s message and leaves nothing mounted', timed(4 * WAIT_MS, async () => {
  try {
    setDevFuseMode(0o600);
    const mnt = userDir();
    const server = serveAsUser(mnt, 'fusermount');
    const { code } = await exitWithin(server, WAIT_MS);
    const out = server.stdout().trim();
    assert.ok(out.startsWith('MOUNTFAIL '), `stdout: ${out}; stderr: ${server.stderr()}`);
    assert.is(code, 3);
    assert.not.equal(code, 0);
    // fusermount3 says "fusermount3: failed to open /dev/fuse: Permission denied".
    assert.match(out, /fusermount3/);
    assert.match(out, /\/dev\/fuse/);
    assert.match(out, /Permission denied/);
    const errCode = out.split(' ')[1];
    assert.ok(errCode === 'EACCES' || errCode === 'EPERM', `code ${errCode}`);
    assert.not.ok(mountEntry(mnt), `${mnt} is mounted after a failed mount`);
    assert.not.ok(isMounted(mnt));
  } finally {
    await teardown();
  }
}));

// src/transport/mount.ts runFusermount() maps /permission denied/ to EPERM,
// but "Permission denied" is strerror(EACCES) (EPERM is "Operation not
// permitted"): fusermount3's open("/dev/fuse") failed with EACCES, and mount()
// promises the real errno. (The message also repeats "fusermount3: ", since
// fusermount3 already prefixes its own name.)
maybe('fusermount3 "Permission denied" is reported with the real errno EACCES', timed(4 * WAIT_MS, async () => {
  try {
    setDevFuseMode(0o600);
    const mnt = userDir();
    const server = serveAsUser(mnt, 'fusermount');
    await exitWithin(server, WAIT_MS);
    const out = server.stdout().trim();
    assert.match(out, /^MOUNTFAIL \S+ .*Permission denied/, `stdout: ${out}`);
    assert.is(out.split(' ')[1], 'EACCES', out);
  } finally {
    await teardown();
  }
}));

maybe('unmount() as the user (fusermount3 -u) of a busy mount: EBUSY naming lazy; lazy: true then detaches it', timed(6 * WAIT_MS, async () => {
  try {
    setDevFuseMode(0o666);
    const mnt = userDir();
    const server = serveAsUser(mnt, 'auto');
    await server.waitFor('READY');
    assert.ok(mountEntry(mnt));

    // Busy: a process of the user has its cwd inside. (spawn's `cwd` would
    // chdir before dropping to the user, which root may not do here.)
    const holder = startAsUser('sh', ['-c', 'cd "$1" && echo IN && exec sleep 120', 'sh', mnt]);
    await holder.waitFor('IN');

    const busy = unmountAsUser(mnt);
    assert.is(busy.ok, false, `busy unmount succeeded: ${busy.raw}`);
    assert.is(busy.code, 'EBUSY', busy.raw);
    assert.match(busy.message ?? '', /busy/);
    assert.match(busy.message ?? '', /lazy/);
    assert.ok(mountEntry(mnt), 'a failed unmount must leave the mount in place');
    const cat = runAsUser('cat', [join(mnt, 'hello')]);
    assert.is(cat.stdout, 'Hello, world!\n', 'the mount still serves after EBUSY');

    const lazy = unmountAsUser(mnt, { lazy: true });
    assert.ok(lazy.ok, `lazy unmount failed: ${lazy.raw}`);
    assert.not.ok(mountEntry(mnt), 'lazily unmounted mount still listed');
    assert.is(server.child.exitCode, null, 'the server must keep serving while the mount is in use');

    // Last user gone → the kernel ends the connection → the session closes normally.
    holder.child.kill('SIGKILL');
    await holder.exited;
    const { code, signal } = await exitWithin(server, WAIT_MS);
    assert.is(signal, null);
    assert.is(code, 0, `exit ${code}; stderr: ${server.stderr()}`);
  } finally {
    await teardown();
  }
}));

test.run();
