/**
 * ClassBook over the real native block manager: which blocks share a score
 * class, exact class ids and their recycling, the session and workload
 * indexes, staleness, and the drain of classes that need a score.
 */
import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import type { RequestTags } from '../../src/blocks/types.js';
import { ClassBook, depthBucket, Staleness } from '../../src/runtime/classes.js';

const BLOCK_SIZE = 2;

/** A manager with 2-token blocks and its class book. */
function setup(deviceBlocks = 16, maxClasses = 16): { manager: BlockManager; book: ClassBook } {
  const manager = new BlockManager({ blockSize: BLOCK_SIZE, deviceBlocks, maxClasses });
  return { manager, book: new ClassBook(manager) };
}

/** Admits, commits and releases one request; returns its block ids. */
function serve(manager: BlockManager, requestId: number, hashes: bigint[], tags: RequestTags): number[] {
  const h = BigUint64Array.from(hashes);
  expect(manager.admit(requestId, h, h.length * BLOCK_SIZE, tags)).not.toBeNull();
  const ids = [...manager.commit(requestId, h.length)];
  manager.release(requestId);
  return ids;
}

/** The fields of a class a policy reads. */
function summary(book: ClassBook, id: number) {
  const c = book.get(id);
  if (!c) return undefined;
  const { workload, agentMask, agents, session, depthBucket: bucket, stale, blocks } = c;
  return { id: c.id, workload, agentMask, agents, session, depthBucket: bucket, stale, blocks };
}

describe('depthBucket', () => {
  it('is floor(log2(depth + 1)), capped at 31', () => {
    expect([0, 1, 2, 3, 6, 7, 1e9].map(depthBucket)).toEqual([0, 1, 1, 2, 2, 3, 29]);
    expect(depthBucket(2 ** 31 - 1)).toBe(31);
  });
});

describe('ClassBook', () => {
  it('files blocks one attribute apart under different classes', () => {
    const { manager, book } = setup();
    const ids = [
      ...serve(manager, 1, [100n], { workload: 0, agent: 0, session: 0 }),
      ...serve(manager, 2, [101n], { workload: 0, agent: 0, session: 0 }), // twin of 1
      ...serve(manager, 3, [102n], { workload: 1, agent: 0, session: 0 }), // workload
      ...serve(manager, 4, [103n], { workload: 0, agent: 1, session: 0 }), // agent
      ...serve(manager, 5, [104n], { workload: 0, agent: 0, session: 1 }), // session
      ...serve(manager, 6, [105n], {}), // untagged
      ...serve(manager, 7, [106n], { workload: 0, agent: 40, session: 0 }), // high agent bit
      ...serve(manager, 8, [107n, 108n], { workload: 0, agent: 0, session: 0 }), // depth 0 and 1
    ];
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    book.classify(Int32Array.from(ids));
    expect(ids.map((id) => book.classOf(id))).toEqual([0, 0, 1, 2, 3, 4, 5, 0, 6]);
    expect(book.liveClasses).toBe(7);
    expect(summary(book, 0)).toEqual({
      id: 0, workload: 0, agentMask: 1n, agents: [0], session: 0, depthBucket: 0, stale: false, blocks: 3,
    });
    expect(summary(book, 4)).toEqual({
      id: 4, workload: -1, agentMask: 0n, agents: [], session: -1, depthBucket: 0, stale: false, blocks: 1,
    });
    expect(summary(book, 5)).toMatchObject({ agentMask: 1n << 40n, agents: [40] });
    expect(summary(book, 6)).toMatchObject({ depthBucket: 1, blocks: 1 });
    // The core learned every class.
    expect([...manager.metadata.scoreClass.subarray(0, 9)]).toEqual([0, 0, 1, 2, 3, 4, 5, 0, 6]);
  });

  it('skips uncommitted blocks', () => {
    const { manager, book } = setup();
    const admitted = manager.admit(1, BigUint64Array.of(1n), 2, { workload: 0, agent: 0, session: 0 });
    expect([...admitted!.blockIds]).toEqual([0]);
    book.classify(admitted!.blockIds);
    expect(book.classOf(0)).toBe(-1);
    expect(book.takeFresh()).toEqual([]);
    expect(book.liveClasses).toBe(0);
  });

  it('refiles shared blocks and recycles the classes they leave', () => {
    const { manager, book } = setup();
    const first = serve(manager, 1, [1n, 2n, 3n], { workload: 0, agent: 0, session: 0 });
    expect(first).toEqual([0, 1, 2]);
    book.classify(Int32Array.from(first));
    expect(first.map((id) => book.classOf(id))).toEqual([0, 1, 1]);
    expect(book.takeFresh()).toEqual([0, 1]);
    expect(book.takeFresh()).toEqual([]);
    expect([...book.ofSession(0)]).toEqual([0, 1]);

    // Another session of the workload, another agent, shares blocks 0 and 1.
    const second = serve(manager, 2, [1n, 2n, 4n], { workload: 0, agent: 1, session: 1 });
    expect(second).toEqual([0, 1, 3]);
    expect(manager.metadata.session[0]).toBe(-1);
    book.classify(Int32Array.from(second));
    // Block 0 opens class 2 and empties class 0; block 1 takes the freed id 0.
    expect([0, 1, 2, 3].map((id) => book.classOf(id))).toEqual([2, 0, 1, 3]);
    expect(summary(book, 0)).toEqual({
      id: 0, workload: 0, agentMask: 3n, agents: [0, 1], session: -1, depthBucket: 1, stale: false, blocks: 1,
    });
    expect(summary(book, 2)).toMatchObject({ session: -1, depthBucket: 0, blocks: 1 });
    expect(summary(book, 3)).toMatchObject({ agents: [1], session: 1, depthBucket: 1, blocks: 1 });
    expect(summary(book, 1)).toMatchObject({ session: 0, blocks: 1 });
    expect(book.takeFresh()).toEqual([2, 0, 3]);
    expect(book.liveClasses).toBe(4);
    // Private classes by session, shared ones by workload.
    expect([...book.ofSession(0)]).toEqual([1]);
    expect([...book.ofSession(1)]).toEqual([3]);
    expect([...book.ofSession(2)]).toEqual([]);
    expect([...book.ofWorkload(0)]).toEqual([2, 0]);
    expect([...book.ofWorkload(1)]).toEqual([]);
    expect([...manager.metadata.scoreClass.subarray(0, 4)]).toEqual([2, 0, 1, 3]);

    // Classifying again changes nothing.
    book.classify(Int32Array.from([0, 1, 2, 3]));
    expect([0, 1, 2, 3].map((id) => book.classOf(id))).toEqual([2, 0, 1, 3]);
    expect(book.takeFresh()).toEqual([]);
  });

  it('files stale blocks apart and brings them back when touched', () => {
    const { manager, book } = setup();
    const ids = serve(manager, 1, [1n, 2n, 3n], { workload: 0, agent: 0, session: 0 });
    book.classify(Int32Array.from(ids));
    book.takeFresh();
    book.classify(Int32Array.of(1), Staleness.Stale);
    expect(book.isStale(1)).toBe(true);
    expect(book.isStale(2)).toBe(false);
    expect(ids.map((id) => book.classOf(id))).toEqual([0, 2, 1]);
    expect(summary(book, 2)).toEqual({
      id: 2, workload: 0, agentMask: 1n, agents: [0], session: 0, depthBucket: 1, stale: true, blocks: 1,
    });
    expect(summary(book, 1)).toMatchObject({ stale: false, blocks: 1 });
    expect(book.takeFresh()).toEqual([2]);

    // Block 2 joins it; the fresh class 1 empties and is recycled.
    book.classify(Int32Array.of(2), Staleness.Stale);
    expect(book.classOf(2)).toBe(2);
    expect(book.get(1)).toBeUndefined();
    expect(summary(book, 2)).toMatchObject({ blocks: 2 });
    expect([...book.ofSession(0)]).toEqual([0, 2]);

    // Touched again, block 1 is no longer stale; its new class reuses id 1.
    book.classify(Int32Array.of(1));
    expect(book.isStale(1)).toBe(false);
    expect(book.classOf(1)).toBe(1);
    expect(summary(book, 1)).toMatchObject({ stale: false, depthBucket: 1, blocks: 1 });
    expect(book.takeFresh()).toEqual([1]);
  });

  it('files dead blocks apart from stale ones, stale as well, and brings them back when touched', () => {
    const { manager, book } = setup();
    const ids = serve(manager, 1, [1n, 2n, 3n], { workload: 0, agent: 0, session: 0 });
    book.classify(Int32Array.from(ids));
    book.classify(Int32Array.of(1), Staleness.Stale);
    book.classify(Int32Array.of(2), Staleness.Dead);
    expect([book.isStale(1), book.isDead(1), book.isStale(2), book.isDead(2)]).toEqual([true, false, true, true]);
    // Same workload, session, agents and depth bucket: three classes by staleness alone.
    expect(new Set(ids.map((id) => book.classOf(id))).size).toBe(3);
    expect(book.get(book.classOf(2))).toMatchObject({ stale: true, dead: true, depthBucket: 1 });
    expect(book.get(book.classOf(1))).toMatchObject({ stale: true, dead: false, depthBucket: 1 });
    expect(book.get(book.classOf(2))!.family).not.toBe(book.get(book.classOf(1))!.family);
    book.classify(Int32Array.of(2));
    expect([book.isStale(2), book.isDead(2)]).toEqual([false, false]);
    expect(book.get(book.classOf(2))).toMatchObject({ stale: false, dead: false });
  });

  it('recycles a class when its last block leaves the cache', () => {
    const { manager, book } = setup();
    serve(manager, 1, [1n, 2n], { workload: 0, agent: 0, session: 0 });
    serve(manager, 2, [1n, 5n], { workload: 0, agent: 0, session: 1 });
    book.classify(Int32Array.from([0, 1, 2]));
    expect([0, 1, 2].map((id) => book.classOf(id))).toEqual([0, 1, 2]);
    expect([...book.ofSession(1)]).toEqual([2]);
    book.takeFresh();

    expect(manager.drop(Int32Array.of(2))).toBe(1);
    book.removed(2);
    expect(book.classOf(2)).toBe(-1);
    expect(book.isStale(2)).toBe(false);
    expect(book.get(2)).toBeUndefined();
    expect(book.liveClasses).toBe(2);
    expect([...book.ofSession(1)]).toEqual([]);
    // Removing a block with no class does nothing.
    book.removed(2);
    book.removed(7);
    expect(book.liveClasses).toBe(2);
    expect(book.takeFresh()).toEqual([]);

    // The next new class takes the recycled id.
    const again = serve(manager, 3, [9n], { workload: 1, agent: 0, session: 2 });
    book.classify(Int32Array.from(again));
    expect(book.classOf(again[0]!)).toBe(2);
    expect(summary(book, 2)).toMatchObject({ workload: 1, session: 2, blocks: 1 });
    expect(book.takeFresh()).toEqual([2]);
  });


  it('gives classes one depth bucket apart one family, recycles the family with its last class, and files a tuple again after its last class left', () => {
    const { manager, book } = setup();
    // Depths 0, 1, 2: buckets 0, 1, 1 (one class holds the last two).
    const ids = serve(manager, 1, [1n, 2n, 3n], { workload: 0, agent: 0, session: 0 });
    const other = serve(manager, 2, [7n], { workload: 0, agent: 0, session: 1 });
    book.classify(Int32Array.from([...ids, ...other]));
    const [c0, c1, c2] = ids.map((id) => book.classOf(id));
    expect(c1).toBe(c2);
    expect(c0).not.toBe(c1);
    const family = book.get(c0!)!.family;
    expect(book.get(c1!)!.family).toBe(family);
    const otherFamily = book.get(book.classOf(other[0]!))!.family;
    expect(otherFamily).not.toBe(family);
    // Stale blocks of the same tuple are another family.
    book.classify(Int32Array.of(ids[2]!), Staleness.Stale);
    const staleFamily = book.get(book.classOf(ids[2]!))!.family;
    expect(staleFamily).not.toBe(family);
    expect(book.liveClasses).toBe(4);

    // Every block of session 0 leaves: its classes and both its families go.
    expect(manager.drop(Int32Array.from([...ids].reverse()))).toBe(3);
    for (const id of ids) book.removed(id);
    expect(book.liveClasses).toBe(1);
    expect([...book.ofSession(0)]).toEqual([]);

    // The same tuple comes back: filed again, under recycled class and family ids.
    const again = serve(manager, 3, [1n, 2n], { workload: 0, agent: 0, session: 0 });
    book.classify(Int32Array.from(again));
    const [d0, d1] = again.map((id) => book.classOf(id));
    expect(d0).not.toBe(d1);
    expect(book.get(d0!)).toMatchObject({ workload: 0, session: 0, depthBucket: 0, stale: false, blocks: 1 });
    expect(book.get(d1!)).toMatchObject({ workload: 0, session: 0, depthBucket: 1, stale: false, blocks: 1 });
    expect(book.get(d0!)!.family).toBe(book.get(d1!)!.family);
    expect([family, staleFamily]).toContain(book.get(d0!)!.family);
    expect(book.liveClasses).toBe(3);
    expect(new Set([...book.ofSession(0)])).toEqual(new Set([d0, d1]));
  });
  it("refuses a class past the manager's maxClasses", () => {
    const { manager, book } = setup(16, 1);
    const ids = serve(manager, 1, [1n, 2n], { workload: 0, agent: 0, session: 0 });
    expect(() => book.classify(Int32Array.from(ids))).toThrow(
      new RangeError("out of score classes (1); raise the block manager's maxClasses"),
    );
  });

  it('keeps the book and the core in agreement when it runs out of classes mid-batch', () => {
    const { manager, book } = setup(16, 2);
    const ids = [
      ...serve(manager, 1, [100n], { workload: 0, agent: 0, session: 0 }),
      ...serve(manager, 2, [200n], { workload: 0, agent: 0, session: 1 }),
      ...serve(manager, 3, [300n], { workload: 0, agent: 0, session: 2 }),
    ];
    expect(() => book.classify(Int32Array.from(ids))).toThrow(
      new RangeError("out of score classes (2); raise the block manager's maxClasses"),
    );
    expect(ids.map((id) => book.classOf(id))).toEqual([0, 1, -1]);
    expect(ids.map((id) => manager.metadata.scoreClass[id])).toEqual([0, 1, -1]);
  });
});

