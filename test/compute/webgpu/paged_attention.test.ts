/**
 * WebGPU paged attention (kernels/wgsl/paged_attention.wgsl) against the
 * TypeScript oracles: appended K/V must land bit for bit at the offsets of
 * the engine's page layout (kvOffset), and prefill and decode outputs must
 * match referenceDecodeAttention over the same rows held densely, on tiny
 * random shapes with shuffled slots and chunks that start mid-block.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { kvOffset, type ModelConfig } from '../../../src/engine/config.js';
import { referenceDecodeAttention } from '../../../src/engine/reference.js';
import { WebGpuPagedAttentionProgram, type PagedKvLayout } from '../../../src/compute/webgpu/paged_attention_program.js';
import { seededRandom } from '../../../src/util/random.js';
import { maxRelativeError } from '../../engine/helpers.js';
import { webGpuUnavailable } from './adapter.js';

const unavailable = await webGpuUnavailable('webgpu paged attention', 'test/compute/webgpu/paged_attention.test.ts');

// Float32 with an online softmax against the float64 oracle.
const TOLERANCE = 1e-5;

interface Shape {
  layout: PagedKvLayout;
  heads: number;
}

/** The oracle's view of a shape: only heads, kvHeads, head dimension and layers matter to it. */
function modelOf({ layout, heads }: Shape): ModelConfig {
  return {
    layers: layout.layers, modelDim: heads * layout.headDim, heads, kvHeads: layout.kvHeads,
    ffnDim: 1, vocab: 1, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: true,
  };
}

/** 2-4 query heads over 1-2 KV heads, head dimension 8-16, 4-token blocks. */
function randomShape(random: () => number): Shape {
  const kvHeads = 1 + Math.floor(random() * 2);
  const heads = kvHeads === 1 ? 2 + 2 * Math.floor(random() * 2) : 2 * (1 + Math.floor(random() * 2));
  const headDim = 8 + 2 * Math.floor(random() * 5);
  return { layout: { layers: 1 + Math.floor(random() * 2), kvHeads, blockSize: 4, headDim }, heads };
}

function describeShape({ layout, heads }: Shape): string {
  return `${heads}/${layout.kvHeads} heads, headDim ${layout.headDim}, ${layout.layers} layers`;
}

function randomFloats(random: () => number, length: number): Float32Array {
  return Float32Array.from({ length }, () => 2 * random() - 1);
}

function shuffled(random: () => number, count: number): number[] {
  const slots = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  return slots;
}

/**
 * Dense K and V rows ([token][kvHeads * headDim]) of one sequence, and the
 * pool the layout says appending them must produce.
 */
class Sequence {
  readonly keys: Float32Array[] = [];
  readonly values: Float32Array[] = [];

  constructor(
    readonly shape: Shape,
    readonly table: Int32Array,
  ) {}

  /** Random rows for `count` more tokens: the K/V to append, and the expected pool updated in place. */
  grow(random: () => number, count: number, layer: number, expected: Float32Array): { k: Float32Array; v: Float32Array } {
    const { layout } = this.shape;
    const width = layout.kvHeads * layout.headDim;
    const k = randomFloats(random, count * width);
    const v = randomFloats(random, count * width);
    // Values float arithmetic could alter but a word copy must not.
    if (count > 0) {
      k[0] = -0;
      v[width - 1] = 1e-40;
    }
    const model = modelOf(this.shape);
    for (let i = 0; i < count; i++) {
      const position = this.keys.length;
      this.keys.push(k.slice(i * width, (i + 1) * width));
      this.values.push(v.slice(i * width, (i + 1) * width));
      const slot = this.table[Math.floor(position / layout.blockSize)]!;
      for (let g = 0; g < layout.kvHeads; g++) {
        const row = i * width + g * layout.headDim;
        expected.set(k.subarray(row, row + layout.headDim), kvOffset(model, layout.blockSize, slot, layer, 0, g, position % layout.blockSize));
        expected.set(v.subarray(row, row + layout.headDim), kvOffset(model, layout.blockSize, slot, layer, 1, g, position % layout.blockSize));
      }
    }
    return { k, v };
  }

  /** The oracle's output for a query at `position`. */
  attend(query: Float32Array, position: number): Float32Array {
    return referenceDecodeAttention(modelOf(this.shape), query, this.keys.slice(0, position + 1), this.values.slice(0, position + 1));
  }
}

async function expectSameBits(program: WebGpuPagedAttentionProgram, expected: Float32Array, what: string): Promise<void> {
  const pool = await program.readPool();
  const got = new Uint32Array(pool.buffer);
  const want = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const first = got.findIndex((word, i) => word !== want[i]);
  expect(first, `${what}: first differing float of the pool`).toBe(-1);
}

describe.skipIf(unavailable !== null)('webgpu paged attention', () => {
  const programs: WebGpuPagedAttentionProgram[] = [];
  const newProgram = async (random: () => number, shape: Shape, blocks: number): Promise<{ program: WebGpuPagedAttentionProgram; expected: Float32Array }> => {
    const program = await WebGpuPagedAttentionProgram.create({ layout: shape.layout, blocks });
    programs.push(program);
    // Stale K/V everywhere: the kernels must neither read nor overwrite it.
    const expected = randomFloats(random, blocks * program.floatsPerBlock);
    await program.writePool(expected);
    return { program, expected };
  };
  afterAll(() => {
    for (const program of programs) program.destroy();
  });

  // The last case's second chunk spans more than one 64-position tile of the kernel.
  it.each([1, 2, 3, 4, 5, 6])('appends and prefills two chunks, the second from mid-block (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const shape = randomShape(random);
    const first = 4 * Math.floor(random() * 2) + 1 + Math.floor(random() * 3);
    const second = seed === 6 ? 70 : 1 + Math.floor(random() * 10);
    const needed = Math.ceil((first + second) / shape.layout.blockSize);
    const blocks = needed + 3;
    const { program, expected } = await newProgram(random, shape, blocks);
    const sequence = new Sequence(shape, Int32Array.from(shuffled(random, blocks).slice(0, needed)));
    const layer = Math.floor(random() * shape.layout.layers);
    const { heads, layout } = shape;
    for (const [start, count] of [[0, first], [first, second]] as const) {
      const what = `${describeShape(shape)}, positions [${start}, ${start + count})`;
      const { k, v } = sequence.grow(random, count, layer, expected);
      await program.appendKv({ layer, table: sequence.table, start, count, k, v });
      await expectSameBits(program, expected, `${what}: appendKv`);

      const q = randomFloats(random, count * heads * layout.headDim);
      const got = await program.prefill({ layer, heads, table: sequence.table, start, count, q });
      const rowWidth = heads * layout.headDim;
      const want = new Float32Array(got.length);
      for (let i = 0; i < count; i++) want.set(sequence.attend(q.subarray(i * rowWidth, (i + 1) * rowWidth), start + i), i * rowWidth);
      expect(maxRelativeError(got, want), `${what}: prefill`).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it.each([11, 12, 13])('decodes a batch of sequences, each through its own table (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const shape = randomShape(random);
    const { heads, layout } = shape;
    // A first token alone, a block's last and next token, a random one and one past a 64-position tile.
    const positions = Int32Array.from([0, 3, 4, 5 + Math.floor(random() * 20), 66 + Math.floor(random() * 10)]);
    const needs = Array.from(positions, (p) => Math.floor(p / layout.blockSize) + 1);
    const blocks = needs.reduce((a, b) => a + b, 0) + 2;
    const { program, expected } = await newProgram(random, shape, blocks);
    const slots = shuffled(random, blocks);
    const layer = Math.floor(random() * layout.layers);
    let next = 0;
    const sequences = needs.map((need) => new Sequence(shape, Int32Array.from(slots.slice(next, (next += need)))));
    for (const [s, sequence] of sequences.entries()) {
      // Two appends per sequence, split at a random position.
      const tokens = positions[s]! + 1;
      const split = Math.floor(random() * tokens);
      for (const [start, count] of [[0, split], [split, tokens - split]] as const) {
        const { k, v } = sequence.grow(random, count, layer, expected);
        await program.appendKv({ layer, table: sequence.table, start, count, k, v });
      }
    }
    await expectSameBits(program, expected, `${describeShape(shape)}: appendKv of the batch`);

    const rowWidth = heads * layout.headDim;
    const q = randomFloats(random, positions.length * rowWidth);
    const got = await program.decode({ layer, heads, tables: sequences.map((s) => s.table), positions, q });
    expect(got.length).toBe(q.length);
    sequences.forEach((sequence, s) => {
      const want = sequence.attend(q.subarray(s * rowWidth, (s + 1) * rowWidth), positions[s]!);
      const error = maxRelativeError(got.subarray(s * rowWidth, (s + 1) * rowWidth), want);
      expect(error, `${describeShape(shape)}: decode of sequence ${s} at position ${positions[s]}`).toBeLessThanOrEqual(TOLERANCE);
    });
  });

  it('returns empty outputs for an empty chunk or batch', async () => {
    const random = seededRandom(21);
    const shape: Shape = { layout: { layers: 1, kvHeads: 1, blockSize: 4, headDim: 8 }, heads: 2 };
    const { program, expected } = await newProgram(random, shape, 2);
    const table = Int32Array.from([1]);
    await program.appendKv({ layer: 0, table, start: 3, count: 0, k: new Float32Array(0), v: new Float32Array(0) });
    expect(await program.prefill({ layer: 0, heads: 2, table, start: 2, count: 0, q: new Float32Array(0) })).toEqual(new Float32Array(0));
    expect(await program.decode({ layer: 0, heads: 2, tables: [], positions: new Int32Array(0), q: new Float32Array(0) })).toEqual(new Float32Array(0));
    await expectSameBits(program, expected, 'empty calls');
  });

  it('refuses bad options, naming the field', async () => {
    const layout: PagedKvLayout = { layers: 1, kvHeads: 2, blockSize: 4, headDim: 8 };
    await expect(WebGpuPagedAttentionProgram.create({ layout: { ...layout, headDim: 257 }, blocks: 2 })).rejects.toThrow(
      new RangeError('options.layout.headDim must be in [1, 256], got 257'),
    );
    await expect(WebGpuPagedAttentionProgram.create({ layout: { ...layout, layers: 1.5 }, blocks: 2 })).rejects.toThrow(
      /^options\.layout\.layers must be an integer/,
    );
    await expect(WebGpuPagedAttentionProgram.create({ layout: null as unknown as PagedKvLayout, blocks: 2 })).rejects.toThrow(TypeError);
    await expect(WebGpuPagedAttentionProgram.create({ layout, blocks: 0 })).rejects.toThrow(/^options\.blocks must be in/);
    await expect(WebGpuPagedAttentionProgram.create({ layout, blocks: 2 ** 30 })).rejects.toThrow(/^options\.blocks: the pool needs/);
  });

  it('refuses bad calls, naming the field, before anything is queued', async () => {
    const random = seededRandom(22);
    const shape: Shape = { layout: { layers: 2, kvHeads: 2, blockSize: 4, headDim: 8 }, heads: 4 };
    const { program, expected } = await newProgram(random, shape, 3);
    const rows = (tokens: number, width = 16): Float32Array => randomFloats(random, tokens * width);
    const table = Int32Array.from([2, 0]);
    const append = { layer: 0, table, start: 3, count: 2, k: rows(2), v: rows(2) };
    expect(() => program.appendKv({ ...append, table: [2, 0] as unknown as Int32Array })).toThrow(
      new TypeError('appendKv: table must be an Int32Array, got an array'),
    );
    expect(() => program.appendKv({ ...append, table: Int32Array.from([2, 3]) })).toThrow(
      new RangeError('appendKv: table[1] is slot 3, outside the pool of 3 blocks'),
    );
    expect(() => program.appendKv({ ...append, table: Int32Array.from([2]) })).toThrow(
      new RangeError('appendKv: table has 1 blocks; 5 tokens need 2'),
    );
    expect(() => program.appendKv({ ...append, layer: 2 })).toThrow(new RangeError('appendKv: layer must be in [0, 1], got 2'));
    expect(() => program.appendKv({ ...append, start: -1 })).toThrow(/^appendKv: start must be in/);
    expect(() => program.appendKv({ ...append, k: rows(3) })).toThrow(
      new RangeError('appendKv: k must hold count x kvHeads x headDim = 32 floats, got 48'),
    );
    expect(() => program.appendKv({ ...append, v: new Float64Array(32) as unknown as Float32Array })).toThrow(
      new TypeError('appendKv: v must be a Float32Array, got a Float64Array'),
    );

    const prefill = { layer: 1, heads: 4, table, start: 3, count: 2, q: rows(2, 32) };
    expect(() => program.prefill({ ...prefill, heads: 1 })).toThrow(new RangeError('prefill: heads must be in [2, 65536], got 1'));
    expect(() => program.prefill({ ...prefill, heads: 6 })).toThrow(
      new RangeError('prefill: q must hold count x heads x headDim = 96 floats, got 64'),
    );
    expect(() => program.prefill({ ...prefill, heads: 5, q: rows(2, 40) })).toThrow(
      new RangeError('prefill: heads must be a multiple of layout.kvHeads (2), got 5'),
    );

    const decode = { layer: 0, heads: 4, tables: [table, Int32Array.from([1])], positions: Int32Array.from([5, 2]), q: rows(2, 32) };
    expect(() => program.decode({ ...decode, positions: Int32Array.from([5]) })).toThrow(
      new RangeError('decode: tables has 2 entries and positions 1; they must match'),
    );
    expect(() => program.decode({ ...decode, positions: Int32Array.from([5, -1]) })).toThrow(
      new RangeError('decode: positions[1] must be in [0, 2147483646], got -1'),
    );
    expect(() => program.decode({ ...decode, positions: Int32Array.from([5, 4]) })).toThrow(
      new RangeError('decode: tables[1] has 1 blocks; 5 tokens need 2'),
    );
    expect(() => program.decode({ ...decode, positions: [5, 2] as unknown as Int32Array })).toThrow(
      new TypeError('decode: positions must be an Int32Array, got an array'),
    );

    await expectSameBits(program, expected, 'the pool after the refused calls');
    program.destroy();
    expect(() => program.prefill(prefill)).toThrow(new RangeError('prefill: this WebGpuPagedAttentionProgram was destroyed'));
  });
});
