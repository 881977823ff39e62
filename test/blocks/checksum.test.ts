// XXH64, the remote tier's block checksum: the native function against
// xxHash's published vectors and against the plain BigInt reference on
// random bytes of every length class (under 4, 4-7, 8-31, 32 and more,
// ragged tails), with seeds; bad arguments are refused by name.
import { describe, expect, it } from 'vitest';

import { referenceXxh64 } from '../../src/blocks/hash.js';
import { xxh64 } from '../../src/blocks/native_hash.js';
import { seededRandom } from '../../src/util/random.js';

const text = (s: string) => new TextEncoder().encode(s);

// Published XXH64 values (xxhsum and the reference implementations' tests).
const VECTORS: [Uint8Array, bigint, bigint][] = [
  [text(''), 0n, 0xef46db3751d8e999n],
  [text('a'), 0n, 0xd24ec4f1a98c6e5bn],
  [text('abc'), 0n, 0x44bc2cf5ad770999n],
  [text('abc'), 12345n, 0x01700e64f6f23509n],
  [new Uint8Array(32).fill(0x61), 0n, 0x856e843298f99ad7n],
  [text('Nobody inspects the spammish repetition'), 0n, 0xfbcea83c8a378bf1n],
  [text('The quick brown fox jumps over the lazy dog'), 0n, 0x0b242d361fda71bcn],
];

describe('xxh64', () => {
  it.each(VECTORS.map(([bytes, seed, want], i) => [i, bytes, seed, want] as const))('vector %i: native and reference give the published value', (_, bytes, seed, want) => {
    expect(xxh64(bytes, seed)).toBe(want);
    expect(referenceXxh64(bytes, seed)).toBe(want);
  });

  it('native equals the reference on random bytes, lengths and seeds, and on views into larger buffers', () => {
    const random = seededRandom(2026);
    for (let trial = 0; trial < 300; trial++) {
      const length = trial < 80 ? trial : Math.floor(random() * 3000);
      const buffer = new Uint8Array(length + 16);
      for (let i = 0; i < buffer.length; i++) buffer[i] = Math.floor(random() * 256);
      const offset = Math.floor(random() * 16);
      const bytes = buffer.subarray(offset, offset + length);
      const seed = trial % 3 === 0 ? 0n : (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
      expect(xxh64(bytes, seed), `length ${length}, offset ${offset}, seed ${seed}`).toBe(referenceXxh64(bytes, seed));
    }
    // A Buffer is a Uint8Array; one flipped bit changes the sum.
    const block = Buffer.alloc(4096, 7);
    const before = xxh64(block);
    block[4000] = block[4000]! ^ 1;
    expect(xxh64(block)).not.toBe(before);
  });

  it('refuses what is not a Uint8Array and seeds outside 64 unsigned bits', () => {
    expect(() => xxh64(new Uint16Array(4) as unknown as Uint8Array)).toThrow(/xxh64: bytes must be a Uint8Array/);
    expect(() => xxh64(new Uint8Array(4), 1 as unknown as bigint)).toThrow(/xxh64: seed must be a bigint/);
    expect(() => xxh64(new Uint8Array(4), -1n)).toThrow(/xxh64: seed must fit in 64 unsigned bits/);
    expect(() => xxh64(new Uint8Array(4), 1n << 64n)).toThrow(/xxh64: seed must fit in 64 unsigned bits/);
  });
});
