import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { TfjsSurvivalBackend } from '../../../src/compute/tfjs/survival_program.js';
import {
  ReferenceSurvivalBackend,
  type SurvivalInput,
  type SurvivalOutput,
} from '../../../src/compute/survival.js';
import { seededRandom as rng } from '../../../src/util/random.js';
import { expectSurvivalClose, nearlyEndedInput, randomChains, SURVIVAL_KEYS } from '../inputs.js';

const NEAR_CERTAIN = { nearCertainEnds: true };

// 'auto': CUDA through @tensorflow/tfjs-node-gpu where it loads, else the
// tfjs CPU backend. Test names say which ran.
const backend = await TfjsSurvivalBackend.create();
const reference = new ReferenceSurvivalBackend();
const ran = `${backend.module}, tf backend '${backend.tfBackend}'${backend.isGpu ? ', GPU' : ''}`;

function expectSameBits(got: SurvivalOutput, want: SurvivalOutput, label: string): void {
  for (const key of SURVIVAL_KEYS) {
    expect(Buffer.from(got[key].buffer).equals(Buffer.from(want[key].buffer)), `${label} ${key}`).toBe(true);
  }
}

function thrown(call: () => unknown): Error {
  try {
    call();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe(`TfjsSurvivalBackend (${ran})`, () => {
  it(`loads tfjs: ${ran}`, () => {
    expect(backend.name).toBe('tfjs');
    expect(['tfjs', 'tfjs-node-gpu']).toContain(backend.module);
    expect(backend.tfBackend).toBe(tf.getBackend());
    if (backend.module === 'tfjs') expect(typeof backend.gpuModuleError).toBe('string');
    if (backend.tfBackend === 'cpu') expect(backend.isGpu).toBe(false);
  });

  const sizes: Array<[number, number, number]> = [
    [1, 1, 1],
    [2, 1, 6],
    [1, 2, 1],
    [3, 5, 4],
    [5, 7, 17],
    [16, 16, 16],
    [4, 33, 7],
    [9, 48, 32],
    [8, 64, 16],
    [3, 64, 32],
  ];
  it.each(sizes)('is within 1e-5 relative of the reference: %i workloads, %i states, H = %i', async (workloads, states, horizon) => {
    const input = randomChains(rng(workloads * 1000 + states * 10 + horizon), workloads, states, horizon, NEAR_CERTAIN);
    const label = `${workloads}x${states}x${horizon}`;
    const got = backend.compute(input);
    expectSurvivalClose(got, reference.compute(input), label);
    expectSameBits(await backend.computeAsync(input), got, `${label} async vs sync`);
  });

  it.each([
    [1, 64, 256],
    [3, 5, 256],
    [2, 20, 100],
  ])('stays within 1e-5 at long horizons: %i workloads, %i states, H = %i', (workloads, states, horizon) => {
    const input = randomChains(rng(states * 7 + horizon), workloads, states, horizon, NEAR_CERTAIN);
    expectSurvivalClose(backend.compute(input), reference.compute(input), `${workloads}x${states}x${horizon}`);
  });

  it('keeps alive probabilities accurate when a session has almost surely ended', () => {
    const input = nearlyEndedInput();
    const want = reference.compute(input);
    expect(want.alive[15 * 3 + 1]).toBeLessThan(1e-10);
    expectSurvivalClose(backend.compute(input), want, 'near-certain end');
  });

  it('handles an END that is not absorbing, as the reference does', () => {
    const input: SurvivalInput = {
      workloads: 1,
      states: 3,
      horizon: 5,
      transitions: Float32Array.from([0.5, 0.5, 0, 0.25, 0.25, 0.5, 0, 0, 1]),
      endState: Int32Array.of(0),
    };
    expectSurvivalClose(backend.compute(input), reference.compute(input), 'END leaks');
  });

  it('splits a batch into chunks of whole workloads with the same results', async () => {
    const input = randomChains(rng(99), 20, 16, 8, NEAR_CERTAIN);
    // About three workloads per chunk, and one workload per chunk.
    const whole = backend.compute(input);
    for (const maxChunkBytes of [3 * 4 * (2 * 8 * (16 * 16 + 17) + 16 * 17 * 17) + 100, 1]) {
      const chunked = await TfjsSurvivalBackend.create({ module: backend.module, maxChunkBytes });
      const got = chunked.compute(input);
      expectSurvivalClose(got, reference.compute(input), `chunked at ${maxChunkBytes} bytes`);
      expectSameBits(await chunked.computeAsync(input), got, `chunked at ${maxChunkBytes} bytes, async vs sync`);
      // The CPU backend computes each workload the same way whatever the batch.
      if (backend.tfBackend === 'cpu') expectSameBits(got, whole, `chunked at ${maxChunkBytes} bytes vs whole`);
    }
  });

  it('holds at most maxChunkBytes of tensors at once', async () => {
    // 20 states, H = 10: about 62 KB of tensors per workload by the backend's estimate.
    const input = randomChains(rng(7), 24, 20, 10, NEAR_CERTAIN);
    // tf.profile returns the same object every time: keep the number, not the object.
    const peakBytes = async (run: () => void): Promise<number> => (await tf.profile(run)).peakBytes;
    const whole = await peakBytes(() => backend.compute(input));
    expect(whole).toBeGreaterThan(2 * 24 * 10 * 20 * 20 * 4); // the reach steps and their stacked copy
    for (const maxChunkBytes of [1 << 16, 1 << 18]) {
      const chunked = await TfjsSurvivalBackend.create({ module: backend.module, maxChunkBytes });
      const peak = await peakBytes(() => chunked.compute(input));
      expect(peak).toBeLessThanOrEqual(maxChunkBytes);
      expect(peak).toBeLessThan(whole / 4);
    }
  });

  it('runs concurrent asynchronous calls in order, each with its own result', async () => {
    const inputs = [randomChains(rng(1), 4, 9, 5, NEAR_CERTAIN), randomChains(rng(2), 1, 30, 12, NEAR_CERTAIN), randomChains(rng(3), 7, 2, 3, NEAR_CERTAIN)];
    const results = await Promise.all(inputs.map((input) => backend.computeAsync(input)));
    results.forEach((got, i) => expectSurvivalClose(got, reference.compute(inputs[i]!), `call ${i}`));
  });

  it('leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const input = randomChains(rng(5), 6, 12, 9, NEAR_CERTAIN);
    backend.compute(input);
    await backend.computeAsync(input);
    const chunked = await TfjsSurvivalBackend.create({ module: backend.module, maxChunkBytes: 1 });
    chunked.compute(input);
    await chunked.computeAsync(input);
    expect(() => backend.compute({ ...input, horizon: 0 })).toThrow(RangeError);
    await expect(backend.computeAsync({ ...input, horizon: 0 })).rejects.toThrow(RangeError);
    expect(tf.memory().numTensors).toBe(before);
  });

  describe('input validation', () => {
    const good = () => randomChains(rng(3), 2, 3, 4, NEAR_CERTAIN);
    const cases: Array<[string, () => unknown]> = [
      ['not an object', () => 5],
      ['null', () => null],
      ['fractional workloads', () => ({ ...good(), workloads: 1.5 })],
      ['states as a string', () => ({ ...good(), states: '3' })],
      ['too many states', () => ({ ...good(), states: 1025 })],
      ['zero horizon', () => ({ ...good(), horizon: 0 })],
      ['output too large', () => ({ ...good(), workloads: 2, states: 1024, horizon: 256 })],
      ['transitions as Float64Array', () => ({ ...good(), transitions: new Float64Array(18) })],
      ['endState as Uint32Array', () => ({ ...good(), endState: new Uint32Array(2) })],
      ['short transitions', () => ({ ...good(), transitions: new Float32Array(17) })],
      ['END out of range', () => ({ ...good(), endState: Int32Array.of(0, 3) })],
      [
        'NaN entry',
        () => {
          const input = good();
          input.transitions[13] = NaN;
          return input;
        },
      ],
      [
        'row not summing to 1',
        () => {
          const input = good();
          input.transitions.fill(0.3, 12, 15);
          return input;
        },
      ],
    ];

    it.each(cases)('throws what the reference throws: %s', async (_label, make) => {
      const want = thrown(() => reference.compute(make() as SurvivalInput));
      expect([RangeError, TypeError]).toContain(want.constructor);
      const got = thrown(() => backend.compute(make() as SurvivalInput));
      expect(got.constructor).toBe(want.constructor);
      expect(got.message).toBe(want.message);
      await expect(backend.computeAsync(make() as SurvivalInput)).rejects.toThrow(want.message);
    });

    it('refuses bad options', async () => {
      await expect(TfjsSurvivalBackend.create({ module: 'tfjs-cpu' as 'tfjs' })).rejects.toThrow(RangeError);
      await expect(TfjsSurvivalBackend.create({ maxChunkBytes: 0 })).rejects.toThrow(RangeError);
      await expect(TfjsSurvivalBackend.create({ maxChunkBytes: 1.5 })).rejects.toThrow(/integer/);
    });

    it('loads plain tfjs when asked, and fails loudly when a named module cannot load', async () => {
      const plain = await TfjsSurvivalBackend.create({ module: 'tfjs' });
      expect(plain.module).toBe('tfjs');
      expect(plain.gpuModuleError).toBeNull();
      if (backend.module === 'tfjs') {
        await expect(TfjsSurvivalBackend.create({ module: 'tfjs-node-gpu' })).rejects.toThrow(/@tensorflow\/tfjs-node-gpu did not load/);
      }
    });
  });
});
