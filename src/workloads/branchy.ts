/**
 * `branchy`: a workflow whose next agent depends on the task type. The CPO
 * reads the request; a fully specified task goes straight to the CTO and on
 * to coding, an open one is first talked over with the CEO, and one that
 * leaves the language open also gets a CTO <-> CEO debate and a CEO ruling.
 * Then sprints of review (Code Reviewer) and modification (Programmer) and
 * a wrap-up (two Programmer phases, CEO, CPO). The task type is appended to
 * the session name (`branchy/s0007-debate`).
 *
 * Fitted to chatdev_agile.jsonl (a ChatDev fork's "Agile" chain; 588
 * sessions, 44,236 calls). Targets from stats.json and measured on the trace:
 * - 6 agents; mean prompt 1,461 tokens, mean output 525; shared prefix
 *   0.530 global, 0.526 in-session.
 * - Per agent (prompt / output): CPO 1,104 / 304, CEO 1,158 / 54,
 *   CTO 861 / 4, Programmer_1 769 / 888, Code Reviewer 1,424 / 519,
 *   Programmer 1,673 / 684. System prompts 349 to 409 tokens.
 * - Task types from the trace's head paths: 0.12 "specified" (CPO -> CTO,
 *   68 sessions), 0.60 "discuss" (CPO <-> CEO for 2 to 5 turns, weights
 *   52 / 190 / 217 / 35; then the CTO alone, or with 0.55 a CEO answer),
 *   0.28 "debate" (the same discussion, then 10 CTO <-> CEO exchanges of a
 *   few tokens each and a CEO ruling, 1,090-token prompt). Hand-offs:
 *   CTO -> Programmer_1 229, CEO -> Programmer_1 359.
 * - Sprints: the Code Reviewer sees the code (its previous prompt recurs
 *   verbatim in 56% of its calls: the code it reviews is unchanged), and
 *   the Programmer sees code plus comment (its prompt recurs in 31%).
 *   Code starts as Programmer_1's output (median 840, sigma 0.37); reviews
 *   median 490, sigma 0.39; modifications median 625, sigma 0.44.
 * - Timing from the logs: a call takes 1.5 s + output / 64 tokens per s
 *   (gpt-4o-mini); 83% of gaps are zero, the rest log-normal with median
 *   2.5 s, sigma 0.47.
 *
 * Deliberately not as in the trace: the fork runs a fixed 32-round sprint
 * loop (65 loop calls in 77% of sessions, 35 in 17%); here rounds depend on
 * the task type (6, 8, 10) so 200 sessions stay at a few thousand calls.
 * Per-call sizes are unchanged; set `sprintRounds` to 32 to restore the
 * loop. Arrivals: 0.12 sessions/s (about 32 in flight).
 */
import type { Rng, GapDist, TokenDist } from './random.js';
import { RolePlay } from './roleplay.js';
import type { CommonParams, FitTargets, Reply, SessionBuilder, WorkloadShape } from './session.js';
import { CODING_TOOLS } from './tool_profiles.js';

const CPO = 'Chief Product Officer';
const CEO = 'Chief Executive Officer';
const CTO = 'Chief Technology Officer';
const FIRST_PROGRAMMER = 'Programmer_1';
const PROGRAMMER = 'Programmer';
const REVIEWER = 'Code Reviewer';

/** The kinds of task that choose the path. */
export type TaskType = 'specified' | 'discuss' | 'debate';

/**
 * Parameters of the {@link branchy} shape. Sizes in tokens: `...Prompt` is
 * a whole phase prompt, `...Template` the part of a phase prompt beyond the
 * code it shows, and the other distributions are reply sizes.
 */
export interface BranchyParams extends CommonParams {
  /** How often each task type occurs. */
  taskTypes: Readonly<Record<TaskType, number>>;
  /** System prompt size per agent; drawn per session (they embed the task). */
  systems: Readonly<Record<string, TokenDist>>;
  /** Demand analysis (CPO). */
  demandPrompt: TokenDist;
  /** Turns of the CPO <-> CEO discussion for open tasks, as weights by count. */
  discussionTurns: Readonly<Record<string, number>>;
  /** The CPO's turns in that discussion. */
  cpoReply: TokenDist;
  /** The CEO's turns in that discussion. */
  ceoReply: TokenDist;
  /** Language choice (CTO). */
  languagePrompt: TokenDist;
  /** Discussed tasks: probability that the CEO answers the CTO's language choice. */
  languageAnswerProb: number;
  /** Debated tasks: CTO <-> CEO exchanges (two calls each). */
  debateExchanges: number;
  /** Every turn of the language choice and debate. */
  debateReply: TokenDist;
  /** Debated tasks: the CEO's ruling phase. */
  rulingPrompt: TokenDist;
  /** The ruling. */
  ruling: TokenDist;
  /** Coding (Programmer_1). */
  codingPrompt: TokenDist;
  /** The first code. */
  code: TokenDist;
  /** Review-and-modify rounds by task type, or one count for all. */
  sprintRounds: Readonly<Record<TaskType, TokenDist>> | number;
  /** Review phase (Code Reviewer). */
  reviewTemplate: TokenDist;
  /** The review. */
  review: TokenDist;
  /** Modification phase (Programmer), beyond code and review. */
  modificationTemplate: TokenDist;
  /** The modification. */
  modification: TokenDist;
  /** The code in later prompts, as a share of Programmer_1's reply (which also holds prose). */
  codeShare: number;
  /** Log-space spread of the code size per change; the mean size stays put. */
  codeDrift: number;
  /** Probability that a round leaves the code the reviewer sees unchanged. */
  unchangedCodeProb: number;
  /** Shown unchanged code, probability that the reviewer repeats its comment. */
  repeatReviewProb: number;
  /** Shown the same prompt again, probability that the programmer repeats its answer. */
  repeatModificationProb: number;
  /** Each of the two wrap-up phases (Programmer). */
  wrapUpTemplate: TokenDist;
  /** Their replies. */
  wrapUp: TokenDist;
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

const DEFAULTS: BranchyParams = {
  taskTypes: { specified: 0.12, discuss: 0.6, debate: 0.28 },
  systems: {
    [CPO]: { median: 349, sigma: 0.1 },
    [CEO]: { median: 409, sigma: 0.1 },
    [CTO]: { median: 393, sigma: 0.1 },
    [FIRST_PROGRAMMER]: { median: 401, sigma: 0.1 },
    [REVIEWER]: { median: 353, sigma: 0.1 },
    [PROGRAMMER]: { median: 400, sigma: 0.1 },
  },
  demandPrompt: { median: 264, sigma: 0.02 },
  discussionTurns: { 2: 52, 3: 190, 4: 217, 5: 35 },
  cpoReply: { median: 100, sigma: 0.4 },
  ceoReply: { median: 115, sigma: 0.4 },
  languagePrompt: { median: 372, sigma: 0.28 },
  languageAnswerProb: 0.55,
  debateExchanges: 10,
  debateReply: { median: 3, sigma: 0.28 },
  rulingPrompt: { median: 1040, sigma: 0.2 },
  ruling: { median: 60, sigma: 0.5 },
  codingPrompt: { median: 367, sigma: 0.01 },
  code: { median: 840, sigma: 0.37, min: 50 },
  sprintRounds: {
    specified: { median: 6, sigma: 0 },
    discuss: { median: 8, sigma: 0 },
    debate: { median: 10, sigma: 0 },
  },
  reviewTemplate: { median: 330, sigma: 0.2 },
  review: { median: 490, sigma: 0.39 },
  modificationTemplate: { median: 20, sigma: 0.3 },
  modification: { median: 625, sigma: 0.44 },
  codeShare: 0.85,
  codeDrift: 0.15,
  unchangedCodeProb: 0.56,
  repeatReviewProb: 0.55,
  repeatModificationProb: 0.3,
  wrapUpTemplate: { median: 150, sigma: 0.3 },
  wrapUp: { median: 600, sigma: 0.5 },
  reflectionTemplate: { median: 800, sigma: 0.2 },
  reflection: { median: 100, sigma: 0.5 },
  manualTemplate: { median: 600, sigma: 0.2 },
  manual: { median: 700, sigma: 0.4 },
  gap: { zeroProb: 0.83, median: 2.5, sigma: 0.47 },
  service: { latencyS: 1.5, prefillTokensPerS: 20_000, decodeTokensPerS: 64 },
  arrivalRatePerS: 0.12,
};

const TARGETS: FitTargets = {
  trace: 'chatdev_agile.jsonl',
  distinctAgents: 6,
  callsPerSession: 75.23,
  meanPromptTokens: 1461,
  meanOutputTokens: 525,
  sharedPrefixGlobal: 0.5303,
  sharedPrefixInSession: 0.5264,
  perAgent: {
    [CPO]: { prompt: 1104, output: 304 },
    [CEO]: { prompt: 1158, output: 54 },
    [CTO]: { prompt: 861, output: 4 },
    [FIRST_PROGRAMMER]: { prompt: 769, output: 888 },
    [REVIEWER]: { prompt: 1424, output: 519 },
    [PROGRAMMER]: { prompt: 1673, output: 684 },
  },
};

function sessionKind(rng: Rng, _index: number, p: BranchyParams): TaskType {
  return rng.pick(p.taskTypes);
}

function sprintRounds(rng: Rng, p: BranchyParams, type: TaskType): number {
  return typeof p.sprintRounds === 'number' ? p.sprintRounds : rng.tokens(p.sprintRounds[type]);
}

function generateSession(s: SessionBuilder, _index: number, p: BranchyParams, kind: string | null): void {
  const rng = s.rng;
  const type = (kind ?? 'discuss') as TaskType;
  const roles = new RolePlay(s, p.systems, p.gap);

  // Demand analysis: the task type decides whether the CEO is consulted.
  const demandTurns = type === 'specified' ? 1 : Number(rng.pick(p.discussionTurns));
  const demand: number[] = [];
  for (let turn = 0; turn < demandTurns; turn++) demand.push(rng.tokens(turn % 2 === 0 ? p.cpoReply : p.ceoReply));
  roles.phase(CPO, CEO, rng.tokens(p.demandPrompt), null, demand);

  // Language choice: and whether the CEO argues about it.
  const languageTurns =
    type === 'debate' ? 2 * p.debateExchanges : type === 'discuss' && rng.chance(p.languageAnswerProb) ? 2 : 1;
  const language: number[] = [];
  for (let turn = 0; turn < languageTurns; turn++) language.push(rng.tokens(p.debateReply));
  roles.phase(CTO, CEO, rng.tokens(p.languagePrompt), null, language);
  if (type === 'debate') roles.phase(CEO, CTO, rng.tokens(p.rulingPrompt), null, [rng.tokens(p.ruling)]);

  const first = roles.phase(FIRST_PROGRAMMER, CTO, rng.tokens(p.codingPrompt), null, [rng.tokens(p.code)])[0] as Reply;
  let code = { version: 0, tokens: Math.round(first.outputTokens * p.codeShare) };

  const reviewOf = new Map<number, Reply>();
  const answerTo = new Map<string, Reply>();
  const rounds = sprintRounds(rng, p, type);
  for (let round = 0; round < rounds; round++) {
    const earlierReview = reviewOf.get(code.version);
    const plannedReview = earlierReview !== undefined && rng.chance(p.repeatReviewProb) ? earlierReview : rng.tokens(p.review);
    const reviewPrompt = code.tokens + rng.tokens(p.reviewTemplate);
    const review = roles.phase(REVIEWER, PROGRAMMER, reviewPrompt, `review-${code.version}`, [plannedReview])[0] as Reply;
    reviewOf.set(code.version, review);

    const label = `modify-${code.version}-${review.outputId}`;
    const earlierAnswer = answerTo.get(label);
    const plannedAnswer =
      earlierAnswer !== undefined && rng.chance(p.repeatModificationProb) ? earlierAnswer : rng.tokens(p.modification);
    const modificationPrompt = code.tokens + review.outputTokens + rng.tokens(p.modificationTemplate);
    const answer = roles.phase(PROGRAMMER, REVIEWER, modificationPrompt, label, [plannedAnswer])[0] as Reply;
    answerTo.set(label, answer);
    if (!rng.chance(p.unchangedCodeProb)) {
      const drift = rng.logNormal(Math.exp((-p.codeDrift * p.codeDrift) / 2), p.codeDrift);
      code = { version: code.version + 1, tokens: Math.max(50, Math.round(code.tokens * drift)) };
    }
  }

  for (let step = 0; step < 2; step++) {
    roles.phase(PROGRAMMER, REVIEWER, code.tokens + rng.tokens(p.wrapUpTemplate), null, [rng.tokens(p.wrapUp)]);
  }
  roles.phase(CEO, CPO, code.tokens + rng.tokens(p.reflectionTemplate), null, [rng.tokens(p.reflection)]);
  roles.phase(CPO, CEO, code.tokens + rng.tokens(p.manualTemplate), null, [rng.tokens(p.manual)]);
}

/** The task-type-dependent workflow shape (ChatDev "Agile" chain). */
export const branchy: WorkloadShape<BranchyParams> = {
  name: 'branchy',
  description: 'Workflow whose path depends on the task type: specified, discussed or debated (ChatDev Agile chain)',
  targets: TARGETS,
  defaults: DEFAULTS,
  tools: CODING_TOOLS,
  sessionKind,
  generateSession,
};
