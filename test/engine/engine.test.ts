// The engine on its own: decode after a chunked prefill equals decode after
// a one-shot prefill, a sequence's logits do not depend on what is batched
// beside it, and misuse is refused before anything is written.
import { describe, expect, it } from 'vitest';

import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { kvBytesPerBlock, loadModelConfig, modelConfigFromJson, MODEL_PRESETS } from '../../src/engine/config.js';
import { nativeAddon } from '../../src/blocks/addon.js';
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

  it('runs a pass layer by layer where the attention is computed outside, and refuses passes out of order', () => {
    type Native = {
      forward(...args: unknown[]): Float32Array;
      beginPass(...args: unknown[]): void;
      project(): { layer: number; q: Float32Array; k: Float32Array; v: Float32Array };
      finishLayer(attention: Float32Array): void;
      passLogits(): Float32Array;
    };
    const NativeEngine = (nativeAddon() as unknown as { NativeEngine: new (...args: unknown[]) => Native }).NativeEngine;
    // The same weights twice: one engine over an ArrayBuffer, one over 8 blocks it cannot address.
    const pool = new ArrayBuffer(8 * kvBytesPerBlock(MODEL, BLOCK));
    const inMemory = new NativeEngine(MODEL, BLOCK, pool, 1, 3, null);
    const external = new NativeEngine(MODEL, BLOCK, 8, 1, 3, null);
    const tokens = prompt.subarray(0, 20);
    const batch = [tokens, Int32Array.of(20), Int32Array.of(0), Int32Array.of(0), Int32Array.of(4, 5), Int32Array.of(2), false];
    expect(() => external.forward(...batch)).toThrow(/not in this process's memory/);
    expect(() => external.project()).toThrow(/no pass is running \(call beginPass first\)/);
    expect(() => external.beginPass(tokens, Int32Array.of(20), Int32Array.of(0), Int32Array.of(0), Int32Array.of(4, 8), Int32Array.of(2), false)).toThrow(/slot 8, outside the pool of 8 blocks/);
    // The caller's attention: plain causal attention over the pass's own K/V
    // (a prompt from position 0 needs nothing from the pool). The logits
    // must be the in-memory engine's.
    external.beginPass(...batch);
    expect(() => external.passLogits()).toThrow(/layer 0 of 2 has not run yet/);
    expect(() => external.finishLayer(new Float32Array(20 * MODEL.modelDim))).toThrow(/not projected yet/);
    for (let layer = 0; layer < MODEL.layers; layer++) {
      const { layer: projected, q, k, v } = external.project();
      expect(projected).toBe(layer);
      expect(() => external.project()).toThrow(/is projected and waits for finishLayer/);
      expect(() => external.finishLayer(new Float32Array(3))).toThrow(/rows x modelDim = 1280 floats, got 3/);
      external.finishLayer(causalAttention(q, k, v, 20, MODEL.heads, MODEL.kvHeads, MODEL.modelDim / MODEL.heads));
    }
    expect(() => external.project()).toThrow(/every layer has run/);
    const got = external.passLogits();
    const want = inMemory.forward(...batch);
    expect(maxRelativeError(got, want)).toBeLessThanOrEqual(TOLERANCE);
    expect(() => external.passLogits()).toThrow(/no pass is running/);
  });

  it('reads model configs in its own or Hugging Face field names', () => {
    expect(loadModelConfig('tiny')).toEqual(MODEL);
    const hf = { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 512, tie_word_embeddings: true };
    expect(modelConfigFromJson(hf)).toEqual(MODEL);
    expect(() => modelConfigFromJson({ hidden_size: 64 })).toThrow(/missing layers \(or num_hidden_layers\)/);
    expect(() => loadModelConfig('no-such-model.json')).toThrow(/model config no-such-model.json: cannot read it/);
  });
});

/** Causal attention of n rows over their own K/V ([n][kvHeads][hd]), plain loops in double. */
function causalAttention(q: Float32Array, k: Float32Array, v: Float32Array, n: number, heads: number, kvHeads: number, hd: number): Float32Array {
  const out = new Float32Array(n * heads * hd);
  const group = heads / kvHeads;
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const scores = new Float64Array(i + 1);
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[(i * heads + h) * hd + d]! * k[(j * kvHeads + kh) * hd + d]!;
        scores[j] = dot / Math.sqrt(hd);
        max = Math.max(max, scores[j]!);
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += (scores[j] = Math.exp(scores[j]! - max));
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j <= i; j++) acc += scores[j]! * v[(j * kvHeads + kh) * hd + d]!;
        out[(i * heads + h) * hd + d] = acc / sum;
      }
    }
  }
  return out;
}
