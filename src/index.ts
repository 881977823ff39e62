/**
 * cachesage: an agent-aware KV-cache layer for LLM serving.
 *
 * The block manager and its CPU data plane, backed by the native core.
 * The TypeScript reference model is exported separately as
 * `cachesage/reference`.
 */
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
