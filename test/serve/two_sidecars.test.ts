/**
 * Two `cachesage serve --redis` processes sharing one real redis-server:
 * B hits the blocks A's engine computed (the bytes A's engine wrote), B
 * predicts a workload only A served, and when Redis dies mid-run no
 * request fails; when it returns both rejoin and share again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BATCH_OPS, BATCH_RESULT } from '../../src/serve/batch.js';
import { RedisServer } from '../remote/redis_server.js';
import { batch } from './sidecar.js';
import {
  BLOCK_SIZE,
  BYTES,
  call,
  getBlock,
  killAll,
  kvBytes,
  promptHashes,
  putBlock,
  serveCall,
  startServe,
  waitFor,
  walk,
  type RunningSidecar,
} from './two_sidecars_fixture.js';

let redis: RedisServer;
let a: RunningSidecar;
let b: RunningSidecar;

function args(replica: string): string[] {
  return [
    '--device-blocks', '16', '--block-size', String(BLOCK_SIZE), '--bytes-per-block', String(BYTES),
    '--redis', redis.url, '--replica-id', replica, '--model-key', 'test-model', '--exchange-interval', '0.1',
  ];
}

beforeAll(async () => {
  redis = new RedisServer();
  await redis.start();
  [a, b] = await Promise.all([startServe(args('a')), startServe(args('b'))]);
}, 60_000);

afterAll(async () => {
  killAll();
  await redis?.stop();
});

const top = (next: Record<string, number>) => Object.entries(next).sort((x, y) => y[1] - x[1])[0]![0];

async function remoteInfo(url: string): Promise<any> {
  return (await call(url, '/v1/info')).body.remote;
}

async function predict(url: string, session: string): Promise<any> {
  const reply = await call(url, '/v1/predict', { session });
  expect(reply.status).toBe(200);
  return reply.body.prediction;
}

/** Waits until B, which never served `workload`, predicts for a fresh session of it exactly what A predicts. */
async function samePredictions(workload: string, probe: string): Promise<{ pa: any; pb: any }> {
  await walk(a.url, workload, `${probe}-a`, [], 5000, false);
  await walk(b.url, workload, `${probe}-b`, [], 5000, false);
  const pa = await predict(a.url, `${probe}-a`);
  let last: unknown = null;
  const pb = await waitFor(() => `B's ${workload} predictions to match A's (A: ${JSON.stringify(pa)}; B: ${JSON.stringify(last)})`, async () => {
    const p = await predict(b.url, `${probe}-b`);
    last = p;
    if (p === null || Object.keys(p.next).length !== Object.keys(pa.next).length) return null;
    return Object.keys(pa.next).every((agent) => Math.abs(p.next[agent] - pa.next[agent]) < 1e-9) ? p : null;
  });
  return { pa, pb };
}

describe('two sidecars, one Redis', () => {
  it('announces the remote tier and its replica id', () => {
    expect(a.line).toMatch(/remote tier redis:\/\/127\.0\.0\.1:\d+ as a, connected/);
    expect(b.line).toMatch(/remote tier redis:\/\/127\.0\.0\.1:\d+ as b, connected/);
  });

  it('B hits the blocks A computed, with the bytes A wrote', async () => {
    const hashes = promptHashes('shared-system-prompt', 3);
    const tags = { session: 's1', workload: 'dev', agent: 'planner', time: 1 };
    const onA = await serveCall(a.url, 1, hashes, tags);
    expect(onA.admit).toMatchObject({ cachedDeviceTokens: 0, loadedBlocks: 0, remoteBlocks: 0 });
    expect(onA.puts).toEqual([{ stored: true, remote: true }, { stored: true, remote: true }, { stored: true, remote: true }]);

    // B never saw these blocks: they come from Redis, committed on B before its engine computes anything.
    const admit = await call(b.url, '/v1/admit', { requestId: 1, hashes: hashes.map(String), numTokens: 3 * BLOCK_SIZE + 1, session: 's2', agent: { workload: 'dev', agent: 'planner' }, time: 1 });
    expect(admit.status).toBe(200);
    expect(admit.body).toMatchObject({ admitted: true, cachedDeviceTokens: 0, loadedBlocks: 0, remoteBlocks: 3 });
    for (const hash of hashes) {
      const block = await getBlock(b.url, hash);
      expect(block.status).toBe(200);
      expect(block.source).toBe('local');
      expect(block.bytes).toEqual(kvBytes(hash));
    }
    // A block B has nowhere, locally or remotely, is a 404 naming it.
    const unknown = promptHashes('never-computed', 1)[0]!;
    expect((await getBlock(b.url, unknown)).status).toBe(404);
    expect((await remoteInfo(b.url)).blocks).toMatchObject({ loaded: 3, written: 0 });
    expect((await call(b.url, '/v1/release', { requestId: 1, time: 2 })).status).toBe(200);

    // A prompt that extends the shared one: B loads the shared prefix again from its own device tier.
    const longer = promptHashes('shared-system-prompt', 4);
    const again = await serveCall(b.url, 2, longer, { session: 's2', workload: 'dev', agent: 'coder', time: 3 });
    expect(again.admit).toMatchObject({ cachedDeviceTokens: 3 * BLOCK_SIZE, remoteBlocks: 0 });
    expect(again.puts).toEqual([{ stored: true, remote: true }]);
    // ...and A, in turn, loads the block only B computed.
    const fromB = await call(a.url, '/v1/admit', { requestId: 9, hashes: longer.map(String), numTokens: 4 * BLOCK_SIZE + 1 });
    expect(fromB.body).toMatchObject({ admitted: true, cachedDeviceTokens: 3 * BLOCK_SIZE, remoteBlocks: 1 });
    expect((await getBlock(a.url, longer[3]!)).bytes).toEqual(kvBytes(longer[3]!));
    await call(a.url, '/v1/release', { requestId: 9 });
  });

  it('loads from the remote tier for admits in /v1/batch too (a sixth result element)', async () => {
    const hashes = promptHashes('batched-prompt', 2);
    await serveCall(a.url, 30, hashes, { session: 'b1', workload: 'dev', agent: 'planner', time: 10 });
    const reply = await batch(b.url, [[BATCH_OPS.admit, 30, 2 * BLOCK_SIZE + 1, hashes], [BATCH_OPS.release, 30]]);
    expect(reply.status).toBe(200);
    expect(reply.body.results[0].slice(0, 3)).toEqual([BATCH_RESULT.ok, 0, 0]);
    expect(reply.body.results[0][5]).toBe(2);
    expect(reply.body.results[1]).toEqual([BATCH_RESULT.ok]);
    for (const hash of hashes) expect((await getBlock(b.url, hash)).bytes).toEqual(kvBytes(hash));
  });

  it('refuses a block of the wrong size and one no local request committed', async () => {
    const [hash] = promptHashes('shared-system-prompt', 1);
    const short = await putBlock(a.url, hash!, new Uint8Array(BYTES - 1));
    expect(short.status).toBe(400);
    expect(short.body.message).toMatch(/exactly 256 bytes \(--bytes-per-block\), got 255/);
    const stranger = await putBlock(a.url, promptHashes('nobody', 1)[0]!, new Uint8Array(BYTES));
    expect(stranger.status).toBe(404);
    expect(stranger.body.message).toMatch(/no committed block has hash/);
  });

  it('B predicts, for a workload only A served, what A predicts', async () => {
    let t = 100;
    for (let s = 0; s < 8; s++) t = await walk(a.url, 'review', `review-${s}`, ['planner', 'coder', 'reviewer', ...(s % 2 ? ['tester'] : [])], t);
    const { pa, pb } = await samePredictions('review', 'probe-review');
    expect(top(pa.next)).toBe('planner');
    expect(top(pb.next)).toBe('planner');
    for (const agent of Object.keys(pa.reuseWithin)) expect(pb.reuseWithin[agent]).toBeCloseTo(pa.reuseWithin[agent], 5);
  });

  it('keeps serving while Redis is down, says so, and rejoins when it returns', async () => {
    await redis.kill();
    await waitFor('both sidecars to see Redis gone', async () => ((await remoteInfo(a.url)).connected || (await remoteInfo(b.url)).connected ? null : true));

    // Every call of engines and frameworks still succeeds (serveCall throws on any non-200).
    const outage = promptHashes('during-outage', 3);
    const onA = await serveCall(a.url, 20, outage, { session: 'o1', workload: 'ops', agent: 'triager', time: 200 });
    expect(onA.puts).toEqual([{ stored: true, remote: false }, { stored: true, remote: false }, { stored: true, remote: false }]);
    expect((await getBlock(a.url, outage[0]!)).bytes).toEqual(kvBytes(outage[0]!));
    const onB = await serveCall(b.url, 20, outage, { session: 'o2', workload: 'batch', agent: 'loader', time: 200 });
    expect(onB.admit).toMatchObject({ admitted: true, cachedDeviceTokens: 0, remoteBlocks: 0 });
    let t = 300;
    for (let s = 0; s < 6; s++) t = await walk(a.url, 'ops', `ops-${s}`, ['triager', 'fixer', ...(s % 3 ? [] : ['verifier'])], t);
    expect(await predict(a.url, 'o1')).not.toBeNull();

    const down = await remoteInfo(a.url);
    expect(down.connected).toBe(false);
    expect(down.lastError).toMatch(/ECONNREFUSED|Connection|closed/i);
    const metrics = await call(a.url, '/metrics');
    expect(metrics.body).toMatch(/^cachesage_remote_connected 0$/m);
    // The exchange publishes on its own clock (every 0.1 s here): its failed publish is counted when it comes.
    await waitFor('the exchange to count a failed publish', async () =>
      /^cachesage_remote_errors_total\{part="exchange"\} [1-9]/m.test((await call(a.url, '/metrics')).body) ? true : null);

    await redis.start();
    await waitFor('both sidecars to rejoin Redis', async () => ((await remoteInfo(a.url)).connected && (await remoteInfo(b.url)).connected ? true : null));
    expect((await remoteInfo(a.url)).connections).toBeGreaterThanOrEqual(2);
    expect((await call(b.url, '/metrics')).body).toMatch(/^cachesage_remote_connected 1$/m);

    // The restarted Redis is empty; blocks computed from now on are shared again...
    const after = promptHashes('after-restart', 2);
    const put = await serveCall(a.url, 21, after, { session: 'o1', workload: 'ops', agent: 'fixer', time: t + 1 });
    expect(put.puts).toEqual([{ stored: true, remote: true }, { stored: true, remote: true }]);
    const hit = await serveCall(b.url, 21, after, { session: 'o2', workload: 'batch', agent: 'writer', time: t + 1 });
    expect(hit.admit).toMatchObject({ remoteBlocks: 2 });
    expect((await getBlock(b.url, after[1]!)).bytes).toEqual(kvBytes(after[1]!));
    // ...and what A learned during the outage, of a workload B never served, reaches B: A's publishes resumed.
    const { pa, pb } = await samePredictions('ops', 'probe-ops');
    expect(top(pb.next)).toBe(top(pa.next));
  }, 30_000);
});
