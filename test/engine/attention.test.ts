// The paged layout and the decode attention kernel from TypeScript: K/V the
// engine wrote are found at the documented offsets of the pool, and the
// kernel over them matches the TypeScript oracle on random queries.
import { describe, expect, it } from 'vitest';

import { kvBytesPerBlock, kvOffset, type ModelConfig } from '../../src/engine/config.js';
import { Engine } from '../../src/engine/engine.js';
import { referenceDecodeAttention } from '../../src/engine/reference.js';
import { seededRandom } from '../../src/util/random.js';
import { maxRelativeError, randomTokens } from './helpers.js';

describe.each([
  ['GQA 6/2', { layers: 2, modelDim: 48, heads: 6, kvHeads: 2, ffnDim: 64, vocab: 97, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: true }, 5],
  ['MHA 2/2', { layers: 3, modelDim: 32, heads: 2, kvHeads: 2, ffnDim: 40, vocab: 61, ropeTheta: 500000, normEps: 1e-5, tiedEmbeddings: false }, 16],
] as [string, ModelConfig, number][])('decode attention, %s', (_, model, blockSize) => {
  it('reads the K/V at the documented offsets and matches the oracle', () => {
    const blocks = 24;
    const pool = new ArrayBuffer(blocks * kvBytesPerBlock(model, blockSize));
    const engine = new Engine({ model, blockSize, pool, threads: 2, seed: 3 });
    const floats = new Float32Array(pool);
    const random = seededRandom(blockSize);
    // Three sequences on interleaved, shuffled slots.
    const slots = Array.from({ length: blocks }, (_, i) => (i * 7 + 5) % blocks);
    const lengths = [3 * blockSize + 2, blockSize, 17];
    let next = 0;
    const sequences = lengths.map((length, s) => {
      const table = Int32Array.from(slots.slice(next, (next += Math.ceil(length / blockSize))));
      engine.forward([{ tokens: randomTokens(model.vocab, length, 10 + s), start: 0, blockTable: table }]);
      return { position: length - 1, blockTable: table };
    });
    const hd = model.modelDim / model.heads;
    const queries = Float32Array.from({ length: sequences.length * model.modelDim }, () => 2 * random() - 1);
    for (let layer = 0; layer < model.layers; layer++) {
      const got = engine.decodeAttention(layer, queries, sequences);
      sequences.forEach((s, i) => {
        const rows = (kv: 0 | 1) =>
          Array.from({ length: s.position + 1 }, (_, t) => {
            const row = new Float32Array(model.kvHeads * hd);
            for (let g = 0; g < model.kvHeads; g++) {
              const at = kvOffset(model, blockSize, s.blockTable[Math.floor(t / blockSize)]!, layer, kv, g, t % blockSize);
              row.set(floats.subarray(at, at + hd), g * hd);
            }
            return row;
          });
        const keys = rows(0);
        expect(keys.every((row) => row.some((v) => v !== 0))).toBe(true);
        const want = referenceDecodeAttention(model, queries.subarray(i * model.modelDim, (i + 1) * model.modelDim), keys, rows(1));
        expect(maxRelativeError(got.subarray(i * model.modelDim, (i + 1) * model.modelDim), want)).toBeLessThanOrEqual(2e-6);
      });
    }
    expect(() => engine.decodeAttention(model.layers, queries, sequences)).toThrow(RangeError);
  });
});
