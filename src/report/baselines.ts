/**
 * The two baselines every replay is read against, and the targets CacheSage
 * is held to.
 *
 * - `lru`: LRU prefix caching with the same tiers as the policy under test
 *   (a host tier included), so a difference is the eviction policy's alone.
 * - `vanilla`: the serving stack as shipped (vLLM and SGLang's defaults):
 *   LRU on the device tier only, no host tier. It is LRU replayed with host
 *   capacity 0 in the same replay (same arrivals), so the relative columns
 *   (mean TTFT and throughput against vanilla) compare a server with
 *   CacheSage with the one it replaces.
 *
 * The flagship is also replayed without its host tier (`cachesage-nohost`),
 * which tells what the host tier adds from what the eviction order adds,
 * and so is MIN (`belady-nohost`), the bound that run's gap closed is
 * measured against (with vanilla as its LRU): with a host tier, MIN
 * demotes and loads back, which a device-only policy cannot.
 */
import { BASELINE_POLICY, OPTIMUM_POLICY, POLICIES, POLICY_NAMES, isBound } from '../policies/registry.js';
import type { Capacity, DeviceOnlyRun, PolicyResult, ReplayReport } from '../sim/replay.js';

/** The serving stack as shipped: LRU, device tier only. Not a registered policy: a result name. */
export const VANILLA = 'vanilla';
/** The policy the targets are about (the registry's flagship). */
export const FLAGSHIP_POLICY = 'cachesage';
/** Appended to a policy's name for its run without a host tier (LRU's is {@link VANILLA}). */
export const NO_HOST_SUFFIX = '-nohost';

/** The capacity bound: the registered policy replayed with room for every block. */
const UNBOUNDED_POLICY = POLICY_NAMES.find((name) => POLICIES[name]!.bound === 'capacity');

/** The thresholds of the targets (fractions; `pp` ones are points of token hit rate over 100). */
export const TARGETS = {
  /** Gap closed at least this much... */
  gapClosed: 0.85,
  /** ...where MIN is at least this far above LRU. */
  gapClosedHeadroom: 0.02,
  /** p99 TTFT at most this multiple of LRU's. */
  p99TtftVsLru: 1.05,
  /** Mean TTFT at most this multiple of vanilla's... */
  meanTtftVsVanilla: 0.75,
  /** ...and throughput at least this multiple of vanilla's... */
  throughputVsVanilla: 1.1,
  /** ...where the infinite cache is at least this far above vanilla. */
  vanillaHeadroom: 0.1,
} as const;

/** One target of one row: met, missed, or not applicable (null). */
export type Verdict = 'pass' | 'miss' | null;

/** The targets of one row, in the order the tables print them. */
export interface TargetVerdicts {
  /** Gap closed >= 0.85, where MIN is >= 2 pp above LRU. */
  gapClosed: Verdict;
  /** Token hit rate never below LRU's (same tiers). */
  hitRate: Verdict;
  /** p99 TTFT <= 1.05x LRU's (same tiers). */
  p99Ttft: Verdict;
  /** Mean TTFT <= 0.75x vanilla's, where infinite is >= 10 pp above vanilla. */
  meanTtft: Verdict;
  /** Throughput >= 1.10x vanilla's, where infinite is >= 10 pp above vanilla. */
  throughput: Verdict;
}

/** The order and short labels of the targets in tables. */
export const TARGET_KEYS: readonly (keyof TargetVerdicts)[] = ['gapClosed', 'hitRate', 'p99Ttft', 'meanTtft', 'throughput'];

/** One result read against the baselines. */
export interface ResultComparison {
  policy: string;
  /** Whether it ran with the replay's host tier (false: device tier only). */
  hostTier: boolean;
  /** Mean TTFT over vanilla's (below 1: faster). */
  meanTtftVsVanilla: number | null;
  /** Throughput over vanilla's (above 1: more). */
  throughputVsVanilla: number | null;
  /** p99 TTFT over the LRU of the same tiers (lru, or vanilla for a device-only run). */
  p99TtftVsLru: number | null;
  /** Gap closed as the report shows it: null where MIN has under 2 pp of headroom. */
  gapClosedShown: number | null;
  /** The targets, for online policies other than the baselines; null for those. */
  targets: TargetVerdicts | null;
  /**
   * The targets this row misses that MIN with the same tiers (the offline
   * bound on the eviction order) misses too, in TARGET_KEYS order: no
   * eviction order meets them in this replay, so the miss is the
   * workload's and the serving model's, not the policy's. Empty where MIN
   * did not run.
   */
  minMisses: (keyof TargetVerdicts)[];
}

/** A replay's results read against the baselines: `comparison` in the JSON. */
export interface Comparison {
  /** The baselines' result names. */
  baselines: { lru: string; vanilla: string };
  /** MIN's token hit rate minus LRU's (null without both). */
  minHeadroom: number | null;
  /**
   * For the runs without a host tier: the device-only MIN's token hit rate
   * minus vanilla's (null without both). Equal to minHeadroom's inputs when
   * the replay has no host tier.
   */
  deviceOnlyMinHeadroom: number | null;
  /** Whether gap closed is shown for the device-only runs, and if not, why. */
  deviceOnlyGapClosedWhyBlank: string | null;
  /** The infinite cache's token hit rate minus vanilla's (null without both). */
  infiniteHeadroom: number | null;
  /** Whether gap closed is shown (MIN at least 2 pp above LRU), and if not, why. */
  gapClosedWhyBlank: string | null;
  /** Whether the vanilla targets apply (infinite at least 10 pp above vanilla), and if not, why. */
  vanillaTargetsWhyNot: string | null;
  rows: ResultComparison[];
}

/** A replay report with its comparison: what `--json` prints and results.json holds. */
export type ComparedReport = ReplayReport & { comparison: Comparison };

/**
 * The device-only runs a replay adds: vanilla (LRU without a host tier)
 * always, and the flagship without its host tier when it is replayed and a
 * host tier exists (otherwise it would repeat its own run).
 */
export function deviceOnlyRuns(policies: readonly string[], hostCapacity: Capacity): DeviceOnlyRun[] {
  const runs: DeviceOnlyRun[] = [{ policy: BASELINE_POLICY, name: VANILLA }];
  const noHost = 'blocks' in hostCapacity && hostCapacity.blocks === 0;
  if (!noHost && policies.includes(FLAGSHIP_POLICY)) {
    runs.push({ policy: FLAGSHIP_POLICY, name: FLAGSHIP_POLICY + NO_HOST_SUFFIX });
    // The bound of the device-only run: MIN without the host tier it would
    // otherwise demote to and load back from.
    if (policies.includes(OPTIMUM_POLICY)) runs.push({ policy: OPTIMUM_POLICY, name: OPTIMUM_POLICY + NO_HOST_SUFFIX });
  }
  return runs;
}

/** The registered policy a result ran (`vanilla` ran lru, `cachesage-nohost` cachesage). */
export function basePolicy(name: string): string {
  if (name === VANILLA) return BASELINE_POLICY;
  return name.endsWith(NO_HOST_SUFFIX) ? name.slice(0, -NO_HOST_SUFFIX.length) : name;
}

/** Whether a result is a bound (MIN, infinite) rather than a policy a server could run. */
export function isBoundResult(name: string): boolean {
  return isBound(basePolicy(name));
}

/**
 * Every result of a report in reading order: vanilla first (the reference
 * of the relative columns), then the policies in the order asked, each
 * device-only run right after its policy.
 */
export function allResults(report: ReplayReport): PolicyResult[] {
  const extra = report.deviceOnlyResults ?? [];
  const rows: PolicyResult[] = extra.filter((r) => r.policy === VANILLA);
  const placed = new Set<PolicyResult>(rows);
  for (const r of report.results) {
    rows.push(r);
    for (const e of extra) {
      if (!placed.has(e) && basePolicy(e.policy) === r.policy) {
        rows.push(e);
        placed.add(e);
      }
    }
  }
  for (const e of extra) if (!placed.has(e)) rows.push(e);
  return rows;
}

function ratio(value: number, reference: number | undefined): number | null {
  return reference === undefined || !(reference > 0) ? null : Math.round((value / reference) * 1e4) / 1e4;
}

function verdict(applies: boolean, met: boolean): Verdict {
  return applies ? (met ? 'pass' : 'miss') : null;
}

/** Points of hit rate, for the "why blank" notes. */
function pp(fraction: number): string {
  return `${(fraction * 100).toFixed(1)} pp`;
}

/** Reads a report's results against the baselines and the targets. */
export function compareReport(report: ReplayReport): Comparison {
  const find = (name: string | undefined) => (name === undefined ? undefined : allResults(report).find((r) => r.policy === name));
  const lru = find(BASELINE_POLICY);
  const vanilla = find(VANILLA);
  const min = find(OPTIMUM_POLICY);
  const infinite = find(UNBOUNDED_POLICY);
  const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
  // Without a host tier every run is device-only: the main MIN is the bound.
  const minAlone = report.hostCapacityBlocks > 0 ? find(OPTIMUM_POLICY + NO_HOST_SUFFIX) : min;
  const minHeadroom = lru && min ? round4(min.tokenHitRate - lru.tokenHitRate) : null;
  const deviceOnlyMinHeadroom = vanilla && minAlone ? round4(minAlone.tokenHitRate - vanilla.tokenHitRate) : null;
  const infiniteHeadroom = vanilla && infinite ? round4(infinite.tokenHitRate - vanilla.tokenHitRate) : null;
  const headroomEnough = (headroom: number | null) => headroom !== null && headroom >= TARGETS.gapClosedHeadroom - 1e-9;
  const gapApplies = headroomEnough(minHeadroom);
  const deviceOnlyGapApplies = headroomEnough(deviceOnlyMinHeadroom);
  const vanillaApplies = infiniteHeadroom !== null && infiniteHeadroom >= TARGETS.vanillaHeadroom - 1e-9;
  const whyBlank = (headroom: number | null, low: string, high: string, missing: string) =>
    headroomEnough(headroom)
      ? null
      : headroom === null
        ? `no ${missing} result to measure the gap against`
        : `${high} is only ${pp(headroom)} above ${low} (under ${pp(TARGETS.gapClosedHeadroom)}): no gap worth closing`;
  const gapClosedWhyBlank = whyBlank(minHeadroom, 'LRU', 'MIN', lru ? `MIN (${OPTIMUM_POLICY})` : 'LRU');
  const deviceOnlyGapClosedWhyBlank = whyBlank(
    deviceOnlyMinHeadroom,
    VANILLA,
    'MIN without a host tier',
    vanilla ? `MIN without a host tier (${OPTIMUM_POLICY}${NO_HOST_SUFFIX})` : VANILLA,
  );
  const vanillaTargetsWhyNot = vanillaApplies
    ? null
    : infiniteHeadroom === null
      ? `no ${vanilla ? 'infinite' : 'vanilla'} result to measure the headroom against`
      : `an infinite cache is only ${pp(infiniteHeadroom)} above vanilla (under ${pp(TARGETS.vanillaHeadroom)}): caching cannot move TTFT much`;

  const targetsOf = (r: PolicyResult, hostTier: boolean): { verdicts: TargetVerdicts; shown: number | null; meanVs: number | null; throughputVs: number | null; p99Vs: number | null } => {
    // The LRU of the same tiers: a device-only run is held to vanilla.
    const sameTiers = hostTier ? lru : vanilla;
    const shown = (hostTier ? gapApplies : deviceOnlyGapApplies) ? r.gapClosed : null;
    const meanVs = ratio(r.meanTtftMs, vanilla?.meanTtftMs);
    const throughputVs = ratio(r.throughputTokPerS, vanilla?.throughputTokPerS);
    const p99Vs = ratio(r.p99TtftMs, sameTiers?.p99TtftMs);
    return {
      shown,
      meanVs,
      throughputVs,
      p99Vs,
      verdicts: {
        gapClosed: verdict(shown !== null, (shown ?? 0) >= TARGETS.gapClosed),
        hitRate: verdict(sameTiers !== undefined, r.tokenHitRate >= (sameTiers?.tokenHitRate ?? 0)),
        p99Ttft: verdict(p99Vs !== null, (p99Vs ?? 0) <= TARGETS.p99TtftVsLru),
        meanTtft: verdict(vanillaApplies && meanVs !== null, (meanVs ?? 0) <= TARGETS.meanTtftVsVanilla),
        throughput: verdict(vanillaApplies && throughputVs !== null, (throughputVs ?? 0) >= TARGETS.throughputVsVanilla),
      },
    };
  };

  const rows = allResults(report).map((r): ResultComparison => {
    // The capacity bound always runs without a host tier (it needs none).
    const hostTier = report.hostCapacityBlocks > 0 && !(report.deviceOnlyResults ?? []).includes(r) && basePolicy(r.policy) !== UNBOUNDED_POLICY;
    const contender = !isBoundResult(r.policy) && basePolicy(r.policy) !== BASELINE_POLICY;
    const own = targetsOf(r, hostTier);
    // The device-only runs are held to the device-only MIN.
    const bound = hostTier ? min : minAlone;
    // MIN held to the same targets, the same way (its gap closed is 1 by definition).
    const boundVerdicts = contender && bound !== undefined ? targetsOf(bound, hostTier).verdicts : null;
    return {
      policy: r.policy,
      hostTier,
      meanTtftVsVanilla: own.meanVs,
      throughputVsVanilla: own.throughputVs,
      p99TtftVsLru: own.p99Vs,
      gapClosedShown: own.shown,
      targets: contender ? own.verdicts : null,
      minMisses: boundVerdicts === null ? [] : TARGET_KEYS.filter((key) => key !== 'gapClosed' && own.verdicts[key] === 'miss' && boundVerdicts[key] === 'miss'),
    };
  });
  return {
    baselines: { lru: BASELINE_POLICY, vanilla: VANILLA },
    minHeadroom,
    deviceOnlyMinHeadroom,
    infiniteHeadroom,
    gapClosedWhyBlank,
    deviceOnlyGapClosedWhyBlank,
    vanillaTargetsWhyNot,
    rows,
  };
}

/** The report with its comparison attached. */
export function withComparison(report: ReplayReport): ComparedReport {
  return { ...report, comparison: compareReport(report) };
}

/**
 * A row's targets as five characters: `+` met, `x` missed, `m` missed where
 * MIN with the same tiers misses it too (`minMisses`), `.` not applicable;
 * empty for baselines and bounds.
 */
export function targetMarks(targets: TargetVerdicts | null, minMisses: readonly (keyof TargetVerdicts)[] = []): string {
  if (targets === null) return '';
  return TARGET_KEYS.map((key) => (targets[key] === 'pass' ? '+' : targets[key] === 'miss' ? (minMisses.includes(key) ? 'm' : 'x') : '.')).join('');
}

/** The legend of {@link targetMarks}, one line. */
export const TARGETS_LEGEND =
  `targets, in order: gap closed >= ${TARGETS.gapClosed} where MIN >= LRU + ${TARGETS.gapClosedHeadroom * 100} pp; ` +
  `token hit >= LRU's; p99 TTFT <= ${TARGETS.p99TtftVsLru}x LRU's; ` +
  `mean TTFT <= ${TARGETS.meanTtftVsVanilla}x vanilla's and tok/s >= ${TARGETS.throughputVsVanilla.toFixed(2)}x vanilla's where infinite >= vanilla + ${TARGETS.vanillaHeadroom * 100} pp ` +
  `(LRU: the one with the same tiers). + met, x missed, m missed and MIN with the same tiers misses it too (no eviction order meets it here), . not applicable`;
