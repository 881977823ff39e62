import { describe, expect, it } from 'vitest';

import type { AgentRef, FrameworkEvent } from '../../src/policies/types.js';
import { NameRegistry } from '../../src/runtime/names.js';
import { SessionBook } from '../../src/runtime/sessions.js';

const W = 'w';
const ref = (agent: string, workload = W): AgentRef => ({ workload, agent });
const started = (session: string, time = 0, workload = W): FrameworkEvent => ({ type: 'session.start', time, session, workload });
const stepStart = (session: string, agent: AgentRef, time = 0): FrameworkEvent => ({ type: 'step.start', time, session, agent });
const stepEnd = (session: string, agent: AgentRef, time = 0): FrameworkEvent => ({ type: 'step.end', time, session, agent });
const toolStart = (session: string, agent: AgentRef, time = 0): FrameworkEvent => ({ type: 'tool.start', time, session, agent, tool: 't' });
const ended = (session: string, time = 0): FrameworkEvent => ({ type: 'session.end', time, session });
const hashes = (...values: number[]) => BigUint64Array.from(values.map(BigInt));

function book(): { registry: NameRegistry; sessions: SessionBook } {
  const registry = new NameRegistry();
  return { registry, sessions: new SessionBook(registry) };
}

/** Applies events that must fit. */
function applyAll(sessions: SessionBook, ...events: FrameworkEvent[]): void {
  for (const e of events) {
    expect(sessions.misfit(e)).toBeNull();
    sessions.apply(e);
  }
}

describe('SessionBook.misfit', () => {
  it('names each kind of misfit exactly, and fits the rest', () => {
    const { sessions } = book();
    expect(sessions.misfit(stepStart('s', ref('a')))).toBe('step.start of an unknown or ended session');
    expect(sessions.misfit(ended('s'))).toBe('session.end of an unknown or ended session');
    expect(sessions.misfit(started('s'))).toBeNull();
    sessions.apply(started('s'));
    expect(sessions.misfit(started('s'))).toBe('session.start of a live session');
    expect(sessions.misfit(stepStart('s', ref('a', 'v')))).toBe('step.start with an agent of another workload');
    expect(sessions.misfit(toolStart('s', ref('a', 'v')))).toBe('tool.start with an agent of another workload');
    expect(sessions.misfit(stepEnd('s', ref('a')))).toBe('step.end without its step.start');
    applyAll(sessions, stepStart('s', ref('a')));
    expect(sessions.misfit(stepEnd('s', ref('b')))).toBe('step.end without its step.start');
    expect(sessions.misfit(stepEnd('s', ref('a')))).toBeNull();
    expect(sessions.misfit(toolStart('s', ref('a')))).toBeNull();
    applyAll(sessions, stepEnd('s', ref('a')));
    expect(sessions.misfit(stepEnd('s', ref('a')))).toBe('step.end without its step.start');
    applyAll(sessions, ended('s'));
    expect(sessions.misfit(stepStart('s', ref('a')))).toBe('step.start of an unknown or ended session');
    expect(sessions.misfit(ended('s'))).toBe('session.end of an unknown or ended session');
    expect(sessions.misfit(started('s'))).toBeNull(); // a session may start again
  });
});

describe('SessionBook.apply', () => {
  it('returns steps with where the session came from, and moves the record', () => {
    const { registry, sessions } = book();
    registry.sessionId('other'); // ids come from the registry: 's' gets 1
    expect(sessions.apply(started('s', 1))).toEqual(started('s', 1));
    expect(sessions.get('s')).toEqual({
      name: 's', id: 1, workload: W, workloadId: 0, live: true, agent: null,
      inStep: false, implicitStep: false, stepStartedAt: 1, stepEndedAt: null, lastEventAt: 1,
    });
    expect(sessions.apply(stepStart('s', ref('a'), 2))).toEqual({
      ...stepStart('s', ref('a'), 2),
      implicit: false,
      previous: { agent: null, inStep: false, stepEndedAt: null },
    });
    expect(sessions.apply(stepEnd('s', ref('a'), 3))).toEqual({ ...stepEnd('s', ref('a'), 3), implicit: false });
    expect(sessions.apply(stepStart('s', ref('b'), 5))).toEqual({
      ...stepStart('s', ref('b'), 5),
      implicit: false,
      previous: { agent: 'a', inStep: false, stepEndedAt: 3 },
    });
    // A step that starts while another runs (no step.end in between).
    expect(sessions.apply(stepStart('s', ref('a'), 6))).toMatchObject({
      previous: { agent: 'b', inStep: true, stepEndedAt: 3 },
    });
    expect(sessions.byId(1)).toMatchObject({ agent: 'a', inStep: true, stepStartedAt: 6, stepEndedAt: 3, lastEventAt: 6 });
    expect(sessions.apply(ended('s', 7))).toEqual(ended('s', 7));
    expect(sessions.get('s')).toMatchObject({ live: false, lastEventAt: 7 });
  });

  it('tracks live sessions per workload', () => {
    const { registry, sessions } = book();
    const names = (workload: string) => [...sessions.liveOf(registry.workloadId(workload))].map((s) => s.name);
    applyAll(sessions, started('s1'), started('t1', 0, 'v'), started('s2'));
    expect(names(W)).toEqual(['s1', 's2']);
    expect(names('v')).toEqual(['t1']);
    expect(sessions.liveCount).toBe(3);
    applyAll(sessions, ended('s1'));
    expect(names(W)).toEqual(['s2']);
    expect(sessions.liveCount).toBe(2);
    applyAll(sessions, started('s1', 1));
    expect(names(W)).toEqual(['s2', 's1']);
    expect([...sessions.all()].map((s) => [s.name, s.live])).toEqual([['s1', true], ['t1', true], ['s2', true]]);
    expect([...sessions.liveOf(registry.workloadId('none'))]).toEqual([]);
  });
});

describe('SessionBook: engine calls', () => {
  it('starts an unknown session with an implicit step and records the prompt', () => {
    const { sessions } = book();
    const prompt = hashes(1, 2);
    expect(sessions.admitted('s', ref('a'), prompt, 4)).toEqual([
      { type: 'session.start', time: 4, session: 's', workload: W },
      { type: 'step.start', time: 4, session: 's', agent: ref('a'), implicit: true, previous: { agent: null, inStep: false, stepEndedAt: null } },
    ]);
    expect(sessions.get('s')).toMatchObject({ live: true, agent: 'a', inStep: true, implicitStep: true });
    expect(sessions.lastPrompt('s', 'a')).toBe(prompt);
    expect(sessions.lastPrompt('s')).toBe(prompt);
    expect(sessions.lastPrompt('s', 'b')).toBeUndefined();
  });

  it("opens no step for the running agent's call, and an implicit one for another agent's", () => {
    const { sessions } = book();
    sessions.admitted('s', ref('a'), hashes(1), 0);
    expect(sessions.admitted('s', ref('a'), hashes(1, 2), 1)).toEqual([]);
    expect(sessions.lastPrompt('s', 'a')).toEqual(hashes(1, 2));
    expect(sessions.admitted('s', ref('b'), hashes(7), 2)).toEqual([
      { type: 'step.start', time: 2, session: 's', agent: ref('b'), implicit: true, previous: { agent: 'a', inStep: true, stepEndedAt: null } },
    ]);
    expect(sessions.lastPrompt('s')).toEqual(hashes(7));
    expect(sessions.lastPrompt('s', 'a')).toEqual(hashes(1, 2));
  });

  it('ends an implicit step at its release, but not an explicit one', () => {
    const { sessions } = book();
    sessions.admitted('s', ref('a'), hashes(1), 0);
    expect(sessions.released('s', ref('a'), hashes(1, 2), 3)).toEqual([
      { type: 'step.end', time: 3, session: 's', agent: ref('a'), implicit: true },
    ]);
    expect(sessions.get('s')).toMatchObject({ inStep: false, implicitStep: false, stepEndedAt: 3 });
    expect(sessions.lastPrompt('s', 'a')).toEqual(hashes(1, 2)); // the prompt and its reply
    expect(sessions.released('s', ref('a'), hashes(1, 2), 4)).toEqual([]); // no step runs

    applyAll(sessions, stepStart('s', ref('b'), 5));
    expect(sessions.admitted('s', ref('b'), hashes(9), 5)).toEqual([]);
    expect(sessions.released('s', ref('b'), hashes(9, 10), 6)).toEqual([]);
    expect(sessions.get('s')).toMatchObject({ agent: 'b', inStep: true, implicitStep: false });
  });

  it('records the prompt of a release in an unknown session and observes nothing', () => {
    const { sessions } = book();
    expect(sessions.released('u', undefined, hashes(5), 0)).toEqual([]);
    expect(sessions.get('u')).toBeUndefined();
    expect(sessions.lastPrompt('u')).toEqual(hashes(5));
  });

  it("keeps a session's last prompts across its end and restart", () => {
    const { sessions } = book();
    applyAll(sessions, started('s'));
    sessions.notePrompt('s', 'a', hashes(1, 2, 3));
    applyAll(sessions, ended('s', 1));
    expect(sessions.lastPrompt('s', 'a')).toEqual(hashes(1, 2, 3));
    expect(sessions.admitted('s', ref('b'), hashes(8), 2).map((e) => e.type)).toEqual(['session.start', 'step.start']);
    expect(sessions.lastPrompt('s', 'a')).toEqual(hashes(1, 2, 3));
    expect(sessions.lastPrompt('s')).toEqual(hashes(8));
    // The restarted record begins afresh.
    expect(sessions.get('s')).toMatchObject({ live: true, agent: 'b', stepEndedAt: null, lastEventAt: 2 });
  });

  it('refuses a call for a live session of another workload', () => {
    const { sessions } = book();
    applyAll(sessions, started('s'));
    expect(() => sessions.checkWorkload('s', ref('a', 'v'), 'admit')).toThrow(new RangeError('admit: session s belongs to workload w, not v'));
    expect(() => sessions.checkWorkload('s', ref('a'), 'admit')).not.toThrow();
    expect(() => sessions.checkWorkload('unknown', ref('a', 'v'), 'admit')).not.toThrow();
    applyAll(sessions, ended('s'));
    expect(() => sessions.checkWorkload('s', ref('a', 'v'), 'admit')).not.toThrow(); // an ended session may restart elsewhere
  });
});
