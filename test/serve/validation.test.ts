/**
 * Every malformed request is a 4xx JSON error whose message names the
 * field, from the schema, the body parser or the runtime's own checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { get, post, startSidecar, type TestSidecar } from './sidecar.js';

describe('request validation', () => {
  let server: TestSidecar;
  beforeAll(async () => {
    server = await startSidecar({ deviceBlocks: 8, bodyLimit: 4096 });
  });
  afterAll(async () => {
    await server?.close();
  });

  const agent = { workload: 'w', agent: 'a' };
  it.each([
    ['/v1/events', { time: 1, session: 's' }, 'body.type is required'],
    ['/v1/events', { type: 'session.begin', time: 1, session: 's' }, 'body.type must be one of "session.start", "step.start", "step.end", "tool.start", "tool.end", "session.end"'],
    ['/v1/events', { type: 'session.start', time: '1', session: 's', workload: 'w' }, 'body.time must be number'],
    ['/v1/events', { type: 'session.start', time: -1, session: 's', workload: 'w' }, 'body.time must be >= 0'],
    ['/v1/events', { type: 'session.start', time: 1, session: '', workload: 'w' }, 'body.session must NOT have fewer than 1 characters'],
    ['/v1/events', { type: 'session.start', time: 1, session: 'x'.repeat(257), workload: 'w' }, 'body.session must NOT have more than 256 characters'],
    ['/v1/events', { type: 'session.start', time: 1, session: 's' }, 'body.workload is required'],
    ['/v1/events', { type: 'step.start', time: 1, session: 's' }, 'body.agent is required'],
    ['/v1/events', { type: 'step.start', time: 1, session: 's', agent: { workload: 'w' } }, 'body.agent.agent is required'],
    ['/v1/events', { type: 'step.start', time: 1, session: 's', agent: { workload: 'w', agent: 7 } }, 'body.agent.agent must be string'],
    ['/v1/events', { type: 'tool.start', time: 1, session: 's', agent }, 'body.tool is required'],
    ['/v1/events', { type: 'session.end', time: 1, session: 's', tool: 'x' }, 'body.tool is not allowed here'],
    ['/v1/events', { type: 'session.end', time: 1, session: 's', colour: 'x' }, 'body.colour is not a known field'],
    ['/v1/admit', { hashes: [], numTokens: 1 }, 'body.requestId is required'],
    ['/v1/admit', { requestId: 1.5, hashes: [], numTokens: 1 }, 'body.requestId must be integer'],
    ['/v1/admit', { requestId: 2 ** 53, hashes: [], numTokens: 1 }, 'body.requestId must be <= 4503599627370495'],
    ['/v1/admit', { requestId: 1, hashes: ['12', 12], numTokens: 4 }, 'body.hashes[1] must be string'],
    ['/v1/admit', { requestId: 1, hashes: ['0x'], numTokens: 4 }, 'body.hashes[0] must be a 64-bit hash: a decimal string, or 0x and up to 16 hex digits'],
    ['/v1/admit', { requestId: 1, hashes: ['18446744073709551616'], numTokens: 4 }, 'body.hashes[0] is larger than 2^64 - 1'],
    ['/v1/admit', { requestId: 1, hashes: [], numTokens: 0 }, 'body.numTokens must be >= 1'],
    ['/v1/admit', { requestId: 1, hashes: ['1'], numTokens: 4, session: 's' }, 'admit: session and agent go together (both or neither)'],
    ['/v1/admit', { requestId: 1, hashes: ['1', '2', '3'], numTokens: 4 }, 'admit: 3 block hashes for 4 tokens (at most 1 full blocks)'],
    ['/v1/decode', { requestId: 1 }, 'body.tokens is required'],
    ['/v1/release', { requestId: -1 }, 'body.requestId must be >= 0'],
    ['/v1/predict', { session: 's', horizon: 0 }, 'body.horizon must be >= 1'],
    ['/v1/act', { now: 'later' }, 'body.now must be number'],
  ])('POST %s %j: 400 "%s"', async (path, body, message) => {
    expect(await post(server.url, path, body)).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message } });
  });

  it('names the body and the route when the body itself is wrong', async () => {
    const send = (path: string, body: string, type = 'application/json', method = 'POST') =>
      fetch(server.url + path, { method, headers: { 'content-type': type }, body }).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect(await send('/v1/admit', '{"requestId": 1,')).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^body: /) } });
    expect(await send('/v1/admit', '[1, 2]')).toMatchObject({ status: 400, body: { message: 'body must be object' } });
    expect(await send('/v1/admit', 'requestId=1', 'text/plain')).toMatchObject({ status: 415 });
    expect(await send('/v1/admit', '{}', 'application/msgpack')).toMatchObject({ status: 415, body: { message: 'body: send application/json (msgpack is for /v1/batch only)' } });
    expect(await send('/v1/admit', JSON.stringify({ requestId: 1, hashes: Array(2000).fill('1'), numTokens: 1 }))).toEqual({
      status: 413,
      body: { statusCode: 413, error: 'Payload Too Large', message: 'body is larger than the limit of 4096 bytes' },
    });
    expect(await send('/v1/admit', '{"__proto__": {"x": 1}}')).toMatchObject({ status: 400 });
    expect(await send('/v1/nothing', '{}')).toMatchObject({ status: 404, body: { message: 'no route POST /v1/nothing' } });
    expect(await get(server.url, '/v1/explain/abc')).toMatchObject({ status: 400, body: { message: 'params.blockId must be a block id (a non-negative integer)' } });
    expect(await get(server.url, '/v1/explain/8')).toMatchObject({ status: 400, body: { message: 'explain: blockId must be in [0, 7], got 8' } });
  });

  it('answers an unknown or repeated request id with 404 and 409', async () => {
    expect(await post(server.url, '/v1/prefill-done', { requestId: 77 })).toMatchObject({ status: 404, body: { message: 'prefill-done: unknown request 77 (never admitted or already released)' } });
    expect((await post(server.url, '/v1/admit', { requestId: 5, hashes: ['1'], numTokens: 4 })).status).toBe(200);
    expect(await post(server.url, '/v1/admit', { requestId: 5, hashes: ['1'], numTokens: 4 })).toMatchObject({ status: 409, body: { message: 'admit: request 5 is already admitted' } });
    expect((await post(server.url, '/v1/release', { requestId: 5 })).status).toBe(200);
  });
});
