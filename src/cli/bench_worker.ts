/**
 * A bench worker thread: replays the tasks it is sent, one at a time, and
 * posts progress and the report back (see bench_pool.ts).
 */
import { parentPort } from 'node:worker_threads';

import { runSweepTask, type SweepMessage, type SweepTask } from './bench_pool.js';

const port = parentPort;
if (!port) throw new Error('bench_worker.ts must run as a worker thread');

port.on('message', (task: SweepTask) => {
  const post = (message: SweepMessage) => port.postMessage(message);
  try {
    const report = runSweepTask(task, (policy) => post({ type: 'policy', policy }));
    post({ type: 'done', report });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    post({ type: 'error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
  }
});
