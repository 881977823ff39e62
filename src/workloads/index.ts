/**
 * The bundled multi-agent workload generator (design/replay.md, "Synthetic
 * workloads"): seven seeded shapes, five fitted to the real traces in
 * ../shared/traces and two (hierarchy, mapreduce) following published
 * multi-agent designs no public trace records, all written in the trace
 * format so replay never knows where a trace came from. Shapes with tool
 * gaps also record their tool calls and declare their tools (tools.ts).
 */
import { branchy } from './branchy.js';
import { generateShape, type GeneratedWorkload, type WorkloadOptions } from './generate.js';
import { groupchat } from './groupchat.js';
import { hierarchy } from './hierarchy.js';
import { mapreduce } from './mapreduce.js';
import { orchestrator } from './orchestrator.js';
import { pipeline } from './pipeline.js';
import { react } from './react.js';
import type { FitTargets } from './session.js';

export { generateShape, DEFAULT_SEED, DEFAULT_SESSIONS, type GeneratedWorkload, type WorkloadOptions } from './generate.js';
export { traceStats, START_AGENT, END_AGENT, type TraceStats } from './stats.js';
export { writeTrace } from './write.js';
export type { FitTargets, WorkloadShape, CommonParams, ServiceTime } from './session.js';
export type { TokenDist, GapDist } from './random.js';
export { toolDeclarations, type ToolProfile, type ToolUse } from './tools.js';
export { branchy, type BranchyParams } from './branchy.js';
export { groupchat, type GroupChatParams } from './groupchat.js';
export { hierarchy, type HierarchyParams, type Team } from './hierarchy.js';
export { mapreduce, type MapReduceParams } from './mapreduce.js';
export { orchestrator, type OrchestratorParams } from './orchestrator.js';
export { pipeline, type PipelineParams } from './pipeline.js';
export { react, type ReactParams } from './react.js';

/** A registered shape, its parameters hidden: what name-based callers need. */
export interface WorkloadGenerator {
  readonly name: string;
  readonly description: string;
  /** The real trace's statistics the shape was fitted to; null when it follows {@link modelledOn} instead. */
  readonly targets: FitTargets | null;
  /** The public work a shape fitted to no trace follows. */
  readonly modelledOn?: string;
  /** Generates the workload with the shape's fitted parameters. */
  generate(options?: Omit<WorkloadOptions, 'params'>): GeneratedWorkload;
}

function register(
  shape: { name: string; description: string; targets: FitTargets | null; modelledOn?: string },
  generate: WorkloadGenerator['generate'],
): [string, WorkloadGenerator] {
  const { name, description, targets, modelledOn } = shape;
  return [name, { name, description, targets, ...(modelledOn !== undefined ? { modelledOn } : {}), generate }];
}

/** Every bundled shape by name. */
export const WORKLOADS: ReadonlyMap<string, WorkloadGenerator> = new Map([
  register(pipeline, (o) => generateShape(pipeline, o)),
  register(groupchat, (o) => generateShape(groupchat, o)),
  register(react, (o) => generateShape(react, o)),
  register(orchestrator, (o) => generateShape(orchestrator, o)),
  register(branchy, (o) => generateShape(branchy, o)),
  register(hierarchy, (o) => generateShape(hierarchy, o)),
  register(mapreduce, (o) => generateShape(mapreduce, o)),
]);

/** The bundled shapes' names, in registry order. */
export const WORKLOAD_NAMES: readonly string[] = [...WORKLOADS.keys()];

/**
 * Generates bundled workload `name` (see {@link WORKLOAD_NAMES}) with its
 * fitted parameters: by default {@link DEFAULT_SESSIONS} sessions from seed
 * {@link DEFAULT_SEED}. Same name, seed and session count, same calls.
 *
 * @throws RangeError for an unknown name, a seed that is not a safe integer
 *   or a session count that is not a positive integer.
 */
export function generateWorkload(name: string, options: Omit<WorkloadOptions, 'params'> = {}): GeneratedWorkload {
  const generator = WORKLOADS.get(name);
  if (generator === undefined) {
    throw new RangeError(`unknown workload ${JSON.stringify(name)}; known: ${WORKLOAD_NAMES.join(', ')}`);
  }
  return generator.generate(options);
}
