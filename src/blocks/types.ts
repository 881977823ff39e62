/**
 * Types shared by the native block manager and its TypeScript reference
 * model. Both implement {@link BlockManagerLike} with identical results.
 */

/** Numeric tier codes, as stored in {@link BlockMetadataView.tier}. */
export const Tier = { Free: 0, Device: 1, Host: 2 } as const;
export type TierCode = (typeof Tier)[keyof typeof Tier];
/** The two tiers that hold blocks. */
export type TierName = 'device' | 'host';

/** Numeric event codes, as returned by `takeEvents()`. */
export const EventKind = { Stored: 1, Removed: 2, Demoted: 3, Loaded: 4 } as const;
export type EventKindCode = (typeof EventKind)[keyof typeof EventKind];

/** Largest agent index: agents are bits of a 64-bit mask. */
export const MAX_AGENT = 63;

export interface BlockManagerOptions {
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** KV bytes per block (default 0: metadata only). */
  bytesPerBlock?: number;
  /** Device-tier capacity in blocks (at least 1). */
  deviceBlocks: number;
  /** Host-tier capacity in blocks (default 0: no host tier). */
  hostBlocks?: number;
  /** Score classes available (default 65536; 0: blocks are scored singly only). */
  maxClasses?: number;
}

/** Who a request belongs to. Omitted fields mean untagged (-1). */
export interface RequestTags {
  workload?: number;
  /** 0..63: the bit this request sets in each block's agent mask. */
  agent?: number;
  session?: number;
}

export interface LookupResult {
  /** Leading matched blocks on the device tier. */
  deviceBlocks: number;
  /** Matched blocks after those, on the host tier. */
  hostBlocks: number;
  /** Matched block ids in prompt order. */
  blockIds: Int32Array;
}

export interface AdmitResult {
  /** Leading prompt tokens whose KV was already on the device tier. */
  cachedDeviceTokens: number;
  /** Host-tier blocks loaded to the device for this request (in the copy plan). */
  loadedBlocks: number;
  /** Block id of each block of the request, in order. */
  blockIds: Int32Array;
  /** Device slot of each block of the request: the engine's block table. */
  blockTable: Int32Array;
}

/**
 * Copies to run, in order: copy i moves the block in (srcTier[i],
 * srcSlot[i]) to (dstTier[i], dstSlot[i]). Copies of one stage
 * [stageStarts[k], stageStarts[k+1]) touch no slot twice in a conflicting
 * way, so a backend may run them in parallel; stages run in order.
 */
export interface CopyPlan {
  srcTier: Uint8Array;
  srcSlot: Int32Array;
  dstTier: Uint8Array;
  dstSlot: Int32Array;
  stageStarts: Int32Array;
}

/** What happened to blocks since the last `takeEvents()`, in order. */
export interface BlockEvents {
  kind: Uint8Array;
  block: Int32Array;
  hash: BigUint64Array;
  /** Tier after the event (Free for Removed). */
  tier: Uint8Array;
}

/**
 * Struct-of-arrays block metadata indexed by block id. Read-only by
 * contract: writes bypass the manager's bookkeeping. Scores change only
 * through `setScores` / `setAllScores`.
 */
export interface BlockMetadataView {
  tier: Uint8Array;
  committed: Uint8Array;
  slot: Int32Array;
  refCount: Int32Array;
  lastAccess: Float64Array;
  accessCount: Uint32Array;
  workload: Int32Array;
  agentMask: BigUint64Array;
  session: Int32Array;
  depth: Int32Array;
  cachedChildren: Int32Array;
  deviceChildren: Int32Array;
  hash: BigUint64Array;
  parent: Int32Array;
  score: Float32Array;
  /** -1: ordered by `score`; else by the manager's `classScores[scoreClass]`. */
  scoreClass: Int32Array;
}

export const METADATA_FIELDS = [
  'tier', 'committed', 'slot', 'refCount', 'lastAccess', 'accessCount', 'workload', 'agentMask',
  'session', 'depth', 'cachedChildren', 'deviceChildren', 'hash', 'parent', 'score', 'scoreClass',
] as const satisfies readonly (keyof BlockMetadataView)[];

/** The block manager's API; see native/core/block_manager.h for semantics. */
export interface BlockManagerLike {
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  /** deviceBlocks + hostBlocks: the length of every metadata array. */
  readonly numBlockIds: number;
  readonly maxClasses: number;
  readonly metadata: BlockMetadataView;
  /** Score of each class (length maxClasses); read-only by contract. */
  readonly classScores: Float32Array;
  /** Logical clock: ticks once per admit, append, commit and release. */
  readonly clock: number;
  readonly numRequests: number;

  lookup(hashes: BigUint64Array): LookupResult;
  admit(requestId: number, hashes: BigUint64Array, numTokens: number, tags?: RequestTags): AdmitResult | null;
  append(requestId: number, numTokens: number, hashes?: BigUint64Array): Int32Array | null;
  commit(requestId: number, numBlocks: number): Int32Array;
  release(requestId: number): void;
  hasRequest(requestId: number): boolean;
  requestBlocks(requestId: number): Int32Array;

  setScores(blockIds: Int32Array, scores: Float32Array): void;
  setAllScores(scores: Float32Array): void;
  /**
   * Files blocks under score classes (-1: none). A classed block is ordered
   * by its class's score instead of its own; a freed block starts classless.
   */
  setScoreClasses(blockIds: Int32Array, classes: Int32Array): void;
  /** Sets class scores: O(log classes) each, however many blocks a class holds. */
  setClassScores(classes: Int32Array, scores: Float32Array): void;

  evict(tier: TierName, count: number): number;
  demote(blockIds: Int32Array): number;
  drop(blockIds: Int32Array): number;
  load(blockIds: Int32Array): number;

  usedBlocks(tier: TierName): number;
  evictableBlocks(tier: TierName): number;
  pinnedDeviceBlocks(): number;

  takeCopyPlan(): CopyPlan;
  takeEvents(): BlockEvents;
  /**
   * takeEvents as views valid until the next drain (copy what you keep);
   * optional: callers fall back to takeEvents.
   */
  takeEventViews?(): BlockEvents;
  /**
   * Whether block events are recorded from now on (default on); off drops
   * the queued ones and queues none, for an owner that reads none.
   * Decisions never depend on it. Optional: managers without it always record.
   */
  setRecordEvents?(on: boolean): void;
  /** "" when every invariant holds, else the first broken one. O(blocks). */
  checkInvariants(): string;
}
