// The published package, end to end: `npm pack` of a copy of this checkout
// (its prepack compiles the TypeScript and builds the prebuilt N-API addon
// with prebuildify), then `npm install` of the tarball into an empty
// directory with NO compiler, make or python3 on PATH, then a program there
// that imports 'tsfuse' the way the README shows and mounts hello, a
// FuseInode tree, the passthrough and the VFS, read and written from child
// processes. The tarball must hold types, the CLI, the examples and the
// prebuilt addon, and nothing of the tests or benches; the shipped types
// must type-check a user's TypeScript program.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { REPO, cleanup, detachAll, mountsBelow, run, tempDir, timed } from './helpers.js';

const T = 15 * 60_000;
const base = tempDir('tsfuse-test-pkg-');
const t0 = Date.now();
const log = (s: string) => console.log(`  [package +${((Date.now() - t0) / 1000).toFixed(0)} s] ${s}`);
let tarball = '';
let app = '';

/** Which of `names` `PATH` finds (as `command -v` would). */
function onPath(path: string, names: string[]): string[] {
  return names.filter((n) => path.split(delimiter).some((d) => existsSync(join(d, n))));
}

/** A PATH with node, npm, npx and a shell, and nothing that compiles. */
function bareBin(): string {
  const bin = join(base, 'bin');
  mkdirSync(bin);
  const npmCli = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(npmCli, join(bin, 'npm'));
  symlinkSync(join(dirname(npmCli), 'npx'), join(bin, 'npx'));
  for (const t of ['sh', 'cat', 'mkdir', 'rm', 'ls', 'env', 'uname', 'umount', 'mount', 'fusermount3']) {
    const p = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => join(d, t)).find((x) => existsSync(x));
    if (p) symlinkSync(p, join(bin, t));
  }
  return bin;
}

test('npm pack: prepack builds the prebuilt addon; the tarball holds types, CLI, examples, no tests or benches', timed(T, async () => {
  // A copy of the checkout (not the checkout itself: prepack rebuilds build/, which
  // other test files load); node_modules is the checkout's (dev tools: tsc, prebuildify).
  const src = join(base, 'src');
  mkdirSync(src);
  for (const e of readdirSync(REPO)) {
    if (['.git', 'node_modules', 'build', 'dist', 'prebuilds', 'docs'].includes(e)) continue;
    cpSync(join(REPO, e), join(src, e), { recursive: true });
  }
  if (existsSync(join(REPO, 'docs'))) cpSync(join(REPO, 'docs'), join(src, 'docs'), { recursive: true, filter: (p) => !p.includes('/docs/api') });
  symlinkSync(join(REPO, 'node_modules'), join(src, 'node_modules'));
  const env = { ...process.env, ...(existsSync('/usr/include/node/node.h') ? { npm_config_nodedir: '/usr' } : {}) };
  const packed = await run('npm', ['pack', '--pack-destination', base, '--json'], 10 * 60_000, { cwd: src, env });
  assert.is(packed.code, 0, `npm pack failed: ${packed.stderr.slice(-3000)}`);
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  tarball = join(base, info[0].filename);
  const files = info[0].files.map((f) => f.path);
  log(`${info[0].filename}: ${files.length} files, ${(info[0].size / 1024).toFixed(0)} KiB packed, ${(info[0].unpackedSize / 1024).toFixed(0)} KiB unpacked`);
  const has = (p: string) => assert.ok(files.includes(p), `the tarball lacks ${p}`);
  has('package.json');
  has('dist/src/index.js');
  has('dist/src/index.d.ts');
  has('dist/src/passthrough/index.d.ts');
  has('dist/src/vfs/index.d.ts');
  has('dist/src/cli/main.js');
  has('dist/examples/hello.js');
  has('examples/hello.ts');
  has('binding.gyp'); // the fallback build where no prebuild fits
  assert.ok(files.some((f) => /^prebuilds\/linux-x64\/[^/]+\.node$/.test(f)), `no prebuilt linux-x64 addon in ${files.filter((f) => f.startsWith('prebuilds')).join(', ') || 'the tarball'}`);
  // linux-arm64: cross-built when aarch64-linux-gnu-g++ is installed (.ci/run installs it);
  // checked here as an ELF object for AArch64 (e_machine 183), stripped like the x64 one.
  const arm = files.find((f) => /^prebuilds\/linux-arm64\/[^/]+\.node$/.test(f));
  if (onPath(process.env.PATH ?? '', ['aarch64-linux-gnu-g++']).length) {
    assert.ok(arm, 'no linux-arm64 prebuild although aarch64-linux-gnu-g++ is installed');
    const elf = readFileSync(join(src, arm));
    assert.is(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.is(elf.readUInt16LE(18), 183, 'the linux-arm64 prebuild is not an AArch64 object');
    log(`linux-arm64 prebuild: ${arm}, ${elf.length} bytes`);
  } else log('no aarch64-linux-gnu-g++: the linux-arm64 prebuild is not built here');
  const x64 = readFileSync(join(src, files.find((f) => /^prebuilds\/linux-x64\/[^/]+\.node$/.test(f))!));
  assert.is(x64.readUInt16LE(18), 62, 'the linux-x64 prebuild is not an x86-64 object');
  const leaked = files.filter((f) => /^(test|bench|dist\/test|dist\/bench|build|node_modules|\.ci|\.git)\//.test(f) || /\.test\.(js|ts)$/.test(f));
  assert.equal(leaked, [], 'tests, benches or build output in the tarball');
}));

test('npm install of the tarball with no compiler on PATH, then hello, a FuseInode tree, the passthrough and the VFS mount', timed(T, async () => {
  assert.ok(tarball, 'npm pack did not run');
  const bin = bareBin();
  const PATH = bin;
  assert.equal(onPath(PATH, ['cc', 'gcc', 'g++', 'c++', 'clang', 'make', 'python3', 'python']), [], 'a compiler is reachable');
  app = join(base, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'tsfuse-user', version: '1.0.0', type: 'module', private: true }));
  const env: NodeJS.ProcessEnv = { PATH, HOME: process.env.HOME ?? '/root', TMPDIR: process.env.TMPDIR ?? '/tmp' };
  // The dependencies come from npm's cache (npm ci of the checkout filled it) or the registry.
  const inst = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], 10 * 60_000, { cwd: app, env });
  assert.is(inst.code, 0, `npm install failed without a compiler:\n${inst.stdout.slice(-2000)}\n${inst.stderr.slice(-3000)}`);
  const pkg = join(app, 'node_modules', 'tsfuse');
  assert.not.ok(existsSync(join(pkg, 'build')), 'the install compiled the addon (build/ exists) instead of using the prebuilt one');
  const du = execFileSync('du', ['-sk', '--apparent-size', pkg], { encoding: 'utf8' }).split('\t')[0];
  const duAll = execFileSync('du', ['-sk', '--apparent-size', join(app, 'node_modules')], { encoding: 'utf8' }).split('\t')[0];
  log(`installed: node_modules/tsfuse ${du} KiB, node_modules in all ${duAll} KiB`);

  // The user's program: imports as the README shows; every client operation runs in a child
  // process (never this serving thread).
  writeFileSync(join(app, 'main.mjs'), PROGRAM);
  const mnts = ['hello', 'tree', 'pt', 'vfs'].map((n) => join(base, 'mnt-' + n));
  try {
    log('running the program');
    const r = await run('node', ['main.mjs', base], 5 * 60_000, { cwd: app, env });
    log('the program ended');
    assert.is(r.code, 0, `the program failed (${r.code ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.equal(got, {
      hello: 'Hello, world!\n',
      tree: 'a note',
      pt: ['from the source', 'written through'],
      vfs: ['hello.txt', 'notes', 'from the source', 'in the vfs'],
      cli: 'Hello, world!\n',
    });
  } finally {
    detachAll(mountsBelow(base));
  }
  assert.equal(mountsBelow(base), [], 'mounts left behind');
  void mnts;
}));

test('the shipped types type-check a TypeScript program that imports tsfuse as the README does', timed(T, async () => {
  assert.ok(app, 'the install did not run');
  writeFileSync(join(app, 'check.ts'), TYPED);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(REPO, 'node_modules/@types')] },
    files: ['check.ts'],
  }));
  const r = await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], 5 * 60_000, { cwd: app });
  log('tsc on the shipped types: done');
  assert.is(r.code, 0, `tsc failed on the shipped types:\n${r.stdout}\n${r.stderr}`);
  // …and fails where it must: a wrong argument type is caught through the shipped types.
  writeFileSync(join(app, 'check.ts'), `${TYPED}\nnew Passthrough(42);\n`);
  const bad = await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], 5 * 60_000, { cwd: app });
  assert.is.not(bad.code, 0, 'tsc accepted new Passthrough(42): the types are not the shipped ones');
}));

test.after(() => {
  detachAll(mountsBelow(base));
  cleanup(base);
});

const PROGRAM = `
import { constants as C } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FuseError, FuseInode, InodeTree, mount, Passthrough, Vfs } from 'tsfuse';
import { hello } from 'tsfuse/examples/hello';

const base = process.argv[2];
// Client operations run in a child process, waited for asynchronously: a synchronous wait
// (execFileSync) would stop this thread, which serves the mounts, and deadlock.
const run = promisify(execFile);
const client = async (code, ...args) => (await run('node', ['-e', code, ...args], { encoding: 'utf8', timeout: 60000 })).stdout;
const read = (p) => client('process.stdout.write(require("fs").readFileSync(process.argv[1], "utf8"))', p);

class Note extends FuseInode {
  data = Buffer.from('a note');
  constructor() { super(C.S_IFREG | 0o644); this.makePersistent(); }
  getattr() { return { ino: this.nodeid, mode: this.mode, size: this.data.length }; }
  read(ctx, h, off, size) { return this.data.subarray(Number(off), Number(off) + size); }
}
class Notes extends FuseInode {
  static supports = ['read'];
  constructor() { super(C.S_IFDIR | 0o755); this.makePersistent(); this.addChild('note', new Note()); }
}

const out = {};
const sessions = [];
const mnt = (n) => { const p = join(base, 'mnt-' + n); mkdirSync(p, { recursive: true }); return p; };
try {
  const h = mnt('hello');
  sessions.push(await mount(h, hello, { fsname: 'hello' }));
  out.hello = await read(join(h, 'hello'));

  const t = mnt('tree');
  sessions.push(await mount(t, new InodeTree(new Notes())));
  out.tree = await read(join(t, 'note'));

  const src = join(base, 'pt-src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'from the source');
  const p = mnt('pt');
  sessions.push(await mount(p, new Passthrough(src)));
  await client('require("fs").writeFileSync(process.argv[1], "written through")', join(p, 'b.txt'));
  out.pt = [await read(join(p, 'a.txt')), await read(join(src, 'b.txt'))];

  const v = mnt('vfs');
  const vfs = new Vfs();
  vfs.attach('/src', new Passthrough(src));
  vfs.attach('/notes', new InodeTree(new Notes()));
  sessions.push(await mount(v, vfs));
  await client('require("fs").writeFileSync(process.argv[1], "in the vfs")', join(v, 'src', 'hello.txt'));
  const rootList = (await client('process.stdout.write(require("fs").readdirSync(process.argv[1]).join(","))', v)).split(',');
  out.vfs = [(await read(join(v, 'src', 'hello.txt'))) === 'in the vfs' ? 'hello.txt' : 'missing', rootList.includes('notes') ? 'notes' : rootList.join(','),
    await read(join(v, 'src', 'a.txt')), await read(join(src, 'hello.txt'))];

  // The CLI the package installs (node_modules/.bin/tsfuse): returns once the mount serves.
  const c = mnt('cli');
  await run('npx', ['--no-install', 'tsfuse', 'hello', c], { timeout: 60000 });
  try { out.cli = await read(join(c, 'hello')); } finally { await run('npx', ['--no-install', 'tsfuse', 'umount', c], { timeout: 60000 }); }
} finally {
  for (const s of sessions.reverse()) await s.unmount({ lazy: true }).catch((e) => console.error('unmount: ' + e.message));
}
console.log(JSON.stringify(out));
`;

const TYPED = `
import { constants as C } from 'node:fs';
import { FuseError, FuseInode, InodeTree, mount, Passthrough, Vfs, type FileSystem, type FuseSession } from 'tsfuse';
import { Opcode } from 'tsfuse/abi';
import { Passthrough as P2 } from 'tsfuse/passthrough';
import { Vfs as V2 } from 'tsfuse/vfs';
import { hello } from 'tsfuse/examples/hello';

class Note extends FuseInode {
  data = Buffer.alloc(0);
  constructor() { super(C.S_IFREG | 0o644); this.makePersistent(); }
  getattr() { return { ino: this.nodeid, mode: this.mode, size: this.data.length }; }
  read(_ctx: unknown, _h: unknown, off: bigint, size: number) { return this.data.subarray(Number(off), Number(off) + size); }
}
class Notes extends FuseInode {
  static readonly supports = ['create', 'read'] as const;
  create() { return { inode: new Note() }; }
  unlink() { throw new FuseError('EPERM'); }
}
export async function start(mnt: string): Promise<FuseSession[]> {
  const fs: FileSystem = hello;
  const vfs: Vfs = new V2();
  vfs.attach('/a', new P2('/tmp'));
  const p: Passthrough = new Passthrough('/tmp');
  void Opcode.LOOKUP;
  return [await mount(mnt, fs), await mount(mnt, new InodeTree(new Notes(C.S_IFDIR | 0o755))), await mount(mnt, vfs), await mount(mnt, p)];
}
`;

test.run();
