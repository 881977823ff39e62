/**
 * vLLM's KV-cache event batches (vllm/distributed/kv_events.py), decoded
 * and checked.
 *
 * On the wire a batch is msgpack: `[ts, [event, ...], data_parallel_rank?]`
 * (msgspec `array_like`, trailing defaults omitted). An event is either a
 * tagged array, the tag first and the fields in declaration order
 * (`["BlockStored", block_hashes, parent_block_hash, token_ids, block_size,
 * lora_id, medium?, ...]`), or a tagged map (`{"type": "BlockStored",
 * "block_hashes": ..., ...}`), which publishers built on msgspec structs
 * without `array_like` send. Fields newer than `medium` (lora_name,
 * extra_keys, group_idx) are accepted and ignored.
 *
 * A batch is checked whole before anything uses it: one bad event rejects
 * the batch with a {@link KvEventFormatError} naming the field, so a cache
 * view never applies half a batch.
 */
import { decode } from '@msgpack/msgpack';

import { describeValue, isRecord } from '../util/check.js';

/** The medium vLLM means when an event names none: its GPU block pool. */
export const DEFAULT_MEDIUM = 'GPU';

export interface BlockStoredEvent {
  type: 'BlockStored';
  /** Normalised 64-bit keys ({@link blockHashKey}), parent first. */
  blockHashes: bigint[];
  parentBlockHash: bigint | null;
  tokenIds: number[];
  blockSize: number;
  loraId: number | null;
  medium: string;
}

export interface BlockRemovedEvent {
  type: 'BlockRemoved';
  blockHashes: bigint[];
  medium: string;
}

export interface AllBlocksClearedEvent {
  type: 'AllBlocksCleared';
}

export type KvEvent = BlockStoredEvent | BlockRemovedEvent | AllBlocksClearedEvent;

export interface KvEventBatch {
  /** Publisher's wall clock, seconds. */
  timestamp: number;
  events: KvEvent[];
  dataParallelRank: number | null;
}

/** A message that does not follow the event schema; the message names the field. */
export class KvEventFormatError extends Error {
  override readonly name = 'KvEventFormatError';
}

const UINT64 = 64;

/**
 * A block hash as one 64-bit key. vLLM publishes either ints (Python's
 * signed 64-bit hash, so possibly negative; msgpack may carry up to uint64)
 * or bytes (a sha256 digest). Ints are taken modulo 2^64; bytes are read
 * as the big-endian integer of their last 8 bytes, which is exactly how
 * vLLM itself turns a bytes hash into an int
 * (`int.from_bytes(hash[-8:], "big")`), so one block gets one key whichever
 * form its engine publishes.
 */
export function blockHashKey(value: unknown, field: string): bigint {
  if (typeof value === 'bigint') {
    if (value < -(1n << 63n) || value >= 1n << 64n) throw new KvEventFormatError(`${field}: ${value} does not fit in 64 bits`);
    return BigInt.asUintN(UINT64, value);
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new KvEventFormatError(`${field}: ${value} is not an integer`);
    return BigInt.asUintN(UINT64, BigInt(value));
  }
  if (value instanceof Uint8Array) {
    if (value.length === 0) throw new KvEventFormatError(`${field}: an empty bytes hash`);
    let key = 0n;
    for (let i = Math.max(0, value.length - 8); i < value.length; i++) key = (key << 8n) | BigInt(value[i]!);
    return key;
  }
  throw new KvEventFormatError(`${field}: a block hash must be an integer or bytes, got ${describeValue(value)}`);
}

function hashList(value: unknown, field: string): bigint[] {
  if (!Array.isArray(value)) throw new KvEventFormatError(`${field} must be an array, got ${describeValue(value)}`);
  return value.map((h, i) => blockHashKey(h, `${field}[${i}]`));
}

function int(value: unknown, field: string, min: number): number {
  const n = typeof value === 'bigint' && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    throw new KvEventFormatError(`${field} must be an integer >= ${min}, got ${describeValue(value)}`);
  }
  return n;
}

function optionalInt(value: unknown, field: string, min: number): number | null {
  return value === null || value === undefined ? null : int(value, field, min);
}

function medium(value: unknown, field: string): string {
  if (value === null || value === undefined) return DEFAULT_MEDIUM;
  if (typeof value !== 'string' || value.length === 0) throw new KvEventFormatError(`${field} must be a non-empty string or null, got ${describeValue(value)}`);
  return value;
}

function tokenIds(value: unknown, field: string): number[] {
  if (!Array.isArray(value)) throw new KvEventFormatError(`${field} must be an array, got ${describeValue(value)}`);
  return value.map((t, i) => int(t, `${field}[${i}]`, 0));
}

const FIELDS = {
  BlockStored: ['block_hashes', 'parent_block_hash', 'token_ids', 'block_size', 'lora_id', 'medium'],
  BlockRemoved: ['block_hashes', 'medium'],
  AllBlocksCleared: [],
} as const;

type Tag = keyof typeof FIELDS;

/** One event, from either wire form. */
export function decodeEvent(raw: unknown, where: string): KvEvent {
  let tag: unknown;
  let field: (name: string) => unknown;
  if (Array.isArray(raw)) {
    tag = raw[0];
    field = (name) => raw[1 + (FIELDS[tag as Tag] as readonly string[]).indexOf(name)];
  } else if (isRecord(raw)) {
    tag = raw.type;
    field = (name) => raw[name];
  } else {
    throw new KvEventFormatError(`${where} must be a tagged array or map, got ${describeValue(raw)}`);
  }
  if (typeof tag !== 'string' || !Object.hasOwn(FIELDS, tag)) {
    throw new KvEventFormatError(`${where}: unknown event type ${describeValue(tag)} (known: ${Object.keys(FIELDS).join(', ')})`);
  }
  const at = (name: string) => `${where}.${name}`;
  if (Array.isArray(raw)) {
    const required = tag === 'BlockStored' ? 5 : tag === 'BlockRemoved' ? 1 : 0;
    if (raw.length - 1 < required) throw new KvEventFormatError(`${where}: ${tag} has ${raw.length - 1} fields, needs at least ${required}`);
  }
  switch (tag as Tag) {
    case 'BlockStored': {
      const parent = field('parent_block_hash');
      return {
        type: 'BlockStored',
        blockHashes: hashList(field('block_hashes'), at('block_hashes')),
        parentBlockHash: parent === null || parent === undefined ? null : blockHashKey(parent, at('parent_block_hash')),
        tokenIds: tokenIds(field('token_ids'), at('token_ids')),
        blockSize: int(field('block_size'), at('block_size'), 1),
        loraId: optionalInt(field('lora_id'), at('lora_id'), 0),
        medium: medium(field('medium'), at('medium')),
      };
    }
    case 'BlockRemoved':
      return { type: 'BlockRemoved', blockHashes: hashList(field('block_hashes'), at('block_hashes')), medium: medium(field('medium'), at('medium')) };
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
  }
}

/** A decoded batch: `[ts, events, dp_rank?]` or `{ts, events, data_parallel_rank?}`. */
export function decodeBatchValue(raw: unknown): KvEventBatch {
  let ts: unknown;
  let events: unknown;
  let rank: unknown;
  if (Array.isArray(raw)) [ts, events, rank] = raw;
  else if (isRecord(raw)) ({ ts, events, data_parallel_rank: rank } = raw);
  else throw new KvEventFormatError(`batch must be [ts, events, dp_rank?], got ${describeValue(raw)}`);
  if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new KvEventFormatError(`batch.ts must be a finite number, got ${describeValue(ts)}`);
  if (!Array.isArray(events)) throw new KvEventFormatError(`batch.events must be an array, got ${describeValue(events)}`);
  return {
    timestamp: ts,
    events: events.map((e, i) => decodeEvent(e, `batch.events[${i}]`)),
    dataParallelRank: optionalInt(rank, 'batch.data_parallel_rank', 0),
  };
}

/** Decodes one msgpack payload; throws {@link KvEventFormatError} on anything else. */
export function decodeEventBatch(payload: Uint8Array): KvEventBatch {
  let raw: unknown;
  try {
    raw = decode(payload, { useBigInt64: true });
  } catch (error) {
    throw new KvEventFormatError(`payload is not msgpack (${error instanceof Error ? error.message : String(error)})`);
  }
  return decodeBatchValue(raw);
}

/** The 8-byte big-endian sequence frame as a number; -1 is the replay end marker. */
export function decodeSequence(frame: Uint8Array, what: string): number {
  if (frame.length !== 8) throw new KvEventFormatError(`${what}: sequence frame has ${frame.length} bytes, expected 8`);
  const value = new DataView(frame.buffer, frame.byteOffset, 8).getBigInt64(0, false);
  if (value === -1n) return -1;
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new KvEventFormatError(`${what}: sequence ${value} out of range`);
  return Number(value);
}

/** The 8-byte big-endian frame of a sequence number. */
export function encodeSequence(seq: number): Buffer {
  const frame = Buffer.alloc(8);
  frame.writeBigInt64BE(BigInt(seq));
  return frame;
}
