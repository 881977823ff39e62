/**
 * The trace format's limits, each enforced by the reader on the line that
 * breaks it, naming FILE:LINE and the field: a value at the limit reads, one
 * past it fails. And the limits agree with what the rest of the package
 * holds (the runtime's names, KVFlow's step graph, a replay's blocks).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KVFLOW_MAX_AGENTS } from '../../src/policies/kvflow_graph.js';
import { checkName } from '../../src/runtime/names.js';
import { MAX_REPLAY_BLOCKS } from '../../src/sim/workload.js';
import { TraceError } from '../../src/trace/format.js';
import {
  MAX_AGENTS,
  MAX_CALL_TOKENS,
  MAX_CALLS,
  MAX_ID_LENGTH,
  MAX_LINE_LENGTH,
  MAX_NAME_LENGTH,
  MAX_SEGMENT_TOKENS,
  MAX_SEGMENTS_PER_CALL,
  MAX_TIME_SECONDS,
  MAX_TRACE_TOKENS,
} from '../../src/trace/limits.js';
import { readTraceFile } from '../../src/trace/reader.js';
import { TraceRules } from '../../src/trace/rules.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cachesage-limits-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function line(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    session: 's1',
    agent: 'coder',
    seq: 0,
    t: 0,
    segments: [{ id: 'system', tokens: 100 }],
    output_tokens: 10,
    output_id: 'reply-0',
    ...overrides,
  });
}

let files = 0;
async function fileWith(lines: readonly string[]): Promise<string> {
  const path = join(dir, `trace-${files++}.jsonl`);
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}

/** The error reading `lines` gives; the bad line is line 2, after a good one. */
async function refusal(bad: string): Promise<TraceError> {
  const path = await fileWith([line({ session: 'other' }), bad]);
  try {
    await readTraceFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(TraceError);
    expect((error as TraceError).line).toBe(2);
    expect((error as TraceError).message).toBe(`${path}:2: ${(error as TraceError).problem}`);
    return error as TraceError;
  }
  throw new Error('read without error');
}

async function reads(lines: readonly string[]): Promise<number> {
  return (await readTraceFile(await fileWith(lines))).calls.length;
}

const DOC = '(limits: docs/trace-format.md)';

describe('per-call limits', () => {
  it('a 4-billion-token segment fails on its line, naming the field', async () => {
    const error = await refusal(line({ segments: [{ id: 'huge', tokens: 4_000_000_000 }] }));
    expect(error.problem).toBe(`segments[0].tokens is 4,000,000,000, more than the 2,097,152 tokens a segment may hold ${DOC}`);
  });

  it('tokens of one segment', async () => {
    expect(await reads([line({ segments: [{ id: 'a', tokens: MAX_SEGMENT_TOKENS }], output_tokens: 0 })])).toBe(1);
    const error = await refusal(line({ segments: [{ id: 'a', tokens: 1 }, { id: 'b', tokens: MAX_SEGMENT_TOKENS + 1 }] }));
    expect(error.problem).toBe(`segments[1].tokens is 2,097,153, more than the 2,097,152 tokens a segment may hold ${DOC}`);
  });

  it('tokens of one call, prompt and reply together', async () => {
    expect(await reads([line({ segments: [{ id: 'a', tokens: MAX_CALL_TOKENS - 10 }], output_tokens: 10 })])).toBe(1);
    const error = await refusal(line({ segments: [{ id: 'a', tokens: MAX_CALL_TOKENS - 10 }], output_tokens: 11 }));
    expect(error.problem).toBe(`the call holds 2,097,153 tokens (segments 2,097,142, output_tokens 11), more than the 2,097,152 a call may hold ${DOC}`);
    expect((await refusal(line({ output_tokens: MAX_CALL_TOKENS + 1 }))).problem).toBe(
      `output_tokens is 2,097,153, more than the 2,097,152 tokens a call may hold ${DOC}`,
    );
  });

  it('segments of one call', async () => {
    const segments = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `m${i}`, tokens: 1 }));
    expect(await reads([line({ segments: segments(MAX_SEGMENTS_PER_CALL) })])).toBe(1);
    expect((await refusal(line({ segments: segments(MAX_SEGMENTS_PER_CALL + 1) }))).problem).toBe(
      `segments has 65,537 entries, more than the 65,536 a prompt may list ${DOC}`,
    );
  });

  it('a prompt of no tokens at all', async () => {
    expect((await refusal(line({ segments: [{ id: 'a', tokens: 0 }, { id: 'b', tokens: 0 }] }))).problem).toBe(
      'segments hold 0 tokens in all: a prompt has at least 1 token',
    );
  });

  it('names and ids', async () => {
    expect(await reads([line({ session: 's'.repeat(MAX_NAME_LENGTH), agent: 'a'.repeat(MAX_NAME_LENGTH), output_id: 'o'.repeat(MAX_ID_LENGTH) })])).toBe(1);
    expect((await refusal(line({ session: 's'.repeat(MAX_NAME_LENGTH + 1) }))).problem).toBe(`session has 257 characters, more than the 256 a name may have ${DOC}`);
    expect((await refusal(line({ agent: 'a'.repeat(MAX_NAME_LENGTH + 1) }))).problem).toBe(`agent has 257 characters, more than the 256 a name may have ${DOC}`);
    expect((await refusal(line({ output_id: 'o'.repeat(MAX_ID_LENGTH + 1) }))).problem).toBe('output_id must be a non-empty string of at most 64 characters');
  });

  it('times', async () => {
    expect(await reads([line({ t: MAX_TIME_SECONDS, t_end: MAX_TIME_SECONDS })])).toBe(1);
    expect((await refusal(line({ t: MAX_TIME_SECONDS + 1 }))).problem).toBe(
      `t is 31536001 s, later than the 31,536,000 s (one year) after its session's start that a trace may use ${DOC}`,
    );
    expect((await refusal(line({ t: null, t_end: 4e7 }))).problem).toBe(
      `t_end is 40000000 s, later than the 31,536,000 s (one year) after its session's start that a trace may use ${DOC}`,
    );
  });
});

describe('per-trace limits', () => {
  it('tokens of the whole trace, on the line that crosses the limit', async () => {
    const full = MAX_TRACE_TOKENS / MAX_CALL_TOKENS; // 128 calls of the largest size
    const big = (seq: number) => line({ seq, segments: [{ id: 'a', tokens: MAX_CALL_TOKENS - 1 }], output_tokens: 1, output_id: `r${seq}` });
    const lines = Array.from({ length: full }, (_, i) => big(i));
    expect(await reads(lines)).toBe(full);
    const path = await fileWith([...lines, line({ seq: full, segments: [{ id: 'b', tokens: 1 }], output_tokens: 0 })]);
    await expect(readTraceFile(path)).rejects.toThrow(
      new TraceError(path, full + 1, `with this call the trace holds 268,435,457 tokens, more than the 268,435,456 a trace may hold ${DOC}`),
    );
  });

  it('distinct agents of the trace', async () => {
    const lines = Array.from({ length: MAX_AGENTS }, (_, i) => line({ session: `s${i}`, agent: `agent-${i}` }));
    expect(await reads(lines)).toBe(MAX_AGENTS);
    const path = await fileWith([...lines, line({ session: 'last', agent: 'one-too-many' })]);
    await expect(readTraceFile(path)).rejects.toThrow(
      new TraceError(path, MAX_AGENTS + 1, `agent "one-too-many" is one more than the 1,024 distinct agents a trace may name ${DOC}`),
    );
  });

  it('calls of the trace (checked by the rules the reader applies line by line)', () => {
    const rules = new TraceRules({ locate: (i) => `calls[${i}]` });
    const call = { session: 's', agent: 'a', seq: 0, t: null, segments: [{ id: 'x', tokens: 1 }], outputTokens: 0, outputId: 'y' };
    for (let i = 0; i < MAX_CALLS; i++) {
      call.seq = i;
      rules.check(call, i);
    }
    call.seq = MAX_CALLS;
    expect(() => rules.check(call, MAX_CALLS)).toThrow(`the trace holds more than 1,048,576 calls, the most a trace may hold ${DOC}`);
    expect(rules.calls).toBe(MAX_CALLS);
  }, 30_000);

  it('characters of one line', async () => {
    const path = join(dir, 'long-line.jsonl');
    const padding = 'x'.repeat(MAX_LINE_LENGTH);
    await writeFile(path, `${line()}\n${line({ seq: 1, padding })}\n`);
    await expect(readTraceFile(path)).rejects.toThrow(
      new TraceError(path, 2, `the line is longer than 16,777,216 characters, the most a line may hold ${DOC}`),
    );
    // A line of exactly the limit, ending in \r\n, is read.
    const exact = line({ seq: 1, padding: '' });
    const fill = 'y'.repeat(MAX_LINE_LENGTH - exact.length);
    const atLimit = line({ seq: 1, padding: fill });
    expect(atLimit.length).toBe(MAX_LINE_LENGTH);
    await writeFile(path, `${line()}\r\n${atLimit}\r\n`);
    expect((await readTraceFile(path)).calls).toHaveLength(2);
  }, 30_000);
});

describe('the limits agree with the rest of the package', () => {
  it('a name the trace allows is one the runtime takes, and no longer', () => {
    expect(checkName('n'.repeat(MAX_NAME_LENGTH), 'name')).toHaveLength(MAX_NAME_LENGTH);
    expect(() => checkName('n'.repeat(MAX_NAME_LENGTH + 1), 'name')).toThrow(RangeError);
  });

  it('as many agents as a KVFlow step graph holds', () => {
    expect(MAX_AGENTS).toBe(KVFLOW_MAX_AGENTS);
  });

  it('a whole trace fits a replay at the default block size of 16 tokens', () => {
    expect(MAX_TRACE_TOKENS / 16).toBe(MAX_REPLAY_BLOCKS);
    expect(MAX_SEGMENT_TOKENS).toBeLessThanOrEqual(MAX_CALL_TOKENS);
  });
});
