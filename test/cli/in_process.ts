/**
 * The command line's entry point run in this process, stdout and stderr
 * captured: for the many cases that fail before any work starts, where a
 * child process each would only add start-up time.
 */
import { vi } from 'vitest';

import { main } from '../../src/cli/cli.js';

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cliInProcess(args: readonly string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const capture = (append: (text: string) => void) =>
    ((chunk: string | Uint8Array) => {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    }) as typeof process.stdout.write;
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture((t) => (stdout += t)));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture((t) => (stderr += t)));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
