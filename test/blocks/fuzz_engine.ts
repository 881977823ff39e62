/**
 * The reference engine's entry point for the fuzz driver (fuzz_driver.ts):
 * `NativeEngine` made from sane and broken model configs, pools and weight
 * files (random bytes and damaged safetensors headers, which the parser
 * must refuse), and `forward` over sane and broken batches. A refused
 * forward must leave every byte of the KV pool as it was, and a pool that
 * was transferred away or shrunk must be refused, never written. Engines
 * over a pool they cannot address (a block count) must refuse `forward`
 * by saying so; on every engine, passes (`beginPass`, `project`,
 * `finishLayer`, `passLogits`) are driven in and out of order with sane
 * and broken arguments.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { FuzzContext } from './fuzz_driver.js';
import type { Target } from './fuzz_targets.js';
import { describe, garbage, type Rand } from './fuzz_values.js';

type Engine = { forward(...args: unknown[]): unknown; info(): { bytesPerBlock: number; blocks: number; threads: number; blas: boolean; attention: string } };
type EngineClass = new (...args: unknown[]) => Engine;

const BLOCK_SIZE = 4;
const VOCAB = 16;

function config(rand: Rand): Record<string, unknown> {
  return { layers: rand.range(1, 2), modelDim: 8, heads: 2, kvHeads: rand.pick([1, 2]), ffnDim: 16, vocab: VOCAB, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: rand.chance(0.5) };
}

/** Bytes that are, or almost are, a safetensors file: 8-byte header length, JSON header, data. */
function weightFile(rand: Rand): Buffer {
  const kind = rand.int(4);
  if (kind === 0) return Buffer.from(Array.from({ length: rand.range(0, 64) }, () => rand.int(256)));
  const length = Buffer.alloc(8);
  const tensors: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'model.layers.0.self_attn.q_proj.weight', 'lm_head.weight']) {
    const a = rand.pick([0, 8, 64, 1 << 30, -1]);
    tensors[name] = {
      dtype: rand.pick(['F32', 'F16', 'BF16', 'I64', 'X']),
      shape: rand.pick([[VOCAB, 8], [8], [8, 8], [], [-1, 2], [2 ** 40, 2 ** 40]]),
      data_offsets: rand.pick([[0, 0], [a, a + 64], [64, 0], [0, 2 ** 53]]),
    };
  }
  const header = Buffer.from(kind === 1 ? '{"unterminated' : JSON.stringify(tensors));
  length.writeBigUInt64LE(kind === 2 ? BigInt(rand.pick([header.length + 1000, 2 ** 40, 0])) : BigInt(header.length));
  return Buffer.concat([length, header, Buffer.alloc(rand.range(0, 256))]);
}

export class EngineTarget implements Target {
  readonly weight: number;
  readonly #class: EngineClass | undefined;
  readonly #weights = join(tmpdir(), `cachesage-fuzz-weights-${process.pid}.safetensors`);
  readonly #gc: () => void;
  #engine: Engine | null = null;
  #config: Record<string, unknown> = {};
  #pool = new ArrayBuffer(0);
  #blocks = 0;
  /** Made from a block count: no pool in this process. */
  #external = false;
  /**
   * Tokens and logit rows (tokens with allLogits, else chunks) of the pass
   * begun last; a rejected beginPass leaves the previous pass.
   */
  #passTokens = 0;
  #passRows = 0;

  constructor(private readonly ctx: FuzzContext) {
    this.#class = (ctx.addon as unknown as Record<string, EngineClass | undefined>).NativeEngine;
    this.weight = this.#class ? 6 : 0;
    setFlagsFromString('--expose-gc');
    this.#gc = runInNewContext('gc') as () => void;
  }

  #saneConstruction(): unknown[] {
    const { rand } = this.ctx;
    const blocks = rand.range(2, 8);
    const bytes = 2 * 2 * BLOCK_SIZE * 4 * 4 * blocks; // up to 2 layers and 2 KV heads of head size 4, K and V, f32
    return [config(rand), BLOCK_SIZE, rand.chance(0.2) ? blocks : new ArrayBuffer(bytes), 1, rand.int(100), null];
  }

  /** New engines, sane or broken; a made one becomes the target of forward(). */
  #construct(): void {
    const { ctx } = this;
    const { rand } = ctx;
    const sane = this.#saneConstruction();
    let args = ctx.mix(sane);
    if (rand.chance(0.3)) {
      // One field of the model config broken, or a weights file to parse.
      const broken = { ...(sane[0] as Record<string, unknown>) };
      broken[rand.pick(Object.keys(broken))] = garbage(rand);
      args = rand.chance(0.5) ? [broken, ...sane.slice(1)] : sane.map((v, i) => (i === 5 ? this.#weights : v));
      if (args[5] === this.#weights) writeFileSync(this.#weights, weightFile(rand));
    }
    // A model config's fields are read with ordinary property gets: its getters may run.
    const outcome = ctx.invoke('NativeEngine()', () => new this.#class!(...args), args, true);
    if (outcome.threw) return;
    const engine = outcome.value as Engine;
    const info = engine.info();
    const external = !(args[2] instanceof ArrayBuffer);
    const fits = external
      ? info.blocks === args[2] && info.attention === 'external'
      : info.blocks >= 1 && info.bytesPerBlock > 0 && info.blocks * info.bytesPerBlock <= (args[2] as ArrayBuffer).byteLength;
    if (!fits) ctx.violation('NativeEngine()', args, `info() ${JSON.stringify(info)} does not fit the pool`);
    this.#engine = engine;
    this.#config = args[0] as Record<string, unknown>;
    this.#external = external;
    this.#pool = external ? new ArrayBuffer(0) : (args[2] as ArrayBuffer);
    this.#blocks = info.blocks;
    this.#passTokens = 0;
    this.#passRows = 0;
  }

  #forwardArguments(): unknown[] {
    const { rand } = this.ctx;
    const chunks = rand.range(1, 2);
    const tokens: number[] = [], counts: number[] = [], starts: number[] = [], writeFrom: number[] = [], tables: number[] = [], lengths: number[] = [];
    for (let s = 0; s < chunks; s++) {
      const count = rand.range(1, 5);
      const start = rand.range(0, 6);
      for (let t = 0; t < count; t++) tokens.push(rand.chance(0.98) ? rand.int(VOCAB) : rand.pick([VOCAB, -1]));
      counts.push(count);
      starts.push(start);
      writeFrom.push(rand.chance(0.8) ? start : rand.range(0, start + count + 1));
      const needed = Math.ceil((start + count) / BLOCK_SIZE) - (rand.chance(0.03) ? 1 : 0);
      lengths.push(needed);
      for (let b = 0; b < needed; b++) tables.push(rand.chance(0.98) ? rand.int(this.#blocks) : rand.pick([-1, this.#blocks]));
    }
    return [...[tokens, counts, starts, writeFrom, tables, lengths].map((a) => Int32Array.from(a)), rand.chance(0.5)];
  }

  step(): void {
    const { ctx } = this;
    const { rand } = ctx;
    if (this.#engine === null || rand.chance(0.1)) return this.#construct();
    const engine = this.#engine;
    if (rand.chance(0.05)) {
      const outcome = ctx.method('NativeEngine#info', engine, 'info', []);
      const info = outcome.threw ? null : (outcome.value as Record<string, unknown>);
      if (info?.blocks !== this.#blocks) ctx.violation('NativeEngine#info', [], `returned ${JSON.stringify(info)}`);
      return;
    }
    if (rand.chance(0.3)) return this.#pass(engine);
    if (rand.chance(0.02) && !this.#external) return this.#losePool(engine);
    const args = ctx.mix(this.#forwardArguments());
    const before = Buffer.from(new Uint8Array(this.#pool));
    const outcome = ctx.method('NativeEngine#forward', engine, 'forward', args);
    if (this.#external) {
      const message = outcome.threw && outcome.error instanceof Error ? outcome.error.message : '';
      if (!/not in this process's memory/.test(message)) ctx.violation('NativeEngine#forward', args, `on a pool it cannot address: ${outcome.threw ? message : 'ran'}`);
      return;
    }
    if (outcome.threw) {
      if (!before.equals(new Uint8Array(this.#pool))) ctx.violation('NativeEngine#forward', args, 'a refused forward wrote to the KV pool');
      return;
    }
    const logits = outcome.value;
    const rows = args[6] === true ? (args[0] as Int32Array).length : (args[1] as Int32Array).length;
    // The engine's own vocabulary: a broken config field may have been a valid other size.
    const vocab = this.#config.vocab as number;
    if (!(logits instanceof Float32Array) || logits.length !== rows * vocab || !logits.every(Number.isFinite)) {
      ctx.violation('NativeEngine#forward', args, `returned ${describe(logits)}`);
    }
  }

  /**
   * One step of a pass: begin one (sane or broken batch), project, finish a
   * layer with attention of the right or a wrong size, or take the logits,
   * whatever state the pass is in. Out-of-order calls must be refused
   * clearly (the driver flags internal errors); logits must be finite and
   * one row per chunk, or per token.
   */
  #pass(engine: Engine): void {
    const { ctx } = this;
    const { rand } = ctx;
    const modelDim = this.#config.modelDim as number;
    const vocab = this.#config.vocab as number;
    // A quarter of the time a whole pass in order, so every step is also seen accepted.
    if (rand.chance(0.25)) return this.#wholePass(engine);
    const roll = rand.int(4);
    if (roll === 0) {
      const args = ctx.mix(this.#forwardArguments());
      const outcome = ctx.method('NativeEngine#beginPass', engine, 'beginPass', args);
      if (!outcome.threw) {
        this.#passTokens = (args[0] as Int32Array).length;
        this.#passRows = args[6] === true ? this.#passTokens : (args[1] as Int32Array).length;
      }
    } else if (roll === 1) {
      const outcome = ctx.method('NativeEngine#project', engine, 'project', []);
      if (outcome.threw) return;
      const out = outcome.value as { q?: unknown } | undefined;
      if (!(out?.q instanceof Float32Array && out.q.length === this.#passTokens * modelDim)) {
        ctx.violation('NativeEngine#project', [], `returned ${describe(outcome.value)}`);
      }
    } else if (roll === 2) {
      const length = rand.chance(0.8) ? this.#passTokens * modelDim : rand.range(0, 3);
      const attention = Float32Array.from({ length }, () => rand.range(-2, 2));
      ctx.method('NativeEngine#finishLayer', engine, 'finishLayer', ctx.mix([attention]));
    } else {
      const outcome = ctx.method('NativeEngine#passLogits', engine, 'passLogits', []);
      if (outcome.threw) return;
      const logits = outcome.value;
      if (!(logits instanceof Float32Array) || logits.length !== this.#passRows * vocab || !logits.every(Number.isFinite)) {
        ctx.violation('NativeEngine#passLogits', [], `returned ${describe(logits)}`);
      }
    }
  }

  /** beginPass with a sane batch, project and finishLayer for every layer, then passLogits. */
  #wholePass(engine: Engine): void {
    const { ctx } = this;
    const modelDim = this.#config.modelDim as number;
    const args = this.#forwardArguments();
    if (ctx.method('NativeEngine#beginPass', engine, 'beginPass', args).threw) return;
    this.#passTokens = (args[0] as Int32Array).length;
    this.#passRows = args[6] === true ? this.#passTokens : (args[1] as Int32Array).length;
    for (let layer = 0; layer < (this.#config.layers as number); layer++) {
      if (ctx.method('NativeEngine#project', engine, 'project', []).threw) return;
      const attention = Float32Array.from({ length: this.#passTokens * modelDim }, (_, i) => Math.sin(i));
      if (ctx.method('NativeEngine#finishLayer', engine, 'finishLayer', [attention]).threw) return;
    }
    const outcome = ctx.method('NativeEngine#passLogits', engine, 'passLogits', []);
    if (outcome.threw) return;
    const logits = outcome.value;
    if (!(logits instanceof Float32Array) || logits.length !== this.#passRows * (this.#config.vocab as number) || !logits.every(Number.isFinite)) {
      ctx.violation('NativeEngine#passLogits', [], `returned ${describe(logits)}`);
    }
  }

  /**
   * The pool's memory leaves the engine's hands: transferred to another
   * buffer that is then collected, or a resizable pool shrunk. The next
   * forward must be refused; writing would touch freed or released memory.
   */
  #losePool(engine: Engine): void {
    const { ctx } = this;
    const args = this.#forwardArguments().slice(0, 6).concat([false]);
    let how = 'transferred';
    if (ctx.rand.chance(0.5)) {
      structuredClone(this.#pool, { transfer: [this.#pool] });
      this.#gc();
    } else {
      const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
      const pool = new Resizable(this.#pool.byteLength, { maxByteLength: 1 << 20 });
      const made = ctx.invoke('NativeEngine()', () => new this.#class!(this.#config, BLOCK_SIZE, pool, 1, 1, null), [], true);
      if (made.threw) return;
      engine = made.value as Engine;
      pool.resize(0);
      how = 'shrunk';
    }
    const outcome = ctx.method('NativeEngine#forward', engine, 'forward', args);
    const message = outcome.threw && outcome.error instanceof Error ? outcome.error.message : '';
    // Refused for the pool, unless the batch itself was bad (then it is refused before the pool is looked at, or after).
    if (!outcome.threw) ctx.violation('NativeEngine#forward', args, `ran on a pool that was ${how}`);
    else if (!/pool/i.test(message) && !/token|slot|table|position|count|start/i.test(message)) {
      ctx.violation('NativeEngine#forward', args, `refused a ${how} pool with an unclear error: ${message}`);
    }
    this.#engine = null;
  }
}
