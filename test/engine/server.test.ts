// A multi-agent trace served on the engine through the runtime: every
// call's first-token logits, computed from whatever the cache held (device
// hits, blocks loaded back from host, recomputation after eviction), equal
// the logits of its prompt computed from nothing.
import { beforeAll, describe, expect, it } from 'vitest';

import { kvBytesPerBlock, MODEL_PRESETS } from '../../src/engine/config.js';
import { Engine } from '../../src/engine/engine.js';
import { serveTrace } from '../../src/engine/server.js';
import { TraceTokens } from '../../src/engine/tokens.js';
import type { TraceCall } from '../../src/trace/format.js';
import { openLoopStarts } from '../../src/sim/workload.js';
import { agentTrace, maxRelativeError, TOLERANCE } from './helpers.js';

const MODEL = MODEL_PRESETS.tiny;
const BLOCK = 16;

function fromNothing(tokens: Int32Array): Float32Array {
  const blocks = Math.ceil(tokens.length / BLOCK);
  const engine = new Engine({ model: MODEL, blockSize: BLOCK, pool: new ArrayBuffer(blocks * kvBytesPerBlock(MODEL, BLOCK)), threads: 1, seed: 5 });
  return engine.forward([{ tokens, start: 0, blockTable: Int32Array.from({ length: blocks }, (_, i) => i) }]);
}

describe('serveTrace', () => {
  const calls = agentTrace(6, 5, 1);
  const tokenIds = new TraceTokens(MODEL.vocab);

  const options = { model: MODEL, seed: 5, workload: 'agents', blockSize: BLOCK, concurrency: 4, tokenBudget: 48, threads: 2 };
  // The trace's own reuse: the hits with room for everything.
  let ceiling = 0;
  beforeAll(async () => {
    ceiling = (await serveTrace(calls, { ...options, deviceBlocks: 512 })).deviceHitTokens;
  });

  it.each([
    ['lru with a host tier', 'lru', 32, 64],
    ['cachesage with a host tier', 'cachesage', 32, 64],
    ['lru, device only (evict and recompute)', 'lru', 24, 0],
  ])('%s: first-token logits equal those computed from nothing', async (_, policy, deviceBlocks, hostBlocks) => {
    const seen: { call: TraceCall; logits: Float32Array; cached: number }[] = [];
    const result = await serveTrace(calls, {
      ...options, policy, deviceBlocks, hostBlocks,
      onPrefill: (call, logits, cached) => seen.push({ call, logits, cached }),
    });
    expect(result.calls).toBe(calls.length);
    expect(seen.length).toBe(calls.length);
    expect(result.ttftSeconds.length).toBe(calls.length);
    const promptTokens = calls.reduce((n, c) => n + c.segments.reduce((m, x) => m + x.tokens, 0), 0);
    expect(result.promptTokens).toBe(promptTokens);
    expect(result.outputTokens).toBe(calls.reduce((n, c) => n + c.outputTokens, 0));
    // The trace reuses its prefixes, and the cache is too small for all of it.
    expect(result.deviceHitTokens).toBeGreaterThan(0);
    if (hostBlocks > 0) expect(result.hostHitTokens).toBeGreaterThan(0);
    expect(result.deviceHitTokens).toBeLessThan(ceiling);
    expect(result.prefilledTokens).toBeGreaterThanOrEqual(promptTokens - result.deviceHitTokens - result.hostHitTokens);
    for (const { call, logits } of seen) {
      const want = fromNothing(tokenIds.tokens(call.segments));
      expect(maxRelativeError(logits, want), `session ${call.session} call ${call.seq}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('runs open loop: sessions start at seeded exponential gaps on the wall clock', async () => {
    const seen: Float32Array[] = [];
    const { concurrency: _, ...openOptions } = options;
    const result = await serveTrace(calls, { ...openOptions, arrivalRate: 40, deviceBlocks: 32, hostBlocks: 64, onPrefill: (call, logits) => seen.push(logits) });
    // The last of the six sessions starts at the simulator's seeded time, not before.
    const lastStart = openLoopStarts(6, 40, 5).at(-1)!;
    expect(result.calls).toBe(calls.length);
    expect(result.wallSeconds).toBeGreaterThanOrEqual(lastStart);
    expect(result.deviceHitTokens).toBeGreaterThan(0);
    expect(seen.length).toBe(calls.length);
    await expect(serveTrace(calls, { ...options, arrivalRate: 40, deviceBlocks: 32 })).rejects.toThrow(/closed or open loop/);
  });

  it('refuses offline bounds, unknown backends and calls larger than the device', async () => {
    await expect(serveTrace(calls, { model: MODEL, policy: 'belady', deviceBlocks: 64 })).rejects.toThrow(/offline bound/);
    await expect(serveTrace(calls, { model: MODEL, deviceBlocks: 64, backend: 'tpu' as 'cpu' })).rejects.toThrow(/backend must be one of cpu, cuda, webgpu; got "tpu"/);
    await expect(serveTrace(calls, { model: MODEL, deviceBlocks: 4 })).rejects.toThrow(/needs 5 blocks but the device tier holds 4/);
  });
});
