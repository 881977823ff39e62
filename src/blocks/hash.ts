/**
 * Chained 64-bit block hashes over token ids: a BigInt port of
 * native/core/token_hash.h. Both produce identical values, so hashes computed
 * here can be handed to the native block manager and vice versa.
 *
 * hash(block) = fmix64(state), where state starts from the parent's hash
 * mixed with the block length and then absorbs each token id. Equal hashes
 * mean equal token prefixes (up to 64-bit collisions).
 */
import { MAX_BLOCK_SIZE } from './validate.js';

/** Token ids: uint32 values. An Int32Array is read as the same 32 bits unsigned. */
export type TokenArray = Uint32Array | Int32Array | readonly number[];

const HASH_SEED = 0x9e3779b97f4a7c15n;
const HASH_TOKEN_MUL = 0xc2b2ae3d27d4eb4fn;
const HASH_ROUND_MUL = 0x165667b19e3779f9n;
const HASH_ROUND_ADD = 0x27d4eb2f165667c5n;
const FMIX_MUL_1 = 0xff51afd7ed558ccdn;
const FMIX_MUL_2 = 0xc4ceb9fe1a85ec53n;
const UINT64_MAX = (1n << 64n) - 1n;

const u64 = (x: bigint): bigint => BigInt.asUintN(64, x);

function fmix64(k: bigint): bigint {
  k ^= k >> 33n;
  k = u64(k * FMIX_MUL_1);
  k ^= k >> 33n;
  k = u64(k * FMIX_MUL_2);
  k ^= k >> 33n;
  return k;
}

function checkTokens(tokens: unknown, name: string): TokenArray {
  if (tokens instanceof Uint32Array || tokens instanceof Int32Array) return tokens;
  if (!Array.isArray(tokens)) {
    throw new TypeError(`${name} must be a Uint32Array, an Int32Array or an array of numbers`);
  }
  return tokens as readonly number[];
}

function checkParent(parent: unknown, name: string): bigint {
  if (typeof parent !== 'bigint') throw new TypeError(`${name} must be a bigint, got ${typeof parent}`);
  if (parent < 0n || parent > UINT64_MAX) throw new RangeError(`${name} must be in [0, 2^64), got ${parent}`);
  return parent;
}

// Plain arrays carry no width, so their entries are held to uint32 here;
// typed arrays are uint32 by construction (Int32Array by reinterpretation).
function checkTokenRange(tokens: TokenArray, start: number, end: number, name: string): void {
  if (!Array.isArray(tokens)) return;
  for (let i = start; i < end; i++) {
    const t: unknown = tokens[i];
    if (typeof t !== 'number') throw new TypeError(`${name}[${i}] must be a number, got ${typeof t}`);
    if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw new RangeError(`${name}[${i}] must be an integer in [0, 2^32), got ${t}`);
    }
  }
}

function checkCount(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in [0, ${max}], got ${value}`);
  }
  return value;
}

function hashUnchecked(parent: bigint, tokens: TokenArray, start: number, count: number): bigint {
  let state = parent ^ u64(HASH_SEED * BigInt(count + 1));
  for (let i = start; i < start + count; i++) {
    const token = (tokens[i] as number) >>> 0;
    state ^= u64(BigInt(token) * HASH_TOKEN_MUL);
    const rotated = u64(state << 27n) | (state >> 37n);
    state = u64(rotated * HASH_ROUND_MUL + HASH_ROUND_ADD);
  }
  return fmix64(state);
}

/**
 * Hash of one block of `count` tokens starting at `tokens[start]`, chained to
 * the hash of the block before it (`parent`, 0n for the first block).
 *
 * @throws TypeError when an argument has the wrong type.
 * @throws RangeError when `parent` is not a uint64, the range falls outside
 *   `tokens`, or a plain-array token is not a uint32.
 */
export function hashBlock(parent: bigint, tokens: TokenArray, start: number, count: number): bigint {
  checkParent(parent, 'hashBlock: parent');
  const t = checkTokens(tokens, 'hashBlock: tokens');
  checkCount(start, 'hashBlock: start', t.length);
  checkCount(count, 'hashBlock: count', t.length - start);
  checkTokenRange(t, start, start + count, 'hashBlock: tokens');
  return hashUnchecked(parent, t, start, count);
}

/**
 * Chained hashes of the full blocks of `tokens`: floor(tokens.length /
 * blockSize) values, where block b hashes tokens [b * blockSize, (b + 1) *
 * blockSize) under the hash of block b - 1 (`parentHash` for block 0). A
 * trailing partial block gets no hash, as it cannot be shared yet.
 *
 * @param parentHash hash of the block preceding `tokens` (default 0n: the
 *   tokens start a sequence).
 * @throws TypeError when an argument has the wrong type.
 * @throws RangeError when `blockSize` is not in [1, 2^20], `parentHash` is
 *   not a uint64, or a plain-array token is not a uint32.
 */
export function hashTokenBlocks(tokens: TokenArray, blockSize: number, parentHash: bigint = 0n): BigUint64Array {
  const t = checkTokens(tokens, 'hashTokenBlocks: tokens');
  if (typeof blockSize !== 'number') {
    throw new TypeError(`hashTokenBlocks: blockSize must be a number, got ${typeof blockSize}`);
  }
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
    throw new RangeError(`hashTokenBlocks: blockSize must be an integer in [1, ${MAX_BLOCK_SIZE}], got ${blockSize}`);
  }
  let parent = checkParent(parentHash, 'hashTokenBlocks: parentHash');
  const blocks = Math.floor(t.length / blockSize);
  checkTokenRange(t, 0, t.length, 'hashTokenBlocks: tokens');
  const out = new BigUint64Array(blocks);
  for (let b = 0; b < blocks; b++) {
    parent = hashUnchecked(parent, t, b * blockSize, blockSize);
    out[b] = parent;
  }
  return out;
}
