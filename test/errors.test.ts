// The error table (the guide's table, docs/guide.md between the errors markers) against the product: every row is
// produced for real where its "where" column says — the CLI (`node dist/src/cli/main.js …`
// as a child: non-zero exit, stderr matching the row's message) and/or the API (`mount()`,
// `unmount()`, `spawnMount()`, `new Passthrough()` from dist/src/index.js, called in a child
// Node process: a failed mount must never be tried by this process, which would deadlock on
// it if it did succeed). The table is parsed here: a row without a case, a case without a
// row, a row naming the CLI (or an API call) with no CLI (or API) case all fail.
//
// The message column's first code span is the row's pattern: its text, with `…` standing for
// any text. Cases that need another user run as uid 65534 (spawn with uid/gid); without
// CAP_SYS_ADMIN or CAP_DAC_READ_SEARCH through setpriv; with no /dev/fuse in a private mount
// namespace (unshare -m). The mounts a case needs (a live one, a dead one, a VFS) are made
// below one temp directory by the CLI's background start and all detached at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DIST, REPO, WAIT_MS, alive, detachAll, mountsAt, mountsBelow, poll, restoreDevFuseMode, setDevFuseMode, stopServersBelow, tempDir, timed,
} from './helpers.js';
import { controlPath } from '../src/vfs/index.js';

const CLI = join(DIST, 'src/cli/main.js');
const INDEX = join(DIST, 'src/index.js');
const HELLO = join(DIST, 'examples/hello.js');
const NATIVE = join(DIST, 'src/transport/native.js');
const NOBODY = { uid: 65534, gid: 65534 };
/** Root without a capability: setpriv drops it from the inheritable and bounding sets. */
const without = (cap: string) => ['setpriv', `--inh-caps=-${cap}`, `--bounding-set=-${cap}`, '--'];

// ---- the table --------------------------------------------------------------------------------

interface Row { id: string; where: string; message: string; cause: string; todo: string; re: RegExp }

/** The rows of the guide's error table: `| id | where | message | cause | what to do |`. */
function parseTable(text: string): Row[] {
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    if (!/^\|\s*E-/.test(line)) continue;
    const cells = line.slice(1, line.lastIndexOf('|')).split(' | ').map((c) => c.trim());
    assert.is(cells.length, 5, `a row has 5 cells: ${line}`);
    const [id, where, message, cause, todo] = cells;
    const pattern = /`([^`]+)`/.exec(message)?.[1];
    assert.ok(pattern, `${id}: the message cell has a code span: ${message}`);
    const re = new RegExp(pattern!.split('…').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*?'));
    rows.push({ id, where, message: pattern!, cause, todo, re });
  }
  return rows;
}

/** The table lives in the guide, between its errors markers. */
function guideTable(): string {
  const g = readFileSync(join(REPO, 'docs/guide.md'), 'utf8');
  const b = g.indexOf('<!-- errors:begin -->'), e = g.indexOf('<!-- errors:end -->');
  if (b < 0 || e < b) throw new Error('docs/guide.md lacks the <!-- errors:begin --> … <!-- errors:end --> markers');
  return g.slice(b, e);
}
const ROWS = parseTable(guideTable());

// ---- producing errors ---------------------------------------------------------------------------

interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
interface RunOpts { uid?: number; gid?: number; env?: NodeJS.ProcessEnv; prefix?: string[]; fds?: number[] }

/** Runs argv to completion (killed after 2 × WAIT_MS); `fds` become the child's fds 3, 4, …. */
function exec(argv: string[], o: RunOpts = {}): Promise<Ran> {
  const full = [...(o.prefix ?? []), ...argv];
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...(o.fds ?? [])];
  return new Promise((resolve, reject) => {
    const child = spawn(full[0], full.slice(1), { stdio, uid: o.uid, gid: o.gid, cwd: '/', env: { ...process.env, ...o.env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), 2 * WAIT_MS);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
  });
}

const show = (r: Ran) => `exit ${r.code ?? r.signal}; stdout: ${r.stdout.trim().slice(0, 600)}; stderr: ${r.stderr.trim().slice(0, 1500)}`;

/** `tsfuse ARGS…` must fail with the row's message on stderr. */
async function cli(row: Row, args: string[], o: RunOpts = {}): Promise<Ran> {
  const r = await exec([process.execPath, CLI, ...args], o);
  assert.ok(r.code !== 0, `${row.id}: tsfuse ${args.join(' ')} should fail: ${show(r)}`);
  assert.match(r.stderr, row.re, `${row.id}: tsfuse ${args.join(' ')}: stderr should match ${row.re}: ${show(r)}`);
  return r;
}

/**
 * Runs `body` (an async function body with `M` = dist/src/index.js, `hello`, `native`, `MS`,
 * `MNT` and `fs` in scope) in a child Node process; it must throw, with the row's message.
 * Whatever it returns instead (a session, a spawned mount) is unmounted, lazily.
 */
async function api(row: Row, body: string, o: RunOpts = {}, code?: string): Promise<{ code?: string; message: string }> {
  const script = `
    import * as fs from 'node:fs';
    const body = process.argv[2];
    const M = await import(${JSON.stringify(INDEX)});
    const { hello } = await import(${JSON.stringify(HELLO)});
    const { native, MS, MNT } = await import(${JSON.stringify(NATIVE)});
    let out;
    try {
      const r = await new (async () => {}).constructor('M', 'hello', 'native', 'MS', 'MNT', 'fs', body)(M, hello, native, MS, MNT, fs);
      if (r && typeof r.unmount === 'function') await r.unmount({ lazy: true }).catch(() => {});
      out = { ok: true };
    } catch (e) {
      out = { code: e?.code, message: String(e?.message ?? e) };
    }
    process.stdout.write(JSON.stringify(out) + '\\n');
    process.exit(0);`;
  // A file, not -e: worker threads inherit the parent's execArgv, and --input-type would stop them.
  const file = join(base, 'api-child.mjs');
  writeFileSync(file, script);
  const r = await exec([process.execPath, file, body], o);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let out: { ok?: boolean; code?: string; message: string };
  try {
    out = JSON.parse(line);
  } catch {
    throw new Error(`${row.id}: the API child printed no result: ${show(r)}`);
  }
  assert.not.ok(out.ok, `${row.id}: ${body.trim()} should throw, it returned`);
  assert.match(out.message, row.re, `${row.id}: ${body.trim()}: the message should match ${row.re}: ${out.message}`);
  if (code) assert.is(out.code, code, `${row.id}: code of ${out.message}`);
  return out as { code?: string; message: string };
}

const q = JSON.stringify;

// ---- the directories and mounts the cases share ---------------------------------------------------

const base = tempDir('tsfuse-errors-');
chmodSync(base, 0o755); // uid 65534 walks in
const D = {
  /** A directory of uid 65534's own (a mount point it may use). */
  own: join(base, 'own'),
  /** root's, 0755: uid 65534 may reach it, not write it. */
  rootdir: join(base, 'rootdir'),
  /** Behind a 0700 directory of root's. */
  hidden: join(base, 'priv', 'inner'),
  file: join(base, 'file'),
  missing: join(base, 'missing'),
  src: join(base, 'src'),
  /** Plain empty mount points, each for cases that might mount by mistake. */
  spare: (name: string) => { const p = join(base, `spare-${name}`); mkdirSync(p, { recursive: true }); return p; },
  live: join(base, 'live'),
  dead: join(base, 'dead'),
  vfs: join(base, 'vfs'),
};
const pids: number[] = [];
const holders: ChildProcess[] = [];

/** A background `tsfuse ARGS…` that must serve; returns its server's pid. */
async function serve(args: string[]): Promise<number> {
  const r = await exec([process.execPath, CLI, ...args]);
  assert.is(r.code, 0, `tsfuse ${args.join(' ')} should serve: ${show(r)}`);
  const pid = Number(/pid (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(pid > 0, r.stdout);
  pids.push(pid);
  return pid;
}

let liveUp: Promise<void> | undefined;
/** A live hello mount (root's, served by another process). */
const live = () => (liveUp ??= serve(['hello', D.live]).then(() => {}));

let vfsUp: Promise<void> | undefined;
/** A live VFS with memfs at /m, its control socket root's. */
const vfs = () => (vfsUp ??= serve(['vfs', D.vfs, '--at', '/m=memfs']).then(() => {}));

let deadUp: Promise<void> | undefined;
/** A mount whose server was killed: every access ENOTCONN. */
const dead = () => (deadUp ??= (async () => {
  const pid = await serve(['hello', D.dead]);
  process.kill(pid, 'SIGKILL');
  const gone = await poll(() => {
    try { statfsSync(D.dead); return false; } catch (e) { return (e as NodeJS.ErrnoException).code === 'ENOTCONN'; }
  }, WAIT_MS, 20);
  assert.ok(gone, `${D.dead} did not become a dead mount`);
})());

/** A process whose working directory is `dir` (holds a mount busy) until killed. */
async function holdCwd(dir: string): Promise<ChildProcess> {
  const c = spawn('sleep', ['600'], { cwd: dir, stdio: 'ignore' });
  holders.push(c);
  await new Promise<void>((resolve, reject) => { c.once('spawn', () => resolve()); c.once('error', reject); });
  return c;
}
function release(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGKILL');
  return done;
}

/** Runs `fn` with /dev/fuse at `mode` (fusermount3 opens it as the calling user), restoring it after. */
async function withDevFuse<T>(mode: number, fn: () => Promise<T>): Promise<T> {
  setDevFuseMode(mode);
  try {
    return await fn();
  } finally {
    restoreDevFuseMode();
  }
}

// ---- one case per row -------------------------------------------------------------------------

interface Case { cli?: (row: Row) => Promise<unknown>; api?: (row: Row) => Promise<unknown> }

const CASES: Record<string, Case> = {
  'E-CLI-COMMAND': { cli: (r) => cli(r, ['frobnicate']) },
  'E-CLI-ARGS': {
    cli: async (r) => {
      for (const args of [['hello'], ['memfs'], ['passthrough', D.src], ['umount'], ['vfs'], ['vfs-attach', D.vfs], ['vfs-detach', D.vfs], ['vfs-list']]) {
        const x = await cli(r, args);
        assert.is(x.code, 2, `tsfuse ${args.join(' ')}: a usage error exits 2`);
      }
    },
  },
  'E-CLI-FLAG': { cli: (r) => cli(r, ['hello', D.spare('flag'), '--frobnicate']) },
  'E-CLI-NOVALUE': {
    cli: async (r) => {
      for (const flag of ['-o', '--timeout', '--log', '--at', '--handles']) await cli(r, ['hello', D.spare('novalue'), flag]);
    },
  },
  'E-CLI-FLAGVALUE': {
    cli: async (r) => {
      for (const args of [['--timeout', 'abc'], ['--timeout', '0'], ['--handles', 'sometimes'], ['--max-restarts', 'x']]) {
        await cli(r, ['hello', D.spare('flagvalue'), ...args]);
      }
    },
  },
  'E-OPT-UNKNOWN': {
    cli: (r) => cli(r, ['hello', D.spare('unknown'), '-o', 'frobnicate']),
    api: async (r) => {
      const e = await api(r, `return M.mount(${q(D.spare('unknown'))}, hello, { frobnicate: 1 })`, {}, 'EINVAL');
      assert.match(e.message, /entryTimeout/, 'the session options are among the known ones');
    },
  },
  'E-OPT-VALUE': {
    cli: async (r) => {
      for (const o of ['max_write=3', 'entry_timeout=abc', 'max_background=0']) await cli(r, ['hello', D.spare('value'), '-o', o]);
    },
    api: async (r) => {
      for (const o of ['{ maxWrite: 3 }', '{ entryTimeout: -1 }', '{ mountMethod: "magic" }']) {
        await api(r, `return M.mount(${q(D.spare('value'))}, hello, ${o})`, {}, 'EINVAL');
      }
    },
  },
  'E-OPT-NOVALUE': { cli: (r) => cli(r, ['hello', D.spare('optnovalue'), '-o', 'ro=1']) },
  'E-OPT-NEEDVALUE': { cli: (r) => cli(r, ['hello', D.spare('needvalue'), '-o', 'fsname=']) },
  'E-OPT-PTONLY': {
    cli: async (r) => {
      await cli(r, ['memfs', D.spare('ptonly'), '-o', 'kernel_passthrough']);
      await cli(r, ['hello', D.spare('ptonly'), '-o', 'writeback_cache']);
    },
  },
  'E-OPT-THREADS': {
    cli: (r) => cli(r, ['memfs', D.spare('threads'), '-o', 'threads=2']),
    api: (r) => api(r, `return M.mount(${q(D.spare('threads'))}, hello, { threads: 2 })`, {}, 'EINVAL'),
  },
  'E-OPT-SUPERVISED': { cli: (r) => cli(r, ['hello', D.spare('supervised'), '-o', 'io_uring', '--supervise']) },
  'E-OPT-ROOT': {
    cli: (r) => cli(r, ['hello', D.own, '-o', 'suid'], NOBODY),
    api: (r) => api(r, `return M.mount(${q(D.own)}, hello, { dev: true })`, NOBODY, 'EPERM'),
  },
  'E-MNT-NOENT': {
    cli: (r) => cli(r, ['hello', D.missing]),
    api: (r) => api(r, `return M.mount(${q(D.missing)}, hello)`, {}, 'ENOENT'),
  },
  'E-MNT-NOTDIR': {
    cli: (r) => cli(r, ['memfs', D.file]),
    api: (r) => api(r, `return M.mount(${q(D.file)}, hello)`, {}, 'ENOTDIR'),
  },
  'E-MNT-ACCESS': {
    cli: (r) => cli(r, ['hello', D.hidden], NOBODY),
    api: (r) => api(r, `return M.mount(${q(D.hidden)}, hello)`, NOBODY, 'EACCES'),
  },
  'E-MNT-BUSY': {
    cli: async (r) => { await live(); await cli(r, ['hello', D.live]); },
    api: async (r) => { await live(); await api(r, `return M.mount(${q(D.live)}, hello)`, {}, 'EBUSY'); },
  },
  'E-MNT-DEAD': {
    cli: async (r) => { await dead(); await cli(r, ['hello', D.dead, '-o', 'noclean_stale']); },
    api: async (r) => { await dead(); await api(r, `return M.mount(${q(D.dead)}, hello)`, {}, 'ENOTCONN'); },
  },
  'E-DEV-EACCES': {
    api: (r) => withDevFuse(0o600, () => api(r, `return M.mount(${q(D.own)}, hello, { mountMethod: 'mount' })`, NOBODY, 'EACCES')),
  },
  'E-DEV-NOENT': {
    // A private mount namespace whose /dev is an empty tmpfs: no /dev/fuse, and nothing of it outlives the child.
    cli: (r) => cli(r, ['hello', D.spare('nodev'), '-f'], { prefix: ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$@"', 'sh'] }),
    api: (r) => api(r, `return M.mount(${q(D.spare('nodev'))}, hello)`, { prefix: ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /dev && exec "$@"', 'sh'] }, 'ENOENT'),
  },
  'E-MNT-EPERM': {
    cli: (r) => cli(r, ['hello', D.spare('eperm')], { prefix: without('sys_admin') }),
    api: (r) => api(r, `return M.mount(${q(D.spare('eperm'))}, hello, { mountMethod: 'mount' })`, { prefix: without('sys_admin') }, 'EPERM'),
  },
  'E-FM-MISSING': {
    cli: (r) => cli(r, ['hello', D.own], { ...NOBODY, env: { PATH: '/nonexistent' } }),
    api: (r) => api(r, `return M.mount(${q(D.spare('fm'))}, hello, { mountMethod: 'fusermount', fusermount: '/nonexistent/fusermount3' })`, {}, 'ENOENT'),
  },
  'E-FM-DEVFUSE': {
    cli: (r) => withDevFuse(0o600, () => cli(r, ['hello', D.own], NOBODY)),
    api: (r) => withDevFuse(0o600, () => api(r, `return M.mount(${q(D.own)}, hello)`, NOBODY, 'EACCES')),
  },
  'E-FM-ALLOWOTHER': {
    cli: async (r) => {
      assertNoUserAllowOther();
      await withDevFuse(0o666, () => cli(r, ['hello', D.own, '-o', 'allow_other'], NOBODY));
    },
    api: async (r) => {
      assertNoUserAllowOther();
      await withDevFuse(0o666, () => api(r, `return M.mount(${q(D.own)}, hello, { allowOther: true })`, NOBODY, 'EPERM'));
    },
  },
  'E-FM-NOWRITE': {
    cli: (r) => withDevFuse(0o666, () => cli(r, ['hello', D.rootdir], NOBODY)),
    api: (r) => withDevFuse(0o666, () => api(r, `return M.mount(${q(D.rootdir)}, hello)`, NOBODY, 'EACCES')),
  },
  'E-UMNT-NOTMNT': {
    cli: (r) => cli(r, ['umount', D.rootdir]),
    api: (r) => api(r, `return M.unmount(${q(D.rootdir)})`, {}, 'EINVAL'),
  },
  'E-UMNT-NOTMINE': {
    cli: async (r) => {
      await cli(r, ['umount', D.own], NOBODY);
      await live();
      await cli(r, ['umount', D.live], NOBODY); // root's mount: not this user's to unmount
      assert.is(mountsAt(D.live).length, 1, 'the live mount is still there');
    },
    api: (r) => api(r, `return M.unmount(${q(D.own)})`, NOBODY, 'EINVAL'),
  },
  'E-UMNT-NOENT': {
    cli: (r) => cli(r, ['umount', D.missing]),
    api: (r) => api(r, `return M.unmount(${q(D.missing)})`, {}, 'ENOENT'),
  },
  'E-UMNT-BUSY': {
    cli: async (r) => {
      await live();
      const h = await holdCwd(D.live);
      try {
        const x = await cli(r, ['umount', D.live]);
        assert.ok(x.stderr.includes(`pid ${h.pid} (sleep): cwd ${D.live}`), `the holder is named: ${x.stderr}`);
      } finally {
        await release(h);
      }
      assert.is(mountsAt(D.live).length, 1, 'the busy mount is still there');
    },
    api: async (r) => {
      await live();
      const h = await holdCwd(D.live);
      try {
        await api(r, `return M.unmount(${q(D.live)})`, {}, 'EBUSY');
      } finally {
        await release(h);
      }
    },
  },
  'E-FD-STDIO': { cli: (r) => cli(r, ['hello', '/dev/fd/1']) },
  'E-FD-NOTOPEN': {
    cli: (r) => cli(r, ['hello', '/dev/fd/57']),
    api: (r) => api(r, `return M.mount('/dev/fd/57', hello)`, {}, 'EBADF'),
  },
  'E-FD-NOTFUSE': {
    cli: async (r) => {
      const fd = openSync(D.file, 'r');
      try { await cli(r, ['hello', '/dev/fd/3'], { fds: [fd] }); } finally { closeSync(fd); }
    },
    api: (r) => api(r, `const fd = fs.openSync(${q(D.file)}, 'r'); return M.mount('/dev/fd/' + fd, hello)`, {}, 'EINVAL'),
  },
  'E-FD-NOTMOUNTED': {
    cli: async (r) => {
      const fd = openSync('/dev/fuse', 'r+');
      try { await cli(r, ['hello', '/dev/fd/3'], { fds: [fd] }); } finally { closeSync(fd); }
    },
    api: (r) => api(r, `const fd = fs.openSync('/dev/fuse', 'r+'); return M.mount('/dev/fd/' + fd, hello)`, {}, 'EPERM'),
  },
  'E-INIT-TIMEOUT': {
    // A manager (the child itself) mounts a /dev/fuse fd and reads its INIT without answering
    // it; the fd handed to mount() then never gets one. The child detaches the mount after.
    api: async (r) => {
      const mnt = D.spare('init');
      try {
        await api(r, `
          const fd = fs.openSync('/dev/fuse', 'r+');
          native.mount('tsfuse-errors', ${q(mnt)}, 'fuse.tsfuse-errors', MS.NOSUID | MS.NODEV, 'fd=' + fd + ',rootmode=40000,user_id=0,group_id=0');
          try {
            fs.readSync(fd, Buffer.alloc(1 << 21)); // the INIT, read here and never answered
            return await M.mount('/dev/fd/' + fd, hello, { initTimeout: 300 });
          } finally {
            native.umount2(${q(mnt)}, MNT.DETACH);
          }`, {}, 'ETIMEDOUT');
      } finally {
        detachAll([mnt]);
      }
    },
  },
  'E-START-EXIT': {
    cli: async (r) => {
      const x = await cli(r, ['hello', D.missing]);
      assert.match(x.stderr, /does not exist/, 'the server\'s reason comes first');
    },
    api: async (r) => {
      const e = await api(r, `return M.spawnMount(${q(D.spare('exit'))}, { module: ${q(join(base, 'no-such-module.js'))} })`);
      assert.match(e.message, /loading the filesystem from/, 'the server\'s reason is in the message');
    },
  },
  'E-START-TIMEOUT': {
    cli: (r) => cli(r, ['hello', D.spare('timeout'), '--timeout', '0.001']),
    api: (r) => api(r, `return M.spawnMount(${q(D.spare('timeout'))}, { module: ${q(HELLO)}, export: 'hello', timeout: 1 })`),
  },
  'E-START-MODULE': {
    api: async (r) => {
      await api(r, `return M.spawnMount(${q(D.spare('module'))}, { module: ${q(join(base, 'no-such-module.js'))} })`);
      await api(r, `return M.spawnMount(${q(D.spare('module'))}, { module: ${q(HELLO)}, export: 'nothing' })`);
    },
  },
  'E-THREAD-START': {
    api: async (r) => {
      const mnt = D.spare('thread');
      try {
        await api(r, `return M.mount(${q(mnt)}, hello, { threads: 2, threadFileSystem: { module: ${q(join(base, 'no-such-module.js'))}, export: 'hello' } })`);
      } finally {
        detachAll([mnt]);
      }
    },
  },
  'E-PT-SOURCE': {
    cli: (r) => cli(r, ['passthrough', D.missing, D.spare('pt')]),
    api: async (r) => {
      await api(r, `return new M.Passthrough(${q(D.missing)})`, {}, 'ENOENT');
      await api(r, `return new M.Passthrough(${q(D.file)})`, {}, 'ENOTDIR');
      await api(r, `return new M.Passthrough(${q(D.hidden)})`, NOBODY, 'EACCES');
    },
  },
  'E-PT-HANDLES': {
    cli: (r) => cli(r, ['passthrough', D.src, D.spare('handles'), '--handles', 'mandatory'], { prefix: without('dac_read_search') }),
    api: (r) => api(r, `return new M.Passthrough(${q(D.src)}, { inodeHandles: 'mandatory' })`, { prefix: without('dac_read_search') }, 'EPERM'),
  },
  'E-PT-OPTION': {
    api: async (r) => {
      await api(r, `return new M.Passthrough(${q(D.src)}, { inodeHandles: 'always' })`);
      await api(r, `return new M.Passthrough(${q(D.src)}, { groupsMaxAge: -1 })`);
    },
  },
  'E-VFS-AT': {
    cli: async (r) => {
      await cli(r, ['vfs', D.spare('vfsat'), '--at', 'nonsense']);
      await cli(r, ['vfs', D.spare('vfsat'), '--at', '/a=bogus']);
      await cli(r, ['vfs', D.spare('vfsat'), '--at', '/a=memfs,frob']);
      await cli(r, ['vfs-attach', D.spare('vfsat'), 'nonsense']);
    },
  },
  'E-VFS-SOURCE': { cli: (r) => cli(r, ['vfs', D.spare('vfssrc'), '--at', `/a=passthrough:${D.missing}`]) },
  'E-VFS-CONFIG': {
    cli: async (r) => {
      await cli(r, ['vfs', D.spare('vfscfg'), '--config', join(base, 'missing.json')]);
      const bad = join(base, 'bad.json');
      writeFileSync(bad, '{"mounts": [{"path": "/a", "fs": "memfs", "colour": "red"}]}');
      await cli(r, ['vfs', D.spare('vfscfg'), '--config', bad]);
    },
  },
  'E-VFS-DUP': { cli: (r) => cli(r, ['vfs', D.spare('vfsdup'), '--at', '/a=memfs', '--at', '/a=hello']) },
  'E-VFS-GROUP': { cli: (r) => cli(r, ['vfs', D.spare('vfsgroup'), '--at', '/a=memfs', '--control-group', 'no-such-group-tsfuse']) },
  'E-VFS-NOSERVER': { cli: (r) => cli(r, ['vfs-list', D.rootdir]) },
  'E-VFS-DENIED': {
    cli: async (r) => { await vfs(); await cli(r, ['vfs-list', D.vfs, '--control', controlPath(D.vfs)], NOBODY); },
  },
  'E-VFS-EXISTS': { cli: async (r) => { await vfs(); await cli(r, ['vfs-attach', D.vfs, '/m=hello']); } },
  'E-VFS-NOTATTACHED': { cli: async (r) => { await vfs(); await cli(r, ['vfs-detach', D.vfs, '/nothing']); } },
  'E-VFS-BUSY': {
    cli: async (r) => {
      await vfs();
      const h = await holdCwd(join(D.vfs, 'm'));
      try {
        await cli(r, ['vfs-detach', D.vfs, '/m']);
      } finally {
        await release(h);
      }
    },
  },
  'E-HELPER-USAGE': { cli: (r) => cli(r, ['mount-helper']) },
  'E-HELPER-FLAG': { cli: (r) => cli(r, ['mount-helper', D.src, D.spare('helper'), '--frobnicate']) },
  'E-HELPER-NS': {
    cli: async (r) => {
      const x = await cli(r, ['mount-helper', D.src, D.spare('helper'), '-N', '1']);
      assert.is(x.code, 32, 'mount(8)\'s "mount failure"');
    },
  },
  'E-INSTALL': { cli: (r) => cli(r, ['install-helper', '--dir', join(D.rootdir, 'sbin')], NOBODY) },
  'E-CONF-ARGS': { cli: (r) => cli(r, ['conformance']) },
  'E-CONF-GROUP': { cli: (r) => cli(r, ['conformance', D.rootdir, '--group', 'no-such-group']) },
};

/** E-FM-ALLOWOTHER needs fuse3's default /etc/fuse.conf (user_allow_other commented out). */
function assertNoUserAllowOther(): void {
  let conf = '';
  try { conf = readFileSync('/etc/fuse.conf', 'utf8'); } catch { /* none: the default */ }
  assert.not.ok(/^\s*user_allow_other/m.test(conf), '/etc/fuse.conf allows allow_other to all users here: the refusal cannot be produced');
}

// ---- the tests -------------------------------------------------------------------------------------

test.before(() => {
  mkdirSync(D.own);
  chownSync(D.own, 65534, 65534);
  mkdirSync(D.rootdir);
  mkdirSync(D.hidden, { recursive: true });
  chmodSync(join(base, 'priv'), 0o700);
  writeFileSync(D.file, 'not a directory\n');
  mkdirSync(D.src);
  writeFileSync(join(D.src, 'f'), 'x');
  for (const d of [D.live, D.dead, D.vfs]) mkdirSync(d);
});

test.after(async () => {
  for (const h of holders) await release(h);
  try { restoreDevFuseMode(); } catch { /* reported by the case */ }
  await stopServersBelow(base, [D.live, D.dead, D.vfs, ...mountsBelow(base)], pids.filter(alive));
});

test('the table parses: unique ids, every cell filled, every row with a case and every case with a row', () => {
  assert.ok(ROWS.length >= 40, `${ROWS.length} rows`);
  const ids = ROWS.map((r) => r.id);
  assert.equal(ids, [...new Set(ids)], 'ids are unique');
  for (const r of ROWS) {
    assert.ok(r.where && r.cause && r.todo, `${r.id}: where, cause and what to do are filled in`);
    assert.ok(CASES[r.id], `${r.id}: no test case for this row`);
  }
  for (const id of Object.keys(CASES)) assert.ok(ids.includes(id), `case ${id} has no row in the guide's error table`);
});

for (const row of ROWS) {
  const c = CASES[row.id] ?? {};
  // The where column names the CLI as `tsfuse …` and API calls as `name()`: each is tried.
  const cliNamed = row.where.includes('`tsfuse');
  const apiNamed = /`[\w. ]+\(\)`/.test(row.where);
  test(`${row.id}: ${row.message}`, timed(8 * WAIT_MS, async () => {
    assert.ok(cliNamed || apiNamed, `${row.id}: the where column names a \`tsfuse …\` command or an \`api()\` call`);
    assert.is(!!c.cli, cliNamed, `${row.id}: a CLI case ${cliNamed ? 'is needed: the row names the CLI' : 'without the row naming the CLI'}`);
    assert.is(!!c.api, apiNamed, `${row.id}: an API case ${apiNamed ? 'is needed: the row names an API call' : 'without the row naming an API call'}`);
    if (c.cli) await c.cli(row);
    if (c.api) await c.api(row);
    // No case leaves a mount behind on the directories it used (the shared ones stay mounted).
    const stray = mountsBelow(base).filter((m) => m !== D.live && m !== D.dead && m !== D.vfs);
    detachAll(stray);
    assert.equal(stray, [], `${row.id}: left mounted`);
  }));
}

test.run();
