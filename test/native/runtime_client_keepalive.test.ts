/**
 * The runtime client's connection handling against a real TCP peer: a
 * keep-alive connection the peer dropped while idle is reopened and the
 * request sent once more, but only when nothing of the reply came back, so
 * no verb is applied twice; a reply that trickles in and never completes is
 * a timeout (CS_ERR_IO) within the deadline, not a retry; the bearer token
 * goes with every request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { clientTest, describeRun, jsonLines, requireBuilt, runProgram, startIdleClosingPeer, type IdleClosingPeer } from './runtime_client_peers.js';

describe('C runtime client connections', () => {
  let peer: IdleClosingPeer | undefined;

  beforeAll(async () => {
    requireBuilt(clientTest);
    peer = await startIdleClosingPeer();
  });

  afterAll(async () => {
    await peer?.close();
  });

  it('reconnects after idle closes without repeating a verb, and times out', async () => {
    const run = await runProgram(clientTest, ['keepalive', '127.0.0.1', String(peer!.port)], 30_000);
    expect(run.status, describeRun('runtime_client_test keepalive', run)).toBe(0);
    const lines = jsonLines(run.stdout);
    expect(lines[0]).toEqual({ act: 'CS_ERR_IO', message: 'act: no reply from the sidecar within 500 ms' });
    expect(lines.at(-1)).toEqual({ done: true });
    const bearer = 'Bearer t0ken-for-the-test';
    expect(peer!.requests).toEqual([
      `GET /v1/info ${bearer}`,
      `POST /v1/release ${bearer}`,
      `POST /v1/release ${bearer}`,
      `POST /v1/release ${bearer}`,
      `POST /v1/act ${bearer}`,
      `POST /v1/release ${bearer}`,
    ]);
    // One connection per request: each was dropped after its reply, or timed out.
    expect(peer!.connections()).toBe(6);
  });
});
