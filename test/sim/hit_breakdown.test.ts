/**
 * scripts/hit_breakdown.ts, run as a user runs it: the per-agent hit table
 * agrees with the replay's own token hit rate, evictions are counted by
 * owner, and bad flags get a one-line error and exit status 2.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { replay } from '../../src/sim/replay.js';
import { generateWorkload } from '../../src/workloads/index.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/hit_breakdown.ts'), ...args], { cwd: ROOT }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('hit_breakdown script', () => {
  it('splits each policy\'s device hits by agent and call, summing to the replay\'s hit tokens', async () => {
    const { code, stdout, stderr } = await run(['--workload', 'groupchat', '--sessions', '6', '--policies', 'lru,belady']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    const table = lines.slice(lines.findIndex((l) => l.startsWith('agent, call')) + 1, lines.findIndex((l) => l.startsWith('device evictions')) - 1);
    const rows = table.map((l) => l.trim().split(/\s+/).slice(-5).map(Number));
    expect(rows.length).toBeGreaterThan(3);
    const hits = [0, 0];
    let blocks = 0;
    for (const [, b, reusable, lru, belady] of rows) {
      blocks += b!;
      expect(reusable).toBeLessThanOrEqual(b!);
      hits[0] = hits[0]! + lru!;
      hits[1] = hits[1]! + belady!;
    }
    // The same replay through the library: hit tokens over prompt tokens.
    const { calls } = generateWorkload('groupchat', { sessions: 6 });
    for (const [i, policy] of ['lru', 'belady'].entries()) {
      const report = replay('groupchat', calls, { policies: [policy], capacity: { fraction: 0.25 }, hostCapacity: { blocks: 0 } });
      const rate = report.results.find((r) => r.policy === policy)!.tokenHitRate;
      expect(stdout).toContain(`${policy}: token hit ${(100 * rate).toFixed(1)} %`);
      // Full blocks only: the rate counts tokens, partial blocks included, so the two agree roughly.
      expect(Math.abs(hits[i]! / blocks - rate)).toBeLessThan(0.03);
    }
    expect(hits[1]).toBeGreaterThanOrEqual(hits[0]!);
    const evictions = lines.slice(lines.findIndex((l) => l.startsWith('device evictions')) + 1).filter((l) => l.includes(', its session '));
    expect(evictions.length).toBeGreaterThan(0);
    for (const line of evictions) {
      for (const [, evicted, readAgain] of line.matchAll(/(\d+) \((\d+)\)/g)) expect(Number(readAgain)).toBeLessThanOrEqual(Number(evicted));
    }
  }, 60_000);

  it('refuses bad flags naming the flag', async () => {
    for (const [args, message] of [
      [['--workload', 'nope'], /--workload must be one of/],
      [['--workload', 'react', '--policies', 'lru,bogus'], /--policies: unknown policy "bogus"/],
      [['--workload', 'react', '--capacity', '0'], /--capacity must be > 0: a fraction of the peak live footprint/],
      [['--workload', 'react', '--capacity', '1.5'], /--capacity must be > 0: a fraction of the peak live footprint/],
      [['--workload', 'react', '--sessions', '1.5'], /--sessions must be an integer >= 1/],
      [['--trace', 'missing.jsonl'], /--trace missing\.jsonl: /],
      [[], /give one of --trace FILE or --workload NAME/],
      [['--fast'], /unknown flag "--fast"/],
    ] as const) {
      const { code, stderr } = await run(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(message);
    }
  }, 60_000);
});
