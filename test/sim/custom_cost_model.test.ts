// (Results are rounded to 0.01 ms, hence the tolerance.)
// replay with a cost model given whole (as `cachesage engine` calibrates
// one) and without tool gaps (as the reference engine serves a trace).
import { describe, expect, it } from 'vitest';

import { decodeSeconds, decodeStepsSeconds, LLAMA3_8B_H100, prefillIterationSeconds, type CostModel } from '../../src/sim/cost_model.js';
import { replay } from '../../src/sim/replay.js';
import { generateWorkload } from '../../src/workloads/index.js';

const calls = generateWorkload('react', { sessions: 6, seed: 3 }).calls;
const options = { policies: ['lru', 'cachesage'], capacity: { fraction: 0.3 }, hostCapacity: { blocks: 0 }, concurrency: 3 };

/** Every time constant k times slower. */
function slower(model: CostModel, k: number): CostModel {
  return {
    ...model,
    name: `${model.name} x${k}`,
    prefillTokensPerSecond: model.prefillTokensPerSecond / k,
    attentionSecondsPerTokenPair: model.attentionSecondsPerTokenPair * k,
    decodeIterationSeconds: model.decodeIterationSeconds * k,
    decodeSecondsPerSequence: model.decodeSecondsPerSequence * k,
    hostToDeviceBytesPerSecond: model.hostToDeviceBytesPerSecond / k,
    transferLatencySeconds: model.transferLatencySeconds * k,
  };
}

describe('replay with a custom cost model', () => {
  it('the named model given as an object replays exactly as by name', () => {
    // All but the runtime's own measured time per call.
    const decided = (model: '8b' | CostModel) => replay('react', calls, { ...options, model }).results.map(({ overheadUsPerCall: _, steadyOverheadUsPerCall: __, ...r }) => r);
    expect(decided({ ...LLAMA3_8B_H100 })).toEqual(decided('8b'));
  });

  it('with no tool gaps, a model twice as slow doubles every TTFT and LRU decides the same', () => {
    const base = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: LLAMA3_8B_H100 }).results[0]!;
    const twice = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: slower(LLAMA3_8B_H100, 2) }).results[0]!;
    expect(twice.tokenHitRate).toBe(base.tokenHitRate);
    expect(twice.meanTtftMs).toBeCloseTo(2 * base.meanTtftMs, 1);
    expect(twice.p99TtftMs).toBeCloseTo(2 * base.p99TtftMs, 1);
  });

  it('prices decode by context when the model has a per-context-token term, and refuses a bad one by name', () => {
    const running = [{ call: { promptTokens: 1000, outputTokens: 50 }, remaining: 40 }, { call: { promptTokens: 200, outputTokens: 8 }, remaining: 8 }];
    // Without the term: the per-sequence price, step after step.
    expect(decodeStepsSeconds(LLAMA3_8B_H100, running, 5)).toBe(5 * decodeSeconds(LLAMA3_8B_H100, 2));
    // With it: each step reads every sequence's prompt and the reply so far, one token more per step.
    const perToken = 1e-7;
    const withContext = { ...LLAMA3_8B_H100, decodeSecondsPerContextToken: perToken };
    let expected = 0;
    for (let step = 0; step < 5; step++) expected += decodeSeconds(LLAMA3_8B_H100, 2) + perToken * (1000 + 10 + step + 200 + 0 + step);
    expect(decodeStepsSeconds(withContext, running, 5)).toBeCloseTo(expected, 12);
    expect(decodeStepsSeconds(withContext, [], 5)).toBe(0);

    const base = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: LLAMA3_8B_H100 }).results[0]!;
    // Decode reads of 10 us per context token: long contexts decode slowly, so the run takes longer.
    const slowerDecode = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: { ...LLAMA3_8B_H100, name: 'ctx', decodeSecondsPerContextToken: 1e-5 } }).results[0]!;
    expect(slowerDecode.throughputTokPerS).toBeLessThan(base.throughputTokPerS / 2);
    expect(() => replay('react', calls, { ...options, model: { ...withContext, decodeSecondsPerContextToken: -1 } })).toThrow(/model\.decodeSecondsPerContextToken must be a finite number >= 0, got -1/);
    expect(() => replay('react', calls, { ...options, model: { ...withContext, decodeSecondsPerContextToken: '1' as unknown as number } })).toThrow(/model\.decodeSecondsPerContextToken must be a number, got/);
  });

  it('charges a prefilling iteration its fixed cost once, the larger of it and the decode one when it also decodes', () => {
    expect(prefillIterationSeconds(LLAMA3_8B_H100, false)).toBe(0);
    const fixed = { ...LLAMA3_8B_H100, prefillIterationSeconds: 0.01 };
    expect(prefillIterationSeconds(fixed, false)).toBe(0.01);
    // Decoding too: the pass pays max(0.01, 0.006) once, so 0.004 on top of the decode's 0.006.
    expect(prefillIterationSeconds(fixed, true)).toBeCloseTo(0.01 - LLAMA3_8B_H100.decodeIterationSeconds, 12);
    expect(prefillIterationSeconds({ ...fixed, prefillIterationSeconds: 0.001 }, true)).toBe(0);

    const base = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: LLAMA3_8B_H100 }).results[0]!;
    const slower = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: { ...fixed, name: 'fixed' } }).results[0]!;
    // Every call's first token comes at the end of an iteration that prefilled: at least 4 ms later.
    expect(slower.meanTtftMs).toBeGreaterThan(base.meanTtftMs + 4 - 1e-6);
    expect(() => replay('react', calls, { ...options, model: { ...fixed, prefillIterationSeconds: Number.NaN } })).toThrow(/model\.prefillIterationSeconds must be a finite number >= 0, got NaN/);
  });

  it('without tool gaps, sessions run back to back: the same work in less time', () => {
    const gaps = replay('react', calls, { ...options, policies: ['lru'] }).results[0]!;
    const none = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false }).results[0]!;
    expect(none.throughputTokPerS).toBeGreaterThan(gaps.throughputTokPerS);
  });
});
