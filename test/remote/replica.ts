/**
 * A serving replica for the remote-tier tests: a native block manager, the
 * CPU data plane and a RemoteTier over one Redis, and an "engine" whose KV
 * bytes are a pure function of the block hash, so any block can be checked.
 */
import { BlockManager } from '../../src/blocks/block_manager.js';
import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { RemoteBlockStore } from '../../src/remote/block_store.js';
import type { RedisConnection } from '../../src/remote/redis.js';
import { RemoteTier, type RemoteAdmitResult } from '../../src/remote/remote_tier.js';

export const BLOCK_SIZE = 4;
export const BYTES = 1024;

/** The KV bytes the engine computes for a block: a pure function of its hash. */
export function kvBytes(hash: bigint): Uint8Array {
  const out = new Uint8Array(BYTES);
  let x = BigInt.asUintN(64, hash ^ 0x9e3779b97f4a7c15n) | 1n;
  for (let i = 0; i < BYTES; i += 8) {
    x ^= x << 13n;
    x = BigInt.asUintN(64, x);
    x ^= x >> 7n;
    x ^= BigInt.asUintN(64, x << 17n);
    for (let k = 0; k < 8; k++) out[i + k] = Number((x >> BigInt(8 * k)) & 0xffn);
  }
  return out;
}

/** Tokens of prompt number `n`: `blocks` full blocks, distinct per n. */
export function prompt(n: number, blocks = 4): Uint32Array {
  return Uint32Array.from({ length: blocks * BLOCK_SIZE }, (_, i) => n * 1000 + i);
}

export class Replica {
  readonly manager = new BlockManager({ blockSize: BLOCK_SIZE, bytesPerBlock: BYTES, deviceBlocks: 8, hostBlocks: 4 });
  readonly plane = new CpuDataPlane({ bytesPerBlock: BYTES, deviceBlocks: 8, hostBlocks: 4 });
  readonly tier: RemoteTier;
  #nextRequest = 1;

  constructor(name: string, redis: RedisConnection, namespace: string) {
    const store = new RemoteBlockStore(redis, {
      namespace,
      model: 'test-model',
      layout: { blockSize: BLOCK_SIZE, layout: 'L1.KVH1.D128', dtype: 'float32' },
      bytesPerBlock: BYTES,
      writer: name,
    });
    this.tier = new RemoteTier(this.manager, this.plane, store);
  }

  /**
   * Serves one prompt: admits it through the remote tier, computes the
   * blocks no tier had, commits and releases. Returns the admission and
   * the request's blocks as they were on device after the engine ran.
   */
  async serve(tokens: Uint32Array): Promise<{ admitted: RemoteAdmitResult | null; hashes: BigUint64Array; deviceBytes: Uint8Array[]; blockIds: Int32Array }> {
    const id = this.#nextRequest++;
    const hashes = hashTokenBlocks(tokens, BLOCK_SIZE);
    const admitted = await this.tier.admit(id, hashes, tokens.length);
    if (!admitted) return { admitted, hashes, deviceBytes: [], blockIds: new Int32Array(0) };
    for (let i = admitted.cachedTokens / BLOCK_SIZE; i < hashes.length; i++) {
      this.plane.write('device', admitted.blockTable[i]!, kvBytes(hashes[i]!));
    }
    const blockIds = this.tier.commit(id, hashes.length);
    const deviceBytes = Array.from(hashes, (_, i) => this.plane.read('device', admitted.blockTable[i]!));
    this.manager.release(id);
    this.tier.runPlan();
    return { admitted, hashes, deviceBytes, blockIds };
  }
}
