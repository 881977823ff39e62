/**
 * /metrics: Prometheus text with the hit rate per workload (tokens hit /
 * tokens requested), admissions, blocks by tier, pending actions and the
 * request latency histogram per route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chain, get, post, startSidecar, type TestSidecar } from './sidecar.js';

/** The value of one sample line, `name{labels} value`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  if (line === undefined) throw new Error(`no sample ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  let server: TestSidecar;
  beforeAll(async () => {
    server = await startSidecar({ deviceBlocks: 16, hostBlocks: 4 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('counts prompt and hit tokens per workload and reports the hit rate', async () => {
    const prompt = chain(['doc', 3]).map(String);
    const agent = { workload: 'dev', agent: 'a' };
    // 3 blocks of 4 tokens + 2: a miss, then a hit on all 12 cached tokens.
    await post(server.url, '/v1/admit', { requestId: 1, hashes: prompt, numTokens: 14, session: 's', agent, time: 1 });
    await post(server.url, '/v1/prefill-done', { requestId: 1, time: 2 });
    await post(server.url, '/v1/release', { requestId: 1, time: 3 });
    await post(server.url, '/v1/admit', { requestId: 2, hashes: prompt, numTokens: 14, session: 's', agent, time: 4 });
    await post(server.url, '/v1/admit', { requestId: 3, hashes: ['7'], numTokens: 4 });
    const { status, body } = await get(server.url, '/metrics');
    expect(status).toBe(200);
    const text = body as string;
    expect(sample(text, 'cachesage_prompt_tokens_total{workload="dev"}')).toBe(28);
    expect(sample(text, 'cachesage_hit_tokens_total{workload="dev",tier="device"}')).toBe(12);
    expect(sample(text, 'cachesage_hit_tokens_total{workload="dev",tier="host"}')).toBe(0);
    expect(sample(text, 'cachesage_token_hit_rate{workload="dev"}')).toBeCloseTo(12 / 28);
    expect(sample(text, 'cachesage_admissions_total{workload="dev",result="admitted"}')).toBe(2);
    expect(sample(text, 'cachesage_prompt_tokens_total{workload="(untagged)"}')).toBe(4);
    // Request 2 holds 4 blocks (3 cached + 1 new), request 3 one.
    expect(sample(text, 'cachesage_blocks{tier="device",state="used"}')).toBe(5);
    expect(sample(text, 'cachesage_blocks{tier="device",state="free"}')).toBe(11);
    expect(sample(text, 'cachesage_blocks{tier="device",state="pinned"}')).toBe(5);
    expect(sample(text, 'cachesage_blocks{tier="host",state="free"}')).toBe(4);
    expect(sample(text, 'cachesage_live_requests')).toBe(2);
    expect(sample(text, 'cachesage_pending_actions')).toBe(0);
    expect(sample(text, 'cachesage_http_request_duration_seconds_count{route="/v1/admit",method="POST",status="200"}')).toBe(3);
    expect(text).toContain('# TYPE cachesage_http_request_duration_seconds histogram');
  });
});
