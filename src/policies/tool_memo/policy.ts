/**
 * Tool-result memoization: frameworks report `tool.start {tool, argsHash}`
 * and `tool.end {resultHash, result?}`; a repeated (tool, argsHash) of the
 * same workload within its TTL is answered from the memo: Runtime.observe
 * of the tool.start returns the recorded result (a PolicyAnswer of type
 * 'memo'), and the framework may skip the tool and report its tool.end at
 * once. Declarations (declarations.ts; in a replay, the trace header's
 * `tools`) say which tools are pure, how long an answer holds, which never
 * memoise, and which writes invalidate which reads; an undeclared tool is
 * not memoised unless `defaultTtlSeconds` says so.
 *
 * Composition: primitives observe and answer; it scores nothing and acts
 * on no block. It claims the exclusive action 'answer:tool.start' (two
 * memos answering one call could disagree). A denial by another policy
 * beats its answer.
 */
import { checkOptionsObject, describeValue } from '../../util/check.js';
import type { FrameworkEvent, Policy, PolicyAnswer, PolicyComposition, RuntimeEvent } from '../types.js';
import { checkDeclarations, ruleOf, type ToolDeclaration, type ToolRule } from './declarations.js';

export interface ToolMemoPolicyOptions {
  /**
   * Seconds an undeclared tool's result answers (default 0: never). A tool
   * nobody declared may read state that changes (a clock, a database), so
   * memoising it must be asked for.
   */
  defaultTtlSeconds?: number;
  /** Per-tool declarations, by tool name. */
  tools?: Record<string, ToolDeclaration>;
  /** Entries kept at most; the oldest go first (default 10,000). */
  maxEntries?: number;
}

export const TOOL_MEMO_COMPOSITION: PolicyComposition = { primitives: ['observe', 'answer'], exclusive: ['answer:tool.start'] };

interface Entry {
  tool: string;
  argsHash: string;
  resultHash: string;
  result?: unknown;
  recordedAt: number;
  /** Seconds the recorded call ran: what a hit saves. */
  duration: number;
}

interface InFlight {
  tool: string;
  argsHash: string | undefined;
  workload: string;
  start: number;
  /** The entry that answered this call, if one did. */
  answered: Entry | null;
  /** A write to what it reads ran meanwhile: its result is not recorded. */
  tainted: boolean;
}

/**
 * Creates the tool-memo policy.
 *
 * @throws TypeError / RangeError naming the option (or the tool and field of a declaration).
 */
export function createToolMemoPolicy(options?: ToolMemoPolicyOptions): Policy {
  const owner = 'tool-memo policy';
  const o = checkOptionsObject(options, owner, ['defaultTtlSeconds', 'tools', 'maxEntries']);
  const defaultTtl = o['defaultTtlSeconds'] ?? 0;
  if (typeof defaultTtl !== 'number' || !(defaultTtl >= 0)) {
    throw new RangeError(`${owner}: options.defaultTtlSeconds must be a number >= 0 (0: undeclared tools are never memoised), got ${describeValue(defaultTtl)}`);
  }
  const maxEntries = o['maxEntries'] ?? 10_000;
  if (typeof maxEntries !== 'number' || !Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`${owner}: options.maxEntries must be an integer >= 1, got ${describeValue(maxEntries)}`);
  }
  const declarations = checkDeclarations(o['tools'], owner);
  const rules = new Map<string, ToolRule>();
  const rule = (tool: string): ToolRule => {
    let r = rules.get(tool);
    if (!r) rules.set(tool, (r = ruleOf(declarations.get(tool), defaultTtl)));
    return r;
  };
  /** Readers of each resource, from the declarations. */
  const readers = new Map<string, Set<string>>();
  for (const [tool, d] of declarations) {
    for (const resource of d.reads ?? []) {
      let set = readers.get(resource);
      if (!set) readers.set(resource, (set = new Set()));
      set.add(tool);
    }
  }

  /** workload \0 tool \0 argsHash -> entry, oldest first. */
  const memo = new Map<string, Entry>();
  /** Tool calls running, by session: a framework may run several at once. */
  const inFlight = new Map<string, InFlight[]>();
  const counts = { hits: 0, misses: 0, recorded: 0, invalidated: 0, expired: 0, stale: 0, secondsSaved: 0 };
  const keyOf = (workload: string, tool: string, argsHash: string) => `${workload}\0${tool}\0${argsHash}`;

  const lookup = (workload: string, tool: string, argsHash: string, now: number): Entry | null => {
    const r = rule(tool);
    if (r.ttlSeconds === 0) return null;
    const key = keyOf(workload, tool, argsHash);
    const entry = memo.get(key);
    if (!entry) return null;
    if (now - entry.recordedAt >= r.ttlSeconds) {
      memo.delete(key);
      counts.expired++;
      return null;
    }
    return entry;
  };

  /** A write to `tool`'s resources: their readers' entries go, and their calls in flight are not recorded. */
  const invalidate = (workload: string, tool: string): void => {
    const affected = new Set<string>();
    for (const resource of rule(tool).writes) for (const reader of readers.get(resource) ?? []) affected.add(reader);
    if (affected.size === 0) return;
    for (const [key, entry] of memo) {
      if (affected.has(entry.tool) && key.startsWith(`${workload}\0`)) {
        memo.delete(key);
        counts.invalidated++;
      }
    }
    for (const calls of inFlight.values()) for (const call of calls) if (call.workload === workload && affected.has(call.tool)) call.tainted = true;
  };

  const answerFor = (e: Extract<FrameworkEvent, { type: 'tool.start' }>): Entry | null =>
    e.argsHash === undefined ? null : lookup(e.agent.workload, e.tool, e.argsHash, e.time);

  return {
    name: 'tool-memo',
    composition: TOOL_MEMO_COMPOSITION,
    answer(event: FrameworkEvent): PolicyAnswer | null {
      if (event.type !== 'tool.start') return null;
      const entry = answerFor(event);
      if (entry === null) return null;
      return {
        type: 'memo',
        policy: 'tool-memo',
        tool: entry.tool,
        argsHash: entry.argsHash,
        resultHash: entry.resultHash,
        ...(entry.result !== undefined ? { result: entry.result } : {}),
        recordedAt: entry.recordedAt,
        ageSeconds: event.time - entry.recordedAt,
      };
    },
    observe(event: RuntimeEvent): void {
      switch (event.type) {
        case 'tool.start': {
          const workload = event.agent.workload;
          invalidate(workload, event.tool);
          const answered = answerFor(event);
          if (event.argsHash !== undefined && rule(event.tool).ttlSeconds > 0) {
            if (answered) {
              counts.hits++;
              counts.secondsSaved += answered.duration;
            } else {
              counts.misses++;
            }
          }
          let calls = inFlight.get(event.session);
          if (!calls) inFlight.set(event.session, (calls = []));
          calls.push({ tool: event.tool, argsHash: event.argsHash, workload, start: event.time, answered, tainted: false });
          break;
        }
        case 'tool.end': {
          // The call it ends: the earliest running one of that tool (and those arguments, when given).
          const calls = inFlight.get(event.session) ?? [];
          const at = calls.findIndex((c) => c.tool === event.tool && (event.argsHash === undefined || c.argsHash === undefined || c.argsHash === event.argsHash));
          if (at === -1) break;
          const call = calls.splice(at, 1)[0]!;
          if (calls.length === 0) inFlight.delete(event.session);
          invalidate(call.workload, event.tool);
          const argsHash = call.argsHash ?? event.argsHash;
          if (argsHash === undefined || event.resultHash === undefined) break;
          // A tool.end after an answer reports the real result (the framework ran
          // the tool after all, or a replay knows it): an answer that differs was stale.
          if (call.answered !== null) {
            if (call.answered.resultHash === event.resultHash) break;
            counts.stale++;
          }
          if (call.tainted || rule(event.tool).ttlSeconds === 0) break;
          const key = keyOf(call.workload, event.tool, argsHash);
          memo.delete(key);
          memo.set(key, {
            tool: event.tool,
            argsHash,
            resultHash: event.resultHash,
            ...(event.result !== undefined ? { result: event.result } : {}),
            recordedAt: event.time,
            // A call the memo answered took no time: what a hit saves stays the original call's.
            duration: call.answered !== null ? call.answered.duration : Math.max(0, event.time - call.start),
          });
          counts.recorded++;
          if (memo.size > maxEntries) memo.delete(memo.keys().next().value!);
          break;
        }
        case 'session.end':
          inFlight.delete(event.session);
          break;
        default:
          break;
      }
    },
    info(): Record<string, unknown> {
      return { entries: memo.size, ...counts };
    },
  };
}
