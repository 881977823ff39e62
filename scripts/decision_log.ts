/**
 * The decision log: proof that a change preserves behaviour. Replays every
 * bundled workload and every trace of `--traces DIR` (default: the real
 * traces beside the checkout, ../shared/traces, when present; cut like
 * `cachesage bench --quick`) under every registered replay policy, at two device capacities,
 * with and without a host tier, and records every block the manager
 * stored, evicted, demoted or loaded, in order, with the time of the call
 * that caused it; then the cross-backend replay's configuration (CacheSage
 * refreshing every 4 hand-offs, reclaim on) on the CPU backend.
 *
 * One line per run: the run's key, its hit tokens, a digest of its TTFT
 * samples and a digest of its decisions. Two logs that are equal byte for
 * byte made the same decisions.
 *
 *   npm run --silent decision-log > before.txt
 *   ... change ...
 *   npm run --silent decision-log > after.txt && cmp before.txt after.txt
 *
 * `--full DIR` also writes each run's decisions, one per line, to DIR.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { EventKind } from '../src/blocks/types.js';
import { loadWorkloads, traceFiles } from '../src/cli/bench_sources.js';
import type { Policy, PolicyContext, RuntimeEvent } from '../src/policies/types.js';
import { replay, REPLAY_POLICIES } from '../src/sim/replay.js';
import { LLAMA3_8B_H100 } from '../src/sim/cost_model.js';
import { simulate } from '../src/sim/simulator.js';
import { prepareWorkload } from '../src/sim/workload.js';

const KIND_NAMES: Record<number, string> = {
  [EventKind.Stored]: 'store',
  [EventKind.Removed]: 'evict',
  [EventKind.Demoted]: 'demote',
  [EventKind.Loaded]: 'load',
};

/** Records every block event; each attach (one per replayed policy) opens a new log. */
function recorder(): Policy & { logs: string[][] } {
  const logs: string[][] = [];
  return {
    name: 'decision-recorder',
    logs,
    attach(_context: PolicyContext) {
      logs.push([]);
    },
    observe(event: RuntimeEvent) {
      if (event.type !== 'blocks') return;
      const log = logs[logs.length - 1]!;
      const { kind, hash, tier } = event.events;
      for (let i = 0; i < kind.length; i++) {
        log.push(`${KIND_NAMES[kind[i]!]} ${hash[i]!.toString(16)} ${tier[i]} @${event.time.toFixed(6)}`);
      }
    },
  };
}

const digest = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

const fullIndex = process.argv.indexOf('--full');
const fullDir = fullIndex >= 0 ? process.argv[fullIndex + 1] : undefined;
if (fullDir !== undefined) mkdirSync(fullDir, { recursive: true });

function emit(key: string, hits: { device: number; host: number }, ttft: ArrayLike<number>, log: readonly string[]): void {
  const decisions = log.join('\n');
  process.stdout.write(
    `${key} deviceHit=${hits.device} hostHit=${hits.host} ttft=${digest(Array.from(ttft).join(','))} ` +
      `decisions=${log.length} digest=${digest(decisions)}\n`,
  );
  if (fullDir !== undefined) writeFileSync(join(fullDir, `${key.replace(/[^\w.=-]+/g, '_')}.log`), `${decisions}\n`);
}

const tracesIndex = process.argv.indexOf('--traces');
const besideCheckout = fileURLToPath(new URL('../../shared/traces', import.meta.url));
const tracesDir = tracesIndex >= 0 ? process.argv[tracesIndex + 1] : existsSync(besideCheckout) ? besideCheckout : undefined;
const workloads = await loadWorkloads({
  seed: 1,
  bundledSessions: 24,
  traceFiles: tracesDir === undefined ? [] : traceFiles([tracesDir]),
  maxCalls: 1000,
});

for (const { info, calls } of workloads) {
  for (const capacity of [0.25, 0.5]) {
    for (const host of [1, 0]) {
      const log = recorder();
      const report = replay(info.name, calls, {
        policies: REPLAY_POLICIES,
        capacity: { fraction: capacity },
        hostCapacity: host === 0 ? { blocks: 0 } : { fraction: host },
        observers: [log],
      });
      report.results.forEach((r, i) => {
        emit(
          `${info.name} capacity=${capacity} host=${host} ${r.policy}`,
          { device: r.tokenHitRate, host: r.hostHitRate },
          r.ttftMs ?? [],
          log.logs[i] ?? [],
        );
      });
    }
  }
}

// The cross-backend replay's configuration, on the CPU: refreshes and reclaim.
for (const { info, calls } of workloads.slice(0, 3)) {
  const workload = prepareWorkload(info.name, calls, 16, LLAMA3_8B_H100, 1);
  let footprint = 0;
  let largest = 1;
  for (const s of workload.sessions) {
    footprint += new Set(s.blocks).size;
    for (const c of s.calls) largest = Math.max(largest, Math.ceil((c.promptTokens + c.outputTokens) / 16));
  }
  const deviceBlocks = Math.max(largest + 8, Math.floor(footprint / 4));
  const log = recorder();
  const run = simulate({
    workload,
    policy: { name: 'cachesage', options: { refreshEvery: 4 } },
    deviceBlocks,
    hostBlocks: Math.floor(footprint / 3),
    model: LLAMA3_8B_H100,
    arrivals: { sessionStarts: workload.sessions.map((_, i) => i * 2) },
    reclaim: { freeBlocks: Math.max(4, Math.floor(deviceBlocks / 16)) },
    observers: [log],
  });
  emit(
    `${info.name} refresh-and-reclaim cachesage survivalBatches=${run.survivalBatches} reclaimed=${run.reclaimed}`,
    { device: run.deviceHitTokens, host: run.hostHitTokens },
    run.ttftSeconds,
    log.logs[0] ?? [],
  );
}
