import { describe, expect, it } from 'vitest';

import { seededRandom } from '../../src/util/random.js';
import { bitWords, sharedPrefixLength, wordsOf } from '../../src/util/words.js';

describe('words', () => {
  it('reads each 64-bit value as its low and high 32-bit words', () => {
    const values = BigUint64Array.of(0n, 1n, 0xffffffffn, 0x1_0000_0000n, 0xdead_beef_0123_4567n);
    const words = wordsOf(values.subarray(1));
    expect(words.length).toBe(8);
    for (let i = 0; i < 4; i++) {
      const v = values[i + 1]!;
      expect(words[2 * i]).toBe(Number(v & 0xffffffffn));
      expect(words[2 * i + 1]).toBe(Number(v >> 32n));
    }
  });

  it('finds the shared prefix of two hash arrays as element-wise comparison does', () => {
    const random = seededRandom(5);
    const rand64 = (): bigint => (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
    for (let trial = 0; trial < 200; trial++) {
      const a = BigUint64Array.from({ length: Math.floor(random() * 20) }, rand64);
      const b = a.slice(0, Math.floor(random() * (a.length + 1)));
      const tail = Math.floor(random() * 5);
      const c = new BigUint64Array(b.length + tail);
      c.set(b);
      for (let i = b.length; i < c.length; i++) c[i] = random() < 0.5 ? rand64() : (a[i] ?? 0n) ^ (random() < 0.5 ? 1n : 1n << 40n);
      let expected = 0;
      while (expected < a.length && expected < c.length && a[expected] === c[expected]) expected++;
      expect(sharedPrefixLength(a, c)).toBe(expected);
      expect(sharedPrefixLength(c, a)).toBe(expected);
    }
    expect(sharedPrefixLength(new BigUint64Array(0), BigUint64Array.of(1n))).toBe(0);
  });

  it('gives the words of a one-bit agent mask', () => {
    for (const bit of [0, 1, 31, 32, 33, 63]) {
      const mask = BigUint64Array.of(1n << BigInt(bit));
      expect(bitWords(bit)).toEqual([...wordsOf(mask)]);
    }
  });
});
