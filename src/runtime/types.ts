/**
 * The runtime's API: its options, what engines pass to it and what it
 * returns. The vocabulary it shares with policies (events, actions,
 * predictions, the policy contract) lives in policies/types.ts.
 */
import type { BlockManager } from '../blocks/block_manager.js';
import type { BlockEvents, BlockManagerLike, BlockManagerOptions, CopyPlan } from '../blocks/types.js';
import type { BackendSelection, ComputeBackend } from '../compute/backend.js';
import type { Action, AgentRef, Policy } from '../policies/types.js';
import type { TimeWentBack } from './sessions.js';

/** A policy given by name, by name with options, or as an object. */
export type PolicySpec = string | { name: string; options?: unknown } | Policy;

export interface RuntimeOptions {
  /** The block manager to drive, or the options to create a native one. */
  blocks: BlockManager | BlockManagerLike | BlockManagerOptions;
  /** Policies in priority order (default: ['cachesage']). */
  policies?: readonly PolicySpec[];
  /**
   * How scores of several scoring policies combine: 'sum', or one weight per
   * scoring policy (a weighted sum). All scoring policies must score the
   * same unit (classes or blocks).
   */
  combine?: 'sum' | readonly number[];
  /** Execute act()'s actions against the block manager (default true) or only return them. */
  executeActions?: boolean;
  /** Host -> device bandwidth for prefetch budgets (default 50e9 bytes/s, PCIe 5 pinned). */
  hostToDeviceBytesPerSecond?: number;
  /** Seconds for engine calls that pass no time (default: performance.now()/1000). */
  now?: () => number;
  /**
   * The compute backend for batched survival and hit scoring: 'cpu'
   * (default), a backend object, or a selection from selectBackend().
   * `Runtime.create` also takes 'auto' and the other names.
   */
  backend?: 'cpu' | ComputeBackend | BackendSelection;
  /**
   * Run the policies' deferred work (runtime.refresh) at every act()
   * (default true): synchronously on a backend that can, else started in
   * the background and applied when it completes. False leaves it to the
   * caller, for replays that must refresh at fixed points.
   */
  autoRefresh?: boolean;
  /**
   * Keep at least `freeBlocks` device blocks free: at each refresh, when
   * fewer are free, the backend's hit scoring picks the lowest-ordered
   * evictable device leaves and they are demoted (dropped when there is no
   * host tier). Admissions then find room without evicting on their path.
   * Default: off, the manager evicts on demand.
   */
  reclaim?: { freeBlocks: number };
  /**
   * Keep a phase clock (Runtime.phaseSeconds): where the runtime's time goes,
   * by phase. Two clock reads per phase switch; default off, when it costs
   * nothing.
   */
  profile?: boolean;
  /**
   * A tier below the runtime's own, e.g. a remote store shared by replicas
   * (src/remote, RuntimeRemoteTier). The runtime stays the only one that
   * drains the block manager and hands the tier what it needs; default
   * none, when each hook costs one null check. Needs the engine to take
   * the copy plans (takeCopyPlan): attachDataPlane refuses.
   */
  remote?: RuntimeRemote | null;
}

/**
 * What the runtime tells a tier below its own. Calls are synchronous and
 * come in the block manager's order; a hook must not call the runtime.
 */
export interface RuntimeRemote {
  /** Each batch of block events the runtime drains, before policies observe it and before the copies of those calls run. */
  blockEvents(events: BlockEvents): void;
  /** Each copy plan takeCopyPlan hands out, before the engine runs it. */
  copyPlan(plan: CopyPlan): void;
  /**
   * After the manager admitted a request and before its events are drained:
   * the tier may fill and commit blocks after the cached prefix (through
   * the manager's commit). Returns how many it filled.
   */
  admitted(requestId: number, hashes: BigUint64Array, decision: AdmitDecision): number;
}

/** A prefetch the data plane finished: its blocks are on the device. */
export interface PrefetchCompletion {
  blockIds: Int32Array;
  /** act()'s time when it was issued; the runtime clock's when it completed. */
  issuedAt: number;
  completedAt: number;
}

/** What one runtime.refresh() did. */
export interface RefreshResult {
  /** Workloads whose survival tables were recomputed, in how many batches. */
  survivalWorkloads: number;
  survivalBatches: number;
  /** Device blocks demoted or dropped by reclaim. */
  reclaimed: number;
}

export interface AdmitRequest {
  requestId: number;
  /** Hashes of the prompt's full blocks, in order. */
  hashes: BigUint64Array;
  numTokens: number;
  session?: string;
  agent?: AgentRef;
  time?: number;
}

export interface AdmitDecision {
  /** Leading prompt tokens already on the device tier. */
  cachedDeviceTokens: number;
  /** Host-tier blocks loaded for this request (their copies are in the copy plan). */
  loadedBlocks: number;
  blockIds: Int32Array;
  /** Device slot of each block: the engine's block table. */
  blockTable: Int32Array;
  /**
   * Blocks after the device and host hits that a remote tier filled and
   * committed (RuntimeOptions.remote); absent without one.
   */
  remoteBlocks?: number;
}

export interface ActResult {
  /** The merged actions, in execution order. */
  actions: Action[];
  demoted: number;
  evicted: number;
  prefetched: number;
  pinned: number;
  unpinned: number;
}

export interface RuntimeStats {
  /** Well-formed events that did not fit the state, by reason; they changed nothing. */
  ignored: Record<string, number>;
  prefetch: { issued: number; used: number; wasted: number };
  admitted: number;
  refused: number;
  /** Refreshes run, and background refreshes that failed (the last error's message). */
  refresh: { runs: number; failed: number; lastError: string | null };
  /**
   * Framework events and tagged engine calls whose time was earlier than
   * their session's latest: applied as given, and counted here with the
   * largest step back and the last one named. Non-zero usually means two
   * clocks, e.g. events with explicit times and engine calls on the
   * runtime's own (RuntimeOptions.now).
   */
  timeWentBack: TimeWentBack;
}
