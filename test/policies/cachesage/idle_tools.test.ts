/**
 * A session waiting on a long tool call is not idle: tool events refresh the
 * clock CacheSage's idle timeout reads, so its context is not given up.
 */
import { describe, expect, it } from 'vitest';

import { createCacheSagePolicy } from '../../../src/policies/cachesage/policy.js';
import type { AgentRef } from '../../../src/policies/types.js';
import { chain, TestContext } from '../context.js';

const agent: AgentRef = { workload: 'w', agent: 'a' };

function setup() {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16 }, { classes: true });
  const policy = createCacheSagePolicy({ idleTimeoutSeconds: 10 });
  policy.attach!(ctx);
  const [block] = ctx.serve(chain(100, 1), { session: 's', agent });
  ctx.feed(
    policy,
    { type: 'session.start', time: 0, session: 's', workload: 'w' },
    { type: 'step.start', time: 0, session: 's', agent },
    { type: 'step.end', time: 1, session: 's', agent },
  );
  return { ctx, policy, block: block! };
}

const live = (policy: ReturnType<typeof createCacheSagePolicy>, block: number) => (policy.explain!(block) as { sessionLive: boolean }).sessionLive;

describe('cachesage policy: tool calls and the idle timeout', () => {
  it('keeps a session live while its tool runs past the timeout', () => {
    const { ctx, policy, block } = setup();
    ctx.feed(policy, { type: 'tool.start', time: 2, session: 's', agent, tool: 'search' }, { type: 'tool.end', time: 9, session: 's', agent, tool: 'search' });
    expect(ctx.session('s')!.lastEventAt).toBe(9);
    policy.act!(15);
    expect(live(policy, block)).toBe(true);
  });

  it('ends a session for the model once nothing happened for the timeout', () => {
    const { policy, block } = setup();
    policy.act!(15);
    expect(live(policy, block)).toBe(false);
  });
});
