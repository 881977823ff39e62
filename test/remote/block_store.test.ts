/**
 * RemoteBlockStore on a real redis-server: bytes-first writes, validated
 * reads, prefix reads, and what a reader does with torn or foreign values.
 */
import { crc32 } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { blockChecksum, RemoteBlockStore } from '../../src/remote/block_store.js';
import { openRedis, type RedisConnection } from '../../src/remote/redis.js';
import { RedisServer } from './redis_server.js';

const BYTES = 4096;
const layout = { blockSize: 16, layout: 'L2.KVH2.D64', dtype: 'float16' };
const block = (seed: number) => Buffer.from(Uint8Array.from({ length: BYTES }, (_, i) => (i * 31 + seed * 7) & 0xff));

let server: RedisServer;
let connection: RedisConnection;

beforeAll(async () => {
  server = new RedisServer();
  await server.start();
  connection = await openRedis({ url: server.url, commandTimeoutMs: 1000 });
});

afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

const store = (options: Partial<ConstructorParameters<typeof RemoteBlockStore>[1]> = {}) =>
  new RemoteBlockStore(connection.client, { model: 'test-model', layout, bytesPerBlock: BYTES, writer: 'replica-a', ...options });

describe('RemoteBlockStore', () => {
  it('writes bytes and then the commit record, and reads back equal bytes', async () => {
    const s = store({ namespace: 't1' });
    expect(await s.put([1n, 2n ** 64n - 1n], [block(1), block(2)])).toBe(2);
    const [a, b, missing] = await s.get([1n, 2n ** 64n - 1n, 3n]);
    expect(a!.equals(block(1))).toBe(true);
    expect(b!.equals(block(2))).toBe(true);
    expect(missing).toBeNull();
    const record = JSON.parse((await connection.client.get(s.keys.meta(1n)))!);
    expect(record).toMatchObject({ v: 2, len: BYTES, xxh64: blockChecksum(block(1)), writer: 'replica-a' });
    expect(record.xxh64).toMatch(/^[0-9a-f]{16}$/);
    expect(s.keys.data(1n)).toBe('t1:kv:v1:test-model:bs16.L2.KVH2.D64.float16:{0000000000000001}:data');
    expect(s.stats).toMatchObject({ written: 2, lookups: 3, hits: 2, misses: 1, invalid: 0, errors: 0 });
  });

  it('reads records of format 1 (a CRC-32 of the bytes), as earlier versions wrote them, and checks their bytes too', async () => {
    const s = store({ namespace: 't1b' });
    const formatOne = (hash: bigint, crc: number) =>
      connection.client.set(s.keys.meta(hash), JSON.stringify({ v: 1, len: BYTES, crc32: crc, writer: 'old-replica', at: 1 }));
    await connection.client.set(s.keys.data(30n), block(30));
    await formatOne(30n, crc32(block(30)));
    await connection.client.set(s.keys.data(31n), block(31));
    await formatOne(31n, crc32(block(31)) ^ 1);
    // A format-2 record with a malformed checksum, and one of a format this version does not know.
    await connection.client.set(s.keys.data(32n), block(32));
    await connection.client.set(s.keys.meta(32n), JSON.stringify({ v: 2, len: BYTES, xxh64: 'not-hex', writer: 'x', at: 1 }));
    await connection.client.set(s.keys.data(33n), block(33));
    await connection.client.set(s.keys.meta(33n), JSON.stringify({ v: 3, len: BYTES, xxh64: blockChecksum(block(33)), writer: 'x', at: 1 }));
    const [good, corrupt, malformed, unknown] = await s.get([30n, 31n, 32n, 33n]);
    expect(good!.equals(block(30))).toBe(true);
    expect([corrupt, malformed, unknown]).toEqual([null, null, null]);
    expect(s.stats).toMatchObject({ hits: 1, misses: 3, invalid: 3 });
  });

  it('reads only the leading run of a prompt', async () => {
    const s = store({ namespace: 't2' });
    await s.put([10n, 11n, 13n], [block(10), block(11), block(13)]);
    const run = await s.getPrefix([10n, 11n, 12n, 13n]);
    expect(run.map((b) => b.equals(block(Number(10 + run.indexOf(b)))))).toEqual([true, true]);
    expect(await s.prefixLength([10n, 11n, 12n, 13n])).toBe(2);
  });

  it('treats bytes without a record as unwritten, and a record whose bytes do not match as a miss', async () => {
    const s = store({ namespace: 't3' });
    // An unfinished write: bytes landed, the record did not.
    await connection.client.set(s.keys.data(20n), block(20));
    expect(await s.get([20n])).toEqual([null]);
    // A record whose bytes were overwritten (a different value under the same key).
    await s.put([21n], [block(21)]);
    await connection.client.set(s.keys.data(21n), block(99));
    expect(await s.get([21n])).toEqual([null]);
    // Bytes of the wrong length.
    await s.put([22n], [block(22)]);
    await connection.client.set(s.keys.data(22n), Buffer.alloc(10));
    // A record that is not JSON.
    await connection.client.set(s.keys.meta(23n), 'garbage');
    expect(await s.get([22n, 23n])).toEqual([null, null]);
    expect(s.stats.invalid).toBe(3);
    expect(s.stats.hits).toBe(0);
  });

  it('keeps models and layouts apart', async () => {
    const a = store({ namespace: 't4' });
    await a.put([5n], [block(5)]);
    expect(await store({ namespace: 't4', model: 'other' }).get([5n])).toEqual([null]);
    expect(await store({ namespace: 't4', layout: { ...layout, dtype: 'bfloat16' } }).get([5n])).toEqual([null]);
  });

  it('refuses bad arguments with errors naming them', async () => {
    expect(() => store({ bytesPerBlock: 0 })).toThrow(/options\.bytesPerBlock must be in/);
    expect(() => store({ layout: { blockSize: 16, layout: '', dtype: 'f16' } })).toThrow(/layout\.layout must be a non-empty string/);
    expect(() => store({ model: 'm', ttlSeconds: -1 })).toThrow(/options\.ttlSeconds/);
    expect(() => new RemoteBlockStore({} as never, { model: 'm', layout, bytesPerBlock: 1 })).toThrow(/redis must be a connection from openRedis or an ioredis client/);
    const s = store();
    await expect(s.put([1n], [Buffer.alloc(3)])).rejects.toThrow(/blocks\[0\] must be a Uint8Array of 4096 bytes/);
    await expect(s.get([1] as never)).rejects.toThrow(/hashes must be a BigUint64Array/);
  });
});
