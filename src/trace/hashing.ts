/**
 * Block hashes for trace prompts, from segment identities rather than token
 * ids (docs/trace-format.md: token `i` of a prompt is identified by
 * (segment id, offset within the segment)).
 *
 * A block's hash is H(parent block hash, identities of its tokens). The
 * tokens of one block are described as the runs (segment, start offset,
 * length) it covers, which is canonical: inside a prompt a new run begins
 * exactly where the segment changes, and a segment always restarts at offset
 * 0, so two token sequences have equal identities if and only if they have
 * equal run lists. Hashing runs costs O(runs + blocks), not O(tokens).
 *
 * Hashes are computed with 32-bit integer math (two murmur3-style lanes
 * finalised together into 64 bits) and written straight into a
 * BigUint64Array: no BigInt arithmetic on the hot path. They depend only on
 * the segment id strings, never on interning order, so any two hashers (or
 * processes) agree.
 */
import type { TraceSegment } from './format.js';

/** Hashes of a prompt's full blocks; a trailing partial block gets none. */
export interface PromptHashes {
  /** `hashes[b]` identifies tokens [0, (b + 1) * blockSize): block b and all before it. */
  hashes: BigUint64Array;
  /** Tokens covered, including a trailing partial block. */
  numTokens: number;
}

/** Largest block size accepted (the block manager's limit). */
export const MAX_HASH_BLOCK_SIZE = 1 << 20;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;
const LANE1_SEED = 0x9e3779b9;
const LANE2_SEED = 0x85ebca6b;

// BigUint64Array elements are in platform byte order; writing the two 32-bit
// halves through a Uint32Array view must follow it.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO_WORD = LITTLE_ENDIAN ? 0 : 1;
const HI_WORD = LITTLE_ENDIAN ? 1 : 0;

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** MurmurHash3's 32-bit finaliser (the result as a signed 32-bit integer). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

function mixLane1(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = rotl32(k, 15);
  k = Math.imul(k, C2);
  h ^= k;
  h = rotl32(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function mixLane2(h: number, k: number): number {
  k = Math.imul(k, C3);
  k = rotl32(k, 16);
  k = Math.imul(k, C4);
  h ^= k;
  h = rotl32(h, 17);
  return (Math.imul(h, 5) + 0x38495ab5) | 0;
}

/**
 * A 64-bit fingerprint of a string as two 32-bit halves. Exposed so that
 * other content-addressed ids (the workload generator's) come from the same
 * function.
 */
export function fingerprint64(text: string): { hi: number; lo: number } {
  let h1 = LANE1_SEED ^ text.length;
  let h2 = LANE2_SEED ^ Math.imul(text.length, 0x27d4eb2f);
  let i = 0;
  for (; i + 1 < text.length; i += 2) {
    const k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
    h1 = mixLane1(h1, k);
    h2 = mixLane2(h2, k ^ h1);
  }
  if (i < text.length) {
    const k = text.charCodeAt(i);
    h1 = mixLane1(h1, k);
    h2 = mixLane2(h2, k ^ h1);
  }
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h1 = (h1 + h2) | 0;
  h2 = (h2 + h1) | 0;
  return { hi: h2 >>> 0, lo: h1 >>> 0 };
}

/**
 * Computes chained block hashes of trace prompts at one block size. Segment
 * ids are fingerprinted once and cached, so hashing a prompt touches each of
 * its segments once and does O(1) work per block. The cache grows with the
 * number of distinct ids seen.
 */
export class PromptHasher {
  /** Tokens per block. */
  readonly blockSize: number;
  readonly #index = new Map<string, number>();
  readonly #fingerprintHi: number[] = [];
  readonly #fingerprintLo: number[] = [];

  /**
   * @param blockSize tokens per block, an integer in [1, 2^20].
   * @throws RangeError when `blockSize` is out of range.
   */
  constructor(blockSize: number) {
    if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_HASH_BLOCK_SIZE) {
      throw new RangeError(`PromptHasher: blockSize must be an integer in [1, ${MAX_HASH_BLOCK_SIZE}], got ${blockSize}`);
    }
    this.blockSize = blockSize;
  }

  /** Distinct segment ids seen so far. */
  get internedIds(): number {
    return this.#index.size;
  }

  /** Hashes of the full blocks of a prompt. */
  hashPrompt(segments: readonly TraceSegment[]): PromptHashes {
    return this.#hash(segments, null, 0);
  }

  /**
   * Hashes of the prompt followed by the reply as one more segment: the
   * chain a later call extends when it re-sends the reply under the same id.
   */
  hashWithOutput(segments: readonly TraceSegment[], outputId: string, outputTokens: number): PromptHashes {
    return this.#hash(segments, outputId, outputTokens);
  }

  #intern(id: string): number {
    let slot = this.#index.get(id);
    if (slot === undefined) {
      const { hi, lo } = fingerprint64(id);
      slot = this.#fingerprintHi.length;
      this.#fingerprintHi.push(hi | 0);
      this.#fingerprintLo.push(lo | 0);
      this.#index.set(id, slot);
    }
    return slot;
  }

  #hash(segments: readonly TraceSegment[], extraId: string | null, extraTokens: number): PromptHashes {
    const blockSize = this.blockSize;
    let numTokens = extraId === null ? 0 : extraTokens;
    for (const segment of segments) numTokens += segment.tokens;
    const blocks = Math.floor(numTokens / blockSize);
    const hashes = new BigUint64Array(blocks);
    const words = new Uint32Array(hashes.buffer);

    const fpHi = this.#fingerprintHi;
    const fpLo = this.#fingerprintLo;
    // Every block starts from its parent's hash; the first block's parent is 0.
    let h1 = mixLane1(LANE1_SEED ^ blockSize, 0);
    let h2 = mixLane2(LANE2_SEED, h1);
    let filled = 0;
    let block = 0;

    const count = segments.length + (extraId === null ? 0 : 1);
    for (let s = 0; s < count && block < blocks; s++) {
      let id: string;
      let tokens: number;
      if (s < segments.length) {
        const segment = segments[s] as TraceSegment;
        id = segment.id;
        tokens = segment.tokens;
      } else {
        id = extraId as string;
        tokens = extraTokens;
      }
      if (tokens === 0) continue;
      const slot = this.#intern(id);
      const hi = fpHi[slot] as number;
      const lo = fpLo[slot] as number;
      let offset = 0;
      while (offset < tokens && block < blocks) {
        const take = Math.min(tokens - offset, blockSize - filled);
        // The run (segment, offset, length) stands for its tokens' identities.
        h1 = mixLane1(h1, lo);
        h2 = mixLane2(h2, hi ^ h1);
        h1 = mixLane1(h1, hi);
        h2 = mixLane2(h2, lo ^ h1);
        h1 = mixLane1(h1, offset);
        h2 = mixLane2(h2, offset ^ h1);
        h1 = mixLane1(h1, take);
        h2 = mixLane2(h2, take ^ h1);
        offset += take;
        filled += take;
        if (filled === blockSize) {
          // Finalise: the parent was folded in when the block began.
          h1 = (h1 + h2) | 0;
          h2 = (h2 + h1) | 0;
          h1 = fmix32(h1);
          h2 = fmix32(h2);
          h1 = (h1 + h2) | 0;
          h2 = (h2 + h1) | 0;
          const parentLo = h1 >>> 0;
          const parentHi = h2 >>> 0;
          words[2 * block + LO_WORD] = parentLo;
          words[2 * block + HI_WORD] = parentHi;
          block++;
          filled = 0;
          h1 = mixLane1(LANE1_SEED ^ blockSize, parentLo);
          h2 = mixLane2(LANE2_SEED, parentHi ^ h1);
        }
      }
    }
    return { hashes, numTokens };
  }
}
