/**
 * The infinite-cache bound: the hit rate a workload reaches when nothing is
 * ever evicted, so only the first use of each block misses.
 */
import type { Policy } from './types.js';
import { checkOptionsObject } from '../util/check.js';

/** The infinite-cache bound takes no options. */
export type InfinitePolicyOptions = Record<string, never>;

/**
 * Creates the infinite-cache bound. It scores and acts on nothing: its
 * registry entry (bound 'capacity') makes a replay give the device tier
 * room for every block, so eviction never happens. On a real block
 * manager it behaves as LRU.
 *
 * @throws TypeError when `options` is not an object or names an option.
 */
export function createInfinitePolicy(options?: InfinitePolicyOptions): Policy {
  checkOptionsObject(options, 'infinite policy', []);
  return { name: 'infinite' };
}
