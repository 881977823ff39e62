/**
 * The remote tier below host: a TypeScript layer over a block manager, its
 * data plane and a {@link RemoteBlockStore}, adding two operations next to
 * the copy plans the manager already queues.
 *
 * - demote-to-remote: when the manager drops a committed block (the host
 *   tier evicting, or the device tier with no room on host), its bytes are
 *   still in their slot until the copy plan that reuses the slot runs. So
 *   {@link RemoteTier.runPlan} drains the manager's events first, copies
 *   out the bytes of every block the step removed (from where the block
 *   was when the step began), then runs the plan, then writes the copies to
 *   Redis in the background.
 * - load-from-remote: {@link RemoteTier.admit} looks a prompt up locally;
 *   for the blocks after the local prefix it reads the leading run the
 *   remote tier holds, admits the request, writes those bytes into the
 *   request's freshly allocated device blocks and commits them, so the
 *   engine computes only what no tier had.
 *
 * The native core is unchanged. The layer needs to be the only one that
 * drains the manager (takeEvents / takeCopyPlan): it hands the events on
 * through `onEvents` and runPlan's result. Redis being down costs misses
 * and skipped saves, never a failed admit or a wrong block: bytes enter a
 * device block only after the store validated them.
 */
import type { BlockEvents, BlockManagerLike, CopyPlan, RequestTags, TierName, AdmitResult } from '../blocks/types.js';
import { EventKind, Tier } from '../blocks/types.js';
import { checkInt, checkOptionsObject } from '../util/check.js';
import type { RemoteBlockStore } from './block_store.js';
import { KnownHashes } from './known_hashes.js';

/** What the remote tier needs of a data plane: CpuDataPlane has it. */
export interface BlockBytesPlane {
  readonly bytesPerBlock: number;
  execute(plan: CopyPlan): void;
  read(tier: TierName, slot: number): Uint8Array;
  write(tier: TierName, slot: number, bytes: Uint8Array): void;
}

export interface RemoteTierOptions {
  /** Called with the events of every drain, for the runtime and policies. */
  onEvents?: (events: BlockEvents) => void;
  /** Bytes of saves in flight to Redis beyond which a dropped block is not saved; default 256 MiB. */
  maxPendingBytes?: number;
  /** Hashes remembered as already remote (not saved again); default 65536. */
  knownCapacity?: number;
}

export interface RemoteAdmitResult extends AdmitResult {
  /** Blocks loaded from the remote tier into this request's device blocks (committed). */
  remoteBlocks: number;
  /** Leading prompt tokens the engine need not compute: device hits, host loads and remote loads. */
  cachedTokens: number;
}

export interface RemoteTierStats {
  /** Dropped blocks whose bytes were written to Redis (acknowledged). */
  saved: number;
  /** Dropped blocks not saved: known to be remote already. */
  alreadyRemote: number;
  /** Dropped blocks not saved because saves in flight exceeded maxPendingBytes. */
  backpressure: number;
  /** Dropped blocks whose save failed (Redis down): simply gone, as without a remote tier. */
  saveFailures: number;
  /** Blocks loaded from the remote tier into device blocks. */
  loaded: number;
}

interface Place {
  hash: bigint;
  tier: number;
  slot: number;
}

const OPTIONS = ['onEvents', 'maxPendingBytes', 'knownCapacity'];

export class RemoteTier {
  readonly manager: BlockManagerLike;
  readonly plane: BlockBytesPlane;
  readonly store: RemoteBlockStore;
  readonly stats: RemoteTierStats = { saved: 0, alreadyRemote: 0, backpressure: 0, saveFailures: 0, loaded: 0 };
  readonly #onEvents: ((events: BlockEvents) => void) | null;
  readonly #maxPendingBytes: number;
  // Where each committed block's bytes are as of the last runPlan.
  readonly #places = new Map<number, Place>();
  // Insertion-ordered, so the oldest is forgotten first.
  readonly #known: KnownHashes;
  readonly #pending = new Set<Promise<void>>();
  #pendingBytes = 0;
  #epoch: number;

  /** @throws TypeError / RangeError naming a mismatch between the three parts or a bad option. */
  constructor(manager: BlockManagerLike, plane: BlockBytesPlane, store: RemoteBlockStore, options: RemoteTierOptions = {}) {
    const o = checkOptionsObject(options, 'RemoteTier', OPTIONS) as RemoteTierOptions;
    if (manager.bytesPerBlock !== plane.bytesPerBlock || plane.bytesPerBlock !== store.bytesPerBlock) {
      throw new RangeError(
        `RemoteTier: bytesPerBlock differs: manager ${manager.bytesPerBlock}, data plane ${plane.bytesPerBlock}, store ${store.bytesPerBlock}`,
      );
    }
    if (manager.blockSize !== store.layout.blockSize) {
      throw new RangeError(`RemoteTier: the manager's blockSize ${manager.blockSize} differs from the store layout's ${store.layout.blockSize}`);
    }
    if (o.onEvents !== undefined && typeof o.onEvents !== 'function') throw new TypeError('RemoteTier: options.onEvents must be a function');
    this.manager = manager;
    this.plane = plane;
    this.store = store;
    this.#onEvents = o.onEvents ?? null;
    this.#maxPendingBytes = checkInt(o.maxPendingBytes ?? 256 * 1024 * 1024, 'RemoteTier: options.maxPendingBytes', 0, Number.MAX_SAFE_INTEGER);
    this.#known = new KnownHashes(checkInt(o.knownCapacity ?? 65536, 'RemoteTier: options.knownCapacity', 0, 1 << 24));
    this.#epoch = store.epoch();
    const m = manager.metadata;
    for (let id = 0; id < manager.numBlockIds; id++) this.#record(id, m);
  }

  /**
   * Runs the manager's queued copy plan, saving the bytes of the blocks the
   * queued changes dropped to the remote tier first. Call it after every
   * manager call that may evict (admit, append, evict, load), as one would
   * call the data plane's execute. Returns the drained events.
   */
  runPlan(): BlockEvents {
    const events = this.manager.takeEvents();
    const plan = this.manager.takeCopyPlan();
    if (this.store.epoch() !== this.#epoch) {
      // The server came back, perhaps empty: what was known to be there may not be.
      this.#epoch = this.store.epoch();
      this.forgetRemote();
    }
    const saves: Array<{ hash: bigint; bytes: Uint8Array }> = [];
    for (let i = 0; i < events.kind.length; i++) {
      if (events.kind[i] !== EventKind.Removed) continue;
      const id = events.block[i]!;
      const hash = events.hash[i]!;
      const place = this.#places.get(id);
      this.#places.delete(id);
      // Committed in this same step and dropped before its place was seen: nothing to copy from.
      if (!place || place.hash !== hash) continue;
      if (this.#known.has(hash)) {
        this.stats.alreadyRemote++;
        continue;
      }
      if (this.#pendingBytes + this.plane.bytesPerBlock > this.#maxPendingBytes) {
        this.stats.backpressure++;
        continue;
      }
      // A copy, taken before the plan can overwrite the slot.
      saves.push({ hash, bytes: this.plane.read(place.tier === Tier.Device ? 'device' : 'host', place.slot) });
      this.#pendingBytes += this.plane.bytesPerBlock;
    }
    if (plan.srcSlot.length > 0) this.plane.execute(plan);
    const m = this.manager.metadata;
    for (let i = 0; i < events.block.length; i++) this.#record(events.block[i]!, m);
    if (saves.length > 0) this.#save(saves);
    if (events.kind.length > 0) this.#onEvents?.(events);
    return events;
  }

  /**
   * Admits a request like BlockManager.admit, with the remote tier as a
   * third place to find its prefix. Resolves to null, changing nothing,
   * when the device tier cannot hold the request; never rejects for a
   * Redis failure (the blocks are then simply computed).
   */
  async admit(requestId: number, hashes: BigUint64Array, numTokens: number, tags?: RequestTags): Promise<RemoteAdmitResult | null> {
    if (!(hashes instanceof BigUint64Array)) throw new TypeError('RemoteTier.admit: hashes must be a BigUint64Array');
    const local = hashes.length <= this.manager.numBlockIds ? this.manager.lookup(hashes) : null;
    const localBlocks = local ? local.deviceBlocks + local.hostBlocks : 0;
    const remoteStart = localBlocks;
    const remote = remoteStart < hashes.length ? await this.store.getPrefix(hashes.subarray(remoteStart)) : [];

    const admitted = this.manager.admit(requestId, hashes, numTokens, tags);
    if (admitted === null) return null;
    this.runPlan();
    const bs = this.manager.blockSize;
    const cachedBlocks = admitted.cachedDeviceTokens / bs + admitted.loadedBlocks;
    // The local prefix may have changed while Redis answered: use the remote
    // bytes only where they continue the prefix admitted now.
    let next = cachedBlocks;
    if (next >= remoteStart) {
      while (next < remoteStart + remote.length && next < hashes.length) {
        this.plane.write('device', admitted.blockTable[next]!, remote[next - remoteStart]!);
        this.#known.remember(hashes[next]!);
        next++;
      }
    }
    const remoteBlocks = next - cachedBlocks;
    if (remoteBlocks > 0) {
      this.manager.commit(requestId, next);
      this.runPlan();
      this.stats.loaded += remoteBlocks;
    }
    return { ...admitted, remoteBlocks, cachedTokens: Math.min(numTokens, next * bs) };
  }

  /** BlockManager.commit, then a drain, so the committed blocks' places are known when they are dropped. */
  commit(requestId: number, numBlocks: number): Int32Array {
    const ids = this.manager.commit(requestId, numBlocks);
    this.runPlan();
    return ids;
  }

  /**
   * Writes committed blocks to the remote tier now, without waiting for
   * them to be dropped (a block other replicas are about to want, say).
   * Resolves to the number written; blocks not committed are skipped.
   */
  async share(blockIds: Int32Array): Promise<number> {
    if (!(blockIds instanceof Int32Array)) throw new TypeError('RemoteTier.share: blockIds must be an Int32Array');
    this.runPlan();
    const hashes: bigint[] = [];
    const blocks: Uint8Array[] = [];
    for (const id of blockIds) {
      const place = this.#places.get(id);
      if (!place || this.#known.has(place.hash)) continue;
      hashes.push(place.hash);
      blocks.push(this.plane.read(place.tier === Tier.Device ? 'device' : 'host', place.slot));
    }
    if (hashes.length === 0) return 0;
    const written = await this.store.put(hashes, blocks);
    if (written === hashes.length) for (const hash of hashes) this.#known.remember(hash);
    return written;
  }

  /** Waits for the saves in flight. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Forgets which hashes are remote (after the server lost its data, say): they are saved again when dropped. */
  forgetRemote(): void {
    this.#known.clear();
  }

  #save(saves: Array<{ hash: bigint; bytes: Uint8Array }>): void {
    const bytes = saves.length * this.plane.bytesPerBlock;
    const write = this.store.put(saves.map((s) => s.hash), saves.map((s) => s.bytes)).then(
      (committed) => {
        // put() resolves with a count, not which: all or none is the common case, and a partial
        // success only costs a later re-save.
        if (committed === saves.length) for (const s of saves) this.#known.remember(s.hash);
        this.stats.saved += committed;
        this.stats.saveFailures += saves.length - committed;
      },
      () => {
        this.stats.saveFailures += saves.length;
      },
    );
    const tracked = write.finally(() => {
      this.#pendingBytes -= bytes;
      this.#pending.delete(tracked);
    });
    this.#pending.add(tracked);
  }


  #record(id: number, m: BlockManagerLike['metadata']): void {
    if (m.tier[id] !== Tier.Free && m.committed[id]) this.#places.set(id, { hash: m.hash[id]!, tier: m.tier[id]!, slot: m.slot[id]! });
    else this.#places.delete(id);
  }
}
