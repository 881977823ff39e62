/**
 * `cachesage serve` as a real child process: on SIGTERM it finishes, writes
 * what the policies learned to --snapshot atomically and exits 0; the next
 * start restores it (its predictions are those of a runtime restored from
 * the same file). (A corrupt snapshot: serve_command.test.ts.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { post, testRuntime } from './sidecar.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const children = new Set<ChildProcess>();

interface Running {
  child: ChildProcess;
  url: string;
  line: string;
  exit: Promise<{ code: number | null; stderr: string }>;
}

/** Starts `cachesage serve ARGS` and resolves once it listens (or rejects with its stderr when it exits first). */
function serve(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, stderr });
    });
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      const match = /listening on (http:\/\/[^ ]+)/.exec(stdout);
      if (match) resolve({ child, url: match[1]!, line: stdout.trim(), exit });
    });
    void exit.then(({ code, stderr }) => reject(Object.assign(new Error(`serve exited with ${code}: ${stderr}`), { code, stderr })));
  });
}

const ARGS = ['--device-blocks', '16', '--block-size', '4'];

/** Sessions of a fixed pipeline: planner -> coder -> reviewer, a pattern the policy learns. */
async function teach(url: string, first: number, count: number): Promise<void> {
  for (let s = first; s < first + count; s++) {
    const session = `learn-${s}`;
    let t = s * 10;
    expect((await post(url, '/v1/events', { type: 'session.start', time: t, session, workload: 'dev' })).status).toBe(200);
    for (const agent of ['planner', 'coder', 'reviewer']) {
      await post(url, '/v1/events', { type: 'step.start', time: ++t, session, agent: { workload: 'dev', agent } });
      await post(url, '/v1/events', { type: 'step.end', time: ++t, session, agent: { workload: 'dev', agent } });
    }
    await post(url, '/v1/events', { type: 'session.end', time: ++t, session });
  }
}

const probe = [
  { type: 'session.start', time: 1000, session: 'probe', workload: 'dev' },
  { type: 'step.start', time: 1001, session: 'probe', agent: { workload: 'dev', agent: 'planner' } },
] as const;

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe('cachesage serve as a process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cachesage-serve-'));
  const snapshot = join(dir, 'learned.json');

  it('writes the snapshot on SIGTERM and restores it on start', async () => {
    const first = await serve([...ARGS, '--snapshot', snapshot]);
    expect(first.line).toContain(`snapshot to ${snapshot}`);
    await teach(first.url, 0, 8);
    first.child.kill('SIGTERM');
    const stopped = await first.exit;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain(`snapshot written to ${snapshot}`);
    const written = JSON.parse(readFileSync(snapshot, 'utf8'));
    expect(written.format).toBe('cachesage.runtime');
    // Atomic: no temp file left beside it.
    expect(readdirSync(dir)).toEqual(['learned.json']);

    const second = await serve([...ARGS, '--snapshot', snapshot]);
    expect(second.line).toContain(`restored ${snapshot}`);
    for (const event of probe) await post(second.url, '/v1/events', event);
    const predicted = (await post(second.url, '/v1/predict', { session: 'probe', horizon: 2 })).body.prediction;

    const restored = testRuntime(16);
    restored.restore(snapshot);
    const fresh = testRuntime(16);
    for (const event of probe) {
      restored.observe(event as never);
      fresh.observe(event as never);
    }
    const want = restored.predict({ session: 'probe', horizon: 2 });
    expect(predicted.next).toEqual(want!.next);
    expect(predicted.reuseWithin).toEqual(want!.reuseWithin);
    // What it learned matters: a fresh runtime predicts otherwise.
    expect(predicted.next).not.toEqual(fresh.predict({ session: 'probe', horizon: 2 })!.next);
    expect(predicted.next.coder).toBeGreaterThan(0.5);
    second.child.kill('SIGINT');
    expect((await second.exit).code).toBe(0);
  });
});
