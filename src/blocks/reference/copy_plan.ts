/**
 * Copy plan staging and draining of the reference model, mirroring
 * native/core/copy_plan. Sets of slot keys stand in for the native
 * generation stamps; the stage boundaries come out the same.
 */
import { Tier, type CopyPlan, type TierCode } from '../types.js';

/** Copies recorded since the last `take()`, split into stages. */
export class PendingCopyPlan {
  private readonly deviceBlocks: number;
  private readonly srcTier: number[] = [];
  private readonly srcSlot: number[] = [];
  private readonly dstTier: number[] = [];
  private readonly dstSlot: number[] = [];
  private readonly stageStarts: number[] = [];
  // Slot keys (device slots, then host slots after deviceBlocks) read and
  // written by the copies of the current stage.
  private readonly stageReads = new Set<number>();
  private readonly stageWrites = new Set<number>();

  constructor(deviceBlocks: number) {
    this.deviceBlocks = deviceBlocks;
  }

  // A copy opens a new stage when it reads a slot written earlier in the
  // stage or writes a slot read or written earlier in it, so each stage's
  // copies can run in any order.
  record(srcTier: TierCode, srcSlot: number, dstTier: TierCode, dstSlot: number): void {
    const src = (srcTier === Tier.Device ? 0 : this.deviceBlocks) + srcSlot;
    const dst = (dstTier === Tier.Device ? 0 : this.deviceBlocks) + dstSlot;
    if (this.srcSlot.length === 0) {
      this.stageStarts.push(0);
    } else if (this.stageWrites.has(src) || this.stageReads.has(dst) || this.stageWrites.has(dst)) {
      this.stageStarts.push(this.srcSlot.length);
      this.stageReads.clear();
      this.stageWrites.clear();
    }
    this.stageReads.add(src);
    this.stageWrites.add(dst);
    this.srcTier.push(srcTier);
    this.srcSlot.push(srcSlot);
    this.dstTier.push(dstTier);
    this.dstSlot.push(dstSlot);
  }

  /** Returns and clears the recorded copies. */
  take(): CopyPlan {
    const out: CopyPlan = {
      srcTier: Uint8Array.from(this.srcTier),
      srcSlot: Int32Array.from(this.srcSlot),
      dstTier: Uint8Array.from(this.dstTier),
      dstSlot: Int32Array.from(this.dstSlot),
      stageStarts: Int32Array.from(this.stageStarts),
    };
    this.srcTier.length = this.srcSlot.length = this.dstTier.length = this.dstSlot.length = 0;
    this.stageStarts.length = 0;
    this.stageReads.clear();
    this.stageWrites.clear();
    return out;
  }
}
