// Longer than 400 lines: one class mirroring native/core/block_manager.cpp and block_manager_tiers.cpp (two files of one C++ class); a TypeScript class cannot share its private state across files.
/**
 * Plain TypeScript reference model of the paged KV block manager in
 * native/core/block_manager.cpp. It is the oracle for property tests: for any
 * operation sequence it returns the same values, block ids, slots, events,
 * copy plans, metadata and clock as the native manager.
 *
 * The data structures are deliberately simpler than the native ones so the
 * two implementations share as little as possible: a Map for the hash index,
 * child lists as arrays, and eviction candidates found by a linear scan with
 * eligibility derived from the metadata on every query (no heaps to keep in
 * sync). What must match exactly is the order of every state change, since
 * ids and slots come from LIFO stacks and the eviction order reads
 * lastAccess.
 *
 * The files of src/blocks/reference/ mirror those of native/core/: this one
 * holds admission, lookup, commit, append, release, scores, tier moves and
 * eviction; metadata and tree links, the copy plan, the event queue, the
 * eviction order and the invariant check live beside it.
 */
import {
  EventKind,
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
} from '../types.js';
import {
  checkBlockIds,
  checkClassScores,
  checkHashes,
  checkIds,
  checkOptions,
  checkRequestId,
  checkScoreClasses,
  checkScores,
  checkTags,
  checkTier,
  type NormalizedTags,
} from '../validate.js';
import { checkInt } from '../../util/check.js';
import { createBlockMetadata, NO_BLOCK, resetBlock, touchBlock, TreeLinks } from './block_metadata.js';
import { PendingCopyPlan } from './copy_plan.js';
import { EventQueue } from './events.js';
import { EvictionOrder } from './eviction_queue.js';
import { checkInvariants } from './invariants.js';

const INT32_MAX = 0x7fffffff;

export interface RequestState {
  blocks: number[];
  /** Known full-block hashes, in order. */
  hashes: bigint[];
  numTokens: number;
  /** Leading blocks committed. */
  committed: number;
  tags: NormalizedTags;
}

interface Match {
  deviceBlocks: number;
  hostBlocks: number;
  ids: number[];
}

export function requestName(requestId: number): string {
  return `request ${requestId}`;
}

/**
 * Reference implementation of {@link BlockManagerLike}, semantically
 * identical to the native block manager (see native/core/block_manager.h for
 * the model: two exclusive tiers, a radix tree of committed blocks keyed by
 * chained hashes, eviction by (score, lastAccess, id) ascending, LIFO free
 * stacks for ids and slots).
 *
 * Bad arguments throw TypeError / RangeError before any state changes;
 * misuse of request ids throws Error; running out of device capacity makes
 * `admit` / `append` return null with no state change.
 */
export class ReferenceBlockManager implements BlockManagerLike {
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  readonly numBlockIds: number;
  readonly maxClasses: number;
  /** Live metadata arrays; the same objects for the manager's lifetime. */
  readonly metadata: BlockMetadataView;
  readonly classScores: Float32Array;

  private clockValue = 0;
  private readonly index = new Map<bigint, number>();
  // LIFO stacks: the next item is the last element.
  private readonly freeIds: number[] = [];
  private readonly freeDeviceSlots: number[] = [];
  private readonly freeHostSlots: number[] = [];
  private readonly tree: TreeLinks;
  private readonly order: EvictionOrder;
  private readonly requests = new Map<number, RequestState>();
  private readonly plan: PendingCopyPlan;
  private readonly events = new EventQueue();

  /**
   * @throws TypeError / RangeError when `options` is not a valid
   *   configuration (deviceBlocks >= 1, hostBlocks >= 0, blockSize in
   *   [1, 2^20], at most 2^28 ids in all).
   */
  constructor(options: BlockManagerOptions) {
    const o = checkOptions(options);
    this.blockSize = o.blockSize;
    this.bytesPerBlock = o.bytesPerBlock;
    this.deviceBlocks = o.deviceBlocks;
    this.hostBlocks = o.hostBlocks;
    this.maxClasses = o.maxClasses;
    this.classScores = new Float32Array(o.maxClasses);
    const n = o.deviceBlocks + o.hostBlocks;
    this.numBlockIds = n;
    this.metadata = createBlockMetadata(n);
    for (let i = n - 1; i >= 0; i--) this.freeIds.push(i);
    for (let i = o.deviceBlocks - 1; i >= 0; i--) this.freeDeviceSlots.push(i);
    for (let i = o.hostBlocks - 1; i >= 0; i--) this.freeHostSlots.push(i);
    this.tree = new TreeLinks(this.metadata, n);
    this.order = new EvictionOrder(this.metadata, this.classScores, n);
    this.plan = new PendingCopyPlan(o.deviceBlocks);
  }

  /** Logical clock: ticks once per admit, append, commit and release. */
  get clock(): number {
    return this.clockValue;
  }

  /** Requests admitted and not yet released. */
  get numRequests(): number {
    return this.requests.size;
  }

  // ------------------------------------------------------------ requests

  /**
   * Longest cached prefix of `hashes` (full-block hashes in prompt order).
   * Touches no state.
   *
   * @throws RangeError when there are more hashes than block ids.
   */
  lookup(hashes: BigUint64Array): LookupResult {
    checkHashes(hashes, 'lookup: hashes');
    this.checkLookupCount(hashes.length);
    const hit = this.match(hashes);
    return { deviceBlocks: hit.deviceBlocks, hostBlocks: hit.hostBlocks, blockIds: Int32Array.from(hit.ids) };
  }

  /**
   * Admits a request of `numTokens` prompt tokens whose first full blocks
   * have the given hashes: pins the cached prefix, loads its host part to
   * the device, and allocates device blocks for the rest, evicting by score
   * (demoting to host before dropping).
   *
   * @returns null, with no state change, when the device tier cannot hold
   *   the request now.
   * @throws Error when the request id is already admitted.
   * @throws RangeError when there are more hashes than full blocks, or the
   *   request needs more blocks than the device tier holds.
   */
  admit(requestId: number, hashes: BigUint64Array, numTokens: number, tags?: RequestTags): AdmitResult | null {
    checkRequestId(requestId, 'admit');
    checkHashes(hashes, 'admit: hashes');
    checkInt(numTokens, 'admit: numTokens', 1, INT32_MAX);
    const t = checkTags(tags, 'admit');
    const fullBlocks = Math.floor(numTokens / this.blockSize);
    if (hashes.length > fullBlocks) {
      throw new RangeError(
        `admit: ${hashes.length} block hashes for ${numTokens} tokens (at most ${fullBlocks} full blocks)`,
      );
    }
    const needed = this.blocksFor(numTokens);
    if (needed > this.deviceBlocks) {
      throw new RangeError(
        `admit: ${requestName(requestId)} needs ${needed} blocks but the device tier holds ${this.deviceBlocks}`,
      );
    }
    // Argument checks come before state checks, as in the native manager.
    if (this.requests.has(requestId)) {
      throw new Error(`admit: ${requestName(requestId)} is already admitted`);
    }
    const hashList = Array.from(hashes);

    const m = this.metadata;
    const hit = this.match(hashList);
    let unpinnedHits = 0;
    for (let i = 0; i < hit.deviceBlocks; i++) {
      if (m.refCount[hit.ids[i]!] === 0) unpinnedHits++;
    }
    // Device hits that are unpinned now count as available but will be
    // pinned by this request, so they cannot make room for it.
    if (needed - hit.deviceBlocks > this.deviceAvailable() - unpinnedHits) return null;

    this.clockValue += 1;
    const hits = hit.deviceBlocks + hit.hostBlocks;
    // Pin every hit before loading any, so making room for one load never
    // evicts another block of this prefix.
    for (let i = 0; i < hits; i++) this.pin(hit.ids[i]!);
    const blocks: number[] = [];
    for (let i = 0; i < hit.deviceBlocks; i++) {
      const id = hit.ids[i]!;
      this.touch(id, t);
      blocks.push(id);
    }
    for (let i = hit.deviceBlocks; i < hits; i++) {
      const id = hit.ids[i]!;
      this.loadBlock(id, this.allocateDeviceSlot());
      this.touch(id, t);
      blocks.push(id);
    }
    for (let i = hits; i < needed; i++) {
      blocks.push(this.newDeviceBlock(i, i < hashList.length ? hashList[i]! : 0n, t));
    }
    this.requests.set(requestId, { blocks, hashes: hashList, numTokens, committed: hits, tags: t });

    return {
      cachedDeviceTokens: Math.min(numTokens, hit.deviceBlocks * this.blockSize),
      loadedBlocks: hit.hostBlocks,
      blockIds: Int32Array.from(blocks),
      blockTable: Int32Array.from(blocks, (id) => m.slot[id]!),
    };
  }

  /**
   * Grows a request by `numTokens` tokens and records the hashes of blocks
   * that became full, allocating device blocks as needed.
   *
   * @returns the ids appended to the request's block table (possibly none),
   *   or null, with no state change, when the device tier cannot hold them.
   * @throws Error when the request is unknown.
   * @throws RangeError when the request would outgrow the device tier or
   *   there would be more hashes than full blocks.
   */
  append(requestId: number, numTokens: number, hashes?: BigUint64Array): Int32Array | null {
    checkRequestId(requestId, 'append');
    checkInt(numTokens, 'append: numTokens', 0, INT32_MAX);
    const newHashes = hashes === undefined ? [] : Array.from(checkHashes(hashes, 'append: hashes'));
    const r = this.requestOrThrow(requestId, 'append');
    const total = r.numTokens + numTokens;
    if (total > INT32_MAX) {
      throw new RangeError(`append: ${requestName(requestId)} would exceed 2^31 - 1 tokens`);
    }
    if (total > this.deviceBlocks * this.blockSize) {
      throw new RangeError(
        `append: ${requestName(requestId)} would need more blocks than the device tier holds (${this.deviceBlocks})`,
      );
    }
    const fullBlocks = Math.floor(total / this.blockSize);
    if (r.hashes.length + newHashes.length > fullBlocks) {
      throw new RangeError(
        `append: ${r.hashes.length + newHashes.length} block hashes but only ${fullBlocks} full blocks`,
      );
    }
    const needed = this.blocksFor(total) - r.blocks.length;
    if (needed > this.deviceAvailable()) return null;

    this.clockValue += 1;
    const firstNewHash = r.hashes.length;
    r.hashes.push(...newHashes);
    for (let i = firstNewHash; i < r.blocks.length && i < r.hashes.length; i++) {
      this.metadata.hash[r.blocks[i]!] = r.hashes[i]!;
    }
    const added: number[] = [];
    for (let k = 0; k < needed; k++) {
      const position = r.blocks.length;
      const hash = position < r.hashes.length ? r.hashes[position]! : 0n;
      const id = this.newDeviceBlock(position, hash, r.tags);
      r.blocks.push(id);
      added.push(id);
    }
    r.numTokens = total;
    return Int32Array.from(added);
  }

  /**
   * Commits the request's first `numBlocks` blocks into the hash index. A
   * block whose hash is already cached is replaced in the request by the
   * cached block (shared, not duplicated); a cached copy on host takes over
   * the request's device slot, which already holds the same bytes.
   *
   * @returns the request's block ids after the commit.
   * @throws Error when the request is unknown or a hash is cached under a
   *   different prefix (collision or inconsistent hashes).
   * @throws RangeError when `numBlocks` exceeds the request's known hashes.
   */
  commit(requestId: number, numBlocks: number): Int32Array {
    checkRequestId(requestId, 'commit');
    checkInt(numBlocks, 'commit: numBlocks', 0, INT32_MAX);
    const r = this.requestOrThrow(requestId, 'commit');
    if (numBlocks > r.hashes.length) {
      throw new RangeError(
        `commit: ${numBlocks} blocks but only ${r.hashes.length} have known hashes in ${requestName(requestId)}`,
      );
    }
    if (numBlocks <= r.committed) return Int32Array.from(r.blocks);

    const m = this.metadata;
    // The whole chain is checked against the index as it is now, before any
    // change, so a collision leaves no partial commit behind.
    let previous = r.committed > 0 ? r.blocks[r.committed - 1]! : NO_BLOCK;
    const inserting = new Set<bigint>();
    for (let i = r.committed; i < numBlocks; i++) {
      const existing = this.find(r.hashes[i]!);
      if (existing < 0) {
        if (inserting.has(r.hashes[i]!)) {
          throw new Error(
            `commit: block hash at position ${i} of ${requestName(requestId)} repeats an earlier block ` +
              'of the same commit (inconsistent hashes)',
          );
        }
        inserting.add(r.hashes[i]!);
      }
      if (existing >= 0) {
        if (m.parent[existing] !== previous) {
          throw new Error(
            `commit: block hash at position ${i} of ${requestName(requestId)} is cached under a ` +
              'different prefix (hash collision or inconsistent hashes)',
          );
        }
        previous = existing;
      } else {
        previous = r.blocks[i]!;
      }
    }

    this.clockValue += 1;
    for (let i = r.committed; i < numBlocks; i++) {
      const own = r.blocks[i]!;
      const hash = r.hashes[i]!;
      const parentId = i > 0 ? r.blocks[i - 1]! : NO_BLOCK;
      const existing = this.find(hash);
      if (existing < 0) {
        m.hash[own] = hash;
        m.committed[own] = 1;
        this.index.set(hash, own);
        this.tree.linkChild(parentId, own);
        this.touch(own, r.tags);
        this.events.record(EventKind.Stored, own, m);
        continue;
      }
      if (m.tier[existing] === Tier.Device) {
        this.pin(existing);
        this.unpin(own);
        this.freeBlock(own);
      } else {
        this.freeHostSlots.push(m.slot[existing]!);
        const slot = m.slot[own]!;
        this.unpin(own);
        m.tier[own] = Tier.Free;
        m.slot[own] = -1;
        resetBlock(m, own);
        this.freeIds.push(own);
        m.slot[existing] = slot;
        this.tree.setTier(existing, Tier.Device);
        this.pin(existing);
        this.events.record(EventKind.Loaded, existing, m);
      }
      this.touch(existing, r.tags);
      r.blocks[i] = existing;
    }
    r.committed = numBlocks;
    return Int32Array.from(r.blocks);
  }

  /**
   * Ends a request: its committed blocks stay cached (evicted lazily), its
   * uncommitted blocks are freed.
   *
   * @throws Error when the request is unknown (never admitted or already
   *   released).
   */
  release(requestId: number): void {
    checkRequestId(requestId, 'release');
    const r = this.requests.get(requestId);
    if (r === undefined) {
      throw new Error(`release: unknown ${requestName(requestId)} (never admitted or already released)`);
    }
    this.clockValue += 1;
    const m = this.metadata;
    // Last block first, so a freed block's slot sits under its
    // predecessor's on the free stack.
    for (let k = r.blocks.length - 1; k >= 0; k--) {
      const id = r.blocks[k]!;
      m.lastAccess[id] = this.clockValue;
      this.unpin(id);
      if (!m.committed[id]) this.freeBlock(id);
    }
    this.requests.delete(requestId);
  }

  /** Whether `requestId` is admitted and not yet released. */
  hasRequest(requestId: number): boolean {
    checkRequestId(requestId, 'hasRequest');
    return this.requests.has(requestId);
  }

  /**
   * The request's block ids, in order.
   *
   * @throws Error when the request is unknown.
   */
  requestBlocks(requestId: number): Int32Array {
    checkRequestId(requestId, 'requestBlocks');
    return Int32Array.from(this.requestOrThrow(requestId, 'requestBlocks').blocks);
  }

  // ------------------------------------------------------------ scores

  /**
   * Sets the eviction score of each listed id (lower is evicted first). Ids
   * need not be allocated, but a free id's score is cleared when the id is
   * next allocated.
   *
   * @throws RangeError when an id is out of range, a score is not finite,
   *   or the arrays differ in length.
   */
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
    for (let i = 0; i < blockIds.length; i++) this.setScore(blockIds[i]!, scores[i]!);
  }

  /**
   * Sets every block id's score at once; `scores[id]` is the score of `id`.
   *
   * @throws RangeError when a score is not finite or there is not exactly
   *   one score per block id.
   */
  setAllScores(scores: Float32Array): void {
    checkScores(scores, 'setAllScores: scores');
    if (scores.length !== this.numBlockIds) {
      throw new RangeError(
        `setAllScores: expected ${this.numBlockIds} scores (one per block id), got ${scores.length}`,
      );
    }
    for (let id = 0; id < scores.length; id++) this.setScore(id, scores[id]!);
  }

  /**
   * Files blocks under score classes (-1: none): a classed block is ordered
   * by its class's score instead of its own.
   */
  setScoreClasses(blockIds: Int32Array, classes: Int32Array): void {
    checkScoreClasses(blockIds, classes, this.numBlockIds, this.maxClasses);
    for (let i = 0; i < blockIds.length; i++) this.metadata.scoreClass[blockIds[i]!] = classes[i]!;
  }

  /** Sets the scores of classes. */
  setClassScores(classes: Int32Array, scores: Float32Array): void {
    checkClassScores(classes, scores, this.maxClasses);
    for (let i = 0; i < classes.length; i++) this.classScores[classes[i]!] = scores[i]!;
  }

  // ------------------------------------------------------------ actions

  /**
   * Evicts up to `count` blocks of a tier in eviction order. On the device
   * tier each victim is demoted to host when there is (or can be made) room,
   * else dropped together with its host descendants; that counts as one.
   *
   * @returns how many victims were evicted.
   */
  evict(tier: TierName, count: number): number {
    const t = checkTier(tier, 'evict');
    checkInt(count, 'evict: count', 0, INT32_MAX);
    let moved = 0;
    if (t === 'device') {
      for (let victim = this.order.deviceVictim(); moved < count && victim >= 0; victim = this.order.deviceVictim()) {
        this.evictOneFromDevice(victim);
        moved++;
      }
    } else {
      for (let victim = this.order.hostVictim(); moved < count && victim >= 0; victim = this.order.hostVictim()) {
        this.dropBlock(victim);
        moved++;
      }
    }
    return moved;
  }

  /**
   * Demotes the listed device blocks to host, skipping those not evictable
   * now and those for which no host slot can be freed without dropping a
   * host block that orders after them.
   *
   * @returns how many blocks moved.
   * @throws RangeError when an id is out of range or not allocated.
   */
  demote(blockIds: Int32Array): number {
    checkIds(blockIds, 'demote: blockIds');
    checkBlockIds(blockIds, this.metadata.tier, 'demote');
    let moved = 0;
    for (const id of blockIds) {
      if (!this.order.deviceEvictable(id) || this.hostBlocks === 0) continue;
      if (!this.makeHostRoomFor(id)) continue;
      this.demoteBlock(id);
      moved++;
    }
    return moved;
  }

  /**
   * Drops the listed cached blocks (either tier), skipping pinned ones,
   * uncommitted ones and those that other cached blocks extend.
   *
   * @returns how many blocks were dropped.
   * @throws RangeError when an id is out of range or not allocated.
   */
  drop(blockIds: Int32Array): number {
    checkIds(blockIds, 'drop: blockIds');
    checkBlockIds(blockIds, this.metadata.tier, 'drop');
    const m = this.metadata;
    let moved = 0;
    for (const id of blockIds) {
      if (m.tier[id] === Tier.Free || !m.committed[id] || m.refCount[id] !== 0 || m.cachedChildren[id] !== 0) {
        continue;
      }
      this.dropBlock(id);
      moved++;
    }
    return moved;
  }

  /**
   * Loads the listed host blocks to the device, skipping those whose parent
   * is not on the device. With no free device slot, a device block is
   * evicted only if it orders before the loaded block and is not its parent.
   *
   * @returns how many blocks moved.
   * @throws RangeError when an id is out of range or not allocated.
   */
  load(blockIds: Int32Array): number {
    checkIds(blockIds, 'load: blockIds');
    checkBlockIds(blockIds, this.metadata.tier, 'load');
    const m = this.metadata;
    let moved = 0;
    for (const id of blockIds) {
      if (m.tier[id] !== Tier.Host) continue;
      const parentId = m.parent[id]!;
      if (parentId !== NO_BLOCK && m.tier[parentId] !== Tier.Device) continue;
      if (this.freeDeviceSlots.length === 0) {
        const victim = this.order.deviceVictim();
        if (victim < 0 || victim === parentId || !this.order.before(victim, id)) continue;
        this.evictOneFromDevice(victim);
      }
      this.loadBlock(id, this.allocateDeviceSlot());
      moved++;
    }
    return moved;
  }

  /** Occupied slots of a tier. */
  usedBlocks(tier: TierName): number {
    if (checkTier(tier, 'usedBlocks') === 'device') return this.deviceBlocks - this.freeDeviceSlots.length;
    return this.hostBlocks - this.freeHostSlots.length;
  }

  /** Blocks that eviction of that tier could take right now. */
  evictableBlocks(tier: TierName): number {
    const device = checkTier(tier, 'evictableBlocks') === 'device';
    let count = 0;
    for (let id = 0; id < this.numBlockIds; id++) {
      if (device ? this.order.deviceEvictable(id) : this.order.hostEvictable(id)) count++;
    }
    return count;
  }

  /** Device blocks held by at least one request. */
  pinnedDeviceBlocks(): number {
    const m = this.metadata;
    let count = 0;
    for (let id = 0; id < this.numBlockIds; id++) {
      if (m.tier[id] === Tier.Device && m.refCount[id]! > 0) count++;
    }
    return count;
  }

  /** Returns and clears the copies recorded since the last call. */
  takeCopyPlan(): CopyPlan {
    return this.plan.take();
  }

  /** Returns and clears the events recorded since the last call. */
  takeEvents(): BlockEvents {
    return this.events.take();
  }

  /**
   * Full structural check, mirroring the native checkInvariants(): "" when
   * every invariant holds, else a description of the first broken one.
   */
  checkInvariants(): string {
    return checkInvariants({
      metadata: this.metadata,
      deviceBlocks: this.deviceBlocks,
      hostBlocks: this.hostBlocks,
      numBlockIds: this.numBlockIds,
      index: this.index,
      freeIds: this.freeIds,
      freeDeviceSlots: this.freeDeviceSlots,
      freeHostSlots: this.freeHostSlots,
      tree: this.tree,
      requests: this.requests,
    });
  }

  // ------------------------------------------------------------ internals

  private requestOrThrow(requestId: number, op: string): RequestState {
    const r = this.requests.get(requestId);
    if (r === undefined) throw new Error(`${op}: unknown ${requestName(requestId)}`);
    return r;
  }

  private checkLookupCount(count: number): void {
    if (count > this.numBlockIds) {
      throw new RangeError(
        `lookup: ${count} blocks exceed the manager's capacity of ${this.numBlockIds} blocks`,
      );
    }
  }

  private blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  private find(hash: bigint): number {
    return this.index.get(hash) ?? -1;
  }

  // Counts hits by the tier each one is on, in prompt order; for chained
  // hashes the device hits lead because the device set is closed under
  // "parent of".
  private match(hashes: ArrayLike<bigint>): Match {
    const m = this.metadata;
    const result: Match = { deviceBlocks: 0, hostBlocks: 0, ids: [] };
    let previous = NO_BLOCK;
    for (let i = 0; i < hashes.length; i++) {
      const id = this.find(hashes[i]!);
      // Only a block under the previous hit extends the match.
      if (id < 0 || m.parent[id] !== previous) break;
      previous = id;
      result.ids.push(id);
      if (m.tier[id] === Tier.Device) result.deviceBlocks++;
      else result.hostBlocks++;
    }
    return result;
  }

  // Every unpinned device block can be evicted, leaf first, because a
  // pinned block's ancestors are pinned too.
  private deviceAvailable(): number {
    const used = this.deviceBlocks - this.freeDeviceSlots.length;
    return this.freeDeviceSlots.length + (used - this.pinnedDeviceBlocks());
  }

  private allocateDeviceSlot(): number {
    if (this.freeDeviceSlots.length === 0) {
      const victim = this.order.deviceVictim();
      if (victim < 0) {
        throw new Error('internal: no device slot free and nothing evictable (admission check should have refused)');
      }
      this.evictOneFromDevice(victim);
    }
    return this.freeDeviceSlots.pop()!;
  }

  // The slot is allocated before the id is popped: allocation may evict and
  // push freed ids, and the native manager does it in this order.
  private newDeviceBlock(position: number, hash: bigint, tags: NormalizedTags): number {
    const slot = this.allocateDeviceSlot();
    const id = this.freeIds.pop()!;
    const m = this.metadata;
    m.tier[id] = Tier.Device;
    m.slot[id] = slot;
    m.committed[id] = 0;
    m.refCount[id] = 1;
    m.depth[id] = position;
    m.hash[id] = hash;
    m.parent[id] = NO_BLOCK;
    m.workload[id] = tags.workload;
    m.session[id] = tags.session;
    m.agentMask[id] = 0n;
    m.accessCount[id] = 0;
    // A score or class set on the id while it was free does not carry over.
    m.score[id] = 0;
    m.scoreClass[id] = -1;
    this.touch(id, tags);
    return id;
  }

  private freeBlock(id: number): void {
    const m = this.metadata;
    if (m.tier[id] === Tier.Device) this.freeDeviceSlots.push(m.slot[id]!);
    if (m.tier[id] === Tier.Host) this.freeHostSlots.push(m.slot[id]!);
    m.tier[id] = Tier.Free;
    m.slot[id] = -1;
    resetBlock(m, id);
    this.freeIds.push(id);
  }

  private pin(id: number): void {
    this.metadata.refCount[id]!++;
  }

  private unpin(id: number): void {
    const m = this.metadata;
    if (m.refCount[id]! <= 0) throw new Error(`internal: ref count of block ${id} would go negative`);
    m.refCount[id]!--;
  }

  private setScore(id: number, score: number): void {
    // Equality, not identity: like the native `==`, writing -0 over 0 is a
    // no-op, which keeps the stored sign bit identical.
    if (this.metadata.score[id] === score) return;
    this.metadata.score[id] = score;
  }

  // ------------------------------------------------------------ eviction

  private evictOneFromDevice(victim: number): void {
    if (this.hostBlocks > 0 && this.makeHostRoomFor(victim)) {
      this.demoteBlock(victim);
    } else {
      this.dropSubtree(victim);
    }
  }

  // Never drops a host block that orders after the block being demoted:
  // the demotion would then cost more than it saves.
  private makeHostRoomFor(victim: number): boolean {
    if (this.freeHostSlots.length > 0) return true;
    const hostVictim = this.order.hostVictim();
    if (hostVictim < 0 || !this.order.before(hostVictim, victim)) return false;
    this.dropBlock(hostVictim);
    return true;
  }

  private demoteBlock(id: number): void {
    const m = this.metadata;
    const hostSlot = this.freeHostSlots.pop()!;
    const deviceSlot = m.slot[id]!;
    this.plan.record(Tier.Device, deviceSlot, Tier.Host, hostSlot);
    this.freeDeviceSlots.push(deviceSlot);
    m.slot[id] = hostSlot;
    this.tree.setTier(id, Tier.Host);
    this.events.record(EventKind.Demoted, id, m);
  }

  private loadBlock(id: number, deviceSlot: number): void {
    const m = this.metadata;
    const hostSlot = m.slot[id]!;
    this.plan.record(Tier.Host, hostSlot, Tier.Device, deviceSlot);
    this.freeHostSlots.push(hostSlot);
    m.slot[id] = deviceSlot;
    this.tree.setTier(id, Tier.Device);
    this.events.record(EventKind.Loaded, id, m);
  }

  // Host descendants of a dropped block become unreachable, so they go
  // first: post-order, most recently linked child first. Iterative because
  // chains can be far deeper than the call stack.
  private dropSubtree(root: number): void {
    const stack = [root];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const first = this.tree.childrenOf(top)[0];
      if (first !== undefined) {
        stack.push(first);
      } else {
        stack.pop();
        this.dropBlock(top);
      }
    }
  }

  private dropBlock(id: number): void {
    const m = this.metadata;
    if (m.refCount[id] !== 0 || m.cachedChildren[id] !== 0) {
      throw new Error(`internal: dropping block ${id} that is pinned or has children`);
    }
    if (m.committed[id]) {
      this.index.delete(m.hash[id]!);
      this.tree.unlinkChild(id);
    }
    this.events.record(EventKind.Removed, id, m);
    this.freeBlock(id);
  }

  // ------------------------------------------------------------ bookkeeping

  private touch(id: number, tags: NormalizedTags): void {
    touchBlock(this.metadata, id, this.clockValue, tags);
  }
}
