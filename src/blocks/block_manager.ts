import { nativeAddon, type NativeBlockManagerHandle } from './addon.js';
import { NativeScratch } from './native_scratch.js';
import {
  Tier,
  type AdmitResult,
  type BlockEvents,
  type BlockManagerLike,
  type BlockManagerOptions,
  type BlockMetadataView,
  type CopyPlan,
  type LookupResult,
  type RequestTags,
  type TierName,
} from './types.js';
import { checkInt } from '../util/check.js';
import {
  checkBlockIds,
  checkClassScores,
  checkHashes,
  checkIds,
  checkOptions,
  checkRecordEvents,
  checkRequestId,
  checkScoreClasses,
  checkScores,
  checkTags,
  checkTier,
  type NormalizedOptions,
} from './validate.js';

const EMPTY_HASHES = new BigUint64Array(0);
// Scratch sizes a manager starts with; they double when a result needs more.
const INITIAL_SCRATCH_BLOCKS = 4096;
const INITIAL_SCRATCH_EVENTS = 4096;

// Most drains find nothing: one shared, frozen empty answer each, rather
// than four or five fresh typed arrays per call on the engine's hot path.
const EMPTY_COPY_PLAN: CopyPlan = Object.freeze({
  srcTier: Object.freeze(new Uint8Array(0)),
  srcSlot: Object.freeze(new Int32Array(0)),
  dstTier: Object.freeze(new Uint8Array(0)),
  dstSlot: Object.freeze(new Int32Array(0)),
  stageStarts: Object.freeze(new Int32Array(0)),
});

function tierCode(tier: TierName): number {
  return tier === 'device' ? Tier.Device : Tier.Host;
}

/**
 * The paged KV block manager, backed by the native C++ core.
 *
 * Holds block metadata for a device tier and an optional host tier, a
 * content-hash index over full blocks (a radix tree of chained hashes), ref
 * counts that pin blocks of running requests, and eviction by scores the
 * caller supplies (lower goes first, ties broken by older last access; with
 * no scores it is LRU). Changes that move bytes queue a {@link CopyPlan} for a
 * data plane to execute; changes to the cache queue {@link BlockEvents}.
 *
 * Every argument is checked here first (TypeError / RangeError); misuse never
 * changes state. Running out of capacity is a normal `null` result.
 *
 * @example
 * ```ts
 * const manager = new BlockManager({ blockSize: 16, deviceBlocks: 1024, hostBlocks: 4096 });
 * const hashes = hashTokenBlocks(promptTokens, 16);
 * const admitted = manager.admit(1, hashes, promptTokens.length, { workload: 0, agent: 2, session: 7 });
 * if (admitted) {
 *   // run prefill from admitted.cachedDeviceTokens on admitted.blockTable ...
 *   manager.commit(1, hashes.length);
 *   manager.release(1);
 * }
 * ```
 */
export class BlockManager implements BlockManagerLike {
  readonly #native: NativeBlockManagerHandle;
  readonly #options: NormalizedOptions;
  readonly #metadata: BlockMetadataView;
  readonly #classScores: Float32Array;
  /** Where native calls write their results (native_scratch.ts). */
  readonly #scratch: NativeScratch;

  constructor(options: BlockManagerOptions) {
    this.#options = checkOptions(options);
    const { blockSize, bytesPerBlock, deviceBlocks, hostBlocks, maxClasses } = this.#options;
    this.#native = new (nativeAddon().NativeBlockManager)(blockSize, bytesPerBlock, deviceBlocks, hostBlocks, maxClasses);
    const { classScore, ...metadata } = this.#native.metadata() as unknown as BlockMetadataView & { classScore: Float32Array };
    this.#metadata = metadata;
    this.#classScores = classScore;
    this.#scratch = new NativeScratch(this.#native, 2 + 2 * Math.min(deviceBlocks, INITIAL_SCRATCH_BLOCKS), INITIAL_SCRATCH_EVENTS);
  }

  get blockSize(): number { return this.#options.blockSize; }
  get bytesPerBlock(): number { return this.#options.bytesPerBlock; }
  get deviceBlocks(): number { return this.#options.deviceBlocks; }
  get hostBlocks(): number { return this.#options.hostBlocks; }
  get numBlockIds(): number { return this.#options.deviceBlocks + this.#options.hostBlocks; }
  get maxClasses(): number { return this.#options.maxClasses; }
  /** Zero-copy view of the class scores; read-only by contract. */
  get classScores(): Float32Array { return this.#classScores; }
  /** Zero-copy views of the native metadata arrays; read-only by contract. */
  get metadata(): BlockMetadataView { return this.#metadata; }
  get clock(): number { return this.#native.clock(); }
  get numRequests(): number { return this.#native.numRequests(); }

  /** Longest cached prefix of a prompt given as full-block hashes. Changes nothing. */
  lookup(hashes: BigUint64Array): LookupResult {
    checkHashes(hashes, 'lookup: hashes');
    if (hashes.length > this.numBlockIds) {
      throw new RangeError(`lookup: ${hashes.length} blocks exceed the manager's capacity of ${this.numBlockIds} blocks`);
    }
    return this.#scratch.lookup(this.#native.lookup(hashes));
  }

  /**
   * Admits a request: pins its cached prefix, loads the host-tier part of it
   * to the device, and allocates device blocks for the rest, evicting by
   * score (demoting to host before dropping). `hashes` are the hashes of the
   * prompt's full blocks. Returns null, changing nothing, when the device
   * tier cannot hold the request now.
   */
  admit(requestId: number, hashes: BigUint64Array, numTokens: number, tags?: RequestTags): AdmitResult | null {
    checkRequestId(requestId, 'admit');
    checkHashes(hashes, 'admit: hashes');
    checkInt(numTokens, 'admit: numTokens', 1, 0x7fffffff);
    const t = checkTags(tags, 'admit');
    const fullBlocks = Math.floor(numTokens / this.blockSize);
    if (hashes.length > fullBlocks) {
      throw new RangeError(`admit: ${hashes.length} block hashes for ${numTokens} tokens (at most ${fullBlocks} full blocks)`);
    }
    // Room for the whole answer up front: it is written whatever its size.
    this.#scratch.ensureInts(2 + 2 * Math.min(Math.ceil(numTokens / this.blockSize), this.deviceBlocks));
    const code = this.#native.admit(requestId, hashes, numTokens, t.workload, t.agent, t.session);
    return code === null ? null : this.#scratch.admitted(code);
  }

  /**
   * Grows a request by `numTokens` (decoding), recording hashes of blocks
   * that became full. Returns the new block ids, or null, changing nothing,
   * when the device tier cannot hold them now.
   */
  append(requestId: number, numTokens: number, hashes: BigUint64Array = EMPTY_HASHES): Int32Array | null {
    checkRequestId(requestId, 'append');
    checkInt(numTokens, 'append: numTokens', 0, 0x7fffffff);
    checkHashes(hashes, 'append: hashes');
    const code = this.#native.append(requestId, numTokens, hashes);
    return code === null ? null : this.#scratch.ids(code);
  }

  /**
   * Commits the request's first `numBlocks` blocks to the hash index once the
   * engine has computed them. A block already cached under the same hash
   * replaces the request's copy. Returns the request's block ids after it.
   */
  commit(requestId: number, numBlocks: number): Int32Array {
    checkRequestId(requestId, 'commit');
    checkInt(numBlocks, 'commit: numBlocks', 0, 0x7fffffff);
    return this.#scratch.ids(this.#native.commit(requestId, numBlocks));
  }

  /** Unpins the request's blocks; committed ones stay cached until evicted. */
  release(requestId: number): void {
    checkRequestId(requestId, 'release');
    this.#native.release(requestId);
  }

  hasRequest(requestId: number): boolean {
    return this.#native.hasRequest(checkRequestId(requestId, 'hasRequest'));
  }

  requestBlocks(requestId: number): Int32Array {
    return this.#scratch.ids(this.#native.requestBlocks(checkRequestId(requestId, 'requestBlocks')));
  }

  /** Sets eviction scores of some blocks (finite; lower is evicted first). */
  setScores(blockIds: Int32Array, scores: Float32Array): void {
    checkIds(blockIds, 'setScores: blockIds');
    checkScores(scores, 'setScores: scores');
    if (blockIds.length !== scores.length) {
      throw new RangeError(`setScores: ${blockIds.length} block ids but ${scores.length} scores`);
    }
    for (let i = 0; i < blockIds.length; i++) {
      const id = blockIds[i]!;
      if (id < 0 || id >= this.numBlockIds) {
        throw new RangeError(`setScores: block id ${id} at index ${i} is out of range [0, ${this.numBlockIds})`);
      }
    }
    this.#native.setScores(blockIds, scores);
  }

  /** Sets every block's score at once: one float per block id. */
  setAllScores(scores: Float32Array): void {
    checkScores(scores, 'setAllScores: scores');
    if (scores.length !== this.numBlockIds) {
      throw new RangeError(`setAllScores: expected ${this.numBlockIds} scores (one per block id), got ${scores.length}`);
    }
    this.#native.setAllScores(scores);
  }

  /**
   * Files blocks under score classes (-1: none): a classed block is ordered
   * by its class's score instead of its own. A freed block starts classless.
   */
  setScoreClasses(blockIds: Int32Array, classes: Int32Array): void {
    checkScoreClasses(blockIds, classes, this.numBlockIds, this.maxClasses);
    this.#native.setScoreClasses(blockIds, classes);
  }

  /** Sets class scores: O(log classes) each, however many blocks a class holds. */
  setClassScores(classes: Int32Array, scores: Float32Array): void {
    checkClassScores(classes, scores, this.maxClasses);
    this.#native.setClassScores(classes, scores);
  }

  /** Evicts up to `count` blocks from a tier by score; device victims demote to host first. */
  evict(tier: TierName, count: number): number {
    checkTier(tier, 'evict');
    checkInt(count, 'evict: count', 0, 0x7fffffff);
    return this.#native.evict(tierCode(tier), count);
  }

  /** Moves evictable device blocks to the host tier; skips ineligible ones. */
  demote(blockIds: Int32Array): number {
    checkBlockIds(checkIds(blockIds, 'demote: blockIds'), this.#metadata.tier, 'demote');
    return this.#native.demote(blockIds);
  }

  /** Removes unpinned childless blocks from the cache; skips ineligible ones. */
  drop(blockIds: Int32Array): number {
    checkBlockIds(checkIds(blockIds, 'drop: blockIds'), this.#metadata.tier, 'drop');
    return this.#native.drop(blockIds);
  }

  /**
   * Loads host blocks to the device (prefetch), in order, parents first;
   * never evicts a device block that orders after the block being loaded.
   */
  load(blockIds: Int32Array): number {
    checkBlockIds(checkIds(blockIds, 'load: blockIds'), this.#metadata.tier, 'load');
    return this.#native.load(blockIds);
  }

  usedBlocks(tier: TierName): number {
    return this.#native.usedBlocks(tierCode(checkTier(tier, 'usedBlocks')));
  }

  evictableBlocks(tier: TierName): number {
    return this.#native.evictableBlocks(tierCode(checkTier(tier, 'evictableBlocks')));
  }

  pinnedDeviceBlocks(): number {
    return this.#native.pinnedDeviceBlocks();
  }

  /** Drains the copies queued since the last call, for a data plane to run. */
  takeCopyPlan(): CopyPlan {
    const code = this.#native.takeCopyPlan();
    return code === 0 ? EMPTY_COPY_PLAN : this.#scratch.copyPlan(code);
  }

  /** Drains the block events queued since the last call. */
  takeEvents(): BlockEvents {
    return this.#scratch.takeEvents(true);
  }

  /**
   * Drains the block events queued since the last call, as views valid
   * until the next drain (copy what you keep): no allocation beyond the
   * views, for callers that read the events at once.
   */
  takeEventViews(): BlockEvents {
    return this.#scratch.takeEvents(false);
  }

  /**
   * Whether block events are recorded from now on (default on). An owner
   * that reads none turns them off: nothing is queued, what was queued is
   * dropped, and no decision changes.
   */
  setRecordEvents(on: boolean): void {
    checkRecordEvents(on);
    this.#native.setRecordEvents(on);
  }

  checkInvariants(): string {
    return this.#native.checkInvariants();
  }
}
