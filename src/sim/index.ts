/**
 * `cachesage/sim`: replaying multi-agent traces through the real runtime
 * and block manager: the trace format and reader, the bundled workload
 * generator, the cost models, the discrete-event simulator and replay.
 */
export {
  replay,
  replayAsync,
  capacityBlocks,
  REPLAY_POLICIES,
  type Capacity,
  type CapacityUsed,
  type PolicyResult,
  type ReplayOptions,
  type ReplayReport,
} from './replay.js';
export {
  simulate,
  simulateAsync,
  type AsyncSimulationOptions,
  type DataPlaneCheck,
  type SimulationOptions,
  type SimulationResult,
} from './simulator.js';
export { COST_MODELS, LLAMA3_70B_4xH100, LLAMA3_8B_H100, type CostModel } from './cost_model.js';
export { MAX_REPLAY_BLOCKS, prepareWorkload, type SimCall, type SimWorkload } from './workload.js';
export { readTrace, readTraceFile, type ReadTraceOptions, type TraceFile } from '../trace/reader.js';
export { TraceError, type TraceCall, type TraceHeader, type TraceSegment } from '../trace/format.js';
export type { TokenCountSummary } from '../trace/rules.js';
/** The trace format's limits (docs/trace-format.md, "Limits"). */
export {
  MAX_AGENTS,
  MAX_CALL_TOKENS,
  MAX_CALLS,
  MAX_ID_LENGTH,
  MAX_LINE_LENGTH,
  MAX_NAME_LENGTH,
  MAX_SEGMENT_TOKENS,
  MAX_SEGMENTS_PER_CALL,
  MAX_TIME_SECONDS,
  MAX_TRACE_TOKENS,
} from '../trace/limits.js';
export { generateWorkload, WORKLOAD_NAMES, writeTrace, type GeneratedWorkload, type WorkloadOptions } from '../workloads/index.js';
