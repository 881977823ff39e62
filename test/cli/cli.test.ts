// Longer than 400 lines: the CLI contract is one module (replay.md), tested as scripts use it, flag by flag.
/**
 * The `cachesage` command line as scripts use it: a child process, its exit
 * status, its stdout JSON and its one-line errors (replay.md, "The CLI
 * contract").
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { probeWebGpu } from '../../src/compute/webgpu/device.js';
import { Progress } from '../../src/cli/progress.js';
import type { PolicyLayerResults } from '../../src/sim/policy_layer.js';
import { capacityBlocks, REPLAY_POLICIES } from '../../src/sim/replay.js';
import { encodeCall, encodeHeader, promptTokens, type TraceCall } from '../../src/trace/format.js';
import { generateWorkload } from '../../src/workloads/index.js';
import { cliInProcess, type Outcome } from './in_process.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BLOCK_SIZE = 16;

function cli(args: readonly string[], cwd = ROOT): Promise<Outcome> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args],
      { cwd, env: { ...process.env, CACHESAGE_DEBUG: '' }, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `jobs` at most `width` at a time (the test machine has few cores). */
async function inBatches<T, R>(items: readonly T[], width: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await job(items[i]!);
      }
    }),
  );
  return results;
}

function writeTrace(path: string, workload: string, calls: readonly TraceCall[]): void {
  const lines = [encodeHeader({ workload, source: 'test' }), ...calls.map(encodeCall)];
  writeFileSync(path, lines.join('\n') + '\n');
}

let dir: string;
let trace: string;
let calls: TraceCall[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cachesage-cli-'));
  calls = generateWorkload('groupchat', { seed: 3, sessions: 12 }).calls;
  trace = join(dir, 'groupchat.jsonl');
  writeTrace(trace, 'groupchat', calls);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface ContractResult {
  policy: string;
  tokenHitRate: number;
  hostHitRate: number;
  gapClosed: number | null;
  meanTtftMs: number;
  p50TtftMs: number;
  p99TtftMs: number;
  throughputTokPerS: number;
  prefetchPrecision: number | null;
  bytesMoved: number;
  overheadUsPerCall: number;
  steadyOverheadUsPerCall: number;
}

interface ContractReport {
  trace: string;
  blockSize: number;
  peakLiveBlocks: number;
  capacityBlocks: number;
  hostCapacityBlocks: number;
  calls: number;
  results: ContractResult[];
}

const REPORT_FIELDS = ['trace', 'blockSize', 'peakLiveBlocks', 'capacityBlocks', 'hostCapacityBlocks', 'calls', 'results'];
const RESULT_FIELDS = [
  'policy',
  'tokenHitRate',
  'hostHitRate',
  'gapClosed',
  'meanTtftMs',
  'p50TtftMs',
  'p99TtftMs',
  'throughputTokPerS',
  'prefetchPrecision',
  'bytesMoved',
  'overheadUsPerCall',
  'steadyOverheadUsPerCall',
  'capacity',
];

/** Blocks of the largest call (prompt plus reply): replay never gives the device less. */
function largestCallBlocks(): number {
  return Math.max(...calls.map((c) => Math.ceil((promptTokens(c) + Math.max(1, c.outputTokens)) / BLOCK_SIZE)));
}

function parseReport(out: Outcome): ContractReport {
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  // One JSON object and nothing else on stdout.
  expect(out.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(out.stdout) as ContractReport;
}

describe('cachesage replay --json', () => {
  it('follows the contract with every policy, in order', async () => {
    // No host tier: tree MIN's bound below is a device-only bound.
    const report = parseReport(await cli(['replay', '--trace', trace, '--capacity', '0.3', '--host-capacity', '0', '--json']));
    for (const field of REPORT_FIELDS) expect(report).toHaveProperty(field);
    expect(report.trace).toBe(trace);
    expect(report.blockSize).toBe(BLOCK_SIZE);
    expect(report.calls).toBe(calls.length);
    expect(report.hostCapacityBlocks).toBe(0);
    expect(Number.isInteger(report.peakLiveBlocks) && report.peakLiveBlocks > 0).toBe(true);
    expect(report.capacityBlocks).toBe(Math.max(largestCallBlocks(), capacityBlocks({ fraction: 0.3 }, report.peakLiveBlocks)));
    expect(report.capacityBlocks).toBeLessThan(report.peakLiveBlocks);
    expect(report.results.map((r) => r.policy)).toEqual([...REPLAY_POLICIES]);

    for (const r of report.results) {
      expect(Object.keys(r).sort()).toEqual([...RESULT_FIELDS].sort());
      expect(r.tokenHitRate).toBeGreaterThanOrEqual(0);
      expect(r.tokenHitRate).toBeLessThanOrEqual(1);
      expect(r.hostHitRate).toBe(0);
      expect(r.meanTtftMs).toBeGreaterThan(0);
      expect(r.p50TtftMs).toBeGreaterThan(0);
      expect(r.p50TtftMs).toBeLessThanOrEqual(r.p99TtftMs);
      expect(r.throughputTokPerS).toBeGreaterThan(0);
      if (r.prefetchPrecision !== null) {
        expect(r.prefetchPrecision).toBeGreaterThanOrEqual(0);
        expect(r.prefetchPrecision).toBeLessThanOrEqual(1);
      }
      expect(Number.isInteger(r.bytesMoved) && r.bytesMoved >= 0).toBe(true);
      expect(r.overheadUsPerCall).toBeGreaterThanOrEqual(0);
      expect(r.steadyOverheadUsPerCall).toBeGreaterThan(0);
    }

    const hit = Object.fromEntries(report.results.map((r) => [r.policy, r.tokenHitRate]));
    // Tree MIN is optimal among non-prefetching policies; infinite capacity bounds everything.
    expect(hit['belady']).toBeGreaterThanOrEqual(hit['lru']!);
    expect(hit['belady']).toBeGreaterThanOrEqual(hit['lfu']!);
    expect(hit['infinite']).toBeGreaterThanOrEqual(hit['belady']!);
    // The capacity is tight enough that the policies differ.
    expect(hit['belady']).toBeGreaterThan(hit['lru']!);
    const gap = Object.fromEntries(report.results.map((r) => [r.policy, r.gapClosed]));
    expect(gap['lru']).toBe(0);
    expect(gap['belady']).toBe(1);
  });

  it('keeps the policy order given, takes block counts, and sizes the host tier', async () => {
    const report = parseReport(
      await cli(['replay', '--trace', trace, '--policies', 'belady,lru', '--capacity', '400', '--host-capacity', '0.5', '--seed', '2', '--json']),
    );
    expect(report.results.map((r) => r.policy)).toEqual(['belady', 'lru']);
    expect(report.capacityBlocks).toBe(Math.max(largestCallBlocks(), 400));
    expect(report.hostCapacityBlocks).toBe(capacityBlocks({ fraction: 0.5 }, report.peakLiveBlocks));
    for (const r of report.results) expect(r.tokenHitRate + r.hostHitRate).toBeLessThanOrEqual(1);
  });

  it('reads 1.0 as the whole footprint and 1 as one block', async () => {
    const [whole, one] = await inBatches([['1.0'], ['1']], 2, ([c]) =>
      cli(['replay', '--trace', trace, '--policies', 'lru', '--capacity', c!, '--json']),
    );
    const wholeReport = parseReport(whole!);
    expect(wholeReport.capacityBlocks).toBe(Math.max(largestCallBlocks(), wholeReport.peakLiveBlocks));
    // One block cannot hold a call: raised, and said so on stderr.
    expect(one!.stderr).toBe(`cachesage replay: --capacity 1 is 1 device block, fewer than the ${largestCallBlocks()} the largest call needs; raised to ${largestCallBlocks()} blocks\n`);
    expect(parseReport({ ...one!, stderr: '' }).capacityBlocks).toBe(largestCallBlocks());
  });

  it('runs an open loop with --arrival-rate and the 70b cost model', async () => {
    const report = parseReport(await cli(['replay', '--trace', trace, '--policies', 'lru', '--arrival-rate', '2', '--model', '70b', '--block-size', '32', '--json']));
    expect(report.blockSize).toBe(32);
    expect(report.results).toHaveLength(1);
  });
});

describe('cachesage replay (table)', () => {
  it('prints a readable table with the capacity in blocks', async () => {
    const out = await cli(['replay', '--trace', trace, '--policies', 'lru,cachesage']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^policy\s+token hit/m);
    expect(out.stdout).toMatch(/^lru\s+\d+\.\d%/m);
    expect(out.stdout).toMatch(/^cachesage\s+\d+\.\d%/m);
    expect(out.stdout).toContain('peak live footprint');
    expect(out.stdout).toMatch(/^backend\s+cpu on native CPU/m);
  });

  it('--profile adds the runtime time per call by phase, to the table and to the JSON', async () => {
    const out = await cli(['replay', '--trace', trace, '--policies', 'lru,cachesage', '--profile']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^policy\s+observe\s+admit\s+prefill\s+release\s+events\s+rescoring\s+refresh\s+act\s+total\s+second half$/m);
    expect(out.stdout).toMatch(/^cachesage(\s+\d+\.\d){10}$/m);
    const report = parseReport(await cli(['replay', '--trace', trace, '--policies', 'lru,cachesage', '--profile', '--json']));
    for (const r of report.results) {
      const profile = (r as unknown as { profileUsPerCall: Record<string, number> }).profileUsPerCall;
      expect(Object.keys(profile)).toEqual(['observe', 'admit', 'prefill', 'release', 'events', 'rescoring', 'refresh', 'act']);
      const phases = Object.values(profile).reduce((a, b) => a + b, 0);
      // The phases are the runtime's own account of the time the simulator measures around it.
      expect(phases).toBeGreaterThan(0);
      expect(phases).toBeLessThanOrEqual(r.overheadUsPerCall * 1.01 + 0.05);
    }
    // Without --profile the JSON keeps its contract fields only.
    expect(parseReport(await cli(['replay', '--trace', trace, '--policies', 'lru', '--json'])).results[0]).not.toHaveProperty('profileUsPerCall');
  });

  it('replays on a named backend with the same results, and on auto', async () => {
    const args = ['replay', '--trace', trace, '--policies', 'lru,cachesage', '--capacity', '0.3', '--json'];
    const onCpu = parseReport(await cli([...args, '--backend', 'cpu']));
    // Dawn may log adapter warnings on stderr; stdout stays one JSON object.
    const parseOnGpu = (out: Outcome): ContractReport => parseReport({ ...out, stderr: '' });
    const webgpu = await probeWebGpu();
    if (webgpu.available) {
      // Timing fields differ; every decision-derived figure is the same.
      const onGpu = parseOnGpu(await cli([...args, '--backend', 'webgpu']));
      const decisions = (r: ContractReport) => r.results.map((x) => [x.policy, x.tokenHitRate, x.hostHitRate, x.bytesMoved, x.meanTtftMs]);
      expect(decisions(onGpu)).toEqual(decisions(onCpu));
    }
    const onAuto = parseOnGpu(await cli([...args, '--backend', 'auto']));
    expect(onAuto.results.map((r) => r.tokenHitRate)).toEqual(onCpu.results.map((r) => r.tokenHitRate));
  });
});

describe('bad input', () => {
  const badFlags: [string[], string][] = [
    [['--capacity', '0'], '--capacity'],
    [['--capacity', '-0.5'], '--capacity'],
    [['--capacity', 'half'], '--capacity'],
    [['--capacity', '1.5'], '--capacity'],
    [['--capacity', '2.0'], '--capacity'],
    [['--capacity', 'NaN'], '--capacity'],
    [['--host-capacity', '-1'], '--host-capacity'],
    [['--host-capacity', '2.5'], '--host-capacity'],
    [['--block-size', '0'], '--block-size'],
    [['--block-size', '1025'], '--block-size'],
    [['--block-size', '8.5'], '--block-size'],
    [['--concurrency', '0'], '--concurrency'],
    [['--concurrency', '2.5'], '--concurrency'],
    [['--arrival-rate', '0'], '--arrival-rate'],
    [['--arrival-rate', '-3'], '--arrival-rate'],
    [['--concurrency', '4', '--arrival-rate', '1'], '--arrival-rate'],
    [['--policies', 'lru,clock'], '--policies'],
    [['--policies', 'lru,,belady'], '--policies'],
    [['--model', '13b'], '--model'],
    [['--seed', 'x'], '--seed'],
    [['--bogus'], '--bogus'],
    [['--json=yes'], '--json'],
    [['--capacity'], '--capacity'],
    [['--capacity', '0.5', '--capacity', '0.25'], '--capacity'],
    [['stray'], 'stray'],
    [['--backend', 'tpu'], '--backend'],
  ];
  // Built when a test runs: the trace is written in beforeAll.
  const cases = (): { args: string[]; names: string }[] => [
    ...badFlags.map(([flags, names]) => ({ args: ['replay', '--trace', trace, ...flags], names })),
    { args: ['replay', '--trace', '--json'], names: '--trace' },
    { args: ['replay', '--json'], names: '--trace' },
    { args: ['frobnicate'], names: 'frobnicate' },
    { args: ['bench', '--max-calls', '0'], names: '--max-calls' },
    { args: ['bench', '--traces', '/nonexistent/cachesage-traces'], names: '--traces' },
    { args: ['bench', '--capacity', '0.5'], names: '--capacity' },
  ];

  function expectUsageError(out: Outcome, args: readonly string[], names: string): void {
    const context = `cachesage ${args.join(' ')}`;
    expect(out.code, context).toBe(2);
    expect(out.stdout, context).toBe('');
    const lines = out.stderr.trimEnd().split('\n');
    expect(lines, context).toHaveLength(1);
    expect(lines[0], context).toContain(names);
    expect(out.stderr, context).not.toMatch(/^\s+at /m);
  }

  it('exits 2 with one stderr line naming the flag, and no stack trace', async () => {
    for (const { args, names } of cases()) expectUsageError(await cliInProcess(args), args, names);
  });

  it('does the same from the executable', async () => {
    const all = cases();
    const some = [all[0]!, all.find((c) => c.names === '--policies')!, all.find((c) => c.names === 'frobnicate')!];
    const outcomes = await inBatches(some, 3, (c) => cli(c.args));
    outcomes.forEach((out, i) => expectUsageError(out, some[i]!.args, some[i]!.names));
  });

  it('names the file when the trace cannot be read', async () => {
    const missing = join(dir, 'missing.jsonl');
    const out = await cli(['replay', '--trace', missing]);
    expect(out.code).toBe(2);
    expect(out.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(out.stderr.startsWith(`${missing}: `)).toBe(true);
  });

  it('names FILE:LINE for a malformed trace line', async () => {
    const bad = join(dir, 'bad.jsonl');
    const [first, second] = calls;
    writeFileSync(bad, [encodeHeader({ workload: 'bad' }), encodeCall(first!), '{"session": "x", "agent": "a", "seq": 0', encodeCall(second!)].join('\n') + '\n');
    const out = await cli(['replay', '--trace', bad, '--json']);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    const lines = out.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: `));
  });
});

describe('help', () => {
  it('prints the tool help and each command help', async () => {
    const tool = await cliInProcess(['--help']);
    const replay = await cliInProcess(['replay', '--help']);
    const bench = await cliInProcess(['bench', '-h']);
    const helpReplay = await cliInProcess(['help', 'replay']);
    expect(tool.code).toBe(0);
    expect(tool.stdout).toMatch(/replay/);
    expect(tool.stdout).toMatch(/bench/);
    expect(replay.code).toBe(0);
    for (const flag of ['--trace', '--policies', '--capacity', '--host-capacity', '--block-size', '--concurrency', '--arrival-rate', '--model', '--seed', '--json']) {
      expect(replay.stdout).toContain(flag);
    }
    expect(replay.stdout).toMatch(/--host-capacity[^\n]*default 1\.0\)/);
    expect(bench.code).toBe(0);
    expect(bench.stdout).toContain('--out');
    expect(bench.stdout).toContain('--quick');
    expect(helpReplay.stdout).toBe(replay.stdout);
    // Help wins over a mistake elsewhere on the line.
    expect((await cliInProcess(['replay', '--bogus', '-h'])).code).toBe(0);
  });

  it('prints help on stderr and exits 2 with no command', async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/Usage: cachesage/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: cachesage/);
  });
});

describe('cachesage bench', () => {
  it('--quick writes index.html and results.json and prints the table', async () => {
    const traces = join(dir, 'traces');
    mkdirSync(traces, { recursive: true });
    writeTrace(join(traces, 'small.jsonl'), 'small', generateWorkload('pipeline', { seed: 5, sessions: 3 }).calls);
    const out = join(dir, 'report');
    const run = await cli([
      'bench',
      '--quick',
      '--out',
      out,
      '--traces',
      traces,
      '--policies',
      'lru,belady',
      '--max-calls',
      '200',
    ]);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.code).toBe(0);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      parameters: { capacities: number[]; policies: string[] };
      workloads: { name: string; source: string; calls: number }[];
      runs: {
        workload: string;
        capacity: number;
        report: {
          results: { policy: string; ttftMs?: unknown }[];
          deviceOnlyResults: { policy: string; hostHitRate: number; ttftMs?: unknown }[];
          comparison: { baselines: unknown; rows: { policy: string; meanTtftVsVanilla: number | null; throughputVsVanilla: number | null; targets: unknown }[] };
        };
      }[];
    };
    expect(results.parameters.capacities).toEqual([0.25, 0.5]);
    expect(results.parameters.policies).toEqual(['lru', 'belady']);
    const names = results.workloads.map((w) => w.name);
    expect(names).toContain('small');
    expect(results.workloads.filter((w) => w.source === 'bundled').map((w) => w.name)).toEqual(expect.arrayContaining(['hierarchy', 'mapreduce']));
    for (const w of results.workloads) expect(w.calls).toBeLessThanOrEqual(200);
    expect(results.runs).toHaveLength(names.length * 2);
    for (const entry of results.runs) {
      // The policies asked for keep their place; vanilla (lru, no host tier) comes beside them.
      expect(entry.report.results.map((r) => r.policy)).toEqual(['lru', 'belady']);
      expect(entry.report.deviceOnlyResults.map((r) => r.policy)).toEqual(['vanilla']);
      expect(entry.report.deviceOnlyResults[0]!.hostHitRate).toBe(0);
      for (const r of [...entry.report.results, ...entry.report.deviceOnlyResults]) expect(r.ttftMs).toBeUndefined();
      expect(entry.report.comparison.baselines).toEqual({ lru: 'lru', vanilla: 'vanilla' });
      expect(entry.report.comparison.rows.map((r) => r.policy)).toEqual(['vanilla', 'lru', 'belady']);
      expect(entry.report.comparison.rows[0]!.meanTtftVsVanilla).toBe(1);
      // Baselines and bounds are not scored.
      for (const row of entry.report.comparison.rows) expect(row.targets).toBeNull();
    }
    // The table on stdout, one line per finished replay on a non-TTY stderr.
    expect(run.stdout).toMatch(/^workload\s+capacity\s+policy\s+token hit\s+host hit\s+gap closed\s+mean TTFT ms\s+p99 TTFT ms\s+tok\/s\s+TTFT vs vanilla\s+tok\/s vs vanilla\s+prefetch prec\s+targets$/m);
    expect(run.stdout).toMatch(/^small\s+0\.25\s+lru\s/m);
    expect(run.stdout).toMatch(/^small\s+0\.25\s+vanilla\s+\d+\.\d%\s+0\.0%\s.*\+0\.0%\s+\+0\.0%/m);
    expect(run.stdout).toMatch(/^targets, in order: gap closed >= 0\.85/m);
    // Two policies and vanilla per replay.
    const progressLines = run.stderr.split('\n').filter((l) => /^bench: \[\d+\/\d+\]/.test(l));
    expect(progressLines).toHaveLength(names.length * 2 * 3);
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('small');

    // The policy layer: the bundled workloads (no trace), each policy beside lru on the same arrivals.
    const layer = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { policyLayer: PolicyLayerResults }).policyLayer;
    const bundled = results.workloads.filter((w) => w.source === 'bundled').map((w) => w.name);
    expect(layer).toMatchObject({ capacity: 0.25, hostTier: 'none', baseline: 'lru' });
    expect(layer.batchShaping.map((p) => p.workload)).toEqual(bundled);
    for (const p of layer.batchShaping) expect([p.baseline.policy, p.measured.policy]).toEqual(['lru', 'lru+batch-shaping']);
    for (const p of layer.speculativePrefill) {
      expect(p.baseline.speculativePrefill).toBeNull();
      const tally = p.measured.speculativePrefill!;
      expect(tally.usedTokens + tally.wastedTokens).toBeLessThanOrEqual(tally.prefilledTokens + tally.loadedTokens);
    }
    expect(layer.speculativePrefill.some((p) => p.measured.speculativePrefill!.usedTokens > 0)).toBe(true);
    expect(layer.fairness!.runs.map((r) => r.policy)).toEqual(['lru', 'fairness']);
    for (const r of layer.fairness!.runs) {
      expect(r.jainHitRate).toBeGreaterThan(0);
      expect(r.jainHitRate).toBeLessThanOrEqual(1);
      expect(r.perWorkload.map((w) => w.workload)).toEqual(layer.fairness!.workloads.map((w) => w.name));
      expect(r.smallP99TtftMs).toBeGreaterThan(0);
    }
    for (const m of layer.routing) {
      expect(m.routers.map((r) => r.router)).toEqual(['cache', 'round-robin', 'sticky']);
      const calls = results.workloads.find((w) => w.name === m.workload)!.calls;
      for (const r of m.routers) expect(r.callsPerReplica.reduce((a, b) => a + b, 0)).toBe(calls);
    }
    // Tool-memo runs where the bundled header declares tools, and never answers stale.
    expect(layer.toolMemo.length).toBeGreaterThan(0);
    for (const p of layer.toolMemo) {
      expect(p.baseline.toolCalls).toMatchObject({ answered: 0, secondsSaved: 0 });
      expect(p.measured.toolCalls!.calls).toBe(p.baseline.toolCalls!.calls);
      expect(p.measured.toolCalls!.stale).toBe(0);
    }
    expect(layer.toolMemo.reduce((sum, p) => sum + p.measured.toolCalls!.secondsSaved, 0)).toBeGreaterThan(0);
    for (const title of ['batch shaping', 'speculative prefill', 'fairness', 'routing', 'tool memoization']) {
      expect(run.stdout).toContain(`policy layer: ${title}\n`);
    }
    expect(run.stdout).toMatch(/^react\s+lru\+tool-memo\s+\d+\.\d%/m);
    expect(run.stdout.indexOf('policy layer:')).toBeGreaterThan(run.stdout.indexOf('targets, in order'));
    for (const key of ['batchShaping', 'speculativePrefill', 'fairness', 'routing', 'toolMemo']) {
      expect(html).toMatch(new RegExp(`<section id="policy-layer-${key}">\\s*<h3>[^<]+</h3>\\s*<p class="note">[^<]+</p>\\s*<div class="wide"><table>`));
    }
  });

  it('--no-policy-layer leaves the policy layer out; the sweep tells tool-memo the bundled tools', async () => {
    const out = join(dir, 'report-no-layer');
    const run = await cli(['bench', '--quick', '--no-policy-layer', '--out', out, '--policies', 'lru,lru+tool-memo', '--max-calls', '20']);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('policy layer');
    expect(run.stdout).not.toContain('policy layer');
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      policyLayer: unknown;
      runs: { workload: string; report: { results: { policy: string; toolCalls?: { answered: number; stale: number } }[] } }[];
    };
    expect(results.policyLayer).toBeNull();
    expect(readFileSync(join(out, 'index.html'), 'utf8')).not.toContain('policy-layer');
    // The bundled pipeline declares its tools in its header: without them the memo would answer nothing.
    for (const entry of results.runs.filter((e) => e.workload === 'pipeline')) {
      const memo = entry.report.results.find((r) => r.policy === 'lru+tool-memo')!;
      expect(memo.toolCalls!.answered).toBeGreaterThan(0);
      expect(memo.toolCalls!.stale).toBe(0);
    }
  });
});

describe('Progress', () => {
  const sink = (isTTY: boolean) => {
    const writes: string[] = [];
    return { writes, stream: { isTTY, columns: 200, write: (text: string) => writes.push(text) } };
  };

  it('prints one line per finished unit when stderr is not a terminal', () => {
    const { writes, stream } = sink(false);
    const progress = new Progress('bench', 2, stream);
    progress.tick('a lru');
    progress.tick('a belady');
    progress.finish();
    expect(writes).toHaveLength(2);
    expect(writes[0]).toMatch(/^bench: \[1\/2\] a lru \(\d+\.\ds\)\n$/);
    expect(writes[1]).toMatch(/^bench: \[2\/2\] a belady /);
  });

  it('redraws one bar in place on a terminal and ends its line once', () => {
    const { writes, stream } = sink(true);
    const progress = new Progress('bench', 4, stream);
    progress.tick('a lru');
    progress.tick('a lfu');
    expect(writes.every((w) => w.startsWith('\r\x1b[2K') && !w.includes('\n'))).toBe(true);
    expect(writes[1]).toContain('[############............] 2/4 50%');
    progress.finish();
    expect(writes.at(-1)).toBe('\n');
  });
});
