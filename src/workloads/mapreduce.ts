/**
 * `mapreduce`: a question over a long document answered by fan-out and
 * verification. Mappers read one chunk each, an aggregator merges their
 * partial answers into a draft, and a judge accepts it or sends it back
 * with a critique, for a few rounds at most. This is the map-reduce of
 * long-document pipelines (LangChain's map-reduce chain; Zhou et al.,
 * "LLM×MapReduce", 2024) followed by an LLM-as-a-judge verifier loop
 * (Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena",
 * NeurIPS 2023) with self-refinement (Madaan et al., "Self-Refine", NeurIPS
 * 2023).
 *
 * What a KV cache sees:
 * - Several questions are asked about each document (`questionsPerDocument`
 *   consecutive sessions share one), and a mapper's prompt puts the chunk
 *   before the question, so a chunk's KV is reused across sessions, and the
 *   mapper system prompt across every call.
 * - The fan-out is wide and short-lived: each chunk is read once per
 *   session, then only the replies matter.
 * - The aggregator and the judge each keep a conversation that grows by one
 *   exchange per round, revisited after the other's call: a two-party loop
 *   whose next speaker is known.
 * A session's calls run one after another (the trace format orders them), so
 * the mappers are replayed back to back with no gap, as a server sees a
 * fan-out that a framework issues from one worker.
 *
 * Fitted to no trace: sizes follow the converted traces' orders of
 * magnitude (chunks of about 1,000 tokens, judge verdicts of a few dozen).
 * Timing: 0.5 s + prompt/10k + output/50 per s, hand-offs immediate.
 * Arrivals: 0.6 sessions/s (about 32 in flight).
 */
import type { TokenDist } from './random.js';
import {
  asAssistant,
  asUser,
  type CommonParams,
  type Reply,
  type SessionBuilder,
  type WorkloadShape,
} from './session.js';
import type { TraceSegment } from '../trace/format.js';

/** Parameters of the {@link mapreduce} shape. */
export interface MapReduceParams extends CommonParams {
  mapper: string;
  aggregator: string;
  judge: string;
  /** System prompts, the same in every session. */
  mapperSystemTokens: number;
  aggregatorSystemTokens: number;
  judgeSystemTokens: number;
  /** Consecutive sessions asking about the same document. */
  questionsPerDocument: number;
  /** Chunks per document (drawn once per document). */
  chunks: TokenDist;
  /** Tokens per chunk (drawn once per chunk of a document). */
  chunk: TokenDist;
  /** The question. */
  question: TokenDist;
  /** A mapper's partial answer. */
  partial: TokenDist;
  /** The aggregator's draft (first and revised). */
  draft: TokenDist;
  /** The judge's verdict (acceptance or critique). */
  verdict: TokenDist;
  /** Probability that the judge accepts a draft. */
  acceptProb: number;
  /** Most judge calls per session (the last verdict stands). */
  maxRounds: number;
}

const DEFAULTS: MapReduceParams = {
  mapper: 'Mapper',
  aggregator: 'Aggregator',
  judge: 'Judge',
  mapperSystemTokens: 450,
  aggregatorSystemTokens: 600,
  judgeSystemTokens: 700,
  questionsPerDocument: 3,
  chunks: { median: 8, sigma: 0.4, min: 3, max: 16 },
  chunk: { median: 1000, sigma: 0.3, min: 200, max: 2000 },
  question: { median: 60, sigma: 0.5, min: 8 },
  partial: { median: 120, sigma: 0.6 },
  draft: { median: 350, sigma: 0.4 },
  verdict: { median: 70, sigma: 0.5 },
  acceptProb: 0.55,
  maxRounds: 3,
  service: { latencyS: 0.5, prefillTokensPerS: 10_000, decodeTokensPerS: 50 },
  arrivalRatePerS: 0.6,
};

/** The chunks of document `doc`: named segments, the same in every session that reads it. */
function documentChunks(s: SessionBuilder, p: MapReduceParams, doc: number): TraceSegment[] {
  const rng = s.sharedRng(`document-${doc}`);
  const count = rng.tokens(p.chunks);
  return Array.from({ length: count }, (_, i) => s.named(`document-${doc}/chunk-${i}`, rng.tokens(p.chunk)));
}

function generateSession(s: SessionBuilder, index: number, p: MapReduceParams): void {
  if (!(Number.isSafeInteger(p.questionsPerDocument) && p.questionsPerDocument >= 1)) {
    throw new RangeError(`mapreduce: questionsPerDocument must be a positive integer, got ${p.questionsPerDocument}`);
  }
  if (!(Number.isSafeInteger(p.maxRounds) && p.maxRounds >= 1)) throw new RangeError(`mapreduce: maxRounds must be a positive integer, got ${p.maxRounds}`);
  const rng = s.rng;
  const chunks = documentChunks(s, p, Math.floor(index / p.questionsPerDocument));
  const question = s.fresh(rng.tokens(p.question));

  const mapperSystem = s.named('mapper-system', p.mapperSystemTokens);
  const partials: Reply[] = chunks.map((chunk) => s.call(p.mapper, [mapperSystem, chunk, question], rng.tokens(p.partial)));

  const drafting: TraceSegment[] = [s.named('aggregator-system', p.aggregatorSystemTokens), question, ...partials.map(asUser)];
  const judging: TraceSegment[] = [s.named('judge-system', p.judgeSystemTokens), question];
  let draft = s.call(p.aggregator, drafting, rng.tokens(p.draft));
  for (let round = 1; ; round++) {
    judging.push(asUser(draft));
    const verdict = s.call(p.judge, judging, rng.tokens(p.verdict));
    if (round >= p.maxRounds || rng.chance(p.acceptProb)) return;
    judging.push(asAssistant(verdict));
    drafting.push(asAssistant(draft), asUser(verdict));
    draft = s.call(p.aggregator, drafting, rng.tokens(p.draft));
  }
}

/** The map-reduce with a judge loop shape (LLM×MapReduce, LLM-as-a-judge, Self-Refine). */
export const mapreduce: WorkloadShape<MapReduceParams> = {
  name: 'mapreduce',
  description: 'Fan-out of chunk mappers, an aggregator and a judge that sends drafts back (map-reduce with LLM-as-a-judge)',
  targets: null,
  modelledOn: 'LLM×MapReduce (Zhou et al., 2024); LLM-as-a-judge (Zheng et al., NeurIPS 2023); Self-Refine (Madaan et al., NeurIPS 2023)',
  defaults: DEFAULTS,
  generateSession,
};
