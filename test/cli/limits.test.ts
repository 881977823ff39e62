/**
 * `cachesage replay` on traces that break the format's limits and rules,
 * as a script sees it: exit status 2 and one line on stderr naming
 * FILE:LINE and the field; `--strict`; a capacity raised to fit the largest
 * call, announced on stderr and in the JSON, row by row.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MAX_CALL_TOKENS } from '../../src/trace/limits.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: readonly string[]): Promise<Outcome> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, CACHESAGE_DEBUG: '' }, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => done({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** Two at a time: the test machine has two cores. */
async function both(a: readonly string[], b: readonly string[]): Promise<[Outcome, Outcome]> {
  return Promise.all([cli(a), cli(b)]);
}

function record(session: string, seq: number, t: number | null, segments: [string, number][], outputId: string, outputTokens: number): string {
  return JSON.stringify({ session, agent: seq % 2 === 0 ? 'coder' : 'reviewer', seq, t, segments: segments.map(([id, tokens]) => ({ id, tokens })), output_tokens: outputTokens, output_id: outputId });
}

/** A valid trace: the coder's reply comes back to it as a segment with 4 tokens of framing. */
const VALID = [
  JSON.stringify({ workload: 'review', source: 'test' }),
  record('pr-1', 0, 0, [['coder-system', 120], ['pr-1-task', 30]], 'pr-1-patch', 50),
  record('pr-1', 1, 3, [['reviewer-system', 80], ['pr-1-patch-for-review', 54]], 'pr-1-review', 15),
  record('pr-1', 2, 4, [['coder-system', 120], ['pr-1-task', 30], ['pr-1-patch', 54], ['pr-1-review-for-coder', 19]], 'pr-1-patch-2', 45),
  record('pr-2', 0, 0, [['coder-system', 120], ['pr-2-task', 25]], 'pr-2-patch', 62),
];

let dir: string;
const files: Record<string, string> = {};

function file(name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cachesage-cli-limits-'));
  files['valid'] = file('valid.jsonl', VALID);
  files['huge'] = file('huge.jsonl', [record('s', 0, 0, [['sys', 4_000_000_000]], 'r', 10)]);
  files['conflict'] = file('conflict.jsonl', [...VALID, record('pr-1', 3, 5, [['coder-system', 121]], 'r', 1)]);
  files['backwards'] = file('backwards.jsonl', [...VALID, record('pr-1', 3, 2, [['coder-system', 120]], 'r', 1)]);
  // 9 calls of 2^21 tokens: at 1 token per block, more blocks than a replay holds.
  files['many-blocks'] = file('many-blocks.jsonl', Array.from({ length: 9 }, (_, i) => record(`s${i}`, 0, null, [['x', MAX_CALL_TOKENS - 1]], `r${i}`, 1)));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('a line past a limit', () => {
  it('a 4-billion-token segment: exit 2 and one line naming FILE:LINE and the field, nothing on stdout', async () => {
    const out = await cli(['replay', '--trace', files['huge']!, '--json']);
    expect(out).toEqual({
      code: 2,
      stdout: '',
      stderr: `${files['huge']}:1: segments[0].tokens is 4,000,000,000, more than the 2,097,152 tokens a segment may hold (limits: docs/trace-format.md)\n`,
    });
  });

  it('more blocks than a replay holds at the block size asked for: names --block-size and the least that fits', async () => {
    const out = await cli(['replay', '--trace', files['many-blocks']!, '--block-size', '1']);
    expect(out.code).toBe(2);
    expect(out.stderr).toBe(
      'cachesage replay: --block-size 1: the trace makes 18,874,368 blocks, more than the 16,777,216 a replay holds; use --block-size 2 or more\n',
    );
  });
});

describe('the rules across lines', () => {
  it('one segment id with two counts in a session, and time going back: both lines named', async () => {
    const [conflict, backwards] = await both(['replay', '--trace', files['conflict']!], ['replay', '--trace', files['backwards']!]);
    const c = files['conflict']!;
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toBe(
      `${c}:6: segments[0].tokens: segment "coder-system" has 121 tokens here but 120 at ${c}:2 in the same session "pr-1" ` +
        '(within a session a segment id names one message, of one length: docs/trace-format.md)\n',
    );
    const b = files['backwards']!;
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toBe(`${b}:6: t 2 is earlier than t 4 of the previous call of session "pr-1" at ${b}:4: time does not go back within a session (docs/trace-format.md)\n`);
  });

  it('a reply re-sent with framing: counted by default, refused with --strict naming both lines', async () => {
    const [counted, strict] = await both(
      ['replay', '--trace', files['valid']!, '--policies', 'lru', '--json'],
      ['replay', '--trace', files['valid']!, '--policies', 'lru', '--strict', '--json'],
    );
    expect(counted.code).toBe(0);
    expect(JSON.parse(counted.stdout).tokenCounts).toEqual({ idsWithSeveralCounts: 1, referencesWithOtherCount: 1 });
    const v = files['valid']!;
    expect(strict).toEqual({
      code: 2,
      stdout: '',
      stderr: `${v}:4: segments[2].tokens: id "pr-1-patch" has 54 tokens here but 50 at ${v}:2 (output_tokens) (strict mode: an id has one token count in the whole trace; docs/trace-format.md)\n`,
    });
  });
});

describe('a capacity raised to fit the largest call', () => {
  it('is one line on stderr and, in the JSON, requested and effective capacity per row', async () => {
    const [raised, enough] = await both(
      ['replay', '--trace', files['valid']!, '--policies', 'lru,infinite', '--capacity', '2', '--json'],
      ['replay', '--trace', files['valid']!, '--policies', 'lru', '--capacity', '40', '--json'],
    );
    expect(raised.code).toBe(0);
    // The largest call: 120 + 30 + 54 + 19 prompt tokens and 45 of reply, in 16-token blocks.
    const largest = Math.ceil((120 + 30 + 54 + 19 + 45) / 16);
    expect(raised.stderr).toBe(`cachesage replay: --capacity 2 is 2 device blocks, fewer than the ${largest} the largest call needs; raised to ${largest} blocks\n`);
    const report = JSON.parse(raised.stdout);
    expect(report.requestedCapacityBlocks).toBe(2);
    expect(report.largestCallBlocks).toBe(largest);
    expect(report.capacityBlocks).toBe(largest);
    expect(report.results[0].capacity).toEqual({ requested: 2, effective: largest, raisedToFit: true });
    expect(report.results[1].capacity.raisedToFit).toBe(false);

    expect(enough.stderr).toBe('');
    expect(JSON.parse(enough.stdout).results[0].capacity).toEqual({ requested: 40, effective: 40, raisedToFit: false });
  });

  it('names the default capacity when it was not given', async () => {
    // One call: half its own footprint cannot hold it.
    const one = file('one-call.jsonl', [VALID[1]!]);
    const out = await cli(['replay', '--trace', one, '--policies', 'lru', '--json']);
    const blocks = Math.ceil((120 + 30 + 50) / 16);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe(`cachesage replay: the default --capacity 0.5 is 6 device blocks, fewer than the ${blocks} the largest call needs; raised to ${blocks} blocks\n`);
    expect(JSON.parse(out.stdout).results[0].capacity).toEqual({ requested: 6, effective: blocks, raisedToFit: true });
  });
});

describe('the command line points at docs/trace-format.md', () => {
  it('in --help, with --strict; and refuses a trace path longer than a workload name', async () => {
    const deep = join(dir, 'd'.repeat(120), 'e'.repeat(120));
    mkdirSync(deep, { recursive: true });
    const long = join(deep, 'trace.jsonl');
    writeFileSync(long, VALID.join('\n') + '\n');
    const [help, tooLong] = await both(['replay', '--help'], ['replay', '--trace', long]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('The trace format, its\nrules and its limits: docs/trace-format.md.');
    expect(help.stdout).toMatch(/^ {2}--strict {13}refuse any id seen with two token counts/m);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toBe(
      `cachesage replay: --trace names a path of ${long.length} characters; the replay names its workload after it, which allows 256\n`,
    );
  });
});
