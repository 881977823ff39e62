/**
 * Fuzz targets beside the block manager (fuzz_driver.ts): the data planes
 * (CPU, and CUDA where a device is usable) checked byte for byte against a
 * JavaScript model of their pools, the free functions checked against the
 * TypeScript oracles, wrong receivers and constructors called without
 * `new`, and the CUDA classes, whose construction must throw a clear error
 * where no device is usable.
 */
import { hashTokenBlocks as referenceHashTokenBlocks, referenceXxh64 } from '../../src/blocks/hash.js';
import { referenceHitScoring } from '../../src/compute/hit_scoring.js';
import { ReferenceSurvivalBackend } from '../../src/compute/survival.js';
import type { FuzzContext, Outcome } from './fuzz_driver.js';
import { describe, garbage, holdsNoBytes, type Rand } from './fuzz_values.js';

export interface Target {
  /** Share of the calls this target makes. */
  readonly weight: number;
  step(): void | Promise<void>;
}

type Fn = (...args: unknown[]) => unknown;
type Handle = Record<string, Fn>;
type Ctor = new (...args: unknown[]) => unknown;

// ---------------------------------------------------------------- data planes

/** Pool sizes worth trying: small ones, and huge ones that must be refused without touching memory. */
function poolSizes(ctx: FuzzContext, sane: unknown[]): unknown[] {
  for (;;) {
    const args = ctx.mix(sane);
    const [bytes, device, host] = args;
    if (typeof bytes !== 'number' || typeof device !== 'number' || typeof host !== 'number') return args;
    const total = bytes * (Math.max(device, 0) + Math.max(host, 0));
    // Between 256 MiB and what no address space holds, an allocation may
    // succeed and be zeroed: slow, and no different a check from a small one.
    if (!(total >= 2 ** 28 && total < 2 ** 50)) return args;
  }
}

/**
 * A CPU or CUDA data plane and a JavaScript model of its pools. Every call
 * is followed by a full comparison of the pools with the model, so a
 * refused call that touched a byte, or an accepted one that copied wrong,
 * shows.
 */
export class PlaneTarget implements Target {
  readonly weight: number;
  readonly #entry: string;
  #plane: Handle | null = null;
  #bytes = 0;
  /** [device slots, host slots], each slot's bytes. */
  #model: Uint8Array[][] = [[], []];

  constructor(private readonly ctx: FuzzContext, private readonly kind: 'cpu' | 'cuda' = 'cpu') {
    this.#entry = kind === 'cpu' ? 'NativeCpuDataPlane' : 'NativeCudaDataPlane';
    this.weight = kind === 'cpu' ? 14 : 4;
    this.#replace();
  }

  get #ctor(): Ctor {
    return (this.ctx.addon as unknown as Record<string, Ctor>)[this.#entry]!;
  }

  #replace(): void {
    const { rand } = this.ctx;
    this.#bytes = rand.pick([1, 3, 8, 32]);
    const device = rand.range(1, 5);
    const host = rand.pick([0, rand.range(1, 5)]);
    this.#plane = new this.#ctor(this.#bytes, device, host) as Handle;
    this.#model = [device, host].map((n) => Array.from({ length: n }, () => new Uint8Array(this.#bytes)));
  }

  #slot(tier: number): number {
    const { rand } = this.ctx;
    const limit = this.#model[tier - 1]?.length ?? 0;
    return rand.chance(0.95) && limit > 0 ? rand.int(limit) : rand.pick([-1, limit, 2 ** 31 - 1]);
  }

  #tier(): number {
    const { rand } = this.ctx;
    if (rand.chance(0.03)) return rand.pick([0, 3, 255]);
    return this.#model[1]!.length > 0 && rand.chance(0.5) ? 2 : 1;
  }

  #plan(): unknown[] {
    const n = this.ctx.rand.range(0, 5);
    const srcTier = Uint8Array.from({ length: n }, () => this.#tier());
    const dstTier = Uint8Array.from({ length: n }, () => this.#tier());
    const srcSlot = Int32Array.from(srcTier, (t) => this.#slot(t));
    const dstSlot = Int32Array.from(dstTier, (t) => this.#slot(t));
    return this.kind === 'cpu' ? [srcTier, srcSlot, dstTier, dstSlot] : [srcTier, srcSlot, dstTier, dstSlot, new Int32Array(0)];
  }

  /** Applies copies in order, as a data plane must. */
  #applyPlan(args: readonly unknown[]): void {
    const [srcTier, srcSlot, dstTier, dstSlot] = args as [Uint8Array, Int32Array, Uint8Array, Int32Array];
    for (let i = 0; i < srcSlot.length; i++) {
      this.#model[dstTier[i]! - 1]![dstSlot[i]!]!.set(this.#model[srcTier[i]! - 1]![srcSlot[i]!]!);
    }
  }

  #compare(entry: string, args: readonly unknown[]): void {
    for (let tier = 1; tier <= 2; tier++) {
      const slots = this.#model[tier - 1]!;
      for (let slot = 0; slot < slots.length; slot++) {
        const bytes = this.#plane!.read!(tier, slot) as Uint8Array;
        if (!Buffer.from(bytes).equals(slots[slot]!)) {
          this.ctx.violation(entry, args, `pool bytes of tier ${tier} slot ${slot} differ from the model`);
          this.#replace();
          return;
        }
      }
    }
  }

  async step(): Promise<void> {
    const { ctx } = this;
    const { rand } = ctx;
    if (rand.chance(1 / 3000)) this.#replace();
    const cuda = this.kind === 'cuda';
    const methods = cuda
      ? ['new', 'execute', 'execute', 'prefetch', 'waitForPrefetch', 'prefetchComplete', 'synchronize', 'write', 'write', 'read', 'destroy']
      : ['new', 'execute', 'execute', 'execute', 'executeAsync', 'executeAsync', 'write', 'write', 'write', 'read', 'read', 'devicePool'];
    const name = rand.pick(methods);
    if (name === 'devicePool' && this.#plane!.devicePool === undefined) return;
    if (name === 'new') {
      this.construct();
      return;
    }
    let sane: unknown[] = [];
    if (name === 'execute' || name === 'executeAsync') sane = this.#plan();
    if (name === 'write' || name === 'read') {
      const tier = this.#tier();
      sane = [tier, this.#slot(tier)];
      if (name === 'write') sane.push(Uint8Array.from({ length: rand.chance(0.95) ? this.#bytes : this.#bytes + 1 }, () => rand.int(256)));
    }
    if (name === 'prefetch') {
      const n = rand.range(0, Math.min(3, this.#model[1]!.length));
      sane = [Int32Array.from({ length: n }, () => this.#slot(2)), Int32Array.from({ length: n }, (_, i) => (rand.chance(0.95) ? i % this.#model[0]!.length : this.#slot(1)))];
    }
    const args = ctx.mix(sane);
    const entry = `${this.#entry}#${name}`;
    let outcome: Outcome = ctx.method(entry, this.#plane!, name, args);
    if (name === 'executeAsync' && !outcome.threw) outcome = await ctx.settle(entry, outcome.value, args);
    if (!outcome.threw) {
      const value = outcome.value;
      if (name === 'execute' || name === 'executeAsync') this.#applyPlan(args);
      if (name === 'write') this.#model[(args[0] as number) - 1]![args[1] as number]!.set(args[2] as Uint8Array);
      if (name === 'prefetch') {
        this.#plane!.waitForPrefetch!();
        const [hostSlots, deviceSlots] = args as [Int32Array, Int32Array];
        hostSlots.forEach((h, i) => this.#model[0]![deviceSlots[i]!]!.set(this.#model[1]![h]!));
      }
      if (name === 'read' && !(value instanceof Uint8Array && Buffer.from(value).equals(this.#model[(args[0] as number) - 1]![args[1] as number]!))) {
        ctx.violation(entry, args, `read ${describe(value)}, not the model's bytes`);
      }
      if (name === 'prefetchComplete' && typeof value !== 'boolean') ctx.violation(entry, args, `returned ${describe(value)}`);
      if (name === 'devicePool') this.#checkDevicePool(entry, args, value);
      if (name === 'destroy') {
        const after = ctx.method(`${this.#entry}#read (destroyed)`, this.#plane!, 'read', [1, 0]);
        if (!after.threw) ctx.violation(entry, args, 'a destroyed plane still reads');
        this.#replace();
        return;
      }
    }
    this.#compare(entry, args);
  }

  /**
   * The device pool itself, zero-copy: the same buffer every time, holding
   * exactly the device slots' bytes; a byte written through it is a byte of
   * the pool (the model follows).
   */
  #checkDevicePool(entry: string, args: readonly unknown[], value: unknown): void {
    const device = this.#model[0]!;
    if (!(value instanceof ArrayBuffer) || value !== this.#plane!.devicePool!()) {
      this.ctx.violation(entry, args, `returned ${describe(value)}, not one ArrayBuffer`);
      return;
    }
    if (value.byteLength === 0) return; // transferred away by an earlier call: nothing to compare
    const bytes = new Uint8Array(value);
    if (!Buffer.from(bytes).equals(Buffer.concat(device))) this.ctx.violation(entry, args, 'the device pool buffer differs from the model');
    const at = this.ctx.rand.int(bytes.length);
    bytes[at] = this.ctx.rand.int(256);
    device[Math.floor(at / this.#bytes)]![at % this.#bytes] = bytes[at]!;
  }

  /** Constructor calls with sane and garbage sizes; a plane made must read back zeros. */
  construct(): void {
    const { ctx } = this;
    const { rand } = ctx;
    const args = poolSizes(ctx, [rand.pick([1, 16, 64]), rand.range(1, 4), rand.range(0, 4)]);
    const entry = `${this.#entry}()`;
    const outcome = ctx.invoke(entry, () => Reflect.construct(this.#ctor, args), args);
    if (outcome.threw) return;
    const bytes = (outcome.value as Handle).read!(1, 0) as Uint8Array;
    if (bytes.length !== args[0] || bytes.some((b) => b !== 0)) ctx.violation(entry, args, 'a new pool does not read back zeros');
  }
}

// ---------------------------------------------------------------- free functions

export function survivalArguments(rand: Rand): unknown[] {
  const workloads = rand.range(1, 2);
  const n = rand.range(1, 4);
  const horizon = rand.range(1, 4);
  const transitions = new Float32Array(workloads * n * n);
  const endState = Int32Array.from({ length: workloads }, () => rand.int(n));
  for (let row = 0; row < workloads * n; row++) {
    const weights = Array.from({ length: n }, () => (rand.chance(0.3) ? 0 : rand.unit() + 0.01));
    if (!weights.some((w) => w > 0)) weights[rand.int(n)] = 1;
    const sum = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, b) => (transitions[row * n + b] = w / sum));
  }
  if (rand.chance(0.1)) transitions[rand.int(transitions.length)] = rand.pick([NaN, -0.5, 2, Infinity]);
  if (rand.chance(0.05)) endState[0] = rand.pick([-1, n]);
  return [workloads, n, horizon, transitions, endState];
}

export function hitScoringArguments(rand: Rand): unknown[] {
  const n = rand.range(0, 10);
  const classes = rand.range(0, 3);
  const small = (max: number) => () => (rand.chance(0.7) ? 0 : rand.range(0, max));
  return [
    Uint8Array.from({ length: n }, () => rand.range(0, 2)),
    Uint8Array.from({ length: n }, () => (rand.chance(0.8) ? 1 : 0)),
    Int32Array.from({ length: n }, small(2)),
    Int32Array.from({ length: n }, small(1)),
    Float64Array.from({ length: n }, () => rand.range(0, 5)),
    Float32Array.from({ length: n }, () => (rand.chance(0.98) ? rand.range(-2, 2) / 2 : NaN)),
    Int32Array.from({ length: n }, () => (rand.chance(0.97) ? rand.range(-1, classes - 1) : rand.pick([classes, -5]))),
    Float32Array.from({ length: classes }, () => (rand.chance(0.98) ? rand.range(-2, 2) / 4 : Infinity)),
    rand.range(0, 12),
  ];
}

const sameFloats = (a: Float32Array, b: Float32Array, tolerance: number) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= tolerance * Math.max(1, Math.abs(b[i]!)));

/** What survival must return for `args`, by the TypeScript oracle; a message when `value` is not it. */
export function checkSurvival(args: readonly unknown[], value: unknown, tolerance: number): string | null {
  const [workloads, states, horizon, transitions, endState] = args as [number, number, number, Float32Array, Int32Array];
  const want = new ReferenceSurvivalBackend().compute({ workloads, states, horizon, transitions, endState });
  const got = value as Record<string, unknown>;
  for (const key of ['reach', 'alive', 'expectedSteps'] as const) {
    if (!(got?.[key] instanceof Float32Array) || !sameFloats(got[key], want[key], tolerance)) return `${key} differs from the reference`;
  }
  return null;
}

/** What hit scoring must return for `args`, by the TypeScript oracle; a message when `value` is not it. */
export function checkHitScoring(args: readonly unknown[], value: unknown): string | null {
  const [tier, committed, refCount, deviceChildren, lastAccess, score, scoreClass, classScores, k] = args as [
    Uint8Array, Uint8Array, Int32Array, Int32Array, Float64Array, Float32Array, Int32Array, Float32Array, number,
  ];
  const want = referenceHitScoring({ tier, committed, refCount, deviceChildren, lastAccess, score, scoreClass, classScores }, k);
  const got = value as { scores?: unknown; victims?: unknown };
  if (!(got?.scores instanceof Float32Array) || !sameFloats(got.scores, want.scores, 0)) return 'scores differ from the reference';
  if (!(got.victims instanceof Int32Array) || got.victims.join() !== want.victims.join()) {
    return `victims ${describe(got.victims)} differ from the reference ${describe(want.victims)}`;
  }
  return null;
}

/** The bytes a Uint8Array argument holds, as the addon reads them (none when its buffer was transferred away). */
function bytesOf(view: Uint8Array): Uint8Array {
  return holdsNoBytes(view) ? new Uint8Array(0) : view;
}

/** hashTokenBlocks, xxh64, computeSurvival, hitScoring, cudaInfo and muteStderr. */
export class FunctionTargets implements Target {
  readonly weight = 18;
  #cudaInfo: string | null = null;

  constructor(private readonly ctx: FuzzContext) {}

  step(): void {
    const { ctx } = this;
    const { rand } = ctx;
    const addon = ctx.addon as unknown as Record<string, Fn>;
    const which = rand.pick(['hashTokenBlocks', 'hashTokenBlocks', 'xxh64', 'xxh64', 'computeSurvival', 'computeSurvival', 'hitScoring', 'hitScoring', 'cudaInfo', 'muteStderr']);
    const fn = addon[which];
    if (fn === undefined) return;
    let sane: unknown[] = [];
    if (which === 'hashTokenBlocks') {
      sane = [
        Uint32Array.from({ length: rand.range(0, 20) }, () => (rand.chance(0.9) ? rand.int(6) : 2 ** 32 - 1)),
        rand.chance(0.95) ? rand.range(1, 6) : rand.pick([0, 2 ** 20, 2 ** 20 + 1]),
        rand.chance(0.95) ? rand.pick([0n, 7n, 2n ** 64n - 1n]) : rand.pick([-1n, 2n ** 64n]),
      ];
    }
    if (which === 'xxh64') {
      const bytes = Uint8Array.from({ length: rand.range(0, 80) }, () => rand.int(256));
      sane = [
        rand.chance(0.3) ? bytes.subarray(rand.range(0, Math.min(8, bytes.length))) : bytes,
        rand.chance(0.95) ? rand.pick([0n, 7n, 2n ** 64n - 1n]) : rand.pick([-1n, 2n ** 64n]),
      ];
    }
    if (which === 'computeSurvival') sane = survivalArguments(rand);
    if (which === 'hitScoring') sane = hitScoringArguments(rand);
    if (which === 'muteStderr') sane = [rand.chance(0.8)];
    const args = ctx.mix(sane);
    const outcome = ctx.invoke(which, () => fn(...args), args);
    if (which === 'muteStderr') return this.#checkMute(fn, args, outcome);
    if (outcome.threw) return;
    let problem: string | null = null;
    try {
      problem = this.#compare(which, args, outcome.value);
    } catch (error) {
      problem = `the oracle refused what the addon accepted: ${(error as Error).message}`;
    }
    if (problem !== null) ctx.violation(which, args, problem);
  }

  #compare(which: string, args: unknown[], value: unknown): string | null {
    let problem: string | null = null;
    if (which === 'hashTokenBlocks') {
      const want = referenceHashTokenBlocks(args[0] as Uint32Array, args[1] as number, args[2] as bigint);
      if (!(value instanceof BigUint64Array) || value.join() !== want.join()) problem = 'differs from the TypeScript hash';
    }
    if (which === 'xxh64' && value !== referenceXxh64(bytesOf(args[0] as Uint8Array), args[1] as bigint)) problem = 'differs from the BigInt reference';
    if (which === 'computeSurvival') problem = checkSurvival(args, value, 1e-5);
    if (which === 'hitScoring') problem = checkHitScoring(args, value);
    if (which === 'cudaInfo') {
      const info = value as Record<string, unknown>;
      const text = JSON.stringify(info);
      if (typeof info?.built !== 'boolean' || typeof info.available !== 'boolean' || typeof info.reason !== 'string' || typeof info.device !== 'string') {
        problem = `returned ${text}`;
      } else if (this.#cudaInfo !== null && text !== this.#cudaInfo) problem = `changed from ${this.#cudaInfo} to ${text}`;
      this.#cudaInfo = text;
    }
    return problem;
  }

  /** The mute depth starts at 0 each call: unwound after an accepted mute, unchanged after a refusal. */
  #checkMute(mute: Fn, args: unknown[], outcome: Outcome): void {
    if (!outcome.threw) {
      if (outcome.value !== (args[0] === true ? 1 : 0)) this.ctx.violation('muteStderr', args, `returned ${describe(outcome.value)}`);
      if (outcome.value === 1) mute(false);
      return;
    }
    const depth = mute(true);
    const back = mute(false);
    if (depth !== 1 || back !== 0) this.ctx.violation('muteStderr', args, `a refused call moved the depth (${depth}, ${back})`);
  }
}

// ---------------------------------------------------------------- receivers

const CLASS_NAMES = ['NativeBlockManager', 'NativeCpuDataPlane', 'NativeCudaSurvival', 'NativeCudaHitScorer', 'NativeCudaDataPlane', 'NativeEngine'];

/** Methods called on the wrong object, and constructors called without `new`: a TypeError each. */
export class ReceiverTarget implements Target {
  readonly weight = 3;
  readonly #classes: [string, Ctor][];
  readonly #others: object[];

  constructor(private readonly ctx: FuzzContext) {
    const addon = ctx.addon as unknown as Record<string, Ctor | undefined>;
    this.#classes = CLASS_NAMES.flatMap((name) => (addon[name] ? [[name, addon[name]] as [string, Ctor]] : []));
    this.#others = [new ctx.addon.NativeBlockManager(4, 0, 4, 2, 2), new ctx.addon.NativeCpuDataPlane(8, 2, 2)];
  }

  step(): void {
    const { ctx } = this;
    const { rand } = ctx;
    const [name, ctor] = rand.pick(this.#classes);
    const args = Array.from({ length: rand.int(4) }, () => garbage(rand));
    if (rand.chance(0.2)) {
      const outcome = ctx.invoke(`${name} without new`, () => (ctor as unknown as Fn)(...args), args);
      if (!outcome.threw || !(outcome.error instanceof TypeError)) ctx.violation(`${name} without new`, args, 'did not throw a TypeError');
      return;
    }
    const proto = ctor.prototype as Record<string, unknown>;
    const methods = Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor');
    const method = rand.pick(methods);
    const receivers = [() => garbage(rand), () => Object.create(proto), () => rand.pick(this.#others), () => ctor];
    const self = rand.pick(receivers)();
    if (self instanceof ctor) return; // a genuine instance is no wrong receiver
    const entry = `${name}#${method} on a wrong receiver`;
    const outcome = ctx.invoke(entry, () => (proto[method] as Fn).apply(self, args), args);
    if (!outcome.threw || !(outcome.error instanceof TypeError)) ctx.violation(entry, [self, ...args], 'did not throw a TypeError');
  }
}

// ---------------------------------------------------------------- CUDA

/**
 * The CUDA classes. Without a usable device every construction must throw
 * an Error (for valid arguments, one that says CUDA is not available);
 * with one, their methods are fuzzed and compared with the CPU oracles.
 */
export class CudaTargets implements Target {
  readonly weight: number;
  readonly #plane: PlaneTarget | null;
  #survival: Handle | null = null;
  #scorer: Handle | null = null;

  constructor(private readonly ctx: FuzzContext, private readonly available: boolean) {
    const present = ctx.addon.NativeCudaSurvival !== undefined;
    this.weight = present ? (available ? 12 : 3) : 0;
    this.#plane = present && available ? new PlaneTarget(ctx, 'cuda') : null;
  }

  async step(): Promise<void> {
    const { ctx } = this;
    const { rand } = ctx;
    const addon = ctx.addon as unknown as Record<string, Ctor>;
    if (this.#plane !== null && rand.chance(0.4)) return this.#plane.step();
    const name = rand.pick(['NativeCudaSurvival', 'NativeCudaHitScorer', 'NativeCudaDataPlane']);
    const live = name === 'NativeCudaSurvival' ? this.#survival : name === 'NativeCudaHitScorer' ? this.#scorer : null;
    if (live === null || rand.chance(0.1)) {
      const sane = name === 'NativeCudaDataPlane' ? [rand.pick([1, 16]), rand.range(1, 4), rand.range(0, 4)] : [];
      const args = name === 'NativeCudaDataPlane' ? poolSizes(ctx, sane) : ctx.mix(sane);
      const outcome = ctx.invoke(`${name}()`, () => Reflect.construct(addon[name]!, args), args);
      const valid = args.length === sane.length && args.every((a, i) => a === sane[i]);
      if (!this.available) {
        const message = outcome.threw && outcome.error instanceof Error ? outcome.error.message : '';
        if (!outcome.threw) ctx.violation(`${name}()`, args, 'constructed without a usable device');
        else if ((valid || sane.length === 0) && !/CUDA is not available/.test(message)) ctx.violation(`${name}()`, args, `unclear error: ${message}`);
      } else if (!outcome.threw && name === 'NativeCudaSurvival') this.#survival = outcome.value as Handle;
      else if (!outcome.threw && name === 'NativeCudaHitScorer') this.#scorer = outcome.value as Handle;
      return;
    }
    const survival = name === 'NativeCudaSurvival';
    const method = rand.pick(survival ? ['compute', 'computeAsync', 'maxStates', 'destroy'] : ['selectVictims', 'selectVictimsAsync', 'destroy']);
    const args = ctx.mix(method === 'maxStates' || method === 'destroy' ? [] : survival ? survivalArguments(rand) : hitScoringArguments(rand));
    const entry = `${name}#${method}`;
    let outcome = ctx.method(entry, live, method, args);
    if (method.endsWith('Async') && !outcome.threw) outcome = await ctx.settle(entry, outcome.value, args);
    if (outcome.threw) return;
    if (method === 'destroy') {
      if (!ctx.method(`${name} (destroyed)`, live, survival ? 'maxStates' : 'selectVictims', []).threw) ctx.violation(entry, args, 'still usable after destroy()');
      if (survival) this.#survival = null;
      else this.#scorer = null;
      return;
    }
    if (method === 'maxStates') {
      if (!Number.isInteger(outcome.value) || (outcome.value as number) < 1) ctx.violation(entry, args, `returned ${describe(outcome.value)}`);
      return;
    }
    const problem = survival ? checkSurvival(args, outcome.value, 1e-4) : checkHitScoring(args, outcome.value);
    if (problem !== null) ctx.violation(entry, args, problem);
  }
}
