/**
 * Several serving replicas behind one router: each replica has its own
 * block manager, runtime (with its own instance of the replayed policy)
 * and engine loop, the same continuous batching as serving_loop.ts; one
 * event queue and one router in front. A call is routed when it arrives;
 * the router knows each replica's cache from the block events the
 * replica's runtime drains (an observer policy forwards them) and its load
 * from its outstanding requests.
 *
 * The replicas' iterations interleave in time: the loop always runs the
 * replica whose next iteration starts first, after delivering every
 * arrival up to that moment. Framework events go to the replica the call
 * runs on (a session starts on a replica with its first call there; its
 * tool events go where its previous call ran; its end goes to all of them).
 * Capacities are per replica.
 */
import { performance } from 'node:perf_hooks';

import type { Policy, RuntimeEvent } from '../policies/types.js';
import { createRouter, type Router, type RouterKind } from '../policies/routing.js';
import type { Runtime } from '../runtime/runtime.js';
import { decodeStepsSeconds, prefillIterationSeconds, prefillSeconds, transferSeconds } from './cost_model.js';
import { EngineHooks, type Waiting } from './engine_hooks.js';
import { EventQueue, RuntimeTime } from './serving_loop.js';
import { checkSimulationOptions, createRuntime, resolvePolicies, type SimulationOptions, type SimulationResult } from './simulator.js';
import type { SimCall } from './workload.js';

export interface ClusterOptions extends SimulationOptions {
  replicas: number;
  router: RouterKind;
  /** See RouterOptions.loadPenaltyTokens. */
  loadPenaltyTokens?: number;
}

export interface ClusterResult extends SimulationResult {
  /** Calls each replica served. */
  callsPerReplica: number[];
}

interface Running {
  call: SimCall;
  requestId: number;
  arrival: number;
  remaining: number;
  served: number;
}

interface Replica {
  runtime: Runtime;
  hooks: EngineHooks;
  waiting: Waiting[];
  running: Running[];
  now: number;
  stalledSeconds: number;
  calls: number;
}

const MAX_STALL_SECONDS = 3600;

/** Replays `options.workload` on `options.replicas` replicas (synchronous backends only). */
export function simulateCluster(options: ClusterOptions): ClusterResult {
  checkSimulationOptions(options, 'simulateCluster');
  if (options.observers !== undefined && options.observers.length > 0) {
    throw new RangeError('simulateCluster: options.observers cannot be shared by several replicas');
  }
  const router = createRouter({
    kind: options.router,
    replicas: options.replicas,
    ...(options.loadPenaltyTokens !== undefined ? { loadPenaltyTokens: options.loadPenaltyTokens } : {}),
  });
  const { workload, model } = options;
  const blockSize = workload.blockSize;
  const bytesPerBlock = model.kvBytesPerToken * blockSize;
  const replicas: Replica[] = [];
  for (let r = 0; r < router.replicas; r++) {
    const feed: Policy = { name: `router-feed-${r}`, observe: (e: RuntimeEvent) => e.type === 'blocks' && router.noteBlocks(r, e.events) };
    const policies = resolvePolicies({ ...options, observers: [feed] });
    const runtime = createRuntime(options, policies);
    replicas.push({ runtime, hooks: new EngineHooks(policies, runtime, blockSize), waiting: [], running: [], now: 0, stalledSeconds: 0, calls: 0 });
  }
  return runCluster(options, router, replicas, bytesPerBlock);
}

function runCluster(options: ClusterOptions, router: Router, replicas: Replica[], bytesPerBlock: number): ClusterResult {
  const { workload, model } = options;
  const blockSize = workload.blockSize;
  const runtimeTime = new RuntimeTime(workload.calls);
  let runtimeCalls = 0;
  const timed = <T>(f: () => T): T => {
    const start = performance.now();
    const value = f();
    runtimeTime.add((performance.now() - start) / 1000, runtimeTime.isLate(arrived));
    return value;
  };
  const result: ClusterResult = {
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
    callsPerReplica: [],
  };
  let ttftCount = 0;
  const events = new EventQueue();
  let nextClosedLoopSession = 0;
  if ('sessionStarts' in options.arrivals) {
    const starts = options.arrivals.sessionStarts;
    workload.sessions.forEach((_, s) => events.push(starts[s] ?? 0, s, -1));
  } else {
    nextClosedLoopSession = Math.min(options.arrivals.concurrency, workload.sessions.length);
    for (let s = 0; s < nextClosedLoopSession; s++) events.push(0, s, -1);
  }
  let nextRequest = 1;
  let arrived = 0;
  const workloadOf = (s: number) => workload.sessions[s]!.workload ?? workload.name;
  const ref = (call: SimCall) => ({ workload: workloadOf(call.session), agent: call.agent });
  const sessionName = (s: number) => workload.sessions[s]!.name;
  /** Per session: replicas it started on, and where its latest call ran. */
  const startedOn = workload.sessions.map(() => new Set<number>());
  const lastReplica = new Int32Array(workload.sessions.length).fill(-1);
  const takePlan = (replica: Replica) => {
    result.bytesMoved += replica.runtime.takeCopyPlan().srcSlot.length * bytesPerBlock;
  };
  const outstanding = () => replicas.map((r) => r.waiting.length + r.running.length);

  const arrive = (session: number, callIndex: number, time: number) => {
    if (callIndex === -1) {
      events.push(time, session, 0);
      return;
    }
    const call = workload.sessions[session]!.calls[callIndex]!;
    const span = result.sessionSpans[session]!;
    span[0] = Math.min(span[0], time);
    const name = sessionName(session);
    const previous = lastReplica[session]!;
    if (callIndex > 0 && previous >= 0 && workload.sessions[session]!.calls[callIndex - 1]!.gapAfter > 0) {
      const before = workload.sessions[session]!.calls[callIndex - 1]!;
      runtimeCalls++;
      timed(() => replicas[previous]!.runtime.observe({ type: 'tool.end', time, session: name, agent: ref(before), tool: 'tool' }));
    }
    const r = timed(() => router.route({ session: name, hashes: call.promptHashes, blockSize }, outstanding()));
    const replica = replicas[r]!;
    replica.now = Math.max(replica.now, time);
    lastReplica[session] = r;
    runtimeCalls += 2;
    options.onCall?.(call);
    timed(() => {
      if (!startedOn[session]!.has(r)) {
        startedOn[session]!.add(r);
        replica.runtime.observe({ type: 'session.start', time, session: name, workload: workloadOf(session) });
      }
      replica.runtime.observe({ type: 'step.start', time, session: name, agent: ref(call) });
      replica.runtime.act(time);
    });
    takePlan(replica);
    replica.waiting.push({ call, arrival: time, position: arrived++, bypassed: 0 });
    result.arrivals.push({ time, call });
  };

  const finish = (replica: Replica, run: Running, time: number) => {
    const call = run.call;
    const session = sessionName(call.session);
    const runtime = replica.runtime;
    runtimeCalls += 4;
    options.onCall?.(call);
    timed(() => {
      const first = Math.min(call.allHashes.length, call.promptHashes.length);
      const replyBlocks = call.allHashes.subarray(first);
      if (replyBlocks.length > 0) runtime.decode(run.requestId, 0, replyBlocks, time);
      runtime.release(run.requestId, time);
      runtime.observe({ type: 'step.end', time, session, agent: ref(call) });
      const last = call.index === workload.sessions[call.session]!.calls.length - 1;
      if (last) {
        for (const r of startedOn[call.session]!) replicas[r]!.runtime.observe({ type: 'session.end', time, session });
        router.endSession(session);
        if ('concurrency' in options.arrivals && nextClosedLoopSession < workload.sessions.length) events.push(time, nextClosedLoopSession++, -1);
      } else if (call.gapAfter > 0) {
        runtime.observe({ type: 'tool.start', time, session, agent: ref(call), tool: 'tool' });
      }
      runtime.act(time);
    });
    takePlan(replica);
    result.outputTokens += call.outputTokens;
    const span = result.sessionSpans[call.session]!;
    span[1] = Math.max(span[1], time);
    result.makespanSeconds = Math.max(result.makespanSeconds, time);
    const calls = workload.sessions[call.session]!.calls;
    if (call.index + 1 < calls.length) events.push(time + call.gapAfter, call.session, call.index + 1);
  };

  /** One engine iteration of `replica` at its clock. */
  const iterate = (replica: Replica) => {
    const { runtime, hooks, waiting } = replica;
    const now = replica.now;
    result.refreshes++;
    const refreshed = timed(() => runtime.refreshSync(now));
    result.reclaimed += refreshed.reclaimed;
    result.survivalBatches += refreshed.survivalBatches;
    takePlan(replica);
    let seconds = 0;
    let budget = model.iterationTokenBudget;
    const prefilled: Running[] = [];
    const admitted: number[] = [];
    // Calls a policy holds out of this iteration stay behind the admissible ones.
    const admissible = hooks.orders ? timed(() => hooks.order(waiting, sessionName, ref, now)) : Infinity;
    while (waiting.length > 0 && admitted.length < admissible) {
      const { call, arrival, position } = waiting[0]!;
      if (prefilled.length > 0) {
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
      if (!decision) break;
      const cached = Math.min(decision.cachedDeviceTokens, call.promptTokens - 1);
      const fromHost = Math.min(decision.loadedBlocks * blockSize, call.promptTokens - 1 - cached);
      const fresh = call.promptTokens - cached - fromHost;
      nextRequest++;
      waiting.shift();
      admitted.push(position);
      budget -= fresh;
      replica.calls++;
      result.promptTokens += call.promptTokens;
      result.deviceHitTokens += cached;
      result.hostHitTokens += fromHost;
      hooks.noteHits(call.promptHashes, Math.floor(decision.cachedDeviceTokens / blockSize) + decision.loadedBlocks);
      result.served.push({ session: call.session, index: call.index, ttftSeconds: 0, promptTokens: call.promptTokens, deviceHitTokens: cached });
      seconds += prefillSeconds(model, fresh, cached + fromHost) + transferSeconds(model, decision.loadedBlocks, bytesPerBlock);
      takePlan(replica);
      prefilled.push({ call, requestId, arrival, remaining: call.outputTokens - 1, served: result.served.length - 1 });
    }
    if (hooks.orders) hooks.noteBypassed(waiting, admitted);
    if (prefilled.length === 0 && replica.running.length === 0) {
      // Nothing fits and nothing runs here: wait for an arrival, or for time to pass.
      if (events.size > 0 && events.peekTime() > replica.now) replica.now = events.peekTime();
      else if (++replica.stalledSeconds > MAX_STALL_SECONDS) throw new Error('simulateCluster: a replica stalled: the policy keeps device blocks pinned and never lets go');
      else replica.now += 1;
      timed(() => runtime.act(replica.now));
      takePlan(replica);
      return;
    }
    replica.stalledSeconds = 0;
    if (hooks.speculates) {
      seconds += timed(() => hooks.speculate(now, budget, model, bytesPerBlock));
      takePlan(replica);
    }
    // Decode iterations with no admission in between are taken together,
    // up to the next completion or the next arrival (anywhere: it may come here).
    let steps = 1;
    if (prefilled.length === 0 && waiting.length === 0 && replica.running.length > 0) {
      const dt = decodeStepsSeconds(model, replica.running, 1);
      const untilEvent = events.size > 0 ? Math.floor((events.peekTime() - now) / dt) : Infinity;
      const untilDone = Math.min(...replica.running.map((r) => r.remaining));
      steps = Math.max(1, Math.min(untilDone, untilEvent));
    }
    if (prefilled.length > 0) seconds += prefillIterationSeconds(model, replica.running.length > 0);
    seconds += decodeStepsSeconds(model, replica.running, steps);
    replica.now += seconds;
    for (const r of prefilled) {
      result.ttftSeconds[ttftCount++] = replica.now - r.arrival;
      result.served[r.served]!.ttftSeconds = replica.now - r.arrival;
      runtimeCalls++;
      options.onCall?.(r.call);
      timed(() => runtime.prefillDone(r.requestId, replica.now));
    }
    if (hooks.speculates) timed(() => hooks.finishSpeculation(replica.now, () => undefined));
    const still: Running[] = [];
    for (const r of replica.running) {
      r.remaining -= steps;
      if (r.remaining <= 0) finish(replica, r, replica.now);
      else still.push(r);
    }
    for (const r of prefilled) {
      if (r.remaining <= 0) finish(replica, r, replica.now);
      else still.push(r);
    }
    replica.running = still;
  };

  for (;;) {
    let next: Replica | null = null;
    for (const r of replicas) if ((r.waiting.length > 0 || r.running.length > 0) && (next === null || r.now < next.now)) next = r;
    const nextTime = next?.now ?? Infinity;
    if (events.size > 0 && events.peekTime() <= nextTime) {
      const e = events.pop()!;
      arrive(e.session, e.call, e.time);
      continue;
    }
    if (next === null) break;
    iterate(next);
  }
  for (const [i, r] of replicas.entries()) {
    // Every call ended: a replica with a broken invariant or a block still pinned is a bug here.
    const broken = r.runtime.manager.checkInvariants();
    if (broken !== '') throw new Error(`internal: replica ${i} broke a block manager invariant: ${broken}`);
    const stats = r.runtime.stats;
    result.prefetch.issued += stats.prefetch.issued;
    result.prefetch.used += stats.prefetch.used;
    result.prefetch.wasted += stats.prefetch.wasted;
    result.timeWentBack += stats.timeWentBack.count;
    if (r.hooks.speculates) {
      const tally = r.hooks.speculativeTally();
      const total = (result.speculative ??= { prefilledTokens: 0, loadedTokens: 0, usedTokens: 0, wastedTokens: 0 });
      total.prefilledTokens += tally.prefilledTokens;
      total.loadedTokens += tally.loadedTokens;
      total.usedTokens += tally.usedTokens;
      total.wastedTokens += tally.wastedTokens;
    }
  }
  result.ttftSeconds = result.ttftSeconds.subarray(0, ttftCount);
  runtimeTime.into(result);
  result.runtimeCalls = runtimeCalls + result.refreshes;
  result.callsPerReplica = replicas.map((r) => r.calls);
  return result;
}
