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

/** `count` documents from `first` (100 apart), each asked about by `times` ended sessions in a row. */
function askAbout(ctx: TestContext, policy: Policy, name: string, count: number, first: number, times = 2): void {
  for (let d = 0; d < count; d++) {
    for (let q = 0; q < times; q++) session(ctx, policy, `${name}-${d}-${q}`, document(first + 100 * d));
  }
}

describe('cachesage policy: cross-session reuse', () => {
  it("values an ended session's private blocks by how often other sessions read such blocks", () => {
    const { ctx, policy } = setup();
    // Each document is asked about twice: the second session reads the first's blocks.
    askAbout(ctx, policy, 'doc', 4, 100);
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
    askAbout(ctx, policy, 'doc', 4, 100);
    session(ctx, policy, 'first-new', document(1000));
    ctx.stale.length = 0;
    const ids = session(ctx, policy, 'second-new', document(1000));
    // Depths 3-6 (a bucket seen read by two sessions, never a third) go;
    // the system block, read by every session, stays.
    expect(ctx.stale).toEqual(expect.arrayContaining([ids[3], ids[4], ids[5], ids[6]]));
    expect(ctx.stale).not.toContain(ids[0]);
  });

  it("marks an ended session's private blocks dead once nobody read them for long past the usual gap, and a read revives them", () => {
    const { ctx, policy } = setup();
    // Documents are asked about twice, one second apart.
    askAbout(ctx, policy, 'doc', 4, 100);
    const ids = session(ctx, policy, 'unread', document(1000));
    expect(policy.explain!(ids[6]!)!.reason).toMatch(/^private to an ended session, by other sessions /);
    // Forty seconds of other documents, each read twice: nobody reads this one.
    askAbout(ctx, policy, 'later', 20, 10_000);
    expect(ctx.dead).toEqual(expect.arrayContaining(Array.from(ids.subarray(1))));
    // The system block is shared by every session, read a moment ago: never dead.
    expect(ctx.dead).not.toContain(ids[0]);
    expect(policy.explain!(ids[6]!)).toMatchObject({ reuseProbability: 0, score: 0, reason: 'dead: no session is expected to read it again' });
    // A later read makes the blocks live again.
    session(ctx, policy, 'late-reader', document(1000), true);
    expect(policy.explain!(ids[6]!)!.reason).not.toMatch(/^dead/);
  });

  it('leaves blocks alone while their idle time is within the gaps such reads take', () => {
    const { ctx, policy } = setup();
    askAbout(ctx, policy, 'doc', 4, 100);
    const ids = session(ctx, policy, 'waiting', document(1000));
    // Sixteen documents, each read a second time 16 s after the first: by
    // the end this block is some 30 s idle, about two of the gaps seen
    // (were reads a second apart, it would be thirty).
    for (let d = 0; d < 16; d++) session(ctx, policy, `slow-first-${d}`, document(20_000 + 100 * d));
    for (let d = 0; d < 16; d++) session(ctx, policy, `slow-second-${d}`, document(20_000 + 100 * d));
    expect(ctx.dead).not.toContain(ids[6]);
  });

  it('marks shared blocks stale once nobody read them for long past the usual gap, though such blocks often get another reader', () => {
    const { ctx, policy } = setup();
    // Half the documents are asked about three times, half twice.
    for (let d = 0; d < 6; d++) {
      for (let q = 0; q < (d % 2 === 0 ? 3 : 2); q++) session(ctx, policy, `doc-${d}-${q}`, document(100 * (d + 1)));
    }
    session(ctx, policy, 'a', document(1000));
    const ids = session(ctx, policy, 'b', document(1000));
    // Read by two sessions: a third comes half the time, so not stale yet.
    expect(ctx.stale).not.toContain(ids[6]);
    askAbout(ctx, policy, 'later', 20, 10_000, 3);
    expect(ctx.stale).toEqual(expect.arrayContaining([ids[4], ids[5], ids[6]]));
    expect(ctx.stale).not.toContain(ids[0]);
  });
});
