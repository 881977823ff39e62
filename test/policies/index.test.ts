import { describe, expect, it } from 'vitest';

import { createPolicy, POLICY_FACTORIES, POLICY_NAMES } from '../../src/policies/index.js';

describe('policy registry', () => {
  it('registers every policy by name', () => {
    expect([...POLICY_NAMES].sort()).toEqual(['belady', 'cachesage', 'infinite', 'kvflow', 'lfu', 'lru', 'ttl']);
    expect(Object.isFrozen(POLICY_FACTORIES)).toBe(true);
  });

  it('creates each baseline with its options', () => {
    expect(createPolicy('lru').name).toBe('lru');
    expect(createPolicy('lfu').scoring).toBe('blocks');
    expect(createPolicy('ttl', { ttlSeconds: 3 }).name).toBe('ttl');
    expect(createPolicy('infinite')).toEqual({ name: 'infinite', unboundedCapacity: true });
    expect(createPolicy('belady', { future: { nextUse: () => Infinity } }).scoring).toBe('blocks');
    expect(createPolicy('kvflow', { workloads: { w: { edges: { a: ['b'] } } } }).scoring).toBe('classes');
    expect(createPolicy('cachesage').name).toBe('cachesage');
  });

  it('refuses an unknown name, naming the known ones', () => {
    expect(() => createPolicy('fifo')).toThrow(
      new RangeError('unknown policy "fifo" (known: cachesage, lru, lfu, kvflow, ttl, belady, infinite)'),
    );
    expect(() => createPolicy('toString')).toThrow(RangeError);
    expect(() => createPolicy('__proto__')).toThrow(RangeError);
    expect(() => createPolicy(3 as never)).toThrow(new TypeError('policy name must be a string, got number 3'));
  });

  it("passes options to the policy's own checks", () => {
    expect(() => createPolicy('ttl', { ttlSeconds: -1 })).toThrow(RangeError);
    expect(() => createPolicy('belady')).toThrow(TypeError);
    expect(() => createPolicy('kvflow', { workloads: 'w' })).toThrow(TypeError);
    expect(() => createPolicy('lru', { x: 1 })).toThrow(TypeError);
  });
});
