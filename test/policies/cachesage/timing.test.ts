import { describe, expect, it } from 'vitest';

import { DurationEstimator, normalQuantile } from '../../../src/policies/cachesage/timing.js';
import { seededRandom as rng } from '../../../src/util/random.js';


/** Log-normal samples by Box-Muller. */
function logNormal(rand: () => number, mu: number, sigma: number): () => number {
  return () => {
    const u = 1 - rand();
    const v = rand();
    return Math.exp(mu + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  };
}

describe('normalQuantile', () => {
  it('matches known standard normal quantiles', () => {
    expect(normalQuantile(0.5)).toBe(0);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 14);
    expect(normalQuantile(0.025)).toBeCloseTo(-1.959963984540054, 14);
    expect(normalQuantile(0.9)).toBeCloseTo(1.2815515655446004, 14);
    expect(normalQuantile(0.8413447460685429)).toBeCloseTo(1, 12);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 11);
    expect(normalQuantile(1 - 1e-12)).toBeCloseTo(7.034483825590789, 4);
  });
});

describe('DurationEstimator', () => {
  it('fits mu and sigma exactly on a small sample with no decay', () => {
    const estimator = new DurationEstimator({ halfLife: Infinity });
    for (const x of [1, Math.E, Math.E ** 2]) estimator.observe(x);
    // log(x) = 0, 1, 2: mean 1, unbiased variance 1.
    expect(estimator.count).toBe(3);
    expect(estimator.logMean).toBeCloseTo(1, 14);
    expect(estimator.logStdDev).toBeCloseTo(1, 14);
    expect(estimator.median()).toBeCloseTo(Math.E, 13);
    expect(estimator.mean()).toBeCloseTo(Math.exp(1.5), 13);
    expect(estimator.quantile(0.5)).toBeCloseTo(Math.E, 13);
    expect(estimator.quantile(0.975)).toBeCloseTo(Math.exp(1 + 1.959963984540054), 11);
  });

  it('weights a sample by half after one half-life', () => {
    const estimator = new DurationEstimator({ halfLife: 1 });
    estimator.observe(1);
    estimator.observe(Math.E ** 2);
    // Weights 1/2 and 1 on log values 0 and 2.
    expect(estimator.logMean).toBeCloseTo(4 / 3, 14);
    // Weighted squared deviations (1/2)(16/9) + (4/9) = 4/3 over
    // W - sum(w^2)/W = 3/2 - (5/4)/(3/2) = 2/3.
    expect(estimator.logStdDev).toBeCloseTo(Math.sqrt(2), 14);
  });

  it('recovers a log-normal from 20k samples within four standard errors', () => {
    const mu = Math.log(0.8);
    const sigma = 0.7;
    const sample = logNormal(rng(11), mu, sigma);
    const estimator = new DurationEstimator({ halfLife: Infinity });
    const n = 20_000;
    for (let i = 0; i < n; i++) estimator.observe(sample());
    expect(Math.abs(estimator.logMean! - mu)).toBeLessThan((4 * sigma) / Math.sqrt(n));
    expect(Math.abs(estimator.logStdDev! - sigma)).toBeLessThan((4 * sigma) / Math.sqrt(2 * n));
    const relative = (estimate: number, truth: number) => Math.abs(estimate / truth - 1);
    expect(relative(estimator.median()!, 0.8)).toBeLessThan(0.025);
    expect(relative(estimator.mean()!, Math.exp(mu + (sigma * sigma) / 2))).toBeLessThan(0.03);
    expect(relative(estimator.quantile(0.9)!, Math.exp(mu + sigma * 1.2815515655446004))).toBeLessThan(0.04);
  });

  it('follows a shift in the distribution after ten half-lives, where an undecayed fit does not', () => {
    const decayed = new DurationEstimator({ halfLife: 50 });
    const undecayed = new DurationEstimator({ halfLife: Infinity });
    const before = logNormal(rng(12), 0, 0.5);
    const after = logNormal(rng(13), Math.log(10), 0.5);
    for (let i = 0; i < 1000; i++) {
      const x = before();
      decayed.observe(x);
      undecayed.observe(x);
    }
    for (let i = 0; i < 500; i++) {
      const x = after();
      decayed.observe(x);
      undecayed.observe(x);
    }
    expect(Math.abs(decayed.median()! / 10 - 1)).toBeLessThan(0.15);
    expect(Math.abs(decayed.logStdDev! - 0.5)).toBeLessThan(0.15);
    expect(undecayed.median()!).toBeLessThan(3);
  });

  it('has no statistics before the first sample and no spread before the second', () => {
    const estimator = new DurationEstimator();
    expect(estimator.count).toBe(0);
    expect(estimator.mean()).toBeUndefined();
    expect(estimator.median()).toBeUndefined();
    expect(estimator.quantile(0.9)).toBeUndefined();
    expect(estimator.logMean).toBeUndefined();
    expect(estimator.logStdDev).toBeUndefined();
    estimator.observe(2);
    expect(estimator.logStdDev).toBe(0);
    expect(estimator.median()).toBeCloseTo(2, 14);
    expect(estimator.mean()).toBeCloseTo(2, 14);
    expect(estimator.quantile(0.99)).toBeCloseTo(2, 14);
  });

  it('records a zero duration as the floor', () => {
    const estimator = new DurationEstimator({ floor: 1e-3 });
    estimator.observe(0);
    expect(estimator.median()).toBeCloseTo(1e-3, 15);
    expect(new DurationEstimator().floor).toBe(1e-6);
  });

  it('rejects durations that are not finite and non-negative', () => {
    const estimator = new DurationEstimator();
    for (const bad of [NaN, -1, -1e-300, Infinity, -Infinity]) {
      expect(() => estimator.observe(bad)).toThrow(RangeError);
    }
    expect(() => estimator.observe('1' as unknown as number)).toThrow(TypeError);
    expect(() => estimator.observe(undefined as unknown as number)).toThrow(TypeError);
    expect(estimator.count).toBe(0);
  });

  it('rejects quantiles outside (0, 1) and bad options', () => {
    const estimator = new DurationEstimator();
    estimator.observe(1);
    for (const q of [0, 1, -0.5, 2, NaN]) expect(() => estimator.quantile(q)).toThrow(RangeError);
    expect(() => estimator.quantile('0.5' as unknown as number)).toThrow(TypeError);
    expect(() => new DurationEstimator({ halfLife: 0 })).toThrow(RangeError);
    expect(() => new DurationEstimator({ floor: 0 })).toThrow(RangeError);
    expect(() => new DurationEstimator({ floor: Infinity })).toThrow(RangeError);
    expect(() => new DurationEstimator(null as unknown as object)).toThrow(TypeError);
  });

  it('round-trips through JSON text and keeps estimating the same way', () => {
    const sample = logNormal(rng(14), 1, 0.3);
    const estimator = new DurationEstimator({ halfLife: 40, floor: 1e-4 });
    for (let i = 0; i < 300; i++) estimator.observe(sample());
    const restored = DurationEstimator.fromJSON(JSON.parse(JSON.stringify(estimator)));
    expect(restored.toJSON()).toEqual(estimator.toJSON());
    for (let i = 0; i < 50; i++) {
      const x = sample();
      estimator.observe(x);
      restored.observe(x);
    }
    expect(restored.median()).toBe(estimator.median());
    expect(restored.quantile(0.95)).toBe(estimator.quantile(0.95));
    const unbounded = DurationEstimator.fromJSON(JSON.parse(JSON.stringify(new DurationEstimator({ halfLife: Infinity }))));
    expect(unbounded.halfLife).toBe(Infinity);
    expect(unbounded.count).toBe(0);
  });

  it('refuses a corrupt snapshot with a precise error', () => {
    const estimator = new DurationEstimator({ halfLife: 10 });
    for (const x of [1, 2, 3]) estimator.observe(x);
    const good = estimator.toJSON();
    const cases: [string, (s: Record<string, unknown>) => void, RegExp, typeof TypeError | typeof RangeError][] = [
      ['wrong format', (s) => (s.format = 'x'), /format must be/, TypeError],
      ['wrong version', (s) => (s.version = 0), /unsupported version/, RangeError],
      ['bad floor', (s) => (s.floor = -1), /floor must be finite and > 0/, RangeError],
      ['fractional count', (s) => (s.count = 2.5), /count must be an integer/, RangeError],
      ['missing mean', (s) => delete s.logMean, /logMean must be a number/, TypeError],
      ['negative deviation', (s) => (s.logDeviation = -1), /logDeviation must be finite and >= 0/, RangeError],
      ['weight without samples', (s) => (s.count = 0), /disagrees with weight/, RangeError],
      ['weight above the count', (s) => (s.weight = 4), /weights are inconsistent/, RangeError],
      ['squares above the weight', (s) => (s.weightSquared = 3), /weights are inconsistent/, RangeError],
    ];
    for (const [label, corrupt, message, type] of cases) {
      const snapshot = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
      corrupt(snapshot);
      const attempt = () => DurationEstimator.fromJSON(snapshot);
      expect(attempt, label).toThrow(message);
      expect(attempt, label).toThrow(type);
    }
    expect(() => DurationEstimator.fromJSON('{}')).toThrow(TypeError);
  });
});
