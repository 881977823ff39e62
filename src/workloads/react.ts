/**
 * `react`: a ReAct tool loop talking to a (simulated) user, tau-bench style.
 *
 * Fitted to tau_airline.jsonl (tau-bench airline, gpt-4o trajectories; 200
 * sessions = 50 tasks x 4 trials, 3,944 calls). Targets from stats.json and
 * measured on the trace:
 * - 2 agents; 19.7 calls per session; mean prompt 3,237 tokens, mean output
 *   46; shared prefix 0.952 global, 0.898 in-session.
 * - airline_agent: prompt 4,771, output 60. System prompt 1,252 and tool
 *   schema 1,983 tokens, identical in every session. Its next step after a
 *   call: another tool call 0.454 (1,113 of 2,454), a reply to the user
 *   0.526, transfer to a human (session ends) 0.021. Tool-call outputs
 *   log-normal(median 29, sigma 0.71); replies log-normal(median 60, 0.67);
 *   tool results are bimodal: 15% tiny (median 13), else median 280,
 *   sigma 0.45 (trace mean 253).
 * - user_simulator: prompt 710, output 23. System prompt 287 tokens,
 *   the same for the 4 trials of a task; first prompt adds a fixed
 *   13-token greeting. Messages log-normal(median 22, sigma 0.44); the final
 *   `###STOP###` message 13 tokens. User turns per session: median 7, 3 to 30
 *   in the trace; drawn log-normal(median 8.1, sigma 0.38, 3 to 30), which
 *   after the 2% transfers ends sessions at the trace's 7.45 user calls.
 * - History: each agent sees its own full conversation (own replies as
 *   assistant, the other side as user); the agent also sees every tool call
 *   and result, the user only the text exchange.
 *
 * Not fitted (tau has no timestamps): service time (gpt-4o-class API:
 * 0.4 s + prompt/10k + output/80 per s) and tool gaps, log-normal with median
 * 2 s and sigma 1.0 (mean 3.3 s, p99 about 20 s): the "long tool gaps" of
 * real tool back ends, which are what make keep-or-evict decisions hard.
 * Arrivals: 0.8 sessions/s keeps about 32 sessions in flight.
 */
import type { GapDist, TokenDist } from './random.js';
import {
  asAssistant,
  asUser,
  type CommonParams,
  type FitTargets,
  type SessionBuilder,
  type WorkloadShape,
} from './session.js';
import type { TraceSegment } from '../trace/format.js';
import { AIRLINE_TOOLS } from './tool_profiles.js';

/** Parameters of the {@link react} shape. */
export interface ReactParams extends CommonParams {
  /** The tool-calling agent. */
  agentName: string;
  /** The simulated user. */
  userName: string;
  /** Sessions per task: trials of one task share the user's system prompt. */
  trialsPerTask: number;
  /** The agent's system prompt (the domain policy), the same in every session. */
  agentSystemTokens: number;
  /** The tool schemas, right after the system prompt, the same in every session. */
  toolSchemaTokens: number;
  /** The user's system prompt (the task instruction), one per task. */
  userSystem: TokenDist;
  /** The fixed greeting the user's conversation starts with. */
  userGreetingTokens: number;
  /** Size of the user's messages. */
  userMessage: TokenDist;
  /** Size of the user's last message, which ends the session. */
  userStopMessage: TokenDist;
  /** User turns planned per session (the last one says stop). */
  userTurns: TokenDist;
  /** After each agent call: probabilities of another tool call, a reply, a transfer (end). */
  agentNext: { tool: number; reply: number; end: number };
  /** Size of an agent reply that calls a tool. */
  toolCallOutput: TokenDist;
  /** Size of an agent reply to the user. */
  replyOutput: TokenDist;
  /** Tool results: with probability `smallProb` from `small`, else from `large`. */
  toolResult: { smallProb: number; small: TokenDist; large: TokenDist };
  /** Delay between a tool call's reply and the next agent call. */
  toolGap: GapDist;
  /** Delay before a user message (the simulated user answers at once). */
  userGap: GapDist;
}

const DEFAULTS: ReactParams = {
  agentName: 'airline_agent',
  userName: 'user_simulator',
  trialsPerTask: 4,
  agentSystemTokens: 1252,
  toolSchemaTokens: 1983,
  userSystem: { median: 285, sigma: 0.12 },
  userGreetingTokens: 13,
  userMessage: { median: 22, sigma: 0.44 },
  userStopMessage: { median: 13, sigma: 0.2 },
  userTurns: { median: 8.1, sigma: 0.38, min: 3, max: 30 },
  agentNext: { tool: 0.454, reply: 0.526, end: 0.021 },
  toolCallOutput: { median: 29, sigma: 0.71 },
  replyOutput: { median: 60, sigma: 0.67 },
  toolResult: { smallProb: 0.15, small: { median: 13, sigma: 0.3 }, large: { median: 280, sigma: 0.45 } },
  toolGap: { zeroProb: 0, median: 2, sigma: 1.0 },
  userGap: { zeroProb: 1, median: 1, sigma: 0 },
  service: { latencyS: 0.4, prefillTokensPerS: 10_000, decodeTokensPerS: 80 },
  arrivalRatePerS: 0.8,
};

const TARGETS: FitTargets = {
  trace: 'tau_airline.jsonl',
  distinctAgents: 2,
  callsPerSession: 19.72,
  meanPromptTokens: 3237,
  meanOutputTokens: 46,
  sharedPrefixGlobal: 0.9516,
  sharedPrefixInSession: 0.8977,
  perAgent: {
    airline_agent: { prompt: 4771, output: 60 },
    user_simulator: { prompt: 710, output: 23 },
  },
};

function generateSession(s: SessionBuilder, index: number, p: ReactParams): void {
  const rng = s.rng;
  const task = Math.floor(index / p.trialsPerTask);
  const agentConversation: TraceSegment[] = [
    s.named('agent-system', p.agentSystemTokens),
    s.named('tool-schema', p.toolSchemaTokens),
  ];
  // The task's user prompt is drawn from a stream keyed by the task, so every
  // trial of it has the same text and size.
  const userSystemTokens = s.sharedRng(`task-${task}`).tokens(p.userSystem);
  const userConversation: TraceSegment[] = [
    s.named(`user-system-${task}`, userSystemTokens),
    s.named('user-greeting', p.userGreetingTokens),
  ];
  const turns = rng.tokens(p.userTurns);

  for (let turn = 1; turn <= turns; turn++) {
    const stop = turn === turns;
    const userReply = s.call(p.userName, userConversation, rng.tokens(stop ? p.userStopMessage : p.userMessage), {
      gapS: rng.gap(p.userGap),
    });
    if (stop) return;
    userConversation.push(asAssistant(userReply));
    agentConversation.push(asUser(userReply));

    let gap = 0;
    for (;;) {
      const next = rng.pick(p.agentNext);
      const output = rng.tokens(next === 'tool' ? p.toolCallOutput : p.replyOutput);
      const agentReply = s.call(p.agentName, agentConversation, output, { gapS: gap });
      if (next === 'end') return;
      agentConversation.push(asAssistant(agentReply));
      if (next === 'reply') {
        userConversation.push(asUser(agentReply));
        break;
      }
      const result = rng.chance(p.toolResult.smallProb) ? p.toolResult.small : p.toolResult.large;
      agentConversation.push(s.fresh(rng.tokens(result)));
      gap = rng.gap(p.toolGap);
    }
  }
}

/** The ReAct tool-loop shape (tau-bench airline). */
export const react: WorkloadShape<ReactParams> = {
  name: 'react',
  description: 'ReAct tool loop with a simulated user and long tool gaps (tau-bench style)',
  targets: TARGETS,
  defaults: DEFAULTS,
  tools: AIRLINE_TOOLS,
  generateSession,
};
