// An in-memory read-write filesystem written only by extending FuseInode.
// Run: node dist/examples/memfs.js MNT
import { constants as B } from 'node:buffer';
import { constants as C } from 'node:fs';
import {
  FuseError, FuseInode, InodeTree, mount, nameToBytes, type Attr, type Context, type Created, type SetattrChanges,
} from '../src/index.js';

const TYPE = C.S_IFMT;
const now = () => Date.now();
/** Offsets are bigints (the kernel's loff_t); a file here is one Buffer, so an end past
 * what a Buffer can hold is EFBIG — what the kernel answers past a filesystem's s_maxbytes. */
function end(offset: bigint, length: bigint | number): number {
  const e = offset + BigInt(length);
  if (e > BigInt(B.MAX_LENGTH)) throw new FuseError('EFBIG');
  return Number(e);
}

/** Any memfs node: owner, times, link count and xattrs live here. */
class MemNode extends FuseInode {
  uid: number; gid: number; atime = now(); mtime = now(); ctime = now(); nlink = 1;
  xattrs = new Map<string, Uint8Array>();
  constructor(mode: number, ctx: { uid: number; gid: number }, public rdev = 0) {
    super(mode);
    this.uid = ctx.uid; this.gid = ctx.gid;
    this.makePersistent(); // the data lives in this object: keep it while it has a name
  }
  size(): number { return 0; }
  static override readonly supports = [
    'setattr', 'mkdir', 'mknod', 'create', 'symlink', 'link', 'unlink', 'rmdir', 'rename', 'readlink', 'read', 'write',
    'fallocate', 'getxattr', 'setxattr', 'listxattr', 'removexattr', 'readdirplus',
  ] as const;
  override getattr(): Attr {
    const size = this.size();
    return { ino: this.nodeid, mode: this.mode, nlink: this.nlink, uid: this.uid, gid: this.gid, rdev: this.rdev,
      size, blocks: Math.ceil(size / 512), blksize: 4096, atime: this.atime, mtime: this.mtime, ctime: this.ctime };
  }
  override setattr(_ctx: Context, c: SetattrChanges): Attr {
    if (c.mode !== undefined) this.mode = (this.mode & TYPE) | (c.mode & 0o7777);
    if (c.uid !== undefined) this.uid = c.uid;
    if (c.gid !== undefined) this.gid = c.gid;
    if (c.size !== undefined) this.truncate(end(c.size, 0));
    if (c.atime !== undefined) this.atime = c.atime === 'now' ? now() : c.atime;
    if (c.mtime !== undefined) this.mtime = c.mtime === 'now' ? now() : c.mtime;
    this.ctime = c.ctime ?? now();
    return this.getattr();
  }
  truncate(_size: number): void { throw new FuseError(this.isDirectory ? 'EISDIR' : 'EINVAL'); }
  override getxattr(_ctx: Context, name: string): Uint8Array {
    const v = this.xattrs.get(name);
    if (!v) throw new FuseError('ENODATA');
    return v;
  }
  override setxattr(_ctx: Context, name: string, value: Uint8Array, flags: number): void {
    if (flags & 1 && this.xattrs.has(name)) throw new FuseError('EEXIST'); // XATTR_CREATE
    if (flags & 2 && !this.xattrs.has(name)) throw new FuseError('ENODATA'); // XATTR_REPLACE
    this.xattrs.set(name, value);
    this.ctime = now();
  }
  override listxattr(): string[] { return [...this.xattrs.keys()]; }
  override removexattr(_ctx: Context, name: string): void {
    if (!this.xattrs.delete(name)) throw new FuseError('ENODATA');
    this.ctime = now();
  }
}

class MemFile extends MemNode {
  data = Buffer.alloc(0);
  override size(): number { return this.data.length; }
  override truncate(size: number): void {
    const d = Buffer.alloc(size);
    this.data.copy(d, 0, 0, Math.min(size, this.data.length));
    this.data = d;
    this.mtime = this.ctime = now();
  }
  override read(_ctx: Context, _h: unknown, offset: bigint, size: number): Uint8Array {
    this.atime = now();
    if (offset >= BigInt(this.data.length)) return new Uint8Array(0);
    return this.data.subarray(Number(offset), Number(offset) + size);
  }
  override write(_ctx: Context, _h: unknown, offset: bigint, data: Uint8Array): number {
    const e = end(offset, data.length);
    if (e > this.data.length) {
      const d = Buffer.alloc(e);
      this.data.copy(d);
      this.data = d;
    }
    this.data.set(data, Number(offset));
    this.mtime = this.ctime = now();
    return data.length;
  }
  override fallocate(_ctx: Context, _h: unknown, offset: bigint, length: bigint, mode: number): void {
    const KEEP_SIZE = 1, PUNCH_HOLE = 2;
    if (mode & ~(KEEP_SIZE | PUNCH_HOLE)) throw new FuseError('EOPNOTSUPP');
    const e = end(offset, length);
    if (mode & PUNCH_HOLE) { this.data.fill(0, Math.min(Number(offset), this.data.length), Math.min(e, this.data.length)); return; }
    if (!(mode & KEEP_SIZE) && e > this.data.length) this.truncate(e);
  }
}

class MemSymlink extends MemNode {
  constructor(public target: string, ctx: Context) { super(C.S_IFLNK | 0o777, ctx); }
  override size(): number { return nameToBytes(this.target).length; } // the target's bytes
  override readlink(): string { return this.target; }
}

class MemDir extends MemNode {
  constructor(mode: number, ctx: { uid: number; gid: number }) { super(C.S_IFDIR | (mode & 0o7777), ctx); this.nlink = 2; }
  private free(name: string): void {
    if (this.children.has(name)) throw new FuseError('EEXIST');
    this.mtime = this.ctime = now();
  }
  private child(name: string): MemNode {
    const c = this.children.get(name) as MemNode | undefined;
    if (!c) throw new FuseError('ENOENT');
    return c;
  }
  override mkdir(ctx: Context, name: string, mode: number): MemDir {
    this.free(name);
    this.nlink++;
    return new MemDir(mode, ctx);
  }
  override mknod(ctx: Context, name: string, mode: number, rdev: number): MemNode {
    this.free(name);
    return (mode & TYPE) === C.S_IFREG ? new MemFile(mode, ctx) : new MemNode(mode, ctx, rdev);
  }
  override create(ctx: Context, name: string, mode: number): Created {
    return { inode: this.mknod(ctx, name, C.S_IFREG | (mode & 0o7777), 0) };
  }
  override symlink(ctx: Context, name: string, target: string): MemSymlink {
    this.free(name);
    return new MemSymlink(target, ctx);
  }
  override link(_ctx: Context, target: FuseInode, name: string): FuseInode {
    if (target.isDirectory) throw new FuseError('EPERM');
    this.free(name);
    const t = target as MemNode;
    t.nlink++; t.ctime = now();
    return t;
  }
  override unlink(_ctx: Context, name: string): void {
    const c = this.child(name);
    if (c.isDirectory) throw new FuseError('EISDIR');
    c.nlink--; c.ctime = this.mtime = this.ctime = now();
  }
  override rmdir(_ctx: Context, name: string): void {
    const c = this.child(name);
    if (!c.isDirectory) throw new FuseError('ENOTDIR');
    if (c.children.size) throw new FuseError('ENOTEMPTY');
    c.nlink = 0; this.nlink--; this.mtime = this.ctime = now();
  }
  override rename(_ctx: Context, name: string, to: FuseInode, newName: string, flags: number): void {
    const NOREPLACE = 1, EXCHANGE = 2;
    if (flags & ~(NOREPLACE | EXCHANGE)) throw new FuseError('EINVAL');
    const src = this.child(name), dir = to as MemDir, dst = dir.children.get(newName) as MemNode | undefined;
    if (src === dst) return;
    for (let p: FuseInode | undefined = dir; p; p = p.parent) if (p === src) throw new FuseError('EINVAL'); // into itself
    if (flags & NOREPLACE && dst) throw new FuseError('EEXIST');
    if (flags & EXCHANGE) {
      if (!dst) throw new FuseError('ENOENT');
      if (src.isDirectory !== dst.isDirectory) { this.nlink += src.isDirectory ? -1 : 1; dir.nlink += src.isDirectory ? 1 : -1; }
    } else if (dst) {
      if (dst.isDirectory && !src.isDirectory) throw new FuseError('EISDIR');
      if (!dst.isDirectory && src.isDirectory) throw new FuseError('ENOTDIR');
      if (dst.isDirectory && dst.children.size) throw new FuseError('ENOTEMPTY');
      if (dst.isDirectory) { dst.nlink = 0; dir.nlink--; } else dst.nlink--;
    }
    if (!(flags & EXCHANGE) && src.isDirectory) { this.nlink--; dir.nlink++; }
    src.ctime = this.mtime = this.ctime = dir.mtime = dir.ctime = now();
  }
  override statfs() {
    return { bsize: 4096, frsize: 4096, blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, files: 1 << 20, ffree: 1 << 19, namelen: 255 };
  }
}

/** A fresh memfs root; `mount(mnt, memfs(), opts)` serves it. */
export function memfs(): InodeTree {
  return new InodeTree(new MemDir(0o755, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const session = await mount(process.argv[2], memfs(), { fsname: 'memfs', subtype: 'memfs', defaultPermissions: true });
  console.log(`memfs mounted on ${session.mountpoint}`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => session.unmount({ lazy: true }));
  await session.closed;
}
