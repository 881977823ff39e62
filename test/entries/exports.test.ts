/**
 * The package's entry points by audience: each `exports` subpath maps to a
 * source module that exports what that audience needs and nothing from the
 * runtime's internals. Under CI (where `npm ci` built dist/) each subpath
 * is also imported by its package name from a separate Node process.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | { types: string; import: string }>;
};

/** What each entry must offer. */
const EXPECTED: Record<string, string[]> = {
  '.': ['Runtime', 'createPolicy', 'policyEntry', 'POLICIES', 'POLICY_NAMES', 'selectBackend', 'BACKEND_CHOICES', 'hashTokenBlocks', 'SnapshotError'],
  './blocks': ['BlockManager', 'CpuDataPlane', 'hashTokenBlocks', 'checkCopyPlan', 'planStages', 'Tier', 'EventKind', 'MAX_AGENT', 'METADATA_FIELDS'],
  './sim': ['replay', 'replayAsync', 'simulate', 'simulateAsync', 'COST_MODELS', 'readTrace', 'readTraceFile', 'generateWorkload', 'WORKLOAD_NAMES', 'REPLAY_POLICIES'],
  './engine': ['Engine', 'serveTrace', 'MODEL_PRESETS', 'kvOffset', 'kvBytesPerBlock', 'loadModelConfig', 'TraceTokens'],
  './remote': ['RemoteTier', 'RemoteBlockStore', 'RemoteKeys', 'TransitionExchange', 'openRedis'],
  './kvevents': ['KvEventSubscriber', 'ReplicaCacheView', 'decodeEventBatch', 'blockHashKey'],
  './reference': ['ReferenceBlockManager', 'referenceHashTokenBlocks', 'hashBlock', 'referenceBlockCopy', 'referenceHitScoring', 'referenceHitScores', 'referenceSelectVictims', 'ReferenceSurvivalBackend'],
};

/** Internals an integrator must not come to depend on. */
const INTERNAL = ['mergeActions', 'TransitionModel', 'ClassBook', 'SessionBook', 'NameRegistry', 'createCacheSagePolicy', 'NativeSurvivalBackend'];

function sourceOf(subpath: string): string {
  const target = pkg.exports[subpath];
  if (typeof target !== 'object') throw new Error(`exports[${subpath}] must map types and import`);
  expect(target.types.replace(/\.d\.ts$/, '')).toBe(target.import.replace(/\.js$/, ''));
  const match = /^\.\/dist\/(src\/.+)\.js$/.exec(target.import);
  if (!match) throw new Error(`exports[${subpath}].import ${target.import} is not a dist/src module`);
  return join(root, `${match[1]}.ts`);
}

describe('package entry points', () => {
  it('lists exactly the audiences', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './blocks', './engine', './kvevents', './package.json', './reference', './remote', './sim']);
  });

  for (const [subpath, names] of Object.entries(EXPECTED)) {
    it(`${subpath} offers its audience's names and no runtime internals`, async () => {
      const module = (await import(sourceOf(subpath))) as Record<string, unknown>;
      for (const name of names) expect(module[name], `${subpath} exports ${name}`).toBeDefined();
      for (const name of INTERNAL) expect(module[name], `${subpath} must not export ${name}`).toBeUndefined();
    });
  }

  it.runIf(process.env.CI)('each subpath imports by package name from the built package', () => {
    for (const [subpath, names] of Object.entries(EXPECTED)) {
      const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
      const script = `const m = await import(${JSON.stringify(specifier)}); process.stdout.write(JSON.stringify(${JSON.stringify(names)}.filter((n) => m[n] === undefined)));`;
      const missing = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
      expect(JSON.parse(missing), `${specifier} misses`).toEqual([]);
    }
  });
});
