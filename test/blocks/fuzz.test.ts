/**
 * Random garbage at every N-API entry point, bypassing the TypeScript
 * checks (the driver is fuzz_driver.ts; `npm run fuzz` runs a million
 * calls): each call either returns or throws a JS error, the process never
 * aborts, a refused call leaves the state exactly as it was, results match
 * the TypeScript oracles and the invariants hold throughout.
 */
import { describe, expect, it } from 'vitest';

import { nativeAddon, type NativeBlockManagerHandle } from '../../src/blocks/addon.js';
import { KNOWN_EXPORTS, runFuzz } from './fuzz_driver.js';

/** Entry points that throw on bad input, and that a sane call gets through. */
const REFUSING = [
  'NativeBlockManager()', 'NativeCpuDataPlane()', 'hashTokenBlocks', 'xxh64', 'computeSurvival', 'hitScoring',
  ...['lookup', 'admit', 'append', 'commit', 'release', 'requestBlocks', 'setScores', 'setAllScores', 'setScoreClasses', 'setClassScores', 'evict', 'demote', 'drop', 'load', 'usedBlocks', 'evictableBlocks'].map((m) => `NativeBlockManager#${m}`),
  ...['execute', 'executeAsync', 'write', 'read'].map((m) => `NativeCpuDataPlane#${m}`),
];

describe('N-API fuzz', () => {
  it('survives 20,000 fuzzed calls at every entry point with state unchanged on every refusal', async () => {
    const report = await runFuzz({ calls: 20_000, seed: 20261125 });
    expect(report.violations).toEqual([]);
    expect(report.calls).toBe(20_000);
    // Every export is one the driver knows how to fuzz.
    expect(report.unknownExports).toEqual([]);
    for (const name of report.exports) {
      expect(Object.keys(report.entries).some((entry) => entry === name || entry.startsWith(`${name}(`) || entry.startsWith(`${name}#`)), name).toBe(true);
    }
    // Each refusing entry point was both refused and accepted: garbage and sane calls both got through.
    for (const entry of REFUSING) {
      const stats = report.entries[entry];
      expect(stats, entry).toBeDefined();
      expect(stats!.rejected, entry).toBeGreaterThan(0);
      expect(stats!.rejected, entry).toBeLessThan(stats!.calls);
    }
    expect(report.entries['NativeCpuDataPlane#executeAsync (settled)']!.rejected).toBe(0);
    if (report.exports.includes('NativeEngine')) {
      for (const entry of ['NativeEngine()', 'NativeEngine#forward', 'NativeEngine#beginPass', 'NativeEngine#project', 'NativeEngine#finishLayer', 'NativeEngine#passLogits']) {
        const stats = report.entries[entry]!;
        expect(stats.rejected, entry).toBeGreaterThan(0);
        expect(stats.rejected, entry).toBeLessThan(stats.calls);
      }
    }
    if (report.cuda.built && !report.cuda.available) {
      for (const name of ['NativeCudaSurvival', 'NativeCudaHitScorer', 'NativeCudaDataPlane']) {
        const stats = report.entries[`${name}()`]!;
        expect(stats.calls, name).toBeGreaterThan(0);
        expect(stats.rejected, name).toBe(stats.calls);
      }
    }
  });

  it('replays the same calls from the same seed, and other calls from another', async () => {
    const first = await runFuzz({ calls: 2_000, seed: 7 });
    const again = await runFuzz({ calls: 2_000, seed: 7 });
    expect(again.entries).toEqual(first.entries);
    expect(again.rejected).toBe(first.rejected);
    const other = await runFuzz({ calls: 2_000, seed: 8 });
    expect(other.entries).not.toEqual(first.entries);
  });

  it('lists every export of the addon among the entry points it fuzzes', () => {
    for (const name of Object.keys(nativeAddon())) expect(KNOWN_EXPORTS).toContain(name);
  });

  it('keeps metadata views valid after the manager is collected', () => {
    const { NativeBlockManager } = nativeAddon();
    let handle: NativeBlockManagerHandle | null = new NativeBlockManager(4, 0, 8, 0, 0);
    handle.bindScratch(new Int32Array(new ArrayBuffer(64)), new Uint8Array(new ArrayBuffer(14 * 8)));
    handle.admit(1, new BigUint64Array([1n, 2n]), 8, 0, 1, 0);
    const tier = handle.metadata().tier as Uint8Array;
    handle = null;
    (globalThis as { gc?: () => void }).gc?.();
    expect([...tier.subarray(0, 3)]).toEqual([1, 1, 0]);
  });
});
