/**
 * Tool-result memoization measured in the replay: traces with tool
 * records, the tool seconds a memo saves and its stale answers (none for
 * a tool declared pure, when the trace agrees it is).
 */
import { describe, expect, it } from 'vitest';

import { LLAMA3_8B_H100 } from '../../src/sim/cost_model.js';
import { replay } from '../../src/sim/replay.js';
import { simulate } from '../../src/sim/simulator.js';
import { prepareWorkload } from '../../src/sim/workload.js';
import { decodeCall, encodeCall, type TraceCall } from '../../src/trace/format.js';

/** Three sessions, one after another: a search (3 s) with the same arguments each time, and a clock (1 s) whose result changes. */
function calls(): TraceCall[] {
  return ['s1', 's2', 's3'].flatMap((session): TraceCall[] => [
    {
      session,
      agent: 'a',
      seq: 0,
      t: 0,
      segments: [{ id: 'system', tokens: 64 }, { id: `task-${session}`, tokens: 16 }],
      outputTokens: 8,
      outputId: `reply-${session}`,
      tools: [
        { tool: 'search', argsHash: 'q', resultHash: 'r', seconds: 3 },
        { tool: 'clock', argsHash: 'now', resultHash: `c-${session}`, seconds: 1 },
      ],
    },
    { session, agent: 'a', seq: 1, t: 10, segments: [{ id: 'system', tokens: 64 }, { id: `task-${session}`, tokens: 16 }, { id: `reply-${session}`, tokens: 8 }], outputTokens: 8, outputId: `end-${session}` },
  ]);
}

describe('tool-memo in the replay', () => {
  it('saves the gap of answered tools and counts stale answers; without the memo nothing is answered', () => {
    const gap = prepareWorkload('tools', calls(), 16, LLAMA3_8B_H100, 1).sessions[0]!.calls[0]!.gapAfter;
    expect(gap).toBeGreaterThan(9);
    // Both tools declared with a TTL, as a trace header may: the replay tells the memo.
    const tools = { search: { ttlSeconds: 60 }, clock: { ttlSeconds: 60 } };
    const report = replay('tools', calls(), { policies: ['lru', 'lru+tool-memo'], concurrency: 1, capacity: { fraction: 1 }, tools });
    const [lru, memo] = report.results;
    expect(lru!.toolCalls).toEqual({ calls: 6, answered: 0, stale: 0, denied: 0, secondsSaved: 0 });
    // Sessions 2 and 3 find both tools memoised: the whole gap is saved; the clock's answers are stale.
    expect(memo!.toolCalls).toEqual({ calls: 6, answered: 4, stale: 2, denied: 0, secondsSaved: Math.round(2 * gap * 1000) / 1000 });
    expect(memo!.policy).toBe('lru+tool-memo');
    expect(memo!.throughputTokPerS).toBeGreaterThan(lru!.throughputTokPerS);
  });

  it('memoises no tool the trace leaves undeclared', () => {
    const report = replay('tools', calls(), { policies: ['lru+tool-memo'], concurrency: 1, capacity: { fraction: 1 } });
    expect(report.results[0]!.toolCalls).toEqual({ calls: 6, answered: 0, stale: 0, denied: 0, secondsSaved: 0 });
    const pureOnly = replay('tools', calls(), { policies: ['lru+tool-memo'], concurrency: 1, capacity: { fraction: 1 }, tools: { search: { pure: true } } });
    expect(pureOnly.results[0]!.toolCalls).toMatchObject({ answered: 2, stale: 0 });
  });

  it('refuses malformed declarations, naming the field', () => {
    expect(() => replay('tools', calls(), { tools: { search: { pure: 1 } } as never })).toThrow(
      new TypeError('replay: options.tools.search.pure must be a boolean, got number 1'),
    );
  });

  it('answers only what the declarations allow: a pure tool never stale, a never tool never answered', () => {
    const workload = prepareWorkload('tools', calls(), 16, LLAMA3_8B_H100, 1);
    const gap = workload.sessions[0]!.calls[0]!.gapAfter;
    const run = simulate({
      workload,
      policy: ['lru', { name: 'tool-memo', options: { tools: { search: { pure: true }, clock: { never: true } } } }],
      deviceBlocks: 64,
      hostBlocks: 0,
      model: LLAMA3_8B_H100,
      arrivals: { concurrency: 1 },
    });
    expect(run.toolCalls!.answered).toBe(2);
    expect(run.toolCalls!.stale).toBe(0);
    expect(run.toolCalls!.secondsSaved).toBeCloseTo(2 * gap * 0.75, 9);
  });

  it('leaves a trace without tool records as it was: no tool tally', () => {
    const plain = calls().map(({ tools: _tools, ...call }) => call);
    const report = replay('plain', plain, { policies: ['lru+tool-memo'], concurrency: 1 });
    expect(report.results[0]!.toolCalls).toBeUndefined();
  });
});

describe('tool records in the trace format', () => {
  it('reads and writes them in snake_case', () => {
    const line = {
      session: 's',
      agent: 'a',
      seq: 0,
      t: 0,
      segments: [{ id: 'x', tokens: 4 }],
      output_tokens: 1,
      output_id: 'y',
      tools: [{ tool: 'search', args_hash: 'q', result_hash: 'r', seconds: 2.5 }, { tool: 'clock', args_hash: 'n', result_hash: 'c' }],
    };
    const call = decodeCall(line);
    expect(call.tools).toEqual([
      { tool: 'search', argsHash: 'q', resultHash: 'r', seconds: 2.5 },
      { tool: 'clock', argsHash: 'n', resultHash: 'c' },
    ]);
    expect(JSON.parse(encodeCall(call))).toEqual(line);
    const { tools: _tools, ...without } = line;
    expect(decodeCall(without).tools).toBeUndefined();
  });

  it('refuses malformed tool records, naming the field', () => {
    const base = { session: 's', agent: 'a', seq: 0, t: 0, segments: [{ id: 'x', tokens: 4 }], output_tokens: 1, output_id: 'y' };
    expect(() => decodeCall({ ...base, tools: {} })).toThrow('tools must be an array of tool records');
    expect(() => decodeCall({ ...base, tools: [{ tool: 'q', result_hash: 'r' }] })).toThrow('tools[0].args_hash must be a non-empty string of at most 64 characters');
    expect(() => decodeCall({ ...base, tools: [{ tool: '', args_hash: 'a', result_hash: 'r' }] })).toThrow('tools[0].tool must be a non-empty string of at most 256 characters');
    expect(() => decodeCall({ ...base, tools: [{ tool: 'q', args_hash: 'a', result_hash: 'r', seconds: -1 }] })).toThrow('tools[0].seconds must be a finite number >= 0');
  });
});
