// The passthrough must not resolve anything outside its source directory:
// `..` at the mount is the kernel's business, symlinks are returned as links
// (the CLIENT resolves them, in its own namespace), the server never follows
// one for its own operations — not even when a directory is swapped for a
// symlink behind the mount's back while clients create files in it — and
// hard links cannot cross the mount. Names the kernel never sends ('..',
// 'a/b') and unknown node ids are checked on the API level.
//
// Layout: the server side is BASE/server/{src, outside}; the client side is
// BASE/client/{mnt, outside}. A relative symlink "../outside" in SRC therefore
// means BASE/server/outside to the server but BASE/client/outside (a decoy)
// to a client resolving MNT/link: what lands where tells who followed it.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync, constants as C, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync,
  realpathSync, renameSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RequestContext } from '../src/index.js';
import { Passthrough } from '../src/passthrough/index.js';
import { cleanup, DIST, forceUnmount, isMounted, run, runNode, tempDir, timed, errCode, WAIT_MS } from './helpers.js';

const FIXTURE = join(DIST, 'test/fixtures/serve-passthrough.js');

interface Layout { base: string; src: string; outside: string; mnt: string; decoy: string }

/** Every base directory this file made (checked by the last test). */
const bases: string[] = [];

function layout(): Layout {
  const base = tempDir('tsfuse-test-ptsec-');
  bases.push(base);
  const l = {
    base, src: join(base, 'server', 'src'), outside: join(base, 'server', 'outside'),
    mnt: join(base, 'client', 'mnt'), decoy: join(base, 'client', 'outside'),
  };
  for (const d of [l.src, l.outside, l.mnt, l.decoy]) mkdirSync(d, { recursive: true });
  return l;
}

/** The server's stderr once it has caught up (see serverLog below). */
type ServerLog = () => Promise<string>;

/** Starts the fixture on l.src → l.mnt; resolves with the child once READY. */
async function serve(l: Layout, opts: object): Promise<{ child: ChildProcess; log: ServerLog }> {
  const child = spawn(process.execPath, [FIXTURE, l.src, l.mnt, JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  child.stdin!.on('error', () => { /* exited */ });
  const closed = new Promise((r) => child.on('close', r));
  let id = 0;
  /**
   * The log, after a barrier: a stats round trip on the fixture's control channel (it
   * writes stderr and stdout synchronously, so what it logged before answering is in
   * the stderr pipe first), then one loop turn for the stderr data handled after the
   * answer in the same poll phase; a fixture that has exited: its output read to the end.
   */
  const log: ServerLog = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const want = `{"id":${++id},`;
      child.stdin!.write(`${JSON.stringify({ id, cmd: 'stats' })}\n`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, WAIT_MS);
        function done() { clearTimeout(t); child.stdout!.off('data', check); child.off('exit', done); resolve(); }
        function check() { if (out.includes(want)) done(); }
        child.stdout!.on('data', check);
        child.on('exit', done);
        check();
      });
    }
    if (child.exitCode !== null || child.signalCode !== null) await closed;
    await new Promise((r) => setImmediate(r));
    return err;
  };
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no READY: ${out} ${err}`)); }, WAIT_MS);
    const check = () => {
      if (out.includes('READY\n')) { clearTimeout(t); resolve(); }
      if (out.includes('MOUNTFAIL')) { clearTimeout(t); reject(new Error(`mount failed: ${out} ${err}`)); }
    };
    child.stdout!.on('data', check);
    child.on('exit', (c) => { clearTimeout(t); reject(new Error(`fixture exited ${c}: ${err}`)); });
  });
  return { child, log };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  await exited;
  clearTimeout(t);
}

/** A fresh layout served by the fixture; stopped, unmounted and removed afterwards. */
async function withMount(opts: object, prepare: (l: Layout) => void, fn: (l: Layout, serverLog: ServerLog) => Promise<void> | void): Promise<void> {
  const l = layout();
  let server: { child: ChildProcess; log: ServerLog } | undefined;
  try {
    prepare(l);
    server = await serve(l, opts);
    await fn(l, server.log);
  } finally {
    if (server) await stopServer(server.child);
    forceUnmount(l.mnt);
    if (!isMounted(l.mnt)) cleanup(l.base);
  }
}



/** All paths below `dir`, without following symlinks. */
function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const rel = prefix ? `${prefix}/${name}` : name;
    out.push(rel);
    if (lstatSync(join(dir, name)).isDirectory()) out.push(...walk(join(dir, name), rel));
  }
  return out;
}


// ---- '..' and the mount's parent -----------------------------------------------------

test('MNT/.. is the mount\'s parent as the kernel sees it; a marker next to SRC appears nowhere in MNT', timed(30_000, () => {
  const marker = `marker-${process.pid}-${Date.now()}`;
  return withMount({}, (l) => {
    writeFileSync(join(l.base, 'server', marker), 'next to SRC\n');
    mkdirSync(join(l.src, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(l.src, 'sub', 'file'), 'inside\n');
  }, async (l, serverLog) => {
    const parent = join(l.base, 'client');
    assert.equal(readdirSync(join(l.mnt, '..')).sort(), readdirSync(parent).sort());
    assert.is(realpathSync(join(l.mnt, '..')), parent);
    const ls = await run('ls', ['-a', join(l.mnt, '..')]);
    assert.is(ls.code, 0);
    assert.equal(ls.stdout.split('\n').filter(Boolean).sort(), ['.', '..', ...readdirSync(parent)].sort());
    assert.not.match(ls.stdout, marker);
    // Nowhere below the mount, and not through '..' from inside it either.
    const all = walk(l.mnt);
    assert.equal(all.sort(), ['sub', 'sub/deeper', 'sub/file']);
    assert.not.ok(all.some((p) => p.includes(marker)));
    for (const p of ['..', 'sub/..', 'sub/deeper/../..', 'sub/deeper/../../..']) {
      assert.not.ok(existsSync(join(l.mnt, p, marker)), `${p}/${marker} must not exist`);
    }
    assert.equal(readdirSync(join(l.mnt, 'sub', '..')).sort(), ['sub']);
    assert.is(await serverLog(), '');
  });
}));

// ---- symlinks are links; the client resolves them -------------------------------------

test('symlinks to /etc and ../outside come back verbatim and resolve on the client side; O_NOFOLLOW → ELOOP', timed(30_000, () =>
  withMount({}, (l) => {
    symlinkSync('/etc', join(l.src, 'link-etc'));
    symlinkSync('../outside', join(l.src, 'link-rel'));
    symlinkSync('../outside/which', join(l.src, 'link-file'));
    writeFileSync(join(l.outside, 'which'), 'server side\n');
    writeFileSync(join(l.decoy, 'which'), 'client side\n');
  }, async (l, serverLog) => {
    assert.is(readlinkSync(join(l.mnt, 'link-etc')), '/etc');
    assert.is(readlinkSync(join(l.mnt, 'link-rel')), '../outside');
    assert.is(readlinkSync(join(l.mnt, 'link-file')), '../outside/which');
    for (const n of ['link-etc', 'link-rel', 'link-file']) assert.ok(lstatSync(join(l.mnt, n)).isSymbolicLink(), n);
    // Resolved by the client: MNT/link-etc is the real /etc (expected) …
    assert.equal(readdirSync(join(l.mnt, 'link-etc')).sort(), readdirSync('/etc').sort());
    assert.is(readFileSync(join(l.mnt, 'link-etc', 'hostname'), 'utf8'), readFileSync('/etc/hostname', 'utf8'));
    // … and a relative link is relative to MNT, not to SRC.
    assert.is(readFileSync(join(l.mnt, 'link-rel', 'which'), 'utf8'), 'client side\n');
    assert.is(readFileSync(join(l.mnt, 'link-file'), 'utf8'), 'client side\n');
    // O_NOFOLLOW on a symlink through the mount: ELOOP.
    for (const n of ['link-etc', 'link-rel', 'link-file']) {
      assert.is(errCode(() => closeSync(openSync(join(l.mnt, n), C.O_RDONLY | C.O_NOFOLLOW))), 'ELOOP', n);
    }
    assert.is(errCode(() => closeSync(openSync(join(l.mnt, 'link-file'), C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW, 0o644))), 'ELOOP');
    assert.is(readFileSync(join(l.outside, 'which'), 'utf8'), 'server side\n');
    assert.is(await serverLog(), '');
  })));

// ---- hard links cannot cross the mount -----------------------------------------------

test('link(2) and rename(2) across the mount boundary give EXDEV; linking a symlink links the link, not its target', timed(30_000, () =>
  withMount({}, (l) => {
    writeFileSync(join(l.outside, 'secret'), 'outside\n');
    writeFileSync(join(l.decoy, 'secret'), 'client outside\n');
    writeFileSync(join(l.src, 'inside'), 'inside\n');
    symlinkSync('../outside/secret', join(l.src, 'to-secret'));
  }, async (l, serverLog) => {
    assert.is(errCode(() => linkSync(join(l.outside, 'secret'), join(l.mnt, 'stolen'))), 'EXDEV');
    assert.is(errCode(() => linkSync(join(l.decoy, 'secret'), join(l.mnt, 'stolen'))), 'EXDEV');
    assert.is(errCode(() => linkSync(join(l.mnt, 'inside'), join(l.decoy, 'leaked'))), 'EXDEV');
    assert.is(errCode(() => renameSync(join(l.decoy, 'secret'), join(l.mnt, 'moved'))), 'EXDEV');
    assert.is(errCode(() => renameSync(join(l.mnt, 'inside'), join(l.decoy, 'moved'))), 'EXDEV');
    // link(2) does not follow: MNT/alias is a second name of the symlink itself.
    linkSync(join(l.mnt, 'to-secret'), join(l.mnt, 'alias'));
    assert.ok(lstatSync(join(l.src, 'alias')).isSymbolicLink(), 'SRC/alias is the symlink');
    assert.is(lstatSync(join(l.src, 'alias')).ino, lstatSync(join(l.src, 'to-secret')).ino);
    assert.is(statSync(join(l.outside, 'secret')).nlink, 1, 'no hard link to the outside file was made');
    assert.is(statSync(join(l.decoy, 'secret')).nlink, 1);
    assert.equal(readdirSync(l.src).sort(), ['alias', 'inside', 'to-secret']);
    assert.equal(readdirSync(l.outside), ['secret']);
    assert.equal(readdirSync(l.decoy), ['secret']);
    assert.is(await serverLog(), '');
  })));

// ---- a directory swapped for a symlink behind the mount's back --------------------------

/**
 * The processes are ordered by files in CTL (outside the mount and SRC), not by time:
 * each creator makes CTL/started-TAG after its first round, the swapper begins once both
 * have, and the test makes CTL/stop once the swapper is done. A creator
 * that meets the swap (an operation fails, or something lands in the client-side decoy)
 * makes CTL/hit; the swapper goes on past its `n` swaps until then (at most WAIT_MS more,
 * then the test reports that the race was never met).
 */
const WAIT_FILE = `
const waitFile = (f) => { const a = new Int32Array(new SharedArrayBuffer(4)); while (!fs.existsSync(f)) Atomics.wait(a, 0, 0, 10); };
`;

/** Swaps SRC/dir between a real directory and a symlink to ../outside, `n` times each way (more until a creator met it), holding each state 0.5–3.5 ms. */
const SWAPPER = `
const fs = require('fs'), path = require('path');
const [src, n, ctl] = process.argv.slice(1);
const d = path.join(src, 'dir'), real = path.join(src, 'dir.real'), link = path.join(src, 'dir.link');
let swaps = 0;
const hold = () => { const t = process.hrtime.bigint() + BigInt(500000 + Math.floor(Math.random() * 3000000)); while (process.hrtime.bigint() < t); };
${WAIT_FILE}
for (const tag of ['a', 'b']) waitFile(path.join(ctl, 'started-' + tag));
let giveUp = Infinity;
for (let i = 0; i < Number(n) || !fs.existsSync(path.join(ctl, 'hit')); i++) {
  if (i === Number(n)) giveUp = Date.now() + ${WAIT_MS};
  if (Date.now() > giveUp) break;
  fs.renameSync(d, real); fs.renameSync(link, d); swaps++;   // dir is now the symlink
  hold();
  fs.renameSync(d, link); fs.renameSync(real, d); swaps++;   // dir is the real one again
  hold();
}
process.stdout.write(JSON.stringify({ swaps }));
`;

/** Creates things through MNT/dir/... until CTL/stop appears (made by the test once the swapper is done). */
const CREATOR = `
const fs = require('fs'), path = require('path');
const [mnt, ctl, tag, decoy] = process.argv.slice(1);
const stopFile = path.join(ctl, 'stop');
const d = path.join(mnt, 'dir');
const r = { tries: 0, ok: 0, errors: {} };
let hit = false;
const note = (e) => { const c = e.code || e.message; r.errors[c] = (r.errors[c] || 0) + 1; };
for (let i = 0; !fs.existsSync(stopFile) || i < 50; i++) {
  const ops = [
    () => fs.writeFileSync(path.join(d, tag + 'f' + i), 'x'),
    () => fs.mkdirSync(path.join(d, tag + 'm' + i)),
    () => fs.symlinkSync('t', path.join(d, tag + 's' + i)),
    () => fs.linkSync(path.join(mnt, 'seed'), path.join(d, tag + 'l' + i)),
    () => fs.renameSync(path.join(mnt, 'seed2'), path.join(d, tag + 'r' + i)),
  ];
  for (const op of ops) {
    r.tries++;
    try { op(); r.ok++; } catch (e) { note(e); }
  }
  try { fs.writeFileSync(path.join(mnt, 'seed2'), 'y'); } catch (e) { note(e); }
  if (i === 0) fs.writeFileSync(path.join(ctl, 'started-' + tag), '');
  if (!hit && (r.ok < r.tries || fs.readdirSync(decoy).length > 0)) { hit = true; fs.writeFileSync(path.join(ctl, 'hit'), ''); }
  if (i > 100000) break;
}
process.stdout.write(JSON.stringify(r));
`;


async function swapRace(opts: object, swaps: number): Promise<void> {
  await withMount(opts, (l) => {
    mkdirSync(join(l.src, 'dir'));
    symlinkSync('../outside', join(l.src, 'dir.link'));
    writeFileSync(join(l.src, 'seed'), 'seed');
  }, async (l, serverLog) => {
    const ctl = join(l.base, 'ctl');
    mkdirSync(ctl);
    const limit = 6 * WAIT_MS; // a hung process
    const swapper = runNode<{ swaps: number }>(SWAPPER, [l.src, String(swaps), ctl], limit).finally(() => writeFileSync(join(ctl, 'stop'), ''));
    const creators = Promise.all([
      runNode<{ tries: number; ok: number; errors: Record<string, number> }>(CREATOR, [l.mnt, ctl, 'a', l.decoy], limit),
      runNode<{ tries: number; ok: number; errors: Record<string, number> }>(CREATOR, [l.mnt, ctl, 'b', l.decoy], limit),
    ]);
    const [sw, cr] = await Promise.all([swapper, creators]);
    // Where did things land? SRC/dir (the real one, wherever it is now): fine.
    // The client-side decoy: fine (the client followed the symlink it saw).
    // The server-side outside directory: an escape.
    const realDir = existsSync(join(l.src, 'dir.real')) ? join(l.src, 'dir.real') : join(l.src, 'dir');
    const inReal = readdirSync(realDir).length;
    const inDecoy = readdirSync(l.decoy).length;
    const escaped = readdirSync(l.outside);
    console.log(`  swap race (${JSON.stringify(opts)}): ${sw.swaps} swaps; creators ${cr.map((c) => `${c.ok}/${c.tries} ok ${JSON.stringify(c.errors)}`).join(', ')}; `
      + `${inReal} entries in the real dir, ${inDecoy} in the client-side decoy (client followed the link), ${escaped.length} outside SRC`);
    assert.ok(sw.swaps >= swaps * 2);
    assert.ok(cr.every((c) => c.tries > 0));
    const missed = cr.reduce((n, c) => n + c.tries - c.ok, 0);
    assert.ok(inDecoy + missed > 0, 'the creators did run into the swapped-in symlink (or the gap) at least once');
    assert.equal(escaped, [], 'nothing may be created in the server-side outside directory');
    assert.equal(readdirSync(join(l.base, 'server')).sort(), ['outside', 'src']);
    assert.ok(!lstatSync(realDir).isSymbolicLink() && realDir.startsWith(l.src));
    for (const e of ['EIO', 'EBADF']) assert.ok(cr.every((c) => !c.errors[e]), `no ${e}: ${JSON.stringify(cr)}`);
    assert.is((await serverLog()).split('\n').filter((x) => x && !x.startsWith('    at ')).slice(0, 5).join('\n'), '', 'server log');
  });
}

test('directory swapped for a symlink to an outside directory while clients create in it (timeouts 0): nothing lands outside', timed(240_000, () =>
  swapRace({ entryTimeout: 0, attrTimeout: 0 }, 400)));

test('the same swap race with the default cache timeouts', timed(240_000, () => swapRace({}, 400)));

test('the same swap race with inodeHandles "mandatory" (timeouts 0)', timed(240_000, () =>
  swapRace({ inodeHandles: 'mandatory', entryTimeout: 0, attrTimeout: 0 }, 300)));

// ---- API level: unknown node ids, names the kernel never sends, no following -------------

function apiFixture(): { src: string; outside: string; fs: Passthrough; done: () => void } {
  const l = layout();
  mkdirSync(join(l.src, 'd'));
  writeFileSync(join(l.src, 'f'), 'f\n');
  symlinkSync('/etc', join(l.src, 'link-etc'));
  symlinkSync('../outside', join(l.src, 'link-rel'));
  const old = process.umask(0o022); // the Passthrough sets the process umask to 0; restore ours
  const fs = new Passthrough(l.src);
  process.umask(old);
  return { src: l.src, outside: l.outside, fs, done: () => { fs.destroy(); cleanup(l.base); } };
}

async function rejectsWith(p: () => unknown, code: string, what: string): Promise<void> {
  try {
    await p();
  } catch (e) {
    assert.is((e as { code?: string }).code, code, `${what}: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`${what} should reject with ${code}`);
}

const ctx = () => new RequestContext(0, 0, 1, 0);

test('API: a request for an unknown node id rejects with ESTALE', timed(10_000, async () => {
  const a = apiFixture();
  try {
    await rejectsWith(() => a.fs.getattr(ctx(), 123456, undefined), 'ESTALE', 'getattr(123456)');
    await rejectsWith(() => a.fs.lookup(ctx(), 123456, 'f'), 'ESTALE', 'lookup in 123456');
    await rejectsWith(() => a.fs.open(ctx(), 123456, C.O_RDONLY), 'ESTALE', 'open(123456)');
    await rejectsWith(() => a.fs.readlink(ctx(), 123456), 'ESTALE', 'readlink(123456)');
    a.fs.forget(123456, 1); // FORGET of an unknown id is ignored
    assert.ok((await a.fs.getattr(ctx(), 1, undefined)).attr.mode & C.S_IFDIR, 'the root still answers');
  } finally {
    a.done();
  }
}));

test('API: ".", "..", "" and names with "/" are refused with EINVAL by every call that takes a name', timed(10_000, async () => {
  const a = apiFixture();
  try {
    for (const name of ['..', '.', 'a/b', '../outside', '', 'd/../..']) {
      await rejectsWith(() => a.fs.lookup(ctx(), 1, name), 'EINVAL', `lookup ${JSON.stringify(name)}`);
    }
    const f = await a.fs.lookup(ctx(), 1, 'f');
    await rejectsWith(() => a.fs.mkdir(ctx(), 1, '..', 0o755), 'EINVAL', 'mkdir ..');
    await rejectsWith(() => a.fs.mkdir(ctx(), 1, '../outside/x', 0o755), 'EINVAL', 'mkdir ../outside/x');
    await rejectsWith(() => a.fs.create(ctx(), 1, '../outside/x', 0o644, C.O_WRONLY), 'EINVAL', 'create ../outside/x');
    await rejectsWith(() => a.fs.mknod(ctx(), 1, 'a/b', C.S_IFREG | 0o644, 0), 'EINVAL', 'mknod a/b');
    await rejectsWith(() => a.fs.symlink(ctx(), 1, '../x', '/etc'), 'EINVAL', 'symlink ../x');
    await rejectsWith(() => a.fs.link(ctx(), f.nodeid, 1, '../outside/f'), 'EINVAL', 'link to ../outside/f');
    await rejectsWith(() => a.fs.unlink(ctx(), 1, '..'), 'EINVAL', 'unlink ..');
    await rejectsWith(() => a.fs.rmdir(ctx(), 1, '..'), 'EINVAL', 'rmdir ..');
    await rejectsWith(() => a.fs.rename(ctx(), 1, 'f', 1, '../outside/f', 0), 'EINVAL', 'rename to ../outside/f');
    await rejectsWith(() => a.fs.rename(ctx(), 1, '../outside', 1, 'x', 0), 'EINVAL', 'rename from ../outside');
    assert.equal(readdirSync(a.outside), [], 'nothing was created outside');
    assert.ok(existsSync(join(a.src, 'f')));
  } finally {
    a.done();
  }
}));

test('API: the server never follows a symlink — lookups and creations "inside" a link node fail with ENOTDIR', timed(10_000, async () => {
  const a = apiFixture();
  try {
    const etc = await a.fs.lookup(ctx(), 1, 'link-etc');
    assert.is(etc.attr.mode & C.S_IFMT, C.S_IFLNK, 'lookup returns the link itself');
    assert.is(Buffer.from(await a.fs.readlink(ctx(), etc.nodeid)).toString(), '/etc');
    const rel = await a.fs.lookup(ctx(), 1, 'link-rel');
    assert.is(rel.attr.mode & C.S_IFMT, C.S_IFLNK);
    // A (hypothetical) request treating the link as a directory must not reach /etc or ../outside.
    await rejectsWith(() => a.fs.lookup(ctx(), etc.nodeid, 'passwd'), 'ENOTDIR', 'lookup passwd in the /etc link');
    await rejectsWith(() => a.fs.create(ctx(), rel.nodeid, 'x', 0o644, C.O_WRONLY), 'ENOTDIR', 'create in the ../outside link');
    await rejectsWith(() => a.fs.mkdir(ctx(), rel.nodeid, 'm', 0o755), 'ENOTDIR', 'mkdir in the ../outside link');
    await rejectsWith(() => a.fs.symlink(ctx(), rel.nodeid, 's', 't'), 'ENOTDIR', 'symlink in the ../outside link');
    const f = await a.fs.lookup(ctx(), 1, 'f');
    await rejectsWith(() => a.fs.link(ctx(), f.nodeid, rel.nodeid, 'l'), 'ENOTDIR', 'link into the ../outside link');
    await rejectsWith(() => a.fs.rename(ctx(), 1, 'f', rel.nodeid, 'f', 0), 'ENOTDIR', 'rename into the ../outside link');
    assert.equal(readdirSync(a.outside), [], 'nothing was created outside');
    assert.not.ok(existsSync('/etc/x'));
    // Opening a symlink node (the kernel never sends OPEN for one) does not open its target.
    const code = await Promise.resolve().then(() => a.fs.open(ctx(), rel.nodeid, C.O_RDONLY)).then(() => 'opened', (e: NodeJS.ErrnoException) => e.code);
    assert.ok(code !== 'opened', `open of a symlink node must fail, got ${code}`);
  } finally {
    a.done();
  }
}));

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  assert.equal(mounts.filter((m) => bases.some((b) => m.startsWith(b))), []);
}));

test.run();
