/**
 * The copy queue: once an engine attaches a data plane, the runtime runs
 * every copy plan on it in order (the calls' plans, then each prefetch on
 * the plane's overlapping path), reports finished prefetches, and keeps
 * the first failure for the next sync.
 */
import type { BlockManagerLike, CopyPlan } from '../blocks/types.js';
import type { DataPlane } from '../compute/backend.js';
import type { PrefetchCompletion } from './types.js';

export class CopyQueue {
  readonly #manager: BlockManagerLike;
  #plane: DataPlane | null = null;
  #tail: Promise<void> = Promise.resolve();
  #error: Error | null = null;
  #completions: PrefetchCompletion[] = [];

  constructor(manager: BlockManagerLike) {
    this.#manager = manager;
  }

  get attached(): boolean {
    return this.#plane !== null;
  }

  /** @throws TypeError when `plane` is not a data plane; RangeError when it is too small or one is attached. */
  attach(plane: DataPlane): void {
    if (typeof plane !== 'object' || plane === null || typeof plane.run !== 'function' || typeof plane.prefetch !== 'function') {
      throw new TypeError('attachDataPlane: plane must be a DataPlane (backend.createDataPlane)');
    }
    if (this.#plane !== null) throw new RangeError('attachDataPlane: a data plane is already attached');
    const m = this.#manager;
    if (plane.deviceBlocks < m.deviceBlocks || plane.hostBlocks < m.hostBlocks) {
      throw new RangeError(
        `attachDataPlane: the plane holds ${plane.deviceBlocks} device and ${plane.hostBlocks} host blocks; ` +
          `the block manager needs ${m.deviceBlocks} and ${m.hostBlocks}`,
      );
    }
    this.#plane = plane;
  }

  /** Queues the manager's pending copies (no-op without a plane). */
  queuePending(): void {
    if (this.#plane !== null) this.queue(this.#manager.takeCopyPlan(), 'run');
  }

  /** Queues a plan after every plan queued before it; `onDone` runs when it lands. */
  queue(plan: CopyPlan, kind: 'run' | 'prefetch', onDone?: () => void): void {
    const plane = this.#plane!;
    if (plan.srcSlot.length === 0) return;
    this.#tail = this.#tail
      .then(() => (kind === 'run' ? plane.run(plan) : plane.prefetch(plan)))
      .then(onDone)
      .catch((error: unknown) => {
        this.#error ??= error instanceof Error ? error : new Error(String(error));
      });
  }

  /** Resolves when every queued copy is done; rejects with the first that failed. */
  async drain(): Promise<void> {
    await this.#tail;
    const error = this.#error;
    this.#error = null;
    if (error !== null) throw error;
  }

  completed(completion: PrefetchCompletion): void {
    this.#completions.push(completion);
  }

  takeCompletions(): PrefetchCompletion[] {
    const done = this.#completions;
    this.#completions = [];
    return done;
  }
}
