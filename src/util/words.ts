/**
 * 64-bit values (block hashes, agent masks) read as pairs of 32-bit words:
 * an element of a BigUint64Array read as such is a bigint allocated per
 * read, which a loop over a prompt's blocks pays hundreds of times per call.
 * Little-endian, as every platform the addon builds for: the low word first.
 */

/** The words of `values`, a view (no copy): element i is words [2i, 2i + 1]. */
export function wordsOf(values: BigUint64Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
}

/** How many leading elements `a` and `b` share. */
export function sharedPrefixLength(a: BigUint64Array, b: BigUint64Array): number {
  const n = Math.min(a.length, b.length);
  if (n === 0) return 0;
  const x = wordsOf(a);
  const y = wordsOf(b);
  let shared = 0;
  while (shared < n && x[2 * shared] === y[2 * shared] && x[2 * shared + 1] === y[2 * shared + 1]) shared++;
  return shared;
}

/** The low and high words of the mask with only bit `bit` (0..63) set. */
export function bitWords(bit: number): [number, number] {
  return bit < 32 ? [(1 << bit) >>> 0, 0] : [0, (1 << (bit - 32)) >>> 0];
}
