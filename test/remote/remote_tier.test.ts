/**
 * RemoteTier: blocks a replica drops go to Redis, and another replica
 * loads them into fresh device blocks instead of computing them.
 */
import { describe, expect, it } from 'vitest';

import { RemoteTier } from '../../src/remote/remote_tier.js';
import { redisForTests } from './redis_server.js';
import { BLOCK_SIZE, kvBytes, prompt, Replica } from './replica.js';

const ctx = redisForTests();

describe('RemoteTier', () => {
  it('saves blocks dropped from host, and replica B loads a block first computed on A with equal bytes', async () => {
    const a = new Replica('a', ctx.redis, 'rt1');
    const b = new Replica('b', ctx.redis, 'rt1');
    const first = await a.serve(prompt(1));
    expect(first.admitted!.cachedTokens).toBe(0);
    // Three more prompts push prompt 1 off the device (8 blocks) and then off the host (4 blocks).
    for (const n of [2, 3, 4]) await a.serve(prompt(n));
    await a.tier.flush();
    expect(a.manager.lookup(first.hashes)).toMatchObject({ deviceBlocks: 0, hostBlocks: 0 });
    expect(a.tier.stats.saved).toBe(4);

    const hit = await b.serve(prompt(1));
    expect(hit.admitted).toMatchObject({ remoteBlocks: 4, cachedTokens: 4 * BLOCK_SIZE, cachedDeviceTokens: 0, loadedBlocks: 0 });
    hit.deviceBytes.forEach((bytes, i) => expect(Buffer.from(bytes).equals(Buffer.from(first.deviceBytes[i]!))).toBe(true));
    expect(b.tier.stats.loaded).toBe(4);
    // Now cached on B's device like any computed block.
    expect(b.manager.lookup(first.hashes).deviceBlocks).toBe(4);
  });

  it('loads only the run that continues the local prefix', async () => {
    const a = new Replica('a', ctx.redis, 'rt2');
    const b = new Replica('b', ctx.redis, 'rt2');
    const long = await a.serve(prompt(7, 6));
    expect(await a.tier.share(long.blockIds)).toBe(6);
    // B holds the first two blocks itself (a shorter prompt of the same tokens).
    await b.serve(prompt(7, 6).subarray(0, 2 * BLOCK_SIZE));
    const hit = await b.serve(prompt(7, 6));
    expect(hit.admitted).toMatchObject({ cachedDeviceTokens: 2 * BLOCK_SIZE, remoteBlocks: 4, cachedTokens: 6 * BLOCK_SIZE });
    hit.deviceBytes.forEach((bytes, i) => expect(Buffer.from(bytes).equals(Buffer.from(kvBytes(hit.hashes[i]!)))).toBe(true));
  });

  it('refuses parts that do not fit together', () => {
    const a = new Replica('a', ctx.redis, 'rt3');
    const narrowPlane = { bytesPerBlock: 8, execute() {}, read: () => new Uint8Array(8), write() {} };
    expect(() => new RemoteTier(a.manager, narrowPlane, a.tier.store)).toThrow(/bytesPerBlock differs: manager 1024, data plane 8, store 1024/);
    expect(() => new RemoteTier(a.manager, a.plane, a.tier.store, { maxPendingBytes: -1 })).toThrow(/options\.maxPendingBytes must be in/);
    expect(() => new RemoteTier(a.manager, a.plane, a.tier.store, { onEvent: () => {} } as never)).toThrow(/unknown option "onEvent"/);
  });
});
