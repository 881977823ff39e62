/**
 * `cachesage serve`: the runtime as a sidecar process (src/serve) for
 * engines and frameworks in other processes. Restores what the policies
 * learned from --snapshot at start-up and writes it back, atomically, on
 * SIGTERM or SIGINT.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

import { BACKEND_CHOICES, selectBackend, type BackendChoice } from '../compute/backend.js';
import { MAX_BLOCK_IDS } from '../blocks/validate.js';
import { isBound } from '../policies/registry.js';
import { Runtime } from '../runtime/runtime.js';
import { SnapshotError } from '../runtime/snapshot.js';
import { readTokenFile, TokenFileError, type TokenTable } from '../serve/access.js';
import { checkExposure, Sidecar, SIDECAR_DEFAULTS } from '../serve/server.js';
import { closeSidecarRemote, openSidecarRemote, startExchange, type SidecarRemoteParts } from '../serve/remote_setup.js';
import { flagValue, integerFlag, parseFlags, policiesFlag, positiveFlag, UsageError, type FlagSpec } from './args.js';

const DEFAULTS = {
  ...SIDECAR_DEFAULTS,
  deviceBlocks: 4096,
  hostBlocks: 0,
  blockSize: 16,
  bytesPerBlock: 0,
  policies: ['cachesage'],
  backend: 'cpu',
} as const;

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  host: { kind: 'value' },
  port: { kind: 'value' },
  'device-blocks': { kind: 'value' },
  'host-blocks': { kind: 'value' },
  'block-size': { kind: 'value' },
  'bytes-per-block': { kind: 'value' },
  policies: { kind: 'value' },
  backend: { kind: 'value' },
  tokens: { kind: 'value' },
  snapshot: { kind: 'value' },
  'snapshot-interval': { kind: 'value' },
  'body-limit': { kind: 'value' },
  'max-batch': { kind: 'value' },
  'rate-limit': { kind: 'value' },
  burst: { kind: 'value' },
  'no-process-metrics': { kind: 'switch' },
  redis: { kind: 'value' },
  'replica-id': { kind: 'value' },
  'model-key': { kind: 'value' },
  'redis-namespace': { kind: 'value' },
  'exchange-interval': { kind: 'value' },
};

export const SERVE_HELP = `Usage: cachesage serve [options]

Runs the cachesage runtime as a sidecar: an HTTP API for serving engines
(admit, prefill-done, decode, release, act) and agent frameworks (session,
step and tool events), a batched msgpack endpoint for the hot path, and
Prometheus metrics. Endpoints, schemas and the token file: docs/serving.md.

Listening:
  --host ADDR            address to listen on (default ${DEFAULTS.host}); an address
                         other than loopback requires --tokens
  --port N               TCP port, 0 for any free one (default ${DEFAULTS.port})

Blocks and policies:
  --device-blocks N      device-tier KV blocks the engine has (default ${DEFAULTS.deviceBlocks})
  --host-blocks N        host-tier KV blocks; 0 = no host tier (default ${DEFAULTS.hostBlocks})
  --block-size N         tokens per KV block, 1..1024 (default ${DEFAULTS.blockSize})
  --bytes-per-block N    KV bytes per block, for prefetch budgets (default: unknown)
  --policies LIST        comma-separated, in priority order (default ${DEFAULTS.policies.join(',')});
                         same names as replay, without the offline bounds
  --backend B            compute backend: cpu (default), auto, webgpu, cuda or tfjs

State:
  --snapshot FILE        restore what the policies learned from FILE at start-up
                         (when it exists; a corrupt FILE is refused) and write
                         it back atomically on SIGTERM or SIGINT
  --snapshot-interval S  also write the snapshot every S seconds

Many replicas (docs/serving.md, "Many sidecars, one Redis"):
  --redis URL            redis://[:password@]host:port[/db]: a remote KV tier
                         below host shared with the other sidecars on it, and
                         CacheSage's learned hand-offs shared with them; needs
                         --bytes-per-block. Redis down at start or later: the
                         sidecar serves from its local tiers and rejoins
  --replica-id NAME      this sidecar's id among them (default HOSTNAME:PORT)
  --model-key STRING     the model and KV layout the engine computes; sidecars
                         share blocks only with an equal key, block size and
                         bytes per block (default "default")
  --redis-namespace NS   key prefix in Redis (default cachesage)
  --exchange-interval S  seconds between publishing and pulling the hand-off
                         counts (default 5)

Security and limits:
  --tokens FILE          bearer tokens: a JSON array of {"token": "...",
                         "workloads": ["a", ...] | "*", "name"?: "..."}; every
                         route but /healthz then needs Authorization: Bearer TOKEN
  --body-limit BYTES     largest request body (default ${DEFAULTS.bodyLimit})
  --max-batch N          most items in one /v1/batch request (default ${DEFAULTS.maxBatchItems})
  --rate-limit R         requests per second per token, refused with 429 past
                         it; 0 = no limit (default 0)
  --burst N              requests a token may make at once (default: max(1, R))
  --no-process-metrics   leave the process CPU/memory/event-loop metrics out of /metrics
  -h, --help             show this help

Stops on SIGTERM or SIGINT after the requests in flight. Exit status: 0 on
a clean stop, 2 on bad flags, an unreadable token file, a corrupt snapshot
or one that could not be written at the stop.
`;

/** What the sidecar reads from its flags. */
export interface ServeSettings {
  host: string;
  port: number;
  deviceBlocks: number;
  hostBlocks: number;
  blockSize: number;
  bytesPerBlock: number;
  policies: string[];
  backend: BackendChoice;
  tokens: TokenTable | null;
  snapshot: string | null;
  snapshotIntervalSeconds: number | null;
  bodyLimit: number;
  maxBatchItems: number;
  rate: number;
  burst: number | undefined;
  processMetrics: boolean;
  /** The remote tier and shared learning (--redis), or null. */
  redis: RedisSettings | null;
}

export interface RedisSettings {
  url: string;
  /** null: HOSTNAME:PORT once listening. */
  replica: string | null;
  modelKey: string;
  namespace: string;
  exchangeIntervalSeconds: number;
}

/** @throws UsageError naming the first bad flag. */
export function serveSettings(argv: readonly string[]): ServeSettings | null {
  const flags = parseFlags('serve', argv, FLAGS);
  if (flags.help) return null;
  const text = (name: string) => flagValue(flags, name);
  const int = (name: string, fallback: number, min: number, max?: number) => {
    const value = text(name);
    return value === undefined ? fallback : integerFlag('serve', name, value, min, max);
  };
  const host = text('host') ?? DEFAULTS.host;
  const policies = text('policies') === undefined ? [...DEFAULTS.policies] : policiesFlag('serve', text('policies')!);
  for (const policy of policies) {
    if (isBound(policy)) throw new UsageError(`serve: --policies: ${policy} is an offline bound; it exists only in replay`);
  }
  const backend = text('backend') ?? DEFAULTS.backend;
  if (!(BACKEND_CHOICES as readonly string[]).includes(backend)) {
    throw new UsageError(`serve: --backend must be one of ${BACKEND_CHOICES.join(', ')}; got ${JSON.stringify(backend)}`);
  }
  const deviceBlocks = int('device-blocks', DEFAULTS.deviceBlocks, 1, MAX_BLOCK_IDS);
  const hostBlocks = int('host-blocks', DEFAULTS.hostBlocks, 0, MAX_BLOCK_IDS);
  if (deviceBlocks + hostBlocks > MAX_BLOCK_IDS) throw new UsageError(`serve: --device-blocks + --host-blocks must be at most ${MAX_BLOCK_IDS}`);
  const tokensPath = text('tokens');
  let tokens: TokenTable | null = null;
  if (tokensPath !== undefined) {
    try {
      tokens = readTokenFile(tokensPath);
    } catch (error) {
      if (error instanceof TokenFileError) throw new UsageError(`serve: --tokens ${error.message}`);
      throw error;
    }
  }
  try {
    checkExposure(host, tokens);
  } catch (error) {
    throw new UsageError(`serve: --host ${(error as Error).message}`);
  }
  const snapshot = text('snapshot') ?? null;
  if (snapshot !== null) checkSnapshotPath(snapshot);
  const intervalText = text('snapshot-interval');
  if (intervalText !== undefined && snapshot === null) throw new UsageError('serve: --snapshot-interval needs --snapshot FILE');
  const rateText = text('rate-limit');
  const rate = rateText === undefined ? 0 : rateText === '0' ? 0 : positiveFlag('serve', 'rate-limit', rateText);
  const burstText = text('burst');
  if (burstText !== undefined && rate === 0) throw new UsageError('serve: --burst needs --rate-limit R');
  const bytesPerBlock = int('bytes-per-block', DEFAULTS.bytesPerBlock, 0);
  const redis = redisSettings(text, bytesPerBlock);
  return {
    host,
    port: int('port', DEFAULTS.port, 0, 65535),
    deviceBlocks,
    hostBlocks,
    blockSize: int('block-size', DEFAULTS.blockSize, 1, 1024),
    bytesPerBlock,
    policies,
    backend: backend as BackendChoice,
    tokens,
    snapshot,
    snapshotIntervalSeconds: intervalText === undefined ? null : positiveFlag('serve', 'snapshot-interval', intervalText),
    bodyLimit: int('body-limit', DEFAULTS.bodyLimit, 1024, 1 << 30),
    maxBatchItems: int('max-batch', DEFAULTS.maxBatchItems, 1, 10_000_000),
    rate,
    burst: burstText === undefined ? undefined : integerFlag('serve', 'burst', burstText, 1),
    processMetrics: !flags.switches.has('no-process-metrics'),
    redis,
  };
}

const REDIS_ONLY = ['replica-id', 'model-key', 'redis-namespace', 'exchange-interval'];
const NAME_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** @throws UsageError naming the first bad --redis flag. */
function redisSettings(text: (name: string) => string | undefined, bytesPerBlock: number): RedisSettings | null {
  const url = text('redis');
  if (url === undefined) {
    const stray = REDIS_ONLY.find((name) => text(name) !== undefined);
    if (stray !== undefined) throw new UsageError(`serve: --${stray} needs --redis URL`);
    return null;
  }
  if (!/^rediss?:\/\/[^\s/]+(\/\d+)?$/.test(url)) throw new UsageError(`serve: --redis must look like redis://host:port, got ${JSON.stringify(url)}`);
  if (bytesPerBlock === 0) throw new UsageError('serve: --redis needs --bytes-per-block N: the remote tier stores the bytes of each block');
  const name = (flag: string, fallback: string | null) => {
    const value = text(flag);
    if (value === undefined) return fallback;
    if (!NAME_PATTERN.test(value)) throw new UsageError(`serve: --${flag} must be 1..200 printable characters without spaces, got ${JSON.stringify(value)}`);
    return value;
  };
  const interval = text('exchange-interval');
  const seconds = interval === undefined ? 5 : positiveFlag('serve', 'exchange-interval', interval);
  if (seconds < 0.01 || seconds > 86_400) throw new UsageError(`serve: --exchange-interval must be between 0.01 and 86400 seconds, got ${interval}`);
  return {
    url,
    replica: name('replica-id', null),
    modelKey: name('model-key', 'default')!,
    namespace: name('redis-namespace', 'cachesage')!,
    exchangeIntervalSeconds: seconds,
  };
}

/** The snapshot must be writable at shutdown: found out now, not after hours of learning. */
function checkSnapshotPath(path: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`serve: --snapshot ${path} is a directory`);
  try {
    accessSync(dirname(path), constants.W_OK);
  } catch {
    throw new UsageError(`serve: --snapshot ${path}: its directory ${dirname(path)} does not exist or is not writable`);
  }
}

/** Builds the runtime, restoring the snapshot when there is one. */
export async function serveRuntime(settings: ServeSettings, remote: SidecarRemoteParts | null = null): Promise<Runtime> {
  let backend;
  try {
    backend = await selectBackend(settings.backend);
  } catch (error) {
    throw new UsageError(`serve: --backend ${settings.backend}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const runtime = new Runtime({
    blocks: remote?.manager ?? { deviceBlocks: settings.deviceBlocks, hostBlocks: settings.hostBlocks, blockSize: settings.blockSize, bytesPerBlock: settings.bytesPerBlock },
    policies: remote?.policies ?? settings.policies,
    backend,
    remote: remote?.tier ?? null,
  });
  if (settings.snapshot !== null && existsSync(settings.snapshot)) {
    try {
      runtime.restore(settings.snapshot);
    } catch (error) {
      if (error instanceof SnapshotError) throw new UsageError(`serve: --snapshot ${settings.snapshot}: refused: ${error.message}`);
      throw error;
    }
  }
  return runtime;
}

/** The remote tier of --redis, or null. @throws UsageError for sizes the machine cannot hold, or ioredis missing. */
async function openRemote(settings: ServeSettings): Promise<SidecarRemoteParts | null> {
  const redis = settings.redis;
  if (redis === null) return null;
  try {
    return await openSidecarRemote({
      url: redis.url,
      namespace: redis.namespace,
      modelKey: redis.modelKey,
      blocks: { blockSize: settings.blockSize, deviceBlocks: settings.deviceBlocks, hostBlocks: settings.hostBlocks, bytesPerBlock: settings.bytesPerBlock },
      policies: settings.policies,
    });
  } catch (error) {
    if (error instanceof RangeError || error instanceof TypeError || /ioredis/.test(String(error))) {
      throw new UsageError(`serve: --redis: ${(error as Error).message}`);
    }
    throw error;
  }
}

/** Listens; the usual socket errors become UsageErrors naming --host or --port. */
async function listen(sidecar: Sidecar, settings: ServeSettings): Promise<{ url: string; port: number }> {
  try {
    return await sidecar.listen(settings.host, settings.port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`serve: --port ${settings.port}: the address is already in use`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`serve: --host ${settings.host}: not an address of this machine`);
    if (code === 'EACCES') throw new UsageError(`serve: --port ${settings.port}: permission denied`);
    throw error;
  }
}

/** Runs `cachesage serve` until SIGTERM or SIGINT. */
export async function serveCommand(argv: readonly string[]): Promise<void> {
  const settings = serveSettings(argv);
  if (settings === null) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const redis = settings.redis;
  const remoteParts = await openRemote(settings);
  const restored = settings.snapshot !== null && existsSync(settings.snapshot);
  let runtime: Runtime;
  let sidecar: Sidecar;
  let address: { url: string; port: number };
  try {
    runtime = await serveRuntime(settings, remoteParts);
    sidecar = new Sidecar({
      runtime,
      tokens: settings.tokens,
      bodyLimit: settings.bodyLimit,
      maxBatchItems: settings.maxBatchItems,
      rateLimit: { rate: settings.rate, burst: settings.burst },
      processMetrics: settings.processMetrics,
      remote: remoteParts?.remote ?? null,
    });
    address = await listen(sidecar, settings);
  } catch (error) {
    // An open Redis connection would keep the process alive past its exit status.
    await remoteParts?.connection.close();
    throw error;
  }
  if (remoteParts !== null) startExchange(remoteParts, redis!.replica ?? `${hostname()}:${address.port}`, redis!.exchangeIntervalSeconds);
  const snapshotNote = settings.snapshot === null ? '' : restored ? `, restored ${settings.snapshot}` : `, snapshot to ${settings.snapshot}`;
  process.stdout.write(
    `cachesage serve: listening on ${address.url} (${settings.deviceBlocks} device blocks, ${settings.hostBlocks} host blocks of ` +
      `${settings.blockSize} tokens; policies ${settings.policies.join(',')}${settings.tokens === null ? '' : `; ${settings.tokens.size} tokens`}${snapshotNote}` +
      `${remoteParts === null ? '' : `; remote tier ${remoteParts.remote.url} as ${remoteParts.remote.replica}, ${remoteParts.connection.client.status === 'ready' ? 'connected' : 'not reachable yet'}`})\n`,
  );

  const timer = settings.snapshotIntervalSeconds === null ? null : setInterval(() => {
    try {
      runtime.snapshot(settings.snapshot!);
    } catch (error) {
      process.stderr.write(`cachesage serve: periodic snapshot to ${settings.snapshot} failed: ${(error as Error).message}\n`);
    }
  }, settings.snapshotIntervalSeconds * 1000);
  timer?.unref();

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (name: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      // A second signal while shutting down means "now".
      process.once(name, () => process.exit(128 + (name === 'SIGINT' ? 2 : 15)));
      resolve(name);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  if (timer !== null) clearInterval(timer);
  process.stderr.write(`cachesage serve: ${signal}: stopping after the requests in flight\n`);
  await sidecar.close();
  if (remoteParts !== null) await closeSidecarRemote(remoteParts.remote);
  if (settings.snapshot !== null) {
    try {
      runtime.snapshot(settings.snapshot);
    } catch (error) {
      // Not a bug: the file system refused (full disk, directory gone); one line, exit 2.
      throw new UsageError(`serve: --snapshot ${settings.snapshot}: cannot write it: ${(error as Error).message}`);
    }
    process.stderr.write(`cachesage serve: snapshot written to ${settings.snapshot}\n`);
  }
}
