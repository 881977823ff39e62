/**
 * Shared learning through a real Redis: replica B predicts for a workload
 * it never served what replica A, which served it, predicts; exchanging
 * again and again counts nothing twice.
 */
import { describe, expect, it } from 'vitest';

import { createCacheSagePolicy, sharesTransitions } from '../../src/policies/cachesage/policy.js';
import { openRedis } from '../../src/remote/redis.js';
import { TransitionExchange } from '../../src/remote/transition_exchange.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { redisForTests } from './redis_server.js';

const ctx = redisForTests();

function replica(name: string, namespace: string) {
  const policy = createCacheSagePolicy();
  if (!sharesTransitions(policy)) throw new Error('cachesage must share transitions');
  let t = 0;
  const runtime = new Runtime({ blocks: { blockSize: 4, deviceBlocks: 64 }, policies: [policy], now: () => t });
  const exchange = new TransitionExchange(ctx.redis.client, policy, { replica: name, namespace });
  const walk = (workload: string, session: string, agents: string[], end = true) => {
    runtime.observe({ type: 'session.start', time: ++t, session, workload });
    for (const agent of agents) {
      runtime.observe({ type: 'step.start', time: ++t, session, agent: { workload, agent } });
      runtime.observe({ type: 'step.end', time: ++t, session, agent: { workload, agent } });
    }
    if (end) runtime.observe({ type: 'session.end', time: ++t, session });
  };
  return { policy, runtime, exchange, walk };
}

/** Sessions of the "dev" workload: planner, then coder and reviewer alternating, sometimes a tester. */
function serveDev(walk: ReturnType<typeof replica>['walk'], count: number): void {
  for (let s = 0; s < count; s++) {
    const agents = ['planner', 'coder', 'reviewer', ...(s % 3 === 0 ? ['tester'] : []), 'coder', 'reviewer'];
    walk('dev', `dev-${s}`, agents);
  }
}

const top = (next: Record<string, number>) => Object.entries(next).sort((x, y) => y[1] - x[1])[0]![0];

describe('TransitionExchange', () => {
  it("gives replica B, which never served a workload, replica A's predictions for it", async () => {
    const a = replica('a', 'x1');
    const b = replica('b', 'x1');
    serveDev(a.walk, 12);
    b.walk('ops', 'ops-0', ['triager', 'fixer']);
    expect(await a.exchange.sync()).toBe(0);
    expect(await b.exchange.sync()).toBe(1);
    expect(await a.exchange.pull()).toBe(1); // A takes B's "ops"

    a.walk('dev', 'probe-a', [], false);
    b.walk('dev', 'probe-b', [], false);
    const pa = a.runtime.predict({ session: 'probe-a' })!;
    const pb = b.runtime.predict({ session: 'probe-b' })!;
    expect(top(pb.next)).toBe('planner');
    expect(Object.keys(pb.next).sort()).toEqual(Object.keys(pa.next).sort());
    for (const agent of Object.keys(pa.next)) expect(pb.next[agent]).toBeCloseTo(pa.next[agent]!, 9);
    expect(Object.keys(pb.reuseWithin).sort()).toEqual(['coder', 'planner', 'reviewer', 'tester']);
    for (const agent of Object.keys(pa.reuseWithin)) expect(pb.reuseWithin[agent]).toBeCloseTo(pa.reuseWithin[agent]!, 5);

    // One step later both have seen START -> planner once more: still the same predictions, within decay.
    for (const [r, session] of [[a, 'probe-a'], [b, 'probe-b']] as const) {
      r.runtime.observe({ type: 'step.start', time: 1000, session, agent: { workload: 'dev', agent: 'planner' } });
      r.runtime.observe({ type: 'step.end', time: 1001, session, agent: { workload: 'dev', agent: 'planner' } });
    }
    const qa = a.runtime.predict({ session: 'probe-a' })!;
    const qb = b.runtime.predict({ session: 'probe-b' })!;
    expect(top(qb.next)).toBe('coder');
    for (const agent of Object.keys(qa.next)) expect(qb.next[agent]).toBeCloseTo(qa.next[agent]!, 2);
  });

  it('publishes only what a replica observed, so repeated exchanges count nothing twice', async () => {
    const a = replica('a', 'x2');
    const b = replica('b', 'x2');
    serveDev(a.walk, 6);
    serveDev(b.walk, 2);
    await a.exchange.sync();
    await b.exchange.sync();
    await a.exchange.pull();
    a.walk('dev', 'probe', [], false);
    const once = a.runtime.predict({ session: 'probe' })!;
    const exported = a.policy.exportTransitions().dev!;
    for (let round = 0; round < 3; round++) {
      await a.exchange.sync();
      await b.exchange.sync();
    }
    // Each replica still exports only its own hand-offs: B's two sessions (6 and 5 steps, one more hand-off each to END).
    expect(a.policy.exportTransitions().dev).toEqual(exported);
    expect(b.policy.exportTransitions().dev!.handoffs).toBe(6 + 1 + (5 + 1));
    const again = a.runtime.predict({ session: 'probe' })!;
    for (const agent of Object.keys(once.next)) expect(again.next[agent]).toBeCloseTo(once.next[agent]!, 12);
  });

  it('skips a malformed peer entry and keeps working when Redis is unreachable', async () => {
    const a = replica('a', 'x3');
    await ctx.redis.client.hset(a.exchange.keys.workload('dev'), 'mallory', '{"format":"cachesage.shared-transitions"}');
    await ctx.redis.client.sadd(a.exchange.keys.workloads(), 'dev');
    expect(await a.exchange.pull()).toBe(0);
    expect(a.exchange.stats.malformed).toBe(1);
    expect(a.exchange.stats.lastError).toMatch(/entry of replica "mallory"/);

    const offline = await openRedis({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 100, commandTimeoutMs: 100 });
    const lonely = new TransitionExchange(offline.client, a.policy, { replica: 'a', namespace: 'x3' });
    serveDev(a.walk, 1);
    expect(await lonely.sync()).toBe(0);
    expect(lonely.stats.errors).toBe(2);
    await offline.close();
  });
});
