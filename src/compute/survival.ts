/**
 * The batched survival computation (cachesage.md section 2): for every
 * workload, start state `a`, target state `b` and step count `h <= H`, the
 * probability that `b` runs within `h` steps, the probability the session is
 * still alive after `h` steps, and the expected steps until `b` runs.
 *
 * Every backend takes the same {@link SurvivalInput}, checked by
 * {@link validateSurvivalInput}, and is compared with
 * {@link ReferenceSurvivalBackend}.
 */
import { checkInt } from '../util/check.js';

/** Transition matrices of a batch of workloads, padded to one state count. */
export interface SurvivalInput {
  workloads: number;
  states: number;
  /** Steps to look ahead, H. */
  horizon: number;
  /**
   * workloads × states × states, row-major: `T[w][a][b]`. Rows sum to 1;
   * padding states are absorbing (`T[s][s] = 1`).
   */
  transitions: Float32Array;
  /** Per workload, the index of its END state. */
  endState: Int32Array;
}

/** The survival quantities of a batch, all row-major. */
export interface SurvivalOutput {
  /**
   * `[w][h-1][a][b]` for h = 1..H: `F_h(a, b)`, the probability that `b` is
   * visited in steps 1..h starting from `a` (a return visit counts when
   * `a = b`).
   */
  reach: Float32Array;
  /** `[w][h-1][a]` for h = 1..H: `1 - (T^h)[a][END]`. */
  alive: Float32Array;
  /**
   * `[w][a][b]`: `sum_{h=0}^{H-1} (1 - F_h(a, b))` with `F_0 = 0`, the
   * expected steps until `b` runs, truncated at H.
   */
  expectedSteps: Float32Array;
}

/** One way of computing {@link SurvivalOutput}. */
export interface SurvivalBackend {
  /** A short name for reports and benchmarks. */
  readonly name: string;
  /** Throws a TypeError or RangeError for input {@link validateSurvivalInput} refuses. */
  compute(input: SurvivalInput): SurvivalOutput;
}

/** Largest `states`. */
export const MAX_SURVIVAL_STATES = 1024;
/** Largest `horizon`. */
export const MAX_SURVIVAL_HORIZON = 256;
/** Largest `workloads`. */
export const MAX_SURVIVAL_WORKLOADS = 1 << 20;
/**
 * Largest `workloads × horizon × states²`, the length of `reach`: 2^28
 * floats, 1 GiB.
 */
export const MAX_SURVIVAL_REACH = 2 ** 28;
/** How far a row sum may be from 1. */
export const ROW_SUM_TOLERANCE = 1e-3;

/**
 * Checks a {@link SurvivalInput}: integer sizes in range, arrays of the right
 * type and length, finite non-negative entries, rows summing to 1 within
 * {@link ROW_SUM_TOLERANCE}, END indices in range. Throws a TypeError (wrong
 * type) or RangeError (wrong value) naming the first offender.
 */
export function validateSurvivalInput(input: unknown): SurvivalInput {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`survival: input must be an object, got ${input === null ? 'null' : typeof input}`);
  }
  const i = input as Partial<Record<keyof SurvivalInput, unknown>>;
  const workloads = checkInt(i.workloads, 'survival: workloads', 1, MAX_SURVIVAL_WORKLOADS);
  const states = checkInt(i.states, 'survival: states', 1, MAX_SURVIVAL_STATES);
  const horizon = checkInt(i.horizon, 'survival: horizon', 1, MAX_SURVIVAL_HORIZON);
  const reachLength = workloads * horizon * states * states;
  if (reachLength > MAX_SURVIVAL_REACH) {
    throw new RangeError(
      `survival: workloads x horizon x states^2 = ${reachLength} exceeds the limit ${MAX_SURVIVAL_REACH}`,
    );
  }
  const { transitions, endState } = i;
  if (!(transitions instanceof Float32Array)) throw new TypeError('survival: transitions must be a Float32Array');
  if (!(endState instanceof Int32Array)) throw new TypeError('survival: endState must be an Int32Array');
  const expected = workloads * states * states;
  if (transitions.length !== expected) {
    throw new RangeError(
      `survival: transitions has length ${transitions.length}, expected workloads x states^2 = ${expected}`,
    );
  }
  if (endState.length !== workloads) {
    throw new RangeError(`survival: endState has length ${endState.length}, expected workloads = ${workloads}`);
  }
  for (let w = 0; w < workloads; w++) {
    const end = endState[w]!;
    if (end < 0 || end >= states) {
      throw new RangeError(`survival: endState[${w}] = ${end} is out of range [0, ${states})`);
    }
    for (let a = 0; a < states; a++) {
      const row = (w * states + a) * states;
      let sum = 0;
      for (let b = 0; b < states; b++) {
        const p = transitions[row + b]!;
        if (!Number.isFinite(p) || p < 0) {
          throw new RangeError(
            `survival: transitions[${row + b}] (workload ${w}, row ${a}, column ${b}) must be finite and >= 0, got ${p}`,
          );
        }
        sum += p;
      }
      if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
        throw new RangeError(`survival: row ${a} of workload ${w} sums to ${sum}, expected 1 within ${ROW_SUM_TOLERANCE}`);
      }
    }
  }
  return { workloads, states, horizon, transitions, endState };
}

/**
 * `1 - sum_b T[w][a][b]` per row, summed in float64. Float32 backends add
 * it back in their miss and alive recursions, which keeps those equal to
 * `1 - F` and `1 - (T^h)[a][END]` for rows that do not sum to exactly 1.
 */
export function rowDeficits(transitions: Float32Array, workloads: number, n: number): Float32Array {
  const deficit = new Float32Array(workloads * n);
  for (let row = 0; row < workloads * n; row++) {
    let sum = 0;
    for (let b = row * n, end = b + n; b < end; b++) sum += transitions[b]!;
    deficit[row] = 1 - sum;
  }
  return deficit;
}

/**
 * The survival computation in plain TypeScript, written for clarity: the
 * oracle every other backend is checked against.
 *
 * For each target `b` it runs the first-visit recursion
 * `f_h(a) = T[a][b] + sum_{c != b} T[a][c] f_{h-1}(c)`, `f_0 = 0`, which is
 * `(T_b^h)[a][b]` for `T` with row `b` made absorbing: O(n^3 H) per
 * workload. `alive` propagates `(T^h)[a][END] = sum_c T[a][c] (T^{h-1})[c][END]`
 * separately. Everything accumulates in float64.
 */
export class ReferenceSurvivalBackend implements SurvivalBackend {
  readonly name = 'reference';

  compute(input: SurvivalInput): SurvivalOutput {
    const { workloads, states: n, horizon, transitions, endState } = validateSurvivalInput(input);
    const reach = new Float32Array(workloads * horizon * n * n);
    const alive = new Float32Array(workloads * horizon * n);
    const expectedSteps = new Float32Array(workloads * n * n);
    const T = new Float64Array(n * n);
    let previous = new Float64Array(n);
    let current = new Float64Array(n);
    const expected = new Float64Array(n);

    for (let w = 0; w < workloads; w++) {
      for (let k = 0; k < n * n; k++) T[k] = transitions[w * n * n + k]!;

      for (let b = 0; b < n; b++) {
        previous.fill(0); // f_0
        expected.fill(1); // the h = 0 term, 1 - F_0
        for (let h = 1; h <= horizon; h++) {
          for (let a = 0; a < n; a++) {
            let f = T[a * n + b]!;
            for (let c = 0; c < n; c++) {
              if (c !== b) f += T[a * n + c]! * previous[c]!;
            }
            current[a] = f;
          }
          for (let a = 0; a < n; a++) {
            reach[((w * horizon + h - 1) * n + a) * n + b] = current[a]!;
            if (h < horizon) expected[a]! += 1 - current[a]!;
          }
          [previous, current] = [current, previous];
        }
        for (let a = 0; a < n; a++) expectedSteps[(w * n + a) * n + b] = expected[a]!;
      }

      const end = endState[w]!;
      previous.fill(0);
      previous[end] = 1; // (T^0)[a][END]
      for (let h = 1; h <= horizon; h++) {
        for (let a = 0; a < n; a++) {
          let g = 0;
          for (let c = 0; c < n; c++) g += T[a * n + c]! * previous[c]!;
          current[a] = g;
        }
        for (let a = 0; a < n; a++) alive[(w * horizon + h - 1) * n + a] = 1 - current[a]!;
        [previous, current] = [current, previous];
      }
    }
    return { reach, alive, expectedSteps };
  }
}
