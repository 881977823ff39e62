/**
 * 10,000 seeded malformed, oversized and wrongly typed requests: valid
 * bodies with one field broken, arbitrary JSON, random bytes, truncated and
 * arbitrary msgpack batches, wrong content types and bad tokens. Every
 * answer must be a JSON 4xx (or a 200 for what happened to be valid),
 * never a 500; afterwards the sidecar still caches and answers correctly.
 */
import { Agent, request } from 'node:http';

import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OP } from './scenario.js';
import { post, startSidecar, type TestSidecar } from './sidecar.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
const REQUESTS = 10_000;
const BODY_LIMIT = 16 * 1024;

interface FuzzRequest {
  method: string;
  path: string;
  type: string | null;
  token: string | null;
  body: string | Uint8Array | null;
}

const agent = { workload: 'w', agent: 'a' };
const TEMPLATES: Record<string, Record<string, unknown>> = {
  '/v1/events': { type: 'step.start', time: 1, session: 's', agent },
  '/v1/admit': { requestId: 1, hashes: ['1', '0x2'], numTokens: 8, session: 's', agent, time: 2 },
  '/v1/prefill-done': { requestId: 1, time: 3 },
  '/v1/decode': { requestId: 1, tokens: 4, hashes: ['3'], time: 4 },
  '/v1/release': { requestId: 1, time: 5 },
  '/v1/act': { now: 6 },
  '/v1/predict': { session: 's', horizon: 2 },
};
const ITEMS: unknown[][] = [
  [OP.sessionStart, 1, 's', 'w'],
  [OP.stepStart, 1, 's', 'w', 'a'],
  [OP.toolEnd, 1, 's', 'w', 'a', 't'],
  [OP.admit, 1, 8, [1n, 2n], 's', 'w', 'a', 2],
  [OP.admit, 2, 8, new Uint8Array(16), null, null, null, null],
  [OP.prefillDone, 1, 3],
  [OP.decode, 1, 4, [3n], 4],
  [OP.release, 1, 5],
  [OP.act, 6],
];

/** A valid value with one field replaced, removed, or one unknown field added. */
function broken<T extends Record<string, unknown> | unknown[]>(template: T): fc.Arbitrary<T> {
  const keys = Object.keys(template);
  return fc.tuple(fc.constantFrom(...keys), fc.anything({ withBigInt: false }), fc.integer({ min: 0, max: 3 })).map(([key, value, how]) => {
    const copy = (Array.isArray(template) ? [...template] : { ...template }) as Record<string, unknown>;
    if (how === 0) delete copy[key];
    else if (how === 1) copy[`x${key}`] = value;
    else copy[key] = value;
    return copy as T;
  });
}

const jsonRoutes = Object.keys(TEMPLATES);
const anyPath = fc.oneof(fc.constantFrom(...jsonRoutes, '/v1/batch', '/v1/info', '/metrics', '/healthz', '/v1/explain/3', '/v1/explain/-1', '/v1/explain/99999999999', '/nope'), fc.string().map((s) => `/v1/${encodeURIComponent(s)}`));
const token = fc.oneof({ weight: 9, arbitrary: fc.constant(TOKEN) }, { weight: 1, arbitrary: fc.option(fc.string({ maxLength: 40 })) });

const jsonRequest = fc.record({
  method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE'),
  path: fc.oneof(fc.constantFrom(...jsonRoutes), anyPath),
  type: fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/msgpack', null),
  token,
  body: fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...jsonRoutes).chain((route) => broken(TEMPLATES[route]!)).map((b) => JSON.stringify(b)) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.integer({ min: BODY_LIMIT - 10, max: BODY_LIMIT * 2 }).map((n) => JSON.stringify({ requestId: 1, hashes: [], pad: 'x'.repeat(n) })) },
    { weight: 1, arbitrary: fc.constant(null) },
  ),
});

const batchBody = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.oneof(fc.constantFrom(...ITEMS).chain((item) => broken(item)), fc.constantFrom(...ITEMS), fc.anything({ withBigInt: true })), { maxLength: 20 }).map((items) => encode(items, { useBigInt64: true })) },
  { weight: 2, arbitrary: fc.anything({ withBigInt: true, withTypedArray: true }).map((v) => encode(v, { useBigInt64: true })) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ITEMS), fc.nat()).map(([item, cut]) => { const bytes = encode([item], { useBigInt64: true }); return bytes.subarray(0, cut % bytes.length); }) },
  { weight: 1, arbitrary: fc.integer({ min: BODY_LIMIT - 10, max: BODY_LIMIT * 2 }).map((n) => new Uint8Array(n)) },
);
const batchRequest = fc.record({
  method: fc.constant('POST'),
  path: fc.constant('/v1/batch'),
  type: fc.constantFrom('application/msgpack', 'application/msgpack', 'application/x-msgpack', 'application/json'),
  token,
  body: batchBody,
});

const requests: FuzzRequest[] = fc.sample(fc.oneof(jsonRequest, batchRequest), { seed: 20261205, numRuns: REQUESTS }) as FuzzRequest[];

// node:http with keep-alive: a tenth of fetch's cost per request, so the run takes seconds.
const agentPool = new Agent({ keepAlive: true, maxSockets: 8 });

function send(url: string, r: FuzzRequest): Promise<{ status: number; type: string; text: string }> {
  const headers: Record<string, string | number> = {};
  if (r.type !== null) headers['content-type'] = r.type;
  if (r.token !== null) headers['authorization'] = `Bearer ${r.token.replace(/[^\x20-\x7e]/g, '?')}`;
  const body = r.method !== 'GET' && r.body !== null ? r.body : null;
  if (body !== null) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = request(url + r.path, { method: r.method, headers, agent: agentPool }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    // A server that answers 413 before reading the whole body may close the socket under the write.
    // Status 0: the connection was reset; allowed only for bodies over the limit (checked by the caller).
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve({ status: 0, type: '', text: '' }) : reject(error)));
    req.end(body ?? undefined);
  });
}

describe('fuzzing the sidecar', () => {
  let server: TestSidecar;
  beforeAll(async () => {
    server = await startSidecar({ deviceBlocks: 1 << 14, bodyLimit: BODY_LIMIT, maxBatchItems: 64, tokens: [{ token: TOKEN, workloads: '*' }] });
  });
  afterAll(async () => {
    agentPool.destroy();
    await server?.close();
  });

  it(`answers ${REQUESTS} malformed requests with 4xx JSON errors, never a 500, and keeps working`, async () => {
    const statuses = new Map<number, number>();
    let next = 0;
    const failures: string[] = [];
    // Eight clients in parallel, as engines would be.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < requests.length) {
          const r = requests[next++]!;
          const reply = await send(server.url, r);
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
          const size = r.body === null ? 0 : Buffer.byteLength(r.body);
          const ok =
            reply.status === 0
              ? size > BODY_LIMIT
              : reply.status < 500 && (reply.status < 400 || (reply.type.includes('application/json') && typeof JSON.parse(reply.text).message === 'string'));
          if (!ok && failures.length < 5) failures.push(`${r.method} ${r.path} -> ${reply.status} ${reply.text.slice(0, 200)}`);
        }
      }),
    );
    expect(failures).toEqual([]);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(REQUESTS);
    // The mix reaches every kind of refusal, and some requests are valid.
    for (const status of [200, 400, 401, 404, 413, 415]) expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);

    // Still caching correctly: a new prompt misses, then hits in full.
    const hashes = ['0x1234abcd', '0x5678ef01', '0x9abc2345'];
    const first = await post(server.url, '/v1/admit', { requestId: 9_000_001, hashes, numTokens: 12 }, TOKEN);
    expect(first).toMatchObject({ status: 200, body: { admitted: true, cachedDeviceTokens: 0 } });
    expect((await post(server.url, '/v1/prefill-done', { requestId: 9_000_001 }, TOKEN)).body.blockIds).toEqual(first.body.blockIds);
    expect((await post(server.url, '/v1/release', { requestId: 9_000_001 }, TOKEN)).status).toBe(200);
    const again = await post(server.url, '/v1/admit', { requestId: 9_000_002, hashes, numTokens: 13 }, TOKEN);
    expect(again).toMatchObject({ status: 200, body: { admitted: true, cachedDeviceTokens: 12, blockIds: [...first.body.blockIds, expect.any(Number)] } });
    expect((await post(server.url, '/v1/release', { requestId: 9_000_002 }, TOKEN)).status).toBe(200);
    // Seconds on an idle machine; the bound leaves room for a loaded one.
  }, 300_000);
});
