/**
 * Random garbage at every N-API entry point, bypassing the TypeScript
 * checks: each call either returns or throws a JS error, the process never
 * aborts, a rejected call leaves the state exactly as it was, and the
 * invariants hold throughout.
 */
import { describe, expect, it } from 'vitest';

import { nativeAddon, type NativeBlockManagerHandle } from '../../src/blocks/addon.js';
import { METADATA_FIELDS } from '../../src/blocks/types.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    s ^= s >>> 13;
    return (s >>> 0) % n;
  };
}

function garbage(rand: (n: number) => number): unknown {
  const pool: (() => unknown)[] = [
    () => undefined, () => null, () => NaN, () => Infinity, () => -Infinity, () => -1, () => 0, () => 1,
    () => 2 ** 31, () => -(2 ** 31) - 1, () => 2 ** 53, () => 1.5, () => 1e300, () => rand(40),
    () => 'x', () => '3', () => true, () => {}, () => ({}), () => [], () => [1, 2], () => Symbol('s'), () => 10n,
    () => -1n, () => 2n ** 70n, () => new Int32Array([rand(60) - 5, 3, 2 ** 31 - 1]), () => new Int32Array(0),
    () => new Uint32Array([1, 2]), () => new Float32Array([NaN, 1]), () => new Float32Array([0.5, -2]),
    () => new Float64Array(3), () => new Uint8Array([1, 2, 9]), () => new Uint8Array(0),
    () => new BigUint64Array([BigInt(rand(1000)), 5n]), () => new BigInt64Array([-1n]),
    () => BigUint64Array.from({ length: rand(200) }, (_, i) => BigInt(i * 7919 + rand(3))),
    () => new ArrayBuffer(8), () => new DataView(new ArrayBuffer(8)), () => new Float32Array(rand(100)),
  ];
  return pool[rand(pool.length)]!();
}

type Snapshot = { clock: number; requests: number; arrays: string };

function snapshot(handle: NativeBlockManagerHandle): Snapshot {
  const meta = handle.metadata();
  const arrays = [...METADATA_FIELDS, "classScore" as const].map((f) => {
    const view = meta[f] as ArrayBufferView;
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
  }).join('|');
  return { clock: handle.clock(), requests: handle.numRequests(), arrays };
}

const METHODS = [
  'lookup', 'admit', 'append', 'commit', 'release', 'hasRequest', 'requestBlocks', 'numRequests', 'setScores',
  'setAllScores', 'setScoreClasses', 'setClassScores', 'evict', 'demote', 'drop', 'load', 'usedBlocks', 'evictableBlocks', 'pinnedDeviceBlocks',
  'takeCopyPlan', 'takeEvents', 'checkInvariants', 'clock', 'metadata',
] as const;

describe('N-API fuzz', () => {
  it('survives garbage at every block manager method', () => {
    const { NativeBlockManager } = nativeAddon();
    const handle = new NativeBlockManager(4, 64, 32, 16, 8);
    const rand = rng(20261125);
    // Some real state first, so garbage meets pinned, cached and host blocks.
    const prompt = (p: number, n: number) => BigUint64Array.from({ length: n }, (_, i) => BigInt(p * 1000 + i + 1));
    for (let r = 1; r <= 12; r++) {
      const hashes = prompt(r % 5, 4 + (r % 4));
      if (handle.admit(r, hashes, hashes.length * 4 + 1, r % 3, r % 4, r) && r % 3 !== 0) {
        handle.commit(r, hashes.length);
        if (r % 2 === 0) handle.release(r);
      }
    }
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      const method = METHODS[rand(METHODS.length)]!;
      const args = Array.from({ length: rand(8) }, () => garbage(rand));
      const before = snapshot(handle);
      try {
        (handle[method] as (...a: unknown[]) => unknown)(...args);
        handle.takeCopyPlan();
      } catch (error) {
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).message).not.toMatch(/internal/);
        expect(snapshot(handle)).toEqual(before);
        rejected++;
      }
      if (i % 500 === 0) expect(handle.checkInvariants()).toBe('');
    }
    expect(handle.checkInvariants()).toBe('');
    expect(rejected).toBeGreaterThan(10_000);
  });

  it('survives garbage at the data plane, the constructors and the hash function', () => {
    const { NativeBlockManager, NativeCpuDataPlane, hashTokenBlocks } = nativeAddon();
    const plane = new NativeCpuDataPlane(32, 4, 4);
    const rand = rng(7);
    const calls: (() => unknown)[] = [
      () => new NativeBlockManager(...(Array.from({ length: 5 }, () => garbage(rand)) as [number, number, number, number, number])),
      () => new NativeCpuDataPlane(...(Array.from({ length: 3 }, () => garbage(rand)) as [number, number, number])),
      () => hashTokenBlocks(...(Array.from({ length: 3 }, () => garbage(rand)) as [Uint32Array, number, bigint])),
      () => plane.execute(...(Array.from({ length: 4 }, () => garbage(rand)) as [Uint8Array, Int32Array, Uint8Array, Int32Array])),
      () => plane.write(...(Array.from({ length: 3 }, () => garbage(rand)) as [number, number, Uint8Array])),
      () => plane.read(...(Array.from({ length: 2 }, () => garbage(rand)) as [number, number])),
    ];
    let threw = 0;
    for (let i = 0; i < 5_000; i++) {
      try {
        calls[rand(calls.length)]!();
      } catch (error) {
        expect(error).toBeInstanceOf(Error);
        threw++;
      }
    }
    expect(threw).toBeGreaterThan(4_000);
  });

  it('keeps metadata views valid after the manager is collected', () => {
    const { NativeBlockManager } = nativeAddon();
    let handle: NativeBlockManagerHandle | null = new NativeBlockManager(4, 0, 8, 0, 0);
    handle.admit(1, new BigUint64Array([1n, 2n]), 8, 0, 1, 0);
    const tier = handle.metadata().tier as Uint8Array;
    handle = null;
    (globalThis as { gc?: () => void }).gc?.();
    expect([...tier.subarray(0, 3)]).toEqual([1, 1, 0]);
  });
});
