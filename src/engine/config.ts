/**
 * The reference engine's model shape: presets, and model config files in
 * either this module's field names or Hugging Face's config.json names
 * (hidden_size, num_hidden_layers, ...), so a downloaded Llama config works
 * as it is.
 */
import { readFileSync } from 'node:fs';

/** A Llama-architecture decoder's shape (native/engine/model_config.h). */
export interface ModelConfig {
  layers: number;
  modelDim: number;
  heads: number;
  /** Grouped-query attention: query head h reads KV head h / (heads / kvHeads). */
  kvHeads: number;
  ffnDim: number;
  vocab: number;
  ropeTheta: number;
  normEps: number;
  /** The output head is the embedding matrix (no lm_head.weight). */
  tiedEmbeddings: boolean;
}

/** Built-in shapes: `tiny` for tests (8 KiB per 16-token block), `small` for benchmarks (64 KiB). */
export const MODEL_PRESETS: Readonly<Record<'tiny' | 'small', Readonly<ModelConfig>>> = {
  tiny: { layers: 2, modelDim: 64, heads: 4, kvHeads: 2, ffnDim: 128, vocab: 512, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: true },
  small: { layers: 4, modelDim: 512, heads: 8, kvHeads: 2, ffnDim: 1408, vocab: 8192, ropeTheta: 500000, normEps: 1e-5, tiedEmbeddings: false },
};

/** Field of ModelConfig -> its Hugging Face config.json name. */
const HF_NAMES: Record<keyof ModelConfig, string> = {
  layers: 'num_hidden_layers',
  modelDim: 'hidden_size',
  heads: 'num_attention_heads',
  kvHeads: 'num_key_value_heads',
  ffnDim: 'intermediate_size',
  vocab: 'vocab_size',
  ropeTheta: 'rope_theta',
  normEps: 'rms_norm_eps',
  tiedEmbeddings: 'tie_word_embeddings',
};

const INT_LIMITS: Partial<Record<keyof ModelConfig, [number, number]>> = {
  layers: [1, 4096],
  modelDim: [1, 1 << 16],
  heads: [1, 1 << 16],
  kvHeads: [1, 1 << 16],
  ffnDim: [1, 1 << 18],
  vocab: [1, 1 << 22],
};

/** Checks a config's fields and their relations; throws TypeError/RangeError naming the field, `where` first. */
export function checkModelConfig(config: ModelConfig, where = 'model config'): ModelConfig {
  if (typeof config !== 'object' || config === null) throw new TypeError(`${where}: must be an object`);
  for (const [field, [min, max]] of Object.entries(INT_LIMITS) as [keyof ModelConfig, [number, number]][]) {
    const value = config[field];
    if (typeof value !== 'number') throw new TypeError(`${where}: ${field} must be a number, got ${typeof value}`);
    if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${where}: ${field} must be an integer in [${min}, ${max}], got ${value}`);
  }
  for (const field of ['ropeTheta', 'normEps'] as const) {
    if (typeof config[field] !== 'number' || !Number.isFinite(config[field])) throw new TypeError(`${where}: ${field} must be a finite number`);
  }
  if (typeof config.tiedEmbeddings !== 'boolean') throw new TypeError(`${where}: tiedEmbeddings must be a boolean`);
  if (config.modelDim % config.heads !== 0) throw new RangeError(`${where}: modelDim (${config.modelDim}) must be a multiple of heads (${config.heads})`);
  if ((config.modelDim / config.heads) % 2 !== 0) throw new RangeError(`${where}: the head dimension modelDim / heads must be even (RoPE)`);
  if (config.kvHeads > config.heads || config.heads % config.kvHeads !== 0) {
    throw new RangeError(`${where}: heads (${config.heads}) must be a multiple of kvHeads (${config.kvHeads})`);
  }
  if (!(config.ropeTheta > 1)) throw new RangeError(`${where}: ropeTheta must be above 1, got ${config.ropeTheta}`);
  if (!(config.normEps > 0)) throw new RangeError(`${where}: normEps must be positive, got ${config.normEps}`);
  return config;
}

/**
 * A config from parsed JSON: each field under its own name or its Hugging
 * Face name; kvHeads defaults to heads, ropeTheta to 10000, normEps to
 * 1e-5, tiedEmbeddings to false (Hugging Face's defaults).
 */
export function modelConfigFromJson(json: unknown, where = 'model config'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TypeError(`${where}: must be a JSON object`);
  const record = json as Record<string, unknown>;
  const field = (name: keyof ModelConfig): unknown => record[name] ?? record[HF_NAMES[name]];
  const missing = (['layers', 'modelDim', 'heads', 'ffnDim', 'vocab'] as const).filter((name) => field(name) === undefined);
  if (missing.length > 0) {
    throw new TypeError(`${where}: missing ${missing.map((name) => `${name} (or ${HF_NAMES[name]})`).join(', ')}`);
  }
  const config = {
    layers: field('layers'),
    modelDim: field('modelDim'),
    heads: field('heads'),
    kvHeads: field('kvHeads') ?? field('heads'),
    ffnDim: field('ffnDim'),
    vocab: field('vocab'),
    ropeTheta: field('ropeTheta') ?? 10000,
    normEps: field('normEps') ?? 1e-5,
    tiedEmbeddings: field('tiedEmbeddings') ?? false,
  } as ModelConfig;
  return checkModelConfig(config, where);
}

/** A preset by name, or a JSON file (anything else is a path). */
export function loadModelConfig(nameOrPath: string): ModelConfig {
  if (nameOrPath === 'tiny' || nameOrPath === 'small') return { ...MODEL_PRESETS[nameOrPath] };
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (error) {
    throw new RangeError(`model config ${nameOrPath}: cannot read it (${(error as Error).message}); presets are tiny and small`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RangeError(`model config ${nameOrPath}: not JSON (${(error as Error).message})`);
  }
  return modelConfigFromJson(json, `model config ${nameOrPath}`);
}

/** Head dimension: modelDim / heads. */
export function headDim(config: ModelConfig): number {
  return config.modelDim / config.heads;
}

/**
 * KV bytes of one block in the engine's page layout,
 * f32 kv[layer][K|V][kvHead][token][dim]: layers x 2 x kvHeads x blockSize x headDim x 4.
 */
export function kvBytesPerBlock(config: ModelConfig, blockSize: number): number {
  return config.layers * 2 * config.kvHeads * blockSize * headDim(config) * 4;
}

/**
 * Offset in floats, within the KV pool, of the K (kv = 0) or V (kv = 1) row
 * of one token: the page layout of native/engine/model_config.h,
 * f32 kv[slot][layer][K|V][kvHead][token in block][dim].
 */
export function kvOffset(config: ModelConfig, blockSize: number, slot: number, layer: number, kv: 0 | 1, kvHead: number, token: number): number {
  const dim = headDim(config);
  const headStride = blockSize * dim;
  const kvStride = config.kvHeads * headStride;
  const layerStride = 2 * kvStride;
  return slot * config.layers * layerStride + layer * layerStride + kv * kvStride + kvHead * headStride + token * dim;
}
