/**
 * The drained event queue of the reference model, mirroring
 * native/core/events.
 */
import { EventKind, Tier, type BlockEvents, type BlockMetadataView, type EventKindCode } from '../types.js';

/** Events recorded since the last `take()`, in the order they happened. */
export class EventQueue {
  private readonly kind: number[] = [];
  private readonly block: number[] = [];
  private readonly hash: bigint[] = [];
  private readonly tier: number[] = [];
  /** Whether events are recorded (setRecordEvents). */
  private on = true;

  // Hash and tier as they are right after the event; a removed block
  // reports tier Free but still its hash (cleared only when it is freed).
  record(kind: EventKindCode, id: number, m: BlockMetadataView): void {
    if (!this.on) return;
    this.kind.push(kind);
    this.block.push(id);
    this.hash.push(m.hash[id]!);
    this.tier.push(kind === EventKind.Removed ? Tier.Free : m.tier[id]!);
  }

  /** Turns recording on or off; off drops what was recorded. */
  setOn(on: boolean): void {
    this.on = on;
    if (!on) this.kind.length = this.block.length = this.hash.length = this.tier.length = 0;
  }

  /** Returns and clears the recorded events. */
  take(): BlockEvents {
    const out: BlockEvents = {
      kind: Uint8Array.from(this.kind),
      block: Int32Array.from(this.block),
      hash: BigUint64Array.from(this.hash),
      tier: Uint8Array.from(this.tier),
    };
    this.kind.length = this.block.length = this.hash.length = this.tier.length = 0;
    return out;
  }
}
