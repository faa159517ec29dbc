/**
 * The server process of spawnMount (src/api/daemon.ts): argv[2] is a JSON spec
 * { module, export, arg, mountpoint, options }. Imports the module, takes the
 * export (a FileSystem, or a function of `arg` returning one), mounts and serves
 * until unmounted; readiness and failures go to the parent's status pipe.
 */
import { serveUntilUnmounted } from './daemon.js';
import { loadFileSystem } from './load.js';
import { runSupervisor } from './supervisor.js';
import type { FileSystem } from './filesystem.js';

async function main(): Promise<number> {
  let spec: { module: string; export: string; arg?: unknown; mountpoint: string; options: Record<string, unknown>; supervise?: boolean; maxRestarts?: number };
  try {
    spec = JSON.parse(process.argv[2] ?? '');
  } catch {
    process.stderr.write('tsfuse: daemon-child: argv[2] must be the JSON spec spawnMount writes\n');
    return 2;
  }
  if (spec.supervise) { // this process supervises; each server is this program again, unsupervised
    return runSupervisor(spec.mountpoint, spec.options as object, [process.execPath, process.argv[1], JSON.stringify({ ...spec, supervise: false })],
      `${spec.module}#${spec.export}`, { maxRestarts: spec.maxRestarts });
  }
  let fs: FileSystem;
  try {
    fs = await loadFileSystem(spec);
  } catch (e) {
    // The stack first (for debugging the module), the reason last: the parent's DaemonError quotes the last lines.
    const stack = ((e as Error).cause as Error | undefined)?.stack;
    process.stderr.write(`${stack ? `${stack}\n` : ''}tsfuse: loading the filesystem from ${spec.module} failed: ${(e as Error).message ?? e}\n`);
    return 1;
  }
  return serveUntilUnmounted(spec.mountpoint, fs, spec.options as object, `${spec.module}#${spec.export}`);
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`tsfuse: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
