/**
 * The report's charts as vega-lite specifications, rendered to static SVG
 * on the server side (vega's headless renderer), so the page needs no
 * script and no network. vega and vega-lite are optional peer packages,
 * imported on first render: without them the report is written without its
 * charts, and {@link chartsUnavailable} says how to get them.
 */
import type { TopLevelSpec } from 'vega-lite';

import { POLICIES, POLICY_NAMES } from '../policies/registry.js';
import { basePolicy } from './baselines.js';

/**
 * A colour and dash for each registered policy, by registry order, fixed so
 * a policy looks the same in every chart; the offline bounds are dashed
 * (reading the future: long dashes; unbounded capacity: short ones).
 */
const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#e45756', '#555555', '#aaaaaa'];
const BOUND_DASH = { future: [6, 3], capacity: [2, 2] } as const;
const FALLBACK_COLORS = ['#72b7b2', '#eeca3b', '#ff9da6', '#9d755d'];

/** A device-only run (vanilla, `cachesage-nohost`) keeps its policy's colour with this dash. */
const DEVICE_ONLY_DASH = [8, 3, 2, 3];

function policyStyle(policy: string, index: number): { color: string; dash: number[] } {
  const base = basePolicy(policy);
  const registered = POLICY_NAMES.indexOf(base);
  const color = PALETTE[registered] ?? FALLBACK_COLORS[index % FALLBACK_COLORS.length]!;
  const bound = registered >= 0 ? POLICIES[base]!.bound : undefined;
  if (base !== policy && registered >= 0) return { color, dash: DEVICE_ONLY_DASH };
  return { color, dash: bound === undefined ? [1, 0] : [...BOUND_DASH[bound]] };
}

const WIDTH = 380;
const HEIGHT = 240;

function policyScales(policies: readonly string[]): { color: object; strokeDash: object } {
  const styles = policies.map(policyStyle);
  const colors = styles.map((style) => style.color);
  const dashes = styles.map((style) => style.dash);
  // The same field and title on both channels makes vega-lite draw one legend.
  return {
    color: { field: 'policy', type: 'nominal', title: 'policy', scale: { domain: [...policies], range: colors }, sort: [...policies] },
    strokeDash: { field: 'policy', type: 'nominal', title: 'policy', scale: { domain: [...policies], range: dashes }, sort: [...policies] },
  };
}

const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  title: { fontSize: 14, anchor: 'start', subtitleColor: '#555' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, symbolStrokeWidth: 2 },
  view: { stroke: '#ddd' },
};

/** One point of a miss-ratio curve. */
export interface HitRatePoint {
  policy: string;
  /** Device capacity as a fraction of the peak live footprint. */
  capacity: number;
  tokenHitRate: number;
}

/**
 * Miss-ratio curve: token hit rate against device capacity, one line per
 * policy.
 */
export function hitRateCurveSpec(title: string, subtitle: string, points: readonly HitRatePoint[], policies: readonly string[]): TopLevelSpec {
  const scales = policyScales(policies);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: { filled: true, size: 30 }, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'capacity',
        type: 'quantitative',
        title: 'device capacity (fraction of peak live footprint)',
        axis: { format: '.0%' },
        scale: { zero: true },
      },
      y: {
        field: 'tokenHitRate',
        type: 'quantitative',
        title: 'token hit rate',
        axis: { format: '.0%' },
        scale: { zero: true },
      },
      ...scales,
    },
  } as TopLevelSpec;
}

/** TTFT samples of one policy, in milliseconds. */
export interface TtftSamples {
  policy: string;
  ttftMs: readonly number[];
}

/** Most points drawn per CDF line: enough for a smooth step curve, small in the page. */
const CDF_POINTS = 160;

/**
 * The empirical CDF of each policy's TTFT, thinned to evenly spaced ranks.
 * Samples must be positive (the x axis is logarithmic).
 */
export function ttftCdfPoints(samples: readonly TtftSamples[]): { policy: string; ttftMs: number; fraction: number }[] {
  const points: { policy: string; ttftMs: number; fraction: number }[] = [];
  for (const { policy, ttftMs } of samples) {
    const sorted = ttftMs.filter((v) => v > 0 && Number.isFinite(v)).sort((a, b) => a - b);
    const n = sorted.length;
    if (n === 0) continue;
    const step = Math.max(1, Math.floor(n / CDF_POINTS));
    for (let i = 0; i < n; i += step) points.push({ policy, ttftMs: sorted[i]!, fraction: (i + 1) / n });
    if ((n - 1) % step !== 0) points.push({ policy, ttftMs: sorted[n - 1]!, fraction: 1 });
  }
  return points;
}

/** TTFT distribution: one empirical CDF line per policy, log time axis. */
export function ttftCdfSpec(title: string, subtitle: string, samples: readonly TtftSamples[], policies: readonly string[]): TopLevelSpec {
  const scales = policyScales(policies);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values: ttftCdfPoints(samples) },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
    encoding: {
      x: { field: 'ttftMs', type: 'quantitative', title: 'time to first token (ms, log scale)', scale: { type: 'log' } },
      y: { field: 'fraction', type: 'quantitative', title: 'fraction of calls', axis: { format: '.0%' }, scale: { domain: [0, 1] } },
      ...scales,
    },
  } as TopLevelSpec;
}

/** Percentiles at which {@link ttftRatioPoints} compares with the reference. */
const RATIO_PERCENTILES = [...Array.from({ length: 99 }, (_, i) => i + 1), 99.5, 99.9];

/** The value at percentile `p` (0..100) of ascending `sorted`, nearest rank. */
function percentileOf(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Each policy's TTFT at each percentile over the reference's (vanilla's) at
 * the same percentile: below 1 is faster. Distributions whose CDFs overlap
 * on a time axis still separate here.
 */
export function ttftRatioPoints(samples: readonly TtftSamples[], reference: string): { policy: string; percentile: number; ratio: number }[] {
  const sortedOf = (s: TtftSamples) => s.ttftMs.filter((v) => v > 0 && Number.isFinite(v)).sort((a, b) => a - b);
  const base = samples.find((s) => s.policy === reference);
  const baseSorted = base ? sortedOf(base) : [];
  if (baseSorted.length === 0) return [];
  const points: { policy: string; percentile: number; ratio: number }[] = [];
  for (const s of samples) {
    const sorted = sortedOf(s);
    if (sorted.length === 0) continue;
    for (const p of RATIO_PERCENTILES) points.push({ policy: s.policy, percentile: p, ratio: percentileOf(sorted, p) / percentileOf(baseSorted, p) });
  }
  return points;
}

/** TTFT relative to the reference by percentile: one line per policy, log ratio axis. */
export function ttftRatioSpec(title: string, subtitle: string, samples: readonly TtftSamples[], reference: string, policies: readonly string[]): TopLevelSpec {
  const scales = policyScales(policies);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    data: { values: ttftRatioPoints(samples, reference) },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
    encoding: {
      x: { field: 'percentile', type: 'quantitative', title: 'percentile of calls', scale: { domain: [0, 100] } },
      // Not niced: a log scale would round out to a decade and flatten ratios near 1.
      y: { field: 'ratio', type: 'quantitative', title: `TTFT ÷ ${reference}'s (log scale)`, scale: { type: 'log', nice: false } },
      ...scales,
    },
  } as TopLevelSpec;
}

type Renderer = { vega: typeof import('vega'); vegaLite: typeof import('vega-lite') };

/** What the charts need, and how to get it. */
export const CHARTS_HINT = 'the charts need the optional packages vega and vega-lite: `npm install vega vega-lite`';

let renderer: Promise<Renderer | string> | undefined;

/** vega and vega-lite, imported once; a string saying what is missing when they cannot be. */
function loadRenderer(): Promise<Renderer | string> {
  renderer ??= Promise.all([import('vega'), import('vega-lite')]).then(
    ([vega, vegaLite]) => ({ vega, vegaLite }),
    (error: unknown) => `${CHARTS_HINT} (${error instanceof Error ? error.message : String(error)})`,
  );
  return renderer;
}

/** Why charts cannot be drawn here (vega or vega-lite is not installed), or null when they can. Never throws. */
export async function chartsUnavailable(): Promise<string | null> {
  const loaded = await loadRenderer();
  return typeof loaded === 'string' ? loaded : null;
}

let chartCount = 0;

/**
 * Renders a vega-lite spec to an SVG element for inlining in HTML: without
 * the namespace attributes an inline SVG does not need, and with any ids
 * made unique so several charts can share one page.
 *
 * @throws Error saying which packages to install when vega or vega-lite is absent
 *   (check {@link chartsUnavailable} first to leave the charts out instead).
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const loaded = await loadRenderer();
  if (typeof loaded === 'string') throw new Error(`cachesage: ${loaded}`);
  const { vega, vegaLite } = loaded;
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    let svg = await view.toSVG();
    svg = svg.replace(/ xmlns(:xlink)?="[^"]*"/g, '');
    const prefix = `chart${++chartCount}-`;
    svg = svg
      .replace(/ id="([^"]+)"/g, ` id="${prefix}$1"`)
      .replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`)
      .replace(/href="#([^"]+)"/g, `href="#${prefix}$1"`);
    return svg;
  } finally {
    view.finalize();
  }
}
