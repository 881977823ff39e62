/**
 * What CacheSage learns per workload (transitions, step and gap timing,
 * arrivals, continuation and prefix reuse) and the few aggregates it keeps
 * over the runtime's sessions (live sessions per model state), plus the
 * state every part of the policy shares.
 */
import type { PolicyContext, SessionView } from '../types.js';
import type { Settings } from './options.js';
import type { PrefixReuse } from './prefix_reuse.js';
import type { CrossSessionTracker } from './cross_session.js';
import type { Reuse } from './retention.js';
import type { SurvivalTable } from './tables.js';
import { DurationEstimator } from './timing.js';
import { MAX_STATES, START_INDEX, TransitionModel } from './transitions.js';

export interface WorkloadState {
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
  /** Per agent: decayed count of calls that reused under half of its previous prompt, and of calls. */
  restarts: Map<string, { restarted: number; calls: number }>;
  /** Per agent name: distinct sessions it made calls in (counting stops at promotion), and the last one. */
  agentSessions: Map<string, { sessions: number; lastSession: number }>;
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
  /** The session each agent's last prompt came from. */
  lastPromptSession: Map<string, number>;
  /**
   * Per agent: leading blocks its recent prompts shared with the one before
   * from another session (the last few), whose least is the prefix every
   * session reads (system prompt, tool schemas).
   */
  commonPrefix: Map<string, number[]>;
  /** Mean seconds per step (service plus gap), cached until timing changes. */
  stepSeconds: number | null;
  /** Reuse of shared blocks by agent set, until the live mix changes. */
  sharedReach: Map<string | number, Reuse>;
  /** Live-mix changes since the workload's shared classes were last rescored. */
  sharedChanges: number;
  /** A state gained its first or lost its last live session since then. */
  sharedShifted: boolean;
}

/** The state every part of CacheSage shares. */
export interface CacheSageState {
  readonly settings: Settings;
  context: PolicyContext | null;
  readonly workloads: Map<string, WorkloadState>;
  /** Workloads with refreshDue set, in the order they became due. */
  readonly due: Set<WorkloadState>;
  /**
   * Sessions CacheSage ended for idleness (idleTimeoutSeconds) that the
   * runtime still holds live: ended for the model, until their next step
   * starts them again.
   */
  readonly expired: Set<number>;
  /**
   * Per live session id and agent: the most leading blocks one of the
   * agent's prompts shared with its previous one in the session.
   */
  readonly reusedPrefix: Map<number, Map<string, number>>;
  /** Per live session id: its steps so far, in all and by agent name (rare agents' reuse is estimated from them). */
  readonly sessionSteps: Map<number, { total: number; byAgent: Map<string, number> }>;
  /** Which session wrote each private block, and how often others read such blocks (set at attach). */
  crossSession: CrossSessionTracker | null;
}

export const CONTINUATION_DECAY = 0.98;

export function newWorkload(state: CacheSageState, name: string): WorkloadState {
  const { halfLife, alpha } = state.settings;
  return {
    name,
    id: state.context?.registry.workloadId(name) ?? -1,
    model: new TransitionModel({ halfLife, alpha }),
    service: new Map(),
    gap: new Map(),
    continuation: new Map(),
    prefixReuse: new Map(),
    restarts: new Map(),
    agentSessions: new Map(),
    interArrival: new DurationEstimator({ halfLife: 200 }),
    lastArrival: null,
    liveAt: new Map(),
    handoffsSinceRefresh: 0,
    table: null,
    refreshDue: false,
    lastPrompt: new Map(),
    lastPromptSession: new Map(),
    commonPrefix: new Map(),
    stepSeconds: null,
    sharedReach: new Map(),
    sharedChanges: 0,
    sharedShifted: false,
  };
}

export function workloadOf(state: CacheSageState, name: string): WorkloadState {
  let w = state.workloads.get(name);
  if (!w) state.workloads.set(name, (w = newWorkload(state, name)));
  return w;
}

/** Whether a session is live for the model: live in the runtime and not ended for idleness. */
export function isLive(state: CacheSageState, session: SessionView): boolean {
  return session.live && !state.expired.has(session.id);
}

/**
 * The model state new agents share, once a workload has many agents, until
 * they are seen in a second session: experts created per task (hundreds of
 * names, each living in one session) would teach per-name transitions
 * nothing that carries to the next task, and would grow the model (and its
 * survival tables, cubic in states) without bound. Together they learn the
 * role they play in the dispatch loop (a manager hands over to "an
 * expert", which hands back), and their timing, continuation and prefix
 * reuse as a group; a session's private blocks of a pooled agent are
 * valued by that agent's share of the session's steps (retention.ts).
 */
export const RARE_AGENT = '\u0000rare';
/** How the pooled state is named where CacheSage reports agents (predict). */
export const RARE_AGENT_LABEL = '<rare agents>';
/** An agent gets a state of its own once it has called in this many sessions... */
export const PROMOTE_AFTER_SESSIONS = 2;
/** ...or at once while the workload has fewer agents than this (roles that recur, as in most workloads). */
export const POOL_AFTER_AGENTS = 32;

/** Counts the sessions an agent has called in (at its step start). */
export function noteAgentSession(w: WorkloadState, agent: string, sessionId: number): void {
  const seen = w.agentSessions.get(agent);
  if (!seen) w.agentSessions.set(agent, { sessions: 1, lastSession: sessionId });
  else if (seen.lastSession !== sessionId && seen.sessions < PROMOTE_AFTER_SESSIONS) {
    seen.sessions++;
    seen.lastSession = sessionId;
  }
}

/** The model's name for an agent: its own once it recurs across sessions, else the pooled one. */
export function modelAgent(w: WorkloadState, agent: string): string {
  if (w.model.hasAgent(agent)) return agent;
  const seen = w.agentSessions.get(agent);
  // A model at its state limit pools every newcomer.
  if (w.model.states >= MAX_STATES - 1) return RARE_AGENT;
  if (w.model.states - 2 < POOL_AFTER_AGENTS) return agent;
  return seen !== undefined && seen.sessions >= PROMOTE_AFTER_SESSIONS ? agent : RARE_AGENT;
}

/** A session's state index in its workload's model: its current agent, START before the first step. */
export function stateOf(w: WorkloadState, session: SessionView): number {
  return session.agent === null ? START_INDEX : (w.model.indexOf(modelAgent(w, session.agent)) ?? START_INDEX);
}

/** Moves one live session of `w` from state `from` to state `to` (null: not live). */
export function moveLive(w: WorkloadState, from: number | null, to: number | null): void {
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

export function estimator(map: Map<string, DurationEstimator>, agent: string): DurationEstimator {
  let e = map.get(agent);
  if (!e) map.set(agent, (e = new DurationEstimator({ halfLife: 200 })));
  return e;
}

/** The share of an agent's calls whose prompt extended its previous one whole. */
export function continuationOf(w: WorkloadState, agent: string): number {
  const c = w.continuation.get(agent);
  // Unknown until an agent calls twice in a session: assume it extends.
  if (!c || c.calls < 1) return 1;
  return c.extended / c.calls;
}

/** Mean seconds per step (service plus gap) over the workload's agents. */
export function meanStepSeconds(w: WorkloadState, defaultGapSeconds: number): number {
  if (w.stepSeconds !== null) return w.stepSeconds;
  let total = 0;
  let n = 0;
  for (const [agent, service] of w.service) {
    total += (service.mean() ?? 0) + (w.gap.get(agent)?.mean() ?? defaultGapSeconds);
    n++;
  }
  w.stepSeconds = n > 0 ? total / n : defaultGapSeconds;
  return w.stepSeconds;
}


/** Cross-session comparisons an agent's common prefix is the least of. */
export const COMMON_PREFIX_WINDOW = 16;

/** Records how many leading blocks an agent's prompt shared with its previous one from another session. */
export function observeCommonPrefix(w: WorkloadState, agent: string, shared: number): void {
  let recent = w.commonPrefix.get(agent);
  if (!recent) w.commonPrefix.set(agent, (recent = []));
  recent.push(shared);
  if (recent.length > COMMON_PREFIX_WINDOW) recent.shift();
}

/** The leading blocks every session's prompt of an agent shares (its system prompt); 0 until seen. */
export function commonPrefixOf(w: WorkloadState, agent: string): number {
  const recent = w.commonPrefix.get(agent);
  return recent === undefined || recent.length === 0 ? 0 : Math.min(...recent);
}
