/**
 * The data of one `cachesage bench` run: what was swept, over which
 * workloads, and every replay report. The HTML page and `results.json` are
 * both written from it.
 */
import type { PolicyLayerResults } from '../sim/policy_layer.js';
import type { Capacity, PolicyResult, ReplayReport } from '../sim/replay.js';
import { withComparison, type ComparedReport } from './baselines.js';

/** Where a benchmarked workload came from and how much of it was replayed. */
export interface BenchWorkload {
  /** Name in tables and charts (unique within the run). */
  name: string;
  /** `bundled`: the seeded generator; `trace`: a JSONL file. */
  source: 'bundled' | 'trace';
  /** The trace file, for `trace` workloads. */
  path?: string;
  /** Calls and sessions replayed. */
  calls: number;
  sessions: number;
  /** Calls and sessions the workload has in all (more than replayed when truncated). */
  totalCalls: number;
  totalSessions: number;
  /** Whether only the first whole sessions were replayed, to stay within the call limit. */
  truncated: boolean;
}

/** The settings a bench run was made with. */
export interface BenchParameters {
  quick: boolean;
  /** Device capacities swept, as fractions of each workload's peak live footprint. */
  capacities: number[];
  policies: string[];
  model: string;
  blockSize: number;
  /** Closed loop sessions in flight, or null for an open loop. */
  concurrency: number | null;
  /** Open loop sessions per second, or null for a closed loop. */
  arrivalRate: number | null;
  /** Host tier: a fraction of the peak live footprint or blocks (`{ blocks: 0 }`: none). */
  hostCapacity: Capacity;
  seed: number;
  /** Most calls replayed per workload (whole sessions, in order). */
  maxCalls: number;
  /** Sessions generated per bundled workload, or null for the generator's default. */
  bundledSessions: number | null;
  /** The capacity whose per-call TTFT samples the distribution charts show. */
  ttftCapacity: number;
  /** Replays run in parallel (they share the CPU, so overhead timings are noisier above 1). */
  jobs: number;
}

/** One replay of the sweep: a workload at one capacity, every policy. */
export interface BenchRunEntry {
  workload: string;
  /** Fraction of the peak live footprint asked for (the report states the blocks). */
  capacity: number;
  report: ReplayReport;
}

/** Everything one bench run produced. */
export interface BenchRun {
  /** ISO time the run started. */
  startedAt: string;
  /** Wall seconds the sweep took. */
  seconds: number;
  /** The cachesage version that produced it. */
  version: string;
  parameters: BenchParameters;
  workloads: BenchWorkload[];
  runs: BenchRunEntry[];
  /** The policy layer measured on small fixed configurations (policy_layer.ts); null when skipped. */
  policyLayer?: PolicyLayerResults | null;
}

/**
 * The run as written to `results.json`: each report gains its comparison
 * with the baselines (`comparison`, baselines.ts); per-call TTFT samples are
 * dropped (they would dominate the file; the summary statistics stay).
 */
export function benchResultsJson(run: BenchRun): unknown {
  return {
    ...run,
    runs: run.runs.map((entry) => ({ ...entry, report: jsonReport(entry.report) })),
  };
}

/** One report as `--json` and results.json print it: with its comparison, without samples. */
export function jsonReport(report: ReplayReport): Omit<ComparedReport, 'results' | 'deviceOnlyResults'> & {
  results: Omit<PolicyResult, 'ttftMs'>[];
  deviceOnlyResults?: Omit<PolicyResult, 'ttftMs'>[];
} {
  const { deviceOnlyResults, ...rest } = withComparison(report);
  return {
    ...rest,
    results: report.results.map(withoutSamples),
    ...(deviceOnlyResults ? { deviceOnlyResults: deviceOnlyResults.map(withoutSamples) } : {}),
  };
}

function withoutSamples(result: PolicyResult): Omit<PolicyResult, 'ttftMs'> {
  const { ttftMs: _samples, ...rest } = result;
  return rest;
}
