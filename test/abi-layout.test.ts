/**
 * Every kernel struct and constant we declare, checked against the C compiler's
 * view of the installed <linux/fuse.h> (STYLE.md 2). A C program is generated
 * from our declarations, compiled with gcc and run; it prints sizeof, alignof,
 * offsetof, field width and signedness, and the value of every constant, so
 * nothing here is computed by the code under test.
 *
 * The installed header may be older than the protocol we speak (here 7.38,
 * tsfuse speaks 7.45). What it lacks is checked against values cited from the
 * kernel's include/uapi/linux/fuse.h, protocol 7.45, each with the minor
 * version that introduced it. When the installed header is new enough, the
 * compiler checks those too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as abi from '../src/abi/index.js';
import { structs, Opcode, NotifyCode, InitFlag, FATTR, FOPEN, FUSE_IOCTL } from '../src/abi/index.js';
import { OPCODES, opcodeRow } from '../src/api/ops.js';
import type { FieldSpec, StructDef } from '../src/abi/index.js';
import { tempDir } from './helpers.js';

const HEADER = '/usr/include/linux/fuse.h';
const headerText = readFileSync(HEADER, 'utf8');
const headerCode = headerText.replace(/\/\*[\s\S]*?\*\//g, ' ');
const LOCAL_MINOR = Number(/#define\s+FUSE_KERNEL_MINOR_VERSION\s+(\d+)/.exec(headerCode)![1]);

// ---- what the installed header declares (names only; values come from gcc) ----

/** struct name → field names in declaration order. */
function parseHeaderStructs(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of headerCode.matchAll(/^struct\s+(\w+)\s*\{([\s\S]*?)^\};/gm)) {
    const fields = m[2].split(';').map((s) => s.trim()).filter(Boolean)
      .map((decl) => /(\w+)\s*(?:\[[^\]]*\])?\s*$/.exec(decl)![1]);
    out.set(m[1], fields);
  }
  return out;
}
/** enum name → member names. */
function parseHeaderEnums(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of headerCode.matchAll(/enum\s+(\w+)\s*\{([\s\S]*?)\};/g)) {
    out.set(m[1], m[2].split(',').map((s) => /^\s*(\w+)/.exec(s)?.[1]).filter((s): s is string => !!s));
  }
  return out;
}
/** Object-like macros whose value is a single bit: `(1 << n)` / `(1ULL << n)`. */
function parseHeaderFlagMacros(): string[] {
  return [...headerCode.matchAll(/^#define\s+(\w+)\s+\(1(?:ULL|ull)?\s*<<\s*\d+\)/gm)].map((m) => m[1]);
}
const HEADER_STRUCTS = parseHeaderStructs();
const HEADER_ENUMS = parseHeaderEnums();
const HEADER_ENUM_MEMBERS = new Set([...HEADER_ENUMS.values()].flat());

// ---- citations from include/uapi/linux/fuse.h, protocol 7.45 ----

interface CitedField { since: number; offset: number; width: number }
/**
 * Fields the installed header names differently or lacks (include/uapi/linux/fuse.h,
 * protocol 7.45). Used instead of the compiler while LOCAL_MINOR < since.
 */
const CITED_FIELDS: Record<string, Record<string, CitedField>> = {
  // 7.40: `uint32_t padding` became `int32_t backing_id` (FOPEN_PASSTHROUGH), same slot.
  fuse_open_out: { backing_id: { since: 40, offset: 12, width: 4 } },
  fuse_init_out: {
    max_stack_depth: { since: 40, offset: 36, width: 4 }, // uint32_t max_stack_depth
    request_timeout: { since: 43, offset: 40, width: 2 }, // uint16_t request_timeout
    unused: { since: 43, offset: 42, width: 22 }, // uint16_t unused[11] (7.38: uint32_t unused[7] at 36)
  },
};
/**
 * Header fields we deliberately do not declare, each covered another way.
 */
const UNDECLARED_HEADER_FIELDS: Record<string, Record<string, string>> = {
  // Renamed backing_id in 7.40; the test below checks both name the same slot.
  fuse_open_out: { padding: 'backing_id' },
  // Flexible `char name[]`: the name follows the record; checked as FUSE_NAME_OFFSET.
  fuse_dirent: { name: 'FUSE_NAME_OFFSET' },
  // Flexible `uint32_t groups[]` (7.39): nr_groups gids follow the struct.
  fuse_supp_groups: { groups: 'sizeof' },
};

interface CitedStruct { since: number; size: number; align: number; offsets: Record<string, number> }
/** Structs newer than 7.38, as in include/uapi/linux/fuse.h, protocol 7.45. */
const CITED_STRUCTS: Record<string, CitedStruct> = {
  // 7.39: { int64_t tv_sec; uint32_t tv_nsec; int32_t __reserved; }
  fuse_sx_time: { since: 39, size: 16, align: 8, offsets: { tv_sec: 0, tv_nsec: 8, __reserved: 12 } },
  // 7.39: mask, blksize, attributes, nlink, uid, gid, mode, __spare0[1], ino, size, blocks,
  // attributes_mask, atime, btime, ctime, mtime, rdev_major, rdev_minor, dev_major, dev_minor, __spare2[14]
  fuse_statx: {
    since: 39, size: 256, align: 8, offsets: {
      mask: 0, blksize: 4, attributes: 8, nlink: 16, uid: 20, gid: 24, mode: 28, __spare0: 30,
      ino: 32, size: 40, blocks: 48, attributes_mask: 56, atime: 64, btime: 80, ctime: 96, mtime: 112,
      rdev_major: 128, rdev_minor: 132, dev_major: 136, dev_minor: 140, __spare2: 144,
    },
  },
  // 7.39: { uint32_t getattr_flags; uint32_t reserved; uint64_t fh; uint32_t sx_flags; uint32_t sx_mask; }
  fuse_statx_in: { since: 39, size: 24, align: 8, offsets: { getattr_flags: 0, reserved: 4, fh: 8, sx_flags: 16, sx_mask: 20 } },
  // 7.39: { uint64_t attr_valid; uint32_t attr_valid_nsec; uint32_t flags; uint64_t spare[2]; struct fuse_statx stat; }
  fuse_statx_out: { since: 39, size: 288, align: 8, offsets: { attr_valid: 0, attr_valid_nsec: 8, flags: 12, spare: 16, stat: 32 } },
  // 7.39: { uint32_t nr_groups; uint32_t groups[]; }
  fuse_supp_groups: { since: 39, size: 4, align: 4, offsets: { nr_groups: 0 } },
  // 7.40: { int32_t fd; uint32_t flags; uint64_t padding; }
  fuse_backing_map: { since: 40, size: 16, align: 8, offsets: { fd: 0, flags: 4, padding: 8 } },
  // 7.42: { uint64_t flags; uint64_t commit_id; uint32_t payload_sz; uint32_t padding; uint64_t reserved; }
  fuse_uring_ent_in_out: { since: 42, size: 32, align: 8, offsets: { flags: 0, commit_id: 8, payload_sz: 16, padding: 20, reserved: 24 } },
  // 7.42: { char in_out[128]; char op_in[128]; struct fuse_uring_ent_in_out ring_ent_in_out; }
  fuse_uring_req_header: { since: 42, size: 288, align: 8, offsets: { in_out: 0, op_in: 128, ring_ent_in_out: 256 } },
  // 7.42: { uint64_t flags; uint64_t commit_id; uint16_t qid; uint8_t padding[6]; }
  fuse_uring_cmd_req: { since: 42, size: 24, align: 8, offsets: { flags: 0, commit_id: 8, qid: 16, padding: 18 } },
  // 7.45: { uint32_t count; uint32_t padding; uint64_t spare; }
  fuse_notify_prune_out: { since: 45, size: 16, align: 8, offsets: { count: 0, padding: 4, spare: 8 } },
  // 7.45: { uint64_t bytes_copied; }
  fuse_copy_file_range_out: { since: 45, size: 8, align: 8, offsets: { bytes_copied: 0 } },
};

/** Constants the installed header lacks (include/uapi/linux/fuse.h, protocol 7.45). */
const CITED_CONSTS: Record<string, { since: number; value: bigint }> = {
  FUSE_STATX: { since: 39, value: 52n },
  FUSE_COPY_FILE_RANGE_64: { since: 45, value: 53n },
  FUSE_NOTIFY_RESEND: { since: 40, value: 7n },
  FUSE_NOTIFY_INC_EPOCH: { since: 44, value: 8n },
  FUSE_NOTIFY_PRUNE: { since: 45, value: 9n },
  FUSE_CREATE_SUPP_GROUP: { since: 39, value: 1n << 34n },
  FUSE_DIRECT_IO_ALLOW_MMAP: { since: 39, value: 1n << 36n },
  FUSE_PASSTHROUGH: { since: 40, value: 1n << 37n },
  FUSE_NO_EXPORT_SUPPORT: { since: 40, value: 1n << 38n },
  FUSE_HAS_RESEND: { since: 40, value: 1n << 39n },
  FUSE_ALLOW_IDMAP: { since: 41, value: 1n << 40n },
  FUSE_OVER_IO_URING: { since: 42, value: 1n << 41n },
  FUSE_REQUEST_TIMEOUT: { since: 43, value: 1n << 42n },
  FOPEN_PASSTHROUGH: { since: 40, value: 1n << 7n },
  FUSE_EXT_GROUPS: { since: 39, value: 32n }, // enum fuse_ext_type
  FUSE_UNIQUE_RESEND: { since: 40, value: 1n << 63n },
  FUSE_URING_IN_OUT_HEADER_SZ: { since: 42, value: 128n },
  FUSE_URING_OP_IN_OUT_SZ: { since: 42, value: 128n },
  FUSE_IO_URING_CMD_INVALID: { since: 42, value: 0n },
  FUSE_IO_URING_CMD_REGISTER: { since: 42, value: 1n },
  FUSE_IO_URING_CMD_COMMIT_AND_FETCH: { since: 42, value: 2n },
  // These three are also computed by gcc below from their cited definitions.
  FUSE_DEV_IOC_BACKING_OPEN: { since: 40, value: 0x4010e501n }, // _IOW(229, 1, struct fuse_backing_map)
  FUSE_DEV_IOC_BACKING_CLOSE: { since: 40, value: 0x4004e502n }, // _IOW(229, 2, uint32_t)
  FUSE_DEV_IOC_SYNC_INIT: { since: 45, value: 0xe503n }, // _IO(229, 3)
};
/** The cited ioctl definitions, evaluated by gcc with <linux/ioctl.h>. */
const CITED_IOCTL_DEFS: Record<string, string> = {
  FUSE_DEV_IOC_BACKING_OPEN: '_IOW(229, 1, uint8_t[16])', // sizeof(struct fuse_backing_map) == 16
  FUSE_DEV_IOC_BACKING_CLOSE: '_IOW(229, 2, uint32_t)',
  FUSE_DEV_IOC_SYNC_INIT: '_IO(229, 3)',
};

// ---- our declarations ----

type AnyStruct = StructDef<readonly FieldSpec[]>;
const OURS: Record<string, AnyStruct> = Object.fromEntries(
  Object.entries(structs as unknown as Record<string, AnyStruct>).filter(([, v]) => typeof v?.encode === 'function'),
);

function fieldWidth(f: FieldSpec): number {
  const t = f[1];
  const one = typeof t === 'string' ? ({ u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8, id: 8, time64: 8 } as const)[t] : t.size;
  return one * (f.length === 3 ? f[2] : 1);
}
/** 1 signed, 0 unsigned, -1 not a scalar (array or struct). */
function fieldSigned(f: FieldSpec): number {
  if (f.length === 3 || typeof f[1] !== 'string') return -1;
  return f[1] === 'i32' || f[1] === 'i64' ? 1 : 0; // time64 is uint64_t in C (signed only in meaning)
}

/** Every constant we define, by its kernel (C) name. */
function ourConstants(): Map<string, bigint> {
  const m = new Map<string, bigint>();
  const put = (name: string, v: number | bigint) => m.set(name, BigInt(v));
  for (const [k, v] of Object.entries(InitFlag)) put(`FUSE_${k}`, v);
  for (const [k, v] of Object.entries(FATTR)) put(`FATTR_${k}`, v);
  for (const [k, v] of Object.entries(FOPEN)) put(`FOPEN_${k}`, v);
  for (const [k, v] of Object.entries(FUSE_IOCTL)) put(`FUSE_IOCTL_${k === 'BIT32' ? '32BIT' : k}`, v);
  for (const [k, v] of Object.entries(Opcode)) {
    if (typeof v === 'number') put(k === 'CUSE_INIT' ? k : `FUSE_${k}`, v);
  }
  for (const [k, v] of Object.entries(NotifyCode)) if (typeof v === 'number') put(`FUSE_NOTIFY_${k}`, v);
  for (const [k, v] of Object.entries(abi.UringCmd)) if (typeof v === 'number') put(`FUSE_IO_URING_CMD_${k}`, v);
  for (const name of [
    'FUSE_KERNEL_VERSION', 'FUSE_ROOT_ID', 'FUSE_MIN_READ_BUFFER',
    'FUSE_COMPAT_ENTRY_OUT_SIZE', 'FUSE_COMPAT_ATTR_OUT_SIZE', 'FUSE_COMPAT_MKNOD_IN_SIZE',
    'FUSE_COMPAT_WRITE_IN_SIZE', 'FUSE_COMPAT_STATFS_SIZE', 'FUSE_COMPAT_SETXATTR_IN_SIZE',
    'FUSE_COMPAT_INIT_OUT_SIZE', 'FUSE_COMPAT_22_INIT_OUT_SIZE',
    'FUSE_OPEN_KILL_SUIDGID', 'FUSE_SETXATTR_ACL_KILL_SGID', 'FUSE_RELEASE_FLUSH', 'FUSE_RELEASE_FLOCK_UNLOCK',
    'FUSE_GETATTR_FH', 'FUSE_LK_FLOCK', 'FUSE_WRITE_CACHE', 'FUSE_WRITE_LOCKOWNER', 'FUSE_WRITE_KILL_SUIDGID',
    'FUSE_READ_LOCKOWNER', 'FUSE_FSYNC_FDATASYNC', 'FUSE_ATTR_SUBMOUNT', 'FUSE_ATTR_DAX', 'FUSE_EXPIRE_ONLY',
    'FUSE_POLL_SCHEDULE_NOTIFY', 'FUSE_IOCTL_MAX_IOV', 'FUSE_SETUPMAPPING_FLAG_WRITE',
    'FUSE_SETUPMAPPING_FLAG_READ', 'FUSE_MAX_NR_SECCTX', 'FUSE_EXT_GROUPS', 'CUSE_UNRESTRICTED_IOCTL',
    'FUSE_DEV_IOC_CLONE', 'FUSE_DEV_IOC_BACKING_OPEN', 'FUSE_DEV_IOC_BACKING_CLOSE', 'FUSE_DEV_IOC_SYNC_INIT',
    'FUSE_URING_IN_OUT_HEADER_SZ', 'FUSE_URING_OP_IN_OUT_SZ', 'FUSE_NAME_OFFSET', 'FUSE_NAME_OFFSET_DIRENTPLUS',
  ]) {
    const v = (abi as unknown as Record<string, unknown>)[name];
    assert.ok(typeof v === 'number', `src/abi exports no number ${name}`);
    put(name, v as number);
  }
  // We keep bit 63 of `unique` as the high 32-bit half (FUSE_UNIQUE_RESEND, 7.40).
  put('FUSE_UNIQUE_RESEND', BigInt(abi.FUSE_UNIQUE_RESEND_HI) << 32n);
  return m;
}
const CONSTS = ourConstants();

// ---- the C program ----

function cString(s: string): string {
  return JSON.stringify(s);
}

function generateC(): string {
  const L: string[] = [
    '#include <stdio.h>', '#include <stddef.h>', '#include <stdint.h>', '#include <linux/ioctl.h>',
    '#include <linux/fuse.h>', '#define SIGNED(T, f) ((int)(((__typeof__(((T *)0)->f))-1) < 0))',
    'int main(void) {',
  ];
  for (const [name, def] of Object.entries(OURS)) {
    const header = HEADER_STRUCTS.get(name);
    if (!header) continue;
    const T = `struct ${name}`;
    L.push(`printf("struct %s %zu %zu\\n", ${cString(name)}, sizeof(${T}), _Alignof(${T}));`);
    for (const f of def.fields) {
      if (!header.includes(f[0])) continue; // cited instead (or reported as missing)
      if (CITED_FIELDS[name]?.[f[0]] && LOCAL_MINOR < CITED_FIELDS[name][f[0]].since) continue;
      const signed = fieldSigned(f) < 0 ? '-1' : `SIGNED(${T}, ${f[0]})`;
      L.push(`printf("field %s %s %zu %zu %d\\n", ${cString(name)}, ${cString(f[0])}, ` +
        `offsetof(${T}, ${f[0]}), sizeof(((${T} *)0)->${f[0]}), ${signed});`);
    }
    // Header fields we do not declare by that name: their offsets, for the checks below.
    for (const hf of header) {
      if (def.offsets[hf] !== undefined && !(CITED_FIELDS[name]?.[hf] && LOCAL_MINOR < CITED_FIELDS[name][hf].since)) continue;
      L.push(`printf("hfield %s %s %zu\\n", ${cString(name)}, ${cString(hf)}, offsetof(${T}, ${hf}));`);
    }
  }
  for (const name of CONSTS.keys()) {
    // `(1 << 31)` is a negative int: read 32-bit constants as the u32 fields that carry them.
    const print = `printf("const %s %llu\\n", ${cString(name)}, sizeof(${name}) <= 4 ? ` +
      `(unsigned long long)(uint32_t)(${name}) : (unsigned long long)(${name}));`;
    if (HEADER_ENUM_MEMBERS.has(name)) {
      L.push(print);
    } else {
      L.push(`#ifdef ${name}`, print, '#else', `printf("missing %s\\n", ${cString(name)});`, '#endif');
    }
  }
  for (const [name, def] of Object.entries(CITED_IOCTL_DEFS)) {
    L.push(`printf("ioctl %s %llu\\n", ${cString(name)}, (unsigned long long)(${def}));`);
  }
  L.push('return 0;', '}');
  return L.join('\n') + '\n';
}

interface CLayout {
  structs: Map<string, { size: number; align: number }>;
  fields: Map<string, { offset: number; width: number; signed: number }>; // "struct.field"
  headerFields: Map<string, number>; // "struct.field" → offset
  consts: Map<string, bigint>;
  missing: Set<string>;
  ioctls: Map<string, bigint>;
}

let cached: CLayout | undefined;
/** Compiles and runs the generated program once; throws with gcc's message if that fails. */
function cLayout(): CLayout {
  if (cached) return cached;
  const dir = tempDir('tsfuse-abi-layout-');
  try {
    const src = join(dir, 'layout.c');
    const exe = join(dir, 'layout');
    writeFileSync(src, generateC());
    try {
      execFileSync('gcc', ['-std=gnu11', '-Wall', '-Werror', '-o', exe, src], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`gcc failed on the generated layout program: ${err.stderr?.toString() ?? err.message}`);
    }
    const out = execFileSync(exe, { encoding: 'utf8' });
    const r: CLayout = {
      structs: new Map(), fields: new Map(), headerFields: new Map(), consts: new Map(),
      missing: new Set(), ioctls: new Map(),
    };
    for (const line of out.trim().split('\n')) {
      const w = line.split(' ');
      switch (w[0]) {
        case 'struct': r.structs.set(w[1], { size: +w[2], align: +w[3] }); break;
        case 'field': r.fields.set(`${w[1]}.${w[2]}`, { offset: +w[3], width: +w[4], signed: +w[5] }); break;
        case 'hfield': r.headerFields.set(`${w[1]}.${w[2]}`, +w[3]); break;
        case 'const': r.consts.set(w[1], BigInt(w[2])); break;
        case 'missing': r.missing.add(w[1]); break;
        case 'ioctl': r.ioctls.set(w[1], BigInt(w[2])); break;
        default: throw new Error(`unexpected line from the layout program: ${line}`);
      }
    }
    cached = r;
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- tests: structs ----

test('the installed header is found and parsed (protocol 7.x with its structs and enums)', () => {
  assert.ok(LOCAL_MINOR >= 31 && LOCAL_MINOR <= abi.FUSE_KERNEL_MINOR_VERSION, `local minor ${LOCAL_MINOR}`);
  assert.ok(HEADER_STRUCTS.size >= 60, `only ${HEADER_STRUCTS.size} structs parsed`);
  assert.equal(HEADER_STRUCTS.get('fuse_in_header'),
    ['len', 'opcode', 'unique', 'nodeid', 'uid', 'gid', 'pid', 'total_extlen', 'padding']);
  assert.ok(HEADER_ENUMS.get('fuse_opcode')?.includes('FUSE_LOOKUP'));
});

test('every struct of the installed header is declared in structs.ts', () => {
  // No exemptions: every struct the kernel exports is part of the wire protocol.
  const missing = [...HEADER_STRUCTS.keys()].filter((n) => !OURS[n]);
  assert.equal(missing, []);
});

test('each declared struct is named as its export', () => {
  for (const [name, def] of Object.entries(OURS)) assert.is(def.name, name);
});

test('every declared struct is in the installed header or cited from the 7.45 header', () => {
  const unchecked = Object.keys(OURS).filter((n) => !HEADER_STRUCTS.has(n) && !CITED_STRUCTS[n]);
  assert.equal(unchecked, []);
  // A citation for a struct the local header already has must agree with it (checked below);
  // one for a struct the local header should have (since <= local minor) is a stale citation.
  const stale = Object.entries(CITED_STRUCTS).filter(([n, c]) => c.since <= LOCAL_MINOR && !HEADER_STRUCTS.has(n));
  assert.equal(stale.map(([n]) => n), []);
});

test('struct sizes and alignments equal the C compiler\'s for the installed header', () => {
  const c = cLayout();
  const bad: string[] = [];
  for (const [name, def] of Object.entries(OURS)) {
    const s = c.structs.get(name);
    if (!s) continue;
    if (s.size !== def.size) bad.push(`${name}: size ${def.size}, C says ${s.size}`);
    if (s.align !== def.align) bad.push(`${name}: align ${def.align}, C says ${s.align}`);
  }
  assert.equal(bad, []);
  assert.is(c.structs.size, [...Object.keys(OURS)].filter((n) => HEADER_STRUCTS.has(n)).length);
});

test('field offsets, widths and signedness equal the C compiler\'s for the installed header', () => {
  const c = cLayout();
  const bad: string[] = [];
  let checked = 0;
  for (const [name, def] of Object.entries(OURS)) {
    if (!HEADER_STRUCTS.has(name)) continue;
    for (const f of def.fields) {
      const cf = c.fields.get(`${name}.${f[0]}`);
      if (!cf) continue;
      checked++;
      if (cf.offset !== def.offsets[f[0]]) bad.push(`${name}.${f[0]}: offset ${def.offsets[f[0]]}, C says ${cf.offset}`);
      if (cf.width !== fieldWidth(f)) bad.push(`${name}.${f[0]}: width ${fieldWidth(f)}, C says ${cf.width}`);
      if (cf.signed !== fieldSigned(f)) bad.push(`${name}.${f[0]}: signed ${fieldSigned(f)}, C says ${cf.signed}`);
    }
  }
  assert.equal(bad, []);
  assert.ok(checked > 250, `only ${checked} fields compared`);
});

test('every declared field of a header struct is checked by C or by a 7.45 citation', () => {
  const c = cLayout();
  const unchecked: string[] = [];
  for (const [name, def] of Object.entries(OURS)) {
    if (!HEADER_STRUCTS.has(name)) continue;
    for (const f of def.fields) {
      if (!c.fields.has(`${name}.${f[0]}`) && !CITED_FIELDS[name]?.[f[0]]) unchecked.push(`${name}.${f[0]}`);
    }
  }
  assert.equal(unchecked, []);
});

test('every field of a header struct is declared, except flexible arrays and the renamed padding', () => {
  const missing: string[] = [];
  for (const [name, fields] of HEADER_STRUCTS) {
    const def = OURS[name];
    if (!def) continue;
    for (const f of fields) {
      if (def.offsets[f] === undefined && !UNDECLARED_HEADER_FIELDS[name]?.[f]) missing.push(`${name}.${f}`);
    }
  }
  assert.equal(missing, []);
});

test('fields added after the installed header sit where the 7.45 header puts them', () => {
  const c = cLayout();
  for (const [name, fields] of Object.entries(CITED_FIELDS)) {
    const def = OURS[name];
    for (const [fname, cite] of Object.entries(fields)) {
      const spec = def.fields.find((f) => f[0] === fname);
      assert.ok(spec, `${name}.${fname} is declared`);
      assert.is(def.offsets[fname], cite.offset, `${name}.${fname} offset (7.45 header)`);
      assert.is(fieldWidth(spec!), cite.width, `${name}.${fname} width (7.45 header)`);
      const cf = c.fields.get(`${name}.${fname}`);
      if (cf) assert.is(cf.offset, cite.offset, `${name}.${fname}: the installed header agrees with the citation`);
    }
  }
  // The struct sizes did not change: 7.38's fuse_init_out is also 64 bytes, fuse_open_out 16.
  assert.is(OURS.fuse_init_out.size, 64);
  assert.is(OURS.fuse_open_out.size, 16);
});

test('fuse_open_out.backing_id (7.40) occupies the 7.38 header\'s padding slot', () => {
  const c = cLayout();
  const padding = c.headerFields.get('fuse_open_out.padding') ?? c.fields.get('fuse_open_out.backing_id')?.offset;
  assert.is(padding, 12);
  assert.is(structs.fuse_open_out.offsets.backing_id, padding);
  assert.equal(structs.fuse_open_out.fields[2], ['backing_id', 'i32']);
});

test('fuse_init_out: max_stack_depth, request_timeout and unused[11] (7.40, 7.43) fill the 7.38 unused[7]', () => {
  const c = cLayout();
  if (LOCAL_MINOR < 43) {
    // In 7.38, unused (uint32_t[7]) starts at 36 and runs to the end (64).
    assert.is(c.headerFields.get('fuse_init_out.unused'), 36);
  }
  const o = structs.fuse_init_out.offsets;
  assert.equal([o.flags2, o.max_stack_depth, o.request_timeout, o.unused], [32, 36, 40, 42]);
  assert.is(42 + 11 * 2, structs.fuse_init_out.size);
});

test('flexible name arrays: FUSE_NAME_OFFSET and FUSE_NAME_OFFSET_DIRENTPLUS equal C\'s', () => {
  const c = cLayout();
  assert.is(c.consts.get('FUSE_NAME_OFFSET'), BigInt(abi.FUSE_NAME_OFFSET));
  assert.is(c.consts.get('FUSE_NAME_OFFSET_DIRENTPLUS'), BigInt(abi.FUSE_NAME_OFFSET_DIRENTPLUS));
  assert.is(c.headerFields.get('fuse_dirent.name'), abi.FUSE_NAME_OFFSET);
});

test('structs newer than the installed header match the 7.45 header: size, alignment, every offset', () => {
  const c = cLayout();
  for (const [name, cite] of Object.entries(CITED_STRUCTS)) {
    const def = OURS[name];
    assert.ok(def, `${name} is declared`);
    assert.is(def.size, cite.size, `${name} size`);
    assert.is(def.align, cite.align, `${name} align`);
    assert.equal({ ...def.offsets }, cite.offsets, `${name} offsets`);
    const cs = c.structs.get(name);
    if (cs) assert.equal(cs, { size: cite.size, align: cite.align }, `${name}: the installed header agrees`);
  }
});

test('key offsets of the 7.39–7.45 structs named in the brief', () => {
  assert.is(structs.fuse_statx.offsets.atime, 64);
  assert.is(structs.fuse_statx.offsets.rdev_major, 128);
  assert.is(structs.fuse_statx_out.offsets.stat, 32);
  assert.is(structs.fuse_uring_req_header.offsets.ring_ent_in_out, 256);
  assert.is(structs.fuse_uring_cmd_req.offsets.qid, 16);
});

// ---- tests: constants ----

test('constants defined by the installed header have the same values as ours', () => {
  const c = cLayout();
  const bad: string[] = [];
  for (const [name, ours] of CONSTS) {
    const v = c.consts.get(name);
    if (v !== undefined && v !== ours) bad.push(`${name}: ours ${ours}, C says ${v}`);
  }
  assert.equal(bad, []);
  assert.ok(c.consts.size > 100, `only ${c.consts.size} constants compared`);
});

test('constants the installed header lacks are cited from the 7.45 header, with equal values', () => {
  const c = cLayout();
  const bad: string[] = [];
  for (const [name, ours] of CONSTS) {
    if (c.consts.has(name)) {
      const cite = CITED_CONSTS[name];
      if (cite && cite.value !== c.consts.get(name)) bad.push(`${name}: citation disagrees with the installed header`);
      continue;
    }
    assert.ok(c.missing.has(name), `${name} was neither printed nor reported missing`);
    const cite = CITED_CONSTS[name];
    if (!cite) bad.push(`${name}: not in the installed header and not cited`);
    else if (cite.value !== ours) bad.push(`${name}: ours ${ours}, 7.45 header says ${cite.value}`);
    else if (cite.since <= LOCAL_MINOR) bad.push(`${name}: cited as 7.${cite.since} but missing from the 7.${LOCAL_MINOR} header`);
  }
  assert.equal(bad, []);
});

test('the cited /dev/fuse ioctl numbers equal what <linux/ioctl.h> computes from their definitions', () => {
  const c = cLayout();
  for (const name of Object.keys(CITED_IOCTL_DEFS)) {
    assert.is(c.ioctls.get(name), CITED_CONSTS[name].value, name);
    assert.is(BigInt((abi as unknown as Record<string, number>)[name]), CITED_CONSTS[name].value, name);
  }
  assert.is(c.consts.get('FUSE_DEV_IOC_CLONE'), BigInt(abi.FUSE_DEV_IOC_CLONE));
});

test('every single-bit flag macro of the installed header is defined by us', () => {
  const flags = parseHeaderFlagMacros();
  assert.ok(flags.length > 60, `only ${flags.length} flag macros parsed`);
  assert.equal(flags.filter((f) => !CONSTS.has(f)), []);
});

test('every opcode and notify code of the installed header is ours, with the same value', () => {
  const c = cLayout();
  const opcodes = HEADER_ENUMS.get('fuse_opcode')!.filter((n) => !n.endsWith('_BSWAP_RESERVED'));
  assert.ok(opcodes.includes('FUSE_TMPFILE') && opcodes.includes('CUSE_INIT'));
  for (const n of opcodes) {
    assert.ok(CONSTS.has(n), `Opcode lacks ${n}`);
    assert.is(c.consts.get(n), CONSTS.get(n), n);
  }
  const notify = HEADER_ENUMS.get('fuse_notify_code')!.filter((n) => n !== 'FUSE_NOTIFY_CODE_MAX');
  assert.ok(notify.length >= 6);
  for (const n of notify) {
    assert.ok(CONSTS.has(n), `NotifyCode lacks ${n}`);
    assert.is(c.consts.get(n), CONSTS.get(n), n);
  }
});

test('the protocol version: major 7, a minor no older than the installed header', () => {
  const c = cLayout();
  assert.is(c.consts.get('FUSE_KERNEL_VERSION'), 7n);
  assert.is(abi.FUSE_KERNEL_MINOR_VERSION, 45);
  assert.ok(abi.FUSE_KERNEL_MINOR_VERSION >= LOCAL_MINOR);
});

// ---- tests: the opcode table ----

test('the opcode table holds exactly opcodes 1..53 except 7 and 19, plus CUSE_INIT 4096', () => {
  const expected: number[] = [];
  for (let i = 1; i <= 53; i++) if (i !== 7 && i !== 19) expected.push(i);
  expected.push(4096);
  assert.equal([...OPCODES.keys()].sort((a, b) => a - b), expected);
  for (const [op, row] of OPCODES) {
    assert.is(row.opcode, op);
    assert.is(row.name, Opcode[op]);
    assert.is(opcodeRow(op), row, `opcodeRow(${op})`);
  }
  for (const op of [0, 7, 19, 54, 63, 64, 99, 4095, 4097]) assert.is(opcodeRow(op), undefined, `opcodeRow(${op})`);
});

// What the kernel sends and expects for each opcode, written out by hand from
// fs/fuse (and libfuse's fuse_lowlevel.c do_* functions), independently of
// src/api/ops.ts: [request body struct, names after it, reply].
const KERNEL: Record<string, [string | null, number, string]> = {
  LOOKUP: [null, 1, 'fuse_entry_out'], FORGET: ['fuse_forget_in', 0, 'none'], GETATTR: ['fuse_getattr_in', 0, 'fuse_attr_out'],
  SETATTR: ['fuse_setattr_in', 0, 'fuse_attr_out'], READLINK: [null, 0, 'data'], SYMLINK: [null, 2, 'fuse_entry_out'],
  MKNOD: ['fuse_mknod_in', 1, 'fuse_entry_out'], MKDIR: ['fuse_mkdir_in', 1, 'fuse_entry_out'], UNLINK: [null, 1, 'none'],
  RMDIR: [null, 1, 'none'], RENAME: ['fuse_rename_in', 2, 'none'], LINK: ['fuse_link_in', 1, 'fuse_entry_out'],
  OPEN: ['fuse_open_in', 0, 'fuse_open_out'], READ: ['fuse_read_in', 0, 'data'], WRITE: ['fuse_write_in', 0, 'fuse_write_out'],
  STATFS: [null, 0, 'fuse_statfs_out'], RELEASE: ['fuse_release_in', 0, 'none'], FSYNC: ['fuse_fsync_in', 0, 'none'],
  SETXATTR: ['fuse_setxattr_in', 1, 'none'], GETXATTR: ['fuse_getxattr_in', 1, 'xattr'], LISTXATTR: ['fuse_getxattr_in', 0, 'xattr'],
  REMOVEXATTR: [null, 1, 'none'], FLUSH: ['fuse_flush_in', 0, 'none'], INIT: ['fuse_init_in', 0, 'fuse_init_out'],
  OPENDIR: ['fuse_open_in', 0, 'fuse_open_out'], READDIR: ['fuse_read_in', 0, 'data'], RELEASEDIR: ['fuse_release_in', 0, 'none'],
  FSYNCDIR: ['fuse_fsync_in', 0, 'none'], GETLK: ['fuse_lk_in', 0, 'fuse_lk_out'], SETLK: ['fuse_lk_in', 0, 'none'],
  SETLKW: ['fuse_lk_in', 0, 'none'], ACCESS: ['fuse_access_in', 0, 'none'], CREATE: ['fuse_create_in', 1, 'entry+open'],
  INTERRUPT: ['fuse_interrupt_in', 0, 'none'], BMAP: ['fuse_bmap_in', 0, 'fuse_bmap_out'], DESTROY: [null, 0, 'none'],
  IOCTL: ['fuse_ioctl_in', 0, 'ioctl'], POLL: ['fuse_poll_in', 0, 'fuse_poll_out'], NOTIFY_REPLY: ['fuse_notify_retrieve_in', 0, 'none'],
  BATCH_FORGET: ['fuse_batch_forget_in', 0, 'none'], FALLOCATE: ['fuse_fallocate_in', 0, 'none'], READDIRPLUS: ['fuse_read_in', 0, 'data'],
  RENAME2: ['fuse_rename2_in', 2, 'none'], LSEEK: ['fuse_lseek_in', 0, 'fuse_lseek_out'],
  COPY_FILE_RANGE: ['fuse_copy_file_range_in', 0, 'fuse_write_out'], SETUPMAPPING: ['fuse_setupmapping_in', 0, 'none'],
  REMOVEMAPPING: ['fuse_removemapping_in', 0, 'none'], SYNCFS: ['fuse_syncfs_in', 0, 'none'], TMPFILE: ['fuse_create_in', 1, 'entry+open'],
  STATX: ['fuse_statx_in', 0, 'fuse_statx_out'], COPY_FILE_RANGE_64: ['fuse_copy_file_range_in', 0, 'fuse_copy_file_range_out'],
  CUSE_INIT: ['cuse_init_in', 0, 'cuse_init_out'],
};

test('every row carries the request struct, names and reply the kernel uses for its opcode', () => {
  assert.equal(Object.keys(KERNEL).length, OPCODES.size);
  for (const row of OPCODES.values()) {
    const k = KERNEL[row.name];
    assert.ok(k, `no kernel expectation for ${row.name}`);
    assert.is(row.body?.name ?? null, k[0], `${row.name}: request body`);
    assert.is(row.names, k[1], `${row.name}: names`);
    assert.is(typeof row.out === 'string' ? row.out : row.out.name, k[2], `${row.name}: reply`);
  }
});

test('trailing data, umask and INIT flags are declared on the rows the kernel needs them for', () => {
  const withData = [...OPCODES.values()].filter((r) => r.data).map((r) => r.name).sort();
  assert.equal(withData, ['BATCH_FORGET', 'CUSE_INIT', 'IOCTL', 'NOTIFY_REPLY', 'REMOVEMAPPING', 'SETXATTR', 'WRITE']);
  const withUmask = [...OPCODES.values()].filter((r) => r.umask).map((r) => r.name).sort();
  assert.equal(withUmask, ['CREATE', 'MKDIR', 'MKNOD', 'TMPFILE']);
  assert.is(opcodeRow(Opcode.GETLK)!.init!.flags, InitFlag.POSIX_LOCKS);
  assert.is(opcodeRow(Opcode.SETLK)!.init!.flags, InitFlag.FLOCK_LOCKS);
  assert.is(opcodeRow(Opcode.READDIRPLUS)!.init!.flags, InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO);
  assert.is(opcodeRow(Opcode.OPEN)!.initMissing, InitFlag.NO_OPEN_SUPPORT);
  assert.is(opcodeRow(Opcode.OPENDIR)!.initMissing, InitFlag.NO_OPENDIR_SUPPORT);
  // SETXATTR's body is 8 bytes unless FUSE_SETXATTR_EXT was negotiated; INIT's at least 16.
  assert.is(opcodeRow(Opcode.SETXATTR)!.bodySize!({ setxattrExt: false }, 100), 8);
  assert.is(opcodeRow(Opcode.SETXATTR)!.bodySize!({ setxattrExt: true }, 100), 16);
  assert.is(opcodeRow(Opcode.INIT)!.bodySize!({ setxattrExt: false }, 16), 16);
  assert.is(opcodeRow(Opcode.INIT)!.bodySize!({ setxattrExt: false }, 200), 64);
});

test('the no-reply opcodes are FORGET, BATCH_FORGET, INTERRUPT and NOTIFY_REPLY only', () => {
  const noReply = [...OPCODES.values()].filter((r) => !r.reply).map((r) => r.opcode).sort((a, b) => a - b);
  assert.equal(noReply, [2, 36, 41, 42]);
});

test.run();
