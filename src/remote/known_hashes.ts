/**
 * The block hashes a replica knows the remote tier holds, the most recently
 * confirmed kept: a bounded set whose oldest entry goes first, so a save is
 * skipped for blocks Redis already has without the set growing with the
 * run. A capacity of 0 remembers nothing (every save goes through).
 */
export class KnownHashes {
  readonly #capacity: number;
  readonly #hashes = new Set<bigint>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  has(hash: bigint): boolean {
    return this.#hashes.has(hash);
  }

  /** Confirmed in the remote tier now: kept as the newest. */
  remember(hash: bigint): void {
    if (this.#capacity === 0) return;
    this.#hashes.delete(hash);
    this.#hashes.add(hash);
    if (this.#hashes.size > this.#capacity) this.#hashes.delete(this.#hashes.values().next().value!);
  }

  /** Forget everything (the remote tier may have lost what it held). */
  clear(): void {
    this.#hashes.clear();
  }
}
