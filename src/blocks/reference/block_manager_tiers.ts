/**
 * The reference block manager, second half, mirroring
 * native/core/block_manager_tiers.cpp: where blocks live and the order they
 * leave in. Scores and score classes order eviction; the explicit actions
 * (evict, demote, drop, load) and the steps every operation shares (pin,
 * allocate a device slot, evict one block, make host room, demote, load,
 * drop a subtree, free) move blocks between tiers. It holds the manager's
 * state; ReferenceBlockManager (block_manager.ts) adds the request
 * lifecycle on top, as block_manager.cpp does for the native class.
 */
import { EventKind, Tier, type BlockManagerOptions, type BlockMetadataView, type TierName } from '../types.js';
import {
  checkBlockIds,
  checkClassScores,
  checkIds,
  checkOptions,
  checkScoreClasses,
  checkScores,
  checkTier,
} from '../validate.js';
import { checkInt } from '../../util/check.js';
import type { RequestState } from './block_manager.js';
import { createBlockMetadata, NO_BLOCK, resetBlock, TreeLinks } from './block_metadata.js';
import { PendingCopyPlan } from './copy_plan.js';
import { EventQueue } from './events.js';
import { EvictionOrder } from './eviction_queue.js';

export const INT32_MAX = 0x7fffffff;

/** The state and the tier moves of the reference block manager (see ReferenceBlockManager). */
export abstract class ReferenceBlockTiers {
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  readonly numBlockIds: number;
  readonly maxClasses: number;
  /** Live metadata arrays; the same objects for the manager's lifetime. */
  readonly metadata: BlockMetadataView;
  readonly classScores: Float32Array;

  protected clockValue = 0;
  protected readonly index = new Map<bigint, number>();
  // LIFO stacks: the next item is the last element.
  protected readonly freeIds: number[] = [];
  protected readonly freeDeviceSlots: number[] = [];
  protected readonly freeHostSlots: number[] = [];
  protected readonly tree: TreeLinks;
  protected readonly order: EvictionOrder;
  protected readonly requests = new Map<number, RequestState>();
  protected readonly plan: PendingCopyPlan;
  protected readonly events = new EventQueue();

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

  // Every unpinned device block can be evicted, leaf first, because a
  // pinned block's ancestors are pinned too.
  protected deviceAvailable(): number {
    const used = this.deviceBlocks - this.freeDeviceSlots.length;
    return this.freeDeviceSlots.length + (used - this.pinnedDeviceBlocks());
  }

  protected allocateDeviceSlot(): number {
    if (this.freeDeviceSlots.length === 0) {
      const victim = this.order.deviceVictim();
      if (victim < 0) {
        throw new Error('internal: no device slot free and nothing evictable (admission check should have refused)');
      }
      this.evictOneFromDevice(victim);
    }
    return this.freeDeviceSlots.pop()!;
  }

  protected freeBlock(id: number): void {
    const m = this.metadata;
    if (m.tier[id] === Tier.Device) this.freeDeviceSlots.push(m.slot[id]!);
    if (m.tier[id] === Tier.Host) this.freeHostSlots.push(m.slot[id]!);
    m.tier[id] = Tier.Free;
    m.slot[id] = -1;
    resetBlock(m, id);
    this.freeIds.push(id);
  }

  protected pin(id: number): void {
    this.metadata.refCount[id]!++;
  }

  protected unpin(id: number): void {
    const m = this.metadata;
    if (m.refCount[id]! <= 0) throw new Error(`internal: ref count of block ${id} would go negative`);
    m.refCount[id]!--;
  }

  protected setScore(id: number, score: number): void {
    // Equality, not identity: like the native `==`, writing -0 over 0 is a
    // no-op, which keeps the stored sign bit identical.
    if (this.metadata.score[id] === score) return;
    this.metadata.score[id] = score;
  }

  // ------------------------------------------------------------ eviction

  protected evictOneFromDevice(victim: number): void {
    if (this.hostBlocks > 0 && this.makeHostRoomFor(victim)) {
      this.demoteBlock(victim);
    } else {
      this.dropSubtree(victim);
    }
  }

  // Never drops a host block that orders after the block being demoted:
  // the demotion would then cost more than it saves.
  protected makeHostRoomFor(victim: number): boolean {
    if (this.freeHostSlots.length > 0) return true;
    const hostVictim = this.order.hostVictim();
    if (hostVictim < 0 || !this.order.before(hostVictim, victim)) return false;
    this.dropBlock(hostVictim);
    return true;
  }

  protected demoteBlock(id: number): void {
    const m = this.metadata;
    const hostSlot = this.freeHostSlots.pop()!;
    const deviceSlot = m.slot[id]!;
    this.plan.record(Tier.Device, deviceSlot, Tier.Host, hostSlot);
    this.freeDeviceSlots.push(deviceSlot);
    m.slot[id] = hostSlot;
    this.tree.setTier(id, Tier.Host);
    this.events.record(EventKind.Demoted, id, m);
  }

  protected loadBlock(id: number, deviceSlot: number): void {
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
  protected dropSubtree(root: number): void {
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

  protected dropBlock(id: number): void {
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
}
