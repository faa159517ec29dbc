// The multi-filesystem VFS through its command line, end to end (src/vfs, src/cli/main.ts):
// `tsfuse vfs MNT --at PATH=SPEC…` (or --config FILE.json) mounts several backends —
// passthroughs of directories, memfs — under one mount point and returns once it serves,
// leaving the server in the background; bad input exits non-zero naming the problem and
// leaves nothing mounted; `tsfuse vfs-attach / vfs-detach / vfs-list` change and show the
// layout of a live mount over a control socket only root may use; a busy backend is not
// detached unless --force; the POSIX conformance suite passes through each backend's
// subtree; and under --supervise a server killed with SIGKILL is replaced by one that
// rebuilds the layout (attachments made later included) from the journal: passthrough
// backends carry on (held fds, a cwd), memfs data, which lived in the dead process, is
// lost (its node ids answer ESTALE) while its fresh root serves.
//
// Every server is another process (the CLI's background start). The reads and writes that
// prove "it serves" run in child processes (ls, cat, a small holder program given on the
// command line) or through fs/promises (which never blocks this process's event loop).
// Nothing is timed: every wait is for an event with a generous deadline (WAIT_MS), every
// test has a time-out, and every mount is unmounted (lazily if need be) and every process
// started here killed in `finally`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import {
  DIST, WAIT_MS, alive, childrenOf, fdsOf, mountsAt, mountsBelow, poll, procStat, procsWith, run, stopServersBelow, tempDir, timed, type Ran,
} from './helpers.js';

const CLI = join(DIST, 'src/cli/main.js');
const ESTALE = constants.errno.ESTALE;
const bases: string[] = [];

// ---- running the CLI ------------------------------------------------------------------------

/** `tsfuse ARGS…` to completion (the background start exits once the mount serves or failed). */
function cli(args: string[], opts: Parameters<typeof run>[3] = {}): Promise<Ran> {
  return run(process.execPath, [CLI, ...args], 2 * WAIT_MS, opts);
}

const clip = (s: string, n = 800) => (s.length > n ? `${s.slice(0, n)}…` : s);
const show = (r: Ran) => `exit ${r.code ?? r.signal}; stdout: ${clip(r.stdout.trim())}; stderr: ${clip(r.stderr.trim())}`;

const cmdlineOf = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; } };

// ---- one fresh set of directories per test, everything undone after it ------------------------

interface Env {
  base: string; mnt: string;
  /** Three source directories, each with one file of its own (name → content). */
  src1: string; src2: string; src3: string;
  files: Record<'src1' | 'src2' | 'src3', { name: string; text: string }>;
  log: string;
  /** Pids to kill at the end if still alive (servers, supervisors). */
  pids: number[];
  /** Started processes (holders) to kill at the end. */
  children: ChildProcess[];
  /** Other mount points this test made (unmounted at the end). */
  mounts: string[];
}

async function withEnv(fn: (e: Env) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-vfs-cli-');
  bases.push(base);
  chmodSync(base, 0o755); // uid 65534 goes through it (conformance, the control socket's check)
  const mk = (name: string) => { const d = join(base, name); mkdirSync(d, { mode: 0o755 }); chmodSync(d, 0o755); return d; };
  const src1 = mk('src1');
  const src2 = mk('src2');
  const src3 = mk('src3');
  const mnt = mk('mnt');
  const files = {
    src1: { name: 'one.txt', text: `first source ${src1}\n` },
    src2: { name: 'two.txt', text: `second source ${src2}\n` },
    src3: { name: 'three.txt', text: `third source ${src3}\n` },
  };
  writeFileSync(join(src1, files.src1.name), files.src1.text, { mode: 0o644 });
  writeFileSync(join(src2, files.src2.name), files.src2.text, { mode: 0o644 });
  writeFileSync(join(src3, files.src3.name), files.src3.text, { mode: 0o644 });
  const e: Env = { base, mnt, src1, src2, src3, files, log: join(base, 'log'), pids: [], children: [], mounts: [] };
  try {
    await fn(e);
  } finally {
    for (const c of e.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await stopServersBelow(base, [...e.mounts, mnt], e.pids);
  }
}

/** The three backends of the brief, as --at arguments. */
const threeAts = (e: Env) => ['--at', `/a=passthrough:${e.src1}`, '--at', `/b=passthrough:${e.src2}`, '--at', '/mem=memfs'];

/**
 * `tsfuse vfs MNT ARGS…` in the background: asserts exit 0 and one mount on MNT; returns the
 * pid it printed ("server pid N" or, with --supervise, "supervisor pid N") and its output.
 */
async function startVfs(e: Env, args: string[], opts: Parameters<typeof run>[3] = {}): Promise<{ pid: number; r: Ran }> {
  const r = await cli(['vfs', e.mnt, ...args], opts);
  const m = /(?:server|supervisor) pid (\d+)/.exec(r.stdout);
  if (m) e.pids.push(Number(m[1]));
  for (const p of procsWith(e.mnt)) if (!e.pids.includes(p)) e.pids.push(p);
  assert.is(r.code, 0, `tsfuse vfs ${e.mnt} ${args.join(' ')}: ${show(r)}`);
  assert.is(mountsAt(e.mnt).length, 1, `one mount on ${e.mnt} once the command returned: ${mountsAt(e.mnt).join('\n')}`);
  assert.ok(m, `no "server pid N" / "supervisor pid N" in the output: ${show(r)}`);
  return { pid: Number(m![1]), r };
}

/** `tsfuse umount MNT`: exit 0; the mount and its server(s) are gone. */
async function umountAndCheck(e: Env, pids: number[]): Promise<void> {
  const u = await cli(['umount', e.mnt]);
  assert.is(u.code, 0, `tsfuse umount: ${show(u)}`);
  for (const pid of pids) assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `pid ${pid} (${cmdlineOf(pid)}) still running after tsfuse umount`);
  assert.equal(mountsAt(e.mnt), [], 'nothing mounted after tsfuse umount');
  assert.ok(await poll(() => procsWith(e.mnt).length === 0, WAIT_MS, 20), `processes naming ${e.mnt} left: ${procsWith(e.mnt).map(cmdlineOf).join('; ')}`);
}

/** A start that failed left nothing: no mount on MNT, no process naming it (waited for: a failed server may take a moment to exit). */
async function assertNothingLeft(mnt: string, what: string): Promise<void> {
  assert.equal(mountsAt(mnt), [], `${what}: still mounted on ${mnt}`);
  const gone = await poll(() => procsWith(mnt).length === 0, WAIT_MS, 20);
  assert.ok(gone, `${what}: processes left: ${procsWith(mnt).map((p) => `${p}: ${cmdlineOf(p)}`).join('; ')}`);
}

// ---- looking at the mount from child processes -------------------------------------------------

/** `ls -A DIR` in a child process: the names, sorted; asserts exit 0. */
async function ls(dir: string): Promise<string[]> {
  const r = await run('ls', ['-A', dir], WAIT_MS);
  assert.is(r.code, 0, `ls -A ${dir}: ${show(r)}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** `cat FILE` in a child process. */
const cat = (path: string) => run('cat', [path], WAIT_MS);

/** The error code of a promise-returning fs call, or undefined when it succeeds. `UNKNOWN` codes (libuv has no ESTALE) become ESTALE when errno says so. */
async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (x) {
    const err = x as NodeJS.ErrnoException;
    if (err.errno === -ESTALE) return 'ESTALE';
    return err.code ?? String(x);
  }
}

// ---- vfs-list --------------------------------------------------------------------------------

interface Listed { path: string; index: number; spec: string; flags?: string }

/** `tsfuse vfs-list MNT [EXTRA…]`: asserts exit 0, parses "PATH INDEX SPEC" lines. */
async function vfsList(mnt: string, extra: string[] = []): Promise<Listed[]> {
  const r = await cli(['vfs-list', mnt, ...extra]);
  assert.is(r.code, 0, `tsfuse vfs-list ${mnt}: ${show(r)}`);
  const out: Listed[] = [];
  for (const line of r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    // "PATH INDEX SPEC", possibly followed by flags (" ro").
    const m = /^(\/\S*)\s+(\d+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    assert.ok(m, `vfs-list: a line that is not "PATH INDEX SPEC": ${JSON.stringify(line)} (all: ${r.stdout})`);
    out.push({ path: m![1], index: Number(m![2]), spec: m![3], ...(m![4] ? { flags: m![4].trim() } : {}) });
  }
  return out.sort((x, y) => x.index - y.index);
}

// ---- the control socket ------------------------------------------------------------------------

/** Paths of the listening unix sockets `pid` holds (from /proc/PID/fd and /proc/net/unix; abstract ones start with "@"). */
function listeningUnixSockets(pid: number): string[] {
  const inodes = new Set(fdsOf(pid).map((t) => /^socket:\[(\d+)\]$/.exec(t)?.[1]).filter((x): x is string => !!x));
  const out: string[] = [];
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !inodes.has(f[6])) continue;
    if ((parseInt(f[3], 16) & 0x10000) === 0) continue; // __SO_ACCEPTCON: listening
    out.push(f.slice(7).join(' '));
  }
  return out;
}

/** The control socket the vfs server `pid` listens on (waited for: one listening unix socket with a path). */
async function controlSocketOf(pid: number): Promise<string> {
  let socks: string[] = [];
  const ok = await poll(() => (socks = listeningUnixSockets(pid)).length > 0, WAIT_MS, 20);
  const inRun = existsSync('/run/tsfuse') ? readdirSync('/run/tsfuse').map((n) => join('/run/tsfuse', n)) : [];
  assert.ok(ok, `server ${pid} listens on no unix socket (its fds: ${fdsOf(pid).join(', ')}; /run/tsfuse: ${inRun.join(', ') || 'none'})`);
  assert.is(socks.length, 1, `server ${pid}: one listening unix socket, found ${socks.join(', ')}`);
  return socks[0];
}

/** The control socket is root's alone: a path (not abstract), mode 0600 (no group/other bits), root-owned, in a directory others cannot write. */
function assertRootOnlySocket(sock: string): void {
  assert.ok(!sock.startsWith('@'), `the control socket is abstract (${sock}): no file mode protects it, any local user may connect`);
  const st = statSync(sock);
  assert.ok(st.isSocket(), `${sock} is not a socket`);
  assert.is(st.uid, 0, `${sock} is owned by uid ${st.uid}, not root`);
  assert.is(st.mode & 0o077, 0, `${sock} has mode 0${(st.mode & 0o777).toString(8)}: group or others may connect (0600 expected)`);
  const d = statSync(dirname(sock));
  assert.is(d.uid, 0, `${dirname(sock)} is owned by uid ${d.uid}, not root`);
  assert.is(d.mode & 0o022, 0, `${dirname(sock)} has mode 0${(d.mode & 0o777).toString(8)}: others may replace the socket`);
}

/** Connects to `sock` as uid 65534 in a child: its error code ('EACCES'…) or 'connected'. */
async function connectAsNobody(sock: string): Promise<string> {
  const code = `const s = require('net').connect(process.argv[1]);
    s.on('connect', () => { console.log('connected'); process.exit(0); });
    s.on('error', (e) => { console.log(e.code || String(e)); process.exit(0); });`;
  const r = await run(process.execPath, ['-e', code, sock], WAIT_MS, { uid: 65534, gid: 65534, cwd: '/' });
  assert.is(r.code, 0, `connect as uid 65534: ${show(r)}`);
  return r.stdout.trim();
}

// ---- a holder: a child process keeping fds and a cwd, driven over stdin ------------------------

const HOLDER = String.raw`
const fs = require('fs');
const fds = {};
const out = (s) => process.stdout.write('> ' + s + '\n');
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...a] = line.split(' ');
  try {
    let r;
    switch (cmd) {
      case 'open': fds[a[0]] = fs.openSync(a[1], a[2] || 'r+'); r = fds[a[0]]; break;
      case 'pread': { const b = Buffer.alloc(Number(a[2])); const n = fs.readSync(fds[a[0]], b, 0, b.length, Number(a[1])); r = b.toString('utf8', 0, n); break; }
      case 'pwrite': r = fs.writeSync(fds[a[0]], a.slice(2).join(' '), Number(a[1])); break;
      case 'fsync': fs.fsyncSync(fds[a[0]]); r = 0; break;
      case 'fstat': r = fs.fstatSync(fds[a[0]]).size; break;
      case 'close': fs.closeSync(fds[a[0]]); delete fds[a[0]]; r = 0; break;
      case 'chdir': process.chdir(a[0]); r = process.cwd(); break;
      case 'stat': { const s = fs.statSync(a[0]); r = { size: s.size, dir: s.isDirectory() }; break; }
      case 'readdir': r = fs.readdirSync(a[0]).sort(); break;
      case 'read': r = fs.readFileSync(a[0], 'utf8'); break;
      default: throw Object.assign(new Error('unknown command ' + cmd), { code: 'EUNKNOWNCMD' });
    }
    out('ok ' + JSON.stringify(r));
  } catch (e) {
    out('err ' + (e.code || 'NOCODE') + ' ' + e.errno + ' ' + e.message);
  }
});
out('ready');
`;

class Holder {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private replies: string[] = [];
  private partial = '';

  constructor(e: Env, readonly who: string) {
    this.child = spawn(process.execPath, ['-e', HOLDER], { stdio: ['pipe', 'pipe', 'pipe'], cwd: '/' });
    e.children.push(this.child);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.out += d;
      this.partial += d;
      const lines = this.partial.split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) if (l.startsWith('> ')) this.replies.push(l.slice(2));
    });
    this.child.stderr!.on('data', (d: Buffer) => { this.err += d; });
  }

  static async start(e: Env, who: string): Promise<Holder> {
    const h = new Holder(e, who);
    assert.is(await h.next('start'), 'ready');
    return h;
  }

  private async next(what: string): Promise<string> {
    const ok = await poll(() => this.replies.length > 0 || this.child.exitCode !== null || this.child.signalCode !== null, WAIT_MS, 5);
    assert.ok(ok && this.replies.length > 0,
      `holder ${this.who}: no reply to "${what}" (exit ${this.child.exitCode ?? this.child.signalCode}); stderr: ${this.err}; stdout: ${this.out.slice(-500)}`);
    return this.replies.shift()!;
  }

  /** Runs `line`; the raw reply ("ok JSON" or "err CODE ERRNO message"). */
  async try(line: string): Promise<string> {
    this.child.stdin!.write(`${line}\n`);
    return this.next(line);
  }

  /** Runs `line`, which must succeed: its result. */
  async do(line: string, why = ''): Promise<unknown> {
    const r = await this.try(line);
    assert.ok(r.startsWith('ok '), `holder ${this.who}: "${line}" failed${why ? ` (${why})` : ''}: ${r}`);
    return JSON.parse(r.slice(3));
  }

  /** Runs `line`, which must fail: the error code (ESTALE recognised by errno). */
  async fails(line: string): Promise<string> {
    const r = await this.try(line);
    assert.ok(r.startsWith('err '), `holder ${this.who}: "${line}" succeeded, an error was expected: ${r}`);
    const [, code, errno] = r.split(' ');
    return Number(errno) === -ESTALE ? 'ESTALE' : code;
  }

  kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGKILL');
    return done;
  }
}

// ---- 1. the command line ----------------------------------------------------------------------

test('tsfuse vfs MNT --at /a=passthrough:SRC1 --at /b=passthrough:SRC2 --at /mem=memfs: exit 0 once mounted; ls shows a b mem; writes via MNT/a land in SRC1; the root is read-only; tsfuse umount ends it', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const { pid, r } = await startVfs(e, threeAts(e));
    assert.ok(alive(pid), `server ${pid} is not running`);
    assert.ok(cmdlineOf(pid).includes(e.mnt), `pid ${pid} is not the server of ${e.mnt}: ${cmdlineOf(pid)}`);
    assert.match(r.stdout, `mounted on ${e.mnt}`);

    // At once, from other processes: the layout and each backend's contents.
    assert.equal(await ls(e.mnt), ['a', 'b', 'mem']);
    assert.equal(await ls(join(e.mnt, 'a')), [e.files.src1.name]);
    assert.equal(await ls(join(e.mnt, 'b')), [e.files.src2.name]);
    assert.equal(await ls(join(e.mnt, 'mem')), []);
    const c1 = await cat(join(e.mnt, 'a', e.files.src1.name));
    assert.is(c1.stdout, e.files.src1.text, show(c1));
    const c2 = await cat(join(e.mnt, 'b', e.files.src2.name));
    assert.is(c2.stdout, e.files.src2.text, show(c2));

    // Writes through MNT/a land in SRC1, through MNT/b in SRC2; memfs keeps its own.
    const w = await run('sh', ['-c', 'echo "written via a" > "$0/a/new.txt" && mkdir "$0/a/dir" && echo "in b" > "$0/b/dir-b.txt" && echo mem > "$0/mem/m.txt" && cat "$0/mem/m.txt"', e.mnt], WAIT_MS);
    assert.is(w.code, 0, show(w));
    assert.is(w.stdout, 'mem\n');
    assert.is(readFileSync(join(e.src1, 'new.txt'), 'utf8'), 'written via a\n', 'MNT/a/new.txt is SRC1/new.txt');
    assert.ok(statSync(join(e.src1, 'dir')).isDirectory(), 'mkdir MNT/a/dir made SRC1/dir');
    assert.is(readFileSync(join(e.src2, 'dir-b.txt'), 'utf8'), 'in b\n', 'MNT/b/dir-b.txt is SRC2/dir-b.txt');
    assert.not.ok(existsSync(join(e.src1, 'm.txt')) || existsSync(join(e.src2, 'm.txt')), 'memfs data is in no source');
    // A file made in the source shows through the mount.
    writeFileSync(join(e.src1, 'from-src.txt'), 'made in SRC1\n');
    assert.is((await cat(join(e.mnt, 'a', 'from-src.txt'))).stdout, 'made in SRC1\n');

    // The pseudo root is read-only; a rename from one backend to another is EXDEV.
    assert.is(await codeOf(fsp.mkdir(join(e.mnt, 'newdir'))), 'EROFS', 'mkdir in the pseudo root');
    assert.is(await codeOf(fsp.writeFile(join(e.mnt, 'newfile'), 'x')), 'EROFS', 'create in the pseudo root');
    assert.is(await codeOf(fsp.rename(join(e.mnt, 'a', 'new.txt'), join(e.mnt, 'b', 'new.txt'))), 'EXDEV', 'rename from /a to /b');
    assert.ok(existsSync(join(e.src1, 'new.txt')) && !existsSync(join(e.src2, 'new.txt')), 'the failed rename moved nothing');
    assert.is(await codeOf(fsp.rmdir(join(e.mnt, 'a'))), 'EROFS', 'rmdir of an attach point');

    await umountAndCheck(e, [pid]);
    assert.ok(existsSync(join(e.src1, 'new.txt')), 'the source keeps what was written');
  })));

// ---- 2. the same layout from a config file (and from --at flags) ------------------------------

/**
 * The layout of test 2: /a passthrough (entry timeout 0), /b passthrough read-only (entry
 * timeout 3600 s), /mem memfs. Checks the layout, the read-only backend (EROFS, the source
 * untouched) and the entry timeouts: a file renamed in the source behind the mount's back is
 * gone at once under /a (entry timeout 0: every lookup asks the server) and still found
 * under /b (its cached entry, 3600 s, names the same inode, which the source still has).
 */
async function checkConfiguredLayout(e: Env, pids: number[]): Promise<void> {
  assert.equal(await ls(e.mnt), ['a', 'b', 'mem']);
  assert.equal(await ls(join(e.mnt, 'a')), [e.files.src1.name]);
  assert.equal(await ls(join(e.mnt, 'b')), [e.files.src2.name]);

  // /a is writable, /mem too.
  const w = await run('sh', ['-c', 'echo rw > "$0/a/rw.txt" && echo m > "$0/mem/m.txt"', e.mnt], WAIT_MS);
  assert.is(w.code, 0, show(w));
  assert.is(readFileSync(join(e.src1, 'rw.txt'), 'utf8'), 'rw\n');

  // /b is read-only: every kind of write is EROFS, reads work, the source is untouched.
  const b = join(e.mnt, 'b');
  const two = join(b, e.files.src2.name);
  assert.is((await cat(two)).stdout, e.files.src2.text, 'a read through the read-only backend');
  assert.is(await codeOf(fsp.writeFile(join(b, 'new.txt'), 'x')), 'EROFS', 'create in the read-only backend');
  assert.is(await codeOf(fsp.appendFile(two, 'more')), 'EROFS', 'append to a file of the read-only backend');
  assert.is(await codeOf(fsp.mkdir(join(b, 'd'))), 'EROFS', 'mkdir in the read-only backend');
  assert.is(await codeOf(fsp.unlink(two)), 'EROFS', 'unlink in the read-only backend');
  assert.is(await codeOf(fsp.chmod(two, 0o600)), 'EROFS', 'chmod in the read-only backend');
  assert.is(await codeOf(fsp.rename(two, join(b, 'renamed'))), 'EROFS', 'rename in the read-only backend');
  assert.is(await codeOf(fsp.truncate(two, 0)), 'EROFS', 'truncate in the read-only backend');
  const sh = await run('sh', ['-c', 'echo x > "$0"', two], WAIT_MS);
  assert.is.not(sh.code, 0, 'a shell redirection into the read-only backend fails');
  assert.match(sh.stderr, /Read-only file system/, show(sh));
  assert.equal(readdirSync(e.src2).sort(), [e.files.src2.name], 'SRC2 unchanged');
  assert.is(readFileSync(join(e.src2, e.files.src2.name), 'utf8'), e.files.src2.text, 'SRC2\'s file unchanged');
  assert.is(statSync(join(e.src2, e.files.src2.name)).mode & 0o777, 0o644, 'SRC2\'s file mode unchanged');

  // Entry timeouts: look both files up, rename them in the sources directly, look again.
  const one = join(e.mnt, 'a', e.files.src1.name);
  assert.ok((await fsp.stat(one)).isFile());
  assert.ok((await fsp.stat(two)).isFile());
  renameSync(join(e.src1, e.files.src1.name), join(e.src1, 'moved-behind.txt'));
  renameSync(join(e.src2, e.files.src2.name), join(e.src2, 'moved-behind.txt'));
  assert.is(await codeOf(fsp.stat(one)), 'ENOENT', '/a has entry timeout 0: the renamed name is gone at once');
  assert.is(await codeOf(fsp.stat(two)), undefined, '/b has entry timeout 3600 s: the cached entry still answers');
  assert.ok((await ls(join(e.mnt, 'a'))).includes('moved-behind.txt'));

  await umountAndCheck(e, pids);
}

test('--config FILE.json: the same layout from a file, with readOnly (writes → EROFS) and entryTimeout per backend', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const config = join(e.base, 'vfs.json');
    writeFileSync(config, JSON.stringify({
      mounts: [
        { path: '/a', fs: `passthrough:${e.src1}`, readOnly: false, entryTimeout: 0, attrTimeout: 1 },
        { path: '/b', fs: `passthrough:${e.src2}`, readOnly: true, entryTimeout: 3600, attrTimeout: 1 },
        { path: '/mem', fs: 'memfs' },
      ],
    }, null, 2));
    const { pid } = await startVfs(e, ['--config', config]);
    const listed = await vfsList(e.mnt);
    assert.equal(listed.map((l) => [l.path, l.spec]), [['/a', `passthrough:${e.src1}`], ['/b', `passthrough:${e.src2}`], ['/mem', 'memfs']]);
    await checkConfiguredLayout(e, [pid]);
  })));

test('--config FILE.json with "options" (as API.md documents: "options": "allow_other"): the mount gets them', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const config = join(e.base, 'vfs.json');
    writeFileSync(config, JSON.stringify({
      mounts: [{ path: '/a', fs: `passthrough:${e.src1}` }, { path: '/mem', fs: 'memfs' }],
      options: 'allow_other,fsname=tsfuse-vfs-config-test',
    }, null, 2));
    const { pid } = await startVfs(e, ['--config', config]);
    const [type, source, opts] = mountsAt(e.mnt)[0].split(' - ')[1].split(' ');
    assert.ok(type.startsWith('fuse'), mountsAt(e.mnt)[0]);
    assert.is(source, 'tsfuse-vfs-config-test', `the config's fsname= is the mount's source: ${mountsAt(e.mnt)[0]}`);
    assert.ok(opts.split(',').includes('allow_other'), `the config's allow_other is in the mount's options: ${mountsAt(e.mnt)[0]}`);
    assert.equal(await ls(e.mnt), ['a', 'mem']);
    await umountAndCheck(e, [pid]);
  })));

test('--at PATH=SPEC,ro,entry_timeout=S: the same per-backend settings from the command line', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const { pid } = await startVfs(e, [
      '--at', `/a=passthrough:${e.src1},entry_timeout=0`,
      '--at', `/b=passthrough:${e.src2},ro,entry_timeout=3600`,
      '--at', '/mem=memfs',
    ]);
    await checkConfiguredLayout(e, [pid]);
  })));

// ---- 3. bad input ---------------------------------------------------------------------------------

test('bad input: --at without "=", an unknown kind, a missing source, two backends at one path, bad JSON in --config — exit non-zero naming the problem, nothing mounted, no process left', timed(8 * WAIT_MS, () =>
  withEnv(async (e) => {
    const badJson = join(e.base, 'bad.json');
    writeFileSync(badJson, '{ "mounts": [ { "path": "/a", "fs": "memfs" }, ');
    const missing = join(e.base, 'no-such-source');
    const cases: Array<{ what: string; args: string[]; re: RegExp[] }> = [
      { what: '--at without =', args: ['--at', '/a', '--at', '/mem=memfs'], re: [/\/a|--at/] },
      { what: 'unknown kind', args: ['--at', '/x=nosuchfs', '--at', '/mem=memfs'], re: [/nosuchfs/] },
      { what: 'missing source directory', args: ['--at', `/a=passthrough:${missing}`, '--at', '/mem=memfs'], re: [new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /ENOENT|No such file|does not exist/i] },
      { what: 'two backends at one path', args: ['--at', `/a=passthrough:${e.src1}`, '--at', `/a=passthrough:${e.src2}`], re: [/\/a/, /already|twice|two|duplicate|same|more than once|EEXIST|exists|in use/i] },
      { what: 'bad JSON in --config', args: ['--config', badJson], re: [/bad\.json|JSON/] },
    ];
    const failures: string[] = [];
    for (const c of cases) {
      const r = await cli(['vfs', e.mnt, ...c.args]);
      for (const p of procsWith(e.mnt)) if (!e.pids.includes(p)) e.pids.push(p);
      if (r.code === 0) {
        failures.push(`${c.what}: exit 0 (${show(r)})`);
        // Undo it before the next case (finally would too).
        for (let i = 0; i < 8 && mountsAt(e.mnt).length; i++) try { execFileSync('umount', ['-l', e.mnt], { stdio: 'ignore' }); } catch { break; }
      } else {
        const miss = c.re.filter((re) => !re.test(r.stderr));
        if (miss.length) failures.push(`${c.what}: stderr does not say ${miss.join(' / ')}: ${show(r)}`);
        if (/^\s+at .*\.js:\d+/m.test(r.stderr)) failures.push(`${c.what}: a stack trace instead of a message: ${r.stderr}`);
      }
      if (mountsAt(e.mnt).length) failures.push(`${c.what}: left ${e.mnt} mounted`);
      else if (!(await poll(() => procsWith(e.mnt).length === 0, WAIT_MS, 20))) failures.push(`${c.what}: processes left: ${procsWith(e.mnt).map(cmdlineOf).join('; ')}`);
      for (let i = 0; i < 8 && mountsAt(e.mnt).length; i++) try { execFileSync('umount', ['-l', e.mnt], { stdio: 'ignore' }); } catch { break; }
      for (const p of procsWith(e.mnt)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      console.log(`  ${c.what}: exit ${r.code ?? r.signal}: ${r.stderr.trim().split('\n')[0]}`);
    }
    assert.ok(failures.length === 0, `${failures.length} case(s) wrong:\n${failures.join('\n')}`);
    await assertNothingLeft(e.mnt, 'after all bad starts');
    assert.not.ok(existsSync(missing), 'the missing source was not made');
  })));

// ---- 4. attach, list, detach while mounted; the control socket ---------------------------------

test('vfs-attach /c while mounted: exit 0, MNT/c is SRC3; vfs-list lists /a /b /mem /c; vfs-detach: exit 0, MNT/c gone; a busy backend (a cwd, an open fd) is EBUSY unless --force; then its node ids answer ESTALE', timed(8 * WAIT_MS, () =>
  withEnv(async (e) => {
    const { pid } = await startVfs(e, threeAts(e));
    const c = join(e.mnt, 'c');
    const three = join(c, e.files.src3.name);

    const at = await cli(['vfs-attach', e.mnt, `/c=passthrough:${e.src3}`]);
    assert.is(at.code, 0, `vfs-attach: ${show(at)}`);
    assert.match(at.stdout, /attached \/c \(index 4\)/, `vfs-attach prints "attached /c (index 4)": ${show(at)}`);
    assert.equal(await ls(e.mnt), ['a', 'b', 'c', 'mem']);
    assert.equal(await ls(c), [e.files.src3.name]);
    assert.is((await cat(three)).stdout, e.files.src3.text);
    const w = await run('sh', ['-c', 'echo "via c" > "$0/c/c-new.txt"', e.mnt], WAIT_MS);
    assert.is(w.code, 0, show(w));
    assert.is(readFileSync(join(e.src3, 'c-new.txt'), 'utf8'), 'via c\n', 'a write through MNT/c lands in SRC3');

    assert.equal(await vfsList(e.mnt), [
      { path: '/a', index: 1, spec: `passthrough:${e.src1}` },
      { path: '/b', index: 2, spec: `passthrough:${e.src2}` },
      { path: '/mem', index: 3, spec: 'memfs' },
      { path: '/c', index: 4, spec: `passthrough:${e.src3}` },
    ]);

    // Refusals that change nothing: a path already attached, detaching what is not attached.
    const again = await cli(['vfs-attach', e.mnt, `/a=passthrough:${e.src3}`]);
    assert.is.not(again.code, 0, `vfs-attach at /a, which is attached: ${show(again)}`);
    const none = await cli(['vfs-detach', e.mnt, '/nothing-here']);
    assert.is.not(none.code, 0, `vfs-detach of a path nothing is attached at: ${show(none)}`);
    assert.is((await vfsList(e.mnt)).length, 4, 'the refusals changed nothing');

    // Not busy (used before, nothing held now): detached at once.
    const de = await cli(['vfs-detach', e.mnt, '/c']);
    assert.is(de.code, 0, `vfs-detach /c: ${show(de)}`);
    assert.equal(await ls(e.mnt), ['a', 'b', 'mem'], 'MNT/c is gone from the listing');
    assert.is(await codeOf(fsp.stat(c)), 'ENOENT', 'MNT/c is gone');
    assert.equal((await vfsList(e.mnt)).map((l) => l.path), ['/a', '/b', '/mem']);
    assert.equal(readdirSync(e.src3).sort(), ['c-new.txt', e.files.src3.name], 'SRC3 itself is untouched');

    // Attached again; then busy with a cwd inside: EBUSY, still attached and serving.
    const at2 = await cli(['vfs-attach', e.mnt, `/c=passthrough:${e.src3}`]);
    assert.is(at2.code, 0, `vfs-attach again: ${show(at2)}`);
    assert.equal(await ls(c), ['c-new.txt', e.files.src3.name]);
    const inCwd = await Holder.start(e, 'cwd');
    await inCwd.do(`chdir ${c}`);
    const busy1 = await cli(['vfs-detach', e.mnt, '/c']);
    assert.is.not(busy1.code, 0, `vfs-detach with a cwd inside MNT/c must fail: ${show(busy1)}`);
    assert.match(`${busy1.stderr}${busy1.stdout}`, /EBUSY|busy/i, show(busy1));
    assert.ok((await vfsList(e.mnt)).some((l) => l.path === '/c'), 'still attached after the refused detach');
    assert.equal(await inCwd.do('readdir .'), ['c-new.txt', e.files.src3.name], 'the cwd inside MNT/c still works');
    await inCwd.kill();

    // Busy with an open fd: EBUSY; then --force succeeds.
    const fd = await Holder.start(e, 'fd');
    await fd.do(`open f ${three}`);
    assert.is(await fd.do(`pread f 0 ${e.files.src3.text.length}`), e.files.src3.text);
    const busy2 = await cli(['vfs-detach', e.mnt, '/c']);
    assert.is.not(busy2.code, 0, `vfs-detach with an open fd in MNT/c must fail: ${show(busy2)}`);
    assert.match(`${busy2.stderr}${busy2.stdout}`, /EBUSY|busy/i, show(busy2));
    assert.is(await fd.do('pwrite f 0 THIRD'), 5, 'the fd still writes after the refused detach');
    assert.is(readFileSync(join(e.src3, e.files.src3.name), 'utf8').slice(0, 5), 'THIRD');

    const forced = await cli(['vfs-detach', e.mnt, '/c', '--force']);
    assert.is(forced.code, 0, `vfs-detach --force: ${show(forced)}`);
    assert.equal(await ls(e.mnt), ['a', 'b', 'mem'], 'MNT/c is gone after the forced detach');
    assert.equal((await vfsList(e.mnt)).map((l) => l.path), ['/a', '/b', '/mem']);
    // The held fd stands for a node id of the detached backend: ESTALE (a write reaches the server).
    assert.is(await fd.fails('pwrite f 0 AFTER'), 'ESTALE', 'a write through an fd held across a forced detach');
    assert.is(readFileSync(join(e.src3, e.files.src3.name), 'utf8').slice(0, 5), 'THIRD', 'nothing reached SRC3 after the forced detach');
    await fd.kill();
    // The other backends serve on.
    assert.is((await cat(join(e.mnt, 'a', e.files.src1.name))).stdout, e.files.src1.text);

    await umountAndCheck(e, [pid]);
  })));

test('the control socket is root\'s alone: a path (not abstract), mode 0600, root-owned, in a directory only root writes; uid 65534 cannot connect, and its vfs-attach is refused and attaches nothing', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const { pid } = await startVfs(e, threeAts(e));
    const sock = await controlSocketOf(pid);
    console.log(`  control socket: ${sock}`);
    assertRootOnlySocket(sock);
    assert.is(await connectAsNobody(sock), 'EACCES', `uid 65534 connecting to ${sock}`);

    const nobody = { uid: 65534, gid: 65534, cwd: '/' };
    // As uid 65534 the CLI may look for the socket elsewhere (a per-user default): refused either way.
    const r = await cli(['vfs-attach', e.mnt, `/c=passthrough:${e.src3}`], nobody);
    assert.is.not(r.code, 0, `vfs-attach as uid 65534 must be refused: ${show(r)}`);
    assert.not.match(r.stderr, /Cannot find module|ERR_MODULE_NOT_FOUND/, `refused for the wrong reason: ${r.stderr}`);
    // Pointed at root's socket: refused by its permissions.
    const rs = await cli(['vfs-attach', e.mnt, `/c=passthrough:${e.src3}`, '--control', sock], nobody);
    assert.is.not(rs.code, 0, `vfs-attach --control ${sock} as uid 65534 must be refused: ${show(rs)}`);
    assert.match(rs.stderr, /EACCES|EPERM|permission|denied/i, show(rs));
    for (const extra of [[], ['--control', sock]]) {
      const d = await cli(['vfs-detach', e.mnt, '/a', '--force', ...extra], nobody);
      assert.is.not(d.code, 0, `vfs-detach --force ${extra.join(' ')} as uid 65534 must be refused: ${show(d)}`);
    }
    assert.equal((await vfsList(e.mnt)).map((l) => l.path), ['/a', '/b', '/mem'], 'nothing attached or detached by uid 65534');
    assert.equal(await ls(e.mnt), ['a', 'b', 'mem']);

    await umountAndCheck(e, [pid]);
    // The server removed its socket and the socket's own directory when the session ended.
    assert.ok(await poll(() => !existsSync(sock) && !existsSync(dirname(sock)), WAIT_MS), `${sock} and its directory are gone after the unmount`);
  })));

test('--control SOCK: the server listens there (mode 0600); vfs-list and vfs-attach --control SOCK reach it', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const sock = join(e.base, 'ctl.sock');
    const { pid } = await startVfs(e, [...threeAts(e), '--control', sock]);
    assert.ok(await poll(() => existsSync(sock), WAIT_MS, 20), `${sock} was not made`);
    const st = statSync(sock);
    assert.ok(st.isSocket(), `${sock} is not a socket`);
    assert.is(st.mode & 0o077, 0, `${sock} has mode 0${(st.mode & 0o777).toString(8)}, 0600 expected`);
    assert.is(await connectAsNobody(sock), 'EACCES', `uid 65534 connecting to ${sock}`);
    const at = await cli(['vfs-attach', e.mnt, `/c=passthrough:${e.src3}`, '--control', sock]);
    assert.is(at.code, 0, `vfs-attach --control: ${show(at)}`);
    assert.equal((await vfsList(e.mnt, ['--control', sock])).map((l) => l.path), ['/a', '/b', '/mem', '/c']);
    assert.equal(await ls(join(e.mnt, 'c')), [e.files.src3.name]);
    await umountAndCheck(e, [pid]);
  })));

// ---- 5. the conformance suite through each backend's subtree ------------------------------------

interface Conf { code: number | null; failed: string[]; skipped: string[]; total: string; out: string }

/** `tsfuse conformance DIR [--group G…]` in a child process. */
async function conformance(dir: string, groups: string[] = []): Promise<Conf> {
  const r = await run(process.execPath, [CLI, 'conformance', dir, ...groups.flatMap((g) => ['--group', g])], 6 * WAIT_MS);
  const lines = r.stdout.split('\n');
  return {
    code: r.code,
    failed: lines.filter((l) => l.startsWith('FAIL ')).map((l) => l.slice(5)),
    skipped: lines.filter((l) => l.startsWith('skip ')).map((l) => l.slice(5)),
    total: lines.find((l) => l.startsWith('total:')) ?? `no total line; ${show(r)}`,
    out: r.stdout,
  };
}
const caseOf = (line: string) => line.split(':')[0];

/**
 * The cases memfs itself fails, mounted alone (`tsfuse memfs -o allow_other`, kernel default
 * permissions): its own limits (whole milliseconds, no setgid inheritance, a size limit), not
 * the VFS's. Measured once per file.
 */
let memfsAlone: Conf | undefined;
async function memfsBaseline(): Promise<Conf> {
  if (memfsAlone) return memfsAlone;
  const base = tempDir('tsfuse-test-vfs-cli-memfs-');
  bases.push(base);
  chmodSync(base, 0o755);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt, { mode: 0o755 });
  try {
    const r = await cli(['memfs', mnt, '-o', 'allow_other']);
    assert.is(r.code, 0, `tsfuse memfs: ${show(r)}`);
    memfsAlone = await conformance(mnt);
    console.log(`  memfs alone: ${memfsAlone.total}; fails: ${memfsAlone.failed.map(caseOf).join(', ') || 'none'}`);
    return memfsAlone;
  } finally {
    for (let i = 0; i < 8 && mountsAt(mnt).length; i++) {
      try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); } catch { break; }
    }
    for (const pid of procsWith(mnt)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await poll(() => procsWith(mnt).length === 0, WAIT_MS, 20);
    if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
  }
}

for (const variant of [
  { label: 'kernel default_permissions (-o allow_other,default_permissions)', o: 'allow_other,default_permissions', mem: '/mem=memfs' },
  { label: 'no kernel permission checks (-o allow_other,nodefault_permissions): passthrough as the caller, memfs with the VFS\'s default_permissions', o: 'allow_other,nodefault_permissions', mem: '/mem=memfs,default_permissions' },
]) {
  test(`conformance through MNT/a, MNT/b (passthrough) and MNT/mem (memfs), ${variant.label}: no failures (memfs: none beyond memfs alone), nothing skipped as root`, timed(30 * WAIT_MS, () =>
    withEnv(async (e) => {
      const baseline = await memfsBaseline();
      const { pid } = await startVfs(e, ['--at', `/a=passthrough:${e.src1}`, '--at', `/b=passthrough:${e.src2}`, '--at', variant.mem, '-o', variant.o]);
      const problems: string[] = [];
      for (const sub of ['a', 'b', 'mem']) {
        const dir = join(e.mnt, sub);
        const r = await conformance(dir);
        console.log(`  MNT/${sub}: ${r.total}${r.failed.length ? `; FAIL ${r.failed.map(caseOf).join(', ')}` : ''}`);
        if (!/^total: \d+ passed, \d+ failed, \d+ skipped$/.test(r.total)) problems.push(`MNT/${sub}: ${r.total}`);
        if (sub === 'mem') {
          const known = new Set(baseline.failed.map(caseOf));
          const extra = r.failed.filter((f) => !known.has(caseOf(f)));
          for (const f of extra) problems.push(`MNT/${sub}: FAIL ${f}`);
        } else {
          for (const f of r.failed) problems.push(`MNT/${sub}: FAIL ${f}`);
          if (r.code !== 0) problems.push(`MNT/${sub}: conformance exit ${r.code}`);
        }
        for (const s of r.skipped) problems.push(`MNT/${sub}: skipped as root: ${s}`);
        assert.equal(readdirSync(e.src1).filter((n) => n.startsWith('.tsfuse-conformance')), [], 'the suite cleaned up after itself in SRC1');
      }
      assert.ok(problems.length === 0, `${problems.length} problem(s):\n${problems.join('\n')}`);
      await umountAndCheck(e, [pid]);
    })));
}

// ---- 6. takeover with several backends -----------------------------------------------------------

/** The serving server of supervisor `sup`: its child holding /dev/fuse (a spare may wait beside it). */
async function serverOf(sup: number): Promise<number> {
  let kids: number[] = [];
  const ok = await poll(() => (kids = childrenOf(sup).filter((p) => fdsOf(p).includes('/dev/fuse'))).length === 1, WAIT_MS, 10);
  assert.ok(ok, `supervisor ${sup}: expected one child holding /dev/fuse, found ${kids.join(', ') || 'none'} (children: ${childrenOf(sup)})`);
  return kids[0];
}

const logOf = (e: Env) => (existsSync(e.log) ? readFileSync(e.log, 'utf8') : '');
const tail = (s: string, n = 40) => s.split('\n').slice(-n).join('\n');

/** Waits for the supervisor's "takeover K: the new server (pid P) serves" line; returns P. */
async function takeoverDone(e: Env, k: number): Promise<number> {
  const re = new RegExp(`takeover ${k}: the new server \\(pid (\\d+)\\) serves`);
  const ok = await poll(() => re.test(logOf(e)), WAIT_MS, 10);
  assert.ok(ok, `no "takeover ${k}: the new server … serves" within ${WAIT_MS} ms; log:\n${tail(logOf(e))}`);
  return Number(re.exec(logOf(e))![1]);
}

for (const how of ['the default control socket', '--control SOCK'] as const) {
  test(`takeover with four backends (three from the start, /c attached later; ${how}): kill -9 the server; the new one rebuilds the layout from the journal: a held fd in MNT/a reads and writes, a cwd in MNT/b stats, MNT/c is attached, memfs data is lost (ESTALE) while its root serves; ls lists a b c mem`, timed(10 * WAIT_MS, () =>
  withEnv(async (e) => {
    const ctl = how === '--control SOCK' ? ['--control', join(e.base, 'ctl.sock')] : [];
    const { pid: sup } = await startVfs(e, [...threeAts(e), '--supervise', '--log', e.log, ...ctl]);
    const server = await serverOf(sup);
    assert.is(procStat(server)!.ppid, sup, 'the server is the supervisor\'s child');

    const at = await cli(['vfs-attach', e.mnt, `/c=passthrough:${e.src3}`, ...ctl]);
    assert.is(at.code, 0, `vfs-attach under --supervise: ${show(at)}`);
    assert.equal(await ls(e.mnt), ['a', 'b', 'c', 'mem']);

    // Before the kill: memfs data, a held fd in MNT/a, a cwd in MNT/b/sub, a held fd in MNT/c
    // (attached after the start), a held fd in MNT/mem.
    mkdirSync(join(e.src2, 'sub'));
    writeFileSync(join(e.src2, 'sub', 'inner.txt'), 'inner\n');
    const memFile = join(e.mnt, 'mem', 'kept.txt');
    const made = await run('sh', ['-c', 'echo before > "$0" && cat "$0"', memFile], WAIT_MS);
    assert.is(made.stdout, 'before\n', show(made));
    const one = join(e.mnt, 'a', e.files.src1.name);
    const h = await Holder.start(e, 'holder');
    await h.do(`open a ${one}`);
    assert.is(await h.do('pwrite a 0 BEFORE'), 6);
    await h.do(`chdir ${join(e.mnt, 'b', 'sub')}`);
    assert.equal(await h.do('readdir .'), ['inner.txt']);
    const three = join(e.mnt, 'c', e.files.src3.name);
    await h.do(`open c ${three}`);
    assert.is(await h.do('pwrite c 0 CBEFORE'), 7);
    await h.do(`open m ${memFile}`);
    assert.is(await h.do('pwrite m 6 more'), 4);
    const text1 = `BEFORE${e.files.src1.text.slice(6)}`;
    assert.is(readFileSync(join(e.src1, e.files.src1.name), 'utf8'), text1);

    process.kill(server, 'SIGKILL');
    const next = await takeoverDone(e, 1);
    assert.is.not(next, server, 'a new server serves');
    assert.ok(alive(next) && procStat(next)!.ppid === sup, 'the new server is the supervisor\'s child');
    assert.ok(alive(sup), 'the supervisor lives on');
    console.log(`  takeover log:\n${tail(logOf(e), 12).split('\n').map((l) => `    ${l}`).join('\n')}`);

    // Everything below is checked, and what fails is collected: one run names every part of
    // the takeover that does not hold.
    const problems: string[] = [];
    const check = async (what: string, f: () => Promise<unknown>) => {
      try { await f(); } catch (x) { problems.push(`${what}: ${(x as Error).message}${(x as { details?: string }).details ? ` ${(x as { details?: string }).details}` : ''}`); }
    };

    // The held fd in MNT/a carries on: it reads what it wrote, writes, and the writes reach SRC1.
    await check('the fd held in MNT/a', async () => {
      assert.is(await h.do('pread a 0 6', 'a read through the fd held in MNT/a across the kill'), 'BEFORE');
      assert.is(await h.do('pwrite a 2 AFTER', 'a write through the fd held in MNT/a across the kill'), 5);
      assert.is(await h.do('pread a 0 7'), 'BEAFTER');
      assert.is(readFileSync(join(e.src1, e.files.src1.name), 'utf8').slice(0, 7), 'BEAFTER', 'the write after the kill reached SRC1');
    });
    // The held fd in MNT/c (attached with vfs-attach after the start) carries on.
    await check('the fd held in MNT/c', async () => {
      assert.is(await h.do('pread c 0 7', 'a read through the fd held in MNT/c across the kill'), 'CBEFORE');
      assert.is(await h.do('pwrite c 1 AFTER', 'a write through the fd held in MNT/c across the kill'), 5);
      assert.is(readFileSync(join(e.src3, e.files.src3.name), 'utf8').slice(0, 7), 'CAFTERE', 'the write after the kill reached SRC3');
    });
    // The cwd in MNT/b/sub works.
    await check('the cwd held in MNT/b/sub', async () => {
      assert.ok((await h.do('stat .', 'stat of the cwd (MNT/b/sub) held across the kill') as { dir: boolean }).dir, 'the cwd is a directory');
      assert.equal(await h.do('stat inner.txt', 'stat relative to the cwd held across the kill'), { size: 6, dir: false });
      assert.equal(await h.do('readdir .', 'readdir of the cwd held across the kill'), ['inner.txt']);
      assert.is(await h.do('read inner.txt', 'a read relative to the cwd held across the kill'), 'inner\n');
      assert.equal(await h.do('readdir ..', 'readdir of the cwd\'s parent (MNT/b) held across the kill'), [e.files.src2.name, 'sub'].sort());
    });

    // The layout came from the journal: /c is attached, at its index, serving SRC3.
    await check('the layout', async () => assert.equal(await ls(e.mnt), ['a', 'b', 'c', 'mem']));
    await check('MNT/c (attached after the start)', async () => {
      assert.equal(await ls(join(e.mnt, 'c')), [e.files.src3.name]);
      const r = await cat(three);
      assert.is(r.code, 0, show(r));
      assert.is(r.stdout.slice(7), e.files.src3.text.slice(7));
    });
    await check('vfs-list through the new server\'s control socket', async () => assert.equal(await vfsList(e.mnt, ctl), [
      { path: '/a', index: 1, spec: `passthrough:${e.src1}` },
      { path: '/b', index: 2, spec: `passthrough:${e.src2}` },
      { path: '/mem', index: 3, spec: 'memfs' },
      { path: '/c', index: 4, spec: `passthrough:${e.src3}` },
    ]));
    await check('a lookup in MNT/a by path', async () => {
      const r = await cat(one);
      assert.is(r.code, 0, `cat ${one}: ${show(r)}`);
      assert.is(r.stdout.slice(0, 2), 'BE');
    });

    // memfs: its data lived in the dead process. The file's node id answers ESTALE (or, once
    // the kernel looks it up again, the fresh memfs has no such name); the held fd's write fails.
    await check('the memfs file made before the kill', async () => {
      const gone = await cat(memFile);
      assert.is.not(gone.code, 0, `cat of the memfs file made before the kill must fail: ${show(gone)}`);
      assert.match(gone.stderr, /Stale file handle|No such file or directory/, show(gone));
    });
    await check('the fd held in MNT/mem', async () => assert.is(await h.fails('pwrite m 0 after'), 'ESTALE', 'a write through the fd held in MNT/mem across the kill'));
    // The rebuilt memfs (same index) serves at its root.
    await check('the rebuilt memfs', async () => {
      const fresh = await run('sh', ['-c', 'echo after > "$0/new.txt" && cat "$0/new.txt" && ls -A "$0"', join(e.mnt, 'mem')], WAIT_MS);
      assert.is(fresh.code, 0, `the rebuilt memfs serves: ${show(fresh)}`);
      assert.is(fresh.stdout, 'after\nnew.txt\n', 'the rebuilt memfs has the new file only');
    });

    // New opens and writes through the passthroughs after the takeover.
    await check('new files in MNT/a and MNT/c', async () => {
      const w = await run('sh', ['-c', 'echo post > "$0/a/post.txt" && echo post-c > "$0/c/post.txt"', e.mnt], WAIT_MS);
      assert.is(w.code, 0, show(w));
      assert.is(readFileSync(join(e.src1, 'post.txt'), 'utf8'), 'post\n');
      assert.is(readFileSync(join(e.src3, 'post.txt'), 'utf8'), 'post-c\n');
    });
    assert.ok(problems.length === 0, `${problems.length} part(s) of the takeover failed:\n${problems.join('\n')}\nlog:\n${tail(logOf(e), 20)}`);

    await h.try('close a');
    await h.try('close c');
    await h.try('close m'); // its FLUSH/RELEASE may answer ESTALE: the handle was lost with the memfs
    await h.kill();
    await umountAndCheck(e, [await serverOf(sup), sup]);
  })));
}

test('nothing of this file is left mounted or running', () => {
  for (const b of bases) {
    assert.equal(mountsBelow(b), [], `mounts below ${b}`);
    assert.equal(procsWith(b), [], `processes naming ${b}`);
  }
});

test.run();
