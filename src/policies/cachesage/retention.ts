/**
 * score: the retention value of a score class, the expected value of
 * keeping its blocks, E[1 / steps until first reuse] within the horizon
 * (reuse next step is worth 1, in h steps 1/h, beyond the horizon 0: MIN's
 * "furthest next use goes first" made probabilistic), times a recompute
 * cost that grows with depth. A session's private blocks are reused when
 * its own walk reaches their agents, and only as deep as the agent's next
 * prompt reads; shared blocks when the first live or new session does.
 */
import { MAX_AGENT } from '../../blocks/types.js';
import { grown } from '../../util/hash_lru.js';
import { prefixReuseAt, type PrefixReuse } from './prefix_reuse.js';
import { crossSessionGapAt, crossSessionRateAt, sharedRereadRateAt, type CrossSessionReuse } from './cross_session.js';
import { reachAny, tableOf, type SurvivalTable } from './tables.js';
import { START_INDEX } from './transitions.js';
import { commonPrefixOf, isLive, meanStepSeconds, modelAgent, RARE_AGENT, stateOf, type CacheSageState, type WorkloadState } from './workload.js';

export interface Reuse {
  /** P(reused within the horizon). */
  probability: number;
  /** E[1 / steps until first reuse] within the horizon: what scores rank by. */
  value: number;
  reason: string;
}

/** {@link Reuse} of a private class before its depth share, and what that share needs. */
interface ReuseBeforeDepth extends Reuse {
  /** The class's agents, for a session's private blocks; undefined for others. */
  prefixAgents?: string[];
  prefixReuse?: Map<string, PrefixReuse>;
  /** For a session's private blocks: what other sessions' reads are worth (cross_session.ts). */
  cross?: { rates: (CrossSessionReuse | undefined)[]; shared: Reuse; stepSeconds: number };
  /** For a shared class: its agents' counts of shared blocks read again (cross_session.ts). */
  sharedRates?: (CrossSessionReuse | undefined)[];
  /** For a shared class: its agents' common prefixes, in blocks (workload.ts). */
  commonPrefixes?: number[];
  /** Mean seconds per step of the workload, for shared and cross-session timing. */
  stepSeconds?: number;
}

const UNTAGGED_REUSE = 0.5;
// An untagged block is valued like one reused for sure four steps ahead.
const UNTAGGED_VALUE = 0.25;

/**
 * Scores classes in a batch. Classes that differ only in depth share a
 * reuse value: it is computed once per (workload, session, agents,
 * staleness) in the batch.
 */
export function scoreClasses(state: CacheSageState, classIds: Int32Array, out: Float32Array): void {
  // One map for every batch, emptied after: scoring never nests.
  const memo = BATCH_MEMO;
  try {
    for (let i = 0; i < classIds.length; i++) out[i] = classScore(state, classIds[i]!, memo);
  } finally {
    memo.clear();
  }
}

const BATCH_MEMO = new Map<number, ReuseBeforeDepth>();

/** A class's retention score; without `memo`, computed from scratch (explain). */
export function classScore(state: CacheSageState, classId: number, memo?: Map<number, ReuseBeforeDepth>): number {
  const cls = state.context?.scoreClass(classId);
  const depthCost = 1 + 0.05 * (cls?.depthBucket ?? 0);
  if (!cls || !memo) return reuseOf(state, classId).value * depthCost;
  let base = memo.get(cls.family);
  if (base === undefined) memo.set(cls.family, (base = reuseBeforeDepth(state, classId)));
  const share = depthShare(base, cls.depthBucket);
  const cross = crossSessionAt(base, cls.depthBucket);
  return (base.value * share + (1 - base.probability * share) * cross.value) * depthCost;
}

/**
 * Reuse of a session's private blocks by another session (cross_session.ts):
 * the share of such blocks at this depth that other sessions read, times
 * the reuse of a block shared by the workload's live and new sessions.
 */
function crossSessionAt(base: ReuseBeforeDepth, depthBucket: number): { probability: number; value: number } {
  if (base.cross === undefined) return NO_REUSE;
  let rate = 0;
  for (const r of base.cross.rates) rate = Math.max(rate, crossSessionRateAt(r, depthBucket));
  if (rate === 0) return NO_REUSE;
  const value = timedValue(base.cross.rates, depthBucket, rate, base.cross.stepSeconds, base.cross.shared.value);
  return { probability: rate * base.cross.shared.probability, value };
}

const NO_REUSE = { probability: 0, value: 0 };

/**
 * E[1 / steps until reuse] of a block another session reads `rate` of the
 * time, after the gap seen between such reads (in the workload's mean step
 * time): one session reading it, not the first of many, so not sooner than
 * that gap; at most `cap`, the value of a read by the first session to get there.
 */
function timedValue(rates: readonly (CrossSessionReuse | undefined)[], depthBucket: number, rate: number, stepSeconds: number, cap: number): number {
  let gap: number | undefined;
  for (const r of rates) {
    const g = crossSessionGapAt(r, depthBucket);
    if (g !== undefined) gap = gap === undefined ? g : Math.min(gap, g);
  }
  if (gap === undefined) return rate * cap;
  return rate * Math.min(cap, stepSeconds / Math.max(gap, 1e-9));
}

/** Reuse of a class within the horizon: probability, discounted value, and why. */
export function reuseOf(state: CacheSageState, classId: number): Reuse {
  const base = reuseBeforeDepth(state, classId);
  if (base.prefixAgents === undefined && base.cross === undefined && base.sharedRates === undefined) return base;
  const bucket = state.context?.scoreClass(classId)?.depthBucket ?? 0;
  const share = depthShare(base, bucket);
  const cross = crossSessionAt(base, bucket);
  const own = base.probability * share;
  return {
    probability: own + (1 - own) * cross.probability,
    value: base.value * share + (1 - own) * cross.value,
    reason: reasonOf(base, share, cross.probability),
  };
}

/** Why: the base reason, and the parts of the depth share and other sessions' reads that apply. */
function reasonOf(base: ReuseBeforeDepth, share: number, cross: number): string {
  let reason = base.reason;
  if (base.prefixAgents !== undefined) reason += `, prefix reuse at this depth ${share.toFixed(2)}`;
  else if (base.sharedRates !== undefined && share < 1) reason += `, read again by another session ${share.toFixed(2)}`;
  if (cross > 0) reason += `, by other sessions ${cross.toFixed(2)}`;
  return reason;
}

/**
 * For a session's private blocks: how likely the agent's next prompt still
 * holds blocks this deep (the best of the class's agents). 1 otherwise.
 */
function depthShare(base: ReuseBeforeDepth, depthBucket: number): number {
  if (base.sharedRates !== undefined) {
    // Shared blocks deeper than what every session reads (a document a few
    // sessions ask about) are read again only as often as that was seen;
    // a bucket that reaches into an agent's common prefix keeps it all.
    const low = 2 ** depthBucket - 1;
    if (base.commonPrefixes!.some((common) => low < common)) return 1;
    let rate = 0;
    for (const r of base.sharedRates) rate = Math.max(rate, sharedRereadRateAt(r, depthBucket));
    if (rate === 0 || base.value <= 0) return 0;
    return timedValue(base.sharedRates, depthBucket, rate, base.stepSeconds!, base.value) / base.value;
  }
  if (base.prefixAgents === undefined) return base.cross === undefined ? 1 : 0;
  let share = 0;
  for (const agent of base.prefixAgents) share = Math.max(share, prefixReuseAt(base.prefixReuse!.get(agent), depthBucket));
  return share;
}

/**
 * Reuse of a class within the horizon, before the depth share of private
 * blocks: what every depth of one (workload, session, agents) has in
 * common, so scoring computes it once per batch.
 */
function reuseBeforeDepth(state: CacheSageState, classId: number): ReuseBeforeDepth {
  const ctx = state.context;
  const cls = ctx?.scoreClass(classId);
  if (!ctx || !cls) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'unknown class' };
  if (cls.dead) return { probability: 0, value: 0, reason: 'dead: no session is expected to read it again' };
  if (cls.workload < 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'untagged: recency decides' };
  const workloadName = ctx.registry.workloadName(cls.workload);
  const w = workloadName === undefined ? undefined : state.workloads.get(workloadName);
  if (!w) {
    if (cls.stale) return { probability: 0, value: 0, reason: 'stale: its agent moved past this chain' };
    return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'workload not seen yet' };
  }
  const table = tableOf(state, w);
  const H = table.horizon;
  if (cls.session >= 0) {
    const session = ctx.sessionById(cls.session);
    const { known, rareShare, names } = privateAgents(state, w, cls.workload, cls.session, cls.agents);
    // Another session may read them whatever this one does: a stale chain
    // or an ended session's blocks keep that value alone.
    const cross = crossSessionOf(state, w, table, known, names);
    if (cls.stale) return { probability: 0, value: 0, reason: 'stale: its agent moved past this chain', cross };
    if (!session || !isLive(state, session)) return { probability: 0, value: 0, reason: 'private to an ended session', cross };
    if (known.length === 0 && rareShare === 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'agents not seen yet' };
    const at = stateOf(w, session);
    let value = 0;
    let previous = 0;
    for (let h = 1; h <= H; h++) {
      // Agents with a state of their own by the model; rare ones run at
      // each step with their share of the session's steps so far.
      const reach = 1 - (1 - reachAny(table, at, known, h)) * (1 - rareShare) ** h;
      value += (reach - previous) / h;
      previous = reach;
    }
    return {
      probability: previous,
      value,
      reason: `private: reuse in its session within ${H} steps`,
      prefixAgents: names,
      prefixReuse: w.prefixReuse,
      cross,
    };
  }
  const agents: number[] = [];
  const sharedRates: (CrossSessionReuse | undefined)[] = [];
  const commonPrefixes: number[] = [];
  for (const bit of cls.agents) {
    const name = ctx.registry.agentName(cls.workload, bit);
    const model = name === undefined ? undefined : modelAgent(w, name);
    const index = model === undefined ? undefined : w.model.indexOf(model);
    if (index !== undefined && !agents.includes(index)) {
      agents.push(index);
      sharedRates.push(state.crossSession?.peek(w.name, model!));
      commonPrefixes.push(commonPrefixOf(w, model!));
    }
  }
  if (cls.stale) return { probability: 0, value: 0, reason: 'stale: every session that reads such blocks did' };
  if (agents.length === 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'agents not seen yet' };
  return { ...sharedReuse(state, w, table, agents), sharedRates, commonPrefixes, stepSeconds: meanStepSeconds(w, state.settings.defaultGapSeconds) };
}

/** Cross-session reuse of a private class of these agents; undefined when none of them has any. */
function crossSessionOf(
  state: CacheSageState,
  w: WorkloadState,
  table: SurvivalTable,
  known: number[],
  names: string[],
): ReuseBeforeDepth['cross'] {
  const tracker = state.crossSession;
  if (!tracker || known.length === 0) return undefined;
  const rates: (CrossSessionReuse | undefined)[] = new Array(names.length);
  let any = false;
  for (let i = 0; i < names.length; i++) any = (rates[i] = tracker.peek(w.name, names[i]!)) !== undefined || any;
  if (!any) return undefined;
  return { rates, shared: sharedReuse(state, w, table, known), stepSeconds: meanStepSeconds(w, state.settings.defaultGapSeconds) };
}

/** Reuse of blocks of these agents shared across sessions: the first of the live sessions, or a new one, to reach them. */
function sharedReuse(state: CacheSageState, w: WorkloadState, table: SurvivalTable, agents: number[]): Reuse {
  const H = table.horizon;
  // One agent, the usual case, is keyed by its state: no string to build.
  const key = agents.length === 1 ? agents[0]! : agents.join(',');
  let shared = w.sharedReach.get(key);
  if (shared === undefined) {
    const arrivalsPerSecond = 1 / Math.max(1e-6, w.interArrival.mean() ?? Infinity);
    const newPerStep = arrivalsPerSecond * meanStepSeconds(w, state.settings.defaultGapSeconds);
    // The live mix in the map's order (the product's), read once: forEach,
    // not for-of, so no iterator or entry array per state and step.
    liveEntries = 0;
    w.liveAt.forEach(addLive);
    let value = 0;
    let previous = 0;
    for (let h = 1; h <= H; h++) {
      let none = 1;
      for (let i = 0; i < liveEntries; i++) none *= (1 - reachAny(table, liveStates[i]!, agents, h)) ** liveCounts[i]!;
      none *= Math.exp(-newPerStep * h * reachAny(table, START_INDEX, agents, h));
      const reach = 1 - none;
      value += (reach - previous) / h;
      previous = reach;
    }
    shared = { probability: previous, value, reason: sharedReasonOf(H) };
    w.sharedReach.set(key, shared);
  }
  return shared;
}

/** The live mix under way in sharedReuse: states and their live sessions (reused). */
let liveStates = new Int32Array(16);
let liveCounts = new Float64Array(16);
let liveEntries = 0;
function addLive(count: number, at: number): void {
  if (liveEntries === liveStates.length) {
    liveStates = grown(liveStates, 2 * liveEntries);
    liveCounts = grown(liveCounts, 2 * liveEntries);
  }
  liveStates[liveEntries] = at;
  liveCounts[liveEntries++] = count;
}

const SHARED_REASONS: string[] = [];
function sharedReasonOf(H: number): string {
  return (SHARED_REASONS[H] ??= `shared: the first live or new session to reach its agents within ${H} steps`);
}

/**
 * The agents of a session's private class (its agent bits): model states
 * of those with one, and the largest share of the session's steps of a
 * rare one. The last agent bit is shared by every agent past the 63rd: for
 * it, the session's own agents on that bit are read. Names are the
 * model's (for prefix reuse).
 */
function privateAgents(
  state: CacheSageState,
  w: WorkloadState,
  workloadId: number,
  sessionId: number,
  bits: readonly number[],
): { known: number[]; rareShare: number; names: string[] } {
  const registry = state.context!.registry;
  const known: number[] = [];
  const names: string[] = [];
  const steps = state.sessionSteps.get(sessionId);
  const out = { known, rareShare: 0, names };
  for (const bit of bits) {
    if (bit < MAX_AGENT || !steps) {
      const name = registry.agentName(workloadId, bit);
      if (name !== undefined) addPrivateAgent(w, steps, name, out);
      continue;
    }
    for (const name of steps.byAgent.keys()) if (registry.agentIndex(w.name, name) === MAX_AGENT) addPrivateAgent(w, steps, name, out);
  }
  return out;
}

/** One agent of a private class, for privateAgents. */
function addPrivateAgent(
  w: WorkloadState,
  steps: { total: number; byAgent: Map<string, number> } | undefined,
  name: string,
  out: { known: number[]; rareShare: number; names: string[] },
): void {
  const model = modelAgent(w, name);
  if (!out.names.includes(model)) out.names.push(model);
  // The largest share, not the sum: one class on the shared bit holds
  // several agents' blocks, each block one agent's.
  if (model === RARE_AGENT) out.rareShare = Math.max(out.rareShare, steps && steps.total > 0 ? (steps.byAgent.get(name) ?? 0) / steps.total : 0);
  else {
    const index = w.model.indexOf(model);
    if (index !== undefined && !out.known.includes(index)) out.known.push(index);
  }
}
