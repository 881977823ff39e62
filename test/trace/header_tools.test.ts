/**
 * A trace header's tool declarations: read back as written, and refused
 * with the field named when malformed (TraceRecordError from decodeHeader,
 * FILE:1: from the reader).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeHeader, TraceError, TraceRecordError } from '../../src/trace/format.js';
import { readTraceFile } from '../../src/trace/reader.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cachesage-header-tools-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TOOLS = {
  search: { pure: true },
  clock: { never: true },
  db_read: { reads: ['db'], ttlSeconds: 30 },
  db_write: { writes: ['db'] },
};

function refusal(tools: unknown): { message: string; kind: string } {
  try {
    decodeHeader({ workload: 'w', tools });
  } catch (error) {
    if (error instanceof TraceRecordError) return { message: error.message, kind: error.kind };
    throw error;
  }
  throw new Error('accepted');
}

describe('header tool declarations', () => {
  it('are kept as declared; a header without them has none', () => {
    expect(decodeHeader({ workload: 'w', seed: 3, tools: TOOLS })).toEqual({ workload: 'w', seed: 3, tools: TOOLS });
    expect(decodeHeader({ workload: 'w' }).tools).toBeUndefined();
  });

  it('take a tool named like an Object property as a plain name', () => {
    const header = decodeHeader(JSON.parse('{"workload": "w", "tools": {"__proto__": {"pure": true}, "toString": {"never": true}}}'));
    expect(Object.keys(header.tools!)).toEqual(['__proto__', 'toString']);
    expect(header.tools!['__proto__']).toEqual({ pure: true });
  });

  it('are refused with the field named', () => {
    expect(refusal([])).toEqual({ kind: 'type', message: 'header: tools must be an object of tool declarations, got an array' });
    expect(refusal({ q: true })).toEqual({ kind: 'type', message: 'header: tools.q must be an object, got boolean true' });
    expect(refusal({ q: { ttl: 3 } })).toEqual({ kind: 'type', message: 'header: tools.q: unknown field "ttl" (known: pure, ttlSeconds, never, reads, writes)' });
    expect(refusal({ q: { pure: 'yes' } })).toEqual({ kind: 'type', message: 'header: tools.q.pure must be a boolean, got the string "yes"' });
    expect(refusal({ q: { ttlSeconds: 0 } })).toEqual({ kind: 'range', message: 'header: tools.q.ttlSeconds must be a number > 0 (Infinity: no limit), got number 0' });
    expect(refusal({ q: { reads: 'db' } }).message).toBe('header: tools.q.reads must be an array of resource names (1 to 256 characters), got the string "db"');
    expect(refusal({ q: { writes: [''] } }).message).toBe('header: tools.q.writes must be an array of resource names (1 to 256 characters), got an array');
    expect(refusal({ q: { never: true, ttlSeconds: 5 } })).toEqual({ kind: 'range', message: 'header: tools.q: a tool declared never memoised cannot also be pure or have ttlSeconds' });
    expect(refusal({ '': { pure: true } }).message).toBe('header: tools: a tool name must have 1 to 256 characters, got 0');
    const many = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`t${i}`, { pure: true }]));
    expect(refusal(many)).toEqual({ kind: 'range', message: 'header: tools declares 1,025 tools, more than the 1,024 allowed (limits: docs/trace-format.md)' });
  });

  it('reach the reader’s header, and a malformed one is refused at line 1', async () => {
    const call = { session: 's', agent: 'a', seq: 0, t: 0, segments: [{ id: 'x', tokens: 4 }], output_tokens: 1, output_id: 'y' };
    const good = join(dir, 'good.jsonl');
    await writeFile(good, `${JSON.stringify({ workload: 'w', tools: TOOLS })}\n${JSON.stringify(call)}\n`);
    expect((await readTraceFile(good)).header).toEqual({ workload: 'w', tools: TOOLS });
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, `${JSON.stringify({ workload: 'w', tools: { search: { pure: 1 } } })}\n${JSON.stringify(call)}\n`);
    await expect(readTraceFile(bad)).rejects.toThrow(new TraceError(bad, 1, 'header: tools.search.pure must be a boolean, got number 1'));
  });
});
