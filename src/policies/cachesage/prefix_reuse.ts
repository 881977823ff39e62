/**
 * Prefix reuse by depth: how much of an agent's previous prompt in a
 * session its next prompt reuses, per depth bucket (floor(log2(depth + 1))),
 * so a session's private blocks are valued by how deep the next prompt
 * will still read them.
 */
import { CONTINUATION_DECAY } from './workload.js';

// Depth buckets are floor(log2(depth + 1)): 32 cover any chain.
export const DEPTH_BUCKETS = 32;

export interface PrefixReuse {
  reused: Float64Array;
  seen: Float64Array;
}

/**
 * Records that an agent's new prompt shared its first `shared` blocks with
 * its previous one of `previous` blocks: per depth bucket the previous
 * prompt reached, the share of that bucket's blocks reused.
 */
export function observePrefixReuse(map: Map<string, PrefixReuse>, agent: string, shared: number, previous: number): void {
  let r = map.get(agent);
  if (!r) map.set(agent, (r = { reused: new Float64Array(DEPTH_BUCKETS), seen: new Float64Array(DEPTH_BUCKETS) }));
  for (let k = 0; k < DEPTH_BUCKETS; k++) {
    const low = 2 ** k - 1;
    if (low >= previous) break;
    const high = Math.min(2 ** (k + 1) - 1, previous);
    const reused = Math.min(Math.max(Math.min(shared, high) - low, 0), high - low);
    r.reused[k] = r.reused[k]! * CONTINUATION_DECAY + reused / (high - low);
    r.seen[k] = r.seen[k]! * CONTINUATION_DECAY + 1;
  }
}

/**
 * The expected share of an agent's blocks at depth bucket `bucket` that its
 * next prompt in the session reuses. Unknown depths take the deepest known
 * bucket below them; an agent with no second prompt yet is
 * assumed to extend (1).
 */
export function prefixReuseAt(r: PrefixReuse | undefined, bucket: number): number {
  if (!r) return 1;
  for (let k = Math.min(bucket, DEPTH_BUCKETS - 1); k >= 0; k--) {
    if (r.seen[k]! >= 1) return r.reused[k]! / r.seen[k]!;
  }
  return 1;
}
