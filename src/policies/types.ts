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
  | { type: 'tool.start'; time: number; session: string; agent: AgentRef; tool: string; argsHash?: string }
  | {
      type: 'tool.end';
      time: number;
      session: string;
      agent: AgentRef;
      tool: string;
      /** The call's arguments, as its tool.start gave them (optional: memoization pairs by session otherwise). */
      argsHash?: string;
      /** Content hash of the result; a memo answers with it (and with `result`, when given). */
      resultHash?: string;
      result?: unknown;
    }
  | HintEvent
  | { type: 'session.end'; time: number; session: string };

/**
 * The advisory verbs frameworks send about KV they know will (or will not)
 * be reused: `share` keeps a prefix for every session of the workload,
 * `pin` keeps it for this session, `retain` keeps it for `ttlSeconds`,
 * `prefetch` loads it to the device, `demote` moves it to host, `unpin`
 * ends a share, pin or retain early. Every hold is bounded (hints policy:
 * a TTL and a per-workload cap).
 */
export const HINT_VERBS = ['share', 'pin', 'retain', 'prefetch', 'demote', 'unpin'] as const;
export type HintVerb = (typeof HINT_VERBS)[number];

/**
 * A framework's hint. The prefix it names is `hashes` (block hashes of a
 * prompt's leading blocks) or, when absent, the last prompt of `agent` in
 * the session.
 */
export interface HintEvent {
  type: 'hint';
  time: number;
  session: string;
  agent: AgentRef;
  verb: HintVerb;
  hashes?: BigUint64Array;
  ttlSeconds?: number;
}

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
  /** The arrays of `events` are valid during observe only: copy what you keep. */
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

// ---------------------------------------------------------------- engine scheduling

/** A request in the engine's waiting queue, as a policy sees it when the engine asks for an order. */
export interface WaitingRequest {
  session?: string;
  agent?: AgentRef;
  /** Full blocks of the prompt. */
  hashes: BigUint64Array;
  promptTokens: number;
  /** When it arrived, seconds. */
  arrival: number;
  /** Its place in arrival (FCFS) order, 0 first. */
  position: number;
  /** Engine iterations in which a request that arrived after it was admitted while it waited. */
  bypassed: number;
}

/** A prompt prefix the engine may compute ahead of its call, with compute it would otherwise leave idle. */
export interface SpeculativePrefill {
  session: string;
  agent: AgentRef;
  /** The leading blocks to have on device, parents first. */
  hashes: BigUint64Array;
}

/** What the engine offers a policy that prefills speculatively, once per iteration. */
export interface IdleCompute {
  /** Prompt tokens the iteration could still prefill within its token budget. */
  spareTokens: number;
  /** The runtime's predict (the first policy that answers), for the next agent of a session. */
  predict(query: PredictQuery): Prediction | null;
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
  /** Blocks of a session's chain that its own agent has moved past (dead ones included). */
  stale: boolean;
  /** Blocks the policy marked as read by nobody again (markDead): worth nothing. */
  dead: boolean;
  /**
   * Classes that differ only in depth bucket (same workload, agents,
   * session and staleness) share a family id while any of them lives: a
   * policy can compute what they have in common once.
   */
  family: number;
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
  /**
   * Marks blocks dead: the policy expects no session to read them again,
   * neither their own nor another (a class of its own, `dead`). A later
   * read makes them live again, as it does stale ones.
   */
  markDead(blockIds: ArrayLike<number>): void;
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

// ---------------------------------------------------------------- answers

/**
 * A policy's answer to a framework event, returned by Runtime.observe. A
 * denial refuses the event: the runtime neither applies it nor hands it to
 * any policy. A memo answers a tool.start with a result recorded earlier;
 * the event is applied, and the framework reports the tool.end at once.
 */
export type PolicyAnswer =
  | { type: 'deny'; policy: string; rule: string; reason: string }
  | {
      type: 'memo';
      policy: string;
      tool: string;
      argsHash: string;
      resultHash: string;
      result?: unknown;
      /** When the memoised call ended; the answer is this many seconds old. */
      recordedAt: number;
      ageSeconds: number;
    };

// ---------------------------------------------------------------- composition

/** The primitives a policy can implement; `answer` returns a {@link PolicyAnswer}, `salt` isolates a workload's blocks. */
export type Primitive = 'observe' | 'score' | 'predict' | 'act' | 'answer' | 'salt' | 'schedule' | 'speculate';

/**
 * How a policy composes with others on one runtime (src/policies/compose.ts
 * checks a list before a runtime starts):
 *
 * - `scores`: 'order' when its scores are an eviction order of their own
 *   (a time, a count, a survival value): it must be the only such scorer,
 *   since a sum of two orders means nothing; 'adjust' when it adds a
 *   penalty or bonus on the order's scale (it combines by sum with any
 *   scorer of the same unit). Absent: it scores nothing.
 * - `exclusive`: actions only one policy of a runtime may take, e.g.
 *   'answer:tool.start' (who answers a tool call from a memo), 'salt'
 *   (who salts block hashes), 'route' (who picks a replica).
 *
 * Actions of several policies merge (runtime/actions.ts): unpins, pins,
 * demotions, evictions, prefetches; a pin beats an evict. Answers merge
 * too: any denial wins, else the first other answer.
 */
export interface PolicyComposition {
  readonly primitives: readonly Primitive[];
  readonly scores?: 'order' | 'adjust';
  readonly exclusive?: readonly string[];
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
  /** How it composes with other policies; registered policies may state it in their registry entry instead. */
  readonly composition?: PolicyComposition;
  attach?(context: PolicyContext): void;
  /** observe: every framework and engine event, in order. */
  observe?(event: RuntimeEvent): void;
  /**
   * score (class mode): out[i] = retention score of classIds[i]; lower is
   * evicted first. Both arrays are valid during the call only (the
   * runtime's scratch): copy what you keep.
   */
  scoreClasses?(classIds: Int32Array, out: Float32Array): void;
  /** score (block mode): out[i] = retention score of blockIds[i]; lower is evicted first. */
  scoreBlocks?(blockIds: Int32Array, out: Float32Array): void;
  /** predict: next agent, reuse within a horizon, time to the next step. */
  predict?(query: PredictQuery): Prediction | null;
  /** act: between steps, the actions the policy wants now. */
  act?(now: number): Action[];
  /**
   * schedule (engine side): out[i] = priority of queue[i] (higher is
   * admitted first; the engine sums the policies' priorities and keeps
   * arrival order among equals). -Infinity holds a request out of this
   * iteration; +Infinity (which wins over -Infinity) puts it first. Engines
   * without the hook serve FCFS.
   */
  scoreWaiting?(queue: readonly WaitingRequest[], out: Float64Array, now: number): void;
  /** speculate (engine side): prompt prefixes to compute now with idle compute; cached blocks are skipped. */
  speculate?(now: number, idle: IdleCompute): SpeculativePrefill[];
  /** Work batched for the compute backend, collected by runtime.refresh(); null when there is none. */
  pendingWork?(): SurvivalWork | null;
  /** Why a block has its score, from this policy's point of view. */
  explain?(blockId: number): Record<string, unknown> | null;
  /**
   * answer: asked about a framework event before it is applied; a denial
   * refuses it, a memo answers a tool call. Null: no answer.
   */
  answer?(event: FrameworkEvent): PolicyAnswer | null;
  /**
   * salt: a secret mixed into every block hash of a workload whose blocks
   * must never be shared with another's (null: the workload shares). The
   * runtime salts at admit and decode.
   */
  saltOf?(workload: string): bigint | null;
  /** What the policy counted, for Runtime.info() (JSON-compatible). */
  info?(): Record<string, unknown>;
  /** What the policy learned, as JSON-compatible data, and its inverse. */
  snapshot?(): unknown;
  restore?(state: unknown): void;
}
