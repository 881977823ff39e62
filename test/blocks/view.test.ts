import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import { readOnlyView } from '../../src/blocks/view.js';

describe('readOnlyView', () => {
  it('reads the live manager and offers nothing that changes it', () => {
    const manager = new BlockManager({ blockSize: 2, deviceBlocks: 4, hostBlocks: 2 });
    const view = readOnlyView(manager);
    expect(Object.isFrozen(view)).toBe(true);
    for (const mutator of ['admit', 'append', 'commit', 'release', 'evict', 'demote', 'drop', 'load', 'setScores', 'setAllScores', 'setScoreClasses', 'setClassScores', 'takeCopyPlan', 'takeEvents']) {
      expect((view as unknown as Record<string, unknown>)[mutator], mutator).toBeUndefined();
    }
    expect([view.blockSize, view.deviceBlocks, view.hostBlocks, view.numBlockIds]).toEqual([2, 4, 2, 6]);
    expect(view.numRequests).toBe(0);
    const hashes = BigUint64Array.of(11n, 12n);
    expect(manager.admit(1, hashes, 4)).not.toBeNull();
    manager.commit(1, 2);
    // Getters follow the manager as it changes.
    expect(view.numRequests).toBe(1);
    expect(view.hasRequest(1)).toBe(true);
    expect([...view.requestBlocks(1)]).toEqual([...manager.requestBlocks(1)]);
    expect(view.usedBlocks('device')).toBe(2);
    expect(view.pinnedDeviceBlocks()).toBe(2);
    expect(view.metadata).toBe(manager.metadata);
    manager.release(1);
    expect(view.evictableBlocks('device')).toBe(manager.evictableBlocks('device'));
    expect(view.lookup(hashes)).toEqual(manager.lookup(hashes));
  });
});
