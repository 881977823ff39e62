/**
 * `orchestrator`: a planner that delegates sub-tasks to workers, each of
 * which runs a private ReAct loop with its own scratchpad and reports back
 * (Magentic-One orchestrator, HyperAgent planner and sub-agents).
 *
 * The workers are fitted to hyperagent_subagents.jsonl (HyperAgent sub-agent
 * calls; 457 invocations, 898 calls). That trace has no planner calls, so
 * the targets below describe worker calls only:
 * - 4 workers; mean prompt 4,097 tokens, mean output 172; shared prefix
 *   0.635 global (0.467 within one invocation).
 * - Invocation mix 0.74 finder, 0.16 navigator, 0.06 editor, 0.04 executor
 *   (338 / 75 / 26 / 18); calls per invocation: finder always 1, navigator
 *   mean 4.4, editor 4.8, executor 6.1 (drawn from the trace's histograms).
 * - Per worker (prompt / output): navigator 5,834 / 232, editor 2,501 / 153,
 *   executor 1,455 / 85, finder 3,854 / 149. System prompts are the same in
 *   every session: navigator 1,084, editor 1,066, executor 328, finder 1,505
 *   tokens. The first user message (task plus retrieved context) is
 *   log-normal: finder median 916 sigma 1.64, navigator 327 / 0.97,
 *   editor 133 / 0.47, executor 240 / 0.56. Each later step appends one
 *   scratchpad piece (the previous thought and action plus the
 *   observation): navigator median 500 sigma 1.36, editor 324 / 0.68,
 *   executor 121 / 0.75. Outputs: navigator median 166 sigma 0.89, editor
 *   140 / 0.41, executor 73 / 0.48, finder 120 / 0.57.
 *
 * Not fitted (the planner is absent from the data; these follow
 * Magentic-One's orchestrator): a 1,500-token system prompt shared by all
 * sessions, a task of median 450 tokens, instructions of median 120, the
 * whole team history in its prompt (its own turns as assistant, worker
 * reports as user), median 4 delegations per task (1 to 12), the next worker
 * drawn from a transition matrix whose stationary mix is the trace's
 * invocation mix. Timing: 0.5 s + prompt/10k + output/50 per s; each worker
 * step after the first waits for its tool, log-normal median 1.5 s,
 * sigma 1.0. Arrivals: 0.45 sessions/s (about 32 in flight).
 */
import type { GapDist, TokenDist } from './random.js';
import {
  asAssistant,
  asUser,
  type CommonParams,
  type FitTargets,
  type Reply,
  type SessionBuilder,
  type WorkloadShape,
} from './session.js';
import type { TraceSegment } from '../trace/format.js';
import { RESEARCH_TOOLS } from './tool_profiles.js';

/** The state a transition row starts from before the first delegation. */
export const FIRST_DELEGATION = '<start>';

/** One kind of worker. */
export interface Worker {
  /** Its system prompt, the same in every session. */
  systemTokens: number;
  /** The first user message: the planner's instruction with the context it needs. */
  task: TokenDist;
  /** Calls per invocation, as weights by count. */
  calls: Readonly<Record<string, number>>;
  /** Scratchpad piece appended before each later call. */
  step: TokenDist;
  /** Size of its replies. */
  output: TokenDist;
}

/** Parameters of the {@link orchestrator} shape. */
export interface OrchestratorParams extends CommonParams {
  /** The orchestrating agent. */
  planner: string;
  /** Its system prompt, the same in every session. */
  plannerSystemTokens: number;
  /** The task statement that opens its history. */
  task: TokenDist;
  /** Size of its replies that delegate. */
  instruction: TokenDist;
  /** Size of its closing reply. */
  finalAnswer: TokenDist;
  /** Sub-tasks delegated per session. */
  delegations: TokenDist;
  /** Every kind of worker, by name. */
  workers: Readonly<Record<string, Worker>>;
  /** Next worker given the previous one (or `<start>`), as weights. */
  transitions: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Wait for a worker's tool before each of its steps after the first. */
  toolGap: GapDist;
}

const NAVIGATOR = 'navigator';
const EDITOR = 'editor';
const EXECUTOR = 'executor';
const FINDER = 'finder';

const DEFAULTS: OrchestratorParams = {
  planner: 'planner',
  plannerSystemTokens: 1500,
  task: { median: 450, sigma: 0.6 },
  instruction: { median: 120, sigma: 0.5 },
  finalAnswer: { median: 200, sigma: 0.5 },
  delegations: { median: 4, sigma: 0.5, min: 1, max: 12 },
  workers: {
    [NAVIGATOR]: {
      systemTokens: 1084,
      task: { median: 327, sigma: 0.97, min: 20 },
      calls: { 1: 2, 2: 20, 3: 12, 4: 15, 5: 8, 6: 4, 7: 4, 8: 4, 9: 2, 10: 1, 12: 2, 13: 1 },
      step: { median: 700, sigma: 1.36, min: 20, max: 16_000 },
      output: { median: 166, sigma: 0.89 },
    },
    [EDITOR]: {
      systemTokens: 1066,
      task: { median: 133, sigma: 0.47, min: 20 },
      calls: { 1: 5, 2: 2, 3: 7, 4: 3, 5: 4, 10: 1, 12: 2, 13: 1, 15: 1 },
      step: { median: 324, sigma: 0.68, min: 20 },
      output: { median: 140, sigma: 0.41 },
    },
    [EXECUTOR]: {
      systemTokens: 328,
      task: { median: 240, sigma: 0.56, min: 20 },
      calls: { 1: 8, 6: 1, 7: 1, 8: 3, 10: 1, 11: 1, 14: 2, 15: 1 },
      step: { median: 121, sigma: 0.75, min: 20 },
      output: { median: 73, sigma: 0.48 },
    },
    [FINDER]: {
      systemTokens: 1505,
      task: { median: 1000, sigma: 1.4, min: 20, max: 12_000 },
      calls: { 1: 1 },
      step: { median: 1, sigma: 0 },
      output: { median: 120, sigma: 0.57 },
    },
  },
  transitions: {
    [FIRST_DELEGATION]: { [FINDER]: 0.6, [NAVIGATOR]: 0.4 },
    [FINDER]: { [FINDER]: 0.82, [NAVIGATOR]: 0.08, [EDITOR]: 0.06, [EXECUTOR]: 0.04 },
    [NAVIGATOR]: { [FINDER]: 0.75, [NAVIGATOR]: 0.08, [EDITOR]: 0.12, [EXECUTOR]: 0.05 },
    [EDITOR]: { [FINDER]: 0.6, [NAVIGATOR]: 0.1, [EXECUTOR]: 0.3 },
    [EXECUTOR]: { [FINDER]: 0.7, [NAVIGATOR]: 0.1, [EDITOR]: 0.2 },
  },
  toolGap: { zeroProb: 0, median: 1.5, sigma: 1.0 },
  service: { latencyS: 0.5, prefillTokensPerS: 10_000, decodeTokensPerS: 50 },
  arrivalRatePerS: 0.45,
};

const TARGETS: FitTargets = {
  trace: 'hyperagent_subagents.jsonl',
  agents: [NAVIGATOR, EDITOR, EXECUTOR, FINDER],
  distinctAgents: 4,
  callsPerSession: 898 / 457,
  meanPromptTokens: 4097,
  meanOutputTokens: 172,
  sharedPrefixGlobal: 0.6347,
  sharedPrefixInSession: 0.4666,
  perAgent: {
    [NAVIGATOR]: { prompt: 5834, output: 232 },
    [EDITOR]: { prompt: 2501, output: 153 },
    [EXECUTOR]: { prompt: 1455, output: 85 },
    [FINDER]: { prompt: 3854, output: 149 },
  },
};

function workerSpec(p: OrchestratorParams, name: string): Worker {
  const worker = p.workers[name];
  if (worker === undefined) throw new RangeError(`orchestrator: no parameters for worker ${JSON.stringify(name)}`);
  return worker;
}

/** One worker invocation: a fresh scratchpad, a few ReAct steps, the last reply as the report. */
function runWorker(s: SessionBuilder, p: OrchestratorParams, name: string): Reply {
  const rng = s.rng;
  const worker = workerSpec(p, name);
  const scratchpad: TraceSegment[] = [s.named(`${name}-system`, worker.systemTokens), s.fresh(rng.tokens(worker.task))];
  const calls = Number(rng.pick(worker.calls));
  let reply = s.call(name, scratchpad, rng.tokens(worker.output));
  for (let step = 1; step < calls; step++) {
    // The piece holds the previous thought and action, so it is at least as long.
    const piece = Math.max(reply.outputTokens + 1, rng.tokens(worker.step));
    scratchpad.push(s.fresh(piece));
    reply = s.call(name, scratchpad, rng.tokens(worker.output), { gapS: rng.gap(p.toolGap) });
  }
  return reply;
}

function generateSession(s: SessionBuilder, _index: number, p: OrchestratorParams): void {
  const rng = s.rng;
  const history: TraceSegment[] = [s.named('planner-system', p.plannerSystemTokens), s.fresh(rng.tokens(p.task))];
  const delegations = rng.tokens(p.delegations);
  let previous = FIRST_DELEGATION;
  for (let d = 0; d < delegations; d++) {
    const row = p.transitions[previous];
    if (row === undefined) throw new RangeError(`orchestrator: no transitions from ${JSON.stringify(previous)}`);
    const worker = rng.pick(row);
    const instruction = s.call(p.planner, history, rng.tokens(p.instruction));
    history.push(asAssistant(instruction));
    const report = runWorker(s, p, worker);
    history.push(asUser(report));
    previous = worker;
  }
  s.call(p.planner, history, rng.tokens(p.finalAnswer));
}

/** The orchestrator-and-workers shape (HyperAgent / Magentic-One). */
export const orchestrator: WorkloadShape<OrchestratorParams> = {
  name: 'orchestrator',
  description: 'Planner delegating to workers that keep private scratchpads (Magentic-One / HyperAgent style)',
  targets: TARGETS,
  defaults: DEFAULTS,
  tools: RESEARCH_TOOLS,
  generateSession,
};
