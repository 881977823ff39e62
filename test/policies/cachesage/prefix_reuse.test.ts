import { describe, expect, it } from 'vitest';

import { DEPTH_BUCKETS, observePrefixReuse, prefixReuseAt, type PrefixReuse } from '../../../src/policies/cachesage/prefix_reuse.js';
import { CONTINUATION_DECAY } from '../../../src/policies/cachesage/workload.js';

/** The first `n` buckets of a record: [reused, seen]. */
function head(r: PrefixReuse, n: number): [number[], number[]] {
  return [Array.from(r.reused.subarray(0, n)), Array.from(r.seen.subarray(0, n))];
}

/** One agent's record after the given (shared, previous) observations. */
function observed(...observations: [number, number][]): PrefixReuse {
  const map = new Map<string, PrefixReuse>();
  for (const [shared, previous] of observations) observePrefixReuse(map, 'a', shared, previous);
  return map.get('a')!;
}

describe('observePrefixReuse', () => {
  it('credits each depth bucket the previous prompt reached with the share of it reused', () => {
    // Buckets: 0 = block 0, 1 = blocks 1-2, 2 = blocks 3-6.
    const r = observed([3, 7]);
    expect(r.reused).toHaveLength(DEPTH_BUCKETS);
    expect(head(r, 4)).toEqual([
      [1, 1, 0, 0],
      [1, 1, 1, 0],
    ]);
  });

  it('counts a bucket the previous prompt reached only in part by the blocks it had there', () => {
    // Previous 5 blocks: bucket 2 holds blocks 3 and 4; the new prompt kept 3.
    expect(head(observed([4, 5]), 4)).toEqual([
      [1, 1, 0.5, 0],
      [1, 1, 1, 0],
    ]);
    // Half of bucket 1 (block 1 of blocks 1-2); nothing deeper.
    expect(head(observed([2, 3]), 3)).toEqual([
      [1, 0.5, 0],
      [1, 1, 0],
    ]);
  });

  it('credits nothing beyond the previous prompt, and no more than all of it', () => {
    expect(head(observed([0, 2]), 3)).toEqual([
      [0, 0, 0],
      [1, 1, 0],
    ]);
    expect(head(observed([9, 3]), 3)).toEqual([
      [1, 1, 0],
      [1, 1, 0],
    ]);
  });

  it('decays older observations by CONTINUATION_DECAY', () => {
    const d = CONTINUATION_DECAY;
    const r = observed([7, 7], [3, 7]);
    const [reused, seen] = head(r, 3);
    expect(reused).toEqual([d + 1, d + 1, d]);
    expect(seen).toEqual([d + 1, d + 1, d + 1]);
    expect(prefixReuseAt(r, 2)).toBe(d / (d + 1));
    expect(prefixReuseAt(observed([3, 7], [7, 7]), 2)).toBe(1 / (d + 1));
  });

  it('keeps one record per agent', () => {
    const map = new Map<string, PrefixReuse>();
    observePrefixReuse(map, 'a', 0, 1);
    observePrefixReuse(map, 'b', 1, 1);
    expect([...map.keys()]).toEqual(['a', 'b']);
    expect(prefixReuseAt(map.get('a'), 0)).toBe(0);
    expect(prefixReuseAt(map.get('b'), 0)).toBe(1);
  });
});

describe('prefixReuseAt', () => {
  it('is the reused share of a known bucket', () => {
    const r = observed([4, 5]);
    expect([0, 1, 2].map((k) => prefixReuseAt(r, k))).toEqual([1, 1, 0.5]);
  });

  it('takes the deepest known bucket for deeper ones', () => {
    const r = observed([4, 5]);
    expect([3, 10, DEPTH_BUCKETS - 1, DEPTH_BUCKETS + 5].map((k) => prefixReuseAt(r, k))).toEqual([0.5, 0.5, 0.5, 0.5]);
    // A one-block previous prompt tells only about bucket 0.
    expect(prefixReuseAt(observed([0, 1]), 4)).toBe(0);
  });

  it('assumes the next prompt extends (1) without data', () => {
    expect(prefixReuseAt(undefined, 0)).toBe(1);
    expect(prefixReuseAt(undefined, 7)).toBe(1);
    expect(prefixReuseAt(observed([0, 0]), 3)).toBe(1); // an empty previous prompt tells nothing
  });
});
