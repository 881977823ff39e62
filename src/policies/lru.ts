/**
 * LRU: the prefix-cache eviction of vLLM and SGLang, the "unmodified
 * serving stack" every other policy is measured against.
 */
import type { Policy } from './types.js';
import { checkOptionsObject } from '../util/check.js';

/** LRU takes no options; the type exists so every factory has the same shape. */
export type LruPolicyOptions = Record<string, never>;

/**
 * Creates the LRU policy. It scores nothing: blocks stay classless with
 * score 0, so the block manager's own order (effective score, lastAccess,
 * id) reduces to least recently used first.
 *
 * vLLM breaks ties among blocks freed together by evicting the deepest block
 * of a chain first. That tie-break needs no code here: blocks freed together
 * belong to one request, hence to one chain, and the manager only ever
 * exposes a chain's leaf for eviction (a block with cached children on
 * device is not evictable). Among a chain's blocks, the deepest one is
 * therefore always the first to go, and its parent becomes the next
 * candidate only once it is gone.
 *
 * @throws TypeError when `options` is not an object or names an option.
 */
export function createLruPolicy(options?: LruPolicyOptions): Policy {
  checkOptionsObject(options, 'lru policy', []);
  return { name: 'lru' };
}
