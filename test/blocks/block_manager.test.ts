/**
 * Exact cases on the native block manager that random sequences reach only
 * rarely; the reference model must agree on each.
 */
import { describe, expect, it } from 'vitest';

import { nativeAddon } from '../../src/blocks/addon.js';
import { BlockManager } from '../../src/blocks/block_manager.js';
import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { ReferenceBlockManager } from '../../src/blocks/reference.js';
import { EventKind, Tier, type BlockManagerLike, type BlockManagerOptions } from '../../src/blocks/types.js';

const both = (options: BlockManagerOptions): [string, BlockManagerLike][] => [
  ['native', new BlockManager(options)],
  ['reference', new ReferenceBlockManager(options)],
];

describe('block manager edge cases', () => {
  for (const [name, m] of both({ blockSize: 4, deviceBlocks: 4, hostBlocks: 4 })) {
    it(`${name}: commit shares a host block that still has cached children`, () => {
      const hashes = hashTokenBlocks(Uint32Array.from({ length: 12 }, (_, i) => i), 4);
      m.admit(1, hashes, 12);
      m.commit(1, 3);
      m.release(1);
      // Demote leaf first: blocks 2 then 1 go to host; 1 keeps child 2 there.
      expect(m.demote(new Int32Array([2, 1]))).toBe(2);
      m.takeCopyPlan();
      m.takeEvents();
      // A new request recomputes block 1 instead of hitting it, then commits.
      expect(m.admit(2, hashes.subarray(0, 1), 4)).not.toBeNull();
      expect(m.append(2, 4, hashes.subarray(1, 2))).toEqual(new Int32Array([3]));
      // The cached host copy of block 1 takes the request's device slot.
      expect(m.commit(2, 2)).toEqual(new Int32Array([0, 1]));
      expect(m.metadata.tier[1]).toBe(Tier.Device);
      expect(m.metadata.tier[2]).toBe(Tier.Host);
      expect(m.metadata.tier[3]).toBe(Tier.Free);
      expect(m.takeCopyPlan().srcSlot).toHaveLength(0); // no bytes move: the slot already holds them
      const events = m.takeEvents();
      expect([...events.kind]).toEqual([EventKind.Loaded]);
      expect([...events.block]).toEqual([1]);
      expect(m.checkInvariants()).toBe('');
      m.release(2);
      expect(m.checkInvariants()).toBe('');
    });
  }

  for (const [name, m] of both({ blockSize: 2, deviceBlocks: 3 })) {
    it(`${name}: misuse of request ids is a RangeError naming the request, and changes nothing`, () => {
      expect(() => m.release(99)).toThrow(RangeError);
      expect(() => m.release(99)).toThrow(/^release: unknown request 99\b/);
      expect(() => m.commit(99, 0)).toThrow(RangeError);
      m.admit(1, new BigUint64Array([5n]), 2);
      expect(() => m.admit(1, new BigUint64Array([5n]), 2)).toThrow(RangeError);
      expect(() => m.admit(1, new BigUint64Array([5n]), 2)).toThrow(/request 1 is already admitted/);
      expect(m.numRequests).toBe(1);
      m.release(1);
      expect(m.checkInvariants()).toBe('');
    });
  }

  for (const [name, m] of both({ blockSize: 2, deviceBlocks: 3 })) {
    it(`${name}: a score set on a free id does not carry over to the block allocated there`, () => {
      m.setScores(new Int32Array([0]), new Float32Array([-5]));
      m.admit(1, new BigUint64Array([11n]), 2);
      expect(m.metadata.score[0]).toBe(0);
    });
  }

  it('refuses at once a data plane larger than the machine, naming both pools and what to lower', () => {
    const started = performance.now();
    // The sizes of a large server (2 MiB blocks, 4M device blocks: 8 TiB), far beyond any test machine.
    expect(() => new CpuDataPlane({ bytesPerBlock: 2 << 20, deviceBlocks: 1 << 22, hostBlocks: 16384 })).toThrow(
      /^CpuDataPlane: the device pool \(4194304 blocks x 2097152 bytes = 8192\.0 GiB\) and the host pool \(16384 blocks = 32\.0 GiB\) need 8224\.0 GiB, more than this machine's [\d.]+ GiB of memory; lower options\.deviceBlocks, options\.hostBlocks or options\.bytesPerBlock$/,
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('the native pools name themselves when their byte size overflows', () => {
    const Plane = nativeAddon().NativeCpuDataPlane;
    expect(() => new Plane(2 ** 52, 1 << 20, 0)).toThrow(/^the device pool of 1048576 blocks of 4503599627370496 bytes is too large$/);
    // Small enough to compute, too large to allocate: the message says which pool and what to lower.
    expect(() => new Plane(2 ** 52, 1, 0)).toThrow(
      /^cannot allocate the device pool: 1 blocks x 4503599627370496 bytes = 4503599627370496 bytes; lower its block count or bytesPerBlock$/,
    );
  });

  for (const [name, m] of both({ blockSize: 2, deviceBlocks: 16 })) {
    it(`${name}: commit refuses an inconsistent batch, naming its first offender, and changes nothing`, () => {
      // A hash repeated within one commit.
      expect(m.admit(1, BigUint64Array.of(10n, 11n, 10n), 6)).not.toBeNull();
      const clock = m.clock;
      expect(() => m.commit(1, 3)).toThrow('commit: block hash at position 2 of request 1 repeats an earlier block of the same commit');
      expect(m.clock).toBe(clock);
      expect(m.usedBlocks('device')).toBe(3);
      expect(m.lookup(BigUint64Array.of(10n)).blockIds.length).toBe(0);
      m.release(1);
      // A hash cached under another parent: 21 is cached after 20, then sent after 30.
      expect(m.admit(2, BigUint64Array.of(20n, 21n), 4)).not.toBeNull();
      m.commit(2, 2);
      m.release(2);
      expect(m.admit(3, BigUint64Array.of(30n, 21n, 21n), 6)).not.toBeNull();
      // The first offender in position order wins: position 1 (other prefix), not 2 (repeat of a cached hash).
      expect(() => m.commit(3, 3)).toThrow('commit: block hash at position 1 of request 3 is cached under a different prefix');
      expect(m.lookup(BigUint64Array.of(30n)).blockIds.length).toBe(0);
      m.release(3);
      expect(m.checkInvariants()).toBe('');
    });
  }
  it('answers it returns stay as returned: later calls never write into an earlier one', () => {
    // Small and large prompts: the small ones share slabs and cross from one
    // to the next; those over 4,096 blocks get buffers of their own. The
    // property test checks each answer against the reference when returned.
    const m = new BlockManager({ blockSize: 1, deviceBlocks: 5_000, hostBlocks: 1_000 });
    let copies = 0;
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const kept: { label: string; got: Int32Array | Uint8Array; values: number[] }[] = [];
    const keep = (label: string, got: Int32Array | Uint8Array): void => {
      kept.push({ label, got, values: [...got] });
    };
    for (let id = 1; id <= 300; id++) {
      const length = random(10) === 0 ? 4_097 + random(800) : 1 + random(400);
      const prefix = 1 + random(8);
      const hashes = BigUint64Array.from({ length }, (_, i) => BigInt(i < 50 ? prefix * 100_000 + i : id * 100_000 + i));
      const admitted = m.admit(id, hashes, length);
      expect(admitted, `admit ${id}`).not.toBeNull();
      keep(`admit ${id} ids`, admitted!.blockIds);
      keep(`admit ${id} table`, admitted!.blockTable);
      keep(`commit ${id}`, m.commit(id, length));
      keep(`lookup ${id}`, m.lookup(hashes).blockIds);
      // Admits past the device tier's size demote: copy plans come out too.
      const plan = m.takeCopyPlan();
      copies += plan.srcSlot.length;
      for (const field of ['srcTier', 'srcSlot', 'dstTier', 'dstSlot', 'stageStarts'] as const) keep(`copy plan ${id} ${field}`, plan[field]);
      m.release(id);
    }
    expect(copies).toBeGreaterThan(1_000);
    for (const { label, got, values } of kept) {
      // The first difference, or -1: deep equality on thousands of elements is slow.
      let first = got.length === values.length ? -1 : 0;
      for (let i = 0; first < 0 && i < got.length; i++) if (got[i] !== values[i]) first = i;
      expect(first, label).toBe(-1);
    }
    expect(m.checkInvariants()).toBe('');
  });
});
