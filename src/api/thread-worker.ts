/**
 * One extra thread of a threaded session (session.ts, option `threads`): builds its own
 * filesystem from the spec, and serves the requests that come to its own clone of the
 * session's /dev/fuse fd (FUSE_DEV_IOC_CLONE) on its own event loop. The kernel hands each
 * request to whichever fd reads it first.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Connection, native, type KernelOffer, type Negotiated, type ResolvedMountOptions } from '../transport/index.js';
import { Server, type ServerOptions } from './server.js';
import { loadFileSystem, type FileSystemSpec } from './load.js';

interface ThreadData {
  index: number;
  fd: number;
  mountpoint: string;
  options: ResolvedMountOptions;
  serverOpts: ServerOptions;
  offer: KernelOffer;
  negotiated: Negotiated;
  spec: FileSystemSpec;
}

const d = workerData as ThreadData;
const port = parentPort!;
const log = (l: string) => process.stderr.write(`tsfuse[thread ${d.index}]: ${l}\n`);

let joined = false;
try {
  const fs = await loadFileSystem(d.spec);
  const server = new Server(fs, { ...d.serverOpts, log });
  joined = true; // from here the Connection owns the fd (and closes it, whatever happens)
  const conn = await Connection.join({ fd: d.fd, mountpoint: d.mountpoint, method: 'fd' }, d.options, server, d.offer, d.negotiated, log);
  port.on('message', (m: unknown) => { if (m === 'stats') port.postMessage({ stats: server.stats() }); });
  port.postMessage({ ready: true });
  const error = await conn.closed;
  port.postMessage({ stats: server.stats() });
  port.postMessage({ ended: error ? error.message : null });
  port.close();
} catch (e) {
  if (!joined) native.close(d.fd); // this thread owns the fd
  port.postMessage({ error: (e as Error).message });
  port.close();
}
