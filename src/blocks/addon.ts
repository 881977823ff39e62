/**
 * Loads the N-API addon built by cmake-js. The addon lives at
 * build/Release/cachesage_native.node under the package root; this module
 * runs from src/ (tests) or dist/src/ (the built package), so the root is
 * found by walking up to package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The raw native classes; use the typed wrappers instead. */
export interface NativeAddon {
  NativeBlockManager: new (
    blockSize: number,
    bytesPerBlock: number,
    deviceBlocks: number,
    hostBlocks: number,
    maxClasses: number,
  ) => NativeBlockManagerHandle;
  NativeCpuDataPlane: new (bytesPerBlock: number, deviceBlocks: number, hostBlocks: number) => NativeCpuDataPlaneHandle;
  hashTokenBlocks(tokens: Uint32Array, blockSize: number, parentHash: bigint): BigUint64Array;
  computeSurvival(
    workloads: number,
    states: number,
    horizon: number,
    transitions: Float32Array,
    endState: Int32Array,
  ): { reach: Float32Array; alive: Float32Array; expectedSteps: Float32Array };
  /** Hit scoring on the CPU (native/core/hit_scoring.h); `k` is at most the block count. */
  hitScoring(...args: HitScoringArguments): { scores: Float32Array; victims: Int32Array };
  /** Points file descriptor 2 at /dev/null (true) or back (false); nests; returns the depth. */
  muteStderr(on: boolean): number;
  /** Whether CUDA is compiled in and usable; absent from addons built before CUDA support. */
  cudaInfo?(): NativeCudaInfo;
  /** Present only in addons built with CUDA; constructing throws where no device is usable. */
  NativeCudaSurvival?: new () => NativeCudaSurvivalHandle;
  NativeCudaHitScorer?: new () => NativeCudaHitScorerHandle;
  NativeCudaDataPlane?: new (bytesPerBlock: number, deviceBlocks: number, hostBlocks: number) => NativeCudaDataPlaneHandle;
}

export interface NativeCudaInfo {
  built: boolean;
  available: boolean;
  reason: string;
  device: string;
}

type SurvivalArrays = { reach: Float32Array; alive: Float32Array; expectedSteps: Float32Array };

export interface NativeCudaSurvivalHandle {
  compute(workloads: number, states: number, horizon: number, transitions: Float32Array, endState: Int32Array): SurvivalArrays;
  computeAsync(
    workloads: number,
    states: number,
    horizon: number,
    transitions: Float32Array,
    endState: Int32Array,
  ): Promise<SurvivalArrays>;
  maxStates(): number;
  destroy(): void;
}

/** The metadata arrays of `HitScoringInput` in order, then `k`. */
type HitScoringArguments = [
  tier: Uint8Array,
  committed: Uint8Array,
  refCount: Int32Array,
  deviceChildren: Int32Array,
  lastAccess: Float64Array,
  score: Float32Array,
  scoreClass: Int32Array,
  classScores: Float32Array,
  k: number,
];

export interface NativeCudaHitScorerHandle {
  selectVictims(...args: HitScoringArguments): { scores: Float32Array; victims: Int32Array };
  selectVictimsAsync(...args: HitScoringArguments): Promise<{ scores: Float32Array; victims: Int32Array }>;
  destroy(): void;
}

export interface NativeCudaDataPlaneHandle {
  /** An empty `stageStarts` lets the plane split the plan into stages itself. */
  execute(srcTier: Uint8Array, srcSlot: Int32Array, dstTier: Uint8Array, dstSlot: Int32Array, stageStarts: Int32Array): void;
  prefetch(hostSlots: Int32Array, deviceSlots: Int32Array): void;
  waitForPrefetch(): void;
  prefetchComplete(): boolean;
  synchronize(): void;
  write(tier: number, slot: number, bytes: Uint8Array): void;
  read(tier: number, slot: number): Uint8Array;
  destroy(): void;
}

export interface NativeBlockManagerHandle {
  /** [deviceBlocks, hostBlocks, blockIds]. */
  lookup(hashes: BigUint64Array): [number, number, Int32Array];
  /** [cachedDeviceTokens, loadedBlocks, blockIds, blockTable], or null when the device cannot hold the request now. */
  admit(requestId: number, hashes: BigUint64Array, numTokens: number, workload: number, agent: number, session: number):
    | [number, number, Int32Array, Int32Array]
    | null;
  append(requestId: number, numTokens: number, hashes: BigUint64Array): Int32Array | null;
  commit(requestId: number, numBlocks: number): Int32Array;
  release(requestId: number): void;
  hasRequest(requestId: number): boolean;
  requestBlocks(requestId: number): Int32Array;
  numRequests(): number;
  setScores(ids: Int32Array, scores: Float32Array): void;
  setAllScores(scores: Float32Array): void;
  setScoreClasses(ids: Int32Array, classes: Int32Array): void;
  setClassScores(classes: Int32Array, scores: Float32Array): void;
  evict(tier: number, count: number): number;
  demote(ids: Int32Array): number;
  drop(ids: Int32Array): number;
  load(ids: Int32Array): number;
  usedBlocks(tier: number): number;
  evictableBlocks(tier: number): number;
  pinnedDeviceBlocks(): number;
  /** Undefined when no copy is pending. */
  /** [srcTier, srcSlot, dstTier, dstSlot, stageStarts], views of one buffer; undefined when no copy is pending. */
  takeCopyPlan(): [Uint8Array, Int32Array, Uint8Array, Int32Array, Int32Array] | undefined;
  /** [kind, block, hash, tier], views of one buffer; undefined when no event is pending. */
  takeEvents(): [Uint8Array, Int32Array, BigUint64Array, Uint8Array] | undefined;
  checkInvariants(): string;
  clock(): number;
  metadata(): Record<string, ArrayBufferView>;
}

export interface NativeCpuDataPlaneHandle {
  execute(srcTier: Uint8Array, srcSlot: Int32Array, dstTier: Uint8Array, dstSlot: Int32Array): void;
  executeAsync(srcTier: Uint8Array, srcSlot: Int32Array, dstTier: Uint8Array, dstSlot: Int32Array): Promise<void>;
  write(tier: number, slot: number, bytes: Uint8Array): void;
  read(tier: number, slot: number): Uint8Array;
}

/** The package root: the nearest directory above this file with package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'cachesage') {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cachesage: cannot find the package root (package.json) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

let addon: NativeAddon | undefined;

/** The addon, loaded once. Throws with a build hint when it is missing. */
export function nativeAddon(): NativeAddon {
  if (addon) return addon;
  const path = join(packageRoot(), 'build', 'Release', 'cachesage_native.node');
  if (!existsSync(path)) {
    throw new Error(`cachesage: native addon not found at ${path}; build it with \`npm run build:native\``);
  }
  addon = createRequire(import.meta.url)(path) as NativeAddon;
  return addon;
}
