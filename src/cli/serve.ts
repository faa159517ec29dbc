/**
 * Foreground serving for the CLI: mount, report readiness, unmount on
 * SIGINT/SIGTERM (lazily if busy, saying so), exit non-zero on failure.
 */
import { mount, type FileSystem, type SessionOptions } from '../api/index.js';

export async function serveForeground(mountpoint: string, fs: FileSystem, opts: SessionOptions, what: string): Promise<number> {
  let session;
  try {
    session = await mount(mountpoint, fs, opts);
  } catch (e) {
    process.stderr.write(`tsfuse: mounting ${what} on ${mountpoint} failed: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`tsfuse: ${what} mounted on ${session.mountpoint} (Ctrl-C or \`tsfuse umount ${session.mountpoint}\` to stop)\n`);
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    try {
      await session.unmount();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
      process.stderr.write(`tsfuse: ${session.mountpoint} is busy; detaching it lazily (${sig})\n`);
      await session.unmount({ lazy: true });
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const err = await session.closed;
  if (err) {
    process.stderr.write(`tsfuse: session on ${session.mountpoint} ended: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(`tsfuse: unmounted ${session.mountpoint}\n`);
  return 0;
}
