/**
 * The policy registry: every policy is created by name from this map, and
 * its entry says what a replay must know about it (whether it is an
 * offline bound, what it must be told about the trace in advance), so the
 * runtime, the simulator, the report and the CLI share one list and no code
 * outside src/policies names a policy. Adding a policy is one entry here.
 */
import { describeValue } from '../util/check.js';
import type { ToolDeclaration, TraceCall } from '../trace/format.js';
import { createBeladyPolicy, type BeladyPolicyOptions, type FutureUses } from './belady.js';
import { createCacheSagePolicy, type CacheSageOptions } from './cachesage/policy.js';
import { createInfinitePolicy, type InfinitePolicyOptions } from './infinite.js';
import { deriveStepGraph } from './kvflow_graph.js';
import { createKvflowPolicy, type KvflowPolicyOptions } from './kvflow.js';
import { createLfuPolicy, type LfuPolicyOptions } from './lfu.js';
import { createLruPolicy, type LruPolicyOptions } from './lru.js';
import { createTtlPolicy, type TtlPolicyOptions } from './ttl.js';
import { checkComposition, composedNames, derivedComposition } from './compose.js';
import { createHintsPolicy, HINTS_COMPOSITION, type HintsPolicyOptions } from './hints/policy.js';
import { createSafetyPolicy, SAFETY_COMPOSITION, type SafetyPolicyOptions } from './safety/policy.js';
import { createToolMemoPolicy, TOOL_MEMO_COMPOSITION, type ToolMemoPolicyOptions } from './tool_memo/policy.js';
import { createBatchShapingPolicy, type BatchShapingOptions } from './batch_shaping.js';
import { createFairnessPolicy, type FairnessOptions } from './fairness.js';
import { createSpeculativePrefillPolicy, type SpeculativePrefillOptions } from './speculative_prefill.js';
import type { Policy, PolicyComposition } from './types.js';

/** A policy factory: validates its options (TypeError / RangeError) and builds the policy. */
export type PolicyFactory = (options?: unknown) => Policy;

/** What a replay knows before it starts, for policies that are told the trace in advance. */
export interface ReplayKnowledge {
  /** The whole trace, and the workload name the replay files its sessions under. */
  calls: readonly TraceCall[];
  workload: string;
  /** Each block's next use by call order; the replay moves its cursor to the call being served. */
  future: FutureUses;
  /** The tools the trace declares (its header's `tools`), when it declares any. */
  tools?: Readonly<Record<string, ToolDeclaration>>;
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
  /** Which primitives it implements and how it combines with others (compose.ts). */
  readonly composition: PolicyComposition;
  /**
   * False for a policy that changes nothing a replay measures on its own
   * (it is meant to be composed: `lru+safety`); a default replay leaves it out.
   */
  readonly replayByDefault?: boolean;
}

/**
 * Policy name -> entry, in the order replays run them and reports list them.
 * Each factory checks its own options, so the casts only hand the caller's
 * value through.
 */
export const POLICIES: Readonly<Record<string, PolicyEntry>> = Object.freeze({
  // The block manager's own order (last access) is LRU: it scores nothing, so any scorer replaces it.
  lru: { create: (options?: unknown) => createLruPolicy(options as LruPolicyOptions), composition: { primitives: [] } },
  lfu: { create: (options?: unknown) => createLfuPolicy(options as LfuPolicyOptions), composition: { primitives: ['score'], scores: 'order' } },
  kvflow: {
    create: (options?: unknown) => createKvflowPolicy(options as KvflowPolicyOptions),
    // KVFlow is told the whole trace's step graph in advance; CacheSage learns online.
    prepare: ({ calls, workload }: ReplayKnowledge) =>
      deriveStepGraph(calls.map((c) => ({ session: c.session, agent: c.agent, workload }))),
    composition: { primitives: ['observe', 'score', 'act'], scores: 'order' },
  },
  ttl: { create: (options?: unknown) => createTtlPolicy(options as TtlPolicyOptions), composition: { primitives: ['observe', 'act'] } },
  // CacheSage: the flagship policy (src/policies/cachesage).
  cachesage: {
    create: (options?: unknown) => createCacheSagePolicy(options as CacheSageOptions),
    composition: { primitives: ['observe', 'score', 'predict', 'act'], scores: 'order' },
  },
  belady: {
    create: (options?: unknown) => createBeladyPolicy(options as BeladyPolicyOptions),
    bound: 'future',
    prepare: ({ future }: ReplayKnowledge) => ({ future }),
    composition: { primitives: ['observe', 'score'], scores: 'order' },
  },
  infinite: {
    create: (options?: unknown) => createInfinitePolicy(options as InfinitePolicyOptions),
    bound: 'capacity',
    composition: { primitives: [] },
  },
  // Composable policies: each file states its composition on the policy object too.
  safety: {
    create: (options?: unknown) => createSafetyPolicy(options as SafetyPolicyOptions),
    composition: SAFETY_COMPOSITION,
    replayByDefault: false,
  },
  hints: {
    create: (options?: unknown) => createHintsPolicy(options as HintsPolicyOptions),
    composition: HINTS_COMPOSITION,
    replayByDefault: false,
  },
  'tool-memo': {
    create: (options?: unknown) => createToolMemoPolicy(options as ToolMemoPolicyOptions),
    // A replay tells it what the trace declares; an undeclared tool is never memoised.
    prepare: ({ tools }: ReplayKnowledge) => (tools !== undefined ? { tools } : undefined),
    composition: TOOL_MEMO_COMPOSITION,
    replayByDefault: false,
  },
  // Engine-side policies: they order the waiting queue or use idle compute, and leave eviction to the
  // others. Replayed when named (`--policies lru,batch-shaping`, `cachesage+fairness`): a default
  // replay and the bench sweep stay as they were.
  'batch-shaping': {
    create: (options?: unknown) => createBatchShapingPolicy(options as BatchShapingOptions),
    composition: { primitives: ['schedule'] },
    replayByDefault: false,
  },
  'speculative-prefill': {
    create: (options?: unknown) => createSpeculativePrefillPolicy(options as SpeculativePrefillOptions),
    composition: { primitives: ['observe', 'speculate'] },
    replayByDefault: false,
  },
  fairness: {
    create: (options?: unknown) => createFairnessPolicy(options as FairnessOptions),
    composition: { primitives: ['observe', 'score', 'act', 'schedule'], scores: 'adjust' },
    replayByDefault: false,
  },
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

/** The registered policies a replay runs when it is given no list, in registry order. */
export const DEFAULT_REPLAY_POLICIES: readonly string[] = Object.freeze(POLICY_NAMES.filter((name) => POLICIES[name]!.replayByDefault !== false));

/**
 * How a policy composes: its own statement, else its registry entry's (by
 * name), else what its methods show (compose.ts).
 */
export function compositionOf(policy: Policy): PolicyComposition {
  if (policy.composition !== undefined) return policy.composition;
  if (Object.hasOwn(POLICIES, policy.name)) return POLICIES[policy.name]!.composition;
  return derivedComposition(policy);
}

/** A replay run of one policy entry: a registered name, or names joined by "+" (compose.ts). */
export interface ComposedEntry {
  /** The policies of the run, in priority order. */
  readonly names: readonly string[];
  /** The offline bound among them, if one is. */
  readonly bound?: 'future' | 'capacity';
  /** Each policy by name, or by name with the options its entry prepares from what the replay knows. */
  specs(knowledge: ReplayKnowledge): (string | { name: string; options: unknown })[];
}

/**
 * Reads a policy entry of a replay ("cachesage", "cachesage+ttl") and
 * checks that its policies exist and compose, by their registered
 * compositions (the runtime checks the policy objects again).
 *
 * @throws TypeError when `entry` is not a string.
 * @throws RangeError on an unknown name, an empty or repeated one, or two
 *   policies that cannot run together (naming both).
 */
export function composedEntry(entry: string): ComposedEntry {
  const names = composedNames(entry);
  const entries = names.map(policyEntry);
  checkComposition(names.map((name, i) => ({ name, composition: entries[i]!.composition })));
  const bounds = names.filter((_, i) => entries[i]!.bound !== undefined);
  if (bounds.length > 1) throw new RangeError(`cannot combine policies "${bounds[0]}" and "${bounds[1]}": both are offline bounds`);
  const bound = entries.find((e) => e.bound !== undefined)?.bound;
  return {
    names,
    ...(bound !== undefined ? { bound } : {}),
    specs: (knowledge) => names.map((name, i) => (entries[i]!.prepare ? { name, options: entries[i]!.prepare!(knowledge) } : name)),
  };
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

