/**
 * Tool-result memoization on a bundled workload, end to end as a user runs
 * it: the generated trace's header declares its tools, `cachesage replay`
 * hands the declarations to `lru+tool-memo`, and the memo saves tool time
 * with no stale answer. Without declarations nothing is memoised; with the
 * stateful tools memoised blindly, answers go stale.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LLAMA3_8B_H100 } from '../../src/sim/cost_model.js';
import { simulate } from '../../src/sim/simulator.js';
import { prepareWorkload } from '../../src/sim/workload.js';
import type { ToolDeclaration } from '../../src/trace/format.js';
import { generateWorkload, writeTrace } from '../../src/workloads/index.js';
import { cliInProcess } from '../cli/in_process.js';

interface Tally {
  calls: number;
  answered: number;
  stale: number;
  denied: number;
  secondsSaved: number;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cachesage-tool-memo-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const workload = generateWorkload('react', { sessions: 24 });
const declared = workload.header.tools!;

/** Replays `tools` declarations (none: the header declares nothing) with lru and lru+tool-memo through the CLI. */
async function replayWith(name: string, tools: Record<string, ToolDeclaration> | undefined): Promise<[Tally, Tally]> {
  const path = join(dir, `${name}.jsonl`);
  const { tools: _all, ...header } = workload.header;
  await writeTrace(path, tools === undefined ? header : { ...header, tools }, workload.calls);
  const out = await cliInProcess(['replay', '--trace', path, '--policies', 'lru,lru+tool-memo', '--concurrency', '8', '--json']);
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  const results = (JSON.parse(out.stdout) as { results: { toolCalls: Tally }[] }).results;
  return [results[0]!.toolCalls, results[1]!.toolCalls];
}

describe('tool-memo on a bundled workload', () => {
  it('saves tool seconds with no stale answer when the header declares the tools', async () => {
    const [lru, memo] = await replayWith('declared', declared);
    expect(lru).toMatchObject({ answered: 0, stale: 0, secondsSaved: 0 });
    expect(memo.calls).toBe(lru.calls);
    expect(memo.answered).toBeGreaterThan(0);
    expect(memo.stale).toBe(0);
    expect(memo.secondsSaved).toBeGreaterThan(0);
  });

  it('answers the pure tools alone, none stale, when only they are declared', async () => {
    const pure = Object.fromEntries(Object.entries(declared).filter(([, d]) => d.pure === true));
    expect(Object.keys(pure).sort()).toEqual(['calculate', 'search_flights']);
    const [, memo] = await replayWith('pure', pure);
    expect(memo.answered).toBeGreaterThan(0);
    expect(memo.stale).toBe(0);
    expect(memo.secondsSaved).toBeGreaterThan(0);
  });

  it('memoises nothing the header leaves undeclared', async () => {
    const [, memo] = await replayWith('undeclared', undefined);
    expect(memo).toMatchObject({ answered: 0, stale: 0, secondsSaved: 0 });
  });

  it('goes stale when every tool is memoised for a minute regardless of what it does', () => {
    const prepared = prepareWorkload('react', workload.calls, 16, LLAMA3_8B_H100, 1);
    const run = simulate({
      workload: prepared,
      policy: ['lru', { name: 'tool-memo', options: { defaultTtlSeconds: 60 } }],
      deviceBlocks: prepared.blockIds.size,
      hostBlocks: 0,
      model: LLAMA3_8B_H100,
      arrivals: { concurrency: 8 },
    });
    expect(run.toolCalls!.stale).toBeGreaterThan(0);
  });
});
