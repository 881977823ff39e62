/**
 * The reference engine over the native decoder (native/engine): a
 * Llama-architecture model computing in place on the CPU data plane's
 * device pool, so that the blocks the block manager hands out, and the copy
 * plans that move them between tiers, are the engine's KV cache.
 */
import { availableParallelism } from 'node:os';

import { nativeAddon } from '../blocks/addon.js';
import { CpuDataPlane } from '../blocks/data_plane.js';
import { checkInt } from '../util/check.js';
import { checkModelConfig, kvBytesPerBlock, type ModelConfig } from './config.js';

interface NativeEngineHandle {
  forward(
    tokens: Int32Array,
    counts: Int32Array,
    starts: Int32Array,
    writeFrom: Int32Array,
    tables: Int32Array,
    tableLengths: Int32Array,
    allLogits: boolean,
  ): Float32Array;
  decodeAttention(layer: number, q: Float32Array, positions: Int32Array, tables: Int32Array, tableLengths: Int32Array): Float32Array;
  info(): { bytesPerBlock: number; blocks: number; threads: number; blas: boolean };
}

type NativeEngineClass = new (
  config: ModelConfig,
  blockSize: number,
  pool: ArrayBuffer,
  threads: number,
  seed: number,
  weightsPath: string | null,
) => NativeEngineHandle;

export interface EngineOptions {
  model: ModelConfig;
  /** Tokens per block: the block manager's. */
  blockSize: number;
  /** The KV pool: a data plane (its device pool) or a bare buffer of whole blocks. */
  pool: CpuDataPlane | ArrayBuffer;
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

export class Engine {
  readonly #native: NativeEngineHandle;
  readonly model: Readonly<ModelConfig>;
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  /** Blocks in the pool. */
  readonly blocks: number;
  readonly threads: number;
  /** Whether the dense products run on a BLAS library (else plain loops). */
  readonly blas: boolean;

  constructor(options: EngineOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('Engine: options must be an object');
    const model = checkModelConfig({ ...options.model }, 'Engine: options.model');
    const blockSize = checkInt(options.blockSize, 'Engine: options.blockSize', 1, 1 << 16);
    const threads = checkInt(options.threads ?? Math.min(8, availableParallelism()), 'Engine: options.threads', 1, 1024);
    const seed = checkInt(options.seed ?? 1, 'Engine: options.seed', 0, Number.MAX_SAFE_INTEGER);
    if (options.weights !== undefined && typeof options.weights !== 'string') throw new TypeError('Engine: options.weights must be a path');
    const bytesPerBlock = kvBytesPerBlock(model, blockSize);
    let pool: ArrayBuffer;
    if (options.pool instanceof CpuDataPlane) {
      if (options.pool.bytesPerBlock !== bytesPerBlock) {
        throw new RangeError(`Engine: the data plane has ${options.pool.bytesPerBlock}-byte blocks, the model's KV needs ${bytesPerBlock} (kvBytesPerBlock)`);
      }
      pool = options.pool.devicePool();
    } else if (options.pool instanceof ArrayBuffer) {
      pool = options.pool;
      if (pool.byteLength === 0 || pool.byteLength % bytesPerBlock !== 0) {
        throw new RangeError(`Engine: options.pool has ${pool.byteLength} bytes, not a whole number of ${bytesPerBlock}-byte blocks`);
      }
    } else {
      throw new TypeError('Engine: options.pool must be a CpuDataPlane or an ArrayBuffer');
    }
    const NativeEngine = (nativeAddon() as unknown as { NativeEngine?: NativeEngineClass }).NativeEngine;
    if (NativeEngine === undefined) throw new Error('Engine: the loaded addon has no engine; rebuild it (npm run build:native)');
    this.#native = new NativeEngine(model, blockSize, pool, threads, seed, options.weights ?? null);
    const info = this.#native.info();
    this.model = Object.freeze(model);
    this.blockSize = blockSize;
    this.bytesPerBlock = info.bytesPerBlock;
    this.blocks = info.blocks;
    this.threads = info.threads;
    this.blas = info.blas;
  }

  /**
   * One step over a batch: writes each chunk's new K/V into its blocks and
   * returns logits, [chunks][vocab] for each chunk's last token, or
   * [tokens][vocab] for every token in order with `allLogits`.
   */
  forward(chunks: readonly EngineChunk[], options: { allLogits?: boolean } = {}): Float32Array {
    if (!Array.isArray(chunks) || chunks.length === 0) throw new TypeError('forward: chunks must be a non-empty array');
    const n = chunks.length;
    const counts = new Int32Array(n);
    const starts = new Int32Array(n);
    const writeFrom = new Int32Array(n);
    const tableLengths = new Int32Array(n);
    let tokenTotal = 0;
    let tableTotal = 0;
    chunks.forEach((chunk, s) => {
      const where = `forward: chunks[${s}]`;
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
    return this.#native.forward(tokens, counts, starts, writeFrom, tables, tableLengths, options.allLogits === true);
  }

  /**
   * The decode attention kernel alone, on layer `layer`: one query per
   * sequence (`queries` is [sequences][heads][headDim], already rotated)
   * against the K/V in its blocks at positions [0, position]. Returns
   * [sequences][heads][headDim]. For kernel tests and benchmarks.
   */
  decodeAttention(layer: number, queries: Float32Array, sequences: readonly { position: number; blockTable: Int32Array }[]): Float32Array {
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
