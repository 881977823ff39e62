/**
 * Random inputs for the hit-scoring and survival tests of the native CPU and
 * CUDA backends, built so the interesting cases are common: ties in score
 * and lastAccess, -0 beside 0, classed and classless blocks, blocks that
 * are not evictable for each of the four reasons.
 */
import { Tier } from '../../src/blocks/types.js';
import type { HitScoringInput } from '../../src/gpu/reference.js';
import type { SurvivalInput } from '../../src/policies/cachesage/survival.js';

/** Finite scores from a small set: both zeros, float32 subnormals, negatives, a large value. */
export const SCORE_VALUES = [0, -0, 1e-40, -1e-40, 0.25, 0.5, -3, 7.5, 1e30, -1e-20] as const;
/** Clock values from a small set; 2^40 + 1 and 2^40 + 3 differ only in the low word of the float64. */
export const ACCESS_VALUES = [0, -0, 1, 2, 3, 17, 2 ** 40 + 1, 2 ** 40 + 3, 1e15, Infinity, -Infinity] as const;

/** Metadata of `blocks` ids with `classes` class scores; about half the blocks are classed when there are classes. */
export function randomMetadata(rand: () => number, blocks: number, classes: number): HitScoringInput {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;
  return {
    tier: Uint8Array.from({ length: blocks }, () => pick([Tier.Free, Tier.Device, Tier.Device, Tier.Device, Tier.Host])),
    committed: Uint8Array.from({ length: blocks }, () => (rand() < 0.85 ? 1 : 0)),
    refCount: Int32Array.from({ length: blocks }, () => pick([0, 0, 0, 0, 1, 3])),
    deviceChildren: Int32Array.from({ length: blocks }, () => pick([0, 0, 0, 1, 2])),
    lastAccess: Float64Array.from({ length: blocks }, () => pick(ACCESS_VALUES)),
    score: Float32Array.from({ length: blocks }, () => pick(SCORE_VALUES)),
    scoreClass: Int32Array.from({ length: blocks }, () => (classes > 0 && rand() < 0.5 ? Math.floor(rand() * classes) : -1)),
    classScores: Float32Array.from({ length: classes }, () => pick(SCORE_VALUES)),
  };
}

/** How many blocks of `input` are evictable device leaves. */
export function countEvictable(input: HitScoringInput): number {
  let count = 0;
  for (let id = 0; id < input.tier.length; id++) {
    if (input.tier[id] === Tier.Device && input.committed[id] === 1 && input.refCount[id] === 0 && input.deviceChildren[id] === 0) {
      count++;
    }
  }
  return count;
}

/** Whether two float arrays hold the same bits (so -0 differs from 0). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * A survival batch: per workload an absorbing END state, sparse rows that
 * sum to 1, and padding states past `live` that are absorbing.
 */
export function randomChains(rand: () => number, workloads: number, states: number, horizon: number): SurvivalInput {
  const transitions = new Float32Array(workloads * states * states);
  const endState = new Int32Array(workloads);
  for (let w = 0; w < workloads; w++) {
    const live = 1 + Math.floor(rand() * states);
    const end = Math.floor(rand() * live);
    endState[w] = end;
    for (let a = 0; a < states; a++) {
      const row = (w * states + a) * states;
      if (a === end || a >= live) {
        transitions[row + a] = 1;
        continue;
      }
      let sum = 0;
      for (let b = 0; b < live; b++) {
        const p = rand() < 0.4 ? 0 : rand();
        transitions[row + b] = p;
        sum += p;
      }
      transitions[row + end] = transitions[row + end]! + 0.05;
      sum += 0.05;
      for (let b = 0; b < live; b++) transitions[row + b] = transitions[row + b]! / sum;
    }
  }
  return { workloads, states, horizon, transitions, endState };
}
