/**
 * The CUDA data plane (kernels/cuda) and the kernel benchmark,
 * as `npm install` builds them into build/bin: the CUDA library is compiled
 * wherever nvcc is, its test program holds every kernel to the CPU code
 * where a GPU is present and says "skipped" where none is, and the benchmark
 * reports the CPU figures everywhere.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const exe = process.platform === 'win32' ? '.exe' : '';
const binDir = join(root, 'build', 'bin');
const cudaTest = join(binDir, `cachesage_cuda_test${exe}`);
const kernelBench = join(binDir, `cachesage_kernel_bench${exe}`);

/** Where the build looks for nvcc: PATH, then the toolkit's default place. */
function nvccPresent(): boolean {
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .some((dir) => existsSync(join(dir, `nvcc${exe}`)));
  return onPath || existsSync('/usr/local/cuda/bin/nvcc');
}

function requireBuilt(path: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`npm install\` first (it builds the native code into build/)`);
  }
}

function run(command: string, args: string[], timeoutMs: number): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.error) {
    throw new Error(`${command} ${args.join(' ')} could not run: ${result.error.message}`);
  }
  return result;
}

function describeRun(what: string, result: SpawnSyncReturns<string>): string {
  const signal = result.signal ? ` (signal ${result.signal})` : '';
  return `${what} exited with ${String(result.status)}${signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

function expectPositive(value: unknown, what: string): void {
  expect(typeof value, `${what} should be a number`).toBe('number');
  expect(Number.isFinite(value) && (value as number) > 0, `${what} = ${String(value)}`).toBe(true);
}

describe('CUDA data plane', () => {
  it('is compiled in by the npm build wherever nvcc is present', () => {
    requireBuilt(kernelBench);
    if (nvccPresent()) {
      expect(existsSync(cudaTest), `nvcc is present, so the build should make ${cudaTest}`).toBe(true);
    }
  });

  it('matches the CPU code on random inputs, or says it skipped', (context) => {
    if (!existsSync(cudaTest)) {
      // Without nvcc there is nothing to run; the test above fails when
      // nvcc is present and the program is still missing.
      expect(nvccPresent()).toBe(false);
      context.skip();
    }
    const result = run(cudaTest, [], 300_000);
    expect(result.status, describeRun('cachesage_cuda_test', result)).toBe(0);
    expect(result.stdout, describeRun('cachesage_cuda_test', result)).toMatch(
      /^cachesage_cuda_test: (skipped: no CUDA device \(.+\)|\d+ checks passed)$/m,
    );
  }, 320_000);
});

describe('kernel benchmark', () => {
  it('prints one JSON object with the CPU figures, the reference engine included', () => {
    requireBuilt(kernelBench);
    const result = run(kernelBench, ['--json'], 180_000);
    expect(result.status, describeRun('cachesage_kernel_bench --json', result)).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines, describeRun('cachesage_kernel_bench --json', result)).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as {
      cpu: {
        copy: Record<string, unknown>;
        survival: Record<string, unknown>;
        engine: Record<string, unknown>;
      };
      cuda: { built: unknown; available: unknown; reason?: unknown };
    };
    expect(report.cpu.copy.blockBytes).toBe(2 * 1024 * 1024);
    for (const key of ['blocks', 'copyBlocksMs', 'memcpyMs', 'copyBlocksGBps', 'memcpyGBps', 'ratioToMemcpy']) {
      expectPositive(report.cpu.copy[key], `cpu.copy.${key}`);
    }
    expect(report.cpu.survival).toMatchObject({ states: 64, horizon: 16 });
    for (const key of ['workloads', 'ms', 'usPerWorkload']) {
      expectPositive(report.cpu.survival[key], `cpu.survival.${key}`);
    }
    // The reference engine on the CPU kernels, as bench:engine measures it.
    expect(report.cpu.engine.attention).toBe('cpu');
    for (const key of ['prefillTokPerS', 'cachedPrefillSpeedup', 'prefillMs', 'cachedPrefillMs', 'decodeBatch8TokPerS']) {
      expectPositive(report.cpu.engine[key], `cpu.engine.${key}`);
    }
    expect(report.cpu.engine.cachedPrefillSpeedup as number).toBeGreaterThan(1);
    expect(report.cuda.built).toBe(existsSync(cudaTest));
    expect(typeof report.cuda.available).toBe('boolean');
    if (report.cuda.available === false) expect(typeof report.cuda.reason).toBe('string');
  }, 200_000);
});
