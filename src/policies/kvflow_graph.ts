/**
 * Agent step graphs for the KVFlow-style policy: the configured forms, their
 * compiled form (steps to execution between every pair of agents), and their
 * derivation from a whole trace.
 */
import { checkNumber, describeValue, isRecord } from '../util/check.js';

/**
 * One workload's agent step graph, in either of two forms: the plain form
 * lists the agents that may run after each agent; the derived form (what
 * {@link deriveStepGraph} builds from a trace) gives each hand-off its
 * probability, which orders prefetch and lets `minProbability` drop rare
 * branches. `start` names the agents a session may begin with (a list, or
 * agent -> probability); without it a new session reaches nothing.
 */
export type StepGraph =
  | { edges: Record<string, readonly string[]>; start?: readonly string[] | Record<string, number> }
  | { transitions: Record<string, Record<string, number>>; start?: readonly string[] | Record<string, number> };

/** The derived form of a whole trace's step graphs, ready to pass as options. */
export interface DerivedStepGraphs {
  workloads: Record<string, { transitions: Record<string, Record<string, number>>; start: Record<string, number> }>;
}

/** The most agents one graph may hold: its steps table is agents squared. */
export const KVFLOW_MAX_AGENTS = 1024;

/** Node 0 of every compiled graph: before a session's first step. */
export const START_NODE = 0;

/** A step graph ready for lookups: node 0 is START, agents follow. */
export interface CompiledGraph {
  /** Agent name -> node (1..n). */
  nodes: Map<string, number>;
  /** Node -> agent name ('' for START). */
  names: string[];
  /** Node -> the nodes that may run next, likeliest first. */
  next: number[][];
  /** steps[from * size + to]: fewest hand-offs (at least one) from `from` until `to` runs; Infinity when never. */
  steps: Float64Array;
  size: number;
}

function checkAgentList(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw new TypeError(`${name} must be an array of agent names, got ${describeValue(value)}`);
  value.forEach((agent, i) => {
    if (typeof agent !== 'string') throw new TypeError(`${name}[${i}] must be an agent name, got ${describeValue(agent)}`);
  });
  return [...new Set(value as string[])];
}

/** Agent -> probability, dropping hand-offs below `minProbability`, likeliest first. */
function checkProbabilities(value: unknown, name: string, minProbability: number): string[] {
  if (!isRecord(value)) throw new TypeError(`${name} must be an object of agent -> probability, got ${describeValue(value)}`);
  const kept: [string, number][] = [];
  for (const [agent, p] of Object.entries(value)) {
    const probability = checkNumber(p, `${name}[${JSON.stringify(agent)}]`, 0, 1);
    if (probability > 0 && probability >= minProbability) kept.push([agent, probability]);
  }
  // Stable: equally likely agents keep the order they were given in.
  return kept.sort((a, b) => b[1] - a[1]).map(([agent]) => agent);
}

function checkStart(value: unknown, name: string, minProbability: number): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? checkAgentList(value, name) : checkProbabilities(value, name, minProbability);
}

/**
 * Checks one configured graph and compiles it. `name` prefixes error
 * messages; hand-offs below `minProbability` are left out.
 */
export function compileGraph(graph: unknown, name: string, minProbability: number): CompiledGraph {
  if (!isRecord(graph)) throw new TypeError(`${name} must be an object, got ${describeValue(graph)}`);
  for (const key of Object.keys(graph)) {
    if (key !== 'edges' && key !== 'transitions' && key !== 'start') {
      throw new TypeError(`${name}: unknown field "${key}" (known: edges, transitions, start)`);
    }
  }
  const hasEdges = graph['edges'] !== undefined;
  if (hasEdges === (graph['transitions'] !== undefined)) {
    throw new TypeError(`${name} must have exactly one of "edges" (agent -> next agents) or "transitions" (agent -> next agent -> probability)`);
  }
  const table = hasEdges ? graph['edges'] : graph['transitions'];
  const field = `${name}.${hasEdges ? 'edges' : 'transitions'}`;
  if (!isRecord(table)) throw new TypeError(`${field} must be an object keyed by agent, got ${describeValue(table)}`);
  const successors = new Map<string, string[]>();
  for (const [agent, next] of Object.entries(table)) {
    const entry = `${field}[${JSON.stringify(agent)}]`;
    successors.set(agent, hasEdges ? checkAgentList(next, entry) : checkProbabilities(next, entry, minProbability));
  }
  const start = checkStart(graph['start'], `${name}.start`, minProbability);

  const names = [''];
  const nodes = new Map<string, number>();
  const intern = (agent: string): number => {
    let node = nodes.get(agent);
    if (node === undefined) {
      node = names.length;
      nodes.set(agent, node);
      names.push(agent);
    }
    return node;
  };
  for (const [agent, next] of successors) {
    intern(agent);
    next.forEach(intern);
  }
  start.forEach(intern);
  if (names.length - 1 > KVFLOW_MAX_AGENTS) {
    throw new RangeError(`${name} has ${names.length - 1} agents, more than the ${KVFLOW_MAX_AGENTS} a step graph may hold`);
  }

  const size = names.length;
  const next: number[][] = names.map(() => []);
  next[START_NODE] = start.map((agent) => nodes.get(agent)!);
  for (const [agent, successorsOfAgent] of successors) {
    next[nodes.get(agent)!] = successorsOfAgent.map((s) => nodes.get(s)!);
  }
  const steps = new Float64Array(size * size).fill(Infinity);
  const queue = new Int32Array(size);
  for (let from = 0; from < size; from++) {
    // Breadth-first from `from`'s successors at one step: `from` itself is
    // 0 steps away only while it runs, which the session state knows.
    let head = 0;
    let tail = 0;
    for (const s of next[from]!) {
      if (steps[from * size + s] === Infinity) {
        steps[from * size + s] = 1;
        queue[tail++] = s;
      }
    }
    while (head < tail) {
      const node = queue[head++]!;
      const d = steps[from * size + node]! + 1;
      for (const s of next[node]!) {
        if (steps[from * size + s] === Infinity) {
          steps[from * size + s] = d;
          queue[tail++] = s;
        }
      }
    }
  }
  return { nodes, names, next, steps, size };
}

/** One LLM call of a trace, as far as the step graph is concerned. */
export interface StepGraphCall {
  session: string;
  agent: string;
  workload: string;
}

/**
 * Builds every workload's step graph from a whole trace in advance (the
 * replay grants KVFlow this knowledge of the future). Calls must be in each
 * session's call order; sessions may interleave. A hand-off is a call
 * following another of the same session; the probability of `a -> b` is the
 * share of `a`'s calls followed by `b`, counting a session's last call as a
 * hand-off to its end, so each row sums to at most 1. `start` gives the
 * share of sessions that begin with each agent.
 *
 * @throws TypeError when `calls` is not an array of {session, agent, workload} strings.
 * @throws RangeError when a session appears under two workloads.
 */
export function deriveStepGraph(calls: readonly StepGraphCall[]): DerivedStepGraphs {
  if (!Array.isArray(calls)) throw new TypeError(`deriveStepGraph: calls must be an array, got ${describeValue(calls)}`);
  interface Counts { transitions: Map<string, Map<string, number>>; outgoing: Map<string, number>; start: Map<string, number>; sessions: number }
  const counts = new Map<string, Counts>();
  const last = new Map<string, StepGraphCall>();
  const bump = <K>(map: Map<K, number>, key: K): void => {
    map.set(key, (map.get(key) ?? 0) + 1);
  };
  calls.forEach((call: unknown, i) => {
    if (!isRecord(call)) throw new TypeError(`deriveStepGraph: calls[${i}] must be an object, got ${describeValue(call)}`);
    for (const field of ['session', 'agent', 'workload'] as const) {
      if (typeof call[field] !== 'string') {
        throw new TypeError(`deriveStepGraph: calls[${i}].${field} must be a string, got ${describeValue(call[field])}`);
      }
    }
    const { session, agent, workload } = call as unknown as StepGraphCall;
    let graph = counts.get(workload);
    if (graph === undefined) {
      graph = { transitions: new Map(), outgoing: new Map(), start: new Map(), sessions: 0 };
      counts.set(workload, graph);
    }
    const previous = last.get(session);
    if (previous === undefined) {
      graph.sessions += 1;
      bump(graph.start, agent);
    } else {
      if (previous.workload !== workload) {
        throw new RangeError(
          `deriveStepGraph: calls[${i}] puts session ${JSON.stringify(session)} in workload ${JSON.stringify(workload)}, earlier calls in ${JSON.stringify(previous.workload)}`,
        );
      }
      let row = graph.transitions.get(previous.agent);
      if (row === undefined) {
        row = new Map();
        graph.transitions.set(previous.agent, row);
      }
      bump(row, agent);
    }
    bump(graph.outgoing, agent);
    last.set(session, { session, agent, workload });
  });

  // Null prototypes: agent names are data and may be "__proto__".
  const workloads: DerivedStepGraphs['workloads'] = Object.create(null);
  for (const [workload, graph] of counts) {
    const transitions: Record<string, Record<string, number>> = Object.create(null);
    for (const [agent, row] of graph.transitions) {
      const total = graph.outgoing.get(agent)!;
      const probabilities: Record<string, number> = Object.create(null);
      for (const [next, n] of row) probabilities[next] = n / total;
      transitions[agent] = probabilities;
    }
    const start: Record<string, number> = Object.create(null);
    for (const [agent, n] of graph.start) start[agent] = n / graph.sessions;
    workloads[workload] = { transitions, start };
  }
  return { workloads };
}
