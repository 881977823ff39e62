import { describe, expect, it } from 'vitest';

import {
  createKvflowPolicy,
  deriveStepGraph,
  KVFLOW_ENDED_SCORE,
  KVFLOW_UNREACHABLE_SCORE,
  type KvflowPolicyOptions,
} from '../../src/policies/kvflow.js';
import type { AgentRef, FrameworkEvent, Policy } from '../../src/policies/types.js';
import { chain, TestContext } from './context.js';

const W = 'w';
const ref = (agent: string): AgentRef => ({ workload: W, agent });
const started = (session: string, time = 0): FrameworkEvent => ({ type: 'session.start', time, session, workload: W });
const stepStart = (session: string, agent: string, time = 0): FrameworkEvent => ({ type: 'step.start', time, session, agent: ref(agent) });
const stepEnd = (session: string, agent: string, time = 0): FrameworkEvent => ({ type: 'step.end', time, session, agent: ref(agent) });
const ended = (session: string, time = 0): FrameworkEvent => ({ type: 'session.end', time, session });

/** planner -> coder -> reviewer -> (coder | writer); sessions start with the planner. */
const PIPELINE: KvflowPolicyOptions = {
  workloads: {
    [W]: {
      edges: { planner: ['coder'], coder: ['reviewer'], reviewer: ['coder', 'writer'], writer: [] },
      start: ['planner'],
    },
  },
};

function setup(options: KvflowPolicyOptions = PIPELINE, hostBlocks = 0): { ctx: TestContext; policy: Policy } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16, hostBlocks }, { classes: true });
  const policy = createKvflowPolicy(options);
  policy.attach?.(ctx);
  return { ctx, policy };
}

/** Score of the class a block is filed under. */
function scoreOfBlock(ctx: TestContext, policy: Policy, blockId: number): number {
  const out = new Float32Array(1);
  policy.scoreClasses!(new Int32Array([ctx.classOf(blockId)]), out);
  return out[0]!;
}

describe('kvflow policy: steps to execution', () => {
  it("keeps the next agent's blocks over a far agent's, whatever their recency", () => {
    const { ctx, policy } = setup();
    expect(policy.scoring).toBe('classes');
    const [c0, c1] = ctx.serve(chain(100, 2), { session: 's', agent: ref('coder') });
    const [r] = ctx.serve(chain(200, 1), { session: 's', agent: ref('reviewer') });
    const [p] = ctx.serve(chain(300, 1), { session: 's', agent: ref('planner') });
    const [w] = ctx.serve(chain(400, 1), { session: 's', agent: ref('writer') });
    ctx.feed(policy, started('s'), stepStart('s', 'planner'), stepEnd('s', 'planner'));
    ctx.rescore(policy);
    // Steps after the planner: coder 1, reviewer 2, writer 3, planner never again.
    expect([c1, r, w, p].map((b) => scoreOfBlock(ctx, policy, b!))).toEqual([-1, -2, -3, KVFLOW_UNREACHABLE_SCORE]);
    expect(ctx.evictDevice(5)).toEqual([p, w, r, c1, c0]);
  });

  it('counts the running agent as 0 steps away and breaks equal distances by recency', () => {
    const { ctx, policy } = setup();
    const [c] = ctx.serve(chain(100, 1), { session: 's', agent: ref('coder') });
    const [w] = ctx.serve(chain(400, 1), { session: 's', agent: ref('writer') });
    const [r] = ctx.serve(chain(200, 1), { session: 's', agent: ref('reviewer') });
    ctx.feed(policy, started('s'), stepStart('s', 'reviewer'));
    expect([c, w, r].map((b) => scoreOfBlock(ctx, policy, b!))).toEqual([-1, -1, 0]);
    ctx.feed(policy, stepEnd('s', 'reviewer'));
    ctx.rescore(policy);
    // After the reviewer: coder and writer 1 step away, the reviewer itself 2 (via the coder).
    expect([c, w, r].map((b) => scoreOfBlock(ctx, policy, b!))).toEqual([-1, -1, -2]);
    expect(ctx.evictDevice(3)).toEqual([r, c, w]);
  });

  it('scores shared blocks by the nearest live session, private blocks of ended sessions lowest', () => {
    const { ctx, policy } = setup();
    const prompt = chain(100, 1);
    ctx.serve(prompt, { session: 's1', agent: ref('coder') });
    const [shared] = ctx.serve(prompt, { session: 's2', agent: ref('coder') });
    const [own1] = ctx.serve(chain(500, 1), { session: 's1', agent: ref('coder') });
    expect(ctx.scoreClass(ctx.classOf(shared!))!.session).toBe(-1);
    ctx.feed(policy, started('s1'), started('s2'), stepStart('s1', 'planner'), stepStart('s2', 'writer'));
    // s1 runs the planner: the coder is 1 step away; s2 (writer) never reaches it.
    expect(scoreOfBlock(ctx, policy, shared!)).toBe(-1);
    ctx.feed(policy, ended('s1'));
    // A session about to start reaches the coder in 2 steps (START -> planner -> coder).
    expect(scoreOfBlock(ctx, policy, shared!)).toBe(-2);
    expect(scoreOfBlock(ctx, policy, own1!)).toBe(KVFLOW_ENDED_SCORE);
  });

  it('scores a shared block no live or new session reaches as unreachable', () => {
    const { ctx, policy } = setup({ workloads: { [W]: { edges: { planner: ['coder'], coder: [] } } } });
    const prompt = chain(100, 1);
    ctx.serve(prompt, { session: 's1', agent: ref('planner') });
    const [shared] = ctx.serve(prompt, { session: 's2', agent: ref('planner') });
    ctx.feed(policy, started('s1'), stepStart('s1', 'planner'), stepEnd('s1', 'planner'));
    expect(scoreOfBlock(ctx, policy, shared!)).toBe(KVFLOW_UNREACHABLE_SCORE);
  });

  it('gives blocks the graph knows nothing about the neutral score', () => {
    const { ctx, policy } = setup({ ...PIPELINE, neutralSteps: 2.5 });
    const [untagged] = ctx.serve(chain(100, 1));
    const [stranger] = ctx.serve(chain(200, 1), { session: 's', agent: ref('stranger') });
    const [otherWorkload] = ctx.serve(chain(300, 1), { session: 't', agent: { workload: 'v', agent: 'coder' } });
    const [unseenSession] = ctx.serve(chain(400, 1), { session: 'u', agent: ref('coder') });
    ctx.feed(policy, started('s'), stepStart('s', 'planner'), stepEnd('s', 'planner'));
    for (const block of [untagged, stranger, otherWorkload, unseenSession]) {
      expect(scoreOfBlock(ctx, policy, block!)).toBe(-2.5);
    }
    expect(scoreOfBlock(ctx, setup().policy, 0)).toBe(-1.5); // an unknown class, default neutral
  });

  it("invalidates the session's classes and its workload's shared classes when the session moves", () => {
    const { ctx, policy } = setup();
    const prompt = chain(100, 1);
    ctx.serve(prompt, { session: 's1', agent: ref('coder') });
    const [shared] = ctx.serve(prompt, { session: 's2', agent: ref('coder') });
    const [own] = ctx.serve(chain(500, 1), { session: 's1', agent: ref('coder') });
    ctx.feed(policy, started('s1'));
    ctx.invalidated.length = 0;
    ctx.feed(policy, stepStart('s1', 'coder'));
    expect(ctx.invalidated).toEqual([ctx.classOf(own!), ctx.classOf(shared!)]);
    ctx.invalidated.length = 0;
    ctx.feed(policy, stepStart('s1', 'coder'));
    expect(ctx.invalidated).toEqual([]); // nothing moved
    ctx.feed(policy, ended('s1'));
    expect(ctx.invalidated).toEqual([ctx.classOf(own!), ctx.classOf(shared!)]);
  });
});

describe('kvflow policy: next-step prefetch', () => {
  const BRANCH: KvflowPolicyOptions = {
    workloads: {
      [W]: { transitions: { planner: { coder: 0.3, reviewer: 0.7 }, coder: { writer: 1 } }, start: { planner: 1 } },
    },
  };

  it("prefetches exactly the host blocks of the next agents' last prompts, likeliest first, parents first", () => {
    const { ctx, policy } = setup(BRANCH, 8);
    const coder = ctx.serve(new BigUint64Array([100n, 101n, 102n]), { session: 's', agent: ref('coder') });
    const reviewer = ctx.serve(new BigUint64Array([100n, 300n, 301n]), { session: 's', agent: ref('reviewer') });
    const writer = ctx.serve(chain(500, 2), { session: 's', agent: ref('writer') });
    const planner = ctx.serve(chain(700, 1), { session: 's', agent: ref('planner') });
    expect([...coder, ...reviewer, ...writer, ...planner]).toEqual([0, 1, 2, 0, 3, 4, 5, 6, 7]);
    // Everything but the planner's block goes to host, leaves first.
    expect(ctx.manager.demote(new Int32Array([2, 1, 4, 3, 0, 6, 5]))).toBe(7);
    ctx.feed(policy, started('s'), stepStart('s', 'planner'), stepEnd('s', 'planner'));
    const actions = policy.act!(1);
    // Reviewer (0.7) before coder (0.3); the shared root 0 once, ahead of its children.
    expect(actions).toEqual([{ type: 'prefetch', blockIds: new Int32Array([0, 3, 4, 1, 2]) }]);
    expect(ctx.manager.load(actions[0]!.type === 'prefetch' ? actions[0]!.blockIds : new Int32Array())).toBe(5);
    expect(policy.act!(2)).toEqual([]);
  });

  it('prefetches only what is on host, and nothing once the next step has started', () => {
    const { ctx, policy } = setup(PIPELINE, 8);
    ctx.serve(chain(100, 3), { session: 's', agent: ref('coder') }); // 0, 1, 2
    ctx.manager.demote(new Int32Array([2]));
    ctx.feed(policy, started('s'), stepStart('s', 'planner'), stepEnd('s', 'planner'));
    expect(policy.act!(1)).toEqual([{ type: 'prefetch', blockIds: new Int32Array([2]) }]);
    ctx.manager.demote(new Int32Array([1]));
    ctx.feed(policy, stepStart('s', 'planner'), stepEnd('s', 'planner'), stepStart('s', 'coder'));
    expect(policy.act!(2)).toEqual([]);
    ctx.feed(policy, stepEnd('s', 'coder'), ended('s'));
    expect(policy.act!(3)).toEqual([]);
  });

  it('drops derived hand-offs below minProbability', () => {
    const { ctx, policy } = setup({ ...BRANCH, minProbability: 0.5 }, 8);
    ctx.serve(chain(100, 1), { session: 's', agent: ref('coder') });
    const [reviewerBlock] = ctx.serve(chain(300, 1), { session: 's', agent: ref('reviewer') });
    ctx.manager.demote(new Int32Array([0, reviewerBlock!]));
    ctx.feed(policy, started('s'), stepStart('s', 'planner'), stepEnd('s', 'planner'));
    expect(policy.act!(1)).toEqual([{ type: 'prefetch', blockIds: new Int32Array([reviewerBlock!]) }]);
  });
});

describe('deriveStepGraph', () => {
  it('builds every workload graph from a whole trace', () => {
    const derived = deriveStepGraph([
      { session: 's1', agent: 'planner', workload: 'w' },
      { session: 's2', agent: 'planner', workload: 'w' },
      { session: 's1', agent: 'coder', workload: 'w' },
      { session: 's3', agent: 'solo', workload: 'v' },
      { session: 's1', agent: 'reviewer', workload: 'w' },
      { session: 's2', agent: 'coder', workload: 'w' },
      { session: 's1', agent: 'coder', workload: 'w' },
      { session: 's3', agent: 'solo', workload: 'v' },
      { session: 's1', agent: 'reviewer', workload: 'w' },
    ]);
    expect(derived).toEqual({
      workloads: {
        // A session's last call hands off to its end: coder 3 calls, 2 followed by the reviewer.
        w: { transitions: { planner: { coder: 1 }, coder: { reviewer: 2 / 3 }, reviewer: { coder: 1 / 2 } }, start: { planner: 1 } },
        v: { transitions: { solo: { solo: 1 / 2 } }, start: { solo: 1 } },
      },
    });
    const policy = createKvflowPolicy(derived);
    expect(policy.name).toBe('kvflow');
  });

  it('refuses malformed calls and a session in two workloads', () => {
    expect(() => deriveStepGraph('trace' as never)).toThrow(new TypeError('deriveStepGraph: calls must be an array, got the string "trace"'));
    expect(() => deriveStepGraph([{ session: 's', workload: 'w' } as never])).toThrow(
      new TypeError('deriveStepGraph: calls[0].agent must be a string, got undefined'),
    );
    expect(() =>
      deriveStepGraph([
        { session: 's', agent: 'a', workload: 'w' },
        { session: 's', agent: 'a', workload: 'v' },
      ]),
    ).toThrow(new RangeError('deriveStepGraph: calls[1] puts session "s" in workload "v", earlier calls in "w"'));
  });
});

describe('kvflow policy: options', () => {
  it('refuses malformed graphs and out-of-range options', () => {
    expect(() => createKvflowPolicy(undefined as never)).toThrow(
      new TypeError('kvflow policy: options.workloads must be an object of workload -> step graph, got undefined'),
    );
    expect(() => createKvflowPolicy({ workloads: { w: { edges: { a: 'b' } } } } as never)).toThrow(
      new TypeError('kvflow policy: options.workloads["w"].edges["a"] must be an array of agent names, got the string "b"'),
    );
    expect(() => createKvflowPolicy({ workloads: { w: { edges: {}, transitions: {} } } } as never)).toThrow(TypeError);
    expect(() => createKvflowPolicy({ workloads: { w: {} } } as never)).toThrow(TypeError);
    expect(() => createKvflowPolicy({ workloads: { w: { edges: {}, next: [] } } } as never)).toThrow(
      new TypeError('kvflow policy: options.workloads["w"]: unknown field "next" (known: edges, transitions, start)'),
    );
    expect(() => createKvflowPolicy({ workloads: { w: { transitions: { a: { b: 1.5 } } } } })).toThrow(
      new RangeError('kvflow policy: options.workloads["w"].transitions["a"]["b"] must be in [0, 1], got 1.5'),
    );
    expect(() => createKvflowPolicy({ workloads: { w: { edges: { a: [3] } } } } as never)).toThrow(TypeError);
    expect(() => createKvflowPolicy({ workloads: {}, minProbability: 2 })).toThrow(
      new RangeError('kvflow policy: options.minProbability must be in [0, 1], got 2'),
    );
    expect(() => createKvflowPolicy({ workloads: {}, neutralSteps: -1 })).toThrow(RangeError);
    expect(() => createKvflowPolicy({ workloads: {}, horizon: 2 } as never)).toThrow(TypeError);
  });
});
