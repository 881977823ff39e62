/**
 * The standard-library Python client (clients/python) against a real
 * sidecar: its unit tests, then its engine loop, whose every call and
 * answer is replayed on an in-process Runtime with the same options; the
 * answers must be the same.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expected } from './scenario.js';
import { BS, startSidecar, testRuntime, type TestSidecar } from './sidecar.js';

const PYTHON = '/usr/bin/python3';
const TOKEN = 'python-engine-token-0123456789';

function runPython(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-m', 'unittest', 'discover', '-s', 'clients/python/tests', '-t', 'clients/python', '-v'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe.skipIf(!existsSync(PYTHON))('the Python client', () => {
  let server: TestSidecar;
  beforeAll(async () => {
    server = await startSidecar({ deviceBlocks: 20, hostBlocks: 10, tokens: [{ token: TOKEN, workloads: '*', name: 'python' }] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('drives sessions and gets the decisions of the in-process runtime', async () => {
    const log = join(mkdtempSync(join(tmpdir(), 'cachesage-py-')), 'log.json');
    const { code, output } = await runPython({ CACHESAGE_URL: server.url, CACHESAGE_TOKEN: TOKEN, CACHESAGE_LOG: log, CACHESAGE_BLOCK_SIZE: String(BS) });
    expect(code, output).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
    expect(output).not.toMatch(/skipped/);
    const entries = JSON.parse(readFileSync(log, 'utf8')) as { item: unknown[]; result: unknown[] }[];
    expect(entries.length).toBeGreaterThan(100);
    const reference = testRuntime(20, 10);
    const hashes = (v: unknown) => (Array.isArray(v) ? v.map((h) => BigInt(h as string)) : v);
    let hits = 0;
    for (const { item, result } of entries) {
      const op = item[0] as number;
      const call = op === 16 || op === 18 ? [...item.slice(0, 3), hashes(item[3]), ...item.slice(4)] : item;
      const want = expected(reference, call);
      expect(result, JSON.stringify(item)).toEqual(want);
      if (op === 16 && (want[1] as number) > 0) hits++;
    }
    // The loop reuses prompts: a run without a single cache hit would test little.
    expect(hits).toBeGreaterThan(0);
  });
});
