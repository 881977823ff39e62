/**
 * Framework hints on a runtime: share, pin, retain, prefetch, demote and
 * unpin turned into actions, with the per-workload pinned-share cap and
 * TTLs that expire and release.
 */
import { describe, expect, it } from 'vitest';

import { Tier } from '../../src/blocks/types.js';
import { createHintsPolicy, type HintsPolicyOptions } from '../../src/policies/hints/policy.js';
import type { AgentRef, HintEvent, HintVerb } from '../../src/policies/types.js';
import { Runtime } from '../../src/runtime/runtime.js';

const BS = 4;
const agent: AgentRef = { workload: 'w', agent: 'coder' };

function runtime(options?: HintsPolicyOptions, hostBlocks = 0): Runtime {
  return new Runtime({ blocks: { blockSize: BS, deviceBlocks: 16, hostBlocks }, policies: ['lru', { name: 'hints', options }], now: () => 0, autoRefresh: false });
}

let nextId = 1;
function serve(rt: Runtime, session: string, hashes: BigUint64Array, time = 0): Int32Array {
  const id = nextId++;
  const d = rt.admit({ requestId: id, hashes, numTokens: hashes.length * BS, session, agent, time });
  expect(d).not.toBeNull();
  const ids = rt.prefillDone(id, time);
  rt.release(id, time);
  return ids;
}
const chain = (base: number, n: number) => BigUint64Array.from({ length: n }, (_, i) => BigInt(base + i));
const hint = (time: number, verb: HintVerb, extra: Partial<HintEvent> = {}, session = 's'): HintEvent => ({ type: 'hint', time, session, agent, verb, ...extra });
const hintsInfo = (rt: Runtime) => (rt.info()['policyInfo'] as Record<string, Record<string, unknown>>)['hints'];

describe('hints policy', () => {
  it('pins the last prompt of the agent on a pin hint and releases it when its TTL expires', () => {
    const rt = runtime({ defaultTtlSeconds: 5 });
    serve(rt, 's', chain(100, 3));
    rt.observe(hint(1, 'pin'));
    const pinned = rt.act(1);
    expect(pinned.actions).toEqual([{ type: 'pin', key: 'hint:pin:s:66', leafBlockId: 2 }]);
    expect(pinned.pinned).toBe(1);
    expect(rt.manager.pinnedDeviceBlocks()).toBe(3);
    expect(rt.act(5.9).actions).toEqual([]);
    expect(rt.act(6).actions).toEqual([{ type: 'unpin', key: 'hint:pin:s:66' }]);
    expect(rt.manager.pinnedDeviceBlocks()).toBe(0);
    expect(hintsInfo(rt)).toMatchObject({ holds: 0, pinned: 1, expired: 1 });
    expect(rt.manager.checkInvariants()).toBe('');
  });

  it('caps the device blocks a workload holds through hints; shared ancestors count once', () => {
    const rt = runtime({ maxPinnedShare: 0.25 }); // 4 of 16 device blocks
    serve(rt, 's', chain(100, 3));
    serve(rt, 't', chain(200, 3));
    rt.observe(hint(1, 'share', { hashes: chain(100, 3) }));
    rt.observe(hint(1, 'share', { hashes: chain(200, 3) }));
    expect(rt.act(1).actions).toEqual([{ type: 'pin', key: 'hint:share:w:66', leafBlockId: 2 }]);
    expect(hintsInfo(rt)).toMatchObject({ refusedByCap: 1, pinnedBlocks: { w: 3 } });
    // Extending the held chain by one block fits: its three ancestors are already held.
    serve(rt, 's', chain(100, 4));
    rt.observe(hint(2, 'pin'));
    expect(rt.act(2).actions).toEqual([{ type: 'pin', key: 'hint:pin:s:67', leafBlockId: 6 }]);
    expect(rt.manager.pinnedDeviceBlocks()).toBe(4);
    expect(hintsInfo(rt)).toMatchObject({ pinnedBlocks: { w: 4 } });
  });

  it('holds nothing with a cap of 0', () => {
    const rt = runtime({ maxPinnedShare: 0 });
    serve(rt, 's', chain(100, 2));
    rt.observe(hint(1, 'retain', { ttlSeconds: 60 }));
    expect(rt.act(1).actions).toEqual([]);
    expect(rt.manager.pinnedDeviceBlocks()).toBe(0);
  });

  it('releases a pin at its session end; a share and a retain outlive it until their TTL', () => {
    const rt = runtime({ defaultTtlSeconds: 100, maxPinnedShare: 1 });
    serve(rt, 's', chain(100, 2));
    rt.observe(hint(1, 'pin'));
    rt.observe(hint(1, 'share'));
    rt.observe(hint(1, 'retain', { ttlSeconds: 10 }));
    expect(rt.act(1).pinned).toBe(3);
    rt.observe({ type: 'session.end', time: 2, session: 's' });
    expect(rt.act(2).actions).toEqual([{ type: 'unpin', key: 'hint:pin:s:65' }]);
    expect(rt.act(11).actions).toEqual([{ type: 'unpin', key: 'hint:retain:s:65' }]);
    expect(rt.act(101).actions).toEqual([{ type: 'unpin', key: 'hint:share:w:65' }]);
    expect(rt.manager.pinnedDeviceBlocks()).toBe(0);
  });

  it('bounds every TTL by maxTtlSeconds; repeating a hint extends it', () => {
    const rt = runtime({ maxTtlSeconds: 20, maxPinnedShare: 1 });
    serve(rt, 's', chain(100, 2));
    rt.observe(hint(0, 'retain', { ttlSeconds: 1e9 }));
    rt.act(0);
    rt.observe(hint(15, 'retain', { ttlSeconds: 10 }));
    expect(rt.act(20).actions).toEqual([]);
    expect(rt.act(25).actions).toEqual([{ type: 'unpin', key: 'hint:retain:s:65' }]);
  });

  it('ends a hold early on an unpin hint', () => {
    const rt = runtime({ maxPinnedShare: 1 });
    serve(rt, 's', chain(100, 2));
    rt.observe(hint(0, 'share'));
    rt.act(0);
    rt.observe(hint(1, 'unpin'));
    expect(rt.act(1).actions).toEqual([{ type: 'unpin', key: 'hint:share:w:65' }]);
    expect(hintsInfo(rt)).toMatchObject({ released: 1, holds: 0 });
  });

  it('demotes a prefix to host and prefetches it back', () => {
    const rt = runtime({}, 8);
    const ids = serve(rt, 's', chain(100, 3));
    rt.observe(hint(1, 'demote'));
    expect(rt.act(1).demoted).toBe(3);
    expect(Array.from(ids, (id) => rt.manager.metadata.tier[id])).toEqual([Tier.Host, Tier.Host, Tier.Host]);
    rt.observe(hint(2, 'prefetch', { hashes: chain(100, 2) }));
    const back = rt.act(2);
    expect(back.prefetched).toBe(2);
    expect(rt.manager.lookup(chain(100, 3))).toMatchObject({ deviceBlocks: 2, hostBlocks: 1 });
    expect(rt.manager.checkInvariants()).toBe('');
  });

  it('counts a hint that names nothing it can find', () => {
    const rt = runtime();
    rt.observe({ type: 'session.start', time: 0, session: 'empty', workload: 'w' });
    rt.observe(hint(0, 'pin', {}, 'empty'));
    expect(rt.act(0).actions).toEqual([]);
    expect(hintsInfo(rt)).toMatchObject({ unresolved: 1 });
  });

  it('validates hint events and options, naming the field', () => {
    const rt = runtime();
    rt.observe({ type: 'session.start', time: 0, session: 's', workload: 'w' });
    expect(() => rt.observe({ ...hint(0, 'pin'), verb: 'keep' } as never)).toThrow(
      new RangeError('hint event: verb must be one of share, pin, retain, prefetch, demote, unpin, got the string "keep"'),
    );
    expect(() => rt.observe(hint(0, 'pin', { ttlSeconds: -1 }))).toThrow(new RangeError('hint event: ttlSeconds must be a number > 0, got number -1'));
    expect(() => rt.observe(hint(0, 'pin', { hashes: [1n] as never }))).toThrow(TypeError);
    expect(() => createHintsPolicy({ maxPinnedShare: 1.5 })).toThrow(new RangeError('hints policy: options.maxPinnedShare must be a fraction in [0, 1], got number 1.5'));
    expect(() => createHintsPolicy({ ttl: 1 } as never)).toThrow(new TypeError('hints policy: unknown option "ttl" (known: maxPinnedShare, defaultTtlSeconds, maxTtlSeconds)'));
    expect(() => createHintsPolicy({ maxTtlSeconds: 0 })).toThrow(RangeError);
  });
});
