// End-to-end: the multi-filesystem Vfs (src/vfs). Backends — two Passthroughs
// and a memfs, more attached and detached while mounted — live under a
// read-only pseudo root; each must behave like a mount of its own (its own
// statfs, EXDEV between them, inode numbers that never collide), be counted
// and traced on its own, keep its own options (read-only, default
// permissions), and be refused when it needs INIT flags the session lacks.
//
// The server is test/fixtures/serve-vfs.ts in a child process (JSON commands
// on stdin: attach, detach, stats, list, log); the client syscalls run in this
// process or in Node children (some as uid 65534, through src/cli/as-user.ts). FORGETs are provoked
// with drop_caches and polled for.
import { spawn, execFileSync, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFileSync, chmodSync, closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync,
  renameSync, rmdirSync, statfsSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JsonFixture, type Answer } from './fixture.js';
import { runAs } from '../src/cli/as-user.js';
import { cleanup, DIST, dropCaches, errCode, forceUnmount, isMounted, poll, run, sleep, tempDir, timed, WAIT_MS } from './helpers.js';

const FIXTURE = join(DIST, 'test/fixtures/serve-vfs.js');
const NOBODY = 65534;

// ---- the fixture -------------------------------------------------------------------------

interface BackendStats { index: number; requests: number; errors: number; lookups: number; handles: number; fs?: object }
interface VfsStats { pseudo: object; backends: Record<string, BackendStats> }
interface Listed { path: string; index: number; spec?: string; readOnly: boolean }
interface BackendCfg {
  path: string; fs: string; readOnly?: boolean; defaultPermissions?: boolean; entryTimeout?: number; attrTimeout?: number;
}

class VfsFixture extends JsonFixture {
  static start(mnt: string, backends: BackendCfg[], session: object): Promise<VfsFixture> {
    return new VfsFixture(process.execPath, [FIXTURE, mnt, JSON.stringify({ backends, session })], mnt).ready();
  }
  async stats(): Promise<{ vfs: VfsStats; session: { fs?: unknown; requests: Record<string, number> } }> {
    const a = await this.ok({ cmd: 'stats' });
    return a as unknown as { vfs: VfsStats; session: { fs?: unknown; requests: Record<string, number> } };
  }
  async backend(path: string): Promise<BackendStats> {
    const s = (await this.stats()).vfs.backends[path];
    assert.ok(s, `stats name no backend ${path}`);
    return s;
  }
  async list(): Promise<Listed[]> {
    return (await this.ok({ cmd: 'list' })).list as Listed[];
  }
  attach(path: string, fs: string, opts: Omit<BackendCfg, 'path' | 'fs'> = {}): Promise<Answer> {
    return this.send({ cmd: 'attach', path, fs, ...opts });
  }
  detach(path: string, force = false): Promise<Answer> {
    return this.send({ cmd: 'detach', path, force });
  }
  async log(since = 0): Promise<string[]> {
    return (await this.ok({ cmd: 'log', since })).lines as string[];
  }
}

interface Env { base: string; mnt: string; src: Record<string, string>; fx: VfsFixture }

/** Every base directory made here (the last test checks none is still mounted). */
const bases: string[] = [];

/**
 * A fresh BASE (mode 0755: uid 65534 may pass) with source directories BASE/src-NAME —
 * a tmpfs of the given size where one is given — and BASE/mnt served by the fixture with
 * `backends(src)`. Stopped, unmounted and removed afterwards, whatever happens.
 */
async function withVfs(
  sources: Record<string, string | null>, backends: (src: Record<string, string>) => BackendCfg[], session: object,
  fn: (e: Env) => Promise<void> | void,
): Promise<void> {
  const base = tempDir('tsfuse-test-vfs-');
  bases.push(base);
  chmodSync(base, 0o755);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  const src: Record<string, string> = {};
  const tmpfs: string[] = [];
  let fx: VfsFixture | undefined;
  try {
    for (const [name, size] of Object.entries(sources)) {
      src[name] = join(base, `src-${name}`);
      mkdirSync(src[name]);
      if (size) {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, `tsfuse-test-vfs-${name}`, src[name]]);
        tmpfs.push(src[name]);
      }
    }
    fx = await VfsFixture.start(mnt, backends(src), session);
    await fn({ base, mnt, src, fx });
  } finally {
    if (fx) await fx.stop();
    forceUnmount(mnt);
    for (const t of tmpfs) {
      try { execFileSync('umount', [t]); } catch { try { execFileSync('umount', ['-l', t]); } catch { /* reported by the last test */ } }
    }
    if (!isMounted(mnt) && !tmpfs.some(isMounted)) cleanup(base);
  }
}

/** /a and /b Passthroughs (/b's source a 37 MiB tmpfs: a statfs of its own) and /mem a memfs; `c` a spare source. */
const SOURCES = { a: null, b: '37m', c: null };
const LAYOUT = (src: Record<string, string>, a: Partial<BackendCfg> = {}): BackendCfg[] => [
  { path: '/a', fs: `passthrough:${src.a}`, ...a },
  { path: '/b', fs: `passthrough:${src.b}` },
  { path: '/mem', fs: 'memfs' },
];
const SESSION = { allowOther: true };

/** The fixture's log must hold no handler failure ("… failed: … → EIO") nor a crash. */
function assertCleanLog(fx: VfsFixture): Promise<void> {
  return fx.caughtUp().then(() => {
    const bad = fx.errors().split('\n').filter((l) => /failed|EIO|Error|unknown node/i.test(l));
    assert.equal(bad, [], `server log:\n${fx.errors()}`);
  });
}

// ---- child processes ------------------------------------------------------------------------

/** A node child running CommonJS `code` (its arguments: process.argv.slice(1)); one JSON line out per event. */
function nodeChild(code: string, args: string[], opts: SpawnOptions = {}) {
  const child = spawn(process.execPath, ['-e', code, '--', ...args], { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  let read = 0;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  child.stderr!.on('data', (d) => { err += d; });
  child.stdin!.on('error', () => { /* exited */ });
  let closed = false; // 'close': exited, and its output read to the end
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { closed = true; resolve(code); }));
  return {
    child, lines, exited,
    stderr: () => err,
    async next(ms = WAIT_MS): Promise<any> {
      const got = await poll(() => lines.length > read || closed, ms);
      if (lines.length <= read) {
        throw new Error(got ? `node child exited (${child.exitCode ?? child.signalCode}) without an answer; stderr ${err}`
          : `node child: no answer within ${ms} ms; stderr ${err}`);
      }
      return JSON.parse(lines[read++]);
    },
    async ask(line: string): Promise<any> {
      child.stdin!.write(`${line}\n`);
      return this.next();
    },
    async kill(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Holds `argv[1]` open read-only; answers "fstat", "read" (64 bytes at 0) and "close" with {ok, code?, …}. */
const HOLDER = String.raw`
const fs = require('fs');
// libuv has no name for some errnos (ESTALE: "Unknown system error -116"): named from os.constants
const names = Object.fromEntries(Object.entries(require('os').constants.errno).map(([k, v]) => [v, k]));
const code = (e) => names[-e.errno] ?? e.code;
const fd = fs.openSync(process.argv[1], 'r');
console.log(JSON.stringify({ open: true }));
require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
  try {
    if (l === 'fstat') { const s = fs.fstatSync(fd); console.log(JSON.stringify({ ok: true, size: s.size })); }
    else if (l === 'read') { const b = Buffer.alloc(64); const n = fs.readSync(fd, b, 0, 64, 0); console.log(JSON.stringify({ ok: true, data: b.toString('utf8', 0, n) })); }
    else if (l === 'close') {
      let r = { ok: true };
      try { fs.closeSync(fd); } catch (e) { r = { ok: false, code: code(e), message: e.message }; }
      console.log(JSON.stringify(r));
      process.exit(0);
    }
  } catch (e) { console.log(JSON.stringify({ ok: false, code: code(e), message: e.message })); }
});`;

/** stat()s every file in argv[2…] in a loop until the file argv[1] exists; a progress line per 100 rounds, then the totals. */
const STAT_LOOP = String.raw`
const fs = require('fs');
const [stop, ...files] = process.argv.slice(1);
let n = 0, errors = 0; const first = [];
console.log(JSON.stringify({ started: true }));
for (let round = 0; ; round++) {
  for (const f of files) {
    n++;
    try { fs.statSync(f); } catch (e) { errors++; if (first.length < 10) first.push(f + ': ' + e.code); }
  }
  if (round % 100 === 99) { console.log(JSON.stringify({ n, errors })); if (fs.existsSync(stop)) break; }
}
console.log(JSON.stringify({ done: true, n, errors, first }));`;

/** uid/gid 65534 with no supplementary groups. */
const AS_NOBODY = { uid: NOBODY, gid: NOBODY, groups: [] };

/** What `path`'s open/read as uid 65534 gives: the text, or the error code. */
async function readAsNobody(path: string): Promise<{ data?: string; code?: string }> {
  return runAs(`
    try { return { data: fs.readFileSync(a[0], 'utf8') }; } catch (e) { if (!e.code) throw e; return { code: e.code }; }`, [path], AS_NOBODY, WAIT_MS);
}

/** Each directory's entries as getdents64 with a 4 KiB buffer gives them — [name, d_ino] — so a
 * directory of more than a few dozen entries is read by one READDIRPLUS and then READDIRs
 * (READDIRPLUS_AUTO: the kernel asks for "plus" only at offset 0). */
function dirInos(dirs: string[]): Promise<Record<string, Array<[string, string]>>> {
  return runAs(`
    const out = {};
    for (const p of a) out[p] = (await sys.dirents(p, 4096)).map(([name, ino]) => [name.toString(), String(ino)]);
    return out;`, dirs, {}, WAIT_MS);
}

/** Entries whose d_ino is not what lstat() says (`..` of the mount root, outside it, left out). */
async function dinoMismatches(mnt: string, dirs: string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const [dir, ents] of Object.entries(await dirInos(dirs))) {
    for (const [name, ino] of ents) {
      if (dir === mnt && name === '..') continue;
      const st = String(lstatSync(join(dir, name), { bigint: true }).ino);
      if (st !== ino) wrong.push(`${dir.slice(mnt.length) || '/'} ${name}: d_ino ${ino}, st_ino ${st}`);
    }
  }
  return wrong;
}

const names = (dir: string) => readdirSync(dir).sort();
const codeIn = (code: string | undefined, ok: string[], what: string) =>
  assert.ok(code !== undefined && ok.includes(code), `${what}: ${code ?? 'succeeded'}, expected ${ok.join(' or ')}`);

// ---- 1. each backend behaves like its own mount ---------------------------------------------

test('each backend behaves like a mount of its own; the files are in the passthrough sources', timed(2 * WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    assert.equal(names(mnt), ['a', 'b', 'mem'], 'readdir of the mount root lists the attach points');
    for (const d of ['a', 'b', 'mem']) {
      const p = join(mnt, d);
      assert.ok(statSync(p).isDirectory(), `MNT/${d} is a directory`);
      writeFileSync(join(p, 'f1'), `hello ${d}\n`);
      appendFileSync(join(p, 'f1'), 'more\n');
      assert.is(readFileSync(join(p, 'f1'), 'utf8'), `hello ${d}\nmore\n`, `${d}: read back`);
      renameSync(join(p, 'f1'), join(p, 'f2'));
      assert.is(errCode(() => statSync(join(p, 'f1'))), 'ENOENT', `${d}: renamed away`);
      mkdirSync(join(p, 'dir'));
      writeFileSync(join(p, 'dir', 'inner'), 'inner');
      renameSync(join(p, 'dir', 'inner'), join(p, 'dir', 'inner2'));
      symlinkSync('f2', join(p, 'sl'));
      assert.is(readlinkSync(join(p, 'sl')), 'f2');
      assert.ok(lstatSync(join(p, 'sl')).isSymbolicLink());
      assert.is(readFileSync(join(p, 'sl'), 'utf8'), `hello ${d}\nmore\n`, `${d}: through the symlink`);
      linkSync(join(p, 'f2'), join(p, 'hl'));
      const [s2, sh] = [statSync(join(p, 'f2')), statSync(join(p, 'hl'))];
      assert.is(s2.nlink, 2, `${d}: two links`);
      assert.is(sh.ino, s2.ino, `${d}: the hard link is the same inode`);
      assert.equal(names(p), ['dir', 'f2', 'hl', 'sl'], `${d}: readdir`);
      if (d !== 'mem') {
        const s = src[d];
        assert.equal(names(s), ['dir', 'f2', 'hl', 'sl'], `SRC ${d}: readdir`);
        assert.is(readFileSync(join(s, 'f2'), 'utf8'), `hello ${d}\nmore\n`);
        assert.is(readFileSync(join(s, 'dir', 'inner2'), 'utf8'), 'inner');
        assert.is(readlinkSync(join(s, 'sl')), 'f2');
        assert.is(statSync(join(s, 'hl')).nlink, 2);
      }
      unlinkSync(join(p, 'hl'));
      assert.is(statSync(join(p, 'f2')).nlink, 1, `${d}: one link after unlink`);
      unlinkSync(join(p, 'dir', 'inner2'));
      rmdirSync(join(p, 'dir'));
      assert.equal(names(p), ['f2', 'sl']);
      if (d !== 'mem') assert.equal(names(src[d]), ['f2', 'sl'], `SRC ${d} after unlink/rmdir`);
    }
    // the two passthroughs really are two sources
    writeFileSync(join(src.a, 'only-a'), 'A');
    assert.is(readFileSync(join(mnt, 'a', 'only-a'), 'utf8'), 'A');
    assert.is(errCode(() => statSync(join(mnt, 'b', 'only-a'))), 'ENOENT');
    assert.is(errCode(() => statSync(join(mnt, 'mem', 'only-a'))), 'ENOENT');
    assert.equal(names(mnt), ['a', 'b', 'mem'], 'still the attach points only');
    await assertCleanLog(fx);
  })));

test('the pseudo root is read-only', timed(2 * WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.a, 'f'), 'f');
    const st = statSync(mnt);
    assert.ok(st.isDirectory());
    assert.is(errCode(() => mkdirSync(join(mnt, 'x'))), 'EROFS', 'mkdir MNT/x');
    assert.is(errCode(() => writeFileSync(join(mnt, 'newfile'), 'x')), 'EROFS', 'create MNT/newfile');
    assert.is(errCode(() => symlinkSync('a', join(mnt, 'sl'))), 'EROFS', 'symlink MNT/sl');
    assert.is(errCode(() => rmdirSync(join(mnt, 'a'))), 'EROFS', 'rmdir MNT/a');
    // unlink of a directory: the kernel answers EISDIR before asking the server
    codeIn(errCode(() => unlinkSync(join(mnt, 'a'))), ['EROFS', 'EISDIR', 'EPERM'], 'unlink MNT/a');
    assert.is(errCode(() => renameSync(join(mnt, 'a'), join(mnt, 'z'))), 'EROFS', 'rename MNT/a → MNT/z');
    assert.is(errCode(() => chmodSync(mnt, 0o700)), 'EROFS', 'chmod MNT');
    assert.is(errCode(() => utimesSync(mnt, 1, 1)), 'EROFS', 'utimes MNT');
    codeIn(errCode(() => writeFileSync(mnt, 'x')), ['EISDIR', 'EROFS'], 'write to MNT itself');
    codeIn(errCode(() => linkSync(join(mnt, 'a', 'f'), join(mnt, 'lnk'))), ['EROFS', 'EXDEV'], 'link MNT/a/f → MNT/lnk');
    codeIn(errCode(() => renameSync(join(mnt, 'a', 'f'), join(mnt, 'f'))), ['EROFS', 'EXDEV'], 'rename MNT/a/f → MNT/f');
    assert.is(errCode(() => statSync(join(mnt, 'nothere'))), 'ENOENT');
    assert.equal(names(mnt), ['a', 'b', 'mem'], 'nothing changed');
    assert.ok(existsSync(join(src.a, 'f')), 'the file stayed in its source');
    assert.equal(names(src.a), ['f']);
    await assertCleanLog(fx);
  })));

test('statfs answers per backend', timed(WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    const pick = (s: ReturnType<typeof statfsSync>) => ({ bsize: s.bsize, blocks: s.blocks, files: s.files });
    const a = statfsSync(join(mnt, 'a'));
    const b = statfsSync(join(mnt, 'b'));
    assert.equal(pick(a), pick(statfsSync(src.a)), 'MNT/a: the statfs of its source');
    assert.equal(pick(b), pick(statfsSync(src.b)), 'MNT/b: the statfs of its tmpfs source');
    assert.is(b.blocks * b.bsize, 37 * 1024 * 1024, 'the 37 MiB tmpfs');
    assert.is.not(a.blocks * a.bsize, b.blocks * b.bsize, 'MNT/a and MNT/b differ');
    assert.is(statfsSync(join(mnt, 'mem')).blocks, 1 << 20, 'MNT/mem: memfs\'s own statfs');
    // a file deep in a backend answers its backend's statfs too
    mkdirSync(join(src.b, 'sub'));
    assert.equal(pick(statfsSync(join(mnt, 'b', 'sub'))), pick(statfsSync(src.b)));
    statfsSync(mnt); // the pseudo root answers something
    await assertCleanLog(fx);
  })));

test('a nested attach point makes pseudo directories; they are read-only too', timed(WAIT_MS, () =>
  withVfs(SOURCES, (src) => [...LAYOUT(src), { path: '/deep/er', fs: `passthrough:${src.c}` }], SESSION, async ({ mnt, src, fx }) => {
    assert.equal(names(mnt), ['a', 'b', 'deep', 'mem']);
    assert.equal(names(join(mnt, 'deep')), ['er']);
    writeFileSync(join(mnt, 'deep', 'er', 'x'), 'x');
    assert.is(readFileSync(join(src.c, 'x'), 'utf8'), 'x');
    assert.is(errCode(() => mkdirSync(join(mnt, 'deep', 'y'))), 'EROFS', 'mkdir in a pseudo directory');
    assert.is(errCode(() => writeFileSync(join(mnt, 'deep', 'y'), 'y')), 'EROFS', 'create in a pseudo directory');
    const l = await fx.list();
    assert.equal(l.map((e) => [e.path, e.index]), [['/a', 1], ['/b', 2], ['/mem', 3], ['/deep/er', 4]], 'indexes in attach order');
    assert.is(l[3].spec, `passthrough:${src.c}`);
    await assertCleanLog(fx);
  })));

// ---- 2. EXDEV between backends ------------------------------------------------------------

test('rename and link across backends are EXDEV; mv copies', timed(2 * WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    const A = join(mnt, 'a');
    const B = join(mnt, 'b');
    const M = join(mnt, 'mem');
    writeFileSync(join(A, 'f'), 'from a');
    mkdirSync(join(A, 'dir'));
    writeFileSync(join(A, 'dir', 'g'), 'g in a');
    assert.is(errCode(() => renameSync(join(A, 'f'), join(B, 'f'))), 'EXDEV', 'rename a → b');
    assert.is(errCode(() => renameSync(join(A, 'f'), join(M, 'f'))), 'EXDEV', 'rename a → mem');
    assert.is(errCode(() => renameSync(join(A, 'dir'), join(B, 'dir'))), 'EXDEV', 'rename a dir a → b');
    assert.is(errCode(() => linkSync(join(A, 'f'), join(B, 'f'))), 'EXDEV', 'link a → b');
    assert.is(errCode(() => linkSync(join(A, 'f'), join(M, 'f'))), 'EXDEV', 'link a → mem');
    writeFileSync(join(M, 'm'), 'from mem');
    assert.is(errCode(() => renameSync(join(M, 'm'), join(A, 'm'))), 'EXDEV', 'rename mem → a');
    // nothing moved
    assert.equal(names(src.a), ['dir', 'f']);
    assert.equal(names(src.b), []);
    // mv falls back to copy + unlink
    let r = await run('mv', [join(A, 'f'), join(B, 'f')]);
    assert.is(r.code, 0, `mv a/f b/f: ${r.stderr}`);
    assert.is(readFileSync(join(src.b, 'f'), 'utf8'), 'from a');
    assert.ok(!existsSync(join(src.a, 'f')), 'mv removed the original');
    r = await run('mv', [join(A, 'dir'), join(M, 'dir')]);
    assert.is(r.code, 0, `mv a/dir mem/dir: ${r.stderr}`);
    assert.is(readFileSync(join(M, 'dir', 'g'), 'utf8'), 'g in a');
    assert.equal(names(src.a), []);
    r = await run('mv', [join(M, 'm'), join(A, 'm')]);
    assert.is(r.code, 0, `mv mem/m a/m: ${r.stderr}`);
    assert.is(readFileSync(join(src.a, 'm'), 'utf8'), 'from mem');
    assert.equal(names(M), ['dir']);
    await assertCleanLog(fx);
  })));

// ---- 3. inode numbers ----------------------------------------------------------------------

test('(st_dev, st_ino) never collide across backends whose sources have equal inode numbers', timed(2 * WAIT_MS, () =>
  withVfs({ a: '8m', b: '8m' }, (src) => [
    { path: '/a', fs: `passthrough:${src.a}` }, { path: '/b', fs: `passthrough:${src.b}` }, { path: '/mem', fs: 'memfs' },
  ], SESSION, async ({ mnt, src, fx }) => {
    // the same creations in the same order on two fresh tmpfs: the same inode numbers
    for (const s of [src.a, src.b]) {
      mkdirSync(join(s, 'd'));
      writeFileSync(join(s, 'd', 'f'), 'f');
      writeFileSync(join(s, 'g'), 'g');
    }
    const rel = ['', 'd', 'd/f', 'g'];
    for (const r of rel) {
      assert.is(statSync(join(src.a, r), { bigint: true }).ino, statSync(join(src.b, r), { bigint: true }).ino,
        `precondition: the two tmpfs sources give ${r || '/'} the same inode number`);
    }
    writeFileSync(join(mnt, 'mem', 'm'), 'm');
    mkdirSync(join(mnt, 'mem', 'md'));
    const index = Object.fromEntries((await fx.list()).map((e) => [e.path, BigInt(e.index)]));
    const seen = new Map<string, string>();
    const dev = statSync(mnt, { bigint: true }).dev;
    const note = (p: string) => {
      const s = lstatSync(p, { bigint: true });
      assert.is(s.dev, dev, `${p}: one st_dev for the whole mount`);
      const key = `${s.dev}:${s.ino}`;
      assert.ok(!seen.has(key), `${p} and ${seen.get(key)} share (st_dev, st_ino) ${key}`);
      seen.set(key, p);
      return s.ino;
    };
    note(mnt);
    for (const d of ['a', 'b']) {
      for (const r of rel) {
        const ino = note(join(mnt, d, r));
        const srcIno = statSync(join(src[d], r), { bigint: true }).ino;
        assert.is(ino, srcIno ^ (index[`/${d}`] << 48n), `MNT/${d}/${r}: the source's inode with index ${index[`/${d}`]} in bits 48…63`);
      }
    }
    for (const r of ['', 'm', 'md']) note(join(mnt, 'mem', r));
    // readdir's d_ino agrees with stat's st_ino
    assert.equal(await dinoMismatches(mnt, [mnt, join(mnt, 'a'), join(mnt, 'b'), join(mnt, 'a', 'd'), join(mnt, 'b', 'd'), join(mnt, 'mem')]), []);
    await assertCleanLog(fx);
  })));

test('readdir d_ino agrees with st_ino, in a pseudo directory read by READDIR too', timed(2 * WAIT_MS, () =>
  // 28 passthroughs of one ext4 directory (its root's inode number is not 1) under /many:
  // more entries than one 4 KiB READDIRPLUS reply holds, so the kernel reads the rest by READDIR
  withVfs({ a: null }, (src) => [
    { path: '/a', fs: `passthrough:${src.a}` }, { path: '/mem', fs: 'memfs' },
    ...Array.from({ length: 28 }, (_, i) => ({ path: `/many/p${i}`, fs: `passthrough:${src.a}` })),
  ], SESSION, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.a, 'f'), 'f');
    assert.is.not(statSync(src.a).ino, 1, 'precondition: the source root is not inode 1');
    const dirs = [mnt, join(mnt, 'a'), join(mnt, 'many'), join(mnt, 'many', 'p7'), join(mnt, 'mem')];
    assert.is((await dirInos([join(mnt, 'many')]))[join(mnt, 'many')].length, 30, '28 entries, . and ..');
    assert.equal(await dinoMismatches(mnt, dirs), [], 'd_ino and st_ino differ');
    await assertCleanLog(fx);
  })));

test('a pseudo directory lists backends of index 32 and up by READDIR too', timed(2 * WAIT_MS, () =>
  withVfs({}, () => Array.from({ length: 40 }, (_, i) => ({ path: `/many/m${i}`, fs: 'memfs' })), SESSION, async ({ mnt, fx }) => {
    const got = (await dirInos([join(mnt, 'many')]))[join(mnt, 'many')].map(([n]) => n).sort();
    assert.equal(got, ['.', '..', ...Array.from({ length: 40 }, (_, i) => `m${i}`)].sort());
    assert.is(names(join(mnt, 'many')).length, 40, 'readdir(3) as well');
    await assertCleanLog(fx);
  })));

test('backends of index 32 and up: inode numbers above 2^53 in stat and in readdir (READDIRPLUS, then READDIR)', timed(2 * WAIT_MS, () =>
  withVfs({}, () => Array.from({ length: 40 }, (_, i) => ({ path: `/many/m${i}`, fs: 'memfs' })), SESSION, async ({ mnt, fx }) => {
    const index = Object.fromEntries((await fx.list()).map((e) => [e.path, BigInt(e.index)]));
    const M = join(mnt, 'many', 'm39');
    for (let i = 0; i < 40; i++) writeFileSync(join(M, `file-${i}`), `${i}`);
    assert.ok(index['/many/m39'] >= 32n, `index ${index['/many/m39']}`);
    assert.is(lstatSync(M, { bigint: true }).ino >> 48n, index['/many/m39'], 'the index in bits 48…63 of the backend root');
    assert.is(lstatSync(join(M, 'file-7'), { bigint: true }).ino >> 48n, index['/many/m39'], 'and of a file');
    assert.is((await dirInos([M]))[M].length, 42);
    assert.equal(await dinoMismatches(mnt, [M]), []);
    await assertCleanLog(fx);
  })));

// ---- 4. attach and detach under load -------------------------------------------------------

test('attach and detach while a client stats in a tight loop: no error; the name comes and goes', timed(4 * WAIT_MS, () =>
  withVfs(SOURCES, (src) => LAYOUT(src, { entryTimeout: 0, attrTimeout: 0 }), SESSION, async ({ base, mnt, src, fx }) => {
    writeFileSync(join(src.a, 'file'), 'file');
    writeFileSync(join(mnt, 'mem', 'file'), 'file');
    writeFileSync(join(src.c, 'cfile'), 'in c');
    const stop = join(base, 'stop');
    const client = nodeChild(STAT_LOOP, [stop, join(mnt, 'a', 'file'), join(mnt, 'mem', 'file')]);
    try {
      assert.equal(await client.next(), { started: true });
      await client.next(); // a first progress line: the loop is running
      const before = client.lines.length;
      const indexes: number[] = [];
      for (let i = 0; i < 6; i++) {
        const at = await fx.attach('/c', `passthrough:${src.c}`);
        assert.ok(at.ok, `attach /c (round ${i}): ${at.error}`);
        indexes.push(at.index as number);
        assert.equal(names(mnt), ['a', 'b', 'c', 'mem'], `round ${i}: c listed after attach`);
        if (i % 2 === 0) assert.is(readFileSync(join(mnt, 'c', 'cfile'), 'utf8'), 'in c', `round ${i}: c serves its source`);
        assert.ok((await fx.list()).some((e) => e.path === '/c'));
        const de = await fx.detach('/c');
        assert.ok(de.ok, `detach /c (round ${i}): ${de.code} ${de.error}`);
        assert.equal(names(mnt), ['a', 'b', 'mem'], `round ${i}: c gone from readdir after detach`);
        assert.is(errCode(() => statSync(join(mnt, 'c'))), 'ENOENT', `round ${i}: MNT/c after detach`);
        assert.ok(!(await fx.list()).some((e) => e.path === '/c'));
      }
      // the loop ran while the backends came and went
      await client.next();
      assert.ok(client.lines.length > before, 'progress during the attach/detach rounds');
      writeFileSync(stop, '');
      let last: any;
      do last = await client.next(); while (!last.done);
      assert.is(last.errors, 0, `the client's stat loop saw errors: ${JSON.stringify(last.first)}`);
      assert.ok(last.n > 0);
      assert.ok((await client.exited) === 0, client.stderr());
      assert.ok(indexes.every((x) => x > 3), `a re-attached backend never takes a live backend's index: ${indexes}`);
      assert.equal(names(src.c), ['cfile'], 'the source is untouched');
      await assertCleanLog(fx);
    } finally {
      await client.kill();
    }
  })));

// ---- 5. detaching a busy backend ------------------------------------------------------------

test('detach of a busy backend: EBUSY unless forced; forced, old handles answer ESTALE', timed(4 * WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.c, 'held'), 'held data');
    mkdirSync(join(src.c, 'sub'));
    const C = join(mnt, 'c');
    assert.ok((await fx.attach('/c', `passthrough:${src.c}`)).ok);

    // a process whose cwd is inside
    const sleeper = spawn('sleep', ['600'], { cwd: join(C, 'sub'), stdio: 'ignore' });
    try {
      await once(sleeper, 'spawn');
      const r = await fx.detach('/c');
      assert.ok(!r.ok, 'detach with a cwd inside succeeded');
      assert.is(r.code, 'EBUSY', `detach with a cwd inside: ${r.error}`);
      assert.equal(names(mnt), ['a', 'b', 'c', 'mem'], 'still attached');
      assert.is(readFileSync(join(C, 'held'), 'utf8'), 'held data', 'and still served');
    } finally {
      sleeper.kill('SIGKILL');
      if (sleeper.exitCode === null && sleeper.signalCode === null) await once(sleeper, 'exit');
    }
    // nothing holds it any more (the kernel let go of the cwd before the exit was reported): a plain detach goes through
    let r = await fx.detach('/c');
    assert.ok(r.ok, `detach once the cwd is gone: ${r.code} ${r.error}`);
    assert.equal(names(mnt), ['a', 'b', 'mem']);

    // an open file inside
    assert.ok((await fx.attach('/c', `passthrough:${src.c}`)).ok);
    const holder = nodeChild(HOLDER, [join(C, 'held')]);
    try {
      assert.equal(await holder.next(), { open: true });
      r = await fx.detach('/c');
      assert.ok(!r.ok, 'detach with an open file succeeded');
      assert.is(r.code, 'EBUSY', `detach with an open file: ${r.error}`);
      assert.ok((await fx.backend('/c')).handles >= 1, 'the open file is counted');
      r = await fx.detach('/c', true);
      assert.ok(r.ok, `forced detach: ${r.code} ${r.error}`);
      assert.equal(names(mnt), ['a', 'b', 'mem'], 'ls MNT no longer shows c');
      assert.is(errCode(() => statSync(C)), 'ENOENT', 'MNT/c after the forced detach');
      assert.ok(!(await fx.list()).some((e) => e.path === '/c'));
      assert.ok(!((await fx.stats()).vfs.backends['/c']), 'no stats for /c');
      const fst = await holder.ask('fstat');
      assert.equal([fst.ok, fst.code], [false, 'ESTALE'], `fstat of the held fd: ${JSON.stringify(fst)}`);
      const rd = await holder.ask('read');
      assert.equal([rd.ok, rd.code], [false, 'ESTALE'], `read of the held fd: ${JSON.stringify(rd)}`);
      // close: FLUSH (ESTALE is an honest answer for a cut-off file) and RELEASE of a node of no backend
      const cl = await holder.ask('close');
      assert.ok(cl.ok || cl.code === 'ESTALE', `close: ${JSON.stringify(cl)}`);
      assert.is(await holder.exited, 0);
    } finally {
      await holder.kill();
    }
    // the rest still works, and /c can come back (fresh)
    writeFileSync(join(mnt, 'a', 'after'), 'after');
    assert.is(readFileSync(join(mnt, 'a', 'after'), 'utf8'), 'after', '/a still serves');
    assert.ok((await fx.attach('/c', `passthrough:${src.c}`)).ok, 're-attach after a forced detach');
    assert.is(readFileSync(join(C, 'held'), 'utf8'), 'held data');
    assert.ok(fx.alive);
  })));

// ---- 6. FORGET accounting per backend -------------------------------------------------------

test('FORGET accounting per backend: drop_caches brings /a back to its baseline; /b untouched', timed(6 * WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    const N = 300;
    for (let i = 0; i < N; i++) writeFileSync(join(src.a, `f${i}`), `${i}`);
    for (let i = 0; i < 10; i++) writeFileSync(join(src.b, `g${i}`), `${i}`);
    for (let i = 0; i < 10; i++) statSync(join(mnt, 'b', `g${i}`));
    const a0 = await fx.backend('/a');
    const b0 = await fx.backend('/b');
    assert.ok(b0.lookups >= 10, `/b holds its lookups: ${JSON.stringify(b0)}`);
    // (anyone's drop_caches may take some away meanwhile: stat again until all are held)
    let a1 = a0;
    for (let attempt = 0; attempt < 5 && a1.lookups < N; attempt++) {
      for (let i = 0; i < N; i++) assert.ok(statSync(join(mnt, 'a', `f${i}`)).isFile());
      a1 = await fx.backend('/a');
    }
    assert.ok(a1.lookups >= N, `/a counts a lookup per file: ${JSON.stringify(a0)} → ${JSON.stringify(a1)}`);
    const b1 = await fx.backend('/b');
    assert.ok(b1.lookups <= b0.lookups, `/b gained no lookups from work under /a: ${JSON.stringify(b0)} → ${JSON.stringify(b1)}`);
    assert.is(b1.requests, b0.requests, '/b saw none of the requests under /a');
    // FORGETs come asynchronously (and a dentry's parent only goes once its children are gone): drop again while polling
    let a2 = a1;
    const end = Date.now() + 4 * WAIT_MS;
    while (Date.now() < end) {
      dropCaches();
      a2 = await fx.backend('/a');
      if (a2.lookups <= a0.lookups) break;
      await sleep(250);
    }
    assert.ok(a2.lookups <= a0.lookups, `/a back to its baseline after drop_caches: ${JSON.stringify(a0)} → ${JSON.stringify(a1)} → ${JSON.stringify(a2)}`);
    const inner = (s: BackendStats) => (s.fs as { lookups?: number } | undefined)?.lookups;
    if (inner(a0) !== undefined) {
      assert.ok(inner(a2)! <= inner(a0)!, `the FORGETs reached the Passthrough: ${JSON.stringify(a0.fs)} → ${JSON.stringify(a2.fs)}`);
    }
    const b2 = await fx.backend('/b');
    assert.ok(b2.lookups <= b0.lookups && b2.lookups >= 0, `/b: ${JSON.stringify(b2)}`);
    assert.is(b2.errors, b0.errors, 'no errors for /b');
    const s = await fx.stats();
    assert.equal(s.session.fs, s.vfs, 'session.stats().fs is vfs.stats()');
    // everything is still there, under fresh node ids
    for (let i = 0; i < N; i += 37) assert.is(readFileSync(join(mnt, 'a', `f${i}`), 'utf8'), `${i}`);
    await assertCleanLog(fx);
  })));

// ---- 7. stats per backend -------------------------------------------------------------------

test('requests and errors are counted per backend', timed(WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.a, 'f'), 'f');
    const s0 = (await fx.stats()).vfs.backends;
    assert.equal(Object.keys(s0).sort(), ['/a', '/b', '/mem']);
    assert.equal([s0['/a'].index, s0['/b'].index, s0['/mem'].index], [1, 2, 3]);
    const missing = `missing-${process.pid}-${Date.now()}`;
    assert.is(errCode(() => statSync(join(mnt, 'b', missing))), 'ENOENT');
    const s1 = (await fx.stats()).vfs.backends;
    assert.ok(s1['/b'].errors >= s0['/b'].errors + 1, `/b counts the ENOENT: ${s0['/b'].errors} → ${s1['/b'].errors}`);
    assert.ok(s1['/b'].requests > s0['/b'].requests, '/b counts the request');
    assert.is(s1['/a'].errors, s0['/a'].errors, '/a has no error of it');
    assert.is(s1['/mem'].errors, s0['/mem'].errors, '/mem has no error of it');
    for (let i = 0; i < 5; i++) assert.is(readFileSync(join(mnt, 'a', 'f'), 'utf8'), 'f');
    const s2 = (await fx.stats()).vfs.backends;
    assert.ok(s2['/a'].requests > s1['/a'].requests, `/a counts its requests: ${s1['/a'].requests} → ${s2['/a'].requests}`);
    assert.is(s2['/a'].errors, s0['/a'].errors);
    assert.is(s2['/b'].errors, s1['/b'].errors, 'no new /b error from work under /a');
    assert.is(s2['/b'].requests, s1['/b'].requests, 'no /b request from work under /a');
  })));

test('per-backend timeouts: with entryTimeout and attrTimeout 0, every stat reaches that backend', timed(WAIT_MS, () =>
  withVfs(SOURCES, (src) => LAYOUT(src, { entryTimeout: 0, attrTimeout: 0 }), SESSION, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.a, 'f'), 'f');
    statSync(join(mnt, 'a', 'f'));
    const a0 = await fx.backend('/a');
    for (let i = 0; i < 20; i++) statSync(join(mnt, 'a', 'f'));
    const a1 = await fx.backend('/a');
    assert.ok(a1.requests - a0.requests >= 20, `20 stats, ${a1.requests - a0.requests} requests to /a`);
  })));

// ---- 8. debug trace ---------------------------------------------------------------------------

test('debug trace: a request under /b names [/b]', timed(WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, { ...SESSION, debug: true }, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.b, 'traced-b'), 'b');
    writeFileSync(join(src.a, 'traced-a'), 'a');
    const from = (await fx.log()).length;
    assert.is(readFileSync(join(mnt, 'b', 'traced-b'), 'utf8'), 'b');
    assert.is(readFileSync(join(mnt, 'a', 'traced-a'), 'utf8'), 'a');
    const lines = await fx.log(from);
    const withB = lines.filter((l) => l.includes(' [/b]'));
    assert.ok(withB.length > 0, `no line names [/b]:\n${lines.slice(0, 40).join('\n')}`);
    assert.ok(lines.some((l) => l.includes(' [/a]')), 'a request under /a names [/a]');
    assert.ok(lines.some((l) => l.includes('traced-b') && l.includes('[/b]')), `the LOOKUP of traced-b names [/b]:\n${withB.join('\n')}`);
    assert.ok(!lines.some((l) => l.includes('traced-b') && l.includes('[/a]')), 'and not [/a]');
  })));

// ---- 9. per-backend options -------------------------------------------------------------------

test('readOnly backend: writes are EROFS there; the other backend stays writable', timed(WAIT_MS, () =>
  withVfs(SOURCES, (src) => [
    { path: '/ro', fs: `passthrough:${src.a}`, readOnly: true }, { path: '/rw', fs: `passthrough:${src.b}` },
  ], SESSION, async ({ mnt, src, fx }) => {
    writeFileSync(join(src.a, 'exists'), 'old');
    mkdirSync(join(src.a, 'dir'));
    const RO = join(mnt, 'ro');
    assert.is(readFileSync(join(RO, 'exists'), 'utf8'), 'old', 'reads work');
    assert.equal(names(RO), ['dir', 'exists']);
    assert.is(errCode(() => writeFileSync(join(RO, 'new'), 'x')), 'EROFS', 'create');
    assert.is(errCode(() => writeFileSync(join(RO, 'exists'), 'x')), 'EROFS', 'open for write');
    assert.is(errCode(() => closeSync(openSync(join(RO, 'exists'), 'r+'))), 'EROFS', 'open O_RDWR');
    assert.is(errCode(() => mkdirSync(join(RO, 'd2'))), 'EROFS', 'mkdir');
    assert.is(errCode(() => unlinkSync(join(RO, 'exists'))), 'EROFS', 'unlink');
    assert.is(errCode(() => rmdirSync(join(RO, 'dir'))), 'EROFS', 'rmdir');
    assert.is(errCode(() => renameSync(join(RO, 'exists'), join(RO, 'e2'))), 'EROFS', 'rename');
    assert.is(errCode(() => symlinkSync('x', join(RO, 'sl'))), 'EROFS', 'symlink');
    assert.is(errCode(() => linkSync(join(RO, 'exists'), join(RO, 'hl'))), 'EROFS', 'link');
    assert.is(errCode(() => chmodSync(join(RO, 'exists'), 0o600)), 'EROFS', 'chmod');
    assert.is(errCode(() => utimesSync(join(RO, 'exists'), 1, 1)), 'EROFS', 'utimes');
    assert.is(readFileSync(join(src.a, 'exists'), 'utf8'), 'old', 'the source is unchanged');
    assert.equal(names(src.a), ['dir', 'exists']);
    writeFileSync(join(mnt, 'rw', 'new'), 'x');
    assert.is(readFileSync(join(src.b, 'new'), 'utf8'), 'x', 'the other backend is writable');
    const l = await fx.list();
    assert.equal(l.map((e) => [e.path, e.readOnly]), [['/ro', true], ['/rw', false]]);
  })));

test('defaultPermissions backend: uid 65534 gets EACCES on a 0600 root file there (allow_other session)', timed(2 * WAIT_MS, () =>
  withVfs({}, () => [
    { path: '/dp', fs: 'memfs', defaultPermissions: true }, { path: '/nodp', fs: 'memfs' },
  ], { allowOther: true }, async ({ mnt, fx }) => {
    for (const d of ['dp', 'nodp']) {
      writeFileSync(join(mnt, d, 'secret'), `secret ${d}`, { mode: 0o600 });
      chmodSync(join(mnt, d, 'secret'), 0o600);
      writeFileSync(join(mnt, d, 'public'), `public ${d}`);
      chmodSync(join(mnt, d, 'public'), 0o644);
      const s = statSync(join(mnt, d, 'secret'));
      assert.equal([s.uid, s.mode & 0o777], [0, 0o600], `${d}/secret is root's, 0600`);
    }
    assert.equal(await readAsNobody(join(mnt, 'dp', 'secret')), { code: 'EACCES' }, 'the Vfs checks the mode bits under /dp');
    assert.equal(await readAsNobody(join(mnt, 'dp', 'public')), { data: 'public dp' }, '0644 is readable');
    // memfs itself checks nothing: without the option the read goes through
    assert.equal(await readAsNobody(join(mnt, 'nodp', 'secret')), { data: 'secret nodp' }, 'no check under /nodp');
    const mk = await runAs(`
      try { fs.closeSync(fs.openSync(a[0], 'w')); return 'ok'; } catch (e) { if (!e.code) throw e; return e.code; }`, [join(mnt, 'dp', 'nobodys')], AS_NOBODY, WAIT_MS);
    assert.is(mk, 'EACCES', 'creating in a root 0755 directory under /dp');
    await assertCleanLog(fx);
  })));

test('attach and detach refuse what cannot be: a taken path, inside a backend, an unknown path', timed(WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, src, fx }) => {
    let r = await fx.attach('/a', `passthrough:${src.c}`);
    assert.equal([r.ok, r.code], [false, 'EEXIST'], `attach at a taken path: ${r.error}`);
    r = await fx.attach('/a/inner', 'memfs');
    assert.ok(!r.ok, 'attach inside a backend was accepted');
    r = await fx.detach('/nope');
    assert.equal([r.ok, r.code], [false, 'ENOENT'], `detach of nothing: ${r.error}`);
    r = await fx.detach('/');
    assert.ok(!r.ok, 'detach of the root was accepted');
    assert.equal(names(mnt), ['a', 'b', 'mem']);
    assert.equal(names(src.a), [], 'nothing made in the source');
    assert.equal((await fx.list()).map((e) => e.path), ['/a', '/b', '/mem']);
  })));

test('defaultPermissions backend: no search permission in a 0700 root directory for uid 65534', timed(2 * WAIT_MS, () =>
  // Without default_permissions on the mount the kernel checks no search permission on a
  // path walk: only a LOOKUP (a new or an expired dentry) lets the Vfs check it. /dp0
  // caches no entries (every walk is a LOOKUP); /dp caches them for the default second.
  withVfs({}, () => [
    { path: '/dp0', fs: 'memfs', defaultPermissions: true, entryTimeout: 0 },
    { path: '/dp', fs: 'memfs', defaultPermissions: true },
    { path: '/nodp', fs: 'memfs' },
  ], { allowOther: true }, async ({ mnt, fx }) => {
    for (const d of ['dp0', 'dp', 'nodp']) {
      mkdirSync(join(mnt, d, 'private'), { mode: 0o700 });
      writeFileSync(join(mnt, d, 'private', 'f'), `in ${d}`);
      chmodSync(join(mnt, d, 'private', 'f'), 0o644);
      assert.is(statSync(join(mnt, d, 'private')).mode & 0o777, 0o700);
    }
    assert.equal(await readAsNobody(join(mnt, 'nodp', 'private', 'f')), { data: 'in nodp' }, 'under /nodp: no check');
    assert.equal(await readAsNobody(join(mnt, 'dp0', 'private', 'f')), { code: 'EACCES' }, 'under /dp0 (entries not cached)');
    // the dentries root just made are cached: the kernel walks them without asking
    assert.equal(await readAsNobody(join(mnt, 'dp', 'private', 'f')), { code: 'EACCES' },
      'under /dp (entries cached): the walk through a 0700 directory must still be refused');
    await assertCleanLog(fx);
  })));

// ---- 10. INIT flags of a late attach ----------------------------------------------------------

test('a late attach that wants an INIT flag the session lacks is refused, naming the flag', timed(WAIT_MS, () =>
  withVfs(SOURCES, LAYOUT, SESSION, async ({ mnt, fx }) => {
    const r = await fx.attach('/wb', 'want:WRITEBACK_CACHE');
    assert.ok(!r.ok, 'the attach was accepted');
    assert.match(String(r.error), /WRITEBACK_CACHE/, `the refusal names the flag: ${r.error}`);
    assert.equal(names(mnt), ['a', 'b', 'mem'], 'nothing attached');
    assert.ok(!(await fx.list()).some((e) => e.path === '/wb'));
    // the same backend without the extra flag is welcome
    const ok = await fx.attach('/m2', 'memfs');
    assert.ok(ok.ok, `plain memfs: ${ok.error}`);
    writeFileSync(join(mnt, 'm2', 'x'), 'x');
    assert.is(readFileSync(join(mnt, 'm2', 'x'), 'utf8'), 'x');
  })));

test('a late attach that cannot live with the session\'s WRITEBACK_CACHE is refused, naming it', timed(WAIT_MS, () =>
  withVfs({ a: null }, (src) => [{ path: '/a', fs: `passthrough-wb:${src.a}` }], { ...SESSION, debug: true }, async ({ mnt, fx }) => {
    const init = (await fx.log()).find((l) => l.startsWith('INIT:'));
    assert.ok(init?.includes('WRITEBACK_CACHE'), `precondition: the session has WRITEBACK_CACHE: ${init}`);
    const r = await fx.attach('/nowb', 'drop:WRITEBACK_CACHE');
    assert.ok(!r.ok, 'the attach was accepted');
    assert.match(String(r.error), /WRITEBACK_CACHE/, `the refusal names the flag: ${r.error}`);
    assert.equal(names(mnt), ['a']);
  })));

test('a mount whose backends cannot agree on a semantic INIT flag fails, naming the ones that cannot live with it', timed(WAIT_MS, async () => {
  // /w1 and /w2 insist on WRITEBACK_CACHE (even when not offered); /m, a plain memfs, does not ask for it
  const base = tempDir('tsfuse-test-vfs-');
  bases.push(base);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  try {
    const e = await VfsFixture.start(mnt, [
      { path: '/w1', fs: 'want:WRITEBACK_CACHE' }, { path: '/w2', fs: 'want:WRITEBACK_CACHE' }, { path: '/m', fs: 'memfs' },
    ], SESSION).then(async (fx) => { await fx.stop(); return undefined; }, (err: Error) => err);
    assert.ok(e, 'the mount succeeded');
    const msg = /MOUNTFAIL[^\n]*/.exec(e.message)?.[0] ?? e.message;
    assert.match(msg, /WRITEBACK_CACHE/, msg);
    assert.match(msg, /\/m\b/, `names /m: ${msg}`);
    assert.ok(!/which[^(]*\/w2/.test(msg) && !/which[^(]*\/w1/.test(msg), `names as unable only backends that did not ask for it: ${msg}`);
    assert.ok(!isMounted(mnt));
  } finally {
    forceUnmount(mnt);
    if (!isMounted(mnt)) cleanup(base);
  }
}));

// ---- leftovers ----------------------------------------------------------------------------------

test('nothing of ours is left mounted', timed(10_000, () => {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const left = mounts.filter((m) => bases.some((b) => m.startsWith(b)));
  assert.equal(left, []);
}));

test.run();
