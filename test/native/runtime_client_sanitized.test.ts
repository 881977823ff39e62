/**
 * The runtime client's C program again, built with AddressSanitizer and
 * UndefinedBehaviorSanitizer in its own build directory (build-asan-client,
 * so it never races the C ABI test's build-asan): the session against a
 * real sidecar, the garbage peer and the idle-closing peer must pass with
 * no sanitizer report, leaks included.
 */
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  describeRun,
  jsonLines,
  root,
  runProgram,
  startGarbagePeer,
  startIdleClosingPeer,
  startServe,
  type GarbagePeer,
  type IdleClosingPeer,
  TOKEN,
  type ServeProcess,
} from './runtime_client_peers.js';

const buildDir = join(root, 'build-asan-client');
const sanitized = join(buildDir, 'bin', 'cachesage_runtime_client_test');

// Sanitizer findings must fail the run, not scroll past as warnings.
const sanitizerEnv: NodeJS.ProcessEnv = {
  ...process.env,
  ASAN_OPTIONS: 'halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:detect_leaks=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1:exitcode=87',
};
const sanitizerReport = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;

describe('C runtime client under AddressSanitizer and UBSan', () => {
  let serve: ServeProcess | undefined;
  let peer: GarbagePeer | undefined;
  let idle: IdleClosingPeer | undefined;

  beforeAll(async () => {
    // prettier-ignore
    const configure = await runProgram('cmake', ['-S', '.', '-B', buildDir, '-G', 'Ninja', '-DCACHESAGE_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=Debug'], 120_000);
    expect(configure.status, describeRun('cmake configure (build-asan-client)', configure)).toBe(0);
    const build = await runProgram('cmake', ['--build', buildDir, '--target', 'cachesage_runtime_client_test'], 540_000);
    expect(build.status, describeRun('cmake --build build-asan-client', build)).toBe(0);
    serve = await startServe();
    peer = await startGarbagePeer(7);
    idle = await startIdleClosingPeer();
  }, 720_000);

  afterAll(async () => {
    await serve?.stop();
    await peer?.close();
    await idle?.close();
  });

  it('runs the session against a real sidecar cleanly', async () => {
    const run = await runProgram(sanitized, ['scenario', '127.0.0.1', String(serve!.port), TOKEN], 120_000, sanitizerEnv);
    expect(run.status, describeRun('runtime_client_test scenario (sanitized)', run)).toBe(0);
    expect(run.stderr, describeRun('runtime_client_test scenario (sanitized)', run)).not.toMatch(sanitizerReport);
    expect(jsonLines(run.stdout).at(-1)).toEqual({ done: true });
  });

  it('fails every garbage reply cleanly', async () => {
    const run = await runProgram(sanitized, ['garbage', '127.0.0.1', String(peer!.port), '60'], 120_000, sanitizerEnv);
    expect(run.status, describeRun('runtime_client_test garbage (sanitized)', run)).toBe(0);
    expect(run.stderr, describeRun('runtime_client_test garbage (sanitized)', run)).not.toMatch(sanitizerReport);
    expect(jsonLines(run.stdout).at(-1)).toEqual({ done: true, calls: 60 * 7 });
  });

  it('reconnects and times out cleanly', async () => {
    const run = await runProgram(sanitized, ['keepalive', '127.0.0.1', String(idle!.port)], 120_000, sanitizerEnv);
    expect(run.status, describeRun('runtime_client_test keepalive (sanitized)', run)).toBe(0);
    expect(run.stderr, describeRun('runtime_client_test keepalive (sanitized)', run)).not.toMatch(sanitizerReport);
    expect(jsonLines(run.stdout).at(-1)).toEqual({ done: true });
  });
});
