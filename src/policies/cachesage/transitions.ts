/**
 * The agent transition model of one workload, learned online from step
 * hand-offs (cachesage.md section 1).
 *
 * States are `START` (index 0), `END` (index 1) and then the workload's
 * agents in order of first appearance. Counts decay exponentially with a
 * half-life measured in hand-offs, so the model follows drift; the transition
 * matrix is the row-normalised counts plus a small Dirichlet prior.
 */
import { checkInt } from '../../util/check.js';

/** The state every session starts in; nothing transitions into it. */
export const START: unique symbol = Symbol('cachesage.START');
/** The absorbing state a session ends in. */
export const END: unique symbol = Symbol('cachesage.END');

/** Index of {@link START} in every transition matrix. */
export const START_INDEX = 0;
/** Index of {@link END} in every transition matrix. */
export const END_INDEX = 1;

/**
 * The most states (agents plus `START` and `END`) one model holds: the
 * survival computation's limit, so any model can be fed to it.
 */
export const MAX_STATES = 1024;

/** An agent name or one of the sentinels. */
export type TransitionEndpoint = string | typeof START | typeof END;

/** Options of a {@link TransitionModel}. */
export interface TransitionModelOptions {
  /**
   * Hand-offs after which an observation weighs half as much; at least 1.
   * `Infinity` keeps every observation at full weight. Default 500.
   */
  halfLife?: number;
  /** Dirichlet prior added to every allowed transition; finite, >= 0. Default 0.1. */
  alpha?: number;
}

/** The JSON form of a {@link TransitionModel}, from {@link TransitionModel.toJSON}. */
export interface TransitionSnapshot {
  format: 'cachesage.transitions';
  version: 1;
  /** `null` stands for `Infinity` (no decay), which JSON cannot hold. */
  halfLife: number | null;
  alpha: number;
  handoffs: number;
  /** Agent names in state order, from index 2. */
  agents: string[];
  /** Decayed counts, states × states row-major. */
  counts: number[];
}

const DEFAULT_HALF_LIFE = 500;
const DEFAULT_ALPHA = 0.1;
// The scale grows by 2^(1/halfLife) per hand-off; folding it back into the
// counts at 2^128 keeps every value far from overflow while costing one
// O(n^2) pass every 128 half-lives.
const RENORMALISE_AT = 2 ** 128;
const SNAPSHOT_FORMAT = 'cachesage.transitions';

function checkHalfLife(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (Number.isNaN(value) || value < 1) throw new RangeError(`${name} must be >= 1 or Infinity, got ${value}`);
  return value;
}

function checkAlpha(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be finite and >= 0, got ${value}`);
  return value;
}

function endpointLabel(endpoint: TransitionEndpoint): string {
  if (endpoint === START) return 'START';
  if (endpoint === END) return 'END';
  return JSON.stringify(endpoint);
}

/**
 * Transition counts and probabilities between the agents of one workload.
 *
 * Each hand-off costs O(1): instead of multiplying every count by the decay
 * factor, new observations are added with a weight that grows by the inverse
 * factor, and counts are read divided by the current weight.
 *
 * @example
 * ```ts
 * const model = new TransitionModel({ halfLife: 1000 });
 * model.observeHandoff(START, 'planner');
 * model.observeHandoff('planner', 'coder');
 * model.observeHandoff('coder', END);
 * const T = model.transitionMatrix(); // Float64Array, states × states
 * model.probability('planner', 'coder');
 * ```
 */
export class TransitionModel {
  /** Hand-offs after which an observation weighs half as much. */
  readonly halfLife: number;
  /** The default Dirichlet prior of {@link transitionMatrix} and {@link probability}. */
  readonly alpha: number;

  readonly #growth: number;
  readonly #agents: string[] = [];
  readonly #index = new Map<string, number>();
  #capacity = 4;
  // Counts scaled by #scale: the decayed count is #raw[i] / #scale.
  #raw = new Float64Array(this.#capacity * this.#capacity);
  #rowRaw = new Float64Array(this.#capacity);
  #scale = 1;
  #handoffs = 0;
  // Shared learning: counts other replicas observed, by row state then
  // column state, added when probabilities are read (setPeerCounts).
  #peerRows = new Map<number, Float64Array>();
  #peerTotals = new Map<number, number>();

  constructor(options: TransitionModelOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('TransitionModel: options must be an object');
    }
    this.halfLife = checkHalfLife(options.halfLife ?? DEFAULT_HALF_LIFE, 'TransitionModel: options.halfLife');
    this.alpha = checkAlpha(options.alpha ?? DEFAULT_ALPHA, 'TransitionModel: options.alpha');
    this.#growth = this.halfLife === Infinity ? 1 : 2 ** (1 / this.halfLife);
  }

  /** Number of states: agents plus `START` and `END`. */
  get states(): number {
    return this.#agents.length + 2;
  }

  /** Agent names in state order (the agent at index i + 2 is `agents[i]`). */
  get agents(): readonly string[] {
    return this.#agents;
  }

  /** Hand-offs observed so far, undecayed. */
  get handoffs(): number {
    return this.#handoffs;
  }

  /** Whether `name` has been seen. */
  hasAgent(name: string): boolean {
    return this.#index.has(name);
  }

  /** The state index of `name`, adding it as a new agent when unseen. */
  agentIndex(name: string): number {
    if (typeof name !== 'string') throw new TypeError(`TransitionModel: agent name must be a string, got ${typeof name}`);
    const known = this.#index.get(name);
    if (known !== undefined) return known;
    const index = this.states;
    if (index >= MAX_STATES) {
      throw new RangeError(`TransitionModel: cannot add agent ${JSON.stringify(name)}: at most ${MAX_STATES - 2} agents`);
    }
    if (index >= this.#capacity) this.#grow(Math.min(MAX_STATES, this.#capacity * 2));
    this.#agents.push(name);
    this.#index.set(name, index);
    return index;
  }

  /**
   * The state index of an endpoint without adding it; `undefined` for an
   * unseen agent.
   */
  indexOf(endpoint: TransitionEndpoint): number | undefined {
    if (endpoint === START) return START_INDEX;
    if (endpoint === END) return END_INDEX;
    if (typeof endpoint !== 'string') {
      throw new TypeError(`TransitionModel: an endpoint must be an agent name, START or END, got ${typeof endpoint}`);
    }
    return this.#index.get(endpoint);
  }

  /**
   * Records one hand-off of a session: `START -> first agent`, `agent ->
   * next agent`, or `last agent -> END`. Unseen agents are added.
   */
  observeHandoff(from: TransitionEndpoint, to: TransitionEndpoint): void {
    if (from === END) throw new RangeError('TransitionModel.observeHandoff: END has no successor (a hand-off cannot start at END)');
    if (to === START) throw new RangeError('TransitionModel.observeHandoff: nothing hands off to START');
    const i = this.#intern(from);
    const j = this.#intern(to);
    this.#handoffs++;
    this.#scale *= this.#growth;
    this.#raw[i * this.#capacity + j]! += this.#scale;
    this.#rowRaw[i]! += this.#scale;
    if (this.#scale >= RENORMALISE_AT) this.#renormalise();
  }

  /** The decayed count of `from -> to` hand-offs (0 for unseen agents). */
  count(from: TransitionEndpoint, to: TransitionEndpoint): number {
    const i = this.indexOf(from);
    const j = this.indexOf(to);
    if (i === undefined || j === undefined) return 0;
    return this.#raw[i * this.#capacity + j]! / this.#scale;
  }

  /**
   * `T = normalize(C + alpha)` as a states × states row-major matrix. The
   * prior covers every transition that can happen: the `START` column is
   * zero and the `END` row is absorbing. A row with neither counts nor prior
   * is uniform over the states it may move to.
   */
  transitionMatrix(alpha: number = this.alpha): Float64Array {
    checkAlpha(alpha, 'TransitionModel.transitionMatrix: alpha');
    const n = this.states;
    const matrix = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      if (i === END_INDEX) {
        matrix[i * n + END_INDEX] = 1;
        continue;
      }
      this.#fillRow(i, alpha, matrix, i * n);
    }
    return matrix;
  }

  /** `T[from][to]` with prior `alpha`; unseen agents are a RangeError. */
  probability(from: TransitionEndpoint, to: TransitionEndpoint, alpha: number = this.alpha): number {
    checkAlpha(alpha, 'TransitionModel.probability: alpha');
    const i = this.#known(from, 'probability');
    const j = this.#known(to, 'probability');
    if (i === END_INDEX) return j === END_INDEX ? 1 : 0;
    if (j === START_INDEX) return 0;
    const denominator = this.#rowRaw[i]! / this.#scale + this.#peerTotal(i) + alpha * (this.states - 1);
    if (denominator === 0) return 1 / (this.states - 1);
    return (this.#raw[i * this.#capacity + j]! / this.#scale + this.#peerAt(i, j) + alpha) / denominator;
  }

  /** A JSON-safe snapshot; {@link TransitionModel.fromJSON} restores it. */
  toJSON(): TransitionSnapshot {
    const n = this.states;
    const counts: number[] = new Array<number>(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) counts[i * n + j] = this.#raw[i * this.#capacity + j]! / this.#scale;
    }
    return {
      format: SNAPSHOT_FORMAT,
      version: 1,
      halfLife: this.halfLife === Infinity ? null : this.halfLife,
      alpha: this.alpha,
      handoffs: this.#handoffs,
      agents: [...this.#agents],
      counts,
    };
  }

  /**
   * Restores a model from {@link TransitionModel.toJSON}'s output (or its
   * JSON text parsed). Throws a TypeError or RangeError naming the first
   * field that is wrong; a corrupt snapshot never yields a model.
   */
  static fromJSON(snapshot: unknown): TransitionModel {
    const where = 'TransitionModel.fromJSON';
    if (typeof snapshot !== 'object' || snapshot === null || Array.isArray(snapshot)) {
      throw new TypeError(`${where}: snapshot must be an object`);
    }
    const s = snapshot as Partial<Record<keyof TransitionSnapshot, unknown>>;
    if (s.format !== SNAPSHOT_FORMAT) throw new TypeError(`${where}: format must be '${SNAPSHOT_FORMAT}', got ${String(s.format)}`);
    if (s.version !== 1) throw new RangeError(`${where}: unsupported version ${String(s.version)}`);
    const halfLife = s.halfLife === null ? Infinity : checkHalfLife(s.halfLife, `${where}: halfLife`);
    const alpha = checkAlpha(s.alpha, `${where}: alpha`);
    const handoffs = checkInt(s.handoffs, `${where}: handoffs`, 0, Number.MAX_SAFE_INTEGER);
    if (!Array.isArray(s.agents)) throw new TypeError(`${where}: agents must be an array`);
    const agents = s.agents as unknown[];
    if (agents.length > MAX_STATES - 2) throw new RangeError(`${where}: at most ${MAX_STATES - 2} agents, got ${agents.length}`);
    const seen = new Set<string>();
    agents.forEach((name, k) => {
      if (typeof name !== 'string') throw new TypeError(`${where}: agents[${k}] must be a string`);
      if (seen.has(name)) throw new RangeError(`${where}: agents[${k}] ${JSON.stringify(name)} appears twice`);
      seen.add(name);
    });
    const n = agents.length + 2;
    if (!Array.isArray(s.counts)) throw new TypeError(`${where}: counts must be an array`);
    const counts = s.counts as unknown[];
    if (counts.length !== n * n) {
      throw new RangeError(`${where}: counts has length ${counts.length}, expected ${n * n} (${n} states squared)`);
    }
    counts.forEach((c, k) => {
      if (typeof c !== 'number') throw new TypeError(`${where}: counts[${k}] must be a number`);
      if (!Number.isFinite(c) || c < 0) throw new RangeError(`${where}: counts[${k}] must be finite and >= 0, got ${c}`);
      const row = Math.floor(k / n);
      const column = k % n;
      if (c !== 0 && column === START_INDEX) throw new RangeError(`${where}: counts[${k}] is a transition into START`);
      if (c !== 0 && row === END_INDEX) throw new RangeError(`${where}: counts[${k}] is a transition out of END`);
    });

    const model = new TransitionModel({ halfLife, alpha });
    for (const name of agents as string[]) model.agentIndex(name);
    const capacity = model.#capacity;
    for (let i = 0; i < n; i++) {
      let row = 0;
      for (let j = 0; j < n; j++) {
        const c = counts[i * n + j] as number;
        model.#raw[i * capacity + j] = c;
        row += c;
      }
      model.#rowRaw[i] = row;
    }
    model.#handoffs = handoffs;
    return model;
  }

  // ------------------------------------------------------------ shared learning

  /**
   * Sets the counts other replicas observed for this workload (their
   * {@link toJSON} snapshots), replacing any set before: probabilities
   * become `normalize(own + sum of peers + alpha)`. The peers' counts are
   * used as published (decayed on their own clocks) and never decay or
   * leave here: {@link count}, {@link handoffs} and {@link toJSON} stay this
   * replica's own, so what a replica publishes is never counted twice.
   * Agents only peers have seen are added. Every snapshot is checked before
   * anything changes.
   *
   * @throws TypeError / RangeError naming the peer and field that is wrong.
   */
  setPeerCounts(peers: readonly unknown[]): void {
    if (!Array.isArray(peers)) throw new TypeError('TransitionModel.setPeerCounts: peers must be an array of snapshots');
    const parsed = peers.map((peer, k) => {
      try {
        return TransitionModel.fromJSON(peer).toJSON();
      } catch (error) {
        const E = error instanceof RangeError ? RangeError : TypeError;
        throw new E(`TransitionModel.setPeerCounts: peers[${k}]: ${(error as Error).message}`);
      }
    });
    const rows = new Map<number, Float64Array>();
    for (const peer of parsed) {
      const n = peer.agents.length + 2;
      const index = [START_INDEX, END_INDEX, ...peer.agents.map((name) => this.agentIndex(name))];
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const c = peer.counts[i * n + j]!;
          if (c === 0) continue;
          let row = rows.get(index[i]!);
          if (!row) rows.set(index[i]!, (row = new Float64Array(MAX_STATES)));
          row[index[j]!]! += c;
        }
      }
    }
    this.#peerRows = rows;
    this.#peerTotals = new Map([...rows].map(([i, row]) => [i, row.reduce((a, b) => a + b, 0)]));
  }

  /** The `from -> to` count the peers contribute (0 for unseen agents). */
  peerCount(from: TransitionEndpoint, to: TransitionEndpoint): number {
    const i = this.indexOf(from);
    const j = this.indexOf(to);
    return i === undefined || j === undefined ? 0 : this.#peerAt(i, j);
  }

  #peerAt(i: number, j: number): number {
    return this.#peerRows.get(i)?.[j] ?? 0;
  }

  #peerTotal(i: number): number {
    return this.#peerTotals.get(i) ?? 0;
  }

  #intern(endpoint: TransitionEndpoint): number {
    if (endpoint === START) return START_INDEX;
    if (endpoint === END) return END_INDEX;
    if (typeof endpoint !== 'string') {
      throw new TypeError(`TransitionModel: an endpoint must be an agent name, START or END, got ${typeof endpoint}`);
    }
    return this.agentIndex(endpoint);
  }

  #known(endpoint: TransitionEndpoint, op: string): number {
    const index = this.indexOf(endpoint);
    if (index === undefined) throw new RangeError(`TransitionModel.${op}: unknown agent ${endpointLabel(endpoint)}`);
    return index;
  }

  #fillRow(i: number, alpha: number, out: Float64Array, offset: number): void {
    const n = this.states;
    const denominator = this.#rowRaw[i]! / this.#scale + this.#peerTotal(i) + alpha * (n - 1);
    if (denominator === 0) {
      for (let j = 1; j < n; j++) out[offset + j] = 1 / (n - 1);
      return;
    }
    const base = i * this.#capacity;
    for (let j = 1; j < n; j++) out[offset + j] = (this.#raw[base + j]! / this.#scale + this.#peerAt(i, j) + alpha) / denominator;
  }

  #grow(capacity: number): void {
    const raw = new Float64Array(capacity * capacity);
    const n = this.states;
    for (let i = 0; i < n; i++) raw.set(this.#raw.subarray(i * this.#capacity, i * this.#capacity + n), i * capacity);
    const rowRaw = new Float64Array(capacity);
    rowRaw.set(this.#rowRaw.subarray(0, n));
    this.#raw = raw;
    this.#rowRaw = rowRaw;
    this.#capacity = capacity;
  }

  #renormalise(): void {
    const inverse = 1 / this.#scale;
    for (let k = 0; k < this.#raw.length; k++) this.#raw[k]! *= inverse;
    for (let k = 0; k < this.#rowRaw.length; k++) this.#rowRaw[k]! *= inverse;
    this.#scale = 1;
  }
}
