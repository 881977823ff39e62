/**
 * The `hierarchy` shape: a manager -> team leads -> workers tree, exact on a
 * configuration with fixed sizes and counts, structural on the defaults.
 */
import { describe, expect, it } from 'vitest';

import type { TraceCall } from '../../src/trace/format.js';
import { END_AGENT, generateShape, generateWorkload, hierarchy, START_AGENT, traceStats, type HierarchyParams } from '../../src/workloads/index.js';

const fixed = (median: number) => ({ median, sigma: 0 });

/** Every size and count fixed: two teams of two workers, two calls per worker. */
const EXACT: Partial<HierarchyParams> = {
  task: fixed(100),
  plan: fixed(50),
  assignment: fixed(20),
  finalAnswer: fixed(30),
  teamsPerSession: { 2: 1 },
  workersPerTeam: { 2: 1 },
  brief: fixed(40),
  subtask: fixed(10),
  workerCalls: { 2: 1 },
  toolResult: fixed(60),
  workerOutput: fixed(25),
  teamReport: fixed(35),
  toolGap: { zeroProb: 1, median: 1, sigma: 0 },
};

const promptOf = (call: TraceCall) => call.segments.reduce((sum, s) => sum + s.tokens, 0);

function sessions(calls: readonly TraceCall[]): TraceCall[][] {
  const by = new Map<string, TraceCall[]>();
  for (const call of calls) by.set(call.session, [...(by.get(call.session) ?? []), call]);
  return [...by.values()];
}

describe('hierarchy, fixed sizes', () => {
  const [session] = sessions(generateShape(hierarchy, { seed: 1, sessions: 1, params: EXACT }).calls);

  it('walks the tree: plan, then per team an assignment, a brief, the workers and a merge, then the answer', () => {
    expect(session!.map((c) => c.agent)).toEqual([
      'Manager',
      'Manager',
      'Research Lead',
      'Researcher',
      'Researcher',
      'Researcher',
      'Researcher',
      'Research Lead',
      'Manager',
      'Engineering Lead',
      'Engineer',
      'Engineer',
      'Engineer',
      'Engineer',
      'Engineering Lead',
      'Manager',
    ]);
  });

  it('builds each prompt from the system prompts and the replies before it (4 framing tokens a forwarded reply)', () => {
    expect(session!.map(promptOf)).toEqual([
      1200 + 100, // manager: system, task
      1300 + 54, // + plan
      900 + 24, // research lead: system, assignment
      1100 + 44 + 10, // researcher: system, brief, sub-task
      1154 + 29 + 60, // + its tool call, the tool result
      1154,
      1243,
      924 + 44 + 2 * 29, // lead: + brief, both reports
      1354 + 24 + 39, // manager: + assignment, team report
      1000 + 24,
      1300 + 44 + 10,
      1443,
      1354,
      1443,
      1024 + 44 + 58,
      1417 + 24 + 39,
    ]);
    expect(session!.map((c) => c.outputTokens)).toEqual([50, 20, 40, 25, 25, 25, 25, 35, 20, 40, 25, 25, 25, 25, 35, 30]);
  });

  it('gives the workers of one team a shared prefix (role system prompt, the brief) and private sub-tasks', () => {
    const researchers = session!.filter((c) => c.agent === 'Researcher');
    const [first, , second] = researchers;
    expect(second!.segments.slice(0, 2)).toEqual(first!.segments.slice(0, 2));
    expect(second!.segments[2]!.id).not.toBe(first!.segments[2]!.id);
    // The brief is the lead's reply, forwarded as a user message.
    const brief = session!.find((c) => c.agent === 'Research Lead')!;
    expect(first!.segments[1]!.tokens).toBe(brief.outputTokens + 4);
    // A worker's second call extends its first.
    expect(researchers[1]!.segments.slice(0, 3)).toEqual(first!.segments);
  });

  it('keeps the manager on one growing history, and each lead on one conversation', () => {
    const manager = session!.filter((c) => c.agent === 'Manager');
    for (let i = 1; i < manager.length; i++) {
      expect(manager[i]!.segments.slice(0, manager[i - 1]!.segments.length)).toEqual(manager[i - 1]!.segments);
    }
    const lead = session!.filter((c) => c.agent === 'Engineering Lead');
    expect(lead[1]!.segments.slice(0, 2)).toEqual(lead[0]!.segments);
  });
});

describe('hierarchy, defaults', () => {
  const { calls, header } = generateWorkload('hierarchy', { seed: 1, sessions: 40 });

  it('names the public work it follows instead of a fitted trace', () => {
    expect(header['modelledOn']).toMatch(/MetaGPT/);
    expect(header).not.toHaveProperty('fittedTo');
  });

  it('hands off only along the tree', () => {
    const leadOf = new Map([
      ['Researcher', 'Research Lead'],
      ['Engineer', 'Engineering Lead'],
      ['Tester', 'QA Lead'],
    ]);
    const leads = new Set(leadOf.values());
    for (const key of traceStats(calls).transitions.keys()) {
      const [from, to] = key.split(' -> ') as [string, string];
      if (from === START_AGENT || to === END_AGENT) expect(from === START_AGENT ? to : from, key).toBe('Manager');
      else if (from === 'Manager') expect(to === 'Manager' || leads.has(to), key).toBe(true);
      else if (leads.has(from)) expect(to === 'Manager' || leadOf.get(to) === from, key).toBe(true);
      else expect(to === from || leadOf.get(from) === to, key).toBe(true);
    }
  });

  it('calls two or three teams, always starting with research, with two to four workers each', () => {
    for (const session of sessions(calls)) {
      const leads = session.filter((c, i) => c.agent.endsWith('Lead') && session[i - 1]!.agent === 'Manager').map((c) => c.agent);
      expect([['Research Lead', 'Engineering Lead'], ['Research Lead', 'Engineering Lead', 'QA Lead']]).toContainEqual(leads);
      for (const lead of leads) {
        const briefed = session.filter((c) => c.agent === lead);
        expect(briefed).toHaveLength(2);
        const workers = new Set(session.filter((c) => c.segments[1]?.tokens === briefed[0]!.outputTokens + 4 && c.agent !== lead).map((c) => c.segments[2]!.id));
        expect(workers.size).toBeGreaterThanOrEqual(2);
        expect(workers.size).toBeLessThanOrEqual(4);
      }
    }
  });
});
