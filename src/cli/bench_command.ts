/**
 * `cachesage bench`: every workload x every policy x several capacities,
 * a progress bar on stderr, a table on stdout, and a report directory with
 * `index.html` and `results.json`.
 *
 * The sweep is organised by workload, then capacity: one `replay()` per
 * (workload, capacity) runs every policy on the same arrivals, so the
 * policies of one row group are compared pair by pair.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { packageRoot } from '../blocks/addon.js';
import { chartsUnavailable } from '../report/charts.js';
import { renderReportHtml } from '../report/html.js';
import { benchResultsJson, type BenchRun, type BenchRunEntry } from '../report/results.js';
import {
  allResults,
  basePolicy,
  compareReport,
  FLAGSHIP_POLICY,
  NO_HOST_SUFFIX,
  TARGET_KEYS,
  TARGETS,
  TARGETS_LEGEND,
  targetMarks,
  VANILLA,
} from '../report/baselines.js';
import { BASELINE_POLICY, OPTIMUM_POLICY } from '../policies/registry.js';
import { flagValue, integerFlag, parseFlags, UsageError, type FlagSpec } from './args.js';
import { LAYER_MAX_CALLS, LAYER_SESSIONS, policyLayerText, runPolicyLayer } from './bench_policy_layer.js';
import { defaultJobs, runSweep, runsPerTask, type SweepTask } from './bench_pool.js';
import { loadWorkloads, traceFiles } from './bench_sources.js';
import { Progress } from './progress.js';
import { REPLAY_DEFAULTS, SIMULATION_FLAGS, simulationSettings } from './replay_command.js';
import { duration, change, fixed, formatTable, percent } from './table.js';

/** Device capacities of the full sweep, as fractions of the peak live footprint (replay.md). */
export const BENCH_CAPACITIES: readonly number[] = [0.1, 0.25, 0.5, 0.75, 1.0];
/** Capacities of `--quick`. */
export const QUICK_CAPACITIES: readonly number[] = [0.25, 0.5];
/** Default call limit per workload. */
export const BENCH_MAX_CALLS = 10_000;
/** Default call limit per workload with `--quick`. */
export const QUICK_MAX_CALLS = 1_000;
/** Sessions generated per bundled workload with `--quick` (the generator's default otherwise). */
export const QUICK_BUNDLED_SESSIONS = 24;
/** Where the report goes without `--out`. */
export const DEFAULT_REPORT_DIR = 'cachesage-report';

const BENCH_FLAGS: Readonly<Record<string, FlagSpec>> = {
  ...SIMULATION_FLAGS,
  out: { kind: 'value' },
  traces: { kind: 'value', repeatable: true },
  quick: { kind: 'switch' },
  'max-calls': { kind: 'value' },
  jobs: { kind: 'value' },
  'no-policy-layer': { kind: 'switch' },
};

/** Help text of `cachesage bench`. */
export const BENCH_HELP = `Usage: cachesage bench [options]

Replays every bundled workload, and every *.jsonl trace of each --traces DIR
(the format: docs/trace-format.md in the package), under every policy
at device capacities ${BENCH_CAPACITIES.join(', ')} of each workload's peak live
footprint. Every sweep point also replays two baselines on the same
arrivals: lru with the same tiers, and vanilla (lru with no host tier, the
serving stack as shipped), plus cachesage and MIN without their host tier
(cachesage-nohost, belady-nohost: the bound of cachesage-nohost's gap
closed); the table gives TTFT and throughput relative to vanilla
and marks the targets met. Prints a table and writes DIR/index.html and
DIR/results.json (each report with deviceOnlyResults and comparison).

Options:
  --out DIR            report directory (default ${DEFAULT_REPORT_DIR}/)
  --traces DIR         also replay the *.jsonl files in DIR (repeatable)
  --quick              capacities ${QUICK_CAPACITIES.join(', ')} only, ${QUICK_BUNDLED_SESSIONS} sessions per bundled
                       workload, --max-calls ${QUICK_MAX_CALLS} unless given
  --max-calls N        replay each workload's first whole sessions up to N calls
                       (default ${BENCH_MAX_CALLS})
  --jobs N             replays run in parallel on worker threads (default: one per
                       core, at most 4); --jobs 1 for undisturbed overhead timings
  --no-policy-layer    skip the policy layer: batch-shaping, speculative-prefill,
                       fairness, routing and tool-memo, each against lru on the
                       bundled workloads (${LAYER_SESSIONS} sessions, at most ${LAYER_MAX_CALLS} calls) with
                       device capacity 0.25 and no host tier (results.json's
                       policyLayer, a table each, a section each in index.html)
  --policies LIST      comma-separated policies (default: all)
  --host-capacity H    host tier: fraction of the peak live footprint, or blocks;
                       0 = none (default 1.0)
  --block-size N       tokens per KV block, 1..1024 (default ${REPLAY_DEFAULTS.blockSize})
  --concurrency N      closed loop: N sessions in flight (default ${REPLAY_DEFAULTS.concurrency})
  --arrival-rate R     open loop: R new sessions per second
  --model 8b|70b       cost model profile (default ${REPLAY_DEFAULTS.model})
  --seed N             seed of the bundled workloads and the replay (default ${REPLAY_DEFAULTS.seed})
  --json               print results.json's object on stdout instead of the table
  -h, --help           show this help

Exit status: 0 on success, 2 on bad flags or an unreadable or malformed trace.
`;

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The sweep as a text table: one row per workload, capacity and result (vanilla and device-only runs included). */
export function benchTable(run: BenchRun): string {
  const rows: string[][] = [];
  for (const entry of run.runs) {
    const comparison = compareReport(entry.report);
    allResults(entry.report).forEach((r, i) => {
      const c = comparison.rows[i]!;
      rows.push([
        entry.workload,
        String(entry.capacity),
        r.policy,
        percent(r.tokenHitRate),
        percent(r.hostHitRate),
        fixed(c.gapClosedShown, 3),
        fixed(r.meanTtftMs, 1),
        fixed(r.p99TtftMs, 1),
        fixed(r.throughputTokPerS, 0),
        change(c.meanTtftVsVanilla),
        change(c.throughputVsVanilla),
        percent(r.prefetchPrecision),
        targetMarks(c.targets, c.minMisses),
      ]);
    });
  }
  return formatTable(
    [
      { title: 'workload', align: 'left' },
      { title: 'capacity' },
      { title: 'policy', align: 'left' },
      { title: 'token hit' },
      { title: 'host hit' },
      { title: 'gap closed' },
      { title: 'mean TTFT ms' },
      { title: 'p99 TTFT ms' },
      { title: 'tok/s' },
      { title: 'TTFT vs vanilla' },
      { title: 'tok/s vs vanilla' },
      { title: 'prefetch prec' },
      { title: 'targets', align: 'left' },
    ],
    rows,
  );
}

/**
 * What follows the table: what vanilla is, why gap closed is blank, the
 * targets' legend, and how often the flagship (with and without host tier)
 * met each target.
 */
export function benchNotes(run: BenchRun): string {
  const tally = new Map<string, { met: number[]; applicable: number[]; minToo: number[] }>();
  for (const entry of run.runs) {
    for (const row of compareReport(entry.report).rows) {
      if (row.targets === null || basePolicy(row.policy) !== FLAGSHIP_POLICY) continue;
      let t = tally.get(row.policy);
      if (!t) tally.set(row.policy, (t = { met: TARGET_KEYS.map(() => 0), applicable: TARGET_KEYS.map(() => 0), minToo: TARGET_KEYS.map(() => 0) }));
      TARGET_KEYS.forEach((key, k) => {
        const v = row.targets![key];
        if (v !== null) t!.applicable[k]!++;
        if (v === 'pass') t!.met[k]!++;
        if (row.minMisses.includes(key)) t!.minToo[k]!++;
      });
    }
  }
  const lines = [
    `${VANILLA}: ${BASELINE_POLICY} with no host tier (the serving stack as shipped); ${FLAGSHIP_POLICY}${NO_HOST_SUFFIX}: ${FLAGSHIP_POLICY} with no host tier; the relative columns compare with vanilla's.`,
    `gap closed: - where MIN (belady) is under ${TARGETS.gapClosedHeadroom * 100} pp above LRU: too little headroom for the ratio to mean anything; a run without a host tier is measured between vanilla and MIN without a host tier (${OPTIMUM_POLICY}${NO_HOST_SUFFIX}).`,
    TARGETS_LEGEND + '.',
  ];
  const labels = ['gap closed', 'token hit', 'p99 TTFT', 'mean TTFT', 'tok/s'];
  for (const [policy, t] of tally) {
    // A miss MIN shares is counted apart: no eviction order meets that target there.
    lines.push(`${policy} met: ` + labels.map((label, k) => `${label} ${t.met[k]}/${t.applicable[k]}${t.minToo[k]! > 0 ? ` (${t.minToo[k]} missed by MIN too)` : ''}`).join(', '));
  }
  return lines.join('\n') + '\n';
}

/** Runs `cachesage bench` with `argv` (the arguments after the command name). */
export async function benchCommand(argv: readonly string[]): Promise<void> {
  const flags = parseFlags('bench', argv, BENCH_FLAGS);
  if (flags.help) {
    process.stdout.write(BENCH_HELP);
    return;
  }
  const quick = flags.switches.has('quick');
  const settings = simulationSettings('bench', flags);
  const maxCallsText = flagValue(flags, 'max-calls');
  const maxCalls = maxCallsText === undefined ? (quick ? QUICK_MAX_CALLS : BENCH_MAX_CALLS) : integerFlag('bench', 'max-calls', maxCallsText, 1);
  const capacities = [...(quick ? QUICK_CAPACITIES : BENCH_CAPACITIES)];
  const ttftCapacity = capacities.includes(0.5) ? 0.5 : capacities[Math.floor(capacities.length / 2)]!;
  const bundledSessions = quick ? QUICK_BUNDLED_SESSIONS : undefined;
  const jobsText = flagValue(flags, 'jobs');
  const jobs = jobsText === undefined ? undefined : integerFlag('bench', 'jobs', jobsText, 1, 64);
  const out = resolve(flagValue(flags, 'out') ?? DEFAULT_REPORT_DIR);
  const json = flags.switches.has('json');
  const withPolicyLayer = !flags.switches.has('no-policy-layer');

  const files = traceFiles(flags.values.get('traces') ?? []);
  // Fail on an unwritable report directory now, not after the sweep.
  try {
    mkdirSync(out, { recursive: true });
  } catch (error) {
    throw new UsageError(`bench: --out ${out}: cannot create: ${(error as Error).message}`);
  }

  const startedAt = new Date();
  const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
  const workloads = await loadWorkloads({
    seed: settings.seed,
    bundledSessions,
    traceFiles: files,
    maxCalls,
    onLoaded: (w) =>
      log(
        w.truncated
          ? `${w.name}: first ${w.sessions} of ${w.totalSessions} sessions (${w.calls} of ${w.totalCalls} calls, --max-calls ${maxCalls})`
          : `${w.name}: ${w.sessions} sessions, ${w.calls} calls`,
      ),
    onEmpty: (path) => log(`${path}: no calls; left out`),
  });

  // By workload, then capacity: one replay runs every policy on the same arrivals.
  const tasks: SweepTask[] = workloads.flatMap((w) =>
    capacities.map((capacity) => ({ workload: w.info.name, calls: w.calls, capacity, settings, keepSamples: capacity === ttftCapacity, ...(w.tools ? { tools: w.tools } : {}) })),
  );
  const progress = new Progress('bench', tasks.length * runsPerTask(settings));
  const lanes = jobs ?? defaultJobs(tasks.length);
  const reports = await runSweep(tasks, lanes, (task, policy) =>
    progress.tick(`${task.workload} capacity ${task.capacity} ${policy}`),
  );
  progress.finish();
  const runs: BenchRunEntry[] = tasks.map((task, i) => ({ workload: task.workload, capacity: task.capacity, report: reports[i]! }));

  let policyLayer = null;
  if (withPolicyLayer) {
    const layerStart = Date.now();
    policyLayer = runPolicyLayer({
      seed: settings.seed,
      blockSize: settings.blockSize,
      model: settings.model,
      maxCalls,
      onStep: (step) => log(`policy layer: ${step}`),
    });
    log(`policy layer in ${duration((Date.now() - layerStart) / 1000)}`);
  }

  const run: BenchRun = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    version: packageVersion(),
    parameters: {
      quick,
      capacities,
      policies: settings.policies,
      model: typeof settings.model === 'object' ? settings.model.name : settings.model,
      blockSize: settings.blockSize,
      concurrency: settings.concurrency ?? null,
      arrivalRate: settings.arrivalRate ?? null,
      hostCapacity: settings.hostCapacity,
      seed: settings.seed,
      maxCalls,
      bundledSessions: bundledSessions ?? null,
      ttftCapacity,
      jobs: lanes,
    },
    workloads: workloads.map((w) => w.info),
    runs,
    policyLayer,
  };
  const results = benchResultsJson(run);
  writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  writeFileSync(join(out, 'index.html'), await renderReportHtml(run));
  log(`${runs.length} replays in ${duration(run.seconds)}; report in ${join(out, 'index.html')}`);
  const noCharts = await chartsUnavailable();
  if (noCharts !== null) log(`index.html has no charts: ${noCharts}`);

  if (json) {
    process.stdout.write(JSON.stringify(results) + '\n');
    return;
  }
  const truncated = run.workloads.filter((w) => w.truncated);
  const notes = truncated.map((w) => `note: ${w.name} replayed on its first ${w.sessions} of ${w.totalSessions} sessions (${w.calls} of ${w.totalCalls} calls; --max-calls ${maxCalls})\n`);
  const layer = policyLayer ? '\n' + policyLayerText(policyLayer) : '';
  process.stdout.write(benchTable(run) + '\n' + benchNotes(run) + (notes.length > 0 ? '\n' + notes.join('') : '') + layer + `\nreport: ${join(out, 'index.html')}\n`);
}
