/**
 * The simulator against hand-computed cases and an independent LRU, and the
 * bounds every replay must respect.
 */
import { describe, expect, it } from 'vitest';

import { replay } from '../../src/sim/replay.js';
import { simulate } from '../../src/sim/simulator.js';
import { prepareWorkload } from '../../src/sim/workload.js';
import type { TraceCall } from '../../src/trace/format.js';
import { TEST_MODEL } from './engine_property.js';

/** Round numbers so TTFTs can be computed by hand: 1000 prefill tok/s, 10 ms per decode step. */
const MODEL = TEST_MODEL;

function call(session: string, seq: number, t: number | null, segments: [string, number][], outputId: string, outputTokens: number, agent = 'agent'): TraceCall {
  return { session, agent, seq, t, segments: segments.map(([id, tokens]) => ({ id, tokens })), outputTokens, outputId };
}

describe('simulator', () => {
  it('matches a hand-computed two-session run: exact hits and TTFTs', () => {
    // Block size 4. Both sessions share an 8-token system prompt; each call
    // adds 4 tokens and gets a 4-token reply that the next call extends.
    const calls = [
      call('A', 0, 0, [['sys', 8], ['a1', 4]], 'outA1', 4),
      call('A', 1, 1, [['sys', 8], ['a1', 4], ['outA1', 4], ['a2', 4]], 'outA2', 4),
      call('B', 0, 0, [['sys', 8], ['b1', 4]], 'outB1', 4),
      call('B', 1, 1, [['sys', 8], ['b1', 4], ['outB1', 4], ['b2', 4]], 'outB2', 4),
    ];
    const workload = prepareWorkload('w', calls, 4, MODEL, 1);
    const run = simulate({ workload, policy: 'lru', deviceBlocks: 64, hostBlocks: 0, model: MODEL, arrivals: { sessionStarts: [0, 0] } });
    // t=0: A1 and B1 batch together; neither can reuse the other's system
    // prompt (computed in the same iteration): 12 + 12 fresh tokens = 24 ms.
    // Then 3 decode steps of 10 ms: both finish at 54 ms. Each session's gap
    // is 1 s minus this engine's uncached time for its first call (12 ms
    // prefill + 4 x 10 ms) = 0.948 s, so the second calls arrive at 1.002 s.
    // A2 and B2 each find 16 of 20 tokens cached and prefill 4: 8 ms.
    expect(run.promptTokens).toBe(12 + 12 + 20 + 20);
    expect(run.deviceHitTokens).toBe(32);
    expect(Array.from(run.ttftSeconds, (s) => Math.round(s * 1e6) / 1e3)).toEqual([24, 24, 8, 8]);
    expect(run.outputTokens).toBe(16);
    expect(run.makespanSeconds).toBeCloseTo(1.002 + 0.008 + 0.03, 9);
  });

  it('agrees with an independent straightforward LRU, one call at a time', () => {
    const calls = smallTrace(7, 24);
    const blockSize = 4;
    const workload = prepareWorkload('small', calls, blockSize, MODEL, 1);
    const rates: number[] = [];
    const largest = Math.max(...workload.sessions.flatMap((s) => s.calls.map((c) => Math.ceil((c.promptTokens + c.outputTokens) / blockSize))));
    for (const deviceBlocks of [largest, largest + 4, largest + 12, largest + 30]) {
      const report = replay('small', calls, { policies: ['lru'], capacity: { blocks: deviceBlocks }, hostCapacity: { blocks: 0 }, blockSize, concurrency: 1, model: '8b' });
      const expected = independentLru(workload.sessions.flatMap((s) => s.calls), blockSize, deviceBlocks);
      expect(report.results[0]!.tokenHitRate).toBeCloseTo(expected, 4);
      rates.push(expected);
    }
    // The capacities are tight enough to matter.
    expect(new Set(rates).size).toBeGreaterThanOrEqual(2);
  });

  it('keeps the bounds: MIN at least every non-prefetching online policy, the infinite cache at least MIN', () => {
    const calls = smallTrace(3, 40);
    const report = replay('bounds', calls, {
      policies: ['lru', 'lfu', 'cachesage', 'belady', 'infinite'],
      capacity: { fraction: 0.3 },
      hostCapacity: { blocks: 0 },
      blockSize: 4,
      concurrency: 4,
    });
    const hit = Object.fromEntries(report.results.map((r) => [r.policy, r.tokenHitRate]));
    for (const online of ['lru', 'lfu', 'cachesage']) expect(hit.belady).toBeGreaterThanOrEqual(hit[online]!);
    expect(hit.infinite).toBeGreaterThanOrEqual(hit.belady!);
    expect(report.capacityBlocks).toBeGreaterThan(0);
    expect(report.peakLiveBlocks).toBeGreaterThan(report.capacityBlocks);
  });
});

/**
 * A small multi-agent trace: sessions of a planner and two workers that
 * each extend their own context, over a shared system prompt per agent.
 */
function smallTrace(seed: number, sessions: number): TraceCall[] {
  let s = seed;
  const rand = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % n;
  };
  const out: TraceCall[] = [];
  for (let k = 0; k < sessions; k++) {
    const session = `s${k}`;
    const context: Record<string, [string, number][]> = {};
    const steps = 2 + rand(5);
    for (let i = 0; i < steps; i++) {
      const agent = i === 0 ? 'planner' : rand(2) ? 'worker-a' : 'worker-b';
      const ctx = (context[agent] ??= [[`sys-${agent}`, 8 + 4 * (agent.length % 3)]]);
      ctx.push([`${session}-m${i}`, 3 + rand(9)]);
      out.push(call(session, i, i * 2, [...ctx], `${session}-r${i}`, 2 + rand(6), agent));
      ctx.push([`${session}-r${i}`, 2 + rand(6)]);
    }
  }
  return out;
}

/**
 * Sequential LRU over a radix tree of blocks, written plainly: a call hits
 * the longest cached prefix of its prompt's blocks; its blocks are pinned
 * while it runs; room is made by dropping the least recently used block
 * with no cached children; a finished call's full blocks (prompt and
 * reply) stay cached.
 */
function independentLru(calls: { promptTokens: number; outputTokens: number; promptHashes: BigUint64Array; allHashes: BigUint64Array }[], blockSize: number, capacity: number): number {
  const cached = new Map<bigint, { lastUse: number; parent: bigint | null; children: number }>();
  let clock = 0;
  let hitTokens = 0;
  let promptTokens = 0;
  for (const c of calls) {
    clock++;
    let hits = 0;
    while (hits < c.promptHashes.length && cached.has(c.promptHashes[hits]!)) hits++;
    hitTokens += Math.min(hits * blockSize, c.promptTokens - 1);
    promptTokens += c.promptTokens;
    const pinned = new Set(Array.from(c.promptHashes.subarray(0, hits)));
    for (const h of pinned) cached.get(h)!.lastUse = clock;
    const blocks = Math.ceil((c.promptTokens + c.outputTokens) / blockSize);
    const evictOne = () => {
      let victim: bigint | null = null;
      let best = Infinity;
      for (const [h, b] of cached) {
        if (b.children === 0 && !pinned.has(h) && b.lastUse < best) {
          best = b.lastUse;
          victim = h;
        }
      }
      if (victim === null) throw new Error('independent LRU: nothing evictable');
      const parent = cached.get(victim)!.parent;
      if (parent !== null) cached.get(parent)!.children--;
      cached.delete(victim);
    };
    // Room for the call's new blocks while its hits stay pinned.
    while (cached.size + (blocks - hits) > capacity) evictOne();
    // Finished: its full blocks join the cache as one chain.
    clock++;
    let parent: bigint | null = null;
    for (const h of c.allHashes) {
      const b = cached.get(h);
      if (b) b.lastUse = clock;
      else {
        cached.set(h, { lastUse: clock, parent, children: 0 });
        if (parent !== null) cached.get(parent)!.children++;
      }
      parent = h;
    }
  }
  return hitTokens / promptTokens;
}
