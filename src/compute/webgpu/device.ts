/// <reference types="@webgpu/types" />
/**
 * The WebGPU device behind every WGSL program, through the optional `webgpu`
 * package (Dawn). The adapter and device are acquired once per process and
 * shared; programs cache their pipelines per device, so a lost device is
 * replaced on the next {@link acquireWebGpu} and its pipelines rebuilt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { nativeAddon } from '../../blocks/addon.js';
import { debugWanted } from '../../util/debug.js';

/** `GPUBufferUsage` flags, fixed by the WebGPU specification. */
export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

/** `GPUMapMode.READ`. */
export const MAP_READ = 0x1;

/** What a program needs to know about the device it runs on. */
export interface WebGpuDeviceInfo {
  /** A readable adapter name: description, else device, else vendor and architecture. */
  adapterName: string;
  vendor: string;
  architecture: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP): timings say nothing about a GPU. */
  isSoftware: boolean;
  /** The device's limits (as granted: the adapter's maxima for the limits programs use). */
  limits: Record<string, number>;
}

/** An acquired device and its description. */
export interface WebGpuContext {
  readonly device: GPUDevice;
  readonly info: WebGpuDeviceInfo;
}

/** Thrown when no WebGPU adapter or device can be had; `reason` says why. */
export class WebGpuUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`WebGPU is not available: ${reason}`);
    this.name = 'WebGpuUnavailableError';
  }
}

// Programs size their buffers against these, so the device asks for the
// adapter's maxima rather than the small defaults.
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

const SOFTWARE_PATTERN = /lavapipe|llvmpipe|swiftshader|softpipe|microsoft basic render|\bwarp\b/i;

let pending: Promise<WebGpuContext> | null = null;
let instance: GPU | null = null;

/**
 * The shared device, acquired on first call. Rejects with
 * {@link WebGpuUnavailableError} when the `webgpu` package cannot load, no
 * adapter is found or the device request fails; a failed attempt is not
 * cached, so a later call tries again.
 */
export function acquireWebGpu(): Promise<WebGpuContext> {
  if (pending === null) {
    const attempt = openDevice();
    pending = attempt;
    attempt.catch(() => {
      if (pending === attempt) pending = null;
    });
  }
  return pending;
}

/**
 * Whether WebGPU is usable here: the context, or the reason it is not.
 * Never throws.
 */
export async function probeWebGpu(): Promise<
  { available: true; context: WebGpuContext } | { available: false; reason: string }
> {
  try {
    return { available: true, context: await acquireWebGpu() };
  } catch (error) {
    const reason = error instanceof WebGpuUnavailableError ? error.reason : String(error);
    return { available: false, reason };
  }
}

/** Destroys the shared device, if any; the next {@link acquireWebGpu} opens a new one. */
export async function releaseWebGpu(): Promise<void> {
  const current = pending;
  pending = null;
  if (current === null) return;
  try {
    (await current).device.destroy();
  } catch {
    // Nothing was acquired, so nothing to release.
  }
  instance = null;
}

async function openDevice(): Promise<WebGpuContext> {
  // Dawn's Vulkan loader needs a runtime directory and warns without one.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let module: { create(options: string[]): GPU };
  try {
    module = (await import('webgpu')) as { create(options: string[]): GPU };
  } catch (error) {
    throw new WebGpuUnavailableError(
      `the optional peer package 'webgpu' did not load (${error instanceof Error ? error.message : String(error)}); ` +
        'the WebGPU backend (--backend webgpu) needs it: `npm install webgpu`',
    );
  }
  // Dawn and the Vulkan loader print their probing ("Couldn't load Vulkan",
  // limits "artificially reduced") straight to file descriptor 2; an absent
  // or software adapter is an answer here, not news, so that chatter is
  // muted while the adapter and device are opened. CACHESAGE_DEBUG=webgpu
  // (or =1) lets it through.
  const quiet = !debugWanted('webgpu');
  if (quiet) muteStderr(true);
  let adapter: GPUAdapter | null;
  let device: GPUDevice;
  try {
    const gpu = module.create([]);
    // Dawn keeps the event loop alive for pending GPU work only while its
    // GPU object is reachable; once collected, awaited promises never settle
    // and the process exits under them.
    instance = gpu;
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) {
      throw new WebGpuUnavailableError(
        'no adapter found: Dawn found no Vulkan driver. Install a GPU driver, or Mesa 25 ' +
          '(mesa-vulkan-drivers) for the lavapipe software adapter; CACHESAGE_DEBUG=webgpu shows what Dawn tried',
      );
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of RAISED_LIMITS) {
      const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
      if (typeof value === 'number') requiredLimits[name] = value;
    }
    try {
      device = await adapter.requestDevice({ requiredLimits });
    } catch (error) {
      throw new WebGpuUnavailableError(`the adapter refused a device: ${error instanceof Error ? error.message : String(error)}`);
    }
  } finally {
    if (quiet) muteStderr(false);
  }
  const context: WebGpuContext = { device, info: describeAdapter(adapter.info, device.limits) };
  const opened = pending;
  void device.lost.then(() => {
    if (pending === opened) pending = null;
  });
  return context;
}

function describeAdapter(info: GPUAdapterInfo, supported: GPUSupportedLimits): WebGpuDeviceInfo {
  const vendor = info.vendor ?? '';
  const architecture = info.architecture ?? '';
  const description = info.description ?? '';
  const deviceName = info.device ?? '';
  const adapterName = description || deviceName || [vendor, architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const limits: Record<string, number> = {};
  // GPUSupportedLimits exposes its values as prototype getters, so they are
  // read by walking the prototype rather than by Object.keys.
  for (let proto = supported; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const value = (supported as unknown as Record<string, unknown>)[name];
      if (typeof value === 'number') limits[name] = value;
    }
  }
  const isSoftware =
    SOFTWARE_PATTERN.test(`${description} ${deviceName} ${vendor}`) ||
    architecture.toLowerCase() === 'software' ||
    (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { adapterName, vendor, architecture, isSoftware, limits };
}

/** The numeric value of a device limit. */
export function deviceLimit(device: GPUDevice, name: keyof GPUSupportedLimits): number {
  const value = (device.limits as unknown as Record<string, unknown>)[name];
  if (typeof value !== 'number') throw new Error(`internal: device limit ${String(name)} is not a number`);
  return value;
}

const kernelDirectory = findKernelDirectory();

// Sources run from src/compute/webgpu and compiled code from dist/src/compute/webgpu;
// both reach the package's kernels/wgsl by walking up.
function findKernelDirectory(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(directory, 'kernels', 'wgsl');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(directory);
    if (parent === directory) return join(dirname(fileURLToPath(import.meta.url)), 'kernels', 'wgsl');
    directory = parent;
  }
}

/** The source of `kernels/wgsl/<name>.wgsl`. */
export function loadKernelSource(name: string): string {
  return readFileSync(join(kernelDirectory, `${name}.wgsl`), 'utf8');
}

/** A compute pipeline and the compilation messages of its module. */
export interface CompiledPipeline {
  pipeline: GPUComputePipeline;
  messages: readonly GPUCompilationMessage[];
}

/**
 * Compiles `kernels/wgsl/<kernel>.wgsl` and builds a compute pipeline for
 * `entryPoint` with an automatic layout. Throws with every compiler error,
 * by line, when the module does not compile or the pipeline is invalid.
 */
export async function createKernelPipeline(
  device: GPUDevice,
  kernel: string,
  entryPoint: string,
): Promise<CompiledPipeline> {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: kernel, code: loadKernelSource(kernel) });
  const info = await module.getCompilationInfo();
  const messages = [...info.messages];
  const errors = messages.filter((m) => m.type === 'error');
  let pipeline: GPUComputePipeline | null = null;
  let pipelineError: unknown = null;
  if (errors.length === 0) {
    try {
      pipeline = await device.createComputePipelineAsync({
        label: `${kernel}.${entryPoint}`,
        layout: 'auto',
        compute: { module, entryPoint },
      });
    } catch (error) {
      pipelineError = error;
    }
  }
  const scopeError = await device.popErrorScope();
  if (errors.length > 0) {
    const lines = errors.map((m) => `  ${kernel}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
    throw new Error(`WGSL kernel ${kernel} does not compile:\n${lines}`);
  }
  if (pipeline === null || scopeError !== null) {
    const detail = scopeError?.message ?? (pipelineError instanceof Error ? pipelineError.message : String(pipelineError));
    throw new Error(`WGSL kernel ${kernel}: pipeline for entry point ${entryPoint} is invalid: ${detail}`);
  }
  return { pipeline, messages };
}

/**
 * One lazily built pipeline per device. Kept in a WeakMap so a destroyed
 * device and its pipelines are collected together.
 */
export class PipelineCache {
  readonly #pipelines = new WeakMap<GPUDevice, Promise<CompiledPipeline>>();

  constructor(
    readonly kernel: string,
    readonly entryPoint: string,
  ) {}

  /** The pipeline for `device`, compiled on first use. A failed compile is retried next time. */
  get(device: GPUDevice): Promise<CompiledPipeline> {
    let compiled = this.#pipelines.get(device);
    if (compiled === undefined) {
      compiled = createKernelPipeline(device, this.kernel, this.entryPoint);
      this.#pipelines.set(device, compiled);
      compiled.catch(() => this.#pipelines.delete(device));
    }
    return compiled;
  }
}

/**
 * Runs `body` inside validation and out-of-memory error scopes and throws
 * the first error either caught, so a bad dispatch fails its caller instead
 * of only printing a warning.
 */
export async function withErrorScopes<T>(device: GPUDevice, what: string, body: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await body() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  if (!outcome.ok) throw outcome.error;
  if (validation !== null) throw new Error(`${what}: WebGPU validation error: ${validation.message}`);
  if (memory !== null) throw new Error(`${what}: WebGPU out-of-memory error: ${memory.message}`);
  return outcome.value;
}

/**
 * Workgroup counts for `groups` one-dimensional workgroups, folded into a
 * second dimension past the per-dimension limit. Kernels rebuild the linear
 * index as `id.y * countX + id.x` and skip ids at or past `groups`.
 */
export function foldWorkgroups(device: GPUDevice, groups: number): { x: number; y: number } {
  const perDimension = deviceLimit(device, 'maxComputeWorkgroupsPerDimension');
  if (groups <= perDimension) return { x: Math.max(groups, 1), y: 1 };
  const y = Math.ceil(groups / perDimension);
  if (y > perDimension) throw new RangeError(`${groups} workgroups exceed the device's ${perDimension}^2 grid`);
  return { x: Math.ceil(groups / y), y };
}

/**
 * A GPU buffer kept across calls and replaced by a larger one only when a
 * call needs more. Fresh buffers are slow on the first touch of their
 * memory (lazy clearing, page faults in software drivers), so programs
 * reuse theirs. Replacing one that queued work still uses is safe: WebGPU
 * frees a destroyed buffer only after that work completes.
 */
export class ReusableBuffer {
  #buffer: GPUBuffer | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly label: string,
    readonly usage: number,
  ) {}

  /** A buffer of at least `bytes` bytes (never empty, a multiple of 4). */
  get(bytes: number): GPUBuffer {
    const size = Math.max(alignTo4(bytes), 16);
    if (this.#buffer === null || this.#buffer.size < size) {
      this.#buffer?.destroy();
      this.#buffer = this.device.createBuffer({ label: this.label, size, usage: this.usage });
    }
    return this.#buffer;
  }

  destroy(): void {
    this.#buffer?.destroy();
    this.#buffer = null;
  }
}

/**
 * Copies `target.byteLength` bytes from the start of a mappable buffer into
 * `target` and unmaps it, ready for reuse.
 */
export async function readInto(staging: GPUBuffer, target: ArrayBufferView): Promise<void> {
  const length = target.byteLength;
  if (length === 0) return;
  await staging.mapAsync(MAP_READ, 0, length);
  new Uint8Array(target.buffer, target.byteOffset, length).set(new Uint8Array(staging.getMappedRange(0, length)));
  staging.unmap();
}

/**
 * Runs async tasks one after another. Programs share reusable buffers
 * between calls, so a call must not start before the previous finishes.
 */
export class TaskQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** Bytes rounded up to a multiple of 4, as buffer copies and writes require. */
export function alignTo4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/** Points file descriptor 2 at /dev/null (on) or back (off); calls nest. */
function muteStderr(on: boolean): void {
  nativeAddon().muteStderr(on);
}
