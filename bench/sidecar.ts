/**
 * Sidecar benchmark: `cachesage serve` in its own process, loaded by
 * keep-alive HTTP clients on loopback from this one (so the load does not
 * share the server's event loop). Three phases, each --seconds long:
 *
 *   admit+release  JSON /v1/admit then /v1/release per request, tagged
 *                  with a session and an agent: pairs/s, p50/p99 per call
 *   batch          /v1/batch with --batch engine events a request
 *                  (admit, prefill-done, release of tagged requests sharing
 *                  a system prompt): events/s and p99 per batch
 *   floor          GET /healthz, which does no work: what HTTP alone costs
 *                  on this machine, to read the other numbers against
 *   rss            the server's resident memory before and after the load,
 *                  its peak, and its growth rate over the second half of
 *                  each loaded phase (sampled from /metrics every 250 ms):
 *                  near 0 MiB/min when memory is flat under load
 *
 *   npm run --silent bench:sidecar -- [--json] [--seconds S] [--clients N] [--batch N]
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

import { decode, encode } from '@msgpack/msgpack';

const argv = process.argv.slice(2);
let json = false;
let seconds = 3;
let clients = 8;
let batchItems = 512;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  const value = () => {
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v <= 0) {
      process.stderr.write(`bench:sidecar: ${a} needs a number > 0\n`);
      process.exit(2);
    }
    return v;
  };
  if (a === '--json') json = true;
  else if (a === '--seconds') seconds = value();
  else if (a === '--clients') clients = Math.round(value());
  else if (a === '--batch') batchItems = Math.max(3, Math.round(value()));
  else {
    process.stderr.write(`bench:sidecar: unknown flag ${a} (expected --json, --seconds S, --clients N, --batch N)\n`);
    process.exit(2);
  }
}

const BLOCK_TOKENS = 16;
const SYSTEM_BLOCKS = 4;
const OWN_BLOCKS = 4;
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** Starts the sidecar; resolves to its URL and process. */
function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', '--device-blocks', '65536', '--block-size', String(BLOCK_TOKENS), '--max-batch', '100000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, stop: async () => { child.kill('SIGTERM'); await exited; } });
    });
    child.on('close', (code) => reject(new Error(`the sidecar exited with ${code} before listening`)));
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: clients });

function call(url: string, path: string, body: Uint8Array | string, type: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method: 'POST', agent, headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function get(url: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url + path, { agent }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(text));
    }).on('error', reject).end();
  });
}

/** The server's resident memory (MiB) and CPU seconds so far, from its own metrics. */
async function serverUsage(url: string): Promise<{ rssMiB: number; heapUsedMiB: number; cpuSeconds: number }> {
  const text = await get(url, '/metrics');
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssMiB: value('cachesage_process_resident_memory_bytes') / 2 ** 20,
    heapUsedMiB: value('cachesage_nodejs_heap_size_used_bytes') / 2 ** 20,
    cpuSeconds: value('cachesage_process_cpu_seconds_total'),
  };
}

/** Hash strings of a prompt: the shared system prompt, then `OWN_BLOCKS` blocks of its own. */
function promptHashes(id: number): bigint[] {
  const out: bigint[] = [];
  for (let b = 0; b < SYSTEM_BLOCKS; b++) out.push(0x5157e3000000n + BigInt(b));
  for (let b = 0; b < OWN_BLOCKS; b++) out.push((BigInt(id) << 16n) | BigInt(b + 1) | (1n << 63n));
  return out;
}

/** The server's RSS every 250 ms until stopped: [seconds, MiB] pairs. */
function sampleRss(url: string): { stop: () => Promise<[number, number][]> } {
  const samples: [number, number][] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push([performance.now() / 1000, (await serverUsage(url)).rssMiB]);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return { stop: async () => { stopped = true; await loop; return samples; } };
}

/** Least-squares slope of the second half of the samples, MiB per minute. */
function growthPerMinute(samples: [number, number][]): number {
  const tail = samples.slice(Math.floor(samples.length / 2));
  if (tail.length < 2) return NaN;
  const mt = tail.reduce((a, [t]) => a + t, 0) / tail.length;
  const mr = tail.reduce((a, [, r]) => a + r, 0) / tail.length;
  let num = 0;
  let den = 0;
  for (const [t, r] of tail) {
    num += (t - mt) * (r - mr);
    den += (t - mt) ** 2;
  }
  return den > 0 ? (60 * num) / den : NaN;
}

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function floorPhase(url: string): Promise<{ requests: number; seconds: number }> {
  let requests = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        await get(url, '/healthz');
        requests++;
      }
    }),
  );
  return { requests, seconds: (performance.now() - start) / 1000 };
}

async function admitReleasePhase(url: string): Promise<{ pairs: number; latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let pairs = 0;
  let nextId = 1;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const agentRef = { workload: 'bench', agent: `agent${c % 4}` };
      while (performance.now() < end) {
        const id = nextId++;
        const body = JSON.stringify({ requestId: id, hashes: promptHashes(id).map(String), numTokens: (SYSTEM_BLOCKS + OWN_BLOCKS) * BLOCK_TOKENS, session: `json-${c}`, agent: agentRef });
        let t = performance.now();
        const admitted = await call(url, '/v1/admit', body, 'application/json');
        latencies.push(performance.now() - t);
        if (admitted.status !== 200) throw new Error(`admit: ${admitted.status} ${admitted.body.toString()}`);
        t = performance.now();
        const released = await call(url, '/v1/release', JSON.stringify({ requestId: id }), 'application/json');
        latencies.push(performance.now() - t);
        if (released.status !== 200) throw new Error(`release: ${released.status} ${released.body.toString()}`);
        pairs++;
      }
    }),
  );
  return { pairs, latencies, seconds: (performance.now() - start) / 1000 };
}

/** Batches prepared ahead, so the clients spend their time sending, not encoding. */
function prepareBatches(count: number, firstId: number): Uint8Array[] {
  const perBatch = Math.floor(batchItems / 3);
  const bodies: Uint8Array[] = [];
  let id = firstId;
  for (let b = 0; b < count; b++) {
    const items: unknown[] = [];
    const session = `batch-${b % 64}`;
    for (let r = 0; r < perBatch; r++, id++) {
      const hashes = new Uint8Array(BigUint64Array.from(promptHashes(id)).buffer);
      items.push([16, id, (SYSTEM_BLOCKS + OWN_BLOCKS) * BLOCK_TOKENS, hashes, session, 'bench', `agent${r % 4}`]);
    }
    for (let r = 0; r < perBatch; r++) items.push([17, id - perBatch + r]);
    for (let r = 0; r < perBatch; r++) items.push([19, id - perBatch + r]);
    bodies.push(encode(items));
  }
  return bodies;
}

async function batchPhase(url: string): Promise<{ events: number; latencies: number[]; seconds: number; errors: number }> {
  const latencies: number[] = [];
  let events = 0;
  let errors = 0;
  const perBatch = Math.floor(batchItems / 3) * 3;
  // Prepared in rounds so memory stays small however long the phase runs.
  let firstId = 10_000_000;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  while (performance.now() < end) {
    const bodies = prepareBatches(clients * 4, firstId);
    firstId += clients * 4 * perBatch;
    let next = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < bodies.length && performance.now() < end) {
          const body = bodies[next++]!;
          const t = performance.now();
          const reply = await call(url, '/v1/batch', body, 'application/msgpack');
          latencies.push(performance.now() - t);
          if (reply.status !== 200) throw new Error(`batch: ${reply.status} ${reply.body.toString()}`);
          const { results } = decode(reply.body) as { results: unknown[][] };
          // Result code 2 marks a refused item: the load must be all valid.
          errors += results.filter((r) => r[0] === 2).length;
          events += perBatch;
        }
      }),
    );
  }
  return { events, latencies, seconds: (performance.now() - start) / 1000, errors };
}

const server = await startServer();
try {
  // Warm-up: the JIT, the runtime's tables, the sockets.
  const saved = seconds;
  seconds = 0.5;
  await admitReleasePhase(server.url);
  await batchPhase(server.url);
  seconds = saved;
  const beforeFloor = await serverUsage(server.url);
  const floor = await floorPhase(server.url);
  const before = await serverUsage(server.url);
  let sampler = sampleRss(server.url);
  const pairs = await admitReleasePhase(server.url);
  const pairsRss = await sampler.stop();
  const between = await serverUsage(server.url);
  sampler = sampleRss(server.url);
  const batches = await batchPhase(server.url);
  const batchRss = await sampler.stop();
  const after = await serverUsage(server.url);
  const rssStart = beforeFloor.rssMiB;
  const rssEnd = after.rssMiB;
  const report = {
    clients,
    seconds,
    admitReleasePerSec: Math.round(pairs.pairs / pairs.seconds),
    p50Ms: Number(quantile(pairs.latencies, 0.5).toFixed(3)),
    p99Ms: Number(quantile(pairs.latencies, 0.99).toFixed(3)),
    // Server CPU per unit of work: what a dedicated core would sustain, whatever else runs here.
    serverCpuUsPerPair: Number((((between.cpuSeconds - before.cpuSeconds) * 1e6) / pairs.pairs).toFixed(1)),
    eventsPerSec: Math.round(batches.events / batches.seconds),
    serverCpuUsPerEvent: Number((((after.cpuSeconds - between.cpuSeconds) * 1e6) / batches.events).toFixed(2)),
    batchItems: Math.floor(batchItems / 3) * 3,
    batchP99Ms: Number(quantile(batches.latencies, 0.99).toFixed(3)),
    refusedItems: batches.errors,
    floorRequestsPerSec: Math.round(floor.requests / floor.seconds),
    floorCpuUsPerRequest: Number((((before.cpuSeconds - beforeFloor.cpuSeconds) * 1e6) / floor.requests).toFixed(1)),
    rssStartMiB: Number(rssStart.toFixed(1)),
    rssEndMiB: Number(rssEnd.toFixed(1)),
    rssMiB: Number(rssEnd.toFixed(1)),
    rssPeakMiB: Number(Math.max(rssEnd, ...pairsRss.map(([, r]) => r), ...batchRss.map(([, r]) => r)).toFixed(1)),
    // Growth over the second half of each loaded phase: near 0 when memory is flat under load.
    rssGrowthMiBPerMin: { admitRelease: Number(growthPerMinute(pairsRss).toFixed(1)), batch: Number(growthPerMinute(batchRss).toFixed(1)) },
    // Live JS heap: it stays level while RSS follows V8's heap reservation.
    heapUsedStartMiB: Number(beforeFloor.heapUsedMiB.toFixed(1)),
    heapUsedEndMiB: Number(after.heapUsedMiB.toFixed(1)),
  };
  if (json) {
    process.stdout.write(JSON.stringify(report) + '\n');
  } else {
    process.stdout.write(
      [
        `sidecar on loopback, ${clients} keep-alive clients, ${seconds} s per phase`,
        `admit+release   ${report.admitReleasePerSec} pairs/s   p50 ${report.p50Ms} ms   p99 ${report.p99Ms} ms per call   server CPU ${report.serverCpuUsPerPair} µs a pair`,
        `batch           ${report.eventsPerSec} engine events/s   ${report.batchItems} events a batch, p99 ${report.batchP99Ms} ms per batch   server CPU ${report.serverCpuUsPerEvent} µs an event`,
        `floor           ${report.floorRequestsPerSec} GET /healthz/s   server CPU ${report.floorCpuUsPerRequest} µs a request (HTTP alone, no work)`,
        `server memory   rss ${report.rssStartMiB} MiB before the load, ${report.rssEndMiB} MiB after, peak ${report.rssPeakMiB} MiB; JS heap used ${report.heapUsedStartMiB} -> ${report.heapUsedEndMiB} MiB`,
        `                over each phase's second half: ${report.rssGrowthMiBPerMin.admitRelease} MiB/min (admit+release), ${report.rssGrowthMiBPerMin.batch} MiB/min (batch)`,
        '',
      ].join('\n'),
    );
  }
} finally {
  agent.destroy();
  await server.stop();
}
