import { describe, expect, it } from 'vitest';

import { createSpeculativePrefillPolicy } from '../../src/policies/speculative_prefill.js';
import type { AgentRef, IdleCompute, Policy, Prediction } from '../../src/policies/types.js';
import { replay } from '../../src/sim/replay.js';
import { agentTrace, chainOf, checkEngineInvariants } from '../sim/engine_property.js';
import { TestContext } from './context.js';

const planner: AgentRef = { workload: 'w', agent: 'planner' };
const worker: AgentRef = { workload: 'w', agent: 'worker' };
const idle = (spareTokens: number, next: Record<string, number> | null = null): IdleCompute => ({
  spareTokens,
  predict: (query) => (next === null ? null : ({ session: query.session, next } as unknown as Prediction)),
});

/** A policy that saw two worker prompts sharing 2 blocks, and one planner -> worker step, with session t in a planner tool call. */
function setup(options?: Parameters<typeof createSpeculativePrefillPolicy>[0]): { ctx: TestContext; policy: Policy } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16 });
  const policy = createSpeculativePrefillPolicy(options);
  policy.attach!(ctx);
  const admit = (requestId: number, hashes: BigUint64Array) =>
    policy.observe!({ type: 'admit', time: 0, requestId, session: 's', agent: worker, hashes, blockIds: new Int32Array(0), numTokens: 0, cachedDeviceTokens: 0, loadedBlocks: 0 });
  admit(1, chainOf(5, 3));
  admit(2, BigUint64Array.from([5001n, 5002n, 9001n]));
  ctx.feed(
    policy,
    { type: 'session.start', time: 0, session: 's', workload: 'w' },
    { type: 'step.start', time: 0, session: 's', agent: planner },
    { type: 'step.end', time: 1, session: 's', agent: planner },
    { type: 'step.start', time: 1, session: 's', agent: worker },
    { type: 'step.end', time: 2, session: 's', agent: worker },
    { type: 'session.start', time: 3, session: 't', workload: 'w' },
    { type: 'step.start', time: 3, session: 't', agent: planner },
    { type: 'step.end', time: 4, session: 't', agent: planner },
    { type: 'tool.start', time: 4, session: 't', agent: planner, tool: 'search' },
  );
  return { ctx, policy };
}

describe('speculative-prefill policy', () => {
  it('prefills the predicted agent common prefix while the tool runs, within its share of the spare budget', () => {
    const { policy } = setup();
    // Its own counts: planner -> worker, always. The worker prompts share 2 blocks.
    expect(policy.speculate!(4, idle(100))).toEqual([{ session: 't', agent: worker, hashes: chainOf(5, 2) }]);
    // Half of 10 spare tokens: one 4-token block.
    expect(policy.speculate!(4, idle(10))).toEqual([{ session: 't', agent: worker, hashes: chainOf(5, 1) }]);
    expect(policy.speculate!(4, idle(7))).toEqual([]);
  });

  it("follows the runtime's prediction over its own counts, above minProbability only", () => {
    const { policy } = setup({ minProbability: 0.5 });
    expect(policy.speculate!(4, idle(100, { worker: 0.4, '<end>': 0.6 }))).toEqual([]);
    expect(policy.speculate!(4, idle(100, { planner: 0.3, worker: 0.7 }))).toEqual([{ session: 't', agent: worker, hashes: chainOf(5, 2) }]);
    // Nothing is known of a planner prompt but what was admitted: nothing here.
    expect(policy.speculate!(4, idle(100, { planner: 0.9 }))).toEqual([]);
  });

  it('stops once the prefix is on device, and when the tool ends', () => {
    const { ctx, policy } = setup();
    ctx.serve(chainOf(5, 2));
    expect(policy.speculate!(4, idle(100))).toEqual([]);
    const other = setup();
    other.ctx.feed(other.policy, { type: 'tool.end', time: 5, session: 't', agent: planner, tool: 'search' });
    expect(other.policy.speculate!(5, idle(100))).toEqual([]);
  });

  it('refuses unknown and out-of-range options, naming them', () => {
    expect(() => createSpeculativePrefillPolicy({ budget: 1 } as never)).toThrow(
      new TypeError('speculative-prefill policy: unknown option "budget" (known: idleFraction, minProbability)'),
    );
    expect(() => createSpeculativePrefillPolicy({ idleFraction: 0 })).toThrow(new RangeError('speculative-prefill policy: options.idleFraction must be > 0, got 0'));
    expect(() => createSpeculativePrefillPolicy({ idleFraction: 1.5 })).toThrow(RangeError);
    expect(() => createSpeculativePrefillPolicy({ minProbability: -0.1 })).toThrow(RangeError);
  });

  it('in a replay: computes prefixes ahead, charges them, and counts what later calls used', () => {
    const calls = agentTrace(3, 24);
    const options = { capacity: { fraction: 0.3 }, hostCapacity: { blocks: 0 }, blockSize: 4, concurrency: 4 } as const;
    const base = replay('spec', calls, { ...options, policies: ['lru'] }).results[0]!;
    const spec = replay('spec', calls, { ...options, policies: ['speculative-prefill'] }).results[0]!;
    const tally = spec.speculativePrefill!;
    expect(base.speculativePrefill).toBeUndefined();
    expect(tally.prefilledTokens).toBeGreaterThan(0);
    expect(tally.usedTokens).toBeGreaterThan(0);
    expect(tally.loadedTokens).toBe(0); // no host tier
    expect(tally.prefilledTokens).toBe(tally.usedTokens + tally.wastedTokens);
    expect(spec.tokenHitRate).toBeGreaterThan(base.tokenHitRate);
  });

  it('never breaks the block manager invariants, beside LRU or CacheSage', () => {
    checkEngineInvariants(() => ['speculative-prefill']);
    checkEngineInvariants(() => ['cachesage', { name: 'speculative-prefill', options: { idleFraction: 1, minProbability: 0 } }], 30);
  });
});
