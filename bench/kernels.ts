/**
 * Kernel benchmark: every data-plane kernel on every backend available here.
 *
 *   npm run --silent bench:kernels -- [--json] [--quick]
 *
 * - block copy: GB/s of a one-stage plan of 1 MiB blocks (device -> host,
 *   permuted), against the same backend's plain copy of the same bytes
 *   (CPU: TypedArray.set; WebGPU: one copyBufferToBuffer of the whole span);
 *   WebGPU also with method 'copy-commands' (one copyBufferToBuffer per block);
 * - hit scoring: scores of 1M blocks plus the first 1024 victims;
 * - survival: 1024 workloads x 64 states x H = 16 (a smaller batch, said so
 *   in the output, when the full one would take too long on this machine);
 * - crossover: over a doubling sweep, the smallest size from which each GPU
 *   backend beats the CPU at every larger size (block copy: the default
 *   'kernel' method); --json also lists every point of the sweep. The
 *   runtime's `backend: 'auto'` measures the same sweeps (src/compute/crossover.ts)
 *   to keep smaller batches on the CPU.
 *
 * Backends: cpu (native core), webgpu (any adapter, a software one marked),
 * cuda (where the addon was built with CUDA and a device is present) and
 * tfjs (survival only: its copies and scoring are the cpu backend's).
 *
 * GPU times are end to end as a caller sees them: upload, dispatch and
 * readback. A software adapter (lavapipe) runs the kernels on CPU cores,
 * so its numbers say nothing about a GPU; the output marks it.
 */
import { Tier, type CopyPlan } from '../src/blocks/types.js';
import { selectBackend, type ComputeBackend } from '../src/compute/backend.js';
import { doublings, findCrossover, medianMs, randomHitScoringInput, randomSurvivalInput } from '../src/compute/crossover.js';
import type { HitScoringInput } from '../src/compute/hit_scoring.js';
import { WebGpuBlockCopyProgram, type BlockCopyMethod } from '../src/compute/webgpu/block_copy_program.js';
import { probeWebGpu, releaseWebGpu } from '../src/compute/webgpu/device.js';
import { WebGpuHitScoringProgram } from '../src/compute/webgpu/hit_scoring_program.js';
import { WebGpuSurvivalBackend } from '../src/compute/webgpu/survival_program.js';
import type { SurvivalInput } from '../src/compute/survival.js';

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (a !== '--json' && a !== '--quick') {
    process.stderr.write(`bench:kernels: unknown flag ${a} (expected --json, --quick)\n`);
    process.exit(2);
  }
}
const json = args.has('--json');
const quick = args.has('--quick');

const BLOCK_BYTES = 1 << 20;
const COPY_BLOCKS = quick ? 16 : 64;
const SCORING_BLOCKS = quick ? 1 << 18 : 1 << 20;
const VICTIMS = 1024;
const SURVIVAL = { workloads: 1024, states: 64, horizon: 16 };
// A backend whose single run of the full survival batch is projected past
// this is measured on fewer workloads instead.
const SURVIVAL_BUDGET_MS = quick ? 3_000 : 20_000;
const reps = quick ? 3 : 7;

function log(message: string): void {
  if (!json) process.stderr.write(`${message}\n`);
}

/** Median milliseconds of `count` runs after one warm-up run. */
const time = (run: () => unknown, count = reps): Promise<number> => medianMs(run, count);


// ------------------------------------------------------------ inputs

function copyPlan(blocks: number): CopyPlan {
  return {
    srcTier: new Uint8Array(blocks).fill(Tier.Device),
    srcSlot: Int32Array.from({ length: blocks }, (_, i) => (i * 37) % blocks),
    dstTier: new Uint8Array(blocks).fill(Tier.Host),
    dstSlot: Int32Array.from({ length: blocks }, (_, i) => i),
    stageStarts: Int32Array.of(0),
  };
}

const scoringInput = (blocks: number): HitScoringInput => randomHitScoringInput(blocks);
const survivalInput = (workloads: number, states: number, horizon: number): SurvivalInput =>
  randomSurvivalInput(workloads, states, horizon);

// ------------------------------------------------------------ backends

interface Backend {
  name: string;
  /** What runs each kernel on this backend. */
  implementation: { adapter?: string; blockCopy: string; scoring: string; survival: string };
  software: boolean;
  /**
   * Milliseconds of one plan copying `blocks` blocks, of the same plan with
   * copy commands where the backend has them, and of the plain copy of the
   * same bytes.
   */
  copy: ((blocks: number, withPlain?: boolean) => Promise<{ planMs: number; commandsMs?: number; plainMs: number }>) | undefined;
  /** Undefined where the backend lends the operation from the cpu one. */
  scoring: ((input: HitScoringInput) => Promise<number>) | undefined;
  survival(input: SurvivalInput): Promise<number>;
  close(): Promise<void>;
}

function cpuBackend(compute: ComputeBackend): Backend {
  return {
    name: 'cpu',
    implementation: {
      blockCopy: compute.implementation.blockCopy,
      scoring: compute.implementation.hitScoring,
      survival: compute.implementation.survival,
    },
    software: false,
    async copy(blocks, withPlain = true) {
      const plan = copyPlan(blocks);
      const plane = await compute.createDataPlane({ bytesPerBlock: BLOCK_BYTES, deviceBlocks: blocks, hostBlocks: blocks });
      const planMs = await time(() => plane.runSync!(plan));
      const bytes = blocks * BLOCK_BYTES;
      const src = new Uint8Array(bytes).fill(1);
      const dst = new Uint8Array(bytes);
      const plainMs = withPlain ? await time(() => dst.set(src)) : NaN;
      plane.destroy();
      return { planMs, plainMs };
    },
    async scoring(input) {
      return time(() => compute.hitScoringSync!(input, VICTIMS), Math.min(reps, 3));
    },
    async survival(input) {
      return time(() => compute.survivalSync!(input), Math.min(reps, 3));
    },
    async close() {},
  };
}

/**
 * A GPU backend without a WebGPU-specific plain copy (CUDA: the native
 * benchmark compares its copy with cudaMemcpy) or without copies of its
 * own (tfjs: survival only).
 */
function computeBackend(compute: ComputeBackend, ops: { copy: boolean; scoring: boolean }): Backend {
  return {
    name: compute.name,
    implementation: {
      adapter: compute.device,
      blockCopy: ops.copy ? compute.implementation.blockCopy : `not measured (${compute.implementation.blockCopy})`,
      scoring: ops.scoring ? compute.implementation.hitScoring : `not measured (${compute.implementation.hitScoring})`,
      survival: compute.implementation.survival,
    },
    software: compute.software,
    copy: ops.copy
      ? async (blocks) => {
          const plan = copyPlan(blocks);
          const plane = await compute.createDataPlane({ bytesPerBlock: BLOCK_BYTES, deviceBlocks: blocks, hostBlocks: blocks });
          const planMs = await time(() => plane.run(plan));
          plane.destroy();
          return { planMs, plainMs: NaN };
        }
      : undefined,
    scoring: ops.scoring ? (input) => time(() => compute.hitScoring(input, VICTIMS), Math.min(reps, 3)) : undefined,
    survival: (input) => time(() => compute.survival(input), Math.min(reps, 3)),
    async close() {
      compute.destroy();
    },
  };
}

async function webGpuBackend(): Promise<Backend | { unavailable: string }> {
  const probe = await probeWebGpu();
  if (!probe.available) return { unavailable: probe.reason };
  const { context } = probe;
  const scoring = await WebGpuHitScoringProgram.create(context);
  const survival = await WebGpuSurvivalBackend.create(context);
  const { device } = context;
  return {
    name: 'webgpu',
    implementation: {
      adapter: context.info.adapterName,
      blockCopy: 'WebGpuBlockCopyProgram',
      scoring: 'WebGpuHitScoringProgram',
      survival: 'WebGpuSurvivalBackend',
    },
    software: context.info.isSoftware,
    async copy(blocks, withPlain = true) {
      const plan = copyPlan(blocks);
      const options = { bytesPerBlock: BLOCK_BYTES, deviceBlocks: blocks, hostBlocks: blocks };
      const measure = async <T>(method: BlockCopyMethod, run: (program: WebGpuBlockCopyProgram) => Promise<T>): Promise<T> => {
        const program = await WebGpuBlockCopyProgram.create({ ...options, method }, context);
        try {
          return await run(program);
        } finally {
          program.destroy();
        }
      };
      const [planMs, plainMs] = await measure('kernel', async (program) => [
        await time(() => program.execute(plan)),
        withPlain
          ? await time(async () => {
              const encoder = device.createCommandEncoder();
              encoder.copyBufferToBuffer(program.devicePool, 0, program.hostPool, 0, blocks * BLOCK_BYTES);
              device.queue.submit([encoder.finish()]);
              await device.queue.onSubmittedWorkDone();
            })
          : NaN,
      ]);
      if (!withPlain) return { planMs: planMs!, plainMs: NaN };
      const commandsMs = await measure('copy-commands', (program) => time(() => program.execute(plan)));
      return { planMs: planMs!, commandsMs, plainMs: plainMs! };
    },
    async scoring(input) {
      return time(() => scoring.computeAsync(input, VICTIMS), Math.min(reps, 3));
    },
    async survival(input) {
      return time(() => survival.computeAsync(input), Math.min(reps, 3));
    },
    async close() {
      await releaseWebGpu();
    },
  };
}

// ------------------------------------------------------------ measurements

const gbs = (bytes: number, ms: number): number => bytes / 1e9 / (ms / 1000);
const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));

/**
 * Times survival on the full batch, or on a power-of-two fraction of its
 * workloads when a probe run projects the full batch past the budget.
 */
async function survivalFigure(backend: Backend): Promise<{ workloads: number; ms: number; reduced: boolean }> {
  const { states, horizon } = SURVIVAL;
  let workloads = 16;
  let ms = await time(() => backend.survival(survivalInput(workloads, states, horizon)), 1);
  for (;;) {
    const next = workloads * 2;
    if (next > SURVIVAL.workloads || (ms * next) / workloads > SURVIVAL_BUDGET_MS) break;
    workloads = next;
    ms = await backend.survival(survivalInput(workloads, states, horizon));
  }
  return { workloads, ms, reduced: workloads < SURVIVAL.workloads };
}

const round4 = (x: number): number => round(x, 4);

/** The crossover sweep of one operation, logged point by point. */
async function crossover(
  sizes: number[],
  measure: (backend: Backend, size: number) => Promise<number>,
  cpu: Backend,
  gpu: Backend,
): Promise<{ from: number | null; points: Array<{ size: number; cpuMs: number; gpuMs: number }> }> {
  const sweep = await findCrossover(
    sizes,
    (size) => measure(cpu, size),
    (size) => measure(gpu, size),
    (p) => log(`  size ${p.size}: cpu ${p.cpuMs.toFixed(3)} ms, gpu ${p.gpuMs.toFixed(3)} ms`),
  );
  return { from: sweep.from, points: sweep.points.map((p) => ({ size: p.size, cpuMs: round4(p.cpuMs), gpuMs: round4(p.gpuMs) })) };
}

/** A backend by name, or why it is not measured. */
async function open(name: 'cuda' | 'tfjs'): Promise<Backend | { unavailable: string }> {
  try {
    const compute = (await selectBackend(name)).backend;
    return computeBackend(compute, { copy: name === 'cuda', scoring: name === 'cuda' });
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
}

const cpu = cpuBackend((await selectBackend('cpu')).backend);
const others = { webgpu: await webGpuBackend(), cuda: await open('cuda'), tfjs: await open('tfjs') };
const backends: Backend[] = [cpu, ...Object.values(others).filter((b): b is Backend => !('unavailable' in b))];
const unavailable = Object.fromEntries(
  Object.entries(others).flatMap(([name, b]) => ('unavailable' in b ? [[name, b.unavailable]] : [])),
);

const perBackend: Record<string, unknown> = {};
for (const backend of backends) {
  log(`${backend.name}: block copy`);
  const copy = backend.copy ? await backend.copy(COPY_BLOCKS) : null;
  log(`${backend.name}: hit scoring`);
  const scoringMs = backend.scoring ? await backend.scoring(scoringInput(SCORING_BLOCKS)) : null;
  log(`${backend.name}: survival`);
  const survival = await survivalFigure(backend);
  const bytes = COPY_BLOCKS * BLOCK_BYTES;
  perBackend[backend.name] = {
    implementation: backend.implementation,
    software: backend.software,
    blockCopy:
      copy === null
        ? null
        : {
            bytes,
            planGBs: round(gbs(bytes, copy.planMs)),
            ...(copy.commandsMs === undefined ? {} : { copyCommandsGBs: round(gbs(bytes, copy.commandsMs)) }),
            plainCopyGBs: Number.isNaN(copy.plainMs) ? null : round(gbs(bytes, copy.plainMs)),
            ratio: Number.isNaN(copy.plainMs) ? null : round(copy.plainMs / copy.planMs),
          },
    scoring: scoringMs === null ? null : { blocks: SCORING_BLOCKS, victims: VICTIMS, ms: round(scoringMs, 4) },
    survival: {
      workloads: survival.workloads,
      states: SURVIVAL.states,
      horizon: SURVIVAL.horizon,
      ms: round(survival.ms, 4),
      reduced: survival.reduced,
      ...(survival.reduced
        ? { note: `the full ${SURVIVAL.workloads} workloads were projected past ${SURVIVAL_BUDGET_MS / 1000} s, so ${survival.workloads} were measured` }
        : {}),
    },
  };
}

const crossovers: Record<string, unknown> = {};
for (const gpu of backends.filter((b) => b !== cpu)) {
  const none = { from: null, points: [] };
  if (gpu.copy) log(`${gpu.name}: crossover, block copy (copies of 1 MiB blocks)`);
  const copySweep = gpu.copy
    ? await crossover(doublings(1, COPY_BLOCKS), async (b, n) => (await b.copy!(n, false)).planMs, cpu, gpu)
    : none;
  if (gpu.scoring) log(`${gpu.name}: crossover, hit scoring (blocks)`);
  const scoringSweep = gpu.scoring
    ? await crossover(doublings(1 << 10, SCORING_BLOCKS), (b, n) => b.scoring!(scoringInput(n)), cpu, gpu)
    : none;
  log(`${gpu.name}: crossover, survival (workloads of ${SURVIVAL.states} states, H = ${SURVIVAL.horizon})`);
  const survivalMax = Math.min(SURVIVAL.workloads, quick ? 64 : 256);
  const survivalSweep = await crossover(
    doublings(1, survivalMax),
    (b, n) => b.survival(survivalInput(n, SURVIVAL.states, SURVIVAL.horizon)),
    cpu,
    gpu,
  );
  crossovers[gpu.name] = {
    blockCopyBlocks: copySweep.from,
    blockCopyBytes: copySweep.from === null ? null : copySweep.from * BLOCK_BYTES,
    scoringBlocks: scoringSweep.from,
    survivalWorkloads: survivalSweep.from,
    sweeps: { blockCopyBlocks: copySweep.points, scoringBlocks: scoringSweep.points, survivalWorkloads: survivalSweep.points },
    sweptUpTo: { blockCopyBlocks: COPY_BLOCKS, scoringBlocks: SCORING_BLOCKS, survivalWorkloads: survivalMax },
  };
}

const result = {
  quick,
  blockBytes: BLOCK_BYTES,
  backends: perBackend,
  crossover: crossovers,
  /** Backends not measured here, and why. */
  unavailable,
  ...('unavailable' in others.webgpu ? { webgpuUnavailable: others.webgpu.unavailable } : {}),
};

for (const backend of backends) await backend.close();

if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const rows: Array<[string, string]> = [];
  for (const backend of backends) {
    const r = perBackend[backend.name] as {
      blockCopy: { planGBs: number; copyCommandsGBs?: number; plainCopyGBs: number | null; ratio: number | null } | null;
      scoring: { ms: number } | null;
      survival: { workloads: number; ms: number; reduced: boolean };
    };
    const tag = backend.software ? `${backend.name} [software]` : backend.name;
    const { adapter, blockCopy, scoring, survival } = backend.implementation;
    if (adapter !== undefined) rows.push([`${tag}: device`, adapter]);
    rows.push([`${tag}: kernels`, `${blockCopy}; ${scoring}; ${survival}`]);
    if (r.blockCopy !== null) {
      rows.push([`${tag}: block copy (GB/s)`, String(r.blockCopy.planGBs)]);
      if (r.blockCopy.copyCommandsGBs !== undefined) {
        rows.push([`${tag}: block copy, copy commands (GB/s)`, String(r.blockCopy.copyCommandsGBs)]);
      }
      if (r.blockCopy.plainCopyGBs !== null) {
        rows.push([`${tag}: plain copy of the same bytes (GB/s)`, String(r.blockCopy.plainCopyGBs)]);
        rows.push([`${tag}: block copy / plain copy`, String(r.blockCopy.ratio)]);
      }
    }
    if (r.scoring !== null) rows.push([`${tag}: scoring ${SCORING_BLOCKS} blocks + ${VICTIMS} victims (ms)`, String(r.scoring.ms)]);
    const shape = `${r.survival.workloads}x${SURVIVAL.states}x${SURVIVAL.horizon}`;
    rows.push([
      `${tag}: survival ${shape} (ms)${r.survival.reduced ? ` [reduced from ${SURVIVAL.workloads} workloads: too slow here]` : ''}`,
      String(r.survival.ms),
    ]);
  }
  for (const [name, c] of Object.entries(crossovers) as Array<[string, Record<string, unknown>]>) {
    const show = (v: unknown, max: unknown): string => (v === null ? `none up to ${String(max)}` : String(v));
    const upTo = c.sweptUpTo as Record<string, number>;
    const sweeps = c.sweeps as Record<string, unknown[]>;
    if (sweeps.blockCopyBlocks!.length > 0) rows.push([`${name}: crossover, block copy (1 MiB blocks)`, show(c.blockCopyBlocks, upTo.blockCopyBlocks)]);
    if (sweeps.scoringBlocks!.length > 0) rows.push([`${name}: crossover, scoring (blocks)`, show(c.scoringBlocks, upTo.scoringBlocks)]);
    rows.push([`${name}: crossover, survival (workloads)`, show(c.survivalWorkloads, upTo.survivalWorkloads)]);
  }
  for (const [name, why] of Object.entries(unavailable)) rows.push([name, `not measured: ${why}`]);
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [name, value] of rows) process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
}
