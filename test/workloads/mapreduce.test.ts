/**
 * The `mapreduce` shape: chunk mappers, an aggregator and a judge loop, exact
 * on a configuration with fixed sizes, structural on the defaults.
 */
import { describe, expect, it } from 'vitest';

import type { TraceCall } from '../../src/trace/format.js';
import { generateShape, generateWorkload, mapreduce, type MapReduceParams } from '../../src/workloads/index.js';

const fixed = (median: number) => ({ median, sigma: 0 });

const EXACT: Partial<MapReduceParams> = {
  chunks: fixed(3),
  chunk: fixed(500),
  question: fixed(20),
  partial: fixed(30),
  draft: fixed(100),
  verdict: fixed(10),
};

const promptOf = (call: TraceCall) => call.segments.reduce((sum, s) => sum + s.tokens, 0);

function sessions(calls: readonly TraceCall[]): TraceCall[][] {
  const by = new Map<string, TraceCall[]>();
  for (const call of calls) by.set(call.session, [...(by.get(call.session) ?? []), call]);
  return [...by.values()];
}

describe('mapreduce, fixed sizes', () => {
  it('maps every chunk, then drafts and judges once when the judge accepts', () => {
    const { calls } = generateShape(mapreduce, { seed: 1, sessions: 1, params: { ...EXACT, acceptProb: 1 } });
    expect(calls.map((c) => c.agent)).toEqual(['Mapper', 'Mapper', 'Mapper', 'Aggregator', 'Judge']);
    expect(calls.map(promptOf)).toEqual([450 + 500 + 20, 970, 970, 600 + 20 + 3 * 34, 700 + 20 + 104]);
  });

  it('revises until the round limit when the judge never accepts, each side extending its conversation', () => {
    const { calls } = generateShape(mapreduce, { seed: 1, sessions: 1, params: { ...EXACT, acceptProb: 0, maxRounds: 3 } });
    expect(calls.map((c) => c.agent)).toEqual(['Mapper', 'Mapper', 'Mapper', 'Aggregator', 'Judge', 'Aggregator', 'Judge', 'Aggregator', 'Judge']);
    // Each revision adds the previous draft and the critique; each verdict the previous verdict and the new draft.
    expect(calls.slice(3).map(promptOf)).toEqual([722, 824, 722 + 104 + 14, 824 + 14 + 104, 840 + 104 + 14, 942 + 14 + 104]);
    for (const agent of ['Aggregator', 'Judge']) {
      const own = calls.filter((c) => c.agent === agent);
      for (let i = 1; i < own.length; i++) expect(own[i]!.segments.slice(0, own[i - 1]!.segments.length)).toEqual(own[i - 1]!.segments);
    }
  });

  it('puts the chunk before the question, so the sessions asking about one document share it', () => {
    const { calls } = generateShape(mapreduce, { seed: 1, sessions: 4, params: { ...EXACT, questionsPerDocument: 3 } });
    const mapped = sessions(calls).map((s) => s.filter((c) => c.agent === 'Mapper'));
    const chunkIds = (m: TraceCall[]) => m.map((c) => c.segments[1]!.id);
    expect(chunkIds(mapped[1]!)).toEqual(chunkIds(mapped[0]!));
    expect(chunkIds(mapped[2]!)).toEqual(chunkIds(mapped[0]!));
    expect(new Set([...chunkIds(mapped[3]!), ...chunkIds(mapped[0]!)]).size).toBe(6);
    // Questions are the sessions' own.
    expect(mapped[1]![0]!.segments[2]!.id).not.toBe(mapped[0]![0]!.segments[2]!.id);
  });

  it('refuses a round limit or a question count that is not a positive integer', () => {
    expect(() => generateShape(mapreduce, { sessions: 1, params: { maxRounds: 0 } })).toThrow(/maxRounds must be a positive integer, got 0/);
    expect(() => generateShape(mapreduce, { sessions: 1, params: { questionsPerDocument: 1.5 } })).toThrow(/questionsPerDocument/);
  });
});

describe('mapreduce, defaults', () => {
  const { calls, header } = generateWorkload('mapreduce', { seed: 1, sessions: 60 });

  it('names the public work it follows instead of a fitted trace', () => {
    expect(header['modelledOn']).toMatch(/MapReduce/);
    expect(header).not.toHaveProperty('fittedTo');
  });

  it('fans out to 3 to 16 mappers, then alternates aggregator and judge, ending on the judge within 3 rounds', () => {
    for (const session of sessions(calls)) {
      const agents = session.map((c) => c.agent);
      const mappers = agents.indexOf('Aggregator');
      expect(mappers).toBeGreaterThanOrEqual(3);
      expect(mappers).toBeLessThanOrEqual(16);
      expect(agents.slice(0, mappers).every((a) => a === 'Mapper')).toBe(true);
      const loop = agents.slice(mappers);
      expect(loop.length % 2).toBe(0);
      expect(loop.length).toBeLessThanOrEqual(6);
      loop.forEach((a, i) => expect(a).toBe(i % 2 === 0 ? 'Aggregator' : 'Judge'));
    }
  });
});
