/**
 * What every figure of the report means, as the page states it (the
 * definitions are replay.md's contract; the targets are baselines.ts's).
 */
import { TARGETS, VANILLA, FLAGSHIP_POLICY, NO_HOST_SUFFIX } from './baselines.js';

const pp = (fraction: number) => `${Math.round(fraction * 1000) / 10} pp`;

/** [term, definition] pairs, in reading order; definitions are plain text. */
export const DEFINITIONS: readonly (readonly [string, string])[] = [
  [
    'peak live footprint',
    'The most distinct KV blocks (prompt and output) referenced at one moment by the sessions in flight, under the replay\'s arrivals. Device capacities are fractions of it; "blocks" is the capacity in blocks (raised to the largest call when smaller).',
  ],
  ['lru', 'LRU prefix caching with the same tiers as CacheSage (the host tier included): what differs from CacheSage is the eviction and prefetch policy alone.'],
  [
    VANILLA,
    'The serving stack as shipped (vLLM, SGLang): LRU prefix caching on the device tier only, no host tier. Replayed in the same sweep point, on the same arrivals. The relative columns compare with it.',
  ],
  [`${FLAGSHIP_POLICY}${NO_HOST_SUFFIX}`, `CacheSage with no host tier: it tells what the eviction order gains on its own, and what the host tier adds on top.`],
  ['belady (MIN)', 'Tree-constrained Belady: evicts the block whose next use is furthest in the future. It knows the future, so it is a bound, not a policy a server could run. With a host tier its victims go to the host, and a later use loads them back.'],
  [`belady${NO_HOST_SUFFIX}`, `MIN with no host tier, on the same arrivals: the bound of ${FLAGSHIP_POLICY}${NO_HOST_SUFFIX}'s gap closed.`],
  ['infinite', 'A device tier with room for every block: the most any cache can hit. A bound.'],
  ['token hit', 'Prompt tokens whose KV was on the device tier when the request\'s prefill started, over all prompt tokens.'],
  ['host hit', 'Prompt tokens whose KV was on the host tier instead: they cost a host-to-device transfer, not a recompute.'],
  [
    'gap closed',
    `(token hit of the policy − token hit of LRU) / (token hit of MIN − token hit of LRU). Shown only where MIN is at least ${pp(TARGETS.gapClosedHeadroom)} above LRU: below that, LRU is already near the optimum and the ratio divides noise by noise, so the cell is blank and the note under the table gives the headroom. A run without a host tier is measured the same way between vanilla and belady${NO_HOST_SUFFIX}. MIN's eviction order knows nothing of prefetch, so prefetching from the host can take a policy past 1.`,
  ],
  ['mean / p50 / p99 TTFT', 'Time to first token of every call, in milliseconds: from its arrival to the end of the engine iteration that completes its prefill, queueing included, from the cost model.'],
  ['tok/s', 'Throughput: output tokens generated over the whole run, per second of simulated time.'],
  [
    'TTFT vs vanilla, tok/s vs vanilla',
    'The row\'s mean TTFT and throughput as a change from vanilla\'s in the same sweep point: −25% TTFT is a quarter less time to first token; +10% tok/s is a tenth more throughput.',
  ],
  ['prefetch precision', 'Blocks prefetched from the host that were used before being evicted, over all blocks prefetched. Blank for a policy that prefetched nothing.'],
  ['moved', 'Bytes copied between host and device (demotions and loads), in binary units (KiB, MiB, GiB).'],
  ['µs/call', 'Wall time the runtime and policy spent per LLM call, measured (not modelled); parallel replays share the CPU, so it is noisy above one job.'],
  [
    'targets',
    `What CacheSage is held to, per sweep point (✓ met, ✗ missed, – not applicable): ` +
      `gap closed ≥ ${TARGETS.gapClosed} where MIN is ≥ ${pp(TARGETS.gapClosedHeadroom)} above LRU; ` +
      `token hit never below LRU's; p99 TTFT ≤ ${TARGETS.p99TtftVsLru}× LRU's; ` +
      `mean TTFT ≤ ${TARGETS.meanTtftVsVanilla}× vanilla's and throughput ≥ ${TARGETS.throughputVsVanilla.toFixed(2)}× vanilla's wherever infinite is ≥ ${pp(TARGETS.vanillaHeadroom)} above vanilla ` +
      `(with less headroom no cache can move TTFT that much). "LRU" is the one with the same tiers: lru for a row with a host tier, vanilla for a device-only row. ` +
      `"✗ MIN too" (m in the terminal tables) marks a miss that MIN with the same tiers, held to the same target, misses as well: no eviction order meets that target in this replay, so the workload and the serving model set it, not the policy. Baselines and bounds are not scored.`,
  ],
];
