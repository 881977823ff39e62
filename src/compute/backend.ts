/**
 * Compute backends behind one interface: the survival tables, hit scoring
 * and block copies the runtime needs, on the CPU (the native core), on
 * WebGPU, on CUDA (through the addon) or, for survival, on tfjs.
 *
 * {@link selectBackend} turns a name into a backend, and `'auto'` into the
 * best one this machine has: CUDA, then a hardware WebGPU adapter, then the
 * CPU. It never picks a software adapter (lavapipe, SwiftShader) unless the
 * caller names `'webgpu'`, since such an adapter is slower than the CPU
 * path. Under `'auto'` a GPU backend runs only batches at or past the
 * crossover, the size from which it beat the CPU when measured; smaller
 * batches stay on the CPU, where a dispatch's fixed cost does not apply.
 */
import { CpuDataPlane, type DataPlaneOptions } from '../blocks/data_plane.js';
import type { CopyPlan, TierName } from '../blocks/types.js';
import type { SurvivalInput, SurvivalOutput } from './survival.js';
import { NativeSurvivalBackend } from './cpu/survival.js';
import { nativeHitScoring } from './cpu/hit_scoring.js';
import { measureCrossover, type Crossover } from './crossover.js';
import type { HitScoringInput, HitScoringOutput } from './hit_scoring.js';

export type { Crossover } from './crossover.js';
export type { DataPlaneOptions } from '../blocks/data_plane.js';

/** The backends there are. */
export type BackendName = 'cpu' | 'webgpu' | 'cuda' | 'tfjs';
/** What a caller may ask for: a backend by name, or the best one here. */
export type BackendChoice = 'auto' | BackendName;
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'cpu', 'webgpu', 'cuda', 'tfjs'];


/**
 * Device and host KV pools and the copies between them, on one backend.
 * Plans run in the order given; each call sees the effect of those before.
 */
export interface DataPlane {
  /** What runs the copies, for reports. */
  readonly implementation: string;
  readonly bytesPerBlock: number;
  readonly deviceBlocks: number;
  readonly hostBlocks: number;
  /** Runs a copy plan after everything queued before it; resolves when its copies are done. */
  run(plan: CopyPlan): Promise<void>;
  /** Runs a plan now, on this thread: only where copies can complete synchronously (CPU), else null. */
  readonly runSync: ((plan: CopyPlan) => void) | null;
  /**
   * Host -> device copies that overlap with other work (a separate stream
   * on CUDA, a worker thread on the CPU, a queue submission on WebGPU);
   * resolves when the blocks are on the device.
   */
  prefetch(plan: CopyPlan): Promise<void>;
  /** Writes one block's bytes (exactly bytesPerBlock), after the work queued so far. */
  write(tier: TierName, slot: number, bytes: Uint8Array): Promise<void>;
  /** Reads a copy of one block's bytes, after the work queued so far. */
  read(tier: TierName, slot: number): Promise<Uint8Array>;
  /** Frees the pools. */
  destroy(): void;
}

/** One backend's operations. `*Sync` members are null where results only arrive asynchronously. */
export interface ComputeBackend {
  readonly name: BackendName;
  /** The device that runs it: "native CPU", an adapter name, a CUDA device. */
  readonly device: string;
  /** A CPU emulating a GPU (lavapipe, SwiftShader): its timings say nothing about a GPU. */
  readonly software: boolean;
  /** What runs each operation (a backend may lend one from the CPU). */
  readonly implementation: { survival: string; hitScoring: string; blockCopy: string };
  /** Survival tables (policies/cachesage/survival.ts) of a batch of workloads. */
  survival(input: SurvivalInput): Promise<SurvivalOutput>;
  readonly survivalSync: ((input: SurvivalInput) => SurvivalOutput) | null;
  /** Every block's retention score and the k lowest-ordered evictable device leaves. */
  hitScoring(input: HitScoringInput, k: number): Promise<HitScoringOutput>;
  readonly hitScoringSync: ((input: HitScoringInput, k: number) => HitScoringOutput) | null;
  /** Pools and copies on this backend. */
  createDataPlane(options: DataPlaneOptions): Promise<DataPlane>;
  /** Frees what the backend holds (its device stays shared). */
  destroy(): void;
}

/** Why a backend was or was not usable. */
export interface BackendCandidate {
  name: BackendName;
  available: boolean;
  reason: string;
}

/** What {@link selectBackend} chose and why. */
export interface BackendSelection {
  requested: BackendChoice;
  backend: ComputeBackend;
  reason: string;
  /** Every backend looked at, in the order looked at. */
  candidates: BackendCandidate[];
  /** Under 'auto' with a GPU backend: the sizes from which it runs on the GPU. */
  crossover: Crossover | null;
}

export interface SelectOptions {
  /**
   * Under 'auto': the crossover to route by, instead of measuring it
   * (missing fields are measured). Infinity keeps an operation on the CPU.
   */
  crossover?: Partial<Crossover>;
  /** Under 'auto': measure the crossover when a GPU backend is chosen (default true; false runs everything on the GPU). */
  calibrate?: boolean;
}

// ------------------------------------------------------------ CPU

let cpuInstance: ComputeBackend | null = null;

/** The CPU backend: the native core's survival, hit scoring and data plane. Throws with a build hint when the addon is missing. */
export function cpuBackend(): ComputeBackend {
  if (cpuInstance !== null) return cpuInstance;
  const survival = new NativeSurvivalBackend();
  const survivalSync = (input: SurvivalInput): SurvivalOutput => survival.compute(input);
  const hitScoringSync = (input: HitScoringInput, k: number): HitScoringOutput => nativeHitScoring(input, k);
  cpuInstance = {
    name: 'cpu',
    device: 'native CPU',
    software: false,
    implementation: { survival: 'native C++', hitScoring: 'native C++', blockCopy: 'native C++ (CpuDataPlane)' },
    survival: async (input) => survivalSync(input),
    survivalSync,
    hitScoring: async (input, k) => hitScoringSync(input, k),
    hitScoringSync,
    createDataPlane: async (options) => cpuDataPlane(options),
    destroy: () => undefined,
  };
  return cpuInstance;
}

function cpuDataPlane(options: DataPlaneOptions): DataPlane {
  // CpuDataPlane checks every plan against its pools before any copy.
  const plane = new CpuDataPlane(options);
  return {
    implementation: 'native C++ (CpuDataPlane)',
    bytesPerBlock: plane.bytesPerBlock,
    deviceBlocks: plane.deviceBlocks,
    hostBlocks: plane.hostBlocks,
    run: (plan) => plane.executeAsync(plan),
    runSync: (plan) => plane.execute(plan),
    prefetch: (plan) => plane.executeAsync(plan),
    // Queued behind pending copies so a write never races one.
    write: (tier, slot, bytes) => plane.executeAsync(EMPTY_PLAN).then(() => plane.write(tier, slot, bytes)),
    read: (tier, slot) => plane.executeAsync(EMPTY_PLAN).then(() => plane.read(tier, slot)),
    destroy: () => undefined,
  };
}

const EMPTY_PLAN: CopyPlan = {
  srcTier: new Uint8Array(0),
  srcSlot: new Int32Array(0),
  dstTier: new Uint8Array(0),
  dstSlot: new Int32Array(0),
  stageStarts: new Int32Array(0),
};

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
