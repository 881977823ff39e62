/**
 * Test helpers: a real sidecar on a loopback port picked by the OS, and a
 * small HTTP client over node's fetch (keep-alive).
 */
import { decode, encode } from '@msgpack/msgpack';

import { Runtime } from '../../src/runtime/runtime.js';
import { parseTokenFile } from '../../src/serve/access.js';
import { Sidecar, type SidecarOptions } from '../../src/serve/server.js';

export const BS = 4;

export interface TestSidecar {
  sidecar: Sidecar;
  runtime: Runtime;
  url: string;
  close(): Promise<void>;
}

export interface StartOptions extends Omit<SidecarOptions, 'runtime' | 'tokens'> {
  deviceBlocks?: number;
  hostBlocks?: number;
  policies?: string[];
  tokens?: { token: string; workloads: string[] | '*'; name?: string }[];
}

/** A runtime with the sidecar's defaults on tiny tiers; times come from the events. */
export function testRuntime(deviceBlocks = 16, hostBlocks = 0, policies: string[] = ['cachesage']): Runtime {
  return new Runtime({ blocks: { blockSize: BS, deviceBlocks, hostBlocks, bytesPerBlock: 1 << 20 }, policies, now: () => 0 });
}

export async function startSidecar(options: StartOptions = {}): Promise<TestSidecar> {
  const { deviceBlocks, hostBlocks, policies, tokens, ...rest } = options;
  const runtime = testRuntime(deviceBlocks, hostBlocks, policies);
  const table = tokens === undefined ? null : parseTokenFile('tokens.json', JSON.stringify(tokens));
  const sidecar = new Sidecar({ runtime, tokens: table, processMetrics: false, ...rest });
  const { url } = await sidecar.listen('127.0.0.1', 0);
  return { sidecar, runtime, url, close: () => sidecar.close() };
}

export interface Reply {
  status: number;
  body: any;
}

export async function post(url: string, path: string, body: unknown, token?: string): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await fetch(url + path, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

export async function get(url: string, path: string, token?: string): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await fetch(url + path, { headers });
  const text = await response.text();
  return { status: response.status, body: response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

export async function batch(url: string, items: unknown[], token?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/msgpack' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await fetch(url + '/v1/batch', { method: 'POST', headers, body: encode(items, { useBigInt64: true }) });
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (response.headers.get('content-type')?.includes('msgpack')) return { status: response.status, body: decode(bytes, { useBigInt64: true }) };
  return { status: response.status, body: JSON.parse(new TextDecoder().decode(bytes)) };
}

/** Hashes of a prompt made of named pieces of `blocks` blocks each, so equal names mean equal blocks. */
export function chain(...pieces: [string, number][]): bigint[] {
  const out: bigint[] = [];
  let h = 0xcbf29ce484222325n;
  for (const [name, blocks] of pieces) {
    for (let b = 0; b < blocks; b++) {
      for (const ch of `${name}/${b}`) h = ((h ^ BigInt(ch.charCodeAt(0))) * 0x100000001b3n) & 0xffffffffffffffffn;
      out.push(h);
    }
  }
  return out;
}

/** Int32Array from a msgpack bin of little-endian words. */
export function int32s(bin: Uint8Array): number[] {
  return Array.from(new Int32Array(bin.slice().buffer));
}
