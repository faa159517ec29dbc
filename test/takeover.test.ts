// Crash takeover without remount, end to end (src/api/supervisor.ts, journal.ts,
// ledger.ts, InodeTree.restore): a supervisor holds the /dev/fuse fd and runs the server
// as its child (the one of its children that holds /dev/fuse: a spare waits beside it);
// the server is killed with SIGKILL while clients use the mount, and a new server takes
// the session over from the journal — the clients carry on, requests in
// flight are answered, re-sent non-idempotent requests are applied once, open files
// stay open; a server that keeps dying makes the supervisor give up; a filesystem whose
// data lived in the dead process loses it loudly.
//
// The supervisors come from the product's entry points: `tsfuse passthrough --supervise`
// (background, --log FILE) and spawnMount({ supervise: true, log }). Filesystems the test
// steers are in test/fixtures/takeover-fs.ts, the client programs in takeover-client.ts.
//
// Nothing is timed: every wait is for an event (a log line, a reply, an exit) with a
// generous deadline (WAIT_MS). Takeover times are measured and printed, never asserted.
// Every mount is unmounted (lazily) and every process started here — clients, the
// supervisor, its server — is killed in `finally`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { spawnMount } from '../src/api/index.js';
import { DIST, WAIT_MS, alive, childrenOf, fdsOf, mountsAt, mountsBelow, poll, procStat, procsWith, run, runNode, sleep, stopServersBelow, tempDir, timed, type Ran } from './helpers.js';
import { RECORD, record } from './fixtures/takeover-record.js';

const CLI = join(DIST, 'src/cli/main.js');
const CLIENT = join(DIST, 'test/fixtures/takeover-client.js');
const FS = join(DIST, 'test/fixtures/takeover-fs.js');
const MEMFS = join(DIST, 'examples/memfs.js');
const bases: string[] = [];
const osErrno = constants.errno;

// ---- what the system says: mounts, processes, fds ------------------------------------------






const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const now = () => performance.timeOrigin + performance.now();

// ---- one fresh SRC/MNT per test, everything undone after it ---------------------------------

interface Env {
  base: string; src: string; mnt: string;
  /** The supervisor's log (--log, spawnMount's log). */
  log: string;
  /** The takeover-fs fixture's marker path. */
  marker: string;
  /** Supervisor pids: they and their servers are killed at the end if still alive. */
  sups: number[];
  clients: Client[];
}

async function withEnv(fn: (e: Env) => Promise<void>): Promise<void> {
  const base = tempDir('tsfuse-test-takeover-');
  bases.push(base);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  const e: Env = { base, src, mnt, log: join(base, 'log'), marker: join(base, 'marker'), sups: [], clients: [] };
  try {
    await fn(e);
  } finally {
    for (const c of e.clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await stopServersBelow(base, [mnt], e.sups);
  }
}

/** The supervisor's log so far. */
const logOf = (e: Env) => (existsSync(e.log) ? readFileSync(e.log, 'utf8') : '');

/**
 * Waits until `text()` holds the supervisor's "takeover K: the new server (pid P) serves"
 * line; returns P.
 */
async function takeoverDone(text: () => string, k: number): Promise<number> {
  const re = new RegExp(`takeover ${k}: the new server \\(pid (\\d+)\\) serves`);
  const ok = await poll(() => re.test(text()), WAIT_MS, 5);
  assert.ok(ok, `no "takeover ${k}: the new server … serves" within ${WAIT_MS} ms; log:\n${text()}`);
  return Number(re.exec(text())![1]);
}

/** The serving server of supervisor `sup`: its child that holds /dev/fuse (the supervisor
 * also keeps a spare server waiting for the fd). */
async function serverOf(sup: number): Promise<number> {
  let kids: number[] = [];
  const ok = await poll(() => (kids = childrenOf(sup).filter((p) => fdsOf(p).includes('/dev/fuse'))).length === 1, WAIT_MS, 10);
  assert.ok(ok, `supervisor ${sup}: expected one child holding /dev/fuse, found ${kids.join(', ') || 'none'} (children: ${childrenOf(sup)})`);
  return kids[0];
}

/** Waits for `pid` to be gone (WAIT_MS). */
async function gone(pid: number, what: string): Promise<void> {
  assert.ok(await poll(() => !alive(pid), WAIT_MS, 20), `${what} (pid ${pid}) is still running`);
}

/** SIGKILLs the server `pid` (the supervisor, its parent, sees it die and restarts it). */
function killServer(pid: number): void {
  process.kill(pid, 'SIGKILL');
}

/** `tsfuse passthrough e.src e.mnt --supervise --log e.log`: returns the supervisor's pid. */
async function cliSupervised(e: Env, extra: string[] = []): Promise<number> {
  const r = await run(process.execPath, [CLI, 'passthrough', e.src, e.mnt, '--supervise', '--log', e.log, ...extra], 2 * WAIT_MS);
  const m = /supervisor pid (\d+)/.exec(r.stdout);
  if (m) e.sups.push(Number(m[1]));
  assert.is(r.code, 0, `tsfuse passthrough --supervise: exit ${r.code ?? r.signal}; stderr: ${r.stderr}`);
  assert.ok(m, `no "supervisor pid N" in: ${r.stdout}`);
  assert.is(mountsAt(e.mnt).length, 1, 'one mount once the command returned');
  return Number(m![1]);
}

/** spawnMount of a takeover-fs (or `module`) filesystem under a supervisor: its pid. */
async function spawnSupervised(e: Env, arg: object | undefined, more: { module?: string; export?: string; maxRestarts?: number } = {}): Promise<number> {
  const m = await spawnMount(e.mnt, {
    module: more.module ?? FS, export: more.export ?? 'default', arg, supervise: true, log: e.log, maxRestarts: more.maxRestarts,
    options: { fsname: 'tsfuse-test-takeover', defaultPermissions: true, allowOther: true },
  });
  e.sups.push(m.pid);
  assert.is(mountsAt(e.mnt).length, 1, 'one mount once spawnMount resolved');
  return m.pid;
}

/** `tsfuse umount MNT` (exit 0) ends the server and the supervisor; nothing is left. */
async function umountAndCheck(e: Env, sup: number, server: number): Promise<void> {
  const r = await run(process.execPath, [CLI, 'umount', e.mnt], 2 * WAIT_MS);
  assert.is(r.code, 0, `tsfuse umount: ${r.stderr}`);
  await gone(server, 'the server after umount');
  await gone(sup, 'the supervisor after umount');
  assert.equal(mountsAt(e.mnt), [], 'nothing mounted after umount');
  assert.ok(await poll(() => procsWith(e.base).length === 0, WAIT_MS, 20), `processes left: ${procsWith(e.base)}`);
}

// ---- client programs (takeover-client.ts) ---------------------------------------------------

class Client {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private replies: string[] = [];
  private partial = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(e: Env, readonly mode: string, args: string[]) {
    this.child = spawn(process.execPath, [CLIENT, mode, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    e.clients.push(this);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.out += d;
      this.partial += d;
      const lines = this.partial.split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) if (l.startsWith('> ')) this.replies.push(l.slice(2));
    });
    this.child.stderr!.on('data', (d: Buffer) => { this.err += d; });
    this.exited = new Promise((r) => this.child.on('exit', (code, signal) => r({ code, signal })));
  }

  get stderr(): string { return this.err; }

  /** Sends one command line. */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** The next reply starting with `prefix` (removed from the queue). */
  async reply(prefix: string, ms = WAIT_MS): Promise<string> {
    let i = -1;
    const ok = await poll(() => (i = this.replies.findIndex((r) => r.startsWith(prefix))) >= 0 || this.child.exitCode !== null, ms, 2);
    if (i < 0) i = this.replies.findIndex((r) => r.startsWith(prefix));
    assert.ok(ok && i >= 0, `${this.mode} client: no "${prefix}" reply (exit ${this.child.exitCode}); stderr: ${this.err}; stdout: ${this.out.slice(-500)}`);
    return this.replies.splice(i, 1)[0].slice(prefix.length).trim();
  }

  /** Sends `line` and returns the reply starting with `prefix`. */
  async ask(line: string, prefix: string): Promise<string> {
    this.send(line);
    return this.reply(prefix);
  }

  async count(): Promise<number> {
    return Number(await this.ask('count', 'count'));
  }

  /** Waits until the loop has done `n` more iterations than now. */
  async progress(n: number): Promise<number> {
    const start = await this.count();
    let c = start;
    const end = Date.now() + WAIT_MS;
    while (c < start + n) {
      assert.ok(Date.now() < end, `${this.mode} client made no progress (${start} → ${c}); stderr: ${this.err}`);
      await sleep(5);
      c = await this.count();
    }
    return c;
  }

  /** Holder: runs a command, returns the parsed result; fails the test on an error reply. */
  async hold(line: string): Promise<unknown> {
    this.send(line);
    const r = await this.reply('');
    assert.ok(r.startsWith('ok '), `holder "${line}": ${r}`);
    return JSON.parse(r.slice(3));
  }

  /** Loops: `finish n`, then the exit: 0, the final iteration count. */
  async finish(n: number): Promise<number> {
    this.send(`finish ${n}`);
    const done = Number(await this.reply('done'));
    const x = await Promise.race([this.exited, sleep(WAIT_MS).then(() => undefined)]);
    assert.ok(x, `${this.mode} client did not exit`);
    assert.equal(x, { code: 0, signal: null }, `${this.mode} client: ${this.err}`);
    assert.is(this.err, '', `${this.mode} client stderr`);
    return done;
  }
}

/** `ls -a DIR` in a child process (sorted names). */
async function ls(dir: string): Promise<string> {
  const r = await run('ls', ['-a', dir], WAIT_MS);
  assert.is(r.code, 0, `ls ${dir}: ${r.stderr}`);
  return r.stdout;
}

/** The writer's file holds exactly records 0 … n-1, in order. */
function assertRecords(path: string, n: number, what: string): void {
  const data = readFileSync(path);
  assert.is(data.length % RECORD, 0, `${what}: ${data.length} bytes is not a whole number of records`);
  const have = data.length / RECORD;
  for (let i = 0; i < Math.min(have, n); i++) {
    const r = data.subarray(i * RECORD, (i + 1) * RECORD);
    if (!r.equals(record(i))) assert.unreachable(`${what}: record ${i} of ${have} is "${r.subarray(0, 13)}", not record ${i}`);
  }
  assert.is(have, n, `${what}: ${have} records in the file, ${n} written`);
}

// ---- 1. clients carry on --------------------------------------------------------------------

test('kill -9 the server under a writer (append+fsync) and a lister: both carry on, every fsync\'d record is there, the listing is the same', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    mkdirSync(join(e.src, 'dir'));
    for (let i = 0; i < 40; i++) writeFileSync(join(e.src, 'dir', `f${i}`), `file ${i}\n`);
    const sup = await cliSupervised(e);
    const server = await serverOf(sup);
    const before = await ls(join(e.mnt, 'dir'));
    const writer = new Client(e, 'writer', [join(e.mnt, 'out.log')]);
    const lister = new Client(e, 'lister', [join(e.mnt, 'dir'), join(e.mnt, 'dir', 'f0')]);
    await writer.progress(20);
    await lister.progress(20);
    const fsynced = await writer.count(); // records 0 … fsynced-1 were fsync'd before the kill
    killServer(server);
    const next = await takeoverDone(() => logOf(e), 1);
    assert.ok(alive(next) && procStat(next)!.ppid === sup, 'the new server is the supervisor\'s child');
    assert.ok(alive(sup), 'the supervisor lives on');
    const written = await writer.finish(50);
    await lister.finish(50);
    assert.ok(written >= fsynced + 50, `${written} records written, ${fsynced} before the kill`);
    assertRecords(join(e.src, 'out.log'), written, 'the source file');
    assert.is(await ls(join(e.mnt, 'dir')), before, 'ls shows the same entries as before the kill');
    assert.match(logOf(e), 'supervisor: the server was killed by SIGKILL; restarting it (takeover 1)');
    assert.match(logOf(e), /takeover: restored \d+ node id\(s\) and \d+ open file\(s\)/);
    assert.is(mountsAt(e.mnt).length, 1, 'still one mount');
    await umountAndCheck(e, sup, next);
  })));

// ---- 2. a request in flight ------------------------------------------------------------------

test('a stat held by the server at the kill (lookup of "stall" never answered) is answered by the new server', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    writeFileSync(join(e.src, 'stall'), 'twelve bytes');
    const sup = await spawnSupervised(e, { src: e.src, marker: e.marker, stall: true });
    const server = await serverOf(sup);
    const stat = spawn('stat', ['-c', '%s %F', join(e.mnt, 'stall')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    stat.stdout.on('data', (d) => { out += d; });
    stat.stderr.on('data', (d) => { err += d; });
    const exited = new Promise<number | null>((r) => stat.on('exit', (code) => r(code)));
    try {
      assert.ok(await poll(() => existsSync(`${e.marker}.stalled`), WAIT_MS, 5), 'the lookup of "stall" reached the server');
      assert.is(stat.exitCode, null, `stat is blocked in the request (it exited: ${out} ${err})`);
      killServer(server);
      await takeoverDone(() => logOf(e), 1);
      const code = await Promise.race([exited, sleep(WAIT_MS).then(() => 'hung')]);
      assert.is(code, 0, `stat after the takeover: ${err}`);
      assert.is(out.trim(), '12 regular file');
    } finally {
      if (stat.exitCode === null) stat.kill('SIGKILL');
    }
  })));

// ---- 3. re-sent non-idempotent requests --------------------------------------------------------

test('a re-sent MKDIR, CREATE (O_CREAT|O_EXCL) and UNLINK whose server died after applying them: success, applied once', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    writeFileSync(join(e.src, 'crash-gone'), 'to be removed\n');
    writeFileSync(join(e.src, 'keep'), 'kept\n');
    const sup = await spawnSupervised(e, { src: e.src, marker: e.marker, crash: true });
    const syscall = (code: string, ...args: string[]) =>
      runNode<string>(`const fs = require('fs'); try { ${code}; console.log(JSON.stringify('ok')); } catch (e) { console.log(JSON.stringify(e.code)); }`,
        args, 2 * WAIT_MS);
    const applied = () => (existsSync(`${e.marker}.log`) ? readFileSync(`${e.marker}.log`, 'utf8') : '');
    const srcNames = (re: RegExp) => readdirSync(e.src).filter((n) => re.test(n)).sort();

    // MKDIR
    assert.is(await syscall('fs.mkdirSync(process.argv[1])', join(e.mnt, 'crash-dir')), 'ok', 'mkdir: success, not EEXIST');
    assert.match(applied(), 'applied crash-dir', 'the first server applied the mkdir and died');
    await takeoverDone(() => logOf(e), 1);
    assert.equal(srcNames(/crash-dir/), ['crash-dir']);
    assert.ok(statSync(join(e.src, 'crash-dir')).isDirectory());
    assert.ok(statSync(join(e.mnt, 'crash-dir')).isDirectory(), 'the directory through the mount');

    // CREATE with O_EXCL, then a write through the fd it returned
    assert.is(await syscall(
      'const fd = fs.openSync(process.argv[1], fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644); fs.writeSync(fd, "made once\\n"); fs.closeSync(fd)',
      join(e.mnt, 'crash-file')), 'ok', 'open(O_CREAT|O_EXCL): success, not EEXIST');
    assert.match(applied(), 'applied crash-file');
    await takeoverDone(() => logOf(e), 2);
    assert.equal(srcNames(/crash-file/), ['crash-file']);
    assert.is(readFileSync(join(e.src, 'crash-file'), 'utf8'), 'made once\n', 'the fd the re-sent CREATE returned writes the file');

    // UNLINK
    assert.is(await syscall('fs.unlinkSync(process.argv[1])', join(e.mnt, 'crash-gone')), 'ok', 'unlink: success, not ENOENT');
    assert.match(applied(), 'applied crash-gone');
    await takeoverDone(() => logOf(e), 3);
    assert.equal(srcNames(/crash-gone/), []);

    // New requests are not replayed: a second mkdir of the name is EEXIST, an unlink of the gone name ENOENT.
    assert.is(await syscall('fs.mkdirSync(process.argv[1])', join(e.mnt, 'crash-dir')), 'EEXIST');
    assert.is(await syscall('fs.unlinkSync(process.argv[1])', join(e.mnt, 'crash-gone')), 'ENOENT');
    assert.equal(readdirSync(e.src).sort(), ['crash-dir', 'crash-file', 'keep']);
    assert.equal((await ls(e.mnt)).split('\n').filter(Boolean), ['.', '..', 'crash-dir', 'crash-file', 'keep']);
    assert.ok(alive(sup), 'three deaths in a minute: the supervisor carries on');
    assert.is((logOf(e).match(/restarting it/g) ?? []).length, 3, logOf(e));
  })));

// ---- 4. open files -------------------------------------------------------------------------------

test('an O_RDWR fd and a directory stream held open across the kill keep reading, writing and listing', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    const line = (i: number) => `line ${String(i).padStart(6, '0')}\n`; // 12 bytes
    const lines = 1 << 16;
    writeFileSync(join(e.src, 'held.txt'), Array.from({ length: lines }, (_, i) => line(i)).join(''));
    mkdirSync(join(e.src, 'many'));
    const names = Array.from({ length: 2000 }, (_, i) => `entry-${String(i).padStart(5, '0')}-${'x'.repeat(60)}`);
    for (const n of names) writeFileSync(join(e.src, 'many', n), '');
    const sup = await cliSupervised(e);
    const server = await serverOf(sup);
    const h = new Client(e, 'holder', []);
    await h.reply('ready');
    await h.hold(`open ${join(e.mnt, 'held.txt')}`);
    assert.is(await h.hold('pwrite 0 before-kill'), 11);
    assert.is(await h.hold('pread 0 11'), 'before-kill');
    await h.hold(`opendir ${join(e.mnt, 'many')}`);
    const first = await h.hold('readdir 10') as string[];
    assert.is(first.length, 10);
    assert.is(readFileSync(join(e.src, 'held.txt'), 'utf8').slice(0, 11), 'before-kill');

    killServer(server);
    const next = await takeoverDone(() => logOf(e), 1);
    const restored = /takeover: restored (\d+) node id\(s\) and (\d+) open file\(s\)/.exec(logOf(e));
    assert.ok(restored, logOf(e));
    assert.ok(Number(restored![2]) >= 2, `the file and the directory were reopened: ${restored![0]}`);

    assert.is(await h.hold('pwrite 120 after-kill'), 10, 'a write through the held fd');
    assert.is(await h.hold('pread 120 10'), 'after-kill');
    assert.is(readFileSync(join(e.src, 'held.txt'), 'utf8').slice(120, 130), 'after-kill', 'the write reached the source');
    // Far from anything read before the kill: not in the page cache, read by the new server.
    const far = 50_000;
    assert.is(await h.hold(`pread ${far * 12} 24`), line(far) + line(far + 1));
    assert.is(await h.hold('fstat'), lines * 12);
    const rest = await h.hold('readdir 5000') as string[];
    const all = [...first, ...rest];
    assert.is(new Set(all).size, all.length, 'no entry listed twice');
    assert.equal([...all].sort(), names, 'the directory stream lists every entry exactly once across the kill');
    assert.equal(await h.hold('readdir 10'), [], 'then the end');
    await h.hold('close');
    assert.is(readFileSync(join(e.src, 'held.txt'), 'utf8').slice(0, 11), 'before-kill');
    await umountAndCheck(e, sup, next);
  })));

// ---- 5. ten kills under load -------------------------------------------------------------------

test('ten kills in a row under load: no client error, fds bounded, one mount; umount leaves nothing (takeover times printed)', timed(10 * WAIT_MS, () =>
  withEnv(async (e) => {
    writeFileSync(join(e.src, 'target'), 'stat me\n');
    mkdirSync(join(e.src, 'd'));
    for (let i = 0; i < 10; i++) writeFileSync(join(e.src, 'd', `e${i}`), '');
    writeFileSync(join(e.src, 'rw.bin'), Buffer.alloc(16 * RECORD));
    // Ten deaths within a minute: more than the default limit may allow; the limit is test 6's.
    const sup = await cliSupervised(e, ['--max-restarts', '20']);
    let server = await serverOf(sup);
    // The stat client lists a directory each time round: every iteration needs the server.
    const stat = new Client(e, 'stat', [join(e.mnt, 'target'), join(e.mnt, 'd')]);
    const rw = new Client(e, 'rw', [join(e.mnt, 'rw.bin')]);
    const writer = new Client(e, 'writer', [join(e.mnt, 'out.log')]);
    const clients = [stat, rw, writer];
    const times: number[] = [];
    const served: number[] = [];
    const supFds: string[][] = [];
    const serverFds: string[][] = [];
    for (let k = 1; k <= 10; k++) {
      for (const c of clients) await c.progress(10);
      await sleep(200); // some load between two kills
      supFds.push(fdsOf(sup));
      const t = now();
      killServer(server);
      server = await takeoverDone(() => logOf(e), k);
      for (const c of clients) await c.progress(10);
      times.push(Number(await stat.ask(`after ${t}`, 'first')) - t);
      served.push(Number(new RegExp(`takeover ${k}: the new server \\(pid \\d+\\) serves .* after (\\d+) ms`).exec(logOf(e))?.[1]));
      serverFds.push(fdsOf(server));
    }
    supFds.push(fdsOf(sup));
    const written = await writer.finish(20);
    const rwDone = await rw.finish(20);
    await stat.finish(20);
    const delays = [...logOf(e).matchAll(/restarting it(?: in (\d+) ms)? \(takeover/g)].map((m) => Number(m[1] ?? 0));
    console.log(`takeover ms: median ${median(times).toFixed(1)} worst ${Math.max(...times).toFixed(1)} ` +
      `(kill → first answered request of the stat client, each: ${times.map((x) => x.toFixed(0)).join(' ')}; ` +
      `of which the supervisor's restart delay: ${delays.join(' ')}; its "serves after" (start → ready): ${served.join(' ')})`);

    assert.ok(alive(sup), 'the supervisor lives on');
    assert.is(mountsAt(e.mnt).length, 1, 'exactly one mount at MNT after ten takeovers');
    assert.is(delays.length, 10, logOf(e));
    assert.not.match(logOf(e), /giving up|could not be restored|lost|error/i, logOf(e));
    // The supervisor holds the same fds whatever the number of kills; so does each new server,
    // apart from the source's files it has open (one fd per inode, the clients' open files).
    const sizes = supFds.map((f) => f.length);
    assert.ok(Math.max(...sizes) <= sizes[0] + 1, `supervisor fds grow with kills: ${sizes.join(' ')}; last: ${supFds[supFds.length - 1].join(' ')}`);
    const own = serverFds.map((fds) => fds.filter((f) => !f.startsWith(e.src)).length);
    assert.ok(Math.max(...own) <= own[0] + 2, `server fds (not the source's) grow with kills: ${own.join(' ')}`);
    const total = serverFds.map((f) => f.length);
    assert.ok(Math.max(...total) <= total[0] + 10, `server fds grow with kills: ${total.join(' ')}`);

    assertRecords(join(e.src, 'out.log'), written, 'the writer\'s file');
    const block = readFileSync(join(e.src, 'rw.bin'));
    for (let j = 0; j < 16; j++) {
      let i = rwDone - 1;
      while (i % 16 !== j) i--;
      assert.ok(block.subarray(j * RECORD, (j + 1) * RECORD).equals(record(i)), `rw.bin block ${j} holds record ${i}`);
    }
    await umountAndCheck(e, sup, server);
  })));

// ---- 6. a restart loop ends ------------------------------------------------------------------------

test('maxRestarts 5, a server that dies as soon as it serves, every time: the supervisor gives up after 5 restarts, detaches the mount, exits', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    writeFileSync(join(e.src, 'f'), 'x\n');
    const sup = await spawnSupervised(e, { src: e.src, marker: e.marker, dieOnServe: true }, { maxRestarts: 5 });
    const server = await serverOf(sup);
    assert.is(readFileSync(join(e.mnt, 'f'), 'utf8'), 'x\n', 'the first server serves');
    killServer(server);
    await gone(sup, 'the supervisor of a server that keeps dying');
    const log = logOf(e);
    assert.match(log, /died 6 times within 60 s: giving up/);
    assert.match(log, `${e.mnt} is detached lazily`);
    assert.is((log.match(/restarting it/g) ?? []).length, 5, log);
    // The first server and five that took over (a spare waiting when it gave up may have started too).
    assert.ok(readFileSync(`${e.marker}.pids`, 'utf8').trim().split('\n').length >= 6, 'the first server and five restarts');
    assert.equal(mountsAt(e.mnt), [], 'the mount is gone');
    assert.equal(readdirSync(e.mnt), [], 'MNT is the empty directory again');
    assert.ok(await poll(() => procsWith(e.base).length === 0, WAIT_MS, 20), `processes left: ${procsWith(e.base)}`);
  })));

// ---- 7. data that lived in the dead process ---------------------------------------------------------

test('memfs supervised: a file made before the kill is lost loudly (errors by path and through a held fd, the log names the node); the root works', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const sup = await spawnSupervised(e, undefined, { module: MEMFS, export: 'memfs' });
    const server = await serverOf(sup);
    const kept = join(e.mnt, 'kept.txt');
    const made = await run('sh', ['-c', 'echo before > "$0" && cat "$0"', kept], WAIT_MS);
    assert.is(made.stdout, 'before\n', made.stderr);
    const h = new Client(e, 'holder', []);
    await h.reply('ready');
    await h.hold(`open ${kept}`);
    assert.is(await h.hold('pwrite 7 more'), 4);
    killServer(server);
    await takeoverDone(() => logOf(e), 1);
    const log = logOf(e);
    assert.match(log, /takeover: 1 node id\(s\) could not be restored and answer ESTALE from now on/);
    assert.match(log, /node \d+ "kept\.txt"/, 'the log names the lost node');
    const cat = await run('cat', [kept], WAIT_MS);
    assert.is.not(cat.code, 0, `cat of the lost file must fail: ${cat.stdout}`);
    assert.match(cat.stderr, /Stale file handle|No such file or directory/);
    const st = await run('stat', [kept], WAIT_MS);
    assert.is.not(st.code, 0, 'stat of the lost file must fail');
    assert.match(st.stderr, /Stale file handle|No such file or directory/);
    // The file handle the held fd stands for was lost with the node: a write through it reaches
    // the new server (a read may still come from the page cache) and fails.
    h.send('pwrite 0 after');
    const w = await h.reply('');
    assert.match(w, `err UNKNOWN -${osErrno.ESTALE} `, `a write through the fd held across the kill is ESTALE: ${w}`);
    console.log(`memfs after takeover: cat: ${cat.stderr.trim()}; stat: ${st.stderr.trim()}; write through a held fd: ${w}`);
    const root: Ran = await run('sh', ['-c', 'echo after > "$0/new.txt" && cat "$0/new.txt" && ls -a "$0"', e.mnt], WAIT_MS);
    assert.is(root.code, 0, root.stderr);
    assert.is(root.stdout, 'after\n.\n..\nnew.txt\n', 'the root serves: a new file, and the lost one is not listed');
  })));

test('nothing of this file is left mounted or running', () => {
  for (const b of bases) {
    assert.equal(mountsBelow(b), [], `mounts below ${b}`);
    assert.equal(procsWith(b), [], `processes naming ${b}`);
  }
});

test.run();
