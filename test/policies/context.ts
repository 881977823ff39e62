/**
 * A small, real PolicyContext for policy tests: a real native BlockManager,
 * a registry that interns names, score classes filed the way the runtime
 * files them (workload, agent mask, session, depth bucket), and the last
 * prompt of each (session, agent). Tests drive policies by hand: serve
 * requests, feed events, rescore, evict, and read what the manager did.
 */
import { BlockManager } from '../../src/blocks/block_manager.js';
import { cpuBackend } from '../../src/compute/backend.js';
import { EventKind, Tier, type BlockManagerOptions } from '../../src/blocks/types.js';
import type { AgentRef, Policy, PolicyContext, Registry, RuntimeEvent, ScoreClass } from '../../src/policies/types.js';

class Interner {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [];
  id(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#names.length;
      this.#ids.set(name, id);
      this.#names.push(name);
    }
    return id;
  }
  name(id: number): string | undefined {
    return this.#names[id];
  }
}

export class TestRegistry implements Registry {
  readonly #workloads = new Interner();
  readonly #sessions = new Interner();
  readonly #agents = new Map<number, Interner>();
  readonly #sessionWorkload = new Map<string, string>();

  workloadId(workload: string): number {
    return this.#workloads.id(workload);
  }
  workloadName(id: number): string | undefined {
    return this.#workloads.name(id);
  }
  agentIndex(workload: string, agent: string): number {
    const w = this.workloadId(workload);
    let agents = this.#agents.get(w);
    if (agents === undefined) {
      agents = new Interner();
      this.#agents.set(w, agents);
    }
    return Math.min(63, agents.id(agent));
  }
  agentName(workloadId: number, index: number): string | undefined {
    return this.#agents.get(workloadId)?.name(index);
  }
  sessionId(session: string): number {
    return this.#sessions.id(session);
  }
  sessionName(id: number): string | undefined {
    return this.#sessions.name(id);
  }
  sessionWorkload(session: string): string | undefined {
    return this.#sessionWorkload.get(session);
  }
  setSessionWorkload(session: string, workload: string): void {
    this.#sessionWorkload.set(session, workload);
  }
}

export interface ServeOptions {
  session?: string;
  agent?: AgentRef;
}

/** floor(log2(depth + 1)), as the runtime buckets depth. */
function depthBucket(depth: number): number {
  return 31 - Math.clz32(depth + 1);
}

export class TestContext implements PolicyContext {
  readonly manager: BlockManager;
  readonly registry = new TestRegistry();
  readonly bytesPerBlock = 1024;
  readonly hostToDeviceBytesPerSecond = 1e9;
  readonly backend = cpuBackend();
  /** Every class id passed to invalidate(), in order. */
  readonly invalidated: number[] = [];
  readonly stale: number[] = [];
  readonly #classes: ScoreClass[] = [];
  readonly #classByKey = new Map<string, number>();
  readonly #prompts = new Map<string, BigUint64Array>();
  readonly #filesClasses: boolean;
  #nextRequest = 1;

  /**
   * `classes`: file served blocks under score classes, for class-scoring
   * policies. Off by default: a classed block is ordered by its class's
   * score, which would hide per-block scores.
   */
  constructor(options: BlockManagerOptions, { classes = false }: { classes?: boolean } = {}) {
    this.manager = new BlockManager(options);
    this.#filesClasses = classes;
  }

  scoreClass(id: number): ScoreClass | undefined {
    const cls = this.#classes[id];
    if (cls === undefined) return undefined;
    let blocks = 0;
    const { tier, scoreClass } = this.manager.metadata;
    for (let b = 0; b < this.manager.numBlockIds; b++) if (tier[b] !== Tier.Free && scoreClass[b] === id) blocks++;
    return { ...cls, blocks };
  }
  /** Classes holding blocks, as the runtime recycles empty ones. */
  classesOfSession(sessionId: number): Iterable<number> {
    return this.#classes.filter((c) => c.session === sessionId && c.session >= 0 && this.scoreClass(c.id)!.blocks > 0).map((c) => c.id);
  }
  classesOfWorkload(workloadId: number): Iterable<number> {
    return this.#classes.filter((c) => c.workload === workloadId && c.session < 0 && this.scoreClass(c.id)!.blocks > 0).map((c) => c.id);
  }
  markStale(blockIds: ArrayLike<number>): void {
    this.stale.push(...Array.from(blockIds));
  }
  invalidate(classIds: Iterable<number>): void {
    this.invalidated.push(...classIds);
  }
  lastPrompt(session: string, agent?: string): BigUint64Array | undefined {
    return this.#prompts.get(`${session}\0${agent ?? ''}`);
  }

  /**
   * Runs one request to completion (admit, commit every block, release),
   * files its blocks under classes and records it as the last prompt of its
   * session's agent. Returns the request's block ids.
   */
  serve(hashes: BigUint64Array, options: ServeOptions = {}): Int32Array {
    const { session, agent } = options;
    const tags = {
      ...(agent ? { workload: this.registry.workloadId(agent.workload), agent: this.registry.agentIndex(agent.workload, agent.agent) } : {}),
      ...(session !== undefined ? { session: this.registry.sessionId(session) } : {}),
    };
    const requestId = this.#nextRequest++;
    const admitted = this.manager.admit(requestId, hashes, hashes.length * this.manager.blockSize, tags);
    if (admitted === null) throw new Error(`serve: request ${requestId} does not fit`);
    const ids = this.manager.commit(requestId, hashes.length).slice();
    this.manager.release(requestId);
    if (this.#filesClasses) this.classify(ids);
    if (session !== undefined) {
      if (agent) this.registry.setSessionWorkload(session, agent.workload);
      this.#prompts.set(`${session}\0${agent?.agent ?? ''}`, hashes);
      this.#prompts.set(`${session}\0`, hashes);
    }
    return ids;
  }

  /** Files blocks under the class of their current metadata. */
  classify(blockIds: Int32Array): void {
    const m = this.manager.metadata;
    const classes = new Int32Array(blockIds.length);
    blockIds.forEach((id, i) => {
      const workload = m.workload[id]!;
      const session = m.session[id]!;
      const agentMask = m.agentMask[id]!;
      const bucket = depthBucket(m.depth[id]!);
      const key = `${workload}/${agentMask}/${session}/${bucket}`;
      let cls = this.#classByKey.get(key);
      if (cls === undefined) {
        cls = this.#classes.length;
        this.#classByKey.set(key, cls);
        const agents: number[] = [];
        for (let bit = 0; bit < 64; bit++) if ((agentMask >> BigInt(bit)) & 1n) agents.push(bit);
        this.#classes.push({ id: cls, workload, agentMask, agents, session, depthBucket: bucket, stale: false, blocks: 0 });
      }
      classes[i] = cls;
    });
    this.manager.setScoreClasses(blockIds, classes);
  }

  /** The class a block is filed under (-1: none). */
  classOf(blockId: number): number {
    return this.manager.metadata.scoreClass[blockId]!;
  }

  /** Cached block ids (device and host), ascending. */
  cachedBlocks(): Int32Array {
    const { tier } = this.manager.metadata;
    const ids: number[] = [];
    for (let b = 0; b < this.manager.numBlockIds; b++) if (tier[b] !== Tier.Free) ids.push(b);
    return Int32Array.from(ids);
  }

  /** Scores every class or every cached block with the policy, as the runtime would. */
  rescore(policy: Policy): void {
    if (policy.scoring === 'classes') {
      const ids = Int32Array.from(this.#classes.map((c) => c.id));
      const out = new Float32Array(ids.length);
      policy.scoreClasses!(ids, out);
      this.manager.setClassScores(ids, out);
    } else if (policy.scoring === 'blocks') {
      const ids = this.cachedBlocks();
      const out = new Float32Array(ids.length);
      policy.scoreBlocks!(ids, out);
      this.manager.setScores(ids, out);
    }
  }

  /** Evicts `count` device blocks one at a time and returns the victims in order. */
  evictDevice(count: number): number[] {
    this.manager.takeEvents();
    for (let i = 0; i < count; i++) this.manager.evict('device', 1);
    const events = this.manager.takeEvents();
    const victims: number[] = [];
    events.kind.forEach((kind, i) => {
      if (kind === EventKind.Removed || kind === EventKind.Demoted) victims.push(events.block[i]!);
    });
    return victims;
  }

  /** Builds an AgentRef. */
  static agent(workload: string, agent: string): AgentRef {
    return { workload, agent };
  }
}

/** Distinct literal hashes for a chain: base, base + 1, ... */
export function chain(base: number, length: number): BigUint64Array {
  return BigUint64Array.from({ length }, (_, i) => BigInt(base + i));
}

/** Feeds events to a policy in order. */
export function feed(policy: Policy, ...events: RuntimeEvent[]): void {
  for (const event of events) policy.observe!(event);
}
