/**
 * The engine's TypeScript oracle: the same Llama-architecture decoder over
 * dense arrays, in plain loops with double accumulation, reading its
 * weights by their Hugging Face names ([out][in] row-major f32). No paging,
 * no batching: what the native engine must agree with.
 */
import { headDim, type ModelConfig } from './config.js';

/** Weights by Hugging Face Llama tensor name. */
export type NamedWeights = ReadonlyMap<string, Float32Array>;

/** The tensors a config needs, with their shapes, in file order. */
export function llamaTensorShapes(config: ModelConfig): [string, number[]][] {
  const d = config.modelDim;
  const kv = config.kvHeads * headDim(config);
  const f = config.ffnDim;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [config.vocab, d]]];
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}.`;
    shapes.push(
      [`${p}input_layernorm.weight`, [d]],
      [`${p}self_attn.q_proj.weight`, [d, d]],
      [`${p}self_attn.k_proj.weight`, [kv, d]],
      [`${p}self_attn.v_proj.weight`, [kv, d]],
      [`${p}self_attn.o_proj.weight`, [d, d]],
      [`${p}post_attention_layernorm.weight`, [d]],
      [`${p}mlp.gate_proj.weight`, [f, d]],
      [`${p}mlp.up_proj.weight`, [f, d]],
      [`${p}mlp.down_proj.weight`, [d, f]],
    );
  }
  shapes.push(['model.norm.weight', [d]]);
  if (!config.tiedEmbeddings) shapes.push(['lm_head.weight', [config.vocab, d]]);
  return shapes;
}

function tensor(weights: NamedWeights, name: string): Float32Array {
  const t = weights.get(name);
  if (t === undefined) throw new RangeError(`referenceForward: tensor ${name} is missing`);
  return t;
}

/** rows x out = rows x in times w^T (w: [out][in]). */
function project(x: Float64Array[], w: Float32Array, out: number): Float64Array[] {
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let sum = 0;
      for (let i = 0; i < row.length; i++) sum += row[i]! * w[o * row.length + i]!;
      y[o] = sum;
    }
    return y;
  });
}

function rmsNorm(x: Float64Array[], w: Float32Array, eps: number): Float64Array[] {
  return x.map((row) => {
    let squares = 0;
    for (const v of row) squares += v * v;
    const inverse = 1 / Math.sqrt(squares / row.length + eps);
    return row.map((v, i) => v * inverse * w[i]!);
  });
}

/** RoPE, "rotate half": dimension i < d/2 pairs with i + d/2. */
function rope(x: Float64Array[], heads: number, dim: number, theta: number): void {
  const half = dim / 2;
  x.forEach((row, position) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const angle = position * Math.pow(theta, (-2 * i) / dim);
        const a = row[h * dim + i]!;
        const b = row[h * dim + i + half]!;
        row[h * dim + i] = a * Math.cos(angle) - b * Math.sin(angle);
        row[h * dim + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  });
}

/** Logits [tokens][vocab] of every position of `tokens`. */
export function referenceForward(config: ModelConfig, weights: NamedWeights, tokens: Int32Array): Float32Array {
  const d = config.modelDim;
  const hd = headDim(config);
  const kvDim = config.kvHeads * hd;
  const group = config.heads / config.kvHeads;
  const embedding = tensor(weights, 'model.embed_tokens.weight');
  let x = Array.from(tokens, (t) => Float64Array.from(embedding.subarray(t * d, (t + 1) * d)));
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}.`;
    const h = rmsNorm(x, tensor(weights, `${p}input_layernorm.weight`), config.normEps);
    const q = project(h, tensor(weights, `${p}self_attn.q_proj.weight`), d);
    const k = project(h, tensor(weights, `${p}self_attn.k_proj.weight`), kvDim);
    const v = project(h, tensor(weights, `${p}self_attn.v_proj.weight`), kvDim);
    rope(q, config.heads, hd, config.ropeTheta);
    rope(k, config.kvHeads, hd, config.ropeTheta);
    const attention = q.map((query, i) => {
      const out = new Float64Array(d);
      for (let head = 0; head < config.heads; head++) {
        const g = Math.floor(head / group);
        const scores = new Float64Array(i + 1);
        for (let t = 0; t <= i; t++) {
          let s = 0;
          for (let e = 0; e < hd; e++) s += query[head * hd + e]! * k[t]![g * hd + e]!;
          scores[t] = s / Math.sqrt(hd);
        }
        const max = Math.max(...scores);
        let total = 0;
        for (let t = 0; t <= i; t++) total += scores[t] = Math.exp(scores[t]! - max);
        for (let t = 0; t <= i; t++) {
          for (let e = 0; e < hd; e++) out[head * hd + e]! += (scores[t]! / total) * v[t]![g * hd + e]!;
        }
      }
      return out;
    });
    const o = project(attention, tensor(weights, `${p}self_attn.o_proj.weight`), d);
    x = x.map((row, i) => row.map((value, j) => value + o[i]![j]!));
    const m = rmsNorm(x, tensor(weights, `${p}post_attention_layernorm.weight`), config.normEps);
    const gate = project(m, tensor(weights, `${p}mlp.gate_proj.weight`), config.ffnDim);
    const up = project(m, tensor(weights, `${p}mlp.up_proj.weight`), config.ffnDim);
    const act = gate.map((row, i) => row.map((g, j) => (g / (1 + Math.exp(-g))) * up[i]![j]!));
    const down = project(act, tensor(weights, `${p}mlp.down_proj.weight`), d);
    x = x.map((row, i) => row.map((value, j) => value + down[i]![j]!));
  }
  const final = rmsNorm(x, tensor(weights, 'model.norm.weight'), config.normEps);
  const head = tensor(weights, config.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  const logits = project(final, head, config.vocab);
  const out = new Float32Array(tokens.length * config.vocab);
  logits.forEach((row, i) => out.set(row, i * config.vocab));
  return out;
}

/**
 * Decode attention over dense rows: query [heads][headDim] at the last of
 * `keys.length` positions, keys and values [position][kvHeads * headDim].
 * Returns [heads][headDim].
 */
export function referenceDecodeAttention(config: ModelConfig, query: Float32Array, keys: Float32Array[], values: Float32Array[]): Float32Array {
  const hd = headDim(config);
  const group = config.heads / config.kvHeads;
  const out = new Float32Array(config.heads * hd);
  for (let h = 0; h < config.heads; h++) {
    const g = Math.floor(h / group);
    const scores = keys.map((key) => {
      let s = 0;
      for (let e = 0; e < hd; e++) s += query[h * hd + e]! * key[g * hd + e]!;
      return s / Math.sqrt(hd);
    });
    const max = Math.max(...scores);
    const weights = scores.map((s) => Math.exp(s - max));
    const total = weights.reduce((a, b) => a + b, 0);
    for (let e = 0; e < hd; e++) {
      let sum = 0;
      values.forEach((value, t) => (sum += weights[t]! * value[g * hd + e]!));
      out[h * hd + e] = sum / total;
    }
  }
  return out;
}
