/**
 * Agents created per task (experts that live in one session, hundreds of
 * names): once a workload has many agents, newcomers share one pooled
 * model state until they recur in a second session, so the model stays
 * small however many names pass; a session's private blocks of such an
 * agent are valued by its share of the session's steps.
 */
import { describe, expect, it } from 'vitest';

import { createCacheSagePolicy } from '../../../src/policies/cachesage/policy.js';
import { POOL_AFTER_AGENTS } from '../../../src/policies/cachesage/workload.js';
import type { AgentRef, FrameworkEvent, Policy } from '../../../src/policies/types.js';
import { chain, TestContext } from '../context.js';

const W = 'chat';
const ref = (agent: string): AgentRef => ({ workload: W, agent });

function setup(): { ctx: TestContext; policy: Policy } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16 }, { classes: true });
  const policy = createCacheSagePolicy({ halfLife: Infinity });
  policy.attach!(ctx);
  return { ctx, policy };
}

/** One task: the manager hands over to each speaker in turn and back; returns the time after. */
function task(ctx: TestContext, policy: Policy, session: string, speakers: string[], time: number, end = true): number {
  let t = time;
  const events: FrameworkEvent[] = [{ type: 'session.start', time: t, session, workload: W }];
  for (const agent of speakers.flatMap((e) => ['manager', e]).concat('manager')) {
    events.push({ type: 'step.start', time: t, session, agent: ref(agent) }, { type: 'step.end', time: t + 1, session, agent: ref(agent) });
    t += 2;
  }
  if (end) events.push({ type: 'session.end', time: t, session });
  ctx.feed(policy, ...events);
  return t;
}

type Model = { agents: string[] };
const modelOf = (policy: Policy) => (policy.snapshot!() as { workloads: Record<string, { model: Model }> }).workloads[W]!.model;

describe('cachesage policy: agents created per task', () => {
  it('keeps the model at the pooling size however many one-session agents pass, past the model state limit', () => {
    const { ctx, policy } = setup();
    let t = 0;
    // 400 tasks of 3 experts each: 1,200 names, more than a model holds (1,022).
    for (let s = 0; s < 400; s++) t = task(ctx, policy, `task${s}`, [`coder${s}`, `critic${s}`, `tester${s}`], t);
    const agents = modelOf(policy).agents;
    expect(agents).toHaveLength(POOL_AFTER_AGENTS + 1);
    expect(agents.slice(0, 4)).toEqual(['manager', 'coder0', 'critic0', 'tester0']);
    expect(agents[POOL_AFTER_AGENTS]).toBe('\u0000rare');
    // The manager hands over to "an expert", learned across tasks: out of
    // its 1,601 hand-offs, 400 ended a task, 31 went to the first experts
    // (their own states) and 1,170 to the pool; prior 0.1 over 34 states.
    t = task(ctx, policy, 'live', ['coder-live'], t, false);
    const next = policy.predict!({ session: 'live', horizon: 1 })!.next;
    expect(next['<rare agents>']).toBeCloseTo((1170 + 0.1) / (1601 + 0.1 * 34), 9);
  });

  it("values a pooled agent's private blocks by its share of its session's steps", () => {
    const { ctx, policy } = setup();
    let t = 0;
    // 31 experts in ten earlier tasks (and the manager) fill the per-name states.
    for (let s = 0; s < 10; s++) t = task(ctx, policy, `old${s}`, [`a${s}`, `b${s}`, `c${s}`], t);
    t = task(ctx, policy, 'old10', ['a10'], t);
    expect(modelOf(policy).agents).toHaveLength(POOL_AFTER_AGENTS);
    // Live task: x speaks twice, y once, in 7 steps; the manager spoke last.
    task(ctx, policy, 's', ['x', 'x', 'y'], t, false);
    const [x] = ctx.serve(chain(100, 1), { session: 's', agent: ref('x') });
    const [y] = ctx.serve(chain(200, 1), { session: 's', agent: ref('y') });
    ctx.rescore(policy);
    // P(runs within 8 steps) = 1 - (1 - share)^8, shares 2/7 and 1/7.
    expect((policy.explain!(x!) as { reuseProbability: number }).reuseProbability).toBeCloseTo(1 - (5 / 7) ** 8, 6);
    expect((policy.explain!(y!) as { reuseProbability: number }).reuseProbability).toBeCloseTo(1 - (6 / 7) ** 8, 6);
    expect(ctx.evictDevice(2)).toEqual([y, x]);
  });
});
