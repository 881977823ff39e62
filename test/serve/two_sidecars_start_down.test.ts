/**
 * `cachesage serve --redis` started while Redis is not there: it listens
 * and serves every call from its local tiers, says so, joins Redis once it
 * comes up, and stops cleanly.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { freePort, RedisServer } from '../remote/redis_server.js';
import { BLOCK_SIZE, BYTES, call, getBlock, killAll, kvBytes, promptHashes, serveCall, startServe, waitFor } from './two_sidecars_fixture.js';

const redis = new RedisServer();

afterAll(async () => {
  killAll();
  await redis.stop();
});

describe('a sidecar whose Redis is down at start', () => {
  it('serves from its local tiers, reports it, and joins Redis when it comes up', async () => {
    // The port Redis will have: nothing listens there yet (outside the
    // ephemeral range, so the sidecar's reconnects cannot take it).
    redis.port = await freePort();
    const sidecar = await startServe(['--device-blocks', '8', '--block-size', String(BLOCK_SIZE), '--bytes-per-block', String(BYTES), '--redis', redis.url, '--replica-id', 'lonely']);
    expect(sidecar.line).toMatch(/remote tier redis:\/\/127\.0\.0\.1:\d+ as lonely, not reachable yet/);

    const before = promptHashes('before-redis', 2);
    const served = await serveCall(sidecar.url, 1, before, { session: 's', workload: 'dev', agent: 'coder', time: 1 });
    expect(served.admit).toMatchObject({ admitted: true, remoteBlocks: 0 });
    expect(served.puts).toEqual([{ stored: true, remote: false }, { stored: true, remote: false }]);
    expect((await getBlock(sidecar.url, before[1]!)).bytes).toEqual(kvBytes(before[1]!));
    const info = (await call(sidecar.url, '/v1/info')).body.remote;
    expect(info).toMatchObject({ replica: 'lonely', connected: false, connections: 0 });
    expect(info.lastError).toMatch(/ECONNREFUSED/);

    await redis.start();
    await waitFor('the sidecar to join Redis', async () => ((await call(sidecar.url, '/v1/info')).body.remote.connected ? true : null));
    const after = promptHashes('after-redis', 1);
    const shared = await serveCall(sidecar.url, 2, after, { session: 's', workload: 'dev', agent: 'coder', time: 2 });
    expect(shared.puts).toEqual([{ stored: true, remote: true }]);
    expect((await call(sidecar.url, '/metrics')).body).toMatch(/^cachesage_remote_connected 1$/m);

    // SIGTERM: a last publish, the saves in flight, the connection closed, exit 0.
    const exited = new Promise<number | null>((resolve) => sidecar.child.once('exit', resolve));
    sidecar.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 30_000);
});
