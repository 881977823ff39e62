/**
 * A read-only view of a block manager: what policies and other readers may
 * see (sizes, metadata, lookups, counts) and nothing that changes it. The
 * metadata arrays are shared zero-copy, read-only by contract.
 */
import type { BlockManagerLike } from './types.js';

export type BlockManagerView = Pick<
  BlockManagerLike,
  | 'blockSize'
  | 'bytesPerBlock'
  | 'deviceBlocks'
  | 'hostBlocks'
  | 'numBlockIds'
  | 'maxClasses'
  | 'metadata'
  | 'classScores'
  | 'clock'
  | 'numRequests'
  | 'lookup'
  | 'hasRequest'
  | 'requestBlocks'
  | 'usedBlocks'
  | 'evictableBlocks'
  | 'pinnedDeviceBlocks'
>;

/** A frozen view of `manager` that forwards only the reading members. */
export function readOnlyView(manager: BlockManagerLike): BlockManagerView {
  return Object.freeze({
    get blockSize() {
      return manager.blockSize;
    },
    get bytesPerBlock() {
      return manager.bytesPerBlock;
    },
    get deviceBlocks() {
      return manager.deviceBlocks;
    },
    get hostBlocks() {
      return manager.hostBlocks;
    },
    get numBlockIds() {
      return manager.numBlockIds;
    },
    get maxClasses() {
      return manager.maxClasses;
    },
    get metadata() {
      return manager.metadata;
    },
    get classScores() {
      return manager.classScores;
    },
    get clock() {
      return manager.clock;
    },
    get numRequests() {
      return manager.numRequests;
    },
    lookup: (hashes: BigUint64Array) => manager.lookup(hashes),
    hasRequest: (requestId: number) => manager.hasRequest(requestId),
    requestBlocks: (requestId: number) => manager.requestBlocks(requestId),
    usedBlocks: (tier: Parameters<BlockManagerLike['usedBlocks']>[0]) => manager.usedBlocks(tier),
    evictableBlocks: (tier: Parameters<BlockManagerLike['evictableBlocks']>[0]) => manager.evictableBlocks(tier),
    pinnedDeviceBlocks: () => manager.pinnedDeviceBlocks(),
  });
}
