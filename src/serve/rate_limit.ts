/**
 * Per-client token buckets: each client may make `rate` requests a second
 * on average and `burst` at once. A bucket refills continuously; a request
 * that finds it empty is refused (429) with the seconds until one token is
 * back. Idle full buckets are forgotten, so the table stays as small as the
 * set of active clients.
 */
interface Bucket {
  tokens: number;
  at: number;
}

export interface RateLimitOptions {
  /** Requests per second; 0 turns limiting off. */
  rate: number;
  /** Bucket size (default: max(1, rate)). */
  burst?: number;
  /** Seconds on a monotonic clock (default: performance.now()/1000). */
  now?: () => number;
}

export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  readonly #now: () => number;
  readonly #buckets = new Map<unknown, Bucket>();
  #sweepAt = 0;

  constructor(options: RateLimitOptions) {
    if (!(options.rate >= 0) || !Number.isFinite(options.rate)) throw new RangeError(`rate must be a finite number >= 0, got ${options.rate}`);
    this.rate = options.rate;
    this.burst = options.burst ?? Math.max(1, options.rate);
    if (!(this.burst >= 1) || !Number.isFinite(this.burst)) throw new RangeError(`burst must be a finite number >= 1, got ${this.burst}`);
    this.#now = options.now ?? (() => performance.now() / 1000);
  }

  get enabled(): boolean {
    return this.rate > 0;
  }

  /** Takes one token of `client`'s bucket: 0 when granted, else the seconds to wait. */
  take(client: unknown): number {
    if (this.rate === 0) return 0;
    const now = this.#now();
    if (now - this.#sweepAt > 60) this.#sweep(now);
    let bucket = this.#buckets.get(client);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
      this.#buckets.set(client, bucket);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / this.rate;
  }

  #sweep(now: number): void {
    this.#sweepAt = now;
    for (const [client, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.rate >= this.burst) this.#buckets.delete(client);
    }
  }
}
