/**
 * Block manager benchmark.
 *
 *   npm run --silent bench:blocks -- [--json] [--quick]
 *
 * - mixed cycle (lookup + admit + commit + release) of 2k-token prompts with
 *   shared system prompts and growing per-session histories, on a device
 *   tier full of 100k cached blocks, native and reference in the same run;
 * - admitUsAt1M: median time of one admit of a 2k-token prompt with 1M
 *   blocks cached (the admit evicts to make room);
 * - copyGBs: batched block copy of 2 MiB blocks through the CPU data plane,
 *   against memcpy (TypedArray.set) of the same bytes.
 */
import { performance } from 'node:perf_hooks';

import { BlockManager } from '../src/blocks/block_manager.js';
import { CpuDataPlane } from '../src/blocks/data_plane.js';
import { ReferenceBlockManager } from '../src/blocks/reference.js';
import { Tier, type BlockManagerLike, type CopyPlan } from '../src/blocks/types.js';

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (a !== '--json' && a !== '--quick') {
    process.stderr.write(`bench:blocks: unknown flag ${a} (expected --json, --quick)\n`);
    process.exit(2);
  }
}
const json = args.has('--json');
const quick = args.has('--quick');

const BLOCK_TOKENS = 16;
const PROMPT_BLOCKS = 128; // 2048 tokens
const SYSTEM_BLOCKS = 32; // 512-token shared system prompt per workload
const HISTORY_STEP = 16; // blocks a session's history grows per call
const MAX_HISTORY = PROMPT_BLOCKS - SYSTEM_BLOCKS - HISTORY_STEP;

/** Deterministic 64-bit values (splitmix64), so every run sees the same prompts. */
class Rng {
  #state: bigint;
  constructor(seed: number) { this.#state = BigInt(seed); }
  next64(): bigint {
    this.#state = BigInt.asUintN(64, this.#state + 0x9e3779b97f4a7c15n);
    let z = this.#state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }
  int(n: number): number { return Number(this.next64() % BigInt(n)); }
}

/**
 * Prompts of 1,000 sessions over 50 workloads: [system prompt][history][new].
 * Hashes stand in for chained block hashes (unique per prefix), as an engine
 * would pass them.
 */
class PromptSource {
  readonly #rng: Rng;
  readonly #system: BigUint64Array[] = [];
  readonly #history: bigint[][] = [];
  readonly #workloadOf: number[] = [];

  constructor(seed: number, workloads = 50, sessions = 1000) {
    this.#rng = new Rng(seed);
    for (let w = 0; w < workloads; w++) this.#system.push(this.#fresh(SYSTEM_BLOCKS));
    for (let s = 0; s < sessions; s++) {
      this.#history.push([]);
      this.#workloadOf.push(s % workloads);
    }
  }

  #fresh(n: number): BigUint64Array {
    const out = new BigUint64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#rng.next64();
    return out;
  }

  /** A distinct prompt sharing nothing: used to fill the cache. */
  unique(): BigUint64Array { return this.#fresh(PROMPT_BLOCKS); }

  next(): { hashes: BigUint64Array; session: number; workload: number } {
    const session = this.#rng.int(this.#history.length);
    const workload = this.#workloadOf[session]!;
    let history = this.#history[session]!;
    if (history.length > MAX_HISTORY) history = [];
    const hashes = new BigUint64Array(PROMPT_BLOCKS);
    hashes.set(this.#system[workload]!, 0);
    for (let i = 0; i < history.length; i++) hashes[SYSTEM_BLOCKS + i] = history[i]!;
    const fresh = this.#fresh(PROMPT_BLOCKS - SYSTEM_BLOCKS - history.length);
    hashes.set(fresh, SYSTEM_BLOCKS + history.length);
    // The next call of this session extends this one by HISTORY_STEP blocks.
    this.#history[session] = Array.from(hashes.subarray(SYSTEM_BLOCKS, SYSTEM_BLOCKS + history.length + HISTORY_STEP));
    return { hashes, session, workload };
  }
}

let nextRequest = 1;

function fill(manager: BlockManagerLike, prompts: PromptSource): void {
  while (manager.usedBlocks('device') + PROMPT_BLOCKS <= manager.deviceBlocks) {
    const id = nextRequest++;
    const hashes = prompts.unique();
    if (!manager.admit(id, hashes, PROMPT_BLOCKS * BLOCK_TOKENS)) throw new Error('fill: admit refused');
    manager.commit(id, PROMPT_BLOCKS);
    manager.release(id);
  }
  manager.takeCopyPlan();
  manager.takeEvents();
}

function cycle(manager: BlockManagerLike, prompts: PromptSource): void {
  const { hashes, session, workload } = prompts.next();
  const id = nextRequest++;
  manager.lookup(hashes);
  const admitted = manager.admit(id, hashes, PROMPT_BLOCKS * BLOCK_TOKENS, { workload, agent: session % 8, session });
  if (!admitted) throw new Error('cycle: admit refused on an unpinned cache');
  manager.commit(id, PROMPT_BLOCKS);
  manager.release(id);
  manager.takeCopyPlan();
  manager.takeEvents();
}

/** Cycles per second over at least `seconds` (after `warmup` cycles). */
function cyclesPerSecond(manager: BlockManagerLike, seconds: number, warmup: number): number {
  const prompts = new PromptSource(7);
  fill(manager, prompts);
  for (let i = 0; i < warmup; i++) cycle(manager, prompts);
  let done = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    cycle(manager, prompts);
    done++;
    elapsed = (performance.now() - start) / 1000;
  } while (elapsed < seconds);
  return done / elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function admitMedianUs(blocks: number, samples: number): number {
  const manager = new BlockManager({ blockSize: BLOCK_TOKENS, deviceBlocks: blocks });
  const prompts = new PromptSource(11);
  fill(manager, prompts);
  const times: number[] = [];
  for (let i = 0; i < samples + 20; i++) {
    const { hashes, session, workload } = prompts.next();
    const id = nextRequest++;
    const start = performance.now();
    const admitted = manager.admit(id, hashes, PROMPT_BLOCKS * BLOCK_TOKENS, { workload, agent: 0, session });
    const us = (performance.now() - start) * 1000;
    if (!admitted) throw new Error('admit refused');
    if (i >= 20) times.push(us);
    manager.commit(id, PROMPT_BLOCKS);
    manager.release(id);
    manager.takeCopyPlan();
    manager.takeEvents();
  }
  return median(times);
}

function copyThroughput(reps: number): { copyGBs: number; memcpyGBs: number; bytes: number } {
  const bytesPerBlock = 2 * 1024 * 1024;
  const blocks = 64;
  const plane = new CpuDataPlane({ bytesPerBlock, deviceBlocks: blocks, hostBlocks: blocks });
  const perm = Array.from({ length: blocks }, (_, i) => i).sort((a, b) => ((a * 37) % blocks) - ((b * 37) % blocks));
  const plan: CopyPlan = {
    srcTier: new Uint8Array(blocks).fill(Tier.Device),
    srcSlot: Int32Array.from(perm),
    dstTier: new Uint8Array(blocks).fill(Tier.Host),
    dstSlot: Int32Array.from({ length: blocks }, (_, i) => i),
    stageStarts: new Int32Array([0]),
  };
  const bytes = bytesPerBlock * blocks;
  const src = new Uint8Array(bytes).fill(1);
  const dst = new Uint8Array(bytes);
  plane.execute(plan);
  dst.set(src);
  const copyTimes: number[] = [];
  const memcpyTimes: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    plane.execute(plan);
    copyTimes.push(performance.now() - t);
    t = performance.now();
    dst.set(src);
    memcpyTimes.push(performance.now() - t);
  }
  const gbs = (ms: number) => bytes / 1e9 / (ms / 1000);
  return { copyGBs: gbs(median(copyTimes)), memcpyGBs: gbs(median(memcpyTimes)), bytes };
}

const CACHED = 100_000;
const seconds = quick ? 0.5 : 3;
const nativeOpsPerSec = cyclesPerSecond(new BlockManager({ blockSize: BLOCK_TOKENS, deviceBlocks: CACHED }), seconds, 200);
const referenceOpsPerSec = cyclesPerSecond(new ReferenceBlockManager({ blockSize: BLOCK_TOKENS, deviceBlocks: CACHED }), seconds, 2);
const admitUsAt1M = admitMedianUs(quick ? 200_000 : 1_000_000, quick ? 100 : 500);
const copy = copyThroughput(quick ? 5 : 20);

const result = {
  nativeOpsPerSec: Math.round(nativeOpsPerSec),
  referenceOpsPerSec: Number(referenceOpsPerSec.toFixed(2)),
  ratio: Number((nativeOpsPerSec / referenceOpsPerSec).toFixed(1)),
  admitUsAt1M: Number(admitUsAt1M.toFixed(2)),
  copyGBs: Number(copy.copyGBs.toFixed(2)),
  memcpyGBs: Number(copy.memcpyGBs.toFixed(2)),
  copyRatio: Number((copy.copyGBs / copy.memcpyGBs).toFixed(3)),
  cachedBlocks: CACHED,
  promptTokens: PROMPT_BLOCKS * BLOCK_TOKENS,
  copyBytes: copy.bytes,
  quick,
};

if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const rows: [string, string, string][] = [
    ['mixed cycle, native (cycles/s)', String(result.nativeOpsPerSec), ''],
    ['mixed cycle, reference (cycles/s)', String(result.referenceOpsPerSec), ''],
    ['native / reference', `${result.ratio}x`, 'target >= 10x'],
    [`admit of 2k tokens at ${quick ? '200k' : '1M'} blocks (median us)`, String(result.admitUsAt1M), 'target < 10'],
    ['batched block copy (GB/s)', String(result.copyGBs), ''],
    ['memcpy of the same bytes (GB/s)', String(result.memcpyGBs), ''],
    ['copy / memcpy', String(result.copyRatio), 'target >= 0.8'],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [name, value, target] of rows) process.stdout.write(`${name.padEnd(width)}  ${value.padStart(10)}  ${target}\n`);
}
