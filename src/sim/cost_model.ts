/**
 * The serving cost model: turns prefill, decode and transfers into seconds.
 * All constants live here, with where they come from.
 *
 * KV bytes per token = 2 (K and V) x layers x KV heads x head dim x 2 bytes
 * (bf16), from each model's published configuration (config.json on the
 * model card). Compute throughputs are typical of one H100 SXM (989 TFLOPS
 * dense bf16, 3.35 TB/s HBM3) at the utilisation serving engines reach,
 * and are deliberately round: they set the scale, the comparison between
 * policies does not hinge on them.
 */
export interface CostModel {
  name: string;
  /** KV bytes per token. */
  kvBytesPerToken: number;
  /** New prompt tokens per second, the linear (MLP and projection) part of prefill. */
  prefillTokensPerSecond: number;
  /** Seconds per (new token x attended token) in prefill: the attention part. */
  attentionSecondsPerTokenPair: number;
  /** Fixed seconds per decode iteration (reading the weights once). */
  decodeIterationSeconds: number;
  /** Extra seconds per sequence in a decode iteration. */
  decodeSecondsPerSequence: number;
  /**
   * Extra seconds per token of context in a decode iteration: each sequence
   * reads the KV of every token it attends to. Optional (0 when absent, as
   * in the presets, which fold an average context into the per-sequence
   * term); a cost model calibrated from an engine measures it.
   */
  decodeSecondsPerContextToken?: number;
  /**
   * Fixed seconds of an iteration that prefills, whatever it prefills (one
   * forward pass reads the weights and launches its work once). Optional (0
   * when absent, as in the presets, whose prefill is compute-bound). An
   * iteration that both prefills and decodes pays the larger of this and
   * decodeIterationSeconds once, not both.
   */
  prefillIterationSeconds?: number;
  /** Host -> device bandwidth, bytes per second (PCIe 5 x16, pinned memory). */
  hostToDeviceBytesPerSecond: number;
  /** Latency of one host -> device transfer batch, seconds. */
  transferLatencySeconds: number;
  /** Tokens one engine iteration may prefill (continuous batching budget). */
  iterationTokenBudget: number;
}

/**
 * Llama-3-8B, bf16, one H100: 32 layers x 8 KV heads x 128 dims:
 * 128 KiB per token, 2 MiB per 16-token block. ~16 GFLOP per token of
 * linear work at ~50 % MFU gives ~15k prefill tokens/s; attention is
 * 4 x layers x hidden (4096) FLOP per token pair, ~5e-10 s at that rate.
 * Decode reads 16 GB of weights per iteration at ~3 TB/s: ~6 ms.
 */
export const LLAMA3_8B_H100: CostModel = {
  name: '8b',
  kvBytesPerToken: 2 * 32 * 8 * 128 * 2,
  prefillTokensPerSecond: 15_000,
  attentionSecondsPerTokenPair: 5e-10,
  decodeIterationSeconds: 0.006,
  decodeSecondsPerSequence: 0.00005,
  hostToDeviceBytesPerSecond: 50e9,
  transferLatencySeconds: 10e-6,
  iterationTokenBudget: 8192,
};

/**
 * Llama-3-70B, bf16, tensor-parallel over 4 H100s (its 140 GB of weights do
 * not fit one): 80 layers x 8 KV heads x 128 dims: 320 KiB per token.
 * ~140 GFLOP per token over 4 GPUs at ~45 % MFU: ~2.5k prefill tokens/s;
 * attention 4 x 80 x 8192 FLOP per token pair; decode reads 35 GB per GPU
 * per iteration: ~12 ms plus all-reduce.
 */
export const LLAMA3_70B_4xH100: CostModel = {
  name: '70b',
  kvBytesPerToken: 2 * 80 * 8 * 128 * 2,
  prefillTokensPerSecond: 2_500,
  attentionSecondsPerTokenPair: 1.5e-9,
  decodeIterationSeconds: 0.014,
  decodeSecondsPerSequence: 0.0001,
  hostToDeviceBytesPerSecond: 50e9,
  transferLatencySeconds: 10e-6,
  iterationTokenBudget: 8192,
};

export const COST_MODELS: Readonly<Record<string, CostModel>> = Object.freeze({
  '8b': LLAMA3_8B_H100,
  '70b': LLAMA3_70B_4xH100,
});

/** Seconds to prefill `n` new tokens after `cached` tokens already in KV. */
export function prefillSeconds(model: CostModel, n: number, cached: number): number {
  if (n <= 0) return 0;
  return n / model.prefillTokensPerSecond + model.attentionSecondsPerTokenPair * n * (cached + n / 2);
}

/**
 * What an iteration that prefills adds for being one: the fixed prefill
 * cost, less the fixed decode cost the same pass already pays when it also
 * decodes (`decoding`). 0 without a prefillIterationSeconds.
 */
export function prefillIterationSeconds(model: CostModel, decoding: boolean): number {
  const fixed = model.prefillIterationSeconds ?? 0;
  if (fixed <= 0) return 0;
  return decoding ? Math.max(0, fixed - model.decodeIterationSeconds) : fixed;
}

/** Seconds of one decode iteration over `sequences` running sequences attending to `contextTokens` tokens in all. */
export function decodeSeconds(model: CostModel, sequences: number, contextTokens = 0): number {
  if (sequences <= 0) return 0;
  return model.decodeIterationSeconds + model.decodeSecondsPerSequence * sequences + (model.decodeSecondsPerContextToken ?? 0) * contextTokens;
}

/** A sequence being decoded: its call's sizes and the decode steps it has left. */
export interface DecodingSequence {
  call: { promptTokens: number; outputTokens: number };
  remaining: number;
}

/**
 * Seconds of `steps` decode iterations over the running sequences, each
 * attending to its prompt and the reply tokens fed so far, one more per step.
 */
export function decodeStepsSeconds(model: CostModel, running: readonly DecodingSequence[], steps: number): number {
  const k = running.length;
  if (k === 0 || steps <= 0) return 0;
  const perToken = model.decodeSecondsPerContextToken ?? 0;
  let context = 0;
  if (perToken > 0) for (const r of running) context += r.call.promptTokens + r.call.outputTokens - r.remaining;
  return steps * decodeSeconds(model, k, context) + (perToken * k * steps * (steps - 1)) / 2;
}

/** Seconds to move `blocks` blocks host -> device in one batch. */
export function transferSeconds(model: CostModel, blocks: number, bytesPerBlock: number): number {
  return blocks > 0 ? model.transferLatencySeconds + (blocks * bytesPerBlock) / model.hostToDeviceBytesPerSecond : 0;
}
