// README.md's code is what a user copies first: every ```ts block in it must compile as
// a module of its own, under the project's strict settings, importing 'tsfuse',
// 'tsfuse/passthrough', 'tsfuse/examples/memfs' … exactly as a user of the published
// package writes it (never a path of this repository), and only what the package's
// "exports" map offers. The compile check is test/doc-blocks.ts, shared with
// test/guide.test.ts: a failure is reported as README.md:LINE:COL, and a canary block
// shows in the same run that errors are caught and placed.
//
// A block marked ```ts no-compile is skipped; it must begin with a comment saying
// "not compiled" and why.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileDocs, tsBlocks, unexplainedNoCompile, unexportedImports } from './doc-blocks.js';
import { REPO, timed } from './helpers.js';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const blocks = tsBlocks(readme);
const exportsMap = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;

test('the README has its examples; a no-compile block says why', () => {
  const compiled = blocks.filter((b) => !b.tags.includes('no-compile'));
  assert.ok(compiled.length >= 5, `${compiled.length} compiled ts blocks found`);
  for (const what of ['FuseInode', 'Vfs', 'spawnMount']) {
    assert.ok(compiled.some((b) => new RegExp(`\\b${what}\\b`).test(b.code)), `a compiled block uses ${what}`);
  }
  assert.equal(unexplainedNoCompile('README.md', blocks), []);
});

test('the README imports the package as a user does: package specifiers that "exports" offers, no repository paths', () => {
  assert.equal(unexportedImports('README.md', blocks, exportsMap), []);
  // The check itself: a repository path, an unexported subpath and a wildcard subpath.
  const probe = tsBlocks([
    '```ts',
    "import { Passthrough } from './src/passthrough/index.js';",
    "import { x } from 'tsfuse/cli';",
    "import { memfs } from 'tsfuse/examples/memfs';",
    "const m = await import('tsfuse/vfs');",
    '```',
  ].join('\n'));
  assert.equal(unexportedImports('probe.md', probe, exportsMap), [
    "probe.md:2: './src/passthrough/index.js' is a path in this repository, not the package's ('tsfuse', 'tsfuse/…')",
    "probe.md:3: 'tsfuse/cli' is not in package.json \"exports\"",
  ]);
});

test('every ```ts block of the README compiles as a module of its own, importing tsfuse as a package user does', timed(600_000, async () => {
  const { errors, canary } = await compileDocs([{ name: 'README.md', md: readme }]);
  assert.equal(canary, ['canary.md:5:7'], 'the canary block\'s error is reported at its own line');
  assert.equal(errors, [], `blocks of the README that do not compile:\n${errors.join('\n')}`);
}));

test.run();
