/**
 * The per-token rate limit: a token bucket per token (per address without
 * tokens). Exact refills on a fake clock, then 429s from a real server
 * with Retry-After, while another token is unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RateLimiter } from '../../src/serve/rate_limit.js';
import { get, startSidecar, type TestSidecar } from './sidecar.js';

describe('RateLimiter', () => {
  it('grants a burst, then one request per 1/rate seconds, per client', () => {
    let now = 0;
    const limiter = new RateLimiter({ rate: 2, burst: 3, now: () => now });
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 0]);
    expect(limiter.take('a')).toBeCloseTo(0.5);
    expect(limiter.take('b')).toBe(0);
    now = 0.5;
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBeCloseTo(0.5);
    now = 100;
    // Refills stop at the burst.
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a'), limiter.take('a') > 0]).toEqual([0, 0, 0, true]);
  });

  it('is off at rate 0 and refuses nonsense settings', () => {
    const off = new RateLimiter({ rate: 0 });
    for (let i = 0; i < 1000; i++) expect(off.take('a')).toBe(0);
    expect(() => new RateLimiter({ rate: -1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ rate: 1, burst: 0.5 })).toThrow(/burst must be a finite number >= 1/);
  });
});

describe('rate limiting over HTTP', () => {
  const A = 'rate-token-a-0123456789abcdef';
  const B = 'rate-token-b-0123456789abcdef';
  let server: TestSidecar;
  beforeAll(async () => {
    server = await startSidecar({ rateLimit: { rate: 0.5, burst: 3 }, tokens: [{ token: A, workloads: '*', name: 'engine-a' }, { token: B, workloads: '*' }] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 429 with Retry-After past the burst, for that token only', async () => {
    for (let i = 0; i < 3; i++) expect((await get(server.url, '/v1/info', A)).status).toBe(200);
    const response = await fetch(server.url + '/v1/info', { headers: { authorization: `Bearer ${A}` } });
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await response.json()).toEqual({ statusCode: 429, error: 'Too Many Requests', message: 'rate limit of 0.5 requests/s (burst 3) exceeded for engine-a' });
    expect((await get(server.url, '/v1/info', B)).status).toBe(200);
    // Health checks are not rate limited.
    for (let i = 0; i < 5; i++) expect((await get(server.url, '/healthz')).status).toBe(200);
  });
});
