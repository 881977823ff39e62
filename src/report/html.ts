/**
 * The bench report: one self-contained HTML page (inline CSS and SVG, no
 * script, no external URL) with the run's parameters, what every figure
 * means, an overview, CacheSage against its two baselines (lru with the
 * same tiers, vanilla without a host tier) and the targets, and for each
 * workload its miss-ratio curve, its TTFT distributions and its table.
 */
import type { PolicyResult } from '../sim/replay.js';
import { allResults, VANILLA } from './baselines.js';
import {
  chartsUnavailable,
  hitRateCurveSpec,
  renderSvg,
  ttftCdfSpec,
  ttftRatioSpec,
  type HitRatePoint,
  type TtftSamples,
} from './charts.js';
import { DEFINITIONS } from './definitions.js';
import { policyLayerHtml } from './policy_layer.js';
import type { BenchRun, BenchRunEntry, BenchWorkload } from './results.js';
import { anchor, escapeHtml, num, overviewTable, pct, resultNames, resultsTable, targetsTable } from './tables.js';

const STYLE = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1440px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 40px 0 6px; padding-top: 12px; border-top: 1px solid #ddd; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: #555; margin: 0 0 16px; }
dl.params { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.params dt { color: #555; }
dl.params dd { margin: 0; }
nav a { margin-right: 12px; white-space: nowrap; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; margin: 12px 0; }
.chart { background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; padding: 8px; }
.chart svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; background: #fff; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #e3e3e3; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; font-weight: 600; }
td.name, th.name { text-align: left; }
td.best { font-weight: 700; background: #eef6ee; }
tr.group td { border-top: 2px solid #bbb; }
td.bound { color: #777; }
td.pass { color: #1a7f37; }
td.miss { color: #b42318; font-weight: 600; }
td.miss.min-too { color: #9a6700; font-weight: 400; }
td.na { color: #999; }
.note { color: #555; font-size: 13px; }
.wide { overflow-x: auto; }
ul.note { margin: 4px 0 12px; padding-left: 20px; }
dl.defs { display: grid; grid-template-columns: 14em 1fr; gap: 4px 16px; margin: 12px 0; max-width: 1100px; }
dl.defs dt { font-weight: 600; }
dl.defs dd { margin: 0; color: #333; }
`;

function parameterList(run: BenchRun): string {
  const p = run.parameters;
  const loop = p.arrivalRate !== null ? `open loop, ${p.arrivalRate} new sessions/s` : `closed loop, ${p.concurrency} sessions in flight`;
  const rows: [string, string][] = [
    ['started', `${run.startedAt} (${run.seconds} s, cachesage ${run.version})`],
    ['cost model', p.model],
    ['block size', `${p.blockSize} tokens`],
    ['arrivals', loop],
    ['device capacities', `${p.capacities.map((c) => pct(c)).join(', ')} of each workload's peak live footprint`],
    ['host tier', 'fraction' in p.hostCapacity ? `${pct(p.hostCapacity.fraction)} of the peak live footprint` : p.hostCapacity.blocks === 0 ? 'none' : `${p.hostCapacity.blocks} blocks`],
    ['policies', p.policies.join(', ')],
    ['baselines', `lru with the same tiers; ${VANILLA}: lru with no host tier (the serving stack as shipped), replayed in every sweep point`],
    ['calls per workload', `at most ${p.maxCalls.toLocaleString('en-US')} (first whole sessions)`],
    ['bundled sessions', p.bundledSessions === null ? "generator's default" : String(p.bundledSessions)],
    ['seed', String(p.seed)],
    ['parallel replays', String(p.jobs)],
    ['mode', p.quick ? 'quick' : 'full'],
  ];
  return `<dl class="params">${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

function workloadTable(run: BenchRun): string {
  const peaks = new Map<string, number>();
  for (const entry of run.runs) peaks.set(entry.workload, entry.report.peakLiveBlocks);
  const rows = run.workloads.map((w) => {
    const replayed = w.truncated ? `${w.sessions.toLocaleString('en-US')} of ${w.totalSessions.toLocaleString('en-US')}` : w.sessions.toLocaleString('en-US');
    const calls = w.truncated ? `${w.calls.toLocaleString('en-US')} of ${w.totalCalls.toLocaleString('en-US')}` : w.calls.toLocaleString('en-US');
    return `<tr><td class="name"><a href="#${anchor(w.name)}">${escapeHtml(w.name)}</a></td><td class="name">${escapeHtml(w.source === 'bundled' ? 'bundled generator' : (w.path ?? 'trace'))}</td><td>${replayed}</td><td>${calls}</td><td>${num(peaks.get(w.name), 0)}</td></tr>`;
  });
  return `<table><thead><tr><th class="name">workload</th><th class="name">source</th><th>sessions replayed</th><th>calls replayed</th><th>peak live blocks</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function definitionList(): string {
  return `<dl class="defs">${DEFINITIONS.map(([term, text]) => `<dt>${escapeHtml(term)}</dt><dd>${escapeHtml(text)}</dd>`).join('')}</dl>`;
}

/** TTFT samples of every result that kept them, in reading order. */
function samplesOf(results: readonly PolicyResult[]): TtftSamples[] {
  return results.filter((r) => r.ttftMs && r.ttftMs.length > 0).map((r) => ({ policy: r.policy, ttftMs: r.ttftMs! }));
}

/** `noCharts`: why the charts cannot be drawn (vega absent), or null. */
async function workloadSection(run: BenchRun, workload: BenchWorkload, noCharts: string | null): Promise<string> {
  const entries = run.runs.filter((e) => e.workload === workload.name).sort((a, b) => a.capacity - b.capacity);
  const names = resultNames(run);
  // Plotted at the capacity replay used, which is never less than the largest call.
  const used = (e: BenchRunEntry) => (e.report.peakLiveBlocks > 0 ? e.report.capacityBlocks / e.report.peakLiveBlocks : e.capacity);
  const points: HitRatePoint[] = entries.flatMap((e) =>
    allResults(e.report).map((r) => ({ policy: r.policy, capacity: used(e), tokenHitRate: r.tokenHitRate })),
  );
  const peak = entries[0]?.report.peakLiveBlocks ?? 0;
  const size = `${workload.calls.toLocaleString('en-US')} calls, ${workload.sessions.toLocaleString('en-US')} sessions`;
  const charts: string[] = [];
  if (noCharts === null) charts.push(await renderSvg(hitRateCurveSpec(`${workload.name}: token hit rate vs device capacity`, `${size}; peak live footprint ${peak.toLocaleString('en-US')} blocks`, points, names)));

  const ttftEntry = entries.find((e) => e.capacity === run.parameters.ttftCapacity);
  const samples = ttftEntry ? samplesOf(allResults(ttftEntry.report)) : [];
  if (noCharts === null && ttftEntry && samples.length > 0) {
    const at = `device capacity ${pct(ttftEntry.capacity)} of peak (${ttftEntry.report.capacityBlocks.toLocaleString('en-US')} blocks)`;
    charts.push(await renderSvg(ttftCdfSpec(`${workload.name}: TTFT distribution`, at, samples, names)));
    if (samples.some((x) => x.policy === VANILLA)) {
      charts.push(await renderSvg(ttftRatioSpec(`${workload.name}: TTFT relative to ${VANILLA}, by percentile`, `${at}; below 1: faster than ${VANILLA}`, samples, VANILLA, names)));
    }
  }
  const truncation = workload.truncated
    ? `<p class="note">Replayed on its first ${workload.sessions.toLocaleString('en-US')} of ${workload.totalSessions.toLocaleString('en-US')} sessions (${workload.calls.toLocaleString('en-US')} of ${workload.totalCalls.toLocaleString('en-US')} calls), the call limit being ${run.parameters.maxCalls.toLocaleString('en-US')}.</p>`
    : '';
  return `<section id="${anchor(workload.name)}">
<h2>${escapeHtml(workload.name)}</h2>
<p class="meta">${escapeHtml(workload.source === 'bundled' ? 'bundled generator' : (workload.path ?? 'trace'))} · ${escapeHtml(size)}</p>
${truncation}
${noCharts === null ? `<div class="charts">${charts.map((svg) => `<figure class="chart" style="margin:0">${svg}</figure>`).join('')}</div>` : ''}
<h3>Results</h3>
${resultsTable(entries)}
</section>`;
}

/**
 * The report page of a bench run. Per-call TTFT samples (`ttftMs`) feed
 * the distribution charts where the run kept them.
 */
export async function renderReportHtml(run: BenchRun): Promise<string> {
  const noCharts = await chartsUnavailable();
  const sections: string[] = [];
  for (const workload of run.workloads) sections.push(await workloadSection(run, workload, noCharts));
  const nav =
    run.workloads.map((w) => `<a href="#${anchor(w.name)}">${escapeHtml(w.name)}</a>`).join(' ') + (run.policyLayer ? ' <a href="#policy-layer">policy layer</a>' : '');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cachesage bench report</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>cachesage bench report</h1>
<p class="meta">KV-cache policies replayed on multi-agent workloads: hit rates, time to first token and throughput under each device capacity, against LRU with the same tiers and against ${VANILLA} (LRU with no host tier).</p>
${parameterList(run)}
${noCharts === null ? '' : `<p class="note">No charts in this report: ${escapeHtml(noCharts)}.</p>`}
<nav>${nav}</nav>
<h2>What the figures mean</h2>
${definitionList()}
<h2>Workloads</h2>
${workloadTable(run)}
<h2>Overview</h2>
${overviewTable(run)}
<h2>CacheSage against the baselines</h2>
${targetsTable(run)}
${sections.join('\n')}
${run.policyLayer ? policyLayerHtml(run.policyLayer) : ''}
</main>
</body>
</html>
`;
}
