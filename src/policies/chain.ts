/** Where a session's last prompt sits in the cache, for the policies that act on it. */
import type { BlockManagerLike } from '../blocks/types.js';

/** The cached part of a prompt's chain, in prompt order (parents first). */
export interface CachedChain {
  /** Leading blocks on the device tier. */
  device: Int32Array;
  /** The blocks after those, on the host tier. */
  host: Int32Array;
}

/**
 * Looks `hashes` up without touching anything. A prompt longer than the
 * manager's id space can never be cached whole, and `lookup` refuses it, so
 * only the prefix that fits is looked up.
 */
export function cachedChain(manager: Pick<BlockManagerLike, 'numBlockIds' | 'lookup'>, hashes: BigUint64Array): CachedChain {
  const fits = hashes.length > manager.numBlockIds ? hashes.subarray(0, manager.numBlockIds) : hashes;
  const found = manager.lookup(fits);
  return {
    device: found.blockIds.subarray(0, found.deviceBlocks),
    host: found.blockIds.subarray(found.deviceBlocks, found.deviceBlocks + found.hostBlocks),
  };
}
