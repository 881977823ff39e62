/**
 * Belady / MIN, tree-constrained: the offline optimum for one tier, used to
 * report how much of the gap between LRU and the best possible eviction a
 * policy closes. It needs the future, so only the simulator can run it.
 */
import type { Policy, PolicyContext, RuntimeEvent } from './types.js';
import { checkOptionsObject, describeValue, isRecord } from '../util/check.js';

/** What the simulator knows about the rest of the trace. */
export interface FutureUses {
  /**
   * When the block with this hash is next used strictly after `afterTime`:
   * a time or a call index (any clock, as long as it is monotonic),
   * `Infinity` when it is never used again.
   */
  nextUse(hash: bigint, afterTime: number): number;
}

/** Options of {@link createBeladyPolicy}. */
export interface BeladyPolicyOptions {
  /** The oracle over the trace's future. Required. */
  future: FutureUses;
}

/**
 * Score of a block that is never used again: the most negative value the
 * block manager accepts comfortably (scores must be finite float32).
 */
export const NEVER_USED_SCORE = -3e38;
const MAX_SCORE = 3e38;

/**
 * Creates the Belady/MIN policy. A block's score is minus its next use, so
 * the evictable block used furthest in the future goes first and a block
 * never used again goes before all of them.
 *
 * The future is asked about uses after the latest event time the policy has
 * observed (`-Infinity` before any event): the use that touched a block is
 * in the past once it is observed. The block manager enforces the rest of
 * the tree constraint: only leaves are evictable and pinned blocks never
 * are, so this is MIN over the blocks it is allowed to take.
 *
 * A block's next use only changes when the block is used, and a use touches
 * it, so rescoring the touched blocks keeps every score current.
 *
 * @throws TypeError when `options.future` has no `nextUse` function.
 */
export function createBeladyPolicy(options: BeladyPolicyOptions): Policy {
  const o = checkOptionsObject(options, 'belady policy', ['future']);
  const future = o['future'];
  if (!isRecord(future) || typeof future['nextUse'] !== 'function') {
    throw new TypeError(
      `belady policy: options.future must be an object with a nextUse(hash, afterTime) function, got ${describeValue(future)}`,
    );
  }
  const oracle = future as unknown as FutureUses;
  let context: PolicyContext | undefined;
  let latestTime = -Infinity;

  const nextUseOf = (blockId: number): number => {
    const hash = context!.manager.metadata.hash[blockId]!;
    const next = oracle.nextUse(hash, latestTime);
    if (typeof next !== 'number' || Number.isNaN(next)) {
      throw new RangeError(
        `belady policy: future.nextUse(${hash}n, ${latestTime}) returned ${describeValue(next)}, expected a number or Infinity`,
      );
    }
    return next;
  };

  return {
    name: 'belady',
    scoring: 'blocks',
    attach(attached: PolicyContext): void {
      context = attached;
    },
    observe(event: RuntimeEvent): void {
      if (event.time > latestTime) latestTime = event.time;
    },
    scoreBlocks(blockIds: Int32Array, out: Float32Array): void {
      if (context === undefined) throw new RangeError('belady policy: scoreBlocks() called before attach()');
      for (let i = 0; i < blockIds.length; i++) {
        const next = nextUseOf(blockIds[i]!);
        out[i] = next === Infinity ? NEVER_USED_SCORE : Math.min(MAX_SCORE, Math.max(NEVER_USED_SCORE, -next));
      }
    },
    explain(blockId: number): Record<string, unknown> | null {
      if (context === undefined) return null;
      return { nextUse: nextUseOf(blockId), afterTime: latestTime };
    },
  };
}
