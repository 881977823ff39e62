import { describe, expect, it } from 'vitest';

import {
  END,
  END_INDEX,
  MAX_STATES,
  START,
  START_INDEX,
  TransitionModel,
  type TransitionEndpoint,
} from '../../../src/policies/cachesage/transitions.js';
import { seededRandom as rng } from '../../../src/util/random.js';


/** A true chain by name; missing entries are 0, END is absorbing. */
type Chain = Record<string, Record<string, number>>;

const CHAIN_1: Chain = {
  START: { A: 0.7, B: 0.3 },
  A: { A: 0.1, B: 0.5, C: 0.3, END: 0.1 },
  B: { A: 0.4, C: 0.4, END: 0.2 },
  C: { A: 0.3, B: 0.3, C: 0.1, END: 0.3 },
};

// Same agents, different structure: what CHAIN_1 drifts to.
const CHAIN_2: Chain = {
  START: { B: 0.6, C: 0.4 },
  A: { C: 0.6, END: 0.4 },
  B: { A: 0.1, B: 0.5, END: 0.4 },
  C: { A: 0.7, C: 0.1, END: 0.2 },
};

const endpoint = (name: string): TransitionEndpoint => (name === 'START' ? START : name === 'END' ? END : name);

/** Walks sessions of `chain`, feeding `handoffs` hand-offs to the model. */
class Sessions {
  #current = 'START';
  constructor(readonly rand: () => number) {}

  run(model: TransitionModel, chain: Chain, handoffs: number): void {
    for (let i = 0; i < handoffs; i++) {
      const row = chain[this.#current]!;
      let u = this.rand();
      let next = 'END';
      for (const [to, p] of Object.entries(row)) {
        if (u < p) {
          next = to;
          break;
        }
        u -= p;
      }
      model.observeHandoff(endpoint(this.#current), endpoint(next));
      this.#current = next === 'END' ? 'START' : next;
    }
  }
}

/** Largest |learned - true| over every transition out of START and the agents. */
function maxError(model: TransitionModel, chain: Chain): number {
  let worst = 0;
  for (const from of ['START', 'A', 'B', 'C']) {
    for (const to of ['END', 'A', 'B', 'C']) {
      const truth = chain[from]![to] ?? 0;
      worst = Math.max(worst, Math.abs(model.probability(endpoint(from), endpoint(to)) - truth));
    }
  }
  return worst;
}

function matrixRow(model: TransitionModel, index: number): number[] {
  const n = model.states;
  return [...model.transitionMatrix().subarray(index * n, index * n + n)];
}

describe('TransitionModel learning', () => {
  it('converges to a known chain with no decay', () => {
    const model = new TransitionModel({ halfLife: Infinity });
    new Sessions(rng(1)).run(model, CHAIN_1, 20_000);
    expect(model.handoffs).toBe(20_000);
    expect(maxError(model, CHAIN_1)).toBeLessThan(0.02);
  });

  it('converges to a second chain whose sessions are long', () => {
    const chain: Chain = {
      START: { A: 1 },
      A: { A: 0.2, B: 0.75, END: 0.05 },
      B: { A: 0.9, END: 0.1 },
    };
    const model = new TransitionModel({ halfLife: Infinity });
    new Sessions(rng(2)).run(model, chain, 20_000);
    for (const from of ['START', 'A', 'B']) {
      for (const to of ['END', 'A', 'B']) {
        expect(Math.abs(model.probability(endpoint(from), endpoint(to)) - (chain[from]![to] ?? 0))).toBeLessThan(0.02);
      }
    }
  });

  it('follows drift within 0.1 after five half-lives, where an undecayed model stays over 0.25 off', () => {
    const decayed = new TransitionModel({ halfLife: 2000 });
    const undecayed = new TransitionModel({ halfLife: Infinity });
    const a = new Sessions(rng(3));
    const b = new Sessions(rng(3));
    a.run(decayed, CHAIN_1, 20_000);
    b.run(undecayed, CHAIN_1, 20_000);
    expect(maxError(decayed, CHAIN_1)).toBeLessThan(0.05);
    a.run(decayed, CHAIN_2, 10_000);
    b.run(undecayed, CHAIN_2, 10_000);
    expect(maxError(decayed, CHAIN_2)).toBeLessThan(0.1);
    expect(maxError(undecayed, CHAIN_2)).toBeGreaterThan(0.25);
  });
});

describe('TransitionModel counts and matrix', () => {
  it('normalises counts plus the prior over the states a row may move to', () => {
    const model = new TransitionModel({ halfLife: Infinity, alpha: 0.5 });
    model.observeHandoff(START, 'a');
    model.observeHandoff('a', 'b');
    model.observeHandoff('b', 'a');
    model.observeHandoff('a', 'b');
    model.observeHandoff('a', END);
    // States: START, END, a, b. Row a: counts END 1, a 0, b 2; prior 0.5 on 3 states.
    expect(model.count('a', 'b')).toBe(2);
    expect(model.probability('a', 'b')).toBeCloseTo(2.5 / 4.5, 15);
    expect(model.probability('a', END)).toBeCloseTo(1.5 / 4.5, 15);
    expect(model.probability('a', 'a')).toBeCloseTo(0.5 / 4.5, 15);
    expect(model.probability('a', START)).toBe(0);
    expect(matrixRow(model, 2)).toEqual([0, 1.5 / 4.5, 0.5 / 4.5, 2.5 / 4.5]);
    expect(model.probability('a', 'b', 0)).toBeCloseTo(2 / 3, 15);
  });

  it('keeps START and END apart from the agents', () => {
    const model = new TransitionModel();
    expect(model.states).toBe(2);
    expect([...model.transitionMatrix()]).toEqual([0, 1, 0, 1]);
    model.observeHandoff(START, 'START');
    model.observeHandoff('START', 'END');
    model.observeHandoff('END', END);
    expect(model.agents).toEqual(['START', 'END']);
    expect(model.indexOf(START)).toBe(START_INDEX);
    expect(model.indexOf(END)).toBe(END_INDEX);
    expect(model.indexOf('START')).toBe(2);
    expect(model.indexOf('END')).toBe(3);
    const n = model.states;
    const matrix = model.transitionMatrix();
    for (let i = 0; i < n; i++) {
      expect(matrix[i * n + START_INDEX]).toBe(0);
      expect(matrix.subarray(i * n, i * n + n).reduce((s, p) => s + p, 0)).toBeCloseTo(1, 14);
    }
    expect(matrixRow(model, END_INDEX)).toEqual([0, 1, 0, 0]);
    expect(model.probability(END, END)).toBe(1);
    expect(model.probability(END, 'START')).toBe(0);
    expect(model.probability(START, START)).toBe(0);
  });

  it('records a session that ends without a step', () => {
    const model = new TransitionModel({ halfLife: Infinity, alpha: 0 });
    model.observeHandoff(START, END);
    expect(model.probability(START, END)).toBe(1);
  });

  it('refuses hand-offs out of END or into START', () => {
    const model = new TransitionModel();
    expect(() => model.observeHandoff(END, 'a')).toThrow(RangeError);
    expect(() => model.observeHandoff('a', START)).toThrow(/nothing hands off to START/);
    expect(() => model.observeHandoff(3 as unknown as string, 'a')).toThrow(TypeError);
    expect(model.handoffs).toBe(0);
    expect(model.states).toBe(2);
  });

  it('treats an unseen agent as an error when asked for a probability', () => {
    const model = new TransitionModel();
    model.observeHandoff(START, 'a');
    expect(model.hasAgent('a')).toBe(true);
    expect(model.hasAgent('b')).toBe(false);
    expect(model.indexOf('b')).toBeUndefined();
    expect(() => model.probability('a', 'b')).toThrow(/unknown agent "b"/);
    expect(model.count('a', 'b')).toBe(0);
  });

  it('uses a uniform row where there is neither count nor prior', () => {
    const model = new TransitionModel({ alpha: 0 });
    model.agentIndex('a');
    model.agentIndex('b');
    expect(matrixRow(model, 2)).toEqual([0, 1 / 3, 1 / 3, 1 / 3]);
    expect(model.probability('a', 'b')).toBeCloseTo(1 / 3, 15);
  });

  it('validates options and alpha', () => {
    expect(() => new TransitionModel({ halfLife: 0.5 })).toThrow(RangeError);
    expect(() => new TransitionModel({ halfLife: NaN })).toThrow(RangeError);
    expect(() => new TransitionModel({ alpha: -0.1 })).toThrow(RangeError);
    expect(() => new TransitionModel({ alpha: Infinity })).toThrow(RangeError);
    expect(() => new TransitionModel({ alpha: '1' as unknown as number })).toThrow(TypeError);
    expect(() => new TransitionModel(null as unknown as object)).toThrow(TypeError);
    expect(() => new TransitionModel().transitionMatrix(-1)).toThrow(RangeError);
    expect(new TransitionModel().halfLife).toBe(500);
    expect(new TransitionModel().alpha).toBe(0.1);
  });
});

describe('TransitionModel decay', () => {
  it('halves a count after one half-life of hand-offs', () => {
    const model = new TransitionModel({ halfLife: 10, alpha: 0 });
    model.observeHandoff('a', 'b');
    for (let i = 0; i < 10; i++) model.observeHandoff('a', 'a');
    expect(model.count('a', 'b')).toBeCloseTo(0.5, 12);
    // Every hand-off ages every count, whichever row it lands in.
    for (let i = 0; i < 10; i++) model.observeHandoff('b', 'b');
    expect(model.count('a', 'b')).toBeCloseTo(0.25, 12);
  });

  it('stays finite and exact over many more half-lives than a double can scale', () => {
    const model = new TransitionModel({ halfLife: 1, alpha: 0 });
    for (let i = 0; i < 5000; i++) model.observeHandoff('a', i % 2 === 0 ? 'b' : 'c');
    // The last hand-off (a -> c) weighs 1, the one before it 1/2, then 1/4...
    expect(model.count('a', 'c')).toBeCloseTo(4 / 3, 12);
    expect(model.count('a', 'b')).toBeCloseTo(2 / 3, 12);
    expect(model.probability('a', 'c')).toBeCloseTo(2 / 3, 12);
    expect([...model.transitionMatrix()].every(Number.isFinite)).toBe(true);
  });
});

describe('TransitionModel growth', () => {
  it('adds agents in order of first appearance and keeps their counts as the matrix grows', () => {
    const model = new TransitionModel({ halfLife: Infinity, alpha: 0 });
    expect(model.agentIndex('planner')).toBe(2);
    model.observeHandoff(START, 'planner');
    model.observeHandoff('planner', 'coder');
    expect(model.agentIndex('coder')).toBe(3);
    const names = Array.from({ length: 40 }, (_, i) => `tool-${i}`);
    let previous = 'coder';
    for (const name of names) {
      model.observeHandoff(previous, name);
      previous = name;
    }
    model.observeHandoff(previous, END);
    expect(model.states).toBe(44);
    expect(model.agents).toEqual(['planner', 'coder', ...names]);
    names.forEach((name, i) => expect(model.indexOf(name)).toBe(4 + i));
    expect(model.count(START, 'planner')).toBe(1);
    expect(model.count('planner', 'coder')).toBe(1);
    expect(model.count('coder', 'tool-0')).toBe(1);
    expect(model.count('tool-39', END)).toBe(1);
    const matrix = model.transitionMatrix();
    expect(matrix.length).toBe(44 * 44);
    expect(matrix[3 * 44 + 4]).toBe(1);
    expect(matrix[43 * 44 + END_INDEX]).toBe(1);
  });

  it(`holds at most ${MAX_STATES} states`, () => {
    const model = new TransitionModel();
    for (let i = 0; i < MAX_STATES - 2; i++) model.agentIndex(`agent-${i}`);
    expect(model.states).toBe(MAX_STATES);
    expect(() => model.agentIndex('one-too-many')).toThrow(RangeError);
    expect(model.agentIndex('agent-0')).toBe(2);
  });
});

describe('TransitionModel snapshots', () => {
  function trained(): TransitionModel {
    const model = new TransitionModel({ halfLife: 300, alpha: 0.2 });
    new Sessions(rng(4)).run(model, CHAIN_1, 3000);
    return model;
  }

  it('round-trips through JSON text and keeps learning the same way', () => {
    const model = trained();
    const restored = TransitionModel.fromJSON(JSON.parse(JSON.stringify(model)));
    expect(restored.halfLife).toBe(300);
    expect(restored.alpha).toBe(0.2);
    expect(restored.handoffs).toBe(model.handoffs);
    expect(restored.agents).toEqual(model.agents);
    expect(restored.toJSON()).toEqual(model.toJSON());
    const a = new Sessions(rng(5));
    const b = new Sessions(rng(5));
    a.run(model, CHAIN_2, 500);
    b.run(restored, CHAIN_2, 500);
    const m1 = model.transitionMatrix();
    const m2 = restored.transitionMatrix();
    for (let k = 0; k < m1.length; k++) expect(Math.abs(m1[k]! - m2[k]!)).toBeLessThan(1e-12);
  });

  it('keeps no decay as null, which JSON can hold', () => {
    const model = new TransitionModel({ halfLife: Infinity });
    model.observeHandoff(START, 'a');
    const snapshot = model.toJSON();
    expect(snapshot.halfLife).toBeNull();
    expect(TransitionModel.fromJSON(JSON.parse(JSON.stringify(snapshot))).halfLife).toBe(Infinity);
  });

  it('refuses a corrupt snapshot with a precise error', () => {
    const good = trained().toJSON();
    const n = good.agents.length + 2;
    const cases: [string, (s: Record<string, unknown>) => void, RegExp, typeof TypeError | typeof RangeError][] = [
      ['wrong format', (s) => (s.format = 'other'), /format must be/, TypeError],
      ['wrong version', (s) => (s.version = 2), /unsupported version 2/, RangeError],
      ['bad half-life', (s) => (s.halfLife = 0), /halfLife must be >= 1/, RangeError],
      ['bad alpha', (s) => (s.alpha = -1), /alpha must be finite/, RangeError],
      ['fractional hand-offs', (s) => (s.handoffs = 1.5), /handoffs must be an integer/, RangeError],
      ['agents not an array', (s) => (s.agents = 'A,B'), /agents must be an array/, TypeError],
      ['agent not a string', (s) => ((s.agents as unknown[])[1] = 7), /agents\[1\] must be a string/, TypeError],
      ['duplicate agent', (s) => ((s.agents as unknown[])[1] = (s.agents as unknown[])[0]), /appears twice/, RangeError],
      ['short counts', (s) => (s.counts as unknown[]).pop(), new RegExp(`expected ${n * n}`), RangeError],
      ['NaN count (null in JSON)', (s) => ((s.counts as unknown[])[5] = null), /counts\[5\] must be a number/, TypeError],
      ['negative count', (s) => ((s.counts as unknown[])[5] = -1), /counts\[5\] must be finite and >= 0/, RangeError],
      ['transition into START', (s) => ((s.counts as unknown[])[2 * n] = 1), /into START/, RangeError],
      ['transition out of END', (s) => ((s.counts as unknown[])[n + 2] = 1), /out of END/, RangeError],
    ];
    for (const [label, corrupt, message, type] of cases) {
      const snapshot = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
      corrupt(snapshot);
      const attempt = () => TransitionModel.fromJSON(snapshot);
      expect(attempt, label).toThrow(message);
      expect(attempt, label).toThrow(type);
    }
    expect(() => TransitionModel.fromJSON(null)).toThrow(TypeError);
    expect(() => TransitionModel.fromJSON([])).toThrow(TypeError);
  });
});
