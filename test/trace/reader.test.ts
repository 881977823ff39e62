import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TraceError, type TraceCall } from '../../src/trace/format.js';
import { readTrace, readTraceFile } from '../../src/trace/reader.js';
import { generateWorkload, writeTrace } from '../../src/workloads/index.js';

const TRACES = fileURLToPath(new URL('../../../shared/traces', import.meta.url));
const HAVE_TRACES = existsSync(TRACES);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cachesage-trace-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ID_A = '9f2c0d1e5a7b3c44';
const ID_B = '01ab23cd45ef6789';

function record(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    session: 's1',
    agent: 'Programmer',
    seq: 0,
    t: 1.5,
    segments: [
      { id: ID_A, tokens: 812 },
      { id: ID_B, tokens: 230 },
      { id: 'ffffffffffffffff', tokens: 7 },
    ],
    output_tokens: 240,
    output_id: '77e0aa11bb22cc33',
    ...overrides,
  };
}

function line(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(record(overrides));
}

async function fileWith(name: string, lines: readonly string[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}

async function readError(path: string): Promise<TraceError> {
  try {
    await readTraceFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(TraceError);
    return error as TraceError;
  }
  throw new Error(`${path} was read without error`);
}

describe('readTraceFile: valid traces', () => {
  it('round-trips a generated workload written with writeTrace, header included', async () => {
    const { header, calls } = generateWorkload('groupchat', { seed: 11, sessions: 6 });
    const path = join(dir, 'roundtrip.jsonl');
    await writeTrace(path, header, calls);
    const read = await readTraceFile(path);
    expect(read.header).toEqual(header);
    expect(read.calls).toEqual(calls);
  });

  it('accepts a file without a header', async () => {
    const { calls } = generateWorkload('react', { seed: 2, sessions: 3 });
    const path = join(dir, 'no-header.jsonl');
    await writeTrace(path, null, calls);
    const read = await readTraceFile(path);
    expect(read.header).toBeNull();
    expect(read.calls).toEqual(calls);
  });

  it('converts snake_case fields and keeps the optional ones', async () => {
    const path = await fileWith('fields.jsonl', [
      line({ t_end: 9, reported_prompt_tokens: 1052, extra_field: 'ignored' }),
      line({ seq: 1, t: null }),
    ]);
    const { calls } = await readTraceFile(path);
    expect(calls[0]).toEqual<TraceCall>({
      session: 's1',
      agent: 'Programmer',
      seq: 0,
      t: 1.5,
      segments: [
        { id: ID_A, tokens: 812 },
        { id: ID_B, tokens: 230 },
        { id: 'ffffffffffffffff', tokens: 7 },
      ],
      outputTokens: 240,
      outputId: '77e0aa11bb22cc33',
      tEnd: 9,
      reportedPromptTokens: 1052,
    });
    expect(calls[1]?.t).toBeNull();
    expect(calls[1]?.tEnd).toBeUndefined();
  });

  it('skips blank lines, takes a header after leading blank lines, reads CRLF and a BOM', async () => {
    const path = join(dir, 'crlf.jsonl');
    const text = ['', '  ', JSON.stringify({ workload: 'w', source: 'test' }), line(), '', line({ seq: 2 })].join('\r\n');
    await writeFile(path, '\ufeff' + text + '\r\n');
    const read = await readTraceFile(path);
    expect(read.header).toEqual({ workload: 'w', source: 'test' });
    expect(read.calls.map((c) => c.seq)).toEqual([0, 2]);
  });

  it('accepts any id of 1 to 64 characters, not only 16 hex digits', async () => {
    const long = 'x'.repeat(64);
    const path = await fileWith('ids.jsonl', [line({ segments: [{ id: 's', tokens: 0 }, { id: long, tokens: 3 }], output_id: 'reply 1' })]);
    const { calls } = await readTraceFile(path);
    expect(calls[0]?.segments.map((s) => s.id)).toEqual(['s', long]);
  });

  it('lets sessions interleave as long as each one keeps its seq increasing', async () => {
    const path = await fileWith('interleaved.jsonl', [
      line({ session: 'a', seq: 0 }),
      line({ session: 'b', seq: 0 }),
      line({ session: 'a', seq: 5 }),
      line({ session: 'b', seq: 1 }),
    ]);
    const { calls } = await readTraceFile(path);
    expect(calls.map((c) => `${c.session}${c.seq}`)).toEqual(['a0', 'b0', 'a5', 'b1']);
  });

  it('reads an empty file as no calls', async () => {
    const path = await fileWith('empty.jsonl', []);
    expect(await readTraceFile(path)).toEqual({ header: null, calls: [], tokenCounts: { idsWithSeveralCounts: 0, referencesWithOtherCount: 0 } });
  });
});

describe('readTraceFile: malformed lines', () => {
  // Each case: the bad line is written as line 3, after a valid call and a
  // blank line, so the line number must count blank lines.
  const cases: [string, string, string][] = [
    ['truncated JSON', '{"session": "s1", "agent": ', 'not valid JSON'],
    ['not an object', '[1, 2, 3]', 'expected a JSON object'],
    ['a bare number', '42', 'expected a JSON object'],
    ['missing session', line({ session: undefined }), 'session must be a non-empty string'],
    ['empty session', line({ session: '' }), 'session must be a non-empty string'],
    ['agent not a string', line({ agent: 7 }), 'agent must be a non-empty string'],
    ['negative seq', line({ seq: -1 }), 'seq must be a non-negative integer'],
    ['fractional seq', line({ seq: 1.5 }), 'seq must be a non-negative integer'],
    ['seq as a string', line({ seq: '3' }), 'seq must be a non-negative integer'],
    ['missing t', line({ t: undefined }), 't must be a finite number >= 0 or null'],
    ['negative t', line({ t: -0.5 }), 't must be a finite number >= 0 or null'],
    ['infinite t', line({ seq: 4 }).replace('"t":1.5', '"t":1e999'), 't must be a finite number >= 0 or null'],
    ['t as a string', line({ t: '12' }), 't must be a finite number >= 0 or null'],
    ['no segments', line({ segments: undefined }), 'segments must be a non-empty array'],
    ['empty segments', line({ segments: [] }), 'segments must be a non-empty array'],
    ['segments not an array', line({ segments: { id: ID_A, tokens: 1 } }), 'segments must be a non-empty array'],
    ['segment not an object', line({ segments: [{ id: ID_A, tokens: 1 }, { id: ID_B, tokens: 2 }, 'x'] }), 'segments[2] must be an object'],
    ['empty segment id', line({ segments: [{ id: ID_A, tokens: 1 }, { id: '', tokens: 2 }] }), 'segments[1].id must be a non-empty string of at most 64 characters'],
    ['segment id too long', line({ segments: [{ id: 'y'.repeat(65), tokens: 2 }] }), 'segments[0].id must be a non-empty string of at most 64 characters'],
    ['numeric segment id', line({ segments: [{ id: 12, tokens: 2 }] }), 'segments[0].id must be a non-empty string of at most 64 characters'],
    ['negative tokens', line({ segments: [{ id: ID_A, tokens: 1 }, { id: ID_B, tokens: 2 }, { id: ID_A, tokens: -4 }] }), 'segments[2].tokens must be a non-negative integer'],
    ['fractional tokens', line({ segments: [{ id: ID_A, tokens: 1 }, { id: ID_B, tokens: 2 }, { id: ID_A, tokens: 2.5 }] }), 'segments[2].tokens must be a non-negative integer'],
    ['tokens missing', line({ segments: [{ id: ID_A }] }), 'segments[0].tokens must be a non-negative integer'],
    ['output_tokens missing', line({ output_tokens: undefined }), 'output_tokens must be a non-negative integer'],
    ['output_tokens negative', line({ output_tokens: -1 }), 'output_tokens must be a non-negative integer'],
    ['outputTokens spelled in camelCase', line({ output_tokens: undefined, outputTokens: 5 }), 'output_tokens must be a non-negative integer'],
    ['output_id missing', line({ output_id: undefined }), 'output_id must be a non-empty string of at most 64 characters'],
    ['t_end before t', line({ t: 5, t_end: 4 }), 't_end must not be before t'],
    ['t_end negative', line({ t: null, t_end: -1 }), 't_end must be a finite number >= 0'],
    ['reported_prompt_tokens fractional', line({ reported_prompt_tokens: 1.25 }), 'reported_prompt_tokens must be a non-negative integer'],
    ['seq repeated in the session', line({ seq: 0 }), 'seq 0 does not increase within session "s1" (previous seq 0)'],
    ['header after a call', JSON.stringify({ workload: 'w' }), 'a header is allowed only on the first non-blank line'],
  ];

  it.each(cases)('%s', async (_name, bad, problem) => {
    const path = await fileWith('bad.jsonl', [line(), '', bad, line({ seq: 9 })]);
    const error = await readError(path);
    expect(error.message).toBe(`${path}:3: ${problem}`);
    expect(error.file).toBe(path);
    expect(error.line).toBe(3);
    expect(error.problem).toBe(problem);
  });

  it('names the line of a bad header', async () => {
    const path = await fileWith('bad-header.jsonl', ['', JSON.stringify({ workload: '', source: 'x' }), line()]);
    expect((await readError(path)).message).toBe(`${path}:2: header: workload must be a non-empty string`);
    const path2 = await fileWith('bad-source.jsonl', [JSON.stringify({ workload: 'w', source: 3 })]);
    expect((await readError(path2)).message).toBe(`${path2}:1: header: source must be a string`);
  });

  it('uses the path as given, so a relative name stays relative', async () => {
    const path = await fileWith('trace.jsonl', [line(), line({ seq: 1, segments: [{ id: ID_A, tokens: 'x' }] })]);
    const given = relative(process.cwd(), path);
    expect((await readError(given)).message).toBe(`${given}:2: segments[0].tokens must be a non-negative integer`);
  });
});

describe('readTrace: unreadable files', () => {
  it('names a missing file', async () => {
    const path = join(dir, 'does-not-exist.jsonl');
    const error = await readError(path);
    expect(error.message).toBe(`${path}: cannot read: no such file`);
    expect(error.line).toBeNull();
  });

  it('names a directory', async () => {
    expect((await readError(dir)).message).toBe(`${dir}: cannot read: is a directory`);
  });
});

describe('readTrace: streaming', () => {
  const LINES = 100_000;
  let bigPath: string;

  function* manyCalls(): Generator<TraceCall> {
    for (let i = 0; i < LINES; i++) {
      const session = `s${Math.floor(i / 50)}`;
      yield {
        session,
        agent: i % 2 === 0 ? 'planner' : 'coder',
        seq: i % 50,
        t: i % 50,
        segments: Array.from({ length: 8 }, (_, k) => ({ id: `${session}-segment-${k}-${i % 7}`, tokens: 100 + k })),
        outputTokens: 10,
        outputId: `reply-${i}`,
      };
    }
  }

  beforeAll(async () => {
    bigPath = join(dir, 'big.jsonl');
    await writeTrace(bigPath, { workload: 'big' }, manyCalls());
    // One malformed line at the very end: a reader that parsed the whole
    // file before yielding would throw before the first call.
    await writeFile(bigPath, '{"broken":\n', { flag: 'a' });
  }, 60_000);

  it('yields calls before it has read the whole file', async () => {
    let yielded = 0;
    let error: unknown = null;
    try {
      for await (const call of readTrace(bigPath)) {
        expect(call.seq).toBe(yielded % 50);
        yielded++;
      }
    } catch (e) {
      error = e;
    }
    expect(yielded).toBe(LINES);
    expect((error as TraceError).message).toBe(`${bigPath}:${LINES + 2}: not valid JSON`);
  }, 60_000);

  it('stops early without reading the rest, and closes the file', async () => {
    const seen: number[] = [];
    for await (const call of readTrace(bigPath)) {
      seen.push(call.seq);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps memory bounded while reading 100k lines', async () => {
    const parsedBytesIfRetained = LINES * 8 * 100; // a low estimate of the calls' heap size
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let n = 0;
    try {
      for await (const _call of readTrace(bigPath)) {
        if (++n % 5000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    } catch {
      // the malformed last line
    }
    expect(n).toBe(LINES);
    expect(peak - before).toBeLessThan(parsedBytesIfRetained / 2);
  }, 60_000);
});

describe.skipIf(!HAVE_TRACES)('real traces in ../shared/traces (skipped when the folder is absent)', () => {
  const expected: [string, number][] = [
    ['chatdev.jsonl', 1350],
    ['chatdev_agile.jsonl', 44236],
    ['tau_airline.jsonl', 3944],
    ['mad_debate.jsonl', 2763],
    ['hyperagent_subagents.jsonl', 898],
  ];

  it.each(expected)('%s parses: %i calls', async (file, lines) => {
    let calls = 0;
    let header: unknown = null;
    const sessions = new Set<string>();
    for await (const call of readTrace(join(TRACES, file), { onHeader: (h) => (header = h) })) {
      calls++;
      sessions.add(call.session);
    }
    expect(header).toBeNull();
    expect(calls).toBe(lines);
    expect(sessions.size).toBeGreaterThan(0);
  }, 60_000);
});

if (!HAVE_TRACES) {
  describe('real traces', () => {
    it.skip(`skipped: ${TRACES} not found (the real traces live outside the package)`, () => {});
  });
}
