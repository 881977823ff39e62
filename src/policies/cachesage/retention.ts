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
import { prefixReuseAt, type PrefixReuse } from './prefix_reuse.js';
import { reachAny, tableOf } from './tables.js';
import { START_INDEX } from './transitions.js';
import { isLive, meanStepSeconds, modelAgent, RARE_AGENT, stateOf, type CacheSageState, type WorkloadState } from './workload.js';

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
  const memo = new Map<string, ReuseBeforeDepth>();
  for (let i = 0; i < classIds.length; i++) out[i] = classScore(state, classIds[i]!, memo);
}

/** A class's retention score; without `memo`, computed from scratch (explain). */
export function classScore(state: CacheSageState, classId: number, memo?: Map<string, ReuseBeforeDepth>): number {
  const cls = state.context?.scoreClass(classId);
  const depthCost = 1 + 0.05 * (cls?.depthBucket ?? 0);
  if (!cls || !memo) return reuseOf(state, classId).value * depthCost;
  const key = `${cls.workload}:${cls.session}:${cls.agentMask}:${cls.stale}`;
  let base = memo.get(key);
  if (base === undefined) memo.set(key, (base = reuseBeforeDepth(state, classId)));
  return base.value * depthShare(base, cls.depthBucket) * depthCost;
}

/** Reuse of a class within the horizon: probability, discounted value, and why. */
export function reuseOf(state: CacheSageState, classId: number): Reuse {
  const base = reuseBeforeDepth(state, classId);
  if (base.prefixAgents === undefined) return base;
  const share = depthShare(base, state.context?.scoreClass(classId)?.depthBucket ?? 0);
  return {
    probability: base.probability * share,
    value: base.value * share,
    reason: `${base.reason}, prefix reuse at this depth ${share.toFixed(2)}`,
  };
}

/**
 * For a session's private blocks: how likely the agent's next prompt still
 * holds blocks this deep (the best of the class's agents). 1 otherwise.
 */
function depthShare(base: ReuseBeforeDepth, depthBucket: number): number {
  if (base.prefixAgents === undefined) return 1;
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
  if (cls.stale) return { probability: 0, value: 0, reason: 'stale: its agent moved past this chain' };
  if (cls.workload < 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'untagged: recency decides' };
  const workloadName = ctx.registry.workloadName(cls.workload);
  const w = workloadName === undefined ? undefined : state.workloads.get(workloadName);
  if (!w) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'workload not seen yet' };
  const table = tableOf(state, w);
  const H = table.horizon;
  if (cls.session >= 0) {
    const session = ctx.sessionById(cls.session);
    if (!session || !isLive(state, session)) return { probability: 0, value: 0, reason: 'private to an ended session' };
    const { known, rareShare, names } = privateAgents(state, w, cls.workload, session.id, cls.agents);
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
    };
  }
  const agents: number[] = [];
  for (const bit of cls.agents) {
    const name = ctx.registry.agentName(cls.workload, bit);
    const index = name === undefined ? undefined : w.model.indexOf(modelAgent(w, name));
    if (index !== undefined && !agents.includes(index)) agents.push(index);
  }
  if (agents.length === 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'agents not seen yet' };
  // Shared across sessions: the first of the live sessions, or a new one,
  // to reach these agents.
  const key = agents.join(',');
  let shared = w.sharedReach.get(key);
  if (shared === undefined) {
    const arrivalsPerSecond = 1 / Math.max(1e-6, w.interArrival.mean() ?? Infinity);
    const newPerStep = arrivalsPerSecond * meanStepSeconds(w, state.settings.defaultGapSeconds);
    let value = 0;
    let previous = 0;
    for (let h = 1; h <= H; h++) {
      let none = 1;
      for (const [at, count] of w.liveAt) none *= (1 - reachAny(table, at, agents, h)) ** count;
      none *= Math.exp(-newPerStep * h * reachAny(table, START_INDEX, agents, h));
      const reach = 1 - none;
      value += (reach - previous) / h;
      previous = reach;
    }
    shared = { probability: previous, value, reason: `shared: the first live or new session to reach its agents within ${H} steps` };
    w.sharedReach.set(key, shared);
  }
  return shared;
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
  let rareShare = 0;
  const steps = state.sessionSteps.get(sessionId);
  const add = (name: string): void => {
    const model = modelAgent(w, name);
    if (!names.includes(model)) names.push(model);
    // The largest share, not the sum: one class on the shared bit holds
    // several agents' blocks, each block one agent's.
    if (model === RARE_AGENT) rareShare = Math.max(rareShare, steps && steps.total > 0 ? (steps.byAgent.get(name) ?? 0) / steps.total : 0);
    else {
      const index = w.model.indexOf(model);
      if (index !== undefined && !known.includes(index)) known.push(index);
    }
  };
  for (const bit of bits) {
    if (bit < MAX_AGENT || !steps) {
      const name = registry.agentName(workloadId, bit);
      if (name !== undefined) add(name);
      continue;
    }
    for (const name of steps.byAgent.keys()) if (registry.agentIndex(w.name, name) === MAX_AGENT) add(name);
  }
  return { known, rareShare, names };
}
