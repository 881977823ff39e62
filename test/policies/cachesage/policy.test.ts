/**
 * CacheSage on the policy test context: hand-built workloads, exact
 * eviction orders derived from the model (cachesage.md sections 2 to 4).
 */
import { describe, expect, it } from 'vitest';

import { createCacheSagePolicy, type CacheSageOptions } from '../../../src/policies/cachesage/policy.js';
import type { AgentRef, FrameworkEvent, Policy } from '../../../src/policies/types.js';
import { chain, TestContext } from '../context.js';

const W = 'w';
const ref = (agent: string): AgentRef => ({ workload: W, agent });
const started = (session: string, time: number): FrameworkEvent => ({ type: 'session.start', time, session, workload: W });
const stepStart = (session: string, agent: string, time: number): FrameworkEvent => ({ type: 'step.start', time, session, agent: ref(agent) });
const stepEnd = (session: string, agent: string, time: number): FrameworkEvent => ({ type: 'step.end', time, session, agent: ref(agent) });
const ended = (session: string, time: number): FrameworkEvent => ({ type: 'session.end', time, session });

function setup(options: CacheSageOptions = {}, hostBlocks = 0): { ctx: TestContext; policy: Policy } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16, hostBlocks }, { classes: true });
  const policy = createCacheSagePolicy(options);
  policy.attach!(ctx);
  return { ctx, policy };
}

/**
 * Feeds one session from `time`: each step runs 1 s and is followed by a
 * 1 s gap; the session ends after its last step unless `live`. Returns the
 * time after the session.
 */
function walk(ctx: TestContext, policy: Policy, session: string, agents: string[], time: number, live = false): number {
  let t = time;
  ctx.feed(policy, started(session, t));
  for (const agent of agents) {
    ctx.feed(policy, stepStart(session, agent, t), stepEnd(session, agent, t + 1));
    t += 2;
  }
  if (!live) ctx.feed(policy, ended(session, t));
  return t;
}

/**
 * Three sessions alternate a -> b -> a -> b, then session `s` runs a and
 * its step ends: from a, b runs next almost surely and a again two steps
 * later. Returns the time after.
 */
function learnAlternation(ctx: TestContext, policy: Policy): number {
  let t = 0;
  for (const s of ['l1', 'l2', 'l3']) t = walk(ctx, policy, s, ['a', 'b', 'a', 'b'], t);
  return walk(ctx, policy, 's', ['a'], t, true);
}

type Why = { reason: string; reuseProbability: number; reuseValue: number; score: number; sessionLive: boolean | null; currentAgent: string | null };
const why = (policy: Policy, block: number) => policy.explain!(block) as Why;

/** T[a][b] from counts with the default prior 0.1 over the states a row may move to (every state but START). */
const prior = (count: number, row: number, states: number) => (count + 0.1) / (row + 0.1 * (states - 1));

describe('cachesage policy: eviction order', () => {
  it("keeps a live session's blocks of its next agent over its current agent's, and an ended session's last", () => {
    const { ctx, policy } = setup();
    // Served oldest first: recency alone would evict them in this order.
    const [nextAgents] = ctx.serve(chain(100, 1), { session: 's', agent: ref('b') });
    const [ownAgents] = ctx.serve(chain(200, 1), { session: 's', agent: ref('a') });
    const [endedOnes] = ctx.serve(chain(300, 1), { session: 'l1', agent: ref('b') });
    expect([nextAgents, ownAgents, endedOnes]).toEqual([0, 1, 2]);
    learnAlternation(ctx, policy);
    ctx.rescore(policy);
    // From a: b next (T[a][b] = 6.1/6.3), a again only through b (T[b][a] about 1/2), two steps on.
    expect(why(policy, nextAgents!).reuseProbability).toBeGreaterThan(0.96);
    expect(why(policy, ownAgents!).reuseProbability).toBeCloseTo(0.5, 1);
    expect(why(policy, ownAgents!).reason).toBe('private: reuse in its session within 8 steps, prefix reuse at this depth 1.00');
    expect(why(policy, endedOnes!)).toMatchObject({ reason: 'private to an ended session', reuseProbability: 0, score: 0, sessionLive: false });
    expect(ctx.evictDevice(3)).toEqual([endedOnes, ownAgents, nextAgents]);
  });

  it("evicts stale chains first, leaf first, whatever their agent and recency", () => {
    const { ctx, policy } = setup();
    const [ownAgents] = ctx.serve(chain(200, 1), { session: 's', agent: ref('a') });
    const [current] = ctx.serve(chain(100, 1), { session: 's', agent: ref('b') });
    // b's previous prompt in s, which its latest one did not extend.
    const [old0, old1] = ctx.serve(chain(500, 2), { session: 's', agent: ref('b') });
    learnAlternation(ctx, policy);
    ctx.markStale([old0!, old1!]);
    ctx.rescore(policy);
    expect(why(policy, old1!)).toMatchObject({ reason: 'stale: its agent moved past this chain', reuseProbability: 0, score: 0, sessionLive: true });
    expect(ctx.evictDevice(4)).toEqual([old1, old0, ownAgents, current]);
  });

  it("keeps a shared block a live session will reach over an ended session's private block", () => {
    const { ctx, policy } = setup();
    const prompt = chain(100, 1);
    ctx.serve(prompt, { session: 'l2', agent: ref('b') });
    const [shared] = ctx.serve(prompt, { session: 's', agent: ref('b') });
    const [endedOnes] = ctx.serve(chain(300, 1), { session: 'l1', agent: ref('a') });
    const [ownAgents] = ctx.serve(chain(200, 1), { session: 's', agent: ref('a') });
    expect(ctx.scoreClass(ctx.classOf(shared!))!.session).toBe(-1);
    learnAlternation(ctx, policy);
    ctx.rescore(policy);
    expect(why(policy, shared!)).toMatchObject({
      reason: 'shared: the first live or new session to reach its agents within 8 steps',
      sessionLive: null,
      currentAgent: null,
    });
    expect(why(policy, shared!).reuseProbability).toBeGreaterThan(0.96);
    expect(ctx.evictDevice(3)).toEqual([endedOnes, ownAgents, shared]);
  });

  it('values untagged blocks like a sure reuse four steps ahead, and explains nothing for free blocks', () => {
    const { ctx, policy } = setup();
    const [untagged] = ctx.serve(chain(100, 1));
    const [ownAgents] = ctx.serve(chain(200, 1), { session: 's', agent: ref('a') });
    learnAlternation(ctx, policy);
    ctx.rescore(policy);
    expect(why(policy, untagged!)).toMatchObject({ reason: 'untagged: recency decides', reuseProbability: 0.5, reuseValue: 0.25, score: 0.25 });
    expect(why(policy, ownAgents!).score).toBeGreaterThan(0.25);
    expect(ctx.evictDevice(1)).toEqual([untagged]);
    expect(policy.explain!(untagged!)).toBeNull();
    expect(policy.explain!(-1)).toBeNull();
  });
});

describe('cachesage policy: options', () => {
  it('refuses unknown options with a TypeError naming them, and out-of-range ones with a RangeError', () => {
    expect(() => createCacheSagePolicy({ horizonn: 3 } as never)).toThrow(
      new TypeError(
        'cachesage policy: unknown option "horizonn" (known: horizon, halfLife, alpha, refreshEvery, prefetchThreshold, defaultGapSeconds, idleTimeoutSeconds, survival)',
      ),
    );
    expect(() => createCacheSagePolicy('fast' as never)).toThrow(new TypeError('cachesage policy: options must be an object, got the string "fast"'));
    expect(() => createCacheSagePolicy({ horizon: '3' } as never)).toThrow(
      new TypeError('cachesage policy: options.horizon must be a number, got the string "3"'),
    );
    expect(() => createCacheSagePolicy({ horizon: 0 })).toThrow(new RangeError('cachesage policy: options.horizon must be in [1, 256], got 0'));
    expect(() => createCacheSagePolicy({ horizon: 2.5 })).toThrow(new RangeError('cachesage policy: options.horizon must be an integer, got 2.5'));
    expect(() => createCacheSagePolicy({ prefetchThreshold: 1.5 })).toThrow(
      new RangeError('cachesage policy: options.prefetchThreshold must be in [0, 1], got 1.5'),
    );
    expect(() => createCacheSagePolicy({ idleTimeoutSeconds: -1 })).toThrow(RangeError);
    expect(() => createCacheSagePolicy({ refreshEvery: 0 })).toThrow(RangeError);
    expect(() => createCacheSagePolicy({ halfLife: 0.5 })).toThrow(new RangeError('TransitionModel: options.halfLife must be >= 1 or Infinity, got 0.5'));
    expect(() => createCacheSagePolicy({ alpha: -1 })).toThrow(new RangeError('TransitionModel: options.alpha must be finite and >= 0, got -1'));
    expect(() => createCacheSagePolicy({ survival: 'gpu' } as never)).toThrow(
      new RangeError("cachesage policy: options.survival must be 'backend', 'native', 'reference' or a SurvivalBackend"),
    );
    expect(createCacheSagePolicy({ horizon: 3, survival: 'reference' }).name).toBe('cachesage');
  });
});

describe('cachesage policy: predict', () => {
  it('gives the learned next-agent distribution, reuse within the horizon and the chance to stay alive', () => {
    const { ctx, policy } = setup({ halfLife: Infinity });
    learnAlternation(ctx, policy);
    // Counts out of a: b 6 times, nothing else; out of b: a 3, END 3. Four states.
    const p = policy.predict!({ session: 's', horizon: 1 })!;
    expect(Object.keys(p.next)).toEqual(['a', 'b', '<end>']);
    expect(p.next.a).toBeCloseTo(prior(0, 6, 4), 12);
    expect(p.next.b).toBeCloseTo(prior(6, 6, 4), 12);
    expect(p.next['<end>']).toBeCloseTo(prior(0, 6, 4), 12);
    expect(p.reuseWithin.b).toBeCloseTo(prior(6, 6, 4), 6);
    expect(p.alive).toBeCloseTo(1 - prior(0, 6, 4), 6);
    expect(p).toMatchObject({ session: 's', workload: W, currentAgent: 'a', horizon: 1 });
    expect(p.secondsToNextStep).toBeCloseTo(1, 9); // every gap after a lasted 1 s, and a's step just ended

    // Two steps: a ends either at once or after b.
    const two = policy.predict!({ session: 's', horizon: 2 })!;
    const [ab, aEnd, bEnd, aa] = [prior(6, 6, 4), prior(0, 6, 4), prior(3, 6, 4), prior(0, 6, 4)];
    expect(two.alive).toBeCloseTo(1 - (aEnd + ab * bEnd + aa * aEnd), 6);
    expect(two.alive).toBeGreaterThanOrEqual(0);
    expect(two.alive).toBeLessThanOrEqual(1);
    expect(policy.predict!({ session: 's', horizon: 99 })!.horizon).toBe(8);
  });

  it('says an ended session is not alive, and knows nothing of unknown sessions', () => {
    const { ctx, policy } = setup();
    learnAlternation(ctx, policy);
    expect(policy.predict!({ session: 'l1' })).toMatchObject({ currentAgent: 'b', alive: 0, secondsToNextStep: null, horizon: 8 });
    expect(policy.predict!({ session: 'nobody' })).toBeNull();
  });
});

describe('cachesage policy: prefetch', () => {
  /** Session s's prompts: b's (3 blocks), c's (1), then a's (2), all demoted to host. */
  function onHost(options: CacheSageOptions = {}) {
    const { ctx, policy } = setup(options, 8);
    const b = ctx.serve(chain(100, 3), { session: 's', agent: ref('b') });
    const c = ctx.serve(chain(300, 1), { session: 's', agent: ref('c') });
    const a = ctx.serve(chain(200, 2), { session: 's', agent: ref('a') });
    expect([...b, ...c, ...a]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ctx.manager.demote(Int32Array.of(2, 1, 0, 3, 5, 4))).toBe(6);
    // c ran once, in a session of its own: T[a][c] is the prior's 0.1 / 6.4.
    const t = walk(ctx, policy, 'l0', ['c'], 0);
    let end = t;
    for (const s of ['l1', 'l2', 'l3']) end = walk(ctx, policy, s, ['a', 'b', 'a', 'b'], end);
    end = walk(ctx, policy, 's', ['a'], end, true);
    return { ctx, policy, end };
  }

  it("loads the session's context and the likely next agent's prompt after a step ends, once", () => {
    const { policy, end } = onHost();
    // The session's last prompt (a's) first, then b's; not c's (below the threshold).
    expect(policy.act!(end)).toEqual([{ type: 'prefetch', blockIds: Int32Array.of(4, 5, 0, 1, 2) }]);
    expect(policy.act!(end)).toEqual([]);
  });

  it('takes unlikely agents above a lower threshold, likeliest first', () => {
    const { policy, end } = onHost({ prefetchThreshold: 0.01 });
    expect(policy.act!(end)).toEqual([{ type: 'prefetch', blockIds: Int32Array.of(4, 5, 0, 1, 2, 3) }]);
  });

  it('prefetches nothing once the next step has started, or the session has ended', () => {
    const { ctx, policy, end } = onHost();
    ctx.feed(policy, stepStart('s', 'b', end));
    expect(policy.act!(end)).toEqual([]);
    ctx.feed(policy, stepEnd('s', 'b', end + 1), ended('s', end + 2));
    expect(policy.act!(end + 2)).toEqual([]);
  });
});

describe('cachesage policy: idle sessions', () => {
  it('ends an idle session for the model, and a later step makes it live again', () => {
    const { ctx, policy } = setup({ idleTimeoutSeconds: 10 });
    const [untagged] = ctx.serve(chain(100, 1));
    const [first, second] = [...ctx.serve(chain(200, 1), { session: 's', agent: ref('b') }), ...ctx.serve(chain(300, 1), { session: 's', agent: ref('b') })];
    const end = learnAlternation(ctx, policy);
    const last = end - 1; // a's step ended
    expect(ctx.session('s')!.lastEventAt).toBe(last);
    policy.act!(last + 10);
    expect(why(policy, first!).sessionLive).toBe(true);
    ctx.invalidated.length = 0;
    policy.act!(last + 12);
    expect(ctx.invalidated).toEqual([ctx.classOf(first!)]);
    expect(ctx.session('s')!.live).toBe(true); // still live in the runtime
    expect(why(policy, first!)).toMatchObject({ reason: 'private to an ended session', score: 0, sessionLive: false });
    ctx.rescore(policy);
    expect(ctx.evictDevice(1)).toEqual([first]);

    ctx.feed(policy, stepStart('s', 'a', last + 20));
    expect(why(policy, second!)).toMatchObject({ reason: 'private: reuse in its session within 8 steps, prefix reuse at this depth 1.00', sessionLive: true });
    ctx.rescore(policy);
    expect(ctx.evictDevice(2)).toEqual([untagged, second]);
  });

  it("counts an idle session's end once, even when the runtime ends it later", () => {
    const { ctx, policy } = setup({ idleTimeoutSeconds: 10, halfLife: Infinity });
    const end = learnAlternation(ctx, policy);
    // States START, END, a, b: counts[a * 4 + END] is a -> END.
    const aToEnd = () => (policy.snapshot!() as { workloads: Record<string, { model: { counts: number[] } }> }).workloads[W]!.model.counts[2 * 4 + 1];
    expect(aToEnd()).toBe(0);
    policy.act!(end + 20);
    expect(aToEnd()).toBe(1);
    ctx.feed(policy, ended('s', end + 30));
    expect(aToEnd()).toBe(1);
  });
});
