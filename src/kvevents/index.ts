/**
 * Engine KV-event streams: vLLM's ZeroMQ/msgpack event format, decoded and
 * checked, and a per-replica view of the engine's cache that routing and
 * prediction can query.
 */
export {
  blockHashKey,
  decodeBatchValue,
  decodeEvent,
  decodeEventBatch,
  decodeSequence,
  encodeSequence,
  DEFAULT_MEDIUM,
  KvEventFormatError,
  type AllBlocksClearedEvent,
  type BlockRemovedEvent,
  type BlockStoredEvent,
  type KvEvent,
  type KvEventBatch,
} from './events.js';
export { ReplicaCacheView, type ReplicaCacheCounts, type ReplicaCacheViewJSON } from './view.js';
export { KvEventSubscriber, loadZeromq, ZEROMQ_HINT, type KvEventSubscriberOptions } from './subscriber.js';
