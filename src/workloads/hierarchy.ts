/**
 * `hierarchy`: a manager that splits the task among team leads, each of
 * which splits its part among workers and merges their reports: a two-level
 * delegation tree, as in MetaGPT's software company (Hong et al., "MetaGPT:
 * Meta Programming for a Multi-Agent Collaborative Framework", ICLR 2024),
 * AutoGen's nested chats (Wu et al., "AutoGen: Enabling Next-Gen LLM
 * Applications via Multi-Agent Conversation", 2023) and CrewAI's
 * hierarchical process.
 *
 * What a KV cache sees, and why the shape differs from `orchestrator` (one
 * level, private scratchpads):
 * - The manager's history (system prompt, task, plan, then one assignment
 *   and one team report per team) grows across the whole session, and the
 *   manager comes back to it only when a team has finished: a long idle
 *   prefix that must survive every team's work.
 * - A lead's conversation is opened by the manager's assignment and reused
 *   once more, after all its workers, to merge their reports.
 * - The workers of one team share a prefix (their role's system prompt and
 *   the lead's brief, the same message for each) and differ by their own
 *   sub-task; each runs a short tool loop on its private scratchpad.
 * - Role system prompts are the same in every session.
 *
 * Fitted to no trace (none of the public multi-agent logs we convert has
 * this shape): sizes follow the orders of magnitude of the converted
 * ChatDev and HyperAgent traces (system prompts about 1,000 tokens,
 * replies a few hundred, tool results a few hundred). Timing: 0.5 s +
 * prompt/10k + output/50 per s; a worker's tool steps wait log-normal
 * median 1.5 s, sigma 1.0; other hand-offs are immediate. Arrivals:
 * 0.2 sessions/s (about 32 in flight).
 */
import type { GapDist, TokenDist } from './random.js';
import {
  asAssistant,
  asUser,
  type CommonParams,
  type Reply,
  type SessionBuilder,
  type WorkloadShape,
} from './session.js';
import type { TraceSegment } from '../trace/format.js';
import { TEAM_TOOLS } from './tool_profiles.js';

/** One team: its lead and the role of its workers. */
export interface Team {
  /** The lead agent. */
  lead: string;
  /** The workers' agent name (they share one role). */
  worker: string;
  /** The lead's system prompt, the same in every session. */
  leadSystemTokens: number;
  /** The workers' system prompt, the same in every session. */
  workerSystemTokens: number;
}

/** Parameters of the {@link hierarchy} shape. */
export interface HierarchyParams extends CommonParams {
  /** The top agent. */
  manager: string;
  /** Its system prompt, the same in every session. */
  managerSystemTokens: number;
  /** The task statement. */
  task: TokenDist;
  /** The manager's plan (its first reply). */
  plan: TokenDist;
  /** The manager's assignment to one team. */
  assignment: TokenDist;
  /** The manager's closing answer. */
  finalAnswer: TokenDist;
  /** Every team, in the order the manager may call them. */
  teams: readonly Team[];
  /** Teams called per session: the first `n` of {@link teams}, as weights by count. */
  teamsPerSession: Readonly<Record<string, number>>;
  /** Workers per team, as weights by count. */
  workersPerTeam: Readonly<Record<string, number>>;
  /** The lead's brief to its workers (its first reply). */
  brief: TokenDist;
  /** A worker's own sub-task, after the shared brief. */
  subtask: TokenDist;
  /** Calls per worker (tool steps plus the report), as weights by count. */
  workerCalls: Readonly<Record<string, number>>;
  /** A tool result appended to a worker's scratchpad before each later call. */
  toolResult: TokenDist;
  /** A worker's replies (tool calls and its report). */
  workerOutput: TokenDist;
  /** The lead's merged report to the manager. */
  teamReport: TokenDist;
  /** Wait for a worker's tool before each of its calls after the first. */
  toolGap: GapDist;
}

const DEFAULTS: HierarchyParams = {
  manager: 'Manager',
  managerSystemTokens: 1200,
  task: { median: 350, sigma: 0.5, min: 40 },
  plan: { median: 260, sigma: 0.4 },
  assignment: { median: 140, sigma: 0.4 },
  finalAnswer: { median: 380, sigma: 0.4 },
  teams: [
    { lead: 'Research Lead', worker: 'Researcher', leadSystemTokens: 900, workerSystemTokens: 1100 },
    { lead: 'Engineering Lead', worker: 'Engineer', leadSystemTokens: 1000, workerSystemTokens: 1300 },
    { lead: 'QA Lead', worker: 'Tester', leadSystemTokens: 800, workerSystemTokens: 900 },
  ],
  teamsPerSession: { 2: 5, 3: 5 },
  workersPerTeam: { 2: 3, 3: 4, 4: 3 },
  brief: { median: 300, sigma: 0.4 },
  subtask: { median: 80, sigma: 0.4, min: 10 },
  workerCalls: { 1: 3, 2: 4, 3: 3 },
  toolResult: { median: 320, sigma: 0.8, min: 10, max: 8000 },
  workerOutput: { median: 180, sigma: 0.5 },
  teamReport: { median: 300, sigma: 0.4 },
  toolGap: { zeroProb: 0, median: 1.5, sigma: 1.0 },
  service: { latencyS: 0.5, prefillTokensPerS: 10_000, decodeTokensPerS: 50 },
  arrivalRatePerS: 0.2,
};

/** One worker: its sub-task, a few tool steps on a private scratchpad, the last reply as its report. */
function runWorker(s: SessionBuilder, p: HierarchyParams, team: Team, brief: TraceSegment): Reply {
  const rng = s.rng;
  const scratchpad: TraceSegment[] = [s.named(`${team.worker}-system`, team.workerSystemTokens), brief, s.fresh(rng.tokens(p.subtask))];
  const calls = Number(rng.pick(p.workerCalls));
  let reply = s.call(team.worker, scratchpad, rng.tokens(p.workerOutput));
  for (let step = 1; step < calls; step++) {
    scratchpad.push(asAssistant(reply), s.fresh(rng.tokens(p.toolResult)));
    reply = s.call(team.worker, scratchpad, rng.tokens(p.workerOutput), { gapS: rng.gap(p.toolGap) });
  }
  return reply;
}

/** One team's part: the lead briefs its workers, runs them one after another, and merges their reports. */
function runTeam(s: SessionBuilder, p: HierarchyParams, team: Team, assignment: Reply): Reply {
  const rng = s.rng;
  const conversation: TraceSegment[] = [s.named(`${team.lead}-system`, team.leadSystemTokens), asUser(assignment)];
  const brief = s.call(team.lead, conversation, rng.tokens(p.brief));
  conversation.push(asAssistant(brief));
  const workers = Number(rng.pick(p.workersPerTeam));
  // Every worker receives the same brief message: a prefix shared within the team.
  const shared = asUser(brief);
  for (let w = 0; w < workers; w++) conversation.push(asUser(runWorker(s, p, team, shared)));
  return s.call(team.lead, conversation, rng.tokens(p.teamReport));
}

function generateSession(s: SessionBuilder, _index: number, p: HierarchyParams): void {
  const rng = s.rng;
  const teams = Number(rng.pick(p.teamsPerSession));
  if (!(teams >= 1 && teams <= p.teams.length)) throw new RangeError(`hierarchy: ${teams} teams per session, but ${p.teams.length} are defined`);
  const history: TraceSegment[] = [s.named('manager-system', p.managerSystemTokens), s.fresh(rng.tokens(p.task))];
  history.push(asAssistant(s.call(p.manager, history, rng.tokens(p.plan))));
  for (const team of p.teams.slice(0, teams)) {
    const assignment = s.call(p.manager, history, rng.tokens(p.assignment));
    history.push(asAssistant(assignment));
    history.push(asUser(runTeam(s, p, team, assignment)));
  }
  s.call(p.manager, history, rng.tokens(p.finalAnswer));
}

/** The manager -> team leads -> workers shape (MetaGPT, AutoGen nested chats, CrewAI hierarchical). */
export const hierarchy: WorkloadShape<HierarchyParams> = {
  name: 'hierarchy',
  description: 'Manager delegating to team leads that brief, run and merge their workers (MetaGPT / AutoGen nested chats style)',
  targets: null,
  modelledOn: 'MetaGPT (Hong et al., ICLR 2024); AutoGen nested chats (Wu et al., 2023); CrewAI hierarchical process',
  defaults: DEFAULTS,
  tools: TEAM_TOOLS,
  generateSession,
};
