/**
 * A noisy-neighbour replay: one heavy workload beside several small ones on
 * one engine, every policy on the same arrivals, and per-workload numbers:
 * each workload's token hit rate and TTFT, Jain's fairness index over the
 * hit rates, and the small workloads' p99 TTFT together.
 */
import type { TraceCall } from '../trace/format.js';
import { COST_MODELS } from './cost_model.js';
import { mixWorkloads } from './mix.js';
import { simulate } from './simulator.js';
import type { PolicySpec } from '../runtime/runtime.js';
import { largestCallBlocks, prepareWorkload } from './workload.js';
import { checkInt } from '../util/check.js';

export interface NoisyNeighbourOptions {
  /** The heavy workload first, then the small ones: name and calls. */
  workloads: readonly { name: string; calls: readonly TraceCall[] }[];
  /** Each entry one run: a policy name, or several composed on one runtime. */
  runs: readonly (string | readonly PolicySpec[])[];
  /** Device blocks (the whole engine's). */
  deviceBlocks: number;
  hostBlocks?: number;
  blockSize?: number;
  concurrency?: number;
  model?: '8b' | '70b';
  seed?: number;
}

export interface WorkloadNumbers {
  workload: string;
  calls: number;
  tokenHitRate: number;
  meanTtftMs: number;
  p99TtftMs: number;
}

export interface NoisyNeighbourResult {
  policy: string;
  jainHitRate: number;
  smallP99TtftMs: number;
  tokenHitRate: number;
  perWorkload: WorkloadNumbers[];
}

/** Jain's fairness index: (sum x)^2 / (n sum x^2); 1 when all are equal. */
export function jainIndex(values: readonly number[]): number {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares);
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor(0.99 * values.length))]!;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Replays the mix under each run; closed loop over the interleaved sessions. */
export function noisyNeighbour(options: NoisyNeighbourOptions): NoisyNeighbourResult[] {
  const blockSize = options.blockSize ?? 16;
  const model = COST_MODELS[options.model ?? '8b']!;
  const seed = options.seed ?? 1;
  const parts = options.workloads.map(({ name, calls }) => prepareWorkload(name, calls, blockSize, model, seed));
  const workload = mixWorkloads('mix', parts);
  const deviceBlocks = Math.max(checkInt(options.deviceBlocks, 'noisyNeighbour: deviceBlocks', 1, 2 ** 28), largestCallBlocks(workload));
  const concurrency = options.concurrency ?? 32;
  return options.runs.map((run) => {
    const policy = typeof run === 'string' ? run : run.length === 1 ? run[0]! : run;
    const result = simulate({ workload, policy, deviceBlocks, hostBlocks: options.hostBlocks ?? 0, model, arrivals: { concurrency } });
    const byWorkload = parts.map(() => ({ prompt: 0, hit: 0, ttft: [] as number[] }));
    const index = new Map(parts.map((p, i) => [p.name, i]));
    for (const served of result.served) {
      const into = byWorkload[index.get(workload.sessions[served.session]!.workload!)!]!;
      into.prompt += served.promptTokens;
      into.hit += served.deviceHitTokens;
      into.ttft.push(served.ttftSeconds * 1000);
    }
    const perWorkload = byWorkload.map((w, i) => ({
      workload: parts[i]!.name,
      calls: w.ttft.length,
      tokenHitRate: round(w.hit / Math.max(1, w.prompt), 4),
      meanTtftMs: round(w.ttft.reduce((a, b) => a + b, 0) / Math.max(1, w.ttft.length), 2),
      p99TtftMs: round(p99([...w.ttft]), 2),
    }));
    const name = typeof run === 'string' ? run : run.map((p) => (typeof p === 'string' ? p : p.name)).join('+');
    return {
      policy: name,
      jainHitRate: round(jainIndex(perWorkload.map((w) => w.tokenHitRate)), 4),
      smallP99TtftMs: round(p99(byWorkload.slice(1).flatMap((w) => w.ttft)), 2),
      tokenHitRate: round(result.deviceHitTokens / Math.max(1, result.promptTokens), 4),
      perWorkload,
    };
  });
}
