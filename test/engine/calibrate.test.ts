// The calibration's fit: non-negative least squares in relative error.
import { describe, expect, it } from 'vitest';

import { fitNonNegative } from '../../src/engine/calibrate.js';
import { seededRandom } from '../../src/util/random.js';

describe('fitNonNegative', () => {
  it('recovers the coefficients of exact data, whatever the scale of each sample', () => {
    const random = seededRandom(11);
    const truth = [2e-5, 3e-8, 4e-4];
    const rows = Array.from({ length: 12 }, () => [1 + random() * 2000, random() * 4e6, 1 + Math.floor(random() * 8)]);
    const y = rows.map((r) => r.reduce((sum, x, j) => sum + x * truth[j]!, 0));
    const fitted = fitNonNegative(rows, y);
    fitted.forEach((c, j) => expect(c / truth[j]!).toBeCloseTo(1, 9));
  });

  it('weighs samples by relative error: a small sample is fitted as well as a large one', () => {
    // y = x exactly on two points, a third 10 % off at 1,000 times the size.
    const fitted = fitNonNegative([[1], [2], [1000]], [1, 2, 1100]);
    // Absolute least squares gives ~1.1, set by the large sample; relative error, sum(x/y) / sum((x/y)^2).
    const r = [1, 1, 1000 / 1100];
    expect(fitted[0]).toBeCloseTo(r.reduce((a, b) => a + b) / r.reduce((a, b) => a + b * b, 0), 9);
    expect(fitted[0]).toBeLessThan(1.05);
  });

  it('drops a term that would come out negative and refits the rest', () => {
    // y falls with x2: no non-negative price for it, so y is fitted on x1 alone.
    const rows = [[1, 0], [2, 1], [3, 2], [4, 3]];
    const y = [1, 1.9, 2.8, 3.7];
    const [a, b] = fitNonNegative(rows, y);
    expect(b).toBe(0);
    expect(a).toBeGreaterThan(0.9);
    expect(a).toBeLessThan(1);
    // Nothing to fit on: all zero, never NaN.
    expect(fitNonNegative([[0], [0]], [1, 2])).toEqual([0]);
  });
});
