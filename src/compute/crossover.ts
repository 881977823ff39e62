/**
 * The crossover: the smallest batch from which a GPU backend beats the CPU
 * (a dispatch has a fixed cost: upload, launch, readback). `'auto'` routes
 * smaller batches to the CPU. Measured on random inputs of a doubling
 * sweep; the benchmark (bench/kernels.ts) uses the same sweep and inputs.
 */
import { performance } from 'node:perf_hooks';

import { Tier } from '../blocks/types.js';
import type { SurvivalInput } from './survival.js';
import { seededRandom } from '../util/random.js';
import type { HitScoringInput } from './hit_scoring.js';

/** Batch sizes from which a GPU backend runs an operation; Infinity: never. */
export interface Crossover {
  /** Survival: workloads x horizon x states^2 (the reach elements of a batch). */
  survivalElements: number;
  /** Hit scoring: block ids scored. */
  hitScoringBlocks: number;
  /** Whether these were measured here (false: given or assumed). */
  measured: boolean;
}

/** One point of a sweep: a size and the median time of each side. */
export interface SweepPoint {
  size: number;
  cpuMs: number;
  gpuMs: number;
}

/** Median milliseconds of `count` runs after one warm-up run. */
export async function medianMs(run: () => unknown, count = 3): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/**
 * The smallest size of a sweep from which `gpu` is faster than `cpu` at
 * every larger size swept too (one win between losses is noise, not a
 * crossover), or null when there is none.
 */
export async function findCrossover(
  sizes: readonly number[],
  cpu: (size: number) => Promise<number>,
  gpu: (size: number) => Promise<number>,
  onPoint?: (point: SweepPoint) => void,
): Promise<{ from: number | null; points: SweepPoint[] }> {
  let from: number | null = null;
  const points: SweepPoint[] = [];
  for (const size of sizes) {
    const point = { size, cpuMs: await cpu(size), gpuMs: await gpu(size) };
    onPoint?.(point);
    points.push(point);
    if (point.gpuMs >= point.cpuMs) from = null;
    else from ??= size;
  }
  return { from, points };
}

/** Powers of two from `from` to `to`, inclusive. */
export function doublings(from: number, to: number): number[] {
  const out: number[] = [];
  for (let x = from; x <= to; x *= 2) out.push(x);
  return out;
}

/**
 * A random survival batch: `workloads` matrices of `states` states, each
 * with an absorbing END state and rows summing to 1.
 */
export function randomSurvivalInput(workloads: number, states: number, horizon: number, seed = workloads * 131 + states): SurvivalInput {
  const rand = seededRandom(seed);
  const transitions = new Float32Array(workloads * states * states);
  const endState = new Int32Array(workloads);
  for (let w = 0; w < workloads; w++) {
    const end = Math.floor(rand() * states);
    endState[w] = end;
    for (let a = 0; a < states; a++) {
      const row = (w * states + a) * states;
      if (a === end) {
        transitions[row + a] = 1;
        continue;
      }
      let sum = 0;
      for (let b = 0; b < states; b++) sum += transitions[row + b] = rand() < 0.35 ? 0 : rand();
      transitions[row + end] = transitions[row + end]! + 0.05;
      sum += 0.05;
      for (let b = 0; b < states; b++) transitions[row + b] = transitions[row + b]! / sum;
    }
  }
  return { workloads, states, horizon, transitions, endState };
}

/** Random block metadata of `blocks` ids with 4096 score classes, most of them device blocks. */
export function randomHitScoringInput(blocks: number, seed = blocks): HitScoringInput {
  const rand = seededRandom(seed);
  return {
    tier: Uint8Array.from({ length: blocks }, () => (rand() < 0.8 ? Tier.Device : Tier.Host)),
    committed: Uint8Array.from({ length: blocks }, () => (rand() < 0.95 ? 1 : 0)),
    refCount: Int32Array.from({ length: blocks }, () => (rand() < 0.2 ? 1 : 0)),
    deviceChildren: Int32Array.from({ length: blocks }, () => (rand() < 0.5 ? 1 : 0)),
    lastAccess: Float64Array.from({ length: blocks }, () => Math.floor(rand() * blocks)),
    score: Float32Array.from({ length: blocks }, () => Math.fround(rand())),
    scoreClass: Int32Array.from({ length: blocks }, () => (rand() < 0.5 ? Math.floor(rand() * 4096) : -1)),
    classScores: Float32Array.from({ length: 4096 }, () => Math.fround(rand())),
  };
}

/** The survival shape the calibration sweeps workloads of: CacheSage's default horizon. */
export const CALIBRATION_SURVIVAL = { states: 16, horizon: 8, maxWorkloads: 1024 };
/** The hit-scoring sweep, in blocks, and the victims asked for. */
export const CALIBRATION_SCORING = { minBlocks: 1 << 10, maxBlocks: 1 << 20, victims: 64 };

interface Measurable {
  survival(input: SurvivalInput): Promise<unknown>;
  hitScoring(input: HitScoringInput, k: number): Promise<unknown>;
}

/**
 * Measures the crossover of `gpu` against `cpu` for survival and hit
 * scoring (fields of `given` are taken as they are, not measured). An
 * operation the GPU never wins gets Infinity. Takes about 2 s (measured
 * with the CPU on both sides on a 2-core machine: building the inputs and
 * the CPU's own runs are most of it), once per selection; pass the sizes
 * to skip it.
 */
export async function measureCrossover(cpu: Measurable, gpu: Measurable, given: Partial<Crossover> = {}): Promise<Crossover> {
  let survivalElements = given.survivalElements;
  if (survivalElements === undefined) {
    const { states, horizon, maxWorkloads } = CALIBRATION_SURVIVAL;
    const inputs = new Map<number, SurvivalInput>();
    const input = (w: number): SurvivalInput => {
      let i = inputs.get(w);
      if (i === undefined) inputs.set(w, (i = randomSurvivalInput(w, states, horizon)));
      return i;
    };
    const sweep = await findCrossover(
      doublings(1, maxWorkloads),
      (w) => medianMs(() => cpu.survival(input(w))),
      (w) => medianMs(() => gpu.survival(input(w))),
    );
    survivalElements = sweep.from === null ? Infinity : sweep.from * horizon * states * states;
  }
  let hitScoringBlocks = given.hitScoringBlocks;
  if (hitScoringBlocks === undefined) {
    const { minBlocks, maxBlocks, victims } = CALIBRATION_SCORING;
    // Built once per size, for both sides: at 1M blocks building takes longer than scoring.
    let built: { blocks: number; input: HitScoringInput } | null = null;
    const input = (n: number): HitScoringInput => {
      if (built?.blocks !== n) built = { blocks: n, input: randomHitScoringInput(n) };
      return built.input;
    };
    const sweep = await findCrossover(
      doublings(minBlocks, maxBlocks),
      (n) => medianMs(() => cpu.hitScoring(input(n), victims)),
      (n) => medianMs(() => gpu.hitScoring(input(n), victims)),
    );
    hitScoringBlocks = sweep.from ?? Infinity;
  }
  return { survivalElements, hitScoringBlocks, measured: true };
}
