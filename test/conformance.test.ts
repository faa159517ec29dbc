// The POSIX conformance suite (src/cli/conformance/) against the passthrough:
// `tsfuse passthrough SRC MNT` serves in a child process, this process runs
// the suite's syscalls (and its Node children, some as uid 65534). One test
// per group; a group passes when every case in it passes (as root nothing may
// be skipped). Then the `tsfuse conformance` CLI on one group. The whole
// suite runs twice: with default_permissions (the kernel checks permissions)
// and with nodefault_permissions (the source filesystem checks them, because
// the passthrough runs each request as the caller's uid/gid).
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONFORMANCE_GROUPS, runConformance } from '../src/cli/conformance/index.js';
import { cleanup, DIST, isMounted, startNode, stop, tempDir, timed, type Proc } from './helpers.js';

const CLI = 'src/cli/main.js';
const FSNAME = 'tsfuse-test-conformance';
const isRoot = process.geteuid?.() === 0;

let src = '';
let mnt = '';
let server: Proc | undefined;

async function serve(options: string): Promise<void> {
  src = tempDir('tsfuse-test-conformance-src-');
  mnt = tempDir('tsfuse-test-conformance-mnt-');
  chmodSync(src, 0o755); // the mount root's mode: uid 65534 must get in
  server = startNode(CLI, ['passthrough', src, mnt, '-f', '-o', `fsname=${FSNAME}${options}`]);
  await server.waitFor('mounted');
}

async function teardown(): Promise<void> {
  if (server) {
    await stop(server);
    const exit = await server.exited;
    if (exit.code !== 0) console.error(`passthrough exited with ${exit.code ?? exit.signal}; stderr:\n${server.stderr()}`);
  }
  cleanup(mnt);
  cleanup(src);
  // This run's mount point only: another run on the machine (a second checkout, CI)
  // may serve the same fsname at the same moment.
  const left = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => mnt && l.split(' ')[1] === mnt);
  if (left.length) {
    process.exitCode = 1;
    throw new Error(`still mounted after teardown: ${left.join('; ')}`);
  }
  server = undefined;
}

/** One test per group; `counts` collects "group: passed/total" for the summary line. */
function groups(t: typeof test, label: string): void {
  const counts: string[] = [];
  for (const group of CONFORMANCE_GROUPS) {
    t(`conformance (${label}): ${group}`, timed(120_000, async () => {
      assert.ok(isMounted(mnt), `${mnt} is not mounted (server: ${server?.stderr()})`);
      const r = (await runConformance(mnt, { groups: [group] }))[group];
      counts.push(`${group} ${r.passed}/${r.passed + r.failed + r.skipped}`);
      const lines = r.failures.map((f) => `  ${f.case}: ${f.error}`);
      assert.ok(r.failed === 0, `${r.failed} of ${r.passed + r.failed} cases failed:\n${lines.join('\n')}`);
      if (isRoot) assert.is(r.skipped, 0, `skipped as root: ${r.skips.map((s) => `${s.case} (${s.error})`).join('; ')}`);
      assert.ok(r.passed > 0, 'no case ran');
    }));
  }
  t.after(() => console.log(`  ${label}: ${counts.join(', ')}`));
}

const noDp = suite('nodefault_permissions');
noDp.before(() => serve(',nodefault_permissions'));
noDp.after(teardown);
groups(noDp, 'nodefault_permissions');
noDp.run();

test.before(() => serve(''));
test.after(teardown);
groups(test, 'default_permissions');

test('CLI: tsfuse conformance MNT --group chmod prints a line per case and the totals', timed(60_000, async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [join(DIST, CLI), 'conformance', mnt, '--group', 'chmod'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const lines = stdout.trim().split('\n');
  const cases = lines.filter((l) => /^(ok {2}|FAIL |skip )/.test(l));
  assert.ok(cases.length >= 5, `case lines: ${stdout}\nstderr: ${stderr}`);
  assert.ok(cases.every((l) => / chmod\//.test(l)), `only chmod cases: ${cases.join('\n')}`);
  const failed = cases.filter((l) => l.startsWith('FAIL'));
  assert.ok(lines.some((l) => /^chmod: \d+ passed, \d+ failed/.test(l)), `group totals line: ${stdout}`);
  assert.ok(/^total: \d+ passed, \d+ failed, \d+ skipped$/.test(lines[lines.length - 1]), `last line: ${lines[lines.length - 1]}`);
  assert.is(code, failed.length ? 1 : 0, `exit code with ${failed.length} failing case(s); stderr: ${stderr}`);
  assert.is(failed.length, 0, failed.join('\n'));
}));

test('CLI: an unknown group is a usage error (exit 2)', timed(20_000, async () => {
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [join(DIST, CLI), 'conformance', mnt, '--group', 'nosuch'], { stdio: 'ignore' });
    child.on('close', resolve);
  });
  assert.is(code, 2);
}));

test.run();
