/**
 * Dense ids for block hashes: an open-addressing table over typed arrays
 * (the hash's two 32-bit halves and its id), so a replay's per-block
 * bookkeeping is indexed by a small integer instead of keyed by a BigInt.
 * 12 to 24 bytes a block, against some 100 for a Set<bigint> entry.
 */
export class BlockIds {
  #lo = new Uint32Array(0);
  #hi = new Uint32Array(0);
  /** Id + 1 of the hash in each slot; 0 marks an empty slot. */
  #slot = new Int32Array(0);
  #mask = -1;
  #size = 0;

  constructor(expected = 1024) {
    this.#allocate(tableSize(expected));
  }

  /** Distinct hashes seen: the ids run from 0 to size - 1. */
  get size(): number {
    return this.#size;
  }

  /** The id of `hash`, giving it the next one when it is new. */
  intern(hash: bigint): number {
    const lo = Number(BigInt.asUintN(32, hash));
    const hi = Number(BigInt.asUintN(32, hash >> 32n));
    let i = this.#find(lo, hi);
    const found = this.#slot[i]!;
    if (found !== 0) return found - 1;
    if ((this.#size + 1) * 4 > this.#slot.length * 3) {
      this.#grow();
      i = this.#find(lo, hi);
    }
    this.#lo[i] = lo;
    this.#hi[i] = hi;
    this.#slot[i] = ++this.#size;
    return this.#size - 1;
  }

  /** The id of `hash`, or -1 when it was never interned. */
  get(hash: bigint): number {
    const lo = Number(BigInt.asUintN(32, hash));
    const hi = Number(BigInt.asUintN(32, hash >> 32n));
    return this.#slot[this.#find(lo, hi)]! - 1;
  }

  /** The slot holding (lo, hi), or the empty slot where it would go. */
  #find(lo: number, hi: number): number {
    const mask = this.#mask;
    let i = (Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 0) & mask;
    while (this.#slot[i] !== 0 && (this.#lo[i] !== lo || this.#hi[i] !== hi)) i = (i + 1) & mask;
    return i;
  }

  #allocate(slots: number): void {
    this.#lo = new Uint32Array(slots);
    this.#hi = new Uint32Array(slots);
    this.#slot = new Int32Array(slots);
    this.#mask = slots - 1;
  }

  #grow(): void {
    const [lo, hi, slot] = [this.#lo, this.#hi, this.#slot];
    this.#allocate(slot.length * 2);
    for (let j = 0; j < slot.length; j++) {
      if (slot[j] === 0) continue;
      const i = this.#find(lo[j]!, hi[j]!);
      this.#lo[i] = lo[j]!;
      this.#hi[i] = hi[j]!;
      this.#slot[i] = slot[j]!;
    }
  }
}

/** A session's distinct blocks: ids of a {@link BlockIds}, each once, iterable like a set of them. */
export class SessionBlocks implements Iterable<number> {
  constructor(readonly ids: Int32Array) {}

  get size(): number {
    return this.ids.length;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.ids[Symbol.iterator]();
  }
}

/** A power of two that holds `expected` hashes at most three quarters full (and at least 16). */
function tableSize(expected: number): number {
  let slots = 16;
  while (slots * 3 < expected * 4) slots *= 2;
  return slots;
}
