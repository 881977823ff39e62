// Longer than 400 lines: one module (the CUDA classes of the addon), each kernel against its oracle on a device and each refusal without one.
/**
 * The CUDA classes of the addon through src/compute/cuda/cuda.ts. Everywhere:
 * cudaInfo's answer, and, where no device is usable, constructors that
 * refuse with the reason. On a CUDA device: every kernel against the
 * TypeScript reference on random inputs (survival within
 * max(1e-6, 1e-5 |reference|), victims and bytes exactly).
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { nativeAddon } from '../../../src/blocks/addon.js';
import { Tier, type CopyPlan } from '../../../src/blocks/types.js';
import {
  CudaDataPlane,
  CudaHitScoringProgram,
  CudaSurvivalBackend,
  CudaUnavailableError,
  cudaInfo,
} from '../../../src/compute/cuda/cuda.js';
import { referenceBlockCopy, type BlockPools } from '../../../src/compute/block_copy.js';
import { referenceHitScoring, type HitScoringInput } from '../../../src/compute/hit_scoring.js';
import { ReferenceSurvivalBackend, type SurvivalInput, type SurvivalOutput } from '../../../src/compute/survival.js';
import { seededRandom } from '../../../src/util/random.js';
import { countEvictable, randomChains, randomMetadata, sameBits } from '../inputs.js';

const info = cudaInfo();
const addon = nativeAddon();
const onDevice = it.skipIf(!info.available);
const deviceSuite = info.available ? `on ${info.device}` : `on a CUDA device (skipped: ${info.reason})`;
if (!info.available) console.warn(`test/compute/cuda/cuda.test.ts: skipping the device tests: ${info.reason}`);

/** Where the build looks for nvcc: PATH, then the toolkit's default place. */
function nvccPresent(): boolean {
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .some((dir) => existsSync(join(dir, 'nvcc')));
  return onPath || existsSync('/usr/local/cuda/bin/nvcc');
}

describe('cudaInfo', () => {
  it('says whether CUDA is built in and usable, and why not', () => {
    expect(Object.keys(info).sort()).toEqual(['available', 'built', 'device', 'reason']);
    expect(typeof info.built).toBe('boolean');
    expect(typeof info.available).toBe('boolean');
    if (info.available) {
      expect(info.built).toBe(true);
      expect(info.reason).toBe('');
      expect(info.device.length).toBeGreaterThan(0);
    } else {
      expect(info.reason.length).toBeGreaterThan(5);
      expect(info.device).toBe('');
    }
    expect(info).toEqual(addon.cudaInfo!());
  });

  it('matches the classes the addon exports', () => {
    for (const name of ['NativeCudaSurvival', 'NativeCudaHitScorer', 'NativeCudaDataPlane'] as const) {
      expect(typeof addon[name], name).toBe(info.built ? 'function' : 'undefined');
    }
  });

  it('is built into the addon wherever nvcc is present', () => {
    if (nvccPresent()) expect(info.built, info.reason).toBe(true);
  });
});

describe('without a usable CUDA device', () => {
  it.skipIf(info.available)('every CUDA wrapper refuses to construct, giving the reason', () => {
    const constructors: Array<[string, () => unknown]> = [
      ['new CudaSurvivalBackend()', () => new CudaSurvivalBackend()],
      ['CudaSurvivalBackend.create()', () => CudaSurvivalBackend.create()],
      ['new CudaHitScoringProgram()', () => new CudaHitScoringProgram()],
      ['CudaHitScoringProgram.create()', () => CudaHitScoringProgram.create()],
      ['new CudaDataPlane()', () => new CudaDataPlane({ bytesPerBlock: 64, deviceBlocks: 4, hostBlocks: 4 })],
      ['CudaDataPlane.create()', () => CudaDataPlane.create({ bytesPerBlock: 64, deviceBlocks: 4 })],
    ];
    for (const [what, construct] of constructors) {
      let thrown: unknown;
      try {
        construct();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, what).toBeInstanceOf(CudaUnavailableError);
      expect((thrown as CudaUnavailableError).reason, what).toBe(info.reason);
      expect((thrown as Error).message, what).toContain(info.reason);
    }
  });

  it.skipIf(info.available || !info.built)('the native classes throw an Error with the reason, not a crash', () => {
    const constructors: Array<[string, () => unknown]> = [
      ['NativeCudaSurvival', () => new addon.NativeCudaSurvival!()],
      ['NativeCudaHitScorer', () => new addon.NativeCudaHitScorer!()],
      ['NativeCudaDataPlane', () => new addon.NativeCudaDataPlane!(64, 4, 4)],
    ];
    for (const [name, construct] of constructors) {
      expect(construct, name).toThrow(Error);
      expect(construct, name).toThrow(`${name}: CUDA is not available: ${info.reason}`);
    }
    // Arguments are checked before CUDA is asked.
    const Plane = addon.NativeCudaDataPlane! as unknown as new (...args: unknown[]) => unknown;
    expect(() => new Plane('64', 4, 4)).toThrow(TypeError);
    expect(() => new Plane(64, 0, 4)).toThrow(RangeError);
  });

  it('the data plane checks its options first', () => {
    expect(() => new CudaDataPlane(null as never)).toThrow(TypeError);
    expect(() => new CudaDataPlane({ bytesPerBlock: 0, deviceBlocks: 4 })).toThrow(RangeError);
    expect(() => new CudaDataPlane({ bytesPerBlock: 64, deviceBlocks: 1.5 })).toThrow(RangeError);
  });
});

/** The first element outside max(1e-6, 1e-5 |want|), or null. */
function firstFar(got: Float32Array, want: Float32Array): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const tolerance = Math.max(1e-6, 1e-5 * Math.abs(want[i]!));
    if (!(Math.abs(got[i]! - want[i]!) <= tolerance)) return `[${i}] = ${got[i]}, expected ${want[i]} within ${tolerance}`;
  }
  return null;
}

function expectCloseSurvival(got: SurvivalOutput, want: SurvivalOutput, what: string): void {
  for (const field of ['reach', 'alive', 'expectedSteps'] as const) {
    expect(got[field], `${what}: ${field}`).toBeInstanceOf(Float32Array);
    expect(firstFar(got[field], want[field]), `${what}: ${field}`).toBeNull();
  }
}

/** An identity batch: every state absorbing, END = 0. Valid at any size. */
function identityBatch(states: number): SurvivalInput {
  const transitions = new Float32Array(states * states);
  for (let s = 0; s < states; s++) transitions[s * states + s] = 1;
  return { workloads: 1, states, horizon: 1, transitions, endState: Int32Array.of(0) };
}

/**
 * A random plan of `stages` stages obeying the stage rule: within a stage no
 * copy reads a slot written earlier in it or writes a slot read or written
 * earlier in it. Now and then an empty stage is recorded too.
 */
function randomPlan(rand: () => number, deviceBlocks: number, hostBlocks: number, stages: number): CopyPlan {
  const srcTier: number[] = [];
  const srcSlot: number[] = [];
  const dstTier: number[] = [];
  const dstSlot: number[] = [];
  const stageStarts: number[] = [];
  const slot = (): [number, number] => {
    const tier = hostBlocks > 0 && rand() < 0.5 ? Tier.Host : Tier.Device;
    return [tier, Math.floor(rand() * (tier === Tier.Device ? deviceBlocks : hostBlocks))];
  };
  for (let s = 0; s < stages; s++) {
    stageStarts.push(srcSlot.length);
    if (rand() < 0.15) stageStarts.push(srcSlot.length);
    const read = new Set<string>();
    const written = new Set<string>();
    for (let attempt = 0; attempt < 12; attempt++) {
      const [st, ss] = slot();
      const [dt, ds] = rand() < 0.05 ? [st, ss] : slot();
      const from = `${st}:${ss}`;
      const to = `${dt}:${ds}`;
      if (written.has(from) || read.has(to) || written.has(to)) continue;
      read.add(from);
      written.add(to);
      srcTier.push(st);
      srcSlot.push(ss);
      dstTier.push(dt);
      dstSlot.push(ds);
    }
  }
  return {
    srcTier: Uint8Array.from(srcTier),
    srcSlot: Int32Array.from(srcSlot),
    dstTier: Uint8Array.from(dstTier),
    dstSlot: Int32Array.from(dstSlot),
    stageStarts: Int32Array.from(stageStarts),
  };
}

function randomBytes(rand: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => Math.floor(rand() * 256));
}

/** Fills both planes' pools with the same random bytes, block by block. */
function seedPools(rand: () => number, plane: CudaDataPlane, pools: BlockPools): void {
  const size = pools.bytesPerBlock;
  for (const [tier, pool] of [['device', pools.device], ['host', pools.host]] as const) {
    for (let slot = 0; slot < pool.length / size; slot++) {
      const bytes = randomBytes(rand, size);
      pool.set(bytes, slot * size);
      plane.write(tier, slot, bytes);
    }
  }
}

/** The first block whose bytes differ from the reference pools, or null. */
function firstDifferentBlock(plane: CudaDataPlane, pools: BlockPools): string | null {
  const size = pools.bytesPerBlock;
  for (const [tier, pool] of [['device', pools.device], ['host', pools.host]] as const) {
    for (let slot = 0; slot < pool.length / size; slot++) {
      const got = plane.read(tier, slot);
      if (!Buffer.from(got).equals(Buffer.from(pool.subarray(slot * size, (slot + 1) * size)))) return `${tier} slot ${slot}`;
    }
  }
  return null;
}

describe(deviceSuite, () => {
  describe('CudaSurvivalBackend', () => {
    const reference = new ReferenceSurvivalBackend();

    onDevice('is named cuda and reports its state limit', () => {
      const backend = CudaSurvivalBackend.create();
      expect(backend.name).toBe('cuda');
      expect(Number.isInteger(backend.maxStates) && backend.maxStates >= 4).toBe(true);
      backend.destroy();
    });

    onDevice('is within 1e-5 relative (1e-6 absolute) of the reference on random batches', async () => {
      const backend = CudaSurvivalBackend.create();
      const sizes: Array<[number, number, number]> = [];
      for (const workloads of [1, 5, 33]) {
        for (const states of [1, 3, 16, 64]) for (const horizon of [1, 8, 32, 33]) sizes.push([workloads, states, horizon]);
      }
      sizes.push([2, backend.maxStates, 4]);
      for (const [workloads, states, horizon] of sizes) {
        const input = randomChains(seededRandom(workloads * 1009 + states * 31 + horizon), workloads, states, horizon);
        const want = reference.compute(input);
        const what = `${workloads} workloads, ${states} states, H = ${horizon}`;
        expectCloseSurvival(backend.compute(input), want, what);
        expectCloseSurvival(await backend.computeAsync(input), want, `${what} (async)`);
      }
      backend.destroy();
    }, 120_000);

    onDevice('runs concurrent computeAsync calls one at a time, each with its own result', async () => {
      const backend = CudaSurvivalBackend.create();
      const inputs = [1, 2, 3, 4].map((seed) => randomChains(seededRandom(seed), 9, 12, 10));
      const results = await Promise.all(inputs.map((input) => backend.computeAsync(input)));
      results.forEach((got, i) => expectCloseSurvival(got, reference.compute(inputs[i]!), `batch ${i}`));
      backend.destroy();
    });

    onDevice('refuses what the reference refuses, and more states than the device holds', async () => {
      const backend = CudaSurvivalBackend.create();
      const bad = randomChains(seededRandom(1), 2, 3, 2);
      const badEnd = { ...bad, endState: Int32Array.of(0, 3) };
      expect(() => reference.compute(badEnd)).toThrow(RangeError);
      expect(() => backend.compute(badEnd)).toThrow(RangeError);
      await expect(backend.computeAsync(badEnd)).rejects.toThrow(RangeError);
      expect(() => backend.compute({ ...bad, transitions: Array.from(bad.transitions) } as never)).toThrow(TypeError);
      if (backend.maxStates < 1024) {
        expect(() => backend.compute(identityBatch(backend.maxStates + 1))).toThrow(/at most/);
        await expect(backend.computeAsync(identityBatch(backend.maxStates + 1))).rejects.toThrow(RangeError);
      }
      backend.destroy();
      expect(() => backend.compute(bad)).toThrow(/destroyed/);
    });
  });

  describe('CudaHitScoringProgram', () => {
    onDevice('matches the reference scores (bit for bit) and victims (id for id)', async () => {
      const program = CudaHitScoringProgram.create();
      for (const [blocks, classes] of [[0, 0], [1, 0], [7, 3], [1000, 16], [5000, 0], [70_000, 300]] as const) {
        for (let round = 0; round < 3; round++) {
          const input = randomMetadata(seededRandom(blocks * 13 + classes + round), blocks, classes);
          const evictable = countEvictable(input);
          for (const k of new Set([0, 1, Math.floor(evictable / 3), evictable, evictable + 1, blocks + 7])) {
            const want = referenceHitScoring(input, k);
            const what = `${blocks} blocks, round ${round}, k = ${k}`;
            for (const got of [program.compute(input, k), await program.computeAsync(input, k)]) {
              expect(sameBits(got.scores, want.scores), `${what}: scores`).toBe(true);
              expect(Array.from(got.victims), `${what}: victims`).toEqual(Array.from(want.victims));
            }
          }
        }
      }
      program.destroy();
    }, 120_000);

    onDevice('refuses malformed input before touching the device', async () => {
      const program = CudaHitScoringProgram.create();
      const input: HitScoringInput = randomMetadata(seededRandom(3), 10, 2);
      expect(() => program.compute({ ...input, refCount: new Int32Array(9) }, 1)).toThrow(RangeError);
      expect(() => program.compute({ ...input, scoreClass: new Int32Array(10).fill(2) }, 1)).toThrow(/only 2 class scores/);
      expect(() => program.compute(input, -1)).toThrow(RangeError);
      const score = Float32Array.from(input.score);
      score[6] = NaN;
      const nan = { ...input, score, scoreClass: new Int32Array(10).fill(-1) };
      expect(() => program.compute(nan, 1)).toThrow(/block 6 has an effective score that is not finite/);
      await expect(program.computeAsync(nan, 1)).rejects.toThrow(RangeError);
      // Still usable after refusals.
      expect(Array.from(program.compute(input, 3).victims)).toEqual(Array.from(referenceHitScoring(input, 3).victims));
      program.destroy();
    });
  });

  describe('CudaDataPlane', () => {
    onDevice.each([
      [16, 8, 8],
      [24, 5, 7],
      [12, 6, 0],
      [7, 4, 9],
      [4096, 16, 16],
    ])('runs random multi-stage plans byte for byte like the reference (%i bytes, %i device, %i host)', (bytesPerBlock, deviceBlocks, hostBlocks) => {
      const rand = seededRandom(bytesPerBlock * 7 + deviceBlocks * 3 + hostBlocks);
      const plane = new CudaDataPlane({ bytesPerBlock, deviceBlocks, hostBlocks });
      expect([plane.bytesPerBlock, plane.deviceBlocks, plane.hostBlocks]).toEqual([bytesPerBlock, deviceBlocks, hostBlocks]);
      const pools: BlockPools = {
        bytesPerBlock,
        device: new Uint8Array(deviceBlocks * bytesPerBlock),
        host: new Uint8Array(hostBlocks * bytesPerBlock),
      };
      seedPools(rand, plane, pools);
      for (let round = 0; round < 8; round++) {
        const plan = randomPlan(rand, deviceBlocks, hostBlocks, 1 + Math.floor(rand() * 5));
        referenceBlockCopy(pools, plan);
        plane.execute(plan);
      }
      plane.synchronize();
      expect(firstDifferentBlock(plane, pools)).toBeNull();
      plane.destroy();
    });

    onDevice('splits a plan with no stages where copies conflict, keeping its serial meaning', () => {
      const rand = seededRandom(77);
      const plane = new CudaDataPlane({ bytesPerBlock: 32, deviceBlocks: 4, hostBlocks: 4 });
      const pools: BlockPools = { bytesPerBlock: 32, device: new Uint8Array(128), host: new Uint8Array(128) };
      seedPools(rand, plane, pools);
      // device 0 -> device 1, then device 1 -> host 2, then host 2 -> device 0: a chain.
      const plan: CopyPlan = {
        srcTier: Uint8Array.of(Tier.Device, Tier.Device, Tier.Host),
        srcSlot: Int32Array.of(0, 1, 2),
        dstTier: Uint8Array.of(Tier.Device, Tier.Host, Tier.Device),
        dstSlot: Int32Array.of(1, 2, 0),
        stageStarts: new Int32Array(0),
      };
      referenceBlockCopy(pools, plan);
      plane.execute(plan);
      expect(firstDifferentBlock(plane, pools)).toBeNull();
      plane.destroy();
    });

    onDevice('prefetches host blocks to the device on its own stream', async () => {
      const rand = seededRandom(5);
      const plane = new CudaDataPlane({ bytesPerBlock: 256, deviceBlocks: 6, hostBlocks: 6 });
      const pools: BlockPools = { bytesPerBlock: 256, device: new Uint8Array(6 * 256), host: new Uint8Array(6 * 256) };
      seedPools(rand, plane, pools);
      const prefetch: CopyPlan = {
        srcTier: Uint8Array.of(Tier.Host, Tier.Host, Tier.Host),
        srcSlot: Int32Array.of(4, 0, 2),
        dstTier: Uint8Array.of(Tier.Device, Tier.Device, Tier.Device),
        dstSlot: Int32Array.of(1, 5, 3),
        stageStarts: Int32Array.of(0),
      };
      referenceBlockCopy(pools, prefetch);
      plane.prefetch(prefetch.srcSlot, prefetch.dstSlot);
      plane.waitForPrefetch();
      // A copy queued after waitForPrefetch sees the prefetched block.
      const after: CopyPlan = {
        srcTier: Uint8Array.of(Tier.Device),
        srcSlot: Int32Array.of(5),
        dstTier: Uint8Array.of(Tier.Host),
        dstSlot: Int32Array.of(1),
        stageStarts: Int32Array.of(0),
      };
      referenceBlockCopy(pools, after);
      plane.execute(after);
      for (let spins = 0; !plane.prefetchComplete() && spins < 10_000; spins++) await new Promise((resolve) => setImmediate(resolve));
      expect(plane.prefetchComplete()).toBe(true);
      plane.synchronize();
      expect(firstDifferentBlock(plane, pools)).toBeNull();

      const again: CopyPlan = { ...prefetch, srcSlot: Int32Array.of(1, 3, 5), dstSlot: Int32Array.of(0, 2, 4) };
      referenceBlockCopy(pools, again);
      plane.prefetchPlan(again);
      plane.synchronize();
      expect(firstDifferentBlock(plane, pools)).toBeNull();
      plane.destroy();
    });

    onDevice('refuses bad plans, prefetches and blocks before queueing anything', () => {
      const rand = seededRandom(9);
      const plane = new CudaDataPlane({ bytesPerBlock: 16, deviceBlocks: 2, hostBlocks: 1 });
      const pools: BlockPools = { bytesPerBlock: 16, device: new Uint8Array(32), host: new Uint8Array(16) };
      seedPools(rand, plane, pools);
      const plan = (st: number, ss: number, dt: number, ds: number): CopyPlan => ({
        srcTier: Uint8Array.of(st),
        srcSlot: Int32Array.of(ss),
        dstTier: Uint8Array.of(dt),
        dstSlot: Int32Array.of(ds),
        stageStarts: Int32Array.of(0),
      });
      expect(() => plane.execute(plan(Tier.Device, 2, Tier.Host, 0))).toThrow(/source slot 2/);
      expect(() => plane.execute(plan(Tier.Free, 0, Tier.Host, 0))).toThrow(/source tier 0/);
      expect(() => plane.execute(plan(Tier.Device, 0, Tier.Host, 1))).toThrow(/destination slot 1/);
      // Two copies into one slot in one stage break the stage rule.
      const conflict: CopyPlan = {
        srcTier: Uint8Array.of(Tier.Device, Tier.Device),
        srcSlot: Int32Array.of(0, 1),
        dstTier: Uint8Array.of(Tier.Host, Tier.Host),
        dstSlot: Int32Array.of(0, 0),
        stageStarts: Int32Array.of(0),
      };
      expect(() => plane.execute(conflict)).toThrow(/conflicts/);
      expect(() => plane.prefetch(Int32Array.of(0, 0), Int32Array.of(1, 1))).toThrow(/written twice/);
      expect(() => plane.prefetch(Int32Array.of(1), Int32Array.of(0))).toThrow(/host slot 1/);
      expect(() => plane.prefetchPlan(plan(Tier.Device, 0, Tier.Device, 1))).toThrow(/host to device/);
      expect(() => plane.write('device', 2, new Uint8Array(16))).toThrow(RangeError);
      expect(() => plane.write('device', 0, new Uint8Array(15))).toThrow(RangeError);
      expect(() => plane.read('gpu' as never, 0)).toThrow(TypeError);
      plane.synchronize();
      expect(firstDifferentBlock(plane, pools)).toBeNull();
      plane.destroy();
      expect(() => plane.synchronize()).toThrow(/destroyed/);
    });
  });
});
