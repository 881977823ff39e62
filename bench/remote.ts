/**
 * The remote tier's throughput against plain Redis: RemoteBlockStore.put /
 * get (bytes, then the commit record; records, then validated bytes)
 * against plain ioredis SET / GET of the same bytes (the faster of a
 * pipeline object and all commands in flight at once), on a redis-server of
 * its own on loopback.
 *
 *   npm run --silent bench:remote -- [--json] [--quick]
 *
 * Blocks of 2 MiB and 256 KiB (a 16-token block of a large and of a small
 * model), 64 MiB per batch. Each figure is the median of several rounds;
 * the JSON totals are bytes over time summed across both block sizes.
 * Loopback numbers on a shared machine are noisy: compare the ratios.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { RemoteBlockStore } from '../src/remote/block_store.js';
import { openRedis } from '../src/remote/redis.js';

const args = process.argv.slice(2);
for (const a of args) {
  if (a !== '--json' && a !== '--quick') {
    process.stderr.write(`bench:remote: unknown flag ${a} (expected --json, --quick)\n`);
    process.exit(2);
  }
}
const json = args.includes('--json');
const rounds = args.includes('--quick') ? 3 : 7;
const BATCH_BYTES = 64 * 1024 * 1024;
const SIZES = [2 * 1024 * 1024, 256 * 1024];
const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

interface SizeRow {
  blockBytes: number;
  blocks: number;
  seconds: { write: number; read: number; plainSet: number; plainGet: number };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cachesage-bench-redis-'));
  const port = await freePort();
  const server = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const stop = () => {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  await new Promise((r) => setTimeout(r, 300));
  const redis = await openRedis({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 60_000, connectTimeoutMs: 5000 });
  if (redis.client.status !== 'ready') throw new Error(`bench:remote: redis-server (${REDIS_SERVER}) did not start: ${redis.lastError()}`);
  const client = redis.client;

  const rows: SizeRow[] = [];
  for (const blockBytes of SIZES) {
    const blocks = BATCH_BYTES / blockBytes;
    const store = new RemoteBlockStore(redis, {
      namespace: 'bench',
      model: 'bench-model',
      layout: { blockSize: 16, layout: `bytes${blockBytes}`, dtype: 'bfloat16' },
      bytesPerBlock: blockBytes,
      writer: 'bench',
    });
    const data = Array.from({ length: blocks }, (_, i) => {
      const b = Buffer.allocUnsafe(blockBytes);
      for (let k = 0; k < blockBytes; k += 4) b.writeUInt32LE((k * 2654435761 + i) >>> 0, k);
      return b;
    });
    const hashes = BigUint64Array.from(data, (_, i) => BigInt(i + 1) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn);
    const plainKeys = data.map((_, i) => `bench:plain:${blockBytes}:${i}`);
    const s = {
      write: [] as number[],
      read: [] as number[],
      setPipeline: [] as number[],
      setInFlight: [] as number[],
      getPipeline: [] as number[],
      getInFlight: [] as number[],
    };
    for (let round = 0; round < rounds; round++) {
      // Plain Redis two ways, a pipeline object and every command in flight at once; the faster median counts.
      s.setPipeline.push(
        await timed(async () => {
          const p = client.pipeline();
          plainKeys.forEach((k, i) => p.set(k, data[i]!));
          await p.exec();
        }),
      );
      s.setInFlight.push(await timed(() => Promise.all(plainKeys.map((k, i) => client.set(k, data[i]!)))));
      s.write.push(
        await timed(async () => {
          if ((await store.put(hashes, data)) !== blocks) throw new Error('bench:remote: a write failed');
        }),
      );
      s.getPipeline.push(
        await timed(async () => {
          const p = client.pipeline();
          for (const k of plainKeys) p.getBuffer(k);
          await p.exec();
        }),
      );
      s.getInFlight.push(await timed(() => Promise.all(plainKeys.map((k) => client.getBuffer(k)))));
      s.read.push(
        await timed(async () => {
          const got = await store.get(hashes);
          if (got.some((b) => b === null)) throw new Error('bench:remote: a read missed');
        }),
      );
    }
    rows.push({
      blockBytes,
      blocks,
      seconds: {
        write: median(s.write),
        read: median(s.read),
        plainSet: Math.min(median(s.setPipeline), median(s.setInFlight)),
        plainGet: Math.min(median(s.getPipeline), median(s.getInFlight)),
      },
    });
  }
  await redis.close();

  const total = (key: keyof SizeRow['seconds']) => (rows.length * BATCH_BYTES) / rows.reduce((t, r) => t + r.seconds[key], 0) / 1e9;
  const gbs = (r: SizeRow, key: keyof SizeRow['seconds']) => BATCH_BYTES / r.seconds[key] / 1e9;
  const result = {
    writeGBs: total('write'),
    readGBs: total('read'),
    plainSetGBs: total('plainSet'),
    plainGetGBs: total('plainGet'),
    writeRatio: total('write') / total('plainSet'),
    readRatio: total('read') / total('plainGet'),
    sizes: rows.map((r) => ({
      blockBytes: r.blockBytes,
      blocks: r.blocks,
      writeGBs: gbs(r, 'write'),
      readGBs: gbs(r, 'read'),
      plainSetGBs: gbs(r, 'plainSet'),
      plainGetGBs: gbs(r, 'plainGet'),
    })),
    rounds,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const f = (x: number) => x.toFixed(2).padStart(8);
    process.stdout.write(`block bytes   write   plain SET    read   plain GET   (GB/s, median of ${rounds})\n`);
    for (const r of result.sizes) {
      process.stdout.write(`${String(r.blockBytes).padStart(11)} ${f(r.writeGBs)} ${f(r.plainSetGBs)}    ${f(r.readGBs)} ${f(r.plainGetGBs)}\n`);
    }
    process.stdout.write(`write/plain SET ${result.writeRatio.toFixed(2)}   read/plain GET ${result.readRatio.toFixed(2)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:remote: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
