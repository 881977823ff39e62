/**
 * What replay() checks before any work: its name, its calls' container and
 * every option, each refusal a TypeError or RangeError naming the option.
 * (The calls themselves are checked by prepareWorkload, with the trace
 * rules.)
 */
import { composedEntry, policyEntry } from '../policies/registry.js';
import { checkToolDeclarations } from '../trace/format.js';
import { MAX_HASH_BLOCK_SIZE } from '../trace/hashing.js';
import { checkBoolean, checkInt, describeValue, isRecord } from '../util/check.js';
import { COST_MODELS } from './cost_model.js';
import type { ReplayOptions } from './replay.js';
import { checkWorkloadName } from './workload.js';

const OPTION_NAMES = [
  'policies', 'capacity', 'hostCapacity', 'blockSize', 'concurrency', 'arrivalRate', 'model', 'seed',
  'onProgress', 'backend', 'observers', 'profile', 'deviceOnly', 'replicas', 'router', 'tools', 'toolGaps', 'ownArrivals',
] as const;

/** The cost model's fields: a custom one (e.g. calibrated from an engine) must give every one. */
const COST_FIELDS = [
  'kvBytesPerToken', 'prefillTokensPerSecond', 'attentionSecondsPerTokenPair', 'decodeIterationSeconds',
  'decodeSecondsPerSequence', 'hostToDeviceBytesPerSecond', 'transferLatencySeconds', 'iterationTokenBudget',
] as const;
/** Terms a cost model may leave out (0 when absent). */
const OPTIONAL_COST_FIELDS = ['decodeSecondsPerContextToken', 'prefillIterationSeconds'] as const;
/** Fields that may be 0 (a term the fit found nothing for); the others divide or bound. */
const COST_FIELDS_MAY_BE_ZERO = new Set(['attentionSecondsPerTokenPair', 'decodeIterationSeconds', 'decodeSecondsPerSequence', 'transferLatencySeconds']);

function checkCostModel(value: unknown, what: string): void {
  if (typeof value === 'string') {
    if (!Object.hasOwn(COST_MODELS, value)) throw new RangeError(`${what} must be one of ${Object.keys(COST_MODELS).join(', ')} or a cost model object, got ${describeValue(value)}`);
    return;
  }
  if (!isRecord(value)) throw new TypeError(`${what} must be one of ${Object.keys(COST_MODELS).join(', ')} or a cost model object, got ${describeValue(value)}`);
  if (typeof value['name'] !== 'string') throw new TypeError(`${what}.name must be a string, got ${describeValue(value['name'])}`);
  for (const field of COST_FIELDS) {
    const v = value[field];
    if (typeof v !== 'number') throw new TypeError(`${what}.${field} must be a number, got ${describeValue(v)}`);
    const least = COST_FIELDS_MAY_BE_ZERO.has(field) ? 0 : Number.MIN_VALUE;
    if (!Number.isFinite(v) || v < least) throw new RangeError(`${what}.${field} must be a finite number ${least === 0 ? '>= 0' : '> 0'}, got ${v}`);
  }
  for (const field of OPTIONAL_COST_FIELDS) {
    const v = value[field];
    if (v === undefined) continue;
    if (typeof v !== 'number') throw new TypeError(`${what}.${field} must be a number, got ${describeValue(v)}`);
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${what}.${field} must be a finite number >= 0, got ${v}`);
  }
}

/** A finite number above 0. */
function checkPositive(value: unknown, what: string): void {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${describeValue(value)}`);
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${what} must be a finite number > 0, got ${value}`);
}

function checkCapacity(value: unknown, what: string, minBlocks: number): void {
  if (!isRecord(value)) throw new TypeError(`${what} must be {fraction} or {blocks}, got ${describeValue(value)}`);
  if ('fraction' in value) {
    checkPositive(value['fraction'], `${what}.fraction`);
  } else if ('blocks' in value) {
    checkInt(value['blocks'], `${what}.blocks`, minBlocks, 2 ** 28);
  } else {
    throw new TypeError(`${what} must be {fraction} or {blocks}`);
  }
}

/**
 * Checks a replay's arguments before any work.
 *
 * @throws TypeError / RangeError naming the argument or option.
 */
export function checkReplayArguments(name: unknown, calls: unknown, options: unknown): void {
  checkWorkloadName(name, 'replay: name');
  if (!Array.isArray(calls)) throw new TypeError(`replay: calls must be an array of trace calls, got ${describeValue(calls)}`);
  if (!isRecord(options)) throw new TypeError(`replay: options must be an object, got ${describeValue(options)}`);
  for (const key of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) throw new TypeError(`replay: unknown option "${key}" (known: ${OPTION_NAMES.join(', ')})`);
  }
  const o = options as ReplayOptions;
  if (o.policies !== undefined) {
    if (!Array.isArray(o.policies)) throw new TypeError(`replay: options.policies must be an array of policy names, got ${describeValue(o.policies)}`);
    o.policies.forEach((policy, i) => {
      try {
        composedEntry(policy);
      } catch (error) {
        const message = `replay: options.policies[${i}]: ${(error as Error).message}`;
        throw error instanceof TypeError ? new TypeError(message) : new RangeError(message);
      }
    });
  }
  if (o.capacity !== undefined) checkCapacity(o.capacity, 'replay: options.capacity', 1);
  if (o.hostCapacity !== undefined) checkCapacity(o.hostCapacity, 'replay: options.hostCapacity', 0);
  if (o.blockSize !== undefined) checkInt(o.blockSize, 'replay: options.blockSize', 1, MAX_HASH_BLOCK_SIZE);
  if (o.concurrency !== undefined) checkInt(o.concurrency, 'replay: options.concurrency', 1, 0x7fffffff);
  if (o.arrivalRate !== undefined) checkPositive(o.arrivalRate, 'replay: options.arrivalRate');
  if (o.model !== undefined) checkCostModel(o.model, 'replay: options.model');
  if (o.seed !== undefined) checkInt(o.seed, 'replay: options.seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new TypeError(`replay: options.onProgress must be a function, got ${describeValue(o.onProgress)}`);
  }
  if (o.observers !== undefined && !Array.isArray(o.observers)) {
    throw new TypeError(`replay: options.observers must be an array of policies, got ${describeValue(o.observers)}`);
  }
  if (o.profile !== undefined) checkBoolean(o.profile, 'replay: options.profile');
  if (o.tools !== undefined) checkToolDeclarations(o.tools, 'replay: options.tools', (problem, kind) => { throw kind === 'type' ? new TypeError(problem) : new RangeError(problem); });
  if (o.deviceOnly !== undefined) {
    if (!Array.isArray(o.deviceOnly)) throw new TypeError(`replay: options.deviceOnly must be an array of {policy, name}, got ${describeValue(o.deviceOnly)}`);
    o.deviceOnly.forEach((run: unknown, i) => {
      if (!isRecord(run) || typeof run['name'] !== 'string' || run['name'] === '') throw new TypeError(`replay: options.deviceOnly[${i}] must be {policy, name} with a non-empty name, got ${describeValue(run)}`);
      try {
        composedEntry(run['policy'] as string);
      } catch (error) {
        const message = `replay: options.deviceOnly[${i}].policy: ${(error as Error).message}`;
        throw error instanceof TypeError ? new TypeError(message) : new RangeError(message);
      }
    });
  }
  if (o.toolGaps !== undefined) checkBoolean(o.toolGaps, 'replay: options.toolGaps');
  if (o.ownArrivals !== undefined) checkBoolean(o.ownArrivals, 'replay: options.ownArrivals');
}
