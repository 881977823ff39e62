/**
 * The copy plan contract: checkCopyPlan's refusals, planStages' ranges, and
 * the reference copy every data plane is compared with.
 */
import { describe, expect, it } from 'vitest';

import { checkCopyPlan, planStages } from '../../src/blocks/copy_plan.js';
import { Tier, type CopyPlan } from '../../src/blocks/types.js';
import { referenceBlockCopy } from '../../src/compute/block_copy.js';

const D = Tier.Device;
const H = Tier.Host;

/** A plan from [srcTier, srcSlot, dstTier, dstSlot] copies. */
function plan(copies: [number, number, number, number][], stageStarts: number[] = []): CopyPlan {
  return {
    srcTier: Uint8Array.from(copies.map((c) => c[0])),
    srcSlot: Int32Array.from(copies.map((c) => c[1])),
    dstTier: Uint8Array.from(copies.map((c) => c[2])),
    dstSlot: Int32Array.from(copies.map((c) => c[3])),
    stageStarts: Int32Array.from(stageStarts),
  };
}

// 4 device slots, 2 host slots.
const check = (p: unknown): number => checkCopyPlan(p as CopyPlan, 4, 2, 'op');

describe('checkCopyPlan', () => {
  it('returns the number of copies of a valid plan', () => {
    expect(check(plan([]))).toBe(0);
    expect(check(plan([], [0]))).toBe(0);
    expect(check(plan([[D, 3, H, 1], [H, 0, D, 0]], [0, 1]))).toBe(2);
    // The last stage may be empty: a start equal to the copy count.
    expect(check(plan([[D, 0, H, 0], [D, 1, H, 1]], [0, 2]))).toBe(2);
  });

  it('refuses a plan that is not an object', () => {
    expect(() => check(null)).toThrow(new TypeError('op: plan must be a CopyPlan object'));
  });

  it('refuses arrays of the wrong type', () => {
    const good = plan([[D, 0, H, 0]]);
    expect(() => check({ ...good, srcTier: [D] })).toThrow(
      new TypeError('op: plan.srcTier and plan.dstTier must be Uint8Arrays'),
    );
    expect(() => check({ ...good, dstSlot: Uint32Array.of(0) })).toThrow(
      new TypeError('op: plan.srcSlot and plan.dstSlot must be Int32Arrays'),
    );
    expect(() => check({ ...good, stageStarts: undefined })).toThrow(
      new TypeError('op: plan.stageStarts must be an Int32Array'),
    );
  });

  it('refuses arrays of different lengths', () => {
    const good = plan([[D, 0, H, 0], [D, 1, H, 1]]);
    expect(() => check({ ...good, dstSlot: Int32Array.of(0) })).toThrow(
      new RangeError('op: plan arrays must all have length 2'),
    );
    expect(() => check({ ...good, srcTier: Uint8Array.of(D, D, D) })).toThrow(
      new RangeError('op: plan arrays must all have length 2'),
    );
  });

  it('refuses a tier other than device or host, naming the copy and side', () => {
    expect(() => check(plan([[D, 0, H, 0], [Tier.Free, 0, H, 1]]))).toThrow(
      new RangeError('op: copy 1 has source tier 0; expected 1 (device) or 2 (host)'),
    );
    expect(() => check(plan([[D, 0, 3, 0]]))).toThrow(
      new RangeError('op: copy 0 has destination tier 3; expected 1 (device) or 2 (host)'),
    );
  });

  it('refuses slots outside their tier', () => {
    expect(() => check(plan([[D, 4, H, 0]]))).toThrow(
      new RangeError('op: copy 0 has source slot 4, out of range [0, 4)'),
    );
    expect(() => check(plan([[D, 3, H, 2]]))).toThrow(
      new RangeError('op: copy 0 has destination slot 2, out of range [0, 2)'),
    );
    expect(() => check(plan([[D, 0, H, 0], [H, -1, D, 0]]))).toThrow(
      new RangeError('op: copy 1 has source slot -1, out of range [0, 2)'),
    );
  });

  it('refuses stage starts that do not start at 0, go back or pass the end', () => {
    const copies: [number, number, number, number][] = [[D, 0, H, 0], [D, 1, H, 1]];
    expect(() => check(plan(copies, [1]))).toThrow(
      new RangeError('op: stageStarts[0] = 1 must be non-decreasing, start at 0 and be <= 2'),
    );
    expect(() => check(plan(copies, [0, 2, 1]))).toThrow(
      new RangeError('op: stageStarts[2] = 1 must be non-decreasing, start at 0 and be <= 2'),
    );
    expect(() => check(plan(copies, [0, 3]))).toThrow(
      new RangeError('op: stageStarts[1] = 3 must be non-decreasing, start at 0 and be <= 2'),
    );
    expect(() => check(plan([], [-1]))).toThrow(
      new RangeError('op: stageStarts[0] = -1 must be non-decreasing, start at 0 and be <= 0'),
    );
  });
});

describe('planStages', () => {
  const copies = (n: number): [number, number, number, number][] =>
    Array.from({ length: n }, (_, i) => [D, i % 4, H, i % 2] as [number, number, number, number]);

  it('gives no stage for an empty plan', () => {
    expect(planStages(plan([]))).toEqual([]);
    expect(planStages(plan([], [0]))).toEqual([]);
  });

  it('reads a plan with copies but no boundary as one stage', () => {
    expect(planStages(plan(copies(3)))).toEqual([[0, 3]]);
  });

  it('gives each stage as [start, end), skipping empty ones', () => {
    expect(planStages(plan(copies(5), [0, 2, 2, 4]))).toEqual([[0, 2], [2, 4], [4, 5]]);
    expect(planStages(plan(copies(3), [0, 3]))).toEqual([[0, 3]]);
    expect(planStages(plan(copies(3), [0, 1, 2]))).toEqual([[0, 1], [1, 2], [2, 3]]);
  });
});

describe('referenceBlockCopy', () => {
  /** 3 device slots and 2 host slots of 4 bytes: device bytes 1..12, host bytes 101..108. */
  const pools = () => ({
    bytesPerBlock: 4,
    device: Uint8Array.from({ length: 12 }, (_, i) => 1 + i),
    host: Uint8Array.from({ length: 8 }, (_, i) => 101 + i),
  });

  it('copies exact bytes device to host and host to device', () => {
    const p = pools();
    referenceBlockCopy(p, plan([[D, 2, H, 0], [H, 1, D, 0]], [0]));
    expect([...p.host]).toEqual([9, 10, 11, 12, 105, 106, 107, 108]);
    expect([...p.device]).toEqual([105, 106, 107, 108, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('runs copies in order, so a later stage sees an earlier one', () => {
    const p = pools();
    referenceBlockCopy(p, plan([[D, 1, H, 1], [H, 1, D, 2], [D, 0, D, 1]], [0, 1, 2]));
    expect([...p.host]).toEqual([101, 102, 103, 104, 5, 6, 7, 8]);
    expect([...p.device]).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses a bad plan before copying anything', () => {
    const p = pools();
    expect(() => referenceBlockCopy(p, plan([[D, 0, H, 0], [D, 3, H, 1]]))).toThrow(
      new RangeError('referenceBlockCopy: copy 1 has source slot 3, out of range [0, 3)'),
    );
    expect(p).toEqual(pools());
  });

  it('refuses pools that are not whole blocks, before copying anything', () => {
    const p = pools();
    const ragged = { ...p, host: new Uint8Array(7) };
    expect(() => referenceBlockCopy(ragged, plan([[D, 0, H, 0]]))).toThrow(
      new RangeError('referenceBlockCopy: pools.host holds 7 bytes, not a whole number of 4-byte blocks'),
    );
    expect(() => referenceBlockCopy({ ...p, bytesPerBlock: 0 }, plan([[D, 0, H, 0]]))).toThrow(RangeError);
    expect(p).toEqual(pools());
  });
});
