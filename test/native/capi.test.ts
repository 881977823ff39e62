/**
 * The C ABI (native/capi): the C test program and the Python ctypes binding
 * against the library `npm install` builds into build/bin, and the C test
 * again under AddressSanitizer + UndefinedBehaviorSanitizer in build-asan.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const exe = process.platform === 'win32' ? '.exe' : '';
const libName =
  process.platform === 'win32'
    ? 'cachesage.dll'
    : process.platform === 'darwin'
      ? 'libcachesage.dylib'
      : 'libcachesage.so';

const binDir = join(root, 'build', 'bin');
const capiTest = join(binDir, `cachesage_capi_test${exe}`);
const library = join(binDir, libName);
const pythonScript = join(root, 'native', 'capi', 'python', 'cachesage_ctypes.py');
const asanDir = join(root, 'build-asan');

// Sanitizer findings must fail the run, not scroll past as warnings.
const sanitizerEnv: NodeJS.ProcessEnv = {
  ...process.env,
  ASAN_OPTIONS: [
    'halt_on_error=1',
    'abort_on_error=0',
    'exitcode=86',
    'strict_string_checks=1',
    'detect_stack_use_after_return=1',
    'check_initialization_order=1',
    ...(process.platform === 'linux' ? ['detect_leaks=1'] : []),
  ].join(':'),
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1:exitcode=87',
};
const sanitizerReport = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;

function requireBuilt(path: string): void {
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: run \`npm install\` first (it builds the native code, ` +
        'C ABI included, into build/)',
    );
  }
}

function run(
  command: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) {
    throw new Error(`${command} ${args.join(' ')} could not run: ${result.error.message}`);
  }
  return result;
}

/** The full output, for assertion messages. */
function describeRun(what: string, result: SpawnSyncReturns<string>): string {
  const signal = result.signal ? ` (signal ${result.signal})` : '';
  return (
    `${what} exited with ${String(result.status)}${signal}\n` +
    `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
  );
}

function expectClean(what: string, result: SpawnSyncReturns<string>): void {
  expect(result.status, describeRun(what, result)).toBe(0);
}

describe('C ABI', () => {
  it('passes the C test program', () => {
    requireBuilt(capiTest);
    requireBuilt(library);
    const result = run(capiTest, [], 60_000);
    expectClean('cachesage_capi_test', result);
    expect(result.stdout).toMatch(/^capi_test: \d+ checks passed$/m);
  });

  it('works from Python through ctypes', () => {
    requireBuilt(library);
    const python = process.env.PYTHON ?? (process.platform === 'win32' ? 'python' : 'python3');
    const result = run(python, [pythonScript, library], 60_000, {
      ...process.env,
      PYTHONDONTWRITEBYTECODE: '1',
    });
    expectClean('cachesage_ctypes.py', result);
    expect(result.stdout.trim()).toBe('ctypes ok');
  });

  it(
    'passes the C test program under AddressSanitizer and UBSan',
    () => {
      const configure = run(
        'cmake',
        // prettier-ignore
        [
          '-S', '.', '-B', asanDir, '-G', 'Ninja',
          '-DCACHESAGE_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=Debug',
        ],
        120_000,
      );
      expectClean('cmake configure (build-asan)', configure);
      const build = run('cmake', ['--build', asanDir, '--target', 'cachesage_capi_test'], 540_000);
      expectClean('cmake --build build-asan', build);

      const sanitized = join(asanDir, 'bin', `cachesage_capi_test${exe}`);
      const result = run(sanitized, [], 120_000, sanitizerEnv);
      expectClean('cachesage_capi_test (sanitized)', result);
      expect(result.stderr, describeRun('cachesage_capi_test (sanitized)', result)).not.toMatch(
        sanitizerReport,
      );
      expect(result.stdout).toMatch(/^capi_test: \d+ checks passed$/m);
    },
    720_000,
  );
});
