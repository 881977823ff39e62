/**
 * The serving loop the simulator drives: sessions arrive, each call after
 * its session's previous reply and tool gap; each engine iteration admits
 * waiting calls in FIFO order within a token budget, prefills them and
 * decodes one token per running call, all through the real runtime. It is
 * a generator that yields between iterations, so the synchronous and
 * asynchronous drivers (simulator.ts) refresh at the same points.
 */
import { performance } from 'node:perf_hooks';

import { Tier, type CopyPlan } from '../blocks/types.js';
import type { Policy } from '../policies/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { decodeStepsSeconds, prefillIterationSeconds, prefillSeconds, transferSeconds } from './cost_model.js';
import { ToolCalls } from './tool_calls.js';
import type { SimulationOptions, SimulationResult } from './simulator.js';
import { EngineHooks, type Waiting } from './engine_hooks.js';
import type { SimCall } from './workload.js';

/** Where the replay hands control to its driver: between engine iterations. */
export interface Checkpoint {
  /** Simulated seconds. */
  time: number;
  /** Data-plane work queued since the last checkpoint, in order. */
  copies: DataPlaneOp[];
  /** The second half of the calls has begun to arrive: runtime time from here is steady-state time (SimulationResult.lateRuntimeSeconds). */
  late: boolean;
}

export type DataPlaneOp = { type: 'plan'; plan: CopyPlan } | { type: 'write'; slot: number; hash: bigint };

interface Running {
  call: SimCall;
  requestId: number;
  arrival: number;
  remaining: number;
  /** Its record in SimulationResult.served. */
  served: number;
}

/** Events in time order; ties by insertion, so runs are deterministic. */
export class EventQueue {
  readonly #items: { time: number; seq: number; session: number; call: number }[] = [];
  #seq = 0;
  push(time: number, session: number, call: number): void {
    const item = { time, seq: this.#seq++, session, call };
    const heap = this.#items;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  }
  peekTime(): number {
    return this.#items[0]?.time ?? Infinity;
  }
  pop(): { time: number; session: number; call: number } | undefined {
    const heap = this.#items;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
  get size(): number {
    return this.#items.length;
  }
}

// Longer than any policy may reasonably hold blocks with nothing running.
const MAX_STALL_SECONDS = 3600;

function before(a: { time: number; seq: number }, b: { time: number; seq: number }): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

export function* simulation(
  options: SimulationOptions,
  runtime: Runtime,
  withDataPlane: boolean,
  policies: readonly Policy[] = [],
): Generator<Checkpoint, SimulationResult, void> {
  const { workload, model } = options;
  // Queue ordering and speculative prefill, when a policy asks for them.
  const hooks = new EngineHooks(policies, runtime, workload.blockSize);
  const blockSize = workload.blockSize;
  const bytesPerBlock = model.kvBytesPerToken * blockSize;
  const checkpoint: Checkpoint = { time: 0, copies: [], late: false };
  let refreshes = 0;
  const runtimeTime = new RuntimeTime(workload.calls);
  let runtimeCalls = 0;
  const timed = <T>(f: () => T): T => {
    const start = performance.now();
    const value = f();
    runtimeTime.add((performance.now() - start) / 1000, runtimeTime.isLate(arrived));
    return value;
  };

  const result: SimulationResult = {
    promptTokens: 0,
    deviceHitTokens: 0,
    hostHitTokens: 0,
    outputTokens: 0,
    ttftSeconds: new Float64Array(workload.calls),
    makespanSeconds: 0,
    bytesMoved: 0,
    prefetch: { issued: 0, used: 0, wasted: 0 },
    runtimeSeconds: 0,
    lateRuntimeSeconds: 0,
    lateCalls: 0,
    runtimeCalls: 0,
    phaseSeconds: null,
    sessionSpans: workload.sessions.map(() => [Infinity, 0] as [number, number]),
    arrivals: [],
    refreshes: 0,
    survivalBatches: 0,
    reclaimed: 0,
    timeWentBack: 0,
    served: [],
  };
  let ttftCount = 0;
  const events = new EventQueue();
  // call === -1: the session starts.
  let nextClosedLoopSession = 0;
  if ('sessionStarts' in options.arrivals) {
    const starts = options.arrivals.sessionStarts;
    workload.sessions.forEach((_, s) => events.push(starts[s] ?? 0, s, -1));
  } else {
    nextClosedLoopSession = Math.min(options.arrivals.concurrency, workload.sessions.length);
    for (let s = 0; s < nextClosedLoopSession; s++) events.push(0, s, -1);
  }
  const waiting: Waiting[] = [];
  let arrived = 0;
  let running: Running[] = [];
  let now = 0;
  let nextRequest = 1;
  let stalledSeconds = 0;
  // A mix of workloads files each session under its own.
  const workloadOf = (s: number) => workload.sessions[s]!.workload ?? workload.name;
  const ref = (call: SimCall) => ({ workload: workloadOf(call.session), agent: call.agent });
  const sessionName = (s: number) => workload.sessions[s]!.name;

  const takePlan = () => {
    const plan = runtime.takeCopyPlan();
    result.bytesMoved += plan.srcSlot.length * bytesPerBlock;
    if (withDataPlane && plan.srcSlot.length > 0) checkpoint.copies.push({ type: 'plan', plan });
  };
  // The engine computes these blocks' KV: with a data plane, it writes them.
  const computed = (blockIds: ArrayLike<number>, from: number) => {
    if (!withDataPlane) return;
    const m = runtime.manager.metadata;
    for (let i = from; i < blockIds.length; i++) {
      const id = blockIds[i]!;
      if (m.committed[id] === 1 && m.tier[id] === Tier.Device) checkpoint.copies.push({ type: 'write', slot: m.slot[id]!, hash: m.hash[id]! });
    }
  };
  const firstComputed = new Map<number, number>();
  const toolCalls = new ToolCalls(runtime);

  const arrive = (session: number, callIndex: number, time: number) => {
    if (callIndex === -1) {
      runtimeCalls++;
      timed(() => runtime.observe({ type: 'session.start', time, session: sessionName(session), workload: workloadOf(session) }));
      events.push(time, session, 0);
      return;
    }
    const call = workload.sessions[session]!.calls[callIndex]!;
    const span = result.sessionSpans[session]!;
    span[0] = Math.min(span[0], time);
    if (callIndex > 0) {
      const previous = workload.sessions[session]!.calls[callIndex - 1]!;
      if (previous.tools !== undefined) {
        runtimeCalls++;
        timed(() => toolCalls.end(sessionName(session), ref(previous), time));
      } else if (previous.gapAfter > 0) {
        runtimeCalls++;
        timed(() => runtime.observe({ type: 'tool.end', time, session: sessionName(session), agent: ref(previous), tool: 'tool' }));
      }
    }
    runtimeCalls += 2;
    options.onCall?.(call);
    timed(() => {
      runtime.observe({ type: 'step.start', time, session: sessionName(session), agent: ref(call) });
      // A step began: pins held for this session's tool call can go now.
      runtime.act(time);
    });
    takePlan();
    waiting.push({ call, arrival: time, position: arrived++, bypassed: 0 });
    result.arrivals.push({ time, call });
  };

  const finish = (r: Running, time: number) => {
    const call = r.call;
    const session = sessionName(call.session);
    runtimeCalls += 4;
    options.onCall?.(call);
    // Tool time before the session's next call: less what a memo answered.
    let gap = call.gapAfter;
    timed(() => {
      const replyBlocks = call.allHashes.subarray(Math.min(call.allHashes.length, call.promptHashes.length));
      if (replyBlocks.length > 0) {
        runtime.decode(r.requestId, 0, replyBlocks, time);
        // The reply's blocks were reserved at admission; decoding filled them.
        const first = Math.min(call.allHashes.length, call.promptHashes.length);
        computed(runtime.manager.requestBlocks(r.requestId).subarray(first, first + replyBlocks.length), 0);
      }
      runtime.release(r.requestId, time);
      runtime.observe({ type: 'step.end', time, session, agent: ref(call) });
      const last = call.index === workload.sessions[call.session]!.calls.length - 1;
      if (last) {
        runtime.observe({ type: 'session.end', time, session });
        if ('concurrency' in options.arrivals && nextClosedLoopSession < workload.sessions.length) {
          events.push(time, nextClosedLoopSession++, -1);
        }
      } else if (call.tools !== undefined) {
        gap = toolCalls.start({ ...call, tools: call.tools }, session, ref(call), time);
      } else if (call.gapAfter > 0) {
        runtime.observe({ type: 'tool.start', time, session, agent: ref(call), tool: 'tool' });
      }
      runtime.act(time);
    });
    takePlan();
    result.outputTokens += call.outputTokens;
    const span = result.sessionSpans[call.session]!;
    span[1] = Math.max(span[1], time);
    result.makespanSeconds = Math.max(result.makespanSeconds, time);
    const calls = workload.sessions[call.session]!.calls;
    if (call.index + 1 < calls.length) events.push(time + gap, call.session, call.index + 1);
  };

  for (;;) {
    // Between iterations: the driver runs queued copies and the runtime's refresh.
    refreshes++;
    checkpoint.time = now;
    checkpoint.late = runtimeTime.isLate(arrived);
    yield checkpoint;
    // Reclaim's demotions, queued behind the copies before them.
    takePlan();
    // Deliver everything that has arrived by now.
    while (events.size > 0 && events.peekTime() <= now) {
      const e = events.pop()!;
      arrive(e.session, e.call, e.time);
    }
    if (waiting.length === 0 && running.length === 0) {
      if (events.size === 0) break;
      // An idle engine may compute predicted prefixes before the next arrival.
      const idle = hooks.speculates ? timed(() => hooks.speculate(now, model.iterationTokenBudget, model, bytesPerBlock)) : 0;
      if (idle > 0) {
        now += idle;
        timed(() => hooks.finishSpeculation(now, computed));
        takePlan();
        continue;
      }
      now = events.peekTime();
      continue;
    }
    // One engine iteration: admit and prefill within the budget, decode the rest.
    let seconds = 0;
    let budget = model.iterationTokenBudget;
    const prefilled: Running[] = [];
    const admitted: number[] = [];
    // Calls a policy holds out of this iteration stay behind the admissible ones.
    const admissible = hooks.orders ? timed(() => hooks.order(waiting, sessionName, ref, now)) : Infinity;
    while (waiting.length > 0 && admitted.length < admissible) {
      const { call, arrival, position } = waiting[0]!;
      if (prefilled.length > 0) {
        // Over this iteration's token budget: the call waits for the next one.
        const match = runtime.manager.lookup(call.promptHashes);
        if (call.promptTokens - (match.deviceBlocks + match.hostBlocks) * blockSize > budget) break;
      }
      const requestId = nextRequest;
      runtimeCalls++;
      options.onCall?.(call);
      const decision = timed(() =>
        runtime.admit({
          requestId,
          hashes: call.promptHashes,
          numTokens: call.promptTokens + call.outputTokens,
          session: sessionName(call.session),
          agent: ref(call),
          time: now,
        }),
      );
      if (!decision) break; // the head of the queue waits for room, and so does everyone behind it
      const cached = Math.min(decision.cachedDeviceTokens, call.promptTokens - 1);
      const fromHost = Math.min(decision.loadedBlocks * blockSize, call.promptTokens - 1 - cached);
      const fresh = call.promptTokens - cached - fromHost;
      nextRequest++;
      waiting.shift();
      admitted.push(position);
      budget -= fresh;
      result.promptTokens += call.promptTokens;
      result.deviceHitTokens += cached;
      hooks.noteHits(call.promptHashes, Math.floor(decision.cachedDeviceTokens / blockSize) + decision.loadedBlocks);
      result.served.push({ session: call.session, index: call.index, ttftSeconds: 0, promptTokens: call.promptTokens, deviceHitTokens: cached });
      result.hostHitTokens += fromHost;
      seconds += prefillSeconds(model, fresh, cached + fromHost) + transferSeconds(model, decision.loadedBlocks, bytesPerBlock);
      takePlan();
      firstComputed.set(requestId, Math.floor(decision.cachedDeviceTokens / blockSize) + decision.loadedBlocks);
      prefilled.push({ call, requestId, arrival, remaining: call.outputTokens - 1, served: result.served.length - 1 });
    }
    if (hooks.orders) hooks.noteBypassed(waiting, admitted);
    if (prefilled.length === 0 && running.length === 0) {
      // Nothing fits and nothing runs: only a later arrival, or a policy
      // letting go of pinned blocks as time passes (a TTL), can help.
      if (events.size > 0) {
        now = Math.max(now, events.peekTime());
      } else {
        if (++stalledSeconds > MAX_STALL_SECONDS) {
          // The device tier holds the largest call (checked up front), so only
          // a policy that keeps blocks pinned with nothing running gets here.
          const stuck = waiting[0]!.call;
          throw new Error(
            `simulation stalled: call ${stuck.index} of session ${JSON.stringify(workload.sessions[stuck.session]!.name)} ` +
              `(${stuck.promptTokens + stuck.outputTokens} tokens) waited ${MAX_STALL_SECONDS} simulated seconds with nothing running: ` +
              'the policy keeps device blocks pinned and never lets go',
          );
        }
        now += 1;
      }
      runtimeCalls++;
      timed(() => runtime.act(now));
      takePlan();
      continue;
    }
    stalledSeconds = 0;
    // Budget this iteration leaves unused may go to predicted prefixes.
    if (hooks.speculates) {
      seconds += timed(() => hooks.speculate(now, budget, model, bytesPerBlock));
      takePlan();
    }
    // Decode iterations with no admission in between can be taken together,
    // up to the next completion or the next arrival.
    let steps = 1;
    if (prefilled.length === 0 && waiting.length === 0 && running.length > 0) {
      const dt = decodeStepsSeconds(model, running, 1);
      const untilEvent = events.size > 0 ? Math.floor((events.peekTime() - now) / dt) : Infinity;
      const untilDone = Math.min(...running.map((r) => r.remaining));
      steps = Math.max(1, Math.min(untilDone, untilEvent));
    }
    if (prefilled.length > 0) seconds += prefillIterationSeconds(model, running.length > 0);
    seconds += decodeStepsSeconds(model, running, steps);
    now += seconds;
    // Prompts computed in this iteration join the cache at its end: calls
    // batched beside them could not reuse them.
    for (const r of prefilled) {
      result.ttftSeconds[ttftCount++] = now - r.arrival;
      result.served[r.served]!.ttftSeconds = now - r.arrival;
      runtimeCalls++;
      options.onCall?.(r.call);
      const ids = timed(() => runtime.prefillDone(r.requestId, now));
      computed(ids, firstComputed.get(r.requestId) ?? 0);
      firstComputed.delete(r.requestId);
    }
    if (hooks.speculates) timed(() => hooks.finishSpeculation(now, computed));
    const still: Running[] = [];
    for (const r of running) {
      r.remaining -= steps;
      if (r.remaining <= 0) finish(r, now);
      else still.push(r);
    }
    for (const r of prefilled) {
      if (r.remaining <= 0) finish(r, now);
      else still.push(r);
    }
    running = still;
  }
  const stats = runtime.stats;
  result.prefetch = stats.prefetch;
  result.timeWentBack = stats.timeWentBack.count;
  if (hooks.speculates) result.speculative = hooks.speculativeTally();
  result.ttftSeconds = result.ttftSeconds.subarray(0, ttftCount);
  runtimeTime.into(result);
  result.runtimeCalls = runtimeCalls + refreshes;
  result.phaseSeconds = runtime.phaseSeconds();
  if (toolCalls.tally.calls > 0) result.toolCalls = { ...toolCalls.tally };
  result.refreshes = refreshes;
  return result;
}

/**
 * The runtime time a replay measures: all of it, and the part spent from
 * the arrival of the call after the first half on, over the calls from
 * there (steadyOverheadUsPerCall): the per-call cost once the runtime's
 * code is compiled and its tables are warm, a long-running engine's
 * figure, where a short replay's mean also carries the start.
 */
export class RuntimeTime {
  seconds = 0;
  lateSeconds = 0;
  readonly lateCalls: number;
  readonly #half: number;

  constructor(calls: number) {
    this.#half = Math.floor(calls / 2);
    this.lateCalls = calls - this.#half;
  }

  /** Whether a replay with `arrived` calls so far is in its second half. */
  isLate(arrived: number): boolean {
    return arrived > this.#half;
  }

  add(seconds: number, late: boolean): void {
    this.seconds += seconds;
    if (late) this.lateSeconds += seconds;
  }

  /** Adds what was measured to a result's runtimeSeconds and lateRuntimeSeconds, and sets its lateCalls. */
  into(result: SimulationResult): void {
    result.runtimeSeconds += this.seconds;
    result.lateRuntimeSeconds += this.lateSeconds;
    result.lateCalls = this.lateCalls;
  }
}
