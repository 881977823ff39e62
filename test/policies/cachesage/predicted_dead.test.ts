/**
 * Predicted dead chains: an agent that starts a fresh conversation at each
 * call (a new phase per call) reuses of a finished call only the prefix its
 * earlier calls in the session reused; CacheSage marks the rest stale at
 * the call's release, before the next call proves it. An agent whose next
 * prompt grows on the previous one (a ReAct scratchpad) keeps everything.
 */
import { describe, expect, it } from 'vitest';

import { createCacheSagePolicy } from '../../../src/policies/cachesage/policy.js';
import type { AgentRef, Policy } from '../../../src/policies/types.js';
import { chain, TestContext } from '../context.js';

const agent: AgentRef = { workload: 'w', agent: 'a' };
const SYSTEM = 900;

function setup(): { ctx: TestContext; policy: Policy } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 64 }, { classes: true });
  const policy = createCacheSagePolicy();
  policy.attach!(ctx);
  ctx.feed(policy, { type: 'session.start', time: 0, session: 's', workload: 'w' });
  return { ctx, policy };
}

/**
 * One call of agent a in session s at `time`: its prompt, served, then the
 * engine-side events the runtime would emit for it, given how many leading
 * blocks it shares with a's previous prompt of `previousBlocks`.
 */
function call(ctx: TestContext, policy: Policy, prompt: BigUint64Array, time: number, previous?: { shared: number; blocks: number }): Int32Array {
  ctx.feed(policy, { type: 'step.start', time, session: 's', agent });
  const ids = ctx.serve(prompt, { session: 's', agent });
  policy.observe!({
    type: 'admit',
    time,
    requestId: time,
    session: 's',
    agent,
    hashes: prompt,
    blockIds: ids,
    numTokens: prompt.length * 4,
    cachedDeviceTokens: 0,
    loadedBlocks: 0,
    extendsPrevious: previous === undefined ? undefined : previous.shared >= previous.blocks,
    sharedWithPrevious: previous?.shared,
    previousBlocks: previous?.blocks,
  });
  policy.observe!({ type: 'release', time: time + 0.5, requestId: time, session: 's', agent, blockIds: ids });
  ctx.feed(policy, { type: 'step.end', time: time + 0.5, session: 's', agent });
  return ids;
}

/** A fresh conversation behind the shared system block: [SYSTEM, base, base + 1, ...]. */
const fresh = (base: number, length: number) => BigUint64Array.from([BigInt(SYSTEM), ...chain(base, length)]);

describe('cachesage policy: predicted dead chains', () => {
  it('marks the part past the reused prefix stale once an agent has restarted at nearly every call', () => {
    const { ctx, policy } = setup();
    call(ctx, policy, fresh(100, 3), 1);
    call(ctx, policy, fresh(200, 3), 2, { shared: 1, blocks: 4 });
    call(ctx, policy, fresh(300, 3), 3, { shared: 1, blocks: 4 });
    // Two restarts in two calls: not yet enough evidence.
    expect(ctx.stale).toEqual([]);
    const ids = call(ctx, policy, fresh(400, 3), 4, { shared: 1, blocks: 4 });
    // The system block (reused by every call) stays; the conversation goes.
    expect(ctx.stale).toEqual([ids[1], ids[2], ids[3]]);
    expect(ctx.classes.isStale(ids[0]!)).toBe(false);
    expect(policy.explain!(ids[3]!)).toMatchObject({ reason: 'stale: its agent moved past this chain', reuseProbability: 0, score: 0 });
    expect((policy.explain!(ids[0]!) as { score: number }).score).toBeGreaterThan(0);
  });

  it('marks nothing for an agent whose prompt grows on its previous one', () => {
    const { ctx, policy } = setup();
    // Each prompt re-sends the previous one and adds two blocks; the reply is not reused whole.
    let prompt = fresh(100, 1);
    call(ctx, policy, prompt, 1);
    for (let k = 2; k <= 5; k++) {
      const next = BigUint64Array.from([...prompt, ...chain(100 * k, 2)]);
      call(ctx, policy, next, k, { shared: prompt.length, blocks: prompt.length + 1 });
      prompt = next;
    }
    expect(ctx.stale).toEqual([]);
  });
});
