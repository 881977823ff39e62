/**
 * The safety policy's declarative rules, as a JSON file or object states
 * them:
 *
 * ```json
 * {
 *   "rules": [
 *     {"id": "reviewer-no-shell", "agent": "reviewer", "tool": "shell", "action": "deny"},
 *     {"id": "planner-skips-tests", "agent": "planner", "handoffTo": "coder", "action": "log"},
 *     {"id": "coder-budget", "agent": "coder", "maxCalls": 20, "action": "deny"},
 *     {"id": "search-budget", "agent": "*", "tool": "search", "maxCalls": 5, "action": "deny"}
 *   ],
 *   "isolate": ["tenant-a"],
 *   "secret": "shared by the replicas of one deployment"
 * }
 * ```
 *
 * A rule names an agent ("*": any) and optionally a workload, and exactly
 * one of: a tool the agent may not call; an agent it may not hand off to
 * (the session's next step is that agent's); a most of calls per session
 * (LLM calls, or with `tool` calls of that tool, "*" for any tool).
 * `deny` refuses the event; `log` lets it through and counts it.
 * Unknown fields are refused, naming the field and where it was read.
 */
import { readFileSync } from 'node:fs';

import { describeValue, isRecord } from '../../util/check.js';

export type RuleAction = 'deny' | 'log';

export type SafetyRule =
  | { kind: 'tool'; id: string; workload: string | null; agent: string; tool: string; action: RuleAction }
  | { kind: 'handoff'; id: string; workload: string | null; agent: string; handoffTo: string; action: RuleAction }
  | { kind: 'budget'; id: string; workload: string | null; agent: string; tool: string | null; maxCalls: number; action: RuleAction };

export interface SafetyRules {
  rules: SafetyRule[];
  /** Workloads whose blocks are never shared with another workload's. */
  isolate: string[];
  /** Derives each isolated workload's salt; null: a random one per runtime. */
  secret: string | null;
}

const TOP_FIELDS = ['rules', 'isolate', 'secret'];
const RULE_FIELDS = ['id', 'workload', 'agent', 'tool', 'handoffTo', 'maxCalls', 'action'];

/**
 * Reads rules from a JSON file.
 *
 * @throws TypeError / RangeError whose message starts with the file.
 */
export function readSafetyRules(path: string): SafetyRules {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RangeError(`${path}: cannot read the safety rules: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`${path}: the safety rules are not JSON: ${(error as Error).message}`);
  }
  return parseSafetyRules(value, path);
}

/**
 * Checks rules given as an object; `where` names their source in messages
 * (a file, or "safety policy: options.rules").
 *
 * @throws TypeError for a wrong type or an unknown field, RangeError for a bad value; both name the field and `where`.
 */
export function parseSafetyRules(value: unknown, where: string): SafetyRules {
  if (!isRecord(value)) throw new TypeError(`${where}: the safety rules must be an object, got ${describeValue(value)}`);
  for (const key of Object.keys(value)) {
    if (!TOP_FIELDS.includes(key)) throw new TypeError(`${where}: unknown field "${key}" (known: ${TOP_FIELDS.join(', ')})`);
  }
  const rawRules = value['rules'] ?? [];
  if (!Array.isArray(rawRules)) throw new TypeError(`${where}: rules must be an array, got ${describeValue(rawRules)}`);
  const ids = new Set<string>();
  const rules = rawRules.map((raw: unknown, i) => {
    const rule = parseRule(raw, `${where}: rules[${i}]`);
    if (ids.has(rule.id)) throw new RangeError(`${where}: rules[${i}].id ${JSON.stringify(rule.id)} is used twice`);
    ids.add(rule.id);
    return rule;
  });
  const isolate = value['isolate'] ?? [];
  if (!Array.isArray(isolate) || !isolate.every((w) => typeof w === 'string' && w.length > 0)) {
    throw new TypeError(`${where}: isolate must be an array of workload names, got ${describeValue(isolate)}`);
  }
  const secret = value['secret'] ?? null;
  if (secret !== null && (typeof secret !== 'string' || secret.length === 0)) {
    throw new TypeError(`${where}: secret must be a non-empty string, got ${describeValue(secret)}`);
  }
  return { rules, isolate: [...(isolate as string[])], secret };
}

function parseRule(raw: unknown, where: string): SafetyRule {
  if (!isRecord(raw)) throw new TypeError(`${where} must be an object, got ${describeValue(raw)}`);
  for (const key of Object.keys(raw)) {
    if (!RULE_FIELDS.includes(key)) throw new TypeError(`${where}: unknown field "${key}" (known: ${RULE_FIELDS.join(', ')})`);
  }
  const text = (field: string, required: boolean): string | null => {
    const v = raw[field];
    if (v === undefined && !required) return null;
    if (typeof v !== 'string' || v.length === 0) throw new TypeError(`${where}.${field} must be a non-empty string, got ${describeValue(v)}`);
    return v;
  };
  const id = text('id', true)!;
  const workload = text('workload', false);
  const agent = text('agent', true)!;
  const action = raw['action'];
  if (action !== 'deny' && action !== 'log') throw new RangeError(`${where}.action must be "deny" or "log", got ${describeValue(action)}`);
  const tool = text('tool', false);
  const handoffTo = text('handoffTo', false);
  const maxCalls = raw['maxCalls'];
  if (maxCalls !== undefined) {
    if (typeof maxCalls !== 'number' || !Number.isSafeInteger(maxCalls) || maxCalls < 0) {
      throw new RangeError(`${where}.maxCalls must be an integer >= 0, got ${describeValue(maxCalls)}`);
    }
    if (handoffTo !== null) throw new RangeError(`${where}: a rule has one of tool, handoffTo or maxCalls (maxCalls may name a tool), not handoffTo and maxCalls`);
    return { kind: 'budget', id, workload, agent, tool, maxCalls, action };
  }
  if (tool !== null && handoffTo !== null) throw new RangeError(`${where}: a rule has one of tool, handoffTo or maxCalls, not tool and handoffTo`);
  if (tool !== null) return { kind: 'tool', id, workload, agent, tool, action };
  if (handoffTo !== null) return { kind: 'handoff', id, workload, agent, handoffTo, action };
  throw new RangeError(`${where}: a rule needs one of tool, handoffTo or maxCalls`);
}
