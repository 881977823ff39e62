/**
 * The bench report page rendered in a real browser: its charts draw, it
 * loads nothing from the network, and a screenshot is left in /tmp to look
 * at.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { deviceOnlyRuns } from '../../src/report/baselines.js';
import { renderReportHtml } from '../../src/report/html.js';
import type { BenchRun, BenchRunEntry, BenchWorkload } from '../../src/report/results.js';
import { measurePolicyLayer, type PolicyLayerResults } from '../../src/sim/policy_layer.js';
import { replay } from '../../src/sim/replay.js';
import { generateWorkload } from '../../src/workloads/index.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = '/tmp/cachesage-report.png';
const haveChromium = existsSync(CHROMIUM);
const inCi = Boolean(process.env['CI']);

const POLICIES = ['lru', 'cachesage', 'belady', 'infinite'];
const HOST = { fraction: 1 };
/** Every result of a sweep point: vanilla, the policies, and cachesage without its host tier. */
const RESULTS = ['vanilla', 'lru', 'cachesage', 'cachesage-nohost', 'belady', 'belady-nohost', 'infinite'];
const CAPACITIES = [0.25, 0.5, 1.0];
/** The policy layer's workloads: three, so the noisy-neighbour mix has a heavy one and two small ones. */
const LAYER_WORKLOADS = [
  ['react', 6],
  ['groupchat', 8],
  ['pipeline', 4],
] as const;

function smallLayer(): PolicyLayerResults {
  return measurePolicyLayer(
    LAYER_WORKLOADS.map(([name, sessions]) => {
      const { header, calls } = generateWorkload(name, { seed: 1, sessions });
      return { name, calls, ...(header.tools ? { tools: header.tools } : {}) };
    }),
  );
}

/** A small bench run built in-process: two bundled shapes, three capacities, four policies and the baselines' runs. */
function smallRun(): BenchRun {
  const workloads: BenchWorkload[] = [];
  const runs: BenchRunEntry[] = [];
  for (const [name, sessions] of [
    ['react', 6],
    ['groupchat', 8],
  ] as const) {
    const { calls } = generateWorkload(name, { seed: 1, sessions });
    workloads.push({ name, source: 'bundled', calls: calls.length, sessions, totalCalls: calls.length, totalSessions: sessions, truncated: false });
    for (const capacity of CAPACITIES) {
      const report = replay(name, calls, { policies: POLICIES, capacity: { fraction: capacity }, hostCapacity: HOST, deviceOnly: deviceOnlyRuns(POLICIES, HOST) });
      runs.push({ workload: name, capacity, report });
    }
  }
  return {
    startedAt: new Date(0).toISOString(),
    seconds: 1,
    version: 'test',
    parameters: {
      quick: true,
      capacities: CAPACITIES,
      policies: POLICIES,
      model: '8b',
      blockSize: 16,
      concurrency: 32,
      arrivalRate: null,
      hostCapacity: HOST,
      seed: 1,
      maxCalls: 10_000,
      bundledSessions: null,
      ttftCapacity: 0.5,
      jobs: 1,
    },
    workloads,
    runs,
    policyLayer: smallLayer(),
  };
}

let dir: string;
let html: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cachesage-report-'));
  html = await renderReportHtml(smallRun());
  writeFileSync(join(dir, 'index.html'), html);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('renderReportHtml', () => {
  it('is self-contained: no script, no stylesheet link, no external URL', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link/i);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\/\//i);
  });

  it('gives every chart a title and both axis titles', () => {
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    // Per workload: the miss-ratio curve, the TTFT CDF and TTFT relative to vanilla.
    expect(svgs).toHaveLength(6);
    for (const svg of svgs) {
      expect(svg).toContain('role-title-text');
      expect(svg.match(/class="mark-text role-axis-title"/g)).toHaveLength(2);
    }
    expect(html).toContain('react: token hit rate vs device capacity');
    expect(html).toContain('groupchat: TTFT distribution');
    expect(html).toContain('time to first token (ms, log scale)');
    expect(html).toContain('react: TTFT relative to vanilla, by percentile');
    expect(html).toMatch(/TTFT ÷ vanilla(&#39;|')s \(log scale\)/);
  });

  it('defines every figure it shows', () => {
    const terms = [...html.matchAll(/<dt>([^<]*)<\/dt>/g)].map((m) => m[1]);
    for (const term of ['vanilla', 'lru', 'cachesage-nohost', 'token hit', 'host hit', 'gap closed', 'prefetch precision', 'moved', 'targets', 'TTFT vs vanilla, tok/s vs vanilla']) {
      expect(terms).toContain(term);
    }
  });

  it('has a section per policy of the policy layer, each defining what it measures', () => {
    expect(html).toContain('<h2 id="policy-layer">Policy layer</h2>');
    expect(html).toContain('<a href="#policy-layer">policy layer</a>');
    for (const [key, title] of [
      ['batchShaping', 'Batch shaping'],
      ['speculativePrefill', 'Speculative prefill'],
      ['fairness', 'Fairness'],
      ['routing', 'Routing'],
      ['toolMemo', 'Tool memoization'],
    ]) {
      const section = html.match(new RegExp(`<section id="policy-layer-${key}">([\\s\\S]*?)</section>`))?.[1];
      expect(section, key).toBeDefined();
      expect(section).toContain(`<h3>${title}</h3>`);
      expect(section).toMatch(/<p class="note">[^<]{40,}<\/p>/);
      expect(section!.match(/<tbody>(<tr>.*?<\/tr>)+<\/tbody>/)).not.toBeNull();
    }
    // The mix names its heavy workload (most calls) and both small ones.
    expect(html).toMatch(/Noisy neighbour: \w+ \(heavy, \d+ calls\) beside \w+ \(\d+ calls\) and \w+ \(\d+ calls\) on one engine of \d+ device blocks/);
  });

  it('writes bytes moved in binary units', () => {
    const moved = [...html.matchAll(/<td>(\d+(?:\.\d)? (?:B|KiB|MiB|GiB))<\/td>/g)].map((m) => m[1]);
    expect(moved.length).toBeGreaterThan(0);
    expect(moved.some((m) => m!.endsWith('iB'))).toBe(true);
  });
});

// Locally a missing browser skips the test, saying why; in CI it fails it.
const browserIt = haveChromium || inCi ? it : it.skip;
if (!haveChromium && !inCi) console.warn(`report.test.ts: skipping the browser check: ${CHROMIUM} is missing (apt-get install -y chromium)`);

describe('the report in headless Chromium', () => {
  browserIt(`draws every chart and loads nothing from the network${haveChromium ? '' : ` (needs ${CHROMIUM})`}`, async () => {
    expect(haveChromium, `${CHROMIUM} is missing: install it with apt-get install -y chromium (.ci/run does)`).toBe(true);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const requested: string[] = [];
      page.on('request', (request) => {
        if (!request.url().startsWith('file:')) requested.push(request.url());
      });
      await page.goto(pathToFileURL(join(dir, 'index.html')).href);
      expect(await page.title()).toBe('cachesage bench report');

      // A chart counts when it has a line mark with a drawn path and visible size.
      const charts = await page.$$eval('figure.chart svg', (svgs) =>
        svgs.map((svg) => {
          const box = svg.getBoundingClientRect();
          const lines = [...svg.querySelectorAll('g.mark-line.role-mark path')].filter((p) => (p.getAttribute('d') ?? '').length > 10);
          const title = svg.querySelector('.role-title-text')?.textContent ?? '';
          const axes = [...svg.querySelectorAll('.role-axis-title')].map((t) => t.textContent ?? '');
          return { width: box.width, height: box.height, lines: lines.length, title, axes };
        }),
      );
      expect(charts).toHaveLength(6);
      for (const chart of charts) {
        expect(chart.width).toBeGreaterThan(200);
        expect(chart.height).toBeGreaterThan(150);
        // One line per result.
        expect(chart.lines).toBe(RESULTS.length);
        expect(chart.title.length).toBeGreaterThan(0);
        expect(chart.axes).toHaveLength(2);
      }
      expect(charts.map((c) => c.axes[0])).toContain('device capacity (fraction of peak live footprint)');

      const tables = await page.$$eval('table', (ts) => ts.map((t) => t.querySelectorAll('tbody tr').length));
      // Workloads, overview, the targets (two cachesage runs a sweep point), then one results table per workload.
      const points = 2 * CAPACITIES.length;
      // Then the policy layer: a pair of rows per workload (tool-memo: react and pipeline declare tools), two fairness runs, three routers.
      const layer = [2 * LAYER_WORKLOADS.length, 2 * LAYER_WORKLOADS.length, 2, 3 * LAYER_WORKLOADS.length, 2 * 2];
      expect(tables).toEqual([2, 2, 2 * points, CAPACITIES.length * RESULTS.length, CAPACITIES.length * RESULTS.length, ...layer]);
      // Every results row carries its five target marks; the flagship's are scored.
      const marks = await page.$$eval('table.results tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].slice(-5).map((td) => td.textContent)));
      expect(marks.every((m) => m.length === 5)).toBe(true);
      expect(marks.flat().filter((m) => m === '✓' || m === '✗').length).toBeGreaterThan(0);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(existsSync(SCREENSHOT)).toBe(true);
      expect(requested).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
