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
 * Continuous batching step for step as the simulator's (sim/serving_loop.ts),
 * so the policies see the same calls in the same order and an engine run
 * can be predicted by a replay: between iterations the runtime refreshes
 * and arrivals are delivered; each iteration admits waiting calls in FIFO
 * order while their uncached prompt fits a token budget (the first one
 * whatever its size), prefills those prompts whole and decodes one token
 * of every running call (a call's last step also writes its last reply
 * token's KV, so its blocks are whole when they join the cache); running
 * calls pin their blocks. Time is the wall clock. A session's next call
 * arrives as soon as its previous reply is complete (the trace's tool time
 * is not waited out, so no tool events are sent); sessions start closed
 * loop (`concurrency` in flight, the default) or open loop (`arrivalRate`
 * new sessions per second at the simulator's seeded start times; the loop
 * sleeps when it has nothing to do).
 */
import { performance } from 'node:perf_hooks';

import { BlockManager } from '../blocks/block_manager.js';
import { Tier, type CopyPlan } from '../blocks/types.js';
import type { FutureUses } from '../policies/belady.js';
import { POLICIES } from '../policies/registry.js';
import { Runtime } from '../runtime/runtime.js';
import { openLoopStarts } from '../sim/workload.js';
import type { TraceCall } from '../trace/format.js';
import { PromptHasher } from '../trace/hashing.js';
import { checkInt, checkNumber } from '../util/check.js';
import { kvBytesPerBlock, type ModelConfig } from './config.js';
import { Engine, type EngineBackend, type EngineChunk } from './engine.js';
import { createEnginePlane, ENGINE_BACKENDS } from './planes.js';
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
  /** Where the KV pool lives and attention runs (default 'cpu'); see planes.ts. */
  backend?: EngineBackend;
  /** Host -> device bandwidth the runtime budgets prefetches with (the data plane's measured copy speed). */
  hostToDeviceBytesPerSecond?: number;
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
  /** Seconds spent in the runtime's calls (observe, act, admit, prefillDone, decode, release, copy plans), all on the serving thread. */
  runtimeSeconds: number;
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
  /** Reply tokens, at least one (as the simulator counts them). */
  outputTokens: number;
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
  /** Decode iterations still to run, as the simulator counts them (the first reply token comes with the prefill). */
  remaining: number;
}

// Longer than any policy may reasonably hold blocks with nothing running.
const MAX_STALL_SECONDS = 60;

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

export async function serveTrace(calls: readonly TraceCall[], options: ServeOptions): Promise<ServeResult> {
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
  const backend = options.backend ?? 'cpu';
  if (!ENGINE_BACKENDS.includes(backend)) throw new RangeError(`serveTrace: backend must be one of ${ENGINE_BACKENDS.join(', ')}; got ${JSON.stringify(backend)}`);

  // As the simulator builds its runtime: a score class exists only while it holds a block.
  const manager = new BlockManager({ blockSize, bytesPerBlock, deviceBlocks, hostBlocks, maxClasses: Math.min(1 << 20, deviceBlocks + hostBlocks) });
  const plane = await createEnginePlane(backend, { bytesPerBlock, deviceBlocks, hostBlocks });
  let engine: Engine;
  try {
    engine = await Engine.create({ model: options.model, blockSize, pool: plane.pool, threads: options.threads, seed: options.seed, weights: options.weights });
  } catch (error) {
    plane.destroy();
    throw error;
  }
  try {
    return await serve(calls, options, { policyName, entry, workload, blockSize, concurrency, arrivalRate, tokenBudget, deviceBlocks, hostBlocks, bytesPerBlock, manager, engine, run: (plan) => plane.run(plan) });
  } finally {
    engine.destroy();
    plane.destroy();
  }
}

interface ServeSetup {
  policyName: string;
  entry: NonNullable<(typeof POLICIES)[string]>;
  workload: string;
  blockSize: number;
  concurrency: number;
  arrivalRate: number | null;
  tokenBudget: number;
  deviceBlocks: number;
  hostBlocks: number;
  bytesPerBlock: number;
  manager: BlockManager;
  engine: Engine;
  run: (plan: CopyPlan) => void | Promise<void>;
}

async function serve(calls: readonly TraceCall[], options: ServeOptions, setup: ServeSetup): Promise<ServeResult> {
  const { policyName, entry, workload, blockSize, concurrency, arrivalRate, tokenBudget, deviceBlocks, hostBlocks, bytesPerBlock, manager, engine } = setup;
  // KVFlow is told the trace's step graph in advance; no registry entry used here reads the future.
  const prepared = entry.prepare?.({ calls, workload, future: undefined as unknown as FutureUses });
  // Deferred work (survival tables) runs between iterations, where the simulator runs it.
  const runtime = new Runtime({
    blocks: manager,
    policies: [prepared === undefined ? policyName : { name: policyName, options: prepared }],
    autoRefresh: false,
    ...(options.hostToDeviceBytesPerSecond === undefined ? {} : { hostToDeviceBytesPerSecond: options.hostToDeviceBytesPerSecond }),
  });
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
  const sleepUntil = (seconds: number) => {
    const ms = (seconds - clock()) * 1000;
    if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  };
  let nextRequest = 1;
  const result: ServeResult = {
    policy: policyName, calls: 0, promptTokens: 0, deviceHitTokens: 0, hostHitTokens: 0, prefilledTokens: 0, outputTokens: 0,
    ttftSeconds: new Float64Array(calls.length), wallSeconds: 0, engineSeconds: 0, runtimeSeconds: 0, iterations: 0, deviceBlocks, hostBlocks, bytesPerBlock,
  };
  let ttftCount = 0;
  // The runtime's share of the serving thread's time, as the simulator counts its overhead.
  const inRuntime = <T>(f: () => T): T => {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      result.runtimeSeconds += (performance.now() - t0) / 1000;
    }
  };
  const runCopies = async () => setup.run(inRuntime(() => runtime.takeCopyPlan()));
  const compute = async (chunks: EngineChunk[]): Promise<Float32Array> => {
    const t0 = performance.now();
    const logits = await engine.forwardAsync(chunks);
    result.engineSeconds += (performance.now() - t0) / 1000;
    result.iterations++;
    return logits;
  };

  // Arrivals, in (time, order) order: a session's start (call -1) or its next call.
  const arrivals: { time: number; order: number; session: number; call: number }[] = [];
  let arrivalOrder = 0;
  const schedule = (time: number, session: number, call: number) => {
    const item = { time, order: arrivalOrder++, session, call };
    let at = arrivals.length;
    while (at > 0 && (arrivals[at - 1]!.time > time || (arrivals[at - 1]!.time === time && arrivals[at - 1]!.order > item.order))) at--;
    arrivals.splice(at, 0, item);
  };
  let nextClosedLoopSession = 0;
  if (arrivalRate === null) {
    nextClosedLoopSession = Math.min(concurrency, sessions.length);
    for (let s = 0; s < nextClosedLoopSession; s++) schedule(0, s, -1);
  } else {
    // The simulator's open-loop session starts, from the same seed.
    openLoopStarts(sessions.length, arrivalRate, options.seed ?? 1).forEach((start, s) => schedule(start, s, -1));
  }

  const waiting: Pending[] = [];
  let running: Active[] = [];
  const arrive = async (session: number, index: number, time: number) => {
    if (index === -1) {
      inRuntime(() => runtime.observe({ type: 'session.start', time, session: sessionName(session), workload }));
      schedule(time, session, 0);
      return;
    }
    const call = sessions[session]![index]!;
    inRuntime(() => {
      runtime.observe({ type: 'step.start', time, session: call.session, agent: agent(call) });
      runtime.act(time);
    });
    await runCopies();
    const prompt = hasher.hashPrompt(call.segments);
    if (prompt.numTokens < 1) throw new RangeError(`serveTrace: call ${call.seq} of session ${JSON.stringify(call.session)} has an empty prompt`);
    const all = hasher.hashWithOutput(call.segments, call.outputId, call.outputTokens);
    waiting.push({
      call, session, index, arrival: time,
      tokens: tokenIds.tokens(call.segments, call.outputId, Math.max(1, call.outputTokens)),
      promptTokens: prompt.numTokens,
      outputTokens: Math.max(1, call.outputTokens),
      promptHashes: prompt.hashes,
      replyHashes: all.hashes.subarray(prompt.hashes.length),
    });
  };
  const finish = async (r: Active, time: number) => {
    const session = sessionName(r.session);
    const last = r.index === sessions[r.session]!.length - 1;
    inRuntime(() => {
      if (r.replyHashes.length > 0) runtime.decode(r.requestId, 0, r.replyHashes, time);
      runtime.release(r.requestId, time);
      runtime.observe({ type: 'step.end', time, session, agent: agent(r.call) });
      if (last) runtime.observe({ type: 'session.end', time, session });
      runtime.act(time);
    });
    if (last && arrivalRate === null && nextClosedLoopSession < sessions.length) schedule(time, nextClosedLoopSession++, -1);
    await runCopies();
    result.calls++;
    result.outputTokens += r.outputTokens;
    // The next call arrives as soon as this reply is complete: no tool time.
    if (!last) schedule(time, r.session, r.index + 1);
  };

  let stalledSince: number | null = null;
  for (;;) {
    // Between iterations: the runtime's deferred work, then reclaim's copies.
    let now = clock();
    inRuntime(() => runtime.refreshSync(now));
    await runCopies();
    while (arrivals.length > 0 && arrivals[0]!.time <= now) {
      const a = arrivals.shift()!;
      await arrive(a.session, a.call, a.time);
    }
    if (waiting.length === 0 && running.length === 0) {
      if (arrivals.length === 0) break;
      sleepUntil(arrivals[0]!.time);
      continue;
    }
    // One iteration: admit and prefill whole prompts within the token
    // budget (the first admitted prompt whatever its size), decode one
    // token of every running call.
    let budget = tokenBudget;
    const prefilled: Active[] = [];
    while (waiting.length > 0) {
      const p = waiting[0]!;
      if (prefilled.length > 0) {
        const match = manager.lookup(p.promptHashes);
        if (p.promptTokens - (match.deviceBlocks + match.hostBlocks) * blockSize > budget) break;
      }
      const decision = inRuntime(() => runtime.admit({
        requestId: nextRequest, hashes: p.promptHashes, numTokens: p.promptTokens + p.outputTokens,
        session: p.call.session, agent: agent(p.call), time: now,
      }));
      if (decision === null) break; // the head waits for room, and everyone behind it
      waiting.shift();
      await runCopies(); // host blocks load into the device pool before the engine reads them
      const cachedTokens = Math.min(decision.cachedDeviceTokens, p.promptTokens - 1);
      const fromHost = Math.min(decision.loadedBlocks * blockSize, p.promptTokens - 1 - cachedTokens);
      budget -= p.promptTokens - cachedTokens - fromHost;
      result.promptTokens += p.promptTokens;
      result.deviceHitTokens += cachedTokens;
      result.hostHitTokens += fromHost;
      const cached = decision.cachedDeviceTokens + decision.loadedBlocks * blockSize;
      // A fully cached prompt still computes its last token, for the first reply token's logits.
      prefilled.push({ ...p, requestId: nextRequest++, table: decision.blockTable, cached, done: Math.min(cached, p.promptTokens - 1), remaining: p.outputTokens - 1, fed: 0 });
    }
    if (prefilled.length === 0 && running.length === 0) {
      // Nothing fits and nothing runs: only a later arrival, or a policy
      // letting go of pinned blocks as time passes (a TTL), can help.
      stalledSince ??= now;
      if (arrivals.length === 0 && now - stalledSince > MAX_STALL_SECONDS) {
        const head = waiting[0]!;
        throw new RangeError(`serveTrace: a call of ${head.promptTokens + head.outputTokens} tokens found no room in ${deviceBlocks} device blocks of ${blockSize} tokens for ${MAX_STALL_SECONDS} s with nothing running`);
      }
      if (arrivals.length > 0) sleepUntil(arrivals[0]!.time);
      else sleepUntil(now + 0.001);
      now = clock();
      inRuntime(() => runtime.act(now));
      await runCopies();
      continue;
    }
    stalledSince = null;
    const chunks: EngineChunk[] = [];
    for (const r of prefilled) {
      chunks.push({ tokens: r.tokens.subarray(r.done, r.promptTokens), start: r.done, writeFrom: Math.max(r.done, r.cached), blockTable: r.table });
    }
    for (const r of running) {
      // A call's last decode step also writes its last reply token's KV:
      // its blocks join the cache when it finishes.
      const from = r.promptTokens + r.fed;
      const to = r.remaining === 1 ? r.promptTokens + r.outputTokens : from + 1;
      chunks.push({ tokens: r.tokens.subarray(from, to), start: from, blockTable: r.table });
    }
    const logits = await compute(chunks);
    const time = clock();
    for (const [i, r] of prefilled.entries()) {
      result.prefilledTokens += r.promptTokens - r.done - Math.max(0, Math.min(r.promptTokens, r.cached) - r.done);
      r.done = r.promptTokens;
      result.ttftSeconds[ttftCount++] = time - r.arrival;
      options.onPrefill?.(r.call, logits.slice(i * options.model.vocab, (i + 1) * options.model.vocab), r.cached);
      // Committing may swap a block for an equal one cached meanwhile: refresh the table.
      r.table = slots(inRuntime(() => runtime.prefillDone(r.requestId, time)));
    }
    const still: Active[] = [];
    for (const r of running) {
      r.fed = r.remaining === 1 ? r.outputTokens : r.fed + 1;
      r.remaining--;
      if (r.remaining <= 0) await finish(r, time);
      else still.push(r);
    }
    // A one-token reply is complete at its prefill: write that token's KV, then finish.
    const done = prefilled.filter((r) => r.remaining <= 0);
    if (done.length > 0) {
      await compute(done.map((r) => ({ tokens: r.tokens.subarray(r.promptTokens, r.promptTokens + 1), start: r.promptTokens, blockTable: r.table })));
      for (const r of done) await finish(r, time);
    }
    for (const r of prefilled) if (r.remaining > 0) still.push(r);
    running = still;
  }
  result.ttftSeconds = result.ttftSeconds.subarray(0, ttftCount);
  result.wallSeconds = clock();
  return result;
}
