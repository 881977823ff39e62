/**
 * The sidecar: the in-process Runtime behind an HTTP API (fastify) for
 * engines and frameworks in other processes. Handlers are thin: the
 * schema validates, the verbs (verbs.ts) check the token's workloads and
 * call the runtime, the handler shapes the reply. See docs/serving.md.
 */
import { isIP } from 'node:net';

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

import type { CopyPlan } from '../blocks/types.js';
import type { FrameworkEvent } from '../policies/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { OPEN_ACCESS, type Access, type TokenTable } from './access.js';
import { admitsOf, BatchCodec } from './batch.js';
import { describeError, forbidden, HttpError } from './errors.js';
import { hashesFromStrings } from './hashes.js';
import { SidecarMetrics } from './metrics.js';
import { RateLimiter } from './rate_limit.js';
import { registerBlockRoutes, registerRemoteMetrics, remoteInfo, type SidecarRemote } from './remote.js';
import { actSchema, admitSchema, decodeSchema, explainParamsSchema, frameworkEventSchema, predictSchema, requestTimeSchema } from './schemas.js';
import { Verbs } from './verbs.js';

export const SIDECAR_DEFAULTS = {
  host: '127.0.0.1',
  port: 8470,
  bodyLimit: 8 << 20,
  maxBatchItems: 100_000,
} as const;

export interface SidecarOptions {
  runtime: Runtime;
  /** Bearer tokens; null or absent: no auth, which only a loopback address allows. */
  tokens?: TokenTable | null;
  /** Largest request body in bytes (default 8 MiB). */
  bodyLimit?: number;
  /** Most items in one batch (default 100,000). */
  maxBatchItems?: number;
  /** Requests per second per token (0: no limit) and the bucket size. */
  rateLimit?: { rate: number; burst?: number };
  /** Export the process's CPU, memory and event-loop metrics too (default true). */
  processMetrics?: boolean;
  /** The Redis remote tier the runtime was built with (RuntimeOptions.remote), for its endpoints, info and metrics. */
  remote?: SidecarRemote | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    access: Access;
  }
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * @throws RangeError when `host` is reachable from other machines and no
 *   token guards the sidecar.
 */
export function checkExposure(host: string, tokens: TokenTable | null | undefined): void {
  if (!isLoopback(host) && (tokens === null || tokens === undefined || tokens.size === 0)) {
    throw new RangeError(`listening on ${host} (not loopback) needs at least one token: pass --tokens FILE`);
  }
}

const copiesJson = (plan: CopyPlan) => ({
  srcTier: Array.from(plan.srcTier),
  srcSlot: Array.from(plan.srcSlot),
  dstTier: Array.from(plan.dstTier),
  dstSlot: Array.from(plan.dstSlot),
  stageStarts: Array.from(plan.stageStarts),
});

const STATUS_WORDS: Readonly<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
  413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

const MSGPACK_TYPES = ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack'];

export class Sidecar {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly metrics: SidecarMetrics;
  readonly verbs: Verbs;
  readonly #tokens: TokenTable | null;
  readonly #remote: SidecarRemote | null;

  constructor(options: SidecarOptions) {
    const runtime = options.runtime;
    const bodyLimit = options.bodyLimit ?? SIDECAR_DEFAULTS.bodyLimit;
    if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) throw new RangeError(`bodyLimit must be an integer >= 1024, got ${bodyLimit}`);
    const maxItems = options.maxBatchItems ?? SIDECAR_DEFAULTS.maxBatchItems;
    if (!Number.isInteger(maxItems) || maxItems < 1) throw new RangeError(`maxBatchItems must be an integer >= 1, got ${maxItems}`);
    this.runtime = runtime;
    this.#tokens = options.tokens ?? null;
    this.#remote = options.remote ?? null;
    this.metrics = new SidecarMetrics(runtime, { processMetrics: options.processMetrics ?? true });
    this.verbs = new Verbs(runtime, this.metrics);
    if (this.#remote !== null) registerRemoteMetrics(this.metrics.registry, this.#remote);
    const limiter = new RateLimiter(options.rateLimit ?? { rate: 0 });
    const codec = new BatchCodec({ maxItems, bodyLimit });
    const app = Fastify({
      bodyLimit,
      logger: false,
      forceCloseConnections: 'idle',
      return503OnClosing: true,
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    });
    this.app = app;
    // Set per request in onRequest; the open sidecar's access until then.
    app.decorateRequest('access', null as unknown as Access);
    this.#hooks(app, limiter);
    // Only JSON and msgpack bodies: a text body is a client mistake (415), not a string to validate.
    app.removeContentTypeParser('text/plain');
    app.addContentTypeParser(MSGPACK_TYPES, { parseAs: 'buffer' }, (request, body, done) => {
      if (request.routeOptions.url !== '/v1/batch') done(new HttpError(415, 'body: send application/json (msgpack is for /v1/batch only)'), undefined);
      else done(null, body);
    });
    this.#routes(app, codec);
    app.setNotFoundHandler((request, reply) => {
      void sendError(reply, new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`), bodyLimit);
    });
    app.setErrorHandler((error, request, reply) => {
      const status = sendError(reply, error, bodyLimit);
      if (status >= 500) process.stderr.write(`cachesage serve: ${request.method} ${request.url}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    });
  }

  #hooks(app: FastifyInstance, limiter: RateLimiter): void {
    const tokens = this.#tokens;
    const metrics = this.metrics;
    // Before the body is read: an unknown caller costs no parsing.
    app.addHook('onRequest', async (request) => {
      request.access = OPEN_ACCESS;
      if (request.routeOptions.url === '/healthz') return;
      if (tokens !== null) {
        const access = tokens.lookup(request.headers.authorization);
        if (access === null) {
          metrics.authFailed();
          throw new HttpError(401, request.headers.authorization === undefined ? 'missing Authorization: Bearer TOKEN header' : 'unknown bearer token', {
            'www-authenticate': 'Bearer realm="cachesage"',
          });
        }
        request.access = access;
      }
      const wait = limiter.take(tokens === null ? request.ip : request.access);
      if (wait > 0) {
        metrics.rateLimited();
        throw new HttpError(429, `rate limit of ${limiter.rate} requests/s (burst ${limiter.burst}) exceeded for ${request.access.name}`, {
          'retry-after': String(Math.max(1, Math.ceil(wait))),
        });
      }
    });
    app.addHook('onResponse', async (request, reply) => {
      metrics.request(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
    });
  }

  #routes(app: FastifyInstance, codec: BatchCodec): void {
    const verbs = this.verbs;
    const runtime = this.runtime;
    const metrics = this.metrics;
    const take = () => copiesJson(verbs.takeCopies());
    const remote = this.#remote;
    if (remote !== null) registerBlockRoutes(app, remote, runtime.manager.bytesPerBlock);

    app.get('/healthz', async () => ({ ok: true }));

    app.post<{ Body: FrameworkEvent }>('/v1/events', { schema: { body: frameworkEventSchema } }, async (request) => {
      const ignored = verbs.observe(request.access, request.body);
      return ignored === null ? { applied: true } : { applied: false, ignored };
    });

    interface AdmitBody { requestId: number; hashes: string[]; numTokens: number; session?: string; agent?: { workload: string; agent: string }; time?: number }
    app.post<{ Body: AdmitBody }>('/v1/admit', { schema: { body: admitSchema } }, async (request) => {
      const b = request.body;
      const hashes = hashesFromStrings(b.hashes, 'body.hashes');
      // The remote tier reads what it holds of the prompt first; the admit below uses it.
      if (remote !== null) await remote.tier.prepare(b.requestId, hashes);
      let decision;
      try {
        decision = verbs.admit(request.access, { requestId: b.requestId, hashes, numTokens: b.numTokens, session: b.session, agent: b.agent, time: b.time });
      } finally {
        remote?.tier.discard(b.requestId);
      }
      if (decision === null) return { admitted: false, copies: take() };
      return {
        admitted: true,
        cachedDeviceTokens: decision.cachedDeviceTokens,
        loadedBlocks: decision.loadedBlocks,
        ...(decision.remoteBlocks === undefined ? {} : { remoteBlocks: decision.remoteBlocks }),
        blockIds: Array.from(decision.blockIds),
        blockTable: Array.from(decision.blockTable),
        copies: take(),
      };
    });

    app.post<{ Body: { requestId: number; time?: number } }>('/v1/prefill-done', { schema: { body: requestTimeSchema } }, async (request) => {
      const blockIds = verbs.prefillDone(request.access, request.body.requestId, request.body.time);
      return { blockIds: Array.from(blockIds), copies: take() };
    });

    app.post<{ Body: { requestId: number; tokens: number; hashes?: string[]; time?: number } }>('/v1/decode', { schema: { body: decodeSchema } }, async (request) => {
      const b = request.body;
      const hashes = b.hashes === undefined ? undefined : hashesFromStrings(b.hashes, 'body.hashes');
      const added = verbs.decode(request.access, b.requestId, b.tokens, hashes, b.time);
      return added === null ? { appended: false, copies: take() } : { appended: true, blockIds: Array.from(added), copies: take() };
    });

    app.post<{ Body: { requestId: number; time?: number } }>('/v1/release', { schema: { body: requestTimeSchema } }, async (request) => {
      verbs.release(request.access, request.body.requestId, request.body.time);
      return { released: true, copies: take() };
    });

    app.post<{ Body: { now?: number } }>(
      '/v1/act',
      {
        schema: { body: actSchema },
        // An empty body means "now": nothing to validate.
        preValidation: async (request) => {
          if (request.body === undefined || request.body === null) request.body = {};
        },
      },
      async (request) => {
        const r = verbs.act(request.access, request.body.now);
        return {
          actions: r.actions.map((a) => ('blockIds' in a ? { type: a.type, blockIds: Array.from(a.blockIds) } : a)),
          demoted: r.demoted,
          evicted: r.evicted,
          prefetched: r.prefetched,
          pinned: r.pinned,
          unpinned: r.unpinned,
          copies: take(),
        };
      },
    );

    app.post<{ Body: { session: string; horizon?: number } }>('/v1/predict', { schema: { body: predictSchema } }, async (request) => {
      return { prediction: verbs.predict(request.access, request.body) };
    });

    app.get<{ Params: { blockId: string } }>('/v1/explain/:blockId', { schema: { params: explainParamsSchema } }, async (request) => {
      return verbs.explain(request.access, Number(request.params.blockId));
    });

    app.get('/v1/info', async () => {
      const m = runtime.manager;
      const info = { ...runtime.info(), blockSize: m.blockSize, deviceBlocks: m.deviceBlocks, hostBlocks: m.hostBlocks, stats: runtime.stats, auth: this.#tokens !== null };
      return remote === null ? info : { ...info, remote: remoteInfo(remote) };
    });

    app.post('/v1/batch', async (request, reply) => {
      if (!Buffer.isBuffer(request.body)) throw new HttpError(415, 'body: /v1/batch takes application/msgpack (docs/serving.md, "The batch schema")');
      const items = codec.decode(request.body);
      metrics.batchItems(items.length);
      const admits = remote === null ? [] : admitsOf(items);
      // The remote tier reads what it holds of each prompt first; the admits in the run use it.
      await Promise.all(admits.map((a) => remote!.tier.prepare(a.requestId, a.hashes)));
      let ran;
      try {
        ran = codec.run(verbs, request.access, items);
      } finally {
        for (const a of admits) remote!.tier.discard(a.requestId);
      }
      const { results, copies } = ran;
      return reply.type('application/msgpack').send(Buffer.from(codec.encode(results, copies).buffer));
    });

    app.get('/metrics', async (request, reply) => {
      if (!request.access.all) throw forbidden('metrics: the metrics cover every workload; they need a token whose workloads are "*"');
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    });
  }

  /**
   * Starts listening; resolves to the bound address (port 0 picks a free port).
   *
   * @throws RangeError for a non-loopback host without tokens.
   */
  async listen(host: string = SIDECAR_DEFAULTS.host, port: number = SIDECAR_DEFAULTS.port): Promise<{ host: string; port: number; url: string }> {
    checkExposure(host, this.#tokens);
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    const bound = typeof address === 'object' && address !== null ? address.port : port;
    const shown = host.includes(':') ? `[${host}]` : host;
    return { host, port: bound, url: `http://${shown}:${bound}` };
  }

  /** Stops accepting requests and waits for those in flight. */
  async close(): Promise<void> {
    await this.app.close();
  }
}

function sendError(reply: FastifyReply, error: unknown, bodyLimit: number): number {
  const { statusCode, message, headers } = describeError(error, bodyLimit);
  if (headers) void reply.headers(headers);
  void reply.code(statusCode).type('application/json').send({ statusCode, error: STATUS_WORDS[statusCode] ?? 'Error', message });
  return statusCode;
}
