/**
 * Loading a filesystem from a module: what spawnMount's server process and each
 * thread of a threaded session do (a JavaScript object cannot cross a process or
 * a thread: each builds its own from the same spec).
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute } from 'node:path';
import type { FileSystem } from './filesystem.js';

/** Where a filesystem comes from: `module`'s export `export` (default "default"): a
 * FileSystem, or a function of `arg` returning one (or a promise of one). */
export interface FileSystemSpec {
  /** An absolute path or a package name, as `import()` takes it. */
  module: string;
  export?: string;
  /** Passed to the export when it is a function (JSON-serialisable: it crosses threads and processes). */
  arg?: unknown;
}

/** Imports `spec.module` and builds its filesystem; throws an Error that names the module. */
export async function loadFileSystem(spec: FileSystemSpec): Promise<FileSystem> {
  const name = spec.export ?? 'default';
  let mod: Record<string, unknown>;
  try {
    mod = await import(isAbsolute(spec.module) ? pathToFileURL(spec.module).href : spec.module) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`cannot load module ${spec.module}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  const exp = mod[name];
  if (exp === undefined) throw new Error(`module ${spec.module} has no export "${name}"`);
  let made: unknown = exp;
  if (typeof exp === 'function' && !/^class\s/.test(Function.prototype.toString.call(exp))) {
    try {
      made = await (exp as (arg: unknown) => unknown)(spec.arg);
    } catch (e) {
      throw new Error(`export "${name}" of ${spec.module} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }
  if (!made || typeof made !== 'object') throw new Error(`export "${name}" of ${spec.module} gave ${typeof made}, not a FileSystem`);
  return made as FileSystem;
}
