/**
 * The simulator's cost model, calibrated from this engine's own measured
 * speeds, so `cachesage engine` can print beside each measured TTFT what
 * the simulator predicts for the same run.
 *
 * The cost model (sim/cost_model.ts) prices prefill as n / P + A * n *
 * (cached + n / 2) for n new tokens after `cached`, a decode iteration as
 * D0 + D1 * sequences, and a host -> device batch as L + bytes / B. Each
 * constant is fitted here from timed forward passes and copies on the
 * engine's backend (the CPU, a CUDA device or a WebGPU device):
 * - P and A: least squares through the origin over prefills of several
 *   lengths, from nothing and after a long cached prefix;
 * - D0 and D1: decode steps of one and of eight sequences at the same
 *   context length;
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

/** Least squares y = a x1 + b x2 through the origin, both coefficients kept >= 0. */
function fitTwo(x1: number[], x2: number[], y: number[]): [number, number] {
  let s11 = 0, s12 = 0, s22 = 0, s1y = 0, s2y = 0;
  for (let i = 0; i < y.length; i++) {
    s11 += x1[i]! * x1[i]!;
    s12 += x1[i]! * x2[i]!;
    s22 += x2[i]! * x2[i]!;
    s1y += x1[i]! * y[i]!;
    s2y += x2[i]! * y[i]!;
  }
  const det = s11 * s22 - s12 * s12;
  let a = det > 0 ? (s1y * s22 - s2y * s12) / det : 0;
  let b = det > 0 ? (s2y * s11 - s1y * s12) / det : 0;
  // A negative term means the data cannot tell the two apart: fit the other alone.
  if (a <= 0) [a, b] = [0, s2y / s22];
  else if (b < 0) [a, b] = [s1y / s11, 0];
  return [a, b];
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

  // Prefill from nothing at three lengths, and a short suffix after a long cached prefix.
  const half = Math.floor(maxContext / 2);
  const points: [number, number][] = [[Math.min(128, maxContext), 0], [half, 0], [maxContext, 0], [Math.min(128, maxContext - half), half], [Math.min(128, maxContext - half), maxContext - Math.min(128, maxContext - half)]];
  await prefill(0, 0, maxContext);
  const prefillSamples = [];
  for (const [n, cached] of points) prefillSamples.push({ newTokens: n, cachedTokens: cached, seconds: await median(3, () => prefill(0, cached, cached + n)) });
  const [perToken, perPair] = fitTwo(
    prefillSamples.map((p) => p.newTokens),
    prefillSamples.map((p) => p.newTokens * (p.cachedTokens + p.newTokens / 2)),
    prefillSamples.map((p) => p.seconds),
  );

  // Decode at half the context: every sequence's prompt must be in place first.
  for (let s = 1; s < DECODE_SEQUENCES; s++) await prefill(s, 0, half);
  const step = (count: number) => forward(Array.from({ length: count }, (_, s): EngineChunk => ({ tokens: prompts[s]!.subarray(half, half + 1), start: half, blockTable: tables[s]! })));
  const decodeSamples = [];
  for (const sequences of [1, DECODE_SEQUENCES]) decodeSamples.push({ sequences, context: half, seconds: await median(5, () => step(sequences)) });
  const perSequence = Math.max(0, (decodeSamples[1]!.seconds - decodeSamples[0]!.seconds) / (DECODE_SEQUENCES - 1));
  const iteration = Math.max(0, decodeSamples[0]!.seconds - perSequence);

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
    hostToDeviceBytesPerSecond: bytesPerBlock / perBlock,
    transferLatencySeconds: Math.max(0, copySamples[0]!.seconds - perBlock),
    iterationTokenBudget: options.tokenBudget,
  };
  return { costModel, samples: { prefill: prefillSamples, decode: decodeSamples, copy: copySamples } };
}
