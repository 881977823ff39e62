/**
 * Property tests: random operation sequences run against the native block
 * manager and the TypeScript reference model must give identical results
 * (return values, refusals with their error class and message, every
 * metadata array, copy plans, events) and keep every invariant.
 *
 * The same sequences also run against the bare native handle
 * (raw_native_manager.ts), with no TypeScript checks in front, so the
 * native checks are what refuses bad input: a refusal must leave the state
 * equal to the reference's, and its message must be the reference's or, where
 * the native wording differs, the documented native one (REFUSALS,
 * nativeWording).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import { hashTokenBlocks } from '../../src/blocks/hash.js';
import { ReferenceBlockManager } from '../../src/blocks/reference.js';
import { EventKind, METADATA_FIELDS, Tier, type BlockManagerLike, type BlockManagerOptions } from '../../src/blocks/types.js';
import { RawNativeManager } from './raw_native_manager.js';

type Op =
  | { kind: 'admit'; request: number; tokens: number[]; hashCount: number; workload: number; agent: number; session: number }
  | { kind: 'admitRaw'; request: number; hashes: number[]; extraTokens: number }
  | { kind: 'append'; request: number; tokens: number[]; hashAll: boolean }
  | { kind: 'commit'; request: number; blocks: number }
  | { kind: 'release'; request: number }
  | { kind: 'lookup'; tokens: number[] }
  | { kind: 'setScores'; ids: number[]; scores: number[] }
  | { kind: 'setAllScores'; seed: number }
  | { kind: 'setScoreClasses'; ids: number[]; classes: number[] }
  | { kind: 'setClassScores'; classes: number[]; scores: number[] }
  | { kind: 'evict'; tier: 'device' | 'host'; count: number }
  | { kind: 'demote' | 'drop' | 'load'; ids: number[] }
  | { kind: 'take' }
  // The last admit again, as a scheduler retries the head of its queue
  // (refused before and nothing changed since: refused again, from memory).
  | { kind: 'again' }
  // Events recorded or not: the state must not care.
  | { kind: 'record'; on: boolean }
  | { kind: 'bad'; which: number; request: number };

const token = fc.integer({ min: 0, max: 2 }); // a tiny alphabet makes shared prefixes common
const request = fc.integer({ min: 0, max: 5 });
const id = fc.integer({ min: -1, max: 50 });

/**
 * A refusal, and how the bare native handle words it: `same` as the
 * reference (the check lives in the C++ core with the same message), or the
 * native binding's own error and message where the TypeScript checks of
 * src/blocks/validate.ts catch the input first in front of the native
 * manager, so that only the bare handle shows the C++ side refusing it.
 */
interface Refusal {
  call: (m: BlockManagerLike, requestId: number) => unknown;
  /** Given the reference before the call. */
  native: (reference: BlockManagerLike) => 'same' | { threw: string; message: RegExp };
}

const same = () => 'same' as const;
const argument = (op: string, index: number, range: string) => () => ({ threw: 'RangeError', message: new RegExp(`^${op}: argument ${index} is out of range \\[${range}\\]$`) });
const notFinite = (op: string) => () => ({ threw: 'RangeError', message: new RegExp(`^${op}: score at index \\d+ is not finite$`) });
const firstFree = (m: BlockManagerLike) => {
  const free = m.metadata.tier.indexOf(Tier.Free);
  return free < 0 ? m.numBlockIds : free;
};
const INT32_RANGE = '0, 2147483647';

const REFUSALS: Refusal[] = [
  { call: (m) => m.release(999), native: same },
  { call: (m, r) => m.commit(r, 10_000), native: same },
  { call: (m) => m.setScores(new Int32Array([0]), new Float32Array([NaN])), native: notFinite('setScores') },
  { call: (m) => m.setScores(new Int32Array([m.numBlockIds]), new Float32Array([1])), native: same },
  { call: (m) => m.admit(-1, new BigUint64Array(0), 4), native: argument('admit', 0, '0, 9007199254740991') },
  { call: (m, r) => m.admit(r, new BigUint64Array(0), m.blockSize * (m.deviceBlocks + 1)), native: same },
  { call: (m) => m.evict('gpu' as never, 1), native: argument('evict', 0, '1, 2') },
  { call: (m) => m.lookup(new BigUint64Array(m.numBlockIds + 1)), native: same },
  { call: (m, r) => m.append(r, -1), native: argument('append', 1, INT32_RANGE) },
  { call: (m, r) => m.admit(r, new BigUint64Array(5), 1), native: same },
  { call: (m, r) => m.admit(r, new BigUint64Array(0), 0), native: argument('admit', 2, '1, 2147483647') },
  { call: (m, r) => m.admit(r, new BigUint64Array(0), 1, { workload: -2 }), native: argument('admit', 3, '-1, 2147483647') },
  { call: (m, r) => m.admit(r, new BigUint64Array(0), 1, { agent: 64 }), native: argument('admit', 4, '-1, 63') },
  { call: (m, r) => m.admit(r, new BigUint64Array(0), 1, { session: -2 }), native: argument('admit', 5, '-1, 2147483647') },
  { call: (m, r) => m.commit(r, -1), native: argument('commit', 1, INT32_RANGE) },
  { call: (m) => m.requestBlocks(999), native: same },
  { call: (m) => m.usedBlocks('gpu' as never), native: argument('usedBlocks', 0, '1, 2') },
  { call: (m) => m.evictableBlocks('gpu' as never), native: argument('evictableBlocks', 0, '1, 2') },
  { call: (m) => m.evict('device', -1), native: argument('evict', 1, INT32_RANGE) },
  { call: (m) => m.setAllScores(new Float32Array(m.numBlockIds + 1)), native: () => ({ threw: 'RangeError', message: /^setAllScores: expected \d+ scores \(one per block id\), got \d+$/ }) },
  { call: (m) => m.setAllScores(Float32Array.from({ length: m.numBlockIds }, (_, i) => (i === m.numBlockIds - 1 ? NaN : 0))), native: notFinite('setAllScores') },
  { call: (m) => m.setScores(new Int32Array(2), new Float32Array(1)), native: () => ({ threw: 'RangeError', message: /^setScores: ids and scores differ in length$/ }) },
  { call: (m) => m.setScoreClasses(Int32Array.of(0), Int32Array.of(m.maxClasses)), native: same },
  { call: (m) => m.setScoreClasses(Int32Array.of(0), Int32Array.of(-2)), native: same },
  { call: (m) => m.setScoreClasses(Int32Array.of(-1), Int32Array.of(-1)), native: same },
  { call: (m) => m.setClassScores(Int32Array.of(m.maxClasses), Float32Array.of(1)), native: same },
  // validate.ts checks every score before any class; the core checks class, then score, index by index.
  { call: (m) => m.setClassScores(Int32Array.of(0), Float32Array.of(Infinity)), native: (m) => (m.maxClasses > 0 ? notFinite('setClassScores')() : { threw: 'RangeError', message: /^setClassScores: class 0 at index 0 is out of range \[0, 0\)$/ }) },
  { call: (m) => m.demote(Int32Array.of(m.numBlockIds)), native: (m) => nativeIdRefusal('demote', m.numBlockIds, m) },
  { call: (m) => m.drop(Int32Array.of(firstFree(m))), native: (m) => nativeIdRefusal('drop', firstFree(m), m) },
  { call: (m) => m.load(Int32Array.of(0, -1)), native: (m) => nativeIdRefusal('load', m.metadata.tier[0] === Tier.Free ? 0 : -1, m) },
];

/** The core words a bad block id without its index (native/capi/test/capi_test.c states it so). */
function nativeIdRefusal(op: string, id: number, m: BlockManagerLike): { threw: string; message: RegExp } {
  if (id < 0 || id >= m.numBlockIds) return { threw: 'RangeError', message: new RegExp(`^${op}: block id ${id} is out of range \\[0, ${m.numBlockIds}\\)$`) };
  return { threw: 'RangeError', message: new RegExp(`^${op}: block id ${id} is not allocated$`) };
}

/** Operations, with refusals (`bad`) at `badWeight`. */
function ops(badWeight: number): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('admit' as const), request, tokens: fc.array(token, { minLength: 1, maxLength: 24 }), hashCount: fc.nat(30), workload: fc.integer({ min: -1, max: 2 }), agent: fc.integer({ min: -1, max: 63 }), session: fc.integer({ min: -1, max: 3 }) }) },
    // Hashes that repeat or do not chain: the manager must not trust them.
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('admitRaw' as const), request, hashes: fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 8 }), extraTokens: fc.nat(3) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('append' as const), request, tokens: fc.array(token, { maxLength: 8 }), hashAll: fc.boolean() }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('commit' as const), request, blocks: fc.nat(12) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('release' as const), request }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('lookup' as const), tokens: fc.array(token, { maxLength: 24 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('setScores' as const), ids: fc.array(fc.nat(47), { maxLength: 6 }), scores: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 6, maxLength: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('setAllScores' as const), seed: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('setScoreClasses' as const), ids: fc.array(fc.integer({ min: -1, max: 47 }), { maxLength: 6 }), classes: fc.array(fc.integer({ min: -2, max: 4 }), { minLength: 6, maxLength: 6 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('setClassScores' as const), classes: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 4 }), scores: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 4, maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('evict' as const), tier: fc.constantFrom('device' as const, 'host' as const), count: fc.nat(4) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('demote' as const, 'drop' as const, 'load' as const), ids: fc.array(id, { maxLength: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('take' as const) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('again' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('record' as const), on: fc.boolean() }) },
    { weight: badWeight, arbitrary: fc.record({ kind: fc.constant('bad' as const), which: fc.nat(REFUSALS.length - 1), request }) },
  );
}
const op = ops(1);

const config = fc.record({
  maxClasses: fc.constantFrom(0, 4),
  blockSize: fc.constantFrom(1, 2, 4),
  deviceBlocks: fc.integer({ min: 1, max: 24 }),
  hostBlocks: fc.integer({ min: 0, max: 24 }),
});

/** Runs one op; returns its result or the thrown error's class name. */
interface RequestTokens {
  tokens: number[];
  knownHashes: number;
}

function apply(m: BlockManagerLike, o: Op, tokensOf: Map<number, RequestTokens>): unknown {
  const requestId = (r: number) => r + 100;
  try {
    switch (o.kind) {
      case 'admit': {
        const hashes = hashTokenBlocks(o.tokens, m.blockSize);
        return m.admit(requestId(o.request), hashes.subarray(0, Math.min(o.hashCount, hashes.length)), o.tokens.length, {
          workload: o.workload, agent: o.agent, session: o.session,
        });
      }
      case 'admitRaw':
        return m.admit(requestId(o.request), BigUint64Array.from(o.hashes, BigInt), o.hashes.length * m.blockSize + o.extraTokens + 1);
      case 'append': {
        const before = tokensOf.get(o.request);
        const all = [...(before?.tokens ?? []), ...o.tokens];
        // Hashes of every full block not yet known to the manager, so the
        // chain stays consistent; or none, leaving them unknown.
        const hashes = o.hashAll ? hashTokenBlocks(all, m.blockSize).subarray(before?.knownHashes ?? 0) : new BigUint64Array(0);
        return m.append(requestId(o.request), o.tokens.length, hashes);
      }
      case 'commit': return m.commit(requestId(o.request), o.blocks);
      case 'release': return m.release(requestId(o.request));
      case 'lookup': return m.lookup(hashTokenBlocks(o.tokens, m.blockSize));
      case 'setScores': return m.setScores(Int32Array.from(o.ids), Float32Array.from(o.scores.slice(0, o.ids.length)));
      case 'setAllScores': return m.setAllScores(Float32Array.from({ length: m.numBlockIds }, (_, i) => ((i * 7 + o.seed) % 5) - 2));
      case 'setScoreClasses': return m.setScoreClasses(Int32Array.from(o.ids), Int32Array.from(o.classes.slice(0, o.ids.length)));
      case 'setClassScores': return m.setClassScores(Int32Array.from(o.classes), Float32Array.from(o.scores.slice(0, o.classes.length)));
      case 'evict': return m.evict(o.tier, o.count);
      case 'demote': return m.demote(Int32Array.from(o.ids));
      case 'drop': return m.drop(Int32Array.from(o.ids));
      case 'load': return m.load(Int32Array.from(o.ids));
      case 'take': return [m.takeCopyPlan(), m.takeEvents()];
      case 'again': return undefined;
      case 'record': return m.setRecordEvents!(o.on);
      case 'bad': return REFUSALS[o.which]!.call(m, requestId(o.request));
    }
  } catch (error) {
    return { threw: (error as Error).constructor.name, message: (error as Error).message };
  }
}

/** Tracks each live request's tokens and known hashes so appends can hash their new blocks. */
function track(o: Op, result: unknown, tokensOf: Map<number, RequestTokens>, blockSize: number): void {
  if (o.kind === 'admit' && result && !('threw' in (result as object))) {
    const full = Math.floor(o.tokens.length / blockSize);
    tokensOf.set(o.request, { tokens: [...o.tokens], knownHashes: Math.min(o.hashCount, full) });
  }
  if (o.kind === 'admitRaw' && result && !('threw' in (result as object))) {
    // Raw hashes match no token sequence; later appends add none.
    tokensOf.set(o.request, { tokens: new Array<number>(o.hashes.length * blockSize + o.extraTokens + 1).fill(9), knownHashes: Number.MAX_SAFE_INTEGER });
  }
  if (o.kind === 'append' && result instanceof Int32Array) {
    const before = tokensOf.get(o.request)!;
    const tokens = [...before.tokens, ...o.tokens];
    tokensOf.set(o.request, { tokens, knownHashes: o.hashAll ? Math.floor(tokens.length / blockSize) : before.knownHashes });
  }
  if (o.kind === 'release' && result === undefined) tokensOf.delete(o.request);
}

function metadataOf(m: BlockManagerLike): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const f of METADATA_FIELDS) out[f] = Array.from(m.metadata[f] as ArrayLike<unknown>);
  return out;
}

function stateOf(m: BlockManagerLike): unknown {
  return {
    clock: m.clock,
    requests: m.numRequests,
    used: [m.usedBlocks('device'), m.usedBlocks('host')],
    evictable: [m.evictableBlocks('device'), m.evictableBlocks('host')],
    pinned: m.pinnedDeviceBlocks(),
    metadata: metadataOf(m),
    classScores: Array.from(m.classScores),
  };
}

/** Invariants checked from the outside, independently of checkInvariants(). */
function checkVisibleInvariants(m: BlockManagerLike, pinnedBefore: Set<number>, events: { kind: Uint8Array; block: Int32Array }): void {
  const meta = m.metadata;
  let device = 0;
  let host = 0;
  for (let i = 0; i < m.numBlockIds; i++) {
    expect(meta.refCount[i]).toBeGreaterThanOrEqual(0);
    if (meta.tier[i] === Tier.Device) device++;
    if (meta.tier[i] === Tier.Host) host++;
    if (meta.tier[i] !== Tier.Free && meta.committed[i] && meta.parent[i]! >= 0) {
      const p = meta.parent[i]!;
      // Leaf-first: a cached block's parent is cached, and on device if it is.
      expect(meta.tier[p]).not.toBe(Tier.Free);
      if (meta.tier[i] === Tier.Device) expect(meta.tier[p]).toBe(Tier.Device);
    }
  }
  expect(device).toBeLessThanOrEqual(m.deviceBlocks);
  expect(host).toBeLessThanOrEqual(m.hostBlocks);
  // Pinned blocks are never evicted, demoted or dropped.
  for (let e = 0; e < events.kind.length; e++) {
    if (events.kind[e] === EventKind.Removed || events.kind[e] === EventKind.Demoted) {
      expect(pinnedBefore.has(events.block[e]!)).toBe(false);
    }
  }
}

type Thrown = { threw: string; message: string };
const isThrown = (value: unknown): value is Thrown => typeof value === 'object' && value !== null && 'threw' in value;

/**
 * What the bare native handle must answer where the reference answered
 * `want`: the same, except for refusals it words itself (see REFUSALS).
 */
function nativeAnswer(o: Op, want: unknown, before: BlockManagerLike): unknown {
  if (!isThrown(want)) return want;
  if (o.kind === 'bad') {
    const native = REFUSALS[o.which]!.native(before);
    return native === 'same' ? want : { threw: native.threw, message: expect.stringMatching(native.message) };
  }
  const id = /^(demote|drop|load): block id (-?\d+) at index \d+ is /.exec(want.message);
  if (id) {
    const native = nativeIdRefusal(id[1]!, Number(id[2]), before);
    return { threw: native.threw, message: expect.stringMatching(native.message) };
  }
  return want;
}

function run(options: BlockManagerOptions, ops: Op[], bare = false): void {
  const native: BlockManagerLike = bare ? new RawNativeManager(options) : new BlockManager(options);
  const reference = new ReferenceBlockManager(options);
  const tokensOf = new Map<number, RequestTokens>();
  let lastAdmit: Op | undefined;
  for (const next of ops) {
    const o = next.kind === 'again' ? (lastAdmit ?? next) : next;
    if (o.kind === 'admit' || o.kind === 'admitRaw') lastAdmit = o;
    const pinnedBefore = new Set<number>();
    native.metadata.refCount.forEach((r, i) => { if (r > 0) pinnedBefore.add(i); });
    // A refusal changes nothing, so the reference after it is the state the native refusal is judged in.
    const expected = (want: unknown) => (bare ? nativeAnswer(o, want, reference) : want);
    const got = apply(native, o, tokensOf);
    const want = apply(reference, o, tokensOf);
    expect(got, `${o.kind} result`).toEqual(expected(want));
    track(o, got, tokensOf, options.blockSize ?? 16);
    expect(stateOf(native)).toEqual(stateOf(reference));
    const plan = native.takeCopyPlan();
    expect(plan).toEqual(reference.takeCopyPlan());
    const events = native.takeEvents();
    expect(events).toEqual(reference.takeEvents());
    checkVisibleInvariants(native, pinnedBefore, events);
    expect(native.checkInvariants()).toBe('');
    expect(reference.checkInvariants()).toBe('');
  }
}

describe('native block manager against the reference model', () => {
  it('gives identical results on random operation sequences', () => {
    fc.assert(fc.property(config, fc.array(op, { minLength: 1, maxLength: 60 }), (c, ops) => run(c, ops)), {
      numRuns: 2000,
      seed: 20261125,
    });
  });

  it('gives identical results under heavy pressure (tiny tiers, long runs)', () => {
    const tight = fc.record({ maxClasses: fc.constant(4), blockSize: fc.constant(1), deviceBlocks: fc.integer({ min: 2, max: 6 }), hostBlocks: fc.integer({ min: 0, max: 4 }) });
    fc.assert(fc.property(tight, fc.array(op, { minLength: 50, maxLength: 200 }), (c, ops) => run(c, ops)), {
      numRuns: 300,
      seed: 7,
    });
  });

  it('decides the same with block events recorded or not', () => {
    // Two native managers, one recording no events: same results, same state after every operation.
    const recorded = (o: Op) => o.kind !== 'record' && o.kind !== 'take';
    fc.assert(
      fc.property(config, fc.array(op, { minLength: 1, maxLength: 80 }), (c, sequence) => {
        const [on, off] = [new BlockManager(c), new BlockManager(c)];
        off.setRecordEvents(false);
        const tokensOf = new Map<number, RequestTokens>();
        let lastAdmit: Op | undefined;
        for (const next of sequence.filter(recorded)) {
          const o = next.kind === 'again' ? (lastAdmit ?? next) : next;
          if (o.kind === 'admit' || o.kind === 'admitRaw') lastAdmit = o;
          const outcome = (m: BlockManagerLike) => {
            try {
              return apply(m, o, tokensOf);
            } catch (error) {
              return `threw ${(error as Error).message}`;
            }
          };
          const got = outcome(off);
          expect(got, `${o.kind} result`).toEqual(outcome(on));
          if (typeof got !== 'string') track(o, got, tokensOf, c.blockSize ?? 16);
          expect(stateOf(off)).toEqual(stateOf(on));
          expect(off.takeCopyPlan()).toEqual(on.takeCopyPlan());
          on.takeEvents();
          expect(off.takeEvents().kind).toHaveLength(0);
        }
      }),
      { numRuns: 500, seed: 20261206 },
    );
  });

  it('refuses with the reference\'s or the documented message, state unchanged, with no TypeScript checks in front', () => {
    // Refusals ten times as often as above, each from every class of check.
    fc.assert(fc.property(config, fc.array(ops(10), { minLength: 1, maxLength: 60 }), (c, sequence) => run(c, sequence, true)), {
      numRuns: 600,
      seed: 20261126,
    });
  });
});
