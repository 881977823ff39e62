/**
 * Cross-session reuse in the policy: where other sessions read what one
 * session wrote for itself (several questions about one document), an
 * ended session's private blocks keep the value of those reads; where
 * nobody else reads them, they are worth nothing once it ends.
 */
import { describe, expect, it } from 'vitest';

import { createCacheSagePolicy } from '../../../src/policies/cachesage/policy.js';
import type { AgentRef, Policy } from '../../../src/policies/types.js';
import { chain, TestContext } from '../context.js';

const mapper: AgentRef = { workload: 'w', agent: 'mapper' };
const SYSTEM = 900;
let clock = 0;
let request = 0;

function setup(): { ctx: TestContext; policy: Policy } {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 512 }, { classes: true });
  const policy = createCacheSagePolicy();
  policy.attach!(ctx);
  clock = 0;
  return { ctx, policy };
}

/** A whole session of one mapper call on `prompt`; ended unless `live`. Returns the prompt's block ids. */
function session(ctx: TestContext, policy: Policy, name: string, prompt: BigUint64Array, live = false): Int32Array {
  const time = ++clock;
  ctx.feed(policy, { type: 'session.start', time, session: name, workload: 'w' });
  ctx.feed(policy, { type: 'step.start', time, session: name, agent: mapper });
  const ids = ctx.serve(prompt, { session: name, agent: mapper });
  const id = ++request;
  policy.observe!({ type: 'admit', time, requestId: id, session: name, agent: mapper, hashes: prompt, blockIds: ids, numTokens: prompt.length * 4, cachedDeviceTokens: 0, loadedBlocks: 0 });
  policy.observe!({ type: 'release', time: time + 0.5, requestId: id, session: name, agent: mapper, blockIds: ids });
  ctx.feed(policy, { type: 'step.end', time: time + 0.5, session: name, agent: mapper });
  if (!live) ctx.feed(policy, { type: 'session.end', time: time + 0.6, session: name });
  return ids;
}

/** A document behind the mapper's system block: [SYSTEM, base, base + 1, ...], 8 blocks deep. */
const document = (base: number) => BigUint64Array.from([BigInt(SYSTEM), ...chain(base, 7)]);

describe('cachesage policy: cross-session reuse', () => {
  it("values an ended session's private blocks by how often other sessions read such blocks", () => {
    const { ctx, policy } = setup();
    // Each document is asked about twice: the second session reads the first's blocks.
    for (let d = 0; d < 4; d++) {
      session(ctx, policy, `first-${d}`, document(100 * (d + 1)));
      session(ctx, policy, `second-${d}`, document(100 * (d + 1)));
    }
    session(ctx, policy, 'live', document(5000), true);
    const ids = session(ctx, policy, 'new', document(1000));
    const deep = policy.explain!(ids[6]!)!;
    expect(deep.reuseProbability).toBeGreaterThan(0);
    expect(deep.reason).toMatch(/^private to an ended session, by other sessions /);
  });

  it("leaves an ended session's private blocks worthless where no other session reads them", () => {
    const { ctx, policy } = setup();
    for (let d = 0; d < 8; d++) session(ctx, policy, `only-${d}`, document(100 * (d + 1)));
    session(ctx, policy, 'live', document(5000), true);
    const ids = session(ctx, policy, 'new', document(1000));
    expect(policy.explain!(ids[6]!)).toMatchObject({ reuseProbability: 0, reason: 'private to an ended session' });
  });

  it('marks shared blocks stale once as many sessions read them as such blocks ever get', () => {
    const { ctx, policy } = setup();
    for (let d = 0; d < 4; d++) {
      session(ctx, policy, `first-${d}`, document(100 * (d + 1)));
      session(ctx, policy, `second-${d}`, document(100 * (d + 1)));
    }
    session(ctx, policy, 'first-new', document(1000));
    ctx.stale.length = 0;
    const ids = session(ctx, policy, 'second-new', document(1000));
    // Depths 3-6 (a bucket seen read by two sessions, never a third) go;
    // the system block, read by every session, stays.
    expect(ctx.stale).toEqual(expect.arrayContaining([ids[3], ids[4], ids[5], ids[6]]));
    expect(ctx.stale).not.toContain(ids[0]);
  });
});
