import { describe, expect, it } from 'vitest';

import { EventKind, Tier, type BlockEvents } from '../../src/blocks/types.js';
import { createRouter } from '../../src/policies/routing.js';
import { chainOf } from '../sim/engine_property.js';

function events(...list: [number, bigint, number][]): BlockEvents {
  return {
    kind: Uint8Array.from(list.map(([k]) => k)),
    block: Int32Array.from(list.map((_, i) => i)),
    hash: BigUint64Array.from(list.map(([, h]) => h)),
    tier: Uint8Array.from(list.map(([, , t]) => t)),
  };
}

const request = (session: string, blocks = 3) => ({ session, hashes: chainOf(1, blocks), blockSize: 4 });

describe('router', () => {
  it('cache: sends a request where its longest prefix is on device, less the load penalty', () => {
    const router = createRouter({ replicas: 3, loadPenaltyTokens: 3 });
    router.noteBlocks(1, events([EventKind.Stored, 1001n, Tier.Device], [EventKind.Stored, 1002n, Tier.Device]));
    router.noteBlocks(2, events([EventKind.Stored, 1001n, Tier.Device]));
    expect([0, 1, 2].map((r) => router.deviceMatch(r, chainOf(1, 3)))).toEqual([0, 2, 1]);
    expect(router.route(request('x'), [0, 0, 0])).toBe(1);
    // Replica 1: 8 tokens - 2 x 3 = 2; replica 2: 4 - 0 = 4.
    expect(router.route(request('x'), [0, 2, 0])).toBe(2);
    // Equal scores: the less loaded, then the lower index.
    expect(createRouter({ replicas: 2 }).route(request('x'), [1, 0])).toBe(1);
  });

  it('cache: follows demotions, loads and removals', () => {
    const router = createRouter({ replicas: 2, loadPenaltyTokens: 0 });
    router.noteBlocks(0, events([EventKind.Stored, 1001n, Tier.Device], [EventKind.Stored, 1002n, Tier.Device]));
    router.noteBlocks(0, events([EventKind.Demoted, 1001n, Tier.Host]));
    expect(router.deviceMatch(0, chainOf(1, 3))).toBe(0);
    router.noteBlocks(0, events([EventKind.Loaded, 1001n, Tier.Device], [EventKind.Removed, 1002n, Tier.Free]));
    expect(router.deviceMatch(0, chainOf(1, 3))).toBe(1);
  });

  it('round-robin and sticky', () => {
    const rr = createRouter({ kind: 'round-robin', replicas: 2 });
    expect([1, 2, 3].map(() => rr.route(request('x'), [0, 0]))).toEqual([0, 1, 0]);
    const sticky = createRouter({ kind: 'sticky', replicas: 2 });
    expect(['x', 'y', 'x', 'z'].map((s) => sticky.route(request(s), [5, 0]))).toEqual([0, 1, 0, 0]);
    sticky.endSession('x');
    expect(sticky.route(request('x'), [0, 0])).toBe(1);
  });

  it('refuses unknown and out-of-range options, naming them', () => {
    expect(() => createRouter({ replicas: 2, penalty: 1 } as never)).toThrow(
      new TypeError('router: unknown option "penalty" (known: kind, replicas, loadPenaltyTokens)'),
    );
    expect(() => createRouter({ replicas: 0 })).toThrow(new RangeError('router: options.replicas must be in [1, 1024], got 0'));
    expect(() => createRouter({ replicas: 2, kind: 'random' as never })).toThrow(
      new RangeError('router: options.kind must be one of cache, round-robin, sticky, got "random"'),
    );
    expect(() => createRouter({ replicas: 2, loadPenaltyTokens: -1 })).toThrow(RangeError);
  });
});
