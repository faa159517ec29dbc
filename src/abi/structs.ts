/**
 * Every request and reply struct of the FUSE kernel protocol 7.45, named and
 * ordered as in the kernel's include/uapi/linux/fuse.h. Structs up to 7.38
 * are checked field by field against the installed header by
 * test/abi-layout.test.ts; the newer ones (marked with their minor version)
 * are checked against sizes cited from the 7.45 header in that test.
 */
import { struct } from './struct.js';

/** File attributes as the kernel caches them (the body of every entry and attr reply). */
export const fuse_attr = struct('fuse_attr', [
  ['ino', 'u64'], ['size', 'u64'], ['blocks', 'u64'],
  ['atime', 'time64'], ['mtime', 'time64'], ['ctime', 'time64'],
  ['atimensec', 'u32'], ['mtimensec', 'u32'], ['ctimensec', 'u32'],
  ['mode', 'u32'], ['nlink', 'u32'], ['uid', 'u32'], ['gid', 'u32'],
  ['rdev', 'u32'], ['blksize', 'u32'], ['flags', 'u32'],
] as const);

/** 7.39: statx timestamps. */
export const fuse_sx_time = struct('fuse_sx_time', [
  ['tv_sec', 'i64'], ['tv_nsec', 'u32'], ['__reserved', 'i32'],
] as const);

/** 7.39 */
export const fuse_statx = struct('fuse_statx', [
  ['mask', 'u32'], ['blksize', 'u32'], ['attributes', 'u64'],
  ['nlink', 'u32'], ['uid', 'u32'], ['gid', 'u32'], ['mode', 'u16'], ['__spare0', 'u16', 1],
  ['ino', 'u64'], ['size', 'u64'], ['blocks', 'u64'], ['attributes_mask', 'u64'],
  ['atime', fuse_sx_time], ['btime', fuse_sx_time], ['ctime', fuse_sx_time], ['mtime', fuse_sx_time],
  ['rdev_major', 'u32'], ['rdev_minor', 'u32'], ['dev_major', 'u32'], ['dev_minor', 'u32'],
  ['__spare2', 'u64', 14],
] as const);

/** Filesystem statistics, as statfs(2) reports them. */
export const fuse_kstatfs = struct('fuse_kstatfs', [
  ['blocks', 'u64'], ['bfree', 'u64'], ['bavail', 'u64'], ['files', 'u64'], ['ffree', 'u64'],
  ['bsize', 'u32'], ['namelen', 'u32'], ['frsize', 'u32'], ['padding', 'u32'], ['spare', 'u32', 6],
] as const);

/** A POSIX record lock: byte range, type (F_RDLCK/F_WRLCK/F_UNLCK) and owner pid. `end` is
 * inclusive; OFFSET_MAX (2^63 - 1) means "to the end of the file". */
export const fuse_file_lock = struct('fuse_file_lock', [
  ['start', 'u64'], ['end', 'u64'], ['type', 'u32'], ['pid', 'u32'],
] as const);

/** LOOKUP/MKNOD/MKDIR/SYMLINK/LINK reply: node id, generation, cache timeouts, attributes. */
export const fuse_entry_out = struct('fuse_entry_out', [
  ['nodeid', 'id'], ['generation', 'u64'], ['entry_valid', 'id'], ['attr_valid', 'id'],
  ['entry_valid_nsec', 'u32'], ['attr_valid_nsec', 'u32'], ['attr', fuse_attr],
] as const);

/** FORGET body: how many lookups of the node the kernel drops. */
export const fuse_forget_in = struct('fuse_forget_in', [['nlookup', 'id']] as const);
/** One node of a BATCH_FORGET: its id and how many lookups are dropped. */
export const fuse_forget_one = struct('fuse_forget_one', [['nodeid', 'id'], ['nlookup', 'id']] as const);
/** BATCH_FORGET body, followed by `count` fuse_forget_one records. */
export const fuse_batch_forget_in = struct('fuse_batch_forget_in', [['count', 'u32'], ['dummy', 'u32']] as const);

/** GETATTR body; `fh` is valid when getattr_flags has FUSE_GETATTR_FH (fstat). */
export const fuse_getattr_in = struct('fuse_getattr_in', [
  ['getattr_flags', 'u32'], ['dummy', 'u32'], ['fh', 'id'],
] as const);

/** GETATTR/SETATTR reply: attributes and how long the kernel may cache them. */
export const fuse_attr_out = struct('fuse_attr_out', [
  ['attr_valid', 'id'], ['attr_valid_nsec', 'u32'], ['dummy', 'u32'], ['attr', fuse_attr],
] as const);

/** 7.39 */
export const fuse_statx_in = struct('fuse_statx_in', [
  ['getattr_flags', 'u32'], ['reserved', 'u32'], ['fh', 'id'], ['sx_flags', 'u32'], ['sx_mask', 'u32'],
] as const);

/** 7.39 */
export const fuse_statx_out = struct('fuse_statx_out', [
  ['attr_valid', 'id'], ['attr_valid_nsec', 'u32'], ['flags', 'u32'], ['spare', 'u64', 2], ['stat', fuse_statx],
] as const);

/** MKNOD body (followed by the name); `umask` is applied by the server when FUSE_DONT_MASK is set. */
export const fuse_mknod_in = struct('fuse_mknod_in', [
  ['mode', 'u32'], ['rdev', 'u32'], ['umask', 'u32'], ['padding', 'u32'],
] as const);
/** MKDIR body (followed by the name). */
export const fuse_mkdir_in = struct('fuse_mkdir_in', [['mode', 'u32'], ['umask', 'u32']] as const);
/** RENAME body (followed by the old and new names). */
export const fuse_rename_in = struct('fuse_rename_in', [['newdir', 'id']] as const);
/** RENAME2 body: RENAME plus renameat2 flags (RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT). */
export const fuse_rename2_in = struct('fuse_rename2_in', [
  ['newdir', 'id'], ['flags', 'u32'], ['padding', 'u32'],
] as const);
/** LINK body: the node to link (followed by the new name). */
export const fuse_link_in = struct('fuse_link_in', [['oldnodeid', 'id']] as const);

/** SETATTR body; `valid` (FATTR_*) says which fields to apply. */
export const fuse_setattr_in = struct('fuse_setattr_in', [
  ['valid', 'u32'], ['padding', 'u32'], ['fh', 'id'], ['size', 'u64'], ['lock_owner', 'u64'],
  ['atime', 'time64'], ['mtime', 'time64'], ['ctime', 'time64'],
  ['atimensec', 'u32'], ['mtimensec', 'u32'], ['ctimensec', 'u32'], ['mode', 'u32'],
  ['unused4', 'u32'], ['uid', 'u32'], ['gid', 'u32'], ['unused5', 'u32'],
] as const);

/** OPEN/OPENDIR body: open(2) flags and FUSE_OPEN_* flags. */
export const fuse_open_in = struct('fuse_open_in', [['flags', 'u32'], ['open_flags', 'u32']] as const);
/** CREATE body (followed by the name): open flags, mode and umask. */
export const fuse_create_in = struct('fuse_create_in', [
  ['flags', 'u32'], ['mode', 'u32'], ['umask', 'u32'], ['open_flags', 'u32'],
] as const);
/** 7.40: `padding` became `backing_id` (FOPEN_PASSTHROUGH). */
export const fuse_open_out = struct('fuse_open_out', [
  ['fh', 'id'], ['open_flags', 'u32'], ['backing_id', 'i32'],
] as const);
/** RELEASE/RELEASEDIR body: the handle being closed and its open flags. */
export const fuse_release_in = struct('fuse_release_in', [
  ['fh', 'id'], ['flags', 'u32'], ['release_flags', 'u32'], ['lock_owner', 'u64'],
] as const);
/** FLUSH body, sent on every close(2) of a file descriptor. */
export const fuse_flush_in = struct('fuse_flush_in', [
  ['fh', 'id'], ['unused', 'u32'], ['padding', 'u32'], ['lock_owner', 'u64'],
] as const);
/** READ/READDIR/READDIRPLUS body: handle, offset and most bytes wanted. */
export const fuse_read_in = struct('fuse_read_in', [
  ['fh', 'id'], ['offset', 'u64'], ['size', 'u32'], ['read_flags', 'u32'],
  ['lock_owner', 'u64'], ['flags', 'u32'], ['padding', 'u32'],
] as const);
/** WRITE body, followed by `size` bytes of data. */
export const fuse_write_in = struct('fuse_write_in', [
  ['fh', 'id'], ['offset', 'u64'], ['size', 'u32'], ['write_flags', 'u32'],
  ['lock_owner', 'u64'], ['flags', 'u32'], ['padding', 'u32'],
] as const);
/** WRITE reply: how many bytes were written. */
export const fuse_write_out = struct('fuse_write_out', [['size', 'u32'], ['padding', 'u32']] as const);
/** STATFS reply. */
export const fuse_statfs_out = struct('fuse_statfs_out', [['st', fuse_kstatfs]] as const);
/** FSYNC/FSYNCDIR body; FUSE_FSYNC_FDATASYNC in fsync_flags for fdatasync(2). */
export const fuse_fsync_in = struct('fuse_fsync_in', [
  ['fh', 'id'], ['fsync_flags', 'u32'], ['padding', 'u32'],
] as const);
/** 16 bytes with FUSE_SETXATTR_EXT, else the first 8 (FUSE_COMPAT_SETXATTR_IN_SIZE). */
export const fuse_setxattr_in = struct('fuse_setxattr_in', [
  ['size', 'u32'], ['flags', 'u32'], ['setxattr_flags', 'u32'], ['padding', 'u32'],
] as const);
/** GETXATTR/LISTXATTR body: the caller's buffer size (0 asks for the size only). */
export const fuse_getxattr_in = struct('fuse_getxattr_in', [['size', 'u32'], ['padding', 'u32']] as const);
/** GETXATTR/LISTXATTR reply when the request's size was 0: the size needed. */
export const fuse_getxattr_out = struct('fuse_getxattr_out', [['size', 'u32'], ['padding', 'u32']] as const);
/** GETLK/SETLK/SETLKW body: handle, lock owner and the lock; FUSE_LK_FLOCK for flock(2). */
export const fuse_lk_in = struct('fuse_lk_in', [
  ['fh', 'id'], ['owner', 'u64'], ['lk', fuse_file_lock], ['lk_flags', 'u32'], ['padding', 'u32'],
] as const);
/** GETLK reply: the conflicting lock, or type F_UNLCK. */
export const fuse_lk_out = struct('fuse_lk_out', [['lk', fuse_file_lock]] as const);
/** ACCESS body: the access(2) mask (R_OK, W_OK, X_OK, or F_OK). */
export const fuse_access_in = struct('fuse_access_in', [['mask', 'u32'], ['padding', 'u32']] as const);

/** Kernels before 7.36 send only the first 16 bytes; the rest then decodes as 0. */
export const fuse_init_in = struct('fuse_init_in', [
  ['major', 'u32'], ['minor', 'u32'], ['max_readahead', 'u32'], ['flags', 'u32'],
  ['flags2', 'u32'], ['unused', 'u32', 11],
] as const);
/** 7.40 adds max_stack_depth, 7.43 request_timeout (seconds). */
export const fuse_init_out = struct('fuse_init_out', [
  ['major', 'u32'], ['minor', 'u32'], ['max_readahead', 'u32'], ['flags', 'u32'],
  ['max_background', 'u16'], ['congestion_threshold', 'u16'], ['max_write', 'u32'],
  ['time_gran', 'u32'], ['max_pages', 'u16'], ['map_alignment', 'u16'], ['flags2', 'u32'],
  ['max_stack_depth', 'u32'], ['request_timeout', 'u16'], ['unused', 'u16', 11],
] as const);

/** CUSE_INIT body (character devices in userspace). */
export const cuse_init_in = struct('cuse_init_in', [
  ['major', 'u32'], ['minor', 'u32'], ['unused', 'u32'], ['flags', 'u32'],
] as const);
/** CUSE_INIT reply: limits and the device number to create. */
export const cuse_init_out = struct('cuse_init_out', [
  ['major', 'u32'], ['minor', 'u32'], ['unused', 'u32'], ['flags', 'u32'],
  ['max_read', 'u32'], ['max_write', 'u32'], ['dev_major', 'u32'], ['dev_minor', 'u32'], ['spare', 'u32', 10],
] as const);

/** INTERRUPT body: the `unique` of the request to interrupt. */
export const fuse_interrupt_in = struct('fuse_interrupt_in', [['unique', 'u64']] as const);
/** BMAP body: a logical block of the file (fuseblk mounts). */
export const fuse_bmap_in = struct('fuse_bmap_in', [['block', 'u64'], ['blocksize', 'u32'], ['padding', 'u32']] as const);
/** BMAP reply: the device block it maps to. */
export const fuse_bmap_out = struct('fuse_bmap_out', [['block', 'u64']] as const);
/** IOCTL body: command, argument and the sizes of data in and out. */
export const fuse_ioctl_in = struct('fuse_ioctl_in', [
  ['fh', 'id'], ['flags', 'u32'], ['cmd', 'u32'], ['arg', 'u64'], ['in_size', 'u32'], ['out_size', 'u32'],
] as const);
/** One memory range of an unrestricted IOCTL retry. */
export const fuse_ioctl_iovec = struct('fuse_ioctl_iovec', [['base', 'u64'], ['len', 'u64']] as const);
/** IOCTL reply: result, and iovec counts when asking the kernel to retry. */
export const fuse_ioctl_out = struct('fuse_ioctl_out', [
  ['result', 'i32'], ['flags', 'u32'], ['in_iovs', 'u32'], ['out_iovs', 'u32'],
] as const);
/** POLL body: handle, kernel poll handle `kh` (for a later wakeup) and the events. */
export const fuse_poll_in = struct('fuse_poll_in', [
  ['fh', 'id'], ['kh', 'u64'], ['flags', 'u32'], ['events', 'u32'],
] as const);
/** POLL reply: the events ready now. */
export const fuse_poll_out = struct('fuse_poll_out', [['revents', 'u32'], ['padding', 'u32']] as const);
/** NOTIFY_POLL: wakes the poller registered with `kh`. */
export const fuse_notify_poll_wakeup_out = struct('fuse_notify_poll_wakeup_out', [['kh', 'u64']] as const);
/** FALLOCATE body: handle, range and fallocate(2) mode. */
export const fuse_fallocate_in = struct('fuse_fallocate_in', [
  ['fh', 'id'], ['offset', 'u64'], ['length', 'u64'], ['mode', 'u32'], ['padding', 'u32'],
] as const);

/** `unique` is declared for layout; the transport copies it as raw bytes. */
export const fuse_in_header = struct('fuse_in_header', [
  ['len', 'u32'], ['opcode', 'u32'], ['unique', 'u64'], ['nodeid', 'id'],
  ['uid', 'u32'], ['gid', 'u32'], ['pid', 'u32'], ['total_extlen', 'u16'], ['padding', 'u16'],
] as const);
/** Header of every reply and notification: length, negated errno (0: success), `unique`. */
export const fuse_out_header = struct('fuse_out_header', [
  ['len', 'u32'], ['error', 'i32'], ['unique', 'u64'],
] as const);

/** Followed by `namelen` bytes of name, padded to 8 bytes (FUSE_DIRENT_ALIGN). */
export const fuse_dirent = struct('fuse_dirent', [
  ['ino', 'u64'], ['off', 'u64'], ['namelen', 'u32'], ['type', 'u32'],
] as const);
/** A READDIRPLUS record: the entry (as LOOKUP would answer) then the dirent. */
export const fuse_direntplus = struct('fuse_direntplus', [
  ['entry_out', fuse_entry_out], ['dirent', fuse_dirent],
] as const);

/** NOTIFY_INVAL_INODE: drop cached attributes, and data from `off` (`len` ≤ 0: to the end; `off` < 0: no data). */
export const fuse_notify_inval_inode_out = struct('fuse_notify_inval_inode_out', [
  ['ino', 'id'], ['off', 'i64'], ['len', 'i64'],
] as const);
/** NOTIFY_INVAL_ENTRY (followed by the name): drop a cached directory entry. */
export const fuse_notify_inval_entry_out = struct('fuse_notify_inval_entry_out', [
  ['parent', 'id'], ['namelen', 'u32'], ['flags', 'u32'],
] as const);
/** NOTIFY_DELETE (followed by the name): an entry was removed; also invalidates it. */
export const fuse_notify_delete_out = struct('fuse_notify_delete_out', [
  ['parent', 'id'], ['child', 'id'], ['namelen', 'u32'], ['padding', 'u32'],
] as const);
/** NOTIFY_STORE (followed by data): put data into the kernel's page cache. */
export const fuse_notify_store_out = struct('fuse_notify_store_out', [
  ['nodeid', 'id'], ['offset', 'u64'], ['size', 'u32'], ['padding', 'u32'],
] as const);
/** NOTIFY_RETRIEVE: ask for cached data back; answered by a NOTIFY_REPLY request. */
export const fuse_notify_retrieve_out = struct('fuse_notify_retrieve_out', [
  ['notify_unique', 'id'], ['nodeid', 'id'], ['offset', 'u64'], ['size', 'u32'], ['padding', 'u32'],
] as const);
/** Body of a NOTIFY_REPLY request; matches the size of fuse_write_in. */
export const fuse_notify_retrieve_in = struct('fuse_notify_retrieve_in', [
  ['dummy1', 'u64'], ['offset', 'u64'], ['size', 'u32'], ['dummy2', 'u32'], ['dummy3', 'u64'], ['dummy4', 'u64'],
] as const);
/** 7.45: FUSE_NOTIFY_PRUNE, followed by `count` node ids (u64). */
export const fuse_notify_prune_out = struct('fuse_notify_prune_out', [
  ['count', 'u32'], ['padding', 'u32'], ['spare', 'u64'],
] as const);

/** 7.40: argument of FUSE_DEV_IOC_BACKING_OPEN. */
export const fuse_backing_map = struct('fuse_backing_map', [
  ['fd', 'i32'], ['flags', 'u32'], ['padding', 'u64'],
] as const);

/** LSEEK body: handle, offset and whence (SEEK_DATA, SEEK_HOLE). */
export const fuse_lseek_in = struct('fuse_lseek_in', [
  ['fh', 'id'], ['offset', 'u64'], ['whence', 'u32'], ['padding', 'u32'],
] as const);
/** LSEEK reply: the resulting offset. */
export const fuse_lseek_out = struct('fuse_lseek_out', [['offset', 'u64']] as const);
/** COPY_FILE_RANGE body: source handle and offset, destination node, handle and offset, length. */
export const fuse_copy_file_range_in = struct('fuse_copy_file_range_in', [
  ['fh_in', 'id'], ['off_in', 'u64'], ['nodeid_out', 'id'], ['fh_out', 'id'],
  ['off_out', 'u64'], ['len', 'u64'], ['flags', 'u64'],
] as const);
/** 7.45: reply of FUSE_COPY_FILE_RANGE_64. */
export const fuse_copy_file_range_out = struct('fuse_copy_file_range_out', [['bytes_copied', 'u64']] as const);

/** SETUPMAPPING body (DAX, virtiofs): map a file range into the DAX window. */
export const fuse_setupmapping_in = struct('fuse_setupmapping_in', [
  ['fh', 'id'], ['foffset', 'u64'], ['len', 'u64'], ['flags', 'u64'], ['moffset', 'u64'],
] as const);
/** REMOVEMAPPING body, followed by `count` fuse_removemapping_one records (DAX). */
export const fuse_removemapping_in = struct('fuse_removemapping_in', [['count', 'u32']] as const);
/** One DAX window range to unmap. */
export const fuse_removemapping_one = struct('fuse_removemapping_one', [['moffset', 'u64'], ['len', 'u64']] as const);
/** SYNCFS body (7.34): syncfs(2) on the mount. */
export const fuse_syncfs_in = struct('fuse_syncfs_in', [['padding', 'u64']] as const);

/** One security context of FUSE_SECURITY_CTX (followed by its name and value). */
export const fuse_secctx = struct('fuse_secctx', [['size', 'u32'], ['padding', 'u32']] as const);
/** Header of the security contexts a creating request carries (FUSE_SECURITY_CTX, 7.36). */
export const fuse_secctx_header = struct('fuse_secctx_header', [['size', 'u32'], ['nr_secctx', 'u32']] as const);
/** Header of one request extension (7.38): its size and type. */
export const fuse_ext_header = struct('fuse_ext_header', [['size', 'u32'], ['type', 'u32']] as const);
/** 7.39: FUSE_EXT_GROUPS extension, followed by `nr_groups` u32 gids. */
export const fuse_supp_groups = struct('fuse_supp_groups', [['nr_groups', 'u32']] as const);

/** 7.42: FUSE over io_uring. */
export const fuse_uring_ent_in_out = struct('fuse_uring_ent_in_out', [
  ['flags', 'u64'], ['commit_id', 'u64'], ['payload_sz', 'u32'], ['padding', 'u32'], ['reserved', 'u64'],
] as const);
/** 7.42 */
export const fuse_uring_req_header = struct('fuse_uring_req_header', [
  ['in_out', 'u8', 128], ['op_in', 'u8', 128], ['ring_ent_in_out', fuse_uring_ent_in_out],
] as const);
/** 7.42 */
export const fuse_uring_cmd_req = struct('fuse_uring_cmd_req', [
  ['flags', 'u64'], ['commit_id', 'u64'], ['qid', 'u16'], ['padding', 'u8', 6],
] as const);
