/** The CPU backend: the native core's survival, hit scoring and data plane. */
import { CpuDataPlane, type DataPlaneOptions } from '../../blocks/data_plane.js';
import type { CopyPlan } from '../../blocks/types.js';
import type { ComputeBackend, DataPlane } from '../backend.js';
import type { HitScoringInput, HitScoringOutput } from '../hit_scoring.js';
import type { SurvivalInput, SurvivalOutput } from '../survival.js';
import { nativeHitScoring } from './hit_scoring.js';
import { NativeSurvivalBackend } from './survival.js';

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
