/**
 * The agent runtime layer: one object that agent frameworks and serving
 * engines both talk to. Frameworks report sessions, steps and tool calls;
 * engines admit, progress and release requests. Policies plug into four
 * primitives (observe, score, predict, act) keyed by agent identity, and
 * the runtime drives the native block manager with what they decide.
 */
import { performance } from 'node:perf_hooks';

import { BlockManager } from '../blocks/block_manager.js';
import { EventKind, Tier, type BlockManagerLike, type BlockManagerOptions, type CopyPlan } from '../blocks/types.js';
import { checkInt } from '../util/check.js';
import { checkHashes, checkRequestId } from '../blocks/validate.js';
import {
  checkBackendChoice,
  cpuBackend,
  describeSelection,
  selectBackend,
  selectionOf,
  type BackendChoice,
  type BackendSelection,
  type ComputeBackend,
  type DataPlane,
  type SelectOptions,
} from '../compute/backend.js';
import { isDeviceEvictable, type HitScoringInput } from '../compute/hit_scoring.js';
import { createPolicy } from '../policies/registry.js';
import { ClassBook } from './classes.js';
import { checkAgentRef, checkFrameworkEvent, checkTime } from './events.js';
import { checkName, NameRegistry } from './names.js';
import { readSnapshot, SnapshotError, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, writeSnapshotAtomically } from './snapshot.js';
import type {
  Action,
  AgentRef,
  FrameworkEvent,
  Policy,
  PolicyContext,
  PredictQuery,
  Prediction,
  RuntimeEvent,
  ScoreClass,
  SurvivalWork,
} from '../policies/types.js';

/** A policy given by name, by name with options, or as an object. */
export type PolicySpec = string | { name: string; options?: unknown } | Policy;

export interface RuntimeOptions {
  /** The block manager to drive, or the options to create a native one. */
  blocks: BlockManager | BlockManagerLike | BlockManagerOptions;
  /** Policies in priority order (default: ['cachesage']). */
  policies?: readonly PolicySpec[];
  /**
   * How scores of several scoring policies combine: 'sum', or one weight per
   * scoring policy (a weighted sum). All scoring policies must score the
   * same unit (classes or blocks).
   */
  combine?: 'sum' | readonly number[];
  /** Execute act()'s actions against the block manager (default true) or only return them. */
  executeActions?: boolean;
  /** Host -> device bandwidth for prefetch budgets (default 50e9 bytes/s, PCIe 5 pinned). */
  hostToDeviceBytesPerSecond?: number;
  /** Seconds for engine calls that pass no time (default: performance.now()/1000). */
  now?: () => number;
  /**
   * The compute backend for batched survival and hit scoring: 'cpu'
   * (default), a backend object, or a selection from selectBackend().
   * `Runtime.create` also takes 'auto' and the other names.
   */
  backend?: 'cpu' | ComputeBackend | BackendSelection;
  /**
   * Run the policies' deferred work (runtime.refresh) at every act()
   * (default true): synchronously on a backend that can, else started in
   * the background and applied when it completes. False leaves it to the
   * caller, for replays that must refresh at fixed points.
   */
  autoRefresh?: boolean;
  /**
   * Keep at least `freeBlocks` device blocks free: at each refresh, when
   * fewer are free, the backend's hit scoring picks the lowest-ordered
   * evictable device leaves and they are demoted (dropped when there is no
   * host tier). Admissions then find room without evicting on their path.
   * Default: off, the manager evicts on demand.
   */
  reclaim?: { freeBlocks: number };
}

/** A prefetch the data plane finished: its blocks are on the device. */
export interface PrefetchCompletion {
  blockIds: Int32Array;
  /** act()'s time when it was issued; the runtime clock's when it completed. */
  issuedAt: number;
  completedAt: number;
}

/** What one runtime.refresh() did. */
export interface RefreshResult {
  /** Workloads whose survival tables were recomputed, in how many batches. */
  survivalWorkloads: number;
  survivalBatches: number;
  /** Device blocks demoted or dropped by reclaim. */
  reclaimed: number;
}

export interface AdmitRequest {
  requestId: number;
  /** Hashes of the prompt's full blocks, in order. */
  hashes: BigUint64Array;
  numTokens: number;
  session?: string;
  agent?: AgentRef;
  time?: number;
}

export interface AdmitDecision {
  /** Leading prompt tokens already on the device tier. */
  cachedDeviceTokens: number;
  /** Host-tier blocks loaded for this request (their copies are in the copy plan). */
  loadedBlocks: number;
  blockIds: Int32Array;
  /** Device slot of each block: the engine's block table. */
  blockTable: Int32Array;
}

export interface ActResult {
  /** The merged actions, in execution order. */
  actions: Action[];
  demoted: number;
  evicted: number;
  prefetched: number;
  pinned: number;
  unpinned: number;
}

export interface RuntimeStats {
  /** Well-formed events that did not fit the state, by reason; they changed nothing. */
  ignored: Record<string, number>;
  prefetch: { issued: number; used: number; wasted: number };
  admitted: number;
  refused: number;
  /** Refreshes run, and background refreshes that failed (the last error's message). */
  refresh: { runs: number; failed: number; lastError: string | null };
}

interface SessionState {
  name: string;
  id: number;
  workload: string;
  workloadId: number;
  live: boolean;
  currentAgent: string | null;
  inStep: boolean;
  lastPrompt: Map<string, BigUint64Array>;
  lastAny: BigUint64Array | undefined;
}

interface RequestState {
  requestId: number;
  session: SessionState | undefined;
  agent: AgentRef | undefined;
  hashes: BigUint64Array;
  knownHashes: number;
}

// Pins hold the chain through a request of the manager's own; these ids
// never collide with an engine's (engine ids stay below 2^52).
const HOLD_ID_BASE = 2 ** 52;

export class Runtime {
  readonly manager: BlockManagerLike;
  readonly registry = new NameRegistry();
  readonly #policies: Policy[];
  readonly #scorers: Policy[];
  readonly #weights: number[];
  readonly #mode: 'classes' | 'blocks' | 'none';
  readonly #classes: ClassBook;
  readonly #executeActions: boolean;
  readonly #now: () => number;
  readonly #sessions = new Map<string, SessionState>();
  readonly #requests = new Map<number, RequestState>();
  readonly #holds = new Map<string, number>();
  #nextHold = HOLD_ID_BASE;
  readonly #invalidated = new Set<number>();
  readonly #prefetched = new Set<number>();
  readonly #stats: RuntimeStats = {
    ignored: {},
    prefetch: { issued: 0, used: 0, wasted: 0 },
    admitted: 0,
    refused: 0,
    refresh: { runs: 0, failed: 0, lastError: null },
  };
  readonly #hostToDevice: number;
  readonly #selection: BackendSelection;
  readonly #autoRefresh: boolean;
  readonly #reclaimFree: number;
  #refreshing: Promise<RefreshResult> | null = null;
  #plane: DataPlane | null = null;
  #planeTail: Promise<void> = Promise.resolve();
  #planeError: Error | null = null;
  #completions: PrefetchCompletion[] = [];

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
    this.manager = isManager(options.blocks) ? options.blocks : new BlockManager(options.blocks);
    this.#executeActions = options.executeActions ?? true;
    this.#hostToDevice = options.hostToDeviceBytesPerSecond ?? 50e9;
    if (!(this.#hostToDevice > 0) || !Number.isFinite(this.#hostToDevice)) {
      throw new RangeError('hostToDeviceBytesPerSecond must be a finite number > 0');
    }
    const start = performance.now();
    this.#now = options.now ?? (() => (performance.now() - start) / 1000);
    this.#selection = resolveBackend(options.backend);
    this.#autoRefresh = options.autoRefresh ?? true;
    if (typeof this.#autoRefresh !== 'boolean') throw new TypeError('autoRefresh must be a boolean');
    this.#reclaimFree = 0;
    if (options.reclaim !== undefined) {
      if (typeof options.reclaim !== 'object' || options.reclaim === null) throw new TypeError('reclaim must be {freeBlocks}');
      this.#reclaimFree = checkInt(options.reclaim.freeBlocks, 'reclaim.freeBlocks', 0, this.manager.deviceBlocks);
    }
    this.#policies = (options.policies ?? ['cachesage']).map(resolvePolicy);
    const names = new Set<string>();
    for (const p of this.#policies) {
      if (names.has(p.name)) throw new RangeError(`policy "${p.name}" is listed twice`);
      names.add(p.name);
    }
    this.#scorers = this.#policies.filter((p) => p.scoring !== undefined);
    const modes = new Set(this.#scorers.map((p) => p.scoring));
    if (modes.size > 1) {
      throw new RangeError(
        `cannot combine class-scored and block-scored policies (${this.#scorers.map((p) => `${p.name}: ${p.scoring}`).join(', ')})`,
      );
    }
    this.#mode = this.#scorers[0]?.scoring ?? 'none';
    const combine = options.combine ?? 'sum';
    if (combine === 'sum') {
      this.#weights = this.#scorers.map(() => 1);
    } else {
      if (!Array.isArray(combine) || combine.length !== this.#scorers.length || !combine.every(Number.isFinite)) {
        throw new RangeError(`combine must be 'sum' or ${this.#scorers.length} finite weights, one per scoring policy`);
      }
      this.#weights = [...combine];
    }
    this.#classes = new ClassBook(this.manager);
    const context = this.#context();
    for (const p of this.#policies) p.attach?.(context);
  }

  // ------------------------------------------------------------ framework side

  /**
   * observe: a framework event. Malformed events throw; events that do not
   * fit the state (see RuntimeStats.ignored) are counted and ignored.
   */
  observe(event: FrameworkEvent): void {
    const e = checkFrameworkEvent(event);
    if (!this.#fits(e)) return;
    this.#applyFramework(e);
    this.#emit(e);
    this.#rescore();
  }

  #fits(e: FrameworkEvent): boolean {
    const session = this.#sessions.get(e.session);
    const ignore = (reason: string) => {
      this.#stats.ignored[reason] = (this.#stats.ignored[reason] ?? 0) + 1;
      return false;
    };
    if (e.type === 'session.start') return session?.live ? ignore('session.start of a live session') : true;
    if (!session || !session.live) return ignore(`${e.type} of an unknown or ended session`);
    if (e.type === 'session.end') return true;
    if (e.agent.workload !== session.workload) return ignore(`${e.type} with an agent of another workload`);
    if (e.type === 'step.end' && (!session.inStep || session.currentAgent !== e.agent.agent)) {
      return ignore('step.end without its step.start');
    }
    return true;
  }

  #applyFramework(e: FrameworkEvent): void {
    if (e.type === 'session.start') {
      this.#startSession(e.session, e.workload);
      return;
    }
    const session = this.#sessions.get(e.session)!;
    switch (e.type) {
      case 'step.start':
        session.currentAgent = e.agent.agent;
        session.inStep = true;
        break;
      case 'step.end':
        session.inStep = false;
        break;
      case 'session.end':
        session.live = false;
        break;
      default:
        break;
    }
  }

  #startSession(name: string, workload: string): SessionState {
    const previous = this.#sessions.get(name);
    const session: SessionState = {
      name,
      id: this.registry.sessionId(name),
      workload,
      workloadId: this.registry.workloadId(workload),
      live: true,
      currentAgent: null,
      inStep: false,
      lastPrompt: previous?.lastPrompt ?? new Map(),
      lastAny: previous?.lastAny,
    };
    this.registry.setSessionWorkload(name, workload);
    this.#sessions.set(name, session);
    return session;
  }

  // ------------------------------------------------------------ engine side

  /**
   * Admits an engine request: how many leading prompt tokens are cached on
   * device, which host blocks load first (in the copy plan), and the block
   * table. Null when the device tier cannot hold it now. A tagged request
   * of a session the framework never announced starts that session.
   */
  admit(request: AdmitRequest): AdmitDecision | null {
    if (typeof request !== 'object' || request === null) throw new TypeError('admit: request must be an object');
    const requestId = checkRequestId(request.requestId, 'admit');
    if (requestId >= HOLD_ID_BASE) throw new RangeError(`admit: requestId must be below 2^52, got ${requestId}`);
    checkHashes(request.hashes, 'admit: hashes');
    checkInt(request.numTokens, 'admit: numTokens', 1, 0x7fffffff);
    const time = request.time === undefined ? this.#now() : checkTime(request.time, 'admit: time');
    if (request.session !== undefined) checkName(request.session, 'admit: session');
    if (request.agent !== undefined) checkAgentRef(request.agent, 'admit: agent');
    if ((request.session === undefined) !== (request.agent === undefined)) {
      throw new TypeError('admit: session and agent go together (both or neither)');
    }
    if (this.#requests.has(requestId)) throw new Error(`admit: request ${requestId} is already admitted`);

    let session = request.session === undefined ? undefined : this.#sessions.get(request.session);
    if (request.session !== undefined && request.agent !== undefined) {
      if (!session || !session.live) session = this.#startSession(request.session, request.agent.workload);
      else if (session.workload !== request.agent.workload) {
        throw new RangeError(
          `admit: session ${request.session} belongs to workload ${session.workload}, not ${request.agent.workload}`,
        );
      }
    }
    const tags = session && request.agent
      ? { workload: session.workloadId, agent: this.registry.agentIndex(session.workload, request.agent.agent), session: session.id }
      : undefined;
    const admitted = this.manager.admit(requestId, request.hashes, request.numTokens, tags);
    if (!admitted) {
      this.#stats.refused++;
      return null;
    }
    this.#stats.admitted++;
    const fullBlocks = Math.floor(request.numTokens / this.manager.blockSize);
    this.#requests.set(requestId, {
      requestId,
      session,
      agent: request.agent,
      hashes: request.hashes,
      knownHashes: Math.min(request.hashes.length, fullBlocks),
    });
    const hits = admitted.cachedDeviceTokens / this.manager.blockSize + admitted.loadedBlocks;
    for (let i = 0; i < hits; i++) {
      const id = admitted.blockIds[i]!;
      if (this.#prefetched.delete(id)) this.#stats.prefetch.used++;
    }
    let previous: { shared: number; length: number } | undefined;
    if (session && request.agent) {
      // The previous prompt of this agent in this session, past where the new
      // one diverges, is dead for it (cachesage.md: stale chains).
      previous = this.#markPreviousStale(session, request.agent.agent, request.hashes);
      session.lastPrompt.set(request.agent.agent, request.hashes);
      session.lastAny = request.hashes;
      if (!session.inStep || session.currentAgent !== request.agent.agent) {
        // An engine-only integration has no step events: the call is the step.
        session.currentAgent = request.agent.agent;
        session.inStep = true;
      }
    }
    this.#drainBlockEvents(time);
    if (this.#mode === 'classes') this.#classes.classify(admitted.blockIds);
    this.#emit({
      type: 'admit',
      time,
      requestId,
      ...(request.session !== undefined ? { session: request.session } : {}),
      ...(request.agent !== undefined ? { agent: request.agent } : {}),
      hashes: request.hashes,
      blockIds: admitted.blockIds,
      numTokens: request.numTokens,
      cachedDeviceTokens: admitted.cachedDeviceTokens,
      loadedBlocks: admitted.loadedBlocks,
      ...(previous !== undefined
        ? { extendsPrevious: previous.shared >= previous.length, sharedWithPrevious: previous.shared, previousBlocks: previous.length }
        : {}),
    });
    this.#rescore(admitted.blockIds);
    return admitted;
  }

  /** The engine computed the prompt: its full blocks join the shared cache. */
  prefillDone(requestId: number, time?: number): Int32Array {
    const request = this.#request(requestId, 'prefillDone');
    const t = time === undefined ? this.#now() : checkTime(time, 'prefillDone: time');
    const blockIds = this.manager.commit(requestId, request.knownHashes);
    this.#drainBlockEvents(t);
    if (this.#mode === 'classes') this.#classes.classify(blockIds);
    this.#emit({ type: 'prefill.done', time: t, requestId, ...this.#tagsOf(request), blockIds });
    this.#rescore(blockIds);
    return blockIds;
  }

  /**
   * The engine decoded `tokens` more tokens (0 when its blocks were reserved
   * at admission); `hashes` are the hashes of blocks that became full,
   * continuing the prompt's chain, and those blocks join the cache. Returns
   * the new block ids, or null when the device tier cannot hold them now.
   */
  decode(requestId: number, tokens: number, hashes?: BigUint64Array, time?: number): Int32Array | null {
    const request = this.#request(requestId, 'decode');
    const t = time === undefined ? this.#now() : checkTime(time, 'decode: time');
    const added = this.manager.append(requestId, tokens, hashes);
    if (added === null) return null;
    let committed: Int32Array | undefined;
    if (hashes && hashes.length > 0) {
      const all = new BigUint64Array(request.knownHashes + hashes.length);
      all.set(request.hashes.subarray(0, request.knownHashes));
      all.set(hashes, request.knownHashes);
      request.hashes = all;
      request.knownHashes = all.length;
      // Blocks whose hashes the engine reports are computed: they join the cache.
      committed = this.manager.commit(requestId, request.knownHashes);
    }
    this.#drainBlockEvents(t);
    if (committed && this.#mode === 'classes') this.#classes.classify(committed);
    this.#emit({ type: 'decode', time: t, requestId, ...this.#tagsOf(request), tokens });
    if (committed) this.#rescore(committed);
    return added;
  }

  /** The request finished: its blocks are unpinned and stay cached until evicted. */
  release(requestId: number, time?: number): void {
    const request = this.#request(requestId, 'release');
    const t = time === undefined ? this.#now() : checkTime(time, 'release: time');
    const blockIds = this.manager.requestBlocks(requestId);
    this.manager.release(requestId);
    this.#requests.delete(requestId);
    if (request.session) {
      // The prompt the session continues from includes the reply decoded so far.
      request.session.lastAny = request.hashes.subarray(0, request.knownHashes);
      if (request.agent) request.session.lastPrompt.set(request.agent.agent, request.session.lastAny);
    }
    this.#drainBlockEvents(t);
    this.#emit({ type: 'release', time: t, requestId, ...this.#tagsOf(request), blockIds });
    this.#rescore(blockIds);
  }

  /**
   * Drains the copies queued by the calls so far, for the engine's data
   * plane to run. With a data plane attached the runtime runs them itself:
   * use {@link sync}.
   */
  takeCopyPlan(): CopyPlan {
    if (this.#plane !== null) {
      throw new Error('takeCopyPlan: a data plane is attached, so the runtime runs the copy plans; await runtime.sync() instead');
    }
    return this.manager.takeCopyPlan();
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
    if (typeof plane !== 'object' || plane === null || typeof plane.run !== 'function' || typeof plane.prefetch !== 'function') {
      throw new TypeError('attachDataPlane: plane must be a DataPlane (backend.createDataPlane)');
    }
    if (this.#plane !== null) throw new Error('attachDataPlane: a data plane is already attached');
    if (plane.deviceBlocks < this.manager.deviceBlocks || plane.hostBlocks < this.manager.hostBlocks) {
      throw new RangeError(
        `attachDataPlane: the plane holds ${plane.deviceBlocks} device and ${plane.hostBlocks} host blocks; ` +
          `the block manager needs ${this.manager.deviceBlocks} and ${this.manager.hostBlocks}`,
      );
    }
    this.#plane = plane;
  }

  /**
   * Queues the copies of the calls so far (and of a refresh in flight) on
   * the attached data plane and resolves when every queued copy,
   * prefetches included, is done. Rejects with the first copy that failed.
   */
  async sync(): Promise<void> {
    if (this.#plane === null) throw new Error('sync: no data plane is attached (attachDataPlane)');
    // A refresh in flight may still demote blocks: its copies belong to this sync.
    while (this.#refreshing !== null) await this.#refreshing.catch(() => undefined);
    this.#queuePlan(this.manager.takeCopyPlan(), 'run');
    await this.#planeTail;
    const error = this.#planeError;
    this.#planeError = null;
    if (error !== null) throw error;
  }

  /** Prefetches that completed since the last call, in completion order (drained). */
  takePrefetchCompletions(): PrefetchCompletion[] {
    const done = this.#completions;
    this.#completions = [];
    return done;
  }

  #queuePlan(plan: CopyPlan, kind: 'run' | 'prefetch', onDone?: () => void): void {
    const plane = this.#plane!;
    if (plan.srcSlot.length === 0) return;
    this.#planeTail = this.#planeTail
      .then(() => (kind === 'run' ? plane.run(plan) : plane.prefetch(plan)))
      .then(onDone)
      .catch((error: unknown) => {
        this.#planeError ??= error instanceof Error ? error : new Error(String(error));
      });
  }

  // ------------------------------------------------------------ predict, act, explain

  /** predict: from the first policy that can answer. */
  predict(query: PredictQuery): Prediction | null {
    if (typeof query !== 'object' || query === null) throw new TypeError('predict: query must be an object');
    checkName(query.session, 'predict: session');
    if (query.horizon !== undefined) checkInt(query.horizon, 'predict: horizon', 1, 256);
    for (const p of this.#policies) {
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
    const t = now === undefined ? this.#now() : checkTime(now, 'act: now');
    if (this.#autoRefresh) this.#refreshInBackground(t);
    const collected: Action[] = [];
    for (const p of this.#policies) collected.push(...(p.act?.(t) ?? []));
    const actions = mergeActions(collected);
    const result: ActResult = { actions, demoted: 0, evicted: 0, prefetched: 0, pinned: 0, unpinned: 0 };
    if (!this.#executeActions) return result;
    for (const action of actions) {
      switch (action.type) {
        case 'unpin':
          result.unpinned += this.#unpin(action.key) ? 1 : 0;
          break;
        case 'pin':
          result.pinned += this.#pin(action.key, action.leafBlockId) ? 1 : 0;
          break;
        case 'demote':
          result.demoted += this.manager.demote(liveIds(this.manager, action.blockIds));
          break;
        case 'evict':
          result.evicted += this.manager.drop(liveIds(this.manager, action.blockIds));
          break;
        case 'prefetch': {
          const ids = liveIds(this.manager, action.blockIds);
          // With a data plane, the copies queued before stay ahead of the prefetch's own.
          if (this.#plane !== null) this.#queuePlan(this.manager.takeCopyPlan(), 'run');
          const moved = this.manager.load(ids);
          result.prefetched += moved;
          if (this.#plane !== null) {
            const loaded = ids.filter((id) => this.manager.metadata.tier[id] === Tier.Device);
            this.#queuePlan(this.manager.takeCopyPlan(), 'prefetch', () =>
              this.#completions.push({ blockIds: loaded, issuedAt: t, completedAt: this.#now() }),
            );
          }
          for (const id of ids) {
            if (this.manager.metadata.tier[id] === Tier.Device && !this.#prefetched.has(id)) {
              this.#prefetched.add(id);
              this.#stats.prefetch.issued++;
            }
          }
          break;
        }
      }
    }
    this.#drainBlockEvents(t);
    this.#rescore();
    return result;
  }

  // ------------------------------------------------------------ refresh

  /** The compute backend, and why it was chosen. */
  get backend(): ComputeBackend {
    return this.#selection.backend;
  }

  /**
   * Runs the policies' deferred work on the backend now: their survival
   * tables in one batch per policy, then reclaim. Throws when the backend
   * only computes asynchronously (use {@link refresh}).
   */
  refreshSync(now?: number): RefreshResult {
    const t = now === undefined ? this.#now() : checkTime(now, 'refreshSync: now');
    const backend = this.#selection.backend;
    // Refused before any work is taken from the policies, so none is lost.
    const { survivalSync, hitScoringSync } = backend;
    if (survivalSync === null || (this.#reclaimFree > 0 && hitScoringSync === null)) {
      throw new Error(`refreshSync: the ${backend.name} backend computes asynchronously; await runtime.refresh() instead`);
    }
    const result: RefreshResult = { survivalWorkloads: 0, survivalBatches: 0, reclaimed: 0 };
    for (const work of this.#pendingWork()) this.#applyWork(work, (work.compute ?? survivalSync)(work.input), result);
    const k = this.#reclaimNeeded();
    if (k > 0) result.reclaimed = this.#reclaim(hitScoringSync!(this.#hitScoringInput(), k).victims);
    this.#afterRefresh(t, result);
    return result;
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
    const previous = this.#refreshing ?? Promise.resolve();
    const run = previous.then(
      () => this.#refreshAsync(t),
      () => this.#refreshAsync(t),
    );
    this.#refreshing = run;
    void run.finally(() => {
      if (this.#refreshing === run) this.#refreshing = null;
    }).catch(() => undefined);
    return run;
  }

  async #refreshAsync(now: number | undefined): Promise<RefreshResult> {
    const backend = this.#selection.backend;
    const result: RefreshResult = { survivalWorkloads: 0, survivalBatches: 0, reclaimed: 0 };
    for (const work of this.#pendingWork()) {
      const output = work.compute ? work.compute(work.input) : await backend.survival(work.input);
      this.#applyWork(work, output, result);
    }
    const k = this.#reclaimNeeded();
    if (k > 0) result.reclaimed = this.#reclaim((await backend.hitScoring(this.#hitScoringInput(), k)).victims);
    this.#afterRefresh(now ?? this.#now(), result);
    return result;
  }

  #refreshInBackground(now: number): void {
    const backend = this.#selection.backend;
    if (backend.survivalSync !== null && backend.hitScoringSync !== null) {
      this.refreshSync(now);
      return;
    }
    if (this.#refreshing !== null) return;
    this.refresh().catch((error: unknown) => {
      this.#stats.refresh.failed++;
      this.#stats.refresh.lastError = error instanceof Error ? error.message : String(error);
    });
  }

  *#pendingWork(): Generator<SurvivalWork> {
    for (const p of this.#policies) {
      const work = p.pendingWork?.();
      if (work) yield work;
    }
  }

  #applyWork(work: SurvivalWork, output: Parameters<SurvivalWork['apply']>[0], result: RefreshResult): void {
    work.apply(output);
    result.survivalWorkloads += work.input.workloads;
    result.survivalBatches++;
  }

  #afterRefresh(time: number, result: RefreshResult): void {
    this.#stats.refresh.runs++;
    // Nothing applied, nothing moved: no events to drain, no class changed.
    if (result.survivalBatches === 0 && result.reclaimed === 0) return;
    this.#drainBlockEvents(time);
    this.#rescore();
  }

  #reclaimNeeded(): number {
    if (this.#reclaimFree === 0) return 0;
    // Fresh scores first: reclaim must rank by what the policies think now.
    this.#rescore();
    const free = this.manager.deviceBlocks - this.manager.usedBlocks('device');
    return Math.max(0, this.#reclaimFree - free);
  }

  #hitScoringInput(): HitScoringInput {
    const m = this.manager.metadata;
    return {
      tier: m.tier,
      committed: m.committed,
      refCount: m.refCount,
      deviceChildren: m.deviceChildren,
      lastAccess: m.lastAccess,
      score: m.score,
      scoreClass: m.scoreClass,
      classScores: this.manager.classScores,
    };
  }

  /**
   * Demotes (or drops, with no host tier) the victims that are still
   * evictable device leaves, except blocks a policy prefetched that no
   * request has used yet: they came up on purpose.
   */
  #reclaim(victims: Int32Array): number {
    const now = this.#hitScoringInput();
    const ids = victims.filter((id) => isDeviceEvictable(now, id) && !this.#prefetched.has(id));
    if (ids.length === 0) return 0;
    return this.manager.hostBlocks > 0 ? this.manager.demote(ids) : this.manager.drop(ids);
  }

  #pin(key: string, leaf: number): boolean {
    if (this.#holds.has(key)) return false;
    const m = this.manager.metadata;
    if (!Number.isInteger(leaf) || leaf < 0 || leaf >= this.manager.numBlockIds || !m.committed[leaf]) return false;
    const chain: bigint[] = [];
    for (let id = leaf; id >= 0; id = m.parent[id]!) chain.push(m.hash[id]!);
    chain.reverse();
    const holdId = this.#nextHold++;
    const held = this.manager.admit(holdId, BigUint64Array.from(chain), chain.length * this.manager.blockSize);
    if (!held) return false;
    this.#holds.set(key, holdId);
    return true;
  }

  #unpin(key: string): boolean {
    const holdId = this.#holds.get(key);
    if (holdId === undefined) return false;
    this.manager.release(holdId);
    this.#holds.delete(key);
    return true;
  }

  /** Why a block has its score: what it is, who used it, and each policy's view. */
  explain(blockId: number): Record<string, unknown> {
    checkInt(blockId, 'explain: blockId', 0, this.manager.numBlockIds - 1);
    const m = this.manager.metadata;
    const tierName = ['free', 'device', 'host'][m.tier[blockId]!] ?? 'unknown';
    const workload = m.workload[blockId]!;
    const agents: string[] = [];
    const mask = m.agentMask[blockId]!;
    for (let a = 0; a < 64; a++) {
      if ((mask >> BigInt(a)) & 1n) agents.push(this.registry.agentName(workload, a) ?? `#${a}`);
    }
    const cls = this.#classes.get(this.#classes.classOf(blockId));
    const policies: Record<string, unknown> = {};
    for (const p of this.#policies) {
      const view = p.explain?.(blockId);
      if (view) policies[p.name] = view;
    }
    return {
      blockId,
      tier: tierName,
      committed: m.committed[blockId] === 1,
      refCount: m.refCount[blockId],
      depth: m.depth[blockId],
      lastAccess: m.lastAccess[blockId],
      accessCount: m.accessCount[blockId],
      workload: workload >= 0 ? (this.registry.workloadName(workload) ?? null) : null,
      session: m.session[blockId]! >= 0 ? (this.registry.sessionName(m.session[blockId]!) ?? null) : null,
      agents: workload >= 0 ? agents : [],
      scoreClass: cls ? { ...cls, agentMask: cls.agentMask.toString(16) } : null,
      score: cls ? this.manager.classScores[cls.id] : m.score[blockId],
      stale: this.#classes.isStale(blockId),
      policies,
    };
  }

  info(): Record<string, unknown> {
    return {
      backend: describeSelection(this.#selection),
      policies: this.#policies.map((p) => p.name),
      scoring: this.#mode,
      device: { used: this.manager.usedBlocks('device'), capacity: this.manager.deviceBlocks, pinned: this.manager.pinnedDeviceBlocks() },
      host: { used: this.manager.usedBlocks('host'), capacity: this.manager.hostBlocks },
      liveClasses: this.#classes.liveClasses,
      liveSessions: [...this.#sessions.values()].filter((s) => s.live).length,
      requests: this.#requests.size,
      holds: this.#holds.size,
    };
  }

  get stats(): RuntimeStats {
    return structuredClone(this.#stats);
  }

  // ------------------------------------------------------------ snapshot

  /** Writes what the policies learned to `path`, atomically. */
  snapshot(path: string): void {
    checkName(path, 'snapshot: path');
    const policies: Record<string, unknown> = {};
    for (const p of this.#policies) {
      if (p.snapshot) policies[p.name] = p.snapshot();
    }
    writeSnapshotAtomically(path, { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, savedAt: new Date().toISOString(), policies });
  }

  /**
   * Restores what the policies learned from `path`. A corrupt or foreign
   * snapshot throws a SnapshotError and leaves the runtime as it was.
   */
  restore(path: string): void {
    checkName(path, 'restore: path');
    const snapshot = readSnapshot(path);
    // Validate every policy's part before applying any, so a bad part
    // leaves no policy half-restored.
    const staged: [Policy, unknown][] = [];
    for (const p of this.#policies) {
      if (p.restore && p.name in snapshot.policies) staged.push([p, snapshot.policies[p.name]]);
    }
    const backups = staged.map(([p]) => p.snapshot?.());
    try {
      for (const [p, state] of staged) p.restore!(state);
    } catch (error) {
      staged.forEach(([p], i) => {
        if (backups[i] !== undefined) p.restore!(backups[i]);
      });
      throw new SnapshotError(`snapshot ${path} was refused: ${(error as Error).message}`);
    }
    this.#invalidateAll();
    this.#rescore();
  }

  // ------------------------------------------------------------ internals

  #request(requestId: number, op: string): RequestState {
    checkRequestId(requestId, op);
    const request = this.#requests.get(requestId);
    if (!request) throw new Error(`${op}: unknown request ${requestId} (never admitted or already released)`);
    return request;
  }

  #tagsOf(request: RequestState): { session?: string; agent?: AgentRef } {
    return request.session && request.agent ? { session: request.session.name, agent: request.agent } : {};
  }

  #emit(event: RuntimeEvent): void {
    for (const p of this.#policies) p.observe?.(event);
  }

  #drainBlockEvents(time: number): void {
    const events = this.manager.takeEvents();
    if (events.kind.length === 0) return;
    for (let i = 0; i < events.kind.length; i++) {
      const kind = events.kind[i]!;
      const id = events.block[i]!;
      if (kind === EventKind.Removed) this.#classes.removed(id);
      if ((kind === EventKind.Removed || kind === EventKind.Demoted) && this.#prefetched.delete(id)) {
        this.#stats.prefetch.wasted++;
      }
    }
    this.#emit({ type: 'blocks', time, events });
  }

  /**
   * Whether the new prompt extends the agent's previous one in the session
   * (undefined when there is none). Blocks of the previous prompt past the
   * shared prefix that only this session and agent used become stale.
   */
  #markPreviousStale(session: SessionState, agent: string, hashes: BigUint64Array): { shared: number; length: number } | undefined {
    const previous = session.lastPrompt.get(agent);
    if (!previous) return undefined;
    let shared = 0;
    while (shared < previous.length && shared < hashes.length && previous[shared] === hashes[shared]) shared++;
    const result = { shared, length: previous.length };
    if (shared >= previous.length || this.#mode !== 'classes') return result;
    const match = this.manager.lookup(previous);
    const m = this.manager.metadata;
    const agentBit = 1n << BigInt(this.registry.agentIndex(session.workload, agent));
    const stale: number[] = [];
    for (let i = shared; i < match.blockIds.length; i++) {
      const id = match.blockIds[i]!;
      if (m.session[id] === session.id && m.agentMask[id] === agentBit && m.refCount[id] === 0) stale.push(id);
    }
    if (stale.length > 0) this.#classes.classify(stale, true);
    return result;
  }

  #invalidateAll(): void {
    for (let c = 0; c < this.manager.maxClasses; c++) if (this.#classes.get(c)) this.#invalidated.add(c);
  }

  /** score: rescores the classes that changed, or the touched blocks. */
  #rescore(touched?: Int32Array): void {
    if (this.#mode === 'classes') {
      for (const c of this.#classes.takeFresh()) this.#invalidated.add(c);
      if (this.#invalidated.size === 0) return;
      const ids: number[] = [];
      for (const c of this.#invalidated) if (this.#classes.get(c)) ids.push(c);
      this.#invalidated.clear();
      if (ids.length === 0) return;
      const classIds = Int32Array.from(ids);
      this.manager.setClassScores(classIds, this.#combine(classIds, (p, out) => p.scoreClasses!(classIds, out)));
    } else if (this.#mode === 'blocks' && touched && touched.length > 0) {
      const m = this.manager.metadata;
      const live = touched.filter((id) => m.committed[id] === 1);
      if (live.length === 0) return;
      this.manager.setScores(live, this.#combine(live, (p, out) => p.scoreBlocks!(live, out)));
    }
  }

  #combine(ids: Int32Array, score: (p: Policy, out: Float32Array) => void): Float32Array {
    if (this.#scorers.length === 1 && this.#weights[0] === 1) {
      const out = new Float32Array(ids.length);
      score(this.#scorers[0]!, out);
      return sanitize(out);
    }
    const total = new Float32Array(ids.length);
    const part = new Float32Array(ids.length);
    this.#scorers.forEach((p, k) => {
      part.fill(0);
      score(p, part);
      const w = this.#weights[k]!;
      for (let i = 0; i < ids.length; i++) total[i]! += w * part[i]!;
    });
    return sanitize(total);
  }

  #context(): PolicyContext {
    const runtime = this;
    return {
      manager: this.manager,
      registry: this.registry,
      scoreClass: (id: number): ScoreClass | undefined => runtime.#classes.get(id),
      classesOfSession: (sessionId: number) => runtime.#classes.ofSession(sessionId),
      classesOfWorkload: (workloadId: number) => runtime.#classes.ofWorkload(workloadId),
      markStale: (blockIds: ArrayLike<number>) => runtime.#classes.classify(blockIds, true),
      invalidate: (classIds: Iterable<number>) => {
        for (const c of classIds) runtime.#invalidated.add(c);
      },
      lastPrompt: (session: string, agent?: string) => {
        const s = runtime.#sessions.get(session);
        if (!s) return undefined;
        return agent === undefined ? s.lastAny : s.lastPrompt.get(agent);
      },
      bytesPerBlock: Math.max(1, this.manager.bytesPerBlock),
      hostToDeviceBytesPerSecond: this.#hostToDevice,
      backend: this.#selection.backend,
    };
  }
}

function resolveBackend(value: RuntimeOptions['backend']): BackendSelection {
  if (value === undefined || value === 'cpu') return selectionOf(cpuBackend(), value === undefined ? 'the default' : 'asked for by name');
  if (typeof value === 'string') {
    throw new RangeError(`backend '${value}' needs an asynchronous selection: use await Runtime.create({backend: '${value}', ...})`);
  }
  if (typeof value === 'object' && value !== null) {
    if ('backend' in value && 'requested' in value) return value;
    if ('survival' in value && 'hitScoring' in value && 'createDataPlane' in value) return selectionOf(value);
  }
  throw new TypeError("backend must be 'cpu', a ComputeBackend or a BackendSelection");
}

function isManager(value: unknown): value is BlockManagerLike {
  return typeof value === 'object' && value !== null && typeof (value as BlockManagerLike).admit === 'function';
}

function resolvePolicy(spec: PolicySpec): Policy {
  if (typeof spec === 'string') return createPolicy(spec);
  if (isPolicyObject(spec)) return spec;
  if (typeof spec === 'object' && spec !== null && typeof spec.name === 'string') {
    return createPolicy(spec.name, (spec as { options?: unknown }).options);
  }
  throw new TypeError('a policy must be a name, {name, options} or a Policy object');
}

/** A Policy implements at least one primitive; {name, options} names a registered one. */
function isPolicyObject(value: unknown): value is Policy {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p.name === 'string' && ['observe', 'scoreClasses', 'scoreBlocks', 'predict', 'act', 'attach'].some((k) => typeof p[k] === 'function');
}

/** Scores must be finite for the core; NaN is a policy bug, so it is loud. */
function sanitize(scores: Float32Array): Float32Array {
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (Number.isNaN(s)) throw new Error('internal: a policy produced a NaN score');
    if (s === Infinity) scores[i] = 3.4e38;
    else if (s === -Infinity) scores[i] = -3.4e38;
  }
  return scores;
}

function liveIds(manager: BlockManagerLike, ids: Int32Array): Int32Array {
  return ids.filter((id) => id >= 0 && id < manager.numBlockIds && manager.metadata.tier[id] !== Tier.Free);
}

/**
 * Deterministic merge: unpins, pins, demotions, evictions, prefetches, each
 * in the order policies gave them; blocks under a pin in the same round are
 * dropped from demotions and evictions (a pin beats an evict), and a block
 * prefetched twice is prefetched once.
 */
export function mergeActions(actions: readonly Action[]): Action[] {
  const order: Action['type'][] = ['unpin', 'pin', 'demote', 'evict', 'prefetch'];
  const pinnedLeaves = new Set(actions.filter((a) => a.type === 'pin').map((a) => (a as { leafBlockId: number }).leafBlockId));
  const seenPrefetch = new Set<number>();
  const out: Action[] = [];
  for (const type of order) {
    for (const a of actions) {
      if (a.type !== type) continue;
      if (a.type === 'demote' || a.type === 'evict') {
        const ids = a.blockIds.filter((id) => !pinnedLeaves.has(id));
        if (ids.length > 0) out.push({ type: a.type, blockIds: ids });
      } else if (a.type === 'prefetch') {
        const ids = a.blockIds.filter((id) => !seenPrefetch.has(id));
        ids.forEach((id) => seenPrefetch.add(id));
        if (ids.length > 0) out.push({ type: 'prefetch', blockIds: ids });
      } else {
        out.push(a);
      }
    }
  }
  return out;
}
