/**
 * Reference engine benchmark (src/engine on native/engine).
 *
 *   npm run --silent bench:engine -- [--json] [--model tiny|small|PATH.json] [--threads N]
 *
 * On the `small` model by default, block size 16:
 * - prefillTokPerS: a 2,048-token prompt prefilled from nothing;
 * - cachedPrefillSpeedup: that prefill's time over the time of the same
 *   prompt with its first 1,920 tokens' KV already in the blocks (only the
 *   last 128 computed, attending to all 2,048);
 * - decodeTokPerS: teacher-forced decode of one sequence at 2,048 tokens of
 *   context; decodeBatch8TokPerS: eight such sequences per step;
 * - attentionGBs: KV bytes per second the decode attention kernel alone
 *   reads (Engine.decodeAttention: 32 sequences at 2,048 tokens of context,
 *   one layer per call, layers in turn, so each call reads more KV than a
 *   32 MiB last-level cache holds on the small model);
 * - memoryGBs: the machine's memory bandwidth as STREAM counts a copy
 *   (bytes read plus bytes written per second) over 256 MiB buffers, so
 *   attentionGBs / memoryGBs says how close decode attention gets to it.
 * Each figure is the median of several runs.
 */
import { performance } from 'node:perf_hooks';

import { headDim, kvBytesPerBlock, loadModelConfig } from '../src/engine/config.js';
import { Engine, type EngineChunk } from '../src/engine/engine.js';

const argv = process.argv.slice(2);
let json = false;
let modelName = 'small';
let threads: number | undefined;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--json') json = true;
  else if (a === '--model' && i + 1 < argv.length) modelName = argv[++i]!;
  else if (a === '--threads' && i + 1 < argv.length) threads = Number(argv[++i]);
  else {
    process.stderr.write(`bench:engine: unknown flag ${a} (expected --json, --model M, --threads N)\n`);
    process.exit(2);
  }
}

const model = loadModelConfig(modelName);
const BLOCK = 16;
const PROMPT = 2048;
const CACHED = 1920;
const SEQUENCES = 8;
const ATTENTION_SEQUENCES = 32;
const DECODE_STEPS = 16;
const blocksPerSequence = PROMPT / BLOCK + 2;
// Written through, so every page is memory of its own (never-written pages read as one shared zero page).
const pool = new ArrayBuffer(ATTENTION_SEQUENCES * blocksPerSequence * kvBytesPerBlock(model, BLOCK));
new Float32Array(pool).fill(0.5);
const engine = new Engine({
  model,
  blockSize: BLOCK,
  pool,
  threads,
  seed: 1,
});
const tables = Array.from({ length: ATTENTION_SEQUENCES }, (_, s) => Int32Array.from({ length: blocksPerSequence }, (_, i) => s * blocksPerSequence + i));
const tokens = (seed: number, n: number) => Int32Array.from({ length: n }, (_, i) => (seed * 7919 + i * 104729) % model.vocab);
const prompts = tables.map((_, s) => tokens(s + 1, PROMPT + DECODE_STEPS));

function seconds(f: () => void): number {
  const start = performance.now();
  f();
  return (performance.now() - start) / 1000;
}
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
const prefill = (s: number, from: number, to: number) =>
  engine.forward([{ tokens: prompts[s]!.subarray(from, to), start: from, blockTable: tables[s]! }]);
/** One decode step of sequences [0, count) at position `at` (KV before it must be in place). */
const decodeStep = (count: number, at: number) =>
  engine.forward(Array.from({ length: count }, (_, s): EngineChunk => ({ tokens: prompts[s]!.subarray(at, at + 1), start: at, blockTable: tables[s]! })));

const full = median([0, 1, 2].map(() => seconds(() => prefill(0, 0, PROMPT))));
const cached = median([0, 1, 2, 3, 4].map(() => seconds(() => prefill(0, CACHED, PROMPT))));
for (let s = 1; s < SEQUENCES; s++) prefill(s, 0, PROMPT);
const decodeOne = median(Array.from({ length: DECODE_STEPS }, (_, j) => seconds(() => decodeStep(1, PROMPT + j))));
const decodeBatch = median(Array.from({ length: DECODE_STEPS }, (_, j) => seconds(() => decodeStep(SEQUENCES, PROMPT + j))));
// Decode attention alone over every sequence's whole context: the KV is
// attended to as it is (what values it holds does not change the reads).
const queries = Float32Array.from({ length: ATTENTION_SEQUENCES * model.modelDim }, (_, i) => Math.sin(i));
const attentionSequences = tables.map((blockTable) => ({ position: PROMPT + DECODE_STEPS - 1, blockTable }));
const attention = median(Array.from({ length: 4 * model.layers }, (_, i) => seconds(() => engine.decodeAttention(i % model.layers, queries, attentionSequences))));
// One layer's K and V rows of every position, for every sequence.
const attentionBytes = ATTENTION_SEQUENCES * (PROMPT + DECODE_STEPS) * 2 * model.kvHeads * headDim(model) * 4;

// STREAM's copy: 256 MiB read and 256 MiB written per run.
const source = new Float64Array(32 << 20).fill(1);
const target = new Float64Array(source.length);
const copy = median(Array.from({ length: 5 }, () => seconds(() => target.set(source))));
const memoryGBs = (2 * source.byteLength) / copy / 1e9;

const result = {
  model: modelName,
  config: model,
  threads: engine.threads,
  blas: engine.blas,
  prefillTokPerS: PROMPT / full,
  cachedPrefillSpeedup: full / cached,
  prefillMs: full * 1000,
  cachedPrefillMs: cached * 1000,
  decodeTokPerS: 1 / decodeOne,
  decodeBatch8TokPerS: SEQUENCES / decodeBatch,
  attentionGBs: attentionBytes / attention / 1e9,
  memoryGBs,
};

if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const rows: [string, string][] = [
    ['model', `${modelName}: ${model.layers} layers, dim ${model.modelDim}, ${model.heads}/${model.kvHeads} heads, vocab ${model.vocab}`],
    ['threads / dense products', `${result.threads} / ${result.blas ? 'OpenBLAS' : 'plain loops'}`],
    ['prefill, 2,048 tokens from nothing', `${result.prefillTokPerS.toFixed(0)} tok/s (${result.prefillMs.toFixed(1)} ms)`],
    ['same prompt, 1,920 tokens cached', `${result.cachedPrefillMs.toFixed(1)} ms: ${result.cachedPrefillSpeedup.toFixed(1)}x faster`],
    ['decode at 2,048 context, 1 / 8 sequences', `${result.decodeTokPerS.toFixed(0)} / ${result.decodeBatch8TokPerS.toFixed(0)} tok/s`],
    ['decode attention kernel, KV read rate', `${result.attentionGBs.toFixed(2)} GB/s (${ATTENTION_SEQUENCES} sequences at 2,048 context)`],
    ['memory bandwidth, STREAM copy', `${result.memoryGBs.toFixed(2)} GB/s: attention reaches ${((100 * result.attentionGBs) / result.memoryGBs).toFixed(0)} % of it`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
}
