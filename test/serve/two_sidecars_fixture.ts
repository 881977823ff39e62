/**
 * Two `cachesage serve --redis` child processes over one real redis-server,
 * and an "engine" client whose KV bytes are a pure function of the block
 * hash, so any block read back can be checked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const BLOCK_SIZE = 4;
export const BYTES = 256;

export interface RunningSidecar {
  child: ChildProcess;
  url: string;
  line: string;
  stderr: () => string;
}

const children = new Set<ChildProcess>();

/** Starts `cachesage serve ARGS` on a free port; resolves once it listens, rejects with its stderr if it exits first. */
export function startServe(args: string[]): Promise<RunningSidecar> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.on('close', () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      const match = /listening on (http:\/\/[^ ]+)/.exec(stdout);
      if (match) resolve({ child, url: match[1]!, line: stdout.trim(), stderr: () => stderr });
    });
    child.on('close', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
}

/** SIGKILLs every sidecar still running (afterAll, even after a failure). */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** The KV bytes the engine computes for a block: a pure function of its hash. */
export function kvBytes(hash: bigint): Uint8Array {
  const out = new Uint8Array(BYTES);
  let x = BigInt.asUintN(64, hash ^ 0x9e3779b97f4a7c15n) | 1n;
  for (let i = 0; i < BYTES; i += 8) {
    x ^= BigInt.asUintN(64, x << 13n);
    x ^= x >> 7n;
    x ^= BigInt.asUintN(64, x << 17n);
    for (let k = 0; k < 8; k++) out[i + k] = Number((x >> BigInt(8 * k)) & 0xffn);
  }
  return out;
}

/** Hashes of a prompt of `blocks` blocks, distinct per name (FNV-1a chained, parent first). */
export function promptHashes(name: string, blocks: number): bigint[] {
  const out: bigint[] = [];
  let h = 0xcbf29ce484222325n;
  for (let b = 0; b < blocks; b++) {
    for (const ch of `${name}/${b}`) h = ((h ^ BigInt(ch.charCodeAt(0))) * 0x100000001b3n) & 0xffffffffffffffffn;
    out.push(h);
  }
  return out;
}

export async function call(url: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

export async function putBlock(url: string, hash: bigint, bytes: Uint8Array): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/v1/blocks/${hash}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  return { status: response.status, body: await response.json() };
}

export async function getBlock(url: string, hash: bigint): Promise<{ status: number; bytes: Uint8Array; source: string | null }> {
  const response = await fetch(`${url}/v1/blocks/${hash}`);
  return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()), source: response.headers.get('x-cachesage-source') };
}

/**
 * One LLM call the way an engine drives a sidecar: admit, compute what no
 * tier had and PUT those blocks' bytes after prefill-done, then release.
 * Returns the admit reply and every PUT's reply; throws on any non-200.
 */
export async function serveCall(
  url: string,
  requestId: number,
  hashes: bigint[],
  tags: { session: string; workload: string; agent: string; time: number },
): Promise<{ admit: any; puts: any[] }> {
  const ok = (reply: { status: number; body: any }, what: string) => {
    if (reply.status !== 200) throw new Error(`${what} on ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body;
  };
  const admit = ok(
    await call(url, '/v1/admit', {
      requestId,
      hashes: hashes.map(String),
      numTokens: hashes.length * BLOCK_SIZE + 1,
      session: tags.session,
      agent: { workload: tags.workload, agent: tags.agent },
      time: tags.time,
    }),
    'admit',
  );
  if (!admit.admitted) throw new Error(`admit on ${url}: refused`);
  const computedFrom = admit.cachedDeviceTokens / BLOCK_SIZE + admit.loadedBlocks + (admit.remoteBlocks ?? 0);
  ok(await call(url, '/v1/prefill-done', { requestId, time: tags.time }), 'prefill-done');
  const puts = [];
  for (let i = computedFrom; i < hashes.length; i++) puts.push(ok(await putBlock(url, hashes[i]!, kvBytes(hashes[i]!)), 'PUT block'));
  ok(await call(url, '/v1/release', { requestId, time: tags.time }), 'release');
  return { admit, puts };
}

/** Framework events of one session of `workload` running `agents` in order. */
export async function walk(url: string, workload: string, session: string, agents: string[], t0: number, end = true): Promise<number> {
  let t = t0;
  const send = async (event: unknown) => {
    const reply = await call(url, '/v1/events', event);
    if (reply.status !== 200) throw new Error(`event on ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
  };
  await send({ type: 'session.start', time: ++t, session, workload });
  for (const agent of agents) {
    await send({ type: 'step.start', time: ++t, session, agent: { workload, agent } });
    await send({ type: 'step.end', time: ++t, session, agent: { workload, agent } });
  }
  if (end) await send({ type: 'session.end', time: ++t, session });
  return t;
}

/** Polls `check` until it returns a value, or throws after `ms` naming `what`. */
export async function waitFor<T>(what: string | (() => string), check: () => Promise<T | null>, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
