// (Results are rounded to 0.01 ms, hence the tolerance.)
// replay with a cost model given whole (as `cachesage engine` calibrates
// one) and without tool gaps (as the reference engine serves a trace).
import { describe, expect, it } from 'vitest';

import { LLAMA3_8B_H100, type CostModel } from '../../src/sim/cost_model.js';
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
    const decided = (model: '8b' | CostModel) => replay('react', calls, { ...options, model }).results.map(({ overheadUsPerCall: _, ...r }) => r);
    expect(decided({ ...LLAMA3_8B_H100 })).toEqual(decided('8b'));
  });

  it('with no tool gaps, a model twice as slow doubles every TTFT and LRU decides the same', () => {
    const base = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: LLAMA3_8B_H100 }).results[0]!;
    const twice = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false, model: slower(LLAMA3_8B_H100, 2) }).results[0]!;
    expect(twice.tokenHitRate).toBe(base.tokenHitRate);
    expect(twice.meanTtftMs).toBeCloseTo(2 * base.meanTtftMs, 1);
    expect(twice.p99TtftMs).toBeCloseTo(2 * base.p99TtftMs, 1);
  });

  it('without tool gaps, sessions run back to back: the same work in less time', () => {
    const gaps = replay('react', calls, { ...options, policies: ['lru'] }).results[0]!;
    const none = replay('react', calls, { ...options, policies: ['lru'], toolGaps: false }).results[0]!;
    expect(none.throughputTokPerS).toBeGreaterThan(gaps.throughputTokPerS);
  });
});
