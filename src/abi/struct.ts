/**
 * Kernel structs as data. A struct is declared once, with the kernel's own
 * field names and order (padding written out); its size, field offsets and a
 * fast codec are derived from that declaration.
 *
 * 64-bit fields: `u64`/`i64` decode to a JavaScript number built from two
 * 32-bit halves (about 4x faster than BigInt). That is exact below 2^53; above
 * it the low bits are rounded (node ids, offsets and sizes never get there in
 * practice; `unique` is copied as raw bytes and never goes through a number).
 * Fields that really use the whole range (lock owners) are `u64big` → bigint.
 * Arrays (`unused[11]`, `spare[6]` …) are reserved space: skipped on decode,
 * written as zeroes on encode.
 */

/** `time64`: declared uint64_t by the kernel but holding signed seconds (times
 * before 1970 are negative): unsigned in the C layout, read and written as i64. */
export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64' | 'time64' | 'u64big';
export type FieldType = Scalar | StructDef<any>;
/** `[name, type]`, or `[name, type, count]` for a reserved array. */
export type FieldSpec = readonly [string, FieldType] | readonly [string, FieldType, number];

type ValueOf<T> = T extends 'u64big' ? bigint : T extends StructDef<infer F> ? Decoded<F> : number;
/** The decoded (JavaScript) shape of a struct declaration; arrays are left out. */
export type Decoded<F extends readonly FieldSpec[]> = {
  [K in F[number] as K extends readonly [string, FieldType, number] ? never : K[0]]: ValueOf<K[1]>;
};
type EncValueOf<T> = T extends 'u64big' ? bigint : T extends StructDef<infer F> ? Encodable<F> : number;
/** What encode accepts: every field optional, nested structs too (missing → 0). */
export type Encodable<F extends readonly FieldSpec[]> = {
  [K in F[number] as K extends readonly [string, FieldType, number] ? never : K[0]]?: EncValueOf<K[1]>;
};

export interface StructDef<F extends readonly FieldSpec[]> {
  readonly name: string;
  readonly fields: F;
  readonly size: number;
  readonly align: number;
  /** Byte offset of every field, including padding and arrays, by name. */
  readonly offsets: Readonly<Record<string, number>>;
  /** Decodes the struct at `offset` of `view`. */
  decode(view: DataView, offset: number): Decoded<F>;
  /** Encodes `value` at `offset` of `view`; missing fields are written as 0. */
  encode(view: DataView, offset: number, value: Encodable<F>): void;
}

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8, time64: 8, u64big: 8 };
const TWO32 = 4294967296;

function sizeOf(t: FieldType): number {
  return typeof t === 'string' ? SCALAR_SIZE[t] : t.size;
}
function alignOf(t: FieldType): number {
  return typeof t === 'string' ? SCALAR_SIZE[t] : t.align;
}

/** JavaScript source that reads a scalar at byte expression `at`. */
function readExpr(t: Scalar, at: string): string {
  switch (t) {
    case 'u8': return `dv.getUint8(${at})`;
    case 'u16': return `dv.getUint16(${at},true)`;
    case 'u32': return `dv.getUint32(${at},true)`;
    case 'i32': return `dv.getInt32(${at},true)`;
    case 'u64': return `(dv.getUint32(${at},true)+dv.getUint32(${at}+4,true)*${TWO32})`;
    case 'i64':
    case 'time64': return `(dv.getUint32(${at},true)+dv.getInt32(${at}+4,true)*${TWO32})`;
    case 'u64big': return `dv.getBigUint64(${at},true)`;
  }
}

/** JavaScript statements that write scalar expression `v` at byte expression `at`. */
function writeStmt(t: Scalar, at: string, v: string): string {
  switch (t) {
    case 'u8': return `dv.setUint8(${at},${v}||0);`;
    case 'u16': return `dv.setUint16(${at},${v}||0,true);`;
    case 'u32': return `dv.setUint32(${at},(${v}||0)>>>0,true);`;
    case 'i32': return `dv.setInt32(${at},${v}||0,true);`;
    case 'u64':
    case 'i64':
    case 'time64':
      return `{const x=${v}||0,h=Math.floor(x/${TWO32});dv.setUint32(${at},x-h*${TWO32},true);dv.setInt32(${at}+4,h|0,true);}`;
    case 'u64big': return `dv.setBigUint64(${at},BigInt.asUintN(64,${v}??0n),true);`;
  }
}

/** Declares a kernel struct: computes C layout (natural alignment) and compiles a codec. */
export function struct<const F extends readonly FieldSpec[]>(name: string, fields: F): StructDef<F> {
  const offsets: Record<string, number> = {};
  let off = 0;
  let align = 1;
  const dec: string[] = [];
  const enc: string[] = [];
  const nested: StructDef<any>[] = [];
  for (const f of fields) {
    const [fname, type] = f;
    const count = f.length === 3 ? f[2] : undefined;
    const a = alignOf(type);
    align = Math.max(align, a);
    off = Math.ceil(off / a) * a;
    offsets[fname] = off;
    const at = `o+${off}`;
    if (count !== undefined) {
      off += sizeOf(type) * count;
      enc.push(`new Uint8Array(dv.buffer,dv.byteOffset+${at},${sizeOf(type) * count}).fill(0);`);
      continue;
    }
    const key = JSON.stringify(fname);
    if (typeof type === 'string') {
      dec.push(`${key}:${readExpr(type, at)}`);
      enc.push(writeStmt(type, at, `v[${key}]`));
    } else {
      const i = nested.push(type) - 1;
      dec.push(`${key}:n[${i}].decode(dv,${at})`);
      enc.push(`n[${i}].encode(dv,${at},v[${key}]||{});`);
    }
    off += sizeOf(type);
  }
  const size = Math.ceil(off / align) * align;
  const decode = new Function('n', `return function decode_${name}(dv,o){return {${dec.join(',')}};}`)(nested);
  const encode = new Function('n', `return function encode_${name}(dv,o,v){${enc.join('')}}`)(nested);
  return Object.freeze({ name, fields, size, align, offsets: Object.freeze(offsets), decode, encode });
}
