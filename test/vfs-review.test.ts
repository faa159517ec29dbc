/**
 * The VFS's bookkeeping, called directly (no Server, no mount): the cases a review
 * of the first version found wrong — what a takeover restores when an index was
 * reused, lookups of a READDIRPLUS entry that could not be sent, FORGETs of a
 * backend's root, two attaches at once, per-backend permission checks, and the
 * handles of a backend that keeps no journal of its own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as C, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RequestContext } from '../src/api/context.js';
import type { FileSystem } from '../src/api/filesystem.js';
import type { DirentPlusSink, Entry, InitInfo } from '../src/api/types.js';
import type { JournalRecord } from '../src/api/journal.js';
import { Passthrough } from '../src/passthrough/index.js';
import { Vfs } from '../src/vfs/index.js';
import { cleanup, tempDir } from './helpers.js';

const SPAN = 2 ** 37;
const root = new RequestContext(0, 0, 1, 0);
const user = (uid: number, gid = uid) => new RequestContext(uid, gid, 1, 0);
const info = (): InitInfo => ({ kernelMinor: 45, offered: 2 ** 42 * 2 - 1, want: 0, defaultPermissions: false });
const quiet = { log: () => {} };

/** Resolves with the error `f` throws or rejects with (fails when it succeeds). */
async function failure(f: () => unknown): Promise<{ code?: string; message: string }> {
  try {
    await f();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new assert.Assertion({ message: 'expected a failure', operator: 'rejects', expects: 'an error', actual: 'success', generated: false });
}

/** A raw backend: one directory (1) holding files 2… it describes; counts what it is told. */
function rawFs(files: Record<string, { mode: number; uid?: number; gid?: number }>, calls: string[] = []): FileSystem {
  const names = Object.keys(files);
  const attr = (id: number) => (id === 1 ? { ino: 1, mode: C.S_IFDIR | 0o777, uid: 0, gid: 0 } : { ino: id, ...files[names[id - 2]] });
  return {
    lookup: (_c, _p, name) => {
      const i = names.indexOf(name);
      if (i < 0) return { nodeid: 0 } as Entry;
      calls.push(`lookup ${name}`);
      return { nodeid: i + 2, attr: attr(i + 2) };
    },
    forget: (id, n) => { calls.push(`forget ${id} ${n}`); },
    getattr: (_c, id) => ({ attr: attr(id) }),
    setattr: (_c, id) => { calls.push(`setattr ${id}`); return { attr: attr(id) }; },
    open: (_c, id) => { calls.push(`open ${id}`); return { fh: 7 }; },
    release: (_c, id) => { calls.push(`release ${id}`); },
    readdir: (_c, _n, _fh, off, out) => {
      for (let i = Number(off); i < names.length; i++) if (!out.add(names[i], i + 2, 8, i + 1)) break;
    },
  };
}

function collector(): { records: JournalRecord[]; add(r: JournalRecord): void } {
  const records: JournalRecord[] = [];
  return { records, add: (r) => records.push(r) };
}

test('takeover: an index reused by another backend gets only its own records, and a start backend of another spec is not kept', async () => {
  const base = tempDir('tsfuse-test-vfsrev-');
  try {
    const [oldDir, newDir] = [join(base, 'old'), join(base, 'new')];
    mkdirSync(oldDir); mkdirSync(newDir);
    writeFileSync(join(oldDir, 'foo'), 'old');
    writeFileSync(join(newDir, 'barbaz'), 'new');
    const j = collector();
    const v1 = new Vfs({ ...quiet, build: (spec) => new Passthrough(spec.slice('passthrough:'.length)) });
    await v1.attach('/a', new Passthrough(oldDir), { spec: `passthrough:${oldDir}` });
    v1.journal = j;
    v1.init(info());
    const foo = await v1.lookup(root, 1, 'a');
    const f = await v1.lookup(root, foo.nodeid, 'foo');
    v1.forget(f.nodeid, 1);
    v1.forget(foo.nodeid, 1);
    await v1.detach('/a');
    const idx = await v1.attach('/a', new Passthrough(newDir), { spec: `passthrough:${newDir}` });
    assert.is(idx, 1, 'index 1 reused');
    const a2 = await v1.lookup(root, 1, 'a');
    const bar = await v1.lookup(root, a2.nodeid, 'barbaz');
    assert.is(bar.nodeid, SPAN + 2, 'the new backend hands out local id 2 again');
    // The restarted server starts with the OLD layout (its command line), at index 1.
    const v2 = new Vfs({ ...quiet, build: (spec) => new Passthrough(spec.slice('passthrough:'.length)) });
    await v2.attach('/a', new Passthrough(oldDir), { spec: `passthrough:${oldDir}` });
    v2.init(info());
    const logs: string[] = [];
    await v2.restore([['I', { flags: 0 }, {}], ...j.records], (l) => logs.push(l));
    assert.equal(v2.list().map((b) => b.spec), [`passthrough:${newDir}`]);
    const st = await v2.getattr(root, bar.nodeid, undefined);
    assert.ok(st.attr, 'barbaz (local id 2 of the new backend) is restored, not mistaken for the old foo');
    assert.ok(logs.some((l) => l.includes('not what the journal has there')), logs.join('\n'));
  } finally {
    cleanup(base);
  }
});

test('READDIRPLUS: an entry the reply could not take (add threw) leaves no lookup counted', async () => {
  const v = new Vfs(quiet);
  const calls: string[] = [];
  const fs = rawFs({ x: { mode: C.S_IFREG | 0o644 } }, calls);
  await v.attach('/r', fs);
  v.init(info());
  const r = await v.lookup(root, 1, 'r');
  const sink: DirentPlusSink = { add: () => { throw new RangeError('a bad entry'); } };
  await failure(() => v.readdirplus(root, r.nodeid, 0, 0n, sink));
  assert.is(v.stats().backends['/r'].lookups, 0, JSON.stringify(v.stats().backends['/r']));
  assert.ok(calls.includes('forget 2 1'), `the backend's own lookup is undone: ${calls.join(', ')}`);
});

test('FORGET of a backend root is not passed to the backend (the Vfs made those entries)', async () => {
  const v = new Vfs(quiet);
  const calls: string[] = [];
  await v.attach('/r', rawFs({}, calls));
  v.init(info());
  const r = await v.lookup(root, 1, 'r');
  v.forget(r.nodeid, 1);
  assert.equal(calls.filter((c) => c.startsWith('forget')), []);
  assert.is(v.stats().backends['/r'].inodes, 0);
});

test('two attaches at once (after INIT) get two indexes', async () => {
  const v = new Vfs(quiet);
  v.init(info());
  const slow = (): FileSystem => ({ ...rawFs({}), init: () => new Promise<void>((r) => setTimeout(r, 20)) });
  const got = await Promise.allSettled([v.attach('/p', slow()), v.attach('/q', slow())]);
  assert.equal(got.map((g) => g.status), ['fulfilled', 'fulfilled'], JSON.stringify(got));
  assert.equal(new Set(got.map((g) => (g as PromiseFulfilledResult<number>).value)).size, 2);
});

test('per-backend defaultPermissions: a non-owner cannot chown even to the same uid; execute-only files open for exec', async () => {
  const v = new Vfs(quiet);
  const calls: string[] = [];
  await v.attach('/d', rawFs({ f: { mode: C.S_IFREG | 0o644, uid: 1000, gid: 1000 }, run: { mode: C.S_IFREG | 0o711, uid: 0, gid: 0 } }, calls), { defaultPermissions: true });
  v.init(info());
  const d = await v.lookup(user(2000), 1, 'd');
  const f = await v.lookup(user(2000), d.nodeid, 'f');
  for (const change of [{ uid: 1000 }, { gid: 1000 }]) {
    assert.is((await failure(() => v.setattr(user(2000), f.nodeid, change))).code, 'EPERM');
  }
  assert.not.ok(calls.includes(`setattr ${f.nodeid - SPAN}`), 'the backend saw no setattr');
  const run = await v.lookup(user(2000), d.nodeid, 'run');
  assert.is((await failure(() => v.open(user(2000), run.nodeid, C.O_RDONLY))).code, 'EACCES');
  const o = await v.open(user(2000), run.nodeid, C.O_RDONLY | 0x20); // __FMODE_EXEC
  assert.is(o.fh, 7);
});

test('takeover: the handles of a backend without a journal of its own are journaled by the Vfs', async () => {
  const j = collector();
  const make = () => rawFs({ f: { mode: C.S_IFREG | 0o644 } });
  const v1 = new Vfs({ ...quiet, build: make });
  await v1.attach('/r', make(), { spec: 'raw' });
  v1.journal = j;
  v1.init(info());
  const r = await v1.lookup(root, 1, 'r');
  const f = await v1.lookup(root, r.nodeid, 'f');
  await v1.open(root, f.nodeid, 0);
  await v1.open(root, f.nodeid, 0);
  await v1.release(root, f.nodeid, 7, 0, 0n, false);
  const v2 = new Vfs({ ...quiet, build: make });
  v2.init(info());
  await v2.restore([['I', { flags: 0 }, {}], ...j.records]);
  assert.is(v2.stats().backends['/r'].handles, 1, 'one of the two opens is still open');
  assert.is(v2.stats().backends['/r'].lookups, 1, 'f is held once');
  await v2.release(root, f.nodeid, 7, 0, 0n, false);
  assert.is(v2.stats().backends['/r'].handles, 0);
});

test.run();
