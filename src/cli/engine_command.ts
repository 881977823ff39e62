/**
 * `cachesage engine`: one trace served for real on the reference engine
 * (src/engine), once per policy, with the flags and units of `replay`:
 * measured token hit rate, TTFT and throughput instead of modelled ones.
 */
import { CudaUnavailableError } from '../compute/cuda/cuda.js';
import { WebGpuUnavailableError } from '../compute/webgpu/device.js';
import { calibrate, UNMEASURABLY_FAST } from '../engine/calibrate.js';
import { loadModelConfig, type ModelConfig } from '../engine/config.js';
import type { EngineBackend } from '../engine/engine.js';
import { ENGINE_BACKENDS } from '../engine/planes.js';
import { serveTrace, type ServeResult } from '../engine/server.js';
import { isBound } from '../policies/registry.js';
import { replay, type Capacity, capacityBlocks } from '../sim/replay.js';
import { TraceError, type TraceCall } from '../trace/format.js';
import { readTraceFile } from '../trace/reader.js';
import { capacityFlag, flagValue, integerFlag, parseFlags, policiesFlag, positiveFlag, UsageError, type FlagSpec } from './args.js';
import { fixed, formatTable, percent } from './table.js';

const DEFAULTS = { policies: ['lru', 'cachesage'], capacity: { fraction: 0.5 } as Capacity, hostCapacity: { fraction: 1 } as Capacity, model: 'small', maxCalls: 200, blockSize: 16, concurrency: 4, tokenBudget: 512, seed: 1 };

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  trace: { kind: 'value' },
  policies: { kind: 'value' },
  capacity: { kind: 'value' },
  'host-capacity': { kind: 'value' },
  model: { kind: 'value' },
  weights: { kind: 'value' },
  'max-calls': { kind: 'value' },
  'block-size': { kind: 'value' },
  concurrency: { kind: 'value' },
  'arrival-rate': { kind: 'value' },
  'token-budget': { kind: 'value' },
  threads: { kind: 'value' },
  seed: { kind: 'value' },
  backend: { kind: 'value' },
  json: { kind: 'switch' },
};

export const ENGINE_HELP = `Usage: cachesage engine --trace FILE.jsonl [options]

Serves one trace on the reference engine (a Llama-architecture decoder
whose attention runs on cachesage's paged KV blocks) under each policy,
closed loop, and reports what was measured: token hit rate, TTFT
and throughput on the wall clock. Prompt tokens are derived from the
trace's segment ids, replies are decoded teacher-forced. Beside each
measured TTFT it prints what the simulator (cachesage replay) predicts for
the same calls, capacities and loop when its cost model is calibrated from
this engine's own measured prefill, decode and copy speeds (the constants
are printed too). A session's next call arrives when its previous reply is
complete: the engine and the prediction both skip the trace's tool gaps.

Options:
  --trace FILE         trace to serve (JSON lines, one LLM call a line)
  --policies LIST      comma-separated, in report order (default ${DEFAULTS.policies.join(',')});
                       the offline bounds belady and infinite exist only in replay
  --capacity C         device capacity: a fraction of the trace's peak live
                       footprint (as replay computes it for these arrivals), or
                       a whole number of blocks (default 0.5); raised to the
                       largest call when smaller
  --host-capacity H    host tier, same unit; 0 = no host tier (default 1.0)
  --model M            tiny (2 layers, dim 64), small (4 layers, dim 512), or a
                       JSON model config (own or Hugging Face field names)
                       (default ${DEFAULTS.model}: about a minute per policy for
                       300 calls of a debate trace on 2 cores)
  --weights FILE       safetensors weights (Hugging Face Llama names); default
                       random weights from --seed
  --max-calls N        serve the trace's first whole sessions up to N calls (default ${DEFAULTS.maxCalls})
  --block-size N       tokens per KV block, 1..1024 (default ${DEFAULTS.blockSize})
  --concurrency N      closed loop: N sessions in flight (default ${DEFAULTS.concurrency})
  --arrival-rate R     open loop: R new sessions per second, seeded by --seed
                       (instead of --concurrency)
  --token-budget N     prompt tokens an engine iteration prefills beside its decodes
                       (the first admitted prompt whatever its size) (default ${DEFAULTS.tokenBudget})
  --threads N          compute threads (default: up to 8, the machine's)
  --seed N             seed of the random weights (default ${DEFAULTS.seed})
  --backend B          where the KV pool lives and attention runs: cpu (default),
                       cuda (a CUDA device's memory, CUDA kernels) or webgpu (a
                       WebGPU device's buffer, WGSL kernels); the dense parts
                       run on the CPU in every case, and the calibration
                       measures the chosen backend
  --json               print one JSON object on stdout instead of the table
  -h, --help           show this help
`;

function firstSessions(calls: readonly TraceCall[], maxCalls: number): TraceCall[] {
  const sessions = new Map<string, TraceCall[]>();
  for (const call of calls) {
    let list = sessions.get(call.session);
    if (list === undefined) sessions.set(call.session, (list = []));
    list.push(call);
  }
  const kept: TraceCall[] = [];
  for (const session of sessions.values()) {
    if (kept.length > 0 && kept.length + session.length > maxCalls) break;
    kept.push(...session);
  }
  return kept;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function summary(r: ServeResult) {
  const ttft = Float64Array.from(r.ttftSeconds).sort();
  const mean = ttft.length === 0 ? 0 : ttft.reduce((a, b) => a + b, 0) / ttft.length;
  return {
    policy: r.policy,
    tokenHitRate: r.promptTokens === 0 ? 0 : r.deviceHitTokens / r.promptTokens,
    hostHitRate: r.promptTokens === 0 ? 0 : r.hostHitTokens / r.promptTokens,
    meanTtftMs: mean * 1000,
    p50TtftMs: quantile(ttft, 0.5) * 1000,
    p99TtftMs: quantile(ttft, 0.99) * 1000,
    throughputTokPerS: r.wallSeconds > 0 ? r.outputTokens / r.wallSeconds : 0,
    prefilledTokens: r.prefilledTokens,
    wallSeconds: r.wallSeconds,
    engineSeconds: r.engineSeconds,
    runtimeMsPerCall: r.calls === 0 ? 0 : (r.runtimeSeconds * 1000) / r.calls,
    iterations: r.iterations,
  };
}

export async function engineCommand(argv: readonly string[]): Promise<void> {
  const flags = parseFlags('engine', argv, FLAGS);
  if (flags.help) {
    process.stdout.write(ENGINE_HELP);
    return;
  }
  const text = (name: string) => flagValue(flags, name);
  const trace = text('trace');
  if (trace === undefined) throw new UsageError('engine: --trace FILE is required');
  const int = (name: string, fallback: number, min: number, max?: number) => {
    const value = text(name);
    return value === undefined ? fallback : integerFlag('engine', name, value, min, max);
  };
  const policies = text('policies') === undefined ? DEFAULTS.policies : policiesFlag('engine', text('policies')!);
  const capacityText = text('capacity');
  const capacity = capacityText === undefined ? DEFAULTS.capacity : capacityFlag('engine', 'capacity', capacityText, false);
  const hostText = text('host-capacity');
  const hostCapacity = hostText === undefined ? DEFAULTS.hostCapacity : capacityFlag('engine', 'host-capacity', hostText, true);
  const blockSize = int('block-size', DEFAULTS.blockSize, 1, 1024);
  const concurrency = int('concurrency', DEFAULTS.concurrency, 1, 1 << 20);
  const rateText = text('arrival-rate');
  if (rateText !== undefined && text('concurrency') !== undefined) {
    throw new UsageError('engine: --concurrency and --arrival-rate cannot be used together (closed or open loop: pick one)');
  }
  const arrivalRate = rateText === undefined ? undefined : positiveFlag('engine', 'arrival-rate', rateText);
  const tokenBudget = int('token-budget', DEFAULTS.tokenBudget, 1, 1 << 24);
  const maxCalls = int('max-calls', DEFAULTS.maxCalls, 1);
  const seed = int('seed', DEFAULTS.seed, 0, 2 ** 31 - 1);
  const threadsText = text('threads');
  const threads = threadsText === undefined ? undefined : integerFlag('engine', 'threads', threadsText, 1, 1024);
  let model: ModelConfig;
  try {
    model = loadModelConfig(text('model') ?? DEFAULTS.model);
  } catch (error) {
    throw new UsageError(`engine: --model: ${(error as Error).message}`);
  }
  const weights = text('weights');
  const backendText = text('backend') ?? 'cpu';
  if (!(ENGINE_BACKENDS as readonly string[]).includes(backendText)) {
    throw new UsageError(`engine: --backend must be one of ${ENGINE_BACKENDS.join(', ')}; got ${JSON.stringify(backendText)}`);
  }
  const backend = backendText as EngineBackend;

  const file = await readTraceFile(trace);
  if (file.calls.length === 0) throw new TraceError(trace, null, 'the trace has no calls');
  const calls = firstSessions(file.calls, maxCalls);
  const workload = file.header?.workload ?? 'trace';
  // The footprint unit of replay, from a simulation of the same calls at the same concurrency.
  const loop = arrivalRate === undefined ? { concurrency } : { arrivalRate, seed };
  const sizing = replay(trace, calls, { policies: ['lru'], blockSize, ...loop, capacity: { fraction: 1 }, hostCapacity: { blocks: 0 } });
  const largest = sizing.largestCallBlocks;
  const requested = capacityBlocks(capacity, sizing.peakLiveBlocks);
  const deviceBlocks = Math.max(requested, largest);
  if (deviceBlocks > requested) {
    process.stderr.write(`cachesage engine: --capacity ${capacityText ?? '0.5'} is ${requested} device block${requested === 1 ? '' : 's'}, fewer than the ${largest} the largest call needs; raised to ${deviceBlocks} blocks\n`);
  }
  const hostBlocks = capacityBlocks(hostCapacity, sizing.peakLiveBlocks);
  for (const policy of policies) {
    if (isBound(policy)) throw new UsageError(`engine: --policies: ${policy} is an offline bound; it exists only in replay`);
  }
  const progress = (line: string) => process.stderr.isTTY && process.stderr.write(`\r\x1b[2K${line}`);
  progress('calibrating the cost model on the engine ...');
  const longest = Math.max(...calls.map((c) => c.segments.reduce((n, x) => n + x.tokens, 0)));
  let calibration0;
  try {
    calibration0 = await calibrate({ model, blockSize, tokenBudget, threads, weights, seed, backend, maxContext: Math.max(256, Math.min(2048, longest)) });
  } catch (error) {
    if (error instanceof CudaUnavailableError || error instanceof WebGpuUnavailableError) throw new UsageError(`engine: --backend ${backend}: ${error.message}`);
    throw error;
  }
  const { costModel, samples } = calibration0;
  // The simulator serves the same calls the engine's way: no tool time, each policy its own closed loop.
  const predicted = replay(trace, calls, {
    policies, blockSize, ...loop, model: costModel, toolGaps: false, ownArrivals: true,
    capacity: { blocks: deviceBlocks }, hostCapacity: { blocks: hostBlocks },
  });
  const results = [];
  for (const [i, policy] of policies.entries()) {
    progress(`serving ${calls.length} calls under ${policy} (${i + 1}/${policies.length}) ...`);
    const measured = summary(await serveTrace(calls, {
      model, weights, seed, policy, workload, blockSize, deviceBlocks, hostBlocks, ...loop, tokenBudget, threads, backend,
      hostToDeviceBytesPerSecond: costModel.hostToDeviceBytesPerSecond,
    }));
    const prediction = predicted.results.find((r) => r.policy === policy)!;
    results.push({ ...measured, predictedTokenHitRate: prediction.tokenHitRate, predictedMeanTtftMs: prediction.meanTtftMs, predictedP99TtftMs: prediction.p99TtftMs });
  }
  progress('');
  const { name: _name, ...constants } = costModel;
  const calibration = { ...constants, samples };
  const report = { trace, backend, blockSize, model, weights: weights ?? null, peakLiveBlocks: sizing.peakLiveBlocks, capacityBlocks: deviceBlocks, hostCapacityBlocks: hostBlocks, calls: calls.length, ...loop, calibration, results };
  if (flags.switches.has('json')) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  process.stdout.write(
    [
      `trace     ${trace}: ${calls.length} calls (of ${file.calls.length}), ${arrivalRate === undefined ? `closed loop, ${concurrency} sessions in flight` : `open loop, ${arrivalRate} sessions/s`}`,
      `backend   ${backend} (KV pool and attention; dense parts on the CPU)`,
      `model     ${model.layers} layers, dim ${model.modelDim}, ${model.heads}/${model.kvHeads} heads, vocab ${model.vocab}, ${weights ?? `random weights (seed ${seed})`}`,
      `device    ${deviceBlocks} blocks of ${blockSize} tokens (peak live footprint ${sizing.peakLiveBlocks}); host ${hostBlocks === 0 ? 'none' : `${hostBlocks} blocks`}`,
      `calibrated prefill ${fixed((costModel.prefillIterationSeconds ?? 0) * 1000, 2)} ms per iteration + ${costModel.prefillTokensPerSecond >= UNMEASURABLY_FAST ? 'attention only' : `${fixed(costModel.prefillTokensPerSecond, 0)} tok/s`} + ${costModel.attentionSecondsPerTokenPair.toExponential(2)} s per token pair; ` +
        `decode ${fixed(costModel.decodeIterationSeconds * 1000, 2)} ms + ${fixed(costModel.decodeSecondsPerSequence * 1000, 3)} ms per sequence + ${(costModel.decodeSecondsPerContextToken ?? 0).toExponential(2)} s per context token; ` +
        `host->device ${fixed(costModel.hostToDeviceBytesPerSecond / 1e9, 2)} GB/s + ${fixed(costModel.transferLatencySeconds * 1e6, 1)} us`,
      '',
      formatTable(
        [{ title: 'policy', align: 'left' }, { title: 'token hit' }, { title: 'predicted hit' }, { title: 'host hit' }, { title: 'mean TTFT ms' }, { title: 'predicted ms' }, { title: 'p50 TTFT ms' }, { title: 'p99 TTFT ms' }, { title: 'tok/s' }, { title: 'wall s' }, { title: 'runtime ms/call' }],
        results.map((r) => [r.policy, percent(r.tokenHitRate), percent(r.predictedTokenHitRate), percent(r.hostHitRate), fixed(r.meanTtftMs, 1), fixed(r.predictedMeanTtftMs, 1), fixed(r.p50TtftMs, 1), fixed(r.p99TtftMs, 1), fixed(r.throughputTokPerS, 0), fixed(r.wallSeconds, 2), fixed(r.runtimeMsPerCall, 2)]),
      ),
    ].join('\n'),
  );
}
