/**
 * Composition: the "+" spelling, the refusal of policies that cannot run
 * together (naming both), and a composed replay run reported under the
 * joined name.
 */
import { describe, expect, it } from 'vitest';

import { policiesFlag, UsageError } from '../../src/cli/args.js';
import { checkComposition, composedName, composedNames, derivedComposition } from '../../src/policies/compose.js';
import { composedEntry, compositionOf, DEFAULT_REPLAY_POLICIES, POLICY_NAMES } from '../../src/policies/registry.js';
import type { Policy } from '../../src/policies/types.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { replay } from '../../src/sim/replay.js';
import { generateWorkload } from '../../src/workloads/index.js';

const blocks = { blockSize: 4, deviceBlocks: 8 };

describe('composed policy entries', () => {
  it('splits a "+" entry into its names, in priority order', () => {
    expect(composedNames('cachesage+ttl')).toEqual(['cachesage', 'ttl']);
    expect(composedNames(' lru + safety ')).toEqual(['lru', 'safety']);
    expect(composedNames('lru')).toEqual(['lru']);
    expect(composedName(['cachesage', 'ttl'])).toBe('cachesage+ttl');
    expect(() => composedNames('lru++ttl')).toThrow(new RangeError('policy entry "lru++ttl" has an empty name around "+"'));
    expect(() => composedNames('ttl+ttl')).toThrow(new RangeError('policy entry "ttl+ttl" names "ttl" twice'));
    expect(() => composedNames(3 as never)).toThrow(TypeError);
  });

  it('parses --policies with composed entries, and refuses what cannot compose naming both', () => {
    expect(policiesFlag('replay', 'lru,cachesage,cachesage+ttl')).toEqual(['lru', 'cachesage', 'cachesage+ttl']);
    expect(() => policiesFlag('replay', 'cachesage+lfu')).toThrow(
      new UsageError(
        'replay: --policies: cannot combine policies "cachesage" and "lfu": both claim to be the scorer (each scores an eviction order of its own, and two orders do not add up; give the runtime explicit weights to combine them anyway)',
      ),
    );
    expect(() => policiesFlag('replay', 'lru+nope')).toThrow(/^replay: --policies: unknown policy "nope" \(known: lru, /);
    expect(() => policiesFlag('replay', 'ttl,ttl')).toThrow(new UsageError('replay: --policies names "ttl" twice'));
    expect(() => policiesFlag('replay', 'lru+')).toThrow(new UsageError('replay: --policies: policy entry "lru+" has an empty name around "+"'));
    expect(() => policiesFlag('replay', 'belady+infinite')).toThrow(
      new UsageError('replay: --policies: cannot combine policies "belady" and "infinite": both are offline bounds'),
    );
  });

  it('says which registered policies a replay runs by default: not those meant to be composed', () => {
    for (const name of ['safety', 'hints', 'tool-memo']) {
      expect(POLICY_NAMES).toContain(name);
      expect(DEFAULT_REPLAY_POLICIES).not.toContain(name);
    }
    expect(DEFAULT_REPLAY_POLICIES).toContain('cachesage');
    expect(composedEntry('kvflow+ttl').names).toEqual(['kvflow', 'ttl']);
    expect(composedEntry('belady+ttl').bound).toBe('future');
  });
});

describe('the composition check on a runtime', () => {
  it('refuses two order scorers, or two scoring units, naming both', () => {
    const kvflow = { name: 'kvflow', options: { workloads: { w: { edges: { a: ['b'] } } } } };
    expect(() => new Runtime({ blocks, policies: ['cachesage', kvflow] })).toThrow(/^cannot combine policies "cachesage" and "kvflow": both claim to be the scorer/);
    expect(() => new Runtime({ blocks, policies: ['lfu', { name: 'belady', options: { future: { nextUse: () => 1 } } }] })).toThrow(/"lfu" and "belady"/);
    const adjust: Policy = { name: 'penalty', scoring: 'blocks', composition: { primitives: ['score'], scores: 'adjust' }, scoreBlocks: (_ids, out) => out.fill(1) };
    expect(() => new Runtime({ blocks, policies: ['cachesage', adjust] })).toThrow(
      new RangeError('cannot combine policies "cachesage" and "penalty": "cachesage" scores classes, "penalty" scores blocks, and one runtime scores one unit'),
    );
    // An adjustment of the same unit adds to the order.
    expect(new Runtime({ blocks, policies: ['lfu', adjust] }).info()['policies']).toEqual(['lfu', 'penalty']);
    // Explicit weights are the caller's choice of how orders add up.
    expect(new Runtime({ blocks, policies: ['cachesage', kvflow], combine: [1, 0.5] }).info()['policies']).toEqual(['cachesage', 'kvflow']);
  });

  it('refuses two owners of one exclusive action, naming both', () => {
    const otherMemo: Policy = { name: 'my-memo', composition: { primitives: ['answer'], exclusive: ['answer:tool.start'] }, answer: () => null };
    expect(() => new Runtime({ blocks, policies: ['tool-memo', otherMemo] })).toThrow(
      new RangeError('cannot combine policies "tool-memo" and "my-memo": both claim the exclusive action "answer:tool.start"'),
    );
    expect(() => checkComposition([{ name: 'a', composition: { primitives: ['salt'], exclusive: ['salt'] } }, { name: 'safety', composition: compositionOf({ name: 'safety' }) }])).toThrow(
      'cannot combine policies "a" and "safety": both claim the exclusive action "salt"',
    );
  });

  it('reads an undeclared policy object from its methods, taking a scorer for an order', () => {
    const scorer: Policy = { name: 'mine', scoring: 'classes', scoreClasses: () => {}, act: () => [] };
    expect(derivedComposition(scorer)).toEqual({ primitives: ['score', 'act'], scores: 'order' });
    expect(compositionOf(scorer)).toEqual({ primitives: ['score', 'act'], scores: 'order' });
    expect(compositionOf({ name: 'ttl' })).toEqual({ primitives: ['observe', 'act'] });
    expect(() => new Runtime({ blocks, policies: ['cachesage', scorer] })).toThrow(/"cachesage" and "mine": both claim to be the scorer/);
  });
});

describe('a composed replay', () => {
  it('runs the joined policies on one runtime, reported under the joined name', () => {
    const { calls } = generateWorkload('react', { seed: 3, sessions: 6 });
    const report = replay('mad', calls, { policies: ['lru', 'ttl', 'lru+ttl', 'ttl+tool-memo'], capacity: { fraction: 0.3 }, concurrency: 4 });
    const by = Object.fromEntries(report.results.map((r) => [r.policy, r]));
    expect(Object.keys(by)).toEqual(['lru', 'ttl', 'lru+ttl', 'ttl+tool-memo']);
    const measured = (name: string) => {
      const { tokenHitRate, hostHitRate, meanTtftMs, bytesMoved } = by[name]!;
      return { tokenHitRate, hostHitRate, meanTtftMs, bytesMoved };
    };
    // lru scores nothing and ttl pins during tool calls: their composition is ttl's run exactly.
    expect(measured('lru+ttl')).toEqual(measured('ttl'));
    expect(measured('ttl+tool-memo')).toEqual(measured('ttl'));
    expect(measured('ttl')).not.toEqual(measured('lru'));
  });
});
