/**
 * KVFlow-style eviction and prefetch (arXiv 2507.07400): each workload's
 * agent step graph is given in advance, and a block is worth as much as its
 * agents are close to running again ("steps to execution"). Strong on fixed
 * pipelines, blind to any branch the graph was not told about.
 */
import type { Action, Policy, PolicyContext, RuntimeEvent, ScoreClass, SessionView } from './types.js';
import { cachedChain } from './chain.js';
import { compileGraph, START_NODE, type CompiledGraph, type StepGraph } from './kvflow_graph.js';
import { checkNumber, checkOptionsObject, describeValue, isRecord } from '../util/check.js';

export {
  deriveStepGraph,
  KVFLOW_MAX_AGENTS,
  type DerivedStepGraphs,
  type StepGraph,
  type StepGraphCall,
} from './kvflow_graph.js';

/** Options of {@link createKvflowPolicy}. */
export interface KvflowPolicyOptions {
  /** Workload name -> its step graph. Required. */
  workloads: Record<string, StepGraph>;
  /** Hand-offs of a derived graph less likely than this are left out; in [0, 1]. Default 0. */
  minProbability?: number;
  /**
   * Steps to execution assumed for blocks the graph says nothing about
   * (untagged, another workload, agents not in the graph); in [0, 1e6], where
   * 1e6 ranks them with blocks the graph says are never reused.
   * Default 1.5: after the next agents' blocks, before anything two steps away.
   */
  neutralSteps?: number;
}

/** Score of a block whose agents the graph says will not run again in its session. */
export const KVFLOW_UNREACHABLE_SCORE = -1e6;
/** Score of a block private to a session that has ended: the first to go. */
export const KVFLOW_ENDED_SCORE = -2e6;

const DEFAULT_NEUTRAL_STEPS = 1.5;

/**
 * Creates the KVFlow-style policy.
 *
 * Steps to execution: a session is at a node of its workload's graph (START
 * before its first step, then the agent of its latest step). While that
 * agent's step runs it is 0 steps from execution; every agent, the current
 * one after its step ends included, is the fewest hand-offs along the graph
 * away. Agents the graph cannot reach are never executed again.
 *
 * Score classes (lower is evicted first), with `d` the steps to execution of
 * the nearest of the class's agents:
 * - a session-private class: `-d` for its session, or
 *   {@link KVFLOW_ENDED_SCORE} once the session ended;
 * - a shared class of one workload: `-d` minimised over the workload's live
 *   sessions and a session about to start (from the graph's `start`);
 * - {@link KVFLOW_UNREACHABLE_SCORE} when no such session will run its
 *   agents again; `-neutralSteps` when the graph cannot say (untagged or
 *   multi-workload blocks, unknown workloads or agents).
 * Ties (blocks equally far) fall back to recency in the block manager.
 *
 * Prefetch: after a session's step ends, the next `act` loads to the device
 * the host-tier blocks of the last prompt each possible next agent sent in
 * that session, likeliest agent first, parents first, in one action. A step
 * that starts before then cancels it (the request's admission loads what it
 * needs).
 *
 * @throws TypeError on a malformed option or graph.
 * @throws RangeError on an option or probability out of range.
 */
export function createKvflowPolicy(options: KvflowPolicyOptions): Policy {
  const o = checkOptionsObject(options, 'kvflow policy', ['workloads', 'minProbability', 'neutralSteps']);
  const minProbability = checkNumber(o['minProbability'] ?? 0, 'kvflow policy: options.minProbability', 0, 1);
  const neutralSteps = checkNumber(o['neutralSteps'] ?? DEFAULT_NEUTRAL_STEPS, 'kvflow policy: options.neutralSteps', 0, -KVFLOW_UNREACHABLE_SCORE);
  const workloads = o['workloads'];
  if (!isRecord(workloads)) {
    throw new TypeError(`kvflow policy: options.workloads must be an object of workload -> step graph, got ${describeValue(workloads)}`);
  }
  const graphs = new Map<string, CompiledGraph>();
  for (const [workload, graph] of Object.entries(workloads)) {
    graphs.set(workload, compileGraph(graph, `kvflow policy: options.workloads[${JSON.stringify(workload)}]`, minProbability));
  }

  let context: PolicyContext | undefined;
  /** Session name -> the node whose step just ended, awaiting prefetch. */
  const pendingPrefetch = new Map<string, number>();
  /** `${workloadId}:${agentMask}` -> the graph nodes of the mask's agents. */
  const maskNodes = new Map<string, { nodes: number[]; offGraph: boolean }>();

  const ctx = (op: string): PolicyContext => {
    if (context === undefined) throw new RangeError(`kvflow policy: ${op}() called before attach()`);
    return context;
  };

  const nodesOfClass = (cls: ScoreClass, graph: CompiledGraph): { nodes: number[]; offGraph: boolean } => {
    const key = `${cls.workload}:${cls.agentMask}`;
    let entry = maskNodes.get(key);
    if (entry === undefined) {
      entry = { nodes: [], offGraph: false };
      for (const index of cls.agents) {
        const name = context!.registry.agentName(cls.workload, index);
        const node = name === undefined ? undefined : graph.nodes.get(name);
        if (node === undefined) entry.offGraph = true;
        else entry.nodes.push(node);
      }
      maskNodes.set(key, entry);
    }
    return entry;
  };

  /** A session's position: its running or last agent's node, START before any step, -1 off the graph (or with none). */
  const nodeOf = (graph: CompiledGraph | undefined, agent: string | null): number =>
    agent === null ? START_NODE : (graph?.nodes.get(agent) ?? -1);

  const stepsFrom = (graph: CompiledGraph, at: number, running: boolean, nodes: readonly number[]): number => {
    let best = Infinity;
    for (const node of nodes) {
      const d = running && node === at ? 0 : graph.steps[at * graph.size + node]!;
      if (d < best) best = d;
    }
    return best;
  };

  // `0 - steps`, not `-steps`: a running agent's blocks score +0, not -0.
  const toScore = (steps: number): number => (steps === Infinity ? KVFLOW_UNREACHABLE_SCORE : 0 - steps);
  const neutral = toScore(neutralSteps);

  const scoreOf = (classId: number): number => {
    const c = ctx('scoreClasses');
    const cls = c.scoreClass(classId);
    if (cls === undefined || cls.workload < 0) return neutral;
    const own = cls.session >= 0 ? c.sessionById(cls.session) : undefined;
    if (own !== undefined && !own.live) return KVFLOW_ENDED_SCORE;
    const workload = c.registry.workloadName(cls.workload);
    const graph = workload === undefined ? undefined : graphs.get(workload);
    if (graph === undefined) return neutral;
    const { nodes, offGraph } = nodesOfClass(cls, graph);
    if (nodes.length === 0) return neutral;
    let best = offGraph ? neutralSteps : Infinity;
    if (cls.session >= 0) {
      const node = own === undefined || graphs.get(own.workload) !== graph ? -1 : nodeOf(graph, own.agent);
      if (node < 0) return neutral;
      return toScore(Math.min(best, stepsFrom(graph, node, own!.inStep, nodes)));
    }
    best = Math.min(best, stepsFrom(graph, START_NODE, false, nodes));
    for (const live of c.liveSessions(cls.workload)) {
      const node = nodeOf(graph, live.agent);
      if (node >= 0) best = Math.min(best, stepsFrom(graph, node, live.inStep, nodes));
    }
    return toScore(best);
  };

  const invalidateAround = (session: SessionView): void => {
    const c = ctx('observe');
    c.invalidate(c.classesOfSession(session.id));
    c.invalidate(c.classesOfWorkload(session.workloadId));
  };

  return {
    name: 'kvflow',
    scoring: 'classes',
    attach(attached: PolicyContext): void {
      context = attached;
    },
    observe(event: RuntimeEvent): void {
      switch (event.type) {
        case 'session.start':
          invalidateAround(ctx('observe').session(event.session)!);
          break;
        case 'step.start': {
          pendingPrefetch.delete(event.session);
          const session = ctx('observe').session(event.session)!;
          const graph = graphs.get(session.workload);
          // Scores move only when the session's node or its running state does.
          if (nodeOf(graph, event.previous.agent) !== nodeOf(graph, session.agent) || !event.previous.inStep) invalidateAround(session);
          break;
        }
        case 'step.end': {
          const session = ctx('observe').session(event.session)!;
          invalidateAround(session);
          const node = nodeOf(graphs.get(session.workload), session.agent);
          if (node >= 0) pendingPrefetch.set(event.session, node);
          break;
        }
        case 'session.end':
          pendingPrefetch.delete(event.session);
          invalidateAround(ctx('observe').session(event.session)!);
          break;
        default:
          break;
      }
    },
    scoreClasses(classIds: Int32Array, out: Float32Array): void {
      for (let i = 0; i < classIds.length; i++) out[i] = scoreOf(classIds[i]!);
    },
    act(now: number): Action[] {
      void now;
      const c = ctx('act');
      if (pendingPrefetch.size === 0) return [];
      const chosen = new Set<number>();
      const blockIds: number[] = [];
      for (const [session, node] of pendingPrefetch) {
        const live = c.session(session);
        const graph = live?.live ? graphs.get(live.workload) : undefined;
        if (graph === undefined) continue;
        for (const next of graph.next[node]!) {
          const prompt = c.lastPrompt(session, graph.names[next]!);
          if (prompt === undefined) continue;
          // Within one chain the host part follows its parents; a block seen
          // in an earlier chain keeps its earlier place, so parents still lead.
          for (const id of cachedChain(c.manager, prompt).host) {
            if (!chosen.has(id)) {
              chosen.add(id);
              blockIds.push(id);
            }
          }
        }
      }
      pendingPrefetch.clear();
      return blockIds.length > 0 ? [{ type: 'prefetch', blockIds: Int32Array.from(blockIds) }] : [];
    },
    explain(blockId: number): Record<string, unknown> | null {
      const scoreClass = context?.manager.metadata.scoreClass[blockId];
      if (scoreClass === undefined || scoreClass < 0) return null;
      return { scoreClass, score: scoreOf(scoreClass) };
    },
  };
}
