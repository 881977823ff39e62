/** ReplicaCacheView: applying batches in sequence, media, prefix matches. */
import { describe, expect, it } from 'vitest';

import type { KvEventBatch } from '../../src/kvevents/events.js';
import { ReplicaCacheView } from '../../src/kvevents/view.js';

const stored = (hashes: bigint[], medium = 'GPU'): KvEventBatch => ({
  timestamp: 0,
  dataParallelRank: null,
  events: [{ type: 'BlockStored', blockHashes: hashes, parentBlockHash: null, tokenIds: [], blockSize: 16, loraId: null, medium }],
});
const removed = (hashes: bigint[], medium = 'GPU'): KvEventBatch => ({
  timestamp: 0,
  dataParallelRank: null,
  events: [{ type: 'BlockRemoved', blockHashes: hashes, medium }],
});

describe('ReplicaCacheView', () => {
  it('keeps keys per medium and answers prefix matches', () => {
    const view = new ReplicaCacheView('r0');
    expect(view.apply(0, stored([1n, 2n, 3n]))).toBe(true);
    expect(view.apply(1, stored([4n], 'CPU'))).toBe(true);
    expect(view.apply(2, removed([2n, 9n]))).toBe(true);
    expect(view.prefixMatch([1n, 2n, 3n])).toBe(1);
    expect(view.prefixMatch(BigUint64Array.of(1n, 3n, 4n))).toBe(2);
    expect(view.prefixMatch([4n], 'CPU')).toBe(1);
    expect(view.prefixMatch([4n], 'DISK')).toBe(0);
    expect(view.media()).toEqual(['CPU', 'GPU']);
    expect(view.size()).toBe(3);
    expect(view.counts).toMatchObject({ batches: 3, blocksStored: 4, blocksRemoved: 1, unknownRemovals: 1 });
  });

  it('skips duplicates and clears every medium on AllBlocksCleared', () => {
    const view = new ReplicaCacheView();
    view.apply(0, stored([1n]));
    view.apply(1, stored([2n], 'CPU'));
    expect(view.apply(1, stored([7n]))).toBe(false);
    expect(view.has(7n)).toBe(false);
    view.apply(2, { timestamp: 0, dataParallelRank: null, events: [{ type: 'AllBlocksCleared' }] });
    expect(view.size()).toBe(0);
    expect(view.toJSON()).toMatchObject({ lastSequence: 2, media: {}, counts: { duplicates: 1, clears: 1 } });
  });

  it('counts malformed messages (keeping the reason) and batches given up as lost', () => {
    const view = new ReplicaCacheView();
    view.apply(0, stored([1n]));
    view.noteMalformed('seq 1: bad', 1);
    expect(view.lastSequence).toBe(1);
    view.skipTo(4);
    expect(view.counts).toMatchObject({ malformed: 1, lostBatches: 3 });
    expect(view.lastError).toBe('seq 1: bad');
  });
});
