/**
 * `pipeline`: a fixed chain of role-play phases with review loops, ChatDev /
 * MetaGPT style. Every phase is a fresh two-agent conversation: the
 * assistant agent sends [its system prompt, the phase prompt as user, ...],
 * the user agent [its system prompt, the phase prompt as assistant, the
 * assistant's reply as user, ...]. Phase prompts embed the current code, so
 * a phase re-run on unchanged code re-sends the same text.
 *
 * Fitted to chatdev.jsonl (ChatDev 1.0 WareHouse logs; 55 sessions, 1,350
 * calls). Targets from stats.json and measured on the trace:
 * - 7 agents; 24.5 calls per session; mean prompt 1,607 tokens, mean output
 *   483; shared prefix 0.272 global, 0.272 in-session (system prompts embed
 *   the task, so sessions share nothing but the prompt engineer's 25-token
 *   system prompt).
 * - Per agent (prompt / output): Prompt Engineer 171 / 151, CPO 1,068 / 315,
 *   CTO 575 / 11, Programmer 1,598 / 633, Code Reviewer 1,867 / 438,
 *   CEO 1,580 / 75, Software Test Engineer 2,432 / 437.
 * - Chain: [self-improve 0.24] -> demand analysis (CPO; CEO joins 0.25) ->
 *   language (CTO) -> coding (Programmer; code median 800 tokens) -> code
 *   review rounds -> tests -> environment doc (Programmer) -> reflection
 *   (CEO) -> manual (CPO). Two ChatDev revisions appear, 26 and 29 of 55
 *   sessions: "two-turn" phases (the user agent answers; 3, 5 or 10 review
 *   rounds in 9, 4 and 13 sessions; a Programmer <-> Test Engineer loop in 6
 *   of 26, 7 Test Engineer calls each) and "one-turn" phases (3 review
 *   rounds, then Programmer-only test fixes in 16 of 29 sessions, drawn
 *   log-normal(median 3, sigma 0.8)). Transitions in the trace: Programmer <-> Code Reviewer 286 each
 *   way, Programmer -> Programmer 267, Code Reviewer -> Code Reviewer 124,
 *   Programmer <-> Test Engineer 43.
 * - Phase prompts: the code plus a template of 270 tokens (review), the code
 *   plus the comments plus 250 (modification), the code plus 250 (tests).
 *   Sharing beyond the system prompts comes from phases re-run on unchanged
 *   code: a modification leaves the code as it was with 0.4, and a reviewer
 *   shown code it has seen repeats its comment with 0.5 (both fitted to the
 *   0.272 shared-prefix fraction).
 * - Timing, from the logs' timestamps: a call takes 7.25 s + output / 23.9
 *   tokens per s (least squares on 1,350 calls); between calls 79% have no
 *   gap, the rest are log-normal with median 8.9 s, sigma 1.67 (test runs).
 *   Arrivals: 0.035 sessions/s keeps about 32 sessions in flight.
 */
import type { GapDist, TokenDist } from './random.js';
import {
  type CommonParams,
  type FitTargets,
  type Reply,
  type SessionBuilder,
  type WorkloadShape,
} from './session.js';
import { RolePlay } from './roleplay.js';
import { CODING_TOOLS } from './tool_profiles.js';

const PE = 'Prompt Engineer';
const CEO = 'Chief Executive Officer';
const CPO = 'Chief Product Officer';
const CTO = 'Chief Technology Officer';
const PROGRAMMER = 'Programmer';
const REVIEWER = 'Code Reviewer';
const TESTER = 'Software Test Engineer';

/**
 * Parameters of the {@link pipeline} shape. Sizes in tokens: `...Prompt` is
 * a whole phase prompt, `...Template` the part of a phase prompt beyond the
 * code it shows, and the other distributions are reply sizes.
 */
export interface PipelineParams extends CommonParams {
  /** System prompt size per agent; drawn per session (they embed the task). */
  systems: Readonly<Record<string, TokenDist>>;
  /** The prompt engineer's system prompt is the same everywhere. */
  promptEngineerSystemTokens: number;
  /** Probability that a session starts by having its task rewritten. */
  selfImproveProb: number;
  /** The rewrite request. */
  selfImprovePrompt: TokenDist;
  /** The rewritten task. */
  selfImproveOutput: TokenDist;
  /** Probability that a session runs the two-turn revision of the chain. */
  twoTurnProb: number;
  /** Review rounds of two-turn sessions, as weights by count. */
  twoTurnReviewRounds: Readonly<Record<string, number>>;
  /** Review rounds of one-turn sessions. */
  oneTurnReviewRounds: number;
  /** Demand analysis (CPO). */
  demandPrompt: TokenDist;
  /** Probability that the CEO discusses the demand with the CPO. */
  demandDiscussionProb: number;
  /** In a discussion, probability of a third turn. */
  demandSecondTurnProb: number;
  /** Language choice (CTO). */
  languagePrompt: TokenDist;
  /** Coding (Programmer). */
  codingPrompt: TokenDist;
  /** The first code. */
  code: TokenDist;
  /** Log-space spread of the code size per modification; the mean size stays put. */
  codeDrift: number;
  /** Probability that a modification leaves the code as it was. */
  unchangedCodeProb: number;
  /** Review phase (Code Reviewer). */
  commentTemplate: TokenDist;
  /** The review comments. */
  comment: TokenDist;
  /** Modification phase (Programmer), beyond code and comments. */
  modificationTemplate: TokenDist;
  /** Probability that a review of code already reviewed repeats the earlier comment. */
  repeatCommentProb: number;
  /** Two-turn sessions: the Programmer's answer to the comments. */
  commentAnswer: TokenDist;
  /** Two-turn sessions: the Code Reviewer's answer to the modification. */
  modificationAnswer: TokenDist;
  /** Two-turn sessions: probability of a Programmer <-> Test Engineer loop. */
  testLoopProb: number;
  /** Rounds of that loop. */
  testRounds: TokenDist;
  /** Test phase prompt beyond the code (the test run's report). */
  testTemplate: TokenDist;
  /** The Test Engineer's answer. */
  testReport: TokenDist;
  /** One-turn sessions: probability of any Programmer-only test fixes. */
  quickFixProb: number;
  /** How many. */
  quickFixes: TokenDist;
  /** A test-fix phase. */
  quickFixTemplate: TokenDist;
  /** Environment doc phase (Programmer). */
  environmentTemplate: TokenDist;
  /** The environment doc. */
  environmentDoc: TokenDist;
  /** Reflection phase (CEO). */
  reflectionTemplate: TokenDist;
  /** The reflection. */
  reflection: TokenDist;
  /** Manual phase (CPO). */
  manualTemplate: TokenDist;
  /** The manual. */
  manual: TokenDist;
  /** Pause before each call. */
  gap: GapDist;
}

const DEFAULTS: PipelineParams = {
  systems: {
    [CPO]: { median: 259, sigma: 0.1 },
    [CTO]: { median: 277, sigma: 0.1 },
    [CEO]: { median: 289, sigma: 0.1 },
    [PROGRAMMER]: { median: 294, sigma: 0.1 },
    [REVIEWER]: { median: 264, sigma: 0.1 },
    [TESTER]: { median: 305, sigma: 0.1 },
  },
  promptEngineerSystemTokens: 25,
  selfImproveProb: 0.24,
  selfImprovePrompt: { median: 146, sigma: 0.05 },
  selfImproveOutput: { median: 155, sigma: 0.2 },
  twoTurnProb: 0.47,
  twoTurnReviewRounds: { 3: 0.35, 5: 0.15, 10: 0.5 },
  oneTurnReviewRounds: 3,
  demandPrompt: { median: 268, sigma: 0.05 },
  demandDiscussionProb: 0.25,
  demandSecondTurnProb: 0.3,
  languagePrompt: { median: 300, sigma: 0.15 },
  codingPrompt: { median: 460, sigma: 0.2 },
  code: { median: 800, sigma: 0.35, min: 50 },
  codeDrift: 0.15,
  unchangedCodeProb: 0.4,
  commentTemplate: { median: 270, sigma: 0.1 },
  comment: { median: 210, sigma: 0.6 },
  modificationTemplate: { median: 250, sigma: 0.1 },
  repeatCommentProb: 0.5,
  commentAnswer: { median: 68, sigma: 1.2 },
  modificationAnswer: { median: 600, sigma: 0.6 },
  testLoopProb: 0.23,
  testRounds: { median: 6, sigma: 0.5, max: 12 },
  testTemplate: { median: 250, sigma: 0.3 },
  testReport: { median: 290, sigma: 0.9 },
  quickFixProb: 0.55,
  quickFixes: { median: 3, sigma: 0.8, max: 12 },
  quickFixTemplate: { median: 400, sigma: 0.2 },
  environmentTemplate: { median: 200, sigma: 0.2 },
  environmentDoc: { median: 105, sigma: 0.3 },
  reflectionTemplate: { median: 550, sigma: 0.2 },
  reflection: { median: 75, sigma: 0.5 },
  manualTemplate: { median: 450, sigma: 0.2 },
  manual: { median: 600, sigma: 0.4 },
  gap: { zeroProb: 0.79, median: 8.9, sigma: 1.67 },
  service: { latencyS: 7.25, prefillTokensPerS: 20_000, decodeTokensPerS: 23.9 },
  arrivalRatePerS: 0.035,
};

const TARGETS: FitTargets = {
  trace: 'chatdev.jsonl',
  distinctAgents: 7,
  callsPerSession: 24.55,
  meanPromptTokens: 1607,
  meanOutputTokens: 483,
  sharedPrefixGlobal: 0.2722,
  sharedPrefixInSession: 0.2721,
  perAgent: {
    [PE]: { prompt: 171, output: 151 },
    [CPO]: { prompt: 1068, output: 315 },
    [CTO]: { prompt: 575, output: 11 },
    [PROGRAMMER]: { prompt: 1598, output: 633 },
    [REVIEWER]: { prompt: 1867, output: 438 },
    [CEO]: { prompt: 1580, output: 75 },
    [TESTER]: { prompt: 2432, output: 437 },
  },
};

/** The code under work: its size and the id of the reply that holds it. */
interface Code {
  version: number;
  tokens: number;
  replyId: string;
}

function generateSession(s: SessionBuilder, _index: number, p: PipelineParams): void {
  const rng = s.rng;
  const chain = new RolePlay(s, p.systems, p.gap);
  const twoTurn = rng.chance(p.twoTurnProb);

  if (rng.chance(p.selfImproveProb)) {
    const prompt = [s.named('prompt-engineer-system', p.promptEngineerSystemTokens), s.fresh(rng.tokens(p.selfImprovePrompt))];
    s.call(PE, prompt, rng.tokens(p.selfImproveOutput), { gapS: rng.gap(p.gap) });
  }

  // Demand analysis: the CPO names the product at once, or talks it over with the CEO.
  if (rng.chance(p.demandDiscussionProb)) {
    const turns = rng.chance(p.demandSecondTurnProb) ? [65, 55, 4] : [65, 55];
    chain.phase(CPO, CEO, rng.tokens(p.demandPrompt), null, turns.map((m) => rng.tokens({ median: m, sigma: 0.3 })));
  } else {
    chain.phase(CPO, CEO, rng.tokens(p.demandPrompt), null, [4]);
  }
  chain.phase(CTO, CEO, rng.tokens(p.languagePrompt), null, [4]);

  const [first] = chain.phase(PROGRAMMER, CTO, rng.tokens(p.codingPrompt), null, [rng.tokens(p.code)]);
  let code: Code = { version: 0, tokens: (first as Reply).outputTokens, replyId: (first as Reply).outputId };
  const modify = (reply: Reply): void => {
    code = { version: code.version + 1, tokens: reply.outputTokens, replyId: reply.outputId };
  };
  const nextCode = (): number | Reply =>
    rng.chance(p.unchangedCodeProb)
      ? { outputId: code.replyId, outputTokens: code.tokens }
      : Math.max(50, Math.round(code.tokens * rng.logNormal(Math.exp((-p.codeDrift * p.codeDrift) / 2), p.codeDrift)));

  const rounds = twoTurn ? Number(rng.pick(p.twoTurnReviewRounds)) : p.oneTurnReviewRounds;
  const commentOn = new Map<number, Reply>();
  for (let round = 0; round < rounds; round++) {
    const commentPrompt = code.tokens + rng.tokens(p.commentTemplate);
    // Shown the same code again, the reviewer often says the same thing.
    const earlier = commentOn.get(code.version);
    const plannedComment = earlier !== undefined && rng.chance(p.repeatCommentProb) ? earlier : rng.tokens(p.comment);
    const commentTurns = twoTurn ? [plannedComment, rng.tokens(p.commentAnswer)] : [plannedComment];
    const comment = chain.phase(REVIEWER, PROGRAMMER, commentPrompt, `review-${code.version}`, commentTurns)[0] as Reply;
    commentOn.set(code.version, comment);
    const modificationPrompt = code.tokens + comment.outputTokens + rng.tokens(p.modificationTemplate);
    const modTurns = twoTurn ? [nextCode(), rng.tokens(p.modificationAnswer)] : [nextCode()];
    const label = `modify-${code.version}-${comment.outputId}`;
    const modified = chain.phase(PROGRAMMER, REVIEWER, modificationPrompt, label, modTurns)[0] as Reply;
    if (modified.outputId !== code.replyId) modify(modified);
  }

  if (twoTurn && rng.chance(p.testLoopProb)) {
    const testRounds = rng.tokens(p.testRounds);
    for (let round = 0; round < testRounds; round++) {
      const testPrompt = code.tokens + rng.tokens(p.testTemplate);
      const fixed = chain.phase(PROGRAMMER, TESTER, testPrompt, null, [nextCode(), rng.tokens(p.testReport)])[0] as Reply;
      if (fixed.outputId !== code.replyId) modify(fixed);
    }
  } else if (!twoTurn && rng.chance(p.quickFixProb)) {
    const fixes = rng.tokens(p.quickFixes);
    for (let fix = 0; fix < fixes; fix++) {
      const fixPrompt = code.tokens + rng.tokens(p.quickFixTemplate);
      const fixed = chain.phase(PROGRAMMER, TESTER, fixPrompt, null, [nextCode()])[0] as Reply;
      if (fixed.outputId !== code.replyId) modify(fixed);
    }
  }

  chain.phase(PROGRAMMER, CTO, code.tokens + rng.tokens(p.environmentTemplate), null, [rng.tokens(p.environmentDoc)]);
  chain.phase(CEO, CPO, code.tokens + rng.tokens(p.reflectionTemplate), null, [rng.tokens(p.reflection)]);
  chain.phase(CPO, CEO, code.tokens + rng.tokens(p.manualTemplate), null, [rng.tokens(p.manual)]);
}

/** The role pipeline shape (ChatDev). */
export const pipeline: WorkloadShape<PipelineParams> = {
  name: 'pipeline',
  description: 'Fixed role pipeline of phases with code-review and test loops (ChatDev / MetaGPT style)',
  targets: TARGETS,
  defaults: DEFAULTS,
  tools: CODING_TOOLS,
  generateSession,
};
