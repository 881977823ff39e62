/**
 * Speculative prefill: while a session's tool runs, compute what is
 * already known of the prompt its predicted next agent will send, with
 * compute the engine's iterations leave idle, so the call that follows the
 * tool finds it cached.
 *
 * What is known of a prompt before it exists: the prefix every prompt of
 * that agent has shared so far (its system prompt and fixed preamble,
 * learned from admitted prompts across sessions), or, for an agent whose
 * prompts extend its own previous one in a session, that previous prompt.
 * The next agent comes from the runtime's predict() (the first policy that
 * answers, CacheSage when present), else from this policy's own counts of
 * agent-to-agent transitions.
 */
import { cachedChain } from './chain.js';
import type { IdleCompute, Policy, PolicyContext, RuntimeEvent, SpeculativePrefill } from './types.js';
import { checkNumber, checkOptionsObject } from '../util/check.js';
import { sharedPrefixLength } from '../util/words.js';

/** Options of {@link createSpeculativePrefillPolicy}. */
export interface SpeculativePrefillOptions {
  /** Share of an iteration's spare token budget speculation may take, in (0, 1]. Default 0.5. */
  idleFraction?: number;
  /** Least probability of the predicted next agent worth computing for, in [0, 1]. Default 0.3. */
  minProbability?: number;
}

const DEFAULTS = { idleFraction: 0.5, minProbability: 0.3 };
const END = '<end>';

interface ToolGap {
  workload: string;
  agent: string;
  /** The predicted prefix was once wholly on device: this gap is done. */
  done: boolean;
}

/** What the policy knows of one agent's prompts (per workload). */
interface AgentPrompts {
  /** Leading blocks every admitted prompt of the agent shared. */
  common: BigUint64Array;
  /** Prompts that extended (or not) the agent's previous one in their session. */
  extended: number;
  restarted: number;
}

/**
 * Creates the speculative-prefill policy. It observes admits (to learn each
 * agent's common prefix), steps (transitions) and tool calls, and answers
 * the engine's `speculate` while a session's tool runs.
 *
 * @throws TypeError when `options` is not an object, names an unknown
 *   option, or an option is not a number.
 * @throws RangeError when an option is out of range.
 */
export function createSpeculativePrefillPolicy(options?: SpeculativePrefillOptions): Policy {
  const o = checkOptionsObject(options, 'speculative-prefill policy', Object.keys(DEFAULTS));
  const idleFraction = checkNumber(o['idleFraction'] ?? DEFAULTS.idleFraction, 'speculative-prefill policy: options.idleFraction', 0, 1);
  if (idleFraction === 0) throw new RangeError('speculative-prefill policy: options.idleFraction must be > 0, got 0');
  const minProbability = checkNumber(o['minProbability'] ?? DEFAULTS.minProbability, 'speculative-prefill policy: options.minProbability', 0, 1);
  let context: PolicyContext | undefined;
  const gaps = new Map<string, ToolGap>();
  const prompts = new Map<string, AgentPrompts>();
  /** workload -> previous agent -> next agent -> count. */
  const transitions = new Map<string, Map<string, Map<string, number>>>();
  const key = (workload: string, agent: string) => `${workload}\u0000${agent}`;

  const learnPrompt = (workload: string, agent: string, hashes: BigUint64Array, extendsPrevious: boolean | undefined): void => {
    const k = key(workload, agent);
    const known = prompts.get(k);
    if (known === undefined) {
      prompts.set(k, { common: hashes.slice(), extended: extendsPrevious === true ? 1 : 0, restarted: extendsPrevious === false ? 1 : 0 });
      return;
    }
    const shared = sharedPrefixLength(known.common, hashes);
    if (shared < known.common.length) known.common = known.common.subarray(0, shared);
    if (extendsPrevious === true) known.extended++;
    if (extendsPrevious === false) known.restarted++;
  };

  const countTransition = (workload: string, from: string, to: string): void => {
    let byFrom = transitions.get(workload);
    if (!byFrom) transitions.set(workload, (byFrom = new Map()));
    let counts = byFrom.get(from);
    if (!counts) byFrom.set(from, (counts = new Map()));
    counts.set(to, (counts.get(to) ?? 0) + 1);
  };

  /** The likeliest next agent of a session and its probability. */
  const nextAgent = (session: string, gap: ToolGap, idle: IdleCompute): [string, number] | null => {
    const prediction = idle.predict({ session, horizon: 1 });
    let next: Record<string, number> | undefined = prediction?.next;
    if (next === undefined) {
      const counts = transitions.get(gap.workload)?.get(gap.agent);
      if (counts === undefined) return null;
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      next = Object.fromEntries([...counts].map(([agent, n]) => [agent, n / total]));
    }
    let best: [string, number] | null = null;
    for (const [agent, p] of Object.entries(next)) if (agent !== END && (best === null || p > best[1])) best = [agent, p];
    return best !== null && best[1] >= minProbability ? best : null;
  };

  /** The known prefix of the agent's next prompt in the session. */
  const knownPrefix = (session: string, workload: string, agent: string): BigUint64Array | undefined => {
    const known = prompts.get(key(workload, agent));
    const own = known !== undefined && known.extended > known.restarted ? context!.lastPrompt(session, agent) : undefined;
    const common = known?.common;
    if (own !== undefined && (common === undefined || own.length > common.length)) return own;
    return common !== undefined && common.length > 0 ? common : undefined;
  };

  return {
    name: 'speculative-prefill',
    attach(attached: PolicyContext): void {
      context = attached;
    },
    observe(event: RuntimeEvent): void {
      switch (event.type) {
        case 'admit':
          if (event.agent !== undefined && event.session !== undefined) learnPrompt(event.agent.workload, event.agent.agent, event.hashes, event.extendsPrevious);
          break;
        case 'step.start':
          gaps.delete(event.session);
          if (event.previous.agent !== null) countTransition(event.agent.workload, event.previous.agent, event.agent.agent);
          break;
        case 'tool.start':
          gaps.set(event.session, { workload: event.agent.workload, agent: event.agent.agent, done: false });
          break;
        case 'tool.end':
        case 'session.end':
          gaps.delete(event.session);
          break;
        default:
          break;
      }
    },
    speculate(_now: number, idle: IdleCompute): SpeculativePrefill[] {
      if (context === undefined) throw new RangeError('speculative-prefill policy: speculate() called before attach()');
      const manager = context.manager;
      const blockSize = manager.blockSize;
      let budget = Math.floor(idle.spareTokens * idleFraction);
      const wanted: SpeculativePrefill[] = [];
      for (const [session, gap] of gaps) {
        if (budget < blockSize) break;
        if (gap.done) continue;
        const next = nextAgent(session, gap, idle);
        if (next === null) continue;
        const prefix = knownPrefix(session, gap.workload, next[0]);
        if (prefix === undefined) continue;
        const { device, host } = cachedChain(manager, prefix);
        if (device.length >= prefix.length) {
          gap.done = true;
          continue;
        }
        const blocks = Math.min(prefix.length, device.length + host.length + Math.floor(budget / blockSize));
        if (blocks <= device.length + host.length && host.length === 0) continue;
        budget -= (blocks - device.length - host.length) * blockSize;
        wanted.push({ session, agent: { workload: gap.workload, agent: next[0] }, hashes: prefix.subarray(0, blocks) });
      }
      return wanted;
    },
  };
}
