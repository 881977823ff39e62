/**
 * Batch shaping: the order in which the engine admits its waiting queue,
 * SGLang's longest-prefix-match scheduling with its in-batch prefix
 * deduplication, under a starvation bound.
 *
 * - A request whose prompt has more leading tokens on device goes first:
 *   it is cheap to serve, and admitting it pins those blocks before
 *   pressure evicts them.
 * - Requests that share a prefix nobody has cached yet form a group: the
 *   first to arrive leads, the others follow it. A prompt joins the cache
 *   only once its iteration ends, so a follower batched beside its leader
 *   would compute the shared prefix a second time; one iteration later it
 *   finds the prefix cached.
 * - No request is overtaken by later arrivals in more than `maxBypass`
 *   iterations: past that it goes first, in arrival order.
 */
import type { Policy, PolicyContext, WaitingRequest } from './types.js';
import { checkInt, checkOptionsObject } from '../util/check.js';

/** Options of {@link createBatchShapingPolicy}. */
export interface BatchShapingOptions {
  /** Iterations a request may be overtaken by later arrivals before it goes first; 0 is FCFS. Default 2. */
  maxBypass?: number;
  /** Uncached blocks two prompts must share before the later one follows the earlier; >= 1. Default 1. */
  minSharedBlocks?: number;
}

const DEFAULTS = { maxBypass: 2, minSharedBlocks: 1 };

/**
 * Creates the batch-shaping policy. It only implements `scoreWaiting`:
 * priority = leading prompt tokens cached on device; `-Infinity` (held
 * this iteration) for a follower; `+Infinity` for a request overtaken in
 * `maxBypass` iterations already.
 *
 * @throws TypeError when `options` is not an object, names an unknown
 *   option, or an option is not an integer.
 * @throws RangeError when an option is out of range.
 */
export function createBatchShapingPolicy(options?: BatchShapingOptions): Policy {
  const o = checkOptionsObject(options, 'batch-shaping policy', Object.keys(DEFAULTS));
  const maxBypass = checkInt(o['maxBypass'] ?? DEFAULTS.maxBypass, 'batch-shaping policy: options.maxBypass', 0, 1_000_000);
  const minShared = checkInt(o['minSharedBlocks'] ?? DEFAULTS.minSharedBlocks, 'batch-shaping policy: options.minSharedBlocks', 1, 1_000_000);
  let context: PolicyContext | undefined;

  return {
    name: 'batch-shaping',
    attach(attached: PolicyContext): void {
      context = attached;
    },
    scoreWaiting(queue: readonly WaitingRequest[], out: Float64Array): void {
      if (context === undefined) throw new RangeError('batch-shaping policy: scoreWaiting() called before attach()');
      const manager = context.manager;
      const blockSize = manager.blockSize;
      // Leaders by the hash of the block that ends their shared uncached prefix.
      const leaders = new Map<bigint, number>();
      const byArrival = queue.map((_, i) => i).sort((a, b) => queue[a]!.position - queue[b]!.position);
      for (const i of byArrival) {
        const request = queue[i]!;
        if (maxBypass === 0 || request.bypassed >= maxBypass) {
          out[i] = maxBypass === 0 ? -request.position : Infinity;
          continue;
        }
        const hashes = request.hashes.length > manager.numBlockIds ? request.hashes.subarray(0, manager.numBlockIds) : request.hashes;
        const match = manager.lookup(hashes);
        let priority = match.deviceBlocks * blockSize;
        const end = match.deviceBlocks + match.hostBlocks + minShared - 1;
        if (end < hashes.length) {
          const key = hashes[end]!;
          if (leaders.has(key)) priority = -Infinity;
          else leaders.set(key, i);
        }
        out[i] = priority;
      }
    },
  };
}
