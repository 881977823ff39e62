/**
 * The "Policy layer" part of `cachesage bench`: the policies a default
 * replay leaves out, measured on the bundled workloads at their `--quick`
 * size (policy_layer.ts), and their tables as plain text.
 */
import { measurePolicyLayer, type PolicyLayerResults } from '../sim/policy_layer.js';
import type { ReplayOptions } from '../sim/replay.js';
import { policyLayerTables } from '../report/policy_layer.js';
import { WORKLOAD_NAMES } from '../workloads/index.js';
import { loadBundled } from './bench_sources.js';
import { formatTable } from './table.js';

/** Sessions per bundled workload in the policy layer: the `--quick` size, whatever the sweep's. */
export const LAYER_SESSIONS = 24;
/** Most calls per bundled workload in the policy layer (fewer when `--max-calls` is lower). */
export const LAYER_MAX_CALLS = 1_000;

/**
 * Measures the policy layer on every bundled workload, generated with
 * `seed` at the `--quick` size and cut to `maxCalls` when that is lower;
 * `onStep` as each policy's measurement starts.
 */
export function runPolicyLayer(options: {
  seed: number;
  blockSize: number;
  model: ReplayOptions['model'];
  maxCalls: number;
  onStep?: (step: string) => void;
}): PolicyLayerResults {
  const maxCalls = Math.min(options.maxCalls, LAYER_MAX_CALLS);
  const workloads = WORKLOAD_NAMES.map((name) => {
    const { calls, tools } = loadBundled(name, options.seed, LAYER_SESSIONS, maxCalls);
    return tools === undefined ? { name, calls } : { name, calls, tools };
  });
  return measurePolicyLayer(workloads, {
    seed: options.seed,
    blockSize: options.blockSize,
    ...(options.model === undefined ? {} : { model: options.model }),
    ...(options.onStep ? { onStep: options.onStep } : {}),
  });
}

/** The policy layer as text: per policy, its title, what it measures, and its table. */
export function policyLayerText(layer: PolicyLayerResults): string {
  return policyLayerTables(layer)
    .map((t) => `policy layer: ${t.title.toLowerCase()}\n${t.definition}\n${formatTable(t.columns, t.rows)}`)
    .join('\n');
}
