/**
 * The WebGPU block copy: device and host KV pools as GPU buffers and a WGSL
 * kernel (kernels/wgsl/block_copy.wgsl) that runs a CopyPlan stage by stage,
 * every stage in one command encoder: one dispatch per stage, or copy
 * commands for the cross-tier copies.
 */
import { checkInt } from '../../util/check.js';
import { checkTier } from '../../blocks/validate.js';
import { Tier, type CopyPlan, type TierName } from '../../blocks/types.js';
import { checkCopyPlan, planStages } from '../../blocks/copy_plan.js';
import {
  BufferUsage,
  PipelineCache,
  acquireWebGpu,
  deviceLimit,
  readInto,
  ReusableBuffer,
  withErrorScopes,
  type WebGpuContext,
} from './device.js';

/** Pool sizes and copy method of a {@link WebGpuBlockCopyProgram}. */
export interface WebGpuBlockPoolOptions {
  /** KV bytes per block: a positive multiple of 4 (WGSL moves 32-bit words). */
  bytesPerBlock: number;
  deviceBlocks: number;
  /** Default 0: no host pool. */
  hostBlocks?: number;
  /**
   * How cross-tier copies run (default 'kernel'): 'kernel' copies every
   * block of a stage in one dispatch, which suits many small blocks;
   * 'copy-commands' issues one copyBufferToBuffer per cross-tier block,
   * which reaches the copy engine's bandwidth on large blocks.
   */
  method?: BlockCopyMethod;
}

/** See {@link WebGpuBlockPoolOptions.method}. */
export type BlockCopyMethod = 'kernel' | 'copy-commands';

const wordPipelines = new PipelineCache('block_copy', 'copy_words');
const quadPipelines = new PipelineCache('block_copy', 'copy_quads');

const WORKGROUP = 256;
// Grid-stride loops cover larger stages; more workgroups than this only add
// scheduling cost.
const MAX_WORKGROUPS = 16384;
const MAX_GROUPS_PER_BLOCK = 64;
// Uniform buffer offsets must be multiples of minUniformBufferOffsetAlignment,
// at most 256 on every adapter.
const PARAMS_STRIDE = 256;
const PARAMS_BYTES = 16;
// A binding may not be empty, so an absent host pool still gets a buffer.
const MIN_POOL_BYTES = 16;

/**
 * Device and host KV pools on one WebGPU device and the kernel that copies
 * blocks between them.
 *
 * Work goes through the device queue in call order: a {@link submit} is
 * seen by every later submit, write and read, with no waiting in between.
 */
export class WebGpuBlockCopyProgram {
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  readonly method: BlockCopyMethod;
  readonly context: WebGpuContext;
  /** The device pool: slot `s` is bytes `[s * bytesPerBlock, (s + 1) * bytesPerBlock)`. */
  readonly devicePool: GPUBuffer;
  /** The host pool, laid out like the device pool. */
  readonly hostPool: GPUBuffer;
  readonly #pipeline: GPUComputePipeline;
  readonly #unitsPerBlock: number;
  readonly #copies: ReusableBuffer;
  readonly #stageParams: ReusableBuffer;
  #destroyed = false;

  private constructor(
    context: WebGpuContext,
    pipeline: GPUComputePipeline,
    sizes: { bytesPerBlock: number; deviceBlocks: number; hostBlocks: number; method: BlockCopyMethod },
    quads: boolean,
  ) {
    this.method = sizes.method;
    this.context = context;
    this.bytesPerBlock = sizes.bytesPerBlock;
    this.deviceBlocks = sizes.deviceBlocks;
    this.hostBlocks = sizes.hostBlocks;
    this.#pipeline = pipeline;
    this.#unitsPerBlock = this.bytesPerBlock / (quads ? 16 : 4);
    const usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
    const { device } = context;
    // Reused by every submit: a queue write lands after the work submitted
    // before it, so the next plan never overwrites one still queued.
    this.#copies = new ReusableBuffer(device, 'copy plan', BufferUsage.STORAGE | BufferUsage.COPY_DST);
    this.#stageParams = new ReusableBuffer(device, 'copy stages', BufferUsage.UNIFORM | BufferUsage.COPY_DST);
    this.devicePool = device.createBuffer({ label: 'device pool', size: this.deviceBlocks * this.bytesPerBlock, usage });
    this.hostPool = device.createBuffer({
      label: 'host pool',
      size: Math.max(this.hostBlocks * this.bytesPerBlock, MIN_POOL_BYTES),
      usage,
    });
  }

  /**
   * Allocates zeroed pools on `context` (default: the shared device) and
   * compiles the kernel if this device has not yet.
   *
   * @throws TypeError / RangeError for bad sizes, including a pool larger
   *   than the device can bind; WebGpuUnavailableError without a device.
   */
  static async create(options: WebGpuBlockPoolOptions, context?: WebGpuContext): Promise<WebGpuBlockCopyProgram> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const bytesPerBlock = checkInt(options.bytesPerBlock, 'options.bytesPerBlock', 4, 0x7fffffff);
    if (bytesPerBlock % 4 !== 0) throw new RangeError(`options.bytesPerBlock must be a multiple of 4, got ${bytesPerBlock}`);
    const deviceBlocks = checkInt(options.deviceBlocks, 'options.deviceBlocks', 1, 0x7fffffff);
    const hostBlocks = checkInt(options.hostBlocks ?? 0, 'options.hostBlocks', 0, 0x7fffffff);
    const method = options.method ?? 'kernel';
    if (method !== 'kernel' && method !== 'copy-commands') {
      throw new TypeError(`options.method must be 'kernel' or 'copy-commands', got ${String(method)}`);
    }
    const ctx = context ?? (await acquireWebGpu());
    const { device } = ctx;
    const limit = Math.min(deviceLimit(device, 'maxStorageBufferBindingSize'), deviceLimit(device, 'maxBufferSize'));
    for (const [name, blocks] of [['device', deviceBlocks], ['host', hostBlocks]] as const) {
      if (blocks * bytesPerBlock > limit) {
        throw new RangeError(
          `the ${name} pool needs ${blocks * bytesPerBlock} bytes; this device binds at most ${limit} bytes per buffer`,
        );
      }
    }
    const quads = bytesPerBlock % 16 === 0;
    const { pipeline } = await (quads ? quadPipelines : wordPipelines).get(device);
    return new WebGpuBlockCopyProgram(ctx, pipeline, { bytesPerBlock, deviceBlocks, hostBlocks, method }, quads);
  }

  /**
   * Encodes a plan stage by stage into one command encoder and submits it
   * without waiting. With method 'kernel' each stage is one dispatch; with
   * 'copy-commands' each cross-tier copy is a copyBufferToBuffer and only
   * same-tier copies (which WebGPU cannot copy within one buffer) go to the
   * kernel. Validation errors surface at the next awaited call.
   *
   * @throws TypeError / RangeError for a malformed plan, before anything is submitted.
   */
  submit(plan: CopyPlan): void {
    this.#checkLive('submit');
    const copies = checkCopyPlan(plan, this.deviceBlocks, this.hostBlocks, 'submit');
    if (copies === 0) return;
    const { device } = this.context;
    const stages = planStages(plan);
    const commands = this.method === 'copy-commands';

    // The kernel's copies, grouped by stage: all of them, or with copy
    // commands only those whose source and destination share a pool.
    const packed = new Uint32Array(copies * 4);
    const kernelStages: Array<[number, number]> = [];
    let packedCount = 0;
    for (const [start, end] of stages) {
      const first = packedCount;
      for (let i = start; i < end; i++) {
        if (commands && plan.srcTier[i] !== plan.dstTier[i]) continue;
        packed.set([plan.srcTier[i]!, plan.srcSlot[i]!, plan.dstTier[i]!, plan.dstSlot[i]!], 4 * packedCount++);
      }
      kernelStages.push([first, packedCount]);
    }
    const copyBuffer = this.#copies.get(packedCount * 16);
    if (packedCount > 0) device.queue.writeBuffer(copyBuffer, 0, packed, 0, packedCount * 4);

    const params = new Uint32Array((stages.length * PARAMS_STRIDE) / 4);
    const perDimension = deviceLimit(device, 'maxComputeWorkgroupsPerDimension');
    const x = Math.min(Math.ceil(this.#unitsPerBlock / WORKGROUP), MAX_GROUPS_PER_BLOCK);
    kernelStages.forEach(([start, end], k) => params.set([start, end - start, this.#unitsPerBlock], (k * PARAMS_STRIDE) / 4));
    const paramBuffer = this.#stageParams.get(params.byteLength);
    device.queue.writeBuffer(paramBuffer, 0, params);

    const quads = this.#unitsPerBlock * 16 === this.bytesPerBlock;
    const layout = this.#pipeline.getBindGroupLayout(0);
    const size = this.bytesPerBlock;
    const encoder = device.createCommandEncoder({ label: 'block copy' });
    // Commands of one encoder run in order, and WebGPU makes each pass's and
    // each copy's writes visible to the next, which keeps stages in order.
    stages.forEach(([start, end], k) => {
      if (commands) {
        for (let i = start; i < end; i++) {
          if (plan.srcTier[i] === plan.dstTier[i]) continue;
          const source = plan.srcTier[i] === Tier.Device ? this.devicePool : this.hostPool;
          const destination = plan.dstTier[i] === Tier.Device ? this.devicePool : this.hostPool;
          encoder.copyBufferToBuffer(source, plan.srcSlot[i]! * size, destination, plan.dstSlot[i]! * size, size);
        }
      }
      const [first, last] = kernelStages[k]!;
      if (last === first) return;
      const pass = encoder.beginComputePass();
      pass.setPipeline(this.#pipeline);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout,
          entries: [
            { binding: quads ? 2 : 0, resource: { buffer: this.devicePool } },
            { binding: quads ? 3 : 1, resource: { buffer: this.hostPool } },
            { binding: 4, resource: { buffer: copyBuffer, size: packedCount * 16 } },
            { binding: 5, resource: { buffer: paramBuffer, offset: k * PARAMS_STRIDE, size: PARAMS_BYTES } },
          ],
        }),
      );
      const y = Math.min(last - first, Math.max(1, Math.floor(MAX_WORKGROUPS / x)), perDimension);
      pass.dispatchWorkgroups(x, y);
      pass.end();
    });
    device.queue.submit([encoder.finish()]);
  }

  /** Runs a plan and resolves when the device has finished it; rejects on any WebGPU error. */
  async execute(plan: CopyPlan): Promise<void> {
    const { device } = this.context;
    await withErrorScopes(device, 'block copy', () => this.submit(plan));
    await device.queue.onSubmittedWorkDone();
  }

  /**
   * Submits a prefetch now and resolves when the queue has finished it, so
   * the copies overlap with whatever the caller does before awaiting. Meant
   * for the host→device loads of a prefetch; a plan that also demotes to
   * make room runs whole, stages in order.
   */
  async prefetchAsync(plan: CopyPlan): Promise<void> {
    const { device } = this.context;
    const submitted = withErrorScopes(device, 'prefetch', () => this.submit(plan));
    const done = device.queue.onSubmittedWorkDone();
    await submitted;
    await done;
  }

  /** Writes one block's bytes (exactly bytesPerBlock of them), after all work submitted before. */
  writeBlock(tier: TierName, slot: number, bytes: Uint8Array): void {
    this.#checkLive('writeBlock');
    const { buffer, offset } = this.#locate(tier, slot, 'writeBlock');
    if (!(bytes instanceof Uint8Array) || bytes.length !== this.bytesPerBlock) {
      throw new RangeError(`writeBlock: bytes must be a Uint8Array of length ${this.bytesPerBlock}`);
    }
    this.context.device.queue.writeBuffer(buffer, offset, bytes);
  }

  /** Reads a copy of one block's bytes, after all work submitted before. */
  async readBlock(tier: TierName, slot: number): Promise<Uint8Array> {
    this.#checkLive('readBlock');
    const { buffer, offset } = this.#locate(tier, slot, 'readBlock');
    return this.#read(buffer, offset, this.bytesPerBlock);
  }

  /** Replaces a whole pool (blocks × bytesPerBlock bytes). */
  writePool(tier: TierName, bytes: Uint8Array): void {
    this.#checkLive('writePool');
    const blocks = checkTier(tier, 'writePool') === 'device' ? this.deviceBlocks : this.hostBlocks;
    if (!(bytes instanceof Uint8Array) || bytes.length !== blocks * this.bytesPerBlock) {
      throw new RangeError(`writePool: bytes must be a Uint8Array of length ${blocks * this.bytesPerBlock}`);
    }
    if (bytes.length > 0) this.context.device.queue.writeBuffer(this.#pool(tier), 0, bytes);
  }

  /** Reads a copy of a whole pool. */
  async readPool(tier: TierName): Promise<Uint8Array> {
    this.#checkLive('readPool');
    const blocks = checkTier(tier, 'readPool') === 'device' ? this.deviceBlocks : this.hostBlocks;
    return this.#read(this.#pool(tier), 0, blocks * this.bytesPerBlock);
  }

  /** Frees both pools. Pipelines stay cached with the device. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.devicePool.destroy();
    this.hostPool.destroy();
    this.#copies.destroy();
    this.#stageParams.destroy();
  }

  #pool(tier: TierName): GPUBuffer {
    return tier === 'device' ? this.devicePool : this.hostPool;
  }

  #locate(tier: TierName, slot: number, op: string): { buffer: GPUBuffer; offset: number } {
    const blocks = checkTier(tier, op) === 'device' ? this.deviceBlocks : this.hostBlocks;
    checkInt(slot, `${op}: slot`, 0, blocks - 1);
    return { buffer: this.#pool(tier), offset: slot * this.bytesPerBlock };
  }

  async #read(source: GPUBuffer, offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const { device } = this.context;
    const staging = device.createBuffer({ size: length, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(source, offset, staging, 0, length);
    device.queue.submit([encoder.finish()]);
    const bytes = new Uint8Array(length);
    try {
      await readInto(staging, bytes);
    } finally {
      staging.destroy();
    }
    return bytes;
  }

  #checkLive(op: string): void {
    if (this.#destroyed) throw new RangeError(`${op}: this WebGpuBlockCopyProgram was destroyed`);
  }
}
