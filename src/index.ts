/**
 * cachesage: an agent-aware KV-cache layer for LLM serving.
 *
 * The agent runtime (observe / score / predict / act) with its policies,
 * the block manager and data planes it drives, backed by the native core,
 * and the compute backends (cpu, webgpu, cuda, tfjs) its batched work runs
 * on. The TypeScript reference model is exported separately as
 * `cachesage/reference`.
 */
export {
  Runtime,
  mergeActions,
  type ActResult,
  type AdmitDecision,
  type AdmitRequest,
  type PolicySpec,
  type PrefetchCompletion,
  type RefreshResult,
  type RuntimeOptions,
  type RuntimeStats,
} from './runtime/runtime.js';
export {
  BACKEND_CHOICES,
  cpuBackend,
  describeSelection,
  routedBackend,
  selectBackend,
  type BackendCandidate,
  type BackendChoice,
  type BackendName,
  type BackendSelection,
  type ComputeBackend,
  type Crossover,
  type DataPlane,
  type SelectOptions,
} from './compute/backend.js';
export { measureCrossover } from './compute/crossover.js';
export {
  checkHitScoringInput,
  referenceHitScoring,
  type HitScoringInput,
  type HitScoringOutput,
} from './compute/hit_scoring.js';
export { SnapshotError } from './runtime/snapshot.js';
export type {
  Action,
  AgentRef,
  EngineEvent,
  FrameworkEvent,
  Policy,
  PolicyContext,
  PredictQuery,
  Prediction,
  Registry,
  RuntimeEvent,
  ScoreClass,
  SurvivalWork,
} from './policies/types.js';
export { createPolicy, POLICIES, POLICY_NAMES, type PolicyEntry } from './policies/registry.js';
export { createCacheSagePolicy, type CacheSageOptions } from './policies/cachesage/policy.js';
export { TransitionModel } from './policies/cachesage/transitions.js';
export { ReferenceSurvivalBackend, type SurvivalBackend, type SurvivalInput, type SurvivalOutput } from './compute/survival.js';
export { NativeSurvivalBackend } from './compute/cpu/survival.js';
export { BlockManager } from './blocks/block_manager.js';
export { CpuDataPlane, type DataPlaneOptions } from './blocks/data_plane.js';
export { replay, replayAsync, type ReplayOptions, type ReplayReport } from './sim/replay.js';
export { simulate, simulateAsync, type AsyncSimulationOptions, type SimulationOptions, type SimulationResult } from './sim/simulator.js';
export { hashTokenBlocks } from './blocks/native_hash.js';
export {
  EventKind,
  MAX_AGENT,
  METADATA_FIELDS,
  Tier,
  type AdmitResult,
  type BlockEvents,
  type BlockManagerLike,
  type BlockManagerOptions,
  type BlockMetadataView,
  type CopyPlan,
  type EventKindCode,
  type LookupResult,
  type RequestTags,
  type TierCode,
  type TierName,
} from './blocks/types.js';
