// No Python at run time: nothing the package ships, and nothing the tests or
// benches run, starts python (the one helper for syscalls as another user is
// src/cli/as-user.ts, a Node child). node-gyp's own use of python3 when it
// builds the addon from source is build time, and lives in node_modules.
// Also: the as-user helper works with no python on PATH.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO, timed } from './helpers.js';
import { runAs } from '../src/cli/as-user.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test('no source, test, bench or example file runs python', () => {
  const found: string[] = [];
  for (const top of ['src', 'test', 'bench', 'examples', 'native']) {
    for (const f of files(join(REPO, top))) {
      const rel = relative(REPO, f);
      if (f.endsWith('.py')) { found.push(`${rel}: a python file`); continue; }
      if (rel === 'test/no-python.test.ts') continue; // this file names what it looks for
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        // a process started as python (spawn('python3', …), run('python3', …), a shebang) or a ctypes shim
        if (/\b\w+\(\s*['"`]python3?['"`]|^#!.*python|\bctypes\b|import ctypes/.test(line)) found.push(`${rel}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
    }
  }
  assert.equal(found, [], `python is still used:\n${found.join('\n')}`);
});

test('the as-user helper runs with no python on PATH, as another user with that user\'s groups', timed(60_000, async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent'; // the child is started by absolute path (process.execPath)
  try {
    const r = await runAs<[number, number, number[]]>('return [process.getuid(), process.getgid(), process.getgroups()]', [], { uid: 65534, groups: [65534, 4242] });
    assert.equal([r[0], r[1], [...r[2]].sort((x, y) => x - y)], [65534, 65534, [4242, 65534]]);
  } finally {
    process.env.PATH = saved;
  }
}));

test.run();
