/**
 * Block metadata of the reference model, mirroring native/core/block_metadata:
 * the struct-of-arrays view indexed by block id, and the parent/child links
 * of the radix tree over committed blocks.
 *
 * Children are plain arrays here where the native core keeps intrusive
 * sibling lists; what must match is the order, most recently linked first.
 */
import { Tier, type BlockMetadataView, type TierCode } from '../types.js';
import type { NormalizedTags } from '../validate.js';

export const NO_BLOCK = -1;

/** Metadata for `numBlockIds` free blocks: no slot, untagged, no parent, classless. */
export function createBlockMetadata(numBlockIds: number): BlockMetadataView {
  const n = numBlockIds;
  return {
    tier: new Uint8Array(n),
    committed: new Uint8Array(n),
    slot: new Int32Array(n).fill(-1),
    refCount: new Int32Array(n),
    lastAccess: new Float64Array(n),
    accessCount: new Uint32Array(n),
    workload: new Int32Array(n).fill(-1),
    agentMask: new BigUint64Array(n),
    session: new Int32Array(n).fill(-1),
    depth: new Int32Array(n),
    cachedChildren: new Int32Array(n),
    deviceChildren: new Int32Array(n),
    hash: new BigUint64Array(n),
    parent: new Int32Array(n).fill(NO_BLOCK),
    score: new Float32Array(n),
    scoreClass: new Int32Array(n).fill(-1),
  };
}

/** Clears everything but tier and slot, which the caller owns. */
export function resetBlock(m: BlockMetadataView, id: number): void {
  m.committed[id] = 0;
  m.refCount[id] = 0;
  m.lastAccess[id] = 0;
  m.accessCount[id] = 0;
  m.workload[id] = -1;
  m.agentMask[id] = 0n;
  m.session[id] = -1;
  m.depth[id] = 0;
  m.hash[id] = 0n;
  m.parent[id] = NO_BLOCK;
  m.score[id] = 0;
  m.scoreClass[id] = -1;
}

function agentBit(agent: number): bigint {
  return agent < 0 ? 0n : 1n << BigInt(agent);
}

// A block used by several workloads or sessions is tagged -1 (shared); the
// first use (accessCount 0) keeps the tags set at allocation.
export function touchBlock(m: BlockMetadataView, id: number, clock: number, tags: NormalizedTags): void {
  m.lastAccess[id] = clock;
  const previousCount = m.accessCount[id]!;
  m.accessCount[id] = previousCount + 1;
  if (previousCount > 0) {
    if (m.workload[id] !== tags.workload) m.workload[id] = -1;
    if (m.session[id] !== tags.session) m.session[id] = -1;
  }
  m.agentMask[id] = m.agentMask[id]! | agentBit(tags.agent);
}

/**
 * Parent/child links between committed blocks. Keeps `parent`,
 * `cachedChildren` and `deviceChildren` in the metadata consistent with the
 * child lists: a block's cachedChildren is the length of its list, and its
 * deviceChildren counts the committed children on the device tier.
 */
export class TreeLinks {
  private readonly metadata: BlockMetadataView;
  /** Committed children of each block, most recently linked first. */
  private readonly children: number[][] = [];

  constructor(metadata: BlockMetadataView, numBlockIds: number) {
    this.metadata = metadata;
    for (let i = 0; i < numBlockIds; i++) this.children.push([]);
  }

  /** Committed children of `id`, most recently linked first. */
  childrenOf(id: number): readonly number[] {
    return this.children[id]!;
  }

  linkChild(parentId: number, child: number): void {
    const m = this.metadata;
    m.parent[child] = parentId;
    if (parentId === NO_BLOCK) return;
    m.cachedChildren[parentId]!++;
    if (m.tier[child] === Tier.Device) m.deviceChildren[parentId]!++;
    this.children[parentId]!.unshift(child);
  }

  unlinkChild(child: number): void {
    const m = this.metadata;
    const parentId = m.parent[child]!;
    if (parentId === NO_BLOCK) return;
    m.cachedChildren[parentId]!--;
    if (m.tier[child] === Tier.Device) m.deviceChildren[parentId]!--;
    const siblings = this.children[parentId]!;
    siblings.splice(siblings.indexOf(child), 1);
    m.parent[child] = NO_BLOCK;
  }

  /** Moves a block to another tier, keeping its parent's deviceChildren count. */
  setTier(id: number, to: TierCode): void {
    const m = this.metadata;
    const from = m.tier[id];
    m.tier[id] = to;
    const parentId = m.parent[id]!;
    if (m.committed[id] && parentId !== NO_BLOCK) {
      if (from === Tier.Device) m.deviceChildren[parentId]!--;
      if (to === Tier.Device) m.deviceChildren[parentId]!++;
    }
  }
}
