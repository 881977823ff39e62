/**
 * The Redis connection the remote tier and shared learning use: ioredis,
 * loaded on first use, configured so that an absent or dying server costs
 * a miss, never a hung or failed request.
 *
 * - no offline queue: while disconnected a command fails at once instead
 *   of waiting for a reconnect that may never come;
 * - a bounded command timeout, and no retry of a command across reconnects
 *   (its caller has moved on by then);
 * - reconnects forever with a capped backoff, so a server that comes back
 *   is rejoined without anyone's help.
 */
import type { Redis as RedisClient } from 'ioredis';

import { checkInt, checkOptionsObject, describeValue } from '../util/check.js';

export type { RedisClient };

type Ioredis = { Redis: typeof import('ioredis').Redis };

/** What the remote tier needs, and how to get it. */
export const IOREDIS_HINT = 'the remote tier and shared learning need the optional package ioredis: `npm install ioredis`';

let ioredis: Promise<Ioredis> | undefined;

/** ioredis, imported once. @throws Error saying to install ioredis when it is absent. */
export function loadIoredis(): Promise<Ioredis> {
  ioredis ??= import('ioredis').then(
    (module): Ioredis => ({ Redis: module.Redis }),
    (error: unknown) => {
      ioredis = undefined;
      throw new Error(`cachesage: ${IOREDIS_HINT} (${error instanceof Error ? error.message : String(error)})`);
    },
  );
  return ioredis!;
}

export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`; default redis://127.0.0.1:6379. */
  url?: string;
  /** Milliseconds before a command counts as failed; default 2000. */
  commandTimeoutMs?: number;
  /** Milliseconds to wait for a connection; default 2000. */
  connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts, milliseconds; default 1000. */
  maxReconnectDelayMs?: number;
}

const OPTIONS = ['url', 'commandTimeoutMs', 'connectTimeoutMs', 'maxReconnectDelayMs'];

/** A connected client, and what it last complained about. */
export interface RedisConnection {
  client: RedisClient;
  /** The last connection error, or null; for reports. */
  lastError(): string | null;
  /** Bumps each time the connection becomes ready: a new epoch may be a restarted, empty server. */
  epoch(): number;
  close(): Promise<void>;
}

/**
 * Opens a connection and waits up to connectTimeoutMs for it to be ready.
 * A server that is not there is not an error: the connection keeps trying
 * in the background and commands fail fast until it answers.
 *
 * @throws TypeError / RangeError naming a bad option; Error when ioredis is not installed.
 */
export async function openRedis(options: RedisConnectionOptions = {}): Promise<RedisConnection> {
  const o = checkOptionsObject(options, 'openRedis', OPTIONS) as RedisConnectionOptions;
  const url = o.url ?? 'redis://127.0.0.1:6379';
  if (typeof url !== 'string' || !/^rediss?:\/\/[^\s]+$/.test(url)) {
    throw new TypeError(`openRedis: options.url must look like redis://host:port, got ${describeValue(url)}`);
  }
  const commandTimeout = checkInt(o.commandTimeoutMs ?? 2000, 'openRedis: options.commandTimeoutMs', 1, 600_000);
  const connectTimeout = checkInt(o.connectTimeoutMs ?? 2000, 'openRedis: options.connectTimeoutMs', 1, 600_000);
  const maxDelay = checkInt(o.maxReconnectDelayMs ?? 1000, 'openRedis: options.maxReconnectDelayMs', 1, 600_000);
  const { Redis } = await loadIoredis();
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout,
    connectTimeout,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times: number) => Math.min(maxDelay, 25 * 2 ** Math.min(times, 10)),
  });
  let lastError: string | null = null;
  let epoch = 0;
  // Without a listener ioredis prints every connection error; they are kept for reports instead.
  client.on('error', (error: Error) => {
    lastError = error.message;
  });
  // A server that goes away is reported at once, before a reconnect attempt
  // fails with its own error; a connection that never opened keeps the
  // error that says why (ECONNREFUSED and the like).
  let open = false;
  let closing = false;
  client.on('ready', () => {
    epoch++;
    open = true;
  });
  client.on('close', () => {
    if (open && !closing) lastError = 'connection closed by the server or the network';
    open = false;
  });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, connectTimeout);
    function done(): void {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    }
    client.on('ready', done);
    client.connect().catch((error: unknown) => {
      lastError = error instanceof Error ? error.message : String(error);
    });
  });
  return {
    client,
    lastError: () => lastError,
    epoch: () => epoch,
    close: async () => {
      closing = true;
      client.disconnect(false);
    },
  };
}
