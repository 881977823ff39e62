/**
 * The contract between the runtime and its policies: agent identity, the
 * events policies observe from both sides, the session model they read,
 * the four primitives they implement and the actions they return. The
 * runtime (above) implements the context and drives the policies; nothing
 * here depends on it.
 */
import type { BlockEvents } from '../blocks/types.js';
import type { BlockManagerView } from '../blocks/view.js';
import type { ComputeBackend } from '../compute/backend.js';
import type { SurvivalInput, SurvivalOutput } from '../compute/survival.js';

/** Agent identity, the coordinate the framework and the engine share. */
export interface AgentRef {
  workload: string;
  agent: string;
}

// ---------------------------------------------------------------- events

/** Events from the agent framework. `time` is in seconds on any monotonic clock. */
export type FrameworkEvent =
  | { type: 'session.start'; time: number; session: string; workload: string }
  | { type: 'step.start'; time: number; session: string; agent: AgentRef }
  | { type: 'step.end'; time: number; session: string; agent: AgentRef }
  | { type: 'tool.start'; time: number; session: string; agent: AgentRef; tool: string }
  | { type: 'tool.end'; time: number; session: string; agent: AgentRef; tool: string }
  | { type: 'session.end'; time: number; session: string };

/**
 * Events from the engine side, emitted by the runtime itself as it serves
 * the engine contract (policies observe them; engines call the methods).
 * `session`/`agent` are undefined for untagged requests; an admit's
 * `extendsPrevious`, `sharedWithPrevious` and `previousBlocks` when the
 * agent has no previous prompt in the session.
 */
export type EngineEvent =
  | {
      type: 'admit';
      time: number;
      requestId: number;
      session?: string;
      agent?: AgentRef;
      hashes: BigUint64Array;
      blockIds: Int32Array;
      numTokens: number;
      cachedDeviceTokens: number;
      loadedBlocks: number;
      /** Whether the prompt extends this agent's previous prompt in the session (absent: no previous one). */
      extendsPrevious?: boolean;
      /** Leading blocks the prompt shares with that previous prompt, and the previous prompt's length in blocks. */
      sharedWithPrevious?: number;
      previousBlocks?: number;
    }
  | { type: 'prefill.done'; time: number; requestId: number; session?: string; agent?: AgentRef; blockIds: Int32Array }
  | { type: 'decode'; time: number; requestId: number; session?: string; agent?: AgentRef; tokens: number }
  | { type: 'release'; time: number; requestId: number; session?: string; agent?: AgentRef; blockIds: Int32Array }
  /** The block manager's drained events (stored, removed, demoted, loaded). */
  | { type: 'blocks'; time: number; events: BlockEvents };

/** Where a session stood just before a step started, in the runtime's session model. */
export interface StepOrigin {
  /** The agent of the previous step; null before the session's first step. */
  agent: string | null;
  /** Whether a step was still running. */
  inStep: boolean;
  /** When the previous step ended (null: none ended yet). */
  stepEndedAt: number | null;
}

/**
 * Framework events as policies observe them. Steps carry where the session
 * came from; a step the runtime opened itself for a tagged engine call
 * (an engine-only integration reports no steps) is `implicit` and ends at
 * that call's release.
 */
export type ObservedFrameworkEvent =
  | Exclude<FrameworkEvent, { type: 'step.start' | 'step.end' }>
  | (Extract<FrameworkEvent, { type: 'step.start' }> & { implicit: boolean; previous: StepOrigin })
  | (Extract<FrameworkEvent, { type: 'step.end' }> & { implicit: boolean });

export type RuntimeEvent = ObservedFrameworkEvent | EngineEvent;

// ---------------------------------------------------------------- sessions

/**
 * A session as the runtime's session model holds it: the one record of its
 * lifecycle, which policies read through their context and never keep a
 * copy of.
 */
export interface SessionView {
  readonly name: string;
  readonly id: number;
  readonly workload: string;
  readonly workloadId: number;
  /** Started and not ended. */
  readonly live: boolean;
  /** The agent of the running or latest step; null before the first step. */
  readonly agent: string | null;
  readonly inStep: boolean;
  /** The running step was opened by an engine call, not a framework event. */
  readonly implicitStep: boolean;
  readonly stepStartedAt: number;
  readonly stepEndedAt: number | null;
  /** Time of the latest session.start, step.start, step.end, tool.start, tool.end or session.end. */
  readonly lastEventAt: number;
}

// ---------------------------------------------------------------- actions

/**
 * What a policy asks for. `demote` moves device blocks to host, `evict`
 * drops blocks from the cache, `prefetch` loads host blocks to the device
 * (parents first, never displacing a higher-scored block), `pin` keeps a
 * chain (the given leaf and its ancestors) on device until `unpin` with the
 * same key.
 */
export type Action =
  | { type: 'demote'; blockIds: Int32Array }
  | { type: 'evict'; blockIds: Int32Array }
  | { type: 'prefetch'; blockIds: Int32Array }
  | { type: 'pin'; key: string; leafBlockId: number }
  | { type: 'unpin'; key: string };

// ---------------------------------------------------------------- predict

export interface PredictQuery {
  session: string;
  /** Steps ahead (default: the policy's horizon). */
  horizon?: number;
}

export interface Prediction {
  session: string;
  workload: string;
  /** Agent the session is on (last step's agent), or null before its first step. */
  currentAgent: string | null;
  /** Next-agent distribution, agent name -> probability (END under '<end>'). */
  next: Record<string, number>;
  /** P(agent runs within `horizon` steps), agent name -> probability. */
  reuseWithin: Record<string, number>;
  /** P(the session is still alive after `horizon` steps). */
  alive: number;
  horizon: number;
  /** Expected seconds until the session's next step starts, when known. */
  secondsToNextStep: number | null;
}

// ---------------------------------------------------------------- policies

/** Interned ids the runtime hands to the block manager. */
export interface Registry {
  workloadId(workload: string): number;
  workloadName(id: number): string | undefined;
  /** 0..63: the agent's bit in block agent masks (agents past 64 share bit 63). */
  agentIndex(workload: string, agent: string): number;
  agentName(workloadId: number, index: number): string | undefined;
  sessionId(session: string): number;
  sessionName(id: number): string | undefined;
}

/** What all blocks of one score class have in common. */
export interface ScoreClass {
  id: number;
  /** -1: untagged or several workloads. */
  workload: number;
  /** Agents that used the blocks (bit per agent index). */
  agentMask: bigint;
  /** The set bits of agentMask, ascending. */
  agents: readonly number[];
  /** -1: shared by several sessions (or untagged). */
  session: number;
  /** floor(log2(depth + 1)): deep blocks cost more to recompute. */
  depthBucket: number;
  /** Blocks of a session's chain that its own agent has moved past. */
  stale: boolean;
  /** Cached blocks currently filed under the class. */
  blocks: number;
}

export interface PolicyContext {
  /** The block manager, to read: its actions go through act(). */
  readonly manager: BlockManagerView;
  readonly registry: Registry;
  /** Class descriptors; present when the runtime scores by class. */
  scoreClass(id: number): ScoreClass | undefined;
  /** Classes of a session (private ones) or of a workload's shared blocks. */
  classesOfSession(sessionId: number): Iterable<number>;
  classesOfWorkload(workloadId: number): Iterable<number>;
  /** Marks blocks of a session's chain stale for their agent (see cachesage.md). */
  markStale(blockIds: ArrayLike<number>): void;
  /** Asks the runtime to rescore these classes before the next eviction. */
  invalidate(classIds: Iterable<number>): void;
  /** The hashes of the last prompt a session's agent sent (its chain), if any. */
  lastPrompt(session: string, agent?: string): BigUint64Array | undefined;
  /** The runtime's record of a session, by name or id; undefined when it never started. */
  session(name: string): SessionView | undefined;
  sessionById(id: number): SessionView | undefined;
  /** Every session the runtime knows, in the order each first started. */
  sessions(): Iterable<SessionView>;
  /** The live sessions of a workload. */
  liveSessions(workloadId: number): Iterable<SessionView>;
  /** Bytes per KV block and the host->device bandwidth (bytes/s) for prefetch budgets. */
  readonly bytesPerBlock: number;
  readonly hostToDeviceBytesPerSecond: number;
  /** The compute backend batched work runs on (see {@link Policy.pendingWork}). */
  readonly backend: ComputeBackend;
}

/**
 * Batched survival work a policy defers to the runtime's compute backend:
 * the runtime runs `input` between steps (runtime.refresh) and hands the
 * result to `apply`.
 */
export interface SurvivalWork {
  input: SurvivalInput;
  apply(output: SurvivalOutput): void;
  /** Set when the policy was given its own survival backend: it computes instead of the runtime's. */
  compute?: (input: SurvivalInput) => SurvivalOutput;
}

/**
 * A policy plugs into any subset of the four primitives. One file per
 * policy under src/policies, registered by name in src/policies/registry.ts.
 */
export interface Policy {
  readonly name: string;
  /**
   * How this policy scores blocks for eviction: by score class (one score
   * per class, the cheap path), per block (for touched blocks), or not at all.
   */
  readonly scoring?: 'classes' | 'blocks';
  attach?(context: PolicyContext): void;
  /** observe: every framework and engine event, in order. */
  observe?(event: RuntimeEvent): void;
  /** score (class mode): out[i] = retention score of classIds[i]; lower is evicted first. */
  scoreClasses?(classIds: Int32Array, out: Float32Array): void;
  /** score (block mode): out[i] = retention score of blockIds[i]; lower is evicted first. */
  scoreBlocks?(blockIds: Int32Array, out: Float32Array): void;
  /** predict: next agent, reuse within a horizon, time to the next step. */
  predict?(query: PredictQuery): Prediction | null;
  /** act: between steps, the actions the policy wants now. */
  act?(now: number): Action[];
  /** Work batched for the compute backend, collected by runtime.refresh(); null when there is none. */
  pendingWork?(): SurvivalWork | null;
  /** Why a block has its score, from this policy's point of view. */
  explain?(blockId: number): Record<string, unknown> | null;
  /** What the policy learned, as JSON-compatible data, and its inverse. */
  snapshot?(): unknown;
  restore?(state: unknown): void;
}
