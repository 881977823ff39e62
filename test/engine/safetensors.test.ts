// Weights from safetensors files written here with the standard header:
// F32, F16 and BF16 load and give the TypeScript oracle's logits; a
// truncated file, a wrong dtype or shape and a missing tensor are refused
// with the tensor and the file named.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { kvBytesPerBlock, type ModelConfig } from '../../src/engine/config.js';
import { Engine } from '../../src/engine/engine.js';
import { llamaTensorShapes, referenceForward } from '../../src/engine/reference.js';
import { seededRandom } from '../../src/util/random.js';
import { maxRelativeError, randomTokens, TOLERANCE } from './helpers.js';
import { writeSafetensors, type TensorRecord } from './safetensors_file.js';

const dir = mkdtempSync(join(tmpdir(), 'cachesage-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BLOCK = 4;
const MODEL: ModelConfig = { layers: 2, modelDim: 32, heads: 4, kvHeads: 2, ffnDim: 48, vocab: 40, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false };

/** Random weights rounded to bf16, so F32, F16 and BF16 files hold the same values exactly. */
function llamaTensors(config: ModelConfig, seed: number): TensorRecord[] {
  const random = seededRandom(seed);
  return llamaTensorShapes(config).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = name.endsWith('layernorm.weight') || name === 'model.norm.weight';
    const scale = 1 / Math.sqrt(shape[shape.length - 1]!);
    const values = Float32Array.from({ length: n }, () => (norm ? 1 + 0.25 * (random() - 0.5) : (2 * random() - 1) * scale));
    const bits = new Uint32Array(values.buffer);
    for (let i = 0; i < n; i++) bits[i] = bits[i]! & 0xffff0000;
    return { name, dtype: 'F32', shape, values };
  });
}

function engineFor(path: string, config: ModelConfig = MODEL): Engine {
  return new Engine({ model: config, blockSize: BLOCK, pool: new ArrayBuffer(8 * kvBytesPerBlock(config, BLOCK)), threads: 2, weights: path });
}

const TABLE = Int32Array.from([5, 2, 7, 0, 1, 3, 6, 4]);

describe('safetensors weights', () => {
  const tensors = llamaTensors(MODEL, 11);
  const weights = new Map(tensors.map((t) => [t.name, t.values]));
  const tokens = randomTokens(MODEL.vocab, 19, 3);
  const want = referenceForward(MODEL, weights, tokens);

  it.each(['F32', 'F16', 'BF16'] as const)('loads %s and matches the TypeScript reference decoder', (dtype) => {
    const path = join(dir, `model-${dtype}.safetensors`);
    writeSafetensors(path, tensors.map((t) => ({ ...t, dtype })));
    const got = engineFor(path).forward([{ tokens, start: 0, blockTable: TABLE }], { allLogits: true });
    expect(maxRelativeError(got, want)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('ties the output head to the embedding without lm_head.weight', () => {
    const tied = { ...MODEL, tiedEmbeddings: true };
    const tiedTensors = llamaTensors(tied, 12);
    const path = join(dir, 'tied.safetensors');
    writeSafetensors(path, tiedTensors);
    const got = engineFor(path, tied).forward([{ tokens, start: 0, blockTable: TABLE }], { allLogits: true });
    const oracle = referenceForward(tied, new Map(tiedTensors.map((t) => [t.name, t.values])), tokens);
    expect(maxRelativeError(got, oracle)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('refuses a truncated file, naming the tensor whose data is cut and the file', () => {
    const whole = join(dir, 'whole.safetensors');
    writeSafetensors(whole, tensors);
    const path = join(dir, 'truncated.safetensors');
    const bytes = readFileSync(whole);
    writeFileSync(path, bytes.subarray(0, bytes.length - 10));
    expect(() => engineFor(path)).toThrow(`safetensors ${path}: tensor lm_head.weight: its data ends at byte ${bytes.length}`);
    expect(() => engineFor(path)).toThrow(/the file is truncated/);
    const header = join(dir, 'header-cut.safetensors');
    writeFileSync(header, bytes.subarray(0, 40));
    expect(() => engineFor(header)).toThrow(`safetensors ${header}: the header claims`);
  });

  it('refuses a tensor of another dtype, naming it and the file', () => {
    const path = join(dir, 'dtype.safetensors');
    writeSafetensors(path, tensors.map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, dtype: 'I32' } : t)));
    expect(() => engineFor(path)).toThrow(`safetensors ${path}: tensor model.layers.1.self_attn.k_proj.weight has dtype I32, not one of F32, F16, BF16`);
  });

  it('refuses a missing tensor or a wrong shape, naming the tensor and the file', () => {
    const missing = join(dir, 'missing.safetensors');
    writeSafetensors(missing, tensors.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
    expect(() => engineFor(missing)).toThrow(`safetensors ${missing}: tensor model.layers.1.mlp.up_proj.weight is missing`);
    const shape = join(dir, 'shape.safetensors');
    writeSafetensors(shape, tensors.map((t) => (t.name === 'model.norm.weight' ? { ...t, shape: [16, 2] } : t)));
    expect(() => engineFor(shape)).toThrow(`safetensors ${shape}: tensor model.norm.weight has shape [16, 2], the model config needs [32]`);
    expect(() => engineFor(join(dir, 'absent.safetensors'))).toThrow(/absent\.safetensors: cannot open the file/);
  });
});
