import { describe, expect, it } from 'vitest';

import { ReferenceSurvivalBackend } from '../../../src/compute/survival.js';
import { settingsOf, type CacheSageOptions } from '../../../src/policies/cachesage/options.js';
import { pendingSurvivalWork, reachAny, tableOf, type SurvivalTable } from '../../../src/policies/cachesage/tables.js';
import { END, START } from '../../../src/policies/cachesage/transitions.js';
import { workloadOf, type CacheSageState, type WorkloadState } from '../../../src/policies/cachesage/workload.js';

// States: START 0, END 1, a 2, b 3. The chain, in dyadic numbers so every
// value below is exact in float32:
//   START -> a 1/2, b 1/2;  a -> b 1/2, END 1/2;  b -> a 3/4, END 1/4.
const S = 0;
const E = 1;
const A = 2;
const B = 3;

const CHAIN = Float64Array.of(
  0, 0, 0.5, 0.5, //
  0, 1, 0, 0,
  0, 0.5, 0, 0.5,
  0, 0.25, 0.75, 0,
);

// F_1 = T. F_2(x, y) = T[x][y] + sum over c != y of T[x][c] F_1(c, y), e.g.
// F_2(START, a) = 1/2 + 1/2 * 3/4 and F_2(a, a) = 1/2 * 3/4 (a return visit).
const REACH = Float32Array.of(
  0, 0, 0.5, 0.5, //
  0, 1, 0, 0,
  0, 0.5, 0, 0.5,
  0, 0.25, 0.75, 0,
  0, 0.375, 0.875, 0.75, //
  0, 1, 0, 0,
  0, 0.625, 0.375, 0.5,
  0, 0.625, 0.75, 0.375,
);
// 1 - (T^h)[x][END], h = 1, 2.
const ALIVE = Float32Array.of(1, 0, 0.5, 0.75, 0.625, 0, 0.375, 0.375);

const HAND: SurvivalTable = { states: 4, horizon: 2, reach: REACH, alive: ALIVE, transitions: CHAIN };

/** A CacheSage state with no context, as the policy's parts see it. */
function state(options: CacheSageOptions = {}): CacheSageState {
  return {
    settings: settingsOf({ horizon: 2, alpha: 0, halfLife: Infinity, ...options }),
    context: null,
    workloads: new Map(),
    due: new Set(),
    expired: new Set(),
    reusedPrefix: new Map(),
    sessionSteps: new Map(),
    crossSession: null,
  };
}

/** Teaches `w` the chain above: with alpha 0 and no decay the counts are the probabilities. */
function learnChain(w: WorkloadState): void {
  const m = w.model;
  m.observeHandoff(START, 'a');
  m.observeHandoff(START, 'b');
  m.observeHandoff('a', 'b');
  m.observeHandoff('a', END);
  for (let i = 0; i < 3; i++) m.observeHandoff('b', 'a');
  m.observeHandoff('b', END);
}

/** Marks a workload due, as the policy does after refreshEvery hand-offs. */
function markDue(s: CacheSageState, w: WorkloadState): void {
  w.refreshDue = true;
  s.due.add(w);
}

describe('reachAny', () => {
  it('reads F_h(a, b) for one agent, at the horizon by default', () => {
    expect(reachAny(HAND, A, [B], 1)).toBe(0.5);
    expect(reachAny(HAND, A, [A], 1)).toBe(0);
    expect(reachAny(HAND, A, [A], 2)).toBe(0.375);
    expect(reachAny(HAND, A, [A])).toBe(0.375);
    expect(reachAny(HAND, B, [A])).toBe(0.75);
    expect(reachAny(HAND, E, [A])).toBe(0);
  });

  it('combines several agents as if their visits were independent', () => {
    // 1 - (1 - 1/2)(1 - 1/2): from START one of a, b surely runs next, but
    // the product of misses is what reachAny computes.
    expect(reachAny(HAND, S, [A, B], 1)).toBe(0.75);
    expect(reachAny(HAND, S, [A, B], 2)).toBe(1 - 0.125 * 0.25);
    expect(reachAny(HAND, B, [A, B], 2)).toBe(1 - 0.25 * 0.625);
    expect(reachAny(HAND, A, [], 2)).toBe(0);
  });

  it('agrees with the reference survival computation on the chain', () => {
    const out = new ReferenceSurvivalBackend().compute({
      workloads: 1,
      states: 4,
      horizon: 2,
      transitions: Float32Array.from(CHAIN),
      endState: Int32Array.of(E),
    });
    expect(out.reach).toEqual(REACH);
    expect(out.alive).toEqual(ALIVE);
  });
});

describe('tableOf', () => {
  it("computes a workload's first table at once from its model", () => {
    const s = state();
    const w = workloadOf(s, 'w');
    learnChain(w);
    const table = tableOf(s, w);
    expect(table).toEqual(HAND);
    expect(w.table).toBe(table);
    expect(w.handoffsSinceRefresh).toBe(0);
  });

  it('keeps the table for scoring until a new agent, and recomputes it fresh for predict', () => {
    const s = state();
    const w = workloadOf(s, 'w');
    learnChain(w);
    const first = tableOf(s, w);
    w.model.observeHandoff(START, 'a');
    w.handoffsSinceRefresh++;
    expect(tableOf(s, w)).toBe(first);
    const fresh = tableOf(s, w, true);
    expect(fresh).not.toBe(first);
    expect(fresh.transitions[S * 4 + A]).toBe(2 / 3);
    expect(tableOf(s, w, true)).toBe(fresh); // nothing moved since
    w.model.observeHandoff('a', 'c');
    expect(tableOf(s, w).states).toBe(5);
  });
});

describe('pendingSurvivalWork', () => {
  it('is null when no workload is due', () => {
    const s = state();
    tableOf(s, workloadOf(s, 'w'));
    expect(pendingSurvivalWork(s)).toBeNull();
  });

  it("batches a due workload once; apply installs its table and clears the due mark", () => {
    const s = state();
    const w = workloadOf(s, 'w');
    learnChain(w);
    tableOf(s, w);
    w.table = null; // forget it: the batch must bring it back
    markDue(s, w);
    const work = pendingSurvivalWork(s)!;
    expect(work.compute).toBeUndefined(); // the runtime's backend computes
    expect(work.input).toEqual({ workloads: 1, states: 4, horizon: 2, transitions: Float32Array.from(CHAIN), endState: Int32Array.of(E) });
    expect(s.due.size).toBe(0);
    expect(pendingSurvivalWork(s)).toBeNull();
    work.apply(new ReferenceSurvivalBackend().compute(work.input));
    expect(w.table).toEqual(HAND);
    expect(w.refreshDue).toBe(false);
  });

  it('computes with its own survival backend when one is pinned', () => {
    const s = state({ survival: 'reference' });
    const w = workloadOf(s, 'w');
    learnChain(w);
    markDue(s, w);
    const work = pendingSurvivalWork(s)!;
    work.apply(work.compute!(work.input));
    expect(w.table).toEqual(HAND);
  });

  it("pads a smaller workload with absorbing states: its table is the same alone or batched", () => {
    const alone = state();
    const small = workloadOf(alone, 'small');
    learnChain(small);
    markDue(alone, small);
    const single = pendingSurvivalWork(alone)!;
    single.apply(new ReferenceSurvivalBackend().compute(single.input));

    const both = state();
    const big = workloadOf(both, 'big');
    for (const [from, to] of [[START, 'x'], ['x', 'y'], ['y', 'z'], ['z', END]] as const) big.model.observeHandoff(from, to);
    const small2 = workloadOf(both, 'small');
    learnChain(small2);
    markDue(both, big);
    markDue(both, small2);
    const batch = pendingSurvivalWork(both)!;
    expect(batch.input.workloads).toBe(2);
    expect(batch.input.states).toBe(5);
    // small2's padding state 4: absorbing, and nothing moves into it.
    const padded = batch.input.transitions.subarray(25, 50);
    expect(Array.from(padded.subarray(20, 25))).toEqual([0, 0, 0, 0, 1]);
    expect([0, 1, 2, 3].map((a) => padded[a * 5 + 4])).toEqual([0, 0, 0, 0]);
    batch.apply(new ReferenceSurvivalBackend().compute(batch.input));
    expect(small2.table).toEqual(small.table);
    expect(small2.table).toEqual(HAND);
    expect(big.table!.states).toBe(5);
    expect(big.table!.reach[(1 * 5 + S) * 5 + 3]).toBe(1); // START reaches y (index 3) within 2 steps
  });

  it('leaves the old table when the model grew a state before the batch came back', () => {
    const s = state();
    const w = workloadOf(s, 'w');
    learnChain(w);
    const old = tableOf(s, w);
    markDue(s, w);
    const work = pendingSurvivalWork(s)!;
    w.model.observeHandoff('a', 'c');
    work.apply(new ReferenceSurvivalBackend().compute(work.input));
    expect(w.table).toBe(old);
    expect(tableOf(s, w).states).toBe(5); // the next read computes one with the new agent
  });
});
