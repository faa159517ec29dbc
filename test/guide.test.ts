// docs/guide.md is code a newcomer copies: every ```ts block in it must compile
// as a module of its own, importing 'tsfuse' (and 'tsfuse/abi', 'tsfuse/passthrough',
// 'tsfuse/vfs' …) exactly as a user of the published package writes it; and the
// guide's first complete example (the block marked ```ts headline) and its low-level
// example (```ts lowlevel) must mount and serve, used from another process.
//
// The compile check (test/doc-blocks.ts, shared with test/readme.test.ts) names the
// guide's line of a failure, and shows with a canary block that it catches errors.
// A block marked ```ts no-compile is skipped; it must begin with a comment saying
// "not compiled" and why (a fragment that cannot stand alone). The guide has none
// today.
import { spawn } from 'node:child_process';
import {
  appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync,
  statSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileDocs, tsBlocks, unexplainedNoCompile, unexportedImports, workDir } from './doc-blocks.js';
import { cleanup, errCode, forceUnmount, isMounted, poll, REPO, tempDir, timed, WAIT_MS } from './helpers.js';

const GUIDE = join(REPO, 'docs/guide.md');

const guide = readFileSync(GUIDE, 'utf8');
const blocks = tsBlocks(guide);

test('the guide has its examples, one headline, and the errors section with its markers', () => {
  assert.ok(blocks.length >= 10, `${blocks.length} ts blocks found`);
  assert.is(blocks.filter((b) => b.tags.includes('headline')).length, 1, 'exactly one ```ts headline block');
  const errors = guide.indexOf('\n## Errors you can act on\n');
  assert.ok(errors > 0, 'a section "## Errors you can act on"');
  const begin = guide.indexOf('<!-- errors:begin -->', errors);
  const end = guide.indexOf('<!-- errors:end -->', errors);
  assert.ok(begin > errors && end > begin, 'the errors:begin and errors:end markers, in that order, in that section');
  assert.equal(unexplainedNoCompile('docs/guide.md', blocks), []);
  const exportsMap = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;
  assert.equal(unexportedImports('docs/guide.md', blocks, exportsMap), [], 'package specifiers that "exports" offers, no repository paths');
});

test('every ```ts block of the guide compiles as a module of its own, importing tsfuse as a package user does', timed(600_000, async () => {
  const { errors, canary } = await compileDocs([{ name: 'docs/guide.md', md: guide }]);
  assert.equal(canary, ['canary.md:5:7'], 'the canary block\'s error is reported at its own line');
  assert.equal(errors, [], `blocks of the guide that do not compile:\n${errors.join('\n')}`);
}));

/** A running example: the block tagged `tag`, served on a fresh mount point by a child
 * process (type-stripped as a user's build would do: the compile test type-checks it). It
 * lives inside the project, so its `import … from 'tsfuse'` resolves through the package's
 * own exports map, to the built package (dist/). */
interface Running { mnt: string; out: () => string; err: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; child: ReturnType<typeof spawn> }

async function withExample(tag: string, ready: (r: Running) => boolean, body: (r: Running) => Promise<void>): Promise<void> {
  const block = blocks.find((b) => b.tags.includes(tag));
  if (!block) throw new Error(`no \`\`\`ts ${tag} block in docs/guide.md`);
  const dir = workDir();
  const mnt = tempDir('tsfuse-guide-');
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const js = ts.transpileModule(block.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = join(dir, `${tag}.mjs`);
    writeFileSync(file, js);
    const c = spawn(process.execPath, [file, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let out = '';
    let err = '';
    c.stdout!.on('data', (d) => { out += d; });
    c.stderr!.on('data', (d) => { err += d; });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => c.on('exit', (code, signal) => resolve({ code, signal })));
    const r: Running = { mnt, out: () => out, err: () => err, exited, child: c };
    let gone = false;
    void exited.then(() => { gone = true; });
    const up = await poll(() => gone || ready(r), WAIT_MS, 20);
    assert.ok(up && !gone, `the ${tag} example serves ${mnt} (exited: ${gone}); stdout: ${out}; stderr: ${err}`);
    await body(r);
    c.kill('SIGINT');
    let t: NodeJS.Timeout | undefined;
    const e = await Promise.race([exited, new Promise<'hung'>((res) => { t = setTimeout(() => res('hung'), WAIT_MS); })]);
    clearTimeout(t);
    assert.equal(e, { code: 0, signal: null }, `exits 0 after SIGINT; stderr: ${err}`);
    assert.ok(!isMounted(mnt), 'unmounted');
    assert.is(err, '', 'nothing logged');
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    forceUnmount(mnt);
    cleanup(mnt);
    rmSync(dir, { recursive: true, force: true });
  }
}

// This process is not the server of these mounts: synchronous calls on them are fine here.

test('the headline example mounts and serves: another process lists and reads it; SIGINT unmounts it', timed(120_000, () =>
  withExample('headline', (r) => r.out().includes(`serving ${r.mnt}`), async ({ mnt }) => {
    assert.ok(isMounted(mnt), 'mounted once it said so');
    assert.equal(readdirSync(mnt).sort(), ['docs', 'hello.txt']);
    assert.equal(readdirSync(join(mnt, 'docs')), ['guide.txt']);
    assert.is(readFileSync(join(mnt, 'hello.txt'), 'utf8'), 'Hello, world!\n');
    assert.is(readFileSync(join(mnt, 'docs/guide.txt'), 'utf8'), 'Read me.\n');
    const st = statSync(join(mnt, 'hello.txt'));
    assert.is(st.size, 14);
    assert.is(st.mode & 0o7777, 0o444);
    assert.ok(statSync(join(mnt, 'docs')).isDirectory());
    assert.is(errCode(() => statSync(join(mnt, 'missing'))), 'ENOENT');
    assert.is(errCode(() => writeFileSync(join(mnt, 'hello.txt'), 'x')), 'EROFS', 'mounted read-only');
  })));

test('the low-level example serves files; a file deleted while open stays readable; what it lacks is ENOSYS', timed(120_000, () =>
  withExample('lowlevel', (r) => isMounted(r.mnt), async ({ mnt }) => {
    const a = join(mnt, 'a');
    writeFileSync(a, 'hello\n');
    appendFileSync(a, 'more\n');
    assert.is(readFileSync(a, 'utf8'), 'hello\nmore\n');
    writeFileSync(a, 'new\n'); // O_TRUNC: SETATTR with size 0
    assert.is(readFileSync(a, 'utf8'), 'new\n');
    assert.equal(readdirSync(mnt), ['a']);
    const fd = openSync(join(mnt, 'b'), 'w+');
    try {
      writeSync(fd, 'kept');
      unlinkSync(join(mnt, 'b'));
      assert.equal(readdirSync(mnt), ['a']);
      assert.is(errCode(() => statSync(join(mnt, 'b'))), 'ENOENT');
      const buf = Buffer.alloc(16);
      assert.is(buf.subarray(0, readSync(fd, buf, 0, 16, 0)).toString(), 'kept', 'still readable through the open fd');
      // attrTimeout 0: this fstat is a GETATTR of the unlinked node, which the server
      // answers only while it keeps the node (else ESTALE).
      assert.is(fstatSync(fd).nlink, 0);
    } finally {
      closeSync(fd);
    }
    assert.is(errCode(() => mkdirSync(join(mnt, 'd'))), 'ENOSYS');
    assert.is(errCode(() => renameSync(a, join(mnt, 'c'))), 'ENOSYS');
    assert.is(errCode(() => readFileSync(join(mnt, 'nope'))), 'ENOENT');
  })));

test('no mounts of this file left in /proc/mounts', () => {
  const left = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes('tsfuse-guide-'));
  assert.equal(left, []);
});

test.run();
