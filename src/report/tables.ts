/**
 * The report's HTML tables: the hit-rate overview, the targets table (the
 * flagship against both baselines, per sweep point) and each workload's
 * full results table.
 */
import type { PolicyResult } from '../sim/replay.js';
import {
  allResults,
  basePolicy,
  compareReport,
  FLAGSHIP_POLICY,
  isBoundResult,
  TARGET_KEYS,
  type Comparison,
  type ResultComparison,
  type TargetVerdicts,
  type Verdict,
} from './baselines.js';
import type { BenchRun, BenchRunEntry } from './results.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)}%`;
}

export function num(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined ? '–' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A byte count in binary units: `0 B`, `512 B`, `3.4 MiB`, `1.2 GiB`. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A ratio as a signed change: 0.82 is `−18.0%`. */
export function change(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined) return '–';
  const delta = (ratio - 1) * 100;
  return `${delta >= 0 ? '+' : '−'}${Math.abs(delta).toFixed(1)}%`;
}

/** Points of hit rate between two fractions, signed. */
function points(delta: number | null): string {
  if (delta === null) return '–';
  return `${delta >= 0 ? '+' : '−'}${Math.abs(delta * 100).toFixed(1)} pp`;
}

/** A target's cell: ✓ met, ✗ missed (✗ MIN too: MIN with the same tiers misses it as well), – not applicable. */
function verdictCell(v: Verdict, text = '', minMisses = false): string {
  const mark = v === 'pass' ? '✓' : v === 'miss' ? (minMisses ? '✗ MIN too' : '✗') : '–';
  const cls = v === 'pass' ? 'pass' : v === 'miss' ? (minMisses ? 'miss min-too' : 'miss') : 'na';
  return `<td class="${cls}">${text ? `${escapeHtml(text)} ` : ''}${mark}</td>`;
}

const TARGET_HEADS: Record<keyof TargetVerdicts, string> = {
  gapClosed: 'gap',
  hitRate: 'hit',
  p99Ttft: 'p99',
  meanTtft: 'TTFT',
  throughput: 'tok/s',
};

/** Result names of a run in reading order (vanilla first, device-only runs after their policy). */
export function resultNames(run: BenchRun): string[] {
  const names: string[] = [];
  for (const entry of run.runs) for (const r of allResults(entry.report)) if (!names.includes(r.policy)) names.push(r.policy);
  return names;
}

/** Best online policy's token hit rate in a list of results. */
function bestOnline(results: readonly PolicyResult[]): number | undefined {
  const online = results.filter((r) => !isBoundResult(r.policy)).map((r) => r.tokenHitRate);
  return online.length > 1 ? Math.max(...online) : undefined;
}

function anchor(name: string): string {
  return 'w-' + name.replace(/[^A-Za-z0-9_-]/g, '_');
}

export { anchor };

/** Token hit rate of every result at the TTFT capacity, one row per workload. */
export function overviewTable(run: BenchRun): string {
  const capacity = run.parameters.ttftCapacity;
  const names = resultNames(run);
  const rows = run.workloads.map((w) => {
    const entry = run.runs.find((e) => e.workload === w.name && e.capacity === capacity);
    if (!entry) return '';
    const results = allResults(entry.report);
    const best = bestOnline(results);
    const cells = names.map((p) => {
      const r = results.find((x) => x.policy === p);
      const cls = r && isBoundResult(p) ? 'bound' : r && r.tokenHitRate === best ? 'best' : '';
      return `<td class="${cls}">${pct(r?.tokenHitRate)}</td>`;
    });
    return `<tr><td class="name"><a href="#${anchor(w.name)}">${escapeHtml(w.name)}</a></td>${cells.join('')}</tr>`;
  });
  return `<table class="overview"><thead><tr><th class="name">workload</th>${names.map((p) => `<th>${escapeHtml(p)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">Token hit rate at device capacity ${pct(capacity)} of the peak live footprint; the best online policy of each row in bold. belady (MIN) and infinite are bounds.</p>`;
}

/**
 * The flagship (with and without its host tier) against both baselines,
 * one row per workload, capacity and flagship run, each target's figure
 * with its mark.
 */
export function targetsTable(run: BenchRun): string {
  const rows: string[] = [];
  for (const entry of run.runs) {
    const comparison = compareReport(entry.report);
    const results = allResults(entry.report);
    const flagship = comparison.rows.filter((c) => basePolicy(c.policy) === FLAGSHIP_POLICY && c.targets !== null);
    flagship.forEach((c, i) => {
      const r = results.find((x) => x.policy === c.policy)!;
      const sameTiers = results.find((x) => x.policy === (c.hostTier ? comparison.baselines.lru : comparison.baselines.vanilla));
      const t = c.targets!;
      rows.push(
        `<tr class="${i === 0 ? 'group' : ''}">` +
          `<td class="name">${i === 0 ? `<a href="#${anchor(entry.workload)}">${escapeHtml(entry.workload)}</a>` : ''}</td><td>${i === 0 ? pct(entry.capacity) : ''}</td>` +
          `<td>${points(c.hostTier ? comparison.minHeadroom : comparison.deviceOnlyMinHeadroom)}</td><td>${i === 0 ? points(comparison.infiniteHeadroom) : ''}</td>` +
          `<td class="name">${escapeHtml(c.policy)}</td>` +
          verdictCell(t.gapClosed, c.gapClosedShown === null ? '' : num(c.gapClosedShown, 3)) +
          verdictCell(t.hitRate, sameTiers ? points(r.tokenHitRate - sameTiers.tokenHitRate) : '', c.minMisses.includes('hitRate')) +
          verdictCell(t.p99Ttft, c.p99TtftVsLru === null ? '' : `${num(c.p99TtftVsLru, 2)}×`, c.minMisses.includes('p99Ttft')) +
          verdictCell(t.meanTtft, c.meanTtftVsVanilla === null ? '' : `${num(c.meanTtftVsVanilla, 2)}×`, c.minMisses.includes('meanTtft')) +
          verdictCell(t.throughput, c.throughputVsVanilla === null ? '' : `${num(c.throughputVsVanilla, 2)}×`, c.minMisses.includes('throughput')) +
          `</tr>`,
      );
    });
  }
  if (rows.length === 0) return `<p class="note">No ${escapeHtml(FLAGSHIP_POLICY)} run in this bench: no targets to score.</p>`;
  const head = ['workload', 'capacity', 'MIN − LRU', 'infinite − vanilla', 'run', 'gap closed', 'hit vs LRU', 'p99 TTFT vs LRU', 'mean TTFT vs vanilla', 'tok/s vs vanilla'];
  return `<table class="targets"><thead><tr>${head.map((h, i) => `<th class="${i === 0 || i === 4 ? 'name' : ''}">${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p class="note">✓ met, ✗ missed, ✗ MIN too: missed, and MIN with the same tiers misses it as well (no eviction order meets it in this replay: the workload and the serving model set it, not the policy), – not applicable (the headroom columns say why: gap closed needs MIN ≥ 2 pp above LRU, the vanilla targets need infinite ≥ 10 pp above vanilla). Ratios: the run's figure over the baseline's; "LRU" is lru for the run with a host tier, vanilla for the one without, and "MIN" likewise MIN with the same tiers (belady-nohost for the run without).</p>`;
}

function resultRow(entry: BenchRunEntry, r: PolicyResult, c: ResultComparison, first: boolean, best: number | undefined): string {
  const bound = isBoundResult(r.policy);
  const hitClass = bound ? 'bound' : r.tokenHitRate === best ? 'best' : '';
  const targets = c.targets === null ? TARGET_KEYS.map(() => '<td class="na"></td>').join('') : TARGET_KEYS.map((key) => verdictCell(c.targets![key], '', c.minMisses.includes(key))).join('');
  return (
    `<tr class="${first ? 'group' : ''}">` +
    `<td>${first ? pct(entry.capacity) : ''}</td><td>${first ? num(entry.report.capacityBlocks, 0) : ''}</td>` +
    `<td class="name">${escapeHtml(r.policy)}</td><td class="${hitClass}">${pct(r.tokenHitRate)}</td><td>${pct(r.hostHitRate)}</td>` +
    `<td>${num(c.gapClosedShown, 3)}</td><td>${num(r.meanTtftMs, 1)}</td><td>${num(r.p50TtftMs, 1)}</td><td>${num(r.p99TtftMs, 1)}</td>` +
    `<td>${num(r.throughputTokPerS, 0)}</td><td>${change(c.meanTtftVsVanilla)}</td><td>${change(c.throughputVsVanilla)}</td>` +
    `<td>${pct(r.prefetchPrecision)}</td><td>${humanBytes(r.bytesMoved)}</td><td>${num(r.overheadUsPerCall, 1)}</td>${targets}</tr>`
  );
}

/** Why gap closed is blank at a capacity, or null when it is shown. */
function blankNote(entry: BenchRunEntry, comparison: Comparison): string | null {
  const notes: string[] = [];
  if (comparison.gapClosedWhyBlank !== null) notes.push(`gap closed blank: ${comparison.gapClosedWhyBlank}`);
  if (comparison.deviceOnlyGapClosedWhyBlank !== null && comparison.deviceOnlyGapClosedWhyBlank !== comparison.gapClosedWhyBlank && entry.report.hostCapacityBlocks > 0) {
    notes.push(`without a host tier, gap closed blank: ${comparison.deviceOnlyGapClosedWhyBlank}`);
  }
  return notes.length === 0 ? null : `capacity ${pct(entry.capacity)}: ${notes.join('; ')}.`;
}

/** One workload's results: every result at every capacity, with the relative columns and targets. */
export function resultsTable(entries: readonly BenchRunEntry[]): string {
  const rows: string[] = [];
  const notes: string[] = [];
  for (const entry of entries) {
    const comparison = compareReport(entry.report);
    const results = allResults(entry.report);
    const best = bestOnline(results);
    results.forEach((r, i) => rows.push(resultRow(entry, r, comparison.rows[i]!, i === 0, best)));
    const note = blankNote(entry, comparison);
    if (note !== null) notes.push(note);
  }
  const head = [
    'capacity',
    'blocks',
    'policy',
    'token hit',
    'host hit',
    'gap closed',
    'mean TTFT ms',
    'p50 TTFT ms',
    'p99 TTFT ms',
    'tok/s',
    'TTFT vs vanilla',
    'tok/s vs vanilla',
    'prefetch precision',
    'moved',
    'µs/call',
  ];
  const first = head.map((h) => `<th rowspan="2" class="${h === 'policy' ? 'name' : ''}">${escapeHtml(h)}</th>`).join('');
  const targets = TARGET_KEYS.map((key) => `<th>${escapeHtml(TARGET_HEADS[key])}</th>`).join('');
  return `<div class="wide"><table class="results"><thead><tr>${first}<th colspan="${TARGET_KEYS.length}">targets</th></tr><tr>${targets}</tr></thead><tbody>${rows.join('')}</tbody></table></div>
${notes.length > 0 ? `<ul class="note">${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}`;
}
