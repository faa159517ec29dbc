/**
 * The one opcode table. Each row says how a request's body decodes (fixed
 * struct, NUL-terminated names, raw trailing data), whether the kernel waits
 * for a reply, and what the reply carries. Decoding, dispatch, the no-reply
 * opcodes, debug logs and statistics all read this table.
 */
import { Opcode } from './consts.js';
import type { StructDef } from './struct.js';
import * as S from './structs.js';

/** What a successful reply carries after fuse_out_header. */
export type ReplyKind =
  | StructDef<any> // one fixed struct
  | 'none' // header only
  | 'data' // raw bytes (READ, READLINK, READDIR, …)
  | 'entry+open' // fuse_entry_out + fuse_open_out (CREATE, TMPFILE)
  | 'xattr'; // fuse_getxattr_out when size was 0, else the bytes

export interface OpcodeRow {
  readonly opcode: Opcode;
  /** Kernel name without the FUSE_ prefix, e.g. "LOOKUP". */
  readonly name: string;
  /** Fixed body struct after fuse_in_header, if any. */
  readonly body?: StructDef<any>;
  /** How many NUL-terminated names follow the body. */
  readonly names: 0 | 1 | 2;
  /** Raw bytes follow (after the names): WRITE data, xattr value, forget array … */
  readonly data: boolean;
  /** false for FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY: never answered. */
  readonly reply: boolean;
  readonly out: ReplyKind;
}

function row(
  opcode: Opcode, body: StructDef<any> | undefined, names: 0 | 1 | 2, data: boolean,
  out: ReplyKind | null,
): OpcodeRow {
  return Object.freeze({ opcode, name: Opcode[opcode], body, names, data, reply: out !== null, out: out ?? 'none' });
}

const O = Opcode;
const ROWS: OpcodeRow[] = [
  row(O.LOOKUP, undefined, 1, false, S.fuse_entry_out),
  row(O.FORGET, S.fuse_forget_in, 0, false, null),
  row(O.GETATTR, S.fuse_getattr_in, 0, false, S.fuse_attr_out),
  row(O.SETATTR, S.fuse_setattr_in, 0, false, S.fuse_attr_out),
  row(O.READLINK, undefined, 0, false, 'data'),
  row(O.SYMLINK, undefined, 2, false, S.fuse_entry_out), // name, then link target
  row(O.MKNOD, S.fuse_mknod_in, 1, false, S.fuse_entry_out),
  row(O.MKDIR, S.fuse_mkdir_in, 1, false, S.fuse_entry_out),
  row(O.UNLINK, undefined, 1, false, 'none'),
  row(O.RMDIR, undefined, 1, false, 'none'),
  row(O.RENAME, S.fuse_rename_in, 2, false, 'none'),
  row(O.LINK, S.fuse_link_in, 1, false, S.fuse_entry_out),
  row(O.OPEN, S.fuse_open_in, 0, false, S.fuse_open_out),
  row(O.READ, S.fuse_read_in, 0, false, 'data'),
  row(O.WRITE, S.fuse_write_in, 0, true, S.fuse_write_out),
  row(O.STATFS, undefined, 0, false, S.fuse_statfs_out),
  row(O.RELEASE, S.fuse_release_in, 0, false, 'none'),
  row(O.FSYNC, S.fuse_fsync_in, 0, false, 'none'),
  row(O.SETXATTR, S.fuse_setxattr_in, 1, true, 'none'), // body is 8 bytes without SETXATTR_EXT
  row(O.GETXATTR, S.fuse_getxattr_in, 1, false, 'xattr'),
  row(O.LISTXATTR, S.fuse_getxattr_in, 0, false, 'xattr'),
  row(O.REMOVEXATTR, undefined, 1, false, 'none'),
  row(O.FLUSH, S.fuse_flush_in, 0, false, 'none'),
  row(O.INIT, S.fuse_init_in, 0, false, S.fuse_init_out),
  row(O.OPENDIR, S.fuse_open_in, 0, false, S.fuse_open_out),
  row(O.READDIR, S.fuse_read_in, 0, false, 'data'),
  row(O.RELEASEDIR, S.fuse_release_in, 0, false, 'none'),
  row(O.FSYNCDIR, S.fuse_fsync_in, 0, false, 'none'),
  row(O.GETLK, S.fuse_lk_in, 0, false, S.fuse_lk_out),
  row(O.SETLK, S.fuse_lk_in, 0, false, 'none'),
  row(O.SETLKW, S.fuse_lk_in, 0, false, 'none'),
  row(O.ACCESS, S.fuse_access_in, 0, false, 'none'),
  row(O.CREATE, S.fuse_create_in, 1, false, 'entry+open'),
  row(O.INTERRUPT, S.fuse_interrupt_in, 0, false, null),
  row(O.BMAP, S.fuse_bmap_in, 0, false, S.fuse_bmap_out),
  row(O.DESTROY, undefined, 0, false, 'none'),
  row(O.IOCTL, S.fuse_ioctl_in, 0, true, 'data'), // fuse_ioctl_out + out data
  row(O.POLL, S.fuse_poll_in, 0, false, S.fuse_poll_out),
  row(O.NOTIFY_REPLY, S.fuse_notify_retrieve_in, 0, true, null),
  row(O.BATCH_FORGET, S.fuse_batch_forget_in, 0, true, null), // count × fuse_forget_one
  row(O.FALLOCATE, S.fuse_fallocate_in, 0, false, 'none'),
  row(O.READDIRPLUS, S.fuse_read_in, 0, false, 'data'),
  row(O.RENAME2, S.fuse_rename2_in, 2, false, 'none'),
  row(O.LSEEK, S.fuse_lseek_in, 0, false, S.fuse_lseek_out),
  row(O.COPY_FILE_RANGE, S.fuse_copy_file_range_in, 0, false, S.fuse_write_out),
  row(O.SETUPMAPPING, S.fuse_setupmapping_in, 0, false, 'none'),
  row(O.REMOVEMAPPING, S.fuse_removemapping_in, 0, true, 'none'),
  row(O.SYNCFS, S.fuse_syncfs_in, 0, false, 'none'),
  row(O.TMPFILE, S.fuse_create_in, 1, false, 'entry+open'),
  row(O.STATX, S.fuse_statx_in, 0, false, S.fuse_statx_out),
  row(O.COPY_FILE_RANGE_64, S.fuse_copy_file_range_in, 0, false, S.fuse_copy_file_range_out),
  row(O.CUSE_INIT, S.cuse_init_in, 0, true, S.cuse_init_out),
];

/** Rows indexed by opcode number (sparse: 7, 19 and >53 other than CUSE_INIT are absent). */
export const OPCODES: ReadonlyMap<number, OpcodeRow> = new Map(ROWS.map((r) => [r.opcode, r]));
/** Dense lookup for the hot path: index = opcode (0..53). */
const DENSE: (OpcodeRow | undefined)[] = [];
for (const r of ROWS) if (r.opcode < 64) DENSE[r.opcode] = r;

export function opcodeRow(opcode: number): OpcodeRow | undefined {
  return opcode < 64 ? DENSE[opcode] : OPCODES.get(opcode);
}

/** Name for logs, also for unknown opcodes ("OPCODE_99"). */
export function opcodeName(opcode: number): string {
  return opcodeRow(opcode)?.name ?? `OPCODE_${opcode}`;
}
