import { totalmem } from 'node:os';

import { nativeAddon, type NativeCpuDataPlaneHandle } from './addon.js';
import { checkCopyPlan } from './copy_plan.js';
import { Tier, type CopyPlan, type TierName } from './types.js';
import { checkInt, describeValue } from '../util/check.js';
import { checkTier } from './validate.js';

/** Pool sizes of a data plane, on any backend. */
export interface DataPlaneOptions {
  /** KV bytes per block (WebGPU: a multiple of 4). */
  bytesPerBlock: number;
  deviceBlocks: number;
  /** Default 0: no host pool. */
  hostBlocks?: number;
}

/**
 * The CPU data plane: device and host KV pools as real memory, and a batched
 * C++ block copy that executes the block manager's copy plans.
 *
 * Plans run in the order they are given. `executeAsync` copies off the main
 * thread; calls are queued, so plans never overlap, and `execute` waits for
 * nothing: do not mix it with pending async copies.
 */
export class CpuDataPlane {
  readonly #native: NativeCpuDataPlaneHandle;
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  #tail: Promise<void> = Promise.resolve();

  constructor(options: DataPlaneOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.bytesPerBlock = checkInt(options.bytesPerBlock, 'options.bytesPerBlock', 1, Number.MAX_SAFE_INTEGER);
    this.deviceBlocks = checkInt(options.deviceBlocks, 'options.deviceBlocks', 1, 0x7fffffff);
    this.hostBlocks = checkInt(options.hostBlocks ?? 0, 'options.hostBlocks', 0, 0x7fffffff);
    checkFitsInMemory(this.bytesPerBlock, this.deviceBlocks, this.hostBlocks);
    this.#native = new (nativeAddon().NativeCpuDataPlane)(this.bytesPerBlock, this.deviceBlocks, this.hostBlocks);
  }

  /** Runs a plan now, on this thread. A bad plan throws before any copy. */
  execute(plan: CopyPlan): void {
    checkCopyPlan(plan, this.deviceBlocks, this.hostBlocks, 'execute');
    this.#native.execute(plan.srcTier, plan.srcSlot, plan.dstTier, plan.dstSlot);
  }

  /** Runs a plan on a worker thread, after every plan queued before it. */
  executeAsync(plan: CopyPlan): Promise<void> {
    try {
      checkCopyPlan(plan, this.deviceBlocks, this.hostBlocks, 'executeAsync');
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.#tail.then(() => this.#native.executeAsync(plan.srcTier, plan.srcSlot, plan.dstTier, plan.dstSlot));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Writes one block's bytes (exactly bytesPerBlock of them). */
  write(tier: TierName, slot: number, bytes: Uint8Array): void {
    this.#checkSlot(tier, slot, 'write');
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`write: bytes must be a Uint8Array, got ${describeValue(bytes)}`);
    if (bytes.length !== this.bytesPerBlock) {
      throw new RangeError(`write: bytes: expected ${this.bytesPerBlock} bytes (bytesPerBlock), got ${bytes.length}`);
    }
    this.#native.write(tier === 'device' ? Tier.Device : Tier.Host, slot, bytes);
  }

  /** Reads a copy of one block's bytes. */
  read(tier: TierName, slot: number): Uint8Array {
    this.#checkSlot(tier, slot, 'read');
    return this.#native.read(tier === 'device' ? Tier.Device : Tier.Host, slot);
  }

  /**
   * The device pool's own memory, deviceBlocks x bytesPerBlock bytes with
   * block `slot` at byte `slot * bytesPerBlock` (no copy; always the same
   * buffer): for an engine that computes on the blocks in place. Copy plans
   * rewrite it, so do not touch blocks while a plan that moves them runs.
   */
  devicePool(): ArrayBuffer {
    if (!this.#native.devicePool) throw new Error('devicePool: the loaded addon predates it; rebuild it (npm run build:native)');
    return this.#native.devicePool();
  }

  #checkSlot(tier: TierName, slot: unknown, op: string): void {
    checkTier(tier, op);
    const slots = tier === 'device' ? this.deviceBlocks : this.hostBlocks;
    if (slots === 0) throw new RangeError(`${op}: the ${tier} tier has no blocks`);
    checkInt(slot, `${op}: slot`, 0, slots - 1);
  }
}

const GIB = 1024 ** 3;

/**
 * Both pools are allocated and zeroed up front, so pools larger than the
 * machine's memory would spend seconds touching pages and then fail (or
 * swap). Refused at once instead, naming each pool's size.
 */
function checkFitsInMemory(bytesPerBlock: number, deviceBlocks: number, hostBlocks: number): void {
  const device = bytesPerBlock * deviceBlocks;
  const host = bytesPerBlock * hostBlocks;
  const memory = totalmem();
  if (device + host <= memory) return;
  const gib = (bytes: number) => `${(bytes / GIB).toFixed(1)} GiB`;
  throw new RangeError(
    `CpuDataPlane: the device pool (${deviceBlocks} blocks x ${bytesPerBlock} bytes = ${gib(device)}) and the host pool ` +
      `(${hostBlocks} blocks = ${gib(host)}) need ${gib(device + host)}, more than this machine's ${gib(memory)} of memory; ` +
      'lower options.deviceBlocks, options.hostBlocks or options.bytesPerBlock',
  );
}
