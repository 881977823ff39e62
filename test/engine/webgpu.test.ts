// The engine with its KV pool in a WebGPU buffer (a WebGpuBlockCopyProgram's
// device pool) and its attention in the WGSL kernels, against the same
// engine on the CPU: equal logits after one-shot and chunked prefill beside
// decodes, the same K/V in the pool, and the same after blocks go to the
// host pool and come back through copy plans; and a trace served on it
// gives the CPU run's hits with first-token logits equal to those computed
// from nothing. Runs on the software Vulkan adapter in CI.
import { afterAll, describe, expect, it } from 'vitest';

import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { Tier, type CopyPlan, type TierCode } from '../../src/blocks/types.js';
import { WebGpuBlockCopyProgram } from '../../src/compute/webgpu/block_copy_program.js';
import { kvBytesPerBlock, MODEL_PRESETS, type ModelConfig } from '../../src/engine/config.js';
import { Engine, type EngineChunk } from '../../src/engine/engine.js';
import { serveTrace } from '../../src/engine/server.js';
import { TraceTokens } from '../../src/engine/tokens.js';
import type { TraceCall } from '../../src/trace/format.js';
import { webGpuUnavailable } from '../compute/webgpu/adapter.js';
import { agentTrace, maxRelativeError, randomTokens, TOLERANCE } from './helpers.js';

const unavailable = await webGpuUnavailable('engine on webgpu', 'test/engine/webgpu.test.ts');

const MODEL = MODEL_PRESETS.tiny;
// GQA with 3 query heads per KV head and an odd head dimension (12).
const GQA: ModelConfig = { ...MODEL, modelDim: 72, heads: 6, kvHeads: 2, ffnDim: 96 };
const BLOCK = 16;

/** A CPU engine and a WebGPU engine over equal pools, with the same weights. */
async function pair(model: ModelConfig, deviceBlocks: number, hostBlocks: number) {
  const bytesPerBlock = kvBytesPerBlock(model, BLOCK);
  const cpuPlane = new CpuDataPlane({ bytesPerBlock, deviceBlocks, hostBlocks });
  const gpuPlane = await WebGpuBlockCopyProgram.create({ bytesPerBlock, deviceBlocks, hostBlocks });
  const cpu = new Engine({ model, blockSize: BLOCK, pool: cpuPlane, threads: 2, seed: 9 });
  const gpu = await Engine.create({ model, blockSize: BLOCK, pool: gpuPlane, threads: 2, seed: 9 });
  const both = async (chunks: EngineChunk[], allLogits = false) => {
    const want = cpu.forward(chunks, { allLogits });
    const got = await gpu.forwardAsync(chunks, { allLogits });
    return { want, got };
  };
  const run = async (plan: CopyPlan) => {
    cpuPlane.execute(plan);
    await gpuPlane.execute(plan);
  };
  // Layer 0's K/V rows are the CPU's bit for bit (the WGSL append copies
  // them); later layers' inputs went through each side's attention, so
  // they agree within the tolerance.
  const poolError = async () => {
    const device = await gpuPlane.readPool('device');
    return maxRelativeError(new Float32Array(device.buffer, device.byteOffset, device.byteLength / 4), new Float32Array(cpuPlane.devicePool()));
  };
  const destroy = () => {
    gpu.destroy();
    gpuPlane.destroy();
  };
  return { cpu, gpu, gpuPlane, both, run, poolError, destroy };
}

function plan(copies: [TierCode, number, TierCode, number][]): CopyPlan {
  return {
    srcTier: Uint8Array.from(copies, (c) => c[0]),
    srcSlot: Int32Array.from(copies, (c) => c[1]),
    dstTier: Uint8Array.from(copies, (c) => c[2]),
    dstSlot: Int32Array.from(copies, (c) => c[3]),
    stageStarts: Int32Array.of(0),
  };
}

describe.runIf(unavailable === null)('engine on webgpu', () => {
  const cleanups: (() => void)[] = [];
  afterAll(() => cleanups.forEach((f) => f()));

  it.each([['tiny', MODEL], ['GQA 6/2 heads, head dimension 12', GQA]] as const)(
    '%s: prefill, chunked prefill beside decodes and the pool match the CPU engine',
    async (_, model) => {
      const p = await pair(model, 16, 0);
      cleanups.push(p.destroy);
      const prompt = randomTokens(model.vocab, 70, 4);
      const tableA = Int32Array.of(11, 3, 7, 0, 14);
      const tableB = Int32Array.of(2, 9, 5, 12, 1);
      const oneShot = await p.both([{ tokens: prompt, start: 0, blockTable: tableA }], true);
      expect(oneShot.got.length).toBe(70 * model.vocab);
      expect(maxRelativeError(oneShot.got, oneShot.want)).toBeLessThanOrEqual(TOLERANCE);
      // B in chunks that cross block boundaries, each beside a decode step of A.
      let at = 0;
      for (const size of [5, 19, 1, 30, 15]) {
        const step = await p.both([
          { tokens: prompt.subarray(at, at + size), start: at, blockTable: tableB },
          { tokens: prompt.subarray(69, 70), start: 69, writeFrom: 70, blockTable: tableA },
        ]);
        expect(maxRelativeError(step.got, step.want), `chunk at ${at}`).toBeLessThanOrEqual(TOLERANCE);
        at += size;
      }
      expect(await p.poolError()).toBeLessThanOrEqual(TOLERANCE);
    },
  );

  it('blocks demoted to the host pool and loaded back into other slots serve the same decode', async () => {
    const p = await pair(MODEL, 8, 8);
    cleanups.push(p.destroy);
    const prompt = randomTokens(MODEL.vocab, 40, 7);
    const table = Int32Array.of(0, 1, 2);
    await p.both([{ tokens: prompt, start: 0, blockTable: table }]);
    // Device -> host, then host -> other device slots, as a demotion and a load.
    await p.run(plan([[Tier.Device, 0, Tier.Host, 5], [Tier.Device, 1, Tier.Host, 6], [Tier.Device, 2, Tier.Host, 7]]));
    await p.run(plan([[Tier.Host, 5, Tier.Device, 6], [Tier.Host, 6, Tier.Device, 3], [Tier.Host, 7, Tier.Device, 4]]));
    const moved = Int32Array.of(6, 3, 4);
    for (let j = 0; j < 6; j++) {
      const token = randomTokens(MODEL.vocab, 1, 100 + j);
      const step = await p.both([{ tokens: token, start: 40 + j, blockTable: moved }]);
      expect(maxRelativeError(step.got, step.want), `decode step ${j}`).toBeLessThanOrEqual(TOLERANCE);
    }
    expect(await p.poolError()).toBeLessThanOrEqual(TOLERANCE);
  });

  it('refuses what only the CPU and CUDA engines do, and a pool of the wrong block size', async () => {
    const p = await pair(MODEL, 4, 0);
    cleanups.push(p.destroy);
    expect(() => new Engine({ model: MODEL, blockSize: BLOCK, pool: p.gpuPlane })).toThrow(/needs Engine.create/);
    expect(() => p.gpu.forward([{ tokens: Int32Array.of(1), start: 0, blockTable: Int32Array.of(0) }])).toThrow(/use forwardAsync/);
    await expect(Engine.create({ model: MODEL, blockSize: 8, pool: p.gpuPlane })).rejects.toThrow(/8192-byte blocks, the model's KV needs 4096/);
    await expect(p.gpu.forwardAsync([{ tokens: Int32Array.of(1), start: 0, blockTable: Int32Array.of(4) }])).rejects.toThrow(/outside|out of range|pool/);
  });

  it('serves a multi-agent trace with the CPU run\'s hits and logits equal to those from nothing', async () => {
    const calls = agentTrace(4, 4, 3);
    const tokenIds = new TraceTokens(MODEL.vocab);
    const options = { model: MODEL, seed: 5, workload: 'agents', blockSize: BLOCK, concurrency: 4, tokenBudget: 48, threads: 2, deviceBlocks: 24, hostBlocks: 32, policy: 'cachesage' };
    const seen: { call: TraceCall; logits: Float32Array }[] = [];
    const gpu = await serveTrace(calls, { ...options, backend: 'webgpu', onPrefill: (call, logits) => seen.push({ call, logits }) });
    const cpu = await serveTrace(calls, options);
    expect(gpu.calls).toBe(calls.length);
    expect(gpu.hostHitTokens).toBeGreaterThan(0);
    // Closed loop: arrivals depend only on completions, so the policy sees the same calls in the same order.
    expect([gpu.deviceHitTokens, gpu.hostHitTokens, gpu.prefilledTokens]).toEqual([cpu.deviceHitTokens, cpu.hostHitTokens, cpu.prefilledTokens]);
    const fromNothing = new Engine({ model: MODEL, blockSize: BLOCK, pool: new ArrayBuffer(64 * kvBytesPerBlock(MODEL, BLOCK)), threads: 1, seed: 5 });
    for (const { call, logits } of seen) {
      const tokens = tokenIds.tokens(call.segments);
      const want = fromNothing.forward([{ tokens, start: 0, blockTable: Int32Array.from({ length: Math.ceil(tokens.length / BLOCK) }, (_, i) => i) }]);
      expect(maxRelativeError(logits, want), `session ${call.session} call ${call.seq}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});
