// The ```ts blocks of the project's Markdown (docs/guide.md, README.md) are code a user
// copies: this module extracts them and compiles them the way a user of the published
// package would, importing 'tsfuse', 'tsfuse/passthrough', 'tsfuse/examples/memfs' …
// Shared by test/guide.test.ts and test/readme.test.ts.
//
// The blocks are written to a directory inside the project (so that the project's
// node_modules/@types, and for runnable examples the package's own "exports" map,
// resolve), with a tsconfig whose `paths` point the package's specifiers at the sources,
// and checked by the project's TypeScript compiler in one run. A failure names the
// Markdown file's line and column. A canary block with a known error is compiled in the
// same run and must be reported at its own line: the check is shown to catch what it is for.
//
// A block marked ```ts no-compile is skipped; it must begin with a comment saying
// "not compiled" and why (a fragment that cannot stand alone).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, run } from './helpers.js';

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

/** The no-compile blocks of `blocks` (from the file named `where`) that do not begin with a
 * comment saying they are not compiled, as "where:line: …" messages. */
export function unexplainedNoCompile(where: string, blocks: Block[]): string[] {
  return blocks
    .filter((b) => b.tags.includes('no-compile') && !/^\s*\/\/.*not compiled/i.test(b.code.split('\n')[0]))
    .map((b) => `${where}:${b.line}: a no-compile block must start with a comment saying why it is not compiled`);
}

/** A directory inside the project (named so that .gitignore covers it), to be removed by
 * the caller; it holds only generated files. */
export function workDir(): string {
  return mkdtempSync(join(REPO, '.guide-check-'));
}

/** tsconfig for the blocks: strict, as the project. 'tsfuse' and its subpaths are the
 * project's sources, as the package's exports map has them (pointing at dist/, which holds
 * the same code compiled): '.' → src/index, './X' → src/X/index, './examples/*' → examples/*. */
function tsconfig(): object {
  return {
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noImplicitOverride: true,
      noFallthroughCasesInSwitch: true, noEmit: true, skipLibCheck: true, types: ['node'],
      paths: { 'tsfuse': ['../src/index.ts'], 'tsfuse/examples/*': ['../examples/*.ts'], 'tsfuse/*': ['../src/*/index.ts'] },
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

/** A Markdown file's text and the name its errors are reported under ('README.md'). */
export interface Doc { name: string; md: string }

/** What {@link compileDocs} found: the errors of the documents' blocks as
 * "FILE:LINE:COL: error TSnnnn: …", and where the canary's one error was reported. */
export interface Compiled { errors: string[]; canary: string[] }

/**
 * Compiles every ```ts block of `docs` (except no-compile ones) as a module of its own,
 * plus a canary whose one error is at canary.md:5:7, in one run of the project's tsc.
 * Rejects if tsc fails without an error it could read.
 */
export async function compileDocs(docs: Doc[], ms = 540_000): Promise<Compiled> {
  const dir = workDir();
  try {
    const files = new Map<string, { block: Block; where: string }>();
    const put = (name: string, block: Block, where: string) => {
      // `export {}` makes every block a module (its names do not meet the other blocks'),
      // after the block's own lines: line numbers stay the block's.
      writeFileSync(join(dir, name), `${block.code}\nexport {};\n`);
      files.set(name, { block, where });
    };
    docs.forEach((d, i) => {
      for (const b of tsBlocks(d.md)) if (!b.tags.includes('no-compile')) put(`doc${i}-block-${b.line}.ts`, b, d.name);
    });
    const [canary] = tsBlocks('# canary\n\n```ts\nconst ok = 1;\nconst bad: string = ok;\n```\n');
    put('canary.ts', canary, 'canary.md');
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig(), null, 2));

    const r = await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], ms, { cwd: dir });
    const out = r.stdout + r.stderr;
    const errors = tscErrors(out);
    if (r.code !== 0 && errors.length === 0) throw new Error(`tsc exited ${r.code ?? r.signal} without errors we could read: ${out}`);
    const at = (e: TscError) => {
      const f = files.get(e.file.replace(/^.*\//, ''));
      // The Markdown line: the fence is line `block.line`, the block's first line the next.
      return f ? `${f.where}:${f.block.line + e.line}:${e.col}` : `${e.file}:${e.line}:${e.col}`;
    };
    const isCanary = (e: TscError) => e.file.endsWith('/canary.ts') || e.file === 'canary.ts';
    return {
      canary: errors.filter(isCanary).map(at),
      errors: errors.filter((e) => !isCanary(e)).map((e) => `${at(e)}: ${e.text}`),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The package's own specifiers ('tsfuse', 'tsfuse/…') that `blocks` import (static
 * `import … from`, `export … from`, `import('…')`) and that the package.json "exports"
 * map does not offer, as "where:line: …" messages (line of the Markdown file). A relative
 * import ('./src/…') is reported too: a user of the package has no such file. */
export function unexportedImports(where: string, blocks: Block[], exportsMap: Record<string, unknown>): string[] {
  const keys = Object.keys(exportsMap);
  const offered = (spec: string) => {
    const sub = spec === 'tsfuse' ? '.' : `.${spec.slice('tsfuse'.length)}`;
    return keys.some((k) => {
      const star = k.indexOf('*');
      return star < 0 ? k === sub : sub.startsWith(k.slice(0, star)) && sub.endsWith(k.slice(star + 1)) && sub.length > k.length - 1;
    });
  };
  const bad: string[] = [];
  for (const b of blocks) {
    if (b.tags.includes('no-compile')) continue;
    b.code.split('\n').forEach((l, i) => {
      for (const m of l.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])([^'"]+)\1/g)) {
        const spec = m[2];
        const at = `${where}:${b.line + 1 + i}`;
        if (spec.startsWith('.') || spec.startsWith('/')) bad.push(`${at}: '${spec}' is a path in this repository, not the package's ('tsfuse', 'tsfuse/…')`);
        else if ((spec === 'tsfuse' || spec.startsWith('tsfuse/')) && !offered(spec)) bad.push(`${at}: '${spec}' is not in package.json "exports"`);
      }
    });
  }
  return bad;
}
