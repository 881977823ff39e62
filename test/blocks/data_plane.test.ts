import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { Tier, type CopyPlan } from '../../src/blocks/types.js';

const BYTES = 4096;

function setup(deviceBlocks: number, hostBlocks: number) {
  const manager = new BlockManager({ blockSize: 4, bytesPerBlock: BYTES, deviceBlocks, hostBlocks });
  const plane = new CpuDataPlane({ bytesPerBlock: BYTES, deviceBlocks, hostBlocks });
  return { manager, plane };
}

/** Distinct bytes per (block hash, position), so any misplaced byte shows. */
function pattern(hash: bigint): Uint8Array {
  const out = new Uint8Array(BYTES);
  let x = Number(hash % 2147483647n) | 1;
  for (let i = 0; i < BYTES; i++) {
    x = (Math.imul(x, 48271) + 11) % 2147483647;
    out[i] = x & 0xff;
  }
  return out;
}

/** Index of the first differing byte, -1 when equal (fast, unlike a deep equal). */
function firstDifference(actual: Uint8Array, expected: Uint8Array | undefined): number {
  if (!expected || actual.length !== expected.length) return 0;
  return Buffer.compare(actual, expected) === 0 ? -1 : actual.findIndex((b, i) => b !== expected[i]);
}

function tokens(seed: number, n: number): Uint32Array {
  return Uint32Array.from({ length: n }, (_, i) => seed * 100_000 + i);
}

describe('CpuDataPlane with the block manager', () => {
  it('keeps every byte through demotion to host and loading back', () => {
    const { manager, plane } = setup(8, 8);
    const promptA = tokens(1, 32); // 8 blocks: fills the device tier
    const hashesA = hashTokenBlocks(promptA, 4);
    const a = manager.admit(1, hashesA, 32)!;
    expect(a.blockTable).toHaveLength(8);
    // The engine computes KV into the request's device slots.
    a.blockTable.forEach((slot, i) => plane.write('device', slot, pattern(hashesA[i]!)));
    manager.commit(1, 8);
    manager.release(1);

    // A second prompt needs the whole device tier: all of A is demoted.
    const hashesB = hashTokenBlocks(tokens(2, 32), 4);
    const b = manager.admit(2, hashesB, 32)!;
    const demotion = manager.takeCopyPlan();
    expect(demotion.srcSlot).toHaveLength(8);
    expect([...demotion.dstTier]).toEqual(new Array(8).fill(Tier.Host));
    plane.execute(demotion);
    b.blockTable.forEach((slot, i) => plane.write('device', slot, pattern(hashesB[i]!)));
    manager.commit(2, 8);
    manager.release(2);
    expect(manager.lookup(hashesA)).toMatchObject({ deviceBlocks: 0, hostBlocks: 8 });

    // Admitting A again loads it back from host, demoting B.
    const again = manager.admit(3, hashesA, 32)!;
    expect(again.loadedBlocks).toBe(8);
    expect(again.cachedDeviceTokens).toBe(0);
    const plan = manager.takeCopyPlan();
    // Every load reads a host slot that must still hold A's bytes: stages
    // keep a demotion from overwriting it first.
    plane.execute(plan);
    again.blockTable.forEach((slot, i) => expect(firstDifference(plane.read('device', slot), pattern(hashesA[i]!))).toBe(-1));
    manager.release(3);
    // B now lives on host, byte for byte.
    const bIds = manager.lookup(hashesB).blockIds;
    bIds.forEach((id, i) => {
      expect(manager.metadata.tier[id]).toBe(Tier.Host);
      expect(firstDifference(plane.read('host', manager.metadata.slot[id]!), pattern(hashesB[i]!))).toBe(-1);
    });
    expect(manager.checkInvariants()).toBe('');
  });

  it('keeps bytes over many random rounds, executing plans off the main thread', async () => {
    const { manager, plane } = setup(24, 40);
    const written = new Map<bigint, Uint8Array>();
    let request = 0;
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const prompts = Array.from({ length: 12 }, (_, p) => hashTokenBlocks(tokens(p + 10, 16 + 4 * (p % 3)), 4));
    for (let round = 0; round < 300; round++) {
      const hashes = prompts[rand(prompts.length)]!;
      const id = ++request;
      const admitted = manager.admit(id, hashes, hashes.length * 4);
      if (!admitted) continue;
      await plane.executeAsync(manager.takeCopyPlan());
      for (let i = 0; i < hashes.length; i++) {
        const slot = admitted.blockTable[i]!;
        const h = hashes[i]!;
        if (i < admitted.cachedDeviceTokens / 4 + admitted.loadedBlocks) {
          // A hit, on device or loaded from host: the bytes computed for this hash.
          expect(firstDifference(plane.read('device', slot), written.get(h))).toBe(-1);
        } else {
          const bytes = pattern(h);
          plane.write('device', slot, bytes);
          written.set(h, bytes);
        }
      }
      manager.commit(id, hashes.length);
      if (rand(4) === 0) manager.evict('device', rand(4));
      if (rand(5) === 0) manager.evict('host', rand(3));
      manager.release(id);
      await plane.executeAsync(manager.takeCopyPlan());
      expect(manager.checkInvariants()).toBe('');
    }
    // Every cached block, in either tier, still holds its bytes.
    const m = manager.metadata;
    let checked = 0;
    for (let id = 0; id < manager.numBlockIds; id++) {
      if (!m.committed[id]) continue;
      const tier = m.tier[id] === Tier.Device ? 'device' : 'host';
      expect(firstDifference(plane.read(tier, m.slot[id]!), written.get(m.hash[id]!))).toBe(-1);
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('refuses a bad plan before copying anything', () => {
    const plane = new CpuDataPlane({ bytesPerBlock: 16, deviceBlocks: 2, hostBlocks: 2 });
    plane.write('device', 0, new Uint8Array(16).fill(7));
    const bad: CopyPlan = {
      srcTier: new Uint8Array([Tier.Device, Tier.Device]),
      srcSlot: new Int32Array([0, 5]),
      dstTier: new Uint8Array([Tier.Host, Tier.Host]),
      dstSlot: new Int32Array([0, 1]),
      stageStarts: new Int32Array([0]),
    };
    expect(() => plane.execute(bad)).toThrow(/copy 1 has source slot 5, out of range/);
    expect(plane.read('host', 0)).toEqual(new Uint8Array(16));
    expect(() => plane.execute({ ...bad, srcTier: new Uint8Array([Tier.Device, 9]) })).toThrow(/tier 9/);
    expect(() => plane.write('device', 2, new Uint8Array(16))).toThrow(RangeError);
    expect(() => plane.write('device', 0, new Uint8Array(15))).toThrow(/expected 16 bytes/);
    expect(() => plane.read('gpu' as never, 0)).toThrow(TypeError);
    expect(() => new CpuDataPlane({ bytesPerBlock: 0, deviceBlocks: 1 })).toThrow(RangeError);
  });

  it('rejects an async plan without corrupting later ones', async () => {
    const plane = new CpuDataPlane({ bytesPerBlock: 8, deviceBlocks: 2, hostBlocks: 1 });
    plane.write('device', 1, new Uint8Array(8).fill(3));
    const bad = plane.executeAsync({
      srcTier: new Uint8Array([Tier.Device]), srcSlot: new Int32Array([1]),
      dstTier: new Uint8Array([Tier.Host]), dstSlot: new Int32Array([4]), stageStarts: new Int32Array([0]),
    });
    const good = plane.executeAsync({
      srcTier: new Uint8Array([Tier.Device]), srcSlot: new Int32Array([1]),
      dstTier: new Uint8Array([Tier.Host]), dstSlot: new Int32Array([0]), stageStarts: new Int32Array([0]),
    });
    await expect(bad).rejects.toThrow(/destination slot 4/);
    await good;
    expect(plane.read('host', 0)).toEqual(new Uint8Array(8).fill(3));
  });
});
