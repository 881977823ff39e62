/**
 * The block copy oracle: a copy plan run on byte pools one copy after
 * another, which the WGSL and CUDA copy kernels are compared with, exactly.
 */
import { checkCopyPlan } from '../blocks/copy_plan.js';
import { checkInt } from '../util/check.js';
import { Tier, type CopyPlan } from '../blocks/types.js';

/** Device and host KV pools as bytes: slot `s` is `[s * bytesPerBlock, (s + 1) * bytesPerBlock)`. */
export interface BlockPools {
  bytesPerBlock: number;
  device: Uint8Array;
  host: Uint8Array;
}

/**
 * Runs a plan on byte pools, one copy after another. Within a stage no
 * copy reads or writes a slot another copy of the stage writes, so this
 * order gives the same bytes as running the stage's copies in parallel.
 */
export function referenceBlockCopy(pools: BlockPools, plan: CopyPlan): void {
  const { bytesPerBlock: size, device, host } = pools;
  checkInt(size, 'referenceBlockCopy: pools.bytesPerBlock', 1, Number.MAX_SAFE_INTEGER);
  for (const [name, pool] of [['device', device], ['host', host]] as const) {
    if (pool.length % size !== 0) {
      throw new RangeError(`referenceBlockCopy: pools.${name} holds ${pool.length} bytes, not a whole number of ${size}-byte blocks`);
    }
  }
  checkCopyPlan(plan, device.length / size, host.length / size, 'referenceBlockCopy');
  for (let i = 0; i < plan.srcSlot.length; i++) {
    const src = plan.srcTier[i] === Tier.Device ? device : host;
    const dst = plan.dstTier[i] === Tier.Device ? device : host;
    const from = plan.srcSlot[i]! * size;
    dst.set(src.subarray(from, from + size), plan.dstSlot[i]! * size);
  }
}
