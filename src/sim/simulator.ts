/**
 * Discrete-event replay of an LLM server under a multi-agent trace, driving
 * the real runtime and the real native block manager (metadata only).
 *
 * - Sessions arrive at fixed times (the same for every policy); each call
 *   of a session arrives after the previous call's reply plus its tool gap.
 * - The engine runs continuous batching: each iteration admits waiting
 *   calls in FIFO order within a token budget (a call the device cannot
 *   hold waits, and so do those behind it), prefills them, and decodes one
 *   token for every running call. Running calls pin their blocks; the
 *   reply's blocks are reserved at admission, as engines that preallocate
 *   max_tokens do. (The loop itself is serving_loop.ts; this file drives it.)
 * - The cost model turns prefilled tokens (with their cached context), host
 *   loads and decode into seconds, so TTFT and throughput follow from hits,
 *   misses and transfers. Prefetches between steps overlap with tool time:
 *   they cost bytes, not time.
 * - Between engine iterations the runtime's deferred work runs on its
 *   compute backend (runtime.refresh: survival tables, reclaim), at the same
 *   points for every backend, so a replay makes the same decisions on any.
 *   `simulate` runs it synchronously (the CPU backend, CUDA);
 *   `simulateAsync` awaits it (any backend, WebGPU included) and can also
 *   run every copy plan on a real data plane and check the bytes.
 */
import { performance } from 'node:perf_hooks';

import { Tier } from '../blocks/types.js';
import type { BackendSelection, ComputeBackend, DataPlane } from '../compute/backend.js';
import type { Policy } from '../policies/types.js';
import type { Phase } from '../runtime/profile.js';
import { Runtime, type PolicySpec, type RefreshResult } from '../runtime/runtime.js';
import { resolvePolicy } from '../runtime/setup.js';
import type { SpeculativeTally } from './engine_hooks.js';
import type { CostModel } from './cost_model.js';
import type { ToolCallTally } from './tool_calls.js';
import { RuntimeTime, simulation, type Checkpoint, type DataPlaneOp } from './serving_loop.js';
import { largestCallBlocks, type SimCall, type SimWorkload } from './workload.js';
import { checkInt, describeValue, isRecord } from '../util/check.js';

export interface SimulationOptions {
  workload: SimWorkload;
  /** The policy, or several composed on one runtime (in priority order). */
  policy: PolicySpec | Policy | readonly PolicySpec[];
  deviceBlocks: number;
  hostBlocks: number;
  model: CostModel;
  /**
   * Told which call the engine is serving before each runtime call about it
   * (its position in the first pass's arrival order), for oracles that
   * read the future by call order.
   */
  onCall?: (call: SimCall) => void;
  /**
   * Start time of each session, seconds (the same for every policy); or a
   * closed loop that keeps this many sessions in flight, starting the next
   * in trace order when one ends (the first pass uses it to find the
   * arrivals every policy then shares).
   */
  arrivals: { sessionStarts: readonly number[] } | { concurrency: number };
  /** Compute backend of the runtime (default: the CPU). */
  backend?: ComputeBackend | BackendSelection;
  /** Keep this many device blocks free by reclaim at each refresh (RuntimeOptions.reclaim). */
  reclaim?: { freeBlocks: number };
  /** Policies that only observe (no scoring), listed after the simulated one: recorders in tests. */
  observers?: readonly Policy[];
  /** Keep the runtime's phase clock (SimulationResult.phaseSeconds). */
  profile?: boolean;
}

/** Options of {@link simulateAsync}: those of {@link simulate}, plus a data plane. */
export interface AsyncSimulationOptions extends SimulationOptions {
  /**
   * Runs every copy plan on this data plane (its pools need
   * deviceBlocks/hostBlocks slots; bytesPerBlock may be small: the cost
   * model keeps the model's), writes each block the engine computes with
   * bytes derived from its hash, and at the end reads back every cached
   * block and checks it.
   */
  dataPlane?: DataPlane;
}

/** What the data plane did and whether every cached block's bytes came through. */
export interface DataPlaneCheck {
  copies: number;
  plans: number;
  writes: number;
  /** Cached blocks read back at the end, and those whose bytes were wrong. */
  checked: number;
  corrupt: number;
}

export interface SimulationResult {
  promptTokens: number;
  deviceHitTokens: number;
  hostHitTokens: number;
  outputTokens: number;
  ttftSeconds: Float64Array;
  makespanSeconds: number;
  bytesMoved: number;
  prefetch: { issued: number; used: number; wasted: number };
  runtimeSeconds: number;
  /**
   * Of runtimeSeconds, the part spent once the second half of the calls
   * began to arrive (refreshes included), and how many calls that half
   * holds: the steady-state cost per call (serving_loop.ts, RuntimeTime).
   */
  lateRuntimeSeconds: number;
  lateCalls: number;
  runtimeCalls: number;
  /** With `profile`: the runtime's own account of runtimeSeconds, by phase (Runtime.phaseSeconds); else null. */
  phaseSeconds: Record<Phase, number> | null;
  /** Present when the trace records tool calls: what they came to (tool_calls.ts). */
  toolCalls?: ToolCallTally;
  /** Per session: [first call arrival, last reply], seconds. */
  sessionSpans: [number, number][];
  /** Per call, in completion order: arrival time and the call. */
  arrivals: { time: number; call: SimCall }[];
  /** Runtime refreshes at iteration boundaries, the survival batches they ran on the backend, and blocks they reclaimed. */
  refreshes: number;
  survivalBatches: number;
  reclaimed: number;
  /** Present when the replay ran a data plane. */
  dataPlane?: DataPlaneCheck;
  /** Events and engine calls whose time went back within their session (RuntimeStats.timeWentBack): 0 in every replay. */
  timeWentBack: number;
  /** Per call, in admission order: its session (index), call index, TTFT and device hits. */
  served: ServedCall[];
  /** Present when a policy prefilled speculatively (engine_hooks.ts). */
  speculative?: SpeculativeTally;
}

/** One call as the engine served it. */
export interface ServedCall {
  session: number;
  index: number;
  ttftSeconds: number;
  promptTokens: number;
  deviceHitTokens: number;
}

/**
 * Replays synchronously. The backend must compute synchronously (the CPU,
 * CUDA); use {@link simulateAsync} for the others.
 */
export function simulate(options: SimulationOptions): SimulationResult {
  checkSimulationOptions(options, 'simulate');
  const policies = resolvePolicies(options);
  const runtime = createRuntime(options, policies);
  const replay = simulation(options, runtime, false, policies);
  const driver = new RefreshTally(options.workload.calls);
  for (let step = replay.next(); ; step = replay.next()) {
    if (step.done) return driver.into(step.value);
    step.value.copies.length = 0;
    const start = performance.now();
    driver.add(runtime.refreshSync(step.value.time), start, step.value.late);
  }
}

/** Replays on any backend, awaiting its work at each iteration boundary. */
export async function simulateAsync(options: AsyncSimulationOptions): Promise<SimulationResult> {
  checkSimulationOptions(options, 'simulateAsync');
  const policies = resolvePolicies(options);
  const runtime = createRuntime(options, policies);
  const plane = options.dataPlane;
  const check: DataPlaneCheck = { copies: 0, plans: 0, writes: 0, checked: 0, corrupt: 0 };
  const replay = simulation(options, runtime, plane !== undefined, policies);
  const driver = new RefreshTally(options.workload.calls);
  // The generator yields one checkpoint object throughout; its copies at the
  // end are those queued after the last yield.
  let checkpoint: Checkpoint | null = null;
  const runCopies = async (ops: DataPlaneOp[]): Promise<void> => {
    if (!plane) return;
    for (const op of ops) {
      if (op.type === 'plan') {
        check.plans++;
        check.copies += op.plan.srcSlot.length;
        await plane.run(op.plan);
      } else {
        check.writes++;
        await plane.write('device', op.slot, blockBytes(op.hash, plane.bytesPerBlock));
      }
    }
    ops.length = 0;
  };
  for (let step = replay.next(); ; step = replay.next()) {
    if (step.done) {
      const result = driver.into(step.value);
      if (plane) {
        await runCopies(checkpoint?.copies ?? []);
        const m = runtime.manager.metadata;
        for (let id = 0; id < runtime.manager.numBlockIds; id++) {
          if (m.committed[id] !== 1 || (m.tier[id] !== Tier.Device && m.tier[id] !== Tier.Host)) continue;
          const bytes = await plane.read(m.tier[id] === Tier.Device ? 'device' : 'host', m.slot[id]!);
          check.checked++;
          if (!equalBytes(bytes, blockBytes(m.hash[id]!, plane.bytesPerBlock))) check.corrupt++;
        }
        result.dataPlane = check;
      }
      return result;
    }
    checkpoint = step.value;
    await runCopies(checkpoint.copies);
    const start = performance.now();
    driver.add(await runtime.refresh(checkpoint.time), start, checkpoint.late);
  }
}

/** What a driver's refreshes did, added to the replay's result at the end. */
class RefreshTally {
  reclaimed = 0;
  survivalBatches = 0;
  // Refreshes count as runtime time: they are the runtime's work between steps.
  readonly #time: RuntimeTime;

  constructor(calls: number) {
    this.#time = new RuntimeTime(calls);
  }

  /** A refresh at a checkpoint; `late`: the checkpoint's (Checkpoint.late). */
  add(refreshed: RefreshResult, start: number, late: boolean): void {
    this.reclaimed += refreshed.reclaimed;
    this.survivalBatches += refreshed.survivalBatches;
    this.#time.add((performance.now() - start) / 1000, late);
  }

  into(result: SimulationResult): SimulationResult {
    this.#time.into(result);
    result.reclaimed = this.reclaimed;
    result.survivalBatches = this.survivalBatches;
    return result;
  }
}

/** The bytes the engine writes for a block: its hash, repeated, xor its word index. */
export function blockBytes(hash: bigint, bytesPerBlock: number): Uint8Array {
  const out = new Uint8Array(bytesPerBlock);
  const view = new DataView(out.buffer);
  for (let i = 0; i + 8 <= bytesPerBlock; i += 8) view.setBigUint64(i, hash ^ BigInt(i), true);
  for (let i = bytesPerBlock - (bytesPerBlock % 8); i < bytesPerBlock; i++) out[i] = Number((hash >> BigInt(8 * (i % 8))) & 0xffn);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks what the serving loop relies on; the runtime and block manager
 * check the rest (policy, backend, reclaim) when they are created.
 *
 * @throws TypeError / RangeError naming the option.
 */
export function checkSimulationOptions(options: SimulationOptions, op: string): void {
  if (!isRecord(options)) throw new TypeError(`${op}: options must be an object, got ${describeValue(options)}`);
  const { workload, arrivals } = options;
  if (!isRecord(workload) || !Array.isArray(workload.sessions)) {
    throw new TypeError(`${op}: options.workload must be a workload from prepareWorkload, got ${describeValue(workload)}`);
  }
  const deviceBlocks = checkInt(options.deviceBlocks, `${op}: options.deviceBlocks`, 1, 2 ** 28);
  checkInt(options.hostBlocks, `${op}: options.hostBlocks`, 0, 2 ** 28);
  if (!isRecord(options.model)) throw new TypeError(`${op}: options.model must be a CostModel, got ${describeValue(options.model)}`);
  // A call the device tier cannot hold would wait forever: the engine never splits one.
  const largest = largestCallBlocks(workload);
  if (deviceBlocks < largest) {
    throw new RangeError(`${op}: options.deviceBlocks ${deviceBlocks} cannot hold the largest call (${largest} blocks of prompt and reply)`);
  }
  if (!isRecord(arrivals)) throw new TypeError(`${op}: options.arrivals must be {sessionStarts} or {concurrency}, got ${describeValue(arrivals)}`);
  if ('sessionStarts' in arrivals) {
    const starts: unknown = arrivals.sessionStarts;
    if (!Array.isArray(starts)) throw new TypeError(`${op}: options.arrivals.sessionStarts must be an array of seconds, got ${describeValue(starts)}`);
    starts.forEach((start: unknown, i) => {
      if (typeof start !== 'number') throw new TypeError(`${op}: options.arrivals.sessionStarts[${i}] must be a number, got ${describeValue(start)}`);
      if (!Number.isFinite(start) || start < 0) throw new RangeError(`${op}: options.arrivals.sessionStarts[${i}] must be a finite time >= 0, got ${start}`);
    });
  } else if ('concurrency' in arrivals) {
    checkInt(arrivals.concurrency, `${op}: options.arrivals.concurrency`, 1, 0x7fffffff);
  } else {
    throw new TypeError(`${op}: options.arrivals must be {sessionStarts} or {concurrency}`);
  }
}

/** The runtime's policies, resolved here so the engine can reach their scheduling hooks. */
export function resolvePolicies(options: SimulationOptions): Policy[] {
  const listed = Array.isArray(options.policy) ? (options.policy as readonly PolicySpec[]) : [options.policy as PolicySpec];
  return [...listed.map(resolvePolicy), ...(options.observers ?? [])];
}

export function createRuntime(options: SimulationOptions, policies: readonly Policy[]): Runtime {
  const { workload, model } = options;
  const blockSize = workload.blockSize;
  const runtime = new Runtime({
    // A score class exists only while it holds a cached block, so there are
    // never more classes than blocks.
    blocks: {
      blockSize,
      deviceBlocks: options.deviceBlocks,
      hostBlocks: options.hostBlocks,
      bytesPerBlock: model.kvBytesPerToken * blockSize,
      maxClasses: Math.min(1 << 20, options.deviceBlocks + options.hostBlocks),
    },
    policies,
    hostToDeviceBytesPerSecond: model.hostToDeviceBytesPerSecond,
    ...(options.backend ? { backend: options.backend } : {}),
    ...(options.reclaim ? { reclaim: options.reclaim } : {}),
    // Refreshes run between iterations, where the drivers put them.
    autoRefresh: false,
    profile: options.profile === true,
  });
  return runtime;
}
