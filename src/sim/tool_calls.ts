/**
 * The tool calls a trace records after an LLM call (its optional tool
 * records), as a replay runs them: all start when the call's reply is
 * done and end when the session's next call arrives. A tool the runtime
 * answers from a memo takes no time, so the gap before the next call
 * shrinks by that tool's share of it (its `seconds` over the gap's tools',
 * or an even share); a denied one never runs. An answer whose result hash
 * differs from the one the trace recorded is stale.
 */
import type { AgentRef } from '../policies/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TraceToolCall } from '../trace/format.js';
import type { SimCall } from './workload.js';

/** What the replay's tool calls came to: calls, answers from a memo, stale answers, denials and tool seconds saved. */
export interface ToolCallTally {
  calls: number;
  answered: number;
  stale: number;
  denied: number;
  secondsSaved: number;
}

export class ToolCalls {
  readonly tally: ToolCallTally = { calls: 0, answered: 0, stale: 0, denied: 0, secondsSaved: 0 };
  readonly #runtime: Runtime;
  /** The tools each session is running (answered ones included: the framework reports their end at once). */
  readonly #running = new Map<string, TraceToolCall[]>();

  constructor(runtime: Runtime) {
    this.#runtime = runtime;
  }

  /** Starts the tools recorded after `call`; returns the seconds until the session's next call. */
  start(call: SimCall & { tools: readonly TraceToolCall[] }, session: string, agent: AgentRef, time: number): number {
    const tools = call.tools;
    const known = tools.reduce((sum, t) => sum + (t.seconds ?? 0), 0);
    const started: TraceToolCall[] = [];
    let saved = 0;
    for (const t of tools) {
      this.tally.calls++;
      const answer = this.#runtime.observe({ type: 'tool.start', time, session, agent, tool: t.tool, argsHash: t.argsHash });
      const share = known > 0 ? (t.seconds ?? 0) / known : 1 / tools.length;
      if (answer?.type === 'deny') {
        this.tally.denied++;
        continue;
      }
      started.push(t);
      if (answer?.type === 'memo') {
        this.tally.answered++;
        if (answer.resultHash !== t.resultHash) this.tally.stale++;
        saved += share * call.gapAfter;
      }
    }
    this.#running.set(session, started);
    this.tally.secondsSaved += saved;
    return Math.max(0, call.gapAfter - saved);
  }

  /** Ends the session's running tools, each with the result the trace recorded. */
  end(session: string, agent: AgentRef, time: number): void {
    for (const t of this.#running.get(session) ?? []) {
      this.#runtime.observe({ type: 'tool.end', time, session, agent, tool: t.tool, argsHash: t.argsHash, resultHash: t.resultHash });
    }
    this.#running.delete(session);
  }
}
