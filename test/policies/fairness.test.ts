import { describe, expect, it } from 'vitest';

import { createFairnessPolicy, OVER_SHARE_PENALTY, OVER_SLOTS_PENALTY } from '../../src/policies/fairness.js';
import type { AgentRef, Policy, WaitingRequest } from '../../src/policies/types.js';
import { noisyNeighbour, jainIndex } from '../../src/sim/noisy_neighbour.js';
import { agentTrace, chainOf, checkEngineInvariants } from '../sim/engine_property.js';
import { TestContext } from './context.js';

const heavy: AgentRef = { workload: 'heavy', agent: 'a' };
const small: AgentRef = { workload: 'small', agent: 'a' };

function admit(policy: Policy, requestId: number, agent: AgentRef): void {
  policy.observe!({ type: 'admit', time: 0, requestId, session: 's', agent, hashes: new BigUint64Array(0), blockIds: new Int32Array(0), numTokens: 4, cachedDeviceTokens: 0, loadedBlocks: 0 });
}

const queued = (agent: AgentRef, position: number): WaitingRequest => ({ agent, session: 's', hashes: new BigUint64Array(0), promptTokens: 4, arrival: 0, position, bypassed: 0 });

function slotScores(options: Parameters<typeof createFairnessPolicy>[0], queue: WaitingRequest[]): number[] {
  const policy = createFairnessPolicy(options);
  policy.attach!(new TestContext({ blockSize: 4, deviceBlocks: 8 }));
  for (let id = 1; id <= 3; id++) admit(policy, id, heavy);
  const out = new Float64Array(queue.length);
  policy.scoreWaiting!(queue, out, 0);
  return Array.from(out);
}

describe('fairness policy', () => {
  it('puts a workload over its share of the batch behind the others, and only then', () => {
    const queue = [queued(heavy, 0), queued(small, 1), queued(heavy, 2)];
    // Two tenants, 3 running + 3 waiting: 3 slots each; heavy holds 3.
    expect(slotScores({}, queue)).toEqual([-OVER_SLOTS_PENALTY, 0, -OVER_SLOTS_PENALTY]);
    // A share of 0.9 leaves heavy ceil(5.4) = 6 slots: room for both of its waiting calls.
    expect(slotScores({ slotShare: 0.9 }, queue)).toEqual([0, 0, 0]);
    // Alone, heavy has every slot: work-conserving.
    expect(slotScores({}, [queued(heavy, 0), queued(heavy, 1)])).toEqual([0, 0]);
  });

  it('caps each agent share of the batch', () => {
    const other: AgentRef = { workload: 'heavy', agent: 'b' };
    const queue = [queued(other, 0), queued(other, 1), queued(other, 2)];
    // 6 slots, an agent 1/3 of them: agent b gets 2, its third call waits behind.
    expect(slotScores({ slotShare: 1, agentSlotShare: 1 / 3 }, queue)).toEqual([0, 0, -OVER_SLOTS_PENALTY]);
  });

  it('scores an over-share workload below the others, so eviction takes from it first', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16 }, { classes: true });
    const policy = createFairnessPolicy();
    policy.attach!(ctx);
    ctx.feed(policy, { type: 'session.start', time: 0, session: 'h', workload: 'heavy' }, { type: 'session.start', time: 0, session: 's', workload: 'small' });
    const smallIds = ctx.serve(chainOf(2, 3), { session: 's', agent: small });
    const heavyIds = ctx.serve(chainOf(1, 10), { session: 'h', agent: heavy });
    policy.observe!({ type: 'blocks', time: 0, events: ctx.manager.takeEvents() });
    expect(policy.act!(0)).toEqual([]);
    const classOf = (id: number) => ctx.classOf(id);
    const out = new Float32Array(2);
    policy.scoreClasses!(Int32Array.from([classOf(heavyIds[0]!), classOf(smallIds[0]!)]), out);
    // Equal shares of 16 blocks: heavy holds 10 > 8.
    expect(Array.from(out)).toEqual([-OVER_SHARE_PENALTY, 0]);
    ctx.rescore(policy);
    // Without fairness LRU would take the small workload's (older) chain first.
    expect(ctx.evictDevice(3)).toEqual([heavyIds[9], heavyIds[8], heavyIds[7]]);
    // Once small's session ends, heavy has the whole device.
    ctx.feed(policy, { type: 'session.end', time: 1, session: 's' });
    policy.observe!({ type: 'blocks', time: 1, events: ctx.manager.takeEvents() });
    policy.act!(1);
    policy.scoreClasses!(Int32Array.from([classOf(heavyIds[0]!)]), out);
    expect(out[0]).toBe(0);
  });

  it('refuses unknown and out-of-range options, naming them', () => {
    expect(() => createFairnessPolicy({ share: 1 } as never)).toThrow(
      new TypeError('fairness policy: unknown option "share" (known: kvShare, slotShare, agentSlotShare)'),
    );
    expect(() => createFairnessPolicy({ kvShare: 0 })).toThrow(new RangeError('fairness policy: options.kvShare must be > 0, got 0'));
    expect(() => createFairnessPolicy({ slotShare: 2 })).toThrow(RangeError);
    expect(() => createFairnessPolicy({ kvShare: 'half' as never })).toThrow(new TypeError("fairness policy: options.kvShare must be a number or 'equal', got the string \"half\""));
    expect(() => createFairnessPolicy({ agentSlotShare: 'equal' as never })).toThrow(TypeError);
  });

  it("computes Jain's index", () => {
    expect(jainIndex([0.5, 0.5, 0.5])).toBe(1);
    expect(jainIndex([1, 0])).toBe(0.5);
  });

  it('in a noisy-neighbour mix: protects the small workloads hit rate from the heavy one', () => {
    const [lru, fair] = noisyNeighbour({
      workloads: [
        { name: 'heavy', calls: agentTrace(5, 48, 'h') },
        { name: 'small', calls: agentTrace(9, 6, 'q') },
      ],
      runs: ['lru', 'fairness'],
      deviceBlocks: 60,
      blockSize: 4,
      concurrency: 8,
    });
    expect(lru!.perWorkload.map((w) => w.calls)).toEqual(fair!.perWorkload.map((w) => w.calls));
    expect(fair!.perWorkload[1]!.tokenHitRate).toBeGreaterThan(lru!.perWorkload[1]!.tokenHitRate);
  });

  it('never breaks the block manager invariants, alone or beside CacheSage', () => {
    checkEngineInvariants(() => ['fairness']);
    checkEngineInvariants(() => ['cachesage', { name: 'fairness', options: { kvShare: 0.3, agentSlotShare: 0.5 } }], 30);
  });
});
