// fuse-native-server.cjs: a path-based passthrough of SRC on MNT with the npm package
// `fuse-native` (libfuse 2 high-level API, its bundled libfuse.so, prebuilt N-API binary),
// for bench/peers.sh.
//
//   NODE_PATH=CACHE/node_modules node fuse-native-server.cjs SRC MNT [default_permissions]
//
// Every handler is a synchronous fs call on SRC + path (fuse-native hands each request
// from libfuse's fuse_loop_mt threads to the JS thread and waits for the answer).
// Options: entry_timeout=1, attr_timeout=1 (fuse-native passes entryTimeout/attrTimeout
// through; these are also libfuse 2's defaults), fsname=fusenative-peer, subtype=fusenative,
// big_writes (libfuse 2 otherwise limits WRITE to 4 KiB; with it, 128 KiB; fuse-native has
// no option for it, so _fuseOptions is extended), and default_permissions when asked.
// Prints READY once INIT is answered; on SIGTERM/SIGINT unmounts and exits.
'use strict';
const fs = require('fs');
const Fuse = require('fuse-native');

const [src, mnt, extra] = process.argv.slice(2);
if (!src || !mnt) {
  console.error('usage: fuse-native-server.cjs SRC MNT [default_permissions]');
  process.exit(2);
}
const P = (p) => (p === '/' ? src : src + p);
const errno = (e) => (typeof e.errno === 'number' && e.errno < 0 ? e.errno : Fuse.EIO);
// run f synchronously; answer cb(0, value) or cb(-errno)
const sync = (cb, f) => {
  let v;
  try {
    v = f();
  } catch (e) {
    return cb(errno(e));
  }
  return cb(0, v);
};
// read/write answer the byte count (or -errno) as the first argument
const count = (cb, f) => {
  let n;
  try {
    n = f();
  } catch (e) {
    return cb(errno(e));
  }
  return cb(n);
};

const ops = {
  init: (cb) => cb(0),
  getattr: (p, cb) => sync(cb, () => fs.lstatSync(P(p))),
  fgetattr: (p, fd, cb) => sync(cb, () => fs.fstatSync(fd)),
  access: (p, mode, cb) => sync(cb, () => fs.accessSync(P(p), mode)),
  statfs: (p, cb) => sync(cb, () => {
    const s = fs.statfsSync(P(p));
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
      files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 };
  }),
  readdir: (p, cb) => sync(cb, () => fs.readdirSync(P(p))),
  open: (p, flags, cb) => sync(cb, () => fs.openSync(P(p), flags)),
  create: (p, mode, cb) => sync(cb, () => fs.openSync(P(p), fs.constants.O_CREAT | fs.constants.O_RDWR, mode)),
  read: (p, fd, buf, len, pos, cb) => count(cb, () => fs.readSync(fd, buf, 0, len, pos)),
  write: (p, fd, buf, len, pos, cb) => count(cb, () => fs.writeSync(fd, buf, 0, len, pos)),
  flush: (p, fd, cb) => cb(0),
  fsync: (p, datasync, fd, cb) => sync(cb, () => (datasync ? fs.fdatasyncSync(fd) : fs.fsyncSync(fd))),
  release: (p, fd, cb) => sync(cb, () => fs.closeSync(fd)),
  truncate: (p, size, cb) => sync(cb, () => fs.truncateSync(P(p), size)),
  ftruncate: (p, fd, size, cb) => sync(cb, () => fs.ftruncateSync(fd, size)),
  unlink: (p, cb) => sync(cb, () => fs.unlinkSync(P(p))),
  mkdir: (p, mode, cb) => sync(cb, () => fs.mkdirSync(P(p), { mode })),
  rmdir: (p, cb) => sync(cb, () => fs.rmdirSync(P(p))),
  rename: (a, b, cb) => sync(cb, () => fs.renameSync(P(a), P(b))),
  link: (a, b, cb) => sync(cb, () => fs.linkSync(P(a), P(b))),
  symlink: (target, p, cb) => sync(cb, () => fs.symlinkSync(target, P(p))),
  readlink: (p, cb) => sync(cb, () => fs.readlinkSync(P(p))),
  chmod: (p, mode, cb) => sync(cb, () => fs.chmodSync(P(p), mode)),
  chown: (p, uid, gid, cb) => sync(cb, () => fs.lchownSync(P(p), uid, gid)),
  utimens: (p, atime, mtime, cb) => sync(cb, () => fs.lutimesSync(P(p), atime / 1000, mtime / 1000)),
};

class PeerFuse extends Fuse {
  _fuseOptions() {
    const o = super._fuseOptions();
    return o ? o + ',big_writes' : '-obig_writes';
  }
}

const fuse = new PeerFuse(mnt, ops, {
  fsname: 'fusenative-peer', subtype: 'fusenative', entryTimeout: 1, attrTimeout: 1,
  defaultPermissions: extra === 'default_permissions', timeout: false,
});
fuse.mount((err) => {
  if (err) {
    console.error('mount:', err.message);
    process.exit(1);
  }
  console.log('READY');
});
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // fuse-native's unmount runs `fusermount -uz` (libfuse 2's, often absent); the
  // benchmark unmounts with umount(8) if this leaves the mount behind.
  fuse.unmount(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
