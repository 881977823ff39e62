/**
 * Eviction order of the reference model, standing in for
 * native/core/eviction_queue. There are no heaps: a tier's queue is the set
 * of blocks its eligibility predicate accepts, derived from the metadata on
 * every query, and its head is found by a linear scan, so nothing has to be
 * kept in sync with the metadata.
 */
import { Tier, type BlockMetadataView } from '../types.js';

/** Total order on (effective score, lastAccess, id), lowest first, over the metadata. */
export class EvictionOrder {
  private readonly metadata: BlockMetadataView;
  private readonly classScores: Float32Array;
  private readonly numBlockIds: number;

  constructor(metadata: BlockMetadataView, classScores: Float32Array, numBlockIds: number) {
    this.metadata = metadata;
    this.classScores = classScores;
    this.numBlockIds = numBlockIds;
  }

  /** The class's score for a classed block, else the block's own. */
  effectiveScore(id: number): number {
    const c = this.metadata.scoreClass[id]!;
    return c >= 0 ? this.classScores[c]! : this.metadata.score[id]!;
  }

  /** a orders before b in eviction order: (effective score, lastAccess, id) ascending. */
  before(a: number, b: number): boolean {
    const m = this.metadata;
    const sa = this.effectiveScore(a);
    const sb = this.effectiveScore(b);
    if (sa !== sb) return sa < sb;
    const la = m.lastAccess[a]!;
    const lb = m.lastAccess[b]!;
    if (la !== lb) return la < lb;
    return a < b;
  }

  // A block with a child on the device stays there: the device set is closed
  // under "parent of".
  deviceEvictable(id: number): boolean {
    const m = this.metadata;
    return m.tier[id] === Tier.Device && m.committed[id] === 1 && m.refCount[id] === 0 && m.deviceChildren[id] === 0;
  }

  // A block with any cached child stays cached: dropping it would strand the child.
  hostEvictable(id: number): boolean {
    const m = this.metadata;
    return m.tier[id] === Tier.Host && m.refCount[id] === 0 && m.cachedChildren[id] === 0;
  }

  /** First device block in eviction order, or -1. */
  deviceVictim(): number {
    return this.minimumWhere((id) => this.deviceEvictable(id));
  }

  /** First host block in eviction order, or -1. */
  hostVictim(): number {
    return this.minimumWhere((id) => this.hostEvictable(id));
  }

  private minimumWhere(eligible: (id: number) => boolean): number {
    let best = -1;
    for (let id = 0; id < this.numBlockIds; id++) {
      if (eligible(id) && (best < 0 || this.before(id, best))) best = id;
    }
    return best;
  }
}
