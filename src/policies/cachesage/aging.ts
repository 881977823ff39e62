/**
 * Aging of blocks kept for other sessions' reads. A shared block (a
 * document several sessions ask about), or a session's block that only
 * another session may still read (its own agent moved past it, or its
 * session ended), is valued by how often such blocks get another reader
 * (cross_session.ts). That rate is an average over blocks of every age;
 * one nobody read for far longer than such reads usually wait was most
 * likely read for the last time already (the document's questions were
 * all asked). Kept at the average value, such blocks hold the cache
 * against blocks a live session is about to read.
 *
 * By survival: if a block gets another reader with probability r, after a
 * wait with mean g (taken as exponential), the chance that one still comes
 * when none came for `idle` seconds is r·S / (r·S + 1 − r), S = e^(−idle/g).
 * Under DEAD_BELOW it goes first: a shared block as stale (its class is
 * worth nothing), a private one as dead (a stale private block keeps the
 * value of other sessions' reads, so it needs a class of its own). A
 * later read makes either live again.
 *
 * The scan walks the block ids a bounded number per admit, round the
 * whole table, so its cost per call does not grow with the cache, and
 * slows down to a sixteenth after passes that aged nothing; only blocks
 * untouched for a while are looked at. Idle time is the cross-
 * session tracker's when it knows the block (its last read, in event
 * seconds), else at least the time since the first clock sample taken
 * after the block's last access.
 */
import { Tier } from '../../blocks/types.js';
import { wordsOf } from '../../util/words.js';
import type { PolicyContext, ScoreClass } from '../types.js';
import { crossSessionGapAt, crossSessionRateAt, depthBucketOf, nextReaderRateAt, sharedRereadRateAt } from './cross_session.js';
import { isLive, modelAgent, type CacheSageState } from './workload.js';

/** A block whose next reader comes with less than this probability is taken as read for the last time. */
export const DEAD_BELOW = 0.02;
/** Block ids looked at per admit while passes find blocks to age... */
const IDS_PER_ADMIT = 256;
/** ...and down to this many after passes that found none (halved per such pass). */
const IDS_PER_ADMIT_IDLE = 16;
/** A clock sample (manager clock, event time) every this many admits... */
const SAMPLE_EVERY = 16;
/** ...and this many kept: they date a block's last access by the manager's logical clock. */
const SAMPLES_KEPT = 64;

/** What other sessions' reads of a class's blocks look like; null: the class is not aged. */
type OthersReads = { rate: number; gap: number } | null;

export class ReadAging {
  #cursor = 0;
  #admits = 0;
  readonly #clocks = new Float64Array(SAMPLES_KEPT);
  readonly #times = new Float64Array(SAMPLES_KEPT);
  /** Samples taken so far (the ring holds the last SAMPLES_KEPT). */
  #samples = 0;
  /** Passes over the block ids begun so far. */
  #pass = 1;
  /** Ids looked at per admit now, and blocks aged in the pass under way. */
  #idsPerAdmit = IDS_PER_ADMIT;
  #agedThisPass = 0;
  /**
   * Per class id, {@link othersReadsOf} memoised for one pass: the pass it
   * was computed in, for which class (an id recycled since is another
   * class), and its rate and gap (NaN rate: null).
   */
  #memoPass = new Int32Array(0);
  #memoClass: (ScoreClass | undefined)[] = [];
  #memoRate = new Float64Array(0);
  #memoGap = new Float64Array(0);
  readonly #stale: number[] = [];
  readonly #dead: number[] = [];

  /** An admit at `now` (event seconds): looks at the next slice of block ids. */
  admitted(state: CacheSageState, ctx: PolicyContext, now: number): void {
    const manager = ctx.manager;
    if (this.#admits++ % SAMPLE_EVERY === 0) {
      const k = this.#samples++ % SAMPLES_KEPT;
      this.#clocks[k] = manager.clock;
      this.#times[k] = now;
    }
    const tracker = state.crossSession;
    if (!tracker || this.#samples < 2) return;
    // Touched since the latest sample but one: too recent to be looked at.
    const recent = this.#clocks[(this.#samples - 2) % SAMPLES_KEPT]!;
    const m = manager.metadata;
    const n = manager.numBlockIds;
    const end = Math.min(n, this.#cursor + this.#idsPerAdmit);
    const stale = this.#stale;
    const dead = this.#dead;
    if (this.#memoPass.length < manager.maxClasses) {
      this.#memoPass = new Int32Array(manager.maxClasses);
      this.#memoRate = new Float64Array(manager.maxClasses);
      this.#memoGap = new Float64Array(manager.maxClasses);
      // Filled, not grown by assignment: a sparse array falls back to a dictionary.
      this.#memoClass = new Array<ScoreClass | undefined>(manager.maxClasses).fill(undefined);
    }
    const memoPass = this.#memoPass;
    const memoRate = this.#memoRate;
    const memoGap = this.#memoGap;
    const memoClass = this.#memoClass;
    const pass = this.#pass;
    let words: Uint32Array | undefined;
    // The metadata's arrays, read once: the loop touches a few per block.
    const { committed, refCount, tier, lastAccess, scoreClass, session, depth } = m;
    for (let id = this.#cursor; id < end; id++) {
      if (!committed[id] || refCount[id] !== 0 || tier[id] === Tier.Free || lastAccess[id]! > recent) continue;
      const c = scoreClass[id]!;
      if (c < 0) continue;
      // A class is looked at once per pass; one that is not aged stays so
      // for the pass even if its id is recycled meanwhile (it is skipped:
      // the safe side), one that is aged is checked to be the same class.
      if (memoPass[c] !== pass || (!Number.isNaN(memoRate[c]!) && ctx.scoreClass(c) !== memoClass[c])) {
        const cls = ctx.scoreClass(c);
        const others = cls === undefined ? null : othersReadsOf(state, ctx, cls);
        memoPass[c] = pass;
        memoClass[c] = cls;
        memoRate[c] = others === null ? NaN : others.rate;
        memoGap[c] = others === null ? NaN : others.gap;
      }
      if (Number.isNaN(memoRate[c]!)) continue;
      const shared = session[id] === -1;
      const bucket = depthBucketOf(depth[id]!);
      let rate: number | undefined;
      let gap: number | undefined;
      let idle: number;
      words ??= wordsOf(m.hash);
      const known = tracker.find(words[2 * id]!, words[2 * id + 1]!);
      if (known >= 0) {
        const stats = tracker.statsAt(known);
        rate = shared ? (nextReaderRateAt(stats, tracker.readersAt(known), bucket) ?? sharedRereadRateAt(stats, bucket)) : crossSessionRateAt(stats, bucket);
        gap = crossSessionGapAt(stats, bucket);
        idle = now - tracker.readAtOf(known);
      } else {
        // A private block the tracker forgot has no reads to go by.
        if (!shared) continue;
        idle = now - this.#firstSampleAfter(lastAccess[id]!);
      }
      rate ??= memoRate[c]!;
      gap ??= memoGap[c]!;
      if (!(rate > 0 && rate < 1) || !(gap > 0) || !(idle > 0)) continue;
      const survives = rate * Math.exp(-idle / gap);
      if (survives / (survives + 1 - rate) < DEAD_BELOW) (shared ? stale : dead).push(id);
    }
    this.#agedThisPass += stale.length + dead.length;
    if (end === n) {
      this.#cursor = 0;
      this.#pass++;
      // A workload whose blocks nobody else reads has nothing to age: the
      // scan slows down there, and speeds up again once a pass ages any.
      this.#idsPerAdmit = this.#agedThisPass > 0 ? IDS_PER_ADMIT : Math.max(IDS_PER_ADMIT_IDLE, this.#idsPerAdmit >> 1);
      this.#agedThisPass = 0;
    } else this.#cursor = end;
    if (stale.length > 0) ctx.markStale(stale);
    if (dead.length > 0) ctx.markDead(dead);
    stale.length = 0;
    dead.length = 0;
  }

  /** Event time of the oldest kept sample taken at or after manager clock `clock`. */
  #firstSampleAfter(clock: number): number {
    const kept = Math.min(this.#samples, SAMPLES_KEPT);
    let time = this.#times[(this.#samples - 1) % SAMPLES_KEPT]!;
    for (let back = 1; back <= kept; back++) {
      const k = (this.#samples - back) % SAMPLES_KEPT;
      if (this.#clocks[k]! < clock) break;
      time = this.#times[k]!;
    }
    return time;
  }
}

/**
 * For a class whose blocks only other sessions may read (shared and not
 * stale; or private, not dead, and stale or of an ended session): how
 * often its agents' blocks get another session's read, and after how
 * long; null for other classes or when that is unknown.
 */
function othersReadsOf(state: CacheSageState, ctx: PolicyContext, cls: ScoreClass): OthersReads {
  const tracker = state.crossSession;
  if (cls.dead || cls.workload < 0 || !tracker) return null;
  if (cls.session === -1 ? cls.stale : !cls.stale && liveSession(state, ctx, cls.session)) return null;
  const name = ctx.registry.workloadName(cls.workload);
  const w = name === undefined ? undefined : state.workloads.get(name);
  if (!w) return null;
  let rate = 0;
  let gap = Infinity;
  for (const bit of cls.agents) {
    const agent = ctx.registry.agentName(cls.workload, bit);
    const stats = agent === undefined ? undefined : tracker.peek(w.name, modelAgent(w, agent));
    if (!stats) return null;
    rate = Math.max(rate, cls.session === -1 ? sharedRereadRateAt(stats, cls.depthBucket) : crossSessionRateAt(stats, cls.depthBucket));
    gap = Math.min(gap, crossSessionGapAt(stats, cls.depthBucket) ?? Infinity);
  }
  return Number.isFinite(gap) ? { rate, gap } : null;
}

function liveSession(state: CacheSageState, ctx: PolicyContext, sessionId: number): boolean {
  const session = ctx.sessionById(sessionId);
  return session !== undefined && isLive(state, session);
}
