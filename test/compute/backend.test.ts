/**
 * Backend selection and routing: 'auto' never lands on a software adapter,
 * a named backend is used or refused with its reason, routing sends each
 * batch to the side its size calls for, and the runtime reports its choice.
 */
import { afterAll, describe, expect, it } from 'vitest';

import {
  cpuBackend,
  routedBackend,
  selectBackend,
  type ComputeBackend,
} from '../../src/compute/backend.js';
import { cudaInfo } from '../../src/compute/cuda/cuda.js';
import {
  CALIBRATION_SCORING,
  CALIBRATION_SURVIVAL,
  doublings,
  measureCrossover,
  randomHitScoringInput,
  randomSurvivalInput,
} from '../../src/compute/crossover.js';
import { referenceHitScoring } from '../../src/compute/hit_scoring.js';
import { probeWebGpu, releaseWebGpu } from '../../src/compute/webgpu/device.js';
import { ReferenceSurvivalBackend } from '../../src/compute/survival.js';
import { Runtime } from '../../src/runtime/runtime.js';

const probe = await probeWebGpu();
const webgpuReason = probe.available ? '' : probe.reason;
if (!probe.available && process.env.CI) {
  throw new Error(`CI must run the WebGPU backend tests, but no adapter was found: ${webgpuReason}`);
}
if (!probe.available) process.stderr.write(`backend tests: WebGPU cases skipped: ${webgpuReason}\n`);
const softwareAdapter = probe.available && probe.context.info.isSoftware;
const cuda = cudaInfo();

afterAll(releaseWebGpu);

/** Delegates to a real backend and counts which operations reached it. */
function counted(backend: ComputeBackend): { backend: ComputeBackend; calls: { survival: number; hitScoring: number } } {
  const calls = { survival: 0, hitScoring: 0 };
  return {
    calls,
    backend: {
      ...backend,
      survival: (input) => (calls.survival++, backend.survival(input)),
      hitScoring: (input, k) => (calls.hitScoring++, backend.hitScoring(input, k)),
    },
  };
}

describe('selectBackend', () => {
  it("'cpu' is the native core, synchronous", async () => {
    const s = await selectBackend('cpu');
    expect(s.backend.name).toBe('cpu');
    expect(s.backend.survivalSync).not.toBeNull();
    expect(s.backend.hitScoringSync).not.toBeNull();
    expect(s.reason).toMatch(/by name/);
  });

  it("'auto' picks CUDA, then hardware WebGPU, then the CPU, and says why", async () => {
    const s = await selectBackend('auto', { calibrate: false });
    expect(s.backend.software).toBe(false);
    // Past CUDA, webgpu is looked at whether or not it is taken.
    expect(s.candidates.map((c) => c.name)).toEqual(s.backend.name === 'cuda' ? ['cuda', 'cpu'] : ['cuda', 'webgpu', 'cpu']);
    const cudaCandidate = s.candidates.find((c) => c.name === 'cuda')!;
    expect(cudaCandidate.available).toBe(cuda.available);
    if (!cuda.available) expect(cudaCandidate.reason.length).toBeGreaterThan(5);
    if (softwareAdapter && !cuda.available) {
      // This machine's only GPU backend is a software adapter: auto must not take it.
      expect(s.backend.name).toBe('cpu');
      expect(s.candidates.find((c) => c.name === 'webgpu')!.reason).toMatch(/software adapter/);
      expect(s.reason).toMatch(/no GPU backend is usable/);
    }
  });

  it.skipIf(cuda.available)("'cuda' by name is refused with the reason where there is no CUDA device", async () => {
    await expect(selectBackend('cuda')).rejects.toThrow(/backend 'cuda' is not available: .+/);
  });

  it.skipIf(!probe.available)("'webgpu' by name is used even on a software adapter, and marked", async () => {
    const s = await selectBackend('webgpu');
    expect(s.backend.name).toBe('webgpu');
    expect(s.backend.software).toBe(softwareAdapter);
    expect(s.backend.survivalSync).toBeNull();
    if (softwareAdapter) expect(s.reason).toMatch(/software/);
    s.backend.destroy();
  });

  it('refuses an unknown name', async () => {
    await expect(selectBackend('tpu' as never)).rejects.toThrow(RangeError);
  });
});

describe('routing by crossover', () => {
  it.skipIf(!probe.available)('sends batches below the crossover to the CPU and the rest to the GPU, with the same results', async () => {
    const gpu = (await selectBackend('webgpu')).backend;
    const g = counted(gpu);
    const c = counted(cpuBackend());
    const { states, horizon } = CALIBRATION_SURVIVAL;
    const perWorkload = horizon * states * states;
    const routed = routedBackend(g.backend, c.backend, { survivalElements: 4 * perWorkload, hitScoringBlocks: 4096, measured: false });

    const small = randomSurvivalInput(3, states, horizon);
    const large = randomSurvivalInput(4, states, horizon);
    const reference = new ReferenceSurvivalBackend();
    for (const input of [small, large]) {
      const out = await routed.survival(input);
      const want = reference.compute(input);
      for (let i = 0; i < want.reach.length; i++) expect(Math.abs(out.reach[i]! - want.reach[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want.reach[i]!)));
    }
    expect(c.calls.survival).toBe(1);
    expect(g.calls.survival).toBe(1);

    for (const blocks of [4095, 4096]) {
      const input = randomHitScoringInput(blocks);
      const out = await routed.hitScoring(input, 32);
      const want = referenceHitScoring(input, 32);
      expect(Array.from(out.victims)).toEqual(Array.from(want.victims));
      expect(out.scores).toEqual(want.scores);
    }
    expect(c.calls.hitScoring).toBe(1);
    expect(g.calls.hitScoring).toBe(1);
    // The GPU side computes asynchronously, so the routed backend does too.
    expect(routed.survivalSync).toBeNull();
    gpu.destroy();
  });
});

describe('measureCrossover', () => {
  it('takes given sizes as they are, and measures the rest to a size of the sweep or Infinity', async () => {
    const cpu = cpuBackend();
    const a = counted(cpu);
    const b = counted(cpu);
    const given = await measureCrossover(a.backend, b.backend, { survivalElements: 123, hitScoringBlocks: 456 });
    expect(given).toEqual({ survivalElements: 123, hitScoringBlocks: 456, measured: true });
    expect(a.calls.survival + a.calls.hitScoring + b.calls.survival + b.calls.hitScoring).toBe(0);

    const measured = await measureCrossover(a.backend, b.backend, { survivalElements: 1 });
    expect(a.calls.survival).toBe(0);
    expect(a.calls.hitScoring).toBeGreaterThan(0);
    expect(b.calls.hitScoring).toBe(a.calls.hitScoring);
    const sweep = doublings(CALIBRATION_SCORING.minBlocks, CALIBRATION_SCORING.maxBlocks);
    expect([...sweep, Infinity]).toContain(measured.hitScoringBlocks);
  }, 60_000);
});

describe('the runtime on a backend', () => {
  it('reports the backend and the reason in info()', async () => {
    const runtime = await Runtime.create({ blocks: { deviceBlocks: 64 }, backend: 'auto', select: { calibrate: false } });
    const info = runtime.info().backend as Record<string, unknown>;
    expect(info.name).toBe(runtime.backend.name);
    expect(typeof info.reason).toBe('string');
    expect(info.requested).toBe('auto');
    expect(Array.isArray(info.candidates)).toBe(true);
    expect(info.software).toBe(false);
  });

  it('defaults to the CPU in the synchronous constructor and refuses names that need selecting', () => {
    expect(new Runtime({ blocks: { deviceBlocks: 8 } }).backend.name).toBe('cpu');
    expect(() => new Runtime({ blocks: { deviceBlocks: 8 }, backend: 'webgpu' as never })).toThrow(/Runtime.create/);
    expect(() => new Runtime({ blocks: { deviceBlocks: 8 }, backend: 42 as never })).toThrow(TypeError);
  });

  it.skipIf(!probe.available)('on WebGPU: refreshSync says to await refresh(), and refresh() recomputes the survival tables', async () => {
    const runtime = await Runtime.create({ blocks: { deviceBlocks: 256, blockSize: 4 }, backend: 'webgpu', autoRefresh: false, policies: [{ name: 'cachesage', options: { refreshEvery: 4 } }] });
    const agents = ['planner', 'coder', 'critic'];
    let request = 1;
    for (let s = 0; s < 4; s++) {
      const session = `s${s}`;
      runtime.observe({ type: 'session.start', time: s, session, workload: 'w' });
      for (let k = 0; k < 6; k++) {
        const agent = { workload: 'w', agent: agents[k % 3]! };
        runtime.observe({ type: 'step.start', time: s + k * 0.1, session, agent });
        runtime.admit({ requestId: request, hashes: BigUint64Array.of(BigInt(1000 * s + k + 1)), numTokens: 4, session, agent, time: s + k * 0.1 });
        runtime.prefillDone(request, s + k * 0.1);
        runtime.release(request++, s + k * 0.1 + 0.05);
        runtime.observe({ type: 'step.end', time: s + k * 0.1 + 0.05, session, agent });
      }
    }
    expect(() => runtime.refreshSync()).toThrow(/await runtime.refresh\(\)/);
    const result = await runtime.refresh();
    expect(result.survivalWorkloads).toBe(1);
    expect(result.survivalBatches).toBe(1);
    expect((await runtime.refresh()).survivalWorkloads).toBe(0);
    runtime.backend.destroy();
  });
});
