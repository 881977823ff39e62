import { describe, expect, it } from 'vitest';

import { createLfuPolicy } from '../../src/policies/lfu.js';
import { chain, TestContext } from './context.js';

describe('lfu policy', () => {
  it('scores each block by its access count', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createLfuPolicy();
    policy.attach?.(ctx);
    expect(policy.scoring).toBe('blocks');
    ctx.serve(chain(100, 2)); // 0, 1
    ctx.serve(chain(100, 1)); // hits 0 again
    const out = new Float32Array(2);
    policy.scoreBlocks!(new Int32Array([0, 1]), out);
    const { accessCount } = ctx.manager.metadata;
    expect([...out]).toEqual([accessCount[0], accessCount[1]]);
    expect(out[0]).toBe(out[1]! + 1);
  });

  it('evicts the least accessed leaf first, ties by recency', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createLfuPolicy();
    policy.attach?.(ctx);
    const [a] = ctx.serve(chain(100, 1)); // 0
    const [b] = ctx.serve(chain(200, 1)); // 1
    const [c] = ctx.serve(chain(300, 1)); // 2
    const [d] = ctx.serve(chain(400, 1)); // 3
    for (let i = 0; i < 3; i++) ctx.serve(chain(100, 1));
    ctx.serve(chain(300, 1));
    ctx.serve(chain(400, 1));
    ctx.rescore(policy);
    // Counts: a highest, c = d (d used later), b lowest although a was touched last.
    expect(ctx.evictDevice(4)).toEqual([b, c, d, a]);
  });

  it('takes only leaves: a heavily used parent goes after its rarely used child', () => {
    const ctx = new TestContext({ blockSize: 4, deviceBlocks: 8 });
    const policy = createLfuPolicy();
    policy.attach?.(ctx);
    const [root, leaf] = ctx.serve(chain(100, 2)); // 0, 1
    const [single] = ctx.serve(chain(500, 1)); // 2
    for (let i = 0; i < 4; i++) ctx.serve(chain(100, 1)); // root only
    ctx.serve(chain(500, 1));
    ctx.rescore(policy);
    // leaf (2 uses) < single (3 uses) < root (6 uses): root waits for its child.
    expect(ctx.evictDevice(3)).toEqual([leaf, single, root]);
  });

  it('refuses malformed options', () => {
    expect(() => createLfuPolicy(null as never)).toThrow(new TypeError('lfu policy: options must be an object, got null'));
    expect(() => createLfuPolicy({ decay: 1 } as never)).toThrow(TypeError);
  });
});
