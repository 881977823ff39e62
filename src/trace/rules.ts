/**
 * The rules of a trace that span lines, checked call by call in file order:
 *
 * - `seq` strictly increases within a session (sessions may interleave);
 * - `t` does not go back within a session: a call's `t` is not earlier than
 *   the `t` of its session's previous call that has one;
 * - the totals of limits.ts: calls, tokens and distinct agents per trace;
 * - what a segment id's token counts may say.
 *
 * Segment ids. An id names one token sequence, and a reference
 * `{id, tokens: n}` stands for its first n tokens: token i of it is
 * identified by (id, i), which is how replay hashes it (hashing.ts). Two
 * references with different counts therefore agree on their common prefix by
 * construction. The real traces use that in two ways, and both are allowed
 * (and counted):
 *
 * - a reply re-sent as a message: `output_id` is the id the reply gets when
 *   it comes back as a segment, whose count adds the chat framing (3 or 4
 *   tokens), so the output is a prefix of the segment;
 * - one text in sessions that used different tokenizers (the real traces
 *   pick the tokenizer per session), or a reply whose reported size differs
 *   between calls.
 *
 * Within one session a segment is one message as that session sent it, so
 * every segment reference to an id in a session gives the same count; a
 * different one is refused, naming both places. In strict mode any id seen
 * with two counts, anywhere and as a segment or an output, is refused.
 */
import { MAX_AGENTS, MAX_CALLS, MAX_TRACE_TOKENS, formatCount } from './limits.js';
import { LIMITS_DOC, TraceRecordError, type TraceCall } from './format.js';

/** How a trace used segment ids with several token counts (all allowed ones). */
export interface TokenCountSummary {
  /** Ids referenced with more than one token count. */
  idsWithSeveralCounts: number;
  /** References (segments and outputs) whose count differs from their id's first one. */
  referencesWithOtherCount: number;
}

/** Options of {@link TraceRules}. */
export interface TraceRulesOptions {
  /** Refuse any id seen with two token counts, as a segment or an output, anywhere in the trace. */
  strict?: boolean;
  /**
   * Count the ids seen with several token counts ({@link TraceRules.tokenCounts}).
   * This and strict mode keep every distinct id (segments and replies);
   * without them only each session's segment ids are kept.
   */
  count?: boolean;
  /** How a call's position reads in a message about it: a line `trace.jsonl:7`, or `calls[6]`. */
  locate: (position: number) => string;
  /** How messages spell the reply's size: `output_tokens` (a trace line, the default) or `outputTokens`. */
  outputField?: string;
}

interface SessionState {
  lastSeq: number;
  /** `t` of the session's latest call that has one, and where that call is. */
  lastTime: number | null;
  lastTimePosition: number;
  /** Segment id -> index of the session's first reference to it (in the reference arrays). */
  segments: Map<string, number>;
}

const SEGMENT_RULE = 'within a session a segment id names one message, of one length: docs/trace-format.md';
const STRICT_RULE = 'strict mode: an id has one token count in the whole trace; docs/trace-format.md';

function fail(problem: string): never {
  throw new TraceRecordError(problem);
}

/**
 * Checks the rules that span lines, one call at a time, in trace order.
 * Memory grows with distinct ids, sessions and agents, which the limits
 * bound. A refused call may leave part of itself noted: stop at the first
 * error.
 */
export class TraceRules {
  readonly #strict: boolean;
  /** Whether every distinct id is kept: for strict mode or for counting. */
  readonly #global: boolean;
  readonly #locate: (position: number) => string;
  readonly #outputField: string;
  readonly #sessions = new Map<string, SessionState>();
  readonly #agents = new Set<string>();
  #calls = 0;
  #tokens = 0;

  // Per distinct id (its slot): the first reference's count, position and
  // field, and whether the id was seen with another count.
  readonly #slots = new Map<string, number>();
  readonly #firstTokens: number[] = [];
  readonly #firstPosition: number[] = [];
  /** Index of the segment in its call, or -1 for the call's output. */
  readonly #firstField: number[] = [];
  readonly #varies: boolean[] = [];
  // Each session's first segment reference to an id: its count and position.
  readonly #referenceTokens: number[] = [];
  readonly #referencePosition: number[] = [];

  #idsWithSeveralCounts = 0;
  #referencesWithOtherCount = 0;

  constructor(options: TraceRulesOptions) {
    this.#strict = options.strict === true;
    this.#global = this.#strict || options.count === true;
    this.#locate = options.locate;
    this.#outputField = options.outputField ?? 'output_tokens';
  }

  /** Calls checked so far. */
  get calls(): number {
    return this.#calls;
  }

  /** Sessions seen so far. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** The allowed uses of several token counts for one id, so far; null unless counting (or strict). */
  get tokenCounts(): TokenCountSummary | null {
    if (!this.#global) return null;
    return { idsWithSeveralCounts: this.#idsWithSeveralCounts, referencesWithOtherCount: this.#referencesWithOtherCount };
  }

  /**
   * Checks the next call of the trace, at `position` (its line, or index).
   *
   * @throws TraceRecordError naming the field, and the earlier call's place
   *   where the rule involves one.
   */
  check(call: TraceCall, position: number): void {
    let session = this.#sessions.get(call.session);
    if (session !== undefined) {
      if (call.seq <= session.lastSeq) {
        fail(`seq ${call.seq} does not increase within session ${JSON.stringify(call.session)} (previous seq ${session.lastSeq})`);
      }
      if (call.t !== null && session.lastTime !== null && call.t < session.lastTime) {
        fail(
          `t ${call.t} is earlier than t ${session.lastTime} of the previous call of session ${JSON.stringify(call.session)} ` +
            `at ${this.#locate(session.lastTimePosition)}: time does not go back within a session (docs/trace-format.md)`,
        );
      }
    }
    if (this.#calls >= MAX_CALLS) fail(`the trace holds more than ${formatCount(MAX_CALLS)} calls, the most a trace may hold (${LIMITS_DOC})`);
    let callTokens = call.outputTokens;
    for (const segment of call.segments) callTokens += segment.tokens;
    if (this.#tokens + callTokens > MAX_TRACE_TOKENS) {
      fail(
        `with this call the trace holds ${formatCount(this.#tokens + callTokens)} tokens, ` +
          `more than the ${formatCount(MAX_TRACE_TOKENS)} a trace may hold (${LIMITS_DOC})`,
      );
    }
    if (!this.#agents.has(call.agent) && this.#agents.size >= MAX_AGENTS) {
      fail(`agent ${JSON.stringify(call.agent)} is one more than the ${formatCount(MAX_AGENTS)} distinct agents a trace may name (${LIMITS_DOC})`);
    }
    if (session === undefined) {
      session = { lastSeq: call.seq, lastTime: null, lastTimePosition: 0, segments: new Map() };
      this.#sessions.set(call.session, session);
    }
    this.#checkIds(call, position, session);

    session.lastSeq = call.seq;
    if (call.t !== null) {
      session.lastTime = call.t;
      session.lastTimePosition = position;
    }
    this.#agents.add(call.agent);
    this.#calls++;
    this.#tokens += callTokens;
  }

  #checkIds(call: TraceCall, position: number, session: SessionState): void {
    const segments = call.segments;
    for (let i = 0; i < segments.length; i++) {
      const { id, tokens } = segments[i]!;
      if (this.#global) this.#reference(id, tokens, position, i);
      const first = session.segments.get(id);
      if (first === undefined) {
        session.segments.set(id, this.#referenceTokens.length);
        this.#referenceTokens.push(tokens);
        this.#referencePosition.push(position);
      } else if (this.#referenceTokens[first] !== tokens) {
        fail(
          `${this.#fieldName(i)}: segment ${JSON.stringify(id)} has ${tokens} tokens here but ${this.#referenceTokens[first]} ` +
            `at ${this.#locate(this.#referencePosition[first]!)} in the same session ${JSON.stringify(call.session)} (${SEGMENT_RULE})`,
        );
      }
    }
    if (this.#global) this.#reference(call.outputId, call.outputTokens, position, -1);
  }

  /** The field of a reference: segment `index`'s tokens, or the output's (-1). */
  #fieldName(index: number): string {
    return index < 0 ? this.#outputField : `segments[${index}].tokens`;
  }

  /** Notes one reference to `id`, for strict mode and the counts. */
  #reference(id: string, tokens: number, position: number, field: number): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) {
      this.#slots.set(id, this.#firstTokens.length);
      this.#firstTokens.push(tokens);
      this.#firstPosition.push(position);
      this.#firstField.push(field);
      this.#varies.push(false);
      return;
    }
    const firstTokens = this.#firstTokens[slot]!;
    if (firstTokens === tokens) return;
    if (this.#strict) {
      fail(
        `${this.#fieldName(field)}: id ${JSON.stringify(id)} has ${tokens} tokens here but ${firstTokens} at ` +
          `${this.#locate(this.#firstPosition[slot]!)} (${this.#fieldName(this.#firstField[slot]!)}) (${STRICT_RULE})`,
      );
    }
    this.#referencesWithOtherCount++;
    if (!this.#varies[slot]) {
      this.#varies[slot] = true;
      this.#idsWithSeveralCounts++;
    }
  }
}
