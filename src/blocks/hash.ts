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

const M64 = (1n << 64n) - 1n;
const XXH_P1 = 11400714785074694791n;
const XXH_P2 = 14029467366897019727n;
const XXH_P3 = 1609587929392839161n;
const XXH_P4 = 9650029242287828579n;
const XXH_P5 = 2870177450012600261n;
const rotl64 = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M64;
const mul64 = (a: bigint, b: bigint) => (a * b) & M64;
const xxhRound = (acc: bigint, lane: bigint) => mul64(rotl64((acc + mul64(lane, XXH_P2)) & M64, 31n), XXH_P1);
const xxhMerge = (acc: bigint, lane: bigint) => (mul64(acc ^ xxhRound(0n, lane), XXH_P1) + XXH_P4) & M64;

/** The little-endian unsigned integer of bytes [at, at + n). */
function littleEndian(bytes: Uint8Array, at: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
  return v;
}

/**
 * XXH64 in plain BigInt arithmetic, step by step as xxHash's specification
 * states it: the oracle of the native xxh64 (native_hash.ts), slow and
 * meant for tests.
 */
export function referenceXxh64(bytes: Uint8Array, seed = 0n): bigint {
  const length = bytes.length;
  let at = 0;
  let h: bigint;
  if (length >= 32) {
    let v1 = (seed + XXH_P1 + XXH_P2) & M64;
    let v2 = (seed + XXH_P2) & M64;
    let v3 = seed;
    let v4 = (seed - XXH_P1) & M64;
    for (; at + 32 <= length; at += 32) {
      v1 = xxhRound(v1, littleEndian(bytes, at, 8));
      v2 = xxhRound(v2, littleEndian(bytes, at + 8, 8));
      v3 = xxhRound(v3, littleEndian(bytes, at + 16, 8));
      v4 = xxhRound(v4, littleEndian(bytes, at + 24, 8));
    }
    h = (rotl64(v1, 1n) + rotl64(v2, 7n) + rotl64(v3, 12n) + rotl64(v4, 18n)) & M64;
    for (const v of [v1, v2, v3, v4]) h = xxhMerge(h, v);
  } else {
    h = (seed + XXH_P5) & M64;
  }
  h = (h + BigInt(length)) & M64;
  for (; at + 8 <= length; at += 8) h = (mul64(rotl64(h ^ xxhRound(0n, littleEndian(bytes, at, 8)), 27n), XXH_P1) + XXH_P4) & M64;
  if (at + 4 <= length) {
    h = (mul64(rotl64(h ^ mul64(littleEndian(bytes, at, 4), XXH_P1), 23n), XXH_P2) + XXH_P3) & M64;
    at += 4;
  }
  for (; at < length; at++) h = mul64(rotl64(h ^ mul64(BigInt(bytes[at]!), XXH_P5), 11n), XXH_P1);
  h = mul64(h ^ (h >> 33n), XXH_P2);
  h = mul64(h ^ (h >> 29n), XXH_P3);
  return h ^ (h >> 32n);
}
