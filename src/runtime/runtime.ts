/**
 * The agent runtime layer: one object that agent frameworks and serving
 * engines both talk to. Frameworks report sessions, steps and tool calls;
 * engines admit, progress and release requests. Policies plug into four
 * primitives (observe, score, predict, act) keyed by agent identity, and
 * the runtime drives the native block manager with what they decide.
 *
 * This file is the facade: the session model (sessions.ts), the engine
 * contract (requests.ts), scoring (scoring.ts), actions (actions.ts), the
 * backend's deferred work (refresh.ts), the data plane's copy queue
 * (copy_queue.ts), explain/info (introspect.ts), snapshots (snapshot.ts),
 * the phase clock (profile.ts) and what the constructor resolves
 * (setup.ts) each live in their own module.
 */
import { performance } from 'node:perf_hooks';

import { BlockManager } from '../blocks/block_manager.js';
import type { BlockManagerLike, CopyPlan } from '../blocks/types.js';
import {
  checkBackendChoice,
  selectBackend,
  type BackendChoice,
  type BackendSelection,
  type ComputeBackend,
  type DataPlane,
  type SelectOptions,
} from '../compute/backend.js';
import { checkComposition } from '../policies/compose.js';
import { compositionOf } from '../policies/registry.js';
import { HashSalter } from '../policies/safety/salt.js';
import type { Action, FrameworkEvent, Policy, PolicyAnswer, PredictQuery, Prediction } from '../policies/types.js';
import { checkBoolean, checkInt } from '../util/check.js';
import { ActionRunner, mergeActions } from './actions.js';
import { CopyQueue } from './copy_queue.js';
import { checkFrameworkEvent, checkTime } from './events.js';
import { explainBlock, runtimeInfo } from './introspect.js';
import { checkName, NameRegistry } from './names.js';
import { drainBlockEvents, emit, rescore, type RuntimeParts } from './parts.js';
import { NO_CLOCK, PhaseClock, type Phase } from './profile.js';
import { Refresher } from './refresh.js';
import { RequestBook } from './requests.js';
import { Scoring } from './scoring.js';
import { SessionBook } from './sessions.js';
import { isManager, policyContext, resolveBackend, resolvePolicy } from './setup.js';
import { restorePolicies, snapshotPolicies } from './snapshot.js';
import type {
  ActResult,
  AdmitDecision,
  AdmitRequest,
  PrefetchCompletion,
  RefreshResult,
  RuntimeOptions,
  RuntimeRemote,
  RuntimeStats,
} from './types.js';

export { mergeActions } from './actions.js';
export type * from './types.js';

export class Runtime {
  readonly manager: BlockManagerLike;
  readonly registry: NameRegistry;
  readonly #parts: RuntimeParts;
  readonly #requests: RequestBook;
  readonly #actions: ActionRunner;
  readonly #refresher: Refresher;
  readonly #executeActions: boolean;
  readonly #autoRefresh: boolean;
  readonly #clock: PhaseClock | null;
  /** Policies that answer framework events (safety, tool-memo), in priority order. */
  readonly #answerers: readonly Policy[];
  /** Salts isolated workloads' block hashes at admit and decode; null when no policy isolates. */
  readonly #salter: HashSalter | null;

  /**
   * A runtime on the backend `options.backend` names: 'auto' (the default
   * here) picks CUDA, then a hardware WebGPU adapter, then the CPU; a name
   * insists on that backend and throws when it is not available.
   */
  static async create(
    options: Omit<RuntimeOptions, 'backend'> & {
      backend?: BackendChoice | ComputeBackend | BackendSelection;
      select?: SelectOptions;
    },
  ): Promise<Runtime> {
    if (typeof options !== 'object' || options === null) throw new TypeError('Runtime options must be an object');
    const { backend = 'auto', select, ...rest } = options;
    const selection = typeof backend === 'string' ? await selectBackend(checkBackendChoice(backend, 'options.backend'), select) : backend;
    return new Runtime({ ...rest, backend: selection });
  }

  constructor(options: RuntimeOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('Runtime options must be an object');
    const manager = isManager(options.blocks) ? options.blocks : new BlockManager(options.blocks);
    this.manager = manager;
    this.#executeActions = options.executeActions ?? true;
    const hostToDevice = options.hostToDeviceBytesPerSecond ?? 50e9;
    if (!(hostToDevice > 0) || !Number.isFinite(hostToDevice)) {
      throw new RangeError('hostToDeviceBytesPerSecond must be a finite number > 0');
    }
    const start = performance.now();
    const now = options.now ?? (() => (performance.now() - start) / 1000);
    const selection = resolveBackend(options.backend);
    this.#autoRefresh = checkBoolean(options.autoRefresh ?? true, 'autoRefresh');
    this.#clock = checkBoolean(options.profile ?? false, 'profile') ? new PhaseClock() : null;
    let reclaimFree = 0;
    if (options.reclaim !== undefined) {
      if (typeof options.reclaim !== 'object' || options.reclaim === null) throw new TypeError('reclaim must be {freeBlocks}');
      reclaimFree = checkInt(options.reclaim.freeBlocks, 'reclaim.freeBlocks', 0, manager.deviceBlocks);
    }
    const policies = (options.policies ?? ['cachesage']).map(resolvePolicy);
    const names = new Set<string>();
    for (const p of policies) {
      if (names.has(p.name)) throw new RangeError(`policy "${p.name}" is listed twice`);
      names.add(p.name);
    }
    checkComposition(
      policies.map((p) => ({ name: p.name, ...(p.scoring !== undefined ? { scoring: p.scoring } : {}), composition: compositionOf(p) })),
      Array.isArray(options.combine),
    );
    this.#answerers = policies.filter((p) => p.answer !== undefined);
    this.#salter = HashSalter.of(policies);
    this.registry = new NameRegistry();
    const timeWentBack = { count: 0, largestSeconds: 0, last: null };
    const scoring = new Scoring(manager, policies, options.combine ?? 'sum');
    const remote = checkRemote(options.remote);
    const eventsRead = remote !== null || scoring.mode === 'classes' || policies.some((p) => p.observe !== undefined || p.act !== undefined);
    // Nothing reads them: the manager stops queueing events nobody drains.
    if (!eventsRead) manager.setRecordEvents?.(false);
    this.#parts = {
      manager,
      registry: this.registry,
      sessions: new SessionBook(this.registry, timeWentBack),
      scoring,
      policies,
      copies: new CopyQueue(manager),
      selection,
      stats: {
        ignored: {},
        prefetch: { issued: 0, used: 0, wasted: 0 },
        admitted: 0,
        refused: 0,
        refresh: { runs: 0, failed: 0, lastError: null },
        timeWentBack,
      },
      prefetched: new Set(),
      now,
      clock: this.#clock ?? NO_CLOCK,
      remote,
      eventsRead,
    };
    this.#requests = new RequestBook(this.#parts);
    this.#actions = new ActionRunner(this.#parts);
    this.#refresher = new Refresher(this.#parts, reclaimFree);
    const context = policyContext(this.#parts, hostToDevice);
    for (const p of policies) p.attach?.(context);
  }

  // ------------------------------------------------------------ framework side

  /**
   * observe: a framework event. Malformed events throw; events that do not
   * fit the state (see RuntimeStats.ignored) are counted and ignored; an
   * event earlier than its session's latest is applied and counted
   * (RuntimeStats.timeWentBack).
   *
   * Returns the policies' answer, or null: a denial (the event is refused,
   * neither applied nor observed by any policy) beats any other answer; a
   * memo hit answers a tool.start from an earlier call's result.
   */
  observe(event: FrameworkEvent): PolicyAnswer | null {
    const parts = this.#parts;
    const previous = parts.clock.enter('observe');
    try {
      let e = checkFrameworkEvent(event);
      if (this.#salter !== null && e.type === 'hint' && e.hashes !== undefined) e = { ...e, hashes: this.#salter.chainOf(e.agent.workload, e.hashes) };
      const misfit = parts.sessions.misfit(e);
      if (misfit !== null) {
        parts.stats.ignored[misfit] = (parts.stats.ignored[misfit] ?? 0) + 1;
        return null;
      }
      const answer = this.#answerers.length === 0 ? null : answerOf(this.#answerers, e);
      if (answer?.type === 'deny') return answer;
      parts.sessions.noteTime(e.session, e.time, e.type);
      emit(parts, parts.sessions.apply(e));
      rescore(parts);
      return answer;
    } finally {
      parts.clock.switchTo(previous);
    }
  }

  // ------------------------------------------------------------ engine side

  /**
   * Admits an engine request: how many leading prompt tokens are cached on
   * device, which host blocks load first (in the copy plan), and the block
   * table. Null when the device tier cannot hold it now. A tagged request
   * of a session the framework never announced starts that session.
   */
  admit(request: AdmitRequest): AdmitDecision | null {
    const previous = this.#parts.clock.enter('admit');
    try {
      if (this.#salter !== null) return this.#salter.admit(request, (salted) => this.#requests.admit(salted));
      return this.#requests.admit(request);
    } finally {
      this.#parts.clock.switchTo(previous);
    }
  }

  /** The engine computed the prompt: its full blocks join the shared cache. */
  prefillDone(requestId: number, time?: number): Int32Array {
    const previous = this.#parts.clock.enter('prefill');
    try {
      return this.#requests.prefillDone(requestId, time);
    } finally {
      this.#parts.clock.switchTo(previous);
    }
  }

  /**
   * The engine decoded `tokens` more tokens (0 when its blocks were reserved
   * at admission); `hashes` are the hashes of blocks that became full,
   * continuing the prompt's chain, and those blocks join the cache. Returns
   * the new block ids, or null when the device tier cannot hold them now.
   */
  decode(requestId: number, tokens: number, hashes?: BigUint64Array, time?: number): Int32Array | null {
    const previous = this.#parts.clock.enter('prefill');
    try {
      const chain = this.#salter === null || hashes === undefined ? hashes : this.#salter.decode(requestId, hashes);
      return this.#requests.decode(requestId, tokens, chain, time);
    } finally {
      this.#parts.clock.switchTo(previous);
    }
  }

  /** The request finished: its blocks are unpinned and stay cached until evicted. */
  release(requestId: number, time?: number): void {
    const previous = this.#parts.clock.enter('release');
    try {
      this.#requests.release(requestId, time);
      this.#salter?.released(requestId);
    } finally {
      this.#parts.clock.switchTo(previous);
    }
  }

  /**
   * Drains the copies queued by the calls so far, for the engine's data
   * plane to run. With a data plane attached the runtime runs them itself:
   * use {@link sync}.
   */
  takeCopyPlan(): CopyPlan {
    if (this.#parts.copies.attached) {
      throw new RangeError('takeCopyPlan: a data plane is attached, so the runtime runs the copy plans; await runtime.sync() instead');
    }
    const plan = this.manager.takeCopyPlan();
    if (this.#parts.remote !== null) this.#parts.remote.copyPlan(plan);
    return plan;
  }

  // ------------------------------------------------------------ data plane

  /**
   * Runs the block manager's copy plans on `plane` from now on: the engine
   * awaits {@link sync} before using the blocks of its last calls, and
   * prefetches from act() start at once on the plane's overlapping path
   * (CUDA: the prefetch stream; WebGPU: a queue submission; CPU: a worker
   * thread), their completion reported by {@link takePrefetchCompletions}.
   * Copies already queued run first. The plane's pools must hold the
   * manager's tiers.
   */
  attachDataPlane(plane: DataPlane): void {
    if (this.#parts.remote !== null) {
      throw new RangeError('attachDataPlane: a remote tier (options.remote) follows the copy plans takeCopyPlan hands out; the engine runs them');
    }
    this.#parts.copies.attach(plane);
  }

  /**
   * Queues the copies of the calls so far (and of a refresh in flight) on
   * the attached data plane and resolves when every queued copy,
   * prefetches included, is done. Rejects with the first copy that failed.
   */
  async sync(): Promise<void> {
    const copies = this.#parts.copies;
    if (!copies.attached) throw new RangeError('sync: no data plane is attached (attachDataPlane)');
    // A refresh in flight may still demote blocks: its copies belong to this sync.
    while (this.#refresher.inFlight !== null) await this.#refresher.inFlight.catch(() => undefined);
    copies.queuePending();
    await copies.drain();
  }

  /** Prefetches that completed since the last call, in completion order (drained). */
  takePrefetchCompletions(): PrefetchCompletion[] {
    return this.#parts.copies.takeCompletions();
  }

  // ------------------------------------------------------------ predict, act

  /** predict: from the first policy that can answer. */
  predict(query: PredictQuery): Prediction | null {
    if (typeof query !== 'object' || query === null) throw new TypeError('predict: query must be an object');
    checkName(query.session, 'predict: session');
    if (query.horizon !== undefined) checkInt(query.horizon, 'predict: horizon', 1, 256);
    for (const p of this.#parts.policies) {
      const answer = p.predict?.(query);
      if (answer) return answer;
    }
    return null;
  }

  /**
   * act: between agent steps. Collects every policy's actions, merges them
   * (unpins, then pins, then demotions, evictions and prefetches; a pinned
   * block is never demoted or evicted; a prefetch never displaces a
   * higher-scored block) and executes them unless the runtime only returns
   * actions.
   */
  act(now?: number): ActResult {
    const parts = this.#parts;
    const t = now === undefined ? parts.now() : checkTime(now, 'act: now');
    if (this.#autoRefresh) this.#refresher.inBackground(t);
    const previous = parts.clock.enter('act');
    try {
      const collected: Action[] = [];
      for (const p of parts.policies) {
        const wanted = p.act?.(t);
        if (wanted !== undefined && wanted.length > 0) collected.push(...wanted);
      }
      const actions = mergeActions(collected);
      if (!this.#executeActions) return { actions, demoted: 0, evicted: 0, prefetched: 0, pinned: 0, unpinned: 0 };
      const result = this.#actions.execute(actions, t);
      drainBlockEvents(parts, t);
      rescore(parts);
      return result;
    } finally {
      parts.clock.switchTo(previous);
    }
  }

  // ------------------------------------------------------------ refresh

  /** The compute backend batched work runs on. */
  get backend(): ComputeBackend {
    return this.#parts.selection.backend;
  }

  /**
   * Runs the policies' deferred work on the backend now: their survival
   * tables in one batch per policy, then reclaim. Throws when the backend
   * only computes asynchronously (use {@link refresh}).
   */
  refreshSync(now?: number): RefreshResult {
    const t = now === undefined ? this.#parts.now() : checkTime(now, 'refreshSync: now');
    return this.#refresher.refreshSync(t);
  }

  /**
   * Runs the policies' deferred work on the backend: survival tables, one
   * batch per policy, then reclaim; resolves when the results are applied.
   * Calls run one at a time. Engine calls made while it is in flight see
   * the previous tables; reclaim skips any victim that stopped being
   * evictable in the meantime.
   */
  refresh(now?: number): Promise<RefreshResult> {
    let t: number | undefined;
    try {
      t = now === undefined ? undefined : checkTime(now, 'refresh: now');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#refresher.refresh(t);
  }

  // ------------------------------------------------------------ explain, info, snapshot

  /** Why a block has its score: what it is, who used it, and each policy's view. */
  explain(blockId: number): Record<string, unknown> {
    return explainBlock(this.#parts, blockId);
  }

  /** What the runtime holds now, and what each policy that reports counts (under `policyInfo`, by name). */
  info(): Record<string, unknown> {
    const policyInfo: Record<string, unknown> = {};
    for (const p of this.#parts.policies) if (p.info) policyInfo[p.name] = p.info();
    return { ...runtimeInfo(this.#parts, this.#requests.size, this.#actions.holds), policyInfo };
  }

  get stats(): RuntimeStats {
    return structuredClone(this.#parts.stats);
  }

  /**
   * Seconds the runtime has spent in each phase since it was created:
   * framework events, the engine calls, the policies' observing, rescoring,
   * the backend's deferred work (its synchronous part) and act. A nested
   * phase is charged once, to itself. Null unless created with `profile: true`.
   */
  phaseSeconds(): Record<Phase, number> | null {
    return this.#clock?.seconds() ?? null;
  }

  /** Writes what the policies learned to `path`, atomically. */
  snapshot(path: string): void {
    checkName(path, 'snapshot: path');
    snapshotPolicies(this.#parts.policies, path);
  }

  /**
   * Restores what the policies learned from `path`. A corrupt or foreign
   * snapshot throws a SnapshotError and leaves the runtime as it was.
   */
  restore(path: string): void {
    checkName(path, 'restore: path');
    restorePolicies(this.#parts.policies, path);
    this.#parts.scoring.invalidateAll();
    rescore(this.#parts);
  }
}

/** @throws TypeError when `remote` is neither absent nor an object with the three RuntimeRemote hooks. */
function checkRemote(remote: RuntimeRemote | null | undefined): RuntimeRemote | null {
  if (remote === undefined || remote === null) return null;
  for (const hook of ['blockEvents', 'copyPlan', 'admitted'] as const) {
    if (typeof (remote as Partial<RuntimeRemote>)[hook] !== 'function') throw new TypeError(`remote must be a RuntimeRemote: remote.${hook} must be a function`);
  }
  return remote;
}

/** The policies' answer to an event: the first denial, else the first other answer. */
function answerOf(answerers: readonly Policy[], event: FrameworkEvent): PolicyAnswer | null {
  let found: PolicyAnswer | null = null;
  for (const p of answerers) {
    const answer = p.answer!(event);
    if (answer === null) continue;
    if (answer.type === 'deny') return answer;
    found ??= answer;
  }
  return found;
}
