// `cachesage engine`: a trace served on the reference engine per policy,
// the JSON report's shape and figures, and one-line refusals of bad flags.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { capacityBlocks } from '../../src/sim/replay.js';
import { writeTrace } from '../../src/workloads/write.js';
import { cliInProcess } from '../cli/in_process.js';
import { agentTrace } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cachesage-engine-cli-'));
const trace = join(dir, 'agents.jsonl');
const calls = agentTrace(5, 4, 2);
beforeAll(() => writeTrace(trace, { workload: 'agents' }, calls));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = cliInProcess;

describe('cachesage engine', () => {
  it('serves the trace under each policy and prints one JSON object', async () => {
    const { code, stdout, stderr } = await run(['engine', '--trace', trace, '--policies', 'lru,cachesage', '--capacity', '0.5', '--model', 'tiny', '--threads', '2', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.calls).toBe(calls.length);
    // replay's unit: half the peak live footprint, raised to the largest call.
    const largest = Math.max(...calls.map((c) => Math.ceil((c.segments.reduce((n, x) => n + x.tokens, 0) + c.outputTokens) / 16)));
    expect(report.capacityBlocks).toBe(Math.max(capacityBlocks({ fraction: 0.5 }, report.peakLiveBlocks), largest));
    expect(report.capacityBlocks).toBeLessThan(report.peakLiveBlocks);
    expect(report.hostCapacityBlocks).toBe(report.peakLiveBlocks);
    expect(report.results.map((r: { policy: string }) => r.policy)).toEqual(['lru', 'cachesage']);
    // The simulator's cost model, calibrated from this engine's measured speeds.
    const c = report.calibration;
    expect(c.kvBytesPerToken).toBe(2 * 2 * 2 * 16 * 4);
    expect(c.iterationTokenBudget).toBe(512);
    for (const field of ['prefillTokensPerSecond', 'hostToDeviceBytesPerSecond']) expect(c[field]).toBeGreaterThan(0);
    expect(c.samples.prefill.length).toBeGreaterThan(2);
    for (const r of report.results) {
      // The policies cannot tell the simulator from the engine: the same decisions, so the same hits.
      expect(r.predictedTokenHitRate).toBe(Math.round(r.tokenHitRate * 1e4) / 1e4); // replay rounds to 4 places
      expect(r.predictedMeanTtftMs).toBeGreaterThan(0);
      expect(r.runtimeMsPerCall).toBeGreaterThan(0);
      expect(r.tokenHitRate).toBeGreaterThan(0);
      expect(r.tokenHitRate + r.hostHitRate).toBeLessThan(1);
      expect(r.p50TtftMs).toBeLessThanOrEqual(r.p99TtftMs);
      expect(r.meanTtftMs).toBeGreaterThan(0);
      expect(r.throughputTokPerS).toBeGreaterThan(0);
    }
  });

  it('runs open loop with --arrival-rate', async () => {
    const { code, stdout, stderr } = await run(['engine', '--trace', trace, '--policies', 'lfu', '--arrival-rate', '50', '--seed', '3', '--capacity', '1', '--threads', '2', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    // One block cannot hold a call: raised to the largest, and said so on stderr.
    expect(stderr).toBe(`cachesage engine: --capacity 1 is 1 device block, fewer than the ${report.capacityBlocks} the largest call needs; raised to ${report.capacityBlocks} blocks\n`);
    expect(report.arrivalRate).toBe(50);
    expect(report.concurrency).toBeUndefined();
    expect(report.results[0].policy).toBe('lfu');
    expect(report.results[0].wallSeconds).toBeGreaterThan(0);
    const both = await run(['engine', '--trace', trace, '--arrival-rate', '50', '--concurrency', '2']);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('cachesage engine: --concurrency and --arrival-rate cannot be used together (closed or open loop: pick one)\n');
  });

  it('refuses offline bounds, unknown models and a missing trace in one line', async () => {
    const bound = await run(['engine', '--trace', trace, '--policies', 'belady']);
    expect(bound.code).toBe(2);
    expect(bound.stderr).toBe('cachesage engine: --policies: belady is an offline bound; it exists only in replay\n');
    const model = await run(['engine', '--trace', trace, '--model', join(dir, 'none.json')]);
    expect(model.code).toBe(2);
    expect(model.stderr).toMatch(/^cachesage engine: --model: model config .*none\.json: cannot read it/);
    const missing = await run(['engine']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('cachesage engine: --trace FILE is required\n');
  });
});
