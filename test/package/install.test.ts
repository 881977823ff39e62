/**
 * cachesage installs as a dependency: the package is packed from a copy of
 * this tree (`npm pack` runs the prebuild and the TypeScript build, as a
 * release does), installed into an empty project on a PATH without cmake,
 * so only the prebuilt addon can serve, and then the examples and the CLI
 * run there with plain node. Needs the npm registry (node-gyp-build).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const SIZE_LIMIT_BYTES = 60_000_000;
const STEP_TIMEOUT_MS = 240_000;

interface Run {
  status: number | null;
  output: string;
  seconds: number;
}

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, timeout = STEP_TIMEOUT_MS): Run {
  const started = Date.now();
  const result: SpawnSyncReturns<string> = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}`, seconds: (Date.now() - started) / 1000 };
}

function findExecutable(name: string): string {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(directory, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(`${name} is not on PATH`);
}

/** The files a release is built from: tracked and untracked, less what git ignores. */
function copySourceTree(destination: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed in ${root}: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0')) {
    if (file === '' || !existsSync(join(root, file))) continue;
    mkdirSync(dirname(join(destination, file)), { recursive: true });
    copyFileSync(join(root, file), join(destination, file));
  }
  // The packing needs the build tools (cmake-js, typescript), not a fresh install of them.
  symlinkSync(join(root, 'node_modules'), join(destination, 'node_modules'), 'dir');
}

/**
 * This process's environment less npm's per-run variables (under `npm test`
 * the outer npm's local prefix would point a nested npm at this tree) and
 * less cachesage's own settings (an addon override, CUDA), so the nested
 * commands see defaults.
 */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(npm_|INIT_CWD$|CACHESAGE_)/i.test(name)) env[name] = value;
  }
  return env;
}

/**
 * The consumer's environment: PATH is one directory holding node, npm, npx,
 * sh and redis-server (which the two-sidecar example starts), so cmake
 * cannot be found.
 */
function consumerEnvironment(bin: string): NodeJS.ProcessEnv {
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const name of ['npm', 'npx', 'sh', 'redis-server']) symlinkSync(findExecutable(name), join(bin, name));
  return { ...cleanEnvironment(), PATH: bin };
}

describe('cachesage as an installed dependency', () => {
  let work: string;
  let consumer: string;
  let env: NodeJS.ProcessEnv;
  let install: Run;
  let tarball: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cachesage-package-'));
    const source = join(work, 'source');
    copySourceTree(source);
    const packed = run('npm', ['pack', '--pack-destination', work], source, cleanEnvironment(), 600_000);
    expect(packed.status, packed.output).toBe(0);
    const tarballs = readdirSync(work).filter((name) => name.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    tarball = join(work, tarballs[0]!);

    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    // The approval a consumer gives the install script (npm 12 skips unapproved ones).
    const manifest = { name: 'consumer', version: '1.0.0', private: true, type: 'module', allowScripts: { [`file:${tarball}`]: true } };
    writeFileSync(join(consumer, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
    env = consumerEnvironment(join(work, 'bin'));
    install = run('npm', ['install', '--foreground-scripts', '--no-audit', '--no-fund', tarball], consumer, env);
    console.log(`npm install of the tarball: ${install.seconds.toFixed(1)} s`);
  }, 900_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('has no cmake on the consumer PATH', () => {
    const probe = run('sh', ['-c', 'command -v cmake'], consumer, env);
    expect(probe.status, probe.output).not.toBe(0);
  });

  it('installs with the prebuilt addon, building nothing', () => {
    expect(install.status, install.output).toBe(0);
    const platform = `${process.platform}-${process.arch}`;
    expect(install.output).toMatch(new RegExp(`^cachesage: using prebuilt addon prebuilds/${platform}/cachesage_native[.\\w]*\\.node$`, 'm'));
    expect(existsSync(join(consumer, 'node_modules', 'cachesage', 'build'))).toBe(false);
  });

  it('ships no tests, no build directory and no source maps', () => {
    const listed = run('tar', ['-tzf', tarball], work, process.env);
    expect(listed.status, listed.output).toBe(0);
    const files = listed.output.split('\n').filter((line) => line !== '');
    expect(files).toContain('package/scripts/install.mjs');
    expect(files.some((file) => file.startsWith('package/prebuilds/'))).toBe(true);
    expect(files.filter((file) => /^package\/(test|build|src)\//.test(file) || file.endsWith('.map'))).toEqual([]);
  });

  it('keeps node_modules under 60 MB', () => {
    const du = run('du', ['-sb', join(consumer, 'node_modules')], consumer, process.env);
    expect(du.status, du.output).toBe(0);
    const bytes = Number(du.output.split(/\s/)[0]);
    console.log(`consumer node_modules: ${(bytes / 1e6).toFixed(1)} MB`);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(SIZE_LIMIT_BYTES);
  });

  it('runs every examples/*.mjs with plain node', () => {
    const examples = readdirSync(join(root, 'examples')).filter((name) => name.endsWith('.mjs'));
    expect(examples.length, 'examples/ has no .mjs example').toBeGreaterThan(0);
    mkdirSync(join(consumer, 'examples'), { recursive: true });
    // The two-sidecar example uses the remote tier, which needs the optional peer ioredis.
    const redis = run('npm', ['install', '--no-audit', '--no-fund', 'ioredis'], consumer, env);
    expect(redis.status, redis.output).toBe(0);
    for (const name of examples) {
      copyFileSync(join(root, 'examples', name), join(consumer, 'examples', name));
      const example = run('node', [join('examples', name)], consumer, env);
      expect(example.status, `${name}: ${example.output}`).toBe(0);
    }
  }, STEP_TIMEOUT_MS);

  it('runs the CLI: --help, and replay --json on a generated trace', () => {
    const help = run('npx', ['--no-install', 'cachesage', '--help'], consumer, env);
    expect(help.status, help.output).toBe(0);
    expect(help.output).toMatch(/^Usage: cachesage <command>/m);

    const script = [
      "import { generateWorkload, writeTrace } from 'cachesage/sim';",
      "await writeTrace('react.jsonl', null, generateWorkload('react', { seed: 3, sessions: 6 }).calls);",
    ].join('\n');
    const written = run('node', ['--input-type=module', '-e', script], consumer, env);
    expect(written.status, written.output).toBe(0);
    const replay = spawnSync('npx', ['--no-install', 'cachesage', 'replay', '--trace', 'react.jsonl', '--policies', 'lru,cachesage', '--json'], {
      cwd: consumer,
      env,
      encoding: 'utf8',
      timeout: STEP_TIMEOUT_MS,
    });
    expect(replay.status, replay.stderr).toBe(0);
    const report = JSON.parse(replay.stdout) as { calls: number; results: { policy: string; tokenHitRate: number }[] };
    expect(report.calls).toBeGreaterThan(0);
    expect(report.results.map((r) => r.policy)).toEqual(['lru', 'cachesage']);
    for (const r of report.results) expect(r.tokenHitRate).toBeGreaterThan(0);
  }, STEP_TIMEOUT_MS);

  it('names the package to install for a backend whose optional package is absent, and auto still runs', () => {
    // react.jsonl is written by the test above.
    const replay = (backend: string) =>
      run('npx', ['--no-install', 'cachesage', 'replay', '--trace', 'react.jsonl', '--policies', 'lru', '--backend', backend, '--json'], consumer, env);
    const webgpu = replay('webgpu');
    expect(webgpu.status, webgpu.output).toBe(2);
    expect(webgpu.output).toMatch(/--backend webgpu: .*the optional peer package 'webgpu' did not load .*`npm install webgpu`/);
    const tfjs = replay('tfjs');
    expect(tfjs.status, tfjs.output).toBe(2);
    expect(tfjs.output).toMatch(/--backend tfjs: .*the optional peer package @tensorflow\/tfjs did not load .*`npm install @tensorflow\/tfjs`/);
    const auto = replay('auto');
    expect(auto.status, auto.output).toBe(0);
  }, STEP_TIMEOUT_MS);

  it('writes a bench report without vega, and says how to get the charts', () => {
    const bench = run(
      'npx',
      ['--no-install', 'cachesage', 'bench', '--quick', '--policies', 'lru', '--max-calls', '100', '--jobs', '1', '--out', 'report'],
      consumer,
      env,
    );
    expect(bench.status, bench.output).toBe(0);
    expect(bench.output).toMatch(/^bench: index\.html has no charts: .*npm install vega vega-lite/m);
    const results = JSON.parse(readFileSync(join(consumer, 'report', 'results.json'), 'utf8')) as { runs: unknown[] };
    expect(results.runs.length).toBeGreaterThan(0);
    const html = readFileSync(join(consumer, 'report', 'index.html'), 'utf8');
    expect(html).toContain('No charts in this report');
    expect(html).not.toContain('<svg');
  }, STEP_TIMEOUT_MS);

  // The two below run the install script again, as `npm rebuild cachesage` does.
  it('keeps the prebuild, with a note, when CUDA is asked for but cannot be built', () => {
    const script = join('node_modules', 'cachesage', 'scripts', 'install.mjs');
    const rerun = run('node', [script], consumer, { ...env, CACHESAGE_CUDA: '1' });
    expect(rerun.status, rerun.output).toBe(0);
    expect(rerun.output).toMatch(/^cachesage: using prebuilt addon \S+ without CUDA; CACHESAGE_CUDA=1, but building the CUDA kernels needs CMake/m);
    expect(existsSync(join(consumer, 'node_modules', 'cachesage', 'build'))).toBe(false);
  });

  it('fails saying what to install when there is no prebuild and no cmake', () => {
    const prebuilds = join(consumer, 'node_modules', 'cachesage', 'prebuilds');
    const hidden = `${prebuilds}.hidden`;
    renameSync(prebuilds, hidden);
    try {
      const rerun = run('node', [join('node_modules', 'cachesage', 'scripts', 'install.mjs')], consumer, env);
      expect(rerun.status).toBe(1);
      expect(rerun.output).toMatch(/^cachesage: cannot build the native addon from source \(no prebuilt addon loads here: no prebuilt addon for /m);
      expect(rerun.output).toContain('Install CMake 3.20 or later');
      expect(rerun.output).toContain('`npm install --save-dev cmake-js node-addon-api`');
      expect(rerun.output).toContain('then `npm rebuild cachesage`');
    } finally {
      renameSync(hidden, prebuilds);
    }
  });
});
