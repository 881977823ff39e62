/**
 * CacheSage: learns each workload's agent transition matrix online and uses
 * it for survival-based KV eviction and between-step prefetch
 * (../shared/design/cachesage.md).
 *
 * - observe: the runtime's session model (session and step events, engine
 *   calls' implicit steps included) feeds per-workload transition counts,
 *   step and gap timing, session arrival rate, each agent's continuation
 *   rate (its next prompt extends the previous one whole) and, per depth,
 *   how much of its previous prompt the next reuses (workload.ts,
 *   prefix_reuse.ts), and how often it restarts its conversation (so a
 *   finished call past its reused prefix is marked dead at release). New
 *   agents of a workload with many share one pooled state until they recur
 *   in a second session (workload.ts, RARE_AGENT).
 * - predict: next-agent distribution, P(agent runs within h steps) by
 *   absorbing-state survival (tables.ts), session-alive probability, time
 *   to next step.
 * - cross-session reuse (cross_session.ts): how often other sessions read
 *   the blocks one session wrote, and how often a shared block gets yet
 *   another reader, so a document several sessions ask about is kept past
 *   its first session, and dropped after its last usual reader; blocks
 *   kept only for such reads that nobody read for far longer than such
 *   reads wait go first (aging.ts).
 * - score (by class): retention.ts.
 * - act: prefetch.ts.
 *
 * CacheSage keeps no session records: it reads the runtime's. What it adds
 * is its model's view: live sessions per model state (to value shared
 * blocks), and sessions it ended for idleness.
 */
import { soleUnpinnedBlocks } from '../../blocks/sole_blocks.js';
import { Tier } from '../../blocks/types.js';
import { sharedPrefixLength, wordsOf } from '../../util/words.js';
import type { Action, Policy, PolicyContext, PredictQuery, Prediction, RuntimeEvent, SessionView, StepOrigin, SurvivalWork } from '../types.js';
import { settingsOf, type CacheSageOptions, type Settings } from './options.js';
import { prefetchPlan } from './prefetch.js';
import { DEAD_BELOW, ReadAging } from './aging.js';
import { CrossSessionTracker, depthBucketOf, nextReaderRateAt } from './cross_session.js';
import { observePrefixReuse } from './prefix_reuse.js';
import { classScore, reuseOf, scoreClasses } from './retention.js';
import { restoreFrom, snapshotOf } from './snapshot.js';
import { pendingSurvivalWork, tableOf } from './tables.js';
import { END, END_INDEX, START, START_INDEX } from './transitions.js';
import type { TransitionSnapshot } from './transitions.js';
import {
  commonPrefixOf,
  CONTINUATION_DECAY,
  estimator,
  isLive,
  modelAgent,
  moveLive,
  noteAgentSession,
  observeCommonPrefix,
  RARE_AGENT,
  RARE_AGENT_LABEL,
  stateOf,
  workloadOf,
  type CacheSageState,
} from './workload.js';

export type { CacheSageOptions } from './options.js';

/**
 * Shared learning across replicas (src/remote/transition_exchange.ts):
 * what a replica publishes of its model, and how it takes in the others'.
 */
export interface TransitionSharing {
  /** This replica's own transition counts per workload it has seen hand-offs in. */
  exportTransitions(): Record<string, TransitionSnapshot>;
  /**
   * Replaces a workload's counts from other replicas (TransitionModel.setPeerCounts),
   * creating the workload when this replica has not served it.
   */
  mergePeerTransitions(workload: string, peers: readonly unknown[]): void;
}

/** Whether a policy takes part in shared learning (CacheSage does). */
export function sharesTransitions(policy: unknown): policy is Policy & TransitionSharing {
  const p = policy as Partial<TransitionSharing> | null;
  return typeof p?.exportTransitions === 'function' && typeof p.mergePeerTransitions === 'function';
}

export function createCacheSagePolicy(options: CacheSageOptions = {}): Policy {
  return new CacheSagePolicy(settingsOf(options));
}

// Shared classes (system prompts, tool schemas) hang on the whole live mix
// of their workload; one more session moving changes them little, so they
// are rescored every few changes or when a state gains or loses its only
// session, not on every step.
const SHARED_RESCORE_EVERY = 8;

// An agent whose calls restart (reuse under half of their previous prompt)
// at least this often, over at least this many calls, is taken to start
// afresh at its next call. (Extending the previous prompt whole is a weaker
// signal: a ReAct scratchpad re-sends the reply under another role, so it
// never extends whole, yet reuses all but the reply.)
const DEAD_ABOVE_RESTARTS = 0.9;
// Counts decay (three calls weigh 2.94): this is "three calls".
const DEAD_AFTER_CALLS = 2.5;

/** A step's origin when the model starts the session afresh. */
const FRESH: StepOrigin = { agent: null, inStep: false, stepEndedAt: null };

class CacheSagePolicy implements Policy, TransitionSharing {
  readonly name = 'cachesage';
  readonly scoring = 'classes' as const;
  readonly #state: CacheSageState;
  /** Sessions whose step ended since the last act(): prefetch candidates. */
  readonly #pendingPrefetch = new Set<string>();
  #lastIdleSweep = 0;
  /** Blocks kept for other sessions' reads that nobody read for too long go first (aging.ts). */
  readonly #aging = new ReadAging();

  constructor(settings: Settings) {
    this.#state = { settings, context: null, workloads: new Map(), due: new Set(), expired: new Set(), reusedPrefix: new Map(), sessionSteps: new Map(), crossSession: null };
  }

  attach(context: PolicyContext): void {
    this.#state.context = context;
    // Blocks remembered: several times what the cache holds, so a read after the cache lost a block still counts.
    this.#state.crossSession = new CrossSessionTracker(4 * context.manager.numBlockIds);
  }

  // ------------------------------------------------------------ observe

  observe(event: RuntimeEvent): void {
    const ctx = this.#state.context;
    if (!ctx) return;
    switch (event.type) {
      case 'session.start':
        this.#sessionStart(ctx.session(event.session)!, event.time);
        break;
      case 'step.start':
        this.#stepStart(ctx.session(event.session)!, event.previous, event.time);
        break;
      case 'step.end':
        this.#stepEnd(ctx.session(event.session)!, event.time);
        break;
      case 'session.end':
        this.#sessionEnd(ctx.session(event.session)!, event.time, false);
        break;
      case 'admit': {
        if (!event.session || !event.agent) break;
        const session = ctx.session(event.session)!;
        // Ended for idleness while its step still runs: the call starts it again.
        if (!isLive(this.#state, session)) this.#stepStart(session, FRESH, event.time);
        const w = workloadOf(this.#state, session.workload);
        // Learned per model agent: a rare agent's calls teach the pooled state.
        const agent = modelAgent(w, event.agent.agent);
        const before = w.lastPrompt.get(agent);
        if (before !== undefined && w.lastPromptSession.get(agent) !== session.id) {
          observeCommonPrefix(w, agent, sharedPrefixLength(before, event.hashes));
        }
        w.lastPrompt.set(agent, event.hashes);
        w.lastPromptSession.set(agent, session.id);
        this.#state.crossSession?.admitted(event.hashes, session.id, event.time);
        this.#aging.admitted(this.#state, ctx, event.time);
        if (event.extendsPrevious !== undefined) {
          const c = w.continuation.get(agent) ?? { extended: 0, calls: 0 };
          c.extended = c.extended * CONTINUATION_DECAY + (event.extendsPrevious ? 1 : 0);
          c.calls = c.calls * CONTINUATION_DECAY + 1;
          w.continuation.set(agent, c);
        }
        if (event.sharedWithPrevious !== undefined && event.previousBlocks !== undefined) {
          observePrefixReuse(w.prefixReuse, agent, event.sharedWithPrevious, event.previousBlocks);
          const r = w.restarts.get(agent) ?? { restarted: 0, calls: 0 };
          r.restarted = r.restarted * CONTINUATION_DECAY + (2 * event.sharedWithPrevious < event.previousBlocks ? 1 : 0);
          r.calls = r.calls * CONTINUATION_DECAY + 1;
          w.restarts.set(agent, r);
          let reused = this.#state.reusedPrefix.get(session.id);
          if (!reused) this.#state.reusedPrefix.set(session.id, (reused = new Map()));
          reused.set(event.agent.agent, Math.max(reused.get(event.agent.agent) ?? 0, event.sharedWithPrevious));
        }
        break;
      }
      case 'release': {
        if (!event.session || !event.agent) break;
        const session = ctx.session(event.session)!;
        const w = workloadOf(this.#state, session.workload);
        this.#state.crossSession?.released(ctx.manager.metadata, event.blockIds, session.id, w.name, modelAgent(w, event.agent.agent), event.time);
        this.#markPredictedDead(ctx, session, event.agent.agent, event.blockIds);
        this.#markSharedDead(ctx, event.blockIds, commonPrefixOf(w, modelAgent(w, event.agent.agent)));
        break;
      }
      default:
        break;
    }
  }

  /**
   * An agent that starts a fresh conversation at almost every call (a new
   * phase per call) reuses of its finished prompt and reply only the prefix
   * its earlier calls in the session reused (its system prompt): the rest is
   * dead now, not when its next call proves it, so it goes first, as stale
   * chains do. Only blocks of this session and agent alone are marked.
   */
  #markPredictedDead(ctx: PolicyContext, session: SessionView, agent: string, blockIds: Int32Array): void {
    const w = workloadOf(this.#state, session.workload);
    const r = w.restarts.get(modelAgent(w, agent));
    if (!r || r.calls < DEAD_AFTER_CALLS || r.restarted / r.calls < DEAD_ABOVE_RESTARTS) return;
    const keep = this.#state.reusedPrefix.get(session.id)?.get(agent);
    if (keep === undefined || keep >= blockIds.length) return;
    const dead = soleUnpinnedBlocks(ctx.manager.metadata, blockIds, keep, session.id, ctx.registry.agentIndex(session.workload, agent));
    if (dead.length > 0) ctx.markStale(dead);
  }

  /**
   * Shared blocks read by as many sessions as such blocks usually get (a
   * document's last question asked) are rarely read again: they go
   * first, as stale chains do, instead of holding the value of the blocks
   * every session reads. A later read makes them live again. The agent's
   * common prefix (`common` leading blocks, its system prompt) is never
   * marked: every session reads it.
   */
  #markSharedDead(ctx: PolicyContext, blockIds: Int32Array, common: number): void {
    const tracker = this.#state.crossSession;
    if (!tracker) return;
    const m = ctx.manager.metadata;
    const words = wordsOf(m.hash);
    const dead: number[] = [];
    for (let i = 0; i < blockIds.length; i++) {
      const id = blockIds[i]!;
      if (!m.committed[id] || m.session[id] !== -1 || m.refCount[id] !== 0 || m.depth[id]! < common) continue;
      const known = tracker.find(words[2 * id]!, words[2 * id + 1]!);
      if (known < 0) continue;
      const readers = tracker.readersAt(known);
      if (readers < 2) continue;
      const rate = nextReaderRateAt(tracker.statsAt(known), readers, depthBucketOf(m.depth[id]!));
      if (rate !== undefined && rate < DEAD_BELOW) dead.push(id);
    }
    if (dead.length > 0) ctx.markStale(dead);
  }

  #sessionStart(session: SessionView, time: number): void {
    const w = workloadOf(this.#state, session.workload);
    if (w.lastArrival !== null && time >= w.lastArrival) w.interArrival.observe(time - w.lastArrival);
    w.lastArrival = time;
    this.#state.expired.delete(session.id);
    moveLive(w, null, START_INDEX);
    this.#invalidate(session);
  }

  /** `session` has moved to the step's agent already; `previous` is where it came from. */
  #stepStart(session: SessionView, previous: StepOrigin, time: number): void {
    let from = previous;
    if (!isLive(this.#state, session)) {
      this.#sessionStart(session, time);
      from = FRESH;
    }
    const w = workloadOf(this.#state, session.workload);
    noteAgentSession(w, session.agent!, session.id);
    let steps = this.#state.sessionSteps.get(session.id);
    if (!steps) this.#state.sessionSteps.set(session.id, (steps = { total: 0, byAgent: new Map() }));
    steps.total++;
    steps.byAgent.set(session.agent!, (steps.byAgent.get(session.agent!) ?? 0) + 1);
    const agent = modelAgent(w, session.agent!);
    const fromAgent = from.agent === null ? null : modelAgent(w, from.agent);
    if (fromAgent !== null && from.stepEndedAt !== null && time >= from.stepEndedAt) {
      estimator(w.gap, fromAgent).observe(time - from.stepEndedAt);
      w.stepSeconds = null;
    }
    const fromState = fromAgent === null ? START_INDEX : (w.model.indexOf(fromAgent) ?? START_INDEX);
    w.model.observeHandoff(fromAgent ?? START, agent);
    w.handoffsSinceRefresh++;
    moveLive(w, fromState, w.model.indexOf(agent)!);
    this.#pendingPrefetch.delete(session.name);
    this.#invalidate(session);
  }

  #stepEnd(session: SessionView, time: number): void {
    const w = workloadOf(this.#state, session.workload);
    if (time >= session.stepStartedAt) {
      estimator(w.service, modelAgent(w, session.agent!)).observe(time - session.stepStartedAt);
      w.stepSeconds = null;
    }
    if (isLive(this.#state, session)) this.#pendingPrefetch.add(session.name);
  }

  /** The session ended (in the runtime, or for the model after `idle`). */
  #sessionEnd(session: SessionView, time: number, idle: boolean): void {
    void time;
    const expired = this.#state.expired;
    // Ended for idleness earlier: the model has seen its end already.
    if (!idle && expired.delete(session.id)) return;
    const w = workloadOf(this.#state, session.workload);
    w.model.observeHandoff(session.agent === null ? START : modelAgent(w, session.agent), END);
    w.handoffsSinceRefresh++;
    moveLive(w, stateOf(w, session), null);
    if (idle) expired.add(session.id);
    else {
      this.#state.reusedPrefix.delete(session.id);
      this.#state.sessionSteps.delete(session.id);
    }
    this.#pendingPrefetch.delete(session.name);
    this.#invalidate(session);
  }

  #invalidate(session: SessionView): void {
    const state = this.#state;
    const ctx = state.context;
    if (!ctx) return;
    const w = workloadOf(state, session.workload);
    ctx.invalidate(ctx.classesOfSession(session.id));
    if (w.id >= 0 && (w.sharedShifted || w.sharedChanges >= SHARED_RESCORE_EVERY)) {
      ctx.invalidate(ctx.classesOfWorkload(w.id));
      w.sharedChanges = 0;
      w.sharedShifted = false;
    }
    if (w.handoffsSinceRefresh >= state.settings.refreshEvery && w.table !== null && !w.refreshDue) {
      // The model moved a little: the table is recomputed at the next
      // refresh, batched with other workloads' on the compute backend;
      // scoring keeps the current one until then.
      w.refreshDue = true;
      state.due.add(w);
    }
  }

  pendingWork(): SurvivalWork | null {
    return pendingSurvivalWork(this.#state);
  }

  // ------------------------------------------------------------ predict

  predict(query: PredictQuery): Prediction | null {
    const state = this.#state;
    const session = state.context?.session(query.session);
    if (!session) return null;
    const w = workloadOf(state, session.workload);
    const table = tableOf(state, w, true);
    const h = Math.min(query.horizon ?? state.settings.horizon, table.horizon);
    const next: Record<string, number> = {};
    const reuseWithin: Record<string, number> = {};
    const a = stateOf(w, session);
    for (let b = 2; b < table.states; b++) {
      const name = w.model.agents[b - 2]!;
      const agent = name === RARE_AGENT ? RARE_AGENT_LABEL : name;
      next[agent] = table.transitions[a * table.states + b]!;
      reuseWithin[agent] = table.reach[(h - 1) * table.states * table.states + a * table.states + b]!;
    }
    next['<end>'] = table.transitions[a * table.states + END_INDEX]!;
    const live = isLive(state, session);
    const alive = live ? table.alive[(h - 1) * table.states + a]! : 0;
    return {
      session: session.name,
      workload: w.name,
      currentAgent: session.agent,
      next,
      reuseWithin,
      alive,
      horizon: h,
      secondsToNextStep: live ? this.#secondsToNextStep(session, session.lastEventAt) : null,
    };
  }

  #secondsToNextStep(session: SessionView, now: number): number | null {
    if (session.agent === null) return null;
    const w = workloadOf(this.#state, session.workload);
    const agent = modelAgent(w, session.agent);
    const gap = w.gap.get(agent)?.mean() ?? this.#state.settings.defaultGapSeconds;
    if (session.inStep) {
      const service = w.service.get(agent)?.mean() ?? 0;
      return Math.max(0, service - (now - session.stepStartedAt)) + gap;
    }
    return Math.max(0, gap - (now - (session.stepEndedAt ?? now)));
  }

  // ------------------------------------------------------------ score

  scoreClasses(classIds: Int32Array, out: Float32Array): void {
    scoreClasses(this.#state, classIds, out);
  }

  // ------------------------------------------------------------ act

  act(now: number): Action[] {
    const ctx = this.#state.context;
    if (!ctx) return [];
    this.#expireIdle(ctx, now);
    const actions: Action[] = [];
    if (ctx.manager.hostBlocks === 0) {
      // Nothing can come back from a host tier that does not exist.
      this.#pendingPrefetch.clear();
      return actions;
    }
    for (const name of this.#pendingPrefetch) {
      const session = ctx.session(name);
      if (!session || !isLive(this.#state, session) || session.inStep || session.agent === null) continue;
      const ids = prefetchPlan(this.#state, session);
      if (ids.length > 0) actions.push({ type: 'prefetch', blockIds: Int32Array.from(ids) });
    }
    this.#pendingPrefetch.clear();
    return actions;
  }

  #expireIdle(ctx: PolicyContext, now: number): void {
    const timeout = this.#state.settings.idleTimeoutSeconds;
    // A sweep over every session is O(sessions): run it a few times per timeout, not per call.
    if (now - this.#lastIdleSweep < timeout / 8) return;
    this.#lastIdleSweep = now;
    for (const session of ctx.sessions()) {
      if (isLive(this.#state, session) && now - session.lastEventAt > timeout) this.#sessionEnd(session, now, true);
    }
  }

  // ------------------------------------------------------------ shared learning

  exportTransitions(): Record<string, TransitionSnapshot> {
    const out: Record<string, TransitionSnapshot> = {};
    for (const w of this.#state.workloads.values()) if (w.model.handoffs > 0) out[w.name] = w.model.toJSON();
    return out;
  }

  mergePeerTransitions(workload: string, peers: readonly unknown[]): void {
    if (typeof workload !== 'string' || workload.length === 0) {
      throw new TypeError('cachesage mergePeerTransitions: workload must be a non-empty string');
    }
    const w = workloadOf(this.#state, workload);
    w.model.setPeerCounts(peers);
    // The survival table and the scores built on it no longer match the model.
    w.table = null;
    const ctx = this.#state.context;
    if (ctx && w.id >= 0) ctx.invalidate(ctx.classesOfWorkload(w.id));
  }

  // ------------------------------------------------------------ explain, snapshot

  explain(blockId: number): Record<string, unknown> | null {
    const state = this.#state;
    const ctx = state.context;
    if (!ctx) return null;
    const m = ctx.manager.metadata;
    if (blockId < 0 || blockId >= ctx.manager.numBlockIds || m.tier[blockId] === Tier.Free) return null;
    const cls = ctx.scoreClass(m.scoreClass[blockId]!);
    if (!cls) return { reason: 'not classified (uncommitted or untracked)' };
    const { probability, value, reason } = reuseOf(state, cls.id);
    const session = cls.session >= 0 ? ctx.sessionById(cls.session) : undefined;
    return {
      reuseProbability: probability,
      reuseValue: value,
      horizon: state.settings.horizon,
      reason,
      score: classScore(state, cls.id),
      sessionLive: session ? isLive(state, session) : null,
      currentAgent: session?.agent ?? null,
    };
  }

  snapshot(): unknown {
    return snapshotOf(this.#state);
  }

  restore(snapshot: unknown): void {
    restoreFrom(this.#state, snapshot);
  }
}
