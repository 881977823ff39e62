/**
 * Builds the sidecar's remote tier (`cachesage serve --redis`): the Redis
 * connection, a CPU mirror of the engine's KV bytes laid out like the
 * block manager's tiers, the RuntimeRemoteTier the runtime drives, and the
 * exchange of CacheSage's hand-off counts. A Redis that is not there at
 * start is not an error: the connection keeps trying in the background.
 */
import { BlockManager } from '../blocks/block_manager.js';
import { CpuDataPlane } from '../blocks/data_plane.js';
import { createCacheSagePolicy, sharesTransitions } from '../policies/cachesage/policy.js';
import type { Policy } from '../policies/types.js';
import { RemoteBlockStore } from '../remote/block_store.js';
import { openRedis, type RedisConnection } from '../remote/redis.js';
import { RuntimeRemoteTier } from '../remote/runtime_remote_tier.js';
import { TransitionExchange } from '../remote/transition_exchange.js';
import { redactedRedisUrl, type SidecarRemote } from './remote.js';

export interface SidecarRemoteOptions {
  /** redis://[:password@]host:port[/db] */
  url: string;
  /** Key prefix shared by the replicas. */
  namespace: string;
  /** The model and KV layout the engine computes: blocks are shared only under an equal key. */
  modelKey: string;
  blocks: { blockSize: number; deviceBlocks: number; hostBlocks: number; bytesPerBlock: number };
  /** Policy names, in priority order; 'cachesage' becomes an instance the exchange can reach. */
  policies: readonly string[];
}

/** What the runtime and the sidecar are built with, before the sidecar listens. */
export interface SidecarRemoteParts {
  manager: BlockManager;
  tier: RuntimeRemoteTier;
  connection: RedisConnection;
  policies: Array<string | Policy>;
  namespace: string;
  /** For the sidecar: its replica id and exchange are set by startExchange once it listens. */
  remote: SidecarRemote;
}

/** @throws TypeError / RangeError naming a bad option; Error when ioredis is not installed. */
export async function openSidecarRemote(options: SidecarRemoteOptions): Promise<SidecarRemoteParts> {
  const { blockSize, deviceBlocks, hostBlocks, bytesPerBlock } = options.blocks;
  // Sizes first: a copy of the tiers this machine cannot hold is refused before any connection.
  const manager = new BlockManager({ blockSize, deviceBlocks, hostBlocks, bytesPerBlock });
  const plane = new CpuDataPlane({ bytesPerBlock, deviceBlocks, hostBlocks });
  // Short timeouts: a dead Redis must cost an admit milliseconds, not seconds.
  const connection = await openRedis({ url: options.url, commandTimeoutMs: 500, connectTimeoutMs: 1000, maxReconnectDelayMs: 500 });
  try {
    const store = new RemoteBlockStore(connection, {
      namespace: options.namespace,
      model: options.modelKey,
      // The engine's bytes are opaque here: the model key names their layout, the size checks it.
      layout: { blockSize, layout: `bytes${bytesPerBlock}`, dtype: 'opaque' },
      bytesPerBlock,
    });
    const tier = new RuntimeRemoteTier(manager, plane, store);
    const policies = options.policies.map((name) => (name === 'cachesage' ? createCacheSagePolicy() : name));
    const remote: SidecarRemote = { tier, connection, exchange: null, replica: null, url: redactedRedisUrl(options.url) };
    return { manager, tier, connection, policies, namespace: options.namespace, remote };
  } catch (error) {
    await connection.close();
    throw error;
  }
}

/**
 * Names this replica and starts sharing hand-off counts every
 * `intervalSeconds` under its name (when a policy shares them).
 */
export function startExchange(parts: SidecarRemoteParts, replica: string, intervalSeconds: number): void {
  parts.remote.replica = replica;
  const sharing = parts.policies.find((p): p is Policy => typeof p !== 'string' && sharesTransitions(p));
  let exchange: TransitionExchange | null = null;
  if (sharing !== undefined && sharesTransitions(sharing)) {
    exchange = new TransitionExchange(parts.connection.client, sharing, { replica, namespace: parts.namespace });
    exchange.start(Math.max(10, Math.round(intervalSeconds * 1000)));
    // A first exchange at once, so a fresh replica predicts with its peers' counts from the start.
    void exchange.sync();
  }
  parts.remote.exchange = exchange;
}

/** Publishes the counts one last time and waits (briefly) for the saves in flight, then disconnects. */
export async function closeSidecarRemote(remote: SidecarRemote): Promise<void> {
  remote.exchange?.stop();
  await remote.exchange?.publish();
  await Promise.race([remote.tier.flush(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  await remote.connection.close();
}
