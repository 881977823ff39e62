/**
 * Blocks one session's agent alone holds: committed, unpinned, used by that
 * session only and by that agent only. What the runtime marks stale when
 * an agent moves past its previous prompt, and what CacheSage marks dead
 * when an agent is expected to start afresh.
 */
import { bitWords, wordsOf } from '../util/words.js';
import type { BlockMetadataView } from './types.js';

/** The ids of `blockIds`, from index `from` on, that session `session`'s agent `agentBit` (0..63) alone holds. */
export function soleUnpinnedBlocks(m: BlockMetadataView, blockIds: ArrayLike<number>, from: number, session: number, agentBit: number): number[] {
  const [lo, hi] = bitWords(agentBit);
  const mask = wordsOf(m.agentMask);
  const out: number[] = [];
  for (let i = from; i < blockIds.length; i++) {
    const id = blockIds[i]!;
    if (m.committed[id] && m.session[id] === session && mask[2 * id] === lo && mask[2 * id + 1] === hi && m.refCount[id] === 0) out.push(id);
  }
  return out;
}
