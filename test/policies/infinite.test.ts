import { describe, expect, it } from 'vitest';

import { createInfinitePolicy } from '../../src/policies/infinite.js';
import { POLICIES } from '../../src/policies/registry.js';

describe('infinite policy', () => {
  it('scores nothing; its registry entry asks replays for unbounded capacity', () => {
    const policy = createInfinitePolicy();
    expect(policy).toEqual({ name: 'infinite' });
    expect(policy.scoring).toBeUndefined();
    expect(POLICIES['infinite']!.bound).toBe('capacity');
    expect(POLICIES['lru']!.bound).toBeUndefined();
  });

  it('refuses options', () => {
    expect(() => createInfinitePolicy({ capacity: 1 } as never)).toThrow(
      new TypeError('infinite policy: unknown option "capacity" (known: none)'),
    );
    expect(() => createInfinitePolicy('big' as never)).toThrow(TypeError);
  });
});
