// docs/guide.md is code a newcomer copies: every ```ts block in it must compile
// as a module of its own, importing 'tsfuse' (and 'tsfuse/abi', 'tsfuse/passthrough',
// 'tsfuse/vfs' …) exactly as a user of the published package writes it; and the
// guide's first complete example (the block marked ```ts headline) and its low-level
// example (```ts lowlevel) must mount and serve, used from another process.
//
// The blocks are written to a directory inside the project (so that the project's
// node_modules/@types and, for the example runs, the package's own "exports" map
// resolve), with a tsconfig whose `paths` point 'tsfuse' and 'tsfuse/*' at src/, and
// checked by the project's TypeScript compiler in one run. A failure names the
// guide's line. A canary block with a known error is compiled in the same run and
// must be reported at its own line: the check is shown to catch what it is for.
//
// A block marked ```ts no-compile is skipped; it must begin with a comment saying
// "not compiled" and why (a fragment that cannot stand alone). The guide has none
// today.
import { spawn } from 'node:child_process';
import {
  appendFileSync, closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync,
  statSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, errCode, forceUnmount, isMounted, poll, REPO, run, tempDir, timed, WAIT_MS } from './helpers.js';

const GUIDE = join(REPO, 'docs/guide.md');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');

/** A fenced ```ts block: the line of its opening fence (1-based), its info words after
 * the language, and its code. */
export interface Block { line: number; tags: string[]; code: string }

/**
 * The ```ts (or ```typescript) blocks of a Markdown text, in order. Fences of other
 * languages are skipped whole (a ```ts inside a ```text block is not a block); a fence
 * closes at a line of the same fence characters, at least as many, and nothing else.
 */
export function tsBlocks(md: string): Block[] {
  const lines = md.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*(\S*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, fence, lang, rest] = open;
    const start = i;
    const code: string[] = [];
    for (i++; i < lines.length; i++) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(lines[i]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      code.push(lines[i]);
    }
    if (lang === 'ts' || lang === 'typescript') blocks.push({ line: start + 1, tags: rest.trim().split(/\s+/).filter(Boolean), code: code.join('\n') });
  }
  return blocks;
}

/** tsconfig for the blocks: strict, as the project; 'tsfuse' and its subpaths are the
 * project's sources (the package's exports map points them at dist/, which holds the same
 * code compiled). */
function tsconfig(): object {
  return {
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noImplicitOverride: true,
      noFallthroughCasesInSwitch: true, noEmit: true, skipLibCheck: true, types: ['node'],
      paths: { 'tsfuse': ['../src/index.ts'], 'tsfuse/*': ['../src/*/index.ts'] },
    },
    include: ['*.ts'],
  };
}

/** One compiler error, at `file` line `line` (1-based), column `col`. */
interface TscError { file: string; line: number; col: number; text: string }

/** Parses `tsc --pretty false` output: "file(line,col): error TSnnnn: text", with indented continuation lines. */
function tscErrors(out: string): TscError[] {
  const errors: TscError[] = [];
  for (const l of out.split('\n')) {
    const m = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(l);
    if (m) errors.push({ file: m[1], line: Number(m[2]), col: Number(m[3]), text: m[4] });
    else if (l.trim() && errors.length) errors[errors.length - 1].text += `\n    ${l.trim()}`;
  }
  return errors;
}

/** A directory inside the project, removed afterwards (it holds only generated files). */
function workDir(): string {
  return mkdtempSync(join(REPO, '.guide-check-'));
}

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
  for (const b of blocks.filter((x) => x.tags.includes('no-compile'))) {
    assert.match(b.code.split('\n')[0], /^\s*\/\/.*not compiled/i, `docs/guide.md:${b.line}: a no-compile block starts with a comment saying why it is not compiled`);
  }
});

test('every ```ts block of the guide compiles as a module of its own, importing tsfuse as a package user does', timed(600_000, async () => {
  const dir = workDir();
  try {
    const files = new Map<string, { block: Block; where: string }>();
    const put = (name: string, block: Block, where: string) => {
      // `export {}` makes every block a module (its names do not meet the other blocks'),
      // after the block's own lines: line numbers stay the block's.
      writeFileSync(join(dir, name), `${block.code}\nexport {};\n`);
      files.set(name, { block, where });
    };
    for (const b of blocks) if (!b.tags.includes('no-compile')) put(`block-${b.line}.ts`, b, 'docs/guide.md');
    const canaryMd = '# canary\n\n```ts\nconst ok = 1;\nconst bad: string = ok;\n```\n';
    const [canary] = tsBlocks(canaryMd);
    put('canary.ts', canary, 'canary.md');
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig(), null, 2));

    const r = await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], 540_000, { cwd: dir });
    const out = r.stdout + r.stderr;
    const errors = tscErrors(out);
    assert.ok(r.code === 0 || errors.length > 0, `tsc exited ${r.code ?? r.signal} without errors we could read: ${out}`);
    const at = (e: TscError) => {
      const f = files.get(e.file.replace(/^.*\//, ''));
      // The guide's line: the fence is line `block.line`, the block's first line the next.
      return f ? `${f.where}:${f.block.line + e.line}:${e.col}` : `${e.file}:${e.line}:${e.col}`;
    };
    const canaryErrors = errors.filter((e) => e.file.endsWith('canary.ts')).map(at);
    assert.equal(canaryErrors, ['canary.md:5:7'], 'the canary block\'s error is reported at its own line');
    const real = errors.filter((e) => !e.file.endsWith('canary.ts')).map((e) => `${at(e)}: ${e.text}`);
    assert.equal(real, [], `blocks of the guide that do not compile:\n${real.join('\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
