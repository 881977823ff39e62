/**
 * The trace format: one LLM call per JSON line, plus an optional header
 * line. docs/trace-format.md describes it for people writing traces.
 *
 * On disk the fields are snake_case (`output_tokens`, `output_id`, `t_end`,
 * `reported_prompt_tokens`), as the converted real traces write them; in
 * memory they are camelCase. {@link decodeCall} (with its spellings) and
 * {@link encodeCall} are the only places that know both.
 *
 * A segment id names one token sequence; a reference `{id, tokens: n}`
 * stands for its first n tokens (rules.ts has what counts may differ). The
 * converted traces use 16 hex digits; any non-empty string of at most
 * {@link MAX_ID_LENGTH} characters is accepted, because an id is only ever
 * compared for equality.
 */
import {
  formatCount,
  MAX_CALL_TOKENS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_SEGMENT_TOKENS,
  MAX_SEGMENTS_PER_CALL,
  MAX_TIME_SECONDS,
} from './limits.js';
import { describeValue } from '../util/check.js';

export { MAX_ID_LENGTH } from './limits.js';

/** One content-addressed piece of a prompt (a system prompt, a message, a tool result). */
export interface TraceSegment {
  /** Content hash of the piece; equal ids mean equal token sequences. */
  id: string;
  /** Tokens the piece occupies in the prompt; a non-negative integer. */
  tokens: number;
}

/**
 * A tool call the agent made after an LLM call, before its session's next
 * call: what tool-result memoization needs to know of it.
 */
export interface TraceToolCall {
  tool: string;
  /** Hash of the call's arguments: equal hashes, equal arguments. */
  argsHash: string;
  /** Hash of its result: a memo answer with another hash is stale. */
  resultHash: string;
  /** Seconds it ran, when known; else the gap before the next call is shared evenly. */
  seconds?: number;
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
  /** The tool calls made after this call, in order (optional tool records). */
  tools?: TraceToolCall[];
}

/**
 * What a trace says about one of its tools, for tool-result memoization: a
 * pure tool's result depends on its arguments only; one with `ttlSeconds`
 * holds for that long; a `never` tool is never answered from a memo; a tool
 * that `reads` a resource is forgotten when one that `writes` it runs. A
 * tool no declaration names is never memoised.
 */
export interface ToolDeclaration {
  pure?: boolean;
  ttlSeconds?: number;
  never?: boolean;
  reads?: string[];
  writes?: string[];
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
  /** Declarations of the tools its tool records name, by tool name. */
  tools?: Record<string, ToolDeclaration>;
  [field: string]: unknown;
}

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
 * Why a record was refused, without its location (the reader adds FILE:LINE,
 * an in-memory check names the call). `kind` says which class of error an
 * API refusing the same value throws: `type` for a wrong type or shape
 * (TypeError), `range` for a value outside what the format allows
 * (RangeError).
 */
export class TraceRecordError extends Error {
  readonly kind: 'type' | 'range';

  constructor(problem: string, kind: 'type' | 'range' = 'range') {
    super(problem);
    this.name = 'TraceRecordError';
    this.kind = kind;
  }
}

/** How the limits' messages send the reader to the table of limits. */
export const LIMITS_DOC = 'limits: docs/trace-format.md';

type JsonObject = Record<string, unknown>;

function fail(problem: string, kind: 'type' | 'range' = 'range'): never {
  throw new TraceRecordError(problem, kind);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function name(record: JsonObject, field: string): string {
  const value = record[field];
  if (typeof value !== 'string' || value.length === 0) fail(`${field} must be a non-empty string`, typeof value === 'string' ? 'range' : 'type');
  if (value.length > MAX_NAME_LENGTH) {
    fail(`${field} has ${formatCount(value.length)} characters, more than the ${MAX_NAME_LENGTH} a name may have (${LIMITS_DOC})`);
  }
  return value;
}

function id(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    fail(`${field} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`, typeof value === 'string' ? 'range' : 'type');
  }
  return value;
}

function count(value: unknown, field: string, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(`${field} must be a non-negative integer`, typeof value === 'number' ? 'range' : 'type');
  }
  if (value > max) fail(`${field} is ${formatCount(value)}, more than the ${formatCount(max)} tokens ${what} may hold (${LIMITS_DOC})`);
  return value;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function time(value: number, field: string): number {
  if (value > MAX_TIME_SECONDS) {
    fail(`${field} is ${value} s, later than the ${formatCount(MAX_TIME_SECONDS)} s (one year) after its session's start that a trace may use (${LIMITS_DOC})`);
  }
  return value;
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
  if (!isObject(record)) fail('expected a JSON object', 'type');
  const workload = record['workload'];
  if (typeof workload !== 'string' || workload.length === 0) fail('header: workload must be a non-empty string', typeof workload === 'string' ? 'range' : 'type');
  if ('source' in record && typeof record['source'] !== 'string') fail('header: source must be a string', 'type');
  if (record['tools'] === undefined) return { ...record, workload };
  return { ...record, workload, tools: checkToolDeclarations(record['tools'], 'header: tools', fail) };
}

/** Tools a header may declare at most. */
export const MAX_TOOL_DECLARATIONS = 1024;

const DECLARATION_FIELDS = ['pure', 'ttlSeconds', 'never', 'reads', 'writes'];

/**
 * Checks tool declarations (a header's `tools`, or a policy's option of the
 * same shape) and returns a copy. `where` names the field in messages;
 * `refuse` throws the caller's error.
 */
export function checkToolDeclarations(
  value: unknown,
  where: string,
  refuse: (problem: string, kind: 'type' | 'range') => never,
): Record<string, ToolDeclaration> {
  if (!isObject(value)) refuse(`${where} must be an object of tool declarations, got ${describeValue(value)}`, 'type');
  const tools = Object.keys(value);
  if (tools.length > MAX_TOOL_DECLARATIONS) refuse(`${where} declares ${formatCount(tools.length)} tools, more than the ${formatCount(MAX_TOOL_DECLARATIONS)} allowed (${LIMITS_DOC})`, 'range');
  // A null prototype: a tool named "__proto__" or "toString" is just a name.
  const out: Record<string, ToolDeclaration> = Object.create(null) as Record<string, ToolDeclaration>;
  for (const tool of tools) {
    const raw = value[tool];
    const at = `${where}.${tool}`;
    if (tool.length === 0 || tool.length > MAX_NAME_LENGTH) refuse(`${where}: a tool name must have 1 to ${MAX_NAME_LENGTH} characters, got ${tool.length}`, 'range');
    if (!isObject(raw)) refuse(`${at} must be an object, got ${describeValue(raw)}`, 'type');
    for (const key of Object.keys(raw)) {
      if (!DECLARATION_FIELDS.includes(key)) refuse(`${at}: unknown field "${key}" (known: ${DECLARATION_FIELDS.join(', ')})`, 'type');
    }
    const declaration: ToolDeclaration = {};
    for (const flag of ['pure', 'never'] as const) {
      const v = raw[flag];
      if (v === undefined) continue;
      if (typeof v !== 'boolean') refuse(`${at}.${flag} must be a boolean, got ${describeValue(v)}`, 'type');
      declaration[flag] = v;
    }
    const ttl = raw['ttlSeconds'];
    if (ttl !== undefined) {
      if (typeof ttl !== 'number' || !(ttl > 0)) refuse(`${at}.ttlSeconds must be a number > 0 (Infinity: no limit), got ${describeValue(ttl)}`, typeof ttl === 'number' ? 'range' : 'type');
      declaration.ttlSeconds = ttl;
    }
    for (const list of ['reads', 'writes'] as const) {
      const v = raw[list];
      if (v === undefined) continue;
      if (!Array.isArray(v) || !v.every((r) => typeof r === 'string' && r.length > 0 && r.length <= MAX_NAME_LENGTH)) {
        refuse(`${at}.${list} must be an array of resource names (1 to ${MAX_NAME_LENGTH} characters), got ${describeValue(v)}`, 'type');
      }
      declaration[list] = [...(v as string[])];
    }
    if (declaration.never === true && (declaration.pure === true || declaration.ttlSeconds !== undefined)) {
      refuse(`${at}: a tool declared never memoised cannot also be pure or have ttlSeconds`, 'range');
    }
    out[tool] = declaration;
  }
  return out;
}

/** How a call's fields are spelled: on a trace line (snake_case) or in a {@link TraceCall}. */
export interface CallSpelling {
  outputTokens: string;
  outputId: string;
  tEnd: string;
  reportedPromptTokens: string;
  /** A tool record's fields. */
  argsHash: string;
  resultHash: string;
}

/** A trace line's spelling. */
export const LINE_SPELLING: CallSpelling = Object.freeze({
  outputTokens: 'output_tokens',
  outputId: 'output_id',
  tEnd: 't_end',
  reportedPromptTokens: 'reported_prompt_tokens',
  argsHash: 'args_hash',
  resultHash: 'result_hash',
});

/** A {@link TraceCall}'s spelling: checking calls built in memory with the same rules. */
export const CALL_SPELLING: CallSpelling = Object.freeze({
  outputTokens: 'outputTokens',
  outputId: 'outputId',
  tEnd: 'tEnd',
  reportedPromptTokens: 'reportedPromptTokens',
  argsHash: 'argsHash',
  resultHash: 'resultHash',
});

/**
 * Checks a decoded call line and converts it to a {@link TraceCall}: every
 * field's type and every per-call limit of limits.ts. Fields the format does
 * not define are ignored, so converters may add their own. What spans lines
 * (seq and time order within a session, the per-trace totals, segment ids'
 * token counts) is {@link TraceRules}' job.
 *
 * @param spelling the field names to read: a trace line's (the default), or
 *   {@link CALL_SPELLING} to check a {@link TraceCall} built in memory.
 * @throws TraceRecordError naming the first field that is wrong.
 */
export function decodeCall(record: unknown, spelling: CallSpelling = LINE_SPELLING): TraceCall {
  if (!isObject(record)) fail('expected a JSON object', 'type');
  const session = name(record, 'session');
  const agent = name(record, 'agent');
  const seq = record['seq'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) fail('seq must be a non-negative integer', typeof seq === 'number' ? 'range' : 'type');
  const t = record['t'];
  if (t !== null && !isTime(t)) fail('t must be a finite number >= 0 or null', typeof t === 'number' ? 'range' : 'type');
  if (t !== null) time(t, 't');

  const rawSegments = record['segments'];
  if (!Array.isArray(rawSegments) || rawSegments.length === 0) fail('segments must be a non-empty array', Array.isArray(rawSegments) ? 'range' : 'type');
  if (rawSegments.length > MAX_SEGMENTS_PER_CALL) {
    fail(`segments has ${formatCount(rawSegments.length)} entries, more than the ${formatCount(MAX_SEGMENTS_PER_CALL)} a prompt may list (${LIMITS_DOC})`);
  }
  const segments: TraceSegment[] = new Array<TraceSegment>(rawSegments.length);
  let prompt = 0;
  for (let i = 0; i < rawSegments.length; i++) {
    const segment: unknown = rawSegments[i];
    if (!isObject(segment)) fail(`segments[${i}] must be an object`, 'type');
    const segmentId = id(segment['id'], `segments[${i}].id`);
    const tokens = count(segment['tokens'], `segments[${i}].tokens`, MAX_SEGMENT_TOKENS, 'a segment');
    prompt += tokens;
    segments[i] = { id: segmentId, tokens };
  }
  if (prompt === 0) fail('segments hold 0 tokens in all: a prompt has at least 1 token');

  const outputTokens = count(record[spelling.outputTokens], spelling.outputTokens, MAX_CALL_TOKENS, 'a call');
  if (prompt + outputTokens > MAX_CALL_TOKENS) {
    fail(
      `the call holds ${formatCount(prompt + outputTokens)} tokens (segments ${formatCount(prompt)}, ${spelling.outputTokens} ${formatCount(outputTokens)}), ` +
        `more than the ${formatCount(MAX_CALL_TOKENS)} a call may hold (${LIMITS_DOC})`,
    );
  }
  const outputId = id(record[spelling.outputId], spelling.outputId);

  const call: TraceCall = { session, agent, seq, t, segments, outputTokens, outputId };
  const tEnd = record[spelling.tEnd];
  if (tEnd !== undefined && tEnd !== null) {
    if (!isTime(tEnd)) fail(`${spelling.tEnd} must be a finite number >= 0`, typeof tEnd === 'number' ? 'range' : 'type');
    if (t !== null && tEnd < t) fail(`${spelling.tEnd} must not be before t`);
    call.tEnd = time(tEnd, spelling.tEnd);
  }
  const reported = record[spelling.reportedPromptTokens];
  if (reported !== undefined && reported !== null) {
    if (typeof reported !== 'number' || !Number.isSafeInteger(reported) || reported < 0) {
      fail(`${spelling.reportedPromptTokens} must be a non-negative integer`, typeof reported === 'number' ? 'range' : 'type');
    }
    call.reportedPromptTokens = reported;
  }
  const tools = record['tools'];
  if (tools !== undefined && tools !== null) call.tools = decodeTools(tools, spelling);
  return call;
}

/** Tool records a call may list at most: more than any agent step makes. */
export const MAX_TOOLS_PER_CALL = 1024;

function decodeTools(value: unknown, spelling: CallSpelling): TraceToolCall[] {
  if (!Array.isArray(value)) fail('tools must be an array of tool records', 'type');
  if (value.length > MAX_TOOLS_PER_CALL) fail(`tools has ${formatCount(value.length)} entries, more than the ${formatCount(MAX_TOOLS_PER_CALL)} a call may list (${LIMITS_DOC})`);
  return value.map((raw: unknown, i): TraceToolCall => {
    if (!isObject(raw)) fail(`tools[${i}] must be an object`, 'type');
    const tool = raw['tool'];
    if (typeof tool !== 'string' || tool.length === 0 || tool.length > MAX_NAME_LENGTH) {
      fail(`tools[${i}].tool must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`, typeof tool === 'string' ? 'range' : 'type');
    }
    const out: TraceToolCall = {
      tool,
      argsHash: id(raw[spelling.argsHash], `tools[${i}].${spelling.argsHash}`),
      resultHash: id(raw[spelling.resultHash], `tools[${i}].${spelling.resultHash}`),
    };
    const seconds = raw['seconds'];
    if (seconds !== undefined && seconds !== null) {
      if (!isTime(seconds)) fail(`tools[${i}].seconds must be a finite number >= 0`, typeof seconds === 'number' ? 'range' : 'type');
      out.seconds = time(seconds, `tools[${i}].seconds`);
    }
    return out;
  });
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
  if (call.tools !== undefined) {
    record['tools'] = call.tools.map((t) => ({ tool: t.tool, args_hash: t.argsHash, result_hash: t.resultHash, ...(t.seconds !== undefined ? { seconds: t.seconds } : {}) }));
  }
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
