/**
 * Paged attention on a WebGPU device (kernels/wgsl/paged_attention.wgsl):
 * KV append, prefill attention and decode attention over the engine's page
 * layout (native/engine/model_config.h), the WGSL counterparts of
 * appendKv, pagedPrefillAttention and pagedDecodeAttention in
 * native/engine/attention.h, in float32.
 */
import { checkInt, describeValue, isRecord } from '../../util/check.js';
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
 * The engine's page layout: a block holds f32
 * `kv[layer][0 = K, 1 = V][kvHead][token in block][dim]`, and slot `s` of
 * the pool starts at float `s * floatsPerBlock`.
 */
export interface PagedKvLayout {
  layers: number;
  kvHeads: number;
  /** Tokens per block. */
  blockSize: number;
  /** At most {@link MAX_HEAD_DIM}, the kernel's workgroup memory. */
  headDim: number;
}

/** Options of {@link WebGpuPagedAttentionProgram.create}. */
export interface WebGpuPagedAttentionOptions {
  layout: PagedKvLayout;
  /** Blocks in the pool. */
  blocks: number;
  /**
   * A buffer on the same device to use as the pool instead of a new one
   * (a WebGpuBlockCopyProgram's devicePool, so copy plans move this KV): at
   * least blocks x floatsPerBlock x 4 bytes, with STORAGE usage. Borrowed:
   * destroy() leaves it alone.
   */
  pool?: GPUBuffer;
}

/** K/V rows of tokens at positions [start, start + count) of one layer. */
export interface AppendKvInput {
  layer: number;
  /** The request's device slots in token order; covers start + count tokens. */
  table: Int32Array;
  start: number;
  count: number;
  /** [count][kvHeads][headDim]. */
  k: Float32Array;
  v: Float32Array;
}

/** A chunk at positions [start, start + count), its K/V already appended. */
export interface PrefillInput {
  layer: number;
  /** Query heads: a multiple of layout.kvHeads. */
  heads: number;
  table: Int32Array;
  start: number;
  count: number;
  /** [count][heads][headDim], already rotated. */
  q: Float32Array;
}

/** One query per sequence: sequence s at positions[s] through tables[s]. */
export interface DecodeInput {
  layer: number;
  heads: number;
  tables: readonly Int32Array[];
  positions: Int32Array;
  /** [sequences][heads][headDim]. */
  q: Float32Array;
}

/** Must match MAX_HEAD_DIM and WORKGROUP in paged_attention.wgsl. */
export const MAX_HEAD_DIM = 256;
const WORKGROUP = 64;
const PARAMS_BYTES = 48;
const MAX_POSITIONS = 0x7fffffff;

type Kernel = 'append_kv' | 'prefill_attention' | 'decode_attention';
const KERNELS: readonly Kernel[] = ['append_kv', 'prefill_attention', 'decode_attention'];
const pipelineCaches = Object.fromEntries(KERNELS.map((k) => [k, new PipelineCache('paged_attention', k)])) as Record<Kernel, PipelineCache>;

/** The bindings each entry point uses: its automatic layout has exactly these. */
const BINDINGS: Record<Kernel, readonly Binding[]> = {
  append_kv: ['poolWords', 'slots', 'newKeys', 'newValues', 'params'],
  prefill_attention: ['pool', 'slots', 'queries', 'outputs', 'params'],
  decode_attention: ['pool', 'slots', 'sequences', 'queries', 'outputs', 'params'],
};
const BINDING_INDEX = {
  poolWords: 0, pool: 1, slots: 2, sequences: 3, newKeys: 4, newValues: 5, queries: 6, outputs: 7, params: 8,
} as const;
type Binding = keyof typeof BINDING_INDEX;

/**
 * A KV pool in one GPU buffer and the kernels that append to it and attend
 * over it. Calls are checked at once (and throw before anything is queued),
 * then run one at a time, in call order, each resolving when the device has
 * finished it; the arrays a call was given must not change until then.
 */
export class WebGpuPagedAttentionProgram {
  readonly layout: Readonly<PagedKvLayout>;
  readonly blocks: number;
  readonly floatsPerBlock: number;
  readonly context: WebGpuContext;
  /** The pool: slot `s` is floats `[s * floatsPerBlock, (s + 1) * floatsPerBlock)`. */
  readonly pool: GPUBuffer;
  readonly #pipelines: Record<Kernel, GPUComputePipeline>;
  readonly #tasks = new TaskQueue();
  readonly #ownsPool: boolean;
  readonly #buffers: Record<'slots' | 'sequences' | 'newKeys' | 'newValues' | 'queries' | 'outputs' | 'staging' | 'params', ReusableBuffer>;
  #destroyed = false;

  private constructor(
    context: WebGpuContext,
    pipelines: Record<Kernel, GPUComputePipeline>,
    layout: PagedKvLayout,
    blocks: number,
    borrowedPool: GPUBuffer | undefined,
  ) {
    this.context = context;
    this.#pipelines = pipelines;
    this.layout = Object.freeze({ ...layout });
    this.blocks = blocks;
    this.floatsPerBlock = floatsPerBlock(layout);
    const { device } = context;
    const input = BufferUsage.STORAGE | BufferUsage.COPY_DST;
    const make = (label: string, usage: number): ReusableBuffer => new ReusableBuffer(device, label, usage);
    this.#buffers = {
      slots: make('block tables', input),
      sequences: make('decode sequences', input),
      newKeys: make('appended keys', input),
      newValues: make('appended values', input),
      queries: make('queries', input),
      outputs: make('attention outputs', BufferUsage.STORAGE | BufferUsage.COPY_SRC),
      staging: make('attention readback', BufferUsage.MAP_READ | BufferUsage.COPY_DST),
      params: make('paged attention params', BufferUsage.UNIFORM | BufferUsage.COPY_DST),
    };
    this.#ownsPool = borrowedPool === undefined;
    this.pool = borrowedPool ?? device.createBuffer({
      label: 'paged KV pool',
      size: blocks * this.floatsPerBlock * 4,
      usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
    });
  }

  /**
   * Allocates a zeroed pool on `context` (default: the shared device) and
   * compiles the kernels if this device has not yet.
   *
   * @throws TypeError / RangeError naming the field for a bad layout or
   *   block count, including a pool larger than the device binds;
   *   WebGpuUnavailableError without a device.
   */
  static async create(options: WebGpuPagedAttentionOptions, context?: WebGpuContext): Promise<WebGpuPagedAttentionProgram> {
    if (!isRecord(options)) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    const layout = checkLayout(options.layout);
    const blocks = checkInt(options.blocks, 'options.blocks', 1, 0x7fffffff);
    const ctx = context ?? (await acquireWebGpu());
    const { device } = ctx;
    const limit = Math.min(deviceLimit(device, 'maxStorageBufferBindingSize'), deviceLimit(device, 'maxBufferSize'));
    const bytes = blocks * floatsPerBlock(layout) * 4;
    if (bytes > limit) {
      throw new RangeError(`options.blocks: the pool needs ${bytes} bytes; this device binds at most ${limit} bytes per buffer`);
    }
    const borrowed = options.pool;
    if (borrowed !== undefined) {
      if (typeof borrowed !== 'object' || borrowed === null || typeof (borrowed as GPUBuffer).usage !== 'number') {
        throw new TypeError(`options.pool must be a GPUBuffer, got ${describeValue(borrowed)}`);
      }
      if ((borrowed.usage & BufferUsage.STORAGE) === 0) throw new RangeError('options.pool needs STORAGE usage');
      if (borrowed.size < bytes) throw new RangeError(`options.pool has ${borrowed.size} bytes; ${blocks} blocks need ${bytes}`);
    }
    const [append, prefill, decode] = await Promise.all(KERNELS.map((kernel) => pipelineCaches[kernel].get(device)));
    const pipelines = { append_kv: append!.pipeline, prefill_attention: prefill!.pipeline, decode_attention: decode!.pipeline };
    return new WebGpuPagedAttentionProgram(ctx, pipelines, layout, blocks, borrowed);
  }

  /** Replaces the whole pool (blocks x floatsPerBlock floats), after all calls made before. */
  writePool(values: Float32Array): Promise<void> {
    this.#checkLive('writePool');
    checkFloats(values, 'writePool: values', this.blocks * this.floatsPerBlock);
    return this.#tasks.run(async () => {
      this.context.device.queue.writeBuffer(this.pool, 0, values);
      await this.context.device.queue.onSubmittedWorkDone();
    });
  }

  /** A copy of the whole pool, after all work queued before. */
  readPool(): Promise<Float32Array> {
    this.#checkLive('readPool');
    return this.#tasks.run(async () => {
      const { device } = this.context;
      const out = new Float32Array(this.blocks * this.floatsPerBlock);
      const staging = device.createBuffer({ size: out.byteLength, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
      try {
        const encoder = device.createCommandEncoder();
        encoder.copyBufferToBuffer(this.pool, 0, staging, 0, out.byteLength);
        device.queue.submit([encoder.finish()]);
        await readInto(staging, out);
      } finally {
        staging.destroy();
      }
      return out;
    });
  }

  /**
   * Writes the K and V rows of `count` tokens at positions [start, start + count)
   * of one layer into the table's blocks, bit for bit.
   *
   * @throws TypeError / RangeError naming the field, before anything is queued.
   */
  appendKv(input: AppendKvInput): Promise<void> {
    this.#checkLive('appendKv');
    if (!isRecord(input)) throw new TypeError(`appendKv: input must be an object, got ${describeValue(input)}`);
    const { kvHeads, headDim } = this.layout;
    const layer = this.#checkLayer(input.layer, 'appendKv');
    const { start, count } = checkChunk(input.start, input.count, 'appendKv');
    const table = this.#checkTable(input.table, start + count, 'appendKv: table');
    const floats = count * kvHeads * headDim;
    const k = checkFloats(input.k, 'appendKv: k', floats, 'count x kvHeads x headDim');
    const v = checkFloats(input.v, 'appendKv: v', floats, 'count x kvHeads x headDim');
    if (count === 0) return this.#tasks.run(async () => undefined);
    return this.#tasks.run(async () => {
      const b = this.#buffers;
      const bindings = {
        poolWords: this.pool,
        slots: this.#upload(b.slots, table),
        newKeys: this.#upload(b.newKeys, k),
        newValues: this.#upload(b.newValues, v),
      };
      await this.#dispatch('append_kv', bindings, { layer, items: floats, firstPosition: start }, Math.ceil(floats / WORKGROUP));
    });
  }

  /**
   * Prefill attention: query i of the chunk sits at position start + i and
   * attends causally to positions [0, start + i]. Resolves to
   * [count][heads][headDim].
   *
   * @throws TypeError / RangeError naming the field, before anything is queued.
   */
  prefill(input: PrefillInput): Promise<Float32Array> {
    this.#checkLive('prefill');
    if (!isRecord(input)) throw new TypeError(`prefill: input must be an object, got ${describeValue(input)}`);
    const layer = this.#checkLayer(input.layer, 'prefill');
    const heads = this.#checkHeads(input.heads, 'prefill');
    const { start, count } = checkChunk(input.start, input.count, 'prefill');
    const table = this.#checkTable(input.table, start + count, 'prefill: table');
    const q = checkFloats(input.q, 'prefill: q', count * heads * this.layout.headDim, 'count x heads x headDim');
    return this.#attend('prefill_attention', { table, q, heads, layer, rows: count, firstPosition: start });
  }

  /**
   * Decode attention: sequence s's query sits at positions[s] and attends
   * to positions [0, positions[s]] through tables[s]. Resolves to
   * [sequences][heads][headDim].
   *
   * @throws TypeError / RangeError naming the field, before anything is queued.
   */
  decode(input: DecodeInput): Promise<Float32Array> {
    this.#checkLive('decode');
    if (!isRecord(input)) throw new TypeError(`decode: input must be an object, got ${describeValue(input)}`);
    const layer = this.#checkLayer(input.layer, 'decode');
    const heads = this.#checkHeads(input.heads, 'decode');
    const { positions, tables } = input;
    if (!(positions instanceof Int32Array)) throw new TypeError(`decode: positions must be an Int32Array, got ${describeValue(positions)}`);
    if (!Array.isArray(tables)) throw new TypeError(`decode: tables must be an array of Int32Array, got ${describeValue(tables)}`);
    if (tables.length !== positions.length) {
      throw new RangeError(`decode: tables has ${tables.length} entries and positions ${positions.length}; they must match`);
    }
    const sequences = new Uint32Array(2 * positions.length);
    const packed: Int32Array[] = [];
    let slots = 0;
    positions.forEach((position, s) => {
      checkInt(position, `decode: positions[${s}]`, 0, MAX_POSITIONS - 1);
      const table = this.#checkTable(tables[s], position + 1, `decode: tables[${s}]`);
      sequences.set([slots, position], 2 * s);
      packed.push(table);
      slots += table.length;
    });
    const table = new Int32Array(slots);
    packed.forEach((t, s) => table.set(t, sequences[2 * s]!));
    const q = checkFloats(input.q, 'decode: q', positions.length * heads * this.layout.headDim, 'sequences x heads x headDim');
    return this.#attend('decode_attention', { table, q, heads, layer, rows: positions.length, firstPosition: 0, sequences });
  }

  /** Frees the pool (unless borrowed) and the buffers kept between calls; the pipelines stay cached with the device. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#ownsPool) this.pool.destroy();
    for (const buffer of Object.values(this.#buffers)) buffer.destroy();
  }

  #attend(
    kernel: 'prefill_attention' | 'decode_attention',
    call: { table: Int32Array; q: Float32Array; heads: number; layer: number; rows: number; firstPosition: number; sequences?: Uint32Array },
  ): Promise<Float32Array> {
    const out = new Float32Array(call.q.length);
    if (call.rows === 0) return this.#tasks.run(async () => out);
    return this.#tasks.run(async () => {
      const b = this.#buffers;
      const outputs = b.outputs.get(out.byteLength);
      const bindings: Partial<Record<Binding, GPUBuffer>> = {
        pool: this.pool,
        slots: this.#upload(b.slots, call.table),
        queries: this.#upload(b.queries, call.q),
        outputs,
      };
      if (call.sequences !== undefined) bindings.sequences = this.#upload(b.sequences, call.sequences);
      const staging = b.staging.get(out.byteLength);
      const fields = { layer: call.layer, heads: call.heads, items: call.rows, firstPosition: call.firstPosition };
      await this.#dispatch(kernel, bindings, fields, call.rows * call.heads, (encoder) =>
        encoder.copyBufferToBuffer(outputs, 0, staging, 0, out.byteLength),
      );
      await readInto(staging, out);
      return out;
    });
  }

  /** One dispatch of `groups` workgroups, then `after` in the same encoder; resolves when the device is done. */
  async #dispatch(
    kernel: Kernel,
    bindings: Partial<Record<Binding, GPUBuffer>>,
    fields: { layer: number; heads?: number; items: number; firstPosition: number },
    groups: number,
    after?: (encoder: GPUCommandEncoder) => void,
  ): Promise<void> {
    const { device } = this.context;
    const { kvHeads, headDim, blockSize } = this.layout;
    const grid = foldWorkgroups(device, groups);
    const headStride = blockSize * headDim;
    const words = new ArrayBuffer(PARAMS_BYTES);
    new Uint32Array(words).set([
      fields.layer, fields.heads ?? kvHeads, kvHeads, headDim, blockSize,
      2 * kvHeads * headStride, kvHeads * headStride, this.floatsPerBlock,
      fields.items, fields.firstPosition, grid.x,
    ]);
    new Float32Array(words)[11] = 1 / Math.sqrt(headDim);
    const params = this.#upload(this.#buffers.params, new Uint32Array(words));
    const pipeline = this.#pipelines[kernel];
    const entries = BINDINGS[kernel].map((name) => {
      const buffer = name === 'params' ? params : bindings[name];
      if (buffer === undefined) throw new Error(`internal: ${kernel} needs binding ${name}`);
      return { binding: BINDING_INDEX[name], resource: { buffer } };
    });
    await withErrorScopes(device, `paged attention ${kernel}`, () => {
      const encoder = device.createCommandEncoder({ label: `paged attention ${kernel}` });
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
      pass.dispatchWorkgroups(grid.x, grid.y);
      pass.end();
      after?.(encoder);
      device.queue.submit([encoder.finish()]);
    });
    await device.queue.onSubmittedWorkDone();
  }

  #upload(buffer: ReusableBuffer, data: Int32Array | Uint32Array | Float32Array): GPUBuffer {
    const target = buffer.get(data.byteLength);
    if (data.byteLength > 0) this.context.device.queue.writeBuffer(target, 0, data);
    return target;
  }

  #checkLayer(layer: unknown, op: string): number {
    return checkInt(layer, `${op}: layer`, 0, this.layout.layers - 1);
  }

  #checkHeads(heads: unknown, op: string): number {
    const { kvHeads } = this.layout;
    const value = checkInt(heads, `${op}: heads`, kvHeads, 1 << 16);
    if (value % kvHeads !== 0) throw new RangeError(`${op}: heads must be a multiple of layout.kvHeads (${kvHeads}), got ${value}`);
    return value;
  }

  /** The table's first ceil(tokens / blockSize) slots, checked against the pool. */
  #checkTable(table: unknown, tokens: number, name: string): Int32Array {
    if (!(table instanceof Int32Array)) throw new TypeError(`${name} must be an Int32Array, got ${describeValue(table)}`);
    const needed = Math.ceil(tokens / this.layout.blockSize);
    if (table.length < needed) {
      throw new RangeError(`${name} has ${table.length} blocks; ${tokens} tokens need ${needed}`);
    }
    for (let i = 0; i < needed; i++) {
      const slot = table[i]!;
      if (slot < 0 || slot >= this.blocks) {
        throw new RangeError(`${name}[${i}] is slot ${slot}, outside the pool of ${this.blocks} blocks`);
      }
    }
    return table.subarray(0, needed);
  }

  #checkLive(op: string): void {
    if (this.#destroyed) throw new RangeError(`${op}: this WebGpuPagedAttentionProgram was destroyed`);
  }
}

/** Floats per block: layers x 2 x kvHeads x blockSize x headDim. */
function floatsPerBlock(layout: PagedKvLayout): number {
  return layout.layers * 2 * layout.kvHeads * layout.blockSize * layout.headDim;
}

function checkLayout(layout: unknown): PagedKvLayout {
  if (!isRecord(layout)) throw new TypeError(`options.layout must be an object, got ${describeValue(layout)}`);
  return {
    layers: checkInt(layout.layers, 'options.layout.layers', 1, 4096),
    kvHeads: checkInt(layout.kvHeads, 'options.layout.kvHeads', 1, 1 << 16),
    blockSize: checkInt(layout.blockSize, 'options.layout.blockSize', 1, 1 << 16),
    headDim: checkInt(layout.headDim, 'options.layout.headDim', 1, MAX_HEAD_DIM),
  };
}

function checkChunk(start: unknown, count: unknown, op: string): { start: number; count: number } {
  const first = checkInt(start, `${op}: start`, 0, MAX_POSITIONS);
  return { start: first, count: checkInt(count, `${op}: count`, 0, MAX_POSITIONS - first) };
}

function checkFloats(values: unknown, name: string, length: number, shape?: string): Float32Array {
  if (!(values instanceof Float32Array)) throw new TypeError(`${name} must be a Float32Array, got ${describeValue(values)}`);
  if (values.length !== length) {
    throw new RangeError(`${name} must hold ${shape === undefined ? '' : `${shape} = `}${length} floats, got ${values.length}`);
  }
  return values;
}
