/**
 * The survival computation on a WebGPU device (kernels/wgsl/survival.wgsl):
 * the same {@link SurvivalOutput} as `ReferenceSurvivalBackend`, in float32,
 * every workload of a batch in one dispatch.
 */
import { checkInt } from '../../util/check.js';
import {
  rowDeficits,
  validateSurvivalInput,
  type SurvivalInput,
  type SurvivalOutput,
} from '../survival.js';
import {
  BufferUsage,
  PipelineCache,
  acquireWebGpu,
  deviceLimit,
  foldWorkgroups,
  readInto,
  ReusableBuffer,
  TaskQueue,
  withErrorScopes,
  type WebGpuContext,
} from './device.js';

/**
 * A survival backend whose results arrive asynchronously: the shape of
 * `SurvivalBackend` with `computeAsync` in place of `compute`.
 */
export interface AsyncSurvivalBackend {
  /** A short name for reports and benchmarks. */
  readonly name: string;
  /** Throws (rejects with) a TypeError or RangeError for input `validateSurvivalInput` refuses. */
  computeAsync(input: SurvivalInput): Promise<SurvivalOutput>;
}

const pipelines = new PipelineCache('survival', 'survival');

const OUTPUTS = ['reach', 'alive', 'expectedSteps'] as const;
type OutputName = (typeof OUTPUTS)[number];

// Must match WORKGROUP and ENTRIES in survival.wgsl.
const WORKGROUP = 256;
const ENTRIES = 1024;
const DEFAULT_CHUNK_BYTES = 256 * 1024 * 1024;

/**
 * {@link AsyncSurvivalBackend} on WebGPU. Results match the float64
 * reference to a relative error of about 1e-6 (see survival.wgsl for why
 * float32 gets there).
 *
 * There is deliberately no synchronous `compute`: reading results back from
 * a WebGPU device completes only through the event loop (`mapAsync`), so a
 * synchronous call on the same thread would wait forever. Callers that need
 * a `SurvivalBackend` use the reference or native CPU backend, or await
 * {@link computeAsync} ahead of the step that needs the result.
 */
export class WebGpuSurvivalBackend implements AsyncSurvivalBackend {
  readonly name = 'webgpu';
  readonly context: WebGpuContext;
  readonly #pipeline: GPUComputePipeline;
  readonly #maxChunkBytes: number;
  readonly #tasks = new TaskQueue();
  readonly #buffers: Record<'transitions' | 'deficit' | 'endState' | 'params' | OutputName | `${OutputName}Staging`, ReusableBuffer>;

  private constructor(context: WebGpuContext, pipeline: GPUComputePipeline, maxChunkBytes: number) {
    this.context = context;
    this.#pipeline = pipeline;
    this.#maxChunkBytes = maxChunkBytes;
    const { device } = context;
    const storage = BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC;
    const staging = BufferUsage.MAP_READ | BufferUsage.COPY_DST;
    const make = (label: string, usage: number): ReusableBuffer => new ReusableBuffer(device, label, usage);
    this.#buffers = {
      transitions: make('transitions', storage),
      deficit: make('row deficits', storage),
      endState: make('end states', storage),
      params: make('survival params', BufferUsage.UNIFORM | BufferUsage.COPY_DST),
      reach: make('reach', storage),
      alive: make('alive', storage),
      expectedSteps: make('expected steps', storage),
      reachStaging: make('reach readback', staging),
      aliveStaging: make('alive readback', staging),
      expectedStepsStaging: make('expected steps readback', staging),
    };
  }

  /**
   * Compiles the kernel on `context` (default: the shared device) unless
   * already compiled there.
   *
   * @param options.maxChunkBytes the most reach bytes one dispatch writes
   *   (default 256 MiB, and never more than the device binds): larger
   *   batches run as several dispatches of whole workloads, which bounds
   *   the device and staging memory a call holds.
   */
  static async create(context?: WebGpuContext, options: { maxChunkBytes?: number } = {}): Promise<WebGpuSurvivalBackend> {
    const maxChunkBytes = checkInt(options.maxChunkBytes ?? DEFAULT_CHUNK_BYTES, 'options.maxChunkBytes', 4, Number.MAX_SAFE_INTEGER);
    const ctx = context ?? (await acquireWebGpu());
    const { pipeline } = await pipelines.get(ctx.device);
    return new WebGpuSurvivalBackend(ctx, pipeline, maxChunkBytes);
  }

  /** Calls run one at a time, in call order. */
  computeAsync(input: SurvivalInput): Promise<SurvivalOutput> {
    return this.#tasks.run(() => this.#compute(input));
  }

  /** Frees the buffers kept between calls; the pipeline stays cached with the device. */
  destroy(): void {
    for (const buffer of Object.values(this.#buffers)) buffer.destroy();
  }

  async #compute(input: SurvivalInput): Promise<SurvivalOutput> {
    const { workloads, states: n, horizon, transitions, endState } = validateSurvivalInput(input);
    const { device } = this.context;
    const output: SurvivalOutput = {
      reach: new Float32Array(workloads * horizon * n * n),
      alive: new Float32Array(workloads * horizon * n),
      expectedSteps: new Float32Array(workloads * n * n),
    };
    const perWorkload: Record<OutputName, number> = { reach: horizon * n * n, alive: horizon * n, expectedSteps: n * n };
    const deficit = rowDeficits(transitions, workloads, n);

    const limit = Math.min(
      deviceLimit(device, 'maxStorageBufferBindingSize'),
      deviceLimit(device, 'maxBufferSize'),
      this.#maxChunkBytes,
    );
    const perChunk = Math.floor(limit / (perWorkload.reach * 4));
    if (perChunk === 0) {
      throw new RangeError(
        `computeAsync: one workload's reach needs ${perWorkload.reach * 4} bytes; this device binds at most ${limit}`,
      );
    }
    let columnsPerGroup = 1;
    while (columnsPerGroup * 2 <= Math.min(WORKGROUP, ENTRIES / n)) columnsPerGroup *= 2;
    const b = this.#buffers;

    for (let first = 0; first < workloads; first += perChunk) {
      const count = Math.min(perChunk, workloads - first);
      const upload = (buffer: ReusableBuffer, data: Float32Array | Int32Array | Uint32Array): GPUBufferBinding => {
        const target = buffer.get(data.byteLength);
        device.queue.writeBuffer(target, 0, data);
        return { buffer: target, size: data.byteLength };
      };
      const totalColumns = count * (n + 1);
      const inputs = [
        upload(b.transitions, transitions.subarray(first * n * n, (first + count) * n * n)),
        upload(b.deficit, deficit.subarray(first * n, (first + count) * n)),
        upload(b.endState, endState.subarray(first, first + count)),
      ];
      const params = upload(b.params, new Uint32Array([count, n, horizon, columnsPerGroup, totalColumns, 0, 0, 0]));
      const outputs = OUTPUTS.map((name) => {
        const bytes = count * perWorkload[name] * 4;
        return {
          bytes,
          buffer: b[name].get(bytes),
          staging: b[`${name}Staging`].get(bytes),
          target: output[name].subarray(first * perWorkload[name], (first + count) * perWorkload[name]),
        };
      });

      await withErrorScopes(device, 'survival', () => {
        const encoder = device.createCommandEncoder({ label: 'survival' });
        const pass = encoder.beginComputePass();
        pass.setPipeline(this.#pipeline);
        pass.setBindGroup(
          0,
          device.createBindGroup({
            layout: this.#pipeline.getBindGroupLayout(0),
            entries: [
              ...inputs.map((resource, binding) => ({ binding, resource })),
              ...outputs.map((o, i) => ({ binding: 3 + i, resource: { buffer: o.buffer, size: o.bytes } })),
              { binding: 6, resource: params },
            ],
          }),
        );
        const grid = foldWorkgroups(device, Math.ceil(totalColumns / columnsPerGroup));
        pass.dispatchWorkgroups(grid.x, grid.y);
        pass.end();
        for (const o of outputs) encoder.copyBufferToBuffer(o.buffer, 0, o.staging, 0, o.bytes);
        device.queue.submit([encoder.finish()]);
      });
      await Promise.all(outputs.map((o) => readInto(o.staging, o.target)));
    }
    return output;
  }
}
