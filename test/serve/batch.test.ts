/**
 * The batched msgpack endpoint gives exactly the decisions of the
 * in-process Runtime fed the same events: block ids, block tables, cached
 * and loaded counts, act's actions, the copy plans, and in the end which
 * blocks sit on which tier (so the same blocks were evicted and demoted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { batch, startSidecar, testRuntime, type TestSidecar } from './sidecar.js';
import { blockState, expected, OP, plain, scenario } from './scenario.js';

describe('POST /v1/batch', () => {
  let server: TestSidecar;
  beforeAll(async () => {
    server = await startSidecar({ deviceBlocks: 24, hostBlocks: 12 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers every item as the in-process runtime does, in batches of any size', async () => {
    const items = scenario(7, 6);
    const reference = testRuntime(24, 12);
    for (let start = 0, size = 1; start < items.length; start += size, size = (size * 3) % 17 + 1) {
      const chunk = items.slice(start, start + size);
      const reply = await batch(server.url, chunk);
      expect(reply.status).toBe(200);
      const want = chunk.map((item) => expected(reference, item));
      const plan = reference.takeCopyPlan();
      expect(reply.body.results.map(plain)).toEqual(want);
      const [srcTier, srcSlot, dstTier, dstSlot, stageStarts] = reply.body.copies as Uint8Array[];
      expect(Array.from(srcTier!)).toEqual(Array.from(plan.srcTier));
      expect(Array.from(dstTier!)).toEqual(Array.from(plan.dstTier));
      expect(Array.from(new Int32Array(srcSlot!.slice().buffer))).toEqual(Array.from(plan.srcSlot));
      expect(Array.from(new Int32Array(dstSlot!.slice().buffer))).toEqual(Array.from(plan.dstSlot));
      expect(Array.from(new Int32Array(stageStarts!.slice().buffer))).toEqual(Array.from(plan.stageStarts));
    }
    expect(blockState(server.runtime)).toEqual(blockState(reference));
    expect(server.runtime.info()).toEqual(reference.info());
    expect(server.runtime.stats).toEqual(reference.stats);
    // The scenario must overflow the device tier: blocks were demoted to the host tier.
    expect(blockState(reference).tier.filter((t) => t === 2).length).toBeGreaterThan(0);
  });

  it('refuses a bad item with [2, status, message] naming its field, and runs the items after it', async () => {
    const reply = await batch(server.url, [
      [OP.admit, 900, 0, [1n]],
      [OP.admit, 901, 4, [1n], 'x', 'dev'],
      [OP.release, 'seven'],
      [OP.release, 424242],
      [99],
      'not an item',
      [OP.sessionStart, -1, 'z', 'dev'],
      [OP.sessionStart, 1, 'z', 'dev', 'extra'],
      [OP.admit, 902, 4, [-1n]],
      [OP.admit, 903, 4, new Uint8Array(7)],
      [OP.admit, 904, 4, [2n ** 64n - 1n], null, null, null, 5],
      [OP.release, 904],
    ]);
    expect(reply.status).toBe(200);
    const r = reply.body.results;
    expect(r[0]).toEqual([2, 400, 'items[0] (admit).numTokens must be an integer in [1, 2147483647]']);
    expect(r[1]).toEqual([2, 400, 'items[1] (admit): workload and agent go together (both or neither)']);
    expect(r[2]).toEqual([2, 400, 'items[2] (release).requestId must be an integer in [0, 4503599627370495]']);
    expect(r[3]).toEqual([2, 404, 'release: unknown request 424242 (never admitted or already released)']);
    expect(r[4][0]).toBe(2);
    expect(r[4][2]).toMatch(/^items\[4\]\[0\] \(op\) must be one of 1, 2, 3, 4, 5, 6, 16/);
    expect(r[5]).toEqual([2, 400, 'items[5] must be a non-empty array led by an op code']);
    expect(r[6]).toEqual([2, 400, 'items[6] (session.start).time must be a finite number of seconds >= 0']);
    expect(r[7]).toEqual([2, 400, 'items[7] (session.start) has 5 fields, at most 4 expected']);
    expect(r[8]).toEqual([2, 400, 'items[8] (admit).hashes[0] must be an unsigned 64-bit value, got -1']);
    expect(r[9]).toEqual([2, 400, 'items[9] (admit).hashes must be a bin of 8-byte words, got 7 bytes']);
    expect(r[10][0]).toBe(0);
    expect(r[11]).toEqual([0]);
  });

  it('refuses a body that is not a msgpack array of items with a 4xx naming it', async () => {
    const send = (body: Uint8Array, type = 'application/msgpack') =>
      fetch(server.url + '/v1/batch', { method: 'POST', headers: { 'content-type': type }, body }).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect(await send(new Uint8Array([0xc1]))).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^body is not valid msgpack/) } });
    expect(await send(new Uint8Array([0x80]))).toMatchObject({ status: 400, body: { message: 'body must be a msgpack array of items' } });
    // An array header claiming 2^32-1 items with none behind it.
    expect(await send(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]))).toMatchObject({ status: 400 });
    expect(await send(new TextEncoder().encode('[]'), 'application/json')).toMatchObject({ status: 415, body: { message: expect.stringContaining('application/msgpack') } });
  });
});
