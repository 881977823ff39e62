import { describe, expect, it } from 'vitest';

import type { BlockMetadataView } from '../../../src/blocks/types.js';
import {
  crossSessionGapAt,
  crossSessionRateAt,
  CrossSessionTracker,
  nextReaderRateAt,
  sharedRereadRateAt,
} from '../../../src/policies/cachesage/cross_session.js';

/** The metadata fields the tracker reads, for `n` committed blocks of session 1 at depths 0..n-1 (bucket 2: depths 3-6). */
function metadata(n: number): BlockMetadataView {
  const view = {
    committed: new Uint8Array(n).fill(1),
    session: new Int32Array(n).fill(1),
    hash: BigUint64Array.from({ length: n }, (_, i) => BigInt(1000 + i)),
    depth: Int32Array.from({ length: n }, (_, i) => i),
  };
  return view as unknown as BlockMetadataView;
}

const BLOCKS = [3, 4, 5, 6];

/** A prompt holding the first `n` of the blocks at depths 0..6 (hashes as metadata() gives them). */
function prompt(n: number): BigUint64Array {
  return BigUint64Array.from({ length: 3 + n }, (_, i) => BigInt(1000 + i));
}

describe('CrossSessionTracker', () => {
  it('counts the private blocks a call wrote once, and the share another session read', () => {
    const m = metadata(8);
    const t = new CrossSessionTracker(100);
    t.released(m, BLOCKS, 1, 'w', 'mapper', 0);
    // Released again by the same session: nothing new written.
    t.released(m, BLOCKS, 1, 'w', 'mapper', 1);
    const stats = t.peek('w', 'mapper')!;
    expect(stats.written[2]).toBe(4);
    // Session 2 reads the first two, 3 s after they were written; the writer's own reads do not count.
    t.admitted(prompt(2), 2, 3);
    expect(crossSessionGapAt(stats, 2)).toBe(3);
    t.admitted(prompt(4), 1, 3);
    expect(stats.adopted[2]).toBe(2);
    expect(crossSessionRateAt(stats, 2)).toBe(0.5);
    // Nothing written at other depths: no estimate, no value.
    expect(crossSessionRateAt(stats, 3)).toBe(0);
    expect(crossSessionGapAt(stats, 3)).toBeUndefined();
    expect(crossSessionRateAt(undefined, 2)).toBe(0);
  });

  it('learns how often a shared block is read by yet another session, by readers so far', () => {
    const m = metadata(8);
    const t = new CrossSessionTracker(100);
    t.released(m, BLOCKS, 1, 'w', 'mapper', 0);
    t.admitted(prompt(3), 2, 1);
    const stats = t.peek('w', 'mapper')!;
    // Three reads so far: too few to tell, shared blocks keep their full value.
    expect(sharedRereadRateAt(stats, 2)).toBe(1);
    // Session 3 reads all four: three read again, one adopted; reading again itself adds nothing.
    t.admitted(prompt(4), 3, 2);
    t.admitted(prompt(4), 3, 2);
    expect(stats.adopted[2]).toBe(4);
    expect(stats.sharedReads[2]).toBe(7);
    expect(stats.sharedRereads[2]).toBe(3);
    expect(sharedRereadRateAt(stats, 2)).toBeCloseTo(3 / 7, 12);
    // Of 4 blocks written (one reader), all got a second; of 4 with two, three got a third.
    expect(nextReaderRateAt(stats, 1, 2)).toBe(1);
    expect(nextReaderRateAt(stats, 2, 2)).toBe(0.75);
    // Three readers: seen 3 times only, too few to tell.
    expect(nextReaderRateAt(stats, 3, 2)).toBeUndefined();
    expect(t.readersOf(1003n)?.readers).toBe(3);
    expect(t.readersOf(1006n)?.readers).toBe(2);
  });

  it('counts a read of a block the cache no longer holds: it goes by hash', () => {
    const m = metadata(8);
    const t = new CrossSessionTracker(100);
    t.released(m, BLOCKS, 1, 'w', 'mapper', 0);
    // The block ids are recycled for other blocks; session 2's prompt still holds the same content.
    m.hash.fill(7n);
    t.admitted(prompt(4), 2, 1);
    expect(t.peek('w', 'mapper')!.adopted[2]).toBe(4);
  });

  it('forgets the least recently read blocks past its capacity', () => {
    const m = metadata(8);
    const t = new CrossSessionTracker(2);
    t.released(m, BLOCKS, 1, 'w', 'mapper', 0);
    expect(t.readersOf(1003n)).toBeUndefined();
    expect(t.readersOf(1006n)?.readers).toBe(1);
  });

  it('leaves blocks already shared or uncommitted out of what a call wrote', () => {
    const m = metadata(8);
    m.session.fill(-1);
    m.session[5] = 1;
    m.committed[6] = 0;
    const t = new CrossSessionTracker(100);
    t.released(m, BLOCKS, 1, 'w', 'mapper', 0);
    expect(t.peek('w', 'mapper')!.written[2]).toBe(1);
  });
});
