/**
 * A real redis-server on loopback for the remote-tier tests: a free port,
 * no persistence, a temp dir; kill() and start() again on the same port
 * simulate a server that dies and returns (empty, as a cache server would).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll } from 'vitest';

import { openRedis, type RedisConnection } from '../../src/remote/redis.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

/**
 * A free loopback port below the kernel's ephemeral range. A port from the
 * range (what listen(0) hands out) is free only until the kernel gives it
 * to some outgoing connection as its source port: any of the many a test
 * run opens, or a client reconnecting to that very port while nothing
 * listens there yet (a sidecar started before its Redis), which then
 * connects to itself. The connection or its TIME_WAIT holds the port, and
 * Redis, started on it later or again after a kill, cannot bind it. Ports
 * below the range are never handed out as source ports.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free loopback port in [10000, ${low})`);
}

/** The first port of the kernel's ephemeral range (Linux's default when it cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isSafeInteger(low) && low > 11_000) return low;
  } catch {
    // Not Linux: the IANA range starts at 49152, Linux's at 32768; below both.
  }
  return 32_768;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(300, () => finish(false));
    socket.once('error', () => finish(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(data.toString().startsWith('+PONG')));
  });
}

export class RedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'cachesage-redis-'));
  port = 0;
  #child: ChildProcess | null = null;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (on the same port after a kill) and waits until it answers PING. */
  async start(): Promise<void> {
    const samePort = this.port !== 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (!samePort) this.port = await freePort();
      const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
        stdio: 'ignore',
      });
      this.#child = child;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && child.exitCode === null) {
        if (await answersPing(this.port)) return;
        await new Promise((r) => setTimeout(r, 30));
      }
      await this.kill();
    }
    throw new Error(`redis-server did not start (tried ${REDIS_SERVER})`);
  }

  /** SIGKILL: no shutdown, connections cut mid-command. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A redis-server and one connection to it for the tests of one file:
 * started before them, stopped after them.
 */
export function redisForTests(): { readonly server: RedisServer; readonly redis: RedisConnection } {
  const shared = {} as { server: RedisServer; redis: RedisConnection };
  beforeAll(async () => {
    shared.server = new RedisServer();
    await shared.server.start();
    shared.redis = await openRedis({ url: shared.server.url, commandTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await shared.redis?.close();
    await shared.server?.stop();
  });
  return shared;
}
