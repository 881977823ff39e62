/**
 * The infinite-cache bound: the hit rate a workload reaches when nothing is
 * ever evicted, so only the first use of each block misses.
 */
import type { Policy } from '../runtime/types.js';
import { checkOptionsObject } from './options.js';

/** The infinite-cache bound takes no options. */
export type InfinitePolicyOptions = Record<string, never>;

/**
 * A policy that asks the simulator for unbounded device capacity. It scores
 * and acts on nothing: with room for every block, eviction never happens.
 */
export interface InfinitePolicy extends Policy {
  readonly name: 'infinite';
  /** Read by the simulator: size the device tier to hold every block of the trace. */
  readonly unboundedCapacity: true;
}

/** Whether a policy asks for unbounded capacity (the infinite-cache bound). */
export function hasUnboundedCapacity(policy: Policy): policy is InfinitePolicy {
  return (policy as Partial<InfinitePolicy>).unboundedCapacity === true;
}

/**
 * Creates the infinite-cache bound. It only has a meaning in the simulator,
 * which reads {@link InfinitePolicy.unboundedCapacity}; on a real block
 * manager it behaves as LRU.
 *
 * @throws TypeError when `options` is not an object or names an option.
 */
export function createInfinitePolicy(options?: InfinitePolicyOptions): InfinitePolicy {
  checkOptionsObject(options, 'infinite', []);
  return { name: 'infinite', unboundedCapacity: true };
}
