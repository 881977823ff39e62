/**
 * One engine replica's cache contents as its event stream tells them: the
 * block keys each medium holds, and how trustworthy that picture is
 * (sequence gaps seen, replays that repaired them, messages refused).
 * Routing asks it how long a prompt's cached prefix is on that replica.
 */
import { DEFAULT_MEDIUM, type KvEventBatch } from './events.js';

export interface ReplicaCacheCounts {
  /** Batches applied, in sequence order. */
  batches: number;
  /** Messages at or below the last applied sequence (replay overlap): skipped. */
  duplicates: number;
  /** Messages refused by the schema check, plus frames that were not [topic, seq, payload]. */
  malformed: number;
  blocksStored: number;
  blocksRemoved: number;
  /** Removals of keys the view did not hold (stored before the view started, or lost in a gap). */
  unknownRemovals: number;
  clears: number;
  /** Times a sequence number skipped ahead of the last applied one. */
  gaps: number;
  /** Replays requested from the publisher's replay socket. */
  resyncs: number;
  /** Replays that did not complete (no answer in time, a broken reply). */
  replayFailures: number;
  /** Batches known missing after a replay could not supply them. */
  lostBatches: number;
}

/** The JSON form of a view: keys as decimal strings, sorted. */
export interface ReplicaCacheViewJSON {
  replica: string;
  lastSequence: number;
  media: Record<string, string[]>;
  counts: ReplicaCacheCounts;
  lastError: string | null;
}

export class ReplicaCacheView {
  readonly replica: string;
  readonly #media = new Map<string, Set<bigint>>();
  #lastSequence = -1;
  #lastError: string | null = null;
  readonly counts: ReplicaCacheCounts = {
    batches: 0,
    duplicates: 0,
    malformed: 0,
    blocksStored: 0,
    blocksRemoved: 0,
    unknownRemovals: 0,
    clears: 0,
    gaps: 0,
    resyncs: 0,
    replayFailures: 0,
    lostBatches: 0,
  };

  constructor(replica = 'replica') {
    if (typeof replica !== 'string' || replica.length === 0) throw new TypeError('ReplicaCacheView: replica must be a non-empty string');
    this.replica = replica;
  }

  /** The sequence number of the last batch applied; -1 before any. */
  get lastSequence(): number {
    return this.#lastSequence;
  }

  /** The last refused message's reason, for reports. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /**
   * Applies a batch published under `sequence`. A sequence at or below the
   * last applied one is a duplicate and changes nothing; one further ahead
   * than the next is applied, and whoever feeds the view must have
   * recorded the gap ({@link noteGap}) first.
   */
  apply(sequence: number, batch: KvEventBatch): boolean {
    if (sequence <= this.#lastSequence) {
      this.counts.duplicates++;
      return false;
    }
    for (const event of batch.events) {
      switch (event.type) {
        case 'BlockStored': {
          const keys = this.#keys(event.medium);
          for (const key of event.blockHashes) keys.add(key);
          this.counts.blocksStored += event.blockHashes.length;
          break;
        }
        case 'BlockRemoved': {
          const keys = this.#media.get(event.medium);
          for (const key of event.blockHashes) {
            if (keys?.delete(key)) this.counts.blocksRemoved++;
            else this.counts.unknownRemovals++;
          }
          break;
        }
        case 'AllBlocksCleared':
          // vLLM clears its whole prefix cache: every medium it reported.
          this.#media.clear();
          this.counts.clears++;
          break;
      }
    }
    this.#lastSequence = sequence;
    this.counts.batches++;
    return true;
  }

  /** A message that could not be used; `reason` is kept as {@link lastError}. */
  noteMalformed(reason: string, sequence?: number): void {
    this.counts.malformed++;
    this.#lastError = reason;
    // A well-framed batch that failed the schema check still used up its
    // sequence number: advancing keeps it from reading as a gap.
    if (sequence !== undefined && sequence > this.#lastSequence) this.#lastSequence = sequence;
  }

  noteGap(): void {
    this.counts.gaps++;
  }

  noteResync(): void {
    this.counts.resyncs++;
  }

  noteReplayFailure(reason: string): void {
    this.counts.replayFailures++;
    this.#lastError = reason;
  }

  /** Gives up on batches up to `sequence` that no replay could supply. */
  skipTo(sequence: number): void {
    if (sequence <= this.#lastSequence) return;
    this.counts.lostBatches += sequence - this.#lastSequence;
    this.#lastSequence = sequence;
  }

  has(key: bigint, medium: string = DEFAULT_MEDIUM): boolean {
    return this.#media.get(medium)?.has(key) ?? false;
  }

  /** Blocks held in `medium`, or in every medium when omitted. */
  size(medium?: string): number {
    if (medium !== undefined) return this.#media.get(medium)?.size ?? 0;
    let total = 0;
    for (const keys of this.#media.values()) total += keys.size;
    return total;
  }

  media(): string[] {
    return [...this.#media.keys()].filter((m) => this.#media.get(m)!.size > 0).sort();
  }

  /**
   * How many leading blocks of a prompt (its block keys, parent first) this
   * replica holds in `medium`: the cached prefix a request routed here
   * would reuse.
   */
  prefixMatch(keys: BigUint64Array | readonly bigint[], medium: string = DEFAULT_MEDIUM): number {
    const held = this.#media.get(medium);
    if (!held) return 0;
    let n = 0;
    while (n < keys.length && held.has(keys[n]!)) n++;
    return n;
  }

  toJSON(): ReplicaCacheViewJSON {
    const media: Record<string, string[]> = {};
    for (const medium of this.media()) {
      media[medium] = [...this.#media.get(medium)!].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
    }
    return { replica: this.replica, lastSequence: this.#lastSequence, media, counts: { ...this.counts }, lastError: this.#lastError };
  }

  #keys(medium: string): Set<bigint> {
    let keys = this.#media.get(medium);
    if (!keys) this.#media.set(medium, (keys = new Set()));
    return keys;
  }
}
