/**
 * A set of 64-bit block hashes in least-recently-used order, keyed by the
 * hash's two 32-bit words so a lookup never allocates a bigint: open
 * addressing with linear probing (deletion shifts the run back, so there
 * are no tombstones), and an intrusive doubly linked list of entries in
 * use order. Entries are small integers: callers keep their own per-entry
 * fields in arrays of `entryCapacity` length, grown when it grows.
 *
 * Replaces a Map<bigint, T> used as an LRU (delete and set again to move a
 * key last; the first key is the oldest): the same order, without a bigint
 * per read, a hash-map entry per key, or an iterator that walks the map's
 * deleted slots to find its first key.
 */
const NONE = -1;
const INITIAL_ENTRIES = 1024;

export class HashLru {
  #lo = new Uint32Array(INITIAL_ENTRIES);
  #hi = new Uint32Array(INITIAL_ENTRIES);
  #prev = new Int32Array(INITIAL_ENTRIES);
  #next = new Int32Array(INITIAL_ENTRIES);
  /**
   * Per slot, three words: the key's low and high words and its entry
   * (NONE when empty), side by side so a probe reads one cache line;
   * at least twice as many slots as entries.
   */
  #slots = emptySlots(2 * INITIAL_ENTRIES);
  #mask = 2 * INITIAL_ENTRIES - 1;
  /** Entries never used yet start at #fresh; freed ones are chained through #next. */
  #fresh = 0;
  #freeList = NONE;
  #oldest = NONE;
  #newest = NONE;
  #size = 0;
  /** Called after the entry arrays grew, with their new length. */
  readonly #onGrow: (entries: number) => void;

  constructor(onGrow: (entries: number) => void = () => {}) {
    this.#onGrow = onGrow;
  }

  get size(): number {
    return this.#size;
  }

  /** Length of the entry arrays: valid entry indices are below it. */
  get entryCapacity(): number {
    return this.#lo.length;
  }

  /** The oldest entry, or -1 when empty. */
  get oldest(): number {
    return this.#oldest;
  }

  /** The entry of the hash with these words, or -1. */
  find(lo: number, hi: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    const l = lo | 0;
    const h = hi | 0;
    for (let s = slotOf(lo, hi, mask); ; s = (s + 1) & mask) {
      const e = slots[3 * s + 2]!;
      if (e === NONE) return NONE;
      if (slots[3 * s] === l && slots[3 * s + 1] === h) return e;
    }
  }

  /**
   * Loads the home slots of `count` keys (words[2i], words[2i + 1]) into the
   * cache ahead of their finds: independent loads, so the CPU overlaps
   * their misses, where finds one after another pay them in turn. Returns
   * a value of no meaning, for the caller to keep so the loads stay.
   */
  warm(words: Uint32Array, count: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    let touched = 0;
    for (let i = 0; i < count; i++) touched ^= slots[3 * slotOf(words[2 * i]!, words[2 * i + 1]!, mask) + 2]!;
    return touched;
  }

  /** Adds a hash that is not in the set, as the newest; returns its entry. */
  insert(lo: number, hi: number): number {
    if (2 * (this.#size + 1) > this.#mask + 1) this.#grow();
    let e = this.#freeList;
    if (e !== NONE) this.#freeList = this.#next[e]!;
    else e = this.#fresh++;
    this.#lo[e] = lo >>> 0;
    this.#hi[e] = hi >>> 0;
    this.#place(this.#slots, this.#mask, e);
    this.#size++;
    this.#link(e);
    return e;
  }

  /** Makes an entry the newest. */
  touch(e: number): void {
    if (e === this.#newest) return;
    this.#unlink(e);
    this.#link(e);
  }

  /** Removes an entry; its index may be handed out again. */
  remove(e: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let s = slotOf(this.#lo[e]!, this.#hi[e]!, mask);
    while (slots[3 * s + 2] !== e) s = (s + 1) & mask;
    // Backward-shift deletion: later entries of the run that may sit in
    // the hole move into it, so lookups never need tombstones.
    let hole = s;
    for (let j = (s + 1) & mask; slots[3 * j + 2] !== NONE; j = (j + 1) & mask) {
      const home = slotOf(slots[3 * j]! >>> 0, slots[3 * j + 1]! >>> 0, mask);
      // The entry at j may fill the hole when its home is not in (hole, j], cyclically.
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots[3 * hole] = slots[3 * j]!;
        slots[3 * hole + 1] = slots[3 * j + 1]!;
        slots[3 * hole + 2] = slots[3 * j + 2]!;
        hole = j;
      }
    }
    slots[3 * hole + 2] = NONE;
    this.#unlink(e);
    this.#next[e] = this.#freeList;
    this.#freeList = e;
    this.#size--;
  }

  #link(e: number): void {
    this.#prev[e] = this.#newest;
    this.#next[e] = NONE;
    if (this.#newest !== NONE) this.#next[this.#newest] = e;
    else this.#oldest = e;
    this.#newest = e;
  }

  #unlink(e: number): void {
    const p = this.#prev[e]!;
    const n = this.#next[e]!;
    if (p !== NONE) this.#next[p] = n;
    else this.#oldest = n;
    if (n !== NONE) this.#prev[n] = p;
    else this.#newest = p;
  }

  #grow(): void {
    const entries = 2 * this.#lo.length;
    this.#lo = grown(this.#lo, entries);
    this.#hi = grown(this.#hi, entries);
    this.#prev = grown(this.#prev, entries);
    this.#next = grown(this.#next, entries);
    const slots = emptySlots(2 * entries);
    const mask = 2 * entries - 1;
    for (let e = this.#oldest; e !== NONE; e = this.#next[e]!) this.#place(slots, mask, e);
    this.#slots = slots;
    this.#mask = mask;
    this.#onGrow(entries);
  }

  /** Puts entry `e` (its words set) in the first free slot of its run. */
  #place(slots: Int32Array, mask: number, e: number): void {
    const lo = this.#lo[e]!;
    const hi = this.#hi[e]!;
    let s = slotOf(lo, hi, mask);
    while (slots[3 * s + 2] !== NONE) s = (s + 1) & mask;
    slots[3 * s] = lo | 0;
    slots[3 * s + 1] = hi | 0;
    slots[3 * s + 2] = e;
  }
}

/** `count` empty slots: three words each, the entry word NONE. */
function emptySlots(count: number): Int32Array {
  const slots = new Int32Array(3 * count);
  for (let s = 0; s < count; s++) slots[3 * s + 2] = NONE;
  return slots;
}

function slotOf(lo: number, hi: number, mask: number): number {
  const h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  return (h ^ (h >>> 15)) & mask;
}

/** A copy of `a` in a longer array of its kind. */
export function grown<T extends Uint32Array | Int32Array | Float64Array | Uint8Array>(a: T, length: number): T {
  const out = new (a.constructor as new (n: number) => T)(length);
  out.set(a);
  return out;
}
