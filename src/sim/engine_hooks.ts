/**
 * The engine side of the policies' scheduling hooks: ordering the waiting
 * queue (Policy.scoreWaiting) and prefilling predicted prefixes with
 * compute an iteration leaves idle (Policy.speculate). With no policy
 * implementing either, the serving loop runs FCFS and never speculates.
 */
import type { AgentRef, Policy, SpeculativePrefill, WaitingRequest } from '../policies/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { prefillSeconds, transferSeconds, type CostModel } from './cost_model.js';
import type { SimCall } from './workload.js';

/** A call in the engine's waiting queue. */
export interface Waiting {
  call: SimCall;
  arrival: number;
  /** Arrival order, 0 first. */
  position: number;
  /** Iterations in which a later arrival was admitted while this call waited. */
  bypassed: number;
}

/**
 * What speculation did: tokens computed ahead, tokens loaded from the host
 * tier ahead (a prefix already cached there costs a transfer, not a
 * recompute), those a later call found on device, and the rest.
 */
export interface SpeculativeTally {
  prefilledTokens: number;
  loadedTokens: number;
  usedTokens: number;
  wastedTokens: number;
}

/**
 * Speculative requests take ids far above the engine's (which count from 1)
 * and below the runtime's pin holds (2^52).
 */
const SPECULATIVE_ID_BASE = 2 ** 51;

export class EngineHooks {
  readonly orders: boolean;
  readonly speculates: boolean;
  readonly #ordering: Policy[];
  readonly #speculators: Policy[];
  readonly #runtime: Runtime;
  readonly #blockSize: number;
  #nextRequest = SPECULATIVE_ID_BASE;
  /** Speculative requests admitted this iteration, and their first computed block. */
  readonly #pending: { requestId: number; first: number }[] = [];
  /** Hashes computed or loaded speculatively and not yet found by a call. */
  readonly #unused = new Set<bigint>();
  #prefilledTokens = 0;
  #loadedTokens = 0;
  #usedTokens = 0;

  constructor(policies: readonly Policy[], runtime: Runtime, blockSize: number) {
    this.#ordering = policies.filter((p) => typeof p.scoreWaiting === 'function');
    this.#speculators = policies.filter((p) => typeof p.speculate === 'function');
    this.orders = this.#ordering.length > 0;
    this.speculates = this.#speculators.length > 0;
    this.#runtime = runtime;
    this.#blockSize = blockSize;
  }

  /**
   * Reorders `waiting` in place: by the sum of the policies' priorities,
   * highest first, arrival order among equals. Returns how many of the
   * calls at the front may be admitted this iteration (those after are held).
   *
   * @throws Error when a policy gives a priority that is NaN (a bug in it).
   */
  order(waiting: Waiting[], sessionName: (s: number) => string, ref: (call: SimCall) => AgentRef, now: number): number {
    const n = waiting.length;
    if (n === 0) return 0;
    const queue: WaitingRequest[] = waiting.map((w) => ({
      session: sessionName(w.call.session),
      agent: ref(w.call),
      hashes: w.call.promptHashes,
      promptTokens: w.call.promptTokens,
      arrival: w.arrival,
      position: w.position,
      bypassed: w.bypassed,
    }));
    const total = new Float64Array(n);
    const out = new Float64Array(n);
    for (const p of this.#ordering) {
      out.fill(0);
      p.scoreWaiting!(queue, out, now);
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(out[i]!)) throw new Error(`policy ${p.name}: scoreWaiting gave NaN for queue[${i}]`);
        total[i]! += out[i]!;
      }
    }
    const index = Array.from({ length: n }, (_, i) => i);
    // +Infinity plus -Infinity from two policies: the starvation bound wins.
    const priority = (i: number) => (Number.isNaN(total[i]!) ? Infinity : total[i]!);
    index.sort((a, b) => priority(b) - priority(a) || waiting[a]!.position - waiting[b]!.position);
    const ordered = index.map((i) => waiting[i]!);
    for (let i = 0; i < n; i++) waiting[i] = ordered[i]!;
    let admissible = 0;
    while (admissible < n && priority(index[admissible]!) !== -Infinity) admissible++;
    return admissible;
  }

  /** After an iteration: the calls still waiting that a later arrival overtook. */
  noteBypassed(waiting: readonly Waiting[], admittedPositions: readonly number[]): void {
    if (admittedPositions.length === 0) return;
    const latest = Math.max(...admittedPositions);
    for (const w of waiting) if (w.position < latest) w.bypassed++;
  }

  /**
   * Admits the prefixes the policies ask for, within `spareTokens` of
   * fresh prefill, and returns the seconds their compute (and host loads)
   * adds to the iteration. They complete with {@link finishSpeculation}.
   */
  speculate(now: number, spareTokens: number, model: CostModel, bytesPerBlock: number): number {
    const size = this.#blockSize;
    const manager = this.#runtime.manager;
    let spare = spareTokens;
    let seconds = 0;
    const idle = { spareTokens: spare, predict: this.#runtime.predict.bind(this.#runtime) };
    for (const p of this.#speculators) {
      if (spare < size) break;
      idle.spareTokens = spare;
      const wanted: SpeculativePrefill[] = p.speculate!(now, idle);
      for (const item of wanted) {
        if (spare < size) break;
        const hashes = item.hashes.subarray(0, Math.min(item.hashes.length, manager.deviceBlocks));
        const match = manager.lookup(hashes);
        const blocks = Math.min(hashes.length, match.deviceBlocks + match.hostBlocks + Math.floor(spare / size));
        if (blocks <= match.deviceBlocks) continue;
        const requestId = this.#nextRequest++;
        // Untagged: the prefix is cache content, not a step of the session.
        const decision = this.#runtime.admit({ requestId, hashes: hashes.subarray(0, blocks), numTokens: blocks * size, time: now });
        if (decision === null) continue;
        const first = Math.floor(decision.cachedDeviceTokens / size) + decision.loadedBlocks;
        const fresh = (blocks - first) * size;
        seconds += prefillSeconds(model, fresh, first * size) + transferSeconds(model, decision.loadedBlocks, bytesPerBlock);
        spare -= fresh;
        for (let i = first - decision.loadedBlocks; i < blocks; i++) this.#unused.add(hashes[i]!);
        this.#prefilledTokens += fresh;
        this.#loadedTokens += decision.loadedBlocks * size;
        this.#pending.push({ requestId, first });
      }
    }
    return seconds;
  }

  /** The iteration ended: speculative prefixes join the cache and their requests end. */
  finishSpeculation(now: number, computed: (blockIds: ArrayLike<number>, from: number) => void): void {
    for (const { requestId, first } of this.#pending) {
      computed(this.#runtime.prefillDone(requestId, now), first);
      this.#runtime.release(requestId, now);
    }
    this.#pending.length = 0;
  }

  /** A call found its first `blocks` prompt blocks cached: speculative ones among them were used. */
  noteHits(promptHashes: BigUint64Array, blocks: number): void {
    if (this.#unused.size === 0) return;
    for (let i = 0; i < blocks && i < promptHashes.length; i++) {
      if (this.#unused.delete(promptHashes[i]!)) this.#usedTokens += this.#blockSize;
    }
  }

  speculativeTally(): SpeculativeTally {
    const moved = this.#prefilledTokens + this.#loadedTokens;
    return { prefilledTokens: this.#prefilledTokens, loadedTokens: this.#loadedTokens, usedTokens: this.#usedTokens, wastedTokens: moved - this.#usedTokens };
  }
}
