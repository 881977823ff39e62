// Two sidecars sharing one Redis: blocks an engine computed behind sidecar A
// are hits behind sidecar B, and B predicts a workload only A served.
// Needs redis-server on PATH and the optional package ioredis.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = import.meta.resolve('cachesage');
const cli = fileURLToPath(new URL(`./cli/main${extname(entry)}`, entry));
const children = [];
const stopAll = () => children.forEach((child) => child.kill('SIGKILL'));

/** Starts a child and resolves with the first match of `pattern` in its stdout. */
function start(command, args, pattern) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    child.on('error', (error) => reject(new Error(`${command}: ${error.message}`)));
    child.stderr.on('data', (d) => (out += d));
    child.stdout.on('data', (d) => {
      out += d;
      const match = pattern.exec(out);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`${command} exited with ${code}: ${out.trim()}`)));
  });
}

const BLOCK = 16;
const BYTES = 4096; // KV bytes per block, as the engine lays them out
const redisPort = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const sidecar = (name) =>
  start(process.execPath, [...process.execArgv, cli, 'serve', '--port', '0', '--block-size', String(BLOCK), '--device-blocks', '256',
    '--bytes-per-block', String(BYTES), '--redis', `redis://127.0.0.1:${redisPort}`, '--replica-id', name,
    '--model-key', 'demo-model', '--exchange-interval', '0.2'], /listening on (http:\S+)/);
const call = async (url, path, body) =>
  (await fetch(url + path, body && { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
const kv = (hash) => new Uint8Array(BYTES).fill(Number(BigInt(hash) % 251n)); // stands in for the engine's KV bytes

try {
  await start('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], /(Ready to accept connections)/);
  const [a, b] = await Promise.all([sidecar('a'), sidecar('b')]);

  // An engine behind A serves a call: nothing cached, it computes 4 blocks and writes their bytes.
  const hashes = ['0x1f', '0x2f', '0x3f', '0x4f']; // a tokenizer-and-hash step stands behind these
  const call1 = await call(a, '/v1/admit', { requestId: 1, hashes, numTokens: 4 * BLOCK + 3 });
  await call(a, '/v1/prefill-done', { requestId: 1 });
  for (const h of hashes) await fetch(`${a}/v1/blocks/${h}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: kv(h) });
  console.log(`A: ${call1.cachedDeviceTokens} tokens cached; the engine computed and wrote ${hashes.length} blocks`);

  // The same prompt behind B: the blocks come from Redis, and B hands their bytes to its engine.
  const call2 = await call(b, '/v1/admit', { requestId: 1, hashes, numTokens: 4 * BLOCK + 3 });
  let same = true;
  for (const h of hashes) same &&= Buffer.from(await (await fetch(`${b}/v1/blocks/${h}`)).arrayBuffer()).equals(kv(h));
  console.log(`B: ${call2.remoteBlocks} blocks loaded from the remote tier, bytes equal: ${same}`);

  // A framework reports sessions of a "support" workload to A only.
  let t = 0;
  for (let s = 0; s < 6; s++) {
    const session = `ticket-${s}`;
    await call(a, '/v1/events', { type: 'session.start', time: ++t, session, workload: 'support' });
    for (const agent of ['triage', 'researcher', 'writer']) {
      await call(a, '/v1/events', { type: 'step.start', time: ++t, session, agent: { workload: 'support', agent } });
      await call(a, '/v1/events', { type: 'step.end', time: ++t, session, agent: { workload: 'support', agent } });
    }
    await call(a, '/v1/events', { type: 'session.end', time: ++t, session });
  }
  // A new ticket on each: which agent runs first? B learned it from A through Redis.
  const next = async (url) => {
    await call(url, '/v1/events', { type: 'session.start', time: 100, session: 'ticket-new', workload: 'support' });
    return (await call(url, '/v1/predict', { session: 'ticket-new' })).prediction?.next.triage ?? 0;
  };
  const pa = await next(a);
  let pb = await next(b);
  for (let i = 0; i < 50 && Math.abs(pb - pa) > 1e-9; i++) {
    await new Promise((r) => setTimeout(r, 100));
    pb = (await call(b, '/v1/predict', { session: 'ticket-new' })).prediction?.next.triage ?? 0;
  }
  console.log(`P(triage runs first): A ${pa.toFixed(2)}, B ${pb.toFixed(2)} (B never served "support")`);
} finally {
  stopAll();
}
