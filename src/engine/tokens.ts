/**
 * Token ids for trace prompts. A trace names each prompt token only by
 * (segment id, offset) (design/replay.md), the identity the block hashes are
 * computed from (trace/hashing.ts); the engine needs ids, so it derives
 * them from that same identity: token (id, offset) is a hash of the
 * segment id's fingerprint and the offset, modulo the vocabulary. Equal
 * identities give equal ids, so two prompts whose block hashes agree feed
 * the model the same tokens and their cached KV is interchangeable.
 */
import { fingerprint64, fmix32 } from '../trace/hashing.js';
import type { TraceSegment } from '../trace/format.js';

export class TraceTokens {
  readonly vocab: number;
  readonly #fingerprints = new Map<string, { hi: number; lo: number }>();

  /** @throws RangeError when vocab is not an integer in [1, 2^22]. */
  constructor(vocab: number) {
    if (!Number.isInteger(vocab) || vocab < 1 || vocab > 1 << 22) throw new RangeError(`TraceTokens: vocab must be an integer in [1, 2^22], got ${vocab}`);
    this.vocab = vocab;
  }

  /** The id of token `offset` of segment `id`. */
  token(id: string, offset: number): number {
    let fp = this.#fingerprints.get(id);
    if (fp === undefined) {
      fp = fingerprint64(id);
      this.#fingerprints.set(id, fp);
    }
    const h = fmix32(fp.lo ^ fmix32(fp.hi ^ Math.imul(offset + 1, 0x9e3779b1))) >>> 0;
    return h % this.vocab;
  }

  /** The tokens of segments in order, then `extra` more tokens of segment `extraId` (a reply). */
  tokens(segments: readonly TraceSegment[], extraId?: string, extra = 0): Int32Array {
    let length = extra;
    for (const segment of segments) length += segment.tokens;
    const out = new Int32Array(length);
    let at = 0;
    for (const segment of segments) {
      for (let i = 0; i < segment.tokens; i++) out[at++] = this.token(segment.id, i);
    }
    if (extraId !== undefined) for (let i = 0; i < extra; i++) out[at++] = this.token(extraId, i);
    return out;
  }
}
