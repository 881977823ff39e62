import { describe, expect, it } from 'vitest';

import { createLruPolicy } from '../../src/policies/lru.js';
import { chain, TestContext } from './context.js';

describe('lru policy', () => {
  it('scores nothing, so the manager orders blocks by last access', () => {
    const policy = createLruPolicy();
    expect(policy.name).toBe('lru');
    expect(policy.scoring).toBeUndefined();
    expect(policy.scoreBlocks).toBeUndefined();
    expect(policy.scoreClasses).toBeUndefined();
    expect(policy.act).toBeUndefined();
  });

  it('evicts the least recently used chain leaf first, deepest block of a chain first', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createLruPolicy();
    policy.attach?.(ctx);
    const a = ctx.serve(chain(100, 3)); // ids 0, 1, 2: released together
    const b = ctx.serve(chain(200, 2)); // ids 3, 4
    expect([...a]).toEqual([0, 1, 2]);
    expect([...b]).toEqual([3, 4]);
    ctx.rescore(policy);
    // Chain a's blocks share one last access; only its leaf is exposed at a time.
    expect(ctx.evictDevice(4)).toEqual([2, 1, 0, 4]);
  });

  it('a reused prefix outlives a chain used once after it', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createLruPolicy();
    policy.attach?.(ctx);
    ctx.serve(chain(100, 3)); // 0, 1, 2
    ctx.serve(chain(200, 2)); // 3, 4
    ctx.serve(chain(100, 2)); // touches 0 and 1 again
    ctx.rescore(policy);
    // Block 2 was last touched before chain b; 0 and 1 are now the most recent.
    expect(ctx.evictDevice(5)).toEqual([2, 4, 3, 1, 0]);
  });

  it('refuses options that are not an object or name an option', () => {
    expect(() => createLruPolicy(7 as never)).toThrow(new TypeError('lru policy: options must be an object, got number 7'));
    expect(() => createLruPolicy({ capacity: 3 } as never)).toThrow(new TypeError('lru policy: unknown option "capacity" (known: none)'));
    expect(createLruPolicy({}).name).toBe('lru');
  });
});
