/**
 * Names are bytes. Linux allows any byte in a name but '/' and NUL; the API
 * hands names out as strings for convenience, and the conversion is lossless
 * both ways (the "surrogateescape" scheme of Python's os.fsdecode):
 *
 * - valid UTF-8 decodes as usual: `'hello'`, `'café'`;
 * - every byte of an invalid sequence becomes the lone surrogate
 *   U+DC00 + byte (U+DC80 … U+DCFF): `\xff` → `'\udcff'`.
 *
 * Valid UTF-8 never decodes to a lone surrogate (UTF-8 cannot encode one), so
 * the mapping is a bijection: `nameToBytes(nameFromBytes(b))` equals `b` for
 * every byte string, and two different names never become one string.
 * A string with another lone surrogate (U+D800 … U+DC7F, U+DD00 … U+DFFF)
 * names no byte string: `nameToBytes` refuses it with a RangeError.
 */

// ignoreBOM: a leading EF BB BF is part of the name, not a byte-order mark to drop.
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const SURROGATE = /[\ud800-\udfff]/;

/** The name for the bytes `b` (lossless; see above). */
export function nameFromBytes(b: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80) { ascii = false; break; }
  if (ascii) return latin1(b);
  try {
    return fatal.decode(b);
  } catch {
    return decodeEscaped(b);
  }
}

/** The exact bytes of `name` (a Buffer you may keep). */
export function nameToBytes(name: string): Buffer {
  if (!SURROGATE.test(name)) return Buffer.from(name, 'utf8');
  return encodeEscaped(name);
}

/** Bytes `name` takes on the wire (without a NUL). */
export function nameByteLength(name: string): number {
  return SURROGATE.test(name) ? encodeEscaped(name).length : Buffer.byteLength(name, 'utf8');
}

/** Writes the bytes of `name` into `out` at `at`; returns how many were written. */
export function writeName(out: Uint8Array, at: number, name: string): number {
  if (!SURROGATE.test(name)) {
    const r = TEXT.encodeInto(name, out.subarray(at));
    return r.written;
  }
  const b = encodeEscaped(name);
  out.set(b, at);
  return b.length;
}
const TEXT = new TextEncoder();

/** True when `name` holds escaped bytes (it came from a name that is not valid UTF-8). */
export function isEscapedName(name: string): boolean {
  return /[\udc80-\udcff]/.test(name);
}

function latin1(b: Uint8Array): string {
  if (b.length < 32) {
    let s = '';
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return s;
  }
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/** Length of the valid UTF-8 sequence starting at b[i], or 0 if none (WHATWG rules: shortest form,
 * no surrogates, at most U+10FFFF). */
function seqLength(b: Uint8Array, i: number): number {
  const c = b[i];
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // not a surrogate
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

function decodeEscaped(b: Uint8Array): string {
  let s = '';
  let i = 0;
  while (i < b.length) {
    const n = seqLength(b, i);
    if (n === 0) {
      s += String.fromCharCode(0xdc00 + b[i]);
      i++;
      continue;
    }
    let cp = n === 1 ? b[i] : b[i] & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) cp = (cp << 6) | (b[i + k] & 0x3f);
    s += String.fromCodePoint(cp);
    i += n;
  }
  return s;
}

function encodeEscaped(name: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (u >= 0xd800 && u <= 0xdbff) {
      const v = name.charCodeAt(i + 1);
      if (v >= 0xdc00 && v <= 0xdfff) {
        const cp = 0x10000 + ((u - 0xd800) << 10) + (v - 0xdc00);
        out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
        i++;
        continue;
      }
      throw new RangeError(`name ${JSON.stringify(name)} holds a lone surrogate U+${u.toString(16)} that names no byte`);
    }
    if (u >= 0xdc80 && u <= 0xdcff) { out.push(u - 0xdc00); continue; }
    if (u >= 0xdc00 && u <= 0xdfff) {
      throw new RangeError(`name ${JSON.stringify(name)} holds a lone surrogate U+${u.toString(16)} that names no byte`);
    }
    if (u < 0x80) out.push(u);
    else if (u < 0x800) out.push(0xc0 | (u >> 6), 0x80 | (u & 0x3f));
    else out.push(0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f));
  }
  return Buffer.from(out);
}
