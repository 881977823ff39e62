/**
 * Hit scoring and victim selection: the contract every backend's scorer
 * meets (its input, output and argument check) and the plain TypeScript
 * version that is their oracle, exact for block ids.
 */
import { Tier, type BlockMetadataView } from '../blocks/types.js';

/**
 * What hit scoring reads: the block manager's metadata arrays (indexed by
 * block id) and its per-class scores, the reuse probabilities the policy
 * files blocks under.
 */
export type HitScoringInput = Pick<
  BlockMetadataView,
  'tier' | 'committed' | 'refCount' | 'deviceChildren' | 'lastAccess' | 'score' | 'scoreClass'
> & {
  /** Score of each class; `scoreClass[id]` indexes it when >= 0. */
  classScores: Float32Array;
};

/** Scores of every block id and the lowest-ordered evictable device leaves. */
export interface HitScoringOutput {
  /** Retention score of each block id: its class's score, or its own when classless. */
  scores: Float32Array;
  /** Up to `k` evictable device leaves, first victim first. */
  victims: Int32Array;
}

/**
 * Checks a {@link HitScoringInput}: array types, one entry per block id in
 * every metadata array, class indices below `classScores.length`. Returns
 * the number of block ids.
 */
export function checkHitScoringInput(input: HitScoringInput, op: string): number {
  if (typeof input !== 'object' || input === null) throw new TypeError(`${op}: input must be an object`);
  const typed: Array<[keyof HitScoringInput, new (n: number) => ArrayBufferView]> = [
    ['tier', Uint8Array], ['committed', Uint8Array], ['refCount', Int32Array], ['deviceChildren', Int32Array],
    ['lastAccess', Float64Array], ['score', Float32Array], ['scoreClass', Int32Array], ['classScores', Float32Array],
  ];
  for (const [field, type] of typed) {
    if (!(input[field] instanceof type)) throw new TypeError(`${op}: input.${field} must be a ${type.name}`);
  }
  const blocks = input.tier.length;
  for (const [field] of typed) {
    if (field !== 'classScores' && input[field].length !== blocks) {
      throw new RangeError(`${op}: input.${field} has length ${input[field].length}, expected ${blocks} (one per block id)`);
    }
  }
  const classes = input.classScores.length;
  for (let id = 0; id < blocks; id++) {
    const c = input.scoreClass[id]!;
    if (c >= classes) throw new RangeError(`${op}: scoreClass[${id}] = ${c} but there are only ${classes} class scores`);
  }
  return blocks;
}

/** The class's score for a classed block, else the block's own. */
function effectiveScore(input: HitScoringInput, id: number): number {
  const c = input.scoreClass[id]!;
  return c >= 0 ? input.classScores[c]! : input.score[id]!;
}

/** Evictable from the device tier: a committed, unpinned device block with no device children. */
export function isDeviceEvictable(input: HitScoringInput, id: number): boolean {
  return (
    input.tier[id] === Tier.Device &&
    input.committed[id] === 1 &&
    input.refCount[id] === 0 &&
    input.deviceChildren[id] === 0
  );
}

/** Retention score of every block id. */
export function referenceHitScores(input: HitScoringInput): Float32Array {
  const blocks = checkHitScoringInput(input, 'referenceHitScores');
  const scores = new Float32Array(blocks);
  for (let id = 0; id < blocks; id++) scores[id] = effectiveScore(input, id);
  return scores;
}

/**
 * The first `k` evictable device leaves in the block manager's eviction
 * order, (score, lastAccess, id) ascending; fewer when fewer are evictable.
 * Scores compare as numbers, so -0 ties with 0 and falls through to
 * lastAccess, as in the manager.
 */
export function referenceSelectVictims(input: HitScoringInput, k: number): Int32Array {
  const blocks = checkHitScoringInput(input, 'referenceSelectVictims');
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`referenceSelectVictims: k must be an integer >= 0, got ${k}`);
  const candidates: number[] = [];
  for (let id = 0; id < blocks; id++) if (isDeviceEvictable(input, id)) candidates.push(id);
  const score = candidates.map((id) => effectiveScore(input, id));
  const order = candidates.map((_, i) => i);
  order.sort((x, y) => {
    const sx = score[x]!;
    const sy = score[y]!;
    if (sx !== sy) return sx < sy ? -1 : 1;
    const lx = input.lastAccess[candidates[x]!]!;
    const ly = input.lastAccess[candidates[y]!]!;
    if (lx !== ly) return lx < ly ? -1 : 1;
    return candidates[x]! - candidates[y]!;
  });
  return Int32Array.from(order.slice(0, k), (i) => candidates[i]!);
}

/** Both outputs of hit scoring, as one backend call returns them. */
export function referenceHitScoring(input: HitScoringInput, k: number): HitScoringOutput {
  return { scores: referenceHitScores(input), victims: referenceSelectVictims(input, k) };
}
