/**
 * The policy layer measured on small fixed configurations: the policies a
 * default replay leaves out (they reorder, speculate, share out, route or
 * memoise rather than evict), each replayed beside the baseline it is
 * meant to improve on, on the same arrivals. Every replay here runs with
 * device capacity {@link LAYER_CAPACITY} of the peak live footprint and no
 * host tier, where the device is short enough for these policies to matter.
 */
import type { ToolDeclaration, TraceCall } from '../trace/format.js';
import type { SpeculativeTally } from './engine_hooks.js';
import { noisyNeighbour, type NoisyNeighbourResult } from './noisy_neighbour.js';
import { replay, type PolicyResult, type ReplayOptions } from './replay.js';
import type { ToolCallTally } from './tool_calls.js';
import { ROUTER_KINDS, type RouterKind } from '../policies/routing.js';

/** Device capacity of every policy-layer replay, as a fraction of the peak live footprint. */
export const LAYER_CAPACITY = 0.25;
/** Each small workload of the noisy-neighbour mix keeps at most this share of the heavy one's calls. */
export const SMALL_SHARE = 0.25;
/** Replicas behind the router in the routing measurement (capacities are per replica). */
export const LAYER_REPLICAS = 4;
/** The baseline every policy-layer policy is composed onto and compared with. */
export const LAYER_BASELINE = 'lru';

/** A workload the policy layer replays: its calls and, for tool-memo, its tools' declarations. */
export interface LayerWorkload {
  name: string;
  calls: readonly TraceCall[];
  tools?: Readonly<Record<string, ToolDeclaration>>;
}

/** How the policy-layer replays are made, beside the fixed capacities. */
export interface LayerSettings {
  blockSize?: number;
  model?: ReplayOptions['model'];
  seed?: number;
  /** Called as each measurement starts, with its name. */
  onStep?: (step: string) => void;
}

/** The summary numbers of one run. */
export interface LayerNumbers {
  policy: string;
  tokenHitRate: number;
  meanTtftMs: number;
  p99TtftMs: number;
  throughputTokPerS: number;
}

/** A workload under the baseline and under the baseline with one policy composed on. */
export interface LayerPair<Extra = object> {
  workload: string;
  /** Device blocks both runs had. */
  capacityBlocks: number;
  baseline: LayerNumbers & Extra;
  measured: LayerNumbers & Extra;
}

/** The noisy-neighbour mix: the heavy workload first, then the small ones. */
export interface FairnessMeasurement {
  workloads: { name: string; calls: number }[];
  /** Device blocks of the one engine the mix shares. */
  deviceBlocks: number;
  /** The baseline's run, then fairness's. */
  runs: NoisyNeighbourResult[];
}

/** One workload behind {@link LAYER_REPLICAS} replicas, once per router. */
export interface RoutingMeasurement {
  workload: string;
  replicas: number;
  /** Device blocks of each replica. */
  capacityBlocks: number;
  routers: (LayerNumbers & { router: RouterKind; callsPerReplica: number[] })[];
}

/** Everything `measurePolicyLayer` measured; results.json's `policyLayer`. */
export interface PolicyLayerResults {
  capacity: number;
  hostTier: 'none';
  baseline: string;
  batchShaping: LayerPair[];
  speculativePrefill: LayerPair<{ speculativePrefill: SpeculativeTally | null }>[];
  fairness: FairnessMeasurement | null;
  routing: RoutingMeasurement[];
  toolMemo: LayerPair<{ toolCalls: ToolCallTally | null }>[];
}

function numbers(r: PolicyResult): LayerNumbers {
  return { policy: r.policy, tokenHitRate: r.tokenHitRate, meanTtftMs: r.meanTtftMs, p99TtftMs: r.p99TtftMs, throughputTokPerS: r.throughputTokPerS };
}

/** The options every policy-layer replay shares. */
function baseOptions(settings: LayerSettings): ReplayOptions {
  return {
    capacity: { fraction: LAYER_CAPACITY },
    hostCapacity: { blocks: 0 },
    ...(settings.blockSize === undefined ? {} : { blockSize: settings.blockSize }),
    ...(settings.model === undefined ? {} : { model: settings.model }),
    ...(settings.seed === undefined ? {} : { seed: settings.seed }),
  };
}

/** The first whole sessions of `calls` (in order of first appearance) within `max` calls; at least one session. */
function firstSessions(calls: readonly TraceCall[], max: number): TraceCall[] {
  const sessions = new Map<string, TraceCall[]>();
  for (const call of calls) {
    let list = sessions.get(call.session);
    if (!list) sessions.set(call.session, (list = []));
    list.push(call);
  }
  const kept: TraceCall[] = [];
  for (const session of sessions.values()) {
    if (kept.length > 0 && kept.length + session.length > max) break;
    kept.push(...session);
  }
  return kept;
}

const withTools = (w: LayerWorkload) => w.tools !== undefined && Object.keys(w.tools).length > 0;

/**
 * Measures batch-shaping, speculative-prefill, fairness, routing and
 * tool-memo on `workloads`. One replay per workload runs the baseline and
 * each composed policy on the same arrivals (tool-memo only where the
 * workload declares tools). The fairness mix takes the workload with the
 * most calls as the heavy one and the two with the fewest as the small
 * ones, each cut to its first sessions within {@link SMALL_SHARE} of the
 * heavy one's calls (no mix with fewer than three workloads).
 */
export function measurePolicyLayer(workloads: readonly LayerWorkload[], settings: LayerSettings = {}): PolicyLayerResults {
  const step = settings.onStep ?? (() => undefined);
  const peaks = new Map<string, number>();
  const batchShaping: PolicyLayerResults['batchShaping'] = [];
  const speculativePrefill: PolicyLayerResults['speculativePrefill'] = [];
  const toolMemo: PolicyLayerResults['toolMemo'] = [];

  step('batch-shaping, speculative-prefill, tool-memo');
  for (const w of workloads) {
    const composed = ['batch-shaping', 'speculative-prefill', ...(withTools(w) ? ['tool-memo'] : [])].map((p) => `${LAYER_BASELINE}+${p}`);
    const report = replay(w.name, w.calls, { ...baseOptions(settings), policies: [LAYER_BASELINE, ...composed], ...(withTools(w) ? { tools: w.tools! } : {}) });
    peaks.set(w.name, report.peakLiveBlocks);
    const [baseline, shaped, speculative, memo] = report.results as [PolicyResult, PolicyResult, PolicyResult, PolicyResult | undefined];
    const capacityBlocks = report.capacityBlocks;
    batchShaping.push({ workload: w.name, capacityBlocks, baseline: numbers(baseline), measured: numbers(shaped) });
    speculativePrefill.push({
      workload: w.name,
      capacityBlocks,
      baseline: { ...numbers(baseline), speculativePrefill: baseline.speculativePrefill ?? null },
      measured: { ...numbers(speculative), speculativePrefill: speculative.speculativePrefill ?? null },
    });
    if (memo) {
      toolMemo.push({
        workload: w.name,
        capacityBlocks,
        baseline: { ...numbers(baseline), toolCalls: baseline.toolCalls ?? null },
        measured: { ...numbers(memo), toolCalls: memo.toolCalls ?? null },
      });
    }
  }

  step('fairness');
  let fairness: FairnessMeasurement | null = null;
  if (workloads.length >= 3) {
    const bySize = [...workloads].sort((a, b) => b.calls.length - a.calls.length || a.name.localeCompare(b.name));
    const heavy = bySize[0]!;
    const small = [bySize[bySize.length - 2]!, bySize[bySize.length - 1]!].map((w) => ({
      name: w.name,
      calls: firstSessions(w.calls, Math.max(1, Math.floor(SMALL_SHARE * heavy.calls.length))),
    }));
    const mix = [{ name: heavy.name, calls: heavy.calls }, ...small];
    // The mix's engine gets the capacity share of the heavy workload's footprint a single replay would: the small ones must fit beside it.
    const deviceBlocks = Math.max(1, Math.round(LAYER_CAPACITY * (peaks.get(heavy.name) ?? 0)));
    fairness = {
      workloads: mix.map((w) => ({ name: w.name, calls: w.calls.length })),
      deviceBlocks,
      runs: noisyNeighbour({
        workloads: mix,
        runs: [LAYER_BASELINE, 'fairness'],
        deviceBlocks,
        hostBlocks: 0,
        ...(settings.blockSize === undefined ? {} : { blockSize: settings.blockSize }),
        ...(typeof settings.model === 'string' ? { model: settings.model } : {}),
        ...(settings.seed === undefined ? {} : { seed: settings.seed }),
      }),
    };
  }

  step('routing');
  const routing = workloads.map((w): RoutingMeasurement => {
    let capacityBlocks = 0;
    const routers = ROUTER_KINDS.map((router) => {
      const report = replay(w.name, w.calls, { ...baseOptions(settings), policies: [LAYER_BASELINE], replicas: LAYER_REPLICAS, router });
      capacityBlocks = report.capacityBlocks;
      const r = report.results[0]!;
      return { ...numbers(r), router, callsPerReplica: r.callsPerReplica ?? [] };
    });
    return { workload: w.name, replicas: LAYER_REPLICAS, capacityBlocks, routers };
  });

  return { capacity: LAYER_CAPACITY, hostTier: 'none', baseline: LAYER_BASELINE, batchShaping, speculativePrefill, fairness, routing, toolMemo };
}
