import { nativeAddon } from './addon.js';
import { checkInt } from '../util/check.js';

/**
 * Chained 64-bit hashes of the full blocks of a token sequence, computed
 * natively: hash i covers tokens [0, (i + 1) * blockSize). A trailing partial
 * block gets no hash. `parentHash` continues an existing chain. Identical to
 * the TypeScript reference in hash.ts.
 */
export function hashTokenBlocks(tokens: Uint32Array, blockSize: number, parentHash = 0n): BigUint64Array {
  if (!(tokens instanceof Uint32Array)) throw new TypeError('hashTokenBlocks: tokens must be a Uint32Array');
  checkInt(blockSize, 'hashTokenBlocks: blockSize', 1, 1 << 20);
  if (typeof parentHash !== 'bigint') throw new TypeError('hashTokenBlocks: parentHash must be a bigint');
  if (parentHash < 0n || parentHash >= 1n << 64n) {
    throw new RangeError('hashTokenBlocks: parentHash must fit in 64 unsigned bits');
  }
  return nativeAddon().hashTokenBlocks(tokens, blockSize, parentHash);
}

/**
 * XXH64 of `bytes` (xxHash's 64-bit variant, as its specification defines
 * it), computed natively at several GB/s: the remote tier's checksum of a
 * block. Identical to referenceXxh64 in hash.ts.
 */
export function xxh64(bytes: Uint8Array, seed = 0n): bigint {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('xxh64: bytes must be a Uint8Array');
  if (typeof seed !== 'bigint') throw new TypeError('xxh64: seed must be a bigint');
  if (seed < 0n || seed >= 1n << 64n) throw new RangeError('xxh64: seed must fit in 64 unsigned bits');
  return nativeAddon().xxh64(bytes, seed);
}
