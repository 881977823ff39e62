/**
 * RuntimeRemoteTier as the Runtime's remote extension, over a real Redis:
 * the runtime alone drains the manager; blocks it drops (from device, or
 * from host after a demotion) are saved with the bytes the engine wrote,
 * blocks never written are not, and another runtime loads them at admit.
 */
import { describe, expect, it } from 'vitest';

import { BlockManager } from '../../src/blocks/block_manager.js';
import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { RemoteBlockStore } from '../../src/remote/block_store.js';
import { RuntimeRemoteTier } from '../../src/remote/runtime_remote_tier.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { redisForTests } from './redis_server.js';

const BS = 4;
const BYTES = 64;

const ctx = redisForTests();

/** The engine's KV bytes of a block: a function of its hash. */
function bytesOf(hash: bigint): Uint8Array {
  return Uint8Array.from({ length: BYTES }, (_, i) => Number((hash >> BigInt((i % 8) * 8)) & 0xffn) ^ i);
}

/** Two full blocks per prompt, distinct per n. */
function hashesOf(n: number): BigUint64Array {
  return BigUint64Array.of(BigInt(n) * 1000n + 1n, BigInt(n) * 1000n + 2n);
}

function replica(namespace: string, options: { knownCapacity?: number } = {}) {
  const manager = new BlockManager({ blockSize: BS, bytesPerBlock: BYTES, deviceBlocks: 4, hostBlocks: 2 });
  const plane = new CpuDataPlane({ bytesPerBlock: BYTES, deviceBlocks: 4, hostBlocks: 2 });
  const store = new RemoteBlockStore(ctx.redis, { namespace, model: 'm', layout: { blockSize: BS, layout: 'opaque', dtype: 'bytes' }, bytesPerBlock: BYTES });
  const tier = new RuntimeRemoteTier(manager, plane, store, options);
  const runtime = new Runtime({ blocks: manager, policies: ['lru'], remote: tier, now: () => 0 });
  /** One call as the sidecar runs it: every reply hands the copy plan on (and so to the tier). */
  const serve = async (n: number, write: boolean) => {
    const hashes = hashesOf(n);
    await tier.prepare(n, hashes);
    const decision = runtime.admit({ requestId: n, hashes, numTokens: 2 * BS })!;
    tier.discard(n);
    runtime.takeCopyPlan();
    runtime.prefillDone(n);
    runtime.takeCopyPlan();
    const from = decision.cachedDeviceTokens / BS + decision.loadedBlocks + (decision.remoteBlocks ?? 0);
    if (write) for (let i = from; i < hashes.length; i++) expect(await tier.writeBlock(hashes[i]!, bytesOf(hashes[i]!))).toEqual({ remote: true });
    runtime.release(n);
    runtime.takeCopyPlan();
    return decision;
  };
  return { manager, plane, store, tier, runtime, serve };
}

describe('RuntimeRemoteTier', () => {
  it('is checked by the runtime, and excludes an attached data plane', () => {
    expect(() => new Runtime({ blocks: { blockSize: BS, deviceBlocks: 4 }, remote: { blockEvents() {}, admitted: () => 0 } as never })).toThrow(
      /remote\.copyPlan must be a function/,
    );
    const r = replica('rt0');
    expect(() => r.runtime.attachDataPlane(r.plane as never)).toThrow(/remote tier/);
  });

  it('saves dropped blocks with the bytes the engine wrote, taken before their slots are reused', async () => {
    // knownCapacity 0: a dropped block is saved even though its write-through put it there.
    const r = replica('rt1', { knownCapacity: 0 });
    await r.serve(1, true);
    await r.serve(2, true);
    await r.serve(3, false); // committed, never written: must never reach Redis
    await r.tier.flush();
    await ctx.redis.client.flushdb();
    // Prompts 4 and 5 push 1, 2 and 3 to host and out: the host slots are reused by the demotions of the same plans.
    await r.serve(4, true);
    await r.serve(5, true);
    await r.tier.flush();
    for (const n of [1, 2]) {
      const found = await r.store.get(hashesOf(n));
      expect(found.map((b) => (b === null ? null : new Uint8Array(b)))).toEqual(Array.from(hashesOf(n), bytesOf));
    }
    expect(await r.store.get(hashesOf(3))).toEqual([null, null]);
    expect(r.tier.stats.saved).toBe(4);
    expect(r.tier.stats.saveFailures).toBe(0);
  });

  it('lets another runtime load the blocks at admit, and serves their bytes back', async () => {
    const a = replica('rt2');
    await a.serve(7, true);
    await a.tier.flush();
    const b = replica('rt2');
    const hashes = hashesOf(7);
    expect(await b.tier.prepare(70, hashes)).toBe(2);
    const decision = b.runtime.admit({ requestId: 70, hashes, numTokens: 2 * BS + 1 })!;
    expect(decision).toMatchObject({ cachedDeviceTokens: 0, loadedBlocks: 0, remoteBlocks: 2 });
    // The bytes enter the mirror with the reply's copy plan.
    b.runtime.takeCopyPlan();
    for (const hash of hashes) expect(await b.tier.readBlock(hash)).toEqual({ bytes: bytesOf(hash), source: 'local' });
    // The blocks are committed on B: a later admit finds them on its device.
    b.runtime.release(70);
    expect(b.runtime.admit({ requestId: 71, hashes, numTokens: 2 * BS + 1 })).toMatchObject({ cachedDeviceTokens: 2 * BS, remoteBlocks: 0 });
    expect(b.tier.stats.loaded).toBe(2);
  });

  it('fills nothing when the admitted hashes are not the ones prepared', async () => {
    const a = replica('rt3');
    await a.serve(8, true);
    await a.tier.flush();
    const b = replica('rt3');
    expect(await b.tier.prepare(80, hashesOf(8))).toBe(2);
    // A salted (isolated) workload admits other hashes under the same request id.
    expect(b.runtime.admit({ requestId: 80, hashes: hashesOf(9), numTokens: 2 * BS })).toMatchObject({ remoteBlocks: 0 });
  });
});
