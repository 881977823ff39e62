/**
 * Exact tests of the TypeScript reference block manager on tiny hand-built
 * configurations, plus the TypeScript hash port pinned to values computed by
 * native/core/token_hash.h.
 */
import { describe, expect, it } from 'vitest';

import { hashBlock, hashTokenBlocks } from '../../src/blocks/hash.js';
import { ReferenceBlockManager } from '../../src/blocks/reference.js';
import { EventKind, METADATA_FIELDS, Tier } from '../../src/blocks/types.js';

function make(deviceBlocks: number, hostBlocks = 0, blockSize = 1): ReferenceBlockManager {
  return new ReferenceBlockManager({ blockSize, deviceBlocks, hostBlocks });
}

const ids = (...values: number[]) => Int32Array.from(values);
const noHashes = new BigUint64Array(0);

/** Everything observable without draining the plan or events. */
function snapshot(m: ReferenceBlockManager): unknown {
  const metadata: Record<string, unknown[]> = {};
  for (const f of METADATA_FIELDS) metadata[f] = Array.from(m.metadata[f] as ArrayLike<unknown>);
  return { clock: m.clock, requests: m.numRequests, used: [m.usedBlocks('device'), m.usedBlocks('host')], metadata };
}

/** Admits tokens with all their full-block hashes, then commits them all. */
function cache(m: ReferenceBlockManager, requestId: number, tokens: number[], release = true): BigUint64Array {
  const hashes = hashTokenBlocks(tokens, m.blockSize);
  expect(m.admit(requestId, hashes, tokens.length)).not.toBeNull();
  m.commit(requestId, hashes.length);
  if (release) m.release(requestId);
  return hashes;
}

function events(m: ReferenceBlockManager): [number, number, bigint, number][] {
  const e = m.takeEvents();
  return Array.from(e.kind, (kind, i) => [kind, e.block[i]!, e.hash[i]!, e.tier[i]!]);
}

describe('ReferenceBlockManager', () => {
  it('hands out ids and slots from LIFO stacks, slot before id', () => {
    const m = make(4, 0, 2);
    m.setScores(ids(0), Float32Array.from([7])); // on a free id: cleared when allocated
    const hashes = hashTokenBlocks([1, 2, 3, 4, 5], 2);
    const r = m.admit(1, hashes, 5, { workload: 3, agent: 2, session: 9 });
    expect(r).toEqual({ cachedDeviceTokens: 0, loadedBlocks: 0, blockIds: ids(0, 1, 2), blockTable: ids(0, 1, 2) });
    const md = m.metadata;
    expect(m.clock).toBe(1);
    expect(Array.from(md.tier.subarray(0, 4))).toEqual([Tier.Device, Tier.Device, Tier.Device, Tier.Free]);
    expect(Array.from(md.refCount)).toEqual([1, 1, 1, 0]);
    expect(Array.from(md.depth)).toEqual([0, 1, 2, 0]);
    expect(Array.from(md.hash)).toEqual([hashes[0], hashes[1], 0n, 0n]);
    expect(Array.from(md.committed)).toEqual([0, 0, 0, 0]);
    expect(Array.from(md.lastAccess)).toEqual([1, 1, 1, 0]);
    expect(Array.from(md.workload)).toEqual([3, 3, 3, -1]);
    expect(Array.from(md.session)).toEqual([9, 9, 9, -1]);
    expect(Array.from(md.agentMask)).toEqual([4n, 4n, 4n, 0n]);
    expect(Array.from(md.score)).toEqual([0, 0, 0, 0]);
    expect(m.pinnedDeviceBlocks()).toBe(3);
    expect(m.checkInvariants()).toBe('');
  });

  it('finds committed blocks by lookup', () => {
    const m = make(4, 0, 2);
    const hashes = hashTokenBlocks([1, 2, 3, 4, 5], 2);
    m.admit(1, hashes, 5);
    expect(m.lookup(hashes)).toEqual({ deviceBlocks: 0, hostBlocks: 0, blockIds: ids() });
    expect(m.commit(1, 2)).toEqual(ids(0, 1, 2));
    expect(m.clock).toBe(2);
    expect(events(m)).toEqual([
      [EventKind.Stored, 0, hashes[0], Tier.Device],
      [EventKind.Stored, 1, hashes[1], Tier.Device],
    ]);
    expect(m.lookup(hashes)).toEqual({ deviceBlocks: 2, hostBlocks: 0, blockIds: ids(0, 1) });
    expect(Array.from(m.metadata.parent.subarray(0, 3))).toEqual([-1, 0, -1]);
    expect(Array.from(m.metadata.cachedChildren.subarray(0, 2))).toEqual([1, 0]);
    expect(Array.from(m.metadata.deviceChildren.subarray(0, 2))).toEqual([1, 0]);
    expect(m.commit(1, 1)).toEqual(ids(0, 1, 2)); // already committed: no tick
    expect(m.clock).toBe(2);
    expect(m.checkInvariants()).toBe('');
  });

  it('shares a common prefix between requests', () => {
    const m = make(6, 0, 2);
    cache(m, 1, [1, 2, 3, 4], false);
    const second = hashTokenBlocks([1, 2, 9, 9, 7], 2);
    const r = m.admit(2, second, 5, { workload: 1, agent: 5 });
    expect(r).toEqual({ cachedDeviceTokens: 2, loadedBlocks: 0, blockIds: ids(0, 2, 3), blockTable: ids(0, 2, 3) });
    expect(Array.from(m.metadata.refCount.subarray(0, 4))).toEqual([2, 1, 1, 1]);
    expect(m.metadata.accessCount[0]).toBe(3); // admit, commit, second admit
    expect(m.metadata.agentMask[0]).toBe(32n);
    expect(Array.from(m.metadata.workload.subarray(0, 3))).toEqual([-1, -1, 1]);
    expect(m.commit(2, 2)).toEqual(ids(0, 2, 3));
    expect(Array.from(m.metadata.cachedChildren.subarray(0, 1))).toEqual([2]);
    expect(m.checkInvariants()).toBe('');
  });

  it('evicts leaves first in LRU order', () => {
    const m = make(4);
    cache(m, 1, [1, 2]); // ids 0 -> 1, released at clock 3
    cache(m, 2, [3]); // id 2, released at clock 6
    m.takeEvents();
    expect(m.evictableBlocks('device')).toBe(2); // 0 has a device child
    expect(m.evict('device', 3)).toBe(3);
    expect(events(m).map(([kind, block, , tier]) => [kind, block, tier])).toEqual([
      [EventKind.Removed, 1, Tier.Free],
      [EventKind.Removed, 0, Tier.Free],
      [EventKind.Removed, 2, Tier.Free],
    ]);
    expect(m.usedBlocks('device')).toBe(0);
    expect(m.lookup(hashTokenBlocks([1, 2], 1)).blockIds).toEqual(ids());
    expect(m.checkInvariants()).toBe('');
  });

  it('lets lower scores go first', () => {
    const m = make(4);
    cache(m, 1, [1, 2]);
    cache(m, 2, [3]);
    m.takeEvents();
    m.setScores(ids(2, 0), Float32Array.from([-1, 5]));
    expect(m.evict('device', 2)).toBe(2);
    expect(events(m).map(([, block]) => block)).toEqual([2, 1]);
    // 0 scores 5, but it is the only candidate left.
    expect(m.evict('device', 5)).toBe(1);
    expect(events(m).map(([, block]) => block)).toEqual([0]);
    expect(m.metadata.score[0]).toBe(0); // reset when freed
  });

  it('demotes to host under pressure and loads back on a later admit', () => {
    const m = make(2, 2);
    const h = cache(m, 1, [1, 2]); // ids 0 -> 1 on device slots 0, 1
    m.takeEvents();
    // Two new blocks: each allocation demotes the coldest leaf to host.
    const r2 = m.admit(2, hashTokenBlocks([7, 8], 1), 2);
    expect(r2).toEqual({ cachedDeviceTokens: 0, loadedBlocks: 0, blockIds: ids(2, 3), blockTable: ids(1, 0) });
    expect(m.takeCopyPlan()).toEqual({
      srcTier: Uint8Array.from([Tier.Device, Tier.Device]),
      srcSlot: ids(1, 0),
      dstTier: Uint8Array.from([Tier.Host, Tier.Host]),
      dstSlot: ids(0, 1),
      stageStarts: ids(0),
    });
    expect(events(m)).toEqual([
      [EventKind.Demoted, 1, h[1], Tier.Host],
      [EventKind.Demoted, 0, h[0], Tier.Host],
    ]);
    expect(m.lookup(h)).toEqual({ deviceBlocks: 0, hostBlocks: 2, blockIds: ids(0, 1) });
    m.release(2); // uncommitted: freed, slot 0 then slot 1 pushed

    const r3 = m.admit(3, h, 2);
    expect(r3).toEqual({ cachedDeviceTokens: 0, loadedBlocks: 2, blockIds: ids(0, 1), blockTable: ids(1, 0) });
    expect(m.takeCopyPlan()).toEqual({
      srcTier: Uint8Array.from([Tier.Host, Tier.Host]),
      srcSlot: ids(1, 0),
      dstTier: Uint8Array.from([Tier.Device, Tier.Device]),
      dstSlot: ids(1, 0),
      stageStarts: ids(0),
    });
    expect(events(m)).toEqual([
      [EventKind.Loaded, 0, h[0], Tier.Device],
      [EventKind.Loaded, 1, h[1], Tier.Device],
    ]);
    expect(m.usedBlocks('host')).toBe(0);
    expect(m.checkInvariants()).toBe('');
  });

  it('splits the copy plan into stages when a copy reuses a slot of its stage', () => {
    const m = make(1, 2);
    const a = cache(m, 1, [1]); // id 0, device slot 0
    m.evict('device', 1); // id 0 -> host slot 0
    cache(m, 2, [2]); // id 1, device slot 0
    m.takeCopyPlan();
    m.takeEvents();
    m.setScores(ids(0), Float32Array.from([1])); // worth more than block 1
    // Loading 0 demotes 1 out of device slot 0, then writes slot 0.
    expect(m.load(ids(0))).toBe(1);
    expect(m.takeCopyPlan()).toEqual({
      srcTier: Uint8Array.from([Tier.Device, Tier.Host]),
      srcSlot: ids(0, 0),
      dstTier: Uint8Array.from([Tier.Host, Tier.Device]),
      dstSlot: ids(1, 0),
      stageStarts: ids(0, 1),
    });
    expect(events(m).map(([kind, block, hash]) => [kind, block, hash])).toEqual([
      [EventKind.Demoted, 1, hashTokenBlocks([2], 1)[0]],
      [EventKind.Loaded, 0, a[0]],
    ]);
    // A block worth more than the loaded one is not evicted for it.
    m.setScores(ids(0, 1), Float32Array.from([9, 0]));
    expect(m.load(ids(1))).toBe(0);
    expect(m.checkInvariants()).toBe('');
  });

  it('dedupes a prefix committed by two requests', () => {
    const m = make(6, 0, 2);
    const h = hashTokenBlocks([1, 2, 3, 4], 2);
    expect(m.admit(1, h, 4)?.blockIds).toEqual(ids(0, 1));
    expect(m.admit(2, h, 4)?.blockIds).toEqual(ids(2, 3)); // nothing committed yet
    m.commit(1, 2);
    m.takeEvents();
    expect(m.commit(2, 2)).toEqual(ids(0, 1));
    expect(events(m)).toEqual([]);
    expect(Array.from(m.metadata.refCount.subarray(0, 4))).toEqual([2, 2, 0, 0]);
    expect(Array.from(m.metadata.tier.subarray(0, 4))).toEqual([Tier.Device, Tier.Device, Tier.Free, Tier.Free]);
    expect(m.usedBlocks('device')).toBe(2);
    // Freed last: id 3 and slot 3 are on top of their stacks.
    expect(m.admit(3, noHashes, 1)).toMatchObject({ blockIds: ids(3), blockTable: ids(3) });
    expect(m.checkInvariants()).toBe('');
  });

  it('lets a host copy take over the device slot of a duplicate on commit', () => {
    const m = make(3, 2);
    const h = cache(m, 1, [5]); // id 0
    m.evict('device', 1); // id 0 -> host slot 0
    m.takeCopyPlan();
    m.takeEvents();
    expect(m.admit(2, noHashes, 1)).toMatchObject({ blockIds: ids(1), blockTable: ids(0) });
    expect(m.append(2, 0, h)).toEqual(ids());
    expect(m.commit(2, 1)).toEqual(ids(0));
    expect(events(m)).toEqual([[EventKind.Loaded, 0, h[0], Tier.Device]]);
    expect(m.takeCopyPlan().srcSlot).toEqual(ids()); // same bytes already in slot 0
    expect(m.metadata.slot[0]).toBe(0);
    expect(m.metadata.tier[1]).toBe(Tier.Free);
    expect(m.usedBlocks('host')).toBe(0);
    expect(m.checkInvariants()).toBe('');
  });

  it('grows a request with append', () => {
    const m = make(4, 0, 2);
    expect(m.admit(1, noHashes, 3)?.blockIds).toEqual(ids(0, 1));
    expect(m.append(1, 2)).toEqual(ids(2));
    const h = hashTokenBlocks([1, 2, 3, 4, 5, 6], 2);
    expect(m.append(1, 1, h.subarray(0, 2))).toEqual(ids()); // 6 tokens still fit in 3 blocks
    expect(m.clock).toBe(3);
    expect(Array.from(m.metadata.hash.subarray(0, 3))).toEqual([h[0], h[1], 0n]);
    expect(m.append(1, 2, h.subarray(2))).toEqual(ids(3));
    expect(m.metadata.depth[3]).toBe(3);
    expect(m.requestBlocks(1)).toEqual(ids(0, 1, 2, 3));
    expect(() => m.append(1, 100)).toThrow(RangeError); // beyond the device tier
    expect(m.checkInvariants()).toBe('');
  });

  it('frees uncommitted blocks on release and reuses them first', () => {
    const m = make(4);
    const h = hashTokenBlocks([1, 2, 3], 1);
    m.admit(1, h, 3);
    m.commit(1, 1);
    m.release(1);
    expect(m.clock).toBe(3);
    expect(Array.from(m.metadata.tier.subarray(0, 3))).toEqual([Tier.Device, Tier.Free, Tier.Free]);
    expect(m.metadata.lastAccess[0]).toBe(3);
    expect(m.evictableBlocks('device')).toBe(1);
    expect(m.admit(2, noHashes, 2)).toMatchObject({ blockIds: ids(1, 2), blockTable: ids(1, 2) });
    expect(m.checkInvariants()).toBe('');
  });

  it('never evicts pinned blocks', () => {
    const m = make(3, 1);
    cache(m, 1, [1, 2], false);
    expect(m.admit(2, noHashes, 1)?.blockIds).toEqual(ids(2));
    const before = snapshot(m);
    expect(m.admit(3, noHashes, 1)).toBeNull();
    expect(m.append(2, 1)).toBeNull();
    expect(m.evict('device', 2)).toBe(0);
    expect(m.demote(ids(0, 1))).toBe(0);
    expect(m.drop(ids(0, 1, 2))).toBe(0);
    expect(snapshot(m)).toEqual(before);
    expect(m.takeCopyPlan().srcSlot).toEqual(ids());
    expect(events(m)).toHaveLength(2); // the two Stored events of request 1
    m.release(1);
    expect(m.admit(3, noHashes, 1)).toMatchObject({ blockIds: ids(3), blockTable: ids(1) });
    expect(events(m)).toEqual([[EventKind.Demoted, 1, m.metadata.hash[1], Tier.Host]]);
  });

  it('rejects bad input without changing state', () => {
    const m = make(3, 1, 2);
    const h = cache(m, 1, [1, 2, 3, 4], false);
    const before = snapshot(m);
    const cases: [() => unknown, new (...args: never[]) => Error, RegExp?][] = [
      [() => m.admit(2, [1n] as never, 2), TypeError],
      [() => m.admit(2, noHashes, 2.5), RangeError],
      [() => m.admit(2, noHashes, 2, { agent: 64 }), RangeError],
      [() => m.admit(-1, noHashes, 2), RangeError],
      [() => m.admit(1, noHashes, 2), Error, /request 1 is already admitted/],
      [() => m.admit(2, noHashes, 7), RangeError],
      [() => m.admit(2, h, 3), RangeError], // two hashes, one full block
      [() => m.lookup(new BigUint64Array(5)), RangeError],
      [() => m.commit(1, 3), RangeError],
      [() => m.commit(7, 1), Error, /commit: unknown request 7/],
      [() => m.append(7, 1), Error, /append: unknown request 7/],
      [() => m.append(1, -1), RangeError],
      [() => m.release(7), Error, /^release: unknown request 7 \(never admitted or already released\)$/],
      [() => m.requestBlocks(7), Error],
      [() => m.setScores(ids(0), Float32Array.from([NaN])), RangeError],
      [() => m.setScores(ids(0, 1), Float32Array.from([1])), RangeError],
      [() => m.setScores(ids(4), Float32Array.from([1])), RangeError],
      [() => m.setScores([0] as never, Float32Array.from([1])), TypeError],
      [() => m.setAllScores(Float32Array.from([1, 2])), RangeError],
      [() => m.evict('gpu' as never, 1), TypeError],
      [() => m.evict('device', -1), RangeError],
      [() => m.demote(ids(0, 4)), RangeError],
      [() => m.drop(ids(0, 3)), RangeError], // 3 is not allocated
      [() => m.load(ids(-1)), RangeError],
      [() => m.usedBlocks('disk' as never), TypeError],
    ];
    for (const [call, errorClass, message] of cases) {
      expect(call).toThrow(errorClass);
      if (message) expect(call).toThrow(message);
      expect(snapshot(m)).toEqual(before);
    }
    m.release(1);
    expect(() => m.release(1)).toThrow(/already released/);
    expect(() => new ReferenceBlockManager({ deviceBlocks: 0 })).toThrow(RangeError);
    expect(m.checkInvariants()).toBe('');
  });
});

describe('hashTokenBlocks', () => {
  it('matches values computed by native/core/token_hash.h', () => {
    expect(hashTokenBlocks([1, 2, 3, 4, 5, 6, 7, 8], 4)).toEqual(
      BigUint64Array.from([0xb1ce02dc887a39d0n, 0x7e3565357e4598ecn]),
    );
    expect(hashBlock(0x0123456789abcdefn, Uint32Array.from([0xffffffff, 0, 42]), 0, 3)).toBe(0xe03a79beb136c5e3n);
    expect(hashTokenBlocks(Uint32Array.from([7, 7, 7, 7, 7]), 2, 0xdeadbeefcafebaben)).toEqual(
      BigUint64Array.from([0xcb199047075525a3n, 0x21f0ec6478c950ebn]),
    );
  });

  it('is deterministic and returns floor(count / blockSize) hashes', () => {
    const tokens = [5, 6, 7, 8, 9];
    expect(hashTokenBlocks(tokens, 2)).toEqual(hashTokenBlocks(Uint32Array.from(tokens), 2));
    expect(hashTokenBlocks(tokens, 2)).toHaveLength(2);
    expect(hashTokenBlocks(tokens, 5)).toHaveLength(1);
    expect(hashTokenBlocks(tokens, 6)).toHaveLength(0);
    expect(hashTokenBlocks(Int32Array.from([-1]), 1)).toEqual(hashTokenBlocks(Uint32Array.from([0xffffffff]), 1));
  });

  it('chains each block to the blocks before it', () => {
    const a = hashTokenBlocks([1, 2, 3, 4], 2);
    const b = hashTokenBlocks([9, 9, 3, 4], 2);
    expect(a[1]).not.toBe(b[1]); // same second block, different first
    expect(a[1]).toBe(hashBlock(a[0]!, [1, 2, 3, 4], 2, 2));
    expect(hashTokenBlocks([3, 4], 2, a[0])).toEqual(a.subarray(1));
  });

  it('rejects bad arguments', () => {
    expect(() => hashTokenBlocks('abc' as never, 2)).toThrow(TypeError);
    expect(() => hashTokenBlocks([1, 2], 0)).toThrow(RangeError);
    expect(() => hashTokenBlocks([1, 2], 1.5)).toThrow(RangeError);
    expect(() => hashTokenBlocks([1, -2], 1)).toThrow(RangeError);
    expect(() => hashTokenBlocks([1, 2 ** 32], 1)).toThrow(RangeError);
    expect(() => hashTokenBlocks([1, 2], 1, 1 as never)).toThrow(TypeError);
    expect(() => hashTokenBlocks([1, 2], 1, 1n << 64n)).toThrow(RangeError);
    expect(() => hashBlock(0n, [1, 2], 1, 2)).toThrow(RangeError);
  });
});
