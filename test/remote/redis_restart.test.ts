/**
 * Redis killed mid-run and restarted: requests keep being served from the
 * local tiers (no failure, no wrong byte), and the replicas rejoin the
 * restarted, empty server and share blocks again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openRedis, type RedisConnection } from '../../src/remote/redis.js';
import { RedisServer } from './redis_server.js';
import { kvBytes, prompt, Replica } from './replica.js';

let server: RedisServer;
let redisA: RedisConnection;
let redisB: RedisConnection;

beforeAll(async () => {
  server = new RedisServer();
  await server.start();
  const options = { url: server.url, commandTimeoutMs: 500, connectTimeoutMs: 500, maxReconnectDelayMs: 100 };
  redisA = await openRedis(options);
  redisB = await openRedis(options);
});

afterAll(async () => {
  await redisA?.close();
  await redisB?.close();
  await server?.stop();
});

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('RemoteTier across a Redis restart', () => {
  it('fails no request, corrupts no block, and rejoins', async () => {
    const a = new Replica('a', redisA, 'restart');
    const b = new Replica('b', redisB, 'restart');
    const served: Array<Awaited<ReturnType<Replica['serve']>>> = [];
    let remoteDuringOutage = 0;
    for (let i = 0; i < 36; i++) {
      // SIGKILLed while this request's lookup and the saves before it are in flight.
      const killed = i === 12 ? server.kill() : null;
      if (i === 24) {
        const epochs = [redisA.epoch(), redisB.epoch()];
        await server.start();
        await until(() => redisA.epoch() > epochs[0]! && redisB.epoch() > epochs[1]!, 5000);
      }
      const replica = i % 2 === 0 ? a : b;
      // Prompts from a small pool, so both replicas hit, evict and reload.
      const result = await replica.serve(prompt((i * 7) % 9));
      await killed;
      if (i > 12 && i < 24) remoteDuringOutage += result.admitted?.remoteBlocks ?? 0;
      served.push(result);
    }
    // No request failed, and every block every request ran on held the bytes of its hash.
    for (const { admitted, hashes, deviceBytes } of served) {
      expect(admitted).not.toBeNull();
      deviceBytes.forEach((bytes, k) => expect(Buffer.from(bytes).equals(Buffer.from(kvBytes(hashes[k]!)))).toBe(true));
    }
    expect(remoteDuringOutage).toBe(0);
    expect(a.tier.store.stats.errors + b.tier.store.stats.errors).toBeGreaterThan(0);
    expect(a.tier.stats.loaded + b.tier.stats.loaded).toBeGreaterThan(0);

    // Rejoined: a block first computed on A after the restart reaches B through the new server.
    const fresh = await a.serve(prompt(50));
    expect(await a.tier.share(fresh.blockIds)).toBe(4);
    const hit = await b.serve(prompt(50));
    expect(hit.admitted!.remoteBlocks).toBe(4);
    hit.deviceBytes.forEach((bytes, k) => expect(Buffer.from(bytes).equals(Buffer.from(kvBytes(hit.hashes[k]!)))).toBe(true));
  });
});
