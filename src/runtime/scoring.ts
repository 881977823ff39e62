/**
 * score: how the runtime turns its policies' scores into the block
 * manager's eviction order. Class-scoring policies score the classes that
 * changed (the class book files committed blocks under classes);
 * block-scoring policies score the blocks a call touched. Several scoring
 * policies combine by sum or by weights.
 */
import type { BlockManagerLike } from '../blocks/types.js';
import type { Policy } from '../policies/types.js';
import { ClassBook } from './classes.js';

export type ScoringMode = 'classes' | 'blocks' | 'none';

export class Scoring {
  readonly mode: ScoringMode;
  readonly classes: ClassBook;
  readonly #manager: BlockManagerLike;
  readonly #scorers: Policy[];
  readonly #weights: number[];
  readonly #invalidated = new Set<number>();
  /** Scratch of the class ids a rescore sends: no typed array allocated per call. */
  #classIds = new Int32Array(64);
  #scores = new Float32Array(64);
  #part = new Float32Array(64);

  /**
   * @throws RangeError when class- and block-scored policies are mixed, or
   *   `combine` is neither 'sum' nor one finite weight per scoring policy.
   */
  constructor(manager: BlockManagerLike, policies: readonly Policy[], combine: 'sum' | readonly number[]) {
    this.#manager = manager;
    this.#scorers = policies.filter((p) => p.scoring !== undefined);
    const modes = new Set(this.#scorers.map((p) => p.scoring));
    if (modes.size > 1) {
      throw new RangeError(
        `cannot combine class-scored and block-scored policies (${this.#scorers.map((p) => `${p.name}: ${p.scoring}`).join(', ')})`,
      );
    }
    this.mode = this.#scorers[0]?.scoring ?? 'none';
    if (combine === 'sum') {
      this.#weights = this.#scorers.map(() => 1);
    } else {
      if (!Array.isArray(combine) || combine.length !== this.#scorers.length || !combine.every(Number.isFinite)) {
        throw new RangeError(`combine must be 'sum' or ${this.#scorers.length} finite weights, one per scoring policy`);
      }
      this.#weights = [...combine];
    }
    this.classes = new ClassBook(manager);
  }

  /** Files blocks under their classes (class mode only). */
  classify(blockIds: ArrayLike<number>): void {
    if (this.mode === 'classes') this.classes.classify(blockIds);
  }

  /** Classes to rescore before the next eviction. */
  invalidate(classIds: Iterable<number>): void {
    for (const c of classIds) this.#invalidated.add(c);
  }

  invalidateAll(): void {
    for (let c = 0; c < this.#manager.maxClasses; c++) if (this.classes.get(c)) this.#invalidated.add(c);
  }

  /** Rescores the classes that changed, or (block mode) the touched blocks. */
  rescore(touched?: Int32Array): void {
    if (this.mode === 'classes') {
      for (const c of this.classes.takeFresh()) this.#invalidated.add(c);
      if (this.#invalidated.size === 0) return;
      if (this.#classIds.length < this.#invalidated.size) this.#classIds = new Int32Array(Math.max(this.#invalidated.size, 2 * this.#classIds.length));
      let n = 0;
      for (const c of this.#invalidated) if (this.classes.get(c)) this.#classIds[n++] = c;
      this.#invalidated.clear();
      if (n === 0) return;
      // A view of the scratch: policies read the ids during scoreClasses only.
      const classIds = this.#classIds.subarray(0, n);
      this.#manager.setClassScores(classIds, this.#combine(classIds, (p, out) => p.scoreClasses!(classIds, out)));
    } else if (this.mode === 'blocks' && touched && touched.length > 0) {
      const m = this.#manager.metadata;
      const live = touched.filter((id) => m.committed[id] === 1);
      if (live.length === 0) return;
      this.#manager.setScores(live, this.#combine(live, (p, out) => p.scoreBlocks!(live, out)));
    }
  }

  #combine(ids: Int32Array, score: (p: Policy, out: Float32Array) => void): Float32Array {
    if (this.#scores.length < ids.length) {
      this.#scores = new Float32Array(Math.max(ids.length, 2 * this.#scores.length));
      this.#part = new Float32Array(this.#scores.length);
    }
    if (this.#scorers.length === 1 && this.#weights[0] === 1) {
      const out = this.#scores.subarray(0, ids.length);
      out.fill(0);
      score(this.#scorers[0]!, out);
      return sanitize(out);
    }
    const total = this.#scores.subarray(0, ids.length);
    total.fill(0);
    const part = this.#part.subarray(0, ids.length);
    this.#scorers.forEach((p, k) => {
      part.fill(0);
      score(p, part);
      const w = this.#weights[k]!;
      for (let i = 0; i < ids.length; i++) total[i]! += w * part[i]!;
    });
    return sanitize(total);
  }
}

/** Scores must be finite for the core; NaN is a policy bug, so it is loud. */
function sanitize(scores: Float32Array): Float32Array {
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (Number.isNaN(s)) throw new Error('internal: a policy produced a NaN score');
    if (s === Infinity) scores[i] = 3.4e38;
    else if (s === -Infinity) scores[i] = -3.4e38;
  }
  return scores;
}
