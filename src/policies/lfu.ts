/** LFU: evict the least frequently used evictable block, for context beside LRU. */
import type { Policy, PolicyContext } from './types.js';
import { checkOptionsObject } from '../util/check.js';

/** LFU takes no options. */
export type LfuPolicyOptions = Record<string, never>;

/**
 * Creates the LFU policy: a block's score is its access count, so the
 * least-used evictable block goes first and, among equally used ones, the
 * least recently used (the block manager breaks score ties by last access).
 *
 * The access count only changes when a block is touched, and the runtime
 * rescores exactly the touched blocks, so per-block scoring stays current
 * without ever scanning the cache.
 *
 * @throws TypeError when `options` is not an object or names an option.
 */
export function createLfuPolicy(options?: LfuPolicyOptions): Policy {
  checkOptionsObject(options, 'lfu policy', []);
  let context: PolicyContext | undefined;
  return {
    name: 'lfu',
    scoring: 'blocks',
    attach(attached: PolicyContext): void {
      context = attached;
    },
    scoreBlocks(blockIds: Int32Array, out: Float32Array): void {
      if (context === undefined) throw new RangeError('lfu policy: scoreBlocks() called before attach()');
      const accessCount = context.manager.metadata.accessCount;
      for (let i = 0; i < blockIds.length; i++) out[i] = accessCount[blockIds[i]!]!;
    },
    explain(blockId: number): Record<string, unknown> | null {
      if (context === undefined) return null;
      return { accessCount: context.manager.metadata.accessCount[blockId] ?? null };
    },
  };
}
