// Runs every compiled test file (dist/test/**/*.test.js) in its own Node
// process with a time-out, sums uvu's totals and prints one closing line
// "N passed, M failed". A file that crashes or times out counts as failed.
// Every test file gets TMPDIR set to a directory private to this run, so
// afterwards any mount a test left behind under it is detached and reported —
// and mounts of other runs (another checkout, a concurrent run) are left alone.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

const FILE_TIMEOUT_MS = Number(process.env.TSFUSE_TEST_FILE_TIMEOUT_MS ?? 20 * 60 * 1000); // the package test packs and builds twice
const root = new URL('../dist/test/', import.meta.url).pathname;
const only = process.argv.slice(2);

function list(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? list(p) : n.endsWith('.test.js') ? [p] : [];
  }).sort();
}

function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TMPDIR: runDir } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    const timer = setTimeout(() => {
      process.stdout.write(`\n!! ${file}: timed out after ${FILE_TIMEOUT_MS} ms, killing it\n`);
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
      const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        resolve({ passed: 0, failed: 1, note: `no totals (exit ${code ?? signal})` });
      } else {
        // uvu's Total counts the tests that ran (skipped ones are not in it).
        const failed = Math.max(0, total - passed) + (code !== 0 && total === passed ? 1 : 0);
        const notes = [code === 0 ? '' : `exit ${code ?? signal}`, skipped ? `${skipped} skipped` : ''].filter(Boolean);
        resolve({ passed, failed, skipped, note: notes.join(', ') });
      }
    });
  });
}

// Made traversable: tests switch to uid 65534 for permission checks below it.
const runDir = mkdtempSync(join(tmpdir(), 'tsfuse-run-'));
chmodSync(runDir, 0o755);

/** Mount points (of any type) below this run's directory, deepest first. */
function leftoverMounts() {
  return readFileSync('/proc/mounts', 'utf8').split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ').replace(/\\011/g, '\t').replace(/\\012/g, '\n'))
    .filter((m) => m?.startsWith(`${runDir}/`))
    .reverse();
}
let passed = 0;
let failed = 0;
let skipped = 0;
const files = list(root).filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
for (const f of files) {
  console.log(`\n### ${f.slice(root.length)}`);
  const r = await runFile(f);
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped ?? 0;
  if (r.note) console.log(`### ${f.slice(root.length)}: ${r.note}`);
}
const left = leftoverMounts();
for (const m of left) {
  console.log(`!! a test left ${m} mounted: detaching it`);
  try { execFileSync('umount', ['-l', m]); } catch { /* reported above */ }
}
if (left.length) failed += 1;
// Removed only when nothing is mounted below it (a recursive delete must not reach a source through a mount).
if (leftoverMounts().length === 0) rmSync(runDir, { recursive: true, force: true });
else console.log(`!! ${runDir} kept: still mounted below it`);
if (skipped) console.log(`\n(${skipped} tests skipped: see the files marked "skipped" above)`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
