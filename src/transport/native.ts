/**
 * The native addon (native/tsfuse.cc), loaded once. It only does what
 * JavaScript cannot; see the C++ file for the contract of each function.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface NativeReader {
  start(): void;
  stop(): void;
}

export interface NativeUring {
  /** Sets up the rings and registers the entries (throws on failure, leaving nothing). */
  start(): void;
  /** The reply (out header, then body) for the request in entry `ent`: bytes, or -errno. */
  commit(ent: number, bytes: Uint8Array, len: number): number;
  commitv(ent: number, chunks: Uint8Array[]): number;
  /** Answers the request in `ent` with -errno (0: success, no body) and hands the entry back. */
  answer(ent: number, errno: number): number;
  /** Closes the rings (after the session ended). */
  stop(): void;
}

export interface Native {
  openDevice(path: string): number;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  cloneDevice(fd: number): number;
  /** close(2): 0 or -errno. */
  close(fd: number): number;
  /** FUSE_DEV_IOC_BACKING_OPEN: a backing id (> 0) for `fd`, or -errno. */
  backingOpen(devFd: number, fd: number): number;
  /** FUSE_DEV_IOC_BACKING_CLOSE: 0 or -errno. */
  backingClose(devFd: number, id: number): number;
  setNonBlocking(fd: number, on: boolean): void;
  socketpair(): [number, number];
  /** One fd received with SCM_RIGHTS, or -1 at end of stream. */
  recvFd(sock: number): number;
  /** Sends `fd` over the unix socket `sock` (SCM_RIGHTS). */
  sendFd(sock: number, fd: number): void;
  dup2(oldfd: number, newfd: number): void;
  /** The first `length` bytes of file `fd`, mapped shared and writable (stores outlive the
   * process). Unmapped when the ArrayBuffer is collected. */
  mapShared(fd: number, length: number): ArrayBuffer;
  /** One datagram to the unix socket `path` ('@' first: abstract); 0 or -errno. */
  notifySocket(path: string, message: string): number;
  /** Bytes written or -errno; never throws. */
  write(fd: number, bytes: Uint8Array, len: number): number;
  /** Bytes written or -errno; never throws. */
  writev(fd: number, chunks: Uint8Array[]): number;
  Reader: new (fd: number, buffer: Uint8Array, onRead: (n: number) => boolean | void) => NativeReader;
  /** FUSE over io_uring (native/uring.cc): `onRequest(n, ent)` gets each request assembled in
   * `buffer` (n > 0) or a failed entry (n < 0); the reply goes back with commit/commitv. */
  Uring: new (devFd: number, queues: number, entries: number, payloadSize: number, buffer: Uint8Array,
    onRequest: (n: number, ent: number) => void) => NativeUring;
}

/**
 * The package root: the nearest directory above this module with tsfuse's package.json
 * (dist/src/transport → three levels up in the repository and in an installed package).
 */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'tsfuse') return dir;
    dir = dirname(dir);
  }
  throw new Error('tsfuse native addon: cannot find the package root (no package.json named tsfuse above ' +
    `${fileURLToPath(import.meta.url)}): reinstall the package`);
}

/**
 * Loads the addon with node-gyp-build: a local build (build/Release/tsfuse.node, made by
 * `npm run build:native` or by the install script where no prebuild fits) wins, else the
 * prebuilt N-API binary shipped in prebuilds/<platform>-<arch>/, which serves every Node ≥ 20.
 */
function load(): Native {
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const gypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return gypBuild(root) as Native;
  } catch (e) {
    throw new Error(`tsfuse native addon not found for ${process.platform}-${process.arch} under ${root} ` +
      `(${(e as Error).message.split('\n')[0]}): no prebuilt binary fits this machine, so it must be built: ` +
      'install a C++ compiler, make and python3, then run `npm rebuild tsfuse` (or `npm run build:native` in a checkout)');
  }
}

/** The native addon (prebuilt, or built by node-gyp): /dev/fuse I/O, mount(2), ioctls, the *at syscalls. */
export const native: Native = load();

/** mount(2) flags (linux/mount.h). */
export const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, DIRSYNC: 128, NOATIME: 1024, NODIRATIME: 2048 } as const;
/** umount2(2) flags. */
export const MNT = { FORCE: 1, DETACH: 2 } as const;
