/**
 * Loads the N-API addon. The first of these that exists is loaded, and a
 * file that exists but does not load is an error, never a reason to try the
 * next:
 *
 * 1. `CACHESAGE_ADDON=/abs/path/to/file.node`: an explicit override (a
 *    sanitizer or debug build, say); when set it is the only candidate.
 * 2. `build/Release` (or `build/Debug`) under the package root: the addon
 *    cmake-js built on this machine. It goes before the prebuild because it
 *    exists only where someone built it here: a developer whose sources are
 *    newer than any prebuild, or the install script, which builds only when
 *    the prebuild did not load or lacked something asked for (CUDA).
 * 3. `prebuilds/<platform>-<arch>/*.node`: the binary shipped in the
 *    tarball, chosen by node-gyp-build's tag matching (libc, N-API).
 *
 * Steps 2 and 3 are node-gyp-build's own resolution order. This module runs
 * from src/ (tests) or dist/src/ (the built package), so the root is found
 * by walking up to package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
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
  xxh64(bytes: Uint8Array, seed: bigint): bigint;
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
  /**
   * Binds the arrays results are written into (see BlockManager): `ints`
   * for block ids and counts, `events` for drained events (14 bytes each:
   * hashes, then block ids, kinds and tiers, each capacity long).
   */
  bindScratch(ints: Int32Array, events: Uint8Array): void;
  /** Writes the last result that did not fit into the scratch bound since; returns its length. */
  takeOverflow(): number;
  /** Writes [deviceBlocks, hostBlocks, ...blockIds]; returns the length written (negative: overflow). */
  lookup(hashes: BigUint64Array): number;
  /**
   * Writes [cachedDeviceTokens, loadedBlocks, ...blockIds, ...blockTable];
   * returns the length written (negative: overflow), or null when the
   * device cannot hold the request now.
   */
  admit(requestId: number, hashes: BigUint64Array, numTokens: number, workload: number, agent: number, session: number): number | null;
  /** Writes the new block ids; returns their count (negative: overflow), or null when the device cannot hold them now. */
  append(requestId: number, numTokens: number, hashes: BigUint64Array): number | null;
  /** Writes the request's block ids; returns their count (negative: overflow). */
  commit(requestId: number, numBlocks: number): number;
  release(requestId: number): void;
  hasRequest(requestId: number): boolean;
  /** Writes the request's block ids; returns their count (negative: overflow). */
  requestBlocks(requestId: number): number;
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
  /**
   * Drains the pending copies into the int scratch as [n, stages,
   * srcSlot x n, dstSlot x n, stageStarts x stages, srcTier x n,
   * dstTier x n]; returns its length (written code), 0 when none is pending.
   */
  takeCopyPlan(): number;
  /** Copies the pending events into the events scratch and drains them; returns their count, or -count (not drained) when they do not fit. */
  takeEvents(): number;
  /** Whether block events are queued from now on; off drops the queued ones. */
  setRecordEvents(on: boolean): void;
  checkInvariants(): string;
  clock(): number;
  metadata(): Record<string, ArrayBufferView>;
}

export interface NativeCpuDataPlaneHandle {
  execute(srcTier: Uint8Array, srcSlot: Int32Array, dstTier: Uint8Array, dstSlot: Int32Array): void;
  executeAsync(srcTier: Uint8Array, srcSlot: Int32Array, dstTier: Uint8Array, dstSlot: Int32Array): Promise<void>;
  write(tier: number, slot: number, bytes: Uint8Array): void;
  read(tier: number, slot: number): Uint8Array;
  /** The device pool's own memory (no copy); absent from addons built before it. */
  devicePool?(): ArrayBuffer;
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

/** The override variable: the absolute path of an addon file to load instead of the package's own. */
export const ADDON_OVERRIDE_VARIABLE = 'CACHESAGE_ADDON';

/** How to get an addon when none loads. */
const BUILD_HINT =
  'build one with `npm rebuild cachesage` (needs CMake, a C++17 compiler and the packages cmake-js and node-addon-api; ' +
  'if npm blocked the install script, first `npm install-scripts approve cachesage`), ' +
  'or in a checkout `npm run build:native`';

/** Where an addon file was found. */
export interface AddonLocation {
  /** `override`: CACHESAGE_ADDON; `build`: built on this machine under build/; `prebuild`: shipped in prebuilds/. */
  source: 'override' | 'build' | 'prebuild';
  /** Absolute path of the `.node` file. */
  path: string;
}

type NodeGypBuild = { path(dir: string): string };

/**
 * The addon file to load, without loading it: the override when
 * CACHESAGE_ADDON is set (and non-empty), else the package's own.
 *
 * @throws Error naming the variable when the override is relative or
 *   missing, or listing what was tried when the package has no addon.
 */
export function locateAddon(env: NodeJS.ProcessEnv = process.env, root: string = packageRoot()): AddonLocation {
  const override = env[ADDON_OVERRIDE_VARIABLE];
  if (override !== undefined && override !== '') {
    if (!isAbsolute(override)) {
      throw new Error(`cachesage: ${ADDON_OVERRIDE_VARIABLE}=${override} must be an absolute path to a .node file`);
    }
    if (!existsSync(override)) throw new Error(`cachesage: ${ADDON_OVERRIDE_VARIABLE}=${override}: no such file`);
    return { source: 'override', path: override };
  }
  return locatePackagedAddon(root);
}

/**
 * The package's own addon under `root`: a local build, else the prebuild
 * that matches this platform. The override is not consulted.
 *
 * @throws Error listing what was tried, with how to build.
 */
export function locatePackagedAddon(root: string = packageRoot()): AddonLocation {
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
  let path: string;
  try {
    path = nodeGypBuild.path(root);
  } catch (error) {
    // node-gyp-build's message names the platform, arch, libc and Node it looked for.
    const wanted = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
    throw new Error(
      `cachesage: no native addon found. Tried ${ADDON_OVERRIDE_VARIABLE} (not set), ` +
        `${join(root, 'build', 'Release')} and build/Debug (nothing built), ` +
        `${join(root, 'prebuilds', `${process.platform}-${process.arch}`)} (${wanted}); ${BUILD_HINT}`,
    );
  }
  const local = relative(root, path);
  return { source: local.startsWith('build' + sep) ? 'build' : 'prebuild', path };
}

/**
 * Loads the addon file at `location`.
 *
 * @throws Error naming the file, where it came from, and the loader's reason.
 */
export function loadAddon(location: AddonLocation): NativeAddon {
  let loaded: NativeAddon;
  try {
    loaded = createRequire(import.meta.url)(location.path) as NativeAddon;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const what = location.source === 'override' ? `${ADDON_OVERRIDE_VARIABLE}=${location.path}` : `the ${location.source} addon ${location.path}`;
    throw new Error(`cachesage: ${what} did not load: ${reason}`, { cause: error });
  }
  if (typeof loaded.NativeBlockManager !== 'function' || typeof loaded.hashTokenBlocks !== 'function') {
    throw new Error(`cachesage: ${location.path} loaded but is not the cachesage addon (no NativeBlockManager)`);
  }
  return loaded;
}

let addon: NativeAddon | undefined;
let addonLocation: AddonLocation | undefined;

/** The addon, loaded once (see the module comment for the order). Throws saying what was tried and how to build. */
export function nativeAddon(): NativeAddon {
  if (addon) return addon;
  const location = locateAddon();
  addon = loadAddon(location);
  addonLocation = location;
  return addon;
}

/** Where the loaded addon came from; loads it first if need be. */
export function nativeAddonLocation(): AddonLocation {
  nativeAddon();
  return addonLocation!;
}
