/**
 * A small PolicyContext for policy tests, built from the runtime's own
 * parts: a real native BlockManager, the real name registry, class book
 * and session model. Tests drive policies by hand: serve requests, feed
 * framework events through the session model, rescore, evict, and read
 * what the manager did.
 */
import { BlockManager } from '../../src/blocks/block_manager.js';
import { cpuBackend } from '../../src/compute/backend.js';
import { EventKind, Tier, type BlockManagerOptions } from '../../src/blocks/types.js';
import type { AgentRef, FrameworkEvent, Policy, PolicyContext, ScoreClass, SessionView } from '../../src/policies/types.js';
import { ClassBook, Staleness } from '../../src/runtime/classes.js';
import { NameRegistry } from '../../src/runtime/names.js';
import { SessionBook } from '../../src/runtime/sessions.js';

export interface ServeOptions {
  session?: string;
  agent?: AgentRef;
}

export class TestContext implements PolicyContext {
  readonly manager: BlockManager;
  readonly registry = new NameRegistry();
  readonly sessionBook = new SessionBook(this.registry);
  readonly classes: ClassBook;
  readonly bytesPerBlock = 1024;
  readonly hostToDeviceBytesPerSecond = 1e9;
  readonly backend = cpuBackend();
  /** Every class id passed to invalidate(), in order. */
  readonly invalidated: number[] = [];
  readonly stale: number[] = [];
  readonly dead: number[] = [];
  readonly #filesClasses: boolean;
  #nextRequest = 1;

  /**
   * `classes`: file served blocks under score classes, for class-scoring
   * policies. Off by default: a classed block is ordered by its class's
   * score, which would hide per-block scores.
   */
  constructor(options: BlockManagerOptions, { classes = false }: { classes?: boolean } = {}) {
    this.manager = new BlockManager(options);
    this.classes = new ClassBook(this.manager);
    this.#filesClasses = classes;
  }

  scoreClass(id: number): ScoreClass | undefined {
    return this.classes.get(id);
  }
  classesOfSession(sessionId: number): Iterable<number> {
    return this.classes.ofSession(sessionId);
  }
  classesOfWorkload(workloadId: number): Iterable<number> {
    return this.classes.ofWorkload(workloadId);
  }
  markStale(blockIds: ArrayLike<number>): void {
    this.stale.push(...Array.from(blockIds));
    this.classes.classify(blockIds, Staleness.Stale);
  }
  markDead(blockIds: ArrayLike<number>): void {
    this.dead.push(...Array.from(blockIds));
    this.classes.classify(blockIds, Staleness.Dead);
  }
  invalidate(classIds: Iterable<number>): void {
    this.invalidated.push(...classIds);
  }
  lastPrompt(session: string, agent?: string): BigUint64Array | undefined {
    return this.sessionBook.lastPrompt(session, agent);
  }
  session(name: string): SessionView | undefined {
    return this.sessionBook.get(name);
  }
  sessionById(id: number): SessionView | undefined {
    return this.sessionBook.byId(id);
  }
  sessions(): Iterable<SessionView> {
    return this.sessionBook.all();
  }
  liveSessions(workloadId: number): Iterable<SessionView> {
    return this.sessionBook.liveOf(workloadId);
  }

  /**
   * Feeds framework events to a policy through the session model, as the
   * runtime does. An event the runtime would ignore (it does not fit the
   * sessions) is a broken test: it throws.
   */
  feed(policy: Policy, ...events: FrameworkEvent[]): void {
    for (const event of events) {
      const misfit = this.sessionBook.misfit(event);
      if (misfit !== null) throw new Error(`feed: the runtime would ignore this ${event.type}: ${misfit}`);
      policy.observe?.(this.sessionBook.apply(event));
    }
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
    if (session !== undefined) this.sessionBook.notePrompt(session, agent?.agent, hashes);
    return ids;
  }

  /** Files blocks under the class of their current metadata. */
  classify(blockIds: Int32Array): void {
    this.classes.classify(blockIds);
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
      const live: number[] = [];
      for (let c = 0; c < this.manager.maxClasses; c++) if (this.classes.get(c)) live.push(c);
      const ids = Int32Array.from(live);
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
      if (kind === EventKind.Removed) this.classes.removed(events.block[i]!);
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
