/**
 * The remote tier as a Runtime extension (RuntimeOptions.remote), for a
 * runtime whose engine is elsewhere (the sidecar): the runtime drains the
 * block manager and hands this tier its events and copy plans; the tier
 * keeps a mirror of the engine's KV bytes in a CPU data plane laid out like
 * the manager's tiers and runs every plan on it, so a block's bytes are
 * where the manager says they are.
 *
 * - The engine writes a block's bytes once it computed them
 *   ({@link writeBlock}); they enter the mirror and, write-through, the
 *   remote store, so other replicas can load them at once.
 * - demote-to-remote: a block dropped from the local tiers whose bytes the
 *   mirror holds is copied out before the plan that reuses its slot runs,
 *   and saved unless the store is known to have it.
 * - load-from-remote: {@link prepare} (async, before the runtime's admit)
 *   reads the leading run of blocks after the local prefix from the store;
 *   the runtime's admit then calls {@link admitted}, which commits the
 *   blocks that continue the prefix admitted now. Their bytes enter the
 *   mirror when the next plan has run; the engine reads them back with
 *   {@link readBlock}.
 *
 * Only bytes the engine wrote or the store validated are ever saved or
 * served: a block committed but never written is simply not shared. Redis
 * being down costs misses and skipped saves, never a failed call.
 */
import type { BlockEvents, BlockManagerLike, CopyPlan } from '../blocks/types.js';
import { EventKind, Tier } from '../blocks/types.js';
import type { AdmitDecision, RuntimeRemote } from '../runtime/types.js';
import { checkInt, checkOptionsObject } from '../util/check.js';
import type { RemoteBlockStore } from './block_store.js';
import type { BlockBytesPlane } from './remote_tier.js';
import { KnownHashes } from './known_hashes.js';

export interface RuntimeRemoteTierOptions {
  /** Bytes of saves in flight to Redis beyond which a dropped block is not saved; default 256 MiB. */
  maxPendingBytes?: number;
  /** Hashes remembered as already remote (not saved again); default 65536. */
  knownCapacity?: number;
}

export interface RuntimeRemoteTierStats {
  /** Blocks the engine wrote (writeBlock). */
  written: number;
  /** Of those, written through to the remote store (acknowledged). */
  writtenThrough: number;
  /** Dropped blocks saved to the remote store (acknowledged). */
  saved: number;
  /** Dropped blocks not saved: known to be remote already. */
  alreadyRemote: number;
  /** Dropped blocks not saved because saves in flight exceeded maxPendingBytes. */
  backpressure: number;
  /** Saves and write-throughs that failed (Redis down): the blocks stay local only. */
  saveFailures: number;
  /** Blocks admits loaded from the remote tier. */
  loaded: number;
  /** Blocks readBlock served from the mirror, and from the remote store. */
  servedLocal: number;
  servedRemote: number;
}

interface Place {
  hash: bigint;
  tier: number;
  slot: number;
}

interface Staged {
  hashes: BigUint64Array;
  /** Index of the first hash the store was asked for: the local prefix then. */
  start: number;
  blocks: Uint8Array[];
}

const OPTIONS = ['maxPendingBytes', 'knownCapacity'];

export class RuntimeRemoteTier implements RuntimeRemote {
  readonly manager: BlockManagerLike;
  readonly plane: BlockBytesPlane;
  readonly store: RemoteBlockStore;
  readonly stats: RuntimeRemoteTierStats = {
    written: 0, writtenThrough: 0, saved: 0, alreadyRemote: 0, backpressure: 0, saveFailures: 0, loaded: 0, servedLocal: 0, servedRemote: 0,
  };
  readonly #maxPendingBytes: number;
  // Where each committed block's bytes are in the mirror, as of the last plan run on it.
  readonly #places = new Map<number, Place>();
  // Hash -> block id of the blocks in #places (the manager only looks up whole chains from their root).
  readonly #byHash = new Map<bigint, number>();
  // Block id -> the hash whose bytes its mirror slot holds (written by the engine or loaded from remote).
  readonly #valid = new Map<number, bigint>();
  // Blocks the drained events touched since the last plan: their places are re-read after it.
  #touched: number[] = [];
  // Dropped blocks whose bytes are still in their slots until the next plan runs.
  #dropped: Place[] = [];
  // Remote bytes for blocks admitted since the last plan, written after it (their slots may be a copy's source until then).
  #fills: Array<{ id: number; hash: bigint; bytes: Uint8Array }> = [];
  readonly #staged = new Map<number, Staged>();
  // Insertion-ordered, so the oldest is forgotten first.
  readonly #known: KnownHashes;
  readonly #pending = new Set<Promise<void>>();
  #pendingBytes = 0;
  #epoch: number;

  /** @throws TypeError / RangeError naming a mismatch between the three parts or a bad option. */
  constructor(manager: BlockManagerLike, plane: BlockBytesPlane & { deviceBlocks: number; hostBlocks: number }, store: RemoteBlockStore, options: RuntimeRemoteTierOptions = {}) {
    const o = checkOptionsObject(options, 'RuntimeRemoteTier', OPTIONS) as RuntimeRemoteTierOptions;
    if (manager.bytesPerBlock !== plane.bytesPerBlock || plane.bytesPerBlock !== store.bytesPerBlock) {
      throw new RangeError(
        `RuntimeRemoteTier: bytesPerBlock differs: manager ${manager.bytesPerBlock}, data plane ${plane.bytesPerBlock}, store ${store.bytesPerBlock}`,
      );
    }
    if (plane.deviceBlocks < manager.deviceBlocks || plane.hostBlocks < manager.hostBlocks) {
      throw new RangeError(
        `RuntimeRemoteTier: the data plane holds ${plane.deviceBlocks} device and ${plane.hostBlocks} host blocks; the manager needs ${manager.deviceBlocks} and ${manager.hostBlocks}`,
      );
    }
    if (manager.blockSize !== store.layout.blockSize) {
      throw new RangeError(`RuntimeRemoteTier: the manager's blockSize ${manager.blockSize} differs from the store layout's ${store.layout.blockSize}`);
    }
    this.manager = manager;
    this.plane = plane;
    this.store = store;
    this.#maxPendingBytes = checkInt(o.maxPendingBytes ?? 256 * 1024 * 1024, 'RuntimeRemoteTier: options.maxPendingBytes', 0, Number.MAX_SAFE_INTEGER);
    this.#known = new KnownHashes(checkInt(o.knownCapacity ?? 65536, 'RuntimeRemoteTier: options.knownCapacity', 0, 1 << 24));
    this.#epoch = store.epoch();
    for (let id = 0; id < manager.numBlockIds; id++) this.#record(id);
  }

  // ------------------------------------------------------------ RuntimeRemote hooks

  blockEvents(events: BlockEvents): void {
    for (let i = 0; i < events.kind.length; i++) {
      const id = events.block[i]!;
      this.#touched.push(id);
      if (events.kind[i] !== EventKind.Removed) continue;
      const hash = events.hash[i]!;
      const place = this.#places.get(id);
      const valid = this.#valid.get(id) === hash;
      this.#valid.delete(id);
      // A fill for a block dropped before the next plan: its slot is someone else's now.
      if (this.#fills.length > 0) this.#fills = this.#fills.filter((f) => f.id !== id);
      // Committed after the last plan, or never written: nothing trustworthy to copy.
      if (place !== undefined && place.hash === hash && valid) this.#dropped.push(place);
    }
  }

  copyPlan(plan: CopyPlan): void {
    if (this.store.epoch() !== this.#epoch) {
      // The server came back, perhaps empty: what was known to be there may not be.
      this.#epoch = this.store.epoch();
      this.#known.clear();
    }
    const saves: Array<{ hash: bigint; bytes: Uint8Array }> = [];
    for (const place of this.#dropped) {
      if (this.#known.has(place.hash)) {
        this.stats.alreadyRemote++;
      } else if (this.#pendingBytes + this.plane.bytesPerBlock > this.#maxPendingBytes) {
        this.stats.backpressure++;
      } else {
        // A copy, taken before the plan can overwrite the slot.
        saves.push({ hash: place.hash, bytes: this.plane.read(tierName(place.tier), place.slot) });
        this.#pendingBytes += this.plane.bytesPerBlock;
      }
    }
    this.#dropped = [];
    if (plan.srcSlot.length > 0) this.plane.execute(plan);
    for (const id of this.#touched) this.#record(id);
    this.#touched = [];
    const m = this.manager.metadata;
    for (const fill of this.#fills) {
      if (m.tier[fill.id] !== Tier.Device || m.hash[fill.id] !== fill.hash) continue;
      this.plane.write('device', m.slot[fill.id]!, fill.bytes);
      this.#valid.set(fill.id, fill.hash);
    }
    this.#fills = [];
    if (saves.length > 0) this.#track(this.#put(saves, 'saved'), saves.length * this.plane.bytesPerBlock);
  }

  admitted(requestId: number, hashes: BigUint64Array, decision: AdmitDecision): number {
    const staged = this.#staged.get(requestId);
    if (staged === undefined) return 0;
    this.#staged.delete(requestId);
    // A salted (isolated) workload admits other hashes than the ones staged: it never loads shared blocks.
    if (!sameHashes(staged.hashes, hashes)) return 0;
    const bs = this.manager.blockSize;
    const cached = decision.cachedDeviceTokens / bs + decision.loadedBlocks;
    // The local prefix may have changed while Redis answered: use the remote
    // bytes only where they continue the prefix admitted now.
    if (cached < staged.start) return 0;
    const fullBlocks = Math.min(hashes.length, decision.blockIds.length);
    let next = cached;
    while (next < staged.start + staged.blocks.length && next < fullBlocks) {
      this.#fills.push({ id: decision.blockIds[next]!, hash: hashes[next]!, bytes: staged.blocks[next - staged.start]! });
      this.#known.remember(hashes[next]!);
      next++;
    }
    if (next === cached) return 0;
    this.manager.commit(requestId, next);
    this.stats.loaded += next - cached;
    return next - cached;
  }

  // ------------------------------------------------------------ the engine's side

  /**
   * Reads, for a request about to be admitted, the leading run of its
   * blocks after the local prefix that the remote store holds; the
   * runtime's admit of the same request id then uses them. Resolves to the
   * number of blocks found; never rejects for a Redis failure.
   */
  async prepare(requestId: number, hashes: BigUint64Array): Promise<number> {
    if (!(hashes instanceof BigUint64Array)) throw new TypeError('RuntimeRemoteTier.prepare: hashes must be a BigUint64Array');
    this.#staged.delete(requestId);
    if (hashes.length === 0 || hashes.length > this.manager.numBlockIds) return 0;
    const local = this.manager.lookup(hashes);
    const start = local.deviceBlocks + local.hostBlocks;
    if (start >= hashes.length) return 0;
    const blocks = await this.store.getPrefix(hashes.subarray(start));
    if (blocks.length > 0) this.#staged.set(requestId, { hashes, start, blocks });
    return blocks.length;
  }

  /** Forgets what prepare staged for a request the runtime did not admit. */
  discard(requestId: number): void {
    this.#staged.delete(requestId);
  }

  /**
   * The engine computed a committed block: its bytes enter the mirror and
   * the remote store. Resolves to whether the store took them (false:
   * Redis down; the block is still shared once it comes back and the block
   * is dropped). Null when no committed local block has this hash.
   *
   * @throws RangeError when `bytes` is not bytesPerBlock long.
   */
  async writeBlock(hash: bigint, bytes: Uint8Array): Promise<{ remote: boolean } | null> {
    if (!(bytes instanceof Uint8Array) || bytes.length !== this.plane.bytesPerBlock) {
      throw new RangeError(`writeBlock: the body must be exactly ${this.plane.bytesPerBlock} bytes (bytesPerBlock), got ${bytes.length}`);
    }
    const id = this.#placed(hash);
    if (id === null) return null;
    const place = this.#places.get(id)!;
    this.plane.write(tierName(place.tier), place.slot, bytes);
    this.#valid.set(id, hash);
    this.stats.written++;
    if (this.#known.has(hash)) return { remote: true };
    const copy = new Uint8Array(bytes);
    this.#pendingBytes += copy.length;
    const write = this.#put([{ hash, bytes: copy }], 'writtenThrough');
    this.#track(write, copy.length);
    return { remote: (await write) === 1 };
  }

  /** A block's bytes: from the mirror when a local block holds them, else from the remote store; null when neither has them. */
  async readBlock(hash: bigint): Promise<{ bytes: Uint8Array; source: 'local' | 'remote' } | null> {
    const id = this.#placed(hash);
    if (id !== null && this.#valid.get(id) === hash) {
      const place = this.#places.get(id)!;
      this.stats.servedLocal++;
      return { bytes: this.plane.read(tierName(place.tier), place.slot), source: 'local' };
    }
    const [bytes] = await this.store.get([hash]);
    if (!bytes) return null;
    this.stats.servedRemote++;
    return { bytes, source: 'remote' };
  }

  /** Waits for the saves in flight. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  // ------------------------------------------------------------ internals

  /** The id of the committed block with this hash whose place the mirror knows, or null. */
  #placed(hash: bigint): number | null {
    const id = this.#byHash.get(hash);
    return id !== undefined && this.#places.get(id)?.hash === hash ? id : null;
  }

  /** Writes blocks to the store; resolves to the number acknowledged, counted under `counter`. */
  async #put(blocks: Array<{ hash: bigint; bytes: Uint8Array }>, counter: 'saved' | 'writtenThrough'): Promise<number> {
    let committed = 0;
    try {
      committed = await this.store.put(blocks.map((b) => b.hash), blocks.map((b) => b.bytes));
    } catch {
      committed = 0;
    }
    // put() resolves with a count, not which: all or none is the common case, and a partial
    // success only costs a later re-save.
    if (committed === blocks.length) for (const b of blocks) this.#known.remember(b.hash);
    this.stats[counter] += committed;
    this.stats.saveFailures += blocks.length - committed;
    return committed;
  }

  #track(write: Promise<unknown>, bytes: number): void {
    const tracked: Promise<void> = write.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      this.#pendingBytes -= bytes;
      this.#pending.delete(tracked);
    });
    this.#pending.add(tracked);
  }


  #record(id: number): void {
    const m = this.manager.metadata;
    const old = this.#places.get(id);
    if (old !== undefined && this.#byHash.get(old.hash) === id) this.#byHash.delete(old.hash);
    if (m.tier[id] !== Tier.Free && m.committed[id]) {
      this.#places.set(id, { hash: m.hash[id]!, tier: m.tier[id]!, slot: m.slot[id]! });
      this.#byHash.set(m.hash[id]!, id);
    } else {
      this.#places.delete(id);
    }
  }
}

function tierName(tier: number): 'device' | 'host' {
  return tier === Tier.Device ? 'device' : 'host';
}

function sameHashes(a: BigUint64Array, b: BigUint64Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
