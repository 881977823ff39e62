/**
 * Hints from frameworks: the advisory verbs the vLLM and SGLang
 * agentic-caching proposals converge on (share, pin, retain for a TTL,
 * prefetch, demote), reported as `hint` framework events and turned into
 * actions, always bounded:
 *
 * - every hold (share, pin, retain) expires after its TTL (the hint's
 *   `ttlSeconds`, else the default, never more than `maxTtlSeconds`) and
 *   is released then; a pin also goes at its session's end, a share or a
 *   retain outlives it;
 * - a workload holds at most `maxPinnedShare` of the device tier's blocks
 *   through hints: a hold that would take it past that is refused and
 *   counted (info().refusedByCap).
 *
 * Composition: primitives observe and act (pin, unpin, prefetch, demote);
 * it scores nothing and claims no exclusive action, so it composes with
 * any policy; its keys ("hint:...") never meet another policy's pins.
 */
import { checkOptionsObject, describeValue } from '../../util/check.js';
import { cachedChain } from '../chain.js';
import type { Action, HintEvent, Policy, PolicyComposition, PolicyContext, RuntimeEvent } from '../types.js';

export interface HintsPolicyOptions {
  /** Fraction of the device tier's blocks one workload may hold through hints, in [0, 1] (default 0.25). */
  maxPinnedShare?: number;
  /** TTL of a hold whose hint gives none, seconds > 0 (default 30). */
  defaultTtlSeconds?: number;
  /** The longest any hold lasts, seconds > 0 (default 600). */
  maxTtlSeconds?: number;
}

export const HINTS_COMPOSITION: PolicyComposition = { primitives: ['observe', 'act'] };

interface Hold {
  key: string;
  workload: string;
  /** The session of a pin (released at its end); null for share and retain. */
  session: string | null;
  hashes: BigUint64Array;
  expiresAt: number;
  /** Device blocks it holds, once pinned; null until act() pins it. */
  blocks: Int32Array | null;
}

function positive(value: unknown, name: string, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0)) throw new RangeError(`hints policy: options.${name} must be a number > 0, got ${describeValue(v)}`);
  return v;
}

/**
 * Creates the hints policy.
 *
 * @throws TypeError / RangeError naming the option.
 */
export function createHintsPolicy(options?: HintsPolicyOptions): Policy {
  const o = checkOptionsObject(options, 'hints policy', ['maxPinnedShare', 'defaultTtlSeconds', 'maxTtlSeconds']);
  const share = o['maxPinnedShare'] ?? 0.25;
  if (typeof share !== 'number' || !(share >= 0 && share <= 1)) {
    throw new RangeError(`hints policy: options.maxPinnedShare must be a fraction in [0, 1], got ${describeValue(share)}`);
  }
  const maxTtl = positive(o['maxTtlSeconds'], 'maxTtlSeconds', 600);
  const defaultTtl = Math.min(maxTtl, positive(o['defaultTtlSeconds'], 'defaultTtlSeconds', 30));

  let context: PolicyContext | undefined;
  const holds = new Map<string, Hold>();
  /** Holds whose pin went out and must be released at the next act. */
  const unpins: string[] = [];
  const moves: { verb: 'prefetch' | 'demote'; hashes: BigUint64Array }[] = [];
  const counts = { hints: 0, pinned: 0, refusedByCap: 0, expired: 0, released: 0, prefetched: 0, demoted: 0, unresolved: 0 };

  const drop = (key: string): void => {
    const hold = holds.get(key);
    if (!hold) return;
    holds.delete(key);
    if (hold.blocks !== null) unpins.push(key);
  };

  /** The prefix a hint names: its hashes, or the agent's last prompt in the session. */
  const target = (e: HintEvent): BigUint64Array | undefined => e.hashes ?? context?.lastPrompt(e.session, e.agent.agent);

  /** Device blocks the workload's pinned holds keep, as a set (shared ancestors count once). */
  const heldBlocks = (workload: string): Set<number> => {
    const held = new Set<number>();
    for (const h of holds.values()) if (h.workload === workload && h.blocks !== null) for (const id of h.blocks) held.add(id);
    return held;
  };

  const onHint = (e: HintEvent): void => {
    counts.hints++;
    const hashes = target(e);
    if (hashes === undefined || hashes.length === 0) {
      counts.unresolved++;
      return;
    }
    const leaf = hashes[hashes.length - 1]!.toString(16);
    const workload = e.agent.workload;
    switch (e.verb) {
      case 'prefetch':
      case 'demote':
        moves.push({ verb: e.verb, hashes });
        return;
      case 'unpin':
        for (const key of [`hint:share:${workload}:${leaf}`, `hint:pin:${e.session}:${leaf}`, `hint:retain:${e.session}:${leaf}`]) {
          if (holds.has(key)) counts.released++;
          drop(key);
        }
        return;
      default: {
        const ttl = Math.min(maxTtl, e.ttlSeconds ?? defaultTtl);
        const key = e.verb === 'share' ? `hint:share:${workload}:${leaf}` : `hint:${e.verb}:${e.session}:${leaf}`;
        const existing = holds.get(key);
        // Repeating a hint extends its hold; it never shortens one.
        if (existing) existing.expiresAt = Math.max(existing.expiresAt, e.time + ttl);
        else holds.set(key, { key, workload, session: e.verb === 'pin' ? e.session : null, hashes, expiresAt: e.time + ttl, blocks: null });
      }
    }
  };

  return {
    name: 'hints',
    composition: HINTS_COMPOSITION,
    attach(attached: PolicyContext): void {
      context = attached;
    },
    observe(event: RuntimeEvent): void {
      if (event.type === 'hint') onHint(event);
      else if (event.type === 'session.end') {
        for (const h of [...holds.values()]) if (h.session === event.session) drop(h.key);
      }
    },
    act(now: number): Action[] {
      if (context === undefined) throw new RangeError('hints policy: act() called before attach()');
      const manager = context.manager;
      const actions: Action[] = [];
      for (const h of [...holds.values()]) {
        if (now >= h.expiresAt) {
          counts.expired++;
          drop(h.key);
        }
      }
      actions.push(...unpins.map((key): Action => ({ type: 'unpin', key })));
      unpins.length = 0;
      const cap = Math.floor(share * manager.deviceBlocks);
      for (const h of holds.values()) {
        if (h.blocks !== null) continue;
        const { device } = cachedChain(manager, h.hashes);
        if (device.length === 0) continue; // nothing on device yet: try again at the next act
        const held = heldBlocks(h.workload);
        let added = 0;
        for (const id of device) if (!held.has(id)) added++;
        if (held.size + added > cap) {
          counts.refusedByCap++;
          holds.delete(h.key);
          continue;
        }
        h.blocks = device.slice();
        counts.pinned++;
        actions.push({ type: 'pin', key: h.key, leafBlockId: device[device.length - 1]! });
      }
      for (const move of moves) {
        const chain = cachedChain(manager, move.hashes);
        if (move.verb === 'prefetch' && chain.host.length > 0) {
          counts.prefetched += chain.host.length;
          actions.push({ type: 'prefetch', blockIds: chain.host.slice() });
        } else if (move.verb === 'demote' && chain.device.length > 0) {
          counts.demoted += chain.device.length;
          // Deepest first: a block with cached children on the device is not a leaf yet.
          actions.push({ type: 'demote', blockIds: chain.device.slice().reverse() });
        }
      }
      moves.length = 0;
      return actions;
    },
    info(): Record<string, unknown> {
      const byWorkload: Record<string, number> = {};
      for (const h of holds.values()) if (h.blocks !== null) byWorkload[h.workload] = heldBlocks(h.workload).size;
      return { holds: holds.size, pinnedBlocks: byWorkload, ...counts };
    },
  };
}
