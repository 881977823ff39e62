/**
 * Streaming trace reader. Lines are parsed and checked one at a time, so a
 * trace larger than memory can be replayed; {@link readTraceFile} is the
 * convenience that collects everything. Every limit of limits.ts is checked
 * as its line is read, so a line that breaks one fails at once.
 *
 * Every problem is a {@link TraceError} whose message names the file and,
 * for a bad line, its 1-based line number (blank lines count), e.g.
 * `trace.jsonl:17: segments[2].tokens must be a non-negative integer`.
 * Lines end at `\n`; a `\r` before it is dropped.
 */
import { open, type FileHandle } from 'node:fs/promises';

import {
  decodeCall,
  decodeHeader,
  isHeaderRecord,
  LIMITS_DOC,
  TraceError,
  TraceRecordError,
  type TraceCall,
  type TraceHeader,
} from './format.js';
import { formatCount, MAX_LINE_LENGTH } from './limits.js';
import { TraceRules, type TokenCountSummary } from './rules.js';

/** Options of {@link readTrace}. */
export interface ReadTraceOptions {
  /** Called once, before the first call is yielded, when the file has a header line. */
  onHeader?: (header: TraceHeader) => void;
  /**
   * Refuse any id seen with two token counts, as a segment or an output,
   * naming both lines (default: only two counts for one segment id within
   * one session are refused; see rules.ts).
   */
  strict?: boolean;
  /**
   * Called once after the last call, with how the trace used ids with
   * several token counts. Counting keeps every distinct id in memory.
   */
  onEnd?: (tokenCounts: TokenCountSummary) => void;
}

/** A whole trace in memory: its header (`null` when the file has none) and its calls in file order. */
export interface TraceFile {
  header: TraceHeader | null;
  calls: TraceCall[];
  /** Ids the trace referenced with several token counts, as allowed (see rules.ts). */
  tokenCounts: TokenCountSummary;
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

/** What {@link splitLines} reports, each by throwing. */
interface LineFailures {
  /** Line `line` (1-based) is longer than the limit. */
  tooLong(line: number): never;
  /** The stream failed. */
  unreadable(error: unknown): never;
}

/**
 * The lines of a stream of text, without their `\n` (and a `\r` before it).
 * A line longer than `maxLength` characters is refused as soon as that many
 * have been read, so one endless line cannot exhaust memory.
 */
async function* splitLines(chunks: AsyncIterable<string>, maxLength: number, failures: LineFailures): AsyncGenerator<string> {
  const iterator = chunks[Symbol.asyncIterator]();
  let pending: string[] = [];
  let pendingLength = 0;
  let line = 0;
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = await iterator.next();
    } catch (error) {
      failures.unreadable(error);
    }
    if (next.done === true) break;
    const chunk = next.value;
    let start = 0;
    for (let end = chunk.indexOf('\n'); end !== -1; end = chunk.indexOf('\n', start)) {
      line++;
      let text = chunk.slice(start, end);
      if (pending.length > 0) {
        pending.push(text);
        text = pending.join('');
        pending = [];
        pendingLength = 0;
      }
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (text.length > maxLength) failures.tooLong(line);
      yield text;
      start = end + 1;
    }
    if (start < chunk.length) {
      pendingLength += chunk.length - start;
      // One character more: it may be the \r of a \r\n split across chunks.
      if (pendingLength > maxLength + 1) failures.tooLong(line + 1);
      pending.push(chunk.slice(start));
    }
  }
  if (pending.length > 0) {
    const text = pending.join('');
    if (text.length > maxLength) failures.tooLong(line + 1);
    yield text;
  }
}

/**
 * Reads a trace one call at a time. The header, when present, must be the
 * first non-blank line; it goes to `options.onHeader` and is not yielded.
 * The rules that span lines (rules.ts: seq and time order within a session,
 * per-trace totals, segment ids' token counts) are checked as calls come.
 * Stopping the iteration early closes the file.
 *
 * @param path the file, as it should appear in error messages.
 * @throws TraceError when the file cannot be read or a line is malformed.
 */
export async function* readTrace(path: string, options: ReadTraceOptions = {}): AsyncGenerator<TraceCall> {
  const handle = await openTrace(path);
  const stream = handle.createReadStream({ encoding: 'utf8' });
  const lines = splitLines(stream, MAX_LINE_LENGTH, {
    tooLong(line) {
      throw new TraceError(path, line, `the line is longer than ${formatCount(MAX_LINE_LENGTH)} characters, the most a line may hold (${LIMITS_DOC})`);
    },
    unreadable(error) {
      throw new TraceError(path, null, `cannot read: ${describeSystemError(error)}`);
    },
  });

  // Counting keeps every distinct id: only when someone reads the counts.
  const rules = new TraceRules({ strict: options.strict === true, count: options.onEnd !== undefined, locate: (line) => `${path}:${line}` });
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
        rules.check(call, lineNumber);
        yield call;
      } catch (error) {
        if (error instanceof TraceRecordError) throw new TraceError(path, lineNumber, error.message);
        throw error;
      }
    }
    if (options.onEnd !== undefined) options.onEnd(rules.tokenCounts!);
  } finally {
    await lines.return(undefined);
    stream.destroy();
    await handle.close().catch(() => undefined);
  }
}

/**
 * Reads a whole trace into memory.
 *
 * @throws TraceError when the file cannot be read or a line is malformed.
 */
export async function readTraceFile(path: string, options: Pick<ReadTraceOptions, 'strict'> = {}): Promise<TraceFile> {
  let header: TraceHeader | null = null;
  let tokenCounts: TokenCountSummary = { idsWithSeveralCounts: 0, referencesWithOtherCount: 0 };
  const calls: TraceCall[] = [];
  const reading = readTrace(path, { strict: options.strict === true, onHeader: (h) => (header = h), onEnd: (summary) => (tokenCounts = summary) });
  for await (const call of reading) calls.push(call);
  return { header, calls, tokenCounts };
}
