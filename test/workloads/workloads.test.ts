import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TraceCall } from '../../src/trace/format.js';
import { readTraceFile } from '../../src/trace/reader.js';
import {
  branchy,
  END_AGENT,
  generateShape,
  generateWorkload,
  START_AGENT,
  traceStats,
  WORKLOAD_NAMES,
  WORKLOADS,
  writeTrace,
  type FitTargets,
  type GeneratedWorkload,
  type TraceStats,
} from '../../src/workloads/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cachesage-workloads-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Generated once per shape at the defaults (200 sessions, seed 1): the
// workloads the project ships.
const defaults = new Map<string, GeneratedWorkload>();
function bundled(name: string): GeneratedWorkload {
  let workload = defaults.get(name);
  if (workload === undefined) {
    workload = generateWorkload(name);
    defaults.set(name, workload);
  }
  return workload;
}

function bySession(calls: readonly TraceCall[]): TraceCall[][] {
  const sessions = new Map<string, TraceCall[]>();
  for (const call of calls) {
    const list = sessions.get(call.session) ?? [];
    list.push(call);
    sessions.set(call.session, list);
  }
  return [...sessions.values()];
}

function transitionKeys(stats: TraceStats): string[] {
  return [...stats.transitions.keys()].sort();
}

function share(stats: TraceStats, key: string, of: (k: string) => boolean): number {
  let total = 0;
  for (const [k, n] of stats.transitions) if (of(k)) total += n;
  return (stats.transitions.get(key) ?? 0) / total;
}

/**
 * Tolerances of the fit: means within 12%, shared-prefix fractions within
 * 0.05, per-agent means within 25% (or 25 tokens, for the tiny outputs).
 */
function expectFit(stats: TraceStats, targets: FitTargets, options: { perAgent?: boolean; overall?: boolean } = {}): void {
  const { perAgent = true, overall = true } = options;
  expect(stats.agents.length).toBe(targets.distinctAgents);
  if (overall) {
    expect(stats.meanPromptTokens / targets.meanPromptTokens).toBeGreaterThan(0.88);
    expect(stats.meanPromptTokens / targets.meanPromptTokens).toBeLessThan(1.12);
    expect(stats.meanOutputTokens / targets.meanOutputTokens).toBeGreaterThan(0.88);
    expect(stats.meanOutputTokens / targets.meanOutputTokens).toBeLessThan(1.12);
    expect(Math.abs(stats.sharedPrefixGlobal - targets.sharedPrefixGlobal)).toBeLessThan(0.05);
  }
  if (perAgent) {
    for (const [agent, target] of Object.entries(targets.perAgent)) {
      const got = stats.perAgent.get(agent);
      expect(got, agent).toBeDefined();
      expect(Math.abs((got?.prompt ?? 0) - target.prompt), `${agent} prompt`).toBeLessThanOrEqual(Math.max(25, 0.25 * target.prompt));
      expect(Math.abs((got?.output ?? 0) - target.output), `${agent} output`).toBeLessThanOrEqual(Math.max(25, 0.25 * target.output));
    }
  }
}

function expectWithin(value: number, target: number, relative: number): void {
  expect(value).toBeGreaterThan(target * (1 - relative));
  expect(value).toBeLessThan(target * (1 + relative));
}

describe('registry', () => {
  it('holds seven shapes, each fitted to a named real trace or naming the public work it follows', () => {
    expect(WORKLOAD_NAMES).toEqual(['pipeline', 'groupchat', 'react', 'orchestrator', 'branchy', 'hierarchy', 'mapreduce']);
    for (const generator of WORKLOADS.values()) {
      if (['hierarchy', 'mapreduce'].includes(generator.name)) {
        expect(generator.targets).toBeNull();
        expect(generator.modelledOn).toMatch(/\(.*\d{4}\)/);
      } else {
        expect(generator.targets?.trace).toMatch(/\.jsonl$/);
        expect(generator.modelledOn).toBeUndefined();
      }
    }
  });

  it('refuses unknown names and bad options', () => {
    expect(() => generateWorkload('nope')).toThrow(/unknown workload "nope"; known: pipeline, groupchat/);
    expect(() => generateWorkload('react', { sessions: 0 })).toThrow(RangeError);
    expect(() => generateWorkload('react', { seed: 1.5 })).toThrow(RangeError);
  });

  it('makes a few thousand calls per shape at the defaults', () => {
    for (const name of WORKLOAD_NAMES) {
      const { calls, header } = bundled(name);
      expect(header.sessions).toBe(200);
      expect(new Set(calls.map((c) => c.session)).size).toBe(200);
      expect(calls.length).toBeGreaterThan(2000);
      expect(calls.length).toBeLessThan(8000);
    }
  });
});

describe('determinism', () => {
  it.each(WORKLOAD_NAMES)('%s: same seed same trace, another seed another', (name) => {
    const a = generateWorkload(name, { seed: 7, sessions: 20 });
    const b = generateWorkload(name, { seed: 7, sessions: 20 });
    const c = generateWorkload(name, { seed: 8, sessions: 20 });
    expect(b).toEqual(a);
    expect(JSON.stringify(c.calls)).not.toBe(JSON.stringify(a.calls));
  });

  it.each(WORKLOAD_NAMES)('%s: asking for more sessions leaves the first ones unchanged', (name) => {
    const few = generateWorkload(name, { seed: 3, sessions: 5 }).calls;
    const more = generateWorkload(name, { seed: 3, sessions: 12 }).calls;
    expect(more.slice(0, few.length)).toEqual(few);
  });
});

describe('trace validity', () => {
  it.each(WORKLOAD_NAMES)('%s: writes a trace the reader accepts and reads back unchanged', async (name) => {
    const { header, calls } = bundled(name);
    const path = join(dir, `${name}.jsonl`);
    await writeTrace(path, header, calls);
    const read = await readTraceFile(path);
    expect(read.header).toEqual(header);
    expect(read.calls).toEqual(calls);
  });

  it.each(WORKLOAD_NAMES)('%s: every call has a time, calls never overlap within a session', (name) => {
    const { header, calls } = bundled(name);
    for (const session of bySession(calls)) {
      let previousEnd = 0;
      session.forEach((call, index) => {
        expect(call.seq).toBe(index);
        expect(call.t).not.toBeNull();
        expect(call.tEnd).toBeDefined();
        expect(call.t as number).toBeGreaterThanOrEqual(previousEnd);
        expect(call.tEnd as number).toBeGreaterThan(call.t as number);
        previousEnd = call.tEnd as number;
      });
    }
    const starts = header['sessionStarts'] as Record<string, number>;
    const names = [...new Set(calls.map((c) => c.session))];
    expect(Object.keys(starts)).toEqual(names);
    const times = names.map((n) => starts[n] as number);
    expect(times[0]).toBe(0);
    for (let i = 1; i < times.length; i++) expect(times[i] as number).toBeGreaterThanOrEqual(times[i - 1] as number);
  });

  it.each(WORKLOAD_NAMES)('%s: equal ids mean equal text, so an id always has one size', (name) => {
    const { calls } = bundled(name);
    const size = new Map<string, number>();
    for (const call of calls) {
      for (const segment of call.segments) {
        const seen = size.get(segment.id);
        if (seen !== undefined) expect(segment.tokens, segment.id).toBe(seen);
        size.set(segment.id, segment.tokens);
      }
    }
    // A reply re-sent as a segment costs its framing on top.
    for (const call of calls) {
      const resent = size.get(call.outputId);
      if (resent !== undefined) expect(resent).toBe(call.outputTokens + 4);
    }
  });

  it('reuses output ids as later segments, so replies become shared prefix', () => {
    for (const name of WORKLOAD_NAMES) {
      const { calls } = bundled(name);
      const outputs = new Set(calls.map((c) => c.outputId));
      const reused = calls.some((c) => c.segments.some((s) => outputs.has(s.id)));
      expect(reused, name).toBe(true);
    }
  });
});

describe('pipeline (fitted to chatdev.jsonl)', () => {
  it('matches the trace statistics', () => {
    const stats = traceStats(bundled('pipeline').calls);
    expectFit(stats, WORKLOADS.get('pipeline')!.targets!);
    expect(Math.abs(stats.sharedPrefixInSession - 0.272)).toBeLessThan(0.05);
    expectWithin(stats.callsPerSession, 24.55, 0.15);
  });

  it('is a pipeline: fixed head and tail, review loops in between', () => {
    const stats = traceStats(bundled('pipeline').calls);
    const allowed = new Set([
      `${START_AGENT} -> Prompt Engineer`,
      `${START_AGENT} -> Chief Product Officer`,
      'Prompt Engineer -> Chief Product Officer',
      'Chief Product Officer -> Chief Executive Officer',
      'Chief Executive Officer -> Chief Product Officer',
      'Chief Product Officer -> Chief Technology Officer',
      'Chief Executive Officer -> Chief Technology Officer',
      'Chief Technology Officer -> Programmer',
      'Programmer -> Code Reviewer',
      'Code Reviewer -> Programmer',
      'Programmer -> Programmer',
      'Code Reviewer -> Code Reviewer',
      'Programmer -> Software Test Engineer',
      'Software Test Engineer -> Programmer',
      'Programmer -> Chief Executive Officer',
      `Chief Product Officer -> ${END_AGENT}`,
    ]);
    for (const key of stats.transitions.keys()) expect(allowed.has(key), key).toBe(true);
    // Every session ends with the manual.
    expect(stats.transitions.get(`Chief Product Officer -> ${END_AGENT}`)).toBe(200);
    // The review loop dominates, as in ChatDev (286 + 286 + 267 + 124 of 1,350 hand-offs).
    const ranked = [...stats.transitions].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k]) => k);
    expect(new Set(ranked)).toEqual(
      new Set(['Programmer -> Code Reviewer', 'Code Reviewer -> Programmer', 'Programmer -> Programmer', 'Code Reviewer -> Code Reviewer']),
    );
  });
});

describe('groupchat (fitted to mad_debate.jsonl)', () => {
  it('matches the trace statistics', () => {
    const stats = traceStats(bundled('groupchat').calls);
    expectFit(stats, WORKLOADS.get('groupchat')!.targets!);
    expectWithin(stats.callsPerSession, 13.8, 0.1);
  });

  it('the manager ends the chat or hands it on; the judge rules after 4 rounds', () => {
    const stats = traceStats(bundled('groupchat').calls);
    expect(transitionKeys(stats)).toEqual(
      [
        `${START_AGENT} -> Affirmative side`,
        'Affirmative side -> Affirmative side',
        'Affirmative side -> Negative side',
        'Negative side -> Moderator',
        'Moderator -> Affirmative side',
        'Moderator -> Judge',
        `Moderator -> ${END_AGENT}`,
        'Judge -> Judge',
        `Judge -> ${END_AGENT}`,
      ].sort(),
    );
    // 36 of 200 debates end at the moderator in the trace.
    const endedByManager = stats.transitions.get(`Moderator -> ${END_AGENT}`) ?? 0;
    expect(endedByManager).toBeGreaterThan(15);
    expect(endedByManager).toBeLessThan(60);
    for (const session of bySession(bundled('groupchat').calls)) {
      expect(session.filter((c) => c.agent === 'Moderator').length).toBeLessThanOrEqual(4);
    }
  });

  it('in shared-history mode every agent sees the whole transcript', async () => {
    const { groupchat } = await import('../../src/workloads/groupchat.js');
    const { calls } = generateShape(groupchat, { seed: 1, sessions: 3, params: { history: 'shared' } });
    for (const session of bySession(calls)) {
      // Each prompt holds one segment per earlier message plus system prompt and question.
      session.forEach((call, index) => expect(call.segments.length).toBe(index + 2));
    }
  });
});

describe('react (fitted to tau_airline.jsonl)', () => {
  it('matches the trace statistics', () => {
    const stats = traceStats(bundled('react').calls);
    expectFit(stats, WORKLOADS.get('react')!.targets!);
    expect(Math.abs(stats.sharedPrefixInSession - 0.898)).toBeLessThan(0.03);
    expectWithin(stats.callsPerSession, 19.7, 0.12);
  });

  it('alternates user and agent, with agent tool-call self-loops', () => {
    const stats = traceStats(bundled('react').calls);
    expect(transitionKeys(stats)).toEqual(
      [
        `${START_AGENT} -> user_simulator`,
        'user_simulator -> airline_agent',
        'airline_agent -> airline_agent',
        'airline_agent -> user_simulator',
        `user_simulator -> ${END_AGENT}`,
        `airline_agent -> ${END_AGENT}`,
      ].sort(),
    );
    // tau-bench: 1,113 of 2,454 agent hand-offs are to itself (a tool call).
    const selfLoop = share(stats, 'airline_agent -> airline_agent', (k) => k.startsWith('airline_agent ->'));
    expect(Math.abs(selfLoop - 0.454)).toBeLessThan(0.05);
  });

  it('waits for tools between consecutive agent calls', () => {
    const gaps: number[] = [];
    for (const session of bySession(bundled('react').calls)) {
      for (let i = 1; i < session.length; i++) {
        const [prev, call] = [session[i - 1] as TraceCall, session[i] as TraceCall];
        if (prev.agent === 'airline_agent' && call.agent === 'airline_agent') gaps.push((call.t as number) - (prev.tEnd as number));
      }
    }
    gaps.sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1] as number;
    expect(median).toBeGreaterThan(1.5);
    expect(median).toBeLessThan(2.5);
  });
});

describe('orchestrator (workers fitted to hyperagent_subagents.jsonl)', () => {
  const targets = WORKLOADS.get('orchestrator')!.targets!;
  const workers = new Set(targets.agents);

  it('matches the trace statistics on worker calls', () => {
    const { calls } = bundled('orchestrator');
    const workerStats = traceStats(calls.filter((c) => workers.has(c.agent)));
    expectFit(workerStats, targets);
    // Calls per worker invocation (the real trace's sessions are invocations).
    const all = traceStats(calls);
    let invocations = 0;
    for (const w of workers) invocations += all.transitions.get(`planner -> ${w}`) ?? 0;
    expectWithin(workerStats.calls / invocations, targets.callsPerSession, 0.2);
  });

  it('delegates from the planner and returns to it; workers only loop on themselves', () => {
    const stats = traceStats(bundled('orchestrator').calls);
    for (const key of stats.transitions.keys()) {
      const [from, to] = key.split(' -> ') as [string, string];
      if (from === START_AGENT) expect(to).toBe('planner');
      else if (to === END_AGENT) expect(from).toBe('planner');
      else if (workers.has(from) && workers.has(to)) expect(from).toBe(to);
      else expect(from === 'planner' || to === 'planner').toBe(true);
    }
    // Invocation mix of the trace: 338 finder, 75 navigator, 26 editor, 18 executor.
    const delegated = (w: string): number => stats.transitions.get(`planner -> ${w}`) ?? 0;
    const total = [...workers].reduce((sum, w) => sum + delegated(w), 0);
    expect(Math.abs(delegated('finder') / total - 0.74)).toBeLessThan(0.08);
    expect(Math.abs(delegated('navigator') / total - 0.164)).toBeLessThan(0.06);
    // A finder always answers in one call.
    expect(stats.transitions.get('finder -> finder')).toBeUndefined();
  });

  it('gives each invocation a private scratchpad that grows by one piece per step', () => {
    for (const session of bySession(bundled('orchestrator').calls).slice(0, 40)) {
      for (let i = 1; i < session.length; i++) {
        const [prev, call] = [session[i - 1] as TraceCall, session[i] as TraceCall];
        if (prev.agent === call.agent && call.agent !== 'planner') {
          expect(call.segments.slice(0, -1)).toEqual(prev.segments);
        }
      }
    }
  });
});

describe('branchy (fitted to chatdev_agile.jsonl)', () => {
  const targets = WORKLOADS.get('branchy')!.targets!;

  it('matches the per-agent statistics with its shortened sprint loop', () => {
    const stats = traceStats(bundled('branchy').calls);
    expectFit(stats, targets, { overall: false });
    // Fewer sprint rounds than the fork's 32 put more weight on the head.
    expect(Math.abs(stats.sharedPrefixGlobal - targets.sharedPrefixGlobal)).toBeLessThan(0.1);
  });

  it('matches the whole-trace statistics with the fork’s 32-round loop', () => {
    const { calls } = generateShape(branchy, { seed: 1, sessions: 60, params: { sprintRounds: 32 } });
    const stats = traceStats(calls);
    expectFit(stats, targets);
    expectWithin(stats.callsPerSession, targets.callsPerSession, 0.1);
  });

  it('picks the path by task type', () => {
    const sessions = bySession(bundled('branchy').calls);
    const counts = { specified: 0, discuss: 0, debate: 0 };
    for (const session of sessions) {
      const type = (session[0] as TraceCall).session.split('-').pop() as keyof typeof counts;
      expect(Object.keys(counts)).toContain(type);
      counts[type]++;
      const agents = session.map((c) => c.agent);
      const firstCoder = agents.indexOf('Programmer_1');
      const head = agents.slice(0, firstCoder);
      expect(head[0]).toBe('Chief Product Officer');
      if (type === 'specified') {
        expect(head).toEqual(['Chief Product Officer', 'Chief Technology Officer']);
      } else {
        expect(head[1]).toBe('Chief Executive Officer');
      }
      if (type === 'debate') {
        expect(head.filter((a) => a === 'Chief Technology Officer').length).toBe(10);
        expect(head.at(-1)).toBe('Chief Executive Officer');
      }
      // The wrap-up is the same for everyone.
      expect(agents.slice(-4)).toEqual(['Programmer', 'Programmer', 'Chief Executive Officer', 'Chief Product Officer']);
    }
    // Head paths of the trace: 0.12 specified, 0.60 discussed, 0.28 debated.
    expect(Math.abs(counts.specified / 200 - 0.12)).toBeLessThan(0.06);
    expect(Math.abs(counts.debate / 200 - 0.28)).toBeLessThan(0.08);
  });
});
