/**
 * What CacheSage learned as JSON-compatible data, and its inverse. A
 * restore parses everything before it replaces anything, so a corrupt part
 * leaves the policy as it was; live sessions keep their places.
 */
import { parseCrossSessionCounts } from './cross_session.js';
import { DEPTH_BUCKETS, type PrefixReuse } from './prefix_reuse.js';
import { DurationEstimator } from './timing.js';
import { TransitionModel } from './transitions.js';
import { COMMON_PREFIX_WINDOW, newWorkload, type CacheSageState, type WorkloadState } from './workload.js';

export function snapshotOf(state: CacheSageState): unknown {
  const workloads: Record<string, unknown> = {};
  for (const w of state.workloads.values()) {
    workloads[w.name] = {
      model: w.model.toJSON(),
      service: Object.fromEntries([...w.service].map(([a, e]) => [a, e.toJSON()])),
      gap: Object.fromEntries([...w.gap].map(([a, e]) => [a, e.toJSON()])),
      continuation: Object.fromEntries(w.continuation),
      prefixReuse: Object.fromEntries(
        [...w.prefixReuse].map(([agent, r]) => [agent, { reused: Array.from(r.reused), seen: Array.from(r.seen) }]),
      ),
      interArrival: w.interArrival.toJSON(),
      restarts: Object.fromEntries(w.restarts),
      commonPrefix: Object.fromEntries(w.commonPrefix),
    };
  }
  return state.crossSession ? { workloads, crossSession: state.crossSession.countsJSON() } : { workloads };
}

/** @throws TypeError / RangeError naming the part of the snapshot that is wrong. */
export function restoreFrom(state: CacheSageState, snapshot: unknown): void {
  if (typeof snapshot !== 'object' || snapshot === null || typeof (snapshot as { workloads?: unknown }).workloads !== 'object') {
    throw new TypeError('cachesage snapshot must be {workloads: {...}}');
  }
  const parsed = new Map<string, WorkloadState>();
  for (const [name, raw] of Object.entries((snapshot as { workloads: Record<string, unknown> }).workloads)) {
    if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: workload ${name} is not an object`);
    const r = raw as Record<string, unknown>;
    const w = newWorkload(state, name);
    w.model = TransitionModel.fromJSON(r.model);
    w.service = estimators(r.service, `${name}.service`);
    w.gap = estimators(r.gap, `${name}.gap`);
    w.continuation = callCountsFrom(r.continuation, name, 'continuation', 'extended');
    if (r.prefixReuse !== undefined) w.prefixReuse = prefixReuseOf(r.prefixReuse, name);
    w.interArrival = DurationEstimator.fromJSON(r.interArrival);
    // Absent from snapshots written before these were kept: learned afresh.
    if (r.restarts !== undefined) w.restarts = callCountsFrom(r.restarts, name, 'restarts', 'restarted');
    if (r.commonPrefix !== undefined) w.commonPrefix = commonPrefixFrom(r.commonPrefix, name);
    parsed.set(name, w);
  }
  const raw = (snapshot as { crossSession?: unknown }).crossSession;
  const crossSession = raw === undefined ? undefined : parseCrossSessionCounts(raw, 'cachesage snapshot: crossSession');
  // Everything parsed: replace what was learned, keeping live sessions' places.
  for (const [name, w] of parsed) {
    const old = state.workloads.get(name);
    if (old) {
      w.liveAt = old.liveAt;
      w.lastPrompt = old.lastPrompt;
      w.lastArrival = old.lastArrival;
    }
    state.workloads.set(name, w);
  }
  if (crossSession !== undefined) state.crossSession?.restoreCounts(crossSession);
}

function commonPrefixFrom(raw: unknown, name: string): Map<string, number[]> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.commonPrefix is not an object`);
  const out = new Map<string, number[]>();
  for (const [agent, value] of Object.entries(raw)) {
    if (!Array.isArray(value) || value.length > COMMON_PREFIX_WINDOW || !value.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      throw new RangeError(`cachesage snapshot: ${name}.commonPrefix.${agent} is not a list of at most ${COMMON_PREFIX_WINDOW} block counts`);
    }
    out.set(agent, [...(value as number[])]);
  }
  return out;
}

function prefixReuseOf(raw: unknown, name: string): Map<string, PrefixReuse> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.prefixReuse is not an object`);
  const out = new Map<string, PrefixReuse>();
  for (const [agent, value] of Object.entries(raw)) {
    const v = value as { reused?: unknown; seen?: unknown };
    const arrays = [v?.reused, v?.seen];
    if (
      !arrays.every((a) => Array.isArray(a) && a.length === DEPTH_BUCKETS && a.every((x) => typeof x === 'number' && x >= 0 && Number.isFinite(x))) ||
      !(v.reused as number[]).every((x, k) => x <= (v.seen as number[])[k]! + 1e-9)
    ) {
      throw new RangeError(`cachesage snapshot: ${name}.prefixReuse.${agent} is not {reused <= seen, ${DEPTH_BUCKETS} each}`);
    }
    out.set(agent, { reused: Float64Array.from(v.reused as number[]), seen: Float64Array.from(v.seen as number[]) });
  }
  return out;
}

/**
 * Per agent, a decayed count of calls and of those with some property
 * (`part`: continuation counts `extended`, restarts `restarted`).
 */
function callCountsFrom<K extends string>(raw: unknown, name: string, part: string, hits: K): Map<string, Record<K | 'calls', number>> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.${part} is not an object`);
  const out = new Map<string, Record<K | 'calls', number>>();
  for (const [agent, value] of Object.entries(raw)) {
    const v = value as Record<string, unknown> | null;
    const count = v?.[hits];
    const calls = v?.calls;
    if (typeof count !== 'number' || typeof calls !== 'number' || !(count >= 0) || !(calls >= count) || !Number.isFinite(calls)) {
      throw new RangeError(`cachesage snapshot: ${name}.${part}.${agent} is not {${hits} <= calls}`);
    }
    out.set(agent, { [hits]: count, calls } as Record<K | 'calls', number>);
  }
  return out;
}

function estimators(raw: unknown, what: string): Map<string, DurationEstimator> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${what} is not an object`);
  return new Map(Object.entries(raw).map(([a, e]) => [a, DurationEstimator.fromJSON(e)]));
}
