/**
 * The simulator's cost model, calibrated from this engine's own measured
 * speeds, so `cachesage engine` can print beside each measured TTFT what
 * the simulator predicts for the same run.
 *
 * The cost model (sim/cost_model.ts) prices prefill as n / P + A * n *
 * (cached + n / 2) for n new tokens after `cached`, plus F once for an
 * iteration that prefills; a decode iteration as D0 + D1 * sequences + Dc *
 * (context tokens of all sequences); and a host -> device batch as L +
 * bytes / B. Each constant is fitted here from timed forward passes and
 * copies on the engine's backend (the CPU, a CUDA device or a WebGPU
 * device):
 * - F, P and A: least squares in relative error (each sample counts alike,
 *   whatever its length), over prefills of several lengths from nothing
 *   and of short and long chunks after cached prefixes: the chunks a cache
 *   hit leaves to compute. Without F a short chunk came out 10-14 % under
 *   its time and a mid-sized one 13-14 % over (small model);
 * - D0, D1 and Dc: least squares, in relative error, over decode steps of
 *   one and of eight sequences at three context lengths;
 * - L and B: copy plans of one block and of many blocks between the host
 *   and device pools of the backend's data plane.
 * Each timing is the median of a few runs, after one warm-up.
 */
import { performance } from 'node:perf_hooks';

import { Tier, type CopyPlan } from '../blocks/types.js';
import type { CostModel } from '../sim/cost_model.js';
import { kvBytesPerBlock, type ModelConfig } from './config.js';
import { Engine, type EngineBackend, type EngineChunk } from './engine.js';
import { createEnginePlane } from './planes.js';

export interface CalibrationOptions {
  model: ModelConfig;
  blockSize: number;
  /** The engine's tokens per iteration, which the cost model's budget takes. */
  tokenBudget: number;
  threads?: number;
  weights?: string;
  seed?: number;
  /** Longest context the fits use, in tokens (default 2,048). */
  maxContext?: number;
  /** The backend the engine serves on (default 'cpu'). */
  backend?: EngineBackend;
}

export interface Calibration {
  costModel: CostModel;
  /** The timings the constants were fitted from, seconds. */
  samples: {
    prefill: { newTokens: number; cachedTokens: number; seconds: number }[];
    decode: { sequences: number; context: number; seconds: number }[];
    copy: { blocks: number; seconds: number }[];
  };
}

const DECODE_SEQUENCES = 8;

/** Tokens per second standing for "too fast to measure" (a finite number, so JSON keeps it). */
export const UNMEASURABLY_FAST = 1e15;

async function timed(f: () => unknown): Promise<number> {
  const start = performance.now();
  await f();
  return (performance.now() - start) / 1000;
}

async function median(runs: number, f: () => unknown): Promise<number> {
  await f();
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await timed(f));
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

/**
 * Least squares y ~ sum_j c_j x_j in relative error (each row scaled by
 * 1 / y), every coefficient kept >= 0: a term that comes out negative (the
 * data cannot tell it from the others) is dropped and the rest refitted.
 */
export function fitNonNegative(rows: readonly (readonly number[])[], y: readonly number[]): number[] {
  const terms = rows[0]?.length ?? 0;
  const active = Array.from({ length: terms }, (_, j) => j);
  for (;;) {
    const m = active.length;
    const a = Array.from({ length: m }, () => new Array<number>(m + 1).fill(0));
    for (let i = 0; i < y.length; i++) {
      const w = 1 / (y[i]! * y[i]!);
      for (let p = 0; p < m; p++) {
        const xp = rows[i]![active[p]!]!;
        for (let q = 0; q < m; q++) a[p]![q]! += w * xp * rows[i]![active[q]!]!;
        a[p]![m]! += w * xp * y[i]!;
      }
    }
    const solution = solve(a);
    const coefficients = new Array<number>(terms).fill(0);
    let negative = -1;
    for (let p = 0; p < m; p++) {
      const c = solution?.[p] ?? -1;
      if (!(c >= 0) && (negative < 0 || c < (solution?.[negative] ?? 0))) negative = p;
      coefficients[active[p]!] = c;
    }
    if (negative < 0) return coefficients;
    active.splice(negative, 1);
    if (active.length === 0) return new Array<number>(terms).fill(0);
  }
}

/** Gaussian elimination with partial pivoting on an augmented matrix; null when singular. */
function solve(a: number[][]): number[] | null {
  const m = a.length;
  for (let c = 0; c < m; c++) {
    let pivot = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[pivot]![c]!)) pivot = r;
    if (!(Math.abs(a[pivot]![c]!) > 0)) return null;
    [a[c], a[pivot]] = [a[pivot]!, a[c]!];
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k <= m; k++) a[r]![k]! -= f * a[c]![k]!;
    }
  }
  return a.map((row, i) => row[m]! / row[i]!);
}

export async function calibrate(options: CalibrationOptions): Promise<Calibration> {
  const { model, blockSize } = options;
  const maxContext = options.maxContext ?? 2048;
  const bytesPerBlock = kvBytesPerBlock(model, blockSize);
  const blocksPerSequence = Math.ceil((maxContext + 1) / blockSize);
  const many = 64;
  const deviceBlocks = Math.max(many, DECODE_SEQUENCES * blocksPerSequence);
  const plane = await createEnginePlane(options.backend ?? 'cpu', { bytesPerBlock, deviceBlocks, hostBlocks: many });
  let engine: Engine | undefined;
  try {
    engine = await Engine.create({ model, blockSize, pool: plane.pool, threads: options.threads, seed: options.seed, weights: options.weights });
    return await measure(options, engine, (plan) => plane.run(plan), { bytesPerBlock, blocksPerSequence, many });
  } finally {
    engine?.destroy();
    plane.destroy();
  }
}

async function measure(
  options: CalibrationOptions,
  engine: Engine,
  run: (plan: CopyPlan) => unknown,
  sizes: { bytesPerBlock: number; blocksPerSequence: number; many: number },
): Promise<Calibration> {
  const { model, blockSize } = options;
  const maxContext = options.maxContext ?? 2048;
  const { bytesPerBlock, blocksPerSequence, many } = sizes;
  const tables = Array.from({ length: DECODE_SEQUENCES }, (_, s) =>
    Int32Array.from({ length: blocksPerSequence }, (_, i) => s * blocksPerSequence + i));
  const prompts = tables.map((_, s) => Int32Array.from({ length: maxContext + 1 }, (_, i) => (s * 7919 + i * 104729) % model.vocab));
  const forward = (chunks: EngineChunk[]) => engine.forwardAsync(chunks);
  const prefill = (s: number, from: number, to: number) => forward([{ tokens: prompts[s]!.subarray(from, to), start: from, blockTable: tables[s]! }]);

  // Prefill from nothing at three lengths, and short and long chunks after
  // cached prefixes of half and nearly all the context.
  const half = Math.floor(maxContext / 2);
  const quarter = Math.floor(maxContext / 4);
  const after = (n: number, cached: number): [number, number] => [Math.min(n, maxContext - cached), cached];
  const long = maxContext - Math.min(128, maxContext - half);
  const points: [number, number][] = [
    [Math.min(128, maxContext), 0], [half, 0], [maxContext, 0],
    after(16, half), after(128, half), after(16, long), after(128, long),
  ];
  await prefill(0, 0, maxContext);
  const prefillSamples = [];
  for (const [n, cached] of points) prefillSamples.push({ newTokens: n, cachedTokens: cached, seconds: await median(3, () => prefill(0, cached, cached + n)) });
  const [prefillFixed, perToken, perPair] = fitNonNegative(
    prefillSamples.map((p) => [1, p.newTokens, p.newTokens * (p.cachedTokens + p.newTokens / 2)]),
    prefillSamples.map((p) => p.seconds),
  ) as [number, number, number];

  // Decode steps of one and of eight sequences at a quarter, half and all
  // of the context: every sequence's prompt must be in place first.
  for (let s = 1; s < DECODE_SEQUENCES; s++) await prefill(s, 0, maxContext);
  const step = (count: number, at: number) => forward(Array.from({ length: count }, (_, s): EngineChunk => ({ tokens: prompts[s]!.subarray(at, at + 1), start: at, blockTable: tables[s]! })));
  const decodeSamples = [];
  for (const context of [quarter, half, maxContext]) {
    for (const sequences of [1, DECODE_SEQUENCES]) decodeSamples.push({ sequences, context, seconds: await median(5, () => step(sequences, context)) });
  }
  const [iteration, perSequence, perContextToken] = fitNonNegative(
    decodeSamples.map((d) => [1, d.sequences, d.sequences * (d.context + 1)]),
    decodeSamples.map((d) => d.seconds),
  ) as [number, number, number];

  // Host -> device copies on the data plane the engine serves from.
  const plan = (blocks: number): CopyPlan => ({
    srcTier: new Uint8Array(blocks).fill(Tier.Host),
    srcSlot: Int32Array.from({ length: blocks }, (_, i) => i),
    dstTier: new Uint8Array(blocks).fill(Tier.Device),
    dstSlot: Int32Array.from({ length: blocks }, (_, i) => i),
    stageStarts: Int32Array.of(0),
  });
  const one = plan(1);
  const batch = plan(many);
  const copySamples = [
    { blocks: 1, seconds: await median(9, () => run(one)) },
    { blocks: many, seconds: await median(5, () => run(batch)) },
  ];
  const perBlock = Math.max(1e-12, (copySamples[1]!.seconds - copySamples[0]!.seconds) / (many - 1));

  const costModel: CostModel = {
    name: 'calibrated',
    kvBytesPerToken: bytesPerBlock / blockSize,
    // No per-token term measurable (attention dominates on tiny models): a rate that prices it at nothing.
    prefillTokensPerSecond: perToken > 0 ? 1 / perToken : UNMEASURABLY_FAST,
    attentionSecondsPerTokenPair: perPair,
    decodeIterationSeconds: iteration,
    decodeSecondsPerSequence: perSequence,
    decodeSecondsPerContextToken: perContextToken,
    prefillIterationSeconds: prefillFixed,
    hostToDeviceBytesPerSecond: bytesPerBlock / perBlock,
    transferLatencySeconds: Math.max(0, copySamples[0]!.seconds - perBlock),
    iterationTokenBudget: options.tokenBudget,
  };
  return { costModel, samples: { prefill: prefillSamples, decode: decodeSamples, copy: copySamples } };
}
