/**
 * Shared learning: CacheSage's per-workload transition counts, merged
 * across replicas through Redis.
 *
 * Each replica publishes, per workload, the counts it observed itself (its
 * TransitionModel snapshot, decayed on its own clock) into the workload's
 * hash under its replica id, with a version that only grows. A replica
 * predicting for a workload uses `own counts + the latest snapshot of every
 * other replica + alpha`:
 *
 * - its own entry is skipped when pulling (its counts are already local);
 * - a replica publishes only what it observed, never what it merged, so a
 *   count enters the sum once however often replicas exchange;
 * - a newer snapshot of a peer replaces its older one (never added to it);
 * - snapshots that fail the model's own check are skipped and counted.
 *
 * A replica that never served a workload thus predicts exactly what the
 * replicas that did would predict together. Redis being down leaves every
 * replica with what it had; nothing here throws at run time or rejects.
 */
import type { TransitionSharing } from '../policies/cachesage/policy.js';
import { TransitionModel, type TransitionSnapshot } from '../policies/cachesage/transitions.js';
import { checkInt, checkOptionsObject, describeValue, isRecord } from '../util/check.js';
import { LearningKeys } from './keys.js';
import type { RedisClient } from './redis.js';

export interface TransitionExchangeOptions {
  /** This replica's id: unique among replicas sharing a namespace. */
  replica: string;
  /** Key prefix; default 'cachesage'. */
  namespace?: string;
  /** Peers' entries older than this many seconds are ignored (a replica gone); default null: none are. */
  maxAgeSeconds?: number | null;
}

/** One replica's entry for one workload, as stored (JSON) in the workload's hash. */
export interface SharedTransitionsEntry {
  format: 'cachesage.shared-transitions';
  version: number;
  replica: string;
  publishedAt: number;
  model: TransitionSnapshot;
}

export interface TransitionExchangeStats {
  published: number;
  /** Workloads whose peer counts were (re)merged. */
  merged: number;
  /** Peer entries skipped because they failed the check. */
  malformed: number;
  errors: number;
  lastError: string | null;
}

const OPTIONS = ['replica', 'namespace', 'maxAgeSeconds'];
const FORMAT = 'cachesage.shared-transitions';

export class TransitionExchange {
  readonly replica: string;
  readonly keys: LearningKeys;
  readonly stats: TransitionExchangeStats = { published: 0, merged: 0, malformed: 0, errors: 0, lastError: null };
  readonly #client: RedisClient;
  readonly #policy: TransitionSharing;
  readonly #maxAgeMs: number | null;
  #version = 0;
  // Per workload, the peer versions last merged: an unchanged set is not merged again.
  readonly #mergedFrom = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;

  /** @throws TypeError / RangeError naming a bad argument. */
  constructor(client: RedisClient, policy: TransitionSharing, options: TransitionExchangeOptions) {
    if (typeof client !== 'object' || client === null || typeof (client as { hset?: unknown }).hset !== 'function') {
      throw new TypeError(`TransitionExchange: client must be an ioredis client (from openRedis), got ${describeValue(client)}`);
    }
    if (typeof policy?.exportTransitions !== 'function' || typeof policy.mergePeerTransitions !== 'function') {
      throw new TypeError('TransitionExchange: policy must share transitions (a CacheSage policy)');
    }
    const o = checkOptionsObject(options, 'TransitionExchange', OPTIONS) as unknown as TransitionExchangeOptions;
    if (typeof o.replica !== 'string' || o.replica.length === 0) {
      throw new TypeError(`TransitionExchange: options.replica must be a non-empty string, got ${describeValue(o.replica)}`);
    }
    this.replica = o.replica;
    this.keys = new LearningKeys(o.namespace ?? 'cachesage');
    const age = o.maxAgeSeconds ?? null;
    this.#maxAgeMs = age === null ? null : checkInt(age, 'TransitionExchange: options.maxAgeSeconds', 1, 10 * 365 * 86400) * 1000;
    this.#client = client;
    this.#policy = policy;
  }

  /** Publishes this replica's own counts for every workload it has seen. Resolves to how many; never rejects. */
  async publish(): Promise<number> {
    const models = this.#policy.exportTransitions();
    const names = Object.keys(models);
    if (names.length === 0) return 0;
    // Wall-clock based, so a restarted replica's versions still grow.
    this.#version = Math.max(this.#version + 1, Date.now());
    const pipeline = this.#client.pipeline();
    for (const name of names) {
      const entry: SharedTransitionsEntry = { format: FORMAT, version: this.#version, replica: this.replica, publishedAt: Date.now(), model: models[name]! };
      pipeline.hset(this.keys.workload(name), this.replica, JSON.stringify(entry));
    }
    pipeline.sadd(this.keys.workloads(), ...names);
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
    } catch (error) {
      this.#failed(error);
      return 0;
    }
    this.stats.published += names.length;
    return names.length;
  }

  /**
   * Merges the other replicas' latest counts into the policy, for the given
   * workloads or every workload any replica published. Resolves to the
   * number of workloads whose peer counts changed; never rejects.
   */
  async pull(workloads?: readonly string[]): Promise<number> {
    let names: string[];
    let hashes: Array<Record<string, string>>;
    try {
      names = workloads ? [...workloads] : await this.#client.smembers(this.keys.workloads());
      const pipeline = this.#client.pipeline();
      for (const name of names) pipeline.hgetall(this.keys.workload(name));
      const results = (await pipeline.exec()) ?? [];
      hashes = results.map(([error, value]) => {
        if (error) throw error;
        return value as Record<string, string>;
      });
    } catch (error) {
      this.#failed(error);
      return 0;
    }
    let changed = 0;
    names.forEach((name, k) => {
      const peers = this.#peerEntries(hashes[k] ?? {});
      const signature = peers.map((e) => `${e.replica}@${e.version}`).join(',');
      if ((this.#mergedFrom.get(name) ?? '') === signature) return;
      this.#policy.mergePeerTransitions(name, peers.map((e) => e.model));
      this.#mergedFrom.set(name, signature);
      changed++;
    });
    this.stats.merged += changed;
    return changed;
  }

  /** publish() then pull(). */
  async sync(): Promise<number> {
    await this.publish();
    return this.pull();
  }

  /** Syncs every `intervalMs` until stop(); the timer does not keep the process alive. */
  start(intervalMs: number): void {
    checkInt(intervalMs, 'TransitionExchange.start: intervalMs', 10, 86_400_000);
    this.stop();
    this.#timer = setInterval(() => void this.sync(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Valid, fresh entries of other replicas, in replica order. */
  #peerEntries(hash: Record<string, string>): SharedTransitionsEntry[] {
    const now = Date.now();
    const entries: SharedTransitionsEntry[] = [];
    for (const replica of Object.keys(hash).sort()) {
      if (replica === this.replica) continue;
      const entry = this.#parse(hash[replica]!, replica);
      if (!entry) continue;
      if (this.#maxAgeMs !== null && now - entry.publishedAt > this.#maxAgeMs) continue;
      entries.push(entry);
    }
    return entries;
  }

  #parse(text: string, replica: string): SharedTransitionsEntry | null {
    try {
      const entry = JSON.parse(text) as unknown;
      if (!isRecord(entry) || entry.format !== FORMAT || entry.replica !== replica) throw new TypeError('not a shared-transitions entry');
      if (typeof entry.version !== 'number' || typeof entry.publishedAt !== 'number') throw new TypeError('version and publishedAt must be numbers');
      TransitionModel.fromJSON(entry.model);
      return entry as unknown as SharedTransitionsEntry;
    } catch (error) {
      this.stats.malformed++;
      this.stats.lastError = `entry of replica ${JSON.stringify(replica)}: ${(error as Error).message}`;
      return null;
    }
  }

  #failed(error: unknown): void {
    this.stats.errors++;
    this.stats.lastError = error instanceof Error ? error.message : String(error);
  }
}
