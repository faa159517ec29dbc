/**
 * Kernel structs as data. A struct is declared once, with the kernel's own
 * field names and order (padding written out); its size, field offsets and a
 * fast codec are derived from that declaration.
 *
 * 64-bit fields keep their whole range:
 * - `u64`/`i64`: values the kernel or a source filesystem chooses (offsets,
 *   sizes, inode numbers, lock ranges, readdir cookies, lock owners) decode to
 *   an exact bigint; encode takes a bigint or a safe-integer number.
 * - `id`: a u64 the framework allocates itself from a counter (node ids, file
 *   handles, lookup counts), provably below 2^53: decodes to a number built
 *   from two 32-bit halves (about 4x faster than BigInt; the hot GETATTR path
 *   has no bigint at all). A value at or above 2^53 decodes to a number that is
 *   not a safe integer — `decodeRequest` refuses such ids — and encoding one
 *   that is not a safe integer throws.
 * - `time64`: declared uint64_t by the kernel but holding signed seconds.
 * Encoding is strict: a missing field is 0, anything else that is not an
 * integer in the field's range (NaN, 1.5, -1 in an unsigned field, a string)
 * throws a RangeError instead of being written as something else.
 * Arrays (`unused[11]`, `spare[6]` …) are reserved space: skipped on decode,
 * written as zeroes on encode.
 */

/** `time64`: declared uint64_t by the kernel but holding signed seconds (times
 * before 1970 are negative): unsigned in the C layout, read and written as a
 * signed number of seconds (exact within ±2^53 s, 285 million years). */
export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64' | 'id' | 'time64';
/** A field's type: a scalar, or a nested struct (fuse_entry_out's `attr`). */
export type FieldType = Scalar | StructDef<any>;
/** `[name, type]`, or `[name, type, count]` for a reserved array. */
export type FieldSpec = readonly [string, FieldType] | readonly [string, FieldType, number];

type ValueOf<T> = T extends 'u64' | 'i64' ? bigint : T extends StructDef<infer F> ? Decoded<F> : number;
/** The decoded (JavaScript) shape of a struct declaration; arrays are left out. */
export type Decoded<F extends readonly FieldSpec[]> = {
  [K in F[number] as K extends readonly [string, FieldType, number] ? never : K[0]]: ValueOf<K[1]>;
};
type EncValueOf<T> = T extends 'u64' | 'i64' ? bigint | number : T extends StructDef<infer F> ? Encodable<F> : number;
/** What encode accepts: every field optional, nested structs too (missing → 0). */
export type Encodable<F extends readonly FieldSpec[]> = {
  [K in F[number] as K extends readonly [string, FieldType, number] ? never : K[0]]?: EncValueOf<K[1]>;
};

/** A kernel struct: its declaration plus the layout and codec derived from it. */
export interface StructDef<F extends readonly FieldSpec[]> {
  /** The kernel's name of the struct, e.g. 'fuse_entry_out'. */
  readonly name: string;
  /** The declaration, field by field in the kernel's order (padding included). */
  readonly fields: F;
  /** sizeof() the struct, trailing padding included. */
  readonly size: number;
  /** Alignment of the struct (that of its widest field), as C lays it out. */
  readonly align: number;
  /** Byte offset of every field, including padding and arrays, by name. */
  readonly offsets: Readonly<Record<string, number>>;
  /** Fields of type `id` (framework-allocated node ids and handles) other than lookup
   * counts: a request carrying one at or above 2^53 names nothing we handed out. */
  readonly ids: readonly string[];
  /** The first of `ids` at or above 2^53 in a decoded value, or undefined (compiled). */
  readonly badId: (value: Decoded<F>) => string | undefined;
  /** Decodes the struct at `offset` of `view`. */
  decode(view: DataView, offset: number): Decoded<F>;
  /** Encodes `value` at `offset` of `view`; missing fields are written as 0. */
  encode(view: DataView, offset: number, value: Encodable<F>): void;
}

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8, id: 8, time64: 8 };
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
    case 'id': return `(dv.getUint32(${at},true)+dv.getUint32(${at}+4,true)*${TWO32})`;
    case 'time64': return `(dv.getUint32(${at},true)+dv.getInt32(${at}+4,true)*${TWO32})`;
    case 'u64': return `dv.getBigUint64(${at},true)`;
    case 'i64': return `dv.getBigInt64(${at},true)`;
  }
}

/**
 * JavaScript statements that write scalar expression `v` at byte expression `at`.
 * The common case (a number of the right kind) is checked inline with one
 * comparison; anything else (undefined → 0, a bigint, a bad value → RangeError)
 * goes through a helper call.
 */
function writeStmt(t: Scalar, at: string, v: string, label: string): string {
  const f = JSON.stringify(label);
  const MAX = Number.MAX_SAFE_INTEGER;
  const halves = (hi: string) => `{const h=Math.floor(x/${TWO32});dv.setUint32(${at},x-h*${TWO32},true);dv.${hi}(${at}+4,h,true);}`;
  switch (t) {
    case 'u8': return `{let x=${v};if(typeof x!=='number'||(x&255)!==x)x=int(x,0,255,${f});dv.setUint8(${at},x);}`;
    case 'u16': return `{let x=${v};if(typeof x!=='number'||(x&65535)!==x)x=int(x,0,65535,${f});dv.setUint16(${at},x,true);}`;
    case 'u32': return `{let x=${v};if(typeof x!=='number'||(x>>>0)!==x)x=int(x,0,4294967295,${f});dv.setUint32(${at},x,true);}`;
    case 'i32': return `{let x=${v};if(typeof x!=='number'||(x|0)!==x)x=int(x,-2147483648,2147483647,${f});dv.setInt32(${at},x,true);}`;
    case 'id': return `{let x=${v};if(!(typeof x==='number'&&x>=0&&x<=${MAX}&&Math.floor(x)===x))x=int(x,0,${MAX},${f});${halves('setUint32')}}`;
    case 'time64': return `{const x=${v};if(typeof x==='number'&&x>=${-MAX}&&x<=${MAX}&&Math.floor(x)===x)${halves('setInt32')}else time(dv,${at},x,${f});}`;
    case 'u64': return `{const x=${v};if(typeof x==='number'&&x>=0&&x<=${MAX}&&Math.floor(x)===x)${halves('setUint32')}`
      + `else if(typeof x==='bigint'&&x>=0n&&x<=0xffffffffffffffffn)dv.setBigUint64(${at},x,true);else big(dv,${at},x,false,${f});}`;
    case 'i64': return `{const x=${v};if(typeof x==='number'&&x>=${-MAX}&&x<=${MAX}&&Math.floor(x)===x)${halves('setInt32')}`
      + `else if(typeof x==='bigint'&&x>=-0x8000000000000000n&&x<=0x7fffffffffffffffn)dv.setBigInt64(${at},x,true);else big(dv,${at},x,true,${f});}`;
  }
}

/** `x` if it is an integer in [lo, hi]; undefined/null → 0; anything else throws. */
function checkInt(x: unknown, lo: number, hi: number, label: string): number {
  if (typeof x === 'number') {
    if (Number.isInteger(x) && x >= lo && x <= hi) return x;
  } else if (x === undefined || x === null) return 0;
  else if (typeof x === 'bigint' && x >= BigInt(lo) && x <= BigInt(hi)) return Number(x);
  throw new RangeError(`${label}: ${describe(x)} is not an integer in [${lo}, ${hi}]`);
}
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
/** A u64/i64 field from a bigint or a safe-integer number, exactly. */
function writeBig(dv: DataView, at: number, x: unknown, signed: boolean, label: string): void {
  if (typeof x === 'number' && Number.isSafeInteger(x) && (signed || x >= 0)) {
    const h = Math.floor(x / TWO32); // two halves: no BigInt on the common path
    dv.setUint32(at, x - h * TWO32, true);
    dv.setInt32(at + 4, h | 0, true);
    return;
  }
  let b: bigint;
  if (typeof x === 'bigint') b = x;
  else if (typeof x === 'number' && Number.isSafeInteger(x)) b = BigInt(x);
  else if (x === undefined || x === null) b = 0n;
  else throw new RangeError(`${label}: ${describe(x)} is not an integer (use a bigint beyond 2^53)`);
  if (signed ? b < I64_MIN || b > I64_MAX : b < 0n || b > U64_MAX) {
    throw new RangeError(`${label}: ${b} is outside the ${signed ? 'i64' : 'u64'} range`);
  }
  if (signed) dv.setBigInt64(at, b, true);
  else dv.setBigUint64(at, b, true);
}
/** Seconds (time64): any integer in the i64 range, a number beyond 2^53 included (a time a
 * source filesystem holds that far out is an integer double: written as that value). */
function writeTime(dv: DataView, at: number, x: unknown, label: string): void {
  if (typeof x === 'number' && Number.isSafeInteger(x)) {
    const h = Math.floor(x / TWO32);
    dv.setUint32(at, x - h * TWO32, true);
    dv.setInt32(at + 4, h, true);
  } else if (typeof x === 'number' && Number.isInteger(x) && x >= -(2 ** 63) && x < 2 ** 63) {
    dv.setBigInt64(at, BigInt(x), true);
  } else {
    writeBig(dv, at, x, true, label);
  }
}
function describe(x: unknown): string {
  return typeof x === 'string' ? JSON.stringify(x) : typeof x === 'object' ? Object.prototype.toString.call(x) : String(x);
}

/** Declares a kernel struct: computes C layout (natural alignment) and compiles a codec. */
export function struct<const F extends readonly FieldSpec[]>(name: string, fields: F): StructDef<F> {
  const offsets: Record<string, number> = {};
  let off = 0;
  let align = 1;
  const dec: string[] = [];
  const enc: string[] = [];
  const nested: StructDef<any>[] = [];
  const ids: string[] = [];
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
    if (type === 'id' && fname !== 'nlookup') ids.push(fname);
    if (typeof type === 'string') {
      dec.push(`${key}:${readExpr(type, at)}`);
      enc.push(writeStmt(type, at, `v[${key}]`, `${name}.${fname}`));
    } else {
      const i = nested.push(type) - 1;
      dec.push(`${key}:n[${i}].decode(dv,${at})`);
      enc.push(`n[${i}].encode(dv,${at},v[${key}]||{});`);
    }
    off += sizeOf(type);
  }
  const size = Math.ceil(off / align) * align;
  const decode = new Function('n', 'int', 'big', 'time', `return function decode_${name}(dv,o){return {${dec.join(',')}};}`)(nested, checkInt, writeBig, writeTime);
  const encode = new Function('n', 'int', 'big', 'time', `return function encode_${name}(dv,o,v){${enc.join('')}}`)(nested, checkInt, writeBig, writeTime);
  const badId = new Function('v', `return ${ids.map((k) => `v[${JSON.stringify(k)}]>${Number.MAX_SAFE_INTEGER}?${JSON.stringify(k)}:`).join('')}undefined;`) as (value: Decoded<F>) => string | undefined;
  return Object.freeze({ name, fields, size, align, offsets: Object.freeze(offsets), ids: Object.freeze(ids), badId, decode, encode });
}
