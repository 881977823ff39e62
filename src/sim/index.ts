/**
 * `cachesage/sim`: replaying multi-agent traces through the real runtime
 * and block manager: the trace format and reader, the bundled workload
 * generator, the cost models, the discrete-event simulator and replay.
 */
export { replay, replayAsync, capacityBlocks, REPLAY_POLICIES, type Capacity, type PolicyResult, type ReplayOptions, type ReplayReport } from './replay.js';
export {
  simulate,
  simulateAsync,
  type AsyncSimulationOptions,
  type DataPlaneCheck,
  type SimulationOptions,
  type SimulationResult,
} from './simulator.js';
export { COST_MODELS, LLAMA3_70B_4xH100, LLAMA3_8B_H100, type CostModel } from './cost_model.js';
export { prepareWorkload, type SimCall, type SimWorkload } from './workload.js';
export { readTrace, readTraceFile, type ReadTraceOptions, type TraceFile } from '../trace/reader.js';
export { TraceError, type TraceCall, type TraceHeader, type TraceSegment } from '../trace/format.js';
export { generateWorkload, WORKLOAD_NAMES, writeTrace, type GeneratedWorkload, type WorkloadOptions } from '../workloads/index.js';
