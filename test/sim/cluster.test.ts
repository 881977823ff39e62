/**
 * Several replicas behind a router: every call served once, on the replica
 * the router picked, and the router flags of `cachesage replay`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { simulateCluster } from '../../src/sim/cluster.js';
import { mixWorkloads } from '../../src/sim/mix.js';
import { replay } from '../../src/sim/replay.js';
import { simulate } from '../../src/sim/simulator.js';
import { prepareWorkload } from '../../src/sim/workload.js';
import { cliInProcess } from '../cli/in_process.js';
import { agentTrace, TEST_MODEL } from './engine_property.js';

const workload = prepareWorkload('w', agentTrace(4, 12), 4, TEST_MODEL, 1);
const run = (router: 'cache' | 'round-robin' | 'sticky', replicas = 3) =>
  simulateCluster({ workload, policy: 'lru', deviceBlocks: 400, hostBlocks: 0, model: TEST_MODEL, arrivals: { concurrency: 6 }, replicas, router });

describe('simulateCluster', () => {
  it('serves every call once, spread over the replicas', () => {
    for (const router of ['cache', 'round-robin', 'sticky'] as const) {
      const result = run(router);
      expect(result.served.length).toBe(workload.calls);
      expect(result.callsPerReplica.reduce((a, b) => a + b, 0)).toBe(workload.calls);
      expect(result.ttftSeconds.length).toBe(workload.calls);
      expect(result.timeWentBack).toBe(0);
    }
    // Round-robin hands out calls in turn.
    expect(run('round-robin').callsPerReplica.map((n) => Math.abs(n - workload.calls / 3) <= 1)).toEqual([true, true, true]);
  });

  it('with room for everything, sticky and cache-aware routing find every reusable prefix; round-robin loses some', () => {
    const single = simulate({ workload, policy: 'lru', deviceBlocks: 400, hostBlocks: 0, model: TEST_MODEL, arrivals: { concurrency: 6 } });
    const [cache, sticky, rr] = [run('cache'), run('sticky'), run('round-robin')];
    // Sessions share only their agents' system prompts, cached once per replica.
    expect(sticky.deviceHitTokens).toBeGreaterThan(rr.deviceHitTokens);
    expect(cache.deviceHitTokens).toBeGreaterThan(rr.deviceHitTokens);
    expect(single.deviceHitTokens).toBeGreaterThanOrEqual(cache.deviceHitTokens);
  });

  it('is the plain engine with one replica, hit for hit', () => {
    const single = simulate({ workload, policy: 'lru', deviceBlocks: 400, hostBlocks: 0, model: TEST_MODEL, arrivals: { concurrency: 6 } });
    const one = run('cache', 1);
    expect(one.deviceHitTokens).toBe(single.deviceHitTokens);
    expect(one.promptTokens).toBe(single.promptTokens);
    expect(Array.from(one.ttftSeconds)).toEqual(Array.from(single.ttftSeconds));
  });

  it('refuses observers, which one runtime each cannot share', () => {
    expect(() => simulateCluster({ workload, policy: 'lru', deviceBlocks: 400, hostBlocks: 0, model: TEST_MODEL, arrivals: { concurrency: 2 }, replicas: 2, router: 'cache', observers: [{ name: 'x', observe: () => undefined }] })).toThrow(/observers/);
  });

  it('replay() reports the replicas and the router, and checks them', () => {
    const report = replay('w', agentTrace(4, 12), { policies: ['lru'], blockSize: 4, replicas: 2, router: 'sticky', concurrency: 4 });
    expect(report.replicas).toBe(2);
    expect(report.router).toBe('sticky');
    expect(report.results[0]!.callsPerReplica!.length).toBe(2);
    expect(() => replay('w', agentTrace(4, 2), { replicas: 0 })).toThrow(new RangeError('replay: options.replicas must be in [1, 1024], got 0'));
    expect(() => replay('w', agentTrace(4, 2), { router: 'nearest' as never })).toThrow(/options.router must be one of cache, round-robin, sticky/);
  });
});

describe('mixWorkloads', () => {
  it('interleaves sessions in proportion and files each under its workload', () => {
    const a = prepareWorkload('a', agentTrace(1, 4, 'a'), 4, TEST_MODEL, 1);
    const b = prepareWorkload('b', agentTrace(2, 2, 'b'), 4, TEST_MODEL, 1);
    const mix = mixWorkloads('mix', [a, b]);
    expect(mix.sessions.map((s) => s.name)).toEqual(['a/a0', 'b/b0', 'a/a1', 'a/a2', 'b/b1', 'a/a3']);
    expect(mix.sessions.map((s) => s.workload)).toEqual(['a', 'b', 'a', 'a', 'b', 'a']);
    expect(mix.calls).toBe(a.calls + b.calls);
    expect(mix.sessions.every((s, i) => s.calls.every((c) => c.session === i))).toBe(true);
    expect(() => mixWorkloads('mix', [a, a])).toThrow(/two parts are named "a"/);
    expect(() => mixWorkloads('mix', [])).toThrow(TypeError);
  });
});

describe('cachesage replay --replicas / --router', () => {
  it('refuses bad values, naming the flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cachesage-cluster-'));
    const trace = join(dir, 't.jsonl');
    writeFileSync(trace, agentTrace(1, 2).map((c) => JSON.stringify({ ...c, output_tokens: c.outputTokens, output_id: c.outputId })).join('\n') + '\n');
    const zero = await cliInProcess(['replay', '--trace', trace, '--replicas', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--replicas/);
    const router = await cliInProcess(['replay', '--trace', trace, '--replicas', '2', '--router', 'nearest']);
    expect(router.code).toBe(2);
    expect(router.stderr).toContain('replay: --router must be one of cache, round-robin, sticky; got "nearest"');
    const ok = await cliInProcess(['replay', '--trace', trace, '--policies', 'lru', '--replicas', '2', '--router', 'round-robin', '--block-size', '4', '--json']);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as { replicas: number; router: string };
    expect([report.replicas, report.router]).toEqual([2, 'round-robin']);
  });
});

describe('simulateCluster under random traces', () => {
  it('keeps every replica block manager invariant, whatever the router and policy', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 2, max: 4 }),
        fc.constantFrom('cache' as const, 'round-robin' as const, 'sticky' as const),
        fc.constantFrom('lru', 'cachesage', 'batch-shaping', 'fairness'),
        fc.integer({ min: 0, max: 20 }),
        (seed, replicas, router, policy, extra) => {
          const w = prepareWorkload('w', agentTrace(seed, 5), 4, TEST_MODEL, 1);
          const largest = Math.max(...w.sessions.flatMap((s) => s.calls.map((c) => Math.ceil((c.promptTokens + c.outputTokens) / 4))));
          const result = simulateCluster({ workload: w, policy, deviceBlocks: largest + extra, hostBlocks: extra, model: TEST_MODEL, arrivals: { concurrency: 3 }, replicas, router });
          expect(result.served.length).toBe(w.calls);
        },
      ),
      { numRuns: 40, seed: 3 },
    );
  });
});
