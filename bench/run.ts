// `npm run bench`: the codec suite, then the stat() round-trip benchmark (bash bench/rtt.sh,
// root), then the peer suite (bash bench/peers.sh, root: tsfuse's passthrough against the
// native source, libfuse's passthrough_ll, go-fuse and fuse-native; writes bench/results/).
// BENCH picks the parts, comma- or space-separated: BENCH=peers, BENCH=codec,rtt (default all).
// The scripts read their own settings from the environment (REPS, SECS, QUICK, SERVERS, ...).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCodec } from './codec.js';

const root = fileURLToPath(new URL('../..', import.meta.url)); // dist/bench/run.js → package root
const PARTS = ['codec', 'rtt', 'peers'] as const;
const wanted = (process.env.BENCH ?? PARTS.join(',')).split(/[\s,]+/).filter(Boolean);
for (const w of wanted) {
  if (!(PARTS as readonly string[]).includes(w)) {
    console.error(`bench: unknown part ${JSON.stringify(w)} in BENCH (known: ${PARTS.join(', ')})`);
    process.exit(2);
  }
}

let current: ReturnType<typeof spawn> | undefined;
// Let Ctrl-C reach the script (same process group) so its trap unmounts; just wait for it.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => current?.kill('SIGTERM'));

function script(file: string): Promise<number> {
  return new Promise((resolve) => {
    current = spawn('bash', [file], { cwd: root, stdio: 'inherit', env: process.env });
    current.on('exit', (code, signal) => {
      current = undefined;
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

let failed = 0;
for (const part of PARTS) {
  if (!wanted.includes(part)) continue;
  if (part === 'codec') await runCodec();
  else {
    const code = await script(`bench/${part}.sh`);
    if (code !== 0) {
      console.error(`bench: bench/${part}.sh exited with ${code}`);
      failed = code;
    }
  }
  console.log('');
}
process.exit(failed);
