import { describe, expect, it } from 'vitest';

import type { Action } from '../../src/policies/types.js';
import { mergeActions } from '../../src/runtime/actions.js';

const ids = (...values: number[]) => Int32Array.of(...values);

describe('mergeActions', () => {
  it('merges actions deterministically: a pin beats an evict, prefetches are deduplicated', () => {
    const merged = mergeActions([
      { type: 'prefetch', blockIds: ids(5, 6) },
      { type: 'evict', blockIds: ids(1, 2) },
      { type: 'pin', key: 'k', leafBlockId: 2 },
      { type: 'prefetch', blockIds: ids(6, 7) },
      { type: 'unpin', key: 'old' },
    ]);
    expect(merged).toEqual([
      { type: 'unpin', key: 'old' },
      { type: 'pin', key: 'k', leafBlockId: 2 },
      { type: 'evict', blockIds: ids(1) },
      { type: 'prefetch', blockIds: ids(5, 6) },
      { type: 'prefetch', blockIds: ids(7) },
    ]);
  });

  it('orders unpins, pins, demotes, evicts, prefetches, each kind in the order given', () => {
    const merged = mergeActions([
      { type: 'prefetch', blockIds: ids(20) },
      { type: 'evict', blockIds: ids(11) },
      { type: 'demote', blockIds: ids(3) },
      { type: 'pin', key: 'p2', leafBlockId: 8 },
      { type: 'unpin', key: 'u2' },
      { type: 'evict', blockIds: ids(10) },
      { type: 'demote', blockIds: ids(4) },
      { type: 'pin', key: 'p1', leafBlockId: 9 },
      { type: 'unpin', key: 'u1' },
      { type: 'prefetch', blockIds: ids(21) },
    ]);
    expect(merged).toEqual([
      { type: 'unpin', key: 'u2' },
      { type: 'unpin', key: 'u1' },
      { type: 'pin', key: 'p2', leafBlockId: 8 },
      { type: 'pin', key: 'p1', leafBlockId: 9 },
      { type: 'demote', blockIds: ids(3) },
      { type: 'demote', blockIds: ids(4) },
      { type: 'evict', blockIds: ids(11) },
      { type: 'evict', blockIds: ids(10) },
      { type: 'prefetch', blockIds: ids(20) },
      { type: 'prefetch', blockIds: ids(21) },
    ]);
  });

  it('drops pinned leaves from demotions and evictions, and actions left empty', () => {
    const merged = mergeActions([
      { type: 'demote', blockIds: ids(1, 2, 3) },
      { type: 'evict', blockIds: ids(3) },
      { type: 'pin', key: 'a', leafBlockId: 3 },
      { type: 'pin', key: 'b', leafBlockId: 1 },
      { type: 'evict', blockIds: ids(4, 1) },
    ]);
    expect(merged).toEqual([
      { type: 'pin', key: 'a', leafBlockId: 3 },
      { type: 'pin', key: 'b', leafBlockId: 1 },
      { type: 'demote', blockIds: ids(2) },
      { type: 'evict', blockIds: ids(4) },
    ]);
  });

  it('prefetches each block once, at its first place, and drops prefetches left empty', () => {
    const merged = mergeActions([
      { type: 'prefetch', blockIds: ids(1, 2) },
      { type: 'prefetch', blockIds: ids(2, 1) },
      { type: 'prefetch', blockIds: ids(3, 1) },
    ]);
    expect(merged).toEqual([
      { type: 'prefetch', blockIds: ids(1, 2) },
      { type: 'prefetch', blockIds: ids(3) },
    ]);
    // Within one action too.
    expect(mergeActions([{ type: 'prefetch', blockIds: ids(1, 2, 2, 1, 3) }])).toEqual([{ type: 'prefetch', blockIds: ids(1, 2, 3) }]);
  });

  it('dedups prefetches as a plain Set would, merge after merge, for any ids (negative, past 2^24, repeated across merges)', () => {
    let seed = 11;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const anyId = (): number => (random(10) === 0 ? [-1, -7, 2 ** 24, 2 ** 24 + 3, 2 ** 31 - 1][random(5)]! : random(3000));
    for (let round = 0; round < 300; round++) {
      const lists = Array.from({ length: 1 + random(3) }, () => Int32Array.from({ length: random(40) }, anyId));
      const actions: Action[] = lists.map((blockIds) => ({ type: 'prefetch', blockIds }));
      const seen = new Set<number>();
      const want = lists
        .map((blockIds) => blockIds.filter((id) => (seen.has(id) ? false : (seen.add(id), true))))
        .filter((kept) => kept.length > 0)
        .map((kept) => ({ type: 'prefetch', blockIds: kept }));
      expect(mergeActions(actions), `round ${round}`).toEqual(want);
    }
  });

  it('drops empty demotions, evictions and prefetches, and merges nothing to nothing', () => {
    const empty: Action[] = [
      { type: 'demote', blockIds: ids() },
      { type: 'evict', blockIds: ids() },
      { type: 'prefetch', blockIds: ids() },
    ];
    expect(mergeActions(empty)).toEqual([]);
    expect(mergeActions([])).toEqual([]);
  });

  it('does not change the actions it is given', () => {
    const evict: Action = { type: 'evict', blockIds: ids(1, 2) };
    const merged = mergeActions([evict, { type: 'pin', key: 'k', leafBlockId: 2 }]);
    expect(merged[1]).toEqual({ type: 'evict', blockIds: ids(1) });
    expect(evict).toEqual({ type: 'evict', blockIds: ids(1, 2) });
  });
});
