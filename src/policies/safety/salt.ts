/**
 * Tenant isolation at the runtime's edge: the block hashes of a workload a
 * policy isolates are salted with that workload's secret before the block
 * manager sees them, so its blocks never match another workload's, even
 * for identical tokens, while its own requests share among themselves as
 * before. A block hash is already a hash of its whole prefix, so salting
 * each hash on its own keeps equal prefixes equal within the workload.
 */
/** What the salter reads of an engine's admit request (the runtime's AdmitRequest has these and more). */
interface SaltableRequest {
  requestId: number;
  hashes: BigUint64Array;
  agent?: { workload: string };
}
import type { Policy } from '../types.js';

const MASK = (1n << 64n) - 1n;

/** splitmix64's finalizer: a bijection on 64 bits that spreads every input bit. */
export function mix64(x: bigint): bigint {
  let z = x & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

/** The hashes of a chain as an isolated workload's blocks carry them. */
export function saltHashes(hashes: BigUint64Array, salt: bigint): BigUint64Array {
  const out = new BigUint64Array(hashes.length);
  for (let i = 0; i < hashes.length; i++) out[i] = mix64(hashes[i]! ^ salt);
  return out;
}

export class HashSalter {
  readonly #policies: readonly Policy[];
  /** Each workload's salt, asked once (null: it shares). */
  readonly #salts = new Map<string, bigint | null>();
  /** The salt of each admitted request of an isolated workload, for the hashes its decode reports. */
  readonly #requests = new Map<number, bigint>();

  private constructor(policies: readonly Policy[]) {
    this.#policies = policies;
  }

  /** A salter over the policies that salt, or null when none does (the runtime then skips it). */
  static of(policies: readonly Policy[]): HashSalter | null {
    const salting = policies.filter((p) => p.saltOf !== undefined);
    return salting.length === 0 ? null : new HashSalter(salting);
  }

  /** The workload's salt; null when it shares. */
  saltOf(workload: string): bigint | null {
    let salt = this.#salts.get(workload);
    if (salt === undefined) {
      salt = null;
      for (const p of this.#policies) {
        salt = p.saltOf!(workload);
        if (salt !== null) break;
      }
      this.#salts.set(workload, salt);
    }
    return salt;
  }

  /**
   * Admits `request` through `admit` with its hashes salted when its
   * workload is isolated. A malformed request goes through as given, for
   * admit to refuse by name; an untagged one has no workload and shares.
   */
  admit<R extends SaltableRequest, D>(request: R, admit: (request: R) => D | null): D | null {
    const workload = typeof request === 'object' && request !== null ? request.agent?.workload : undefined;
    const salt = typeof workload === 'string' && request.hashes instanceof BigUint64Array ? this.saltOf(workload) : null;
    if (salt === null) return admit(request);
    const decision = admit({ ...request, hashes: saltHashes(request.hashes, salt) });
    if (decision !== null) this.#requests.set(request.requestId, salt);
    return decision;
  }

  /** A chain of `workload`'s, as its blocks carry it (a hint names blocks by their unsalted hashes). */
  chainOf(workload: string, hashes: BigUint64Array): BigUint64Array {
    const salt = this.saltOf(workload);
    return salt === null ? hashes : saltHashes(hashes, salt);
  }

  /** The hashes a decode of `requestId` reports, salted as its prompt was. */
  decode(requestId: number, hashes: BigUint64Array): BigUint64Array {
    const salt = this.#requests.get(requestId);
    return salt === undefined || !(hashes instanceof BigUint64Array) ? hashes : saltHashes(hashes, salt);
  }

  released(requestId: number): void {
    this.#requests.delete(requestId);
  }
}
