import { describe, expect, it } from 'vitest';

import { createBeladyPolicy, NEVER_USED_SCORE, type FutureUses } from '../../src/policies/belady.js';
import type { Policy, RuntimeEvent } from '../../src/policies/types.js';
import { chain, TestContext } from './context.js';

/** A future over literal (hash -> use times) that records what it was asked. */
function futureOf(uses: Record<string, number[]>): FutureUses & { asked: [bigint, number][] } {
  const asked: [bigint, number][] = [];
  return {
    asked,
    nextUse(hash: bigint, afterTime: number): number {
      asked.push([hash, afterTime]);
      return (uses[hash.toString()] ?? []).find((t) => t > afterTime) ?? Infinity;
    },
  };
}

/** Belady reads only event times: events go to it directly, not through a session model. */
const observe = (policy: Policy, ...events: RuntimeEvent[]): void => events.forEach((e) => policy.observe!(e));
const at = (time: number): RuntimeEvent => ({ type: 'session.start', time, session: 's', workload: 'w' });

describe('belady policy', () => {
  it('evicts the block used furthest in the future first, a never-used block before all', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createBeladyPolicy({ future: futureOf({ 100: [5], 200: [10] }) });
    policy.attach?.(ctx);
    expect(policy.scoring).toBe('blocks');
    const [a] = ctx.serve(chain(100, 1));
    const [b] = ctx.serve(chain(200, 1));
    const [c] = ctx.serve(chain(300, 1));
    observe(policy, at(1));
    ctx.rescore(policy);
    expect([...ctx.manager.metadata.score.slice(0, 3)]).toEqual([-5, -10, Math.fround(NEVER_USED_SCORE)]);
    expect(ctx.evictDevice(3)).toEqual([c, b, a]);
  });

  it('takes only evictable leaves and never a pinned block', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createBeladyPolicy({ future: futureOf({ 101: [3], 200: [8] }) });
    policy.attach?.(ctx);
    const [p, q] = ctx.serve(chain(100, 2)); // p is never used again, its child q soon
    const [r] = ctx.serve(chain(200, 1));
    // A running request pins s, the block with the lowest score of all.
    const pinned = chain(300, 1);
    const [s] = ctx.manager.admit(99, pinned, 4)!.blockIds;
    ctx.manager.commit(99, 1);
    observe(policy, at(0));
    ctx.rescore(policy);
    expect(ctx.manager.metadata.score[s!]).toBe(Math.fround(NEVER_USED_SCORE));
    // p waits for q to go; s is never taken.
    expect(ctx.evictDevice(4)).toEqual([r, q, p]);
    expect(ctx.manager.metadata.tier[s!]).toBe(1);
  });

  it('asks the future about uses after the latest event it observed', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 4 });
    const future = futureOf({ 100: [5, 12] });
    const policy = createBeladyPolicy({ future });
    policy.attach?.(ctx);
    const [a] = ctx.serve(chain(100, 1));
    const out = new Float32Array(1);
    policy.scoreBlocks!(new Int32Array([a!]), out);
    expect(out[0]).toBe(-5);
    observe(policy, at(5), at(4));
    policy.scoreBlocks!(new Int32Array([a!]), out);
    expect(out[0]).toBe(-12);
    expect(future.asked).toEqual([[100n, -Infinity], [100n, 5]]);
    expect(policy.explain!(a!)).toEqual({ nextUse: 12, afterTime: 5 });
  });

  it('clamps scores into the finite float32 range', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 4 });
    const policy = createBeladyPolicy({ future: { nextUse: (hash) => (hash === 100n ? 1e40 : -1e40) } });
    policy.attach?.(ctx);
    const ids = Int32Array.from([...ctx.serve(chain(100, 1)), ...ctx.serve(chain(200, 1))]);
    const out = new Float32Array(2);
    policy.scoreBlocks!(ids, out);
    expect([...out]).toEqual([Math.fround(-3e38), Math.fround(3e38)]);
  });

  it('refuses a missing future and a future that answers NaN', () => {
    expect(() => createBeladyPolicy(undefined as never)).toThrow(
      new TypeError('belady policy: options.future must be an object with a nextUse(hash, afterTime) function, got undefined'),
    );
    expect(() => createBeladyPolicy({ future: {} as never })).toThrow(TypeError);
    expect(() => createBeladyPolicy({ future: futureOf({}), horizon: 3 } as never)).toThrow(
      new TypeError('belady policy: unknown option "horizon" (known: future)'),
    );
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 4 });
    const policy = createBeladyPolicy({ future: { nextUse: () => Number.NaN } });
    policy.attach?.(ctx);
    const ids = ctx.serve(chain(100, 1));
    expect(() => policy.scoreBlocks!(ids, new Float32Array(1))).toThrow(
      new RangeError('belady policy: future.nextUse(100n, -Infinity) returned number NaN, expected a number or Infinity'),
    );
  });
});
