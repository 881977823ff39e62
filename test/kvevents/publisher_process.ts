/**
 * Runs test/kvevents/publisher.py (a vLLM-style publisher) as a separate
 * process under the system python, which has zmq and msgpack.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./publisher.py', import.meta.url));

export interface Truth {
  lastSequence: number;
  media: Record<string, string[]>;
}

export class PublisherProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  readonly #waiting: Array<(line: string) => void> = [];
  #stderr = '';

  constructor(args: string[] = []) {
    this.#child = spawn('/usr/bin/python3', [SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const waiter = this.#waiting.shift();
      if (waiter) waiter(line);
      else this.#lines.push(line);
    });
  }

  /** The next JSON line the script prints. */
  async next<T>(timeoutMs = 10_000): Promise<T> {
    const line =
      this.#lines.shift() ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`publisher.py printed nothing in ${timeoutMs} ms; stderr: ${this.#stderr}`)), timeoutMs);
        this.#waiting.push((l) => {
          clearTimeout(timer);
          resolve(l);
        });
      }));
    return JSON.parse(line) as T;
  }

  send(line: string): void {
    this.#child.stdin.write(`${line}\n`);
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
  }
}
