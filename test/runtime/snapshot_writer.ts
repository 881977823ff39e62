/**
 * The child process of snapshot_kill.test.ts, and the lessons it teaches.
 *
 *   node --import tsx test/runtime/snapshot_writer.ts PATH START
 *
 * Teaches a runtime lessons 1..START without writing, prints "ready", then
 * forever teaches the next lesson k, writes a snapshot to PATH and prints
 * "wrote k", until it is killed (or has written 100,000 times). After
 * lesson k, what the runtime learned depends on k alone, so the parent can
 * tell which complete state a snapshot holds.
 */
import { pathToFileURL } from 'node:url';

import { Runtime } from '../../src/runtime/runtime.js';

export function snapshotRuntime(): Runtime {
  return new Runtime({ blocks: { blockSize: 4, deviceBlocks: 8 }, policies: ['cachesage'], now: () => 0 });
}

const AGENTS = ['planner', 'coder', 'reviewer', 'tester', 'writer', 'critic'];

/**
 * Lesson k: one session of workload k mod 60, its agents picked by k, so
 * each lesson changes what is learned and the snapshot grows to tens of
 * kilobytes, big enough that a kill often lands in the middle of a write.
 */
export function teach(rt: Runtime, k: number): void {
  const session = `s${k}`;
  const workload = `w${k % 60}`;
  const t = k * 10;
  rt.observe({ type: 'session.start', time: t, session, workload });
  for (let step = 0; step < 4; step++) {
    const agent = { workload, agent: AGENTS[(k * 7 + step * (k % 5 + 1)) % AGENTS.length]! };
    rt.observe({ type: 'step.start', time: t + step + 0.1, session, agent });
    rt.observe({ type: 'step.end', time: t + step + 0.2 + (k % 3) * 0.1, session, agent });
  }
  rt.observe({ type: 'session.end', time: t + 5, session });
}

function main(path: string, start: number): void {
  const rt = snapshotRuntime();
  for (let k = 1; k <= start; k++) teach(rt, k);
  // Pipes to the parent are synchronous on Linux: each line is out before the next write starts.
  process.stdout.write('ready\n');
  for (let k = start + 1; k <= start + 100_000; k++) {
    teach(rt, k);
    rt.snapshot(path);
    process.stdout.write(`wrote ${k}\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2]!, Number(process.argv[3]));
}
