/**
 * The sidecar's remote tier (`cachesage serve --redis`): the block-bytes
 * endpoints engines write computed blocks to and read loaded blocks from,
 * the remote part of /v1/info, and its metrics. The tier itself is a
 * RuntimeRemoteTier the runtime drives (src/remote); Redis being down is
 * reported here, never turned into a failed request.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';

import type { RedisConnection } from '../remote/redis.js';
import type { RuntimeRemoteTier } from '../remote/runtime_remote_tier.js';
import type { TransitionExchange } from '../remote/transition_exchange.js';
import { forbidden, HttpError, notFound } from './errors.js';
import { HASH_STRING_SCHEMA, hashesFromStrings } from './hashes.js';

export interface SidecarRemote {
  tier: RuntimeRemoteTier;
  connection: RedisConnection;
  /** Shares CacheSage's transition counts; null when no policy shares them (or not started yet). */
  exchange: TransitionExchange | null;
  /** This replica's id among those sharing the Redis; null until named (startExchange). */
  replica: string | null;
  /** The Redis address, without any password, for reports. */
  url: string;
}

export const OCTET_STREAM = 'application/octet-stream';
const BLOCK_ROUTE = '/v1/blocks/:hash';

/** The Redis address as reports may show it: the password, if any, replaced. */
export function redactedRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@');
}

/** Whether Redis answers commands now. */
export function remoteConnected(remote: SidecarRemote): boolean {
  return remote.connection.client.status === 'ready';
}

/** The remote part of /v1/info. */
export function remoteInfo(remote: SidecarRemote): Record<string, unknown> {
  return {
    url: remote.url,
    replica: remote.replica,
    connected: remoteConnected(remote),
    // Bumps each time the connection became ready: > 1 means it was lost and rejoined.
    connections: remote.connection.epoch(),
    lastError: remote.connection.lastError(),
    model: remote.tier.store.model,
    blocks: { ...remote.tier.stats },
    store: { ...remote.tier.store.stats },
    exchange: remote.exchange === null ? null : { ...remote.exchange.stats },
  };
}

/** Adds the remote tier's metrics to the sidecar's registry, read at scrape time. */
export function registerRemoteMetrics(registry: Registry, remote: SidecarRemote): void {
  const registers = [registry];
  new Gauge({
    name: 'cachesage_remote_connected',
    help: '1 while the Redis remote tier answers commands, 0 while it does not (the sidecar serves from its local tiers)',
    registers,
    collect() {
      this.set(remoteConnected(remote) ? 1 : 0);
    },
  });
  new Counter({
    name: 'cachesage_remote_connections_total',
    help: 'Times the connection to Redis became ready (rejoins after the first)',
    registers,
    collect() {
      this.reset();
      this.inc(remote.connection.epoch());
    },
  });
  const stats = remote.tier.stats;
  new Counter({
    name: 'cachesage_remote_blocks_total',
    help: 'Remote-tier block operations: written (by the engine), written_through, saved (dropped blocks), already_remote, backpressure, save_failures, loaded (by admits), served_local, served_remote',
    labelNames: ['op'],
    registers,
    collect() {
      this.reset();
      this.inc({ op: 'written' }, stats.written);
      this.inc({ op: 'written_through' }, stats.writtenThrough);
      this.inc({ op: 'saved' }, stats.saved);
      this.inc({ op: 'already_remote' }, stats.alreadyRemote);
      this.inc({ op: 'backpressure' }, stats.backpressure);
      this.inc({ op: 'save_failures' }, stats.saveFailures);
      this.inc({ op: 'loaded' }, stats.loaded);
      this.inc({ op: 'served_local' }, stats.servedLocal);
      this.inc({ op: 'served_remote' }, stats.servedRemote);
    },
  });
  new Counter({
    name: 'cachesage_remote_errors_total',
    help: 'Redis commands that failed (server down, timeout), by part: store (blocks) or exchange (transition counts)',
    labelNames: ['part'],
    registers,
    collect() {
      this.reset();
      this.inc({ part: 'store' }, remote.tier.store.stats.errors);
      if (remote.exchange !== null) this.inc({ part: 'exchange' }, remote.exchange.stats.errors);
    },
  });
}

/**
 * PUT /v1/blocks/:hash (the engine computed a committed block: its bytes)
 * and GET /v1/blocks/:hash (a block's bytes, from this replica or the
 * remote tier). The bytes are the body, exactly bytesPerBlock of them.
 * Blocks are addressed by content across workloads, so only a token for
 * all workloads ("*") may use them.
 */
export function registerBlockRoutes(app: FastifyInstance, remote: SidecarRemote, bytesPerBlock: number): void {
  const params = { type: 'object', required: ['hash'], properties: { hash: HASH_STRING_SCHEMA }, additionalProperties: false } as const;
  const hashOf = (text: string) => hashesFromStrings([text], 'params.hash')[0]!;
  const checkAll = (all: boolean, op: string) => {
    if (!all) throw forbidden(`${op}: blocks are shared across workloads; it needs a token whose workloads are "*"`);
  };
  app.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer', bodyLimit: Math.max(1024, bytesPerBlock) }, (request, body, done) => {
    if (request.routeOptions.url !== BLOCK_ROUTE) done(new HttpError(415, `body: ${OCTET_STREAM} is for PUT ${BLOCK_ROUTE} only`), undefined);
    else done(null, body);
  });

  app.put<{ Params: { hash: string } }>(BLOCK_ROUTE, { schema: { params } }, async (request) => {
    checkAll(request.access.all, 'PUT /v1/blocks');
    const body = request.body;
    if (!Buffer.isBuffer(body)) throw new HttpError(415, `body: send the block's bytes as ${OCTET_STREAM}`);
    if (body.length !== bytesPerBlock) throw new HttpError(400, `body: a block is exactly ${bytesPerBlock} bytes (--bytes-per-block), got ${body.length}`);
    const hash = hashOf(request.params.hash);
    const written = await remote.tier.writeBlock(hash, body);
    if (written === null) throw notFound(`PUT /v1/blocks: no committed block has hash ${request.params.hash} here (prefill-done or decode commits it first)`);
    return { stored: true, remote: written.remote };
  });

  app.get<{ Params: { hash: string } }>(BLOCK_ROUTE, { schema: { params } }, async (request, reply) => {
    checkAll(request.access.all, 'GET /v1/blocks');
    const found = await remote.tier.readBlock(hashOf(request.params.hash));
    if (found === null) throw notFound(`GET /v1/blocks: no replica wrote the bytes of block ${request.params.hash} (or the remote tier is unreachable)`);
    return reply.type(OCTET_STREAM).header('x-cachesage-source', found.source).send(Buffer.from(found.bytes.buffer, found.bytes.byteOffset, found.bytes.byteLength));
  });
}
