/**
 * Score classes: blocks that share workload, agent set, session, depth
 * bucket and staleness (live, stale or dead) share a reuse probability, so
 * a class-scoring policy scores classes, not blocks, and the core orders
 * blocks within a class by recency. The book files committed blocks under classes, recycles classes
 * that lose their last block, and indexes them by session and workload.
 */
import type { BlockManagerLike } from '../blocks/types.js';
import type { ScoreClass } from '../policies/types.js';

const NO_CLASS = -1;
const NO_CLASSES: number[] = [];
/** The deepest depth bucket; a tuple has a class slot per bucket and staleness. */
const MAX_BUCKET = 31;

/**
 * How far a block's own chain has been left behind: live; stale (its agent
 * moved past it: other sessions may still read it); dead (the policy
 * expects no reader at all).
 */
export const Staleness = { Live: 0, Stale: 1, Dead: 2 } as const;
export type Staleness = (typeof Staleness)[keyof typeof Staleness];
const STALENESS = Object.keys(Staleness).length;

/** floor(log2(depth + 1)), capped: deep blocks cost more to recompute. */
export function depthBucket(depth: number): number {
  return Math.min(MAX_BUCKET, 31 - Math.clz32(depth + 1));
}

/** A family: classes that differ only in depth bucket, with how many live. */
interface Family {
  id: number;
  classes: number;
}

/**
 * The classes of one (workload, session, agent mask): per depth bucket and
 * staleness, the live class (NO_CLASS when none), and per staleness the
 * family. Found by numbers, so filing a block builds no string key.
 */
interface Tuple {
  readonly classes: Int32Array;
  readonly families: (Family | undefined)[];
  /** Live classes: the tuple is dropped with its last. */
  live: number;
}

type ClassEntry = ScoreClass & { tuple: Tuple; maskLo: number; maskHi: number; staleness: Staleness };

export class ClassBook {
  readonly #manager: BlockManagerLike;
  readonly #maskWords: Uint32Array;
  readonly #classOf: Int32Array;
  readonly #stale: Uint8Array;
  /** Tuples by workload, session, the mask's low word, then its high word. */
  readonly #tuples = new Map<number, Map<number, Map<number, Map<number, Tuple>>>>();
  #liveClasses = 0;
  readonly #classes: ClassEntry[] = [];
  readonly #free: number[] = [];
  readonly #bySession = new Map<number, Set<number>>();
  readonly #byWorkload = new Map<number, Set<number>>();
  /** Classes created or emptied since the last drain: they need a score. */
  readonly #fresh = new Set<number>();
  #next = 0;
  readonly #freeFamilies: number[] = [];
  #nextFamily = 0;
  #changedIds = new Int32Array(64);
  #changedClasses = new Int32Array(64);

  constructor(manager: BlockManagerLike) {
    this.#manager = manager;
    const mask = manager.metadata.agentMask;
    // Agent masks read as two 32-bit words: cheaper than bigint per block.
    this.#maskWords = new Uint32Array(mask.buffer, mask.byteOffset, mask.length * 2);
    this.#classOf = new Int32Array(manager.numBlockIds).fill(NO_CLASS);
    this.#stale = new Uint8Array(manager.numBlockIds);
  }

  get(id: number): ScoreClass | undefined {
    const c = this.#classes[id];
    return c && c.blocks > 0 ? c : undefined;
  }

  classOf(blockId: number): number {
    return this.#classOf[blockId]!;
  }

  ofSession(sessionId: number): Iterable<number> {
    return this.#bySession.get(sessionId) ?? [];
  }

  ofWorkload(workloadId: number): Iterable<number> {
    return this.#byWorkload.get(workloadId) ?? [];
  }

  get liveClasses(): number {
    return this.#liveClasses;
  }

  /** Classes that appeared since the last call; they must be scored. */
  takeFresh(): number[] {
    if (this.#fresh.size === 0) return NO_CLASSES;
    const out = [...this.#fresh];
    this.#fresh.clear();
    return out;
  }

  /**
   * Files the committed ones of `blockIds` under their classes; the core
   * learns the changes in one call. `staleness` marks them as moved past by
   * their agent (see markStale) or dead (markDead); touched blocks are
   * always live.
   */
  classify(blockIds: ArrayLike<number>, staleness: Staleness = Staleness.Live): void {
    const m = this.#manager.metadata;
    const words = this.#maskWords;
    // Changes go to the core from two scratch arrays, grown to the batch:
    // fresh typed arrays cost an allocation each per call.
    if (this.#changedIds.length < blockIds.length) {
      this.#changedIds = new Int32Array(Math.max(blockIds.length, 2 * this.#changedIds.length));
      this.#changedClasses = new Int32Array(this.#changedIds.length);
    }
    const changedIds = this.#changedIds;
    const changedClasses = this.#changedClasses;
    let changed = 0;
    // Consecutive blocks of a chain usually share workload, session and
    // agents; only the depth bucket moves: the tuple is looked up once per run.
    let tuple: Tuple | undefined;
    let tupleW = NaN;
    let tupleS = NaN;
    let tupleLo = NaN;
    let tupleHi = NaN;
    // Running out of classes throws mid-batch: the blocks filed before it
    // still reach the core, so the book and the core never disagree.
    try {
      for (let i = 0; i < blockIds.length; i++) {
        const id = blockIds[i]!;
        if (!m.committed[id]) continue;
        const w = m.workload[id]!;
        const s = m.session[id]!;
        const lo = words[2 * id]!;
        const hi = words[2 * id + 1]!;
        const bucket = depthBucket(m.depth[id]!);
        const old = this.#classOf[id]!;
        if (old !== NO_CLASS) {
          const c = this.#classes[old]!;
          // Already filed where it belongs: nothing to do.
          if (c.workload === w && c.session === s && c.maskLo === lo && c.maskHi === hi && c.depthBucket === bucket && c.staleness === staleness) continue;
        }
        if (tuple === undefined || w !== tupleW || s !== tupleS || lo !== tupleLo || hi !== tupleHi) {
          tupleW = w;
          tupleS = s;
          tupleLo = lo;
          tupleHi = hi;
          tuple = this.#tupleOf(w, s, lo, hi);
        }
        let cls = tuple.classes[bucket * STALENESS + staleness]!;
        if (cls === NO_CLASS) cls = this.#create(tuple, id, bucket, staleness);
        this.#stale[id] = staleness;
        if (old === cls) continue;
        // Count the new class first, so releasing the old one cannot recycle
        // it or drop the tuple it is filed in.
        this.#classOf[id] = cls;
        this.#classes[cls]!.blocks++;
        // A recycled class leaves its tuple's slot (and an emptied tuple its
        // index): the next block looks its tuple up again.
        if (old !== NO_CLASS && this.#release(old)) tuple = undefined;
        changedIds[changed] = id;
        changedClasses[changed++] = cls;
      }
    } finally {
      if (changed > 0) this.#manager.setScoreClasses(changedIds.subarray(0, changed), changedClasses.subarray(0, changed));
    }
  }

  /** A block left the cache: the core already dropped its class. */
  removed(blockId: number): void {
    const old = this.#classOf[blockId]!;
    if (old === NO_CLASS) return;
    this.#classOf[blockId] = NO_CLASS;
    this.#stale[blockId] = 0;
    this.#release(old);
  }

  isStale(blockId: number): boolean {
    return this.#stale[blockId] !== Staleness.Live;
  }

  isDead(blockId: number): boolean {
    return this.#stale[blockId] === Staleness.Dead;
  }

  /** The tuple of (workload, session, agent mask words), created empty when new. */
  #tupleOf(w: number, s: number, lo: number, hi: number): Tuple {
    let bySession = this.#tuples.get(w);
    if (bySession === undefined) this.#tuples.set(w, (bySession = new Map()));
    let byLo = bySession.get(s);
    if (byLo === undefined) bySession.set(s, (byLo = new Map()));
    let byHi = byLo.get(lo);
    if (byHi === undefined) byLo.set(lo, (byHi = new Map()));
    let tuple = byHi.get(hi);
    if (tuple === undefined) {
      tuple = { classes: new Int32Array((MAX_BUCKET + 1) * STALENESS).fill(NO_CLASS), families: [undefined, undefined, undefined], live: 0 };
      byHi.set(hi, tuple);
    }
    return tuple;
  }

  /** Forgets a tuple that holds no class, and the maps above it left empty. */
  #dropTuple(entry: ClassEntry): void {
    const bySession = this.#tuples.get(entry.workload);
    const byLo = bySession?.get(entry.session);
    const byHi = byLo?.get(entry.maskLo);
    if (bySession === undefined || byLo === undefined || byHi === undefined) return;
    byHi.delete(entry.maskHi);
    if (byHi.size > 0) return;
    byLo.delete(entry.maskLo);
    if (byLo.size > 0) return;
    bySession.delete(entry.session);
    if (bySession.size === 0) this.#tuples.delete(entry.workload);
  }

  #create(tuple: Tuple, id: number, bucket: number, staleness: Staleness): number {
    const m = this.#manager.metadata;
    const cls = this.#free.pop() ?? this.#next++;
    if (cls >= this.#manager.maxClasses) {
      throw new RangeError(
        `out of score classes (${this.#manager.maxClasses}); raise the block manager's maxClasses`,
      );
    }
    let family = tuple.families[staleness];
    if (family === undefined) tuple.families[staleness] = family = { id: this.#freeFamilies.pop() ?? this.#nextFamily++, classes: 0 };
    family.classes++;
    const entry: ClassEntry = {
      id: cls,
      tuple,
      workload: m.workload[id]!,
      agentMask: m.agentMask[id]!,
      agents: maskBits(this.#maskWords[2 * id]!, this.#maskWords[2 * id + 1]!),
      maskLo: this.#maskWords[2 * id]!,
      maskHi: this.#maskWords[2 * id + 1]!,
      session: m.session[id]!,
      depthBucket: bucket,
      stale: staleness !== Staleness.Live,
      dead: staleness === Staleness.Dead,
      staleness,
      family: family.id,
      blocks: 0,
    };
    this.#classes[cls] = entry;
    tuple.classes[bucket * STALENESS + staleness] = cls;
    tuple.live++;
    this.#liveClasses++;
    const index = entry.session >= 0 ? this.#bySession : this.#byWorkload;
    const owner = entry.session >= 0 ? entry.session : entry.workload;
    let set = index.get(owner);
    if (!set) index.set(owner, (set = new Set()));
    set.add(cls);
    this.#fresh.add(cls);
    return cls;
  }

  /** Drops one block from a class; true when that recycled the class. */
  #release(cls: number): boolean {
    const entry = this.#classes[cls]!;
    if (--entry.blocks > 0) return false;
    const tuple = entry.tuple;
    tuple.classes[entry.depthBucket * STALENESS + entry.staleness] = NO_CLASS;
    this.#liveClasses--;
    const family = tuple.families[entry.staleness]!;
    if (--family.classes === 0) {
      tuple.families[entry.staleness] = undefined;
      this.#freeFamilies.push(family.id);
    }
    if (--tuple.live === 0) this.#dropTuple(entry);
    const index = entry.session >= 0 ? this.#bySession : this.#byWorkload;
    const owner = entry.session >= 0 ? entry.session : entry.workload;
    const set = index.get(owner);
    set?.delete(cls);
    if (set && set.size === 0) index.delete(owner);
    this.#fresh.delete(cls);
    this.#free.push(cls);
    return true;
  }
}

function maskBits(lo: number, hi: number): number[] {
  const bits: number[] = [];
  for (let b = 0; b < 32; b++) if ((lo >>> b) & 1) bits.push(b);
  for (let b = 0; b < 32; b++) if ((hi >>> b) & 1) bits.push(32 + b);
  return bits;
}
