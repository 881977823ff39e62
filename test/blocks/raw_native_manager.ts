/**
 * The native block manager's handle behind the BlockManagerLike interface
 * with none of the TypeScript checks (src/blocks/validate.ts) in front: what
 * reaches the C++ core is what the caller passed, so property tests that use
 * it test the native checks themselves. Only the conversions the handle
 * needs are made (tier names to codes, tags to numbers); an unknown tier
 * name becomes code 0, which the native side must refuse.
 */
import { nativeAddon, type NativeBlockManagerHandle } from '../../src/blocks/addon.js';
import { NativeScratch } from '../../src/blocks/native_scratch.js';
import type {
  AdmitResult,
  BlockEvents,
  BlockManagerLike,
  BlockManagerOptions,
  BlockMetadataView,
  CopyPlan,
  LookupResult,
  RequestTags,
  TierName,
} from '../../src/blocks/types.js';

const tierCode = (tier: TierName): number => (tier === 'device' ? 1 : tier === 'host' ? 2 : 0);

export class RawNativeManager implements BlockManagerLike {
  readonly handle: NativeBlockManagerHandle;
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  readonly maxClasses: number;
  readonly metadata: BlockMetadataView;
  readonly classScores: Float32Array;
  readonly #scratch: NativeScratch;

  constructor(options: BlockManagerOptions) {
    this.blockSize = options.blockSize ?? 16;
    this.bytesPerBlock = options.bytesPerBlock ?? 0;
    this.deviceBlocks = options.deviceBlocks;
    this.hostBlocks = options.hostBlocks ?? 0;
    this.maxClasses = options.maxClasses ?? 1 << 16;
    this.handle = new (nativeAddon().NativeBlockManager)(this.blockSize, this.bytesPerBlock, this.deviceBlocks, this.hostBlocks, this.maxClasses);
    const { classScore, ...metadata } = this.handle.metadata() as unknown as BlockMetadataView & { classScore: Float32Array };
    this.metadata = metadata;
    this.classScores = classScore;
    // Small on purpose: results that outgrow it take the overflow path.
    this.#scratch = new NativeScratch(this.handle, 4, 2);
  }

  get numBlockIds(): number { return this.deviceBlocks + this.hostBlocks; }
  get clock(): number { return this.handle.clock(); }
  get numRequests(): number { return this.handle.numRequests(); }

  lookup(hashes: BigUint64Array): LookupResult {
    return this.#scratch.lookup(this.handle.lookup(hashes));
  }

  admit(requestId: number, hashes: BigUint64Array, numTokens: number, tags?: RequestTags): AdmitResult | null {
    const code = this.handle.admit(requestId, hashes, numTokens, tags?.workload ?? -1, tags?.agent ?? -1, tags?.session ?? -1);
    return code === null ? null : this.#scratch.admitted(code);
  }

  append(requestId: number, numTokens: number, hashes: BigUint64Array = new BigUint64Array(0)): Int32Array | null {
    const code = this.handle.append(requestId, numTokens, hashes);
    return code === null ? null : this.#scratch.ids(code);
  }

  commit(requestId: number, numBlocks: number): Int32Array { return this.#scratch.ids(this.handle.commit(requestId, numBlocks)); }
  release(requestId: number): void { this.handle.release(requestId); }
  hasRequest(requestId: number): boolean { return this.handle.hasRequest(requestId); }
  requestBlocks(requestId: number): Int32Array { return this.#scratch.ids(this.handle.requestBlocks(requestId)); }
  setScores(blockIds: Int32Array, scores: Float32Array): void { this.handle.setScores(blockIds, scores); }
  setAllScores(scores: Float32Array): void { this.handle.setAllScores(scores); }
  setScoreClasses(blockIds: Int32Array, classes: Int32Array): void { this.handle.setScoreClasses(blockIds, classes); }
  setClassScores(classes: Int32Array, scores: Float32Array): void { this.handle.setClassScores(classes, scores); }
  evict(tier: TierName, count: number): number { return this.handle.evict(tierCode(tier), count); }
  demote(blockIds: Int32Array): number { return this.handle.demote(blockIds); }
  drop(blockIds: Int32Array): number { return this.handle.drop(blockIds); }
  load(blockIds: Int32Array): number { return this.handle.load(blockIds); }
  usedBlocks(tier: TierName): number { return this.handle.usedBlocks(tierCode(tier)); }
  evictableBlocks(tier: TierName): number { return this.handle.evictableBlocks(tierCode(tier)); }
  pinnedDeviceBlocks(): number { return this.handle.pinnedDeviceBlocks(); }

  takeCopyPlan(): CopyPlan {
    const code = this.handle.takeCopyPlan();
    if (code === 0) {
      return { srcTier: new Uint8Array(0), srcSlot: new Int32Array(0), dstTier: new Uint8Array(0), dstSlot: new Int32Array(0), stageStarts: new Int32Array(0) };
    }
    return this.#scratch.copyPlan(code);
  }

  takeEvents(): BlockEvents {
    return this.#scratch.takeEvents(true);
  }

  setRecordEvents(on: boolean): void { this.handle.setRecordEvents(on); }

  checkInvariants(): string { return this.handle.checkInvariants(); }
}
