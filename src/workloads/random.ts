/**
 * Seeded randomness for the workload generator: xoshiro128** seeded through
 * splitmix32 from a string key, so every session draws from its own stream
 * and adding a draw to one session never shifts another. (The plain
 * numeric-seeded uniform stream is util/random.ts.)
 */
import { fingerprint64 } from '../trace/hashing.js';

/** A token count drawn from a log-normal, rounded and clamped. */
export interface TokenDist {
  /** Median tokens (the log-normal's exp(mu)). */
  median: number;
  /** Standard deviation of ln(tokens); 0 gives exactly `median`. */
  sigma: number;
  /** Smallest value returned; default 1. */
  min?: number;
  /** Largest value returned; default unbounded. */
  max?: number;
}

/** A delay in seconds: zero with probability `zeroProb`, otherwise log-normal. */
export interface GapDist {
  zeroProb: number;
  /** Median of the non-zero part, in seconds. */
  median: number;
  /** Standard deviation of ln(seconds) of the non-zero part. */
  sigma: number;
}

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [state, z >>> 0];
}

/** A deterministic pseudo-random stream (xoshiro128**). Not for cryptography. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /**
   * @param key any string; equal keys give equal streams. Build it from the
   *   seed and what the stream is for, e.g. `pipeline/7/session/12`.
   */
  constructor(key: string) {
    const { hi, lo } = fingerprint64(key);
    let state = hi ^ Math.imul(lo, 0x2545f491);
    let out: number;
    [state, out] = splitmix32(state);
    this.#a = out;
    [state, out] = splitmix32(state ^ lo);
    this.#b = out;
    [state, out] = splitmix32(state);
    this.#c = out;
    [, out] = splitmix32(state ^ hi);
    this.#d = out;
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(((Math.imul(this.#b, 5) << 7) | (Math.imul(this.#b, 5) >>> 25)), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = (this.#d << 11) | (this.#d >>> 21);
    return result;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A standard normal deviate (Box-Muller). */
  normal(): number {
    const u = 1 - this.float();
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A log-normal deviate with the given median and log-space standard deviation. */
  logNormal(median: number, sigma: number): number {
    return sigma === 0 ? median : median * Math.exp(sigma * this.normal());
  }

  /** An exponential deviate with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }

  /** One key of `weights`, chosen with probability proportional to its weight. */
  pick<K extends string>(weights: Readonly<Partial<Record<K, number>>>): K {
    let total = 0;
    for (const key in weights) total += weights[key] ?? 0;
    let x = this.float() * total;
    let last: K | undefined;
    for (const key in weights) {
      const w = weights[key] ?? 0;
      if (w <= 0) continue;
      last = key;
      if (x < w) return key;
      x -= w;
    }
    if (last === undefined) throw new RangeError('Rng.pick: no positive weight');
    return last;
  }

  /** A token count from `dist`. */
  tokens(dist: TokenDist): number {
    const value = Math.round(this.logNormal(dist.median, dist.sigma));
    return Math.min(dist.max ?? Infinity, Math.max(dist.min ?? 1, value));
  }

  /** A delay in seconds from `dist`. */
  gap(dist: GapDist): number {
    return this.chance(dist.zeroProb) ? 0 : this.logNormal(dist.median, dist.sigma);
  }
}
