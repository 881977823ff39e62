/**
 * Backend selection: {@link selectBackend} turns a name into a backend,
 * and `'auto'` into the best one this machine has (CUDA, then a hardware
 * WebGPU adapter, then the CPU), measuring the crossover below which
 * batches stay on the CPU. GPU backends load only when asked for, so a
 * machine without their packages never imports them.
 */
import type { BackendCandidate, BackendChoice, BackendName, BackendSelection, ComputeBackend, SelectOptions } from './backend.js';
import { cpuBackend } from './cpu/backend.js';
import { measureCrossover, type Crossover } from './crossover.js';
import type { HitScoringInput, HitScoringOutput } from './hit_scoring.js';
import type { SurvivalInput, SurvivalOutput } from './survival.js';

/** Every backend a caller may ask for, and 'auto'. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'cpu', 'webgpu', 'cuda', 'tfjs'];

// ------------------------------------------------------------ WebGPU

async function openWebGpu(): Promise<{ backend: ComputeBackend } | { unavailable: string }> {
  const { probeWebGpu } = await import('./webgpu/device.js');
  const probe = await probeWebGpu();
  if (!probe.available) return { unavailable: probe.reason };
  const { context } = probe;
  const [{ WebGpuSurvivalBackend }, { WebGpuHitScoringProgram }, { WebGpuBlockCopyProgram }] = await Promise.all([
    import('./webgpu/survival_program.js'),
    import('./webgpu/hit_scoring_program.js'),
    import('./webgpu/block_copy_program.js'),
  ]);
  const survival = await WebGpuSurvivalBackend.create(context);
  const scoring = await WebGpuHitScoringProgram.create(context);
  const software = context.info.isSoftware;
  const device = `${context.info.adapterName}${software ? ' (software)' : ''}`;
  const backend: ComputeBackend = {
    name: 'webgpu',
    device,
    software,
    implementation: {
      survival: 'WGSL (survival.wgsl)',
      hitScoring: 'WGSL (hit_scoring.wgsl)',
      blockCopy: 'WGSL (block_copy.wgsl)',
    },
    survival: (input) => survival.computeAsync(input),
    survivalSync: null,
    hitScoring: (input, k) => scoring.computeAsync(input, k),
    hitScoringSync: null,
    createDataPlane: async (options) => {
      const program = await WebGpuBlockCopyProgram.create(
        { bytesPerBlock: options.bytesPerBlock, deviceBlocks: options.deviceBlocks, hostBlocks: options.hostBlocks ?? 0 },
        context,
      );
      return {
        implementation: 'WGSL (block_copy.wgsl)',
        bytesPerBlock: program.bytesPerBlock,
        deviceBlocks: program.deviceBlocks,
        hostBlocks: program.hostBlocks,
        run: (plan) => program.execute(plan),
        runSync: null,
        prefetch: (plan) => program.prefetchAsync(plan),
        write: async (tier, slot, bytes) => program.writeBlock(tier, slot, bytes),
        read: (tier, slot) => program.readBlock(tier, slot),
        destroy: () => program.destroy(),
      };
    },
    destroy: () => {
      survival.destroy();
      scoring.destroy();
    },
  };
  return { backend };
}

// ------------------------------------------------------------ CUDA

async function openCuda(): Promise<{ backend: ComputeBackend } | { unavailable: string }> {
  const cuda = await import('./cuda/cuda.js');
  const info = cuda.cudaInfo();
  if (!info.built) return { unavailable: `not compiled into the addon: ${info.reason}` };
  if (!info.available) return { unavailable: info.reason };
  const survival = cuda.CudaSurvivalBackend.create();
  const scoring = cuda.CudaHitScoringProgram.create();
  const cpu = cpuBackend();
  const survivalSync = (input: SurvivalInput): SurvivalOutput =>
    // Shared memory bounds the kernel's state count; larger batches stay on the CPU.
    input.states <= survival.maxStates ? survival.compute(input) : cpu.survivalSync!(input);
  const hitScoringSync = (input: HitScoringInput, k: number): HitScoringOutput => scoring.compute(input, k);
  const backend: ComputeBackend = {
    name: 'cuda',
    device: info.device,
    software: false,
    implementation: { survival: 'CUDA (survival.cu)', hitScoring: 'CUDA (hit_scoring.cu)', blockCopy: 'CUDA (block_copy.cu)' },
    survival: async (input) => survivalSync(input),
    survivalSync,
    hitScoring: async (input, k) => hitScoringSync(input, k),
    hitScoringSync,
    createDataPlane: async (options) => {
      const plane = new cuda.CudaDataPlane(options);
      return {
        implementation: 'CUDA (block_copy.cu)',
        bytesPerBlock: plane.bytesPerBlock,
        deviceBlocks: plane.deviceBlocks,
        hostBlocks: plane.hostBlocks,
        run: async (plan) => {
          plane.execute(plan);
          plane.synchronize();
        },
        runSync: (plan) => {
          plane.execute(plan);
          plane.synchronize();
        },
        prefetch: async (plan) => {
          plane.prefetchPlan(plan);
          // The prefetch stream runs beside other work; later copies wait for it.
          plane.waitForPrefetch();
          while (!plane.prefetchComplete()) await new Promise((resolve) => setImmediate(resolve));
        },
        write: async (tier, slot, bytes) => {
          plane.synchronize();
          plane.write(tier, slot, bytes);
        },
        read: async (tier, slot) => {
          plane.synchronize();
          return plane.read(tier, slot);
        },
        destroy: () => plane.destroy(),
      };
    },
    destroy: () => {
      survival.destroy();
      scoring.destroy();
    },
  };
  return { backend };
}

// ------------------------------------------------------------ tfjs

async function openTfjs(): Promise<{ backend: ComputeBackend } | { unavailable: string }> {
  let survival: import('./tfjs/survival_program.js').TfjsSurvivalBackend;
  try {
    const { TfjsSurvivalBackend } = await import('./tfjs/survival_program.js');
    survival = await TfjsSurvivalBackend.create();
  } catch (error) {
    return { unavailable: `tfjs did not load: ${error instanceof Error ? error.message : String(error)}` };
  }
  const cpu = cpuBackend();
  const backend: ComputeBackend = {
    name: 'tfjs',
    device: `${survival.module} (tf backend '${survival.tfBackend}')`,
    software: !survival.isGpu,
    implementation: {
      survival: `tfjs (${survival.module}, backend '${survival.tfBackend}')`,
      // tfjs has no sort-based selection worth the transfer: the CPU's.
      hitScoring: `${cpu.implementation.hitScoring}, from the cpu backend`,
      blockCopy: `${cpu.implementation.blockCopy}, from the cpu backend`,
    },
    survival: (input) => survival.computeAsync(input),
    survivalSync: (input) => survival.compute(input),
    hitScoring: cpu.hitScoring,
    hitScoringSync: cpu.hitScoringSync,
    createDataPlane: cpu.createDataPlane,
    destroy: () => undefined,
  };
  return { backend };
}

// ------------------------------------------------------------ selection

const OPENERS: Record<Exclude<BackendName, 'cpu'>, () => Promise<{ backend: ComputeBackend } | { unavailable: string }>> = {
  webgpu: openWebGpu,
  cuda: openCuda,
  tfjs: openTfjs,
};

async function tryOpen(name: Exclude<BackendName, 'cpu'>): Promise<{ backend: ComputeBackend } | { unavailable: string }> {
  try {
    return await OPENERS[name]();
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
}

/** Checks a backend choice; throws a RangeError naming the choices. */
export function checkBackendChoice(value: unknown, what = 'backend'): BackendChoice {
  if (typeof value !== 'string' || !(BACKEND_CHOICES as readonly string[]).includes(value)) {
    throw new RangeError(`${what} must be one of ${BACKEND_CHOICES.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return value as BackendChoice;
}

/**
 * The backend for `choice`. A named backend that is not available throws
 * an Error with the reason; 'auto' always succeeds (the CPU is last).
 */
export async function selectBackend(choice: BackendChoice = 'auto', options: SelectOptions = {}): Promise<BackendSelection> {
  checkBackendChoice(choice);
  if (choice === 'cpu') {
    const backend = cpuBackend();
    return { requested: choice, backend, reason: 'asked for by name', candidates: [{ name: 'cpu', available: true, reason: 'native core' }], crossover: null };
  }
  if (choice !== 'auto') {
    const opened = await tryOpen(choice);
    if ('unavailable' in opened) throw new Error(`backend '${choice}' is not available: ${opened.unavailable}`);
    const { backend } = opened;
    const note = backend.software ? '; a software implementation, slower than the cpu backend' : '';
    return {
      requested: choice,
      backend,
      reason: `asked for by name${note}`,
      candidates: [{ name: choice, available: true, reason: backend.device }],
      crossover: null,
    };
  }

  const candidates: BackendCandidate[] = [];
  for (const name of ['cuda', 'webgpu'] as const) {
    const opened = await tryOpen(name);
    if ('unavailable' in opened) {
      candidates.push({ name, available: false, reason: opened.unavailable });
      continue;
    }
    const gpu = opened.backend;
    if (gpu.software) {
      gpu.destroy();
      candidates.push({
        name,
        available: false,
        reason: `${gpu.device} is a software adapter, slower than the cpu backend; ask for '${name}' by name to use it`,
      });
      continue;
    }
    candidates.push({ name, available: true, reason: gpu.device });
    const cpu = cpuBackend();
    let crossover: Crossover;
    if (options.calibrate === false) {
      crossover = { survivalElements: 0, hitScoringBlocks: 0, ...options.crossover, measured: false };
    } else {
      crossover = { ...(await measureCrossover(cpu, gpu, options.crossover)), ...options.crossover };
    }
    return {
      requested: 'auto',
      backend: routedBackend(gpu, cpu, crossover),
      reason: `${name} is the first available of cuda, hardware webgpu, cpu (${gpu.device}); batches below the crossover stay on the cpu`,
      candidates: [...candidates, { name: 'cpu', available: true, reason: 'native core (for batches below the crossover)' }],
      crossover,
    };
  }
  candidates.push({ name: 'cpu', available: true, reason: 'native core' });
  return {
    requested: 'auto',
    backend: cpuBackend(),
    reason: `no GPU backend is usable here (${candidates
      .filter((c) => !c.available)
      .map((c) => `${c.name}: ${c.reason}`)
      .join('; ')}), so the cpu backend`,
    candidates,
    crossover: null,
  };
}

/** Elements of a survival batch's reach output: what its cost grows with. */
export function survivalElements(input: SurvivalInput): number {
  return input.workloads * input.horizon * input.states * input.states;
}

/**
 * A GPU backend that leaves batches below the crossover on the CPU. Results
 * are the same either way (the kernels match the CPU code), so routing
 * changes timing, not decisions: exactly for hit scoring and copies,
 * within float32 rounding for survival.
 */
export function routedBackend(gpu: ComputeBackend, cpu: ComputeBackend, crossover: Crossover): ComputeBackend {
  const survivalOnGpu = (input: SurvivalInput): boolean => survivalElements(input) >= crossover.survivalElements;
  const scoringOnGpu = (input: HitScoringInput): boolean => input.tier.length >= crossover.hitScoringBlocks;
  return {
    name: gpu.name,
    device: gpu.device,
    software: gpu.software,
    implementation: {
      survival: `${gpu.implementation.survival} from ${crossover.survivalElements} reach elements, else ${cpu.implementation.survival}`,
      hitScoring: `${gpu.implementation.hitScoring} from ${crossover.hitScoringBlocks} blocks, else ${cpu.implementation.hitScoring}`,
      blockCopy: gpu.implementation.blockCopy,
    },
    survival: (input) => (survivalOnGpu(input) ? gpu.survival(input) : cpu.survival(input)),
    survivalSync:
      gpu.survivalSync === null
        ? null
        : (input) => (survivalOnGpu(input) ? gpu.survivalSync!(input) : cpu.survivalSync!(input)),
    hitScoring: (input, k) => (scoringOnGpu(input) ? gpu.hitScoring(input, k) : cpu.hitScoring(input, k)),
    hitScoringSync:
      gpu.hitScoringSync === null
        ? null
        : (input, k) => (scoringOnGpu(input) ? gpu.hitScoringSync!(input, k) : cpu.hitScoringSync!(input, k)),
    // Pools live on one side: the GPU's, where the engine's KV is.
    createDataPlane: (options) => gpu.createDataPlane(options),
    destroy: () => gpu.destroy(),
  };
}

/** A plain description of a selection, for `runtime.info()` and reports. */
export function describeSelection(selection: BackendSelection): Record<string, unknown> {
  const { backend } = selection;
  return {
    name: backend.name,
    requested: selection.requested,
    reason: selection.reason,
    device: backend.device,
    software: backend.software,
    implementation: { ...backend.implementation },
    synchronous: backend.survivalSync !== null && backend.hitScoringSync !== null,
    crossover: selection.crossover,
    candidates: selection.candidates.map((c) => ({ ...c })),
  };
}

/** A selection for a backend object the caller built. */
export function selectionOf(backend: ComputeBackend, reason = 'given by the caller'): BackendSelection {
  return { requested: backend.name, backend, reason, candidates: [{ name: backend.name, available: true, reason: backend.device }], crossover: null };
}
