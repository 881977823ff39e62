/**
 * Runs the bench sweep's replays, one (workload, capacity) pair per task,
 * on worker threads: replays are independent and CPU-bound, so a sweep
 * scales with cores. With one job they run on the calling thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { deviceOnlyRuns } from '../report/baselines.js';
import { replay, type ReplayReport } from '../sim/replay.js';
import type { ToolDeclaration, TraceCall } from '../trace/format.js';
import type { SimulationSettings } from './replay_command.js';

/** One replay of the sweep. */
export interface SweepTask {
  workload: string;
  calls: readonly TraceCall[];
  /** Fraction of the peak live footprint. */
  capacity: number;
  settings: SimulationSettings;
  /** Keep the per-call TTFT samples (only where the report charts them). */
  keepSamples: boolean;
  /** The workload's tool declarations, told to policies that memoise tool results. */
  tools?: Record<string, ToolDeclaration>;
}

/** What a worker posts back: a policy finished, the task finished, or it failed. */
export type SweepMessage =
  | { type: 'policy'; policy: string }
  | { type: 'done'; report: ReplayReport }
  | { type: 'error'; message: string; stack?: string };

/** Runs per task: every policy, and the device-only runs the baselines add (vanilla, the flagship without host tier). */
export function runsPerTask(settings: SimulationSettings): number {
  return settings.policies.length + deviceOnlyRuns(settings.policies, settings.hostCapacity).length;
}

/** Runs one task on this thread; `onPolicy` after each policy's run (device-only runs included). */
export function runSweepTask(task: SweepTask, onPolicy: (policy: string) => void): ReplayReport {
  const report = replay(task.workload, task.calls, {
    ...task.settings,
    capacity: { fraction: task.capacity },
    deviceOnly: deviceOnlyRuns(task.settings.policies, task.settings.hostCapacity),
    onProgress: (policy) => onPolicy(policy),
    ...(task.tools === undefined ? {} : { tools: task.tools }),
  });
  if (!task.keepSamples) for (const r of [...report.results, ...(report.deviceOnlyResults ?? [])]) delete r.ttftMs;
  return report;
}

/** Worker threads a sweep uses by default: one per core, at most 4, at most one per task. */
export function defaultJobs(tasks: number): number {
  return Math.max(1, Math.min(availableParallelism(), 4, tasks));
}

function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./bench_worker.js', import.meta.url));
  // Run from source: tsx installs its loader on the main thread only, so the
  // worker installs it before importing the TypeScript entry.
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./bench_worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, { eval: true });
}

/**
 * Runs every task, `jobs` at a time, and returns the reports in task order.
 * `onPolicy(task, policy)` is called as each policy run finishes.
 */
export async function runSweep(
  tasks: readonly SweepTask[],
  jobs: number,
  onPolicy: (task: SweepTask, policy: string) => void,
): Promise<ReplayReport[]> {
  const reports: ReplayReport[] = new Array<ReplayReport>(tasks.length);
  if (jobs <= 1) {
    tasks.forEach((task, i) => (reports[i] = runSweepTask(task, (policy) => onPolicy(task, policy))));
    return reports;
  }
  let next = 0;
  let failed = false;
  const lane = async () => {
    const worker = startWorker();
    try {
      while (next < tasks.length && !failed) {
        const i = next++;
        const task = tasks[i]!;
        reports[i] = await new Promise<ReplayReport>((resolve, reject) => {
          const settle = () => {
            worker.off('message', onMessage);
            worker.off('error', onError);
            worker.off('exit', onExit);
          };
          const onMessage = (message: SweepMessage) => {
            if (message.type === 'policy') return onPolicy(task, message.policy);
            settle();
            if (message.type === 'done') resolve(message.report);
            else reject(Object.assign(new Error(message.message), message.stack ? { stack: message.stack } : {}));
          };
          const onError = (error: Error) => {
            settle();
            reject(error);
          };
          const onExit = (code: number) => {
            settle();
            reject(new Error(`bench worker exited (code ${code}) while replaying ${task.workload} at capacity ${task.capacity}`));
          };
          worker.on('message', onMessage);
          worker.on('error', onError);
          worker.on('exit', onExit);
          worker.postMessage(task);
        });
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      await worker.terminate();
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, lane));
  return reports;
}
