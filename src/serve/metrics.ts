/**
 * The sidecar's Prometheus metrics, in a registry of its own (so servers in
 * one process do not share counters). The per-admission counts are plain
 * numbers per workload, copied into the exported counters at scrape time:
 * prom-client hashes and validates labels on every inc(), which a batch of
 * thousands of admissions would pay thousands of times. Gauges that mirror
 * the runtime are read at scrape time too.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Runtime } from '../runtime/runtime.js';

/** Distinct workload label values kept; later workloads are counted under OTHER_WORKLOAD. */
export const MAX_WORKLOAD_LABELS = 1000;
export const UNTAGGED_WORKLOAD = '(untagged)';
export const OTHER_WORKLOAD = '(other)';

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5];

/** Per-workload totals, kept as plain numbers and copied into the counters at scrape time. */
interface WorkloadTotals {
  promptTokens: number;
  deviceHitTokens: number;
  hostHitTokens: number;
  admitted: number;
  refused: number;
}

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly #actions: Counter<'type'>;
  readonly #latency: Histogram<'route' | 'method' | 'status'>;
  readonly #rateLimited: Counter;
  readonly #authFailures: Counter;
  readonly #batchItems: Counter;
  readonly #workloads = new Map<string, WorkloadTotals>();
  readonly #routes = new Map<string, Histogram.Internal<'route' | 'method' | 'status'>>();

  constructor(runtime: Runtime, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'cachesage_' });
    const workloads = this.#workloads;
    new Counter({
      name: 'cachesage_prompt_tokens_total',
      help: 'Prompt tokens of admitted requests, by workload',
      labelNames: ['workload'],
      registers,
      collect() {
        this.reset();
        for (const [workload, t] of workloads) this.inc({ workload }, t.promptTokens);
      },
    });
    new Counter({
      name: 'cachesage_hit_tokens_total',
      help: 'Prompt tokens of admitted requests already cached: on the device tier, or loaded from the host tier',
      labelNames: ['workload', 'tier'],
      registers,
      collect() {
        this.reset();
        for (const [workload, t] of workloads) {
          this.inc({ workload, tier: 'device' }, t.deviceHitTokens);
          this.inc({ workload, tier: 'host' }, t.hostHitTokens);
        }
      },
    });
    new Counter({
      name: 'cachesage_admissions_total',
      help: 'Admit calls by workload and result (admitted, refused: no device room)',
      labelNames: ['workload', 'result'],
      registers,
      collect() {
        this.reset();
        for (const [workload, t] of workloads) {
          this.inc({ workload, result: 'admitted' }, t.admitted);
          this.inc({ workload, result: 'refused' }, t.refused);
        }
      },
    });
    new Gauge({
      name: 'cachesage_token_hit_rate',
      help: 'Device-tier token hit rate by workload: cached device tokens / prompt tokens requested',
      labelNames: ['workload'],
      registers,
      collect() {
        this.reset();
        for (const [workload, t] of workloads) if (t.promptTokens > 0) this.set({ workload }, t.deviceHitTokens / t.promptTokens);
      },
    });
    this.#actions = new Counter({ name: 'cachesage_actions_total', help: 'Actions act() executed, by type', labelNames: ['type'], registers });
    new Gauge({
      name: 'cachesage_pending_actions',
      help: 'Pins act() holds on device chains, each awaiting its unpin',
      registers,
      collect() {
        this.set(Number(runtime.info()['holds'] ?? 0));
      },
    });
    new Gauge({
      name: 'cachesage_blocks',
      help: 'Blocks by tier and state (used, free; pinned: device blocks held by running requests or pins)',
      labelNames: ['tier', 'state'],
      registers,
      collect() {
        const m = runtime.manager;
        const device = m.usedBlocks('device');
        const host = m.usedBlocks('host');
        this.set({ tier: 'device', state: 'used' }, device);
        this.set({ tier: 'device', state: 'free' }, m.deviceBlocks - device);
        this.set({ tier: 'device', state: 'pinned' }, m.pinnedDeviceBlocks());
        this.set({ tier: 'host', state: 'used' }, host);
        this.set({ tier: 'host', state: 'free' }, m.hostBlocks - host);
      },
    });
    new Gauge({
      name: 'cachesage_live_requests',
      help: 'Requests admitted and not yet released',
      registers,
      collect() {
        this.set(runtime.manager.numRequests);
      },
    });
    this.#latency = new Histogram({
      name: 'cachesage_http_request_duration_seconds',
      help: 'Time from request received to response sent, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#rateLimited = new Counter({ name: 'cachesage_rate_limited_total', help: 'Requests refused with 429 by the per-token rate limit', registers });
    this.#authFailures = new Counter({ name: 'cachesage_auth_failures_total', help: 'Requests refused with 401: no or unknown bearer token', registers });
    this.#batchItems = new Counter({ name: 'cachesage_batch_items_total', help: 'Items received on the batched endpoint', registers });
  }

  #totals(workload: string | undefined): WorkloadTotals {
    let label = workload ?? UNTAGGED_WORKLOAD;
    let t = this.#workloads.get(label);
    if (t !== undefined) return t;
    if (this.#workloads.size >= MAX_WORKLOAD_LABELS) {
      label = OTHER_WORKLOAD;
      t = this.#workloads.get(label);
      if (t !== undefined) return t;
    }
    t = { promptTokens: 0, deviceHitTokens: 0, hostHitTokens: 0, admitted: 0, refused: 0 };
    this.#workloads.set(label, t);
    return t;
  }

  admitted(workload: string | undefined, promptTokens: number, deviceTokens: number, hostTokens: number): void {
    const t = this.#totals(workload);
    t.admitted++;
    t.promptTokens += promptTokens;
    t.deviceHitTokens += deviceTokens;
    t.hostHitTokens += hostTokens;
  }

  refused(workload: string | undefined): void {
    this.#totals(workload).refused++;
  }

  actions(result: { demoted: number; evicted: number; prefetched: number; pinned: number; unpinned: number }): void {
    if (result.demoted > 0) this.#actions.inc({ type: 'demote' }, result.demoted);
    if (result.evicted > 0) this.#actions.inc({ type: 'evict' }, result.evicted);
    if (result.prefetched > 0) this.#actions.inc({ type: 'prefetch' }, result.prefetched);
    if (result.pinned > 0) this.#actions.inc({ type: 'pin' }, result.pinned);
    if (result.unpinned > 0) this.#actions.inc({ type: 'unpin' }, result.unpinned);
  }

  request(route: string, method: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let child = this.#routes.get(key);
    if (child === undefined) {
      child = this.#latency.labels({ route, method, status: String(status) });
      this.#routes.set(key, child);
    }
    child.observe(seconds);
  }

  rateLimited(): void {
    this.#rateLimited.inc();
  }

  authFailed(): void {
    this.#authFailures.inc();
  }

  batchItems(n: number): void {
    this.#batchItems.inc(n);
  }
}
