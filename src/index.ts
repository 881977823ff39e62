/**
 * cachesage: an agent-aware KV-cache layer for LLM serving.
 *
 * The agent runtime (observe / score / predict / act) with its policies,
 * and the block manager and CPU data plane it drives, backed by the native
 * core. The TypeScript reference model is exported separately as
 * `cachesage/reference`.
 */
export {
  Runtime,
  mergeActions,
  type ActResult,
  type AdmitDecision,
  type AdmitRequest,
  type PolicySpec,
  type RuntimeOptions,
  type RuntimeStats,
} from './runtime/runtime.js';
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
} from './runtime/types.js';
export { createPolicy, POLICY_FACTORIES, POLICY_NAMES } from './policies/index.js';
export { createCacheSagePolicy, type CacheSageOptions } from './policies/cachesage/policy.js';
export { TransitionModel } from './policies/cachesage/transitions.js';
export { ReferenceSurvivalBackend, type SurvivalBackend, type SurvivalInput, type SurvivalOutput } from './policies/cachesage/survival.js';
export { NativeSurvivalBackend } from './policies/cachesage/survival_native.js';
export { BlockManager } from './blocks/block_manager.js';
export { CpuDataPlane, type DataPlaneOptions } from './blocks/data_plane.js';
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
