/**
 * Summary statistics of a trace, computed the way ../shared/traces/README.md
 * defines them, so a generated workload can be compared with the real trace
 * it was fitted to.
 *
 * Shared-prefix fraction: over all calls, the tokens of the longest leading
 * run of segments that exactly matches the leading segments of some earlier
 * call, divided by all prompt tokens. "Global" compares with every earlier
 * call in file order; "in-session" only with earlier calls of the same
 * session.
 */
import type { TraceCall } from '../trace/format.js';

/** Pseudo-agent before a session's first call in {@link TraceStats.transitions}. */
export const START_AGENT = '<start>';
/** Pseudo-agent after a session's last call in {@link TraceStats.transitions}. */
export const END_AGENT = '<end>';

/** Summary of a list of calls. */
export interface TraceStats {
  sessions: number;
  calls: number;
  /** Distinct agents, in order of first appearance. */
  agents: string[];
  callsPerSession: number;
  meanPromptTokens: number;
  meanOutputTokens: number;
  sharedPrefixGlobal: number;
  sharedPrefixInSession: number;
  /** Per-agent call count and mean prompt and output tokens. */
  perAgent: Map<string, { calls: number; prompt: number; output: number }>;
  /** Counts of `"A -> B"` hand-offs within sessions, with `<start>` and `<end>`. */
  transitions: Map<string, number>;
}

type Trie = Map<string, Trie>;

/** Walks `call`'s segments down `trie`, adding the path; returns the tokens that matched. */
function matchAndInsert(trie: Trie, call: TraceCall): number {
  let node = trie;
  let shared = 0;
  let matching = true;
  for (const segment of call.segments) {
    let child = node.get(segment.id);
    if (child !== undefined && matching) {
      shared += segment.tokens;
    } else {
      matching = false;
      if (child === undefined) {
        child = new Map();
        node.set(segment.id, child);
      }
    }
    node = child;
  }
  return shared;
}

/** Statistics of `calls`, taken in the order given (the file order). */
export function traceStats(calls: readonly TraceCall[]): TraceStats {
  const globalTrie: Trie = new Map();
  const sessionTries = new Map<string, Trie>();
  const lastAgent = new Map<string, string>();
  const perAgentSums = new Map<string, { calls: number; prompt: number; output: number }>();
  const transitions = new Map<string, number>();
  const bump = (key: string): void => void transitions.set(key, (transitions.get(key) ?? 0) + 1);

  let promptTotal = 0;
  let outputTotal = 0;
  let sharedGlobal = 0;
  let sharedInSession = 0;
  for (const call of calls) {
    let prompt = 0;
    for (const segment of call.segments) prompt += segment.tokens;
    promptTotal += prompt;
    outputTotal += call.outputTokens;
    sharedGlobal += matchAndInsert(globalTrie, call);
    let sessionTrie = sessionTries.get(call.session);
    if (sessionTrie === undefined) {
      sessionTrie = new Map();
      sessionTries.set(call.session, sessionTrie);
    }
    sharedInSession += matchAndInsert(sessionTrie, call);

    const sums = perAgentSums.get(call.agent) ?? { calls: 0, prompt: 0, output: 0 };
    sums.calls++;
    sums.prompt += prompt;
    sums.output += call.outputTokens;
    perAgentSums.set(call.agent, sums);

    bump(`${lastAgent.get(call.session) ?? START_AGENT} -> ${call.agent}`);
    lastAgent.set(call.session, call.agent);
  }
  for (const agent of lastAgent.values()) bump(`${agent} -> ${END_AGENT}`);

  const perAgent = new Map<string, { calls: number; prompt: number; output: number }>();
  for (const [agent, sums] of perAgentSums) {
    perAgent.set(agent, { calls: sums.calls, prompt: sums.prompt / sums.calls, output: sums.output / sums.calls });
  }
  const n = calls.length;
  return {
    sessions: sessionTries.size,
    calls: n,
    agents: [...perAgentSums.keys()],
    callsPerSession: sessionTries.size === 0 ? 0 : n / sessionTries.size,
    meanPromptTokens: n === 0 ? 0 : promptTotal / n,
    meanOutputTokens: n === 0 ? 0 : outputTotal / n,
    sharedPrefixGlobal: promptTotal === 0 ? 0 : sharedGlobal / promptTotal,
    sharedPrefixInSession: promptTotal === 0 ? 0 : sharedInSession / promptTotal,
    perAgent,
    transitions,
  };
}
