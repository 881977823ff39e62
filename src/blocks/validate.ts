/**
 * Argument checks shared by the native wrapper and the reference model, so
 * both reject bad input with the same precise TypeError / RangeError before
 * any state changes.
 */
import { checkInt, describeValue as describe } from '../util/check.js';
import { MAX_AGENT, Tier, type BlockManagerOptions, type RequestTags, type TierName } from './types.js';

export const MAX_BLOCK_IDS = 1 << 28;
export const MAX_BLOCK_SIZE = 1 << 20;
export const MAX_CLASSES = 1 << 24;
export const DEFAULT_MAX_CLASSES = 1 << 16;

export interface NormalizedOptions {
  blockSize: number;
  bytesPerBlock: number;
  deviceBlocks: number;
  hostBlocks: number;
  maxClasses: number;
}

export interface NormalizedTags {
  workload: number;
  agent: number;
  session: number;
}

export function checkOptions(options: unknown): NormalizedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const o = options as BlockManagerOptions;
  const blockSize = checkInt(o.blockSize ?? 16, 'options.blockSize', 1, MAX_BLOCK_SIZE);
  const bytesPerBlock = checkInt(o.bytesPerBlock ?? 0, 'options.bytesPerBlock', 0, Number.MAX_SAFE_INTEGER);
  const deviceBlocks = checkInt(o.deviceBlocks, 'options.deviceBlocks', 1, MAX_BLOCK_IDS);
  const hostBlocks = checkInt(o.hostBlocks ?? 0, 'options.hostBlocks', 0, MAX_BLOCK_IDS);
  const maxClasses = checkInt(o.maxClasses ?? DEFAULT_MAX_CLASSES, 'options.maxClasses', 0, MAX_CLASSES);
  if (deviceBlocks + hostBlocks > MAX_BLOCK_IDS) {
    throw new RangeError(`options.deviceBlocks + options.hostBlocks must be <= ${MAX_BLOCK_IDS}`);
  }
  return { blockSize, bytesPerBlock, deviceBlocks, hostBlocks, maxClasses };
}

export function checkRequestId(value: unknown, op: string): number {
  return checkInt(value, `${op}: requestId`, 0, Number.MAX_SAFE_INTEGER);
}

export function checkTags(tags: unknown, op: string): NormalizedTags {
  if (tags === undefined) return { workload: -1, agent: -1, session: -1 };
  if (typeof tags !== 'object' || tags === null) {
    throw new TypeError(`${op}: tags must be an object, got ${describe(tags)}`);
  }
  const t = tags as RequestTags;
  return {
    workload: checkInt(t.workload ?? -1, `${op}: tags.workload`, -1, 0x7fffffff),
    agent: checkInt(t.agent ?? -1, `${op}: tags.agent`, -1, MAX_AGENT),
    session: checkInt(t.session ?? -1, `${op}: tags.session`, -1, 0x7fffffff),
  };
}

export function checkHashes(value: unknown, name: string): BigUint64Array {
  if (!(value instanceof BigUint64Array)) {
    throw new TypeError(`${name} must be a BigUint64Array, got ${describe(value)}`);
  }
  return value;
}

export function checkIds(value: unknown, name: string): Int32Array {
  if (!(value instanceof Int32Array)) throw new TypeError(`${name} must be an Int32Array, got ${describe(value)}`);
  return value;
}

export function checkScores(value: unknown, name: string): Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array, got ${describe(value)}`);
  }
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) throw new RangeError(`${name}[${i}] is not finite (${value[i]})`);
  }
  return value;
}

/** Ids must name allocated blocks; `tier` is the metadata tier array. */
export function checkBlockIds(ids: Int32Array, tier: Uint8Array, op: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= tier.length) {
      throw new RangeError(`${op}: block id ${id} at index ${i} is out of range [0, ${tier.length})`);
    }
    if (tier[id] === Tier.Free) throw new RangeError(`${op}: block id ${id} at index ${i} is not allocated`);
  }
}

export function checkTier(value: unknown, op: string): TierName {
  if (value !== 'device' && value !== 'host') {
    throw new TypeError(`${op}: tier must be 'device' or 'host', got ${describe(value)}`);
  }
  return value;
}

export function checkRecordEvents(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`setRecordEvents: on must be a boolean, got ${describe(value)}`);
  return value;
}

/** Block ids in range (free ids allowed) and classes in [-1, maxClasses). */
export function checkScoreClasses(ids: unknown, classes: unknown, numBlockIds: number, maxClasses: number): void {
  checkIds(ids, 'setScoreClasses: blockIds');
  checkIds(classes, 'setScoreClasses: classes');
  const idArray = ids as Int32Array;
  const classArray = classes as Int32Array;
  if (idArray.length !== classArray.length) {
    throw new RangeError(`setScoreClasses: ${idArray.length} block ids but ${classArray.length} classes`);
  }
  for (let i = 0; i < idArray.length; i++) {
    const id = idArray[i]!;
    if (id < 0 || id >= numBlockIds) {
      throw new RangeError(`setScoreClasses: block id ${id} at index ${i} is out of range [0, ${numBlockIds})`);
    }
    const c = classArray[i]!;
    if (c < -1 || c >= maxClasses) {
      throw new RangeError(`setScoreClasses: class ${c} at index ${i} is out of range [-1, ${maxClasses})`);
    }
  }
}

/** Classes in [0, maxClasses) and finite scores, one per class. */
export function checkClassScores(classes: unknown, scores: unknown, maxClasses: number): void {
  checkIds(classes, 'setClassScores: classes');
  checkScores(scores, 'setClassScores: scores');
  const classArray = classes as Int32Array;
  if (classArray.length !== (scores as Float32Array).length) {
    throw new RangeError(`setClassScores: ${classArray.length} classes but ${(scores as Float32Array).length} scores`);
  }
  for (let i = 0; i < classArray.length; i++) {
    const c = classArray[i]!;
    if (c < 0 || c >= maxClasses) {
      throw new RangeError(`setClassScores: class ${c} at index ${i} is out of range [0, ${maxClasses})`);
    }
  }
}
