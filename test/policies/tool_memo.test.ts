/**
 * Tool-result memoization on a runtime: observe of a repeated tool.start
 * returns the memoised result within its TTL; declarations (pure, TTL,
 * never, reads/writes) and stale answers.
 */
import { describe, expect, it } from 'vitest';

import { createToolMemoPolicy, type ToolMemoPolicyOptions } from '../../src/policies/tool_memo/policy.js';
import type { AgentRef, FrameworkEvent } from '../../src/policies/types.js';
import { Runtime } from '../../src/runtime/runtime.js';

const agent: AgentRef = { workload: 'w', agent: 'coder' };

/** Most cases memoise "search" for a minute: an undeclared tool would never be memoised. */
const SEARCH: ToolMemoPolicyOptions = { tools: { search: { ttlSeconds: 60 } } };

function runtime(options: ToolMemoPolicyOptions = SEARCH, extra: unknown[] = []): Runtime {
  const rt = new Runtime({
    blocks: { blockSize: 4, deviceBlocks: 8 },
    policies: ['lru', ...(extra as never[]), { name: 'tool-memo', options }],
    now: () => 0,
  });
  for (const session of ['s', 't']) rt.observe({ type: 'session.start', time: 0, session, workload: 'w' });
  return rt;
}

const start = (time: number, tool: string, argsHash?: string, session = 's', who = agent): FrameworkEvent => ({
  type: 'tool.start',
  time,
  session,
  agent: who,
  tool,
  ...(argsHash !== undefined ? { argsHash } : {}),
});
const end = (time: number, tool: string, resultHash?: string, session = 's', result?: unknown, who = agent): FrameworkEvent => ({
  type: 'tool.end',
  time,
  session,
  agent: who,
  tool,
  ...(resultHash !== undefined ? { resultHash } : {}),
  ...(result !== undefined ? { result } : {}),
});
const memoInfo = (rt: Runtime) => (rt.info()['policyInfo'] as Record<string, Record<string, unknown>>)['tool-memo'];

describe('tool-memo policy', () => {
  it('answers a repeated (tool, argsHash) from the memo, with the result and its age', () => {
    const rt = runtime();
    expect(rt.observe(start(1, 'search', 'q1'))).toBeNull();
    expect(rt.observe(end(3, 'search', 'r1', 's', { hits: ['a'] }))).toBeNull();
    expect(rt.observe(start(5, 'search', 'q1'))).toEqual({
      type: 'memo',
      policy: 'tool-memo',
      tool: 'search',
      argsHash: 'q1',
      resultHash: 'r1',
      result: { hits: ['a'] },
      recordedAt: 3,
      ageSeconds: 2,
    });
    rt.observe(end(5, 'search', 'r1'));
    expect(rt.observe(start(6, 'search', 'q2'))).toBeNull();
    expect(memoInfo(rt)).toEqual({ entries: 1, hits: 1, misses: 2, recorded: 1, invalidated: 0, expired: 0, stale: 0, secondsSaved: 2 });
  });

  it('shares answers across sessions of a workload, never with another workload', () => {
    const rt = runtime();
    rt.observe(start(1, 'search', 'q1'));
    rt.observe(end(2, 'search', 'r1'));
    expect(rt.observe(start(3, 'search', 'q1', 't'))).toMatchObject({ resultHash: 'r1' });
    rt.observe({ type: 'session.start', time: 3, session: 'x', workload: 'other' });
    expect(rt.observe(start(4, 'search', 'q1', 'x', { workload: 'other', agent: 'coder' }))).toBeNull();
  });

  it('never memoises an undeclared tool unless a default TTL is set', () => {
    const rt = runtime({ tools: { hash: { pure: true } } });
    rt.observe(start(0, 'search', 'q1'));
    rt.observe(end(1, 'search', 'r1'));
    expect(rt.observe(start(2, 'search', 'q1'))).toBeNull();
    rt.observe(end(3, 'search', 'r1'));
    expect(memoInfo(rt)).toMatchObject({ entries: 0, hits: 0, misses: 0, recorded: 0 });
  });

  it('expires an undeclared tool after the default TTL', () => {
    const rt = runtime({ defaultTtlSeconds: 10 });
    rt.observe(start(0, 'search', 'q1'));
    rt.observe(end(1, 'search', 'r1'));
    expect(rt.observe(start(10.9, 'search', 'q1'))).not.toBeNull();
    rt.observe(end(10.9, 'search', 'r1'));
    expect(rt.observe(start(11, 'search', 'q1'))).toBeNull();
    expect(memoInfo(rt)).toMatchObject({ expired: 1 });
  });

  it('keeps a pure tool until invalidated, never answers a never tool', () => {
    const rt = runtime({ defaultTtlSeconds: 10, tools: { hash: { pure: true }, clock: { never: true } } });
    rt.observe(start(0, 'hash', 'x'));
    rt.observe(end(1, 'hash', 'h'));
    rt.observe(start(1, 'clock', 'now'));
    rt.observe(end(2, 'clock', 'c1'));
    expect(rt.observe(start(10_000, 'hash', 'x'))).toMatchObject({ resultHash: 'h', ageSeconds: 9999 });
    rt.observe(end(10_000, 'hash', 'h'));
    expect(rt.observe(start(10_001, 'clock', 'now'))).toBeNull();
    expect(memoInfo(rt)).toMatchObject({ entries: 1, recorded: 1 });
  });

  it('drops the entries of tools that read what a write tool writes, and never memoises the writer', () => {
    const rt = runtime({ tools: { query: { reads: ['db'], ttlSeconds: 100 }, lookup: { reads: ['cache'] }, update: { writes: ['db'] } } });
    rt.observe(start(0, 'query', 'q'));
    rt.observe(end(1, 'query', 'r'));
    rt.observe(start(1, 'lookup', 'k'));
    rt.observe(end(2, 'lookup', 'v'));
    rt.observe(start(3, 'update', 'u'));
    rt.observe(end(4, 'update', 'ok'));
    expect(rt.observe(start(5, 'update', 'u'))).toBeNull();
    rt.observe(end(5, 'update', 'ok'));
    expect(rt.observe(start(6, 'query', 'q'))).toBeNull();
    rt.observe(end(7, 'query', 'r2'));
    expect(rt.observe(start(8, 'lookup', 'k'))).toMatchObject({ resultHash: 'v' });
    expect(memoInfo(rt)).toMatchObject({ invalidated: 1 });
  });

  it('does not record a read that a write overlapped', () => {
    const rt = runtime({ tools: { query: { reads: ['db'] }, update: { writes: ['db'] } } });
    rt.observe(start(0, 'query', 'q', 's'));
    rt.observe(start(1, 'update', 'u', 't'));
    rt.observe(end(2, 'query', 'before-or-after', 's'));
    rt.observe(end(3, 'update', 'ok', 't'));
    expect(rt.observe(start(4, 'query', 'q'))).toBeNull();
  });

  it('counts an answer as stale when the real result differs, and keeps the real one', () => {
    const rt = runtime();
    rt.observe(start(0, 'search', 'q'));
    rt.observe(end(2, 'search', 'old'));
    expect(rt.observe(start(3, 'search', 'q'))).toMatchObject({ resultHash: 'old' });
    rt.observe(end(4, 'search', 'new'));
    expect(rt.observe(start(5, 'search', 'q'))).toMatchObject({ resultHash: 'new', recordedAt: 4 });
    expect(memoInfo(rt)).toMatchObject({ hits: 2, stale: 1, secondsSaved: 4 });
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const rt = runtime({ ...SEARCH, maxEntries: 2 });
    for (const [i, q] of ['a', 'b', 'c'].entries()) {
      rt.observe(start(i, 'search', q));
      rt.observe(end(i + 0.5, 'search', `r-${q}`));
    }
    expect(rt.observe(start(5, 'search', 'a'))).toBeNull();
    rt.observe(end(5, 'search', 'r-a'));
    expect(rt.observe(start(6, 'search', 'c'))).toMatchObject({ resultHash: 'r-c' });
  });

  it('works with tool events that carry no hashes, answering nothing', () => {
    const rt = runtime();
    rt.observe(start(0, 'search'));
    rt.observe(end(1, 'search'));
    expect(rt.observe(start(2, 'search'))).toBeNull();
    expect(memoInfo(rt)).toMatchObject({ entries: 0, hits: 0, misses: 0 });
  });

  it('loses to a denial: safety composed before it refuses the call', () => {
    const safety = { name: 'safety', options: { rules: { rules: [{ id: 'no-search', agent: 'coder', tool: 'search', maxCalls: 1, action: 'deny' }] } } };
    const rt = runtime(undefined, [safety]);
    rt.observe(start(0, 'search', 'q'));
    rt.observe(end(1, 'search', 'r'));
    expect(rt.observe(start(2, 'search', 'q'))).toMatchObject({ type: 'deny', rule: 'no-search' });
  });

  it('validates its options and the events’ fields, naming them', () => {
    expect(() => createToolMemoPolicy({ ttl: 1 } as never)).toThrow(
      new TypeError('tool-memo policy: unknown option "ttl" (known: defaultTtlSeconds, tools, maxEntries)'),
    );
    expect(() => createToolMemoPolicy({ tools: { q: { ttl: 3 } as never } })).toThrow(
      new TypeError('tool-memo policy: options.tools.q: unknown field "ttl" (known: pure, ttlSeconds, never, reads, writes)'),
    );
    expect(() => createToolMemoPolicy({ tools: { q: { never: true, pure: true } } })).toThrow(RangeError);
    expect(() => createToolMemoPolicy({ tools: { q: { ttlSeconds: 0 } } })).toThrow(
      new RangeError('tool-memo policy: options.tools.q.ttlSeconds must be a number > 0 (Infinity: no limit), got number 0'),
    );
    expect(() => createToolMemoPolicy({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => createToolMemoPolicy({ defaultTtlSeconds: -1 })).toThrow(RangeError);
    const rt = runtime();
    expect(() => rt.observe({ ...start(0, 'search'), argsHash: 7 } as never)).toThrow(new TypeError('tool.start event: argsHash must be a string, got number 7'));
    expect(() => rt.observe({ ...end(0, 'search'), resultHash: '' } as never)).toThrow(new RangeError('tool.end event: resultHash must have 1 to 256 characters, got 0'));
  });
});
