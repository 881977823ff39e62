/**
 * `cachesage replay`: one trace, the chosen policies, one capacity; a table
 * or, with `--json`, the one JSON object of replay.md's CLI contract.
 */
import { TraceError } from '../trace/format.js';
import { formatCount, MAX_NAME_LENGTH } from '../trace/limits.js';
import { readTraceFile } from '../trace/reader.js';
import { MAX_REPLAY_BLOCKS, replayBlocks } from '../sim/workload.js';
import { BACKEND_CHOICES, selectBackend, type BackendChoice } from '../compute/backend.js';
import { REPLAY_POLICIES, replay, replayAsync, type Capacity, type PolicyResult, type ReplayOptions, type ReplayReport } from '../sim/replay.js';
import {
  capacityFlag,
  flagValue,
  integerFlag,
  modelFlag,
  parseFlags,
  policiesFlag,
  positiveFlag,
  UsageError,
  type FlagSpec,
  type ParsedFlags,
} from './args.js';
import { PHASES } from '../runtime/profile.js';
import { ROUTER_KINDS, type RouterKind } from '../policies/routing.js';
import { Progress } from './progress.js';
import { bytes, change, fixed, formatTable, percent } from './table.js';
import { allResults, compareReport, deviceOnlyRuns, targetMarks, TARGETS_LEGEND } from '../report/baselines.js';
import { jsonReport } from '../report/results.js';

/** Defaults of the replay flags, shared with `bench` and the help text. */
export const REPLAY_DEFAULTS = {
  capacity: { fraction: 0.5 } as Capacity,
  /**
   * A host tier as large as the peak live footprint, as the contract's
   * synopsis shows (`--host-capacity 1.0`): device evictions demote there,
   * and prefetch can bring blocks back. 0 compares the device tier alone.
   */
  hostCapacity: { fraction: 1 } as Capacity,
  blockSize: 16,
  concurrency: 32,
  model: '8b',
  seed: 1,
} as const;

/** Flags that shape a simulation, common to `replay` and `bench`. */
export const SIMULATION_FLAGS: Readonly<Record<string, FlagSpec>> = {
  policies: { kind: 'value' },
  'host-capacity': { kind: 'value' },
  'block-size': { kind: 'value' },
  concurrency: { kind: 'value' },
  'arrival-rate': { kind: 'value' },
  model: { kind: 'value' },
  seed: { kind: 'value' },
  json: { kind: 'switch' },
};

const REPLAY_FLAGS: Readonly<Record<string, FlagSpec>> = {
  ...SIMULATION_FLAGS,
  trace: { kind: 'value' },
  capacity: { kind: 'value' },
  backend: { kind: 'value' },
  profile: { kind: 'switch' },
  strict: { kind: 'switch' },
  replicas: { kind: 'value' },
  router: { kind: 'value' },
};

/** Help text of `cachesage replay`. */
export const REPLAY_HELP = `Usage: cachesage replay --trace FILE.jsonl [options]

Replays one trace under each policy and reports hit rates, TTFT and
throughput. Every policy sees the same arrivals. The trace format, its
rules and its limits: docs/trace-format.md.

The baselines run too: vanilla (lru with no host tier) always; with a host
tier, cachesage once more without it (cachesage-nohost) when it is
replayed, and belady too (belady-nohost) when both are: a run without a
host tier has its gap closed measured between vanilla and belady-nohost.

Options:
  --trace FILE         trace to replay (JSON lines, one LLM call a line)
  --strict             refuse any id seen with two token counts, as a segment
                       or an output, naming both lines (by default only two
                       counts for one segment id within one session are
                       refused; the others are counted in the report)
  --policies LIST      comma-separated, in report order
                       (default ${REPLAY_POLICIES.join(',')});
                       "+" composes policies into one run, reported under
                       the joined name: lru,cachesage,cachesage+ttl
  --capacity C         device capacity: a fraction of the trace's peak live
                       footprint (below 1, or with a decimal point: 1.0 is the
                       whole footprint), or a whole number of blocks (default 0.5);
                       raised to the largest call when smaller, with a line
                       on stderr
  --host-capacity H    host tier, same unit; 0 = no host tier (default 1.0)
  --block-size N       tokens per KV block, 1..1024 (default ${REPLAY_DEFAULTS.blockSize})
  --concurrency N      closed loop: N sessions in flight (default ${REPLAY_DEFAULTS.concurrency})
  --arrival-rate R     open loop: R new sessions per second (instead of --concurrency)
  --model 8b|70b       cost model profile (default ${REPLAY_DEFAULTS.model})
  --seed N             seed for tool gaps and open-loop arrivals (default ${REPLAY_DEFAULTS.seed})
  --backend B          compute backend of the runtime: cpu (default), auto,
                       webgpu, cuda or tfjs; decisions are the same on every
                       one, only where the work runs changes
  --profile            also report where the runtime's time goes, in µs per LLM
                       call by phase (observe, admit, prefill, release, events,
                       rescoring, refresh, act), the total, and the total over
                       the second half of the calls (steady state, once the
                       code is compiled); in --json as profileUsPerCall (the
                       steady figure is always in --json: steadyOverheadUsPerCall)
  --replicas N         serving replicas, 1..1024, each with the capacities above,
                       behind one router (default 1)
  --router R           how the router picks a replica: cache (longest cached
                       prefix less a load penalty, the default), round-robin
                       or sticky (a session stays on one replica)
  --json               print one JSON object on stdout instead of the table
  -h, --help           show this help

Exit status: 0 on success, 2 on bad flags or an unreadable or malformed trace.
`;

/** Simulation settings parsed from flags, in the shape `replay()` takes. */
export type SimulationSettings = Required<Pick<ReplayOptions, 'hostCapacity' | 'blockSize' | 'model' | 'seed'>> &
  Pick<ReplayOptions, 'concurrency' | 'arrivalRate'> & { policies: string[] };

/**
 * Reads the simulation flags common to `replay` and `bench`.
 *
 * @throws UsageError naming the first bad flag.
 */
export function simulationSettings(command: string, flags: ParsedFlags): SimulationSettings {
  const text = (name: string) => flagValue(flags, name);
  const concurrencyText = text('concurrency');
  const rateText = text('arrival-rate');
  if (concurrencyText !== undefined && rateText !== undefined) {
    throw new UsageError(`${command}: --concurrency and --arrival-rate cannot be used together (closed or open loop: pick one)`);
  }
  const policiesText = text('policies');
  const hostText = text('host-capacity');
  const blockText = text('block-size');
  const modelText = text('model');
  const seedText = text('seed');
  const settings: SimulationSettings = {
    policies: policiesText === undefined ? [...REPLAY_POLICIES] : policiesFlag(command, policiesText),
    hostCapacity: hostText === undefined ? REPLAY_DEFAULTS.hostCapacity : capacityFlag(command, 'host-capacity', hostText, true),
    blockSize: blockText === undefined ? REPLAY_DEFAULTS.blockSize : integerFlag(command, 'block-size', blockText, 1, 1024),
    model: modelText === undefined ? REPLAY_DEFAULTS.model : modelFlag(command, modelText),
    seed: seedText === undefined ? REPLAY_DEFAULTS.seed : integerFlag(command, 'seed', seedText, 0, 2 ** 31 - 1),
  };
  if (rateText !== undefined) settings.arrivalRate = positiveFlag(command, 'arrival-rate', rateText);
  else settings.concurrency = concurrencyText === undefined ? REPLAY_DEFAULTS.concurrency : integerFlag(command, 'concurrency', concurrencyText, 1);
  return settings;
}

/** A policy result as the JSON contract states it: without the per-call TTFT samples. */
export function contractResult(result: PolicyResult): Omit<PolicyResult, 'ttftMs'> {
  const { ttftMs: _samples, ...rest } = result;
  return rest;
}

/** A replay report as the JSON contract states it, with the baselines' runs and the comparison added (report/results.ts). */
export function contractReport(report: ReplayReport): ReturnType<typeof jsonReport> {
  return jsonReport(report);
}

/** The results of one replay as a text table, one row per policy, vanilla and device-only runs included. */
export function replayTable(report: ReplayReport): string {
  const comparison = compareReport(report).rows;
  return formatTable(
    [
      { title: 'policy', align: 'left' },
      { title: 'token hit' },
      { title: 'host hit' },
      { title: 'gap closed' },
      { title: 'mean TTFT ms' },
      { title: 'p50 TTFT ms' },
      { title: 'p99 TTFT ms' },
      { title: 'tok/s' },
      { title: 'prefetch prec' },
      { title: 'moved' },
      { title: 'us/call' },
      { title: 'TTFT vs vanilla' },
      { title: 'tok/s vs vanilla' },
      { title: 'targets', align: 'left' },
    ],
    allResults(report).map((r, i) => [
      r.policy,
      percent(r.tokenHitRate),
      percent(r.hostHitRate),
      fixed(r.gapClosed, 3),
      fixed(r.meanTtftMs, 1),
      fixed(r.p50TtftMs, 1),
      fixed(r.p99TtftMs, 1),
      fixed(r.throughputTokPerS, 0),
      percent(r.prefetchPrecision),
      bytes(r.bytesMoved),
      fixed(r.overheadUsPerCall, 1),
      change(comparison[i]!.meanTtftVsVanilla),
      change(comparison[i]!.throughputVsVanilla),
      targetMarks(comparison[i]!.targets, comparison[i]!.minMisses),
    ]),
  ) + TARGETS_LEGEND + '\n';
}

/** Runs `cachesage replay` with `argv` (the arguments after the command name). */
export async function replayCommand(argv: readonly string[]): Promise<void> {
  const flags = parseFlags('replay', argv, REPLAY_FLAGS);
  if (flags.help) {
    process.stdout.write(REPLAY_HELP);
    return;
  }
  const trace = flagValue(flags, 'trace');
  if (trace === undefined) throw new UsageError('replay: --trace FILE is required');
  if (trace.length > MAX_NAME_LENGTH) {
    throw new UsageError(`replay: --trace names a path of ${trace.length} characters; the replay names its workload after it, which allows ${MAX_NAME_LENGTH}`);
  }
  const capacityText = flagValue(flags, 'capacity');
  const capacity = capacityText === undefined ? REPLAY_DEFAULTS.capacity : capacityFlag('replay', 'capacity', capacityText, false);
  const settings = simulationSettings('replay', flags);
  const json = flags.switches.has('json');
  const profile = flags.switches.has('profile');
  const replicasText = flagValue(flags, 'replicas');
  const routerText = flagValue(flags, 'router');
  if (routerText !== undefined && !(ROUTER_KINDS as readonly string[]).includes(routerText)) {
    throw new UsageError(`replay: --router must be one of ${ROUTER_KINDS.join(', ')}; got ${JSON.stringify(routerText)}`);
  }
  const cluster = {
    ...(replicasText !== undefined ? { replicas: integerFlag('replay', 'replicas', replicasText, 1, 1024) } : {}),
    ...(routerText !== undefined ? { router: routerText as RouterKind } : {}),
  };
  const backendText = flagValue(flags, 'backend') ?? 'cpu';
  if (!(BACKEND_CHOICES as readonly string[]).includes(backendText)) {
    throw new UsageError(`replay: --backend must be one of ${BACKEND_CHOICES.join(', ')}; got ${JSON.stringify(backendText)}`);
  }
  let backend;
  try {
    backend = await selectBackend(backendText as BackendChoice);
  } catch (error) {
    throw new UsageError(`replay: --backend ${backendText}: ${error instanceof Error ? error.message : String(error)}`);
  }

  const { header, calls } = await readTraceFile(trace, { strict: flags.switches.has('strict') });
  if (calls.length === 0) throw new TraceError(trace, null, 'the trace has no calls');
  const blocks = replayBlocks(calls, settings.blockSize);
  if (blocks > MAX_REPLAY_BLOCKS) {
    const least = settings.blockSize * Math.ceil(blocks / MAX_REPLAY_BLOCKS);
    throw new UsageError(
      `replay: --block-size ${settings.blockSize}: the trace makes ${formatCount(blocks)} blocks, more than the ` +
        `${formatCount(MAX_REPLAY_BLOCKS)} a replay holds; use --block-size ${least} or more`,
    );
  }

  // Scripts read stdout; a bar on a terminal's stderr does not disturb them.
  // Vanilla (LRU with no host tier) and the flagship without host tier run beside the policies asked for.
  const deviceOnly = deviceOnlyRuns(settings.policies, settings.hostCapacity);
  const progress = process.stderr.isTTY ? new Progress('replay', settings.policies.length + deviceOnly.length) : undefined;
  const replayOptions = {
    ...settings, ...cluster, capacity, backend, profile, deviceOnly, onProgress: (policy: string) => progress?.tick(policy),
    // The header's tool declarations reach the policies that memoise tool results.
    ...(header?.tools !== undefined ? { tools: header.tools } : {}),
  };
  const synchronous = backend.backend.survivalSync !== null;
  if (!synchronous && (cluster.replicas ?? 1) > 1) {
    throw new UsageError(`replay: --replicas ${cluster.replicas} needs a synchronous backend (cpu, cuda); --backend ${backendText} is not`);
  }
  const report = synchronous ? replay(trace, calls, replayOptions) : await replayAsync(trace, calls, replayOptions);
  progress?.finish();
  backend.backend.destroy();
  if (report.capacityBlocks > report.requestedCapacityBlocks) process.stderr.write(`${raisedLine(report, capacityText)}\n`);

  if (json) {
    process.stdout.write(JSON.stringify(contractReport(report)) + '\n');
    return;
  }
  const share = (blocks: number) => (report.peakLiveBlocks > 0 ? ((blocks / report.peakLiveBlocks) * 100).toFixed(1) : '0');
  const loop = settings.arrivalRate !== undefined ? `open loop, ${settings.arrivalRate} sessions/s` : `closed loop, ${settings.concurrency} sessions in flight`;
  process.stdout.write(
    [
      `trace     ${report.trace}: ${report.calls} calls in ${report.sessions} sessions`,
      `model     ${report.model}, block size ${report.blockSize} tokens, ${loop}, seed ${settings.seed}`,
      `device    ${report.capacityBlocks} blocks (${share(report.capacityBlocks)}% of the peak live footprint of ${report.peakLiveBlocks} blocks)`,
      `host      ${report.hostCapacityBlocks === 0 ? 'none' : `${report.hostCapacityBlocks} blocks (${share(report.hostCapacityBlocks)}%)`}`,
      ...(report.tokenCounts.idsWithSeveralCounts > 0 ? [`ids       ${tokenCountsLine(report)}`] : []),
      `backend   ${backend.backend.name} on ${backend.backend.device} (${backend.reason})`,
      '',
      replayTable(report),
      ...(profile ? ['', 'runtime time per LLM call by phase, µs', profileTable(report)] : []),
    ].join('\n'),
  );
}

/** The one stderr line announcing a device capacity raised to hold the largest call. */
export function raisedLine(report: ReplayReport, capacityText: string | undefined): string {
  const fallback = REPLAY_DEFAULTS.capacity;
  const asked = capacityText !== undefined ? `--capacity ${capacityText}` : `the default --capacity ${'fraction' in fallback ? fallback.fraction : fallback.blocks}`;
  const n = report.requestedCapacityBlocks;
  return (
    `cachesage replay: ${asked} is ${n} device block${n === 1 ? '' : 's'}, fewer than the ${report.largestCallBlocks} ` +
    `the largest call needs; raised to ${report.capacityBlocks} blocks`
  );
}

/** How the trace used ids with several token counts, for the table's header. */
function tokenCountsLine(report: ReplayReport): string {
  const { idsWithSeveralCounts: ids, referencesWithOtherCount: references } = report.tokenCounts;
  return (
    `${formatCount(ids)} id${ids === 1 ? '' : 's'} seen with several token counts, in ` +
    `${formatCount(references)} reference${references === 1 ? '' : 's'} (allowed: docs/trace-format.md, "Segment ids")`
  );
}

/** The runtime's time per LLM call by phase, one row per policy. */
export function profileTable(report: ReplayReport): string {
  return formatTable(
    [{ title: 'policy', align: 'left' }, ...PHASES.map((phase) => ({ title: phase })), { title: 'total' }, { title: 'second half' }],
    report.results.map((r) => {
      const p = r.profileUsPerCall;
      return [r.policy, ...PHASES.map((phase) => fixed(p?.[phase] ?? null, 1)), fixed(r.overheadUsPerCall, 1), fixed(r.steadyOverheadUsPerCall, 1)];
    }),
  );
}
