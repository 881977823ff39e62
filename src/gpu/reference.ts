/**
 * Plain TypeScript versions of the GPU data-plane kernels: block copy, hit
 * scoring and victim selection. They are the oracle the WGSL (and CUDA)
 * kernels are compared with, exactly for bytes and block ids; the survival
 * oracle is `ReferenceSurvivalBackend` in policies/cachesage/survival.ts.
 */
import { Tier, type BlockMetadataView, type CopyPlan } from '../blocks/types.js';

/** Device and host KV pools as bytes: slot `s` is `[s * bytesPerBlock, (s + 1) * bytesPerBlock)`. */
export interface BlockPools {
  bytesPerBlock: number;
  device: Uint8Array;
  host: Uint8Array;
}

/** The stage boundaries of a plan as `[start, end)` copy ranges, in order. */
export function planStages(plan: CopyPlan): Array<[number, number]> {
  const copies = plan.srcSlot.length;
  const stages: Array<[number, number]> = [];
  const starts = plan.stageStarts;
  // A plan with copies but no recorded boundary is one stage.
  if (starts.length === 0) return copies > 0 ? [[0, copies]] : [];
  for (let k = 0; k < starts.length; k++) {
    const start = starts[k]!;
    const end = k + 1 < starts.length ? starts[k + 1]! : copies;
    if (end > start) stages.push([start, end]);
  }
  return stages;
}

/**
 * Checks a plan against pool sizes: parallel arrays of one length, tiers
 * Device or Host, slots in range, stage starts non-decreasing from 0 and
 * within the plan. Throws a TypeError or RangeError naming the first
 * offender; returns the number of copies.
 */
export function checkCopyPlan(plan: CopyPlan, deviceBlocks: number, hostBlocks: number, op: string): number {
  if (typeof plan !== 'object' || plan === null) throw new TypeError(`${op}: plan must be a CopyPlan object`);
  if (!(plan.srcTier instanceof Uint8Array) || !(plan.dstTier instanceof Uint8Array)) {
    throw new TypeError(`${op}: plan.srcTier and plan.dstTier must be Uint8Arrays`);
  }
  if (!(plan.srcSlot instanceof Int32Array) || !(plan.dstSlot instanceof Int32Array)) {
    throw new TypeError(`${op}: plan.srcSlot and plan.dstSlot must be Int32Arrays`);
  }
  if (!(plan.stageStarts instanceof Int32Array)) throw new TypeError(`${op}: plan.stageStarts must be an Int32Array`);
  const copies = plan.srcSlot.length;
  if (plan.srcTier.length !== copies || plan.dstTier.length !== copies || plan.dstSlot.length !== copies) {
    throw new RangeError(`${op}: plan arrays must all have length ${copies}`);
  }
  const checkSide = (i: number, tier: number, slot: number, side: string): void => {
    if (tier !== Tier.Device && tier !== Tier.Host) {
      throw new RangeError(`${op}: copy ${i} has ${side} tier ${tier}; expected ${Tier.Device} (device) or ${Tier.Host} (host)`);
    }
    const capacity = tier === Tier.Device ? deviceBlocks : hostBlocks;
    if (slot < 0 || slot >= capacity) {
      throw new RangeError(`${op}: copy ${i} has ${side} slot ${slot}, out of range [0, ${capacity})`);
    }
  };
  for (let i = 0; i < copies; i++) {
    checkSide(i, plan.srcTier[i]!, plan.srcSlot[i]!, 'source');
    checkSide(i, plan.dstTier[i]!, plan.dstSlot[i]!, 'destination');
  }
  let previous = 0;
  for (let k = 0; k < plan.stageStarts.length; k++) {
    const start = plan.stageStarts[k]!;
    if (start < previous || start > copies || (k === 0 && start !== 0)) {
      throw new RangeError(`${op}: stageStarts[${k}] = ${start} must be non-decreasing, start at 0 and be <= ${copies}`);
    }
    previous = start;
  }
  return copies;
}

/**
 * Runs a plan on byte pools, one copy after another. Within a stage no
 * copy reads or writes a slot another copy of the stage writes, so this
 * order gives the same bytes as running the stage's copies in parallel.
 */
export function referenceBlockCopy(pools: BlockPools, plan: CopyPlan): void {
  const { bytesPerBlock: size, device, host } = pools;
  checkCopyPlan(plan, device.length / size, host.length / size, 'referenceBlockCopy');
  for (let i = 0; i < plan.srcSlot.length; i++) {
    const src = plan.srcTier[i] === Tier.Device ? device : host;
    const dst = plan.dstTier[i] === Tier.Device ? device : host;
    const from = plan.srcSlot[i]! * size;
    dst.set(src.subarray(from, from + size), plan.dstSlot[i]! * size);
  }
}

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
