/**
 * The CUDA kernels (kernels/cuda, behind kernels/cuda/cuda_backend.h) through
 * the addon: survival, hit scoring and the block-copy data plane. The addon
 * has them only when it was built with nvcc, and they run only where a
 * device is present; {@link cudaInfo} says which, and why not, without
 * throwing. Each result matches the TypeScript reference: victims and bytes
 * exactly, survival within max(1e-6, 1e-5 |reference|).
 */
import type { DataPlaneOptions } from '../../blocks/data_plane.js';
import {
  nativeAddon,
  type NativeAddon,
  type NativeCudaDataPlaneHandle,
  type NativeCudaHitScorerHandle,
  type NativeCudaInfo,
  type NativeCudaSurvivalHandle,
} from '../../blocks/addon.js';
import { Tier, type CopyPlan, type TierCode, type TierName } from '../../blocks/types.js';
import { checkInt } from '../../util/check.js';
import { checkTier } from '../../blocks/validate.js';
import {
  validateSurvivalInput,
  type SurvivalBackend,
  type SurvivalInput,
  type SurvivalOutput,
} from '../survival.js';
import { checkCopyPlan, planStages } from '../../blocks/copy_plan.js';
import { checkHitScoringInput, type HitScoringInput, type HitScoringOutput } from '../hit_scoring.js';
import type { AsyncSurvivalBackend } from '../webgpu/survival_program.js';

/** Whether CUDA is compiled into the addon and usable on this machine. */
export interface CudaInfo {
  /** The addon was compiled with CUDA. */
  built: boolean;
  /** A device can run the addon's kernels. */
  available: boolean;
  /** Why not, when `available` is false; '' when it is true. */
  reason: string;
  /** The device, e.g. "NVIDIA H100 80GB HBM3 (compute 9.0, 132 SMs, 79.1 GiB)"; '' when unavailable. */
  device: string;
}

/** Thrown when a CUDA class is constructed where CUDA is not available; `reason` says why. */
export class CudaUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`CUDA is not available: ${reason}`);
    this.name = 'CudaUnavailableError';
  }
}

const REBUILD_HINT = 'rebuild it with `npm run build:native`';

function unavailable(reason: string): CudaInfo {
  return { built: false, available: false, reason, device: '' };
}

/** What the addon says about CUDA. Never throws: a missing addon or an old one reports `built: false` and why. */
export function cudaInfo(): CudaInfo {
  let addon: NativeAddon;
  try {
    addon = nativeAddon();
  } catch (error) {
    return unavailable(`the native addon could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof addon.cudaInfo !== 'function') return unavailable(`the native addon predates CUDA support; ${REBUILD_HINT}`);
  try {
    const info: NativeCudaInfo = addon.cudaInfo();
    return { built: info.built, available: info.available, reason: info.reason, device: info.device };
  } catch (error) {
    const built = typeof addon.NativeCudaSurvival === 'function';
    return { built, available: false, reason: `cudaInfo failed: ${error instanceof Error ? error.message : String(error)}`, device: '' };
  }
}

type CudaClassName = 'NativeCudaSurvival' | 'NativeCudaHitScorer' | 'NativeCudaDataPlane';

/** The addon's class, or a {@link CudaUnavailableError} saying why it cannot be used here. */
function cudaClass<K extends CudaClassName>(name: K): NonNullable<NativeAddon[K]> {
  const info = cudaInfo();
  if (!info.available) throw new CudaUnavailableError(info.reason);
  const native = nativeAddon()[name];
  if (native === undefined) throw new CudaUnavailableError(`the native addon has no ${name}; ${REBUILD_HINT}`);
  return native as NonNullable<NativeAddon[K]>;
}

/**
 * The survival computation on the device (kernels/cuda/survival.cu), one
 * thread block per workload. A workload's matrices live in shared memory,
 * so {@link maxStates} bounds the state count (120 on an H100); larger
 * batches belong on the CPU backend.
 *
 * `compute` blocks the calling thread until the results are back;
 * `computeAsync` runs on a worker thread. Calls on one backend run one at a
 * time.
 */
export class CudaSurvivalBackend implements SurvivalBackend, AsyncSurvivalBackend {
  readonly name = 'cuda';
  /** The largest `states` this device takes. */
  readonly maxStates: number;
  readonly #native: NativeCudaSurvivalHandle;

  /** @throws CudaUnavailableError where CUDA is not available. */
  constructor() {
    this.#native = new (cudaClass('NativeCudaSurvival'))();
    this.maxStates = this.#native.maxStates();
  }

  /** @throws CudaUnavailableError where CUDA is not available. */
  static create(): CudaSurvivalBackend {
    return new CudaSurvivalBackend();
  }

  /** @throws TypeError / RangeError for input `validateSurvivalInput` refuses, or more states than {@link maxStates}. */
  compute(input: SurvivalInput): SurvivalOutput {
    const { workloads, states, horizon, transitions, endState } = this.#check(input, 'compute');
    return this.#native.compute(workloads, states, horizon, transitions, endState);
  }

  /**
   * {@link compute} off the main thread. The input is copied before this
   * returns, so its arrays may be reused at once.
   *
   * @throws (rejects with) what {@link compute} throws.
   */
  async computeAsync(input: SurvivalInput): Promise<SurvivalOutput> {
    const { workloads, states, horizon, transitions, endState } = this.#check(input, 'computeAsync');
    return this.#native.computeAsync(workloads, states, horizon, transitions, endState);
  }

  /** Frees the device buffers now; the backend cannot be used after. */
  destroy(): void {
    this.#native.destroy();
  }

  #check(input: SurvivalInput, op: string): SurvivalInput {
    const checked = validateSurvivalInput(input);
    if (checked.states > this.maxStates) {
      throw new RangeError(
        `survival: ${op}: states must be at most ${this.maxStates} on this CUDA device (shared memory), got ${checked.states}`,
      );
    }
    return checked;
  }
}

/**
 * Hit scoring on the device (kernels/cuda/hit_scoring.cu): every block's
 * effective score and the `k` evictable device leaves that go first, equal
 * to `referenceHitScoring` scores bit for bit and victims id for id.
 */
export class CudaHitScoringProgram {
  readonly #native: NativeCudaHitScorerHandle;

  /** @throws CudaUnavailableError where CUDA is not available. */
  constructor() {
    this.#native = new (cudaClass('NativeCudaHitScorer'))();
  }

  /** @throws CudaUnavailableError where CUDA is not available. */
  static create(): CudaHitScoringProgram {
    return new CudaHitScoringProgram();
  }

  /**
   * The score of every block id and up to `k` victims, first victim first.
   *
   * @throws TypeError / RangeError for malformed input (see
   *   `checkHitScoringInput`), a `k` that is not an integer >= 0, or a
   *   non-finite effective score.
   */
  compute(input: HitScoringInput, k: number): HitScoringOutput {
    return this.#native.selectVictims(...hitScoringArguments(input, k, 'compute'));
  }

  /**
   * {@link compute} off the main thread; the input is copied before this returns.
   *
   * @throws (rejects with) what {@link compute} throws.
   */
  async computeAsync(input: HitScoringInput, k: number): Promise<HitScoringOutput> {
    return this.#native.selectVictimsAsync(...hitScoringArguments(input, k, 'computeAsync'));
  }

  /** Frees the device buffers now; the program cannot be used after. */
  destroy(): void {
    this.#native.destroy();
  }
}

function hitScoringArguments(input: HitScoringInput, k: number, op: string): Parameters<NativeCudaHitScorerHandle['selectVictims']> {
  const blocks = checkHitScoringInput(input, op);
  checkInt(k, `${op}: k`, 0, Number.MAX_SAFE_INTEGER);
  const { tier, committed, refCount, deviceChildren, lastAccess, score, scoreClass, classScores } = input;
  return [tier, committed, refCount, deviceChildren, lastAccess, score, scoreClass, classScores, Math.min(k, blocks)];
}

/**
 * The stage starts the device takes: strictly increasing and below the copy
 * count, so empty stages are dropped. A plan with no recorded boundary is
 * passed on without any, and the plane splits it where a copy conflicts
 * with its stage, which keeps the plan's one-after-another meaning.
 */
function deviceStageStarts(plan: CopyPlan): Int32Array {
  if (plan.stageStarts.length === 0) return plan.stageStarts;
  return Int32Array.from(planStages(plan), ([start]) => start);
}

const planeHandles = new WeakMap<CudaDataPlane, NativeCudaDataPlaneHandle>();

/**
 * The addon object behind a CudaDataPlane, for the reference engine to
 * compute in its device pool (the engine keeps the pool alive past
 * `destroy()`). Not part of the public API.
 */
export function nativeCudaDataPlane(plane: CudaDataPlane): NativeCudaDataPlaneHandle {
  const handle = planeHandles.get(plane);
  if (handle === undefined) throw new TypeError('not a CudaDataPlane');
  return handle;
}

/**
 * The CUDA data plane: the device pool in device memory and the host pool
 * in pinned host memory the device maps, so one kernel launch per stage
 * copies between any of them. The counterpart of `CpuDataPlane`.
 *
 * `execute` and `prefetch` queue work and return: copies on one stream, in
 * order; prefetches on a second stream that starts after the copies queued
 * before it and overlaps later ones until {@link waitForPrefetch}.
 * {@link synchronize} waits for both. `write` and `read` wait for the
 * queued work that may touch the block.
 */
export class CudaDataPlane {
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  readonly #native: NativeCudaDataPlaneHandle;

  /** @throws CudaUnavailableError where CUDA is not available (after the options are checked). */
  constructor(options: DataPlaneOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.bytesPerBlock = checkInt(options.bytesPerBlock, 'options.bytesPerBlock', 1, Number.MAX_SAFE_INTEGER);
    this.deviceBlocks = checkInt(options.deviceBlocks, 'options.deviceBlocks', 1, 0x7fffffff);
    this.hostBlocks = checkInt(options.hostBlocks ?? 0, 'options.hostBlocks', 0, 0x7fffffff);
    this.#native = new (cudaClass('NativeCudaDataPlane'))(this.bytesPerBlock, this.deviceBlocks, this.hostBlocks);
    planeHandles.set(this, this.#native);
  }

  /** @throws CudaUnavailableError where CUDA is not available. */
  static create(options: DataPlaneOptions): CudaDataPlane {
    return new CudaDataPlane(options);
  }

  /**
   * Queues a plan's copies, one launch per stage. A bad plan throws (see
   * `checkCopyPlan`) before anything is queued, as does a stage whose
   * copies conflict (an Error naming the copy).
   */
  execute(plan: CopyPlan): void {
    checkCopyPlan(plan, this.deviceBlocks, this.hostBlocks, 'execute');
    this.#native.execute(plan.srcTier, plan.srcSlot, plan.dstTier, plan.dstSlot, deviceStageStarts(plan));
  }

  /** Queues host -> device copies of whole blocks, `hostSlots[i]` to `deviceSlots[i]`; device slots must be distinct. */
  prefetch(hostSlots: Int32Array, deviceSlots: Int32Array): void {
    if (!(hostSlots instanceof Int32Array) || !(deviceSlots instanceof Int32Array)) {
      throw new TypeError('prefetch: hostSlots and deviceSlots must be Int32Arrays');
    }
    if (hostSlots.length !== deviceSlots.length) {
      throw new RangeError(`prefetch: hostSlots has length ${hostSlots.length} but deviceSlots has ${deviceSlots.length}`);
    }
    const written = new Set<number>();
    for (let i = 0; i < hostSlots.length; i++) {
      const host = hostSlots[i]!;
      const device = deviceSlots[i]!;
      if (host < 0 || host >= this.hostBlocks) {
        throw new RangeError(`prefetch: copy ${i} has host slot ${host}, out of range [0, ${this.hostBlocks})`);
      }
      if (device < 0 || device >= this.deviceBlocks) {
        throw new RangeError(`prefetch: copy ${i} has device slot ${device}, out of range [0, ${this.deviceBlocks})`);
      }
      if (written.has(device)) throw new RangeError(`prefetch: device slot ${device} of copy ${i} is written twice`);
      written.add(device);
    }
    this.#native.prefetch(hostSlots, deviceSlots);
  }

  /** {@link prefetch} for a plan whose copies all go from host to device. */
  prefetchPlan(plan: CopyPlan): void {
    const copies = checkCopyPlan(plan, this.deviceBlocks, this.hostBlocks, 'prefetchPlan');
    for (let i = 0; i < copies; i++) {
      if (plan.srcTier[i] !== Tier.Host || plan.dstTier[i] !== Tier.Device) {
        throw new RangeError(`prefetchPlan: copy ${i} does not go from host to device`);
      }
    }
    this.prefetch(plan.srcSlot, plan.dstSlot);
  }

  /** Copies queued from now on wait for the prefetches queued so far; the host does not wait. */
  waitForPrefetch(): void {
    this.#native.waitForPrefetch();
  }

  /** Whether the prefetches queued so far have finished. */
  prefetchComplete(): boolean {
    return this.#native.prefetchComplete();
  }

  /** Waits for every queued copy and prefetch. */
  synchronize(): void {
    this.#native.synchronize();
  }

  /** Writes one block's bytes (exactly bytesPerBlock of them), after the queued work that may use it. */
  write(tier: TierName, slot: number, bytes: Uint8Array): void {
    const where = this.#slot(tier, slot, 'write');
    if (!(bytes instanceof Uint8Array)) throw new TypeError('write: bytes must be a Uint8Array');
    if (bytes.length !== this.bytesPerBlock) {
      throw new RangeError(`write: expected ${this.bytesPerBlock} bytes, got ${bytes.length}`);
    }
    this.#native.write(where, slot, bytes);
  }

  /** Reads a copy of one block's bytes, after the queued work. */
  read(tier: TierName, slot: number): Uint8Array {
    return this.#native.read(this.#slot(tier, slot, 'read'), slot);
  }

  /** Frees the pools (after the queued work); the plane cannot be used after. */
  destroy(): void {
    this.#native.destroy();
  }

  #slot(tier: TierName, slot: number, op: string): TierCode {
    checkTier(tier, op);
    const capacity = tier === 'device' ? this.deviceBlocks : this.hostBlocks;
    if (capacity === 0) throw new RangeError(`${op}: the ${tier} tier has no blocks`);
    checkInt(slot, `${op}: slot`, 0, capacity - 1);
    return tier === 'device' ? Tier.Device : Tier.Host;
  }
}
