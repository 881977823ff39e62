/**
 * Validation of framework events. Malformed events (wrong types, NaN or
 * negative times, empty or huge names) throw a TypeError or RangeError
 * naming the field. Events that are well-formed but do not fit the state
 * (ending an unknown session, a step.end with no step running) are counted
 * and ignored by the runtime, never applied half-way. An event whose time
 * is earlier than its session's latest event or engine call is applied as
 * given and counted, naming the session, the event and both times
 * (RuntimeStats.timeWentBack; the session model keeps the times:
 * sessions.ts).
 */
import { describeValue, isRecord } from '../util/check.js';
import { checkName } from './names.js';
import type { AgentRef, FrameworkEvent } from '../policies/types.js';
import { checkHintFields } from '../policies/hints/event.js';
import { checkToolFields } from '../policies/tool_memo/event.js';

const FRAMEWORK_TYPES = new Set(['session.start', 'step.start', 'step.end', 'tool.start', 'tool.end', 'hint', 'session.end']);

export function checkTime(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number of seconds, got ${describeValue(value)}`);
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${what} must be a finite time >= 0, got ${value}`);
  return value;
}

export function checkAgentRef(value: unknown, what: string): AgentRef {
  if (!isRecord(value)) throw new TypeError(`${what} must be an object {workload, agent}, got ${describeValue(value)}`);
  const ref = value as unknown as AgentRef;
  checkName(ref.workload, `${what}.workload`);
  checkName(ref.agent, `${what}.agent`);
  return ref;
}

export function checkFrameworkEvent(value: unknown): FrameworkEvent {
  if (!isRecord(value)) throw new TypeError(`event must be an object, got ${describeValue(value)}`);
  if (typeof value['type'] !== 'string') throw new TypeError(`event.type must be a string, got ${describeValue(value['type'])}`);
  const e = value as unknown as FrameworkEvent;
  if (!FRAMEWORK_TYPES.has(e.type)) {
    throw new RangeError(`event.type must be one of ${[...FRAMEWORK_TYPES].join(', ')}, got ${JSON.stringify(e.type)}`);
  }
  const where = `${e.type} event`;
  checkTime(e.time, `${where}: time`);
  checkName(e.session, `${where}: session`);
  switch (e.type) {
    case 'session.start':
      checkName(e.workload, `${where}: workload`);
      break;
    case 'step.start':
    case 'step.end':
      checkAgentRef(e.agent, `${where}: agent`);
      break;
    case 'tool.start':
    case 'tool.end':
      checkAgentRef(e.agent, `${where}: agent`);
      checkName(e.tool, `${where}: tool`);
      checkToolFields(e, where);
      break;
    case 'hint':
      checkAgentRef(e.agent, `${where}: agent`);
      checkHintFields(e, where);
      break;
    case 'session.end':
      break;
  }
  return e;
}
