/**
 * The arrays the native block manager writes its results into. A native
 * call returns a count; the answer is in the scratch, and callers get
 * fresh copies of what they keep. Typed arrays created from native code
 * cost several microseconds per call (an ArrayBuffer, its views, the array
 * holding them); a copy made here costs a fraction of that.
 *
 * The copies are views carved from shared slabs, not arrays of their own:
 * each new ArrayBuffer is memory outside V8's heap, allocated, zeroed,
 * registered and swept, and slice() of a 258-block answer costs about
 * 0.8 µs where a view of a slab costs 0.1. A copy is never written again
 * once returned; a slab lives as long as any view of it.
 *
 * Both scratch arrays are views of ArrayBuffers created here (their memory
 * never moves), bound to the native side once and again when one grows.
 */
import type { NativeBlockManagerHandle } from './addon.js';
import type { AdmitResult, BlockEvents, CopyPlan, LookupResult } from './types.js';

const EMPTY_EVENTS: BlockEvents = Object.freeze({
  kind: Object.freeze(new Uint8Array(0)),
  block: Object.freeze(new Int32Array(0)),
  hash: Object.freeze(new BigUint64Array(0)),
  tier: Object.freeze(new Uint8Array(0)),
});

const NO_IDS: Int32Array = Object.freeze(new Int32Array(0)) as Int32Array;

/**
 * Bytes per slab. Views are carved in order and requests release roughly
 * in order, so what a slab keeps alive is mostly what callers hold; at
 * worst one view pins its slab (64 KiB per request in flight).
 */
const SLAB_BYTES = 64 * 1024;
/** Answers larger than this get an ArrayBuffer of their own. */
const MAX_CARVED_BYTES = SLAB_BYTES / 4;

export class NativeScratch {
  readonly #native: NativeBlockManagerHandle;
  /** Block ids and counts of the last result. */
  ints = new Int32Array(0);
  #events = new Uint8Array(0);
  #hash = new BigUint64Array(0);
  #block = new Int32Array(0);
  #kind = new Uint8Array(0);
  #tier = new Uint8Array(0);
  #slab = new ArrayBuffer(0);
  #slabUsed = 0;
  /** Where the last #carve's room starts in the buffer it returned. */
  #carvedAt = 0;

  constructor(native: NativeBlockManagerHandle, ints: number, events: number) {
    this.#native = native;
    this.#bind(ints, events);
  }

  /** Grows the int scratch to hold at least `length` values. */
  ensureInts(length: number): void {
    if (length > this.ints.length) this.#bind(length, 0);
  }

  /** The length of a result in `ints`, fetching one that did not fit (a negative code). */
  written(code: number): number {
    if (code >= 0) return code;
    this.#bind(-code - 1, 0);
    return this.#native.takeOverflow();
  }

  /**
   * The block ids a call returning `code` wrote (append, commit,
   * requestBlocks), in a fresh array; none (most decode steps add no
   * block) in one shared empty one, which holds nothing to change.
   */
  ids(code: number): Int32Array {
    const n = this.written(code);
    return n === 0 ? NO_IDS : this.#copy(0, n);
  }

  /** What lookup wrote: [deviceBlocks, hostBlocks, ...blockIds]. */
  lookup(code: number): LookupResult {
    const n = this.written(code);
    return { deviceBlocks: this.ints[0]!, hostBlocks: this.ints[1]!, blockIds: this.#copy(2, n - 2) };
  }

  /** What admit wrote: [cachedDeviceTokens, loadedBlocks, ...blockIds, ...blockTable]. */
  admitted(code: number): AdmitResult {
    const total = this.written(code);
    const blocks = (total - 2) / 2;
    const ints = this.ints;
    // Ids and table are one copy, two views of it.
    const both = this.#copy(2, total - 2);
    return { cachedDeviceTokens: ints[0]!, loadedBlocks: ints[1]!, blockIds: both.subarray(0, blocks), blockTable: both.subarray(blocks) };
  }

  /**
   * Drains the native side's events: into fresh arrays (`copy`, in one
   * buffer), or as views of the scratch, valid until the next drain.
   */
  takeEvents(copy: boolean): BlockEvents {
    let n = this.#native.takeEvents();
    if (n === 0) return EMPTY_EVENTS;
    if (n < 0) {
      // Left queued: room for all of them, then drain again.
      this.#bind(0, -n);
      n = this.#native.takeEvents();
    }
    if (!copy) return { kind: this.#kind.subarray(0, n), block: this.#block.subarray(0, n), hash: this.#hash.subarray(0, n), tier: this.#tier.subarray(0, n) };
    const buffer = new ArrayBuffer(14 * n);
    const hash = new BigUint64Array(buffer, 0, n);
    hash.set(this.#hash.subarray(0, n));
    const block = new Int32Array(buffer, 8 * n, n);
    block.set(this.#block.subarray(0, n));
    const kind = new Uint8Array(buffer, 12 * n, n);
    kind.set(this.#kind.subarray(0, n));
    const tier = new Uint8Array(buffer, 13 * n, n);
    tier.set(this.#tier.subarray(0, n));
    return { kind, block, hash, tier };
  }

  /**
   * What takeCopyPlan wrote: [n, stages, srcSlot x n, dstSlot x n,
   * stageStarts x stages, srcTier x n, dstTier x n], copied into one
   * carved region (ints first, so every view is aligned).
   */
  copyPlan(code: number): CopyPlan {
    this.written(code);
    const ints = this.ints;
    const n = ints[0]!;
    const stages = ints[1]!;
    const buffer = this.#carve(10 * n + 4 * stages);
    const at = this.#carvedAt;
    // Slots and stage starts lie in the same order in both: one copy.
    const tiers = 2 + 2 * n + stages;
    new Int32Array(buffer, at, tiers - 2).set(ints.subarray(2, tiers));
    const srcTier = new Uint8Array(buffer, at + 8 * n + 4 * stages, n);
    const dstTier = new Uint8Array(buffer, at + 9 * n + 4 * stages, n);
    srcTier.set(ints.subarray(tiers, tiers + n));
    dstTier.set(ints.subarray(tiers + n, tiers + 2 * n));
    return {
      srcTier,
      srcSlot: new Int32Array(buffer, at, n),
      dstTier,
      dstSlot: new Int32Array(buffer, at + 4 * n, n),
      stageStarts: new Int32Array(buffer, at + 8 * n, stages),
    };
  }

  /** A fresh copy of `ints[from, from + n)`. */
  #copy(from: number, n: number): Int32Array {
    const out = new Int32Array(this.#carve(4 * n), this.#carvedAt, n);
    out.set(this.ints.subarray(from, from + n));
    return out;
  }

  /**
   * Room for `bytes` that nothing else will write: the buffer, with the
   * offset in #carvedAt (8-aligned). Carved from the current slab when it
   * fits, else a buffer of its own.
   */
  #carve(bytes: number): ArrayBuffer {
    if (bytes > MAX_CARVED_BYTES) {
      this.#carvedAt = 0;
      return new ArrayBuffer(bytes);
    }
    let used = this.#slabUsed;
    if (used + bytes > this.#slab.byteLength) {
      this.#slab = new ArrayBuffer(SLAB_BYTES);
      used = 0;
    }
    this.#carvedAt = used;
    this.#slabUsed = (used + bytes + 7) & ~7;
    return this.#slab;
  }

  /** Binds scratch arrays of at least these sizes, at least doubling one that grows. */
  #bind(ints: number, events: number): void {
    if (ints > this.ints.length) this.ints = new Int32Array(new ArrayBuffer(4 * Math.max(ints, 2 * this.ints.length, 2)));
    const capacity = this.#hash.length;
    if (events > capacity || this.#events.length === 0) {
      const n = Math.max(events, 2 * capacity, 1);
      const buffer = new ArrayBuffer(14 * n);
      this.#events = new Uint8Array(buffer);
      this.#hash = new BigUint64Array(buffer, 0, n);
      this.#block = new Int32Array(buffer, 8 * n, n);
      this.#kind = new Uint8Array(buffer, 12 * n, n);
      this.#tier = new Uint8Array(buffer, 13 * n, n);
    }
    this.#native.bindScratch(this.ints, this.#events);
  }
}
