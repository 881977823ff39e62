/**
 * Where the remote tier keeps things in Redis (docs/remote.md, "Key layout").
 *
 *   <ns>:kv:v1:<model>:<layout id>:{<block hash>}:data   the block's KV bytes
 *   <ns>:kv:v1:<model>:<layout id>:{<block hash>}:meta   its commit record
 *   <ns>:learn:v1:workloads                              set of workload names
 *   <ns>:learn:v1:{<workload>}                           hash: replica id -> counts
 *
 * A block is content-addressed: its hash names its token prefix, and the
 * model and KV layout (tokens per block, layer/head layout, dtype) say how
 * its bytes were computed, so replicas agree on a key exactly when they
 * could use each other's bytes. The block hash is the Redis Cluster hash
 * tag: a block's two keys live on one shard, and blocks spread evenly.
 */
import { checkInt, describeValue, isRecord } from '../util/check.js';

/** How a block's KV bytes were laid out: replicas share blocks only on equal layouts. */
export interface KvLayout {
  /** Tokens per block. */
  blockSize: number;
  /** Layer and head layout, e.g. "L32.KVH8.D128" (free text, the engine's own name for it). */
  layout: string;
  /** Element type, e.g. "bfloat16". */
  dtype: string;
}

function part(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new TypeError(`${name} must be a non-empty string of at most 200 characters, got ${describeValue(value)}`);
  }
  // encodeURIComponent escapes ':' and the braces, so no name can forge a separator or a hash tag.
  return encodeURIComponent(value);
}

export function checkLayout(layout: unknown, name: string): KvLayout {
  if (!isRecord(layout)) throw new TypeError(`${name} must be {blockSize, layout, dtype}, got ${describeValue(layout)}`);
  return {
    blockSize: checkInt(layout.blockSize, `${name}.blockSize`, 1, 1 << 20),
    layout: layout.layout as string,
    dtype: layout.dtype as string,
  };
}

/** Builds the keys of one namespace, model and layout. */
export class RemoteKeys {
  readonly #blockPrefix: string;

  constructor(namespace: string, model: string, layout: KvLayout) {
    const ns = part(namespace, 'namespace');
    const layoutId = `bs${layout.blockSize}.${part(layout.layout, 'layout.layout')}.${part(layout.dtype, 'layout.dtype')}`;
    this.#blockPrefix = `${ns}:kv:v1:${part(model, 'model')}:${layoutId}:`;
  }

  static hashText(hash: bigint): string {
    return hash.toString(16).padStart(16, '0');
  }

  data(hash: bigint): string {
    return `${this.#blockPrefix}{${RemoteKeys.hashText(hash)}}:data`;
  }

  meta(hash: bigint): string {
    return `${this.#blockPrefix}{${RemoteKeys.hashText(hash)}}:meta`;
  }
}

/** Keys of shared learning, which depend on the namespace only. */
export class LearningKeys {
  readonly #prefix: string;

  constructor(namespace: string) {
    this.#prefix = `${part(namespace, 'namespace')}:learn:v1:`;
  }

  workloads(): string {
    return `${this.#prefix}workloads`;
  }

  workload(name: string): string {
    return `${this.#prefix}{${part(name, 'workload')}}`;
  }
}
