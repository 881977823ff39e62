import { describe, expect, it } from 'vitest';

import { HashLru } from '../../src/util/hash_lru.js';
import { seededRandom } from '../../src/util/random.js';

/** The reference: a Map used as an LRU (delete and set again to move a key last; the first key is the oldest). */
function check(lru: HashLru, reference: Map<bigint, number>, entryOf: Map<bigint, number>): void {
  expect(lru.size).toBe(reference.size);
  const oldest = reference.keys().next();
  if (oldest.done) expect(lru.oldest).toBe(-1);
  else expect(lru.oldest).toBe(entryOf.get(oldest.value));
}

const words = (h: bigint): [number, number] => [Number(h & 0xffffffffn), Number(h >> 32n)];

describe('HashLru', () => {
  it('keeps the order and membership of a Map used as an LRU over random operations', () => {
    for (let seed = 1; seed <= 3; seed++) {
      const random = seededRandom(seed);
      let grows = 0;
      const lru = new HashLru(() => grows++);
      const reference = new Map<bigint, number>();
      const entryOf = new Map<bigint, number>();
      // Few distinct hi words and colliding low words: long probe runs, wrapping ones included.
      const pool = Array.from({ length: 3000 }, (_, i) => (BigInt(Math.floor(random() * 4)) << 32n) | BigInt((i * 1024 + (i % 7)) >>> 0));
      const capacity = 1500;
      // warm() only reads: calls to it among the operations change nothing the reference would see.
      const batch = BigUint64Array.from(pool.slice(0, 96));
      const batchWords = new Uint32Array(batch.buffer);
      for (let step = 0; step < 12000; step++) {
        if (step % 13 === 0) expect(Number.isInteger(lru.warm(batchWords, 1 + (step % batch.length)))).toBe(true);
        const h = pool[Math.floor(random() * pool.length)]!;
        const [lo, hi] = words(h);
        const e = lru.find(lo, hi);
        expect(e).toBe(entryOf.get(h) ?? -1);
        const r = random();
        if (e >= 0 && r < 0.4) {
          lru.touch(e);
          reference.delete(h);
          reference.set(h, e);
        } else if (e >= 0 && r < 0.6) {
          lru.remove(e);
          reference.delete(h);
          entryOf.delete(h);
        } else if (e < 0) {
          if (lru.size >= capacity) {
            const [old] = reference.keys();
            expect(lru.oldest).toBe(entryOf.get(old!));
            lru.remove(lru.oldest);
            reference.delete(old!);
            entryOf.delete(old!);
          }
          const added = lru.insert(lo, hi);
          expect(added).toBeLessThan(lru.entryCapacity);
          reference.set(h, added);
          entryOf.set(h, added);
        }
        if (step % 97 === 0) check(lru, reference, entryOf);
      }
      check(lru, reference, entryOf);
      // Every hash is found where the reference has it, and nowhere else.
      for (const h of pool) expect(lru.find(...words(h))).toBe(entryOf.get(h) ?? -1);
      expect(grows).toBeGreaterThan(0);
    }
  });

  it('hands out entries below entryCapacity and reuses removed ones', () => {
    const lru = new HashLru();
    const a = lru.insert(1, 2);
    const b = lru.insert(3, 4);
    expect(lru.oldest).toBe(a);
    lru.touch(a);
    expect(lru.oldest).toBe(b);
    lru.remove(b);
    expect(lru.find(3, 4)).toBe(-1);
    expect(lru.insert(5, 6)).toBe(b);
    expect(lru.find(1, 2)).toBe(a);
    expect(lru.size).toBe(2);
  });
});
