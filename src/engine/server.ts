/**
 * Serving a trace on the reference engine: the integration an engine
 * author copies. The engine talks to cachesage only through the public
 * Runtime, its BlockManager and the CPU data plane:
 *
 *   framework events (session.start, step.start, tool.*, step.end) -> observe
 *   admit -> run the copy plan (host blocks load into the device pool)
 *   -> prefill the uncached suffix into the block table, in chunks
 *   -> prefillDone (the prompt's full blocks join the cache)
 *   -> decode, teacher-forced with the trace's reply tokens
 *   -> decode(0, reply hashes) and release; act between steps.
 *
 * Continuous batching as in the simulator (sim/serving_loop.ts): each
 * iteration decodes one token of every running call and spends the rest of
 * a token budget on prefill chunks, continuing admitted prompts first, then
 * admitting waiting calls in FIFO order; running calls pin their blocks.
 * Time is the wall clock. A session's next call arrives when its previous
 * reply is complete; sessions start closed loop (`concurrency` in flight,
 * the default) or open loop (`arrivalRate` new sessions per second, seeded
 * exponential gaps; the loop sleeps when it has nothing to do).
 */
import { performance } from 'node:perf_hooks';

import { BlockManager } from '../blocks/block_manager.js';
import { CpuDataPlane } from '../blocks/data_plane.js';
import { Tier } from '../blocks/types.js';
import type { FutureUses } from '../policies/belady.js';
import { POLICIES } from '../policies/registry.js';
import { Runtime } from '../runtime/runtime.js';
import type { TraceCall } from '../trace/format.js';
import { PromptHasher } from '../trace/hashing.js';
import { checkInt, checkNumber } from '../util/check.js';
import { seededRandom } from '../util/random.js';
import { kvBytesPerBlock, type ModelConfig } from './config.js';
import { Engine, type EngineChunk } from './engine.js';
import { TraceTokens } from './tokens.js';

export interface ServeOptions {
  model: ModelConfig;
  /** A safetensors file (default: random weights from `seed`). */
  weights?: string;
  seed?: number;
  /** One policy by name (default 'lru'); offline bounds (belady, infinite) exist only in the simulator. */
  policy?: string;
  /** The workload the trace's sessions belong to (default 'trace'). */
  workload?: string;
  blockSize?: number;
  deviceBlocks: number;
  hostBlocks?: number;
  /** Closed loop: sessions in flight (default 4). */
  concurrency?: number;
  /** Open loop instead: new sessions per second, with exponential gaps drawn from `seed`. */
  arrivalRate?: number;
  /** Tokens per engine iteration: one per running decode, the rest for prefill chunks (default 512). */
  tokenBudget?: number;
  threads?: number;
  /** Called once per call with the logits of its last prompt token, as computed from the cache. */
  onPrefill?: (call: TraceCall, logits: Float32Array, cachedTokens: number) => void;
}

export interface ServeResult {
  policy: string;
  calls: number;
  promptTokens: number;
  /**
   * Prompt tokens whose KV was on the device when the call was admitted,
   * never its last token (always computed, for the first reply token), as
   * the simulator counts them.
   */
  deviceHitTokens: number;
  /** Prompt tokens loaded from the host tier (same rule). */
  hostHitTokens: number;
  /** Prompt tokens the engine computed. */
  prefilledTokens: number;
  outputTokens: number;
  /** Per call in completion order: arrival to the end of its prefill. */
  ttftSeconds: Float64Array;
  wallSeconds: number;
  /** Seconds spent in the engine's forward passes. */
  engineSeconds: number;
  iterations: number;
  deviceBlocks: number;
  hostBlocks: number;
  bytesPerBlock: number;
}

interface Pending {
  call: TraceCall;
  session: number;
  index: number;
  arrival: number;
  tokens: Int32Array;
  promptTokens: number;
  promptHashes: BigUint64Array;
  replyHashes: BigUint64Array;
}

interface Active extends Pending {
  requestId: number;
  table: Int32Array;
  /** Positions whose KV is in the blocks (cached, loaded or computed). */
  done: number;
  /** Positions below this were cached when admitted (never rewritten). */
  cached: number;
  /** Reply tokens fed so far. */
  fed: number;
}

/** The sessions of a trace in file order, each call list in seq order. */
function sessionsOf(calls: readonly TraceCall[]): TraceCall[][] {
  const bySession = new Map<string, TraceCall[]>();
  for (const call of calls) {
    let list = bySession.get(call.session);
    if (list === undefined) bySession.set(call.session, (list = []));
    list.push(call);
  }
  return [...bySession.values()].map((list) => list.sort((a, b) => a.seq - b.seq));
}

export function serveTrace(calls: readonly TraceCall[], options: ServeOptions): ServeResult {
  const policyName = options.policy ?? 'lru';
  const entry = POLICIES[policyName];
  if (entry === undefined) throw new RangeError(`serveTrace: unknown policy ${JSON.stringify(policyName)}; known: ${Object.keys(POLICIES).join(', ')}`);
  if (entry.bound !== undefined) throw new RangeError(`serveTrace: ${policyName} is an offline bound; it exists only in the simulator (cachesage replay)`);
  const workload = options.workload ?? 'trace';
  const blockSize = checkInt(options.blockSize ?? 16, 'serveTrace: blockSize', 1, 1 << 16);
  const concurrency = checkInt(options.concurrency ?? 4, 'serveTrace: concurrency', 1, 1 << 20);
  if (options.arrivalRate !== undefined && options.concurrency !== undefined) {
    throw new TypeError('serveTrace: concurrency and arrivalRate cannot be used together (closed or open loop: pick one)');
  }
  const arrivalRate = options.arrivalRate === undefined ? null : checkNumber(options.arrivalRate, 'serveTrace: arrivalRate', Number.MIN_VALUE, 1e9);
  const tokenBudget = checkInt(options.tokenBudget ?? 512, 'serveTrace: tokenBudget', 1, 1 << 24);
  const deviceBlocks = checkInt(options.deviceBlocks, 'serveTrace: deviceBlocks', 1, 0x7fffffff);
  const hostBlocks = checkInt(options.hostBlocks ?? 0, 'serveTrace: hostBlocks', 0, 0x7fffffff);
  const bytesPerBlock = kvBytesPerBlock(options.model, blockSize);

  const manager = new BlockManager({ blockSize, bytesPerBlock, deviceBlocks, hostBlocks });
  const plane = new CpuDataPlane({ bytesPerBlock, deviceBlocks, hostBlocks });
  const engine = new Engine({ model: options.model, blockSize, pool: plane, threads: options.threads, seed: options.seed, weights: options.weights });
  // KVFlow is told the trace's step graph in advance; no registry entry used here reads the future.
  const prepared = entry.prepare?.({ calls, workload, future: undefined as unknown as FutureUses });
  const runtime = new Runtime({ blocks: manager, policies: [prepared === undefined ? policyName : { name: policyName, options: prepared }] });
  const hasher = new PromptHasher(blockSize);
  const tokenIds = new TraceTokens(options.model.vocab);
  const sessions = sessionsOf(calls);
  const sessionName = (s: number) => sessions[s]![0]!.session;
  const agent = (call: TraceCall) => ({ workload, agent: call.agent });
  const slots = (ids: Int32Array) => {
    const m = manager.metadata;
    return Int32Array.from(ids, (id) => {
      if (m.tier[id] !== Tier.Device) throw new Error(`serveTrace: block ${id} of a running call is not on the device (the pin invariant broke)`);
      return m.slot[id]!;
    });
  };

  const start = performance.now();
  const clock = () => (performance.now() - start) / 1000;
  const result: ServeResult = {
    policy: policyName, calls: 0, promptTokens: 0, deviceHitTokens: 0, hostHitTokens: 0, prefilledTokens: 0, outputTokens: 0,
    ttftSeconds: new Float64Array(calls.length), wallSeconds: 0, engineSeconds: 0, iterations: 0, deviceBlocks, hostBlocks, bytesPerBlock,
  };
  let ttftCount = 0;
  const runCopies = () => plane.execute(runtime.takeCopyPlan());
  const waiting: Pending[] = [];
  let prefilling: Active[] = [];
  let decoding: Active[] = [];
  let nextSession = 0;
  let nextRequest = 1;
  let stalled = false;

  const arrive = (session: number, index: number, time: number, arrival = time) => {
    const call = sessions[session]![index]!;
    if (index === 0) runtime.observe({ type: 'session.start', time, session: call.session, workload });
    else runtime.observe({ type: 'tool.end', time, session: call.session, agent: agent(sessions[session]![index - 1]!), tool: 'tool' });
    runtime.observe({ type: 'step.start', time, session: call.session, agent: agent(call) });
    runtime.act(time);
    runCopies();
    const prompt = hasher.hashPrompt(call.segments);
    if (prompt.numTokens < 1) throw new RangeError(`serveTrace: call ${call.seq} of session ${JSON.stringify(call.session)} has an empty prompt`);
    const all = hasher.hashWithOutput(call.segments, call.outputId, call.outputTokens);
    waiting.push({
      call, session, index, arrival,
      tokens: tokenIds.tokens(call.segments, call.outputId, call.outputTokens),
      promptTokens: prompt.numTokens,
      promptHashes: prompt.hashes,
      replyHashes: all.hashes.subarray(prompt.hashes.length),
    });
  };
  const startSession = (time: number, arrival = time) => {
    if (nextSession < sessions.length) arrive(nextSession++, 0, time, arrival);
  };
  // Open loop: every session's start time, in seconds from the start.
  const starts: number[] = [];
  if (arrivalRate !== null) {
    const random = seededRandom(options.seed ?? 1);
    let t = 0;
    for (let s = 0; s < sessions.length; s++) {
      starts.push(t);
      t += -Math.log(1 - random()) / arrivalRate;
    }
  }
  const sleepUntil = (seconds: number) => {
    const ms = (seconds - clock()) * 1000;
    if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  };
  const finish = (r: Active, time: number) => {
    if (r.replyHashes.length > 0) runtime.decode(r.requestId, 0, r.replyHashes, time);
    runtime.release(r.requestId, time);
    const session = sessionName(r.session);
    runtime.observe({ type: 'step.end', time, session, agent: agent(r.call) });
    const last = r.index === sessions[r.session]!.length - 1;
    if (last) runtime.observe({ type: 'session.end', time, session });
    else runtime.observe({ type: 'tool.start', time, session, agent: agent(r.call), tool: 'tool' });
    runtime.act(time);
    runCopies();
    result.calls++;
    result.outputTokens += r.call.outputTokens;
    if (!last) arrive(r.session, r.index + 1, time);
    else if (arrivalRate === null) startSession(time);
  };

  if (arrivalRate === null) for (let s = 0; s < concurrency; s++) startSession(0);
  const idle = () => waiting.length === 0 && prefilling.length === 0 && decoding.length === 0;
  while (!idle() || (arrivalRate !== null && nextSession < sessions.length)) {
    if (arrivalRate !== null) {
      if (idle()) sleepUntil(starts[nextSession]!);
      // Sessions whose start time has come arrive at that time (queueing counts in their TTFT).
      while (nextSession < sessions.length && starts[nextSession]! <= clock()) startSession(clock(), starts[nextSession]!);
    }
    const now = clock();
    let budget = Math.max(0, tokenBudget - decoding.length);
    const chunks: EngineChunk[] = [];
    const prefillChunks: { r: Active; end: number }[] = [];
    const addPrefill = (r: Active) => {
      const take = Math.min(r.promptTokens - r.done, budget);
      if (take <= 0) return;
      budget -= take;
      chunks.push({ tokens: r.tokens.subarray(r.done, r.done + take), start: r.done, writeFrom: Math.max(r.done, r.cached), blockTable: r.table });
      prefillChunks.push({ r, end: r.done + take });
    };
    prefilling.forEach(addPrefill);
    while (waiting.length > 0 && budget > 0) {
      const p = waiting[0]!;
      const decision = runtime.admit({
        requestId: nextRequest, hashes: p.promptHashes, numTokens: p.promptTokens + p.call.outputTokens,
        session: p.call.session, agent: agent(p.call), time: now,
      });
      if (decision === null) {
        // The head waits for room, and everyone behind it; with nothing
        // running, only the policies letting go of blocks can make room.
        if (prefilling.length > 0 || decoding.length > 0 || stalled) break;
        stalled = true;
        runtime.act(now);
        runCopies();
        continue;
      }
      stalled = false;
      waiting.shift();
      runCopies(); // host blocks load into the device pool before the engine reads them
      const cached = decision.cachedDeviceTokens + decision.loadedBlocks * blockSize;
      result.promptTokens += p.promptTokens;
      // Counted as the simulator counts them: the last prompt token is always computed.
      const deviceHits = Math.min(decision.cachedDeviceTokens, p.promptTokens - 1);
      result.deviceHitTokens += deviceHits;
      result.hostHitTokens += Math.min(decision.loadedBlocks * blockSize, p.promptTokens - 1 - deviceHits);
      // A fully cached prompt still computes its last token, for the first reply token's logits.
      const r: Active = { ...p, requestId: nextRequest++, table: decision.blockTable, done: Math.min(cached, p.promptTokens - 1), cached, fed: 0 };
      prefilling.push(r);
      addPrefill(r);
    }
    for (const r of decoding) {
      const position = r.promptTokens + r.fed;
      chunks.push({ tokens: r.tokens.subarray(position, position + 1), start: position, blockTable: r.table });
    }
    if (chunks.length === 0) {
      if (waiting.length > 0 && prefilling.length === 0 && decoding.length === 0) {
        throw new RangeError(`serveTrace: a call of ${waiting[0]!.promptTokens + waiting[0]!.call.outputTokens} tokens does not fit in ${deviceBlocks} device blocks of ${blockSize} tokens`);
      }
      continue;
    }
    const computeStart = performance.now();
    const logits = engine.forward(chunks);
    result.engineSeconds += (performance.now() - computeStart) / 1000;
    result.iterations++;
    const time = clock();
    prefillChunks.forEach(({ r, end }, i) => {
      result.prefilledTokens += end - r.done - Math.max(0, Math.min(end, r.cached) - r.done);
      r.done = end;
      if (end < r.promptTokens) return;
      result.ttftSeconds[ttftCount++] = time - r.arrival;
      options.onPrefill?.(r.call, logits.slice(i * options.model.vocab, (i + 1) * options.model.vocab), r.cached);
      // Committing may swap a block for an equal one cached meanwhile: refresh the table.
      r.table = slots(runtime.prefillDone(r.requestId, time));
    });
    const stillDecoding: Active[] = [];
    for (const r of decoding) {
      r.fed++;
      if (r.fed >= r.call.outputTokens) finish(r, time);
      else stillDecoding.push(r);
    }
    const stillPrefilling: Active[] = [];
    for (const r of prefilling) {
      if (r.done < r.promptTokens) stillPrefilling.push(r);
      else if (r.call.outputTokens === 0) finish(r, time);
      else stillDecoding.push(r);
    }
    prefilling = stillPrefilling;
    decoding = stillDecoding;
  }
  result.ttftSeconds = result.ttftSeconds.subarray(0, ttftCount);
  result.wallSeconds = clock();
  return result;
}
