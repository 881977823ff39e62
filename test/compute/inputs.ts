/**
 * Random inputs and tolerances shared by the tests of every backend (the
 * TypeScript and native CPU code, WebGPU, CUDA, tfjs), built so the
 * interesting cases are common: ties in score and lastAccess, -0 beside 0,
 * classed and classless blocks, blocks that are not evictable for each of
 * the four reasons; survival batches with padding and near-certain endings.
 */
import { expect } from 'vitest';

import { Tier } from '../../src/blocks/types.js';
import { isDeviceEvictable, type HitScoringInput } from '../../src/compute/hit_scoring.js';
import type { SurvivalInput, SurvivalOutput } from '../../src/compute/survival.js';

/** Finite scores from a small set: both zeros, float32 subnormals, negatives, a large value. */
export const SCORE_VALUES = [0, -0, 1e-40, -1e-40, 0.25, 0.5, -3, 7.5, 1e30, -1e-20] as const;
/** Finite clock values from a small set; 2^40 + 1 and 2^40 + 3 differ only in the low word of the float64. */
export const FINITE_ACCESS_VALUES = [0, -0, 1, 2, 3, 17, 2 ** 40 + 1, 2 ** 40 + 3, 1e15, 1e15 + 2] as const;
/** The same with infinities, which the native scorers order by their bits. */
export const ACCESS_VALUES = [...FINITE_ACCESS_VALUES, Infinity, -Infinity] as const;

/**
 * Metadata of `blocks` ids with `classes` class scores; about half the
 * blocks are classed when there are classes.
 */
export function randomMetadata(
  rand: () => number,
  blocks: number,
  classes: number,
  accessValues: readonly number[] = ACCESS_VALUES,
): HitScoringInput {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;
  return {
    tier: Uint8Array.from({ length: blocks }, () => pick([Tier.Free, Tier.Device, Tier.Device, Tier.Device, Tier.Host])),
    committed: Uint8Array.from({ length: blocks }, () => (rand() < 0.85 ? 1 : 0)),
    refCount: Int32Array.from({ length: blocks }, () => pick([0, 0, 0, 0, 1, 3])),
    deviceChildren: Int32Array.from({ length: blocks }, () => pick([0, 0, 0, 1, 2])),
    lastAccess: Float64Array.from({ length: blocks }, () => pick(accessValues)),
    score: Float32Array.from({ length: blocks }, () => pick(SCORE_VALUES)),
    scoreClass: Int32Array.from({ length: blocks }, () => (classes > 0 && rand() < 0.5 ? Math.floor(rand() * classes) : -1)),
    classScores: Float32Array.from({ length: classes }, () => pick(SCORE_VALUES)),
  };
}

/** How many blocks of `input` are evictable device leaves. */
export function countEvictable(input: HitScoringInput): number {
  let count = 0;
  for (let id = 0; id < input.tier.length; id++) if (isDeviceEvictable(input, id)) count++;
  return count;
}

/** Whether two float arrays hold the same bits (so -0 differs from 0). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * A survival batch shaped like the policy's: per workload some live states
 * (END among them, absorbing), absorbing padding past them, rows with about
 * a third of their entries zero; with `nearCertainEnds`, a quarter of the
 * workloads end almost surely at every step.
 */
export function randomChains(
  rand: () => number,
  workloads: number,
  states: number,
  horizon: number,
  { nearCertainEnds = false }: { nearCertainEnds?: boolean } = {},
): SurvivalInput {
  const transitions = new Float32Array(workloads * states * states);
  const endState = new Int32Array(workloads);
  for (let w = 0; w < workloads; w++) {
    const live = 1 + Math.floor(rand() * states);
    const end = Math.floor(rand() * live);
    const endBias = nearCertainEnds && rand() < 0.25 ? 5 : 0.05;
    endState[w] = end;
    for (let a = 0; a < states; a++) {
      const row = (w * states + a) * states;
      if (a === end || a >= live) {
        transitions[row + a] = 1;
        continue;
      }
      const weights = Array.from({ length: live }, () => (rand() < 0.35 ? 0 : rand()));
      weights[end] = weights[end]! + endBias; // every live state can end
      const sum = weights.reduce((total, x) => total + x, 0);
      weights.forEach((x, b) => (transitions[row + b] = x / sum));
    }
  }
  return { workloads, states, horizon, transitions, endState };
}

/**
 * One workload whose sessions end almost surely (END absorbing, 0.93 of each
 * live row to END): alive falls below 1e-10 by h = 16, where float32
 * subtraction from 1 would lose it. Rows are normalised in float32, so they
 * sum to 1 only within rounding.
 */
export function nearlyEndedInput(): SurvivalInput {
  const p = [0.93, 0.05, 0.02].map(Math.fround);
  return {
    workloads: 1,
    states: 3,
    horizon: 16,
    transitions: Float32Array.from([1, 0, 0, p[0]!, p[1]!, p[2]!, p[0]!, p[2]!, p[1]!]),
    endState: Int32Array.of(0),
  };
}

/**
 * The bar every float32 survival backend meets against the float64
 * reference: relative error 1e-5. Two absolute allowances sit far below
 * anything that matters: reference values float32 can only hold as
 * subnormals, and the reference's own rounding of alive, which it takes as
 * 1 - (T^h)[a][END] in float64 and so knows only to about H·n·2^-53.
 */
export const RELATIVE = 1e-5;
export const ABSOLUTE: Readonly<Record<keyof SurvivalOutput, number>> = { reach: 1e-35, alive: 1e-13, expectedSteps: 1e-35 };
export const SURVIVAL_KEYS = ['reach', 'alive', 'expectedSteps'] as const;

/** The largest relative error of `got` against `want` past `absolute`, and where. */
export function worstError(got: Float32Array, want: Float32Array, absolute: number): { error: number; index: number } {
  expect(got.length).toBe(want.length);
  let error = 0;
  let index = -1;
  for (let i = 0; i < want.length; i++) {
    const difference = Math.abs(got[i]! - want[i]!);
    const e = difference <= absolute ? 0 : difference / Math.abs(want[i]!);
    if (!(e <= error)) {
      error = e;
      index = i;
    }
  }
  return { error, index };
}

/** Every survival output within {@link RELATIVE} of the reference's. */
export function expectSurvivalClose(got: SurvivalOutput, want: SurvivalOutput, label: string): void {
  for (const key of SURVIVAL_KEYS) {
    const { error, index } = worstError(got[key], want[key], ABSOLUTE[key]);
    expect(error, `${label} ${key}[${index}] = ${got[key][index]}, reference ${want[key][index]}`).toBeLessThan(RELATIVE);
  }
}
