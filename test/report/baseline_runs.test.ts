/**
 * The baselines' device-only runs inside one replay: vanilla is LRU with no
 * host tier, on the same arrivals as every policy of the replay.
 */
import { describe, expect, it } from 'vitest';

import { deviceOnlyRuns } from '../../src/report/baselines.js';
import { replay } from '../../src/sim/replay.js';
import { generateWorkload } from '../../src/workloads/index.js';

const { calls } = generateWorkload('groupchat', { seed: 2, sessions: 6 });
const decisions = (r: { tokenHitRate: number; hostHitRate: number; meanTtftMs: number; p99TtftMs: number; throughputTokPerS: number; bytesMoved: number }) => [
  r.tokenHitRate,
  r.hostHitRate,
  r.meanTtftMs,
  r.p99TtftMs,
  r.throughputTokPerS,
  r.bytesMoved,
];

describe('replay with deviceOnly runs', () => {
  it('replays vanilla exactly as lru without a host tier, and leaves results as asked', () => {
    const noHost = replay('g', calls, { policies: ['lru'], capacity: { fraction: 0.3 }, hostCapacity: { blocks: 0 } });
    const host = { fraction: 1 };
    const both = replay('g', calls, { policies: ['lru', 'cachesage'], capacity: { fraction: 0.3 }, hostCapacity: host, deviceOnly: deviceOnlyRuns(['lru', 'cachesage'], host) });
    expect(both.results.map((r) => r.policy)).toEqual(['lru', 'cachesage']);
    expect(both.deviceOnlyResults!.map((r) => r.policy)).toEqual(['vanilla', 'cachesage-nohost']);
    const vanilla = both.deviceOnlyResults![0]!;
    expect(decisions(vanilla)).toEqual(decisions(noHost.results[0]!));
    expect(vanilla.hostHitRate).toBe(0);
    expect(vanilla.bytesMoved).toBe(0);
    // The host tier is used by the runs that have one.
    expect(both.results[0]!.hostHitRate).toBeGreaterThan(0);
    // Gap closed is not defined without MIN, for the extra runs as for the others.
    expect(vanilla.gapClosed).toBeNull();
  });

  it('measures the device-only runs between vanilla and MIN without a host tier, the others between lru and MIN', () => {
    const host = { fraction: 1 };
    const policies = ['lru', 'cachesage', 'belady'];
    const r = replay('g', calls, { policies, capacity: { fraction: 0.3 }, hostCapacity: host, deviceOnly: deviceOnlyRuns(policies, host) });
    const find = (name: string) => [...r.results, ...r.deviceOnlyResults!].find((x) => x.policy === name)!;
    const [lru, cs, min, vanilla, csAlone, minAlone] = ['lru', 'cachesage', 'belady', 'vanilla', 'cachesage-nohost', 'belady-nohost'].map(find);
    const noHost = replay('g', calls, { policies: ['belady'], capacity: { fraction: 0.3 }, hostCapacity: { blocks: 0 } });
    expect(decisions(minAlone!)).toEqual(decisions(noHost.results[0]!));
    const gap = (x: number, low: number, high: number) => Math.round(((x - low) / (high - low)) * 1e4) / 1e4;
    expect(min!.tokenHitRate - lru!.tokenHitRate).toBeGreaterThan(0.005);
    expect(minAlone!.tokenHitRate - vanilla!.tokenHitRate).toBeGreaterThan(0.005);
    expect(cs!.gapClosed).toBe(gap(cs!.tokenHitRate, lru!.tokenHitRate, min!.tokenHitRate));
    expect(csAlone!.gapClosed).toBe(gap(csAlone!.tokenHitRate, vanilla!.tokenHitRate, minAlone!.tokenHitRate));
    expect(minAlone!.gapClosed).toBe(1);
  });

  it('leaves deviceOnlyResults out when none is asked for', () => {
    expect(replay('g', calls, { policies: ['lru'], capacity: { fraction: 0.3 } })).not.toHaveProperty('deviceOnlyResults');
  });

  it('refuses a malformed deviceOnly option, naming it', () => {
    expect(() => replay('g', calls, { deviceOnly: [{ policy: 'nope', name: 'x' }] })).toThrow(/options\.deviceOnly\[0\]\.policy: unknown policy "nope"/);
    expect(() => replay('g', calls, { deviceOnly: [{ policy: 'lru', name: '' }] })).toThrow(/options\.deviceOnly\[0\] must be \{policy, name\} with a non-empty name/);
    expect(() => replay('g', calls, { deviceOnly: 'lru' as never })).toThrow(/options\.deviceOnly must be an array/);
  });
});
