/**
 * Streaming trace reader. Lines are parsed and checked one at a time, so a
 * trace larger than memory can be replayed; {@link readTraceFile} is the
 * convenience that collects everything.
 *
 * Every problem is a {@link TraceError} whose message names the file and,
 * for a bad line, its 1-based line number (blank lines count), e.g.
 * `trace.jsonl:17: segments[2].tokens must be a non-negative integer`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';

import {
  decodeCall,
  decodeHeader,
  isHeaderRecord,
  SessionOrder,
  TraceError,
  TraceRecordError,
  type TraceCall,
  type TraceHeader,
} from './format.js';

/** Options of {@link readTrace}. */
export interface ReadTraceOptions {
  /** Called once, before the first call is yielded, when the file has a header line. */
  onHeader?: (header: TraceHeader) => void;
}

/** A whole trace in memory: its header (`null` when the file has none) and its calls in file order. */
export interface TraceFile {
  header: TraceHeader | null;
  calls: TraceCall[];
}

function describeSystemError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return error instanceof Error ? error.message : String(error);
}

async function openTrace(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new TraceError(path, null, `cannot read: ${describeSystemError(error)}`);
  }
  // Opening a directory read-only succeeds on Linux; refuse it here rather
  // than fail on the first read with a less clear message.
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new TraceError(path, null, 'cannot read: is a directory');
  } catch (error) {
    await handle.close();
    if (error instanceof TraceError) throw error;
    throw new TraceError(path, null, `cannot read: ${describeSystemError(error)}`);
  }
  return handle;
}

/**
 * Reads a trace one call at a time. The header, when present, must be the
 * first non-blank line; it goes to `options.onHeader` and is not yielded.
 * Within a session, `seq` must strictly increase (sessions may interleave).
 * Stopping the iteration early closes the file.
 *
 * @param path the file, as it should appear in error messages.
 * @throws TraceError when the file cannot be read or a line is malformed.
 */
export async function* readTrace(path: string, options: ReadTraceOptions = {}): AsyncGenerator<TraceCall> {
  const handle = await openTrace(path);
  const stream = handle.createReadStream({ encoding: 'utf8' });
  let streamError: unknown = null;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  stream.on('error', (error) => {
    streamError = error;
    lines.close();
  });

  const order = new SessionOrder();
  let lineNumber = 0;
  let sawContent = false;
  try {
    for await (const rawLine of lines) {
      lineNumber++;
      const line = lineNumber === 1 && rawLine.charCodeAt(0) === 0xfeff ? rawLine.slice(1) : rawLine;
      if (line.trim().length === 0) continue;
      const first = !sawContent;
      sawContent = true;

      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        throw new TraceError(path, lineNumber, 'not valid JSON');
      }
      try {
        if (isHeaderRecord(record)) {
          if (!first) throw new TraceRecordError('a header is allowed only on the first non-blank line');
          options.onHeader?.(decodeHeader(record));
          continue;
        }
        const call = decodeCall(record);
        order.check(call);
        yield call;
      } catch (error) {
        if (error instanceof TraceRecordError) throw new TraceError(path, lineNumber, error.message);
        throw error;
      }
    }
    if (streamError !== null) throw new TraceError(path, null, `cannot read: ${describeSystemError(streamError)}`);
  } finally {
    lines.close();
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
}

/**
 * Reads a whole trace into memory.
 *
 * @throws TraceError when the file cannot be read or a line is malformed.
 */
export async function readTraceFile(path: string): Promise<TraceFile> {
  let header: TraceHeader | null = null;
  const calls: TraceCall[] = [];
  for await (const call of readTrace(path, { onHeader: (h) => (header = h) })) calls.push(call);
  return { header, calls };
}
