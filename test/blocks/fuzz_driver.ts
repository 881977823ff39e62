/**
 * The N-API fuzz driver, shared by test/blocks/fuzz.test.ts (a short slice)
 * and scripts/fuzz.ts (`npm run fuzz`, a million calls). It calls every
 * entry point the addon exports with seeded random arguments, bypassing the
 * TypeScript checks: mostly sane values with some swapped for garbage, so
 * calls reach deep states and every native check meets bad input.
 *
 * What must hold, and is reported as a violation otherwise:
 * - a call returns a well-formed result or throws an Error, never anything
 *   else and never an "internal" error;
 * - a refused call leaves the state exactly as it was: every metadata array,
 *   the counters and the queued copies and events of a block manager, every
 *   pool byte of a data plane (checked against a JavaScript model of the
 *   pools) and of an engine's KV pool, the mute depth;
 * - results match the TypeScript oracles (hashes, hit scoring, survival) and
 *   the pool model (copies, reads, the zero-copy device pool);
 * - memory the caller can take away (a transferred or shrunk engine pool)
 *   is refused, never touched;
 * - the block manager's invariants hold, and metadata views of collected
 *   managers keep their bytes.
 * A crash cannot be reported from inside; scripts/fuzz.ts runs the driver in
 * child processes and counts the ones that die.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { nativeAddon, type NativeAddon, type NativeBlockManagerHandle } from '../../src/blocks/addon.js';
import { METADATA_FIELDS } from '../../src/blocks/types.js';
import { describe, describeArgs, mixArguments, Rand } from './fuzz_values.js';
import { EngineTarget } from './fuzz_engine.js';
import { CudaTargets, FunctionTargets, PlaneTarget, ReceiverTarget, type Target } from './fuzz_targets.js';

export interface FuzzOptions {
  calls: number;
  seed: number;
  /** The addon to fuzz (default: the one src/blocks/addon.ts loads). */
  addon?: NativeAddon;
  /** Chance that a call keeps every sane argument (default 0.5). */
  saneChance?: number;
  /** Stop collecting after this many violations (default 20). */
  maxViolations?: number;
}

export interface EntryStats {
  calls: number;
  rejected: number;
}

export interface FuzzReport {
  seed: number;
  calls: number;
  rejected: number;
  violations: string[];
  /** Per entry point ("NativeBlockManager#admit", "hashTokenBlocks", ...). */
  entries: Record<string, EntryStats>;
  /** What the addon exports, and which of those the driver does not know. */
  exports: string[];
  unknownExports: string[];
  cuda: { built: boolean; available: boolean };
}

/** Every export the driver fuzzes; the CUDA classes exist only in CUDA builds. */
export const KNOWN_EXPORTS = [
  'NativeBlockManager', 'NativeCpuDataPlane', 'hashTokenBlocks', 'xxh64', 'computeSurvival', 'hitScoring', 'muteStderr',
  'cudaInfo', 'NativeCudaSurvival', 'NativeCudaHitScorer', 'NativeCudaDataPlane', 'NativeEngine',
] as const;

export type Outcome = { threw: false; value: unknown } | { threw: true; error: unknown };

const HOOK_MESSAGES = /valueOf called|toPrimitive called|length read|proxy get/;

export class FuzzContext {
  readonly rand: Rand;
  readonly addon: NativeAddon;
  readonly saneChance: number;
  readonly entries = new Map<string, EntryStats>();
  readonly violations: string[] = [];
  readonly maxViolations: number;
  readonly seed: number;
  /** Index of the call being made. */
  call = 0;
  rejected = 0;

  constructor(options: FuzzOptions) {
    this.seed = options.seed;
    this.rand = new Rand(options.seed);
    this.addon = options.addon ?? nativeAddon();
    this.saneChance = options.saneChance ?? 0.5;
    this.maxViolations = options.maxViolations ?? 20;
  }

  mix(sane: readonly unknown[], extra?: () => unknown): unknown[] {
    return mixArguments(this.rand, sane, this.saneChance, extra);
  }

  violation(entry: string, args: readonly unknown[], what: string): void {
    if (this.violations.length >= this.maxViolations) return;
    this.violations.push(`seed ${this.seed} call ${this.call} ${entry}${describeArgs(args)}: ${what}`);
  }

  /**
   * One counted call; a thrown value must be an Error, and one that ran no
   * argument's hook unless `hooksAllowed` (an options object's getters).
   */
  invoke(entry: string, run: () => unknown, args: readonly unknown[], hooksAllowed = false): Outcome {
    const stats = this.entries.get(entry) ?? { calls: 0, rejected: 0 };
    this.entries.set(entry, stats);
    stats.calls++;
    try {
      return { threw: false, value: run() };
    } catch (error) {
      stats.rejected++;
      this.rejected++;
      if (!(error instanceof Error)) this.violation(entry, args, `threw a non-Error ${describe(error)}`);
      else if (/internal/i.test(error.message)) this.violation(entry, args, `threw an internal error: ${error.message}`);
      else if (!hooksAllowed && HOOK_MESSAGES.test(error.message)) this.violation(entry, args, `ran a JavaScript hook of an argument: ${error.message}`);
      return { threw: true, error };
    }
  }

  /** A call to a method of `self`. */
  method(entry: string, self: object, name: string, args: readonly unknown[]): Outcome {
    const fn = (self as Record<string, unknown>)[name] as (...a: unknown[]) => unknown;
    return this.invoke(entry, () => fn.apply(self, args as unknown[]), args);
  }

  /** Counts a promise's settling as one more call of `entry`: it must fulfil, or reject with an Error. */
  async settle(entry: string, promise: unknown, args: readonly unknown[]): Promise<Outcome> {
    if (!(promise instanceof Promise)) {
      this.violation(entry, args, `returned ${describe(promise)}, not a promise`);
      return { threw: true, error: null };
    }
    let settled: unknown;
    let rejected = false;
    try {
      settled = await promise;
    } catch (error) {
      rejected = true;
      settled = error;
    }
    return this.invoke(`${entry} (settled)`, () => {
      if (rejected) throw settled;
      return settled;
    }, args);
  }
}

// ---------------------------------------------------------------- block manager

const isCount = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;
const isIds = (v: unknown): boolean => v instanceof Int32Array;

/** What a successful call of each method returns. */
const isInt = (v: unknown): boolean => Number.isInteger(v);
/** A length written into the int scratch, or the code of one that did not fit (-length - 1), at least `min` long. */
const isWritten = (min: number) => (v: unknown): boolean => isInt(v) && ((v as number) >= min || -(v as number) - 1 >= min);

const MANAGER_RESULTS: Record<string, (v: unknown) => boolean> = {
  lookup: isWritten(2),
  admit: (v) => v === null || (isWritten(4)(v) && (((v as number) >= 0 ? (v as number) : -(v as number) - 1) % 2 === 0)),
  append: (v) => v === null || isWritten(0)(v),
  commit: isWritten(0),
  requestBlocks: isWritten(0),
  bindScratch: (v) => v === undefined,
  takeOverflow: isCount,
  release: (v) => v === undefined,
  hasRequest: (v) => typeof v === 'boolean',
  setScores: (v) => v === undefined,
  setAllScores: (v) => v === undefined,
  setScoreClasses: (v) => v === undefined,
  setClassScores: (v) => v === undefined,
  numRequests: isCount, clock: isCount, usedBlocks: isCount, evictableBlocks: isCount, pinnedDeviceBlocks: isCount,
  evict: isCount, demote: isCount, drop: isCount, load: isCount,
  // 0, or [n, stages, ...] with at least one copy and one stage.
  takeCopyPlan: (v) => v === 0 || isWritten(2 + 4 + 1)(v),
  takeEvents: isInt,
  setRecordEvents: (v) => v === undefined,
  checkInvariants: (v) => v === '',
  metadata: (v) => typeof v === 'object' && v !== null && [...METADATA_FIELDS, 'classScore'].every((f) => ArrayBuffer.isView((v as Record<string, unknown>)[f])),
};

/** Methods by weight: the ones that build state come up most. */
const MANAGER_METHODS: readonly string[] = Object.entries({
  admit: 8, commit: 6, release: 5, append: 3, lookup: 2, hasRequest: 1, requestBlocks: 1, numRequests: 1, setScores: 2,
  setAllScores: 1, setScoreClasses: 2, setClassScores: 2, evict: 2, demote: 2, drop: 2, load: 2, usedBlocks: 1,
  evictableBlocks: 1, pinnedDeviceBlocks: 1, takeCopyPlan: 1, takeEvents: 1, checkInvariants: 1, clock: 1, metadata: 1,
  bindScratch: 1, takeOverflow: 1, setRecordEvents: 1,
}).flatMap(([name, weight]) => new Array<string>(weight).fill(name));

const MANAGER_FIELDS = [...METADATA_FIELDS, 'classScore'] as const;

/** Bytes of a manager's metadata arrays, for comparing before and after a call. */
function byteViews(meta: Record<string, ArrayBufferView>): Uint8Array[] {
  return MANAGER_FIELDS.map((f) => {
    const view = meta[f]!;
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  });
}

function copyBytes(views: readonly Uint8Array[], into: Buffer): void {
  let offset = 0;
  for (const v of views) {
    into.set(v, offset);
    offset += v.length;
  }
}

export class ManagerTarget implements Target {
  readonly weight = 50;
  #handle!: NativeBlockManagerHandle;
  #config!: { blockSize: number; deviceBlocks: number; hostBlocks: number; maxClasses: number };
  #meta: Record<string, ArrayBufferView> = {};
  #views: Uint8Array[] = [];
  #before = Buffer.alloc(0);
  #after = Buffer.alloc(0);
  #steps = 0;
  /** Metadata views of replaced managers and their bytes then: collected managers must not free them. */
  readonly #retired: { views: Uint8Array[]; bytes: Buffer }[] = [];
  readonly #gc: () => void;

  constructor(private readonly ctx: FuzzContext) {
    setFlagsFromString('--expose-gc');
    this.#gc = runInNewContext('gc') as () => void;
    this.#replace();
  }

  #replace(): void {
    const { rand } = this.ctx;
    if (this.#views.length > 0) {
      const bytes = Buffer.alloc(this.#before.length);
      copyBytes(this.#views, bytes);
      this.#retired.push({ views: this.#views, bytes });
      if (this.#retired.length > 3) this.#retired.shift();
    }
    this.#config = {
      blockSize: rand.pick([1, 2, 4]),
      deviceBlocks: rand.range(1, 16),
      hostBlocks: rand.pick([0, rand.range(1, 16)]),
      maxClasses: rand.pick([0, 1, 4]),
    };
    const c = this.#config;
    this.#handle = new this.ctx.addon.NativeBlockManager(c.blockSize, 64, c.deviceBlocks, c.hostBlocks, c.maxClasses);
    this.#meta = this.#handle.metadata();
    this.#handle.bindScratch(...this.#scratch());
    this.#views = byteViews(this.#meta);
    const total = this.#views.reduce((n, v) => n + v.length, 0);
    this.#before = Buffer.alloc(total);
    this.#after = Buffer.alloc(total);
    copyBytes(this.#views, this.#before);
  }

  /** The request ids the sane calls use: a few, so requests collide and recur; mostly admitted ones when `live`. */
  #request(live = false): number {
    const { rand } = this.ctx;
    const admitted = [0, 1, 2, 3, 4, 5, 6, 7].filter((r) => this.#handle.hasRequest(r));
    if (live && admitted.length > 0 && rand.chance(0.8)) return rand.pick(admitted);
    return rand.chance(0.97) ? rand.int(8) : rand.pick([2 ** 53 - 1, 1e6]);
  }

  /** Scratch arrays for results: small, so results often overflow them. */
  #scratch(): [Int32Array, Uint8Array] {
    const { rand } = this.ctx;
    return [new Int32Array(new ArrayBuffer(4 * rand.range(2, 12))), new Uint8Array(new ArrayBuffer(14 * rand.range(1, 6)))];
  }

  /** Hashes of a prompt over a tiny alphabet, so prefixes are shared and sometimes clash. */
  #hashes(count: number): BigUint64Array {
    const { rand } = this.ctx;
    return BigUint64Array.from({ length: count }, (_, i) => (rand.chance(0.98) ? BigInt(1 + i * 2 + rand.int(2)) : BigInt.asUintN(64, BigInt(rand.int(2 ** 31)) << 33n)));
  }

  /** Block ids, mostly allocated ones. */
  #ids(count: number): Int32Array {
    const { rand } = this.ctx;
    const tier = this.#views[0]!;
    const numIds = tier.length;
    return Int32Array.from({ length: count }, () => {
      const id = rand.int(numIds);
      return rand.chance(0.8) && tier[id] !== 0 ? id : rand.range(-1, numIds);
    });
  }

  #scores(count: number): Float32Array {
    const { rand } = this.ctx;
    return Float32Array.from({ length: count }, () => (rand.chance(0.98) ? rand.range(-3, 3) / 2 : rand.pick([NaN, Infinity, -Infinity])));
  }

  #sane(name: string): unknown[] {
    const { rand } = this.ctx;
    const { blockSize: bs, deviceBlocks: dev, maxClasses: classes } = this.#config;
    const numIds = this.#views[0]!.length;
    switch (name) {
      case 'lookup': return [this.#hashes(rand.range(0, Math.min(numIds + 1, 8)))];
      case 'admit': {
        const tokens = rand.range(1, bs * dev + 2);
        const full = Math.floor(tokens / bs);
        return [this.#request(), this.#hashes(rand.chance(0.95) ? rand.range(0, full) : full + 1), tokens, rand.range(-1, 3), rand.chance(0.98) ? rand.range(-1, 63) : 64, rand.range(-1, 3)];
      }
      case 'append': return [this.#request(true), rand.range(0, 2 * bs + 1), this.#hashes(rand.chance(0.6) ? 0 : rand.range(1, 2))];
      case 'commit': return [this.#request(true), rand.range(0, 3)];
      case 'release': case 'requestBlocks': return [this.#request(true)];
      case 'hasRequest': return [this.#request()];
      case 'setScores': { const n = rand.range(0, 4); return [this.#ids(n), this.#scores(n)]; }
      case 'setAllScores': return [this.#scores(rand.chance(0.95) ? numIds : numIds + 1)];
      case 'setScoreClasses': { const n = rand.range(0, 4); return [this.#ids(n), Int32Array.from({ length: n }, () => rand.range(-1, classes))]; }
      case 'setClassScores': { const n = rand.range(0, 3); return [Int32Array.from({ length: n }, () => rand.range(0, classes)), this.#scores(n)]; }
      case 'evict': return [rand.range(0, 3), rand.range(0, 4)];
      case 'demote': case 'drop': case 'load': return [this.#ids(rand.range(0, 3))];
      case 'usedBlocks': case 'evictableBlocks': return [rand.range(0, 3)];
      case 'bindScratch': return this.#scratch();
      // Mostly on: the drains below check what a refused call queued.
      case 'setRecordEvents': return [rand.chance(0.8)];
      default: return [];
    }
  }

  /** Counters a refused call must not move; the request mask covers the ids the sane calls use. */
  #counters(): number[] {
    const h = this.#handle;
    let requests = 0;
    for (let r = 0; r < 8; r++) if (h.hasRequest(r)) requests |= 1 << r;
    return [h.clock(), h.numRequests(), h.usedBlocks(1), h.usedBlocks(2), h.evictableBlocks(1), h.evictableBlocks(2), h.pinnedDeviceBlocks(), requests];
  }

  step(): void {
    const { ctx } = this;
    const { rand } = ctx;
    if (rand.chance(1 / 4000)) this.#replace();
    const name = rand.pick(MANAGER_METHODS);
    const handle = this.#handle;
    // Now and then an argument is one of the manager's own metadata views: aliasing must be harmless.
    const args = ctx.mix(this.#sane(name), () => this.#meta[rand.pick(MANAGER_FIELDS)]);
    const drained = rand.chance(0.875);
    if (drained) {
      handle.takeCopyPlan();
      this.#drainEvents();
    }
    copyBytes(this.#views, this.#before);
    const counters = this.#counters();
    const entry = `NativeBlockManager#${name}`;
    const outcome = ctx.method(entry, handle, name, args);
    if (outcome.threw) {
      copyBytes(this.#views, this.#after);
      if (!this.#before.equals(this.#after)) ctx.violation(entry, args, 'a refused call changed the metadata');
      const now = this.#counters();
      if (now.some((v, i) => v !== counters[i])) ctx.violation(entry, args, `a refused call changed the counters ${counters} -> ${now}`);
      if (drained && (handle.takeCopyPlan() !== 0 || handle.takeEvents() !== 0)) {
        ctx.violation(entry, args, 'a refused call queued copies or events');
      }
    } else if (!MANAGER_RESULTS[name]!(outcome.value)) {
      ctx.violation(entry, args, `returned ${describe(outcome.value)}`);
    }
    if (++this.#steps % 128 === 0) {
      const broken = handle.checkInvariants();
      if (broken !== '') ctx.violation(entry, args, `invariant broken: ${broken}`);
    }
    if (this.#steps % 2000 === 0) this.#checkRetired();
  }

  /** Drains the events, binding a larger scratch when they do not fit. */
  #drainEvents(): void {
    const n = this.#handle.takeEvents();
    if (n >= 0) return;
    this.#handle.bindScratch(new Int32Array(new ArrayBuffer(8)), new Uint8Array(new ArrayBuffer(14 * -n)));
    if (this.#handle.takeEvents() !== -n) this.ctx.violation('NativeBlockManager#takeEvents', [], 'events left queued were not drained after growing the scratch');
  }

  /** Collects garbage, then reads the views of replaced managers: their bytes must be as they were. */
  #checkRetired(): void {
    this.#gc();
    for (const [i, { views, bytes }] of this.#retired.entries()) {
      const now = Buffer.alloc(bytes.length);
      copyBytes(views, now);
      if (!now.equals(bytes)) {
        this.ctx.violation('NativeBlockManager#metadata', [], 'a view of a collected manager changed');
        this.#retired.splice(i, 1);
        return;
      }
    }
  }

  /** Constructor calls: sane sizes with garbage swapped in; a manager made must be empty and sound. */
  construct(): void {
    const { ctx } = this;
    const { rand } = ctx;
    const sane = [rand.pick([1, 4, 16]), rand.pick([0, 64]), rand.range(1, 8), rand.range(0, 8), rand.range(0, 4)];
    const args = ctx.mix(sane);
    const entry = 'NativeBlockManager()';
    const outcome = ctx.invoke(entry, () => Reflect.construct(ctx.addon.NativeBlockManager, args), args);
    if (outcome.threw) return;
    const made = outcome.value as NativeBlockManagerHandle;
    if (made.checkInvariants() !== '' || made.numRequests() !== 0 || made.clock() !== 0) ctx.violation(entry, args, 'a new manager is not empty and sound');
  }
}

/** Runs `options.calls` fuzzed calls and reports what broke. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const ctx = new FuzzContext(options);
  const exported = Object.keys(ctx.addon).sort();
  const info = ctx.addon.cudaInfo?.() ?? { built: false, available: false };
  const manager = new ManagerTarget(ctx);
  const targets: Target[] = [
    manager,
    new PlaneTarget(ctx),
    new FunctionTargets(ctx),
    new ReceiverTarget(ctx),
    new CudaTargets(ctx, info.available),
    new EngineTarget(ctx),
    { weight: 4, step: () => manager.construct() },
  ];
  const picks = targets.flatMap((t) => new Array<Target>(t.weight).fill(t));
  for (ctx.call = 0; ctx.call < options.calls && ctx.violations.length < ctx.maxViolations; ctx.call++) {
    await ctx.rand.pick(picks).step();
  }
  return {
    seed: options.seed,
    calls: ctx.call,
    rejected: ctx.rejected,
    violations: ctx.violations,
    entries: Object.fromEntries([...ctx.entries].sort(([a], [b]) => (a < b ? -1 : 1))),
    exports: exported,
    unknownExports: exported.filter((name) => !(KNOWN_EXPORTS as readonly string[]).includes(name)),
    cuda: { built: info.built, available: info.available },
  };
}
