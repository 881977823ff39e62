/**
 * The same replay on the cpu and webgpu backends makes the same decisions:
 * CacheSage's survival tables are refreshed on the backend at the same
 * points, reclaim picks its victims with the backend's hit scoring, and
 * every copy plan runs on the backend's data plane. Every eviction and
 * demotion is compared, in order, and every cached block's bytes are read
 * back and checked.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { EventKind } from '../../src/blocks/types.js';
import { selectBackend, type BackendSelection } from '../../src/compute/backend.js';
import { probeWebGpu, releaseWebGpu } from '../../src/compute/webgpu/device.js';
import type { Policy, RuntimeEvent } from '../../src/policies/types.js';
import { LLAMA3_8B_H100 } from '../../src/sim/cost_model.js';
import { simulate, simulateAsync, type SimulationOptions } from '../../src/sim/simulator.js';
import { prepareWorkload } from '../../src/sim/workload.js';
import { readTrace } from '../../src/trace/reader.js';
import type { TraceCall } from '../../src/trace/format.js';
import { generateWorkload } from '../../src/workloads/index.js';

const probe = await probeWebGpu();
if (!probe.available && process.env.CI) {
  throw new Error(`CI must run the cross-backend replay, but no WebGPU adapter was found: ${probe.reason}`);
}
if (!probe.available) process.stderr.write(`replay on backends: WebGPU cases skipped: ${probe.reason}\n`);

afterAll(releaseWebGpu);

const traces = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'traces');

/** Records every block leaving a tier, in order: what the decisions were. */
function recorder(): Policy & { log: string[] } {
  const log: string[] = [];
  return {
    name: 'recorder',
    log,
    observe(event: RuntimeEvent) {
      if (event.type !== 'blocks') return;
      const { kind, hash } = event.events;
      for (let i = 0; i < kind.length; i++) {
        if (kind[i] === EventKind.Removed) log.push(`evict ${hash[i]!.toString(16)} @${event.time.toFixed(6)}`);
        else if (kind[i] === EventKind.Demoted) log.push(`demote ${hash[i]!.toString(16)} @${event.time.toFixed(6)}`);
      }
    },
  };
}

async function smallTrace(): Promise<{ name: string; calls: TraceCall[] }> {
  const path = join(traces, 'mad_debate.jsonl');
  if (existsSync(path)) {
    const calls: TraceCall[] = [];
    // The first sessions of a real trace, whole.
    const sessions = new Set<string>();
    for await (const call of readTrace(path)) {
      if (!sessions.has(call.session) && sessions.size === 6) continue;
      sessions.add(call.session);
      calls.push(call);
    }
    return { name: 'mad_debate (first 6 sessions)', calls };
  }
  // Without the real trace the same checks run on a generated workload, and
  // the test's name and output say so.
  process.stderr.write(`replay on backends: ${path} is absent; replaying a generated groupchat workload instead\n`);
  return { name: 'groupchat (generated, 6 sessions: the real trace is absent)', calls: generateWorkload('groupchat', { sessions: 6 }).calls };
}

const { name, calls } = await smallTrace();
const blockSize = 16;
const workload = prepareWorkload(name, calls, blockSize, LLAMA3_8B_H100, 1);
let footprint = 0;
let largest = 1;
for (const s of workload.sessions) {
  footprint += new Set(s.blocks).size;
  for (const c of s.calls) largest = Math.max(largest, Math.ceil((c.promptTokens + c.outputTokens) / blockSize));
}
// A device tier far below the footprint: evictions and demotions all along.
const deviceBlocks = Math.max(largest + 8, Math.floor(footprint / 4));
const hostBlocks = Math.floor(footprint / 3);

function options(selection: BackendSelection, log: Policy): SimulationOptions {
  return {
    workload,
    policy: { name: 'cachesage', options: { refreshEvery: 4 } },
    deviceBlocks,
    hostBlocks,
    model: LLAMA3_8B_H100,
    arrivals: { sessionStarts: workload.sessions.map((_, i) => i * 2) },
    backend: selection,
    reclaim: { freeBlocks: Math.max(4, Math.floor(deviceBlocks / 16)) },
    observers: [log],
  };
}

describe(`replay of ${name} on every backend`, () => {
  it('the synchronous and asynchronous drivers decide alike on the cpu backend, and the bytes come through', async () => {
    const cpu = await selectBackend('cpu');
    const syncLog = recorder();
    const sync = simulate(options(cpu, syncLog));
    const asyncLog = recorder();
    const plane = await cpu.backend.createDataPlane({ bytesPerBlock: 64, deviceBlocks, hostBlocks });
    const run = await simulateAsync({ ...options(cpu, asyncLog), dataPlane: plane });
    expect(syncLog.log.length).toBeGreaterThan(50);
    expect(syncLog.log.filter((e) => e.startsWith('demote')).length).toBeGreaterThan(10);
    expect(asyncLog.log).toEqual(syncLog.log);
    expect(run.reclaimed).toBeGreaterThan(0);
    expect(run.reclaimed).toBe(sync.reclaimed);
    expect(run.deviceHitTokens).toBe(sync.deviceHitTokens);
    expect(run.dataPlane!.copies).toBeGreaterThan(0);
    expect(run.dataPlane!.checked).toBeGreaterThan(0);
    expect(run.dataPlane!.corrupt).toBe(0);
  }, 120_000);

  it.skipIf(!probe.available)('cpu and webgpu evict and demote the same blocks in the same order', async () => {
    const cpu = await selectBackend('cpu');
    const webgpu = await selectBackend('webgpu');
    const cpuLog = recorder();
    const cpuPlane = await cpu.backend.createDataPlane({ bytesPerBlock: 64, deviceBlocks, hostBlocks });
    const onCpu = await simulateAsync({ ...options(cpu, cpuLog), dataPlane: cpuPlane });
    const gpuLog = recorder();
    const gpuPlane = await webgpu.backend.createDataPlane({ bytesPerBlock: 64, deviceBlocks, hostBlocks });
    const onGpu = await simulateAsync({ ...options(webgpu, gpuLog), dataPlane: gpuPlane });
    gpuPlane.destroy();
    webgpu.backend.destroy();

    expect(cpuLog.log.length).toBeGreaterThan(50);
    // Compared one by one so a failure names the first decision that differs.
    const first = cpuLog.log.findIndex((entry, i) => gpuLog.log[i] !== entry);
    expect(first, `first differing decision: cpu ${cpuLog.log[first]} / webgpu ${gpuLog.log[first]}`).toBe(-1);
    expect(gpuLog.log.length).toBe(cpuLog.log.length);
    process.stderr.write(
      `replay on cpu and webgpu: ${cpuLog.log.length} evictions/demotions identical; ${onGpu.survivalBatches} survival refreshes, ` +
        `${onGpu.reclaimed} blocks reclaimed by hit scoring, ${onGpu.dataPlane!.copies} block copies, ${onGpu.dataPlane!.checked} blocks checked\n`,
    );
    expect(onGpu.reclaimed).toBe(onCpu.reclaimed);
    // The tables were refreshed on the backend, not only computed at first sight.
    expect(onGpu.survivalBatches).toBeGreaterThan(5);
    expect(onGpu.survivalBatches).toBe(onCpu.survivalBatches);
    expect(onGpu.refreshes).toBe(onCpu.refreshes);
    expect(onGpu.deviceHitTokens).toBe(onCpu.deviceHitTokens);
    expect(onGpu.hostHitTokens).toBe(onCpu.hostHitTokens);
    expect(Array.from(onGpu.ttftSeconds)).toEqual(Array.from(onCpu.ttftSeconds));
    expect(onGpu.dataPlane!.copies).toBe(onCpu.dataPlane!.copies);
    expect(onGpu.dataPlane!.checked).toBeGreaterThan(0);
    expect(onGpu.dataPlane!.corrupt).toBe(0);
  }, 300_000);
});
