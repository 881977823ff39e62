/**
 * Writes traces. Every call is checked with the reader's own rules before it
 * is written, so a file this writes always reads back.
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';

import {
  callToRecord,
  decodeCall,
  decodeHeader,
  encodeHeader,
  TraceError,
  TraceRecordError,
  type TraceCall,
  type TraceHeader,
} from '../trace/format.js';
import { TraceRules } from '../trace/rules.js';

/**
 * Writes `calls` to `path` as a trace, after `header` when it is not null.
 * Accepts any (async) iterable, so a trace larger than memory can be
 * streamed out.
 *
 * @throws TraceError `FILE:LINE: what is wrong` for a call the reader would
 *   reject (including the rules across lines: seq and time order within a
 *   session, the trace's totals, segment ids' token counts), or
 *   `FILE: cannot write: ...` when the file cannot be written. A partly
 *   written file is left behind.
 */
export async function writeTrace(
  path: string,
  header: TraceHeader | null,
  calls: Iterable<TraceCall> | AsyncIterable<TraceCall>,
): Promise<void> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  let streamError: unknown = null;
  out.on('error', (error) => (streamError = error));
  const check = (line: number, body: () => void): void => {
    try {
      body();
    } catch (error) {
      if (error instanceof TraceRecordError) throw new TraceError(path, line, error.message);
      throw error;
    }
  };

  const rules = new TraceRules({ locate: (at) => `${path}:${at}` });
  let line = 0;
  const write = async (text: string): Promise<void> => {
    if (streamError !== null) return;
    if (out.write(text + '\n')) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('error', done);
        resolve();
      };
      out.on('drain', done);
      out.on('error', done);
    });
  };
  try {
    if (header !== null) {
      line++;
      check(line, () => decodeHeader(header));
      await write(encodeHeader(header));
    }
    for await (const call of calls) {
      line++;
      const record = callToRecord(call);
      check(line, () => {
        rules.check(decodeCall(record), line);
      });
      await write(JSON.stringify(record));
      if (streamError !== null) break;
    }
  } finally {
    out.end();
    await finished(out).catch(() => undefined);
  }
  if (streamError !== null) {
    const code = (streamError as NodeJS.ErrnoException).code;
    throw new TraceError(path, null, `cannot write: ${code ?? (streamError as Error).message}`);
  }
}
