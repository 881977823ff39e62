/**
 * Turns a shape into a whole workload: sessions built one after another,
 * each from its own random stream, and a header that records how.
 */
import type { TraceCall, TraceHeader } from '../trace/format.js';
import { Rng } from './random.js';
import { SessionBuilder, type CommonParams, type WorkloadShape } from './session.js';
import { addToolRecords, toolDeclarations } from './tools.js';

/** Default number of sessions of a generated workload. */
export const DEFAULT_SESSIONS = 200;
/** Default seed. */
export const DEFAULT_SEED = 1;

/** Options of a generated workload. */
export interface WorkloadOptions<P = unknown> {
  /** Same seed, same workload; any safe integer. Default {@link DEFAULT_SEED}. */
  seed?: number;
  /** Sessions to build; a positive integer. Default {@link DEFAULT_SESSIONS}. */
  sessions?: number;
  /** Overrides of the shape's fitted parameters (shallow). */
  params?: Partial<P>;
}

/** A generated workload: the header to write first and the calls, by session then seq. */
export interface GeneratedWorkload {
  header: TraceHeader;
  calls: TraceCall[];
}

function sessionName(shape: string, index: number, kind: string | null): string {
  const base = `${shape}/s${String(index).padStart(4, '0')}`;
  return kind === null ? base : `${base}-${kind}`;
}

/**
 * Generates `options.sessions` sessions of `shape`. Session `i` draws only
 * from a stream keyed by (shape, seed, i), so the first sessions of a
 * workload do not change when more are asked for.
 *
 * The header names the workload, the real trace it was fitted to (or the
 * public work it follows), the seed and session count, and the open-loop
 * arrival process: `arrivalRatePerS`
 * and `sessionStarts`, each session's arrival in seconds after the first
 * one's (exponential inter-arrival times), for a replayer that wants the
 * generator's own arrivals rather than its own; and, for a shape with
 * tools, their declarations (`tools`).
 *
 * @throws RangeError when `seed` is not a safe integer or `sessions` is not a positive integer.
 */
export function generateShape<P extends CommonParams>(
  shape: WorkloadShape<P>,
  options: WorkloadOptions<P> = {},
): GeneratedWorkload {
  const seed = options.seed ?? DEFAULT_SEED;
  const sessions = options.sessions ?? DEFAULT_SESSIONS;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  if (!Number.isSafeInteger(sessions) || sessions < 1) {
    throw new RangeError(`sessions must be a positive integer, got ${sessions}`);
  }
  const params: P = { ...shape.defaults, ...options.params };
  if (!(params.arrivalRatePerS > 0)) throw new RangeError(`arrivalRatePerS must be positive, got ${params.arrivalRatePerS}`);

  const arrivals = new Rng(`${shape.name}/${seed}/arrivals`);
  const sessionStarts: Record<string, number> = {};
  const calls: TraceCall[] = [];
  let clock = 0;
  for (let index = 0; index < sessions; index++) {
    const rng = new Rng(`${shape.name}/${seed}/session/${index}`);
    const kind = shape.sessionKind?.(rng, index, params) ?? null;
    const name = sessionName(shape.name, index, kind);
    const builder = new SessionBuilder(shape.name, name, seed, rng, params.service);
    shape.generateSession(builder, index, params, kind);
    // Tool records draw from a stream of their own: the calls above are what they were without them.
    if (shape.tools !== undefined) addToolRecords(builder.calls, shape.tools, new Rng(`${shape.name}/${seed}/tools/session/${index}`), shape.name, name);
    for (const call of builder.calls) calls.push(call);
    sessionStarts[name] = Math.round(clock * 1000) / 1000;
    clock += arrivals.exponential(1 / params.arrivalRatePerS);
  }

  const header: TraceHeader = {
    workload: shape.name,
    source: 'cachesage synthetic workload generator',
    description: shape.description,
    ...(shape.targets !== null ? { fittedTo: shape.targets.trace } : {}),
    ...(shape.modelledOn !== undefined ? { modelledOn: shape.modelledOn } : {}),
    seed,
    sessions,
    arrivalRatePerS: params.arrivalRatePerS,
    sessionStarts,
    ...(shape.tools !== undefined ? { tools: toolDeclarations(shape.tools) } : {}),
  };
  return { header, calls };
}
