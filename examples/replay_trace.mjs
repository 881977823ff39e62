// Replay: a multi-agent workload written as a trace file, read back, and
// replayed through the simulator under three policies. The same file works
// with `npx cachesage replay --trace FILE` (format: docs/trace-format.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { generateWorkload, readTraceFile, replay, writeTrace } from 'cachesage/sim';

const dir = mkdtempSync(join(tmpdir(), 'cachesage-example-'));
const path = join(dir, 'groupchat.jsonl');
try {
  // A seeded group chat: a manager hands the turn among experts, each of
  // whom re-reads the shared history.
  const { calls } = generateWorkload('groupchat', { seed: 7, sessions: 8 });
  await writeTrace(path, null, calls);
  const trace = await readTraceFile(path);

  const report = replay('groupchat', trace.calls, {
    policies: ['lru', 'cachesage', 'belady'],
    capacity: { fraction: 0.25 }, // device tier: a quarter of the peak live KV
    hostCapacity: { blocks: 0 }, // no host tier: the unmodified serving stack
  });
  console.log(`${report.calls} calls in ${report.sessions} sessions, device tier ${report.capacityBlocks} blocks`);
  for (const r of report.results) {
    console.log(`${r.policy.padEnd(10)} token hit rate ${(100 * r.tokenHitRate).toFixed(1)} %, mean TTFT ${r.meanTtftMs.toFixed(1)} ms`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
