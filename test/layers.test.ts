// The public surface is pinned and imports point down the layers (STYLE.md 15).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './helpers.js';

const LAYERS = ['abi', 'transport', 'api', 'vfs', 'passthrough', 'cli'];
/** Which layers each layer may import. */
const ALLOWED: Record<string, string[]> = {
  abi: ['abi'],
  transport: ['abi', 'transport'],
  api: ['abi', 'transport', 'api'],
  vfs: ['abi', 'transport', 'api', 'vfs'],
  passthrough: ['abi', 'transport', 'api', 'passthrough'],
  cli: LAYERS,
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

test('imports point down the layers (abi → transport → api → vfs/passthrough → cli)', () => {
  const bad: string[] = [];
  for (const layer of LAYERS) {
    let files: string[];
    try { files = tsFiles(join(REPO, 'src', layer)); } catch { continue; }
    for (const f of files) {
      const src = readFileSync(f, 'utf8');
      for (const m of src.matchAll(/from '\.\.\/([a-z]+)\//g)) {
        if (!ALLOWED[layer].includes(m[1])) bad.push(`${f.slice(REPO.length)} imports ${m[1]}`);
      }
    }
  }
  assert.equal(bad, []);
});

test('abi does no I/O (no fs, child_process, net or native imports)', () => {
  const bad = tsFiles(join(REPO, 'src/abi')).filter((f) =>
    /from 'node:(fs|child_process|net|dgram)'|native\.js/.test(readFileSync(f, 'utf8')));
  assert.equal(bad, []);
});

test('the package exports what the README documents', async () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  assert.is(pkg.name, 'tsfuse');
  assert.is(pkg.type, 'module');
  assert.ok(pkg.bin.tsfuse);
  const api = await import('../src/index.js');
  for (const name of ['mount', 'unmount', 'FuseError', 'Server', 'FuseSession', 'InitFlag', 'Opcode', 'parseOptionString',
    'OPCODES', 'FuseInode', 'InodeTree', 'LOCK_TO_EOF', 'nameToBytes', 'nameFromBytes']) {
    assert.ok(name in api, `missing export ${name}`);
  }
  const abi = await import('../src/abi/index.js');
  for (const name of ['structs', 'INIT_WIRE', 'decodeRequest', 'DirentWriter', 'negotiateVersion', 'nameToBytes']) {
    assert.ok(name in abi, `missing abi export ${name}`);
  }
});

test.run();
