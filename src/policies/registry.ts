/**
 * The policy registry: every policy is created by name from this map, and
 * its entry says what a replay must know about it (whether it is an
 * offline bound, what it must be told about the trace in advance), so the
 * runtime, the simulator, the report and the CLI share one list and no code
 * outside src/policies names a policy. Adding a policy is one entry here.
 */
import { describeValue } from '../util/check.js';
import type { TraceCall } from '../trace/format.js';
import { createBeladyPolicy, type BeladyPolicyOptions, type FutureUses } from './belady.js';
import { createCacheSagePolicy, type CacheSageOptions } from './cachesage/policy.js';
import { createInfinitePolicy, type InfinitePolicyOptions } from './infinite.js';
import { deriveStepGraph } from './kvflow_graph.js';
import { createKvflowPolicy, type KvflowPolicyOptions } from './kvflow.js';
import { createLfuPolicy, type LfuPolicyOptions } from './lfu.js';
import { createLruPolicy, type LruPolicyOptions } from './lru.js';
import { createTtlPolicy, type TtlPolicyOptions } from './ttl.js';
import type { Policy } from './types.js';

/** A policy factory: validates its options (TypeError / RangeError) and builds the policy. */
export type PolicyFactory = (options?: unknown) => Policy;

/** What a replay knows before it starts, for policies that are told the trace in advance. */
export interface ReplayKnowledge {
  /** The whole trace, and the workload name the replay files its sessions under. */
  calls: readonly TraceCall[];
  workload: string;
  /** Each block's next use by call order; the replay moves its cursor to the call being served. */
  future: FutureUses;
}

/** One registered policy. */
export interface PolicyEntry {
  readonly create: PolicyFactory;
  /**
   * An offline bound, not a policy a server could run: 'future' reads the
   * future (the replay moves its cursor call by call), 'capacity' is
   * replayed with room for every block. Reports set bounds apart.
   */
  readonly bound?: 'future' | 'capacity';
  /** Options built from what the replay knows in advance; absent: the policy runs with its defaults. */
  readonly prepare?: (knowledge: ReplayKnowledge) => unknown;
}

/**
 * Policy name -> entry, in the order replays run them and reports list them.
 * Each factory checks its own options, so the casts only hand the caller's
 * value through.
 */
export const POLICIES: Readonly<Record<string, PolicyEntry>> = Object.freeze({
  lru: { create: (options?: unknown) => createLruPolicy(options as LruPolicyOptions) },
  lfu: { create: (options?: unknown) => createLfuPolicy(options as LfuPolicyOptions) },
  kvflow: {
    create: (options?: unknown) => createKvflowPolicy(options as KvflowPolicyOptions),
    // KVFlow is told the whole trace's step graph in advance; CacheSage learns online.
    prepare: ({ calls, workload }: ReplayKnowledge) =>
      deriveStepGraph(calls.map((c) => ({ session: c.session, agent: c.agent, workload }))),
  },
  ttl: { create: (options?: unknown) => createTtlPolicy(options as TtlPolicyOptions) },
  // CacheSage: the flagship policy (src/policies/cachesage).
  cachesage: { create: (options?: unknown) => createCacheSagePolicy(options as CacheSageOptions) },
  belady: {
    create: (options?: unknown) => createBeladyPolicy(options as BeladyPolicyOptions),
    bound: 'future',
    prepare: ({ future }: ReplayKnowledge) => ({ future }),
  },
  infinite: { create: (options?: unknown) => createInfinitePolicy(options as InfinitePolicyOptions), bound: 'capacity' },
});

/** The registered policy names, in registry order. */
export const POLICY_NAMES: readonly string[] = Object.freeze(Object.keys(POLICIES));

/** The policy a replay's "gap closed" starts from: what servers ship (prefix caching, LRU). */
export const BASELINE_POLICY = 'lru';
/** The policy a replay's "gap closed" reaches for: the offline optimum (MIN). */
export const OPTIMUM_POLICY = 'belady';

/**
 * The entry of a registered policy.
 *
 * @throws TypeError when `name` is not a string.
 * @throws RangeError when no policy has that name.
 */
export function policyEntry(name: string): PolicyEntry {
  if (typeof name !== 'string') throw new TypeError(`policy name must be a string, got ${describeValue(name)}`);
  // Own keys only: "toString" or "__proto__" must not reach Object.prototype.
  const entry = Object.hasOwn(POLICIES, name) ? POLICIES[name] : undefined;
  if (entry === undefined) throw new RangeError(`unknown policy ${JSON.stringify(name)} (known: ${POLICY_NAMES.join(', ')})`);
  return entry;
}

/** Whether a registered policy is an offline bound (false for unknown names). */
export function isBound(name: string): boolean {
  return Object.hasOwn(POLICIES, name) && POLICIES[name]!.bound !== undefined;
}

/**
 * Creates a registered policy by name.
 *
 * @throws TypeError when `name` is not a string, or the policy's options are malformed.
 * @throws RangeError when no policy has that name, or an option is out of range.
 */
export function createPolicy(name: string, options?: unknown): Policy {
  return policyEntry(name).create(options);
}

