/**
 * The trace format: one LLM call per JSON line (design/replay.md, "Trace
 * format"), plus an optional header line.
 *
 * On disk the fields are snake_case (`output_tokens`, `output_id`, `t_end`,
 * `reported_prompt_tokens`), as the converted real traces write them; in
 * memory they are camelCase. {@link decodeCall} and {@link encodeCall} are the
 * only places that know both spellings.
 *
 * Segment ids are content hashes: equal id means equal text, so two prompts
 * share a prefix exactly when their segment lists do. The converted traces
 * use 16 hex digits; any non-empty string of at most {@link MAX_ID_LENGTH}
 * characters is accepted, because an id is only ever compared for equality.
 */

/** One content-addressed piece of a prompt (a system prompt, a message, a tool result). */
export interface TraceSegment {
  /** Content hash of the piece; equal ids mean equal token sequences. */
  id: string;
  /** Tokens the piece occupies in the prompt; a non-negative integer. */
  tokens: number;
}

/** One LLM call of a multi-agent session. */
export interface TraceCall {
  /** The run of the workload this call belongs to. */
  session: string;
  /** The agent (role) that made the call. */
  agent: string;
  /** Call order within the session: strictly increasing, not necessarily dense. */
  seq: number;
  /** Seconds since the session started, or `null` when the source had no clock. */
  t: number | null;
  /** The prompt, in order. */
  segments: TraceSegment[];
  /** Tokens of the reply. */
  outputTokens: number;
  /** Content hash of the reply; it usually reappears as a segment of later prompts. */
  outputId: string;
  /** Seconds since session start at which the reply was complete, when known. */
  tEnd?: number;
  /** Prompt size the serving API reported for this call, kept for validation only. */
  reportedPromptTokens?: number;
}

/**
 * The optional first line of a trace. Only `workload` is required; any other
 * fields (seed, fitted targets, session start times, ...) pass through.
 */
export interface TraceHeader {
  /** Name of the workload the trace records. */
  workload: string;
  /** Where the calls came from: a generator, or a converted public log. */
  source?: string;
  [field: string]: unknown;
}

/** Longest segment or output id accepted. */
export const MAX_ID_LENGTH = 64;

/**
 * A trace that cannot be read. The message is `FILE:LINE: what is wrong` for
 * a malformed line and `FILE: what is wrong` when the file itself is the
 * problem, so a command-line tool can print it as it is.
 */
export class TraceError extends Error {
  /** The file as the caller named it. */
  readonly file: string;
  /** 1-based line number, or `null` when the error is not about one line. */
  readonly line: number | null;
  /** What is wrong, without the location prefix. */
  readonly problem: string;

  constructor(file: string, line: number | null, problem: string) {
    super(line === null ? `${file}: ${problem}` : `${file}:${line}: ${problem}`);
    this.name = 'TraceError';
    this.file = file;
    this.line = line;
    this.problem = problem;
  }
}

/**
 * Thrown by the decoders with what is wrong; the reader adds file and line.
 * Kept apart from {@link TraceError} so the decoders need no location.
 */
export class TraceRecordError extends Error {
  constructor(problem: string) {
    super(problem);
    this.name = 'TraceRecordError';
  }
}

type JsonObject = Record<string, unknown>;

function fail(problem: string): never {
  throw new TraceRecordError(problem);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(record: JsonObject, field: string): string {
  const value = record[field];
  if (typeof value !== 'string' || value.length === 0) fail(`${field} must be a non-empty string`);
  return value;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * Whether a decoded JSON line is a header rather than a call: it names a
 * workload and no session.
 */
export function isHeaderRecord(record: unknown): boolean {
  return isObject(record) && !('session' in record) && 'workload' in record;
}

/**
 * Checks a decoded header line.
 *
 * @throws TraceRecordError naming the field that is wrong.
 */
export function decodeHeader(record: unknown): TraceHeader {
  if (!isObject(record)) fail('expected a JSON object');
  const workload = record['workload'];
  if (typeof workload !== 'string' || workload.length === 0) fail('header: workload must be a non-empty string');
  if ('source' in record && typeof record['source'] !== 'string') fail('header: source must be a string');
  return { ...record, workload };
}

/**
 * Checks a decoded call line and converts it to a {@link TraceCall}. Fields
 * the format does not define are ignored, so converters may add their own.
 * Ordering across lines (seq per session) is the reader's job.
 *
 * @throws TraceRecordError naming the first field that is wrong.
 */
export function decodeCall(record: unknown): TraceCall {
  if (!isObject(record)) fail('expected a JSON object');
  const session = nonEmptyString(record, 'session');
  const agent = nonEmptyString(record, 'agent');
  const seq = record['seq'];
  if (!isCount(seq)) fail('seq must be a non-negative integer');
  const t = record['t'];
  if (t !== null && !isTime(t)) fail('t must be a finite number >= 0 or null');

  const rawSegments = record['segments'];
  if (!Array.isArray(rawSegments) || rawSegments.length === 0) fail('segments must be a non-empty array');
  const segments: TraceSegment[] = new Array<TraceSegment>(rawSegments.length);
  for (let i = 0; i < rawSegments.length; i++) {
    const segment: unknown = rawSegments[i];
    if (!isObject(segment)) fail(`segments[${i}] must be an object`);
    const id = segment['id'];
    if (!isId(id)) fail(`segments[${i}].id must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
    const tokens = segment['tokens'];
    if (!isCount(tokens)) fail(`segments[${i}].tokens must be a non-negative integer`);
    segments[i] = { id, tokens };
  }

  const outputTokens = record['output_tokens'];
  if (!isCount(outputTokens)) fail('output_tokens must be a non-negative integer');
  const outputId = record['output_id'];
  if (!isId(outputId)) fail(`output_id must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);

  const call: TraceCall = { session, agent, seq, t, segments, outputTokens, outputId };
  const tEnd = record['t_end'];
  if (tEnd !== undefined && tEnd !== null) {
    if (!isTime(tEnd)) fail('t_end must be a finite number >= 0');
    if (t !== null && tEnd < t) fail('t_end must not be before t');
    call.tEnd = tEnd;
  }
  const reported = record['reported_prompt_tokens'];
  if (reported !== undefined && reported !== null) {
    if (!isCount(reported)) fail('reported_prompt_tokens must be a non-negative integer');
    call.reportedPromptTokens = reported;
  }
  return call;
}

/**
 * Checks that `seq` strictly increases within each session, across a stream
 * of calls in file order. Sessions may interleave.
 */
export class SessionOrder {
  readonly #lastSeq = new Map<string, number>();

  /** @throws TraceRecordError when `call.seq` does not exceed its session's previous seq. */
  check(call: Pick<TraceCall, 'session' | 'seq'>): void {
    const previous = this.#lastSeq.get(call.session);
    if (previous !== undefined && call.seq <= previous) {
      fail(`seq ${call.seq} does not increase within session ${JSON.stringify(call.session)} (previous seq ${previous})`);
    }
    this.#lastSeq.set(call.session, call.seq);
  }
}

/** The on-disk JSON object of a call, fields in the order the converted traces use. */
export function callToRecord(call: TraceCall): JsonObject {
  const record: JsonObject = {
    session: call.session,
    agent: call.agent,
    seq: call.seq,
    t: call.t,
    segments: call.segments.map((s) => ({ id: s.id, tokens: s.tokens })),
    output_tokens: call.outputTokens,
    output_id: call.outputId,
  };
  if (call.tEnd !== undefined) record['t_end'] = call.tEnd;
  if (call.reportedPromptTokens !== undefined) record['reported_prompt_tokens'] = call.reportedPromptTokens;
  return record;
}

/** One call as a trace line, without the newline. */
export function encodeCall(call: TraceCall): string {
  return JSON.stringify(callToRecord(call));
}

/** The header as a trace line, without the newline. */
export function encodeHeader(header: TraceHeader): string {
  return JSON.stringify(header);
}

/** Tokens of a call's prompt: the sum over its segments. */
export function promptTokens(call: Pick<TraceCall, 'segments'>): number {
  let total = 0;
  for (const segment of call.segments) total += segment.tokens;
  return total;
}
