/**
 * Safety enforcement: declarative rules on tool calls, agent hand-offs and
 * calls per session (rules.ts), checked before the runtime applies a
 * framework event, and tenant isolation in the cache (salt.ts).
 *
 * Composition: primitives observe (counts what was applied), answer (a
 * denial names its rule) and salt (isolated workloads' hashes); it scores
 * nothing and acts on no block, so it composes with any policy. It claims
 * the exclusive action 'salt'. Any denial wins over another policy's answer.
 */
import { createHash, randomBytes } from 'node:crypto';

import { checkOptionsObject, describeValue } from '../../util/check.js';
import type { FrameworkEvent, Policy, PolicyAnswer, PolicyComposition, RuntimeEvent } from '../types.js';
import { parseSafetyRules, readSafetyRules, type SafetyRule, type SafetyRules } from './rules.js';

export interface SafetyPolicyOptions {
  /** A JSON file of rules (rules.ts). */
  file?: string;
  /** The rules as an object, instead of a file. */
  rules?: unknown;
}

export const SAFETY_COMPOSITION: PolicyComposition = { primitives: ['observe', 'answer', 'salt'], exclusive: ['salt'] };

/** A workload's salt from a secret: the first 8 bytes of SHA-256(secret, workload). */
export function workloadSalt(secret: string, workload: string): bigint {
  return createHash('sha256').update(secret).update('\0').update(workload).digest().readBigUInt64LE(0);
}

/**
 * Creates the safety policy.
 *
 * @throws TypeError when `options` is malformed or names an unknown option,
 *   or the rules have an unknown field (naming it and the file); RangeError
 *   for a bad value or an unreadable file.
 */
export function createSafetyPolicy(options?: SafetyPolicyOptions): Policy {
  const o = checkOptionsObject(options, 'safety policy', ['file', 'rules']);
  if (o['file'] !== undefined && o['rules'] !== undefined) throw new TypeError('safety policy: give options.file or options.rules, not both');
  let config: SafetyRules = { rules: [], isolate: [], secret: null };
  if (o['file'] !== undefined) {
    if (typeof o['file'] !== 'string' || o['file'].length === 0) throw new TypeError(`safety policy: options.file must be a path, got ${describeValue(o['file'])}`);
    config = readSafetyRules(o['file']);
  } else if (o['rules'] !== undefined) {
    config = parseSafetyRules(o['rules'], 'safety policy: options.rules');
  }
  const secret = config.secret ?? randomBytes(16).toString('hex');
  const isolated = new Set(config.isolate);
  /** LLM calls (steps) per session and agent, and tool calls per session, agent and tool. */
  const steps = new Map<string, Map<string, number>>();
  const tools = new Map<string, Map<string, number>>();
  /** The agent of each session's latest step, as this policy saw it applied. */
  const current = new Map<string, string>();
  const denied: Record<string, number> = {};
  const logged: Record<string, number> = {};

  const count = (table: Map<string, Map<string, number>>, session: string, key: string): number => table.get(session)?.get(key) ?? 0;
  const bump = (table: Map<string, Map<string, number>>, session: string, key: string): void => {
    let m = table.get(session);
    if (!m) table.set(session, (m = new Map()));
    m.set(key, (m.get(key) ?? 0) + 1);
  };
  const applies = (rule: SafetyRule, workload: string, agent: string): boolean =>
    (rule.workload === null || rule.workload === workload) && (rule.agent === '*' || rule.agent === agent);

  /** Why a rule refuses the event, or null. */
  const breach = (rule: SafetyRule, e: FrameworkEvent): string | null => {
    if (e.type === 'tool.start' && applies(rule, e.agent.workload, e.agent.agent)) {
      if (rule.kind === 'tool' && (rule.tool === '*' || rule.tool === e.tool)) return `agent "${e.agent.agent}" may not call tool "${e.tool}"`;
      if (rule.kind === 'budget' && rule.tool !== null && (rule.tool === '*' || rule.tool === e.tool)) {
        const key = rule.tool === '*' ? `${e.agent.agent}\0*` : `${e.agent.agent}\0${e.tool}`;
        const used = count(tools, e.session, key);
        if (used >= rule.maxCalls) return `agent "${e.agent.agent}" has made ${used} calls of ${rule.tool === '*' ? 'tools' : `tool "${e.tool}"`} in session "${e.session}", the most allowed`;
      }
    }
    if (e.type === 'step.start') {
      const from = current.get(e.session);
      if (rule.kind === 'handoff' && from !== undefined && from !== e.agent.agent && rule.handoffTo === e.agent.agent && applies(rule, e.agent.workload, from)) {
        return `agent "${from}" may not hand off to agent "${e.agent.agent}"`;
      }
      if (rule.kind === 'budget' && rule.tool === null && applies(rule, e.agent.workload, e.agent.agent)) {
        const used = count(steps, e.session, e.agent.agent);
        if (used >= rule.maxCalls) return `agent "${e.agent.agent}" has made ${used} LLM calls in session "${e.session}", the most allowed`;
      }
    }
    return null;
  };

  return {
    name: 'safety',
    composition: SAFETY_COMPOSITION,
    answer(event: FrameworkEvent): PolicyAnswer | null {
      if (event.type !== 'tool.start' && event.type !== 'step.start') return null;
      for (const rule of config.rules) {
        const reason = breach(rule, event);
        if (reason === null) continue;
        if (rule.action === 'deny') {
          denied[rule.id] = (denied[rule.id] ?? 0) + 1;
          return { type: 'deny', policy: 'safety', rule: rule.id, reason };
        }
        logged[rule.id] = (logged[rule.id] ?? 0) + 1;
      }
      return null;
    },
    observe(event: RuntimeEvent): void {
      switch (event.type) {
        case 'step.start':
          // A step the runtime opened for an engine call counts as a call too.
          bump(steps, event.session, event.agent.agent);
          current.set(event.session, event.agent.agent);
          break;
        case 'tool.start':
          bump(tools, event.session, `${event.agent.agent}\0${event.tool}`);
          bump(tools, event.session, `${event.agent.agent}\0*`);
          break;
        case 'session.end':
          steps.delete(event.session);
          tools.delete(event.session);
          current.delete(event.session);
          break;
        default:
          break;
      }
    },
    saltOf(workload: string): bigint | null {
      return isolated.has(workload) ? workloadSalt(secret, workload) : null;
    },
    info(): Record<string, unknown> {
      return { rules: config.rules.length, denied: { ...denied }, logged: { ...logged }, isolated: [...isolated] };
    },
  };
}
