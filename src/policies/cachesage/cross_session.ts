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

/** What is known of one block: its last reader (its writer at first), whose counts it feeds, and whether another session read it. */
interface Written {
  reader: number;
  readAt: number;
  /** Distinct sessions that read it in turn (a session reading again after another counts again). */
  readers: number;
  stat: number;
  shared: boolean;
}

/**
 * Which session wrote each private block, and whose counts its reuse goes
 * to, by block hash: a later prompt that holds the block counts as a read
 * even when the cache lost it meanwhile, so what this policy evicted does
 * not teach it that nobody reads such blocks.
 */
export class CrossSessionTracker {
  readonly #written = new Map<bigint, Written>();
  readonly #capacity: number;
  readonly #stats: CrossSessionReuse[] = [];
  readonly #byKey = new Map<string, number>();

  /** Remembers at most `capacity` blocks, the least recently read forgotten first. */
  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  /** The counts when some were kept, else undefined (no call released yet). */
  peek(workload: string, agent: string): CrossSessionReuse | undefined {
    const i = this.#byKey.get(`${workload}\u0000${agent}`);
    return i === undefined ? undefined : this.#stats[i];
  }

  #indexOf(workload: string, agent: string): number {
    const key = `${workload}\u0000${agent}`;
    let i = this.#byKey.get(key);
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
      this.#byKey.set(key, i);
    }
    return i;
  }

  /** Sessions that read the block with this hash in turn, and whose counts it feeds; undefined when not known. */
  readersOf(hash: bigint): { readers: number; stats: CrossSessionReuse } | undefined {
    const entry = this.#written.get(hash);
    return entry === undefined ? undefined : { readers: entry.readers, stats: this.#stats[entry.stat]! };
  }

  #remember(hash: bigint, entry: Written): void {
    this.#written.set(hash, entry);
    if (this.#written.size > this.#capacity) this.#written.delete(this.#written.keys().next().value!);
  }

  /**
   * A call of `session` by `agent` finished: its blocks still private to the
   * session and not known yet are the ones it wrote.
   */
  released(m: BlockMetadataView, blockIds: ArrayLike<number>, sessionId: number, workload: string, agent: string, now: number): void {
    let index = -1;
    let fresh: Float64Array | null = null;
    for (let i = 0; i < blockIds.length; i++) {
      const id = blockIds[i]!;
      if (!m.committed[id] || m.session[id] !== sessionId) continue;
      const hash = m.hash[id]!;
      if (this.#written.has(hash)) continue;
      if (index < 0) index = this.#indexOf(workload, agent);
      this.#remember(hash, { reader: sessionId, readAt: now, readers: 1, stat: index, shared: false });
      fresh ??= new Float64Array(DEPTH_BUCKETS);
      fresh[depthBucketOf(m.depth[id]!)]!++;
    }
    if (fresh === null) return;
    const stats = this.#stats[index]!;
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

  /**
   * A call of `sessionId` sent a prompt of these block hashes (cached or
   * not): blocks another session wrote are adopted, and a shared block
   * another session read last is read again.
   */
  admitted(hashes: ArrayLike<bigint>, sessionId: number, now: number): void {
    for (let i = 0; i < hashes.length; i++) {
      const hash = hashes[i]!;
      const entry = this.#written.get(hash);
      if (entry === undefined || entry.reader === sessionId) continue;
      const stats = this.#stats[entry.stat]!;
      const k = depthBucketOf(i);
      if (entry.shared) stats.sharedRereads[k]!++;
      else stats.adopted[k]!++;
      stats.sharedReads[k]!++;
      stats.gapSeconds[k]! += Math.max(0, now - entry.readAt);
      stats.gaps[k]!++;
      entry.readAt = now;
      stats.byReadersNext[(Math.min(entry.readers, MAX_READERS) - 1) * DEPTH_BUCKETS + k]!++;
      entry.readers++;
      stats.byReaders[(Math.min(entry.readers, MAX_READERS) - 1) * DEPTH_BUCKETS + k]!++;
      // Shared from now on, this session its last reader; kept longest.
      entry.reader = sessionId;
      entry.shared = true;
      this.#written.delete(hash);
      this.#remember(hash, entry);
    }
  }
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
