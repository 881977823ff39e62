/**
 * runtime.refresh: CacheSage's survival tables are recomputed there, every
 * due workload in one batch on the compute backend, with the same tables as
 * computed alone; reclaim demotes exactly the lowest-ordered evictable
 * leaves the backend's hit scoring picks, never a pinned block.
 */
import { describe, expect, it } from 'vitest';

import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { Tier } from '../../src/blocks/types.js';
import { referenceSelectVictims } from '../../src/compute/hit_scoring.js';
import { ReferenceSurvivalBackend, type SurvivalInput, type SurvivalOutput } from '../../src/compute/survival.js';
import { Runtime } from '../../src/runtime/runtime.js';

const BS = 4;

function prompt(seed: number, blocks: number): { hashes: BigUint64Array; numTokens: number } {
  const tokens = Uint32Array.from({ length: blocks * BS }, (_, i) => (seed * 7919 + i * 104729) >>> 0);
  return { hashes: hashTokenBlocks(tokens, BS), numTokens: tokens.length };
}

/** A survival backend that records the batches it is given. */
class RecordingSurvival {
  readonly name = 'recording';
  readonly batches: SurvivalInput[] = [];
  readonly #reference = new ReferenceSurvivalBackend();
  compute(input: SurvivalInput): SurvivalOutput {
    this.batches.push(input);
    return this.#reference.compute(input);
  }
}

/** Sessions of `workload` walking planner -> coder -> critic, `steps` hand-offs each. */
function drive(rt: Runtime, workload: string, sessions: number, steps: number, first: { id: number }, agents = ['planner', 'coder', 'critic']): void {
  for (let s = 0; s < sessions; s++) {
    const session = `${workload}/${s}`;
    rt.observe({ type: 'session.start', time: s, session, workload });
    for (let k = 0; k < steps; k++) {
      const agent = { workload, agent: agents[(k * (s + 1)) % agents.length]! };
      const t = s + k * 0.01;
      rt.observe({ type: 'step.start', time: t, session, agent });
      const id = first.id++;
      rt.admit({ requestId: id, ...prompt(id, 1), session, agent, time: t });
      rt.prefillDone(id, t);
      rt.release(id, t);
      rt.observe({ type: 'step.end', time: t, session, agent });
    }
  }
}

describe('runtime.refresh and CacheSage', () => {
  it('defers due tables to the refresh and batches every due workload in one call', () => {
    const survival = new RecordingSurvival();
    const rt = new Runtime({
      blocks: { blockSize: BS, deviceBlocks: 512 },
      policies: [{ name: 'cachesage', options: { refreshEvery: 4, survival } }],
      autoRefresh: false,
      now: () => 0,
    });
    const id = { id: 1 };
    drive(rt, 'alpha', 3, 6, id);
    drive(rt, 'beta', 3, 6, id, ['a', 'b', 'c', 'd']);
    // First tables are computed at once, one workload each.
    const firstSight = survival.batches.length;
    expect(survival.batches.every((b) => b.workloads === 1)).toBe(true);
    const result = rt.refreshSync(10);
    expect(result).toEqual({ survivalWorkloads: 2, survivalBatches: 1, reclaimed: 0 });
    const batch = survival.batches.at(-1)!;
    expect(batch.workloads).toBe(2);
    // Padded to the larger workload's states (beta: START, END and four agents).
    expect(batch.states).toBe(6);
    expect(survival.batches.length).toBe(firstSight + 1);
    expect(rt.refreshSync(11).survivalWorkloads).toBe(0);
  });

  it('installs the same table a workload gets alone (padding adds exact zeros)', () => {
    const make = () =>
      new Runtime({
        blocks: { blockSize: BS, deviceBlocks: 512 },
        policies: [{ name: 'cachesage', options: { refreshEvery: 4 } }],
        autoRefresh: false,
        now: () => 0,
      });
    const batched = make();
    const alone = make();
    for (const rt of [batched, alone]) {
      const id = { id: 1 };
      drive(rt, 'alpha', 3, 6, id);
      drive(rt, 'beta', 3, 6, id, ['a', 'b', 'c', 'd', 'e']);
    }
    batched.refreshSync(10);
    // Alone: predict computes alpha's fresh table by itself, unpadded.
    const q = { session: 'alpha/2', horizon: 4 };
    expect(batched.predict(q)).toEqual(alone.predict(q));
  });

  it('runs at act() on a synchronous backend unless autoRefresh is off', () => {
    const on = new Runtime({ blocks: { blockSize: BS, deviceBlocks: 512 }, policies: [{ name: 'cachesage', options: { refreshEvery: 4 } }], now: () => 0 });
    const off = new Runtime({ blocks: { blockSize: BS, deviceBlocks: 512 }, policies: [{ name: 'cachesage', options: { refreshEvery: 4 } }], now: () => 0, autoRefresh: false });
    for (const rt of [on, off]) {
      drive(rt, 'alpha', 2, 6, { id: 1 });
      rt.act(5);
    }
    expect(on.stats.refresh.runs).toBe(1);
    expect(off.stats.refresh.runs).toBe(0);
    expect(off.refreshSync(6).survivalWorkloads).toBe(1);
    expect(on.refreshSync(6).survivalWorkloads).toBe(0);
  });
});

describe('reclaim', () => {
  it('demotes the lowest-ordered evictable device leaves until freeBlocks are free, never a pinned one', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rt = new Runtime({
        blocks: { blockSize: BS, deviceBlocks: 64, hostBlocks: 64 },
        policies: ['lru'],
        autoRefresh: false,
        reclaim: { freeBlocks: 12 },
        now: () => 0,
      });
      // Fill the device with chains of 1..4 blocks; keep a few requests running (pinned).
      let id = 1;
      const running: number[] = [];
      for (let t = 0; rt.manager.usedBlocks('device') < 60; t++) {
        const p = prompt(seed * 1000 + id, 1 + ((id * seed) % 4));
        if (!rt.admit({ requestId: id, ...p, time: t })) break;
        rt.prefillDone(id, t);
        if (id % 5 === 0) running.push(id);
        else rt.release(id, t);
        id++;
      }
      const m = rt.manager.metadata;
      const free = rt.manager.deviceBlocks - rt.manager.usedBlocks('device');
      const want = referenceSelectVictims(
        { ...m, classScores: rt.manager.classScores },
        12 - free,
      );
      const pinned = new Set<number>();
      for (const r of running) for (const b of rt.manager.requestBlocks(r)) pinned.add(b);
      const result = rt.refreshSync(100);
      expect(result.reclaimed).toBe(want.length);
      for (const v of want) {
        expect(m.tier[v]).toBe(Tier.Host);
        expect(pinned.has(v)).toBe(false);
      }
      for (const b of pinned) expect(m.tier[b]).toBe(Tier.Device);
      expect(rt.manager.deviceBlocks - rt.manager.usedBlocks('device')).toBeGreaterThanOrEqual(Math.min(12, free + want.length));
    }
  });

  it('refuses bad options and arguments with a clear error', async () => {
    const blocks = { deviceBlocks: 8 };
    expect(() => new Runtime({ blocks, reclaim: { freeBlocks: 9 } })).toThrow(/reclaim.freeBlocks/);
    expect(() => new Runtime({ blocks, reclaim: { freeBlocks: -1 } })).toThrow(RangeError);
    expect(() => new Runtime({ blocks, reclaim: 4 as never })).toThrow(TypeError);
    expect(() => new Runtime({ blocks, autoRefresh: 'yes' as never })).toThrow(TypeError);
    await expect(Runtime.create({ blocks, backend: 'tpu' as never })).rejects.toThrow(/options.backend must be one of/);
    const rt = new Runtime({ blocks });
    expect(() => rt.refreshSync(Number.NaN)).toThrow(/refreshSync: now/);
    await expect(rt.refresh(-1)).rejects.toThrow(/refresh: now/);
    expect(() => rt.attachDataPlane({} as never)).toThrow(TypeError);
    await expect(rt.sync()).rejects.toThrow(/no data plane is attached/);
  });
});
