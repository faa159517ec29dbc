// Kernel passthrough (-o kernel_passthrough) under crash takeover (--supervise), end to
// end: regular files are opened with FOPEN_PASSTHROUGH and a kernel backing id, one per
// inode and shared by all its opens, closed at the last RELEASE; the kernel reads and
// writes the source file itself. The backing ids live in the kernel's connection, which
// outlives a killed server (the supervisor holds the /dev/fuse fd); the journal records
// each open file's backing id, and the server that takes over adopts it for the inode
// (inode.adoptBackingId), so that a new open of a file that is still open shares the id
// (the kernel refuses a second backing file for an inode in use: EIO), and closes it after
// the last release.
//
// The supervisor comes from the product's entry point: `tsfuse passthrough SRC MNT
// --supervise --log LOG -o kernel_passthrough -d` (-d: every request is in the log, so the
// test can say that no READ or WRITE reached a server, and wait for RELEASEs). Clients
// are child processes (test/fixtures/pt-takeover-client.ts) holding named fds; the test
// process never touches the mount itself. It reads the source directly.
//
// Nothing is timed: every wait is for an event (a log line, a reply, an exit) with a
// generous deadline (WAIT_MS). Every mount is unmounted (lazily) and every process
// started here — clients, the supervisor, its servers — is killed in `finally`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, WAIT_MS, alive, childrenOf, fdsOf, mountsAt, mountsBelow, poll, procStat, procsWith, run, stopServersBelow, tempDir, timed, type Ran } from './helpers.js';

const CLI = join(DIST, 'src/cli/main.js');
const CLIENT = join(DIST, 'test/fixtures/pt-takeover-client.js');
const bases: string[] = [];

// ---- what the system says: processes, fds ---------------------------------------------------

// ---- one fresh SRC/MNT per test, everything undone after it ---------------------------------

interface Env {
  base: string; src: string; mnt: string;
  /** The supervisor's log (--log). */
  log: string;
  /** Supervisor pids: they and their servers are killed at the end if still alive. */
  sups: number[];
  clients: Holder[];
}

/** One test's directories; `tmpfs`: the source is a tmpfs of its own (its space use is seen by statfs). */
async function withEnv(fn: (e: Env) => Promise<void>, how: { tmpfs?: boolean } = {}): Promise<void> {
  const base = tempDir('tsfuse-test-takeover-pt-');
  bases.push(base);
  const src = join(base, 'src');
  const mnt = join(base, 'mnt');
  mkdirSync(src);
  mkdirSync(mnt);
  const e: Env = { base, src, mnt, log: join(base, 'log'), sups: [], clients: [] };
  try {
    if (how.tmpfs) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0755', 'tsfuse-test-takeover-pt', src]);
    await fn(e);
  } finally {
    for (const c of e.clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await stopServersBelow(base, [mnt], e.sups, [src]);
  }
}

/** The supervisor's log so far. */
const logOf = (e: Env) => (existsSync(e.log) ? readFileSync(e.log, 'utf8') : '');

/** Requests `op` the servers got (-d lines "→ UNIQUE OP node=…"). */
const requests = (log: string, op: string) => log.split('\n').filter((l) => new RegExp(`→ \\d+ ${op} node=`).test(l));
/** Successful replies to `op` (-d lines "← UNIQUE OP ok"). */
const oks = (log: string, op: string) => log.split('\n').filter((l) => new RegExp(`← \\d+ ${op} ok\\b`).test(l)).length;

/** The mount with kernel passthrough, supervised: the supervisor's pid and what the
 * starting command printed (INIT goes there: the log takes over once the mount serves). */
async function cliSupervised(e: Env): Promise<{ sup: number; started: string }> {
  const r: Ran = await run(process.execPath, [CLI, 'passthrough', e.src, e.mnt, '--supervise', '--log', e.log, '-o', 'kernel_passthrough', '-d'], 2 * WAIT_MS);
  const m = /supervisor pid (\d+)/.exec(r.stdout);
  if (m) e.sups.push(Number(m[1]));
  assert.is(r.code, 0, `tsfuse passthrough --supervise -o kernel_passthrough: exit ${r.code ?? r.signal}; stderr: ${r.stderr}`);
  assert.ok(m, `no "supervisor pid N" in: ${r.stdout}`);
  assert.is(mountsAt(e.mnt).length, 1, 'one mount once the command returned');
  return { sup: Number(m![1]), started: `${r.stdout}\n${r.stderr}` };
}

/** The serving server of supervisor `sup`: its child that holds /dev/fuse (a spare waits beside it). */
async function serverOf(sup: number): Promise<number> {
  let kids: number[] = [];
  const ok = await poll(() => (kids = childrenOf(sup).filter((p) => fdsOf(p).includes('/dev/fuse'))).length === 1, WAIT_MS, 10);
  assert.ok(ok, `supervisor ${sup}: expected one child holding /dev/fuse, found ${kids.join(', ') || 'none'} (children: ${childrenOf(sup)})`);
  return kids[0];
}

/**
 * Waits for the supervisor's "takeover K: the new server (pid P) serves" line; returns P and
 * the number of open files the new server restored (its "takeover: restored N node id(s)
 * and M open file(s)" line, the K-th of them).
 */
async function takeoverDone(e: Env, k: number): Promise<{ server: number; files: number }> {
  const re = new RegExp(`takeover ${k}: the new server \\(pid (\\d+)\\) serves`);
  const ok = await poll(() => re.test(logOf(e)), WAIT_MS, 5);
  assert.ok(ok, `no "takeover ${k}: the new server … serves" within ${WAIT_MS} ms; log:\n${tail(logOf(e))}`);
  const restored = [...logOf(e).matchAll(/takeover: restored \d+ node id\(s\) and (\d+) open file\(s\)/g)];
  assert.ok(restored.length >= k, `no "takeover: restored … open file(s)" line for takeover ${k}; log:\n${tail(logOf(e))}`);
  return { server: Number(re.exec(logOf(e))![1]), files: Number(restored[k - 1][1]) };
}

const tail = (s: string, n = 40) => s.split('\n').slice(-n).join('\n');

/** SIGKILLs the serving server of `sup`, waits for takeover `k`: the new server and the open files it restored. */
async function killAndTakeOver(e: Env, sup: number, k: number): Promise<{ server: number; files: number }> {
  const server = await serverOf(sup);
  process.kill(server, 'SIGKILL');
  const t = await takeoverDone(e, k);
  assert.is.not(t.server, server, 'a new server serves');
  assert.ok(alive(t.server) && procStat(t.server)!.ppid === sup, 'the new server is the supervisor\'s child');
  assert.ok(alive(sup), 'the supervisor lives on');
  assert.match(logOf(e), `the server was killed by SIGKILL; restarting it (takeover ${k})`);
  return t;
}

/**
 * Kernel passthrough was in effect: no line of the starting command or of the log says it
 * was refused or not offered (the test fails with that line), and no READ or WRITE reached
 * any server (-d logs every request), and no OPEN failed.
 */
function assertKernelPassthrough(e: Env, started: string): void {
  const all = `${started}\n${logOf(e)}`;
  const refused = all.split('\n').find((l) => /kernel passthrough refused|offers no FUSE_PASSTHROUGH|cannot be had/.test(l));
  if (refused) assert.unreachable(refused.trim());
  const log = logOf(e);
  assert.ok(requests(log, 'OPEN').length > 0, `no OPEN in the log (is -d in effect?):\n${tail(log)}`);
  assert.equal(requests(log, 'READ'), [], 'no READ reached a server: the kernel read the source itself');
  assert.equal(requests(log, 'WRITE'), [], 'no WRITE reached a server: the kernel wrote the source itself');
  assert.equal(log.split('\n').filter((l) => /← \d+ (OPEN|CREATE|RELEASE) (?!ok)/.test(l)), [], 'every OPEN and RELEASE answered ok');
}

/** Waits until the servers answered `n` RELEASEs in all (the kernel sends them after the last close, asynchronously). */
async function releases(e: Env, n: number): Promise<void> {
  const ok = await poll(() => oks(logOf(e), 'RELEASE') >= n, WAIT_MS, 10);
  assert.ok(ok, `${oks(logOf(e), 'RELEASE')} RELEASEs answered, ${n} expected; log:\n${tail(logOf(e))}`);
}

/** `tsfuse umount MNT` (exit 0) ends the server and the supervisor; nothing is left. */
async function umountAndCheck(e: Env, sup: number): Promise<void> {
  const server = await serverOf(sup);
  const r = await run(process.execPath, [CLI, 'umount', e.mnt], 2 * WAIT_MS);
  assert.is(r.code, 0, `tsfuse umount: ${r.stderr}`);
  assert.ok(await poll(() => !alive(server), WAIT_MS, 20), `the server (pid ${server}) is still running after umount`);
  assert.ok(await poll(() => !alive(sup), WAIT_MS, 20), `the supervisor (pid ${sup}) is still running after umount`);
  assert.equal(mountsAt(e.mnt), [], 'nothing mounted after umount');
  assert.ok(await poll(() => procsWith(e.base).length === 0, WAIT_MS, 20), `processes left: ${procsWith(e.base)}`);
}

// ---- the client (pt-takeover-client.ts): a process holding named fds --------------------------

class Holder {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private replies: string[] = [];
  private partial = '';

  constructor(e: Env, readonly who: string) {
    this.child = spawn(process.execPath, [CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    e.clients.push(this);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.out += d;
      this.partial += d;
      const lines = this.partial.split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) if (l.startsWith('> ')) this.replies.push(l.slice(2));
    });
    this.child.stderr!.on('data', (d: Buffer) => { this.err += d; });
  }

  /** Waits for the next reply line. */
  private async next(what: string): Promise<string> {
    const ok = await poll(() => this.replies.length > 0 || this.child.exitCode !== null || this.child.signalCode !== null, WAIT_MS, 2);
    assert.ok(ok && this.replies.length > 0,
      `client ${this.who}: no reply to "${what}" (exit ${this.child.exitCode ?? this.child.signalCode}); stderr: ${this.err}; stdout: ${this.out.slice(-500)}`);
    return this.replies.shift()!;
  }

  async ready(): Promise<void> {
    assert.is(await this.next('start'), 'ready');
  }

  /** Sends a command; its raw reply ("ok JSON" or "err CODE ERRNO message"). */
  async ask(line: string): Promise<string> {
    this.child.stdin!.write(`${line}\n`);
    return this.next(line);
  }

  /** Runs a command that must succeed: its result. */
  async do(line: string, why = ''): Promise<unknown> {
    const r = await this.ask(line);
    if (!r.startsWith('ok ')) assert.unreachable(`client ${this.who}: "${line}" failed: ${r}${why ? ` (${why})` : ''}`);
    return JSON.parse(r.slice(3));
  }
}

async function holder(e: Env, who: string): Promise<Holder> {
  const h = new Holder(e, who);
  await h.ready();
  return h;
}

// ---- what a file should hold ----------------------------------------------------------------

/** The expected contents of one source file: the writes done through the mount applied in order. */
class Model {
  buf: Buffer;
  constructor(initial: string) { this.buf = Buffer.from(initial, 'latin1'); }
  write(off: number, text: string): void {
    const data = Buffer.from(text, 'latin1');
    if (off + data.length > this.buf.length) {
      const grown = Buffer.alloc(off + data.length);
      this.buf.copy(grown);
      this.buf = grown;
    }
    data.copy(this.buf, off);
  }
  get text(): string { return this.buf.toString('latin1'); }
}

/** `h` writes `text` at `off` through fd `name`; the model follows. */
async function pwrite(h: Holder, name: string, m: Model, off: number, text: string): Promise<void> {
  assert.is(await h.do(`pwrite ${name} ${off} ${text}`), text.length, `client ${h.who}: pwrite of ${text.length} bytes at ${off}`);
  m.write(off, text);
}

/** The source file holds what was written through the mount (read directly, not through the mount). */
function assertSource(path: string, m: Model, what: string): void {
  const have = readFileSync(path);
  if (have.equals(m.buf)) return;
  const first = [...m.buf].findIndex((b, i) => have[i] !== b);
  assert.unreachable(`${what}: the source holds ${have.length} bytes, ${m.buf.length} expected; first difference at ${first < 0 ? Math.min(have.length, m.buf.length) : first}`);
}

/** `cmp MNT/name SRC/name` in a child process: equal. */
async function cmpThroughMount(e: Env, name: string): Promise<void> {
  const r = await run('cmp', [join(e.mnt, name), join(e.src, name)], WAIT_MS);
  assert.is(r.code, 0, `cmp ${name} through the mount and on the source: ${r.stdout}${r.stderr}`);
}

const lines = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag} ${String(i).padStart(6, '0')}\n`).join('');

// ---- 1. one file held across a kill ----------------------------------------------------------------

test('kill -9 the server under a file held open read-write with kernel passthrough: the held fd keeps reading and writing the source; a new open of the file from another process works (the adopted backing id) and sees the data; after both close, a third open works; cmp equal', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    const f = new Model(lines('line', 1024)); // 12 KiB
    writeFileSync(join(e.src, 'f'), f.buf);
    const { sup, started } = await cliSupervised(e);
    const path = join(e.mnt, 'f');

    const a = await holder(e, 'A');
    await a.do(`open f ${path}`);
    await pwrite(a, 'f', f, 0, 'alpha-before-kill');
    assert.is(await a.do('pread f 0 17'), 'alpha-before-kill');
    assert.is(await a.do('readall f'), f.text, 'A reads the whole file');
    assertSource(join(e.src, 'f'), f, 'before the kill');

    const t = await killAndTakeOver(e, sup, 1);
    assert.is(t.files, 1, 'the new server restored the one open file');

    // (a) the held fd carries on: reads, writes inside and beyond the end, all on the source.
    assert.is(await a.do('pread f 0 17'), 'alpha-before-kill', 'A reads what it wrote before the kill');
    await pwrite(a, 'f', f, 5000, 'alpha-after-kill');
    assert.is(await a.do('pread f 5000 16'), 'alpha-after-kill');
    await pwrite(a, 'f', f, f.buf.length + 100, 'alpha-beyond-the-end');
    assert.is(await a.do('size f'), f.buf.length, 'A\'s fstat sees the grown file');
    assert.is(await a.do('readall f'), f.text, 'A reads the whole file after the kill');
    assertSource(join(e.src, 'f'), f, 'after writes through the fd held across the kill');

    // (b) a new open of the still-open file: it must share the backing id the dead server got.
    const b = await holder(e, 'B');
    await b.do(`open f ${path}`, 'a new open of a file held open across the takeover: the new server must reuse the adopted backing id');
    assert.is(await b.do('readall f'), f.text, 'B sees A\'s writes from before and after the kill');
    await pwrite(b, 'f', f, 7000, 'beta-new-open');
    assert.is(await a.do('pread f 7000 13'), 'beta-new-open', 'A sees B\'s write at once (one backing file)');
    await pwrite(a, 'f', f, 7004, 'ALPHA');
    assert.is(await b.do('pread f 7000 13'), 'betaALPHAopen', 'B sees A\'s write at once');
    assertSource(join(e.src, 'f'), f, 'after writes by both');

    // (c) both close: the last RELEASE closes the backing id; a third open gets a fresh one.
    await a.do('close f');
    await b.do('close f');
    await releases(e, 2);
    const c = await holder(e, 'C');
    await c.do(`open f ${path}`, 'an open after the last release of the adopted backing id');
    assert.is(await c.do('readall f'), f.text, 'C reads everything written before');
    await pwrite(c, 'f', f, 9000, 'gamma-third-open');
    assert.is(await c.do('pread f 9000 16'), 'gamma-third-open');
    await c.do('close f');
    await releases(e, 3);
    assertSource(join(e.src, 'f'), f, 'after the third open');
    await cmpThroughMount(e, 'f');

    assertKernelPassthrough(e, started);
    await umountAndCheck(e, sup);
  })));

// ---- 2. two files, two kills ------------------------------------------------------------------------

test('two files held open across two kills in a row (one opened before the first, one between them, a second open of the first between them): every fd keeps working, new opens of both from another process work, then all closed and reopened: all data right', timed(8 * WAIT_MS, () =>
  withEnv(async (e) => {
    const fa = new Model(lines('aaaa', 700));
    const fb = new Model(lines('bbbb', 900));
    writeFileSync(join(e.src, 'a'), fa.buf);
    writeFileSync(join(e.src, 'b'), fb.buf);
    const { sup, started } = await cliSupervised(e);
    const pa = join(e.mnt, 'a');
    const pb = join(e.mnt, 'b');

    // The first server: h1 opens a.
    const h1 = await holder(e, 'h1');
    await h1.do(`open a ${pa}`);
    await pwrite(h1, 'a', fa, 10, 'h1-a-server1');

    const t1 = await killAndTakeOver(e, sup, 1);
    assert.is(t1.files, 1, 'takeover 1 restored a\'s open file');

    // The second server: a's backing id adopted from the first; b gets its own; h2 opens both.
    await pwrite(h1, 'a', fa, 100, 'h1-a-server2');
    const h2 = await holder(e, 'h2');
    await h2.do(`open b ${pb}`);
    await h2.do(`open a ${pa}`, 'a second open of a, held across takeover 1');
    await pwrite(h2, 'b', fb, 20, 'h2-b-server2');
    await pwrite(h2, 'a', fa, 200, 'h2-a-server2');
    assert.is(await h1.do('readall a'), fa.text, 'h1 sees h2\'s write to a');
    assertSource(join(e.src, 'a'), fa, 'a after takeover 1');
    assertSource(join(e.src, 'b'), fb, 'b after takeover 1');

    const t2 = await killAndTakeOver(e, sup, 2);
    assert.is(t2.files, 3, 'takeover 2 restored the three open files (a twice, b)');

    // The third server: all three fds carry on.
    await pwrite(h1, 'a', fa, 300, 'h1-a-server3');
    await pwrite(h2, 'a', fa, fa.buf.length + 50, 'h2-a-server3-beyond-the-end');
    await pwrite(h2, 'b', fb, 400, 'h2-b-server3');
    assert.is(await h1.do('readall a'), fa.text, 'h1 reads a after takeover 2');
    assert.is(await h2.do('readall a'), fa.text, 'h2 reads a after takeover 2');
    assert.is(await h2.do('readall b'), fb.text, 'h2 reads b after takeover 2');
    // New opens of both from another process: the ids adopted (a's from the first server,
    // carried through the second's journal; b's from the second).
    const h3 = await holder(e, 'h3');
    await h3.do(`open a ${pa}`, 'a new open of a (held since the first server) after two takeovers');
    await h3.do(`open b ${pb}`, 'a new open of b (held since the second server) after takeover 2');
    assert.is(await h3.do('readall a'), fa.text, 'h3 sees a');
    assert.is(await h3.do('readall b'), fb.text, 'h3 sees b');
    await pwrite(h3, 'a', fa, 500, 'h3-a-server3');
    await pwrite(h3, 'b', fb, 600, 'h3-b-server3');
    assert.is(await h1.do('pread a 500 12'), 'h3-a-server3', 'h1 sees h3\'s write at once');
    assert.is(await h2.do('pread b 600 12'), 'h3-b-server3', 'h2 sees h3\'s write at once');
    assertSource(join(e.src, 'a'), fa, 'a after takeover 2');
    assertSource(join(e.src, 'b'), fb, 'b after takeover 2');

    // All closed (five opens), then reopened: the ids were closed at the last releases, new ones serve.
    await h1.do('close a');
    await h2.do('close a');
    await h2.do('close b');
    await h3.do('close a');
    await h3.do('close b');
    await releases(e, 5);
    const h4 = await holder(e, 'h4');
    await h4.do(`open a ${pa}`, 'an open of a after all its opens were released');
    await h4.do(`open b ${pb}`, 'an open of b after all its opens were released');
    assert.is(await h4.do('readall a'), fa.text, 'h4 reads a');
    assert.is(await h4.do('readall b'), fb.text, 'h4 reads b');
    await pwrite(h4, 'a', fa, 0, 'h4');
    await pwrite(h4, 'b', fb, 0, 'h4');
    await h4.do('close a');
    await h4.do('close b');
    await releases(e, 7);
    assertSource(join(e.src, 'a'), fa, 'a in the end');
    assertSource(join(e.src, 'b'), fb, 'b in the end');
    await cmpThroughMount(e, 'a');
    await cmpThroughMount(e, 'b');

    assertKernelPassthrough(e, started);
    await umountAndCheck(e, sup);
  })));

// ---- 3. passthrough is on, before and after a takeover ---------------------------------------------

test('kernel passthrough is in effect: INIT has PASSTHROUGH, nothing says it was refused; opens before and after a takeover (nothing held across it) read and write with no READ or WRITE reaching a server', timed(4 * WAIT_MS, () =>
  withEnv(async (e) => {
    const f = new Model(lines('pass', 2000));
    writeFileSync(join(e.src, 'f'), f.buf);
    const { sup, started } = await cliSupervised(e);
    const offered = started.split('\n').find((l) => /offers no FUSE_PASSTHROUGH/.test(l));
    if (offered) assert.unreachable(offered.trim());
    const init = started.split('\n').find((l) => l.includes('INIT:') && l.includes('flags'));
    assert.ok(init, `no INIT line from the starting command (-d): ${started}`);
    assert.ok(init!.slice(init!.indexOf('flags ') + 6).trim().split('|').includes('PASSTHROUGH'), `INIT flags without PASSTHROUGH: ${init}`);

    const path = join(e.mnt, 'f');
    const a = await holder(e, 'A');
    await a.do(`open f ${path}`);
    assert.is(await a.do('readall f'), f.text);
    await pwrite(a, 'f', f, 12345, 'first-server');
    await a.do('close f');
    await releases(e, 1);
    assertKernelPassthrough(e, started);
    assert.is(requests(logOf(e), 'OPEN').length, 1, 'one OPEN');

    const t = await killAndTakeOver(e, sup, 1);
    assert.is(t.files, 0, 'no open file to restore');
    // The new server never saw INIT: it must still open files with kernel passthrough.
    const b = await holder(e, 'B');
    await b.do(`open f ${path}`, 'an open served by the new server');
    assert.is(await b.do('readall f'), f.text, 'the new server\'s open reads the file');
    await pwrite(b, 'f', f, 100, 'second-server');
    assert.is(await b.do('pread f 100 13'), 'second-server');
    await b.do('close f');
    await releases(e, 2);
    assert.is(requests(logOf(e), 'OPEN').length, 2, 'the new server got the second OPEN');
    assertSource(join(e.src, 'f'), f, 'the source');
    await cmpThroughMount(e, 'f');
    assertKernelPassthrough(e, started);
    await umountAndCheck(e, sup);
  })));

// ---- 4. the adopted backing id is let go ----------------------------------------------------------

test('the adopted backing id is closed at the last release: a 32 MiB file on a tmpfs source, held across a kill, opened again after it, both closed, unlinked through the mount: its space is freed once the kernel forgot it', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    const MiB = 1 << 20;
    const used = () => { const s = statfsSync(e.src); return (s.blocks - s.bfree) * s.bsize; };
    const base = used();
    const big = new Model(lines('big!', Math.ceil((32 * MiB) / 12)));
    writeFileSync(join(e.src, 'big'), big.buf);
    assert.ok(used() - base >= 32 * MiB, `the source holds the file: ${used() - base} bytes`);
    const { sup, started } = await cliSupervised(e);
    const path = join(e.mnt, 'big');

    const a = await holder(e, 'A');
    await a.do(`open big ${path}`);
    await pwrite(a, 'big', big, 20 * MiB, 'before-kill');
    const t = await killAndTakeOver(e, sup, 1);
    assert.is(t.files, 1, 'the held file restored');
    const b = await holder(e, 'B');
    await b.do(`open big ${path}`, 'a new open of the held file after the takeover (the adopted backing id)');
    await pwrite(b, 'big', big, 30 * MiB, 'after-kill');
    assert.is(await a.do(`pread big ${30 * MiB} 10`), 'after-kill');
    await a.do('close big');
    await b.do('close big');
    await releases(e, 2);
    assertSource(join(e.src, 'big'), big, 'the source');

    const rm = await run('rm', [path], WAIT_MS);
    assert.is(rm.code, 0, `rm through the mount: ${rm.stderr}`);
    assert.ok(!existsSync(join(e.src, 'big')), 'unlinked on the source');
    // FORGETs (from a child: the kernel evicts the mount's inodes): the server closes its own fd of the file.
    const drop = await run('sh', ['-c', 'echo 2 > /proc/sys/vm/drop_caches'], WAIT_MS);
    assert.is(drop.code, 0, drop.stderr);
    const freed = await poll(() => used() - base < 8 * MiB, WAIT_MS, 50);
    assert.ok(freed, `the unlinked file's space is still in use (${used() - base} bytes): its backing id (adopted by the new server) was not closed at the last release`);
    assertKernelPassthrough(e, started);
    await umountAndCheck(e, sup);
  }, { tmpfs: true })));

test('a held file unlinked through the mount is lost at a takeover (no name to restore it by): its backing id is closed then, so its space is freed once the holder closes, not at unmount', timed(6 * WAIT_MS, () =>
  withEnv(async (e) => {
    const MiB = 1 << 20;
    const used = () => { const s = statfsSync(e.src); return (s.blocks - s.bfree) * s.bsize; };
    const base = used();
    const big = new Model(lines('gone', Math.ceil((32 * MiB) / 12)));
    writeFileSync(join(e.src, 'big'), big.buf);
    const { sup, started } = await cliSupervised(e);
    const path = join(e.mnt, 'big');
    const a = await holder(e, 'A');
    await a.do(`open big ${path}`);
    await pwrite(a, 'big', big, 10 * MiB, 'held');
    const rm = await run('rm', [path], WAIT_MS);
    assert.is(rm.code, 0, `rm through the mount: ${rm.stderr}`);
    await killAndTakeOver(e, sup, 1);
    // The held fd goes on with the kernel's own reference to the source file.
    assert.is(await a.do(`pread big ${10 * MiB} 4`), 'held');
    await a.do('close big').catch(() => {}); // its FLUSH may answer ESTALE (the handle was lost)
    const drop = await run('sh', ['-c', 'echo 2 > /proc/sys/vm/drop_caches'], WAIT_MS);
    assert.is(drop.code, 0, drop.stderr);
    const freed = await poll(() => used() - base < 8 * MiB, WAIT_MS, 50);
    assert.ok(freed, `the lost file's space is still in use (${used() - base} bytes) while mounted: its backing id leaked`);
    assertKernelPassthrough(e, started);
    await umountAndCheck(e, sup);
  }, { tmpfs: true })));

test('nothing of this file is left mounted or running', () => {
  for (const b of bases) {
    assert.equal(mountsBelow(b), [], `mounts below ${b}`);
    assert.equal(procsWith(b), [], `processes naming ${b}`);
  }
});

test.run();
