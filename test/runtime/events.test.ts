/**
 * Framework event validation: every well-formed event passes unchanged; a
 * malformed one throws a TypeError or RangeError naming the offending field.
 */
import { describe, expect, it } from 'vitest';

import { checkAgentRef, checkFrameworkEvent, checkTime } from '../../src/runtime/events.js';

const agent = { workload: 'chat', agent: 'planner' };
const ALLOWED = 'session.start, step.start, step.end, tool.start, tool.end, hint, session.end';

describe('checkFrameworkEvent', () => {
  it('accepts each event type and returns the event itself', () => {
    const events = [
      { type: 'session.start', time: 0, session: 's1', workload: 'chat' },
      { type: 'step.start', time: 1, session: 's1', agent },
      { type: 'tool.start', time: 1.5, session: 's1', agent, tool: 'search' },
      { type: 'tool.end', time: 2, session: 's1', agent, tool: 'search' },
      { type: 'step.end', time: 2.5, session: 's1', agent },
      { type: 'session.end', time: 3, session: 's1' },
    ];
    for (const event of events) expect(checkFrameworkEvent(event)).toBe(event);
  });

  it('refuses a non-object', () => {
    expect(() => checkFrameworkEvent(null)).toThrow(new TypeError('event must be an object, got null'));
    expect(() => checkFrameworkEvent('session.start')).toThrow(new TypeError('event must be an object, got the string "session.start"'));
    expect(() => checkFrameworkEvent([])).toThrow(new TypeError('event must be an object, got an array'));
  });

  it('refuses an unknown or missing type, naming the allowed list', () => {
    expect(() => checkFrameworkEvent({ type: 'step.begin', time: 0, session: 's1' })).toThrow(
      new RangeError(`event.type must be one of ${ALLOWED}, got "step.begin"`),
    );
    expect(() => checkFrameworkEvent({ time: 0, session: 's1' })).toThrow(new TypeError('event.type must be a string, got undefined'));
    expect(() => checkFrameworkEvent({ type: 3, time: 0, session: 's1' })).toThrow(new TypeError('event.type must be a string, got number 3'));
  });

  it('refuses a bad time, naming the event type', () => {
    expect(() => checkFrameworkEvent({ type: 'session.end', time: NaN, session: 's1' })).toThrow(
      new RangeError('session.end event: time must be a finite time >= 0, got NaN'),
    );
    expect(() => checkFrameworkEvent({ type: 'session.end', time: -1, session: 's1' })).toThrow(
      new RangeError('session.end event: time must be a finite time >= 0, got -1'),
    );
    expect(() => checkFrameworkEvent({ type: 'session.end', time: '3', session: 's1' })).toThrow(
      new TypeError('session.end event: time must be a number of seconds, got the string "3"'),
    );
    expect(() => checkFrameworkEvent({ type: 'session.end', session: 's1' })).toThrow(
      new TypeError('session.end event: time must be a number of seconds, got undefined'),
    );
  });

  it('refuses a missing or empty session', () => {
    expect(() => checkFrameworkEvent({ type: 'step.end', time: 0, agent })).toThrow(
      new TypeError('step.end event: session must be a string, got undefined'),
    );
    expect(() => checkFrameworkEvent({ type: 'step.end', time: 0, session: '', agent })).toThrow(
      new RangeError('step.end event: session must not be empty'),
    );
  });

  it('refuses a session.start without a workload name', () => {
    expect(() => checkFrameworkEvent({ type: 'session.start', time: 0, session: 's1' })).toThrow(
      new TypeError('session.start event: workload must be a string, got undefined'),
    );
    expect(() => checkFrameworkEvent({ type: 'session.start', time: 0, session: 's1', workload: 'w'.repeat(257) })).toThrow(
      new RangeError('session.start event: workload is longer than 256 characters'),
    );
  });

  it('refuses a step event without an agent, or with a bad agent field', () => {
    expect(() => checkFrameworkEvent({ type: 'step.start', time: 0, session: 's1' })).toThrow(
      new TypeError('step.start event: agent must be an object {workload, agent}, got undefined'),
    );
    expect(() =>
      checkFrameworkEvent({ type: 'step.start', time: 0, session: 's1', agent: { workload: '', agent: 'a' } }),
    ).toThrow(new RangeError('step.start event: agent.workload must not be empty'));
    expect(() =>
      checkFrameworkEvent({ type: 'step.end', time: 0, session: 's1', agent: { workload: 'chat', agent: 7 } }),
    ).toThrow(new TypeError('step.end event: agent.agent must be a string, got number 7'));
  });

  it('refuses a tool event without a tool name', () => {
    expect(() => checkFrameworkEvent({ type: 'tool.start', time: 0, session: 's1', agent })).toThrow(
      new TypeError('tool.start event: tool must be a string, got undefined'),
    );
    expect(() => checkFrameworkEvent({ type: 'tool.end', time: 0, session: 's1', agent: null, tool: 'x' })).toThrow(
      new TypeError('tool.end event: agent must be an object {workload, agent}, got null'),
    );
  });
});

describe('checkTime', () => {
  it('accepts finite times >= 0', () => {
    expect(checkTime(0, 't')).toBe(0);
    expect(checkTime(12.5, 't')).toBe(12.5);
  });

  it('refuses infinity and accepts negative zero', () => {
    expect(() => checkTime(Infinity, 't')).toThrow(new RangeError('t must be a finite time >= 0, got Infinity'));
    expect(checkTime(-0, 't')).toBe(-0);
  });
});

describe('checkAgentRef', () => {
  it('returns a valid reference and names the field it refuses', () => {
    expect(checkAgentRef(agent, 'ref')).toBe(agent);
    expect(() => checkAgentRef(undefined, 'ref')).toThrow(new TypeError('ref must be an object {workload, agent}, got undefined'));
    expect(() => checkAgentRef({ agent: 'a' }, 'ref')).toThrow(
      new TypeError('ref.workload must be a string, got undefined'),
    );
    expect(() => checkAgentRef({ workload: 'w', agent: '' }, 'ref')).toThrow(new RangeError('ref.agent must not be empty'));
  });
});
