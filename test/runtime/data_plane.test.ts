/**
 * The runtime driving a data plane on each backend: every copy plan runs
 * there, demoted blocks keep their bytes, and a prefetch from act() lands
 * the blocks on the device and is reported once, as a drained completion.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { Tier } from '../../src/blocks/types.js';
import { selectBackend, type BackendName } from '../../src/compute/backend.js';
import { probeWebGpu, releaseWebGpu } from '../../src/compute/webgpu/device.js';
import type { Action, Policy } from '../../src/policies/types.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { blockBytes } from '../../src/sim/simulator.js';

const probe = await probeWebGpu();
if (!probe.available && process.env.CI) throw new Error(`CI must run the WebGPU data-plane tests: ${probe.reason}`);
if (!probe.available) process.stderr.write(`runtime data plane: WebGPU cases skipped: ${probe.reason}\n`);
afterAll(releaseWebGpu);

const BS = 4;
const BYTES = 64;

/** A policy that prefetches the blocks it is told to at the next act(). */
function prefetcher(): Policy & { next: Int32Array | null } {
  const policy: Policy & { next: Int32Array | null } = {
    name: 'prefetcher',
    next: null,
    act(): Action[] {
      const ids = policy.next;
      policy.next = null;
      return ids ? [{ type: 'prefetch', blockIds: ids }] : [];
    },
  };
  return policy;
}

const backends: BackendName[] = probe.available ? ['cpu', 'webgpu'] : ['cpu'];

describe.each(backends)('runtime with a %s data plane', (name) => {
  it('runs every copy plan there, keeps demoted bytes, and reports a prefetch once it lands', async () => {
    const selection = await selectBackend(name);
    const plane = await selection.backend.createDataPlane({ bytesPerBlock: BYTES, deviceBlocks: 16, hostBlocks: 64 });
    const pre = prefetcher();
    const rt = new Runtime({
      blocks: { blockSize: BS, deviceBlocks: 16, hostBlocks: 64, bytesPerBlock: BYTES },
      policies: ['lru', pre],
      backend: selection,
      // Room for the prefetch: act() first demotes down to 4 free blocks (a
      // prefetch never displaces a higher-scored block).
      reclaim: { freeBlocks: 4 },
      now: () => 0,
    });
    expect(() => rt.attachDataPlane({ ...plane, deviceBlocks: 8 })).toThrow(RangeError);
    rt.attachDataPlane(plane);
    expect(() => rt.takeCopyPlan()).toThrow(/sync/);

    // Twelve 2-block prompts through a 16-block device: most get demoted.
    const prompts: BigUint64Array[] = [];
    for (let r = 1; r <= 12; r++) {
      const tokens = Uint32Array.from({ length: 2 * BS }, (_, i) => r * 1000 + i);
      const hashes = hashTokenBlocks(tokens, BS);
      prompts.push(hashes);
      const decision = rt.admit({ requestId: r, hashes, numTokens: tokens.length, time: r });
      expect(decision).not.toBeNull();
      // Demotions that made room run before the engine writes the new KV.
      await rt.sync();
      const ids = rt.prefillDone(r, r);
      const m = rt.manager.metadata;
      for (const id of ids) await plane.write('device', m.slot[id]!, blockBytes(m.hash[id]!, BYTES));
      rt.release(r, r);
    }
    await rt.sync();
    const m = rt.manager.metadata;
    const onHost = rt.manager.lookup(prompts[0]!);
    expect(onHost.hostBlocks).toBe(2);
    const hostIds = onHost.blockIds;
    for (const id of hostIds) expect(m.tier[id]).toBe(Tier.Host);

    pre.next = hostIds;
    // Reclaim runs on the backend's hit scoring (awaited here: WebGPU's is asynchronous).
    expect((await rt.refresh(19)).reclaimed).toBe(4);
    const acted = rt.act(20);
    expect(acted.prefetched).toBe(2);
    expect(rt.stats.refresh.runs).toBeGreaterThan(0);
    await rt.sync();
    const done = rt.takePrefetchCompletions();
    expect(done.map((d) => Array.from(d.blockIds))).toEqual([Array.from(hostIds)]);
    expect(Array.from(done[0]!.blockIds)).toEqual(Array.from(hostIds));
    expect(rt.takePrefetchCompletions()).toEqual([]);

    // Every cached block, prefetched ones included, has the bytes written for its hash.
    let checked = 0;
    for (let id = 0; id < rt.manager.numBlockIds; id++) {
      if (m.committed[id] !== 1 || (m.tier[id] !== Tier.Device && m.tier[id] !== Tier.Host)) continue;
      const bytes = await plane.read(m.tier[id] === Tier.Device ? 'device' : 'host', m.slot[id]!);
      expect(bytes).toEqual(blockBytes(m.hash[id]!, BYTES));
      checked++;
    }
    expect(checked).toBe(24);
    for (const id of hostIds) expect(m.tier[id]).toBe(Tier.Device);
    plane.destroy();
    selection.backend.destroy();
  });
});
