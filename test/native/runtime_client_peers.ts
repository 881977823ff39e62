/**
 * What the runtime client's C program (native/capi/test/runtime_client_test.c)
 * runs against: a real `cachesage serve` child process, or a TCP peer that
 * answers /v1/info like the sidecar and every other request with garbage;
 * and running the program itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { seededRandom } from '../../src/util/random.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const clientTest = join(root, 'build', 'bin', 'cachesage_runtime_client_test');

/** The sidecar's layout in every run: the C scenario is written for it. */
export const LAYOUT = { blockSize: 4, deviceBlocks: 16, hostBlocks: 8, bytesPerBlock: 1 << 20 } as const;

export function requireBuilt(path: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`npm install\` first (it builds the native code, C ABI included, into build/)`);
  }
}

export interface ServeProcess {
  port: number;
  stop(): Promise<void>;
}

/** The bearer token every sidecar of these tests requires, for all workloads. */
export const TOKEN = 'c-abi-test-token-5f1c2a7b';

/** `cachesage serve` on a free loopback port, resolved once it listens. */
export function startServe(): Promise<ServeProcess> {
  const main = join(root, 'src', 'cli', 'main.ts');
  const dir = mkdtempSync(join(tmpdir(), 'cachesage-c-abi-'));
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify([{ token: TOKEN, workloads: '*', name: 'engine' }]));
  // prettier-ignore
  const args = [
    '--import', 'tsx', main, 'serve', '--port', '0', '--no-process-metrics',
    '--block-size', String(LAYOUT.blockSize), '--device-blocks', String(LAYOUT.deviceBlocks),
    '--host-blocks', String(LAYOUT.hostBlocks), '--bytes-per-block', String(LAYOUT.bytesPerBlock),
    '--tokens', tokens,
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match) resolve({ port: Number(match[1]), stop });
    });
    void exited.then(() => reject(new Error(`cachesage serve exited before listening: ${stderr}`)));
  });
}

export interface ProgramRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop (the garbage peer lives on it). */
export function runProgram(command: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<ProgramRun> {
  const child: ChildProcess = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${command} could not run: ${error.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

export function describeRun(what: string, run: ProgramRun): string {
  const signal = run.signal ? ` (signal ${run.signal})` : '';
  return `${what} exited with ${String(run.status)}${signal}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

/** The program's JSON lines. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

// ------------------------------------------------------------ garbage peer

const INFO = JSON.stringify({ blockSize: LAYOUT.blockSize, deviceBlocks: LAYOUT.deviceBlocks, hostBlocks: LAYOUT.hostBlocks });

/**
 * A reply with the fields of every verb's reply, valid but for a copy plan
 * naming a slot past the tier and a prediction missing its fields: no verb
 * may accept it whole, and its truncations reach every parser path.
 */
const EVERY_FIELD = JSON.stringify({
  applied: false,
  admitted: true,
  appended: true,
  released: true,
  cachedDeviceTokens: 4,
  loadedBlocks: 0,
  blockIds: [1, 2, 3, 4],
  blockTable: [1, 2, 3, 4],
  actions: [{ type: 'demote', blockIds: [1] }],
  demoted: 1,
  evicted: 0,
  prefetched: 0,
  pinned: 0,
  unpinned: 0,
  copies: { srcTier: [1, 2], srcSlot: [3, 99], dstTier: [2, 1], dstSlot: [0, 1], stageStarts: [0] },
  prediction: { session: 's', next: { 'a\u00e9\ud83d\ude00': 0.5 } },
});

const withCopies = (copies: string) => EVERY_FIELD.replace(/"copies":\{[^}]*\}/, `"copies":${copies}`);

const http = (status: string, headers: string, body: string | Buffer) =>
  Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\n${headers}\r\n`), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
const json = (body: string, status = '200 OK') => http(status, `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`, body);

/** Each answer: the bytes, and whether the peer then closes the connection. */
type Answer = { bytes: Buffer; close: boolean };

const FIXED: Answer[] = [
  { bytes: json(EVERY_FIELD), close: false },
  { bytes: json('{"a":'), close: false },
  { bytes: json('hello'), close: false },
  { bytes: json('[1,2,3]'), close: false },
  { bytes: json('{"applied":"yes","admitted":1,"blockIds":"x","copies":5,"prediction":7,"released":null,"actions":{}}'), close: false },
  { bytes: json('['.repeat(100_000) + ']'.repeat(100_000)), close: false },
  { bytes: json('{"x":1e999}'), close: false },
  { bytes: json('{"x":01}'), close: false },
  { bytes: json('{"x":"\\ud800"}'), close: false },
  { bytes: json('{"x":"\u0001"}'), close: false },
  { bytes: json('{"x":1,"x":2}'), close: false },
  { bytes: json('{"applied":true} trailing'), close: false },
  // Copy plans that are wrong in one way each, in an otherwise whole reply.
  { bytes: json(withCopies('{"srcTier":[1],"srcSlot":[0],"dstTier":[2],"dstSlot":[0],"stageStarts":[1]}')), close: false },
  { bytes: json(withCopies('{"srcTier":[3],"srcSlot":[0],"dstTier":[2],"dstSlot":[0],"stageStarts":[0]}')), close: false },
  { bytes: json(withCopies('{"srcTier":[1,1],"srcSlot":[0],"dstTier":[2],"dstSlot":[0],"stageStarts":[0]}')), close: false },
  { bytes: json(withCopies('{"srcTier":[1],"srcSlot":[-1],"dstTier":[2],"dstSlot":[0.5],"stageStarts":[0]}')), close: false },
  { bytes: json('{"statusCode":400,"error":"Bad Request","message":"body.x is wrong"}', '400 Bad Request'), close: false },
  { bytes: json('<html>oops</html>', '500 Internal Server Error'), close: false },
  { bytes: json('{"message":"slow down"}', '429 Too Many Requests'), close: false },
  { bytes: json('{"statusCode":401,"message":"unknown bearer token"}', '401 Unauthorized'), close: false },
  { bytes: json('{"statusCode":403,"message":"act: needs *"}', '403 Forbidden'), close: false },
  { bytes: http('200 OK', 'Content-Length: 50\r\n', '{"applied":'), close: true },
  { bytes: http('200 OK', 'Content-Length: 99999999999999999999\r\n', '{}'), close: false },
  { bytes: http('200 OK', 'Content-Length: -1\r\n', '{}'), close: false },
  { bytes: http('200 OK', 'Content-Length: 2\r\nContent-Length: 3\r\n', '{}'), close: false },
  { bytes: http('200 OK', 'Transfer-Encoding: chunked\r\n', 'zz\r\n{}\r\n0\r\n\r\n'), close: false },
  { bytes: http('200 OK', 'Transfer-Encoding: chunked\r\n', '5\r\n{"app\r\n'), close: true },
  { bytes: http('200 OK', 'Transfer-Encoding: chunked\r\n', '2\r\n{}XX0\r\n\r\n'), close: false },
  { bytes: http('200 OK', 'Transfer-Encoding: chunked\r\n', '3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n'), close: false },
  { bytes: http('200 OK', 'Transfer-Encoding: gzip\r\n', '{}'), close: false },
  { bytes: Buffer.from('HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}'), close: false },
  { bytes: Buffer.from('garbage\r\n\r\n'), close: false },
  { bytes: Buffer.from('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'), close: false },
  { bytes: Buffer.from(`HTTP/1.1 200 OK\r\nX-Long: ${'a'.repeat(70_000)}\r\n\r\n`), close: false },
  { bytes: http('200 OK', '', '{"applied":'), close: true },
  { bytes: Buffer.alloc(0), close: true },
  { bytes: Buffer.concat([json('{"y":[true,false,null,-0.5e-3,"\\n\\u00e9"]}'), json('{}')]), close: false },
];

/** The n-th answer after the fixed ones: random bytes, truncations, or a stray control byte. */
function randomAnswer(next: () => number): Answer {
  const kind = Math.floor(next() * 3);
  if (kind === 0) {
    const bytes = Buffer.alloc(1 + Math.floor(next() * 200));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
    return { bytes, close: true };
  }
  const text = Buffer.from(EVERY_FIELD);
  if (kind === 1) {
    // A proper prefix of a JSON object is never a whole document.
    return { bytes: json(text.subarray(0, Math.floor(next() * text.length)).toString('latin1')), close: false };
  }
  const at = Math.floor(next() * text.length);
  const broken = Buffer.concat([text.subarray(0, at), Buffer.from([1]), text.subarray(at)]);
  return { bytes: http('200 OK', `Content-Length: ${broken.length}\r\n`, broken), close: false };
}

export interface GarbagePeer {
  port: number;
  /** Garbage answers sent so far. */
  answered(): number;
  close(): Promise<void>;
}

/** Answers GET /v1/info like the sidecar, every other request with the next garbage answer. */
export function startGarbagePeer(seed: number): Promise<GarbagePeer> {
  // Seeded, so a failure replays.
  const next = seededRandom(seed);
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        if (head.startsWith('GET /v1/info ')) {
          socket.write(json(INFO));
          continue;
        }
        const answer = count < FIXED.length ? FIXED[count]! : randomAnswer(next);
        count++;
        if (answer.close) {
          socket.end(answer.bytes);
          return;
        }
        socket.write(answer.bytes);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({
        port,
        answered: () => count,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

// ------------------------------------------------------------ idle-closing peer

export interface IdleClosingPeer {
  port: number;
  /** "METHOD PATH authorization" of every request read, in order. */
  requests: string[];
  connections(): number;
  close(): Promise<void>;
}

const EMPTY_COPIES = { srcTier: [], srcSlot: [], dstTier: [], dstSlot: [], stageStarts: [] };

/**
 * Answers /v1/info and /v1/release like the sidecar, then drops the
 * connection at once, as an idle timeout would; anything else gets a reply
 * that trickles in and never completes.
 */
export function startIdleClosingPeer(): Promise<IdleClosingPeer> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    // After its reply the connection is closed: what comes later on it is never read.
    let closed = false;
    socket.on('data', (chunk: Buffer) => {
      if (closed) return;
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = pending.subarray(0, end).toString('latin1');
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      pending = Buffer.alloc(0);
      const [method, path] = head.split(' ');
      const authorization = /authorization: *([^\r]*)/i.exec(head)?.[1] ?? '';
      requests.push(`${method} ${path} ${authorization}`);
      const reply = path === '/v1/info' ? INFO : path === '/v1/release' ? JSON.stringify({ released: true, copies: EMPTY_COPIES }) : null;
      if (reply !== null) {
        closed = true;
        socket.end(json(reply));
        return;
      }
      // Anything else gets a reply that trickles in a byte at a time and never ends.
      const slow = Buffer.from(`HTTP/1.1 200 OK\r\nX-Slow: ${'a'.repeat(10_000)}`);
      let sent = 0;
      const timer = setInterval(() => {
        if (sent < slow.length && !socket.destroyed) socket.write(slow.subarray(sent, ++sent));
      }, 20);
      socket.on('close', () => clearInterval(timer));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({
        port,
        requests,
        connections: () => connections,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
