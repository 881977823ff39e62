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
    w.continuation = continuationFrom(r.continuation, name);
    if (r.prefixReuse !== undefined) w.prefixReuse = prefixReuseOf(r.prefixReuse, name);
    w.interArrival = DurationEstimator.fromJSON(r.interArrival);
    // Absent from snapshots written before these were kept: learned afresh.
    if (r.restarts !== undefined) w.restarts = restartsFrom(r.restarts, name);
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

function restartsFrom(raw: unknown, name: string): Map<string, { restarted: number; calls: number }> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.restarts is not an object`);
  const out = new Map<string, { restarted: number; calls: number }>();
  for (const [agent, value] of Object.entries(raw)) {
    const v = value as { restarted?: unknown; calls?: unknown };
    if (typeof v?.restarted !== 'number' || typeof v.calls !== 'number' || !(v.restarted >= 0) || !(v.calls >= v.restarted) || !Number.isFinite(v.calls)) {
      throw new RangeError(`cachesage snapshot: ${name}.restarts.${agent} is not {restarted <= calls}`);
    }
    out.set(agent, { restarted: v.restarted, calls: v.calls });
  }
  return out;
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

function continuationFrom(raw: unknown, name: string): Map<string, { extended: number; calls: number }> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.continuation is not an object`);
  const out = new Map<string, { extended: number; calls: number }>();
  for (const [agent, value] of Object.entries(raw)) {
    const v = value as { extended?: unknown; calls?: unknown };
    if (typeof v?.extended !== 'number' || typeof v.calls !== 'number' || !(v.extended >= 0) || !(v.calls >= v.extended)) {
      throw new RangeError(`cachesage snapshot: ${name}.continuation.${agent} is not {extended <= calls}`);
    }
    out.set(agent, { extended: v.extended, calls: v.calls });
  }
  return out;
}

function estimators(raw: unknown, what: string): Map<string, DurationEstimator> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${what} is not an object`);
  return new Map(Object.entries(raw).map(([a, e]) => [a, DurationEstimator.fromJSON(e)]));
}
