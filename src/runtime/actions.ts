/**
 * act: merging the policies' actions and carrying them out on the block
 * manager. Pins hold a chain (a leaf and its ancestors) on the device
 * through a request of the runtime's own; prefetches load host blocks and,
 * with a data plane attached, start their copies at once.
 */
import { Tier, type BlockManagerLike } from '../blocks/types.js';
import type { Action } from '../policies/types.js';
import type { RuntimeParts } from './parts.js';
import type { ActResult } from './types.js';

/**
 * Pins hold the chain through a request of the manager's own; these ids
 * never collide with an engine's (engine ids stay below 2^52).
 */
export const HOLD_ID_BASE = 2 ** 52;

/**
 * Deterministic merge: unpins, pins, demotions, evictions, prefetches, each
 * in the order policies gave them; a leaf pinned in the same round is
 * dropped from demotions and evictions (a pin beats an evict; its
 * ancestors are pinned with it before any demotion runs, so the manager
 * skips them), and a block prefetched twice, in one action or in several,
 * is prefetched once.
 */
export function mergeActions(actions: readonly Action[]): Action[] {
  // Most act() calls between steps have nothing to do.
  if (actions.length === 0) return [];
  let pinnedLeaves: Set<number> | null = null;
  for (const a of actions) if (a.type === 'pin') (pinnedLeaves ??= new Set()).add(a.leafBlockId);
  const seen = newPrefetchRound();
  const out: Action[] = [];
  for (const type of MERGE_ORDER) {
    for (const a of actions) {
      if (a.type !== type) continue;
      if (a.type === 'demote' || a.type === 'evict') {
        const ids = pinnedLeaves === null ? a.blockIds.slice() : keepIds(a.blockIds, (id) => !pinnedLeaves.has(id));
        if (ids.length > 0) out.push({ type: a.type, blockIds: ids });
      } else if (a.type === 'prefetch') {
        const ids = keepIds(a.blockIds, (id) => firstSight(seen, id));
        if (ids.length > 0) out.push({ type: 'prefetch', blockIds: ids });
      } else {
        out.push(a);
      }
    }
  }
  return out;
}

const MERGE_ORDER: readonly Action['type'][] = ['unpin', 'pin', 'demote', 'evict', 'prefetch'];

/**
 * mergeActions' prefetch dedup, for one merge at a time (merges never
 * nest): ids below STAMPED_IDS by a stamp per id, the current round's
 * number when seen (no Set lookups for the usual block ids), any other
 * value in a Set.
 */
const STAMPED_IDS = 1 << 24;
let seenStamps = new Uint32Array(1024);
let seenRound = 0;
const SEEN_ELSEWHERE = new Set<number>();

/** Starts a dedup round (forgetting the last one's other values): returns its stamp. */
function newPrefetchRound(): number {
  if (++seenRound === 0xffffffff) {
    seenStamps.fill(0);
    seenRound = 1;
  }
  SEEN_ELSEWHERE.clear();
  return seenRound;
}

/** Whether this is the first time `id` is seen in round `round` (and marks it seen). */
function firstSight(round: number, id: number): boolean {
  if (Number.isInteger(id) && id >= 0 && id < STAMPED_IDS) {
    if (id >= seenStamps.length) {
      const grown = new Uint32Array(Math.min(STAMPED_IDS, Math.max(id + 1, 2 * seenStamps.length)));
      grown.set(seenStamps);
      seenStamps = grown;
    }
    if (seenStamps[id] === round) return false;
    seenStamps[id] = round;
    return true;
  }
  if (SEEN_ELSEWHERE.has(id)) return false;
  SEEN_ELSEWHERE.add(id);
  return true;
}

/** The ids `keep` accepts, in order, in a fresh array (Int32Array.prototype.filter's result, without its per-element callback machinery). */
function keepIds(ids: Int32Array, keep: (id: number) => boolean): Int32Array {
  const out = new Int32Array(ids.length);
  let n = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (keep(id)) out[n++] = id;
  }
  return n === ids.length ? out : out.slice(0, n);
}

export class ActionRunner {
  readonly #parts: RuntimeParts;
  readonly #holds = new Map<string, number>();
  #nextHold = HOLD_ID_BASE;

  constructor(parts: RuntimeParts) {
    this.#parts = parts;
  }

  get holds(): number {
    return this.#holds.size;
  }

  /** Carries out merged actions in order; `t` is act()'s time. */
  execute(actions: readonly Action[], t: number): ActResult {
    const { manager, copies, prefetched, stats } = this.#parts;
    const result: ActResult = { actions: [...actions], demoted: 0, evicted: 0, prefetched: 0, pinned: 0, unpinned: 0 };
    for (const action of actions) {
      switch (action.type) {
        case 'unpin':
          result.unpinned += this.#unpin(action.key) ? 1 : 0;
          break;
        case 'pin':
          result.pinned += this.#pin(action.key, action.leafBlockId) ? 1 : 0;
          break;
        case 'demote':
          result.demoted += manager.demote(liveIds(manager, action.blockIds));
          break;
        case 'evict':
          result.evicted += manager.drop(liveIds(manager, action.blockIds));
          break;
        case 'prefetch': {
          const ids = liveIds(manager, action.blockIds);
          // With a data plane, the copies queued before stay ahead of the prefetch's own.
          copies.queuePending();
          const moved = manager.load(ids);
          result.prefetched += moved;
          if (copies.attached) {
            const loaded = ids.filter((id) => manager.metadata.tier[id] === Tier.Device);
            copies.queue(manager.takeCopyPlan(), 'prefetch', () =>
              copies.completed({ blockIds: loaded, issuedAt: t, completedAt: this.#parts.now() }),
            );
          }
          for (const id of ids) {
            if (manager.metadata.tier[id] === Tier.Device && !prefetched.has(id)) {
              prefetched.add(id);
              stats.prefetch.issued++;
            }
          }
          break;
        }
      }
    }
    return result;
  }

  #pin(key: string, leaf: number): boolean {
    const manager = this.#parts.manager;
    if (this.#holds.has(key)) return false;
    const m = manager.metadata;
    if (!Number.isInteger(leaf) || leaf < 0 || leaf >= manager.numBlockIds || !m.committed[leaf]) return false;
    const chain: bigint[] = [];
    for (let id = leaf; id >= 0; id = m.parent[id]!) chain.push(m.hash[id]!);
    chain.reverse();
    const holdId = this.#nextHold++;
    const held = manager.admit(holdId, BigUint64Array.from(chain), chain.length * manager.blockSize);
    if (!held) return false;
    this.#holds.set(key, holdId);
    return true;
  }

  #unpin(key: string): boolean {
    const holdId = this.#holds.get(key);
    if (holdId === undefined) return false;
    this.#parts.manager.release(holdId);
    this.#holds.delete(key);
    return true;
  }
}

/**
 * The ids that name a cached block. The merged action's own array when all
 * do (the usual case): callers only read it, during the call.
 */
function liveIds(manager: BlockManagerLike, ids: Int32Array): Int32Array {
  const n = manager.numBlockIds;
  const tier = manager.metadata.tier;
  const live = (id: number) => id >= 0 && id < n && tier[id] !== Tier.Free;
  for (let i = 0; i < ids.length; i++) if (!live(ids[i]!)) return keepIds(ids, live);
  return ids;
}
