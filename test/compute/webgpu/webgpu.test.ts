import { afterAll, describe, expect, it } from 'vitest';

import { ReferenceBlockManager } from '../../../src/blocks/reference.js';
import { Tier, type CopyPlan } from '../../../src/blocks/types.js';
import { ReferenceSurvivalBackend } from '../../../src/compute/survival.js';
import { referenceBlockCopy, type BlockPools } from '../../../src/compute/block_copy.js';
import { referenceHitScoring, type HitScoringInput } from '../../../src/compute/hit_scoring.js';
import { WebGpuBlockCopyProgram, type BlockCopyMethod } from '../../../src/compute/webgpu/block_copy_program.js';
import { createKernelPipeline, probeWebGpu } from '../../../src/compute/webgpu/device.js';
import { WebGpuHitScoringProgram } from '../../../src/compute/webgpu/hit_scoring_program.js';
import { WebGpuSurvivalBackend } from '../../../src/compute/webgpu/survival_program.js';
import { seededRandom as rng } from '../../../src/util/random.js';
import { expectSurvivalClose, FINITE_ACCESS_VALUES, nearlyEndedInput, randomChains, randomMetadata } from '../inputs.js';
import { webGpuUnavailable } from './adapter.js';

const NEAR_CERTAIN = { nearCertainEnds: true };

const unavailable = await webGpuUnavailable('webgpu', 'test/compute/webgpu/webgpu.test.ts');
// The shared device, for the cases that use it directly.
const probe = await probeWebGpu();


function randomBytes(rand: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => Math.floor(rand() * 256));
}

/**
 * A random plan of `stages` stages obeying the stage rule: within a stage
 * no slot is written twice and no written slot is read.
 */
function randomPlan(rand: () => number, deviceBlocks: number, hostBlocks: number, stages: number): CopyPlan {
  const src: Array<[number, number]> = [];
  const dst: Array<[number, number]> = [];
  const stageStarts: number[] = [];
  const tiers = hostBlocks > 0 ? [Tier.Device, Tier.Host] : [Tier.Device];
  const pickSlot = (tier: number): number => Math.floor(rand() * (tier === Tier.Device ? deviceBlocks : hostBlocks));
  for (let s = 0; s < stages; s++) {
    const written = new Set<string>();
    const read = new Set<string>();
    const copies = 1 + Math.floor(rand() * Math.min(8, deviceBlocks));
    const first = src.length;
    for (let attempt = 0; attempt < copies * 4 && src.length - first < copies; attempt++) {
      const st = tiers[Math.floor(rand() * tiers.length)]!;
      const dt = tiers[Math.floor(rand() * tiers.length)]!;
      const ss = pickSlot(st);
      const ds = pickSlot(dt);
      const from = `${st}:${ss}`;
      const to = `${dt}:${ds}`;
      if (from === to || written.has(from) || written.has(to) || read.has(to)) continue;
      read.add(from);
      written.add(to);
      src.push([st, ss]);
      dst.push([dt, ds]);
    }
    if (src.length > first) stageStarts.push(first);
  }
  return {
    srcTier: Uint8Array.from(src, (c) => c[0]),
    srcSlot: Int32Array.from(src, (c) => c[1]),
    dstTier: Uint8Array.from(dst, (c) => c[0]),
    dstSlot: Int32Array.from(dst, (c) => c[1]),
    stageStarts: Int32Array.from(stageStarts),
  };
}

async function newPools(
  rand: () => number,
  bytesPerBlock: number,
  deviceBlocks: number,
  hostBlocks: number,
  method: BlockCopyMethod = 'kernel',
): Promise<{ gpu: WebGpuBlockCopyProgram; cpu: BlockPools }> {
  const gpu = await WebGpuBlockCopyProgram.create({ bytesPerBlock, deviceBlocks, hostBlocks, method });
  const cpu: BlockPools = {
    bytesPerBlock,
    device: randomBytes(rand, deviceBlocks * bytesPerBlock),
    host: randomBytes(rand, hostBlocks * bytesPerBlock),
  };
  gpu.writePool('device', cpu.device);
  gpu.writePool('host', cpu.host);
  return { gpu, cpu };
}

async function expectSamePools(gpu: WebGpuBlockCopyProgram, cpu: BlockPools): Promise<void> {
  const [device, host] = await Promise.all([gpu.readPool('device'), gpu.readPool('host')]);
  expect(Buffer.from(device).equals(Buffer.from(cpu.device))).toBe(true);
  expect(Buffer.from(host).equals(Buffer.from(cpu.host))).toBe(true);
}

describe.skipIf(unavailable !== null)('webgpu', () => {
  const reference = new ReferenceSurvivalBackend();
  // One program of each kind for the whole suite, which also exercises the
  // buffers they keep between calls of different sizes.
  let scoringProgram: Promise<WebGpuHitScoringProgram> | null = null;
  let survivalBackend: Promise<WebGpuSurvivalBackend> | null = null;
  const scoring = (): Promise<WebGpuHitScoringProgram> => (scoringProgram ??= WebGpuHitScoringProgram.create());
  const survival = (): Promise<WebGpuSurvivalBackend> => (survivalBackend ??= WebGpuSurvivalBackend.create());
  afterAll(async () => {
    (await scoringProgram)?.destroy();
    (await survivalBackend)?.destroy();
  });

  describe('device', () => {
    it('reports the adapter, whether it is software, and its limits', () => {
      if (!probe.available) return;
      const { info } = probe.context;
      expect(info.adapterName.length).toBeGreaterThan(0);
      expect(typeof info.isSoftware).toBe('boolean');
      expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      if (/llvmpipe|lavapipe|swiftshader/i.test(info.adapterName)) expect(info.isSoftware).toBe(true);
    });
  });

  describe('pipelines', () => {
    const entryPoints: Array<[string, string]> = [
      ['block_copy', 'copy_words'],
      ['block_copy', 'copy_quads'],
      ['hit_scoring', 'score_blocks'],
      ['hit_scoring', 'radix_histogram'],
      ['hit_scoring', 'radix_select'],
      ['hit_scoring', 'fill_candidates'],
      ['hit_scoring', 'compact_selected'],
      ['hit_scoring', 'sort_global'],
      ['hit_scoring', 'sort_local'],
      ['survival', 'survival'],
    ];
    it.each(entryPoints)('%s.wgsl entry point %s compiles without errors', async (kernel, entryPoint) => {
      if (!probe.available) return;
      const { pipeline, messages } = await createKernelPipeline(probe.context.device, kernel, entryPoint);
      expect(messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      expect(pipeline.getBindGroupLayout(0)).toBeDefined();
    });
  });

  describe('WebGpuBlockCopyProgram', () => {
    const methods: BlockCopyMethod[] = ['kernel', 'copy-commands'];
    const shapes: Array<[number, number, number]> = [
      [4, 5, 3],
      [12, 9, 0],
      [16, 32, 17],
      [64, 7, 40],
      [1028, 33, 21],
      [4096, 64, 64],
    ];
    it.each(methods.flatMap((method) => shapes.map((shape) => [method, ...shape] as const)))(
      'runs random multi-stage plans byte for byte like the reference (%s, %i bytes, %i device, %i host)',
      async (method, bytesPerBlock, deviceBlocks, hostBlocks) => {
        const rand = rng(bytesPerBlock * 1009 + deviceBlocks * 31 + hostBlocks);
        const { gpu, cpu } = await newPools(rand, bytesPerBlock, deviceBlocks, hostBlocks, method);
        try {
          for (let round = 0; round < 6; round++) {
            const plan = randomPlan(rand, deviceBlocks, hostBlocks, 1 + Math.floor(rand() * 5));
            referenceBlockCopy(cpu, plan);
            await gpu.execute(plan);
          }
          await expectSamePools(gpu, cpu);
        } finally {
          gpu.destroy();
        }
      },
    );

    it.each(methods)('orders plans submitted back to back without waiting (%s)', async (method) => {
      const rand = rng(7);
      const { gpu, cpu } = await newPools(rand, 32, 16, 16, method);
      try {
        for (let round = 0; round < 20; round++) {
          const plan = randomPlan(rand, 16, 16, 3);
          referenceBlockCopy(cpu, plan);
          gpu.submit(plan);
        }
        await expectSamePools(gpu, cpu);
      } finally {
        gpu.destroy();
      }
    });

    it.each(methods)("runs the block manager's own demote and load plans (%s)", async (method) => {
      const rand = rng(11);
      const bytesPerBlock = 48;
      const manager = new ReferenceBlockManager({ blockSize: 4, bytesPerBlock, deviceBlocks: 6, hostBlocks: 6 });
      const { gpu, cpu } = await newPools(rand, bytesPerBlock, 6, 6, method);
      try {
        const hashes = (seed: number): BigUint64Array => BigUint64Array.from([1, 2, 3], (i) => BigInt(seed * 10 + i));
        let copies = 0;
        let stages = 0;
        for (let request = 0; request < 8; request++) {
          if (manager.admit(request, hashes(request % 4), 12) !== null) {
            manager.commit(request, 3);
            manager.release(request);
          }
          const plan = manager.takeCopyPlan();
          copies += plan.srcSlot.length;
          stages = Math.max(stages, plan.stageStarts.length);
          referenceBlockCopy(cpu, plan);
          await gpu.execute(plan);
        }
        const onDevice = Int32Array.from({ length: manager.numBlockIds }, (_, id) => id).filter(
          (id) => manager.metadata.tier[id] === Tier.Device,
        );
        manager.demote(onDevice);
        const demotions = manager.takeCopyPlan();
        copies += demotions.srcSlot.length;
        referenceBlockCopy(cpu, demotions);
        await gpu.execute(demotions);
        await expectSamePools(gpu, cpu);
        // Loads that evict interleave demotions and loads over several stages.
        expect(copies).toBeGreaterThan(10);
        expect(stages).toBeGreaterThan(1);
      } finally {
        gpu.destroy();
      }
    });

    it('prefetchAsync submits at once and resolves when the copies are done', async () => {
      const rand = rng(13);
      const { gpu, cpu } = await newPools(rand, 256, 8, 8);
      try {
        const plan: CopyPlan = {
          srcTier: Uint8Array.of(Tier.Host, Tier.Host, Tier.Host),
          srcSlot: Int32Array.of(5, 0, 7),
          dstTier: Uint8Array.of(Tier.Device, Tier.Device, Tier.Device),
          dstSlot: Int32Array.of(1, 2, 3),
          stageStarts: Int32Array.of(0),
        };
        const done = gpu.prefetchAsync(plan);
        referenceBlockCopy(cpu, plan);
        await done;
        for (const slot of [1, 2, 3]) {
          const want = cpu.device.subarray(slot * 256, (slot + 1) * 256);
          expect(Buffer.from(await gpu.readBlock('device', slot)).equals(Buffer.from(want))).toBe(true);
        }
      } finally {
        gpu.destroy();
      }
    });

    it('writes and reads single blocks', async () => {
      const gpu = await WebGpuBlockCopyProgram.create({ bytesPerBlock: 20, deviceBlocks: 3, hostBlocks: 2 });
      try {
        const bytes = Uint8Array.from({ length: 20 }, (_, i) => i * 7 + 1);
        gpu.writeBlock('host', 1, bytes);
        expect([...(await gpu.readBlock('host', 1))]).toEqual([...bytes]);
        expect([...(await gpu.readBlock('device', 2))]).toEqual(new Array(20).fill(0));
      } finally {
        gpu.destroy();
      }
    });

    it('refuses bad sizes and bad plans before submitting', async () => {
      await expect(WebGpuBlockCopyProgram.create({ bytesPerBlock: 6, deviceBlocks: 2 })).rejects.toThrow(RangeError);
      await expect(WebGpuBlockCopyProgram.create({ bytesPerBlock: 8, deviceBlocks: 0 })).rejects.toThrow(RangeError);
      const gpu = await WebGpuBlockCopyProgram.create({ bytesPerBlock: 8, deviceBlocks: 2, hostBlocks: 1 });
      try {
        const plan = (srcTier: number, srcSlot: number, dstTier: number, dstSlot: number): CopyPlan => ({
          srcTier: Uint8Array.of(srcTier),
          srcSlot: Int32Array.of(srcSlot),
          dstTier: Uint8Array.of(dstTier),
          dstSlot: Int32Array.of(dstSlot),
          stageStarts: Int32Array.of(0),
        });
        expect(() => gpu.submit(plan(Tier.Device, 2, Tier.Host, 0))).toThrow(/source slot 2/);
        expect(() => gpu.submit(plan(Tier.Free, 0, Tier.Host, 0))).toThrow(/source tier 0/);
        expect(() => gpu.submit(plan(Tier.Device, 0, Tier.Host, 1))).toThrow(/destination slot 1/);
        expect(() => gpu.writeBlock('device', 0, new Uint8Array(4))).toThrow(RangeError);
        await expect(gpu.readBlock('host', 1)).rejects.toThrow(RangeError);
      } finally {
        gpu.destroy();
      }
    });
  });

  describe('WebGpuHitScoringProgram', () => {
    const sameBits = (a: Float32Array, b: Float32Array): boolean =>
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

    it.each([
      [1, 4, [0, 1, 2]],
      [7, 3, [0, 1, 3, 7, 9]],
      [100, 0, [1, 5, 64, 100]],
      [1000, 16, [1, 13, 257, 512, 513, 1000]],
      [5000, 40, [600, 1024, 3000]],
      [70000, 300, [1, 100, 700]],
    ])('matches the reference scores and victims on %i blocks with %i classes', async (blocks, classes, ks) => {
      const program = await scoring();
      for (const [round, k] of ks.entries()) {
        const input = randomMetadata(rng(blocks * 17 + round), blocks, classes, FINITE_ACCESS_VALUES);
        const want = referenceHitScoring(input, k);
        const got = await program.computeAsync(input, k);
        expect(sameBits(got.scores, want.scores), `scores, k = ${k}`).toBe(true);
        expect(Array.from(got.victims), `victims, k = ${k}`).toEqual(Array.from(want.victims));
      }
    });

    it('selects in the manager\'s eviction order: score, then lastAccess, then id', async () => {
      const program = await scoring();
      const input: HitScoringInput = {
        tier: Uint8Array.of(1, 1, 1, 1, 2, 1, 1),
        committed: Uint8Array.of(1, 1, 1, 1, 1, 0, 1),
        refCount: Int32Array.of(0, 0, 0, 0, 0, 0, 1),
        deviceChildren: Int32Array.of(0, 0, 0, 0, 0, 0, 0),
        lastAccess: Float64Array.of(5, 3, 3, 1, 0, 0, 0),
        score: Float32Array.of(-0, 0, 0, 0.5, -1, -1, -1),
        scoreClass: Int32Array.of(-1, -1, -1, 0, -1, -1, -1),
        classScores: Float32Array.of(-2),
      };
      // Block 3 is classed at -2; -0 ties 0, so 1 and 2 (lastAccess 3)
      // precede 0 (lastAccess 5); 4 is on the host, 5 uncommitted, 6 pinned.
      const got = await program.computeAsync(input, 10);
      expect(Array.from(got.victims)).toEqual([3, 1, 2, 0]);
      expect(Array.from(got.scores)).toEqual([-0, 0, 0, -2, -1, -1, -1]);
    });

    it('refuses malformed input', async () => {
      const program = await scoring();
      const input = randomMetadata(rng(3), 10, 2, FINITE_ACCESS_VALUES);
      await expect(program.computeAsync({ ...input, refCount: new Int32Array(9) }, 1)).rejects.toThrow(RangeError);
      await expect(program.computeAsync({ ...input, scoreClass: new Int32Array(10).fill(2) }, 1)).rejects.toThrow(/only 2 class scores/);
      await expect(program.computeAsync(input, -1)).rejects.toThrow(RangeError);
    });
  });

  describe('WebGpuSurvivalBackend', () => {
    const sizes: Array<[number, number, number]> = [];
    for (const workloads of [1, 8, 64]) for (const states of [3, 8, 16]) for (const horizon of [1, 8, 16]) sizes.push([workloads, states, horizon]);

    it.each(sizes)('is within 1e-5 relative of the reference: %i workloads, %i states, H = %i', async (workloads, states, horizon) => {
      const backend = await survival();
      const input = randomChains(rng(workloads * 1000 + states * 10 + horizon), workloads, states, horizon, NEAR_CERTAIN);
      expectSurvivalClose(await backend.computeAsync(input), reference.compute(input), `${workloads}x${states}x${horizon}`);
    });

    it.each([
      [2, 37, 5],
      [3, 130, 3],
      [1, 1, 4],
    ])('handles state counts that leave partial columns: %i workloads, %i states, H = %i', async (workloads, states, horizon) => {
      const backend = await survival();
      const input = randomChains(rng(states), workloads, states, horizon, NEAR_CERTAIN);
      expectSurvivalClose(await backend.computeAsync(input), reference.compute(input), `${workloads}x${states}x${horizon}`);
    });

    it('splits a batch into several dispatches when it exceeds the chunk size', async () => {
      if (!probe.available) return;
      // 16 states, H = 8: 8 KiB of reach per workload, so 3 workloads per chunk.
      const chunked = await WebGpuSurvivalBackend.create(probe.context, { maxChunkBytes: 3 * 8 * 16 * 16 * 4 + 100 });
      try {
        const input = randomChains(rng(99), 20, 16, 8, NEAR_CERTAIN);
        expectSurvivalClose(await chunked.computeAsync(input), reference.compute(input), 'chunked');
      } finally {
        chunked.destroy();
      }
    });

    it('keeps alive probabilities accurate when a session has almost surely ended', async () => {
      const backend = await survival();
      const input = nearlyEndedInput();
      const want = reference.compute(input);
      expect(want.alive[15 * 3 + 1]).toBeLessThan(1e-10);
      expectSurvivalClose(await backend.computeAsync(input), want, 'near-certain end');
    });

    it('refuses what the reference refuses', async () => {
      const backend = await survival();
      const bad = randomChains(rng(1), 1, 3, 2, NEAR_CERTAIN);
      bad.transitions[0] = 0.5;
      await expect(backend.computeAsync(bad)).rejects.toThrow(RangeError);
      await expect(backend.computeAsync({ ...bad, horizon: 0 })).rejects.toThrow(RangeError);
    });
  });
});
