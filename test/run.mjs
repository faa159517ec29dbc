// Runs every compiled test file (dist/test/**/*.test.js) in its own Node
// process with a time-out, sums uvu's totals and prints one closing line
// "N passed, M failed". A file that crashes or times out counts as failed.
// Afterwards, any FUSE mount a test left behind is detached and reported.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

const FILE_TIMEOUT_MS = Number(process.env.TSFUSE_TEST_FILE_TIMEOUT_MS ?? 10 * 60 * 1000);
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
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
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

function leftoverMounts() {
  return readFileSync('/proc/mounts', 'utf8').split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2]?.startsWith('fuse') && f[0]?.startsWith('tsfuse-test'))
    .map((f) => f[1].replace(/\\040/g, ' '));
}

// Mounts that existed before this run are not ours to clean up.
const before = new Set(leftoverMounts());
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
const left = leftoverMounts().filter((m) => !before.has(m));
for (const m of left) {
  console.log(`!! a test left ${m} mounted: detaching it`);
  try { execFileSync('umount', ['-l', m]); } catch { /* reported above */ }
}
if (left.length) failed += 1;
if (skipped) console.log(`\n(${skipped} tests skipped: see the files marked "skipped" above)`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
