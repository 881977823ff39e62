import { describe, expect, it } from 'vitest';

import { soleUnpinnedBlocks } from '../../src/blocks/sole_blocks.js';
import type { BlockMetadataView } from '../../src/blocks/types.js';

/** Metadata of six blocks: 0-1 session 3 agent 40 alone; 2 pinned; 3 uncommitted; 4 shared by two agents; 5 another session. */
function metadata(): BlockMetadataView {
  const view = {
    committed: Uint8Array.of(1, 1, 1, 0, 1, 1),
    session: Int32Array.of(3, 3, 3, 3, 3, 4),
    refCount: Int32Array.of(0, 0, 1, 0, 0, 0),
    agentMask: BigUint64Array.of(1n << 40n, 1n << 40n, 1n << 40n, 1n << 40n, (1n << 40n) | 1n, 1n << 40n),
  };
  return view as unknown as BlockMetadataView;
}

describe('soleUnpinnedBlocks', () => {
  it('keeps the committed, unpinned blocks of one session and one agent alone, from the given index', () => {
    const m = metadata();
    const ids = [5, 4, 3, 2, 1, 0];
    expect(soleUnpinnedBlocks(m, ids, 0, 3, 40)).toEqual([1, 0]);
    expect(soleUnpinnedBlocks(m, ids, 5, 3, 40)).toEqual([0]);
    expect(soleUnpinnedBlocks(m, ids, 0, 3, 0)).toEqual([]);
    expect(soleUnpinnedBlocks(m, ids, 0, 4, 40)).toEqual([5]);
  });
});
