/**
 * The copy plan contract every data plane runs: its stages and the one
 * check of a plan against pool sizes, shared by the CPU, WebGPU and CUDA
 * data planes and the reference copy.
 */
import { Tier, type CopyPlan } from './types.js';

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
