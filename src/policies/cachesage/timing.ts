/**
 * Running estimates of step durations (cachesage.md section 1, timing): per
 * agent, the service time of a step and the tool gap after it.
 */
import { checkInt } from '../../util/check.js';

/** Options of a {@link DurationEstimator}. */
export interface DurationEstimatorOptions {
  /**
   * Samples after which a sample weighs half as much; at least 1.
   * `Infinity` weighs every sample equally. Default 200.
   */
  halfLife?: number;
  /**
   * Smallest duration recorded; shorter ones (zero included) count as this.
   * A log-normal puts no mass at zero, and a zero would drag log(x) to
   * minus infinity. Positive and finite; default 1e-6 (in the caller's unit).
   */
  floor?: number;
}

/** The JSON form of a {@link DurationEstimator}. */
export interface DurationSnapshot {
  format: 'cachesage.duration';
  version: 1;
  /** `null` stands for `Infinity`, which JSON cannot hold. */
  halfLife: number | null;
  floor: number;
  count: number;
  /** Sum of the sample weights. */
  weight: number;
  /** Sum of the squared sample weights. */
  weightSquared: number;
  /** Weighted mean of log(x). */
  logMean: number;
  /** Weighted sum of squared deviations of log(x) from the mean. */
  logDeviation: number;
}

const DEFAULT_HALF_LIFE = 200;
const DEFAULT_FLOOR = 1e-6;
const SNAPSHOT_FORMAT = 'cachesage.duration';

function checkHalfLife(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (Number.isNaN(value) || value < 1) throw new RangeError(`${name} must be >= 1 or Infinity, got ${value}`);
  return value;
}

function checkFinite(value: unknown, name: string, min: number, minInclusive: boolean): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isFinite(value) || value < min || (!minInclusive && value === min)) {
    throw new RangeError(`${name} must be finite and ${minInclusive ? '>=' : '>'} ${min}, got ${value}`);
  }
  return value;
}

/**
 * The standard normal quantile function, by Wichura's algorithm AS 241
 * (PPND16): relative error about 1e-16 over (0, 1).
 */
export function normalQuantile(p: number): number {
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r +
          45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r +
          133.14166789178437745) * r + 3.387132872796366608)) /
      (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r +
        21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r +
        42.313330701600911252) * r + 1)
    );
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let value: number;
  if (r <= 5) {
    r -= 1.6;
    value =
      (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r +
        1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r +
        4.6303378461565452959) * r + 1.42343711074968357734) /
      (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r +
        0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r +
        2.05319162663775882187) * r + 1);
  } else {
    r -= 5;
    value =
      (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r +
        0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r +
        5.4637849111641143699) * r + 6.6579046435011037772) /
      (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r +
        7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r +
        0.59983220655588793769) * r + 1);
  }
  return q < 0 ? -value : value;
}

/**
 * A running log-normal fit of a positive duration: exponentially weighted
 * mean and variance of log(x), with a half-life in samples so the estimate
 * follows drift. Durations are heavy-tailed (a tool call is usually quick and
 * sometimes very slow), which a log-normal captures and a normal does not.
 *
 * The variance is the weighted sample variance corrected for bias with the
 * effective sample size, so with no decay it is the usual unbiased sample
 * variance of log(x). Until there are two samples it is 0.
 *
 * Statistics of an estimator with no samples are `undefined`.
 *
 * @example
 * ```ts
 * const service = new DurationEstimator({ halfLife: 100 });
 * service.observe(0.84);
 * service.observe(1.3);
 * service.median(); // about 1.045
 * service.quantile(0.9);
 * ```
 */
export class DurationEstimator {
  /** Samples after which a sample weighs half as much. */
  readonly halfLife: number;
  /** Smallest duration recorded. */
  readonly floor: number;

  readonly #decay: number;
  #count = 0;
  #weight = 0;
  #weightSquared = 0;
  #logMean = 0;
  #logDeviation = 0;

  constructor(options: DurationEstimatorOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('DurationEstimator: options must be an object');
    }
    this.halfLife = checkHalfLife(options.halfLife ?? DEFAULT_HALF_LIFE, 'DurationEstimator: options.halfLife');
    this.floor = checkFinite(options.floor ?? DEFAULT_FLOOR, 'DurationEstimator: options.floor', 0, false);
    this.#decay = this.halfLife === Infinity ? 1 : 2 ** (-1 / this.halfLife);
  }

  /** Samples observed, undecayed. */
  get count(): number {
    return this.#count;
  }

  /** Weighted mean of log(x): the log-normal's mu. `undefined` when empty. */
  get logMean(): number | undefined {
    return this.#count === 0 ? undefined : this.#logMean;
  }

  /** Weighted standard deviation of log(x): the log-normal's sigma. `undefined` when empty. */
  get logStdDev(): number | undefined {
    if (this.#count === 0) return undefined;
    return Math.sqrt(this.#logVariance());
  }

  /** Records one duration: finite and >= 0 (a zero counts as {@link floor}). */
  observe(duration: number): void {
    if (typeof duration !== 'number') {
      throw new TypeError(`DurationEstimator.observe: duration must be a number, got ${typeof duration}`);
    }
    if (!Number.isFinite(duration) || duration < 0) {
      throw new RangeError(`DurationEstimator.observe: duration must be finite and >= 0, got ${duration}`);
    }
    const y = Math.log(Math.max(duration, this.floor));
    // West's weighted update: decaying every earlier weight scales the
    // weight sums and the squared deviations but leaves the mean alone.
    this.#weight = this.#decay * this.#weight + 1;
    this.#weightSquared = this.#decay * this.#decay * this.#weightSquared + 1;
    const delta = y - this.#logMean;
    this.#logMean += delta / this.#weight;
    this.#logDeviation = this.#decay * this.#logDeviation + delta * (y - this.#logMean);
    this.#count++;
  }

  /** The fitted distribution's mean, exp(mu + sigma^2 / 2). */
  mean(): number | undefined {
    if (this.#count === 0) return undefined;
    return Math.exp(this.#logMean + this.#logVariance() / 2);
  }

  /** The fitted distribution's median, exp(mu). */
  median(): number | undefined {
    return this.#count === 0 ? undefined : Math.exp(this.#logMean);
  }

  /** The fitted distribution's q-quantile for 0 < q < 1, exp(mu + sigma * z_q). */
  quantile(q: number): number | undefined {
    if (typeof q !== 'number') throw new TypeError(`DurationEstimator.quantile: q must be a number, got ${typeof q}`);
    if (!(q > 0 && q < 1)) throw new RangeError(`DurationEstimator.quantile: q must be in (0, 1), got ${q}`);
    if (this.#count === 0) return undefined;
    return Math.exp(this.#logMean + Math.sqrt(this.#logVariance()) * normalQuantile(q));
  }

  /** A JSON-safe snapshot; {@link DurationEstimator.fromJSON} restores it. */
  toJSON(): DurationSnapshot {
    return {
      format: SNAPSHOT_FORMAT,
      version: 1,
      halfLife: this.halfLife === Infinity ? null : this.halfLife,
      floor: this.floor,
      count: this.#count,
      weight: this.#weight,
      weightSquared: this.#weightSquared,
      logMean: this.#logMean,
      logDeviation: this.#logDeviation,
    };
  }

  /**
   * Restores an estimator from {@link DurationEstimator.toJSON}'s output.
   * Throws a TypeError or RangeError naming the first field that is wrong.
   */
  static fromJSON(snapshot: unknown): DurationEstimator {
    const where = 'DurationEstimator.fromJSON';
    if (typeof snapshot !== 'object' || snapshot === null || Array.isArray(snapshot)) {
      throw new TypeError(`${where}: snapshot must be an object`);
    }
    const s = snapshot as Partial<Record<keyof DurationSnapshot, unknown>>;
    if (s.format !== SNAPSHOT_FORMAT) throw new TypeError(`${where}: format must be '${SNAPSHOT_FORMAT}', got ${String(s.format)}`);
    if (s.version !== 1) throw new RangeError(`${where}: unsupported version ${String(s.version)}`);
    const halfLife = s.halfLife === null ? Infinity : checkHalfLife(s.halfLife, `${where}: halfLife`);
    const floor = checkFinite(s.floor, `${where}: floor`, 0, false);
    const count = checkInt(s.count, `${where}: count`, 0, Number.MAX_SAFE_INTEGER);
    const weight = checkFinite(s.weight, `${where}: weight`, 0, true);
    const weightSquared = checkFinite(s.weightSquared, `${where}: weightSquared`, 0, true);
    const logMean = checkFinite(s.logMean, `${where}: logMean`, -Number.MAX_VALUE, true);
    const logDeviation = checkFinite(s.logDeviation, `${where}: logDeviation`, 0, true);
    if (count === 0 ? weight !== 0 || weightSquared !== 0 || logMean !== 0 || logDeviation !== 0 : weight === 0) {
      throw new RangeError(`${where}: count ${count} disagrees with weight ${weight}`);
    }
    // Every sample weight lies in (0, 1], so sum(w^2) <= sum(w) <= count.
    if (weightSquared > weight * (1 + 1e-12) || weight > count * (1 + 1e-12)) {
      throw new RangeError(`${where}: weights are inconsistent (weight ${weight}, weightSquared ${weightSquared}, count ${count})`);
    }
    const estimator = new DurationEstimator({ halfLife, floor });
    estimator.#count = count;
    estimator.#weight = weight;
    estimator.#weightSquared = weightSquared;
    estimator.#logMean = logMean;
    estimator.#logDeviation = logDeviation;
    return estimator;
  }

  #logVariance(): number {
    // Reliability-weights correction: W - sum(w^2)/W is W times (1 - 1/n_eff).
    const denominator = this.#weight - this.#weightSquared / this.#weight;
    if (!(denominator > 1e-12 * this.#weight)) return 0;
    return Math.max(0, this.#logDeviation / denominator);
  }
}
