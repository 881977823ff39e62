/**
 * The runtime's deferred work on its compute backend, between steps:
 * policies' survival tables (one batch per policy) and reclaim, which
 * demotes the lowest-ordered evictable device leaves picked by the
 * backend's hit scoring until enough device blocks are free.
 */
import { isDeviceEvictable, type HitScoringInput } from '../compute/hit_scoring.js';
import type { SurvivalWork } from '../policies/types.js';
import { drainBlockEvents, rescore, type RuntimeParts } from './parts.js';
import type { RefreshResult } from './types.js';

export class Refresher {
  readonly #parts: RuntimeParts;
  readonly #reclaimFree: number;
  #refreshing: Promise<RefreshResult> | null = null;

  constructor(parts: RuntimeParts, reclaimFree: number) {
    this.#parts = parts;
    this.#reclaimFree = reclaimFree;
  }

  /** The refresh in flight, if any. */
  get inFlight(): Promise<RefreshResult> | null {
    return this.#refreshing;
  }

  /** @throws RangeError when the backend only computes asynchronously (use refresh). */
  refreshSync(t: number): RefreshResult {
    // act() comes here on every call: enter and leave the phase without a closure.
    const previous = this.#parts.clock.enter('refresh');
    try {
      return this.#refreshSync(t);
    } finally {
      this.#parts.clock.switchTo(previous);
    }
  }

  #refreshSync(t: number): RefreshResult {
    const backend = this.#parts.selection.backend;
    // Refused before any work is taken from the policies, so none is lost.
    const { survivalSync, hitScoringSync } = backend;
    if (survivalSync === null || (this.#reclaimFree > 0 && hitScoringSync === null)) {
      throw new RangeError(`refreshSync: the ${backend.name} backend computes asynchronously; await runtime.refresh() instead`);
    }
    const result: RefreshResult = { survivalWorkloads: 0, survivalBatches: 0, reclaimed: 0 };
    for (const work of this.#pendingWork()) this.#applyWork(work, (work.compute ?? survivalSync)(work.input), result);
    const k = this.#reclaimNeeded();
    if (k > 0) result.reclaimed = this.#reclaim(hitScoringSync!(this.#hitScoringInput(), k).victims);
    this.#afterRefresh(t, result);
    return result;
  }

  /** Runs one refresh after the one in flight; `t` undefined takes the clock when it applies. */
  refresh(t: number | undefined): Promise<RefreshResult> {
    const previous = this.#refreshing ?? Promise.resolve();
    const run = previous.then(
      () => this.#refreshAsync(t),
      () => this.#refreshAsync(t),
    );
    this.#refreshing = run;
    void run
      .finally(() => {
        if (this.#refreshing === run) this.#refreshing = null;
      })
      .catch(() => undefined);
    return run;
  }

  /** act()'s refresh: synchronous where the backend can, else started and applied when done. */
  inBackground(t: number): void {
    const backend = this.#parts.selection.backend;
    if (backend.survivalSync !== null && backend.hitScoringSync !== null) {
      this.refreshSync(t);
      return;
    }
    if (this.#refreshing !== null) return;
    const stats = this.#parts.stats;
    this.refresh(undefined).catch((error: unknown) => {
      stats.refresh.failed++;
      stats.refresh.lastError = error instanceof Error ? error.message : String(error);
    });
  }

  async #refreshAsync(now: number | undefined): Promise<RefreshResult> {
    const backend = this.#parts.selection.backend;
    const result: RefreshResult = { survivalWorkloads: 0, survivalBatches: 0, reclaimed: 0 };
    // Only the synchronous parts are charged to the runtime: the backend's
    // own time runs beside the engine.
    const pending = this.#pendingWork();
    for (let next = this.#charged(() => pending.next()); !next.done; next = this.#charged(() => pending.next())) {
      const work = next.value;
      const output = work.compute ? this.#charged(() => work.compute!(work.input)) : await backend.survival(work.input);
      this.#charged(() => this.#applyWork(work, output, result));
    }
    const k = this.#charged(() => this.#reclaimNeeded());
    if (k > 0) {
      const victims = (await backend.hitScoring(this.#charged(() => this.#hitScoringInput()), k)).victims;
      result.reclaimed = this.#charged(() => this.#reclaim(victims));
    }
    this.#charged(() => this.#afterRefresh(now ?? this.#parts.now(), result));
    return result;
  }

  #charged<T>(f: () => T): T {
    const previous = this.#parts.clock.enter('refresh');
    try {
      return f();
    } finally {
      this.#parts.clock.switchTo(previous);
    }
  }

  *#pendingWork(): Generator<SurvivalWork> {
    for (const p of this.#parts.policies) {
      const work = p.pendingWork?.();
      if (work) yield work;
    }
  }

  #applyWork(work: SurvivalWork, output: Parameters<SurvivalWork['apply']>[0], result: RefreshResult): void {
    work.apply(output);
    result.survivalWorkloads += work.input.workloads;
    result.survivalBatches++;
  }

  #afterRefresh(time: number, result: RefreshResult): void {
    this.#parts.stats.refresh.runs++;
    // Nothing applied, nothing moved: no events to drain, no class changed.
    if (result.survivalBatches === 0 && result.reclaimed === 0) return;
    drainBlockEvents(this.#parts, time);
    rescore(this.#parts);
  }

  #reclaimNeeded(): number {
    if (this.#reclaimFree === 0) return 0;
    // Fresh scores first: reclaim must rank by what the policies think now.
    rescore(this.#parts);
    const manager = this.#parts.manager;
    const free = manager.deviceBlocks - manager.usedBlocks('device');
    return Math.max(0, this.#reclaimFree - free);
  }

  #hitScoringInput(): HitScoringInput {
    const manager = this.#parts.manager;
    const m = manager.metadata;
    return {
      tier: m.tier,
      committed: m.committed,
      refCount: m.refCount,
      deviceChildren: m.deviceChildren,
      lastAccess: m.lastAccess,
      score: m.score,
      scoreClass: m.scoreClass,
      classScores: manager.classScores,
    };
  }

  /**
   * Demotes (or drops, with no host tier) the victims that are still
   * evictable device leaves, except blocks a policy prefetched that no
   * request has used yet: they came up on purpose.
   */
  #reclaim(victims: Int32Array): number {
    const { manager, prefetched } = this.#parts;
    const now = this.#hitScoringInput();
    const ids = victims.filter((id) => isDeviceEvictable(now, id) && !prefetched.has(id));
    if (ids.length === 0) return 0;
    return manager.hostBlocks > 0 ? manager.demote(ids) : manager.drop(ids);
  }
}
