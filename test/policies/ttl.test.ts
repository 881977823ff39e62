import { describe, expect, it } from 'vitest';

import { createTtlPolicy } from '../../src/policies/ttl.js';
import type { AgentRef, FrameworkEvent, Policy } from '../../src/policies/types.js';
import { chain, TestContext } from './context.js';

const agent: AgentRef = { workload: 'w', agent: 'coder' };
const toolStart = (time: number, session = 's'): FrameworkEvent => ({ type: 'tool.start', time, session, agent, tool: 'shell' });
const toolEnd = (time: number, session = 's'): FrameworkEvent => ({ type: 'tool.end', time, session, agent, tool: 'shell' });

function setup(options?: { ttlSeconds?: number }): { ctx: TestContext; policy: Policy; leaf: number } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8, hostBlocks: 4 });
  const policy = createTtlPolicy(options);
  policy.attach?.(ctx);
  const ids = ctx.serve(chain(100, 3), { session: 's', agent });
  // Tool events reach policies only for sessions the session model knows live.
  for (const session of ['s', 't', 'other']) ctx.feed(policy, { type: 'session.start', time: 0, session, workload: 'w' });
  return { ctx, policy, leaf: ids[2]! };
}

describe('ttl policy', () => {
  it('pins the session chain on tool.start and unpins on tool.end', () => {
    const { ctx, policy, leaf } = setup();
    expect(policy.scoring).toBeUndefined();
    expect(leaf).toBe(2);
    ctx.feed(policy, toolStart(0));
    expect(policy.act!(0)).toEqual([{ type: 'pin', key: 'ttl:s', leafBlockId: 2 }]);
    expect(policy.act!(1)).toEqual([]);
    ctx.feed(policy, toolEnd(2));
    expect(policy.act!(2)).toEqual([{ type: 'unpin', key: 'ttl:s' }]);
    expect(policy.act!(3)).toEqual([]);
  });

  it('unpins when the TTL runs out, counted from the tool start', () => {
    const { ctx, policy } = setup({ ttlSeconds: 10 });
    ctx.feed(policy, toolStart(10));
    expect(policy.act!(10.5)).toEqual([{ type: 'pin', key: 'ttl:s', leafBlockId: 2 }]);
    expect(policy.act!(19.9)).toEqual([]);
    expect(policy.act!(20)).toEqual([{ type: 'unpin', key: 'ttl:s' }]);
    ctx.feed(policy, toolEnd(21));
    expect(policy.act!(21)).toEqual([]);
  });

  it('uses a 10 second TTL by default', () => {
    const { ctx, policy } = setup();
    ctx.feed(policy, toolStart(0));
    expect(policy.act!(0)).toHaveLength(1);
    expect(policy.act!(9.99)).toEqual([]);
    expect(policy.act!(10)).toEqual([{ type: 'unpin', key: 'ttl:s' }]);
  });

  it('unpins on session.end', () => {
    const { ctx, policy } = setup();
    ctx.feed(policy, toolStart(0));
    expect(policy.act!(0)).toEqual([{ type: 'pin', key: 'ttl:s', leafBlockId: 2 }]);
    ctx.feed(policy, { type: 'session.end', time: 1, session: 's' });
    expect(policy.act!(1)).toEqual([{ type: 'unpin', key: 'ttl:s' }]);
  });

  it('never pins a tool call that ends before the next act, nor one past its TTL', () => {
    const { ctx, policy } = setup({ ttlSeconds: 5 });
    ctx.feed(policy, toolStart(0), toolEnd(1));
    expect(policy.act!(1)).toEqual([]);
    ctx.feed(policy, toolStart(2));
    expect(policy.act!(7)).toEqual([]);
    expect(policy.act!(8)).toEqual([]);
  });

  it('a second tool call replaces the pin with the chain of the newer prompt', () => {
    const { ctx, policy } = setup();
    ctx.feed(policy, toolStart(0));
    expect(policy.act!(0)).toEqual([{ type: 'pin', key: 'ttl:s', leafBlockId: 2 }]);
    const longer = ctx.serve(chain(100, 4), { session: 's', agent });
    expect(longer[3]).toBe(3);
    ctx.feed(policy, toolStart(1));
    expect(policy.act!(1)).toEqual([
      { type: 'unpin', key: 'ttl:s' },
      { type: 'pin', key: 'ttl:s', leafBlockId: 3 },
    ]);
  });

  it('pins from the deepest block still on device', () => {
    const { ctx, policy } = setup();
    expect(ctx.manager.demote(new Int32Array([2]))).toBe(1);
    ctx.feed(policy, toolStart(0));
    expect(policy.act!(0)).toEqual([{ type: 'pin', key: 'ttl:s', leafBlockId: 1 }]);
  });

  it('pins nothing for a session with no cached prompt', () => {
    const { ctx, policy } = setup();
    ctx.feed(policy, toolStart(0, 'other'));
    expect(policy.act!(0)).toEqual([]);
    ctx.feed(policy, toolEnd(1, 'other'));
    expect(policy.act!(1)).toEqual([]);
  });

  it('keeps one pin per session, released in order', () => {
    const { ctx, policy } = setup();
    ctx.serve(chain(200, 2), { session: 't', agent });
    ctx.feed(policy, toolStart(0, 't'), toolStart(0.5, 's'));
    expect(policy.act!(1)).toEqual([
      { type: 'pin', key: 'ttl:t', leafBlockId: 4 },
      { type: 'pin', key: 'ttl:s', leafBlockId: 2 },
    ]);
    ctx.feed(policy, toolEnd(2, 's'));
    expect(policy.act!(10.2)).toEqual([
      { type: 'unpin', key: 'ttl:s' },
      { type: 'unpin', key: 'ttl:t' },
    ]);
  });

  it('refuses a bad ttlSeconds', () => {
    expect(() => createTtlPolicy({ ttlSeconds: 0 })).toThrow(
      new RangeError('ttl policy: options.ttlSeconds must be > 0 (Infinity: no limit), got 0'),
    );
    expect(() => createTtlPolicy({ ttlSeconds: Number.NaN })).toThrow(RangeError);
    expect(() => createTtlPolicy({ ttlSeconds: '10' as never })).toThrow(
      new TypeError('ttl policy: options.ttlSeconds must be a number, got the string "10"'),
    );
    expect(() => createTtlPolicy({ ttl: 10 } as never)).toThrow(new TypeError('ttl policy: unknown option "ttl" (known: ttlSeconds)'));
    expect(createTtlPolicy({ ttlSeconds: Infinity }).name).toBe('ttl');
  });
});
