/**
 * Compute backends behind one interface: the survival tables, hit scoring
 * and block copies the runtime needs, on the CPU (the native core, in
 * cpu/backend.ts), on WebGPU, on CUDA (through the addon) or, for
 * survival, on tfjs. This file is the contract; select.ts chooses.
 *
 * {@link selectBackend} turns a name into a backend, and `'auto'` into the
 * best one this machine has: CUDA, then a hardware WebGPU adapter, then the
 * CPU. It never picks a software adapter (lavapipe, SwiftShader) unless the
 * caller names `'webgpu'`, since such an adapter is slower than the CPU
 * path. Under `'auto'` a GPU backend runs only batches at or past the
 * crossover, the size from which it beat the CPU when measured; smaller
 * batches stay on the CPU, where a dispatch's fixed cost does not apply.
 */
import type { DataPlaneOptions } from '../blocks/data_plane.js';
import type { CopyPlan, TierName } from '../blocks/types.js';
import type { Crossover } from './crossover.js';
import type { HitScoringInput, HitScoringOutput } from './hit_scoring.js';
import type { SurvivalInput, SurvivalOutput } from './survival.js';

export type { Crossover } from './crossover.js';
export type { DataPlaneOptions } from '../blocks/data_plane.js';
export { cpuBackend } from './cpu/backend.js';
export { BACKEND_CHOICES, checkBackendChoice, describeSelection, routedBackend, selectBackend, selectionOf, survivalElements } from './select.js';

/** The backends there are. */
export type BackendName = 'cpu' | 'webgpu' | 'cuda' | 'tfjs';
/** What a caller may ask for: a backend by name, or the best one here. */
export type BackendChoice = 'auto' | BackendName;


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
  /** Survival tables (compute/survival.ts) of a batch of workloads. */
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
