// Races in the inode layer, end to end: several client processes hammer one
// mount served by test/fixtures/serve-inode.ts (a child process) with
// lookups, stats, reads, creates, writes, unlinks, links and renames (memfs),
// or with reads and readdirs while this process drops the kernel's caches in a
// loop (gen tree: FORGET racing LOOKUP/READDIRPLUS). The only errors allowed
// are those racing operations can explain; afterwards the server's accounting
// must be clean (no malformed requests, no unknown nodes, no log lines, and
// drop_caches brings the lookups back to 0).
//
// Two tests pin a race between a directory listing and the namespace:
// InodeTree snapshots a directory's entries at offset 0; a later READDIRPLUS
// of the same open directory must not re-link names that were unlinked or
// renamed away in between (it re-checks each name against the tree).
//
// Note: test/helpers.ts' startNode() spawns with stdin 'ignore', so it cannot
// drive the fixture's control channel; the Fixture class below spawns the same
// script with a stdin pipe.
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, dropCaches, sleep, tempDir, timed, WAIT_MS } from './helpers.js';
import { AsUser } from '../src/cli/as-user.js';
import { Fixture, type StatsAnswer, withFixture, pollStats, ourMounts } from './inode-fixture.js';

// ---- client processes ---------------------------------------------------------

interface WorkerReport { ops: number; byOp: Record<string, number>; errors: Record<string, Record<string, number>>; bad: string[] }

/**
 * Every worker runs for at least its `ms` AND at least MIN_OPS operations, and — when
 * given a STOP file — until that file exists: a loaded machine makes a run longer,
 * never a check fail for lack of operations.
 */
const MIN_OPS = 300;
const RUN_UNTIL = `
const runUntil = Date.now() + Number(ms);
const more = (rep) => Date.now() < runUntil || rep.ops < ${MIN_OPS} || (stopFile && !fs.existsSync(stopFile));
`;

/**
 * memfs worker: for `ms` (see RUN_UNTIL) picks random operations on a few names in A and B
 * (sometimes one level deeper). Errors the racing operations can explain are
 * counted per op and errno; anything else goes to `bad`.
 */
const MEMFS_WORKER = `
const fs = require('fs'), path = require('path');
const [mnt, ms, id, stopFile] = process.argv.slice(1);
${RUN_UNTIL}
const dirs = ['A', 'B'], names = ['n0', 'n1', 'n2', 'n3', 'n4'];
const pick = (a) => a[Math.floor(Math.random() * a.length)];
const P = () => { let p = path.join(mnt, pick(dirs), pick(names)); if (Math.random() < 0.2) p = path.join(p, pick(names)); return p; };
const buf = Buffer.alloc(4096);
let n = 0;
const OPS = {
  lookup: [() => fs.lstatSync(P()), 'ENOENT ENOTDIR'],
  // nlink 0: the name was unlinked between the path walk and GETATTR (a race any fs shows)
  stat: [() => { const p = P(); const st = fs.statSync(p); if (st.nlink < 1) throw Object.assign(new Error('nlink 0: ' + p), { code: 'NLINK0' }); },
    'ENOENT ENOTDIR NLINK0'],
  read: [() => {
    const fd = fs.openSync(P(), 'r');
    try {
      const k = fs.readSync(fd, buf, 0, 4096, 0);
      const s = buf.subarray(0, k).toString('latin1');
      // All zeros: a READ that raced another process's O_TRUNC came back short, the kernel
      // zero-filled the page, and a new write set the size again (FUSE page cache, no
      // writeback cache). Counted, not a failure. Anything else is garbage.
      if (/^\\0+$/.test(s)) throw Object.assign(new Error('zeros'), { code: 'ZEROS' });
      if (!/^[w0-9:]*$/.test(s)) throw new Error('bad content ' + JSON.stringify(s));
    } finally { fs.closeSync(fd); }
  }, 'ENOENT ENOTDIR EISDIR ZEROS'],
  create: [() => fs.closeSync(fs.openSync(P(), 'wx')), 'EEXIST ENOENT ENOTDIR EISDIR'],
  write: [() => { const fd = fs.openSync(P(), 'w'); try { fs.writeSync(fd, 'w' + id + ':' + n); } finally { fs.closeSync(fd); } }, 'ENOENT ENOTDIR EISDIR'],
  unlink: [() => fs.unlinkSync(P()), 'ENOENT ENOTDIR EISDIR'],
  link: [() => fs.linkSync(P(), P()), 'ENOENT EEXIST ENOTDIR EPERM'],
  rename: [() => fs.renameSync(P(), P()), 'ENOENT ENOTDIR EISDIR ENOTEMPTY EINVAL EEXIST'],
  xrename: [() => { const a = pick(names), b = pick(names); const [x, y] = Math.random() < 0.5 ? ['A', 'B'] : ['B', 'A'];
    fs.renameSync(path.join(mnt, x, a), path.join(mnt, y, b)); }, 'ENOENT ENOTDIR EISDIR ENOTEMPTY EINVAL EEXIST'],
  mkdir: [() => fs.mkdirSync(P()), 'EEXIST ENOENT ENOTDIR'],
  rmdir: [() => fs.rmdirSync(P()), 'ENOENT ENOTDIR ENOTEMPTY'],
  readdir: [() => fs.readdirSync(path.dirname(P())), 'ENOENT ENOTDIR'],
};
const keys = Object.keys(OPS);
const rep = { ops: 0, byOp: {}, errors: {}, bad: [] };
while (more(rep)) {
  const k = pick(keys);
  const [fn, ok] = OPS[k];
  n++;
  rep.ops++;
  rep.byOp[k] = (rep.byOp[k] || 0) + 1;
  try { fn(); } catch (e) {
    const code = e.code || 'none';
    (rep.errors[k] = rep.errors[k] || {})[code] = (rep.errors[k][code] || 0) + 1;
    if (!ok.split(' ').includes(code) && rep.bad.length < 20) rep.bad.push(k + ': ' + (e.code ? e.code + ' ' : '') + e.message);
  }
}
console.log(JSON.stringify(rep));
`;

/** gen worker: random lookup/stat/read/readdir on /dN/fM; nothing may fail, every read returns the file's own path. */
const GEN_WORKER = `
const fs = require('fs'), path = require('path');
const [mnt, ms, id, stopFile] = process.argv.slice(1);
${RUN_UNTIL}
const r8 = () => Math.floor(Math.random() * 8);
const buf = Buffer.alloc(64);
const OPS = {
  lookup: () => { const d = 'd' + r8(); if (!fs.lstatSync(path.join(mnt, d)).isDirectory()) throw new Error(d + ' not a dir'); },
  stat: () => { const p = '/d' + r8() + '/f' + r8(); const st = fs.statSync(path.join(mnt, p)); if (st.size !== p.length) throw new Error(p + ' size ' + st.size); },
  read: () => { const p = '/d' + r8() + '/f' + r8(); const s = fs.readFileSync(path.join(mnt, p), 'utf8'); if (s !== p) throw new Error(p + ' read ' + JSON.stringify(s)); },
  pread: () => { const p = '/d' + r8() + '/f' + r8(); const fd = fs.openSync(path.join(mnt, p), 'r');
    try { const k = fs.readSync(fd, buf, 0, 64, 3); if (buf.subarray(0, k).toString() !== p.slice(3)) throw new Error(p + ' pread ' + buf.subarray(0, k)); } finally { fs.closeSync(fd); } },
  readdir: () => { const d = 'd' + r8(); const l = fs.readdirSync(path.join(mnt, d)).sort().join(','); if (l !== 'f0,f1,f2,f3,f4,f5,f6,f7') throw new Error(d + ' lists ' + l); },
  readroot: () => { const l = fs.readdirSync(mnt).sort().join(','); if (l !== 'd0,d1,d2,d3,d4,d5,d6,d7') throw new Error('root lists ' + l); },
};
const keys = Object.keys(OPS);
const rep = { ops: 0, byOp: {}, errors: {}, bad: [] };
while (more(rep)) {
  const k = keys[Math.floor(Math.random() * keys.length)];
  rep.ops++;
  rep.byOp[k] = (rep.byOp[k] || 0) + 1;
  try { OPS[k](); } catch (e) {
    const code = e.code || 'none';
    (rep.errors[k] = rep.errors[k] || {})[code] = (rep.errors[k][code] || 0) + 1;
    if (rep.bad.length < 20) rep.bad.push(k + ': ' + (e.code ? e.code + ' ' : '') + e.message);
  }
}
console.log(JSON.stringify(rep));
`;

/** Runs `count` workers of `script` for `ms` (and MIN_OPS, and until `stopFile` exists if given);
 * resolves with their reports (a worker that fails or hangs fails the test). */
function runWorkers(script: string, mnt: string, count: number, ms: number, stopFile = ''): Promise<WorkerReport[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => new Promise<WorkerReport>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, mnt, String(ms), String(i), stopFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), ms + 4 * WAIT_MS); // a worker stuck in the mount
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      if (code !== 0) return reject(new Error(`worker ${i} exited ${code ?? signal}; stderr: ${err}`));
      try { resolve(JSON.parse(out) as WorkerReport); } catch { reject(new Error(`worker ${i}: no report: ${out} ${err}`)); }
    });
  })));
}

/** Sums the workers' reports. */
function summary(reports: WorkerReport[]) {
  const errors: Record<string, number> = {};
  const byOp: Record<string, number> = {};
  let ops = 0;
  const bad: string[] = [];
  for (const r of reports) {
    ops += r.ops;
    bad.push(...r.bad);
    for (const [op, n] of Object.entries(r.byOp)) byOp[op] = (byOp[op] ?? 0) + n;
    for (const e of Object.values(r.errors)) for (const [code, n] of Object.entries(e)) errors[code] = (errors[code] ?? 0) + n;
  }
  return { ops, byOp, errors, bad };
}

/** Server-side health after a stress run. */
async function assertHealthy(f: Fixture, s: StatsAnswer): Promise<void> {
  assert.is(s.stats.malformed, 0, 'no malformed requests');
  assert.is(s.unknownNodes, 0, 'no FORGET of an unknown node');
  assert.is(s.stats.inFlight, 0, 'nothing left in flight');
  for (const [k, v] of [...Object.entries(s.stats.requests), ...Object.entries(s.stats.errors), ...Object.entries(s.stats.fs)]) {
    assert.ok(typeof v === 'number' && v >= 0 && Number.isInteger(v), `count ${k} = ${v}`);
  }
  await f.caughtUp(); // everything it logged so far is in f.err
  const lines = f.err.split('\n').filter((l) => /unknown node|failed|threw|malformed|EIO/i.test(l));
  assert.equal(lines, [], 'no error lines from the server');
}

/** Walks the mount: distinct inode numbers, names per directory, and (ino → names) for non-directories. */
function scan(mnt: string) {
  const inos = new Set<number>();
  const dirs = new Map<string, string[]>();
  const links = new Map<number, { names: string[]; nlink: number }>();
  const visit = (rel: string) => {
    const names = readdirSync(join(mnt, rel)).sort();
    dirs.set(rel, names);
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(mnt, p));
      inos.add(st.ino);
      if (st.isDirectory()) visit(p);
      else {
        const l = links.get(st.ino) ?? { names: [], nlink: st.nlink };
        l.names.push(p);
        links.set(st.ino, l);
      }
    }
  };
  visit('');
  return { inos, dirs, links };
}

// ---- memfs ----------------------------------------------------------------------

test('memfs: 4 processes racing lookup/stat/read/create/write/unlink/link/rename (also across dirs)', timed(240_000, () =>
  withFixture('memfs', undefined, async (f, mnt) => {
    mkdirSync(join(mnt, 'A'));
    mkdirSync(join(mnt, 'B'));
    // drop the caches now and then while the workers run: FORGETs race with everything else
    let running = true;
    const dropper = (async () => { while (running) { await sleep(300); if (running) dropCaches(); } })();
    let reports: WorkerReport[];
    try {
      reports = await runWorkers(MEMFS_WORKER, mnt, 4, 5000);
    } finally {
      running = false;
      await dropper;
    }
    const sum = summary(reports);
    console.log(`  memfs race: ${sum.ops} ops ${JSON.stringify(sum.byOp)}; errors by errno ${JSON.stringify(sum.errors)}`);
    // the kernel's view and the tree agree, and memfs link counts match the names found
    const { inos, dirs, links } = scan(mnt);
    const problems = [...sum.bad];
    for (const [rel, names] of dirs) {
      const known = (await f.names(rel)).sort();
      if (known.join() !== names.join()) problems.push(`tree knows [${known}] in "${rel}", the mount lists [${names}]`);
    }
    for (const [ino, l] of links) if (l.nlink !== l.names.length) problems.push(`inode ${ino}: nlink ${l.nlink}, names ${l.names.join(', ')}`);
    assert.equal(problems, [], 'only errors the races explain; tree and mount agree');
    assert.ok(sum.ops > 1000, `enough operations ran (${sum.ops})`);

    const s = await pollStats(f, (x) => x.stats.inFlight === 0);
    await assertHealthy(f, s);

    dropCaches();
    const d = await pollStats(f, (x) => x.stats.fs.lookups === 0 && x.stats.fs.inodes === 1 + inos.size);
    assert.is(d.stats.fs.lookups, 0, `lookups after drop_caches: ${JSON.stringify(d.stats.fs)}`);
    assert.is(d.stats.fs.referenced, 0);
    assert.is(d.stats.fs.handles, 0, 'every open was released');
    assert.is(d.stats.fs.inodes, 1 + inos.size, `root + the ${inos.size} linked inodes: ${JSON.stringify(d.stats.fs)}`);
    await assertHealthy(f, d);
  })));

// ---- gen ----------------------------------------------------------------------

test('gen: 4 readers (lookup/stat/read/readdir) while drop_caches runs in a loop; content always right', timed(240_000, () =>
  withFixture('gen', undefined, async (f, mnt) => {
    const ctl = tempDir('tsfuse-test-race-ctl-');
    const stopFile = join(ctl, 'stop');
    const forgetsSoFar = async () => {
      const r = (await f.stats()).stats.requests;
      return (r.FORGET ?? 0) + (r.BATCH_FORGET ?? 0);
    };
    let running = true;
    let drops = 0;
    const dropper = (async () => { while (running) { dropCaches(); drops++; await sleep(25); } })();
    let reports: WorkerReport[];
    try {
      const workers = runWorkers(GEN_WORKER, mnt, 4, 5000, stopFile);
      workers.catch(() => { /* awaited below */ });
      // The readers go on until FORGETs have raced with them (the count is checked below):
      // an event to wait for, not a time. Only a generous limit, then the check reports.
      const end = Date.now() + 4 * WAIT_MS;
      while (await forgetsSoFar() <= 10 && Date.now() < end) await sleep(50);
      writeFileSync(stopFile, '');
      reports = await workers;
    } finally {
      running = false;
      await dropper;
      cleanup(ctl);
    }
    const sum = summary(reports);
    const s = await f.stats();
    const forgets = (s.stats.requests.FORGET ?? 0) + (s.stats.requests.BATCH_FORGET ?? 0);
    console.log(`  gen race: ${sum.ops} ops ${JSON.stringify(sum.byOp)}, ${drops} drops, ${forgets} FORGET requests; errors ${JSON.stringify(sum.errors)}`);
    assert.equal(sum.bad, [], 'no errors, right content');
    assert.ok(sum.ops > 1000, `enough operations ran (${sum.ops})`);
    assert.ok(forgets > 10, 'FORGETs raced with the readers');
    await assertHealthy(f, s);
    dropCaches();
    const d = await pollStats(f, (x) => x.stats.fs.inodes === 1 && x.stats.fs.lookups === 0);
    assert.equal(d.stats.fs, { inodes: 1, referenced: 0, lookups: 0, handles: 0 }, `root only: ${JSON.stringify(d.stats.fs)}`);
    await assertHealthy(f, d);
  })));

// ---- READDIRPLUS continuation vs. unlink ------------------------------------------

/**
 * A Node child (src/cli/as-user.ts) opens a big directory and reads only its
 * first entries — of the first getdents() batch glibc's readdir makes (one
 * READDIRPLUS of 32 KiB, ~200 entries) —; then `between` runs; then the child
 * finishes the listing. Before the rest, a LOOKUP that finds an inode in that
 * directory makes the kernel use READDIRPLUS (not READDIR) for the
 * continuation (FUSE_I_ADVISE_RDPLUS).
 */
async function splitListing(dir: string, between: () => void): Promise<string[]> {
  const child = new AsUser();
  try {
    // The open directory lives in the child between the two bodies.
    await child.run('globalThis.dir = fs.opendirSync(a[0]); globalThis.first = [0, 1, 2].map(() => globalThis.dir.readSync().name);', [dir], WAIT_MS);
    between();
    return await child.run<string[]>(`
      const out = globalThis.first;
      for (let e; (e = globalThis.dir.readSync()) !== null;) out.push(e.name);
      globalThis.dir.closeSync();
      return out;`, [], WAIT_MS);
  } finally {
    child.kill();
  }
}

test('a READDIRPLUS continuation does not re-link a name unlinked after opendir', timed(60_000, () =>
  withFixture('memfs', undefined, async (f, mnt) => {
    const D = join(mnt, 'D');
    mkdirSync(D);
    const name = (i: number) => `f${String(i).padStart(3, '0')}`;
    for (let i = 0; i < 400; i++) writeFileSync(join(D, name(i)), 'x');
    const victim = name(355); // beyond the first READDIRPLUS batch
    const before = (await f.stats()).stats.requests.READDIRPLUS ?? 0;
    const listed = await splitListing(D, () => {
      unlinkSync(join(D, victim));
      dropCaches(); // its inode is forgotten; the next stat is a real LOOKUP
      statSync(join(D, name(1))); // a LOOKUP that finds an inode: the continuation will be READDIRPLUS
    });
    const after = (await f.stats()).stats.requests.READDIRPLUS ?? 0;
    assert.is(listed.length >= 399, true, `listing: ${listed.length} names`);
    assert.ok(after - before >= 2, `the continuation was a READDIRPLUS too (${after - before} READDIRPLUS)`);
    // Listing the removed name is allowed (POSIX leaves it unspecified), but it must stay removed:
    const tree = await f.names('D');
    let stat: string;
    try { stat = `exists, nlink ${statSync(join(D, victim)).nlink}`; } catch (e) { stat = (e as NodeJS.ErrnoException).code!; }
    let create: string;
    try { writeFileSync(join(D, victim), 'new', { flag: 'wx' }); create = 'ok'; } catch (e) { create = (e as NodeJS.ErrnoException).code!; }
    assert.equal({ inTree: tree.includes(victim), stat, create }, { inTree: false, stat: 'ENOENT', create: 'ok' },
      `${victim} was unlinked before the rest of the listing was read`);
  })));

test('a READDIRPLUS continuation does not re-link a name renamed away after opendir', timed(60_000, () =>
  withFixture('memfs', undefined, async (f, mnt) => {
    const D = join(mnt, 'D');
    mkdirSync(D);
    mkdirSync(join(mnt, 'E'));
    const name = (i: number) => `f${String(i).padStart(3, '0')}`;
    for (let i = 0; i < 400; i++) writeFileSync(join(D, name(i)), 'x');
    const victim = name(355);
    await splitListing(D, () => {
      renameSync(join(D, victim), join(mnt, 'E', 'moved'));
      dropCaches();
      statSync(join(D, name(1)));
    });
    const moved = statSync(join(mnt, 'E', 'moved'));
    let old: string;
    try { old = `exists, same inode: ${statSync(join(D, victim)).ino === moved.ino}`; } catch (e) { old = (e as NodeJS.ErrnoException).code!; }
    assert.equal({ inTree: (await f.names('D')).includes(victim), old, nlink: moved.nlink }, { inTree: false, old: 'ENOENT', nlink: 1 },
      `${victim} was renamed to E/moved before the rest of the listing was read`);
  })));

test('no mounts of this file left in /proc/mounts', timed(5000, () => {
  assert.equal(ourMounts(), []);
}));

test.run();
