/**
 * Block hashes at the edge: 64-bit unsigned values that JSON cannot carry
 * as numbers, so JSON bodies send them as strings (decimal, or hex with
 * 0x), and msgpack bodies as uint64 values or one bin of 8-byte
 * little-endian words.
 */
import { endianness } from 'node:os';

import { badRequest } from './errors.js';

const MAX_U64 = (1n << 64n) - 1n;
const LITTLE_ENDIAN = endianness() === 'LE';

/** The JSON schema of one hash string (the handler range-checks decimals). */
export const HASH_STRING_SCHEMA = { type: 'string', pattern: '^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$' } as const;

/** Hash strings, already matched by {@link HASH_STRING_SCHEMA}, as 64-bit values. */
export function hashesFromStrings(values: readonly string[], field: string): BigUint64Array {
  const out = new BigUint64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = BigInt(values[i]!);
    if (value > MAX_U64) throw badRequest(`${field}[${i}] is larger than 2^64 - 1`);
    out[i] = value;
  }
  return out;
}

/** A hash as JSON writes it: a decimal string. */
export function hashToString(hash: bigint): string {
  return hash.toString();
}

/** Hashes from a decoded msgpack value: a bin of 8n bytes, or an array of uint64 values. */
export function hashesFromMsgpack(value: unknown, field: string): BigUint64Array {
  if (value instanceof Uint8Array) {
    if (value.byteLength % 8 !== 0) throw badRequest(`${field} must be a bin of 8-byte words, got ${value.byteLength} bytes`);
    const n = value.byteLength / 8;
    if (LITTLE_ENDIAN) {
      // A copy into a fresh, aligned buffer the 64-bit view can use (a
      // Buffer's slice() would be a view into node's shared pool).
      return new BigUint64Array(new Uint8Array(value).buffer, 0, n);
    }
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const out = new BigUint64Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getBigUint64(i * 8, true);
    return out;
  }
  if (!Array.isArray(value)) throw badRequest(`${field} must be a bin of 8-byte little-endian words or an array of uint64 values`);
  const out = new BigUint64Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v === 'bigint') {
      if (v < 0n || v > MAX_U64) throw badRequest(`${field}[${i}] must be an unsigned 64-bit value, got ${v}`);
      out[i] = v;
    } else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
      out[i] = BigInt(v);
    } else {
      throw badRequest(`${field}[${i}] must be an unsigned 64-bit integer`);
    }
  }
  return out;
}
