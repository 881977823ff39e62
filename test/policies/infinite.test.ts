import { describe, expect, it } from 'vitest';

import { createInfinitePolicy, hasUnboundedCapacity } from '../../src/policies/infinite.js';
import { createLruPolicy } from '../../src/policies/lru.js';

describe('infinite policy', () => {
  it('asks the simulator for unbounded capacity and scores nothing', () => {
    const policy = createInfinitePolicy();
    expect(policy).toEqual({ name: 'infinite', unboundedCapacity: true });
    expect(policy.scoring).toBeUndefined();
    expect(hasUnboundedCapacity(policy)).toBe(true);
    expect(hasUnboundedCapacity(createLruPolicy())).toBe(false);
  });

  it('refuses options', () => {
    expect(() => createInfinitePolicy({ capacity: 1 } as never)).toThrow(
      new TypeError('infinite policy: unknown option "capacity" (known: none)'),
    );
    expect(() => createInfinitePolicy('big' as never)).toThrow(TypeError);
  });
});
