/**
 * The batched endpoint's body: many framework and engine events in one
 * msgpack array, each item a short array led by an op code, answered by one
 * result per item in order (docs/serving.md, "The batch schema"). Items run
 * one after another on the same verbs as the JSON routes; a refused item
 * changes nothing and the items after it still run.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

import type { CopyPlan } from '../blocks/types.js';
import type { AgentRef, FrameworkEvent } from '../policies/types.js';
import type { Access } from './access.js';
import { badRequest, describeError, HttpError } from './errors.js';
import { hashesFromMsgpack } from './hashes.js';
import { MAX_REQUEST_ID } from './schemas.js';
import type { Verbs } from './verbs.js';

export const BATCH_OPS = {
  sessionStart: 1,
  stepStart: 2,
  stepEnd: 3,
  toolStart: 4,
  toolEnd: 5,
  sessionEnd: 6,
  admit: 16,
  prefillDone: 17,
  decode: 18,
  release: 19,
  act: 20,
} as const;

/** Result codes, the first element of each result. */
export const BATCH_RESULT = { ok: 0, noRoom: 1, error: 2 } as const;

const FRAMEWORK_TYPES: Readonly<Record<number, FrameworkEvent['type']>> = {
  1: 'session.start',
  2: 'step.start',
  3: 'step.end',
  4: 'tool.start',
  5: 'tool.end',
  6: 'session.end',
};

const OP_NAMES: Readonly<Record<number, string>> = {
  ...FRAMEWORK_TYPES,
  16: 'admit',
  17: 'prefill-done',
  18: 'decode',
  19: 'release',
  20: 'act',
};

export type BatchResult = unknown[];

/** Reads the fields of one item, naming them in errors as `items[i] (op).field`. */
class Item {
  constructor(
    readonly fields: readonly unknown[],
    readonly where: string,
  ) {}

  #field(index: number): unknown {
    return this.fields[index];
  }

  name(index: number, name: string): string {
    const v = this.#field(index);
    if (typeof v !== 'string') throw badRequest(`${this.where}.${name} must be a string`);
    if (v.length === 0 || v.length > 256) throw badRequest(`${this.where}.${name} must be 1 to 256 characters long`);
    return v;
  }

  optionalName(index: number, name: string): string | undefined {
    const v = this.#field(index);
    return v === undefined || v === null ? undefined : this.name(index, name);
  }

  time(index: number, name: string): number {
    const v = this.#field(index);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw badRequest(`${this.where}.${name} must be a finite number of seconds >= 0`);
    return v;
  }

  optionalTime(index: number, name: string): number | undefined {
    const v = this.#field(index);
    return v === undefined || v === null ? undefined : this.time(index, name);
  }

  int(index: number, name: string, min: number, max: number): number {
    const v = this.#field(index);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badRequest(`${this.where}.${name} must be an integer in [${min}, ${max}]`);
    return v;
  }

  agent(index: number): AgentRef {
    return { workload: this.name(index, 'workload'), agent: this.name(index + 1, 'agent') };
  }

  /** Refuses fields past the op's last one: a client on another schema version fails loudly. */
  atMost(count: number): void {
    if (this.fields.length > count) throw badRequest(`${this.where} has ${this.fields.length} fields, at most ${count} expected`);
  }
}

function frameworkEvent(op: number, item: Item): FrameworkEvent {
  const type = FRAMEWORK_TYPES[op]!;
  const time = item.time(1, 'time');
  const session = item.name(2, 'session');
  switch (type) {
    case 'session.start':
      item.atMost(4);
      return { type, time, session, workload: item.name(3, 'workload') };
    case 'step.start':
    case 'step.end':
      item.atMost(5);
      return { type, time, session, agent: item.agent(3) };
    case 'tool.start':
    case 'tool.end':
      item.atMost(6);
      return { type, time, session, agent: item.agent(3), tool: item.name(5, 'tool') };
    default:
      item.atMost(3);
      return { type: 'session.end', time, session };
  }
}

/**
 * The request ids and hashes of the well-formed admit items, for the remote
 * tier to read ahead of the (synchronous) run; malformed items are left to
 * the run, which refuses them.
 */
export function admitsOf(items: readonly unknown[]): Array<{ requestId: number; hashes: BigUint64Array }> {
  const admits: Array<{ requestId: number; hashes: BigUint64Array }> = [];
  for (const raw of items) {
    if (!Array.isArray(raw) || raw[0] !== BATCH_OPS.admit || !Number.isSafeInteger(raw[1]) || raw[1] < 0) continue;
    try {
      admits.push({ requestId: raw[1] as number, hashes: hashesFromMsgpack(raw[3], 'hashes') });
    } catch {
      // The run names the bad field.
    }
  }
  return admits;
}

/** Runs one item; returns its result. Throws HttpError for a refused item. */
function runItem(verbs: Verbs, access: Access, raw: unknown, i: number): BatchResult {
  if (!Array.isArray(raw) || raw.length === 0) throw badRequest(`items[${i}] must be a non-empty array led by an op code`);
  const op = raw[0];
  const opName = typeof op === 'number' && Object.hasOwn(OP_NAMES, op) ? OP_NAMES[op]! : undefined;
  if (opName === undefined) throw badRequest(`items[${i}][0] (op) must be one of ${Object.keys(OP_NAMES).join(', ')}`);
  const item = new Item(raw, `items[${i}] (${opName})`);
  const requestId = () => item.int(1, 'requestId', 0, MAX_REQUEST_ID);
  switch (op) {
    case BATCH_OPS.admit: {
      item.atMost(8);
      const id = requestId();
      const numTokens = item.int(2, 'numTokens', 1, 0x7fffffff);
      const hashes = hashesFromMsgpack(raw[3], `${item.where}.hashes`);
      const session = item.optionalName(4, 'session');
      const workload = item.optionalName(5, 'workload');
      const agentName = item.optionalName(6, 'agent');
      if ((workload === undefined) !== (agentName === undefined)) throw badRequest(`${item.where}: workload and agent go together (both or neither)`);
      const time = item.optionalTime(7, 'time');
      const decision = verbs.admit(access, {
        requestId: id,
        hashes,
        numTokens,
        session,
        agent: workload === undefined ? undefined : { workload, agent: agentName! },
        time,
      });
      if (decision === null) return [BATCH_RESULT.noRoom];
      const result: BatchResult = [BATCH_RESULT.ok, decision.cachedDeviceTokens, decision.loadedBlocks, decision.blockIds, decision.blockTable];
      // With a remote tier (serve --redis): the blocks it filled after the device and host hits.
      if (decision.remoteBlocks !== undefined) result.push(decision.remoteBlocks);
      return result;
    }
    case BATCH_OPS.prefillDone:
      item.atMost(3);
      return [BATCH_RESULT.ok, verbs.prefillDone(access, requestId(), item.optionalTime(2, 'time'))];
    case BATCH_OPS.decode: {
      item.atMost(5);
      const id = requestId();
      const tokens = item.int(2, 'tokens', 0, 0x7fffffff);
      const hashes = raw[3] === undefined || raw[3] === null ? undefined : hashesFromMsgpack(raw[3], `${item.where}.hashes`);
      const added = verbs.decode(access, id, tokens, hashes, item.optionalTime(4, 'time'));
      return added === null ? [BATCH_RESULT.noRoom] : [BATCH_RESULT.ok, added];
    }
    case BATCH_OPS.release:
      item.atMost(3);
      verbs.release(access, requestId(), item.optionalTime(2, 'time'));
      return [BATCH_RESULT.ok];
    case BATCH_OPS.act: {
      item.atMost(2);
      const r = verbs.act(access, item.optionalTime(1, 'now'));
      const actions = r.actions.map((a) => (a.type === 'pin' ? [a.type, a.key, a.leafBlockId] : a.type === 'unpin' ? [a.type, a.key] : [a.type, a.blockIds]));
      return [BATCH_RESULT.ok, r.demoted, r.evicted, r.prefetched, r.pinned, r.unpinned, actions];
    }
    default:
      return [BATCH_RESULT.ok, verbs.observe(access, frameworkEvent(op as number, item))];
  }
}

export interface BatchLimits {
  maxItems: number;
  bodyLimit: number;
}

export class BatchCodec {
  readonly #decoder: Decoder;
  readonly #encoder = new Encoder({ useBigInt64: true });
  readonly #limits: BatchLimits;

  constructor(limits: BatchLimits) {
    this.#limits = limits;
    // Lengths past what the body could hold are refused before any allocation.
    this.#decoder = new Decoder({
      useBigInt64: true,
      maxStrLength: 4096,
      maxBinLength: limits.bodyLimit,
      maxArrayLength: limits.bodyLimit,
      maxMapLength: 64,
      maxExtLength: 0,
    });
  }

  decode(body: Uint8Array): unknown[] {
    let items: unknown;
    try {
      items = this.#decoder.decode(body);
    } catch (error) {
      throw badRequest(`body is not valid msgpack: ${(error as Error).message}`);
    }
    if (!Array.isArray(items)) throw badRequest('body must be a msgpack array of items');
    if (items.length > this.#limits.maxItems) throw badRequest(`body holds ${items.length} items, more than the limit of ${this.#limits.maxItems}`);
    return items;
  }

  /** Runs the items in order; each refused item becomes [2, status, message]. */
  run(verbs: Verbs, access: Access, items: readonly unknown[]): { results: BatchResult[]; copies: CopyPlan } {
    const results = new Array<BatchResult>(items.length);
    for (let i = 0; i < items.length; i++) {
      try {
        results[i] = runItem(verbs, access, items[i], i);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        const { statusCode, message } = describeError(error, this.#limits.bodyLimit);
        results[i] = [BATCH_RESULT.error, statusCode, message];
      }
    }
    return { results, copies: verbs.takeCopies() };
  }

  encode(results: BatchResult[], copies: CopyPlan): Uint8Array {
    return this.#encoder.encode({
      results,
      copies: [copies.srcTier, copies.srcSlot, copies.dstTier, copies.dstSlot, copies.stageStarts],
    });
  }
}
