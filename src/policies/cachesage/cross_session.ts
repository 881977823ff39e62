/**
 * Cross-session reuse: how often a block one session wrote for itself is
 * later read by another session. A session's private blocks are otherwise
 * valued by that session's own walk only, so once it moves past them, or
 * ends, they look dead; yet a workload that asks several questions about
 * one document (a mapper reads chunk, then question) has the next session
 * read the same chunk blocks. The block manager only tags a block shared
 * once a second session touches it, which is too late when the first
 * session's end or its stale chain already sent the block out first.
 *
 * Learned per workload, writing agent and depth bucket, by block hash
 * (so a read of a block the cache already lost still counts): of the
 * private blocks an agent's calls left behind, the decayed share that a
 * call of another session read later, and how long after; and once shared,
 * how often yet another session reads a block, overall and by how many
 * sessions read it so far (a document asked about three times is dead
 * after its third reader, a system prompt never).
 */
import { DEPTH_BUCKETS } from './prefix_reuse.js';
import type { BlockMetadataView } from '../../blocks/types.js';
import { grown, HashLru } from '../../util/hash_lru.js';
import { wordsOf } from '../../util/words.js';

// Per release of the agent: a few hundred calls of memory, as prefix reuse.
const DECAY = 0.98;
// Fewer written blocks than this in a bucket: too few to tell.
const MIN_WRITTEN = 4;

/** One (workload, model agent)'s counts, per depth bucket. */
export interface CrossSessionReuse {
  written: Float64Array;
  adopted: Float64Array;
  /** Reads of a shared block by a session, and how many of those another session's read followed. */
  sharedReads: Float64Array;
  sharedRereads: Float64Array;
  /** Seconds from a block's last read (its writing at first) to another session's read: decayed sum and count. */
  gapSeconds: Float64Array;
  gaps: Float64Array;
  /**
   * By readers so far (1..MAX_READERS, the last pooling more) times depth
   * bucket: reads that brought a block to that many sessions, and how many
   * of those another session's read followed.
   */
  byReaders: Float64Array;
  byReadersNext: Float64Array;
}

/** Readers counted apart; more pool with the last. */
export const MAX_READERS = 4;

/** The runtime's depth bucket of a block (floor(log2(depth + 1)), capped), as score classes file it. */
export function depthBucketOf(depth: number): number {
  return Math.min(DEPTH_BUCKETS - 1, 31 - Math.clz32(depth + 1));
}

/**
 * Which session wrote each private block, and whose counts its reuse goes
 * to, by block hash: a later prompt that holds the block counts as a read
 * even when the cache lost it meanwhile, so what this policy evicted does
 * not teach it that nobody reads such blocks.
 *
 * Per remembered hash (an entry of the LRU index): its last reader (its
 * writer at first), when that read was, how many distinct sessions read it
 * in turn (a session reading again after another counts again), whose
 * counts it feeds, and whether another session read it.
 */
export class CrossSessionTracker {
  readonly #index: HashLru;
  #reader = new Int32Array(0);
  #readAt = new Float64Array(0);
  #readers = new Int32Array(0);
  #stat = new Int32Array(0);
  #shared = new Uint8Array(0);
  readonly #capacity: number;
  readonly #stats: CrossSessionReuse[] = [];
  /** Index in #stats by workload, then agent: no key string built per read. */
  readonly #byKey = new Map<string, Map<string, number>>();
  /** What the last warm() returned: kept so its loads are not optimised away. */
  #warmed = 0;
  /** Per-call counts of written blocks by depth bucket, reused. */
  readonly #fresh = new Float64Array(DEPTH_BUCKETS);

  /** Remembers at most `capacity` blocks, the least recently read forgotten first. */
  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
    this.#index = new HashLru((entries) => this.#growFields(entries));
    this.#growFields(this.#index.entryCapacity);
  }

  /** The per-entry fields, as long as the index's entry arrays. */
  #growFields(entries: number): void {
    this.#reader = grown(this.#reader, entries);
    this.#readAt = grown(this.#readAt, entries);
    this.#readers = grown(this.#readers, entries);
    this.#stat = grown(this.#stat, entries);
    this.#shared = grown(this.#shared, entries);
  }

  /** The counts when some were kept, else undefined (no call released yet). */
  peek(workload: string, agent: string): CrossSessionReuse | undefined {
    const i = this.#byKey.get(workload)?.get(agent);
    return i === undefined ? undefined : this.#stats[i];
  }

  #indexOf(workload: string, agent: string): number {
    let agents = this.#byKey.get(workload);
    if (agents === undefined) this.#byKey.set(workload, (agents = new Map()));
    let i = agents.get(agent);
    if (i === undefined) {
      i = this.#stats.length;
      this.#stats.push({
        written: new Float64Array(DEPTH_BUCKETS),
        adopted: new Float64Array(DEPTH_BUCKETS),
        sharedReads: new Float64Array(DEPTH_BUCKETS),
        sharedRereads: new Float64Array(DEPTH_BUCKETS),
        gapSeconds: new Float64Array(DEPTH_BUCKETS),
        gaps: new Float64Array(DEPTH_BUCKETS),
        byReaders: new Float64Array(MAX_READERS * DEPTH_BUCKETS),
        byReadersNext: new Float64Array(MAX_READERS * DEPTH_BUCKETS),
      });
      agents.set(agent, i);
    }
    return i;
  }

  /** The learned counts per workload and agent, as JSON-compatible arrays (the remembered hashes are left out). */
  countsJSON(): Record<string, Record<string, Record<keyof CrossSessionReuse, number[]>>> {
    const out: Record<string, Record<string, Record<keyof CrossSessionReuse, number[]>>> = {};
    for (const [workload, agents] of this.#byKey) {
      const byAgent: Record<string, Record<keyof CrossSessionReuse, number[]>> = (out[workload] = {});
      for (const [agent, i] of agents) {
        const stats = this.#stats[i]!;
        byAgent[agent] = Object.fromEntries(COUNT_FIELDS.map((field) => [field, Array.from(stats[field])])) as Record<keyof CrossSessionReuse, number[]>;
      }
    }
    return out;
  }

  /**
   * Replaces the learned counts of the workloads and agents in `parsed`
   * (from {@link parseCrossSessionCounts}); others are kept, and so are
   * the remembered hashes, which go on feeding the counts they fed.
   */
  restoreCounts(parsed: Map<string, Map<string, CrossSessionReuse>>): void {
    for (const [workload, agents] of parsed) {
      for (const [agent, counts] of agents) {
        const stats = this.#stats[this.#indexOf(workload, agent)]!;
        for (const field of COUNT_FIELDS) stats[field].set(counts[field]);
      }
    }
  }

  /** Sessions that read the block with this hash in turn, and whose counts it feeds; undefined when not known. */
  readersOf(hash: bigint): { readers: number; stats: CrossSessionReuse } | undefined {
    const e = this.#index.find(Number(hash & 0xffffffffn), Number(hash >> 32n));
    return e < 0 ? undefined : { readers: this.#readers[e]!, stats: this.#stats[this.#stat[e]!]! };
  }

  /** Entry of the block hash with these 32-bit words, or -1 when not known (read it with readersAt, statsAt). */
  find(lo: number, hi: number): number {
    return this.#index.find(lo, hi);
  }

  /** Sessions that read an entry's block in turn. */
  readersAt(entry: number): number {
    return this.#readers[entry]!;
  }

  /** When an entry's block was last read (written, at first), in event seconds. */
  readAtOf(entry: number): number {
    return this.#readAt[entry]!;
  }

  /** The counts an entry's block feeds. */
  statsAt(entry: number): CrossSessionReuse {
    return this.#stats[this.#stat[entry]!]!;
  }

  /**
   * A call of `session` by `agent` finished: its blocks still private to the
   * session and not known yet are the ones it wrote.
   */
  released(m: BlockMetadataView, blockIds: ArrayLike<number>, sessionId: number, workload: string, agent: string, now: number): void {
    const words = wordsOf(m.hash);
    const index = this.#index;
    let stat = -1;
    const fresh = this.#fresh;
    for (let i = 0; i < blockIds.length; i++) {
      const id = blockIds[i]!;
      if (!m.committed[id] || m.session[id] !== sessionId) continue;
      const lo = words[2 * id]!;
      const hi = words[2 * id + 1]!;
      if (index.find(lo, hi) >= 0) continue;
      if (stat < 0) {
        stat = this.#indexOf(workload, agent);
        fresh.fill(0);
      }
      const e = this.#remember(lo, hi);
      this.#reader[e] = sessionId;
      this.#readAt[e] = now;
      this.#readers[e] = 1;
      this.#stat[e] = stat;
      this.#shared[e] = 0;
      fresh[depthBucketOf(m.depth[id]!)]!++;
    }
    if (stat < 0) return;
    const stats = this.#stats[stat]!;
    for (let k = 0; k < DEPTH_BUCKETS; k++) {
      stats.written[k] = stats.written[k]! * DECAY + fresh[k]!;
      stats.adopted[k] = stats.adopted[k]! * DECAY;
      stats.sharedReads[k] = stats.sharedReads[k]! * DECAY;
      stats.sharedRereads[k] = stats.sharedRereads[k]! * DECAY;
      stats.gapSeconds[k] = stats.gapSeconds[k]! * DECAY;
      stats.gaps[k] = stats.gaps[k]! * DECAY;
    }
    for (let k = 0; k < stats.byReaders.length; k++) {
      stats.byReaders[k] = stats.byReaders[k]! * DECAY;
      stats.byReadersNext[k] = stats.byReadersNext[k]! * DECAY;
    }
    // Written: brought to their first reader.
    for (let k = 0; k < DEPTH_BUCKETS; k++) stats.byReaders[k]! += fresh[k]!;
  }

  /** A new entry for a hash not known, the newest; the oldest is forgotten past capacity. */
  #remember(lo: number, hi: number): number {
    const index = this.#index;
    // Forgetting first keeps the same entries as adding then forgetting: the new hash is never the oldest.
    if (index.size >= this.#capacity) index.remove(index.oldest);
    return index.insert(lo, hi);
  }

  /**
   * A call of `sessionId` sent a prompt of these block hashes (cached or
   * not): blocks another session wrote are adopted, and a shared block
   * another session read last is read again.
   */
  admitted(hashes: BigUint64Array, sessionId: number, now: number): void {
    const words = wordsOf(hashes);
    const index = this.#index;
    this.#warmed = index.warm(words, hashes.length);
    for (let i = 0; i < hashes.length; i++) {
      const e = index.find(words[2 * i]!, words[2 * i + 1]!);
      if (e < 0 || this.#reader[e] === sessionId) continue;
      const stats = this.#stats[this.#stat[e]!]!;
      const k = depthBucketOf(i);
      if (this.#shared[e]) stats.sharedRereads[k]!++;
      else stats.adopted[k]!++;
      stats.sharedReads[k]!++;
      stats.gapSeconds[k]! += Math.max(0, now - this.#readAt[e]!);
      stats.gaps[k]!++;
      this.#readAt[e] = now;
      stats.byReadersNext[(Math.min(this.#readers[e]!, MAX_READERS) - 1) * DEPTH_BUCKETS + k]!++;
      const readers = ++this.#readers[e]!;
      stats.byReaders[(Math.min(readers, MAX_READERS) - 1) * DEPTH_BUCKETS + k]!++;
      // Shared from now on, this session its last reader; kept longest.
      this.#reader[e] = sessionId;
      this.#shared[e] = 1;
      index.touch(e);
    }
  }
}

/** The fields of a {@link CrossSessionReuse}, in snapshot order. */
const COUNT_FIELDS: readonly (keyof CrossSessionReuse)[] = ['written', 'adopted', 'sharedReads', 'sharedRereads', 'gapSeconds', 'gaps', 'byReaders', 'byReadersNext'];

/**
 * Parses what {@link CrossSessionTracker.countsJSON} wrote.
 * @throws TypeError / RangeError naming the workload, agent and field that is wrong.
 */
export function parseCrossSessionCounts(raw: unknown, what: string): Map<string, Map<string, CrossSessionReuse>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TypeError(`${what} is not an object`);
  const out = new Map<string, Map<string, CrossSessionReuse>>();
  for (const [workload, agents] of Object.entries(raw)) {
    if (typeof agents !== 'object' || agents === null || Array.isArray(agents)) throw new TypeError(`${what}.${workload} is not an object`);
    const byAgent = new Map<string, CrossSessionReuse>();
    for (const [agent, counts] of Object.entries(agents)) {
      if (typeof counts !== 'object' || counts === null) throw new TypeError(`${what}.${workload}.${agent} is not an object`);
      const parsed = {} as CrossSessionReuse;
      for (const field of COUNT_FIELDS) {
        const length = field === 'byReaders' || field === 'byReadersNext' ? MAX_READERS * DEPTH_BUCKETS : DEPTH_BUCKETS;
        const values = (counts as Record<string, unknown>)[field];
        if (!Array.isArray(values) || values.length !== length || !values.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)) {
          throw new RangeError(`${what}.${workload}.${agent}.${field} must be ${length} finite counts >= 0`);
        }
        parsed[field] = Float64Array.from(values as number[]);
      }
      byAgent.set(agent, parsed);
    }
    out.set(workload, byAgent);
  }
  return out;
}

/** The share of shared blocks at `bucket` that another session reads after their last reader; 1 until known. */
export function sharedRereadRateAt(r: CrossSessionReuse | undefined, bucket: number): number {
  if (!r) return 1;
  const k = Math.min(bucket, DEPTH_BUCKETS - 1);
  const reads = r.sharedReads[k]!;
  if (reads < MIN_WRITTEN) return 1;
  return Math.min(1, r.sharedRereads[k]! / reads);
}

/**
 * The share of an agent's private blocks at depth bucket `bucket` that
 * another session reads later; 0 until enough were written there.
 */
export function crossSessionRateAt(r: CrossSessionReuse | undefined, bucket: number): number {
  if (!r) return 0;
  const k = Math.min(bucket, DEPTH_BUCKETS - 1);
  const written = r.written[k]!;
  if (written < MIN_WRITTEN) return 0;
  return Math.min(1, r.adopted[k]! / written);
}

/** Mean seconds from a block's last read to another session's read at `bucket`; undefined until one was seen. */
export function crossSessionGapAt(r: CrossSessionReuse | undefined, bucket: number): number | undefined {
  if (!r) return undefined;
  const k = Math.min(bucket, DEPTH_BUCKETS - 1);
  return r.gaps[k]! > 0 ? r.gapSeconds[k]! / r.gaps[k]! : undefined;
}

/** P(another session reads a block that `readers` sessions read, at `bucket`); undefined until seen often enough. */
export function nextReaderRateAt(r: CrossSessionReuse, readers: number, bucket: number): number | undefined {
  const i = (Math.min(readers, MAX_READERS) - 1) * DEPTH_BUCKETS + Math.min(bucket, DEPTH_BUCKETS - 1);
  const n = r.byReaders[i]!;
  return n < MIN_WRITTEN ? undefined : Math.min(1, r.byReadersNext[i]! / n);
}
