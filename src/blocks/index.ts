/**
 * `cachesage/blocks`: the paged KV block manager and the CPU data plane on
 * their own, for engines that manage the cache without the agent runtime.
 */
export { BlockManager } from './block_manager.js';
export { CpuDataPlane, type DataPlaneOptions } from './data_plane.js';
export { checkCopyPlan, planStages } from './copy_plan.js';
export { hashTokenBlocks } from './native_hash.js';
export { readOnlyView, type BlockManagerView } from './view.js';
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
} from './types.js';
