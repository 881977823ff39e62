/**
 * One trace, every policy, one run: the numbers of replay.md's contract.
 *
 * A first pass replays the trace with unbounded capacity under the chosen
 * arrivals (closed loop of N sessions, or an open loop at a rate) to fix
 * every session's start time, which all policies then share, and to find
 * the peak live footprint: the most distinct blocks referenced at one moment
 * by the sessions in flight. Capacities below 1 are fractions of it.
 */
import type { FutureUses } from '../policies/belady.js';
import { BASELINE_POLICY, composedEntry, DEFAULT_REPLAY_POLICIES, OPTIMUM_POLICY, POLICY_NAMES, policyEntry } from '../policies/registry.js';
import type { PolicySpec } from '../runtime/runtime.js';
import type { Policy } from '../policies/types.js';
import { PHASES, type Phase } from '../runtime/profile.js';
import type { ToolDeclaration, TraceCall } from '../trace/format.js';
import { COST_MODELS, type CostModel } from './cost_model.js';
import type { BackendSelection } from '../compute/backend.js';
import { simulate, simulateAsync, type SimulationOptions, type SimulationResult } from './simulator.js';
import type { ToolCallTally } from './tool_calls.js';
import { simulateCluster, type ClusterOptions } from './cluster.js';
import type { SpeculativeTally } from './engine_hooks.js';
import { ROUTER_KINDS, type RouterKind } from '../policies/routing.js';
import { checkInt } from '../util/check.js';
import type { TokenCountSummary } from '../trace/rules.js';
import { checkReplayArguments } from './replay_checks.js';
import type { BlockIds } from './block_ids.js';
import { largestCallBlocks, openLoopStarts, prepareWorkload, type SimCall, type SimWorkload } from './workload.js';

const MIN_GAP = 0.005;

/** Sessions in flight in a closed loop when the options name neither concurrency nor an arrival rate. */
const DEFAULT_CONCURRENCY = 32;

/** The first pass runs a policy that never evicts: the registry's capacity bound. */
const UNBOUNDED_POLICY = POLICY_NAMES.find((name) => policyEntry(name).bound === 'capacity')!;

/** The registered policies, in registry order, but those meant to be composed ("lru+safety"): what a replay runs by default. */
export const REPLAY_POLICIES: readonly string[] = DEFAULT_REPLAY_POLICIES;

/**
 * A tier's capacity: a fraction of the peak live footprint, or a block
 * count. (On the command line a value with a decimal point or below 1 is a
 * fraction, so `1.0` is the whole footprint; a whole number is blocks.)
 */
export type Capacity = { fraction: number } | { blocks: number };

export interface ReplayOptions {
  policies?: readonly string[];
  /** Device tier (default: half the peak live footprint). */
  capacity?: Capacity;
  /** Host tier (default: the whole peak live footprint); blocks 0 for none. */
  hostCapacity?: Capacity;
  blockSize?: number;
  concurrency?: number;
  arrivalRate?: number;
  /** A cost model by name, or one given whole (e.g. calibrated from an engine's measured speeds). */
  model?: '8b' | '70b' | CostModel;
  seed?: number;
  /**
   * Whether a session's next call waits out the tool time between its
   * calls (the trace's timestamps, or sampled: the default), or arrives as
   * soon as the previous reply is complete, as the reference engine serves
   * a trace (false).
   */
  toolGaps?: boolean;
  /**
   * Closed loop only: each policy's run keeps its own loop (the next
   * session starts when one of its sessions ends in that run), as a real
   * engine serves, instead of the session start times of the first pass,
   * which every policy shares by default.
   */
  ownArrivals?: boolean;
  /** Called after each policy's run: (policy, index, total). */
  onProgress?: (policy: string, done: number, total: number) => void;
  /**
   * The runtime's compute backend for every policy's run (default: the
   * CPU). Only {@link replayAsync} takes one that computes asynchronously.
   */
  backend?: BackendSelection;
  /** Policies that only observe, run beside each replayed policy (decision recorders). */
  observers?: readonly Policy[];
  /** Report where the runtime's time went, by phase (PolicyResult.profileUsPerCall). */
  profile?: boolean;
  /** Serving replicas, each with the capacities above, behind one router (default 1: the plain engine). */
  replicas?: number;
  /** How the router picks a replica when replicas > 1 (default 'cache'). */
  router?: RouterKind;
  /**
   * Registered policies replayed once more with no host tier, on the same
   * arrivals, reported under `name` in `deviceOnlyResults` (LRU so is the
   * serving stack as shipped, the baseline a host tier is measured against).
   */
  deviceOnly?: readonly DeviceOnlyRun[];
  /** Tool declarations (a trace header's `tools`), told to policies that memoise tool results. */
  tools?: Readonly<Record<string, ToolDeclaration>>;
}

/** A policy replayed again with no host tier, and the name its result goes by. */
export interface DeviceOnlyRun {
  policy: string;
  name: string;
}

/**
 * The device capacity a policy ran with. The device tier always holds the
 * largest call (prompt and reply), so a smaller capacity is raised to it;
 * a capacity bound (`infinite`) runs with room for every block instead.
 */
export interface CapacityUsed {
  /** Device blocks the options asked for, resolved against the peak live footprint. */
  requested: number;
  /** Device blocks the policy ran with. */
  effective: number;
  /** Whether `requested` could not hold the largest call and was raised to it. */
  raisedToFit: boolean;
}

export interface PolicyResult {
  policy: string;
  /** The device capacity this policy ran with. */
  capacity: CapacityUsed;
  tokenHitRate: number;
  hostHitRate: number;
  gapClosed: number | null;
  meanTtftMs: number;
  p50TtftMs: number;
  p99TtftMs: number;
  throughputTokPerS: number;
  prefetchPrecision: number | null;
  bytesMoved: number;
  /** Runtime time per LLM call over the whole replay (admit, prefill done, release, observe, act, refresh), µs. */
  overheadUsPerCall: number;
  /**
   * The same over the second half of the calls (from the arrival of the
   * middle call on): the cost once the runtime's code is compiled and its
   * tables warm, as in a long-running engine. A short replay's mean also
   * carries the JavaScript engine's start-up.
   */
  steadyOverheadUsPerCall: number;
  /** With `profile`: overheadUsPerCall by the runtime's phases (Runtime.phaseSeconds), µs per LLM call. */
  profileUsPerCall?: Record<Phase, number>;
  /** Present when the trace records tool calls: calls, memo answers, stale answers, denials and tool seconds saved. */
  toolCalls?: ToolCallTally;
  /** When a policy prefilled speculatively: tokens computed and loaded ahead, found by a later call, and wasted. */
  speculativePrefill?: SpeculativeTally;
  /** With several replicas: the calls each served. */
  callsPerReplica?: number[];
  /** TTFT samples (ms), for distributions; left out of the CLI's JSON. */
  ttftMs?: number[];
}

export interface ReplayReport {
  trace: string;
  blockSize: number;
  model: string;
  peakLiveBlocks: number;
  /** Device blocks of every policy but a capacity bound: the requested capacity, raised to the largest call when smaller. */
  capacityBlocks: number;
  /** Device blocks the options asked for (before raising). */
  requestedCapacityBlocks: number;
  /** Blocks of the largest call, prompt and reply: the least a device tier may hold. */
  largestCallBlocks: number;
  hostCapacityBlocks: number;
  calls: number;
  sessions: number;
  /** Ids the trace referenced with several token counts, as allowed (docs/trace-format.md). */
  tokenCounts: TokenCountSummary;
  results: PolicyResult[];
  /** With `deviceOnly`: those runs' results, named as asked, in that order. */
  deviceOnlyResults?: PolicyResult[];
  /** With several replicas: how many, and the router in front (capacities are per replica). */
  replicas?: number;
  router?: RouterKind;
}

/** Resolves a capacity against the peak live footprint. */
export function capacityBlocks(capacity: Capacity, peak: number): number {
  return 'fraction' in capacity ? Math.max(1, Math.round(capacity.fraction * peak)) : Math.round(capacity.blocks);
}

/** Replays synchronously: the backend, if given, must compute synchronously (cpu, cuda, tfjs). */
export function replay(name: string, calls: readonly TraceCall[], options: ReplayOptions = {}): ReplayReport {
  const runs = replayRuns(name, calls, options);
  for (let step = runs.next(); ; step = runs.next(step.value.replicas !== undefined ? simulateCluster(step.value as ClusterOptions) : simulate(step.value))) {
    if (step.done) return step.value;
  }
}

/** Replays on any backend (WebGPU included), awaiting its work between engine iterations. */
export async function replayAsync(name: string, calls: readonly TraceCall[], options: ReplayOptions = {}): Promise<ReplayReport> {
  if (options.replicas !== undefined && options.replicas > 1) throw new RangeError('replayAsync: options.replicas > 1 runs on a synchronous backend only: use replay()');
  const runs = replayRuns(name, calls, options);
  for (let step = runs.next(); ; step = runs.next(await simulateAsync(step.value))) {
    if (step.done) return step.value;
  }
}

/** The replay, handing each policy's simulation to the driver and taking back its result. */
function* replayRuns(
  name: string,
  calls: readonly TraceCall[],
  options: ReplayOptions,
): Generator<SimulationOptions & Partial<Pick<ClusterOptions, 'replicas' | 'router'>>, ReplayReport, SimulationResult> {
  checkReplayArguments(name, calls, options);
  const cluster = clusterOf(options);
  const blockSize = options.blockSize ?? 16;
  const model: CostModel = typeof options.model === 'object' ? options.model : COST_MODELS[options.model ?? '8b']!;
  const seed = options.seed ?? 1;
  const policies = options.policies ?? REPLAY_POLICIES;
  const workload = prepareWorkload(name, calls, blockSize, model, seed, options.toolGaps ?? true);
  // Spread into Math.max, a million calls' sizes would overflow the stack.
  const maxRequestBlocks = largestCallBlocks(workload);
  const first = firstPass(workload, model, options, maxRequestBlocks);
  // The device tier must hold the largest single call, whatever the fraction.
  const requested = capacityBlocks(options.capacity ?? { fraction: 0.5 }, first.peakLiveBlocks);
  const device = Math.max(maxRequestBlocks, requested);
  const host = capacityBlocks(options.hostCapacity ?? { fraction: 1 }, first.peakLiveBlocks);

  const runs = [
    ...policies.map((policy) => ({ policy, name: policy, hostBlocks: host })),
    ...(options.deviceOnly ?? []).map(({ policy, name }) => ({ policy, name, hostBlocks: 0 })),
  ];
  const results: PolicyResult[] = [];
  for (const [i, { policy, name: resultName, hostBlocks }] of runs.entries()) {
    // "cachesage+ttl" is one run of both policies on one runtime, reported under the joined name.
    const entry = composedEntry(policy);
    const specs: PolicySpec[] = entry.specs({ calls, workload: name, future: first.future, ...(options.tools ? { tools: options.tools } : {}) });
    const unbounded = entry.bound === 'capacity';
    const deviceBlocks = unbounded ? workload.blockIds.size + maxRequestBlocks : device;
    const run: SimulationResult = yield {
      workload,
      policy: specs.length === 1 ? specs[0]! : specs,
      deviceBlocks,
      hostBlocks: unbounded ? 0 : hostBlocks,
      model,
      arrivals: options.ownArrivals && options.arrivalRate === undefined ? { concurrency: options.concurrency ?? DEFAULT_CONCURRENCY } : { sessionStarts: first.sessionStarts },
      ...(entry.bound === 'future' ? { onCall: (call: SimCall) => first.future.moveTo(call) } : {}),
      ...(options.backend ? { backend: options.backend } : {}),
      ...(options.observers ? { observers: options.observers } : {}),
      ...(options.profile ? { profile: true } : {}),
      ...cluster,
    };
    const capacity: CapacityUsed = { requested, effective: deviceBlocks, raisedToFit: !unbounded && device > requested };
    results.push(summarize(resultName, capacity, run, workload));
    options.onProgress?.(resultName, i + 1, runs.length);
  }
  const deviceOnlyResults = results.splice(policies.length);
  const lru = results.find((r) => r.policy === BASELINE_POLICY);
  const min = results.find((r) => r.policy === OPTIMUM_POLICY);
  // A device-only run is measured between the device-only LRU and MIN when
  // the replay ran them (with a host tier, MIN also demotes and loads back);
  // without a host tier the main runs are device-only already.
  const deviceOnlyOf = (policy: string) => {
    const i = (options.deviceOnly ?? []).findIndex((run) => run.policy === policy);
    return i < 0 ? undefined : deviceOnlyResults[i];
  };
  const lruAlone = host > 0 ? deviceOnlyOf(BASELINE_POLICY) : lru;
  const minAlone = host > 0 ? deviceOnlyOf(OPTIMUM_POLICY) : min;
  // Below half a point of headroom between LRU and MIN the ratio measures
  // noise, not the policy: it is reported as null then.
  const gapClosed = (r: PolicyResult, low: PolicyResult | undefined, high: PolicyResult | undefined) =>
    low && high && high.tokenHitRate - low.tokenHitRate >= MIN_GAP
      ? round((r.tokenHitRate - low.tokenHitRate) / (high.tokenHitRate - low.tokenHitRate), 4)
      : null;
  for (const r of results) r.gapClosed = gapClosed(r, lru, min);
  for (const r of deviceOnlyResults) r.gapClosed = gapClosed(r, lruAlone, minAlone);
  return {
    trace: name,
    blockSize,
    model: model.name,
    peakLiveBlocks: first.peakLiveBlocks,
    capacityBlocks: device,
    requestedCapacityBlocks: requested,
    largestCallBlocks: maxRequestBlocks,
    hostCapacityBlocks: host,
    calls: workload.calls,
    sessions: workload.sessions.length,
    tokenCounts: workload.tokenCounts,
    results,
    ...(options.deviceOnly ? { deviceOnlyResults } : {}),
    ...cluster,
  };
}

/** The replicas and router of a replay with several replicas; empty for the plain engine. */
function clusterOf(options: ReplayOptions): { replicas: number; router: RouterKind } | Record<string, never> {
  const replicas = checkInt(options.replicas ?? 1, 'replay: options.replicas', 1, 1024);
  const router = options.router ?? 'cache';
  if (!(ROUTER_KINDS as readonly string[]).includes(router)) {
    throw new RangeError(`replay: options.router must be one of ${ROUTER_KINDS.join(', ')}, got ${JSON.stringify(router)}`);
  }
  return replicas > 1 ? { replicas, router } : {};
}

interface FirstPass {
  sessionStarts: number[];
  peakLiveBlocks: number;
  future: CallOrderFuture;
}

function firstPass(workload: SimWorkload, model: CostModel, options: ReplayOptions, maxRequest: number): FirstPass {
  let arrivals: { sessionStarts: number[] } | { concurrency: number };
  if (options.arrivalRate !== undefined) {
    arrivals = { sessionStarts: openLoopStarts(workload.sessions.length, options.arrivalRate, options.seed ?? 1) };
  } else {
    arrivals = { concurrency: options.concurrency ?? DEFAULT_CONCURRENCY };
  }
  // Nothing is evicted in the first pass: every policy's arrivals come from unbounded capacity.
  const run = simulate({ workload, policy: UNBOUNDED_POLICY, deviceBlocks: workload.blockIds.size + maxRequest, hostBlocks: 0, model, arrivals });
  const sessionStarts = run.sessionSpans.map(([start]) => (Number.isFinite(start) ? start : 0));
  return { sessionStarts, peakLiveBlocks: peakLive(workload, run.sessionSpans), future: new CallOrderFuture(run, workload.blockIds) };
}

/** The most distinct blocks referenced at once by sessions in flight. */
function peakLive(workload: SimWorkload, spans: [number, number][]): number {
  const edges: [number, number, number][] = [];
  spans.forEach(([start, end], s) => {
    edges.push([start, 1, s]);
    edges.push([end, -1, s]);
  });
  // Ends before starts at the same instant: a session that finishes as another begins does not overlap it.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  // Sessions in flight that reference each block id.
  const refs = new Int32Array(workload.blockIds.size);
  let live = 0;
  let peak = 0;
  for (const [, delta, s] of edges) {
    for (const id of workload.sessions[s]!.blocks.ids) {
      const n = refs[id]! + delta;
      if (delta > 0 && n === 1) live++;
      if (delta < 0 && n === 0) live--;
      refs[id] = n;
    }
    peak = Math.max(peak, live);
  }
  return peak;
}

/**
 * The future by call order: each call's position in the first pass's
 * arrival order, and for each block hash the positions of the calls whose
 * prompts use it. Belady asks for the next use after the call being served
 * (the simulator moves the cursor), which stays right even where a policy's
 * timing drifts from the first pass's. The index is built on first use
 * (only the oracle reads it), over the workload's block ids.
 */
class CallOrderFuture implements FutureUses {
  readonly #ids: BlockIds;
  /** The first pass's calls in arrival order, until the index is built (on first use). */
  #calls: SimCall[] | null;
  readonly #position = new Map<string, number>();
  /** Positions of the calls whose prompts use block id i: #positions[#offsets[i] .. #offsets[i + 1]). */
  #offsets = new Int32Array(0);
  #positions = new Int32Array(0);
  /** Uses of prompt blocks the workload's ids lack (none when prompts extend into replies, as hashing makes them). */
  readonly #others = new Map<bigint, number[]>();
  cursor = -1;

  constructor(run: SimulationResult, ids: BlockIds) {
    this.#ids = ids;
    this.#calls = [...run.arrivals].sort((a, b) => a.time - b.time).map(({ call }) => call);
  }

  moveTo(call: SimCall): void {
    this.#build();
    this.cursor = this.#position.get(`${call.session}:${call.index}`) ?? this.cursor;
  }

  nextUse(hash: bigint): number {
    this.#build();
    const id = this.#ids.get(hash);
    let list: ArrayLike<number>;
    let lo: number;
    let hi: number;
    if (id >= 0) {
      [list, lo, hi] = [this.#positions, this.#offsets[id]!, this.#offsets[id + 1]!];
    } else {
      const other = this.#others.get(hash);
      if (!other) return Infinity;
      [list, lo, hi] = [other, 0, other.length];
    }
    const end = hi;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]! <= this.cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo < end ? list[lo]! : Infinity;
  }

  /** Indexes each block's uses by call position: counts, then fills (a call lists a block once). */
  #build(): void {
    const calls = this.#calls;
    if (calls === null) return;
    this.#calls = null;
    const size = this.#ids.size;
    const last = new Int32Array(size).fill(-1);
    const offsets = new Int32Array(size + 1);
    calls.forEach((call, position) => {
      this.#position.set(`${call.session}:${call.index}`, position);
      for (const h of call.promptHashes) {
        const id = this.#ids.get(h);
        if (id < 0) {
          let list = this.#others.get(h);
          if (!list) this.#others.set(h, (list = []));
          if (list[list.length - 1] !== position) list.push(position);
        } else if (last[id] !== position) {
          last[id] = position;
          offsets[id + 1]!++;
        }
      }
    });
    for (let i = 0; i < size; i++) offsets[i + 1]! += offsets[i]!;
    const positions = new Int32Array(offsets[size]!);
    const fill = offsets.slice(0, size);
    last.fill(-1);
    calls.forEach((call, position) => {
      for (const h of call.promptHashes) {
        const id = this.#ids.get(h);
        if (id < 0 || last[id] === position) continue;
        last[id] = position;
        positions[fill[id]!++] = position;
      }
    });
    [this.#offsets, this.#positions] = [offsets, positions];
  }
}

function summarize(policy: string, capacity: CapacityUsed, run: SimulationResult, workload: SimWorkload): PolicyResult {
  const ttft = Array.from(run.ttftSeconds, (s) => s * 1000).sort((a, b) => a - b);
  const quantile = (q: number) => (ttft.length ? ttft[Math.min(ttft.length - 1, Math.floor(q * ttft.length))]! : 0);
  const mean = ttft.reduce((a, b) => a + b, 0) / Math.max(1, ttft.length);
  return {
    policy,
    capacity,
    tokenHitRate: round(run.deviceHitTokens / Math.max(1, run.promptTokens), 4),
    hostHitRate: round(run.hostHitTokens / Math.max(1, run.promptTokens), 4),
    gapClosed: null,
    meanTtftMs: round(mean, 2),
    p50TtftMs: round(quantile(0.5), 2),
    p99TtftMs: round(quantile(0.99), 2),
    throughputTokPerS: round(run.outputTokens / Math.max(1e-9, run.makespanSeconds), 1),
    prefetchPrecision: run.prefetch.issued > 0 ? round(run.prefetch.used / run.prefetch.issued, 4) : null,
    bytesMoved: run.bytesMoved,
    overheadUsPerCall: round((run.runtimeSeconds * 1e6) / Math.max(1, workload.calls), 2),
    steadyOverheadUsPerCall: round((run.lateRuntimeSeconds * 1e6) / Math.max(1, run.lateCalls), 2),
    ...(run.phaseSeconds ? { profileUsPerCall: perCall(run.phaseSeconds, workload.calls) } : {}),
    ...(run.toolCalls ? { toolCalls: { ...run.toolCalls, secondsSaved: round(run.toolCalls.secondsSaved, 3) } } : {}),
    ...(run.speculative ? { speculativePrefill: run.speculative } : {}),
    ...('callsPerReplica' in run ? { callsPerReplica: run.callsPerReplica as number[] } : {}),
    ttftMs: ttft,
  };
}

function perCall(seconds: Record<Phase, number>, calls: number): Record<Phase, number> {
  const out = {} as Record<Phase, number>;
  for (const phase of PHASES) out[phase] = round((seconds[phase] * 1e6) / Math.max(1, calls), 2);
  return out;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
