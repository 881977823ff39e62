/**
 * Bearer tokens and workload isolation: without a token nothing but
 * /healthz answers; a token scoped to workload A can neither read nor
 * change B's sessions, requests, blocks, predictions or explanations, over
 * the JSON routes or inside a batch; act and /metrics need a "*" token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { batch, chain, get, post, startSidecar, type TestSidecar } from './sidecar.js';
import { OP } from './scenario.js';

const ADMIN = 'admin-token-0123456789abcdef';
const ALPHA = 'alpha-token-0123456789abcdef';
const BETA = 'beta-token-0123456789abcdef0';

const hashes = (name: string) => chain([name, 2]).map(String);

describe('auth and workload isolation', () => {
  let server: TestSidecar;
  let alphaBlock: number;
  beforeAll(async () => {
    server = await startSidecar({
      deviceBlocks: 32,
      tokens: [
        { token: ADMIN, workloads: '*', name: 'admin' },
        { token: ALPHA, workloads: ['alpha'], name: 'alpha' },
        { token: BETA, workloads: ['beta', 'gamma'], name: 'beta' },
      ],
    });
    // Alpha's session with one live request and one released one.
    expect((await post(server.url, '/v1/events', { type: 'session.start', time: 1, session: 'a1', workload: 'alpha' }, ALPHA)).status).toBe(200);
    const agent = { workload: 'alpha', agent: 'writer' };
    const first = await post(server.url, '/v1/admit', { requestId: 1, hashes: hashes('alpha-doc'), numTokens: 8, session: 'a1', agent, time: 2 }, ALPHA);
    expect(first.status).toBe(200);
    alphaBlock = first.body.blockIds[0];
    await post(server.url, '/v1/prefill-done', { requestId: 1, time: 3 }, ALPHA);
    await post(server.url, '/v1/release', { requestId: 1, time: 4 }, ALPHA);
    expect((await post(server.url, '/v1/admit', { requestId: 2, hashes: hashes('alpha-2'), numTokens: 8, session: 'a1', agent, time: 5 }, ALPHA)).status).toBe(200);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('refuses requests without a known bearer token with 401, except /healthz', async () => {
    expect(await get(server.url, '/healthz')).toEqual({ status: 200, body: { ok: true } });
    const none = await get(server.url, '/v1/info');
    expect(none).toMatchObject({ status: 401, body: { message: 'missing Authorization: Bearer TOKEN header' } });
    expect(await get(server.url, '/v1/info', 'not-a-token-at-all-xxxxxx')).toMatchObject({ status: 401, body: { message: 'unknown bearer token' } });
    const response = await fetch(server.url + '/v1/info', { headers: { authorization: `Basic ${ALPHA}` } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="cachesage"');
    expect(await post(server.url, '/v1/release', { requestId: 2 })).toMatchObject({ status: 401 });
    expect((await batch(server.url, [[OP.release, 2]])).status).toBe(401);
    expect(await get(server.url, '/v1/info', ALPHA)).toMatchObject({ status: 200 });
  });

  it("refuses a token every verb on another workload's session or request, changing nothing", async () => {
    const before = server.runtime.info();
    const cases: [string, unknown, string][] = [
      ['/v1/events', { type: 'step.start', time: 9, session: 'a1', agent: { workload: 'beta', agent: 'x' } }, 'step.start: session "a1" belongs to a workload this token may not use'],
      ['/v1/events', { type: 'session.end', time: 9, session: 'a1' }, 'session.end: session "a1" belongs to a workload this token may not use'],
      ['/v1/events', { type: 'session.start', time: 9, session: 'b9', workload: 'alpha' }, 'session.start: workload: this token may not use workload "alpha"'],
      ['/v1/admit', { requestId: 50, hashes: hashes('x'), numTokens: 8, session: 'a1', agent: { workload: 'beta', agent: 'x' } }, 'admit: session "a1" belongs to a workload this token may not use'],
      ['/v1/admit', { requestId: 51, hashes: hashes('x'), numTokens: 8, session: 'b1', agent: { workload: 'alpha', agent: 'x' } }, 'admit: agent.workload: this token may not use workload "alpha"'],
      ['/v1/admit', { requestId: 52, hashes: hashes('x'), numTokens: 8 }, 'admit: this token may only admit requests tagged with a session and an agent of its workloads'],
      ['/v1/prefill-done', { requestId: 2 }, 'prefill-done: request 2 belongs to a workload this token may not use'],
      ['/v1/decode', { requestId: 2, tokens: 1 }, 'decode: request 2 belongs to a workload this token may not use'],
      ['/v1/release', { requestId: 2 }, 'release: request 2 belongs to a workload this token may not use'],
      ['/v1/predict', { session: 'a1' }, 'predict: session "a1" belongs to a workload this token may not use'],
      ['/v1/act', {}, 'act: act moves the blocks of every workload; it needs a token whose workloads are "*"'],
    ];
    for (const [path, body, message] of cases) {
      expect(await post(server.url, path, body, BETA), path).toEqual({ status: 403, body: { statusCode: 403, error: 'Forbidden', message } });
    }
    expect(await get(server.url, `/v1/explain/${alphaBlock}`, BETA)).toMatchObject({ status: 403, body: { message: `explain: block ${alphaBlock} holds no data of a workload this token may use` } });
    expect(await get(server.url, '/metrics', BETA)).toMatchObject({ status: 403 });
    // The same refusals inside a batch, item by item.
    const reply = await batch(server.url, [[OP.release, 2], [OP.sessionEnd, 9, 'a1'], [OP.act], [OP.admit, 53, 8, [1n, 2n], 'a1', 'beta', 'x']], BETA);
    expect(reply.body.results).toEqual([
      [2, 403, 'release: request 2 belongs to a workload this token may not use'],
      [2, 403, 'session.end: session "a1" belongs to a workload this token may not use'],
      [2, 403, 'act: act moves the blocks of every workload; it needs a token whose workloads are "*"'],
      [2, 403, 'admit: session "a1" belongs to a workload this token may not use'],
    ]);
    expect(server.runtime.info()).toEqual(before);
  });

  it('lets a token use its own workloads, and a "*" token everything', async () => {
    expect((await post(server.url, '/v1/predict', { session: 'a1' }, ALPHA)).body.prediction.workload).toBe('alpha');
    expect((await get(server.url, `/v1/explain/${alphaBlock}`, ALPHA)).body).toMatchObject({ blockId: alphaBlock, workload: 'alpha', session: 'a1' });
    expect((await get(server.url, `/v1/explain/${alphaBlock}`, ADMIN)).status).toBe(200);
    expect((await post(server.url, '/v1/events', { type: 'session.start', time: 9, session: 'g1', workload: 'gamma' }, BETA)).body).toEqual({ applied: true });
    expect((await post(server.url, '/v1/act', {}, ADMIN)).status).toBe(200);
    expect((await get(server.url, '/metrics', ADMIN)).status).toBe(200);
    expect((await post(server.url, '/v1/release', { requestId: 2, time: 10 }, ALPHA)).body).toMatchObject({ released: true });
    // Released: gone for everyone.
    expect((await post(server.url, '/v1/release', { requestId: 2 }, ADMIN)).status).toBe(404);
  });
});
