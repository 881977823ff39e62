/**
 * The policy registry: every policy is created by name from this map, so
 * the runtime, the simulator and the CLI share one list and adding a policy
 * is one line here.
 */
import type { Policy } from '../runtime/types.js';
import { createBeladyPolicy, type BeladyPolicyOptions } from './belady.js';
import { createCacheSagePolicy } from './cachesage/policy.js';
import { createInfinitePolicy, type InfinitePolicyOptions } from './infinite.js';
import { createKvflowPolicy, type KvflowPolicyOptions } from './kvflow.js';
import { createLfuPolicy, type LfuPolicyOptions } from './lfu.js';
import { createLruPolicy, type LruPolicyOptions } from './lru.js';
import { createTtlPolicy, type TtlPolicyOptions } from './ttl.js';
import { describeValue } from './options.js';

/** A policy factory: validates its options (TypeError / RangeError) and builds the policy. */
export type PolicyFactory = (options?: unknown) => Policy;

/**
 * Policy name -> factory. Each factory checks its own options, so the casts
 * below only hand the caller's value through.
 */
export const POLICY_FACTORIES: Readonly<Record<string, PolicyFactory>> = Object.freeze({
  // CacheSage: the flagship policy (src/policies/cachesage).
  cachesage: (options?: unknown) => createCacheSagePolicy(options as Parameters<typeof createCacheSagePolicy>[0]),
  lru: (options?: unknown) => createLruPolicy(options as LruPolicyOptions),
  lfu: (options?: unknown) => createLfuPolicy(options as LfuPolicyOptions),
  kvflow: (options?: unknown) => createKvflowPolicy(options as KvflowPolicyOptions),
  ttl: (options?: unknown) => createTtlPolicy(options as TtlPolicyOptions),
  belady: (options?: unknown) => createBeladyPolicy(options as BeladyPolicyOptions),
  infinite: (options?: unknown) => createInfinitePolicy(options as InfinitePolicyOptions),
});

/** The registered policy names, in registry order. */
export const POLICY_NAMES: readonly string[] = Object.freeze(Object.keys(POLICY_FACTORIES));

/**
 * Creates a registered policy by name.
 *
 * @throws TypeError when `name` is not a string, or the policy's options are malformed.
 * @throws RangeError when no policy has that name, or an option is out of range.
 */
export function createPolicy(name: string, options?: unknown): Policy {
  if (typeof name !== 'string') throw new TypeError(`policy name must be a string, got ${describeValue(name)}`);
  // Own keys only: "toString" or "__proto__" must not reach Object.prototype.
  const factory = Object.hasOwn(POLICY_FACTORIES, name) ? POLICY_FACTORIES[name] : undefined;
  if (factory === undefined) {
    throw new RangeError(`unknown policy ${JSON.stringify(name)} (known: ${POLICY_NAMES.join(', ')})`);
  }
  return factory(options);
}

export { createBeladyPolicy, NEVER_USED_SCORE, type BeladyPolicyOptions, type FutureUses } from './belady.js';
export { createCacheSagePolicy } from './cachesage/policy.js';
export { createInfinitePolicy, hasUnboundedCapacity, type InfinitePolicy, type InfinitePolicyOptions } from './infinite.js';
export {
  createKvflowPolicy,
  deriveStepGraph,
  KVFLOW_ENDED_SCORE,
  KVFLOW_MAX_AGENTS,
  KVFLOW_UNREACHABLE_SCORE,
  type DerivedStepGraphs,
  type KvflowPolicyOptions,
  type StepGraph,
  type StepGraphCall,
} from './kvflow.js';
export { createLfuPolicy, type LfuPolicyOptions } from './lfu.js';
export { createLruPolicy, type LruPolicyOptions } from './lru.js';
export { createTtlPolicy, ttlPinKey, type TtlPolicyOptions } from './ttl.js';
