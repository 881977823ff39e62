/**
 * nativeHitScoring (native/core/hit_scoring.h) against referenceHitScoring:
 * identical scores, bit for bit, and identical victims on random metadata;
 * the manager's own eviction order; and refusals of bad arguments, through
 * the TypeScript wrapper and straight into the addon.
 */
import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../../src/blocks/block_manager.js';
import { nativeAddon } from '../../../src/blocks/addon.js';
import { nativeHitScoring } from '../../../src/compute/cpu/hit_scoring.js';
import { referenceHitScoring, type HitScoringInput } from '../../../src/compute/hit_scoring.js';
import { seededRandom } from '../../../src/util/random.js';
import { countEvictable, randomMetadata, sameBits } from '../inputs.js';

function expectSameAsReference(input: HitScoringInput, k: number, what: string): void {
  const want = referenceHitScoring(input, k);
  const got = nativeHitScoring(input, k);
  expect(got.scores).toBeInstanceOf(Float32Array);
  expect(got.victims).toBeInstanceOf(Int32Array);
  expect(sameBits(got.scores, want.scores), `${what}: scores`).toBe(true);
  expect(Array.from(got.victims), `${what}: victims`).toEqual(Array.from(want.victims));
}

describe('nativeHitScoring', () => {
  it.each([
    [0, 0],
    [1, 0],
    [2, 1],
    [7, 3],
    [100, 0],
    [100, 4],
    [1000, 16],
    [5000, 40],
    [70_000, 300],
  ])('matches the reference on %i blocks with %i classes', (blocks, classes) => {
    for (let round = 0; round < 4; round++) {
      const input = randomMetadata(seededRandom(blocks * 31 + classes * 7 + round), blocks, classes);
      const evictable = countEvictable(input);
      // 0 only scores; evictable and beyond return every evictable block.
      const ks = new Set([0, 1, 2, Math.floor(evictable / 2), Math.max(0, evictable - 1), evictable, evictable + 1, blocks, blocks + 5]);
      for (const k of ks) expectSameAsReference(input, k, `${blocks} blocks, round ${round}, k = ${k}`);
    }
  });

  it('orders by effective score (-0 ties 0), then lastAccess, then id', () => {
    const input: HitScoringInput = {
      tier: Uint8Array.of(1, 1, 1, 1, 2, 1, 1, 1, 0),
      committed: Uint8Array.of(1, 1, 1, 1, 1, 0, 1, 1, 1),
      refCount: Int32Array.of(0, 0, 0, 0, 0, 0, 1, 0, 0),
      deviceChildren: Int32Array.of(0, 0, 0, 0, 0, 0, 0, 1, 0),
      lastAccess: Float64Array.of(5, 3, 3, 1, 0, 0, 0, 0, 0),
      score: Float32Array.of(-0, 0, 0, 0.5, -1, -1, -1, -1, -1),
      scoreClass: Int32Array.of(-1, -1, -1, 0, -1, -1, -1, -1, -1),
      classScores: Float32Array.of(-2),
    };
    // Block 3 is classed at -2; 1 and 2 (lastAccess 3) tie on score with 0
    // (-0) and precede it; 4 is on the host, 5 uncommitted, 6 pinned, 7 has
    // a device child, 8 is free.
    const got = nativeHitScoring(input, 10);
    expect(Array.from(got.victims)).toEqual([3, 1, 2, 0]);
    expect(sameBits(got.scores, Float32Array.of(-0, 0, 0, -2, -1, -1, -1, -1, -1))).toBe(true);
    expect(Array.from(nativeHitScoring(input, 2).victims)).toEqual([3, 1]);
    expect(Array.from(nativeHitScoring(input, 0).victims)).toEqual([]);
  });

  it('orders a NaN lastAccess by its bits, after every number, rather than breaking the sort', () => {
    const blocks = 2000;
    const rand = seededRandom(21);
    const input: HitScoringInput = {
      tier: new Uint8Array(blocks).fill(1),
      committed: new Uint8Array(blocks).fill(1),
      refCount: new Int32Array(blocks),
      deviceChildren: new Int32Array(blocks),
      lastAccess: Float64Array.from({ length: blocks }, () => (rand() < 0.5 ? NaN : Math.floor(rand() * 4))),
      score: Float32Array.from({ length: blocks }, () => Math.floor(rand() * 3)),
      scoreClass: new Int32Array(blocks).fill(-1),
      classScores: new Float32Array(0),
    };
    const key = (id: number): [number, number, number] => {
      const access = input.lastAccess[id]!;
      return [input.score[id]!, Number.isNaN(access) ? Infinity : access, id];
    };
    const want = Array.from({ length: blocks }, (_, id) => id).sort((x, y) => {
      const [a, b] = [key(x), key(y)];
      return a[0] - b[0] || (a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1) || a[2] - b[2];
    });
    expect(Array.from(nativeHitScoring(input, blocks).victims)).toEqual(want);
    expect(Array.from(nativeHitScoring(input, 100).victims)).toEqual(want.slice(0, 100));
  });

  it("picks the block manager's next device victim, round after round", () => {
    const manager = new BlockManager({ blockSize: 2, bytesPerBlock: 0, deviceBlocks: 24, hostBlocks: 0, maxClasses: 4 });
    const rand = seededRandom(11);
    // Six chains of up to four blocks; chains share nothing, so leaves and
    // their parents interleave in the order.
    for (let request = 0; request < 6; request++) {
      const blocks = 1 + Math.floor(rand() * 4);
      const hashes = BigUint64Array.from({ length: blocks }, (_, i) => BigInt(request * 100 + i + 1));
      expect(manager.admit(request, hashes, blocks * 2)).not.toBeNull();
      manager.commit(request, blocks);
      manager.release(request);
    }
    const ids = Int32Array.from({ length: manager.numBlockIds }, (_, id) => id);
    manager.setScores(ids, Float32Array.from(ids, () => [0, -0, 1, 2][Math.floor(rand() * 4)]!));
    manager.setScoreClasses(Int32Array.of(0, 3, 5), Int32Array.of(1, 1, 2));
    manager.setClassScores(Int32Array.of(1, 2), Float32Array.of(0.5, -0));
    manager.takeEvents();

    let evicted = 0;
    for (;;) {
      const input: HitScoringInput = { ...manager.metadata, classScores: manager.classScores };
      const { victims } = nativeHitScoring(input, 1);
      if (victims.length === 0) break;
      expect(manager.evict('device', 1)).toBe(1);
      const events = manager.takeEvents();
      expect(Array.from(events.block), `eviction ${evicted}`).toEqual([victims[0]]);
      evicted++;
    }
    expect(evicted).toBeGreaterThan(6);
    expect(manager.evictableBlocks('device')).toBe(0);
  });

  describe('refuses bad arguments', () => {
    const input = randomMetadata(seededRandom(5), 10, 2);

    it('with a TypeError for wrong types', () => {
      expect(() => nativeHitScoring(null as unknown as HitScoringInput, 1)).toThrow(TypeError);
      expect(() => nativeHitScoring({ ...input, tier: Int32Array.from(input.tier) } as unknown as HitScoringInput, 1)).toThrow(
        /input.tier must be a Uint8Array/,
      );
      expect(() => nativeHitScoring({ ...input, lastAccess: Float32Array.from(input.lastAccess) } as unknown as HitScoringInput, 1)).toThrow(
        TypeError,
      );
      expect(() => nativeHitScoring({ ...input, classScores: undefined } as unknown as HitScoringInput, 1)).toThrow(TypeError);
      expect(() => nativeHitScoring(input, '3' as unknown as number)).toThrow(TypeError);
    });

    it('with a RangeError for wrong lengths, classes out of range and bad k', () => {
      expect(() => nativeHitScoring({ ...input, refCount: new Int32Array(9) }, 1)).toThrow(/refCount has length 9, expected 10/);
      expect(() => nativeHitScoring({ ...input, score: new Float32Array(11) }, 1)).toThrow(RangeError);
      const badClass = { ...input, scoreClass: Int32Array.of(-1, -1, -1, 2, -1, -1, -1, -1, -1, -1) };
      expect(() => nativeHitScoring(badClass, 1)).toThrow(/scoreClass\[3\] = 2 but there are only 2 class scores/);
      for (const k of [-1, 1.5, NaN, Infinity]) expect(() => nativeHitScoring(input, k)).toThrow(RangeError);
    });

    it('with a RangeError naming the lowest block whose effective score is not finite', () => {
      const classless = { ...input, scoreClass: new Int32Array(10).fill(-1) };
      const score = Float32Array.from(input.score);
      score[7] = NaN;
      score[4] = Infinity;
      expect(() => nativeHitScoring({ ...classless, score }, 3)).toThrow(/block 4 has an effective score that is not finite/);
      // A NaN class score counts only for the blocks filed under it.
      const classed = {
        ...classless,
        scoreClass: Int32Array.of(-1, -1, -1, -1, -1, -1, 1, -1, -1, -1),
        classScores: Float32Array.of(NaN, -Infinity),
      };
      expect(() => nativeHitScoring(classed, 3)).toThrow(/block 6 has an effective score that is not finite/);
      // A block's own NaN score is ignored when it has a class.
      const shadowed = {
        ...classless,
        score,
        scoreClass: Int32Array.of(-1, -1, -1, -1, 0, -1, -1, 0, -1, -1),
        classScores: Float32Array.of(1, NaN),
      };
      expectSameAsReference(shadowed, 10, 'own scores hidden by a class');
    });

    it('in the addon itself, with JS errors and no crash, when the wrapper is bypassed', () => {
      const addon = nativeAddon();
      const args = [
        input.tier, input.committed, input.refCount, input.deviceChildren, input.lastAccess, input.score, input.scoreClass, input.classScores,
      ] as const;
      const call = (...values: unknown[]): unknown => (addon.hitScoring as (...a: unknown[]) => unknown)(...values);
      expect(() => call()).toThrow(TypeError);
      expect(() => call(...args)).toThrow(/argument 8 must be a number/);
      expect(() => call(...args, -1)).toThrow(RangeError);
      expect(() => call(...args, 2 ** 31)).toThrow(RangeError);
      expect(() => call(...args, 1.5)).toThrow(RangeError);
      expect(() => call(Array.from(input.tier), ...args.slice(1), 1)).toThrow(/argument 0 must be a Uint8Array/);
      expect(() => call(...args.slice(0, 4), Float32Array.from(input.lastAccess), ...args.slice(5), 1)).toThrow(/Float64Array/);
      expect(() => call(...args.slice(0, 2), new Int32Array(3), ...args.slice(3), 1)).toThrow(/refCount has length 3, expected 10/);
      const classes = Int32Array.of(0, 1, 2, -1, -1, -1, -1, -1, -1, -1);
      expect(() => call(...args.slice(0, 6), classes, input.classScores, 1)).toThrow(/block 2 has score class 2, but there are only 2 classes/);
      const scores = Float32Array.from(input.score);
      scores[9] = NaN;
      expect(() => call(...args.slice(0, 5), scores, new Int32Array(10).fill(-1), input.classScores, 1)).toThrow(RangeError);
      // k beyond the block count returns every evictable block.
      const all = call(...args, 2 ** 31 - 1) as { victims: Int32Array };
      expect(Array.from(all.victims)).toEqual(Array.from(referenceHitScoring(input, 100).victims));
      // Empty metadata is fine.
      const empty = call(new Uint8Array(0), new Uint8Array(0), new Int32Array(0), new Int32Array(0), new Float64Array(0), new Float32Array(0),
        new Int32Array(0), new Float32Array(0), 5) as { scores: Float32Array; victims: Int32Array };
      expect([empty.scores.length, empty.victims.length]).toEqual([0, 0]);
    });
  });
});
