/**
 * WebGPU hit scoring (kernels/wgsl/hit_scoring.wgsl): the retention score
 * of every block id and the first k victims in the block manager's
 * eviction order, from the manager's metadata arrays, in one submission.
 */
import { checkInt } from '../../util/check.js';
import { checkHitScoringInput, type HitScoringInput, type HitScoringOutput } from '../hit_scoring.js';
import {
  BufferUsage,
  PipelineCache,
  acquireWebGpu,
  alignTo4,
  deviceLimit,
  foldWorkgroups,
  readInto,
  ReusableBuffer,
  TaskQueue,
  withErrorScopes,
  type WebGpuContext,
} from './device.js';

type Kernel =
  | 'score_blocks'
  | 'radix_histogram'
  | 'radix_select'
  | 'fill_candidates'
  | 'compact_selected'
  | 'sort_global'
  | 'sort_local';

const KERNELS: readonly Kernel[] = [
  'score_blocks', 'radix_histogram', 'radix_select', 'fill_candidates', 'compact_selected', 'sort_global', 'sort_local',
];
const pipelineCaches = new Map(KERNELS.map((k) => [k, new PipelineCache('hit_scoring', k)]));

/** The bindings each entry point uses: its automatic layout has exactly these. */
const BINDINGS: Record<Kernel, readonly Binding[]> = {
  score_blocks: ['metadata', 'scoreBits', 'keys', 'params'],
  radix_histogram: ['keys', 'params', 'selection'],
  radix_select: ['params', 'selection'],
  fill_candidates: ['params', 'candidates'],
  compact_selected: ['keys', 'params', 'selection', 'candidates'],
  sort_global: ['params', 'candidates'],
  sort_local: ['params', 'candidates'],
};
const BINDING_INDEX = { metadata: 0, scoreBits: 1, keys: 2, params: 3, selection: 4, candidates: 5 } as const;
type Binding = keyof typeof BINDING_INDEX;

// Must match WORKGROUP and TILE in hit_scoring.wgsl.
const WORKGROUP = 256;
const TILE = 512;
const PARAMS_STRIDE = 256;
const PARAMS_BYTES = 64;
const KEY_BYTES = 16;
const KEY_DIGITS = 16;
// The Selection struct: prefix, mask, remaining, done, selected, 256 bins.
const SELECTION_BYTES = 1072;
const SELECTION_REMAINING_WORD = 8;
// Streaming passes give each invocation at least this many keys, up to
// MAX_STREAM_GROUPS workgroups: fewer workgroups flush fewer histograms.
const KEYS_PER_INVOCATION = 16;
const MAX_STREAM_GROUPS = 1024;
const NOT_EVICTABLE_ID = 0xffffffff;

/** Field order of the Params struct in hit_scoring.wgsl. */
const enum P {
  BlockCount, ClassCount, TierOffset, CommittedOffset, RefCountOffset, DeviceChildrenOffset, LastAccessOffset,
  ScoreOffset, ScoreClassOffset, ClassScoreOffset, Digit, CandidateCount, Stride, Flip, LocalMode,
}

interface Pass {
  kernel: Kernel;
  groups: number;
  fields: Partial<Record<P, number>>;
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Bitonic passes that sort `count` (a power of two) candidate keys. */
function sortPasses(count: number): Pass[] {
  const passes: Pass[] = [];
  if (count < 2) return passes;
  const global = (stride: number, flip: boolean): void => {
    passes.push({ kernel: 'sort_global', groups: Math.ceil(count / 2 / WORKGROUP), fields: { [P.Stride]: stride, [P.Flip]: flip ? 1 : 0 } });
  };
  const local = (mode: 0 | 1): void => {
    passes.push({ kernel: 'sort_local', groups: Math.ceil(count / TILE), fields: { [P.LocalMode]: mode } });
  };
  local(0);
  for (let size = 2 * TILE; size <= count; size *= 2) {
    global(size / 2, true);
    for (let stride = size / 4; stride >= TILE; stride /= 2) global(stride, false);
    local(1);
  }
  return passes;
}

/** Every pass of one call: scoring, then (when k > 0) radix select, compaction and sort. */
function scoringPasses(blocks: number, selected: number, candidates: number): Pass[] {
  const passes: Pass[] = [{ kernel: 'score_blocks', groups: Math.ceil(blocks / WORKGROUP), fields: {} }];
  if (selected === 0) return passes;
  const streamGroups = Math.min(Math.max(Math.ceil(blocks / (WORKGROUP * KEYS_PER_INVOCATION)), 1), MAX_STREAM_GROUPS);
  for (let digit = 0; digit < KEY_DIGITS; digit++) {
    passes.push({ kernel: 'radix_histogram', groups: streamGroups, fields: { [P.Digit]: digit } });
    passes.push({ kernel: 'radix_select', groups: 1, fields: { [P.Digit]: digit } });
  }
  passes.push({ kernel: 'fill_candidates', groups: Math.ceil(candidates / WORKGROUP), fields: {} });
  passes.push({ kernel: 'compact_selected', groups: streamGroups, fields: {} });
  passes.push(...sortPasses(candidates));
  return passes;
}

/**
 * Scores blocks and selects victims on a WebGPU device. The result matches
 * `referenceHitScoring` exactly: scores bit for bit, victims id for id.
 */
export class WebGpuHitScoringProgram {
  readonly context: WebGpuContext;
  readonly #pipelines: Map<Kernel, GPUComputePipeline>;
  readonly #tasks = new TaskQueue();
  readonly #metadata: ReusableBuffer;
  readonly #scoreBits: ReusableBuffer;
  readonly #keys: ReusableBuffer;
  readonly #params: ReusableBuffer;
  readonly #scoreStaging: ReusableBuffer;
  readonly #victimStaging: ReusableBuffer;
  readonly #selection: ReusableBuffer;
  readonly #candidates: ReusableBuffer;

  private constructor(context: WebGpuContext, pipelines: Map<Kernel, GPUComputePipeline>) {
    this.context = context;
    this.#pipelines = pipelines;
    const { device } = context;
    const storage = BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC;
    const staging = BufferUsage.MAP_READ | BufferUsage.COPY_DST;
    this.#metadata = new ReusableBuffer(device, 'block metadata', storage);
    this.#scoreBits = new ReusableBuffer(device, 'scores', storage);
    this.#keys = new ReusableBuffer(device, 'victim keys', storage);
    this.#params = new ReusableBuffer(device, 'scoring passes', BufferUsage.UNIFORM | BufferUsage.COPY_DST);
    this.#scoreStaging = new ReusableBuffer(device, 'scores readback', staging);
    this.#victimStaging = new ReusableBuffer(device, 'victims readback', staging);
    this.#selection = new ReusableBuffer(device, 'radix selection', storage);
    this.#candidates = new ReusableBuffer(device, 'victim candidates', storage);
  }

  /** Compiles the kernels on `context` (default: the shared device) unless already compiled there. */
  static async create(context?: WebGpuContext): Promise<WebGpuHitScoringProgram> {
    const ctx = context ?? (await acquireWebGpu());
    const compiled = await Promise.all(KERNELS.map((k) => pipelineCaches.get(k)!.get(ctx.device)));
    return new WebGpuHitScoringProgram(ctx, new Map(KERNELS.map((k, i) => [k, compiled[i]!.pipeline])));
  }

  /**
   * The score of every block id and up to `k` victims, first victim first.
   * Calls run one at a time, in call order.
   *
   * @throws TypeError / RangeError for malformed input (see
   *   `checkHitScoringInput`) or more blocks than the device can bind.
   */
  computeAsync(input: HitScoringInput, k: number): Promise<HitScoringOutput> {
    return this.#tasks.run(() => this.#compute(input, k));
  }

  /** Frees the buffers kept between calls; pipelines stay cached with the device. */
  destroy(): void {
    for (const buffer of [
      this.#metadata, this.#scoreBits, this.#keys, this.#params, this.#scoreStaging, this.#victimStaging,
      this.#selection, this.#candidates,
    ]) {
      buffer.destroy();
    }
  }

  async #compute(input: HitScoringInput, k: number): Promise<HitScoringOutput> {
    const blocks = checkHitScoringInput(input, 'computeAsync');
    checkInt(k, 'computeAsync: k', 0, 0x7fffffff);
    if (blocks === 0) return { scores: new Float32Array(0), victims: new Int32Array(0) };
    const { device } = this.context;

    const regions: Array<[P, ArrayBufferView]> = [
      [P.TierOffset, input.tier],
      [P.CommittedOffset, input.committed],
      [P.RefCountOffset, input.refCount],
      [P.DeviceChildrenOffset, input.deviceChildren],
      [P.LastAccessOffset, input.lastAccess],
      [P.ScoreOffset, input.score],
      [P.ScoreClassOffset, input.scoreClass],
      [P.ClassScoreOffset, input.classScores],
    ];
    const common: Partial<Record<P, number>> = {};
    let metadataBytes = 0;
    for (const [field, view] of regions) {
      common[field] = metadataBytes / 4;
      metadataBytes += alignTo4(view.byteLength);
    }
    const selected = Math.min(k, blocks);
    const candidateCount = nextPowerOfTwo(Math.max(selected, 1));
    common[P.BlockCount] = blocks;
    common[P.ClassCount] = input.classScores.length;
    common[P.CandidateCount] = candidateCount;

    const limit = Math.min(deviceLimit(device, 'maxStorageBufferBindingSize'), deviceLimit(device, 'maxBufferSize'));
    const largest = Math.max(metadataBytes, blocks * KEY_BYTES);
    if (largest > limit) {
      throw new RangeError(`computeAsync: ${blocks} blocks need ${largest} bytes in one buffer; this device binds at most ${limit}`);
    }

    const passes = scoringPasses(blocks, selected, candidateCount);
    const params = new Uint32Array((passes.length * PARAMS_STRIDE) / 4);
    passes.forEach((pass, i) => {
      const slot = params.subarray((i * PARAMS_STRIDE) / 4, (i * PARAMS_STRIDE + PARAMS_BYTES) / 4);
      for (const [field, value] of Object.entries({ ...common, ...pass.fields })) slot[Number(field)] = value!;
    });
    const selectionState = new Uint32Array(SELECTION_BYTES / 4);
    selectionState[SELECTION_REMAINING_WORD] = selected;

    const resources: Record<Binding, GPUBufferBinding> = {
      metadata: { buffer: this.#metadata.get(metadataBytes), size: Math.max(metadataBytes, 4) },
      scoreBits: { buffer: this.#scoreBits.get(blocks * 4), size: blocks * 4 },
      keys: { buffer: this.#keys.get(blocks * KEY_BYTES), size: blocks * KEY_BYTES },
      params: { buffer: this.#params.get(params.byteLength), size: PARAMS_BYTES },
      selection: { buffer: this.#selection.get(SELECTION_BYTES), size: SELECTION_BYTES },
      candidates: { buffer: this.#candidates.get(candidateCount * KEY_BYTES), size: candidateCount * KEY_BYTES },
    };
    for (const [field, view] of regions) writePadded(device, resources.metadata.buffer, common[field]! * 4, view);
    device.queue.writeBuffer(resources.params.buffer, 0, params);
    device.queue.writeBuffer(resources.selection.buffer, 0, selectionState);
    const scoreStaging = this.#scoreStaging.get(blocks * 4);
    const victimStaging = this.#victimStaging.get(selected * KEY_BYTES);

    await withErrorScopes(device, 'hit scoring', () => {
      const encoder = device.createCommandEncoder({ label: 'hit scoring' });
      const pass = encoder.beginComputePass();
      passes.forEach((p, i) => {
        const pipeline = this.#pipelines.get(p.kernel)!;
        const entries = BINDINGS[p.kernel].map((name) => ({
          binding: BINDING_INDEX[name],
          resource: name === 'params' ? { ...resources.params, offset: i * PARAMS_STRIDE } : resources[name],
        }));
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
        const grid = foldWorkgroups(device, p.groups);
        pass.dispatchWorkgroups(grid.x, grid.y);
      });
      pass.end();
      encoder.copyBufferToBuffer(resources.scoreBits.buffer, 0, scoreStaging, 0, blocks * 4);
      if (selected > 0) encoder.copyBufferToBuffer(resources.candidates.buffer, 0, victimStaging, 0, selected * KEY_BYTES);
      device.queue.submit([encoder.finish()]);
    });

    const scores = new Float32Array(blocks);
    const words = new Uint32Array(selected * 4);
    await Promise.all([readInto(scoreStaging, scores), readInto(victimStaging, words)]);
    const victims: number[] = [];
    // Non-evictable keys sort last, so the victims are the leading real ids.
    for (let i = 0; i < selected && words[4 * i + 3] !== NOT_EVICTABLE_ID; i++) victims.push(words[4 * i + 3]!);
    return { scores, victims: Int32Array.from(victims) };
  }
}

// writeBuffer moves whole words; a byte array's last partial word is padded.
function writePadded(device: GPUDevice, buffer: GPUBuffer, offset: number, view: ArrayBufferView): void {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const whole = bytes.length - (bytes.length % 4);
  if (whole > 0) device.queue.writeBuffer(buffer, offset, bytes, 0, whole);
  if (whole < bytes.length) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    device.queue.writeBuffer(buffer, offset + whole, tail);
  }
}
