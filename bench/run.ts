// `npm run bench`: the codec suite, then the stat() round-trip benchmark
// (bash bench/rtt.sh, needs root) with REPS/SECS from the environment.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCodec } from './codec.js';

const root = fileURLToPath(new URL('../..', import.meta.url)); // dist/bench/run.js → package root

await runCodec();
console.log('');
const child = spawn('bash', ['bench/rtt.sh'], { cwd: root, stdio: 'inherit', env: process.env });
// Let Ctrl-C reach rtt.sh (same process group) so its trap unmounts; just wait for it.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
