// Logits of prompts served from cached KV blocks (on device, loaded back
// from host through the copy plans, recomputed after eviction) equal the
// logits of the same prompts computed from nothing.
import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { kvBytesPerBlock, MODEL_PRESETS, type ModelConfig } from '../../src/engine/config.js';
import { Engine } from '../../src/engine/engine.js';
import { maxRelativeError, randomTokens, TOLERANCE } from './helpers.js';

const BLOCK = 16;
// GQA (4 query heads on 2 KV heads, tied head) and MQA with a separate output head.
const MODELS: [string, ModelConfig][] = [
  ['tiny (GQA 4/2, tied)', MODEL_PRESETS.tiny],
  ['MQA 6/1, separate head', { ...MODEL_PRESETS.tiny, heads: 6, kvHeads: 1, modelDim: 48, tiedEmbeddings: false, ropeTheta: 500000 }],
];

function setup(model: ModelConfig, deviceBlocks: number, hostBlocks: number) {
  const bytesPerBlock = kvBytesPerBlock(model, BLOCK);
  const manager = new BlockManager({ blockSize: BLOCK, bytesPerBlock, deviceBlocks, hostBlocks });
  const plane = new CpuDataPlane({ bytesPerBlock, deviceBlocks, hostBlocks });
  const engine = new Engine({ model, blockSize: BLOCK, pool: plane, threads: 2, seed: 7 });
  let nextId = 1;
  /** Admits, loads, prefills the uncached suffix and commits; returns the suffix's logits. */
  const serve = (tokens: Int32Array, release = true) => {
    const hashes = hashTokenBlocks(new Uint32Array(tokens.buffer, tokens.byteOffset, tokens.length), BLOCK);
    const id = nextId++;
    const decision = manager.admit(id, hashes, tokens.length);
    if (decision === null) throw new Error('no room');
    plane.execute(manager.takeCopyPlan());
    const cached = decision.cachedDeviceTokens + decision.loadedBlocks * BLOCK;
    const start = Math.min(cached, tokens.length - 1);
    const logits = engine.forward([{ tokens: tokens.subarray(start), start, writeFrom: cached, blockTable: decision.blockTable }], { allLogits: true });
    manager.commit(id, hashes.length);
    if (release) manager.release(id);
    return { id, start, logits, deviceHits: decision.cachedDeviceTokens, loaded: decision.loadedBlocks, blockIds: decision.blockIds };
  };
  return { manager, plane, engine, serve };
}

/** Every position's logits of `tokens`, computed in a pool of its own with nothing cached. */
function fromNothing(model: ModelConfig, tokens: Int32Array): Float32Array {
  const blocks = Math.ceil(tokens.length / BLOCK);
  const engine = new Engine({ model, blockSize: BLOCK, pool: new ArrayBuffer(blocks * kvBytesPerBlock(model, BLOCK)), threads: 1, seed: 7 });
  // A shuffled table: the result must not depend on where the blocks are.
  const table = Int32Array.from({ length: blocks }, (_, i) => (i * 5 + 3) % blocks);
  if (new Set(table).size !== blocks) table.forEach((_, i) => (table[i] = blocks - 1 - i));
  return engine.forward([{ tokens, start: 0, blockTable: table }], { allLogits: true });
}

function expectSameAsFromNothing(model: ModelConfig, tokens: Int32Array, served: { start: number; logits: Float32Array }): void {
  const want = fromNothing(model, tokens).subarray(served.start * model.vocab);
  expect(served.logits.length).toBe(want.length);
  expect(maxRelativeError(served.logits, want)).toBeLessThanOrEqual(TOLERANCE);
}

describe.each(MODELS)('prefix-cache hits, %s', (_, model) => {
  it('serves a prompt extending a cached one from device blocks, across block boundaries', () => {
    const { serve } = setup(model, 64, 0);
    const base = randomTokens(model.vocab, 70, 1);
    serve(base);
    for (const extra of [1, 9, 10, 26, 57]) {
      const tokens = Int32Array.from([...base, ...randomTokens(model.vocab, extra, extra)]);
      const served = serve(tokens);
      expect(served.deviceHits).toBe(64); // the four full blocks of the base prompt
      expectSameAsFromNothing(model, tokens, served);
    }
  });

  it('recomputes only the last token of a prompt whose every block is cached', () => {
    const { serve, plane } = setup(model, 64, 0);
    const tokens = randomTokens(model.vocab, 3 * BLOCK, 2);
    serve(tokens);
    const before = new Uint8Array(plane.devicePool().slice(0));
    const served = serve(tokens);
    expect(served.deviceHits).toBe(3 * BLOCK);
    expect(served.start).toBe(3 * BLOCK - 1);
    expectSameAsFromNothing(model, tokens, served);
    // The shared blocks were read, never rewritten.
    expect(Buffer.compare(new Uint8Array(plane.devicePool()), before)).toBe(0);
  });

  it('loads demoted blocks back from host through the copy plan', () => {
    const { serve, manager, plane } = setup(model, 32, 32);
    const base = randomTokens(model.vocab, 5 * BLOCK + 3, 3);
    const first = serve(base);
    expect(manager.demote(first.blockIds.slice(0, 5).reverse())).toBe(5);
    plane.execute(manager.takeCopyPlan());
    // Poison the whole device pool: the KV can only come back from the host copies.
    new Float32Array(plane.devicePool()).fill(Number.NaN);
    const tokens = Int32Array.from([...base, ...randomTokens(model.vocab, 20, 4)]);
    const served = serve(tokens);
    expect(served.deviceHits).toBe(0);
    expect(served.loaded).toBe(5);
    expectSameAsFromNothing(model, tokens, served);
  });

  it('recomputes a prompt whose blocks were evicted, and matches again', () => {
    const { serve, manager } = setup(model, 12, 0);
    const tokens = randomTokens(model.vocab, 4 * BLOCK + 5, 5);
    serve(tokens);
    for (let i = 0; i < 3; i++) serve(randomTokens(model.vocab, 4 * BLOCK, 100 + i)); // evicts the first prompt
    expect(manager.lookup(hashTokenBlocks(new Uint32Array(tokens), BLOCK)).deviceBlocks).toBe(0);
    const served = serve(tokens);
    expect(served.deviceHits).toBe(0);
    expectSameAsFromNothing(model, tokens, served);
    const again = serve(tokens);
    expect(again.deviceHits).toBe(4 * BLOCK);
    expectSameAsFromNothing(model, tokens, again);
  });

  it('follows a commit that moves a request onto an equal cached block (the block table is re-read)', () => {
    const { manager, plane, engine } = setup(model, 16, 0);
    const prompt = randomTokens(model.vocab, 2 * BLOCK + 4, 6);
    const hashes = hashTokenBlocks(new Uint32Array(prompt), BLOCK);
    const outputs = randomTokens(model.vocab, 6, 7);
    const numTokens = prompt.length + outputs.length;
    // Two requests compute the same prompt before either commits.
    const a = manager.admit(1, hashes, numTokens)!;
    const b = manager.admit(2, hashes, numTokens)!;
    plane.execute(manager.takeCopyPlan());
    engine.forward([{ tokens: prompt, start: 0, blockTable: a.blockTable }, { tokens: prompt, start: 0, blockTable: b.blockTable }]);
    manager.commit(1, hashes.length);
    const after = manager.commit(2, hashes.length);
    expect(Array.from(after.subarray(0, 2))).toEqual(Array.from(a.blockIds.subarray(0, 2))); // b now shares a's blocks
    manager.release(1);
    const table = Int32Array.from(after, (id) => manager.metadata.slot[id]!);
    // Another prompt takes every free slot, those b's own copies were freed from included, and overwrites them.
    const other = manager.admit(3, new BigUint64Array(0), 13 * BLOCK);
    expect(other).not.toBeNull();
    plane.execute(manager.takeCopyPlan());
    engine.forward([{ tokens: randomTokens(model.vocab, 13 * BLOCK, 8), start: 0, blockTable: other!.blockTable }]);
    const freed = Array.from(b.blockTable.subarray(0, 2));
    expect(freed.every((slot) => Array.from(other!.blockTable).includes(slot))).toBe(true);
    // Decoding b through its re-read table matches decoding the prompt from nothing.
    const fresh = setup(model, 16, 0);
    const c = fresh.manager.admit(1, hashes, numTokens)!;
    fresh.engine.forward([{ tokens: prompt, start: 0, blockTable: c.blockTable }]);
    for (let j = 0; j < outputs.length; j++) {
      const step = { tokens: outputs.subarray(j, j + 1), start: prompt.length + j };
      const got = engine.forward([{ ...step, blockTable: table }]);
      const want = fresh.engine.forward([{ ...step, blockTable: c.blockTable }]);
      expect(maxRelativeError(got, want)).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});
