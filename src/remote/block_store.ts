/**
 * Content-addressed KV blocks in Redis: the remote tier's storage.
 *
 * Write protocol: a block's bytes go to its `:data` key first; only once
 * Redis has acknowledged them is its `:meta` key (the commit record:
 * format version, length, XXH64 checksum, writer, time) written. A reader
 * looks for the commit record first and trusts bytes only through it, and
 * checks them against it (length and checksum; records of format 1, with a
 * CRC-32, are still read), so it never uses a torn, missing or foreign value: bytes without a record are an unfinished write, a record
 * without matching bytes (expired, evicted, overwritten by a different
 * layout's writer) is a miss.
 *
 * Nothing here throws at run time or rejects: a Redis error, a timeout or
 * a refused connection makes a read a miss and a write a no-op, counted in
 * {@link RemoteBlockStore.stats}.
 */
import { crc32 } from 'node:zlib';

import { xxh64 } from '../blocks/native_hash.js';
import { checkLayout, RemoteKeys, type KvLayout } from './keys.js';
import type { RedisClient, RedisConnection } from './redis.js';
import { checkInt, checkOptionsObject, describeValue } from '../util/check.js';

export interface RemoteBlockStoreOptions {
  /** Prefix of every key; default 'cachesage'. */
  namespace?: string;
  /** The model's name; blocks of different models never mix. */
  model: string;
  layout: KvLayout;
  /** Bytes per block; a stored value of any other length is refused on read. */
  bytesPerBlock: number;
  /** Names the writer in commit records (a replica id); default 'cachesage'. */
  writer?: string;
  /** Seconds a block lives; default null (until Redis evicts it: run it with a maxmemory policy). */
  ttlSeconds?: number | null;
}

const OPTIONS = ['namespace', 'model', 'layout', 'bytesPerBlock', 'writer', 'ttlSeconds'];
// Format 2 sums with XXH64 (native, ~3x the speed of zlib's CRC-32, which
// held writes to 0.77 of a plain SET); format 1 records, with a CRC-32, are
// still read.
const FORMAT = 2;
const FORMAT_CRC32 = 1;
// Bytes outlive their commit record, so that a record never points at bytes that expired first.
const DATA_TTL_MARGIN_MS = 60_000;

/** The commit record of one block, as stored (JSON) under its `:meta` key. */
export interface BlockCommitRecord {
  /** 2 (written now, with `xxh64`) or 1 (written before, with `crc32`). */
  v: number;
  len: number;
  /** XXH64 of the bytes, seed 0, 16 lower-case hex digits (format 2). */
  xxh64?: string;
  /** CRC-32 of the bytes (format 1). */
  crc32?: number;
  writer: string;
  at: number;
}

/** The checksum a format-2 record carries for `bytes`. */
export function blockChecksum(bytes: Uint8Array): string {
  return xxh64(bytes).toString(16).padStart(16, '0');
}

export interface RemoteBlockStoreStats {
  /** Blocks committed (bytes and record both acknowledged). */
  written: number;
  /** Blocks whose write failed or was cut short: no record, so invisible to readers. */
  writeFailures: number;
  lookups: number;
  hits: number;
  misses: number;
  /** Records found whose bytes were missing, short or failed the checksum: counted and missed. */
  invalid: number;
  /** Commands that failed (server down, timeout). */
  errors: number;
  lastError: string | null;
}

export class RemoteBlockStore {
  readonly keys: RemoteKeys;
  readonly bytesPerBlock: number;
  readonly layout: KvLayout;
  readonly model: string;
  readonly #client: RedisClient;
  readonly #epoch: () => number;
  readonly #writer: string;
  readonly #ttlMs: number | null;
  readonly stats: RemoteBlockStoreStats = {
    written: 0,
    writeFailures: 0,
    lookups: 0,
    hits: 0,
    misses: 0,
    invalid: 0,
    errors: 0,
    lastError: null,
  };

  /**
   * `redis` is a connection from openRedis (preferred: the store then knows
   * when the server came back, possibly empty) or a bare ioredis client.
   *
   * @throws TypeError / RangeError naming a bad option.
   */
  constructor(redis: RedisConnection | RedisClient, options: RemoteBlockStoreOptions) {
    // An ioredis client has a client() method (the CLIENT command): a connection is told apart by its epoch.
    const connection = typeof (redis as Partial<RedisConnection> | null)?.epoch === 'function' ? (redis as RedisConnection) : null;
    const client = connection ? connection.client : (redis as RedisClient);
    if (typeof client !== 'object' || client === null || typeof (client as { set?: unknown }).set !== 'function') {
      throw new TypeError(`RemoteBlockStore: redis must be a connection from openRedis or an ioredis client, got ${describeValue(client)}`);
    }
    const o = checkOptionsObject(options, 'RemoteBlockStore', OPTIONS) as unknown as RemoteBlockStoreOptions;
    this.#client = client;
    this.#epoch = connection ? connection.epoch : () => 0;
    this.layout = checkLayout(o.layout, 'RemoteBlockStore: options.layout');
    this.model = o.model;
    this.keys = new RemoteKeys(o.namespace ?? 'cachesage', o.model, this.layout);
    this.bytesPerBlock = checkInt(o.bytesPerBlock, 'RemoteBlockStore: options.bytesPerBlock', 1, 512 * 1024 * 1024);
    this.#writer = o.writer ?? 'cachesage';
    if (typeof this.#writer !== 'string') throw new TypeError('RemoteBlockStore: options.writer must be a string');
    const ttl = o.ttlSeconds ?? null;
    this.#ttlMs = ttl === null ? null : checkInt(ttl, 'RemoteBlockStore: options.ttlSeconds', 1, 10 * 365 * 86400) * 1000;
  }

  /** Bumps each time the connection became ready again (a restarted server may have lost every block). */
  epoch(): number {
    return this.#epoch();
  }

  /**
   * Writes blocks (bytes first, then each one's commit record). Resolves to
   * the number committed; never rejects.
   *
   * Rejects (TypeError / RangeError) only for arguments of the wrong shape or length.
   */
  async put(hashes: BigUint64Array | readonly bigint[], blocks: readonly Uint8Array[]): Promise<number> {
    this.#checkHashes(hashes, 'put');
    if (!Array.isArray(blocks) || blocks.length !== hashes.length) {
      throw new RangeError(`RemoteBlockStore.put: ${hashes.length} hashes but ${Array.isArray(blocks) ? blocks.length : describeValue(blocks)} blocks`);
    }
    blocks.forEach((b, i) => {
      if (!(b instanceof Uint8Array) || b.length !== this.bytesPerBlock) {
        throw new RangeError(`RemoteBlockStore.put: blocks[${i}] must be a Uint8Array of ${this.bytesPerBlock} bytes (bytesPerBlock)`);
      }
    });
    // Every data SET is queued at once; a block's checksum is computed when
    // Redis acknowledges its bytes, so that CPU work overlaps the transfer
    // of the blocks after it, and its record follows its own bytes.
    const commits = blocks.map((bytes, i) =>
      this.#set(this.keys.data(BigInt(hashes[i]!)), asBuffer(bytes), DATA_TTL_MARGIN_MS).then((ok) => {
        if (!ok) return false;
        const record: BlockCommitRecord = { v: FORMAT, len: bytes.length, xxh64: blockChecksum(bytes), writer: this.#writer, at: Date.now() };
        return this.#set(this.keys.meta(BigInt(hashes[i]!)), JSON.stringify(record), 0);
      }),
    );
    const results = await Promise.all(commits);
    const committed = results.filter(Boolean).length;
    this.stats.written += committed;
    this.stats.writeFailures += results.length - committed;
    return committed;
  }

  /** Each block's validated bytes, or null (absent, invalid, or Redis unavailable). Never rejects. */
  async get(hashes: BigUint64Array | readonly bigint[]): Promise<(Buffer | null)[]> {
    this.#checkHashes(hashes, 'get');
    const records = await this.#records(hashes);
    this.#counted(records.length, records.filter((r) => r === null).length);
    return Promise.all(records.map((record, i) => (record ? this.#bytes(BigInt(hashes[i]!), record) : null)));
  }

  /**
   * The leading run of a prompt's blocks (hashes parent first) that the
   * remote tier holds, with their validated bytes: only a prefix can be
   * reused, so the bytes after the first miss are never fetched.
   */
  async getPrefix(hashes: BigUint64Array | readonly bigint[]): Promise<Buffer[]> {
    this.#checkHashes(hashes, 'getPrefix');
    const records = await this.#records(hashes);
    let run = 0;
    while (run < records.length && records[run]) run++;
    // Blocks after the first miss are not asked for: they could not be used.
    this.#counted(Math.min(records.length, run + 1), run < records.length ? 1 : 0);
    const bytes = await Promise.all(records.slice(0, run).map((record, i) => this.#bytes(BigInt(hashes[i]!), record!)));
    const valid = bytes.findIndex((b) => b === null);
    return (valid < 0 ? bytes : bytes.slice(0, valid)) as Buffer[];
  }

  /** How many leading blocks have a commit record (no bytes are read). Never rejects. */
  async prefixLength(hashes: BigUint64Array | readonly bigint[]): Promise<number> {
    this.#checkHashes(hashes, 'prefixLength');
    const records = await this.#records(hashes);
    const miss = records.findIndex((r) => r === null);
    return miss < 0 ? records.length : miss;
  }

  #counted(lookups: number, misses: number): void {
    this.stats.lookups += lookups;
    this.stats.misses += misses;
  }

  async #records(hashes: BigUint64Array | readonly bigint[]): Promise<(BlockCommitRecord | null)[]> {
    if (hashes.length === 0) return [];
    let raw: (string | null)[];
    try {
      raw = await this.#client.mget(Array.from(hashes, (h) => this.keys.meta(BigInt(h))));
    } catch (error) {
      this.#failed(error);
      raw = new Array<null>(hashes.length).fill(null);
    }
    return raw.map((text) => (text === null ? null : this.#parseRecord(text)));
  }

  #parseRecord(text: string): BlockCommitRecord | null {
    try {
      const r = JSON.parse(text) as BlockCommitRecord;
      if (r !== null && typeof r === 'object' && r.len === this.bytesPerBlock) {
        if (r.v === FORMAT && typeof r.xxh64 === 'string' && /^[0-9a-f]{16}$/.test(r.xxh64)) return r;
        if (r.v === FORMAT_CRC32 && Number.isInteger(r.crc32)) return r;
      }
    } catch {
      // Falls through: not a record this store wrote.
    }
    this.stats.invalid++;
    return null;
  }

  async #bytes(hash: bigint, record: BlockCommitRecord): Promise<Buffer | null> {
    let bytes: Buffer | null;
    try {
      bytes = await this.#client.getBuffer(this.keys.data(hash));
    } catch (error) {
      this.#failed(error);
      this.stats.misses++;
      return null;
    }
    const intact = bytes !== null && bytes.length === record.len && (record.v === FORMAT ? blockChecksum(bytes) === record.xxh64 : crc32(bytes) === record.crc32);
    if (!intact) {
      if (bytes !== null) this.stats.invalid++;
      this.stats.misses++;
      return null;
    }
    this.stats.hits++;
    return bytes;
  }

  async #set(key: string, value: Buffer | string, ttlMarginMs: number): Promise<boolean> {
    try {
      if (this.#ttlMs === null) await this.#client.set(key, value);
      else await this.#client.set(key, value, 'PX', this.#ttlMs + ttlMarginMs);
      return true;
    } catch (error) {
      this.#failed(error);
      return false;
    }
  }

  #failed(error: unknown): void {
    this.stats.errors++;
    this.stats.lastError = error instanceof Error ? error.message : String(error);
  }

  #checkHashes(hashes: unknown, op: string): void {
    if (!(hashes instanceof BigUint64Array) && !(Array.isArray(hashes) && hashes.every((h) => typeof h === 'bigint' && h >= 0n && h < 1n << 64n))) {
      throw new TypeError(`RemoteBlockStore.${op}: hashes must be a BigUint64Array or an array of unsigned 64-bit bigints`);
    }
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
