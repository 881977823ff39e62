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
 * Slightly over ~400 lines, like block_manager.cpp: admit, append and
 * commit each check everything before changing anything and then follow
 * the native order step by step, which is what the property tests compare.
 *
 * The files of src/blocks/reference/ mirror those of native/core/: this one
 * holds lookup and the request lifecycle (admit, append, commit, release);
 * the state, scores, tier moves and eviction are block_manager_tiers.ts;
 * metadata and tree links, the copy plan, the event queue, the eviction
 * order and the invariant check live beside them.
 */
import {
  EventKind,
  Tier,
  type AdmitResult,
  type BlockEvents,
  type BlockManagerLike,
  type CopyPlan,
  type LookupResult,
  type RequestTags,
} from '../types.js';
import { checkHashes, checkRecordEvents, checkRequestId, checkTags, type NormalizedTags } from '../validate.js';
import { checkInt } from '../../util/check.js';
import { INT32_MAX, ReferenceBlockTiers } from './block_manager_tiers.js';
import { NO_BLOCK, resetBlock, touchBlock } from './block_metadata.js';
import { checkInvariants } from './invariants.js';

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
export class ReferenceBlockManager extends ReferenceBlockTiers implements BlockManagerLike {

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
      throw new RangeError(`admit: ${requestName(requestId)} is already admitted`);
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
          throw new RangeError(
            `commit: block hash at position ${i} of ${requestName(requestId)} repeats an earlier block ` +
              'of the same commit (inconsistent hashes)',
          );
        }
        inserting.add(r.hashes[i]!);
      }
      if (existing >= 0) {
        if (m.parent[existing] !== previous) {
          throw new RangeError(
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
      throw new RangeError(`release: unknown ${requestName(requestId)} (never admitted or already released)`);
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

  /** Returns and clears the copies recorded since the last call. */
  takeCopyPlan(): CopyPlan {
    return this.plan.take();
  }

  /** Returns and clears the events recorded since the last call. */
  takeEvents(): BlockEvents {
    return this.events.take();
  }

  /** Whether events are recorded from now on (off drops the queued ones); decisions never depend on it. */
  setRecordEvents(on: boolean): void {
    checkRecordEvents(on);
    this.events.setOn(on);
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
    if (r === undefined) throw new RangeError(`${op}: unknown ${requestName(requestId)}`);
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

  // ------------------------------------------------------------ bookkeeping

  private touch(id: number, tags: NormalizedTags): void {
    touchBlock(this.metadata, id, this.clockValue, tags);
  }
}
