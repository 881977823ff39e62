/**
 * The data plane an engine backend serves from: where the KV pool lives
 * and how copy plans move blocks between it and the host tier.
 *
 * - cpu: a CpuDataPlane; copies run at once, on the calling thread.
 * - cuda: a CudaDataPlane (device pool in device memory, host pool pinned);
 *   copies are queued on its stream and waited for, because the engine's
 *   kernels run on a stream of their own.
 * - webgpu: a WebGpuBlockCopyProgram (both pools are buffers on the
 *   device); each plan is awaited.
 */
import { CpuDataPlane } from '../blocks/data_plane.js';
import type { CopyPlan } from '../blocks/types.js';
import { CudaDataPlane } from '../compute/cuda/cuda.js';
import { WebGpuBlockCopyProgram } from '../compute/webgpu/block_copy_program.js';
import type { EngineBackend, EngineOptions } from './engine.js';

export const ENGINE_BACKENDS: readonly EngineBackend[] = ['cpu', 'cuda', 'webgpu'];

export interface EnginePlane {
  readonly backend: EngineBackend;
  /** What `Engine` takes as its pool. */
  readonly pool: EngineOptions['pool'];
  /** Runs a plan; once it resolves the engine may read the copied blocks. An empty plan costs nothing. */
  run(plan: CopyPlan): void | Promise<void>;
  /** Frees device memory (CUDA, WebGPU); nothing for the CPU plane, which the garbage collector frees. */
  destroy(): void;
}

export interface PlaneSizes {
  bytesPerBlock: number;
  deviceBlocks: number;
  hostBlocks: number;
}

/**
 * The plane for a backend. Throws CudaUnavailableError or
 * WebGpuUnavailableError (with the reason) where that device is missing.
 */
export async function createEnginePlane(backend: EngineBackend, sizes: PlaneSizes): Promise<EnginePlane> {
  switch (backend) {
    case 'cpu': {
      const plane = new CpuDataPlane(sizes);
      return { backend, pool: plane, run: (plan) => void (plan.srcSlot.length > 0 && plane.execute(plan)), destroy: () => undefined };
    }
    case 'cuda': {
      const plane = new CudaDataPlane(sizes);
      return {
        backend,
        pool: plane,
        run: (plan) => {
          if (plan.srcSlot.length === 0) return;
          plane.execute(plan);
          plane.synchronize();
        },
        destroy: () => plane.destroy(),
      };
    }
    case 'webgpu': {
      const program = await WebGpuBlockCopyProgram.create(sizes);
      return { backend, pool: program, run: (plan) => (plan.srcSlot.length > 0 ? program.execute(plan) : undefined), destroy: () => program.destroy() };
    }
    default:
      throw new RangeError(`engine backend must be one of ${ENGINE_BACKENDS.join(', ')}; got ${JSON.stringify(backend)}`);
  }
}
