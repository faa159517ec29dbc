// Shared by the inode-layer end-to-end tests: test/fixtures/serve-inode.ts
// (memfs, or the generated "gen" tree) in a child process, driven by JSON
// commands, on a fresh mount point per test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, DIST, sleep, tempDir, WAIT_MS } from './helpers.js';
import { JsonFixture, type Answer, type ServerStats } from './fixture.js';

const FIXTURE = join(DIST, 'test/fixtures/serve-inode.js');

export interface StatsAnswer extends Answer { stats: ServerStats; unknownNodes: number }

export class Fixture extends JsonFixture {
  /** Starts serve-inode on `mnt` and waits for READY. */
  static start(mnt: string, kind: 'memfs' | 'gen', opts?: object): Promise<Fixture> {
    return new Fixture(process.execPath, [FIXTURE, mnt, kind, ...(opts ? [JSON.stringify(opts)] : [])], mnt).ready();
  }

  async stats(): Promise<StatsAnswer> {
    return (await this.ok({ cmd: 'stats' })) as StatsAnswer;
  }

  /** Names the server's tree knows below `path`. */
  async names(path = ''): Promise<string[]> {
    return ((await this.ok({ cmd: 'tree', path })) as Answer & { names: string[] }).names;
  }
}

/** A fresh mount point served by the fixture; always stopped, unmounted and removed afterwards. */
export async function withFixture(kind: 'memfs' | 'gen', opts: object | undefined, fn: (f: Fixture, mnt: string) => Promise<void>): Promise<void> {
  const mnt = newMountpoint();
  let f: Fixture | undefined;
  try {
    f = await Fixture.start(mnt, kind, opts);
    await fn(f, mnt);
  } finally {
    if (f) await f.stop();
    cleanup(mnt);
  }
}

/** Polls stats until `pred` holds (or `ms` pass); returns the last stats either way (the
 * caller asserts on them). For what arrives asynchronously: FORGETs, RELEASEs. */
export async function pollStats(f: Fixture, pred: (s: StatsAnswer) => boolean, ms = WAIT_MS): Promise<StatsAnswer> {
  const end = Date.now() + ms;
  let s = await f.stats();
  while (!pred(s) && Date.now() < end) {
    await sleep(50);
    s = await f.stats();
  }
  return s;
}

/** Mount points this test file used. */
const used: string[] = [];
export function newMountpoint(): string {
  const mnt = tempDir();
  used.push(mnt);
  return mnt;
}

/** Our mount points still listed in /proc/mounts. */
export function ourMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => used.includes(l.split(' ')[1]));
}
