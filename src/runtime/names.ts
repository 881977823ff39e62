/**
 * Interns workload, agent and session names into the small integers the
 * block manager stores per block.
 */
import { MAX_AGENT } from '../blocks/types.js';
import { describeValue } from '../util/check.js';
import type { Registry } from '../policies/types.js';

const MAX_NAME_LENGTH = 256;
const MAX_SESSION_ID = 0x7fffffff;

export function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string, got ${describeValue(value)}`);
  if (value.length === 0) throw new RangeError(`${what} must not be empty`);
  if (value.length > MAX_NAME_LENGTH) throw new RangeError(`${what} is longer than ${MAX_NAME_LENGTH} characters`);
  return value;
}

export class NameRegistry implements Registry {
  readonly #workloads = new Map<string, number>();
  readonly #workloadNames: string[] = [];
  /** Per workload id: agent name -> agent index, and the reverse. */
  readonly #agents: Map<string, number>[] = [];
  readonly #agentNames: string[][] = [];
  readonly #sessions = new Map<string, number>();
  readonly #sessionNames = new Map<number, string>();
  #nextSession = 0;

  workloadId(workload: string): number {
    let id = this.#workloads.get(workload);
    if (id === undefined) {
      id = this.#workloadNames.length;
      this.#workloads.set(workload, id);
      this.#workloadNames.push(workload);
      this.#agents.push(new Map());
      this.#agentNames.push([]);
    }
    return id;
  }

  workloadName(id: number): string | undefined {
    return this.#workloadNames[id];
  }

  get workloadCount(): number {
    return this.#workloadNames.length;
  }

  agentIndex(workload: string, agent: string): number {
    const w = this.workloadId(workload);
    const agents = this.#agents[w]!;
    let index = agents.get(agent);
    if (index === undefined) {
      const names = this.#agentNames[w]!;
      // Agents past the 64th share the last bit of the block agent mask.
      index = Math.min(names.length, MAX_AGENT);
      agents.set(agent, index);
      if (names.length <= MAX_AGENT) names.push(agent);
    }
    return index;
  }

  agentName(workloadId: number, index: number): string | undefined {
    return this.#agentNames[workloadId]?.[index];
  }

  agentsOf(workloadId: number): readonly string[] {
    return this.#agentNames[workloadId] ?? [];
  }

  sessionId(session: string): number {
    let id = this.#sessions.get(session);
    if (id === undefined) {
      id = this.#nextSession;
      this.#nextSession = this.#nextSession === MAX_SESSION_ID ? 0 : this.#nextSession + 1;
      this.#sessions.set(session, id);
      this.#sessionNames.set(id, session);
    }
    return id;
  }

  hasSession(session: string): boolean {
    return this.#sessions.has(session);
  }

  sessionName(id: number): string | undefined {
    return this.#sessionNames.get(id);
  }

  /** Forgets an ended session's name (its id may be reused after 2^31 sessions). */
  forgetSession(session: string): void {
    const id = this.#sessions.get(session);
    if (id === undefined) return;
    this.#sessions.delete(session);
    this.#sessionNames.delete(id);
  }
}
