/**
 * The parts of a runtime that its modules share: the block manager, the
 * name registry, the session model, scoring (with the class book), the
 * policies, the copy queue and the counters. The Runtime facade builds one;
 * requests, actions, refresh and introspection each work on it.
 */
import { EventKind, type BlockManagerLike } from '../blocks/types.js';
import type { BackendSelection } from '../compute/backend.js';
import type { Policy, RuntimeEvent } from '../policies/types.js';
import type { CopyQueue } from './copy_queue.js';
import type { PhaseClock } from './profile.js';
import type { NameRegistry } from './names.js';
import type { Scoring } from './scoring.js';
import type { SessionBook } from './sessions.js';
import type { RuntimeRemote, RuntimeStats } from './types.js';

export interface RuntimeParts {
  readonly manager: BlockManagerLike;
  readonly registry: NameRegistry;
  readonly sessions: SessionBook;
  readonly scoring: Scoring;
  readonly policies: readonly Policy[];
  readonly copies: CopyQueue;
  readonly selection: BackendSelection;
  readonly stats: RuntimeStats;
  /** Blocks a policy prefetched that no request has used yet. */
  readonly prefetched: Set<number>;
  /** Seconds, for calls that pass no time. */
  readonly now: () => number;
  /** Where the runtime's time goes, by phase (NO_CLOCK unless the runtime profiles). */
  readonly clock: Pick<PhaseClock, 'enter' | 'switchTo'>;
  /** The tier below the runtime's own (RuntimeOptions.remote), or null. */
  readonly remote: RuntimeRemote | null;
  /**
   * Whether anything reads events: a policy that observes (engine and
   * block events) or acts (act's prefetches are tracked through block
   * events), the remote tier or the class book. When nothing does, the
   * manager records no block events, draining is skipped, and so is the
   * work done only to describe an admit to observers.
   */
  readonly eventsRead: boolean;
}

/** observe: hands an event to every policy, in priority order. */
export function emit(parts: RuntimeParts, event: RuntimeEvent): void {
  const previous = parts.clock.enter('events');
  for (const p of parts.policies) p.observe?.(event);
  parts.clock.switchTo(previous);
}

/** score: rescores what changed (see Scoring.rescore), charged to rescoring. */
export function rescore(parts: RuntimeParts, touched?: Int32Array): void {
  const previous = parts.clock.enter('rescoring');
  parts.scoring.rescore(touched);
  parts.clock.switchTo(previous);
}

/**
 * Drains the block manager's events: removed blocks leave their classes,
 * a prefetched block that leaves the device unused counts as wasted, and
 * policies observe the batch.
 */
export function drainBlockEvents(parts: RuntimeParts, time: number): void {
  if (!parts.eventsRead) return;
  const previous = parts.clock.enter('events');
  // Views valid until the next drain: every reader below reads them now.
  const events = parts.manager.takeEventViews?.() ?? parts.manager.takeEvents();
  if (events.kind.length === 0) {
    parts.clock.switchTo(previous);
    return;
  }
  // First: the tier below must see a dropped block before its slot's next copy runs.
  if (parts.remote !== null) parts.remote.blockEvents(events);
  // Only classes and unused prefetches care what left; otherwise skip the walk.
  const walk = parts.scoring.mode === 'classes' || parts.prefetched.size > 0;
  for (let i = 0; walk && i < events.kind.length; i++) {
    const kind = events.kind[i]!;
    const id = events.block[i]!;
    if (kind === EventKind.Removed) parts.scoring.classes.removed(id);
    if ((kind === EventKind.Removed || kind === EventKind.Demoted) && parts.prefetched.delete(id)) {
      parts.stats.prefetch.wasted++;
    }
  }
  emit(parts, { type: 'blocks', time, events });
  parts.clock.switchTo(previous);
}
