/**
 * The reference engine over the native decoder (native/engine): a
 * Llama-architecture model computing in place on a data plane's device
 * pool, so that the blocks the block manager hands out, and the copy plans
 * that move them between tiers, are the engine's KV cache. The pool, and
 * the attention kernels over it, are the CPU's, a CUDA device's or a
 * WebGPU device's; the dense parts run on the CPU.
 */
import { availableParallelism } from 'node:os';

import { nativeAddon } from '../blocks/addon.js';
import { CpuDataPlane } from '../blocks/data_plane.js';
import { CudaDataPlane, nativeCudaDataPlane } from '../compute/cuda/cuda.js';
import { WebGpuBlockCopyProgram } from '../compute/webgpu/block_copy_program.js';
import { MAX_HEAD_DIM, WebGpuPagedAttentionProgram } from '../compute/webgpu/paged_attention_program.js';
import { checkInt } from '../util/check.js';
import { checkModelConfig, headDim, kvBytesPerBlock, type ModelConfig } from './config.js';

/** A batch in the native engine's argument form: tokens, counts, starts, writeFrom, tables, tableLengths, allLogits. */
type NativeBatch = [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, boolean];

interface NativeEngineHandle {
  forward(...batch: NativeBatch): Float32Array;
  beginPass(...batch: NativeBatch): void;
  project(): { layer: number; q: Float32Array; k: Float32Array; v: Float32Array };
  finishLayer(attention: Float32Array): void;
  passLogits(): Float32Array;
  decodeAttention(layer: number, q: Float32Array, positions: Int32Array, tables: Int32Array, tableLengths: Int32Array): Float32Array;
  info(): { bytesPerBlock: number; blocks: number; threads: number; blas: boolean; attention: string };
}

type NativeEngineClass = new (
  config: ModelConfig,
  blockSize: number,
  pool: ArrayBuffer | number | object,
  threads: number,
  seed: number,
  weightsPath: string | null,
) => NativeEngineHandle;

/** Where the engine's KV pool lives and its attention runs; the dense parts run on the CPU in every case. */
export type EngineBackend = 'cpu' | 'cuda' | 'webgpu';

export interface EngineOptions {
  model: ModelConfig;
  /** Tokens per block: the block manager's. */
  blockSize: number;
  /**
   * The KV pool: the device pool of a data plane, or a bare buffer of whole
   * blocks. A `CpuDataPlane` or an ArrayBuffer: the CPU kernels attend; a
   * `CudaDataPlane`: the CUDA kernels attend in its device memory; a
   * `WebGpuBlockCopyProgram` (only through {@link Engine.create}): the
   * WGSL kernels attend in its device pool buffer.
   */
  pool: CpuDataPlane | ArrayBuffer | CudaDataPlane | WebGpuBlockCopyProgram;
  /** Compute threads (default: the machine's parallelism, at most 8). */
  threads?: number;
  /** Seed of the random weights (default 1); ignored with `weights`. */
  seed?: number;
  /** A safetensors file with Hugging Face Llama tensor names, instead of random weights. */
  weights?: string;
}

/** One sequence's share of a forward step. */
export interface EngineChunk {
  /** The new tokens, at positions [start, start + tokens.length). */
  tokens: Int32Array;
  start: number;
  /**
   * Positions below this already hold their K/V (default: start, write
   * every new token). A prompt whose blocks were all cached recomputes its
   * last token for the logits with writeFrom past it, leaving shared blocks untouched.
   */
  writeFrom?: number;
  /** Device slot of each of the sequence's blocks, in token order (the block manager's block table). */
  blockTable: Int32Array;
}

/** A batch in the native engine's argument form. */
interface PackedBatch {
  tokens: Int32Array;
  counts: Int32Array;
  starts: Int32Array;
  writeFrom: Int32Array;
  tables: Int32Array;
  tableLengths: Int32Array;
}

const WEBGPU = Symbol('webgpu program');

export class Engine {
  readonly #native: NativeEngineHandle;
  readonly #gpu: WebGpuPagedAttentionProgram | null;
  readonly model: Readonly<ModelConfig>;
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  /** Blocks in the pool. */
  readonly blocks: number;
  readonly threads: number;
  /** Whether the dense products run on a BLAS library (else plain loops). */
  readonly blas: boolean;
  /** Where the KV pool is and the attention runs. */
  readonly backend: EngineBackend;

  /**
   * An engine over a CPU or CUDA pool; a WebGPU pool needs
   * {@link Engine.create}, which compiles its kernels first.
   */
  constructor(options: EngineOptions, internal?: { [WEBGPU]: WebGpuPagedAttentionProgram }) {
    if (typeof options !== 'object' || options === null) throw new TypeError('Engine: options must be an object');
    const model = checkModelConfig({ ...options.model }, 'Engine: options.model');
    const blockSize = checkInt(options.blockSize, 'Engine: options.blockSize', 1, 1 << 16);
    const threads = checkInt(options.threads ?? Math.min(8, availableParallelism()), 'Engine: options.threads', 1, 1024);
    const seed = checkInt(options.seed ?? 1, 'Engine: options.seed', 0, Number.MAX_SAFE_INTEGER);
    if (options.weights !== undefined && typeof options.weights !== 'string') throw new TypeError('Engine: options.weights must be a path');
    const bytesPerBlock = kvBytesPerBlock(model, blockSize);
    const matchBlocks = (name: string, planeBytes: number) => {
      if (planeBytes !== bytesPerBlock) {
        throw new RangeError(`Engine: the ${name} has ${planeBytes}-byte blocks, the model's KV needs ${bytesPerBlock} (kvBytesPerBlock)`);
      }
    };
    let pool: ArrayBuffer | number | object;
    let backend: EngineBackend = 'cpu';
    const given = options.pool;
    if (given instanceof CpuDataPlane) {
      matchBlocks('data plane', given.bytesPerBlock);
      pool = given.devicePool();
    } else if (given instanceof ArrayBuffer) {
      if (given.byteLength === 0 || given.byteLength % bytesPerBlock !== 0) {
        throw new RangeError(`Engine: options.pool has ${given.byteLength} bytes, not a whole number of ${bytesPerBlock}-byte blocks`);
      }
      pool = given;
    } else if (given instanceof CudaDataPlane) {
      matchBlocks('CUDA data plane', given.bytesPerBlock);
      pool = nativeCudaDataPlane(given);
      backend = 'cuda';
    } else if (given instanceof WebGpuBlockCopyProgram) {
      const program = internal?.[WEBGPU];
      if (program === undefined) throw new TypeError('Engine: a WebGPU pool needs Engine.create (its kernels compile asynchronously)');
      matchBlocks('WebGPU block pool', given.bytesPerBlock);
      pool = given.deviceBlocks;
      backend = 'webgpu';
    } else {
      throw new TypeError('Engine: options.pool must be a CpuDataPlane, an ArrayBuffer, a CudaDataPlane or a WebGpuBlockCopyProgram');
    }
    const NativeEngine = (nativeAddon() as unknown as { NativeEngine?: NativeEngineClass }).NativeEngine;
    if (NativeEngine === undefined) throw new Error('Engine: the loaded addon has no engine; rebuild it (npm run build:native)');
    this.#native = new NativeEngine(model, blockSize, pool, threads, seed, options.weights ?? null);
    this.#gpu = backend === 'webgpu' ? internal![WEBGPU] : null;
    const info = this.#native.info();
    this.model = Object.freeze(model);
    this.blockSize = blockSize;
    this.bytesPerBlock = info.bytesPerBlock;
    this.blocks = info.blocks;
    this.threads = info.threads;
    this.blas = info.blas;
    this.backend = backend;
  }

  /**
   * An engine over any pool, a WebGPU one included (its paged attention
   * kernels compile here and attend in the block pool's device buffer).
   */
  static async create(options: EngineOptions): Promise<Engine> {
    if (typeof options !== 'object' || options === null) throw new TypeError('Engine: options must be an object');
    const given = options.pool;
    if (!(given instanceof WebGpuBlockCopyProgram)) return new Engine(options);
    const model = checkModelConfig({ ...options.model }, 'Engine: options.model');
    const blockSize = checkInt(options.blockSize, 'Engine: options.blockSize', 1, 1 << 16);
    if (headDim(model) > MAX_HEAD_DIM) throw new RangeError(`Engine: the WebGPU kernels take head dimensions up to ${MAX_HEAD_DIM}; the model has ${headDim(model)}`);
    if (given.bytesPerBlock !== kvBytesPerBlock(model, blockSize)) {
      throw new RangeError(`Engine: the WebGPU block pool has ${given.bytesPerBlock}-byte blocks, the model's KV needs ${kvBytesPerBlock(model, blockSize)} (kvBytesPerBlock)`);
    }
    const program = await WebGpuPagedAttentionProgram.create(
      { layout: { layers: model.layers, kvHeads: model.kvHeads, blockSize, headDim: headDim(model) }, blocks: given.deviceBlocks, pool: given.devicePool },
      given.context,
    );
    try {
      return new Engine(options, { [WEBGPU]: program });
    } catch (error) {
      program.destroy();
      throw error;
    }
  }

  /**
   * One step over a batch: writes each chunk's new K/V into its blocks and
   * returns logits, [chunks][vocab] for each chunk's last token, or
   * [tokens][vocab] for every token in order with `allLogits`. CPU and
   * CUDA pools; a WebGPU engine needs {@link forwardAsync}.
   */
  forward(chunks: readonly EngineChunk[], options: { allLogits?: boolean } = {}): Float32Array {
    if (this.#gpu !== null) throw new TypeError('forward: a WebGPU engine computes asynchronously; use forwardAsync');
    const b = this.#pack(chunks, 'forward');
    return this.#native.forward(b.tokens, b.counts, b.starts, b.writeFrom, b.tables, b.tableLengths, options.allLogits === true);
  }

  /** {@link forward} on any backend: on WebGPU each layer's attention runs on the device between its dense parts. */
  async forwardAsync(chunks: readonly EngineChunk[], options: { allLogits?: boolean } = {}): Promise<Float32Array> {
    const gpu = this.#gpu;
    if (gpu === null) return this.forward(chunks, options);
    const b = this.#pack(chunks, 'forwardAsync');
    const native = this.#native;
    native.beginPass(b.tokens, b.counts, b.starts, b.writeFrom, b.tables, b.tableLengths, options.allLogits === true);
    const { heads, kvHeads, modelDim } = this.model;
    const hd = headDim(this.model);
    const kvDim = kvHeads * hd;
    const rows = b.tokens.length;
    // Chunk s's first row and its block table (its first tableLengths[s] slots).
    const firstRow = new Int32Array(chunks.length);
    const tables: Int32Array[] = [];
    for (let s = 0, row = 0, slot = 0; s < chunks.length; s++) {
      firstRow[s] = row;
      tables.push(b.tables.subarray(slot, slot + b.tableLengths[s]!));
      row += b.counts[s]!;
      slot += b.tableLengths[s]!;
    }
    const decodes: number[] = [];
    for (let s = 0; s < chunks.length; s++) if (b.counts[s] === 1) decodes.push(s);
    const decodePositions = Int32Array.from(decodes, (s) => b.starts[s]!);
    for (let layer = 0; layer < this.model.layers; layer++) {
      const { q, k, v } = native.project();
      const work: Promise<unknown>[] = [];
      for (let s = 0; s < chunks.length; s++) {
        const count = b.counts[s]!;
        const start = b.starts[s]!;
        const skip = Math.min(Math.max(b.writeFrom[s]! - start, 0), count);
        if (skip === count) continue;
        const from = (firstRow[s]! + skip) * kvDim;
        const to = (firstRow[s]! + count) * kvDim;
        work.push(gpu.appendKv({ layer, table: tables[s]!, start: start + skip, count: count - skip, k: k.subarray(from, to), v: v.subarray(from, to) }));
      }
      const attention = new Float32Array(rows * modelDim);
      for (let s = 0; s < chunks.length; s++) {
        const count = b.counts[s]!;
        if (count === 1) continue;
        const at = firstRow[s]! * modelDim;
        work.push(gpu.prefill({ layer, heads, table: tables[s]!, start: b.starts[s]!, count, q: q.subarray(at, at + count * modelDim) })
          .then((out) => attention.set(out, at)));
      }
      if (decodes.length > 0) {
        const queries = new Float32Array(decodes.length * modelDim);
        decodes.forEach((s, i) => queries.set(q.subarray(firstRow[s]! * modelDim, (firstRow[s]! + 1) * modelDim), i * modelDim));
        work.push(gpu.decode({ layer, heads, tables: decodes.map((s) => tables[s]!), positions: decodePositions, q: queries })
          .then((out) => decodes.forEach((s, i) => attention.set(out.subarray(i * modelDim, (i + 1) * modelDim), firstRow[s]! * modelDim))));
      }
      await Promise.all(work);
      native.finishLayer(attention);
    }
    return native.passLogits();
  }

  /** Frees what the engine holds on a WebGPU device (not the block pool's buffers); the engine cannot run after. */
  destroy(): void {
    this.#gpu?.destroy();
  }

  #pack(chunks: readonly EngineChunk[], op: string): PackedBatch {
    if (!Array.isArray(chunks) || chunks.length === 0) throw new TypeError(`${op}: chunks must be a non-empty array`);
    const n = chunks.length;
    const counts = new Int32Array(n);
    const starts = new Int32Array(n);
    const writeFrom = new Int32Array(n);
    const tableLengths = new Int32Array(n);
    let tokenTotal = 0;
    let tableTotal = 0;
    chunks.forEach((chunk, s) => {
      const where = `${op}: chunks[${s}]`;
      if (!(chunk.tokens instanceof Int32Array) || chunk.tokens.length === 0) throw new TypeError(`${where}.tokens must be a non-empty Int32Array`);
      if (!(chunk.blockTable instanceof Int32Array)) throw new TypeError(`${where}.blockTable must be an Int32Array`);
      const start = checkInt(chunk.start, `${where}.start`, 0, 0x7fffffff - chunk.tokens.length);
      const end = start + chunk.tokens.length;
      const from = checkInt(chunk.writeFrom ?? start, `${where}.writeFrom`, 0, end);
      const needed = Math.ceil(end / this.blockSize);
      if (chunk.blockTable.length < needed) {
        throw new RangeError(`${where}.blockTable has ${chunk.blockTable.length} blocks; positions up to ${end} need ${needed}`);
      }
      counts[s] = chunk.tokens.length;
      starts[s] = start;
      writeFrom[s] = from;
      tableLengths[s] = needed;
      tokenTotal += chunk.tokens.length;
      tableTotal += needed;
    });
    const tokens = new Int32Array(tokenTotal);
    const tables = new Int32Array(tableTotal);
    let t = 0;
    let b = 0;
    chunks.forEach((chunk, s) => {
      tokens.set(chunk.tokens, t);
      t += chunk.tokens.length;
      tables.set(chunk.blockTable.subarray(0, tableLengths[s]), b);
      b += tableLengths[s]!;
    });
    return { tokens, counts, starts, writeFrom, tables, tableLengths };
  }

  /**
   * The decode attention kernel alone, on layer `layer`: one query per
   * sequence (`queries` is [sequences][heads][headDim], already rotated)
   * against the K/V in its blocks at positions [0, position]. Returns
   * [sequences][heads][headDim]. For kernel tests and benchmarks.
   */
  decodeAttention(layer: number, queries: Float32Array, sequences: readonly { position: number; blockTable: Int32Array }[]): Float32Array {
    if (this.#gpu !== null) throw new TypeError('decodeAttention: a WebGPU engine has its kernels in WebGpuPagedAttentionProgram');
    checkInt(layer, 'decodeAttention: layer', 0, this.model.layers - 1);
    if (!(queries instanceof Float32Array) || queries.length !== sequences.length * this.model.modelDim) {
      throw new TypeError(`decodeAttention: queries must be a Float32Array of ${sequences.length} x ${this.model.modelDim}`);
    }
    const positions = new Int32Array(sequences.length);
    const lengths = new Int32Array(sequences.length);
    sequences.forEach((s, i) => {
      positions[i] = checkInt(s.position, `decodeAttention: sequences[${i}].position`, 0, 0x7ffffffe);
      lengths[i] = Math.ceil((s.position + 1) / this.blockSize);
      if (!(s.blockTable instanceof Int32Array) || s.blockTable.length < lengths[i]!) {
        throw new RangeError(`decodeAttention: sequences[${i}].blockTable must be an Int32Array of at least ${lengths[i]} blocks`);
      }
    });
    const tables = new Int32Array(lengths.reduce((a, b) => a + b, 0));
    let at = 0;
    sequences.forEach((s, i) => {
      tables.set(s.blockTable.subarray(0, lengths[i]), at);
      at += lengths[i]!;
    });
    return this.#native.decodeAttention(layer, queries, positions, tables, lengths);
  }
}
