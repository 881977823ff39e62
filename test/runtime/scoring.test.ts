/**
 * Scoring over the real native block manager, with tiny hand-written
 * policies: which classes or blocks get scored, and how several policies'
 * scores combine into the manager's.
 */
import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import type { Policy } from '../../src/policies/types.js';
import { Scoring } from '../../src/runtime/scoring.js';

const BLOCK_SIZE = 2;

/** A manager holding three one-block requests of sessions 0, 1, 2: blocks 0, 1, 2. */
function manager(): BlockManager {
  const m = new BlockManager({ blockSize: BLOCK_SIZE, deviceBlocks: 8, maxClasses: 8 });
  for (let s = 0; s < 3; s++) {
    const hashes = BigUint64Array.of(BigInt(100 * (s + 1)));
    expect(m.admit(s + 1, hashes, BLOCK_SIZE, { workload: 0, agent: 0, session: s })).not.toBeNull();
    expect(Array.from(m.commit(s + 1, 1))).toEqual([s]);
    m.release(s + 1);
  }
  return m;
}

/** A class-scoring policy giving `score(id)` and recording the ids of each call. */
function byClass(name: string, score: (id: number) => number, calls: number[][] = []): Policy {
  return {
    name,
    scoring: 'classes',
    scoreClasses(ids, out) {
      calls.push(Array.from(ids));
      ids.forEach((id, i) => (out[i] = score(id)));
    },
  };
}

function byBlock(name: string, score: (id: number) => number, calls: number[][] = []): Policy {
  return {
    name,
    scoring: 'blocks',
    scoreBlocks(ids, out) {
      calls.push(Array.from(ids));
      ids.forEach((id, i) => (out[i] = score(id)));
    },
  };
}

const ALL = Int32Array.of(0, 1, 2);

describe('Scoring: construction', () => {
  it('refuses to mix class- and block-scored policies', () => {
    const m = manager();
    expect(() => new Scoring(m, [byClass('c', () => 0), { name: 'quiet' }, byBlock('b', () => 0)], 'sum')).toThrow(
      new RangeError('cannot combine class-scored and block-scored policies (c: classes, b: blocks)'),
    );
  });

  it('takes its mode from the scoring policies; none without them', () => {
    const m = manager();
    expect(new Scoring(m, [{ name: 'quiet' }, byBlock('b', () => 0)], 'sum').mode).toBe('blocks');
    expect(new Scoring(m, [byClass('c', () => 0)], 'sum').mode).toBe('classes');
    expect(new Scoring(m, [{ name: 'quiet' }], 'sum').mode).toBe('none');
  });

  it('refuses weights that are not one finite number per scoring policy', () => {
    const m = manager();
    const two = [byClass('c1', () => 0), { name: 'quiet' }, byClass('c2', () => 0)];
    const message = "combine must be 'sum' or 2 finite weights, one per scoring policy";
    expect(() => new Scoring(m, two, [1])).toThrow(new RangeError(message));
    expect(() => new Scoring(m, two, [1, 2, 3])).toThrow(new RangeError(message));
    expect(() => new Scoring(m, two, [1, NaN])).toThrow(new RangeError(message));
    expect(() => new Scoring(m, two, [1, Infinity])).toThrow(new RangeError(message));
    expect(() => new Scoring(m, two, 'max' as never)).toThrow(new RangeError(message));
    expect(() => new Scoring(m, two, [0.5, -2])).not.toThrow();
  });
});

describe('Scoring: class mode', () => {
  it('sums class scores, or weighs them', () => {
    const m = manager();
    const summed = new Scoring(m, [byClass('c1', (c) => c + 0.5), byClass('c2', (c) => 10 * c)], 'sum');
    summed.classify(ALL);
    expect([0, 1, 2].map((b) => m.metadata.scoreClass[b])).toEqual([0, 1, 2]);
    summed.rescore();
    expect(Array.from(m.classScores.subarray(0, 3))).toEqual([0.5, 11.5, 22.5]);

    const m2 = manager();
    const weighed = new Scoring(m2, [byClass('c1', (c) => c + 0.5), byClass('c2', (c) => 10 * c)], [2, -0.5]);
    weighed.classify(ALL);
    weighed.rescore();
    expect(Array.from(m2.classScores.subarray(0, 3))).toEqual([1, -2, -5]);
  });

  it('scores only fresh and invalidated classes that still hold blocks', () => {
    const m = manager();
    const calls: number[][] = [];
    const scoring = new Scoring(m, [byClass('c', (c) => c, calls)], 'sum');
    scoring.rescore();
    expect(calls).toEqual([]); // nothing classified yet
    scoring.classify(ALL);
    scoring.rescore();
    expect(calls).toEqual([[0, 1, 2]]);
    scoring.rescore();
    expect(calls).toHaveLength(1); // nothing changed
    scoring.invalidate([2, 0, 2]);
    scoring.rescore();
    expect(calls[1]).toEqual([2, 0]);
    scoring.invalidate([5]); // no such class
    scoring.rescore();
    expect(calls).toHaveLength(2);
    scoring.invalidateAll();
    scoring.rescore();
    expect(calls[2]).toEqual([0, 1, 2]);
    expect(calls).toHaveLength(3);
  });

  it('throws on a NaN score and clamps infinities to the largest float32', () => {
    const m = manager();
    const scores = [Infinity, -Infinity, 1];
    const scoring = new Scoring(m, [byClass('c', (c) => scores[c]!)], 'sum');
    scoring.classify(ALL);
    scoring.rescore();
    expect(Array.from(m.classScores.subarray(0, 3))).toEqual([Math.fround(3.4e38), Math.fround(-3.4e38), 1]);

    const nan = new Scoring(manager(), [byClass('c', () => NaN)], 'sum');
    nan.classify(ALL);
    expect(() => nan.rescore()).toThrow(new Error('internal: a policy produced a NaN score'));
    // Combined: Infinity plus -Infinity is NaN too.
    const opposite = new Scoring(manager(), [byClass('up', () => Infinity), byClass('down', () => -Infinity)], 'sum');
    opposite.classify(ALL);
    expect(() => opposite.rescore()).toThrow(new Error('internal: a policy produced a NaN score'));
  });

  it('decides the eviction order through the class scores', () => {
    const m = manager();
    const scoring = new Scoring(m, [byClass('c', (c) => [5, 1, 3][c]!)], 'sum');
    scoring.classify(ALL);
    scoring.rescore();
    m.takeEvents();
    expect(m.evict('device', 3)).toBe(3);
    expect(Array.from(m.takeEvents().block)).toEqual([1, 2, 0]);
  });
});

describe('Scoring: block mode', () => {
  it('scores the committed touched blocks, summed or weighed, and nothing else', () => {
    const m = manager();
    const calls: number[][] = [];
    const scoring = new Scoring(m, [byBlock('b1', (b) => b + 1, calls), byBlock('b2', (b) => 0.25 * b)], [1, 4]);
    scoring.classify(ALL); // no classes in block mode
    expect(Array.from(m.metadata.scoreClass.subarray(0, 3))).toEqual([-1, -1, -1]);
    scoring.rescore(Int32Array.of(2, 5, 0)); // block 5 holds nothing
    expect(calls).toEqual([[2, 0]]);
    expect(Array.from(m.metadata.score.subarray(0, 3))).toEqual([1, 0, 5]);
    scoring.rescore(Int32Array.of(7));
    scoring.rescore();
    expect(calls).toHaveLength(1);
  });

  it('throws on a NaN block score and clamps infinities', () => {
    const m = manager();
    const scoring = new Scoring(m, [byBlock('b', (b) => [-Infinity, Infinity, 2][b]!)], 'sum');
    scoring.rescore(ALL);
    expect(Array.from(m.metadata.score.subarray(0, 3))).toEqual([Math.fround(-3.4e38), Math.fround(3.4e38), 2]);
    const nan = new Scoring(manager(), [byBlock('b', () => NaN)], 'sum');
    expect(() => nan.rescore(ALL)).toThrow(new Error('internal: a policy produced a NaN score'));
  });
});
