import { describe, expect, it } from 'vitest';

import { createBeladyPolicy } from '../../src/policies/belady.js';
import { createKvflowPolicy } from '../../src/policies/kvflow.js';
import { BASELINE_POLICY, createPolicy, isBound, OPTIMUM_POLICY, POLICIES, POLICY_NAMES, policyEntry } from '../../src/policies/registry.js';

describe('policy registry', () => {
  it('registers every policy by name', () => {
    expect(POLICY_NAMES).toEqual(['lru', 'lfu', 'kvflow', 'ttl', 'cachesage', 'belady', 'infinite', 'safety', 'hints', 'tool-memo', 'batch-shaping', 'speculative-prefill', 'fairness']);
    expect(Object.isFrozen(POLICIES)).toBe(true);
  });

  it('says what a replay needs of each policy', () => {
    expect(POLICY_NAMES.filter(isBound)).toEqual(['belady', 'infinite']);
    expect(isBound('toString')).toBe(false);
    expect([BASELINE_POLICY, OPTIMUM_POLICY]).toEqual(['lru', 'belady']);
    const future = { nextUse: () => Infinity };
    const calls = [
      { session: 's', agent: 'a', index: 0 },
      { session: 's', agent: 'b', index: 1 },
    ] as never;
    expect(policyEntry('belady').prepare!({ calls, workload: 'w', future })).toEqual({ future });
    const graph = policyEntry('kvflow').prepare!({ calls, workload: 'w', future }) as { workloads: Record<string, unknown> };
    expect(Object.keys(graph.workloads)).toEqual(['w']);
    expect(createPolicy('kvflow', graph).name).toBe('kvflow');
    expect(policyEntry('cachesage').prepare).toBeUndefined();
    expect(() => policyEntry('fifo')).toThrow(RangeError);
  });

  it('creates each baseline with its options', () => {
    expect(createPolicy('lru').name).toBe('lru');
    expect(createPolicy('lfu').scoring).toBe('blocks');
    expect(createPolicy('ttl', { ttlSeconds: 3 }).name).toBe('ttl');
    expect(createPolicy('infinite')).toEqual({ name: 'infinite' });
    expect(createPolicy('belady', { future: { nextUse: () => Infinity } }).scoring).toBe('blocks');
    expect(createPolicy('kvflow', { workloads: { w: { edges: { a: ['b'] } } } }).scoring).toBe('classes');
    expect(createPolicy('cachesage').name).toBe('cachesage');
  });

  it('refuses an unknown name, naming the known ones', () => {
    expect(() => createPolicy('fifo')).toThrow(
      new RangeError('unknown policy "fifo" (known: lru, lfu, kvflow, ttl, cachesage, belady, infinite, safety, hints, tool-memo, batch-shaping, speculative-prefill, fairness)'),
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

  it('a policy used before attach() refuses with a RangeError naming the call', () => {
    const ids = Int32Array.of(0);
    const out = new Float32Array(1);
    expect(() => createPolicy('lfu').scoreBlocks!(ids, out)).toThrow(new RangeError('lfu policy: scoreBlocks() called before attach()'));
    expect(() => createBeladyPolicy({ future: { nextUse: () => 1 } }).scoreBlocks!(ids, out)).toThrow(
      new RangeError('belady policy: scoreBlocks() called before attach()'),
    );
    expect(() => createPolicy('ttl').act!(0)).toThrow(new RangeError('ttl policy: act() called before attach()'));
    expect(() => createPolicy('lfu').scoreBlocks!(ids, out)).toThrow(RangeError);
    expect(() => createBeladyPolicy({ future: { nextUse: () => 1 } }).scoreBlocks!(ids, out)).toThrow(RangeError);
    expect(() => createPolicy('ttl').act!(0)).toThrow(RangeError);
    const kvflow = createKvflowPolicy({ workloads: { w: { edges: { a: [] }, start: ['a'] } } });
    expect(() => kvflow.act!(0)).toThrow(RangeError);
    expect(() => kvflow.act!(0)).toThrow(/^kvflow policy: \w+\(\) called before attach\(\)$/);
  });
});

