/**
 * CacheSage: learns each workload's agent transition matrix online and uses
 * it for survival-based KV eviction and between-step prefetch
 * (../shared/design/cachesage.md).
 *
 * - observe: session, step and tool events (or, for engine-only
 *   integrations, admits and releases as implicit steps) feed per-workload
 *   transition counts, step and gap timing, session arrival rate, each
 *   agent's continuation rate (its next prompt extends the previous one
 *   whole) and, per depth, how much of its previous prompt the next reuses.
 * - predict: next-agent distribution, P(agent runs within h steps) by
 *   absorbing-state survival, session-alive probability, time to next step.
 * - score (by class): the probability that a class of blocks is reused
 *   within the horizon (for a session's private blocks, times the share of
 *   blocks at that depth the agent's next prompt reuses), times a recompute
 *   cost that grows with depth. Stale chains score zero at once.
 * - act: when a step ends, prefetch the likely next agents' prompt blocks
 *   from host within a byte budget of bandwidth times the expected gap.
 */
import { Tier } from '../../blocks/types.js';
import type {
  Action,
  Policy,
  PolicyContext,
  PredictQuery,
  Prediction,
  RuntimeEvent,
  SurvivalWork,
} from '../types.js';
import type { SurvivalBackend, SurvivalOutput } from '../../compute/survival.js';
import { ReferenceSurvivalBackend } from '../../compute/survival.js';
import { NativeSurvivalBackend } from '../../compute/cpu/survival.js';
import { DurationEstimator } from './timing.js';
import { END, END_INDEX, START, START_INDEX, TransitionModel } from './transitions.js';

export interface CacheSageOptions {
  /** Steps ahead the reuse probability looks (default 8). */
  horizon?: number;
  /** Transition counts' half-life in hand-offs (default 500). */
  halfLife?: number;
  /** Dirichlet prior (default 0.1). */
  alpha?: number;
  /** Recompute a workload's survival table after this many hand-offs (default 16). */
  refreshEvery?: number;
  /** Prefetch agents whose next-step probability is at least this (default 0.1). */
  prefetchThreshold?: number;
  /** Seconds assumed between steps before any gap is observed (default 1). */
  defaultGapSeconds?: number;
  /** A session with no event for this long is treated as ended (default 600 s). */
  idleTimeoutSeconds?: number;
  /**
   * Who computes the survival tables: 'backend' (default) batches the
   * periodic refreshes of every workload onto the runtime's compute backend
   * (runtime.refresh), and computes a workload's first table, or one for a
   * new agent, on the native CPU at once; 'native', 'reference' or a
   * SurvivalBackend compute everything with that, still at refresh points.
   */
  survival?: 'backend' | 'native' | 'reference' | SurvivalBackend;
}

interface WorkloadState {
  name: string;
  id: number;
  model: TransitionModel;
  service: Map<string, DurationEstimator>;
  gap: Map<string, DurationEstimator>;
  /** Per agent: decayed count of calls that extended its previous prompt, and of calls. */
  continuation: Map<string, { extended: number; calls: number }>;
  /**
   * Per agent and depth bucket: the decayed share of the previous prompt's
   * blocks in that bucket that the agent's next prompt in the session
   * reused, and the decayed number of observations.
   */
  prefixReuse: Map<string, PrefixReuse>;
  interArrival: DurationEstimator;
  lastArrival: number | null;
  /** Live sessions per state index (current agent, or START). */
  liveAt: Map<number, number>;
  handoffsSinceRefresh: number;
  table: SurvivalTable | null;
  /** The table is due for a refresh at the next runtime.refresh(). */
  refreshDue: boolean;
  /** The last prompt each agent sent in any session: its shared prefix lives there. */
  lastPrompt: Map<string, BigUint64Array>;
  /** Mean seconds per step (service plus gap), cached until timing changes. */
  stepSeconds: number | null;
  /** Reuse of shared blocks by agent set, until the live mix changes. */
  sharedReach: Map<string, Reuse>;
  /** Live-mix changes since the workload's shared classes were last rescored. */
  sharedChanges: number;
  /** A state gained its first or lost its last live session since then. */
  sharedShifted: boolean;
}

interface SurvivalTable {
  states: number;
  horizon: number;
  /** F_h(a,b) for h = 1..H, [h-1][a][b]. */
  reach: Float32Array;
  alive: Float32Array;
  transitions: Float64Array;
}

interface SessionState {
  name: string;
  id: number;
  workload: WorkloadState;
  live: boolean;
  /** State index of the current agent (START before the first step). */
  state: number;
  agent: string | null;
  inStep: boolean;
  /** The step was opened by an engine admit, not a framework event. */
  implicitStep: boolean;
  stepStartedAt: number;
  stepEndedAt: number | null;
  lastEventAt: number;
}

const CONTINUATION_DECAY = 0.98;
// Depth buckets are floor(log2(depth + 1)): 32 cover any chain.
const DEPTH_BUCKETS = 32;

interface PrefixReuse {
  reused: Float64Array;
  seen: Float64Array;
}

// Below this continuation rate an agent's next prompt usually starts afresh:
// its session context is not worth the transfer.
const PREFETCH_MIN_CONTINUATION = 0.5;
const UNTAGGED_REUSE = 0.5;
// An untagged block is valued like one reused for sure four steps ahead.
const UNTAGGED_VALUE = 0.25;

interface Reuse {
  /** P(reused within the horizon). */
  probability: number;
  /** E[1 / steps until first reuse] within the horizon: what scores rank by. */
  value: number;
  reason: string;
}

/** {@link Reuse} of a private class before its depth share, and what that share needs. */
interface ReuseBeforeDepth extends Reuse {
  /** The class's agents, for a session's private blocks; undefined for others. */
  prefixAgents?: string[];
  prefixReuse?: Map<string, PrefixReuse>;
}

export function createCacheSagePolicy(options: CacheSageOptions = {}): Policy {
  return new CacheSagePolicy(options);
}

class CacheSagePolicy implements Policy {
  readonly name = 'cachesage';
  readonly scoring = 'classes' as const;
  readonly #horizon: number;
  readonly #halfLife: number;
  readonly #alpha: number;
  readonly #refreshEvery: number;
  readonly #threshold: number;
  readonly #defaultGap: number;
  readonly #idleTimeout: number;
  /** Computes first tables synchronously; and refreshes too when the caller pinned a backend. */
  readonly #survival: SurvivalBackend;
  readonly #ownSurvival: boolean;
  #context: PolicyContext | null = null;
  /** Workloads with refreshDue set, in the order they became due. */
  readonly #due = new Set<WorkloadState>();
  readonly #workloads = new Map<string, WorkloadState>();
  readonly #sessions = new Map<string, SessionState>();
  /** Sessions whose step ended since the last act(): prefetch candidates. */
  readonly #pendingPrefetch = new Set<string>();
  #lastIdleSweep = 0;

  constructor(options: CacheSageOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('cachesage: options must be an object');
    this.#horizon = intOption(options.horizon, 8, 1, 256, 'horizon');
    this.#halfLife = options.halfLife ?? 500;
    this.#alpha = options.alpha ?? 0.1;
    this.#refreshEvery = intOption(options.refreshEvery, 16, 1, 1_000_000, 'refreshEvery');
    this.#threshold = numberOption(options.prefetchThreshold, 0.1, 0, 1, 'prefetchThreshold');
    this.#defaultGap = numberOption(options.defaultGapSeconds, 1, 0, 1e6, 'defaultGapSeconds');
    this.#idleTimeout = numberOption(options.idleTimeoutSeconds, 600, 0, 1e9, 'idleTimeoutSeconds');
    const survival = options.survival ?? 'backend';
    this.#ownSurvival = survival !== 'backend';
    if (survival === 'native' || survival === 'backend') this.#survival = new NativeSurvivalBackend();
    else if (survival === 'reference') this.#survival = new ReferenceSurvivalBackend();
    else if (typeof survival === 'object' && survival !== null && typeof survival.compute === 'function') this.#survival = survival;
    else throw new RangeError(`cachesage: options.survival must be 'backend', 'native', 'reference' or a SurvivalBackend`);
    // Validates halfLife and alpha once, with the model's own messages.
    new TransitionModel({ halfLife: this.#halfLife, alpha: this.#alpha });
  }

  attach(context: PolicyContext): void {
    this.#context = context;
  }

  // ------------------------------------------------------------ observe

  observe(event: RuntimeEvent): void {
    switch (event.type) {
      case 'session.start':
        this.#sessionStart(event.session, event.workload, event.time);
        break;
      case 'step.start':
        this.#stepStart(event.session, event.agent.workload, event.agent.agent, event.time, false);
        break;
      case 'step.end':
        this.#stepEnd(event.session, event.time);
        break;
      case 'session.end':
        this.#sessionEnd(event.session, event.time);
        break;
      case 'admit': {
        if (!event.session || !event.agent) break;
        const s = this.#sessions.get(event.session);
        if (!s || !s.live) this.#sessionStart(event.session, event.agent.workload, event.time);
        const session = this.#sessions.get(event.session)!;
        if (!session.inStep || session.agent !== event.agent.agent) {
          this.#stepStart(event.session, event.agent.workload, event.agent.agent, event.time, true);
        }
        const w = session.workload;
        w.lastPrompt.set(event.agent.agent, event.hashes);
        if (event.extendsPrevious !== undefined) {
          const c = w.continuation.get(event.agent.agent) ?? { extended: 0, calls: 0 };
          c.extended = c.extended * CONTINUATION_DECAY + (event.extendsPrevious ? 1 : 0);
          c.calls = c.calls * CONTINUATION_DECAY + 1;
          w.continuation.set(event.agent.agent, c);
        }
        if (event.sharedWithPrevious !== undefined && event.previousBlocks !== undefined) {
          observePrefixReuse(w.prefixReuse, event.agent.agent, event.sharedWithPrevious, event.previousBlocks);
        }
        break;
      }
      case 'release': {
        if (!event.session) break;
        const session = this.#sessions.get(event.session);
        if (session?.implicitStep && session.inStep) this.#stepEnd(event.session, event.time);
        break;
      }
      default:
        break;
    }
  }

  #workload(name: string): WorkloadState {
    let w = this.#workloads.get(name);
    if (!w) this.#workloads.set(name, (w = this.#newWorkload(name)));
    return w;
  }

  #newWorkload(name: string): WorkloadState {
    return {
      name,
      id: this.#context?.registry.workloadId(name) ?? -1,
      model: new TransitionModel({ halfLife: this.#halfLife, alpha: this.#alpha }),
      service: new Map(),
      gap: new Map(),
      continuation: new Map(),
      prefixReuse: new Map(),
      interArrival: new DurationEstimator({ halfLife: 200 }),
      lastArrival: null,
      liveAt: new Map(),
      handoffsSinceRefresh: 0,
      table: null,
      refreshDue: false,
      lastPrompt: new Map(),
      stepSeconds: null,
      sharedReach: new Map(),
      sharedChanges: 0,
      sharedShifted: false,
    };
  }

  #sessionStart(name: string, workload: string, time: number): void {
    const w = this.#workload(workload);
    if (w.lastArrival !== null && time >= w.lastArrival) w.interArrival.observe(time - w.lastArrival);
    w.lastArrival = time;
    const previous = this.#sessions.get(name);
    if (previous?.live) this.#moveLive(previous.workload, previous.state, null);
    const session: SessionState = {
      name,
      id: this.#context?.registry.sessionId(name) ?? -1,
      workload: w,
      live: true,
      state: START_INDEX,
      agent: null,
      inStep: false,
      implicitStep: false,
      stepStartedAt: time,
      stepEndedAt: null,
      lastEventAt: time,
    };
    this.#sessions.set(name, session);
    this.#moveLive(w, null, START_INDEX);
    this.#invalidate(session);
  }

  #stepStart(name: string, workload: string, agent: string, time: number, implicit: boolean): void {
    let session = this.#sessions.get(name);
    if (!session || !session.live) {
      this.#sessionStart(name, workload, time);
      session = this.#sessions.get(name)!;
    }
    const w = session.workload;
    if (session.agent !== null && session.stepEndedAt !== null && time >= session.stepEndedAt) {
      estimator(w.gap, session.agent).observe(time - session.stepEndedAt);
      w.stepSeconds = null;
    }
    w.model.observeHandoff(session.agent ?? START, agent);
    w.handoffsSinceRefresh++;
    const index = w.model.indexOf(agent)!;
    this.#moveLive(w, session.state, index);
    session.state = index;
    session.agent = agent;
    session.inStep = true;
    session.implicitStep = implicit;
    session.stepStartedAt = time;
    session.lastEventAt = time;
    this.#pendingPrefetch.delete(name);
    this.#invalidate(session);
  }

  #stepEnd(name: string, time: number): void {
    const session = this.#sessions.get(name);
    if (!session || !session.inStep || session.agent === null) return;
    if (time >= session.stepStartedAt) {
      estimator(session.workload.service, session.agent).observe(time - session.stepStartedAt);
      session.workload.stepSeconds = null;
    }
    session.inStep = false;
    session.implicitStep = false;
    session.stepEndedAt = time;
    session.lastEventAt = time;
    if (session.live) this.#pendingPrefetch.add(name);
  }

  #sessionEnd(name: string, time: number): void {
    const session = this.#sessions.get(name);
    if (!session || !session.live) return;
    session.workload.model.observeHandoff(session.agent ?? START, END);
    session.workload.handoffsSinceRefresh++;
    session.live = false;
    session.lastEventAt = time;
    this.#moveLive(session.workload, session.state, null);
    this.#pendingPrefetch.delete(name);
    this.#invalidate(session);
  }

  /** Moves one live session of `w` from state `from` to state `to` (null: not live). */
  #moveLive(w: WorkloadState, from: number | null, to: number | null): void {
    if (from !== null) {
      const n = (w.liveAt.get(from) ?? 0) - 1;
      if (n > 0) w.liveAt.set(from, n);
      else {
        w.liveAt.delete(from);
        w.sharedShifted = true;
      }
    }
    if (to !== null) {
      const n = (w.liveAt.get(to) ?? 0) + 1;
      if (n === 1) w.sharedShifted = true;
      w.liveAt.set(to, n);
    }
    w.sharedReach.clear();
    w.sharedChanges++;
  }

  // Shared classes (system prompts, tool schemas) hang on the whole live mix
  // of their workload; one more session moving changes them little, so they
  // are rescored every few changes or when a state gains or loses its only
  // session, not on every step.
  static readonly #SHARED_RESCORE_EVERY = 8;

  #invalidate(session: SessionState): void {
    const ctx = this.#context;
    if (!ctx) return;
    const w = session.workload;
    ctx.invalidate(ctx.classesOfSession(session.id));
    if (w.id >= 0 && (w.sharedShifted || w.sharedChanges >= CacheSagePolicy.#SHARED_RESCORE_EVERY)) {
      ctx.invalidate(ctx.classesOfWorkload(w.id));
      w.sharedChanges = 0;
      w.sharedShifted = false;
    }
    if (w.handoffsSinceRefresh >= this.#refreshEvery && w.table !== null && !w.refreshDue) {
      // The model moved a little: the table is recomputed at the next
      // refresh, batched with other workloads' on the compute backend;
      // scoring keeps the current one until then.
      w.refreshDue = true;
      this.#due.add(w);
    }
  }

  /**
   * The due workloads' tables as one survival batch, padded to one state
   * count with absorbing states (they add exact zeros to every sum, so a
   * workload's table is the same alone or batched).
   */
  pendingWork(): SurvivalWork | null {
    const due = [...this.#due].filter((w) => w.refreshDue);
    this.#due.clear();
    if (due.length === 0) return null;
    const states = Math.max(...due.map((w) => w.model.states));
    const transitions = new Float32Array(due.length * states * states);
    const models = due.map((w, i) => {
      const n = w.model.states;
      const matrix = w.model.transitionMatrix();
      const base = i * states * states;
      for (let a = 0; a < states; a++) {
        for (let b = 0; b < states; b++) {
          transitions[base + a * states + b] = a < n && b < n ? matrix[a * n + b]! : a === b ? 1 : 0;
        }
      }
      return { w, n, matrix };
    });
    const input = {
      workloads: due.length,
      states,
      horizon: this.#horizon,
      transitions,
      endState: new Int32Array(due.length).fill(END_INDEX),
    };
    const apply = (out: SurvivalOutput): void => {
      const H = this.#horizon;
      models.forEach(({ w, n, matrix }, i) => {
        if (!w.refreshDue) return;
        const reach = new Float32Array(H * n * n);
        const alive = new Float32Array(H * n);
        for (let h = 0; h < H; h++) {
          for (let a = 0; a < n; a++) {
            const from = ((i * H + h) * states + a) * states;
            reach.set(out.reach.subarray(from, from + n), (h * n + a) * n);
          }
          alive.set(out.alive.subarray((i * H + h) * states, (i * H + h) * states + n), h * n);
        }
        // The model may have grown a state meanwhile: then the old table
        // stands and the next #table() computes a new one.
        if (w.model.states === n) this.#install(w, { states: n, horizon: H, reach, alive, transitions: matrix });
      });
    };
    return this.#ownSurvival ? { input, apply, compute: (i) => this.#survival.compute(i) } : { input, apply };
  }

  #install(w: WorkloadState, table: SurvivalTable): void {
    w.table = table;
    w.handoffsSinceRefresh = 0;
    w.refreshDue = false;
    w.sharedReach.clear();
    const ctx = this.#context;
    if (ctx && w.id >= 0) {
      // Each session's private classes pick up the new table at that
      // session's next event, which keeps this O(shared classes).
      ctx.invalidate(ctx.classesOfWorkload(w.id));
      w.sharedChanges = 0;
      w.sharedShifted = false;
    }
  }

  // ------------------------------------------------------------ predict

  /**
   * The workload's survival table. Scoring reuses it for up to refreshEvery
   * hand-offs; `fresh` (for predict) recomputes it when anything changed.
   */
  #table(w: WorkloadState, fresh = false): SurvivalTable {
    if (w.table && w.table.states === w.model.states && !(fresh && w.handoffsSinceRefresh > 0)) return w.table;
    // A first table, a new agent's, or predict's fresh one: computed here,
    // on the CPU (one small workload is below any GPU crossover).
    const states = w.model.states;
    const transitions = w.model.transitionMatrix();
    // START has no incoming edges; as a row it is the distribution of first agents.
    const input = {
      workloads: 1,
      states,
      horizon: this.#horizon,
      transitions: Float32Array.from(transitions),
      endState: Int32Array.of(END_INDEX),
    };
    const out = this.#survival.compute(input);
    w.table = { states, horizon: this.#horizon, reach: out.reach, alive: out.alive, transitions };
    w.handoffsSinceRefresh = 0;
    w.refreshDue = false;
    return w.table;
  }

  /** P(some agent of `agents` runs within h steps from state a). */
  #reachAny(table: SurvivalTable, a: number, agents: readonly number[], h = table.horizon): number {
    let none = 1;
    const base = (h - 1) * table.states * table.states + a * table.states;
    for (const b of agents) none *= 1 - table.reach[base + b]!;
    return 1 - none;
  }

  predict(query: PredictQuery): Prediction | null {
    const session = this.#sessions.get(query.session);
    if (!session) return null;
    const w = session.workload;
    const table = this.#table(w, true);
    const h = Math.min(query.horizon ?? this.#horizon, table.horizon);
    const next: Record<string, number> = {};
    const reuseWithin: Record<string, number> = {};
    const a = session.state;
    for (let b = 2; b < table.states; b++) {
      const agent = w.model.agents[b - 2]!;
      next[agent] = table.transitions[a * table.states + b]!;
      reuseWithin[agent] = table.reach[(h - 1) * table.states * table.states + a * table.states + b]!;
    }
    next['<end>'] = table.transitions[a * table.states + END_INDEX]!;
    const alive = session.live ? table.alive[(h - 1) * table.states + a]! : 0;
    return {
      session: session.name,
      workload: w.name,
      currentAgent: session.agent,
      next,
      reuseWithin,
      alive,
      horizon: h,
      secondsToNextStep: this.#secondsToNextStep(session, session.lastEventAt),
    };
  }

  #secondsToNextStep(session: SessionState, now: number): number | null {
    if (!session.live || session.agent === null) return null;
    const w = session.workload;
    const gap = w.gap.get(session.agent)?.mean() ?? this.#defaultGap;
    if (session.inStep) {
      const service = w.service.get(session.agent)?.mean() ?? 0;
      return Math.max(0, service - (now - session.stepStartedAt)) + gap;
    }
    return Math.max(0, gap - (now - (session.stepEndedAt ?? now)));
  }

  // ------------------------------------------------------------ score

  scoreClasses(classIds: Int32Array, out: Float32Array): void {
    // Classes that differ only in depth share a reuse value: compute it once
    // per (workload, session, agents, staleness) in this batch.
    const memo = new Map<string, ReuseBeforeDepth>();
    for (let i = 0; i < classIds.length; i++) out[i] = this.#classScore(classIds[i]!, memo);
  }

  /**
   * Retention score: the expected value of keeping the class's blocks,
   * E[1 / steps until first reuse] over the horizon (reuse next step is
   * worth 1, in h steps 1/h, beyond the horizon 0; MIN's "furthest next use
   * goes first" made probabilistic), times a recompute cost that grows with
   * depth.
   */
  #classScore(classId: number, memo?: Map<string, ReuseBeforeDepth>): number {
    const cls = this.#context?.scoreClass(classId);
    const depthCost = 1 + 0.05 * (cls?.depthBucket ?? 0);
    if (!cls || !memo) return this.#reuse(classId).value * depthCost;
    const key = `${cls.workload}:${cls.session}:${cls.agentMask}:${cls.stale}`;
    let base = memo.get(key);
    if (base === undefined) memo.set(key, (base = this.#reuseBeforeDepth(classId)));
    return base.value * this.#depthShare(base, cls.depthBucket) * depthCost;
  }

  /** Reuse of a class within the horizon: probability, discounted value, and why. */
  #reuse(classId: number): Reuse {
    const base = this.#reuseBeforeDepth(classId);
    if (base.prefixAgents === undefined) return base;
    const share = this.#depthShare(base, this.#context?.scoreClass(classId)?.depthBucket ?? 0);
    return {
      probability: base.probability * share,
      value: base.value * share,
      reason: `${base.reason}, prefix reuse at this depth ${share.toFixed(2)}`,
    };
  }

  /**
   * For a session's private blocks: how likely the agent's next prompt still
   * holds blocks this deep (the best of the class's agents). 1 otherwise.
   */
  #depthShare(base: ReuseBeforeDepth, depthBucket: number): number {
    if (base.prefixAgents === undefined) return 1;
    let share = 0;
    for (const agent of base.prefixAgents) share = Math.max(share, prefixReuseAt(base.prefixReuse!.get(agent), depthBucket));
    return share;
  }

  /**
   * Reuse of a class within the horizon, before the depth share of private
   * blocks: what every depth of one (workload, session, agents) has in
   * common, so scoring computes it once per batch.
   */
  #reuseBeforeDepth(classId: number): ReuseBeforeDepth {
    const ctx = this.#context;
    const cls = ctx?.scoreClass(classId);
    if (!ctx || !cls) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'unknown class' };
    if (cls.stale) return { probability: 0, value: 0, reason: 'stale: its agent moved past this chain' };
    if (cls.workload < 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'untagged: recency decides' };
    const workloadName = ctx.registry.workloadName(cls.workload);
    const w = workloadName === undefined ? undefined : this.#workloads.get(workloadName);
    if (!w) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'workload not seen yet' };
    const table = this.#table(w);
    const agents: number[] = [];
    for (const bit of cls.agents) {
      const name = ctx.registry.agentName(cls.workload, bit);
      const index = name === undefined ? undefined : w.model.indexOf(name);
      if (index !== undefined) agents.push(index);
    }
    if (agents.length === 0) return { probability: UNTAGGED_REUSE, value: UNTAGGED_VALUE, reason: 'agents not seen yet' };
    const H = table.horizon;
    if (cls.session >= 0) {
      const sessionName = ctx.registry.sessionName(cls.session);
      const session = sessionName === undefined ? undefined : this.#sessions.get(sessionName);
      if (!session || !session.live) return { probability: 0, value: 0, reason: 'private to an ended session' };
      let value = 0;
      let previous = 0;
      for (let h = 1; h <= H; h++) {
        const reach = this.#reachAny(table, session.state, agents, h);
        value += (reach - previous) / h;
        previous = reach;
      }
      return {
        probability: previous,
        value,
        reason: `private: reuse in its session within ${H} steps`,
        prefixAgents: agents.map((b) => w.model.agents[b - 2]!),
        prefixReuse: w.prefixReuse,
      };
    }
    // Shared across sessions: the first of the live sessions, or a new one,
    // to reach these agents.
    const key = agents.join(',');
    let shared = w.sharedReach.get(key);
    if (shared === undefined) {
      const arrivalsPerSecond = 1 / Math.max(1e-6, w.interArrival.mean() ?? Infinity);
      const newPerStep = arrivalsPerSecond * this.#meanStepSeconds(w);
      let value = 0;
      let previous = 0;
      for (let h = 1; h <= H; h++) {
        let none = 1;
        for (const [state, count] of w.liveAt) none *= (1 - this.#reachAny(table, state, agents, h)) ** count;
        none *= Math.exp(-newPerStep * h * this.#reachAny(table, START_INDEX, agents, h));
        const reach = 1 - none;
        value += (reach - previous) / h;
        previous = reach;
      }
      shared = { probability: previous, value, reason: `shared: the first live or new session to reach its agents within ${H} steps` };
      w.sharedReach.set(key, shared);
    }
    return shared;
  }

  #continuation(w: WorkloadState, agent: string): number {
    const c = w.continuation.get(agent);
    // Unknown until an agent calls twice in a session: assume it extends.
    if (!c || c.calls < 1) return 1;
    return c.extended / c.calls;
  }

  #meanStepSeconds(w: WorkloadState): number {
    if (w.stepSeconds !== null) return w.stepSeconds;
    let total = 0;
    let n = 0;
    for (const [agent, service] of w.service) {
      total += (service.mean() ?? 0) + (w.gap.get(agent)?.mean() ?? this.#defaultGap);
      n++;
    }
    w.stepSeconds = n > 0 ? total / n : this.#defaultGap;
    return w.stepSeconds;
  }

  // ------------------------------------------------------------ act

  act(now: number): Action[] {
    const ctx = this.#context;
    if (!ctx) return [];
    this.#expireIdle(now);
    const actions: Action[] = [];
    if (ctx.manager.hostBlocks === 0) {
      // Nothing can come back from a host tier that does not exist.
      this.#pendingPrefetch.clear();
      return actions;
    }
    for (const name of this.#pendingPrefetch) {
      const session = this.#sessions.get(name);
      if (!session || !session.live || session.inStep || session.agent === null) continue;
      const ids = this.#prefetchPlan(session);
      if (ids.length > 0) actions.push({ type: 'prefetch', blockIds: Int32Array.from(ids) });
    }
    this.#pendingPrefetch.clear();
    return actions;
  }

  /** Host blocks of the likely next agents' prompts, parents first, within the byte budget. */
  #prefetchPlan(session: SessionState): number[] {
    const ctx = this.#context!;
    const w = session.workload;
    const table = this.#table(w);
    const gap = w.gap.get(session.agent!)?.mean() ?? this.#defaultGap;
    const budget = Math.floor((ctx.hostToDeviceBytesPerSecond * gap) / ctx.bytesPerBlock);
    if (budget <= 0) return [];
    const candidates: [number, string][] = [];
    for (let b = 2; b < table.states; b++) {
      const p = table.transitions[session.state * table.states + b]!;
      if (p >= this.#threshold) candidates.push([p, w.model.agents[b - 2]!]);
    }
    candidates.sort((x, y) => y[0] - x[0] || (x[1] < y[1] ? -1 : 1));
    const chosen: number[] = [];
    const seen = new Set<number>();
    const m = ctx.manager.metadata;
    for (const [, agent] of candidates) {
      // The agent's shared prefix (system prompt, tool schemas), found in
      // its last prompt from any session: only the blocks several sessions
      // share, not that session's own history.
      const sources: [BigUint64Array | undefined, boolean][] = [[w.lastPrompt.get(agent), true]];
      // This session's context, only for agents that learned to extend it
      // (a fresh conversation per phase would leave it unused).
      if (this.#continuation(w, agent) >= PREFETCH_MIN_CONTINUATION) {
        sources.push([ctx.lastPrompt(session.name), false], [ctx.lastPrompt(session.name, agent), false]);
      }
      for (const [hashes, sharedOnly] of sources) {
        if (!hashes || hashes.length === 0) continue;
        const match = ctx.manager.lookup(hashes);
        for (let i = match.deviceBlocks; i < match.blockIds.length && chosen.length < budget; i++) {
          const id = match.blockIds[i]!;
          // Parents come first: stop at the first block this source may not take.
          if (sharedOnly && m.session[id] !== -1) break;
          if (seen.has(id) || m.tier[id] !== Tier.Host) continue;
          seen.add(id);
          chosen.push(id);
        }
      }
      if (chosen.length >= budget) break;
    }
    return chosen;
  }

  #expireIdle(now: number): void {
    // A sweep over every session is O(sessions): run it a few times per timeout, not per call.
    if (now - this.#lastIdleSweep < this.#idleTimeout / 8) return;
    this.#lastIdleSweep = now;
    for (const session of this.#sessions.values()) {
      if (session.live && now - session.lastEventAt > this.#idleTimeout) this.#sessionEnd(session.name, now);
    }
  }

  // ------------------------------------------------------------ explain, snapshot

  explain(blockId: number): Record<string, unknown> | null {
    const ctx = this.#context;
    if (!ctx) return null;
    const m = ctx.manager.metadata;
    if (blockId < 0 || blockId >= ctx.manager.numBlockIds || m.tier[blockId] === Tier.Free) return null;
    const cls = ctx.scoreClass(m.scoreClass[blockId]!);
    if (!cls) return { reason: 'not classified (uncommitted or untracked)' };
    const { probability, value, reason } = this.#reuse(cls.id);
    const sessionName = cls.session >= 0 ? ctx.registry.sessionName(cls.session) : undefined;
    const session = sessionName === undefined ? undefined : this.#sessions.get(sessionName);
    return {
      reuseProbability: probability,
      reuseValue: value,
      horizon: this.#horizon,
      reason,
      score: this.#classScore(cls.id),
      sessionLive: session?.live ?? null,
      currentAgent: session?.agent ?? null,
    };
  }

  snapshot(): unknown {
    const workloads: Record<string, unknown> = {};
    for (const w of this.#workloads.values()) {
      workloads[w.name] = {
        model: w.model.toJSON(),
        service: Object.fromEntries([...w.service].map(([a, e]) => [a, e.toJSON()])),
        gap: Object.fromEntries([...w.gap].map(([a, e]) => [a, e.toJSON()])),
        continuation: Object.fromEntries(w.continuation),
        prefixReuse: Object.fromEntries(
          [...w.prefixReuse].map(([agent, r]) => [agent, { reused: Array.from(r.reused), seen: Array.from(r.seen) }]),
        ),
        interArrival: w.interArrival.toJSON(),
      };
    }
    return { workloads };
  }

  restore(state: unknown): void {
    if (typeof state !== 'object' || state === null || typeof (state as { workloads?: unknown }).workloads !== 'object') {
      throw new TypeError('cachesage snapshot must be {workloads: {...}}');
    }
    const parsed = new Map<string, WorkloadState>();
    for (const [name, raw] of Object.entries((state as { workloads: Record<string, unknown> }).workloads)) {
      if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: workload ${name} is not an object`);
      const r = raw as Record<string, unknown>;
      const w = this.#newWorkload(name);
      w.model = TransitionModel.fromJSON(r.model);
      w.service = estimators(r.service, `${name}.service`);
      w.gap = estimators(r.gap, `${name}.gap`);
      w.continuation = continuationOf(r.continuation, name);
      if (r.prefixReuse !== undefined) w.prefixReuse = prefixReuseOf(r.prefixReuse, name);
      w.interArrival = DurationEstimator.fromJSON(r.interArrival);
      parsed.set(name, w);
    }
    // Everything parsed: replace what was learned, keeping live sessions' places.
    for (const [name, w] of parsed) {
      const old = this.#workloads.get(name);
      if (old) {
        w.liveAt = old.liveAt;
        w.lastPrompt = old.lastPrompt;
        w.lastArrival = old.lastArrival;
        for (const s of this.#sessions.values()) if (s.workload === old) s.workload = w;
      }
      this.#workloads.set(name, w);
    }
  }
}

function estimator(map: Map<string, DurationEstimator>, agent: string): DurationEstimator {
  let e = map.get(agent);
  if (!e) map.set(agent, (e = new DurationEstimator({ halfLife: 200 })));
  return e;
}

function estimators(raw: unknown, what: string): Map<string, DurationEstimator> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${what} is not an object`);
  return new Map(Object.entries(raw).map(([a, e]) => [a, DurationEstimator.fromJSON(e)]));
}

/**
 * Records that an agent's new prompt shared its first `shared` blocks with
 * its previous one of `previous` blocks: per depth bucket the previous
 * prompt reached, the share of that bucket's blocks reused.
 */
function observePrefixReuse(map: Map<string, PrefixReuse>, agent: string, shared: number, previous: number): void {
  let r = map.get(agent);
  if (!r) map.set(agent, (r = { reused: new Float64Array(DEPTH_BUCKETS), seen: new Float64Array(DEPTH_BUCKETS) }));
  for (let k = 0; k < DEPTH_BUCKETS; k++) {
    const low = 2 ** k - 1;
    if (low >= previous) break;
    const high = Math.min(2 ** (k + 1) - 1, previous);
    const reused = Math.min(Math.max(Math.min(shared, high) - low, 0), high - low);
    r.reused[k] = r.reused[k]! * CONTINUATION_DECAY + reused / (high - low);
    r.seen[k] = r.seen[k]! * CONTINUATION_DECAY + 1;
  }
}

/**
 * The expected share of an agent's blocks at depth bucket `bucket` that its
 * next prompt in the session reuses. Unknown depths take the deepest known
 * bucket below them; an agent with no second prompt yet is
 * assumed to extend (1).
 */
function prefixReuseAt(r: PrefixReuse | undefined, bucket: number): number {
  if (!r) return 1;
  for (let k = Math.min(bucket, DEPTH_BUCKETS - 1); k >= 0; k--) {
    if (r.seen[k]! >= 1) return r.reused[k]! / r.seen[k]!;
  }
  return 1;
}

function prefixReuseOf(raw: unknown, name: string): Map<string, PrefixReuse> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.prefixReuse is not an object`);
  const out = new Map<string, PrefixReuse>();
  for (const [agent, value] of Object.entries(raw)) {
    const v = value as { reused?: unknown; seen?: unknown };
    const arrays = [v?.reused, v?.seen];
    if (
      !arrays.every((a) => Array.isArray(a) && a.length === DEPTH_BUCKETS && a.every((x) => typeof x === 'number' && x >= 0 && Number.isFinite(x))) ||
      !(v.reused as number[]).every((x, k) => x <= (v.seen as number[])[k]! + 1e-9)
    ) {
      throw new RangeError(`cachesage snapshot: ${name}.prefixReuse.${agent} is not {reused <= seen, ${DEPTH_BUCKETS} each}`);
    }
    out.set(agent, { reused: Float64Array.from(v.reused as number[]), seen: Float64Array.from(v.seen as number[]) });
  }
  return out;
}

function continuationOf(raw: unknown, name: string): Map<string, { extended: number; calls: number }> {
  if (typeof raw !== 'object' || raw === null) throw new TypeError(`cachesage snapshot: ${name}.continuation is not an object`);
  const out = new Map<string, { extended: number; calls: number }>();
  for (const [agent, value] of Object.entries(raw)) {
    const v = value as { extended?: unknown; calls?: unknown };
    if (typeof v?.extended !== 'number' || typeof v.calls !== 'number' || !(v.extended >= 0) || !(v.calls >= v.extended)) {
      throw new RangeError(`cachesage snapshot: ${name}.continuation.${agent} is not {extended <= calls}`);
    }
    out.set(agent, { extended: v.extended, calls: v.calls });
  }
  return out;
}

function intOption(value: unknown, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`cachesage: options.${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function numberOption(value: unknown, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`cachesage: options.${name} must be a number in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
