/**
 * Survival tables: F_h(a, b), the probability that a session at agent a
 * runs agent b within h steps, and P(alive after h steps), per workload.
 * A workload's first table (or one for a new agent) is computed at once on
 * the CPU; later ones are refreshed every refreshEvery hand-offs, batched
 * over every due workload onto the runtime's compute backend.
 */
import type { SurvivalOutput } from '../../compute/survival.js';
import type { SurvivalWork } from '../types.js';
import { END_INDEX } from './transitions.js';
import type { CacheSageState, WorkloadState } from './workload.js';

export interface SurvivalTable {
  states: number;
  horizon: number;
  /** F_h(a,b) for h = 1..H, [h-1][a][b]. */
  reach: Float32Array;
  alive: Float32Array;
  transitions: Float64Array;
}

/**
 * The due workloads' tables as one survival batch, padded to one state
 * count with absorbing states (they add exact zeros to every sum, so a
 * workload's table is the same alone or batched).
 */
export function pendingSurvivalWork(state: CacheSageState): SurvivalWork | null {
  const due = [...state.due].filter((w) => w.refreshDue);
  state.due.clear();
  if (due.length === 0) return null;
  const { horizon, survival, ownSurvival } = state.settings;
  const states = Math.max(...due.map((w) => w.model.states));
  const transitions = new Float32Array(due.length * states * states);
  const models = due.map((w, i) => {
    const n = w.model.states;
    const matrix = w.model.transitionMatrix();
    const base = i * states * states;
    for (let a = 0; a < states; a++) {
      for (let b = 0; b < states; b++) {
        transitions[base + a * states + b] = a < n && b < n ? matrix[a * n + b]! : a === b ? 1 : 0;
      }
    }
    return { w, n, matrix };
  });
  const input = {
    workloads: due.length,
    states,
    horizon,
    transitions,
    endState: new Int32Array(due.length).fill(END_INDEX),
  };
  const apply = (out: SurvivalOutput): void => {
    const H = horizon;
    models.forEach(({ w, n, matrix }, i) => {
      if (!w.refreshDue) return;
      const reach = new Float32Array(H * n * n);
      const alive = new Float32Array(H * n);
      for (let h = 0; h < H; h++) {
        for (let a = 0; a < n; a++) {
          const from = ((i * H + h) * states + a) * states;
          reach.set(out.reach.subarray(from, from + n), (h * n + a) * n);
        }
        alive.set(out.alive.subarray((i * H + h) * states, (i * H + h) * states + n), h * n);
      }
      // The model may have grown a state meanwhile: then the old table
      // stands and the next tableOf() computes a new one.
      if (w.model.states === n) install(state, w, { states: n, horizon: H, reach, alive, transitions: matrix });
    });
  };
  return ownSurvival ? { input, apply, compute: (i) => survival.compute(i) } : { input, apply };
}

function install(state: CacheSageState, w: WorkloadState, table: SurvivalTable): void {
  w.table = table;
  w.handoffsSinceRefresh = 0;
  w.refreshDue = false;
  w.sharedReach.clear();
  const ctx = state.context;
  if (ctx && w.id >= 0) {
    // Each session's private classes pick up the new table at that
    // session's next event, which keeps this O(shared classes).
    ctx.invalidate(ctx.classesOfWorkload(w.id));
    w.sharedChanges = 0;
    w.sharedShifted = false;
  }
}

/**
 * The workload's survival table. Scoring reuses it for up to refreshEvery
 * hand-offs; `fresh` (for predict) recomputes it when anything changed.
 */
export function tableOf(state: CacheSageState, w: WorkloadState, fresh = false): SurvivalTable {
  if (w.table && w.table.states === w.model.states && !(fresh && w.handoffsSinceRefresh > 0)) return w.table;
  // A first table, a new agent's, or predict's fresh one: computed here,
  // on the CPU (one small workload is below any GPU crossover).
  const { horizon, survival } = state.settings;
  const states = w.model.states;
  const transitions = w.model.transitionMatrix();
  // START has no incoming edges; as a row it is the distribution of first agents.
  const input = {
    workloads: 1,
    states,
    horizon,
    transitions: Float32Array.from(transitions),
    endState: Int32Array.of(END_INDEX),
  };
  const out = survival.compute(input);
  w.table = { states, horizon, reach: out.reach, alive: out.alive, transitions };
  w.handoffsSinceRefresh = 0;
  w.refreshDue = false;
  return w.table;
}

/** P(some agent of `agents` runs within h steps from state a). */
export function reachAny(table: SurvivalTable, a: number, agents: readonly number[], h = table.horizon): number {
  let none = 1;
  const base = (h - 1) * table.states * table.states + a * table.states;
  for (const b of agents) none *= 1 - table.reach[base + b]!;
  return 1 - none;
}
