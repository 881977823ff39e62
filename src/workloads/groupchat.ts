/**
 * `groupchat`: a chat steered by a manager that, after each round, picks who
 * speaks next or ends the chat (AutoGen GroupChatManager style), with a
 * judge that rules when the manager never decides.
 *
 * Fitted to mad_debate.jsonl (Multi-Agents-Debate, Liang et al.; 200
 * sessions, 2,763 calls), whose moderator is exactly such a manager. Targets
 * from stats.json and measured on the trace:
 * - 4 agents; 13.8 calls per session (4 to 15); mean prompt 922 tokens,
 *   mean output 138; shared prefix 0.580 global and in-session (system
 *   prompts embed the topic, so nothing is shared across sessions).
 * - Order: Affirmative opens twice (a translation, 15 tokens, then its
 *   argument); each round is Affirmative -> Negative -> Moderator; the
 *   moderator ends the debate with probability 0.048 per round (36 of 200
 *   sessions end at the moderator; 745 rounds = 3.72 per session), else after
 *   4 rounds the Judge rules in 2 calls (164 sessions).
 * - Per agent (prompt / output): Affirmative 600 / 157, Negative 881 / 195,
 *   Moderator 1,519 / 85, Judge 588 / 76. Debaters share one system prompt
 *   (median 88 tokens), moderator and judge another (116). Arguments are
 *   log-normal(median 190, sigma 0.3); moderator replies median 80,
 *   sigma 0.38.
 * - History: each agent keeps its own memory (own replies as assistant);
 *   what it hears since its last turn arrives as one user message: the
 *   other debater's argument plus 12 tokens of instructions for debaters
 *   (trace: 211 vs 199), both arguments plus 140 for the moderator (533),
 *   both final arguments plus 25 for the judge (413).
 * `history: 'shared'` instead gives every agent the whole transcript, as
 * AutoGen's group chat does.
 *
 * Not fitted (no timestamps in the source): service time of a
 * gpt-3.5-turbo-class API (0.5 s + prompt/10k + output/70 per s), no gaps
 * between turns, 0.9 sessions/s (about 32 in flight).
 */
import type { TokenDist } from './random.js';
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

/** The pseudo-agent a transition row uses to end the chat. */
export const CHAT_END = '<end>';

/** One participant of the chat. */
export interface ChatAgent {
  /** Agents with the same system label share one system prompt. */
  systemLabel: string;
  /** Size of its replies. */
  output: TokenDist;
  /** Agents whose replies this one hears (own-history mode). */
  hears: readonly string[];
  /** Instruction text wrapped around what it hears. */
  wrapper: TokenDist;
}

/** Parameters of the {@link groupchat} shape. */
export interface GroupChatParams extends CommonParams {
  /** 'own': each agent keeps its own memory; 'shared': everyone sees the whole transcript. */
  history: 'own' | 'shared';
  /** Every participant, by name. */
  agents: Readonly<Record<string, ChatAgent>>;
  /** System prompt sizes by label; drawn once per session. */
  systems: Readonly<Record<string, TokenDist>>;
  /** The task statement the opener starts from. */
  question: TokenDist;
  /** The opener makes one preliminary call (the translation) before the chat. */
  opener: string;
  /** Size of the preliminary reply. */
  openingOutput: TokenDist;
  /** The fixed instruction that follows it in the opener's memory. */
  openingInstructionTokens: number;
  /** Next speaker after each agent, as weights; `<end>` ends the chat. */
  transitions: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** The agent whose calls count rounds. */
  manager: string;
  /** Manager calls after which the judge rules instead. */
  maxRounds: number;
  /** Who rules when the manager reaches `maxRounds` without ending. */
  judge: string;
  /** Calls the judge makes. */
  judgeCalls: number;
  /** The instruction before each judge call after the first. */
  judgeFollowUp: TokenDist;
  /** Size of the judge's replies, by call. */
  judgeOutputs: readonly TokenDist[];
}

const AFFIRMATIVE = 'Affirmative side';
const NEGATIVE = 'Negative side';
const MODERATOR = 'Moderator';
const JUDGE = 'Judge';
const ARGUMENT: TokenDist = { median: 190, sigma: 0.3 };

const DEFAULTS: GroupChatParams = {
  history: 'own',
  agents: {
    [AFFIRMATIVE]: { systemLabel: 'debater', output: ARGUMENT, hears: [NEGATIVE], wrapper: { median: 12, sigma: 0.3 } },
    [NEGATIVE]: { systemLabel: 'debater', output: ARGUMENT, hears: [AFFIRMATIVE], wrapper: { median: 12, sigma: 0.3 } },
    [MODERATOR]: {
      systemLabel: 'manager',
      output: { median: 80, sigma: 0.38 },
      hears: [AFFIRMATIVE, NEGATIVE],
      wrapper: { median: 140, sigma: 0.2 },
    },
    [JUDGE]: {
      systemLabel: 'manager',
      output: { median: 40, sigma: 0.4 },
      hears: [AFFIRMATIVE, NEGATIVE],
      wrapper: { median: 25, sigma: 0.3 },
    },
  },
  systems: { debater: { median: 88, sigma: 0.15 }, manager: { median: 116, sigma: 0.1 } },
  question: { median: 30, sigma: 0.19 },
  opener: AFFIRMATIVE,
  openingOutput: { median: 15, sigma: 0.4 },
  openingInstructionTokens: 13,
  transitions: {
    [AFFIRMATIVE]: { [NEGATIVE]: 1 },
    [NEGATIVE]: { [MODERATOR]: 1 },
    [MODERATOR]: { [AFFIRMATIVE]: 0.952, [CHAT_END]: 0.048 },
  },
  manager: MODERATOR,
  maxRounds: 4,
  judge: JUDGE,
  judgeCalls: 2,
  judgeFollowUp: { median: 75, sigma: 0.08 },
  judgeOutputs: [
    { median: 40, sigma: 0.4 },
    { median: 95, sigma: 0.5 },
  ],
  service: { latencyS: 0.5, prefillTokensPerS: 10_000, decodeTokensPerS: 70 },
  arrivalRatePerS: 0.9,
};

const TARGETS: FitTargets = {
  trace: 'mad_debate.jsonl',
  distinctAgents: 4,
  callsPerSession: 13.815,
  meanPromptTokens: 922,
  meanOutputTokens: 138,
  sharedPrefixGlobal: 0.5799,
  sharedPrefixInSession: 0.5799,
  perAgent: {
    [AFFIRMATIVE]: { prompt: 600, output: 157 },
    [NEGATIVE]: { prompt: 881, output: 195 },
    [MODERATOR]: { prompt: 1519, output: 85 },
    [JUDGE]: { prompt: 588, output: 76 },
  },
};

interface Message {
  author: string;
  reply: Reply;
}

function agentSpec(p: GroupChatParams, agent: string): ChatAgent {
  const spec = p.agents[agent];
  if (spec === undefined) throw new RangeError(`groupchat: no parameters for agent ${JSON.stringify(agent)}`);
  return spec;
}

function generateSession(s: SessionBuilder, _index: number, p: GroupChatParams): void {
  const rng = s.rng;
  const systems = new Map<string, TraceSegment>();
  const systemOf = (agent: string): TraceSegment => {
    const label = agentSpec(p, agent).systemLabel;
    let segment = systems.get(label);
    if (segment === undefined) {
      const dist = p.systems[label];
      if (dist === undefined) throw new RangeError(`groupchat: no system prompt size for label ${JSON.stringify(label)}`);
      segment = s.fresh(rng.tokens(dist));
      systems.set(label, segment);
    }
    return segment;
  };

  const transcript: Message[] = [];
  const memories = new Map<string, TraceSegment[]>();
  const heardUpTo = new Map<string, number>();
  const question = s.fresh(rng.tokens(p.question));

  // Builds the agent's prompt for its next turn and records what it heard.
  const promptFor = (agent: string): TraceSegment[] => {
    if (p.history === 'shared') {
      return [
        systemOf(agent),
        question,
        ...transcript.map((m) => (m.author === agent ? asAssistant(m.reply) : asUser(m.reply))),
      ];
    }
    const spec = agentSpec(p, agent);
    let memory = memories.get(agent);
    if (memory === undefined) {
      memory = [systemOf(agent)];
      memories.set(agent, memory);
    }
    let heard = 0;
    const latest = new Map<string, number>();
    for (let i = heardUpTo.get(agent) ?? 0; i < transcript.length; i++) {
      const message = transcript[i] as Message;
      if (spec.hears.includes(message.author)) latest.set(message.author, message.reply.outputTokens);
    }
    for (const tokens of latest.values()) heard += tokens;
    if (heard > 0) memory.push(s.fresh(heard + rng.tokens(spec.wrapper)));
    heardUpTo.set(agent, transcript.length);
    return memory;
  };

  const speak = (agent: string, output: number): Reply => {
    const prompt = promptFor(agent);
    const reply = s.call(agent, prompt, output);
    transcript.push({ author: agent, reply });
    if (p.history === 'own') memories.get(agent)?.push(asAssistant(reply));
    return reply;
  };

  // The opener's preliminary call, on the bare question.
  const openerMemory = [systemOf(p.opener), question];
  memories.set(p.opener, openerMemory);
  const opening = s.call(p.opener, openerMemory, rng.tokens(p.openingOutput));
  openerMemory.push(asAssistant(opening), s.named('opening-instruction', p.openingInstructionTokens));
  if (p.history === 'shared') transcript.push({ author: p.opener, reply: opening });

  let speaker = p.opener;
  let rounds = 0;
  for (;;) {
    speak(speaker, rng.tokens(agentSpec(p, speaker).output));
    const row = p.transitions[speaker];
    if (row === undefined) throw new RangeError(`groupchat: no transitions from ${JSON.stringify(speaker)}`);
    const next = rng.pick(row);
    if (speaker === p.manager) {
      rounds++;
      if (next === CHAT_END) return;
      if (rounds >= p.maxRounds) break;
    } else if (next === CHAT_END) {
      return;
    }
    speaker = next;
  }

  for (let call = 0; call < p.judgeCalls; call++) {
    const output = rng.tokens(p.judgeOutputs[call] ?? agentSpec(p, p.judge).output);
    if (call === 0 || p.history === 'shared') {
      speak(p.judge, output);
    } else {
      const memory = memories.get(p.judge) as TraceSegment[];
      memory.push(s.fresh(rng.tokens(p.judgeFollowUp)));
      const reply = s.call(p.judge, memory, output);
      memory.push(asAssistant(reply));
    }
  }
}

/** The manager-driven group chat shape (Multi-Agents-Debate). */
export const groupchat: WorkloadShape<GroupChatParams> = {
  name: 'groupchat',
  description: 'Group chat whose manager picks the next speaker or ends it, with a judge (AutoGen / MAD style)',
  targets: TARGETS,
  defaults: DEFAULTS,
  generateSession,
};
