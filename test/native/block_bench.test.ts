/**
 * The Node-free block manager benchmark (bench/native/block_manager_bench.cpp),
 * as `npm install` builds it into build/bin: one JSON object of nanoseconds
 * per block, or a table, and exit status 2 naming a bad flag.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bench = join(root, 'build', 'bin', `cachesage_block_bench${process.platform === 'win32' ? '.exe' : ''}`);

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  if (!existsSync(bench)) throw new Error(`${bench} is missing: run \`npm install\` first (it builds the native code into build/)`);
  return spawnSync(bench, args, { encoding: 'utf8', timeout: 60_000 });
}

describe('block manager benchmark', () => {
  it('prints one JSON object of nanoseconds per block, device only and with a host tier', () => {
    const result = run(['--json', '--device', '512', '--prompt', '32', '--requests', '50']);
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as Record<string, unknown> & Record<'deviceOnly' | 'withHost', Record<string, number>>;
    expect(report).toMatchObject({ deviceBlocks: 512, promptBlocks: 32, requests: 50 });
    for (const part of ['deviceOnly', 'withHost'] as const) {
      for (const key of ['admitNsPerBlock', 'commitNsPerBlock', 'releaseNsPerBlock']) {
        expect(report[part][key], `${part}.${key}`).toBeGreaterThan(0);
      }
    }
  });

  it('prints a table without --json', () => {
    const result = run(['--device', '256', '--prompt', '16', '--requests', '20']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/device only\s+[\d.]+\s+[\d.]+\s+[\d.]+/);
    expect(result.stdout).toMatch(/host tier 4x\s+[\d.]+/);
  });

  it('refuses a bad flag with status 2, naming it', () => {
    for (const [args, named] of [[['--prompt', '0'], '--prompt'], [['--device', 'x'], '--device'], [['--fast'], '--fast'], [['--prompt', '64', '--device', '32'], '--prompt 64']] as const) {
      const result = run([...args]);
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(named);
    }
  });
});
