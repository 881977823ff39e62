/**
 * The survival computation on TensorFlow.js: the same {@link SurvivalOutput}
 * as `ReferenceSurvivalBackend`, in float32, as batched matrix products over
 * every workload of a chunk at once. It runs on CUDA where
 * `@tensorflow/tfjs-node-gpu` is installed and on the tfjs CPU backend
 * otherwise.
 *
 * Per workload, with `T` its transition matrix, `d` its row deficits
 * (`d(a) = 1 - sum_c T[a][c]`, summed in float64 on the host) and a ghost
 * state that only returns to itself, `T⁺ = [[T, d], [0ᵀ, 1]]`:
 *
 *   F_h = T·R_{h-1},              R = F with its diagonal set to 1, R_0 = I  (reach)
 *   [M_h; 1ᵀ] = T⁺·[M'_{h-1}; 1ᵀ], M' = M with its diagonal set to 0, M_0 = 1 (miss, 1 - F_h)
 *   [U_h; 1] = T⁺·[U_{h-1}; 1],   U_0 = 1 - e_END                          (alive)
 *   expectedSteps = sum_{h=0}^{H-1} M_h
 *
 * The reach line is the reference's first-visit recursion
 * `f_h(a) = T[a][b] + sum_{c != b} T[a][c] f_{h-1}(c)` for every target `b`
 * at once: the diagonal entry 1 supplies `T[a][b]` and drops `c = b`. It
 * equals `T + T·F_{h-1} - T ⊙ diag(F_{h-1})ᵀ`, but setting the diagonal is
 * exact where that subtraction would cancel. With `1 = d(a) + sum_c T[a][c]`,
 * the miss line is `1 - f_h = d + sum_{c != b} T[a][c] (1 - f_{h-1})` and the
 * alive line is `1 - (T^h)[a][END] = d + T·(1 - (T^{h-1})[·][END])`; the
 * ghost row of ones makes the products add the `d` term.
 *
 * Precision (float32 against a float64 reference, bar 1e-5 relative): every
 * term of every recursion is non-negative, so no step subtracts nearly equal
 * numbers and relative error grows by a few roundings per step. That is why
 * miss and alive have recursions of their own rather than being taken as
 * `1 - F_h` and `1 - (T^h)[a][END]`: once a session has almost surely ended,
 * those subtractions lose every digit of a probability near 0. Carrying `d`
 * keeps them equal to the reference's `1 - ...` for rows that sum to 1 only
 * within rounding. kernels/wgsl/survival.wgsl does the same.
 */
import { checkInt } from '../../util/check.js';
import { debugWanted } from '../../util/debug.js';
import {
  rowDeficits,
  validateSurvivalInput,
  type SurvivalBackend,
  type SurvivalInput,
  type SurvivalOutput,
} from '../survival.js';
import { TaskQueue } from '../webgpu/device.js';
import type { AsyncSurvivalBackend } from '../webgpu/survival_program.js';

type Tf = typeof import('@tensorflow/tfjs');
type Tensor = import('@tensorflow/tfjs').Tensor;
type Tensor3D = import('@tensorflow/tfjs').Tensor3D;

/** Which package provides tfjs: `'auto'` tries `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs`. */
export type TfjsModuleChoice = 'auto' | 'tfjs' | 'tfjs-node-gpu';

export interface TfjsSurvivalOptions {
  /** Default `'auto'`. */
  module?: TfjsModuleChoice;
  /**
   * About the most tensor bytes one chunk of workloads holds at once
   * (default 256 MiB). A batch past it runs as several chunks of whole
   * workloads; a workload larger than it runs alone.
   */
  maxChunkBytes?: number;
}

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const DEFAULT_CHUNK_BYTES = 256 * 1024 * 1024;
/**
 * Steps whose miss matrices are summed before joining expectedSteps' total:
 * one running float32 total of H - 1 terms drifts by up to about H·2^-24
 * relative (6e-6 measured at H = 256), too close to 1e-5; blocks of 16 keep
 * it near (16 + H/16)·2^-24.
 */
const EXPECTED_BLOCK = 16;

/** One chunk's results, with the ghost state's row still in `alive` and `expectedSteps`. */
interface ChunkTensors {
  /** `[count][H][n][n]`, reach's layout. */
  reach: Tensor;
  /** `[count][H][n + 1]`. */
  alive: Tensor;
  /** `[count][n + 1][n]`. */
  expectedSteps: Tensor;
}

interface Chunk {
  launch(): ChunkTensors;
  /** Copies a chunk's results, read back from {@link ChunkTensors}, into the output. */
  store(data: Record<keyof SurvivalOutput, Float32Array>): void;
}

/**
 * {@link SurvivalBackend} and {@link AsyncSurvivalBackend} on tfjs. Results
 * match the float64 reference to a relative error of about 1e-6 on the CPU
 * backend. `compute` reads results with `dataSync`, which blocks until a GPU
 * finishes; prefer {@link computeAsync} there. Both run the same operations,
 * so on one tf backend they return the same bits.
 */
export class TfjsSurvivalBackend implements SurvivalBackend, AsyncSurvivalBackend {
  readonly name = 'tfjs';
  /** The package that was loaded. */
  readonly module: 'tfjs' | 'tfjs-node-gpu';
  /** The tf backend the operations run on: `'cpu'`, `'tensorflow'`, `'webgl'`, ... */
  readonly tfBackend: string;
  /** True only on a GPU: `'tensorflow'` with a CUDA device, `'webgl'` or `'webgpu'`. */
  readonly isGpu: boolean;
  /** Why `@tensorflow/tfjs-node-gpu` was not used under `'auto'`; null when it was, or was not tried. */
  readonly gpuModuleError: string | null;
  readonly #tf: Tf;
  readonly #maxChunkBytes: number;
  readonly #tasks = new TaskQueue();

  private constructor(tf: Tf, module: 'tfjs' | 'tfjs-node-gpu', gpuModuleError: string | null, maxChunkBytes: number) {
    this.#tf = tf;
    this.module = module;
    this.gpuModuleError = gpuModuleError;
    this.#maxChunkBytes = maxChunkBytes;
    this.tfBackend = tf.getBackend();
    const usingCuda = (tf.backend() as { isUsingGpuDevice?: unknown }).isUsingGpuDevice === true;
    this.isGpu = this.tfBackend === 'webgl' || this.tfBackend === 'webgpu' || (this.tfBackend === 'tensorflow' && usingCuda);
  }

  /**
   * Loads tfjs and waits for its backend. Under `'auto'` a failure to load
   * `@tensorflow/tfjs-node-gpu` (not installed, no libtensorflow, no CUDA
   * libraries) falls back to `@tensorflow/tfjs` with its default backend
   * (`'cpu'` in Node); naming a module makes its failure an error.
   */
  static async create(options: TfjsSurvivalOptions = {}): Promise<TfjsSurvivalBackend> {
    const choice = options.module ?? 'auto';
    if (choice !== 'auto' && choice !== 'tfjs' && choice !== 'tfjs-node-gpu') {
      throw new RangeError(`options.module must be 'auto', 'tfjs' or 'tfjs-node-gpu', got ${String(choice)}`);
    }
    const maxChunkBytes = checkInt(options.maxChunkBytes ?? DEFAULT_CHUNK_BYTES, 'options.maxChunkBytes', 1, Number.MAX_SAFE_INTEGER);
    let gpuModuleError: string | null = null;
    if (choice !== 'tfjs') {
      try {
        const tf = await loadNodeGpu();
        await tf.ready();
        return new TfjsSurvivalBackend(tf, 'tfjs-node-gpu', null, maxChunkBytes);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (choice === 'tfjs-node-gpu') {
          const hint = `install it with \`npm install ${GPU_PACKAGE}\``;
          throw new Error(`the optional peer package ${GPU_PACKAGE} did not load (${message}); ${hint}`, { cause: error });
        }
        gpuModuleError = message;
      }
    }
    let tf: Tf;
    try {
      tf = await import('@tensorflow/tfjs');
    } catch (error) {
      const gpu = gpuModuleError === null ? '' : `; ${GPU_PACKAGE} did not load either: ${gpuModuleError}`;
      throw new Error(
        `the optional peer package @tensorflow/tfjs did not load (${error instanceof Error ? error.message : String(error)}); ` +
          `the tfjs backend (--backend tfjs) needs it: \`npm install @tensorflow/tfjs\`, or \`npm install ${GPU_PACKAGE}\` for TensorFlow on CUDA${gpu}`,
        { cause: error },
      );
    }
    await tf.ready();
    if (!debugWanted('tfjs')) hushFirstWrite(tf);
    return new TfjsSurvivalBackend(tf, 'tfjs', gpuModuleError, maxChunkBytes);
  }

  /** Calls run one at a time, in call order. */
  computeAsync(input: SurvivalInput): Promise<SurvivalOutput> {
    return this.#tasks.run(async () => {
      const { output, chunks } = this.#plan(input);
      for (const chunk of chunks) {
        const tensors = chunk.launch();
        try {
          const [reach, alive, expectedSteps] = await Promise.all([
            tensors.reach.data<'float32'>(),
            tensors.alive.data<'float32'>(),
            tensors.expectedSteps.data<'float32'>(),
          ]);
          chunk.store({ reach, alive, expectedSteps });
        } finally {
          this.#tf.dispose([tensors.reach, tensors.alive, tensors.expectedSteps]);
        }
      }
      return output;
    });
  }

  /** Runs on this thread; blocks until the tf backend has finished. */
  compute(input: SurvivalInput): SurvivalOutput {
    const { output, chunks } = this.#plan(input);
    for (const chunk of chunks) {
      const tensors = chunk.launch();
      try {
        chunk.store({
          reach: tensors.reach.dataSync<'float32'>(),
          alive: tensors.alive.dataSync<'float32'>(),
          expectedSteps: tensors.expectedSteps.dataSync<'float32'>(),
        });
      } finally {
        this.#tf.dispose([tensors.reach, tensors.alive, tensors.expectedSteps]);
      }
    }
    return output;
  }

  /** Validates, allocates the output and splits the batch into chunks of whole workloads. */
  #plan(input: SurvivalInput): { output: SurvivalOutput; chunks: Chunk[] } {
    const { workloads, states: n, horizon, transitions, endState } = validateSurvivalInput(input);
    const output: SurvivalOutput = {
      reach: new Float32Array(workloads * horizon * n * n),
      alive: new Float32Array(workloads * horizon * n),
      expectedSteps: new Float32Array(workloads * n * n),
    };
    const deficit = rowDeficits(transitions, workloads, n);
    // The reach steps and their stacked copy, and about sixteen step-sized tensors.
    const bytesPerWorkload = 4 * (2 * horizon * (n * n + n + 1) + 16 * (n + 1) * (n + 1));
    const perChunk = Math.max(1, Math.floor(this.#maxChunkBytes / bytesPerWorkload));
    const chunks: Chunk[] = [];
    for (let first = 0; first < workloads; first += perChunk) {
      const count = Math.min(perChunk, workloads - first);
      chunks.push({
        launch: () =>
          this.#launch(
            transitions.subarray(first * n * n, (first + count) * n * n),
            deficit.subarray(first * n, (first + count) * n),
            endState.subarray(first, first + count),
            horizon,
          ),
        store: (data) => {
          output.reach.set(data.reach, first * horizon * n * n);
          for (let row = 0; row < count * horizon; row++) {
            output.alive.set(data.alive.subarray(row * (n + 1), row * (n + 1) + n), (first * horizon + row) * n);
          }
          for (let w = 0; w < count; w++) {
            output.expectedSteps.set(data.expectedSteps.subarray(w * (n + 1) * n, w * (n + 1) * n + n * n), (first + w) * n * n);
          }
        },
      });
    }
    return { output, chunks };
  }

  /**
   * Queues one chunk's recursions; the caller disposes the result. Each step
   * is three batched products and two selects, on tensors of equal shape:
   * the constants are laid out in full on the host because broadcasting
   * element-wise operations are an order of magnitude slower on the tfjs CPU
   * backend. A step's intermediates are freed as it ends.
   */
  #launch(transitions: Float32Array, deficit: Float32Array, endState: Int32Array, horizon: number): ChunkTensors {
    const tf = this.#tf;
    const count = endState.length;
    const n = deficit.length / count;
    const host = hostConstants(transitions, deficit, endState, n);
    const square: [number, number, number] = [count, n, n];
    const ghosted: [number, number, number] = [count, n + 1, n];
    return tf.tidy(() => {
      const T = tf.tensor3d(transitions, square, 'float32');
      const extended = tf.tensor3d(host.extended, [count, n + 1, n + 1], 'float32');
      const reachDiagonal = tf.tensor3d(host.reachDiagonal, square, 'bool');
      const ones = tf.ones(square);
      const missDiagonal = tf.tensor3d(host.missDiagonal, ghosted, 'bool');
      const zeros = tf.zeros(ghosted);
      let reachState = tf.tidy(() => tf.where(reachDiagonal, ones, tf.zeros(square)) as Tensor3D);
      let missState = tf.tidy(() => tf.where(missDiagonal, zeros, tf.ones(ghosted)) as Tensor3D);
      let alive = tf.tensor3d(host.aliveStart, [count, n + 1, 1], 'float32');
      let expected: Tensor = tf.ones(ghosted);
      let block: Tensor | null = null;
      const reachSteps: Tensor[] = [];
      const aliveSteps: Tensor[] = [];
      for (let h = 1; h <= horizon; h++) {
        const step = tf.tidy(() => {
          const reach = tf.matMul(T, reachState);
          const miss = tf.matMul(extended, missState);
          return {
            reach,
            miss,
            reachState: tf.where(reachDiagonal, ones, reach) as Tensor3D,
            missState: tf.where(missDiagonal, zeros, miss) as Tensor3D,
            alive: tf.matMul<Tensor3D>(extended, alive),
          };
        });
        tf.dispose([reachState, missState]);
        ({ reachState, missState, alive } = step);
        reachSteps.push(step.reach);
        aliveSteps.push(step.alive);
        if (h === horizon) {
          tf.dispose(step.miss);
          break;
        }
        if (block === null) {
          block = step.miss;
        } else {
          const sum: Tensor = tf.add(block, step.miss);
          tf.dispose([block, step.miss]);
          block = sum;
        }
        if (h % EXPECTED_BLOCK === 0 || h === horizon - 1) {
          const sum: Tensor = tf.add(expected, block);
          tf.dispose([expected, block]);
          expected = sum;
          block = null;
        }
      }
      tf.dispose([T, extended, reachDiagonal, ones, missDiagonal, zeros, reachState, missState]);
      const reach = tf.stack(reachSteps, 1);
      tf.dispose(reachSteps);
      const aliveAll = tf.stack(aliveSteps, 1);
      tf.dispose(aliveSteps);
      return { reach, alive: aliveAll, expectedSteps: expected };
    });
  }
}

/**
 * A chunk's constants: `T⁺` (`extended`), where the reach and miss
 * diagonals are (the ghost row has none), and `[1 - e_END; 1]`.
 */
function hostConstants(
  transitions: Float32Array,
  deficit: Float32Array,
  endState: Int32Array,
  n: number,
): { extended: Float32Array; reachDiagonal: Uint8Array; missDiagonal: Uint8Array; aliveStart: Float32Array } {
  const count = endState.length;
  const extended = new Float32Array(count * (n + 1) * (n + 1));
  const reachDiagonal = new Uint8Array(count * n * n);
  const missDiagonal = new Uint8Array(count * (n + 1) * n);
  const aliveStart = new Float32Array(count * (n + 1)).fill(1);
  for (let w = 0; w < count; w++) {
    for (let a = 0; a < n; a++) {
      const row = (w * (n + 1) + a) * (n + 1);
      extended.set(transitions.subarray((w * n + a) * n, (w * n + a + 1) * n), row);
      extended[row + n] = deficit[w * n + a]!;
      reachDiagonal[(w * n + a) * n + a] = 1;
      missDiagonal[(w * (n + 1) + a) * n + a] = 1;
    }
    extended[(w * (n + 1) + n) * (n + 1) + n] = 1;
    aliveStart[w * (n + 1) + endState[w]!] = 0;
  }
  return { extended, reachDiagonal, missDiagonal, aliveStart };
}

/**
 * Imports `@tensorflow/tfjs-node-gpu` by a specifier the compiler does not
 * resolve: it is optional and usually absent.
 *
 * TensorFlow runs float32 products in TF32 on Ampere and later GPUs by
 * default, which keeps about three decimal digits, far from the 1e-5 this
 * backend promises; `NVIDIA_TF32_OVERRIDE=0` turns that off for the process
 * unless the caller has set it.
 */
async function loadNodeGpu(): Promise<Tf> {
  process.env.NVIDIA_TF32_OVERRIDE ??= '0';
  const specifier: string = GPU_PACKAGE;
  const loaded = (await import(specifier)) as Tf & { default?: Tf };
  return loaded.default ?? loaded;
}

/**
 * tfjs's CPU backend prints a banner (install tfjs-node) on the first tensor
 * it stores under Node. That first store happens here, with production mode
 * on for just that moment, so the banner never prints and the process's
 * own tfjs settings are left as they were. CACHESAGE_DEBUG=tfjs keeps it.
 */
function hushFirstWrite(tf: Tf): void {
  const env = tf.env();
  const wasProd = env.getBool('PROD');
  env.set('PROD', true);
  try {
    tf.tensor1d([0]).dispose();
  } finally {
    env.set('PROD', wasProd);
  }
}
