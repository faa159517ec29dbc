/**
 * Crash takeover without remount (DESIGN.md "Lifecycle"; ../shared/kernel-probes/crashtest.c).
 *
 * The supervisor mounts, keeps the /dev/fuse fd (it never reads it: while it
 * holds the fd, the kernel keeps the connection when the server dies), and
 * runs the server as a child process that receives the fd over a unix socket
 * (SCM_RIGHTS). The server journals what the kernel holds (src/api/journal.ts).
 * When it dies, a new server gets the same fd, restores the tables from the
 * journal, answers no INIT (the kernel sends none), writes FUSE_NOTIFY_RESEND
 * and carries on. Restarts are bounded (a request that crashes every server it
 * is re-sent to would loop): a server that fails by itself is restarted with a
 * growing back-off, and after more than `maxRestarts` (10) deaths within
 * `window` (60 s) the supervisor gives up, detaches the mount lazily and says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkMountpoint, Connection, mountDevice, native, resolveMountOptions, unmount, type KernelOffer, type MountedDevice, type Negotiated,
} from '../transport/index.js';
import type { FileSystem } from './filesystem.js';
import { isRestorable, Journal, type JournalRecord } from './journal.js';
import { RequestLedger } from './ledger.js';
import { Server } from './server.js';
import { FuseSession, sessionLog, splitSessionOptions, type SessionOptions } from './session.js';
import { DaemonStatus, sdNotify } from './daemon.js';

const SUP_ENV = 'TSFUSE_SUPERVISED';

/** What a supervised server is told (in its environment). */
export interface SupervisedSpec {
  /** The unix socket (an fd of this process) the /dev/fuse fd arrives on. */
  sock: number;
  /** Path of the takeover journal. */
  journal: string;
  /** A restart: take the session over instead of answering INIT. */
  takeover: boolean;
  /** The mount point being served. */
  mountpoint: string;
  /** How it was mounted: mount(2) as root, or through fusermount3. */
  method: 'mount' | 'fusermount';
}

/** The spec of this process if a supervisor started it (removed from the environment). */
export function supervisedSpec(): SupervisedSpec | undefined {
  const v = process.env[SUP_ENV];
  delete process.env[SUP_ENV];
  if (!v) return undefined;
  return JSON.parse(v) as SupervisedSpec;
}

/**
 * The server side: receives the fd, then either serves INIT (first start) or takes the
 * session over from the journal (restart), journaling from then on. Resolves once it
 * serves, after telling the supervisor.
 */
export async function mountSupervised(spec: SupervisedSpec, fs: FileSystem, options: SessionOptions): Promise<FuseSession> {
  const { serverOpts, mountOpts, threadOpts } = splitSessionOptions(options);
  if ((threadOpts.threads ?? 1) > 1) {
    throw Object.assign(new Error('invalid option threads: a supervised session (crash takeover) runs one thread'), { code: 'EINVAL', option: 'threads' });
  }
  const log = sessionLog(serverOpts);
  const o = resolveMountOptions(mountOpts);
  if (o.ioUring) throw Object.assign(new Error('invalid option io_uring: a supervised session (crash takeover) reads /dev/fuse'), { code: 'EINVAL', option: 'ioUring' });
  const fd = native.recvFd(spec.sock);
  if (fd < 0) throw new Error('the supervisor closed its socket without sending the /dev/fuse fd');
  native.setNonBlocking(fd, true);
  const dev: MountedDevice = { fd, mountpoint: spec.mountpoint, method: spec.method };
  const server = new Server(fs, serverOpts);
  const tree = isRestorable(fs) ? fs : undefined;
  const journal = new Journal(spec.journal);
  const ledger = new RequestLedger(journal);
  const attach = () => {
    server.journal = journal;
    server.ledger = ledger;
    if (tree) {
      tree.journal = journal;
      ledger.appendHandle = (fh, nodeid) => tree.isAppend(fh, nodeid);
    }
  };
  let init: JournalRecord | undefined;
  let conn: Connection;
  if (!spec.takeover) {
    attach();
    conn = await Connection.serve(dev, o, server, log);
    init = ['I', server.negotiated, server.offer];
  } else {
    const t0 = performance.now();
    const records = Journal.read(spec.journal);
    init = records.find((r) => r[0] === 'I');
    if (!init) throw new Error(`takeover: the journal ${spec.journal} has no INIT record (the first server died before INIT was answered)`);
    const [, negotiated, offer] = init as [string, Negotiated, KernelOffer]; // numbers: the journal gives them back as such
    conn = await Connection.resume(dev, o, server, offer, negotiated, async () => {
      const rep = tree ? await tree.restore(records, log) : undefined;
      ledger.load(records);
      journal.rewrite([init!, ...(tree ? tree.snapshot() : []), ...ledger.snapshot()]);
      attach();
      log(`takeover: ${rep ? `restored ${rep.nodes} node id(s) and ${rep.files} open file(s)` : 'no inode table to restore (not an InodeTree or a Vfs)'}` +
        `${rep && (rep.lostNodes || rep.lostFiles) ? `; ${rep.lostNodes} node id(s) and ${rep.lostFiles} file(s) lost (ESTALE)` : ''}` +
        ` in ${(performance.now() - t0).toFixed(1)} ms; asking the kernel to re-send what the dead server read`);
    }, log);
  }
  journal.onLarge = () => journal.rewrite([init!, ...(tree ? tree.snapshot() : []), ...ledger.snapshot()]);
  try {
    writeSync(spec.sock, 'R');
  } catch { /* the supervisor is gone: serve on anyway */ }
  const session = new FuseSession(conn, server);
  void session.closed.then(() => journal.close());
  return session;
}

/** How the supervisor restarts a server that dies. */
export interface SuperviseOptions {
  /** Give up when the server died more than this many times within `window` ms. Default 10. */
  maxRestarts?: number;
  /** Default 60 000. */
  window?: number;
  /** Keep a spare server started and waiting for the fd, so that a takeover skips Node's
   * start-up (default true; costs one idle process). */
  standby?: boolean;
  /** Where the journal is kept. Default /run/tsfuse (root) or the temp directory. */
  stateDir?: string;
  /** Where the supervisor's log lines go. Default: stderr. */
  log?: (line: string) => void;
}

/**
 * The supervisor process: mounts `mountpoint`, starts `serverArgv` (a program that serves
 * with serveUntilUnmounted: the CLI with -f, spawnMount's child), restarts it when it
 * dies, and returns the exit status once the mount is gone.
 */
export async function runSupervisor(mountpoint: string, options: SessionOptions, serverArgv: string[], what: string, sopts: SuperviseOptions = {}): Promise<number> {
  const status = DaemonStatus.fromEnv();
  const log = sopts.log ?? ((l: string) => process.stderr.write(`tsfuse: ${l}\n`));
  const maxRestarts = sopts.maxRestarts ?? 10;
  const window = sopts.window ?? 60_000;
  let dev: MountedDevice;
  try {
    const o = resolveMountOptions(splitSessionOptions(options).mountOpts);
    // The rings die with the server that registered them, and a new server cannot take
    // over requests the kernel queued on them: takeover serves /dev/fuse only.
    if (o.ioUring) throw Object.assign(new Error('invalid option io_uring: a supervised session (crash takeover) reads /dev/fuse'), { code: 'EINVAL' });
    dev = await mountDevice(checkMountpoint(mountpoint, o, log), o);
  } catch (e) {
    process.stderr.write(`tsfuse: mounting ${what} on ${mountpoint} failed: ${(e as Error).message}\n`);
    status?.failed();
    return 1;
  }
  const mnt = dev.mountpoint;
  const dir = sopts.stateDir ?? (process.geteuid?.() === 0 ? '/run/tsfuse' : tmpdir());
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const journalPath = join(dir, `journal-${process.pid}-${Date.now()}.msgpack`);
  const deaths: number[] = [];
  const failures: number[] = [];
  let child: ChildProcess | undefined;
  let stopping = false;
  let serving = false;
  let restarts = 0;

  const detach = async () => {
    try { await unmount(mnt, { method: dev.method === 'fd' ? undefined : dev.method, lazy: true }); } catch { /* gone already */ }
  };
  interface Started { c: ChildProcess; ready: Promise<boolean>; give(): void }
  /** Spawns a server process; it waits for the fd until `give()`. `ready` resolves with
   * true once it serves, false if it died first. */
  const spawnServer = (takeover: boolean): Started => {
    const [mine, theirs] = native.socketpair();
    const spec: SupervisedSpec = { sock: 3, journal: journalPath, takeover, mountpoint: mnt, method: dev.method === 'fd' ? 'mount' : dev.method };
    // The server's output goes through us: our stdout/stderr are the starting command's
    // pipes until we are ready and the log after; a server given those pipes directly
    // would keep them open (a `$(tsfuse …)` capture would never end) and die of EPIPE.
    const c = spawn(serverArgv[0], serverArgv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', theirs],
      env: { ...process.env, [SUP_ENV]: JSON.stringify(spec), TSFUSE_STATUS_FD: '', NOTIFY_SOCKET: '' },
    });
    closeSync(theirs);
    c.stdout!.on('data', (d: Buffer) => { process.stdout.write(d); });
    c.stderr!.on('data', (d: Buffer) => { process.stderr.write(d); });
    let said = false;
    let ready!: (ok: boolean) => void;
    const readyP = new Promise<boolean>((r) => { ready = r; });
    const sock = new Socket({ fd: mine, readable: true, writable: false });
    sock.on('data', () => { if (!said) { said = true; ready(true); } });
    sock.on('error', () => {});
    c.on('exit', (code, signal) => {
      sock.destroy();
      if (!said) ready(false);
      if (standby?.c === c) standby = undefined; // a spare that died unused: made again when needed
      void died(c, code, signal);
    });
    const give = () => {
      try {
        native.sendFd(mine, dev.fd);
      } catch (e) {
        log(`supervisor: passing the /dev/fuse fd to the server failed: ${(e as Error).message}`);
      }
    };
    return { c, ready: readyP, give };
  };
  /** A spare server, started and waiting for the fd: a takeover then skips Node's start-up
   * and the filesystem's construction (most of its time). */
  let standby: Started | undefined;
  const prepareStandby = () => {
    if (!stopping && sopts.standby !== false && !standby) standby = spawnServer(true);
  };
  /** Makes a server the serving one (the spare when it is a takeover) and gives it the fd. */
  const start = (takeover: boolean): Promise<boolean> => {
    const s = takeover && standby && standby.c.exitCode === null && standby.c.signalCode === null ? standby : spawnServer(takeover);
    if (s === standby) standby = undefined;
    child = s.c;
    s.give();
    return s.ready;
  };

  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => { finish = r; });
  const end = (code: number) => {
    standby?.c.kill('SIGKILL');
    standby = undefined;
    try { closeSync(dev.fd); } catch { /* closed */ }
    new Journal(journalPath).close(true);
    finish(code);
  };

  const died = async (c: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (c !== child) return;
    child = undefined;
    if (!serving) return end(1); // the first server never served: the start failed
    if (code === 0 || stopping) return end(code === 0 ? 0 : 1); // unmounted: the session is over
    const now = Date.now();
    deaths.push(now);
    while (deaths.length && deaths[0] < now - window) deaths.shift();
    const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    if (deaths.length > maxRestarts) {
      log(`supervisor: the server ${how}; it died ${deaths.length} times within ${window / 1000} s: giving up. ` +
        `${mnt} is detached lazily (processes using it get errors)`);
      await detach();
      return end(1);
    }
    // A server killed from outside (SIGKILL: an operator, the OOM killer; SIGTERM, SIGINT)
    // is replaced at once: a takeover should be quick. One that fails by itself (an exit
    // status, SIGSEGV, SIGABRT) will likely fail again: restarted ever more slowly, 100 ms,
    // 200 ms … 5 s, from its second failure in the window. Both count toward giving up.
    const external = signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT';
    if (!external) failures.push(now);
    while (failures.length && failures[0] < now - window) failures.shift();
    const delay = external || failures.length <= 1 ? 0 : Math.min(5000, 100 * 2 ** (failures.length - 2));
    log(`supervisor: the server ${how}; restarting it${delay ? ` in ${delay} ms` : ''} (takeover ${++restarts})`);
    setTimeout(() => {
      if (stopping) return end(0);
      const t0 = performance.now();
      void start(true).then((ok) => {
        if (ok) {
          log(`supervisor: takeover ${restarts}: the new server (pid ${child?.pid}) serves ${mnt} after ${(performance.now() - t0).toFixed(0)} ms`);
          prepareStandby();
        }
      });
    }, delay);
  };

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    sdNotify('STOPPING=1');
    standby?.c.kill('SIGKILL');
    standby = undefined;
    if (child) child.kill('SIGTERM'); // it unmounts and exits 0
    else { await detach(); end(0); }
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('SIGHUP', () => {});

  if (!(await start(false))) {
    process.stderr.write(`tsfuse: mounting ${what} on ${mnt} failed: the server exited before INIT was answered\n`);
    stopping = true;
    await detach();
    status?.failed();
    await finished;
    return 1;
  }
  serving = true;
  prepareStandby();
  if (status) status.ready({ mountpoint: mnt, supervisor: process.pid });
  else {
    process.stdout.write(`tsfuse: ${what} mounted on ${mnt}, supervised (a server that dies is restarted without unmounting)\n`);
    sdNotify(`READY=1\nMAINPID=${process.pid}`);
  }
  return finished;
}
