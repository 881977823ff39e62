// The engine on its own: decode after a chunked prefill equals decode after
// a one-shot prefill, a sequence's logits do not depend on what is batched
// beside it, and misuse is refused before anything is written.
import { describe, expect, it } from 'vitest';

import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { kvBytesPerBlock, loadModelConfig, modelConfigFromJson, MODEL_PRESETS } from '../../src/engine/config.js';
import { Engine } from '../../src/engine/engine.js';
import { maxRelativeError, randomTokens, TOLERANCE } from './helpers.js';

const MODEL = MODEL_PRESETS.tiny;
const BLOCK = 16;

function bareEngine(blocks: number, seed = 3): Engine {
  return new Engine({ model: MODEL, blockSize: BLOCK, pool: new ArrayBuffer(blocks * kvBytesPerBlock(MODEL, BLOCK)), threads: 2, seed });
}

/** Teacher-forced decode of `outputs` after the prompt's KV is in `table`; logits per step. */
function decodeAll(engine: Engine, table: Int32Array, promptLength: number, outputs: Int32Array): Float32Array[] {
  return Array.from(outputs, (token, j) => engine.forward([{ tokens: Int32Array.of(token), start: promptLength + j, blockTable: table }]));
}

describe('Engine', () => {
  const prompt = randomTokens(MODEL.vocab, 90, 1);
  const outputs = randomTokens(MODEL.vocab, 12, 2);
  const table = Int32Array.from({ length: 7 }, (_, i) => 6 - i);

  it('decodes after a chunked prefill exactly as after a one-shot prefill', () => {
    const oneShot = bareEngine(7);
    const first = oneShot.forward([{ tokens: prompt, start: 0, blockTable: table }]);
    const want = decodeAll(oneShot, table, prompt.length, outputs);
    for (const chunks of [[1, 15, 16, 58], [33, 33, 24], [7, 80, 3]]) {
      const chunked = bareEngine(7);
      let at = 0;
      let last: Float32Array = new Float32Array(0);
      for (const size of chunks) {
        last = chunked.forward([{ tokens: prompt.subarray(at, at + size), start: at, blockTable: table }]);
        at += size;
      }
      expect(maxRelativeError(last, first)).toBeLessThanOrEqual(TOLERANCE);
      const got = decodeAll(chunked, table, prompt.length, outputs);
      got.forEach((logits, j) => expect(maxRelativeError(logits, want[j]!)).toBeLessThanOrEqual(TOLERANCE));
    }
  });

  it('gives a sequence the same logits whatever is batched beside it', () => {
    const alone = bareEngine(14);
    const a = alone.forward([{ tokens: prompt, start: 0, blockTable: table }]);
    const batched = bareEngine(14);
    const other = Int32Array.from({ length: 7 }, (_, i) => 7 + i);
    const otherPrompt = randomTokens(MODEL.vocab, 100, 9);
    batched.forward([{ tokens: otherPrompt.subarray(0, 99), start: 0, blockTable: other }]);
    const both = batched.forward([
      { tokens: otherPrompt.subarray(99), start: 99, blockTable: other },
      { tokens: prompt, start: 0, blockTable: table },
    ]);
    expect(both.length).toBe(2 * MODEL.vocab);
    expect(maxRelativeError(both.subarray(MODEL.vocab), a)).toBeLessThanOrEqual(TOLERANCE);
    // Decode steps of both sequences in one batch (the decode kernel), against each alone.
    const step = batched.forward([
      { tokens: Int32Array.of(outputs[0]!), start: 100, blockTable: other },
      { tokens: Int32Array.of(outputs[0]!), start: 90, blockTable: table },
    ]);
    const aloneStep = alone.forward([{ tokens: Int32Array.of(outputs[0]!), start: 90, blockTable: table }]);
    expect(maxRelativeError(step.subarray(MODEL.vocab), aloneStep)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('computes on the data plane device pool itself', () => {
    const bytesPerBlock = kvBytesPerBlock(MODEL, BLOCK);
    const plane = new CpuDataPlane({ bytesPerBlock, deviceBlocks: 4, hostBlocks: 0 });
    const engine = new Engine({ model: MODEL, blockSize: BLOCK, pool: plane, threads: 1 });
    expect(engine.blocks).toBe(4);
    expect(plane.devicePool()).toBe(plane.devicePool());
    // Tokens 0-15 in slot 2, tokens 16-19 in slot 0: in the documented layout
    // kv[layer][K|V][kvHead][token][dim], exactly rows 0-3 of every
    // (layer, K|V, head) matrix of slot 0 are written, all rows of slot 2.
    engine.forward([{ tokens: prompt.subarray(0, 20), start: 0, blockTable: Int32Array.of(2, 0) }]);
    const dim = MODEL.modelDim / MODEL.heads;
    const written = (slot: number) => {
      const block = new Float32Array(plane.read('device', slot).buffer);
      const rows: number[] = [];
      for (let matrix = 0; matrix < MODEL.layers * 2 * MODEL.kvHeads; matrix++) {
        for (let token = 0; token < BLOCK; token++) {
          const at = (matrix * BLOCK + token) * dim;
          if (block.subarray(at, at + dim).some((v) => v !== 0)) rows.push(token);
        }
      }
      return rows;
    };
    const matrices = MODEL.layers * 2 * MODEL.kvHeads;
    expect(written(0)).toEqual(Array.from({ length: matrices }, () => [0, 1, 2, 3]).flat());
    expect(written(2)).toEqual(Array.from({ length: matrices }, () => Array.from({ length: BLOCK }, (_, t) => t)).flat());
    expect(written(1)).toEqual([]);
    expect(written(3)).toEqual([]);
  });

  it('refuses misuse with the argument named', () => {
    const engine = bareEngine(2);
    expect(() => engine.forward([])).toThrow(TypeError);
    expect(() => engine.forward([{ tokens: prompt, start: 0, blockTable: Int32Array.of(0, 1) }])).toThrow(/blockTable has 2 blocks; positions up to 90 need 6/);
    expect(() => engine.forward([{ tokens: Int32Array.of(MODEL.vocab), start: 0, blockTable: Int32Array.of(0) }])).toThrow(/token 0 is 512, outside the vocabulary/);
    expect(() => engine.forward([{ tokens: Int32Array.of(1), start: 0, blockTable: Int32Array.of(2) }])).toThrow(/slot 2, outside the pool of 2 blocks/);
    const plane = new CpuDataPlane({ bytesPerBlock: 4096, deviceBlocks: 2 });
    expect(() => new Engine({ model: MODEL, blockSize: BLOCK, pool: plane })).toThrow(/4096-byte blocks, the model's KV needs 8192/);
    expect(() => new Engine({ model: { ...MODEL, kvHeads: 3 }, blockSize: BLOCK, pool: new ArrayBuffer(8192) })).toThrow(RangeError);
  });

  it('reads model configs in its own or Hugging Face field names', () => {
    expect(loadModelConfig('tiny')).toEqual(MODEL);
    const hf = { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 512, tie_word_embeddings: true };
    expect(modelConfigFromJson(hf)).toEqual(MODEL);
    expect(() => modelConfigFromJson({ hidden_size: 64 })).toThrow(/missing layers \(or num_hidden_layers\)/);
    expect(() => loadModelConfig('no-such-model.json')).toThrow(/model config no-such-model.json: cannot read it/);
  });
});
