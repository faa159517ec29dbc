/**
 * The framework's bookkeeping of one FuseInode, kept under a module-private
 * symbol so that user subclasses cannot read or trample it (go-fuse keeps the
 * same state in unexported fields). Only src/api/inode.ts and
 * src/api/inode-tree.ts import this module; the package does not export it.
 *
 * Owner: the InodeTree the inode belongs to (`tree`). Invariants it keeps:
 * `nodeid` is 0 until the inode is first handed to the kernel, then the key
 * of the inode in the tree's table until it leaves it; `nlookup` is the
 * kernel's reference count (never below 0); `children` and `links` mirror
 * each other (child in parent.children under n ⇔ n in child.links(parent)).
 */
import type { Notifier } from '../transport/index.js';
import type { FuseInode } from './inode.js';

export const NODE: unique symbol = Symbol('tsfuse.node');

/** What an inode asks of the tree it belongs to (for `addChild` on a live tree). */
export interface TreeLink {
  linkDentry(parent: FuseInode, name: string, child: FuseInode): void;
  removeName(parent: FuseInode, name: string, child: FuseInode): void;
}

export class NodeState {
  nodeid = 0;
  nlookup = 0;
  /** Never dropped at nlookup 0 while true. */
  persistent = false;
  /** Dentries below this directory: name → child. */
  readonly children = new Map<string, FuseInode>();
  /** Where this inode is linked: parent → names. */
  readonly links = new Map<FuseInode, Set<string>>();
  /** Set while mounted: notifications to the kernel. */
  notifier: Notifier | undefined;
  /** Open file and directory handles of this inode. */
  opens = 0;
  /** A name went while others remain, which may be stale (removed behind our back):
   * ask `onUnlinked()` once no file is open. */
  nameLost = false;
  /** The identity this inode is registered under in the tree, if any. */
  identity: string | number | bigint | undefined;
  /** The tree this inode is linked into (set when its parent is). */
  tree: TreeLink | undefined;
}
