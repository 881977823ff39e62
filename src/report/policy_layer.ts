/**
 * The policy layer's part of the bench report: one small table per policy,
 * each with a line saying what it measures. The tables are built once, as
 * text cells, and drawn both as the CLI's plain-text tables and as the HTML
 * page's sections, so the two always show the same figures.
 */
import type { LayerNumbers, LayerPair, PolicyLayerResults } from '../sim/policy_layer.js';
import { escapeHtml } from './tables.js';

/** One policy's table: its heading, what it measures, and its cells. */
export interface LayerTable {
  /** The key in results.json's `policyLayer`; the page's section is `policy-layer-KEY` (workload sections' ids start `w-`). */
  key: keyof Pick<PolicyLayerResults, 'batchShaping' | 'speculativePrefill' | 'fairness' | 'routing' | 'toolMemo'>;
  title: string;
  definition: string;
  columns: { title: string; align?: 'left' | 'right' }[];
  rows: string[][];
}

const percent = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);
const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '-' : v.toFixed(digits));
const count = (v: number | null | undefined) => (v === null || v === undefined ? '-' : String(v));

const NUMBER_COLUMNS = [{ title: 'token hit' }, { title: 'mean TTFT ms' }, { title: 'p99 TTFT ms' }, { title: 'tok/s' }];
const numberCells = (n: LayerNumbers) => [percent(n.tokenHitRate), fixed(n.meanTtftMs, 1), fixed(n.p99TtftMs, 1), fixed(n.throughputTokPerS, 0)];

/** Two rows per workload, the baseline's first, with `extra` cells after the common numbers. */
function pairRows<E>(pairs: readonly LayerPair<E>[], extra: (n: LayerNumbers & E) => string[]): string[][] {
  return pairs.flatMap((p) => [p.baseline, p.measured].map((n) => [p.workload, n.policy, ...numberCells(n), ...extra(n)]));
}

/** The five tables of a policy-layer measurement, in the order the README lists the policies. */
export function policyLayerTables(layer: PolicyLayerResults): LayerTable[] {
  const setting = `device capacity ${layer.capacity * 100}% of each workload's peak live footprint, no host tier, same arrivals for both runs`;
  const pairColumns = [{ title: 'workload', align: 'left' as const }, { title: 'policy', align: 'left' as const }, ...NUMBER_COLUMNS];
  const fairnessNames = layer.fairness?.workloads.map((w) => w.name) ?? [];
  return [
    {
      key: 'batchShaping',
      title: 'Batch shaping',
      definition: `Admission order: ${layer.baseline} admits waiting requests first come first served; ${layer.baseline}+batch-shaping admits the longest cached prefix first and groups sharers of an uncached prefix (${setting}).`,
      columns: pairColumns,
      rows: pairRows(layer.batchShaping, () => []),
    },
    {
      key: 'speculativePrefill',
      title: 'Speculative prefill',
      definition: `Prefilling the predicted next agent's known prefix while a tool runs: tokens computed ahead (prefilled) or loaded ahead, the part a later call found (used) and the part evicted or never asked for (wasted) (${setting}).`,
      columns: [...pairColumns, { title: 'prefilled' }, { title: 'loaded' }, { title: 'used' }, { title: 'wasted' }],
      rows: pairRows(layer.speculativePrefill, (n) => {
        const s = n.speculativePrefill;
        return [count(s?.prefilledTokens), count(s?.loadedTokens), count(s?.usedTokens), count(s?.wastedTokens)];
      }),
    },
    {
      key: 'fairness',
      title: 'Fairness',
      definition: layer.fairness
        ? `Noisy neighbour: ${fairnessNames[0]} (heavy, ${layer.fairness.workloads[0]!.calls} calls) beside ${layer.fairness.workloads.slice(1).map((w) => `${w.name} (${w.calls} calls)`).join(' and ')} on one engine of ${layer.fairness.deviceBlocks} device blocks, no host tier: Jain's index over the workloads' token hit rates (1: all equal) and the small workloads' p99 TTFT.`
        : 'Noisy neighbour: needs three workloads; not measured.',
      columns: [
        { title: 'policy', align: 'left' },
        { title: "Jain's index" },
        { title: 'small p99 TTFT ms' },
        { title: 'token hit' },
        ...fairnessNames.map((name) => ({ title: `hit ${name}` })),
      ],
      rows: (layer.fairness?.runs ?? []).map((r) => [
        r.policy,
        fixed(r.jainHitRate, 3),
        fixed(r.smallP99TtftMs, 1),
        percent(r.tokenHitRate),
        ...r.perWorkload.map((w) => percent(w.tokenHitRate)),
      ]),
    },
    {
      key: 'routing',
      title: 'Routing',
      definition: `${layer.routing[0]?.replicas ?? 0} replicas running ${layer.baseline}, each with device capacity ${layer.capacity * 100}% of the peak live footprint and no host tier, behind a router: cache (longest device prefix match minus a load penalty), round-robin, sticky (a session stays on one replica).`,
      columns: [{ title: 'workload', align: 'left' }, { title: 'router', align: 'left' }, ...NUMBER_COLUMNS, { title: 'calls per replica', align: 'left' }],
      rows: layer.routing.flatMap((m) => m.routers.map((r) => [m.workload, r.router, ...numberCells(r), r.callsPerReplica.join('/')])),
    },
    {
      key: 'toolMemo',
      title: 'Tool memoization',
      definition: `Tool results answered from the memo (same tool and arguments, within the declared TTL, no declared write since) on the workloads that declare their tools: calls answered, answers that differ from what the tool returned (stale), and tool seconds saved (${setting}).`,
      columns: [...pairColumns, { title: 'tool calls' }, { title: 'answered' }, { title: 'stale' }, { title: 'tool s saved' }],
      rows: pairRows(layer.toolMemo, (n) => {
        const t = n.toolCalls;
        return [count(t?.calls), count(t?.answered), count(t?.stale), fixed(t?.secondsSaved, 1)];
      }),
    },
  ];
}

/** The page's "Policy layer" part: a heading, what the runs share, and one section per policy. */
export function policyLayerHtml(layer: PolicyLayerResults): string {
  const sections = policyLayerTables(layer).map((t) => {
    const head = t.columns.map((c) => `<th${c.align === 'left' ? ' class="name"' : ''}>${escapeHtml(c.title)}</th>`).join('');
    const body = t.rows
      .map((row) => `<tr>${row.map((cell, i) => `<td${t.columns[i]?.align === 'left' ? ' class="name"' : ''}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
      .join('');
    return `<section id="policy-layer-${t.key}">
<h3>${escapeHtml(t.title)}</h3>
<p class="note">${escapeHtml(t.definition)}</p>
<div class="wide"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>
</section>`;
  });
  return `<h2 id="policy-layer">Policy layer</h2>
<p class="meta">The policies a default replay leaves out, each against ${escapeHtml(layer.baseline)} on the bundled workloads at a small fixed size.</p>
${sections.join('\n')}`;
}
