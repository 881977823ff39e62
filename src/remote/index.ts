/**
 * Beyond one machine: a Redis remote tier below host for KV blocks, and
 * CacheSage's transition statistics shared across replicas.
 */
export { openRedis, loadIoredis, IOREDIS_HINT, type RedisClient, type RedisConnection, type RedisConnectionOptions } from './redis.js';
export { RemoteKeys, LearningKeys, type KvLayout } from './keys.js';
export { RemoteBlockStore, type BlockCommitRecord, type RemoteBlockStoreOptions, type RemoteBlockStoreStats } from './block_store.js';
export { RemoteTier, type BlockBytesPlane, type RemoteAdmitResult, type RemoteTierOptions, type RemoteTierStats } from './remote_tier.js';
export {
  TransitionExchange,
  type SharedTransitionsEntry,
  type TransitionExchangeOptions,
  type TransitionExchangeStats,
} from './transition_exchange.js';
export { RuntimeRemoteTier, type RuntimeRemoteTierOptions, type RuntimeRemoteTierStats } from './runtime_remote_tier.js';
