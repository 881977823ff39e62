/**
 * A trace prepared for replay: calls grouped by session, each with its
 * block hashes (prompt, and prompt plus reply), token counts, and the tool
 * gap before the session's next call.
 */
import { CALL_SPELLING, decodeCall, TraceRecordError, type TraceCall, type TraceToolCall } from '../trace/format.js';
import { MAX_HASH_BLOCK_SIZE, PromptHasher } from '../trace/hashing.js';
import { formatCount, MAX_NAME_LENGTH } from '../trace/limits.js';
import { TraceRules, type TokenCountSummary } from '../trace/rules.js';
import { checkInt, describeValue } from '../util/check.js';
import { seededRandom } from '../util/random.js';
import { BlockIds, SessionBlocks } from './block_ids.js';
import { prefillSeconds, type CostModel } from './cost_model.js';

export interface SimCall {
  session: number;
  index: number;
  agent: string;
  promptTokens: number;
  outputTokens: number;
  /** Full blocks of the prompt. */
  promptHashes: BigUint64Array;
  /** Full blocks of the prompt followed by the reply: what later calls extend. */
  allHashes: BigUint64Array;
  /** Seconds between this call's reply and the session's next call (tool time). */
  gapAfter: number;
  /** The tool calls the trace records in that gap, when it records them. */
  tools?: TraceToolCall[];
}

export interface SimSession {
  name: string;
  calls: SimCall[];
  /** Every block the session references (prompts and replies). */
  blocks: SessionBlocks;
  /** The workload its events name, in a mix of several (absent: SimWorkload.name). */
  workload?: string;
}

export interface SimWorkload {
  name: string;
  blockSize: number;
  sessions: SimSession[];
  calls: number;
  /** Dense ids of the distinct blocks of all calls (prompts and replies); blockIds.size counts them. */
  blockIds: BlockIds;
  /** Ids the calls referenced with several token counts, as the trace rules allow (trace/rules.ts). */
  tokenCounts: TokenCountSummary;
}

/**
 * Full blocks a replay holds at most, over all its calls' prompts and
 * replies (2^24: a JavaScript Set's size, and 256 MiB of block hashes). A
 * trace within the format's limits stays under it at block sizes of 16
 * tokens and more.
 */
export const MAX_REPLAY_BLOCKS = 2 ** 24;

/** Full blocks of the calls' prompts and replies at `blockSize`: what a replay hashes and holds. */
export function replayBlocks(calls: Iterable<TraceCall>, blockSize: number): number {
  let blocks = 0;
  for (const call of calls) {
    let tokens = call.outputTokens;
    for (const segment of call.segments) tokens += segment.tokens;
    blocks += Math.floor(tokens / blockSize);
  }
  return blocks;
}

/**
 * Checks calls built in memory with the trace reader's own rules: each
 * call's fields and limits, then the rules across calls (trace/rules.ts).
 *
 * @throws TypeError naming `calls[i]` and the field, for a wrong type or shape.
 * @throws RangeError naming `calls[i]` and the field (and the earlier call a
 *   rule involves), for a value the format does not allow.
 */
export function checkCalls(calls: Iterable<TraceCall>, op: string): { calls: TraceCall[]; tokenCounts: TokenCountSummary } {
  if (calls === null || typeof calls !== 'object' || typeof (calls as Iterable<TraceCall>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`${op}: calls must be an iterable of trace calls, got ${describeValue(calls)}`);
  }
  const rules = new TraceRules({ locate: (i) => `calls[${i}]`, count: true, outputField: CALL_SPELLING.outputTokens });
  const list: TraceCall[] = [];
  for (const call of calls) {
    const i = list.length;
    try {
      rules.check(decodeCall(call, CALL_SPELLING), i);
    } catch (error) {
      if (!(error instanceof TraceRecordError)) throw error;
      const message = `${op}: calls[${i}]: ${error.message}`;
      throw error.kind === 'type' ? new TypeError(message) : new RangeError(message);
    }
    list.push(call);
  }
  return { calls: list, tokenCounts: rules.tokenCounts! };
}

/** Median 0.5 s, log-normal with sigma 1: tool time when a trace has no timestamps. */
function sampleGap(random: () => number): number {
  const u1 = Math.max(random(), 1e-12);
  const u2 = random();
  const normal = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return 0.5 * Math.exp(normal);
}

/**
 * Groups calls by session (in order of first appearance, calls by seq),
 * hashes them, and derives tool gaps: from timestamps when the trace has
 * them (the time between calls less what this engine would take to serve
 * the earlier one uncached), otherwise from a seeded log-normal. The calls
 * are first checked with the trace reader's rules ({@link checkCalls}).
 *
 * @throws TypeError / RangeError naming the argument, or `calls[i]` and its
 *   field; RangeError when the calls make more than {@link MAX_REPLAY_BLOCKS}
 *   blocks at `blockSize`.
 */
export function prepareWorkload(name: string, calls: Iterable<TraceCall>, blockSize: number, model: CostModel, seed: number, toolGaps = true): SimWorkload {
  checkWorkloadName(name, 'prepareWorkload: name');
  checkInt(blockSize, 'prepareWorkload: blockSize', 1, MAX_HASH_BLOCK_SIZE);
  if (typeof model !== 'object' || model === null) throw new TypeError(`prepareWorkload: model must be a CostModel, got ${describeValue(model)}`);
  checkInt(seed, 'prepareWorkload: seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const checked = checkCalls(calls, 'prepareWorkload');
  const blocks = replayBlocks(checked.calls, blockSize);
  if (blocks > MAX_REPLAY_BLOCKS) {
    throw new RangeError(
      `prepareWorkload: the calls make ${formatCount(blocks)} blocks of ${blockSize} tokens, more than the ` +
        `${formatCount(MAX_REPLAY_BLOCKS)} a replay holds; use a larger blockSize`,
    );
  }
  const hasher = new PromptHasher(blockSize);
  const bySession = new Map<string, TraceCall[]>();
  for (const call of checked.calls) {
    let list = bySession.get(call.session);
    if (!list) bySession.set(call.session, (list = []));
    list.push(call);
  }
  const random = seededRandom(seed);
  const sessions: SimSession[] = [];
  const blockIds = new BlockIds(blocks);
  // The last session that listed each block id: a session lists a block once.
  let listedBy = new Int32Array(1024);
  let total = 0;
  for (const [sessionName, list] of bySession) {
    list.sort((a, b) => a.seq - b.seq);
    const session: SimSession = { name: sessionName, calls: [], blocks: new SessionBlocks(new Int32Array(0)) };
    const stamp = sessions.length + 1;
    const listed: number[] = [];
    list.forEach((call, index) => {
      const prompt = hasher.hashPrompt(call.segments);
      const all = hasher.hashWithOutput(call.segments, call.outputId, call.outputTokens);
      for (const h of all.hashes) {
        const id = blockIds.intern(h);
        if (id >= listedBy.length) {
          const grown = new Int32Array(Math.max(listedBy.length * 2, id + 1));
          grown.set(listedBy);
          listedBy = grown;
        }
        if (listedBy[id] === stamp) continue;
        listedBy[id] = stamp;
        listed.push(id);
      }
      const next = list[index + 1];
      let gapAfter = 0;
      if (next && toolGaps) {
        if (call.t !== null && next.t !== null) {
          const served = prefillSeconds(model, prompt.numTokens, 0) + call.outputTokens * model.decodeIterationSeconds;
          gapAfter = Math.max(0, next.t - call.t - served);
        } else {
          gapAfter = sampleGap(random);
        }
      }
      session.calls.push({
        session: sessions.length,
        index,
        agent: call.agent,
        promptTokens: prompt.numTokens,
        outputTokens: Math.max(1, call.outputTokens),
        promptHashes: prompt.hashes,
        allHashes: all.hashes,
        gapAfter,
        // Without tool time there are no tool calls to report either (as the reference engine serves a trace).
        ...(call.tools !== undefined && toolGaps ? { tools: call.tools } : {}),
      });
    });
    session.blocks = new SessionBlocks(Int32Array.from(listed));
    total += list.length;
    sessions.push(session);
  }
  return { name, blockSize, sessions, calls: total, blockIds, tokenCounts: checked.tokenCounts };
}

/** Blocks of the workload's largest call, prompt and reply (at least 1): the least a device tier may hold. */
/**
 * Open-loop session starts: the first at 0, then exponential gaps with mean
 * 1 / rate, drawn from `seed`. The simulator and the reference engine start
 * sessions at exactly these times, so a run on either can predict the other.
 */
export function openLoopStarts(sessions: number, rate: number, seed: number): number[] {
  const random = seededRandom(seed * 7919);
  const starts: number[] = [];
  let t = 0;
  for (let s = 0; s < sessions; s++) {
    starts.push(t);
    t += -Math.log(1 - random()) / rate;
  }
  return starts;
}

export function largestCallBlocks(workload: SimWorkload): number {
  let largest = 1;
  for (const session of workload.sessions) {
    for (const call of session.calls) largest = Math.max(largest, Math.ceil((call.promptTokens + call.outputTokens) / workload.blockSize));
  }
  return largest;
}

/** A workload's name: a non-empty string the runtime accepts as a name (the replay's events carry it). */
export function checkWorkloadName(name: unknown, what: string): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string, got ${describeValue(name)}`);
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new RangeError(`${what} must have 1 to ${MAX_NAME_LENGTH} characters, got ${name.length}`);
  }
  return name;
}
