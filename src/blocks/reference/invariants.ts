/**
 * Structural check of the reference model, mirroring
 * native/core/invariants.cpp.
 */
import { Tier, type BlockMetadataView } from '../types.js';
import { requestName, type RequestState } from './block_manager.js';
import { NO_BLOCK, type TreeLinks } from './block_metadata.js';

/** What the check reads of a ReferenceBlockManager; it changes none of it. */
export interface ReferenceState {
  readonly metadata: BlockMetadataView;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  readonly numBlockIds: number;
  readonly index: ReadonlyMap<bigint, number>;
  readonly freeIds: readonly number[];
  readonly freeDeviceSlots: readonly number[];
  readonly freeHostSlots: readonly number[];
  readonly tree: TreeLinks;
  readonly requests: ReadonlyMap<number, RequestState>;
}

/**
 * "" when every invariant holds, else a description of the first broken
 * one. Heap membership and the pinned-device count are derived rather
 * than stored here, so the native checks on those become the child-list
 * check.
 */
export function checkInvariants(s: ReferenceState): string {
  const m = s.metadata;
  const n = s.numBlockIds;
  const slotOwner = new Int32Array(n).fill(-1);
  const refs = new Int32Array(n);
  const cached = new Int32Array(n);
  const onDevice = new Int32Array(n);
  const idFree = new Uint8Array(n);
  for (const id of s.freeIds) {
    if (idFree[id]) return `block id ${id} is on the free list twice`;
    idFree[id] = 1;
    if (m.tier[id] !== Tier.Free) return `block id ${id} is on the free list but allocated`;
  }
  let device = 0;
  let host = 0;
  let committedCount = 0;
  for (let id = 0; id < n; id++) {
    const tier = m.tier[id]!;
    if (tier === Tier.Free) {
      if (!idFree[id]) return `block id ${id} leaked (free but not listed)`;
      continue;
    }
    const slot = m.slot[id]!;
    const tierCap = tier === Tier.Device ? s.deviceBlocks : s.hostBlocks;
    if (slot < 0 || slot >= tierCap) return `block ${id} has slot ${slot} outside its tier`;
    const slotKey = (tier === Tier.Device ? 0 : s.deviceBlocks) + slot;
    if (slotOwner[slotKey]! >= 0) return `blocks ${slotOwner[slotKey]} and ${id} share a slot`;
    slotOwner[slotKey] = id;
    if (m.refCount[id]! < 0) return `block ${id} has a negative ref count`;
    if (tier === Tier.Device) device++;
    if (tier === Tier.Host) host++;
    if (tier === Tier.Host && m.refCount[id]! > 0) return `host block ${id} is pinned outside an admission`;
    if (m.committed[id]) {
      committedCount++;
      if (s.index.get(m.hash[id]!) !== id) return `committed block ${id} is missing from the hash index`;
      const p = m.parent[id]!;
      if (p !== NO_BLOCK) {
        if (m.tier[p] === Tier.Free || !m.committed[p]) return `block ${id} has a parent that is not cached`;
        if (tier === Tier.Device && m.tier[p] !== Tier.Device) {
          return `device block ${id} has a parent off the device tier`;
        }
        cached[p]!++;
        if (tier === Tier.Device) onDevice[p]!++;
      }
    } else if (m.refCount[id] !== 1) {
      return `uncommitted block ${id} is not owned by exactly one request`;
    }
  }
  if (s.index.size !== committedCount) return 'hash index size differs from the number of committed blocks';
  if (device + s.freeDeviceSlots.length !== s.deviceBlocks) return 'device slots leaked or double-freed';
  if (host + s.freeHostSlots.length !== s.hostBlocks) return 'host slots leaked or double-freed';
  if (device + host + s.freeIds.length !== n) return 'block ids leaked';
  for (const slot of s.freeDeviceSlots) {
    if (slotOwner[slot]! >= 0) return `device slot ${slot} is free and used`;
  }
  for (const slot of s.freeHostSlots) {
    if (slotOwner[s.deviceBlocks + slot]! >= 0) return `host slot ${slot} is free and used`;
  }
  for (const [requestId, r] of s.requests) {
    for (let i = 0; i < r.blocks.length; i++) {
      const id = r.blocks[i]!;
      if (m.tier[id] !== Tier.Device) return `${requestName(requestId)} holds block ${id} off device`;
      refs[id]!++;
      if (i < r.committed) {
        if (!m.committed[id]) return `${requestName(requestId)} lost a committed block`;
        const expectParent = i === 0 ? NO_BLOCK : r.blocks[i - 1]!;
        if (m.parent[id] !== expectParent) return `${requestName(requestId)} holds a chain whose links disagree`;
      }
    }
  }
  for (let id = 0; id < n; id++) {
    if (m.tier[id] === Tier.Free) continue;
    if (refs[id] !== m.refCount[id]) {
      return `block ${id} has ref count ${m.refCount[id]} but ${refs[id]} request references`;
    }
    if (cached[id] !== m.cachedChildren[id] || onDevice[id] !== m.deviceChildren[id]) {
      return `block ${id} has stale child counts`;
    }
    const kids = s.tree.childrenOf(id);
    if (kids.length !== cached[id] || kids.some((child) => m.parent[child] !== id || !m.committed[child])) {
      return `block ${id} has a stale child list`;
    }
  }
  return '';
}
