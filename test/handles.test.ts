// End-to-end: the passthrough's file-handle mode (inodeHandles 'prefer' /
// 'mandatory') works where it can and says where it cannot.
//
// 1. Without CAP_DAC_READ_SEARCH (a non-root server) name_to_handle_at works
//    but open_by_handle_at fails with EPERM. The server must find that out at
//    start: 'prefer' falls back to one fd per inode with one line on stderr;
//    'mandatory' refuses to mount, naming open_by_handle_at and EPERM. The
//    fixture (test/fixtures/serve-passthrough.ts) runs as uid/gid 65534 through
//    `setpriv` and mounts through the setuid fusermount3, without allow_other,
//    so every client runs as 65534 too (root is refused by the kernel). As in
//    test/fusermount.test.ts, /dev/fuse is made 0666 for the test and its exact
//    old mode put back afterwards.
// 2. A filesystem mounted below SRC (a submount) must not be kept busy by the
//    server once the kernel forgot its inodes: after drop_caches, `umount
//    SRC/sub` succeeds (polled, caches dropped again between attempts).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  cleanup, DIST, dropCaches, forceUnmount, isMounted, poll, restoreDevFuseMode, run, setDevFuseMode, sleep, tempDir, timed, WAIT_MS, type Ran,
} from './helpers.js';
import { bases, Fixture, type Mode, type PtOptions, serverLog, withPt } from './pt-helpers.js';

const NOBODY = 65534;
const FIXTURE = join(DIST, 'test/fixtures/serve-passthrough.js');
const T = 90_000;


// ---- the fixture as uid 65534 ------------------------------------------------------

/** serve-passthrough as uid/gid 65534 (no supplementary groups, no capabilities). */
class UserFixture extends Fixture {
  /** Resolves once the process exited and its output is read to the end. */
  readonly drained: Promise<void>;
  private constructor(src: string, mnt: string, opts: object) {
    super('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--',
      process.execPath, FIXTURE, src, mnt, JSON.stringify(opts)], mnt);
    this.drained = new Promise((resolve) => this.child.on('close', () => resolve()));
  }
  static spawn(src: string, mnt: string, opts: PtOptions & { allowOther?: boolean }): UserFixture {
    return new UserFixture(src, mnt, opts);
  }
  /** READY (rejects on MOUNTFAIL or exit, with the fixture's output). */
  started(): Promise<this> {
    return this.ready(WAIT_MS);
  }
}

interface UserEnv { src: string; mnt: string; fx: UserFixture }

/**
 * SRC holding a.txt and d/b.txt, and MNT, both owned by 65534, served by the
 * fixture as 65534 with `opts` (no allow_other); stopped, unmounted (as root if
 * it is left) and removed afterwards, /dev/fuse's mode restored.
 */
async function withUserPt(opts: PtOptions, fn: (e: UserEnv) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-handles-');
  bases.push(base);
  chmodSync(base, 0o755);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  writeFileSync(join(src, 'a.txt'), 'alpha\n');
  mkdirSync(join(src, 'd'));
  writeFileSync(join(src, 'd', 'b.txt'), 'beta\n');
  for (const p of [src, mnt, join(src, 'a.txt'), join(src, 'd'), join(src, 'd', 'b.txt')]) chownSync(p, NOBODY, NOBODY);
  let fx: UserFixture | undefined;
  try {
    setDevFuseMode(0o666); // fusermount3 opens /dev/fuse as the user
    fx = UserFixture.spawn(src, mnt, { ...opts, allowOther: false });
    await fn({ src, mnt, fx });
  } finally {
    if (fx) await fx.stop();
    forceUnmount(mnt);
    restoreDevFuseMode();
    if (!isMounted(mnt)) cleanup(base);
  }
}

/** Runs a client command as 65534 (a mount without allow_other refuses everyone else). */
function asNobody(cmd: string, args: string[]): Promise<Ran> {
  return run(cmd, args, WAIT_MS, { uid: NOBODY, gid: NOBODY, env: { ...process.env, HOME: '/nonexistent' } });
}
/** Runs a client command as 65534 that must succeed; its stdout. */
async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await asNobody(cmd, args);
  assert.is(r.code, 0, `${cmd} ${args.join(' ')} as ${NOBODY}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Lists, reads, writes, creates and makes a directory through MNT as 65534; checks SRC. */
async function useMount(src: string, mnt: string): Promise<void> {
  assert.equal((await ok('ls', [mnt])).split('\n').filter(Boolean), ['a.txt', 'd'], 'ls MNT');
  assert.equal((await ok('ls', [join(mnt, 'd')])).split('\n').filter(Boolean), ['b.txt'], 'ls MNT/d');
  assert.is(await ok('stat', ['-c', '%s %u', join(mnt, 'a.txt')]), `6 ${NOBODY}\n`, 'stat MNT/a.txt');
  assert.is(await ok('cat', [join(mnt, 'a.txt')]), 'alpha\n');
  assert.is(await ok('cat', [join(mnt, 'd', 'b.txt')]), 'beta\n');
  await ok('sh', ['-c', 'echo more >> "$1/a.txt"', 'sh', mnt]);
  assert.is(readFileSync(join(src, 'a.txt'), 'utf8'), 'alpha\nmore\n', 'the write reached SRC');
  await ok('sh', ['-c', 'echo new > "$1/d/new.txt" && mkdir "$1/e"', 'sh', mnt]);
  assert.is(readFileSync(join(src, 'd', 'new.txt'), 'utf8'), 'new\n', 'the created file is in SRC');
  assert.is(statSync(join(src, 'd', 'new.txt')).uid, NOBODY);
  assert.ok(statSync(join(src, 'e')).isDirectory(), 'the new directory is in SRC');
  assert.is(await ok('cat', [join(mnt, 'd', 'new.txt')]), 'new\n');
  assert.equal((await ok('ls', [mnt])).split('\n').filter(Boolean), ['a.txt', 'd', 'e'], 'ls MNT after the creations');
}

// ---- 1. without CAP_DAC_READ_SEARCH ----------------------------------------------------

const RUNNABLE = process.geteuid?.() === 0;
const maybe = RUNNABLE ? test : test.skip;

maybe('uid 65534, inodeHandles never (control): the non-root fixture lists, reads, writes and creates; its log stays empty', timed(T, () =>
  withUserPt({ inodeHandles: 'never' }, async ({ src, mnt, fx }) => {
    await fx.started();
    await useMount(src, mnt);
    assert.is(await serverLog(fx), '', 'server log');
  })));

maybe('uid 65534, inodeHandles prefer: open_by_handle_at is EPERM, so the server falls back to fds (one log line) and everything works', timed(T, () =>
  withUserPt({ inodeHandles: 'prefer' }, async ({ src, mnt, fx }) => {
    await fx.started();
    await useMount(src, mnt);
    const lines = (await serverLog(fx)).split('\n').filter((l) => l.trim());
    assert.is(lines.length, 1, `exactly one line about the fallback on stderr, got ${JSON.stringify(lines)}`);
    assert.match(lines[0], /handle/i, 'the line says file handles are not used');
  })));

maybe('uid 65534, inodeHandles mandatory: the mount fails naming open_by_handle_at and EPERM, exits non-zero, nothing mounted', timed(T, () =>
  withUserPt({ inodeHandles: 'mandatory' }, async ({ mnt, fx }) => {
    await poll(() => fx.out.includes('READY\n') || !fx.alive, WAIT_MS, 20);
    if (fx.alive && fx.out.includes('READY\n')) {
      const cat = await asNobody('cat', [join(mnt, 'a.txt')]);
      assert.unreachable(`mounted in 'mandatory' mode though open_by_handle_at fails for uid ${NOBODY}; `
        + `then cat MNT/a.txt: exit ${cat.code}, ${cat.stderr.trim()}`);
    }
    assert.not.ok(fx.alive, `still running after ${WAIT_MS / 1000} s without READY; stdout ${fx.out}; stderr ${fx.err}`);
    const { code, signal } = await fx.exited;
    await fx.drained;
    assert.is(signal, null, `killed by ${signal}`);
    assert.ok(code !== 0, `exit status ${code}; stdout ${fx.out}; stderr ${fx.err}`);
    const said = `${fx.out}\n${fx.err}`;
    assert.match(said, /open_by_handle_at/, 'the error names open_by_handle_at');
    assert.match(said, /EPERM/, 'the error names EPERM');
    assert.not.ok(isMounted(mnt), `${mnt} is mounted after the failed start`);
  })));

// ---- 2. a submount below SRC -----------------------------------------------------------

for (const mode of ['never', 'prefer'] as Mode[]) {
  test(`a tmpfs mounted at SRC/sub: once the kernel forgot its inodes (drop_caches) it can be unmounted [${mode}]`, timed(T, () =>
    withPt({ inodeHandles: mode }, async ({ src, mnt, fx }) => {
      const sub = join(src, 'sub');
      mkdirSync(sub);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tsfuse-test-sub', sub]);
      try {
        writeFileSync(join(mnt, 'sub', 'f'), 'on the submount\n');
        assert.is(readFileSync(join(sub, 'f'), 'utf8'), 'on the submount\n', 'created on the submount');
        const st = statSync(join(mnt, 'sub', 'f'));
        assert.is(st.ino, statSync(join(sub, 'f')).ino);
        assert.is(st.size, 16);
        // The kernel FORGETs unused inodes after drop_caches (asynchronously): the server
        // must then hold nothing on the submount, so umount stops failing with EBUSY.
        const end = Date.now() + WAIT_MS;
        let why = '';
        let attempts = 0;
        for (;;) {
          dropCaches();
          await sleep(100);
          attempts++;
          const r = await run('umount', [sub]);
          if (r.code === 0) break;
          why = r.stderr.trim();
          if (Date.now() >= end) {
            const held = (await fx.fdList()).filter((l) => l.includes(` ${sub}`));
            assert.unreachable(`umount SRC/sub still fails after ${attempts} attempts over ${WAIT_MS / 1000} s (${why}); `
              + `server fds on it: ${JSON.stringify(held)}; inodes ${JSON.stringify((await fx.stats()).stats.fs)}`);
          }
          await sleep(200);
        }
        assert.not.ok(isMounted(sub));
        assert.equal(readdirSync(join(mnt, 'sub')), [], 'MNT/sub is now the empty directory below the submount');
        assert.is(await serverLog(fx), '', 'server log');
      } finally {
        if (isMounted(sub)) {
          try { execFileSync('umount', [sub], { stdio: 'ignore' }); } catch { execFileSync('umount', ['-l', sub], { stdio: 'ignore' }); }
        }
      }
    })));
}

// ---- leftovers -------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const left = mounts.filter((m) => bases.some((b) => m.startsWith(b)));
  assert.equal(left, []);
}));

test.run();
