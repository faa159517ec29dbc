// Shared by the passthrough end-to-end tests: the serve-passthrough fixture in
// a child process (JSON commands on stdin), a fresh SRC/MNT per test, and
// small helpers for client processes.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, DIST, forceUnmount, isMounted, tempDir, errCode } from './helpers.js';
import { JsonFixture, type Answer, type ServerStats } from './fixture.js';

const FIXTURE = join(DIST, 'test/fixtures/serve-passthrough.js');

export type Mode = 'never' | 'prefer' | 'mandatory';
export interface PtOptions { inodeHandles?: Mode; nofile?: number; entryTimeout?: number; attrTimeout?: number; defaultPermissions?: boolean }

export interface StatsAnswer extends Answer {
  stats: ServerStats;
  fds: number | null;
  nofile: number;
}

export class Fixture extends JsonFixture {
  /** Starts the fixture (through `prlimit --nofile=N:N` if `nofile`) and waits for READY. */
  static start(src: string, mnt: string, opts: PtOptions, nofile?: number): Promise<Fixture> {
    const args = [FIXTURE, src, mnt, JSON.stringify(opts)];
    return (nofile
      ? new Fixture('prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, ...args], mnt)
      : new Fixture(process.execPath, args, mnt)).ready();
  }
  async stats(): Promise<StatsAnswer> {
    return (await this.ok({ cmd: 'stats' })) as StatsAnswer;
  }
  async fdList(): Promise<string[]> {
    const a = await this.send({ cmd: 'fds' });
    return (a.fds as string[] | undefined) ?? [`fds failed: ${a.error}`];
  }
}

export interface Env { base: string; src: string; mnt: string; fx: Fixture }

/** Every base directory made here (a test file's last test checks none is still mounted). */
export const bases: string[] = [];

/**
 * A fresh SRC and MNT (MNT always under `base`; SRC on its own tmpfs if asked)
 * served by the fixture; stopped, unmounted and removed afterwards.
 */
export async function withPt(opts: PtOptions, fn: (e: Env) => Promise<void> | void, how: { tmpfs?: boolean; ext4?: boolean; nofile?: number; src?: string } = {}): Promise<void> {
  const base = tempDir('tsfuse-test-pt-');
  bases.push(base);
  const src = how.src ?? join(base, 'src');
  const mnt = join(base, 'mnt');
  if (!how.src) mkdirSync(src);
  mkdirSync(mnt);
  let tmpfs = false;
  let fx: Fixture | undefined;
  try {
    if (how.tmpfs) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tsfuse-test-tmpfs', src]);
      tmpfs = true;
    } else if (how.ext4) { // a loop-mounted ext4 image: the same source on every machine
      const img = join(base, 'ext4.img');
      execFileSync('truncate', ['-s', '64M', img]);
      execFileSync('mkfs.ext4', ['-q', '-F', img]);
      execFileSync('mount', ['-o', 'loop', img, src]);
      tmpfs = true; // unmounted below like the tmpfs
    }
    fx = await Fixture.start(src, mnt, opts, how.nofile);
    await fn({ base, src, mnt, fx });
  } finally {
    if (fx) await fx.stop();
    forceUnmount(mnt);
    if (tmpfs) {
      try { execFileSync('umount', [src]); } catch { execFileSync('umount', ['-l', src]); }
    }
    if (!isMounted(mnt)) cleanup(base);
  }
}

// ---- small helpers --------------------------------------------------------------

/** The fixture's stderr once it has caught up (JsonFixture.caughtUp: a stats round trip, then one loop turn). */
export async function serverLog(fx: Fixture): Promise<string> {
  await fx.caughtUp();
  return fx.errors();
}

/** A system.posix_acl_* value (<linux/posix_acl_xattr.h>): version 2, then [tag, perm, id] per entry. */
export function acl(...ents: [number, number, number][]): Buffer {
  const b = Buffer.alloc(4 + 8 * ents.length);
  b.writeUInt32LE(2, 0);
  ents.forEach(([tag, perm, id], i) => { b.writeUInt16LE(tag, 4 + 8 * i); b.writeUInt16LE(perm, 6 + 8 * i); b.writeUInt32LE(id, 8 + 8 * i); });
  return b;
}
/** ACL_UNDEFINED_ID: the id of entries that name no user or group. */
export const U = 0xffffffff;
