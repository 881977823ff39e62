/**
 * cachesage: an agent-aware KV-cache layer for LLM serving.
 *
 * The main entry, for engine integrators and policy authors: the agent
 * runtime (observe / score / predict / act), its options and results, the
 * policy contract and registry, and compute backend selection. The other
 * audiences have entries of their own:
 *
 * - `cachesage/blocks`: the native block manager and data plane on their own.
 * - `cachesage/sim`: traces, bundled workloads, the simulator and replay.
 * - `cachesage/reference`: every plain TypeScript oracle.
 */
export { Runtime } from './runtime/runtime.js';
export type {
  ActResult,
  AdmitDecision,
  AdmitRequest,
  PolicySpec,
  PrefetchCompletion,
  RefreshResult,
  RuntimeOptions,
  RuntimeStats,
} from './runtime/types.js';
export { SnapshotError } from './runtime/snapshot.js';
export type {
  Action,
  AgentRef,
  EngineEvent,
  FrameworkEvent,
  ObservedFrameworkEvent,
  Policy,
  PolicyContext,
  PredictQuery,
  Prediction,
  Registry,
  RuntimeEvent,
  ScoreClass,
  SessionView,
  StepOrigin,
  SurvivalWork,
} from './policies/types.js';
export { createPolicy, policyEntry, POLICIES, POLICY_NAMES, type PolicyEntry, type PolicyFactory } from './policies/registry.js';
export type { CacheSageOptions } from './policies/cachesage/options.js';
export {
  BACKEND_CHOICES,
  selectBackend,
  type BackendCandidate,
  type BackendChoice,
  type BackendName,
  type BackendSelection,
  type ComputeBackend,
  type Crossover,
  type DataPlane,
  type DataPlaneOptions,
  type SelectOptions,
} from './compute/backend.js';
export type { SurvivalBackend, SurvivalInput, SurvivalOutput } from './compute/survival.js';
export type { HitScoringInput, HitScoringOutput } from './compute/hit_scoring.js';
export { hashTokenBlocks } from './blocks/native_hash.js';
export type { BlockManagerOptions } from './blocks/types.js';
