/**
 * Values for the N-API fuzz driver (fuzz_driver.ts): a seeded stream, the
 * garbage pool (every JS type, typed arrays of every element type, detached,
 * shared, offset and length-tracking buffers, hostile objects), and a short
 * description of arguments for violation reports.
 */
import { seededRandom } from '../../src/util/random.js';

/** A seeded stream of choices; the same seed gives the same calls. */
export class Rand {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = seededRandom(seed);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A uniform in [0, 1). */
  unit(): number {
    return this.#next();
  }
}

type TypedArrayKind = new (length: number) => ArrayBufferView & { length: number; [i: number]: number | bigint };

export const TYPED_ARRAY_KINDS: readonly TypedArrayKind[] = [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
] as unknown as TypedArrayKind[];

const NUMBERS = [
  0, -0, 1, -1, 2, 3, 7, 0.5, 1.5, -1.5, NaN, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1,
  2 ** 32, 2 ** 32 + 1, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, 1e300,
];
const BIGINTS = [0n, 1n, -1n, 10n, 2n ** 32n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2n ** 64n, 2n ** 70n, -(2n ** 70n)];

/** An element value for a typed array of `kind`: small, extreme or special. */
function element(rand: Rand, kind: TypedArrayKind): number | bigint {
  if (kind === BigInt64Array || kind === BigUint64Array) {
    const value = rand.chance(0.7) ? BigInt(rand.int(64)) : rand.pick(BIGINTS);
    return kind === BigUint64Array ? BigInt.asUintN(64, value) : BigInt.asIntN(64, value);
  }
  return rand.chance(0.6) ? rand.range(-2, 40) : rand.pick(NUMBERS);
}

/** A typed array of `kind` with `length` elements drawn by {@link element}. */
export function typedArray(rand: Rand, kind: TypedArrayKind, length: number): ArrayBufferView {
  const out = new kind(length);
  for (let i = 0; i < length; i++) out[i] = element(rand, kind);
  return out;
}

/** A typed array whose buffer was transferred away: length 0, data gone. */
function detached(rand: Rand): ArrayBufferView {
  const view = typedArray(rand, rand.pick(TYPED_ARRAY_KINDS), rand.range(1, 8));
  structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
  return view;
}

/** A view at a non-zero offset into a larger buffer. */
function offsetView(rand: Rand): ArrayBufferView {
  const kind = rand.pick(TYPED_ARRAY_KINDS) as unknown as { new (b: ArrayBuffer, o: number, n: number): ArrayBufferView; BYTES_PER_ELEMENT: number };
  const size = kind.BYTES_PER_ELEMENT;
  return new kind(new ArrayBuffer(size * 16), size * rand.range(1, 8), rand.range(0, 8));
}

/** A length-tracking view of a resizable buffer, resized after the view was made (possibly out of bounds). */
function lengthTracking(rand: Rand): ArrayBufferView {
  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  const buffer = new Resizable(32, { maxByteLength: 128 });
  const kind = rand.pick([Int32Array, Uint8Array, Float32Array, BigUint64Array]) as unknown as new (b: ArrayBuffer, o: number) => ArrayBufferView;
  const view = new kind(buffer, 8);
  buffer.resize(rand.pick([0, 4, 8, 16, 64, 128]));
  return view;
}

/** A view over shared memory. */
function shared(rand: Rand): ArrayBufferView {
  const kind = rand.pick([Int32Array, Uint8Array, Float32Array, Uint32Array, BigUint64Array]) as unknown as new (b: SharedArrayBuffer) => ArrayBufferView;
  return new kind(new SharedArrayBuffer(8 * rand.range(0, 4)));
}

const HOSTILE: (() => unknown)[] = [
  () => ({ valueOf() { throw new Error('valueOf called'); } }),
  () => ({ [Symbol.toPrimitive]() { throw new Error('toPrimitive called'); } }),
  () => ({ get length() { throw new Error('length read'); } }),
  () => new Proxy(new Int32Array(4), {}),
  () => new Proxy({}, { get() { throw new Error('proxy get'); } }),
  () => Object.create(Int32Array.prototype),
  () => Object.create(null),
  () => Object.create(Uint8Array.prototype, { length: { value: 1 << 30 } }),
  () => () => 1,
  () => new Date(0),
  () => new Map([[1, 2]]),
  () => new Number(3),
  () => new String('3'),
  () => new Error('e'),
  () => Promise.resolve(1),
  () => globalThis,
];

/** Any value at all, weighted toward the ones a native check must tell apart. */
export function garbage(rand: Rand): unknown {
  switch (rand.int(12)) {
    case 0: return rand.pick(NUMBERS);
    case 1: return rand.range(-3, 40);
    case 2: return rand.pick(BIGINTS);
    case 3: return rand.pick([undefined, null, true, false, '', 'x', '3', '1e3', Symbol('s')]);
    case 4: return rand.pick([{}, [], [1, 2], [1n], new ArrayBuffer(8), new DataView(new ArrayBuffer(8)), Buffer.alloc(3)]);
    case 5:
    case 6:
    case 7: return typedArray(rand, rand.pick(TYPED_ARRAY_KINDS), rand.chance(0.9) ? rand.range(0, 8) : rand.range(9, 300));
    case 8: return rand.pick([detached, offsetView, lengthTracking, shared])(rand);
    case 9: return rand.pick(HOSTILE)();
    case 10: return new (rand.pick(TYPED_ARRAY_KINDS))(0);
    default: return typedArray(rand, rand.pick(TYPED_ARRAY_KINDS), rand.chance(0.999) ? 1 : 1 << 16);
  }
}

/**
 * The arguments of one call: `sane` unchanged with probability
 * `saneChance`, else with one argument (and now and then another) swapped
 * for garbage, or for `extra()` when given (values that alias the target's
 * own memory); sometimes one too few or one too many.
 */
export function mixArguments(rand: Rand, sane: readonly unknown[], saneChance: number, extra?: () => unknown): unknown[] {
  const shape = rand.int(50);
  if (shape === 0) return sane.slice(0, rand.int(sane.length + 1));
  if (shape === 1) return [...sane, garbage(rand)];
  if (sane.length === 0 || rand.chance(saneChance)) return [...sane];
  const bad = () => (extra !== undefined && rand.chance(0.05) ? extra() : garbage(rand));
  const forced = rand.int(sane.length);
  return sane.map((value, i) => (i === forced || rand.chance(0.1) ? bad() : value));
}

/**
 * Whether a view's buffer holds no bytes (transferred away, or empty). Its
 * buffer's length is the one to go by: optimized code was seen to go on
 * reading a transferred view's old length (4 where the buffer had 0 bytes,
 * in Node 20).
 */
export function holdsNoBytes(view: ArrayBufferView): boolean {
  return view.buffer.byteLength === 0;
}

/** A short description of one value, for violation reports. */
export function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return 'Symbol()';
  if (typeof value === 'function') return 'function';
  if (typeof value !== 'object' || value === null) return String(value);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    // A view whose buffer was transferred away cannot be iterated.
    if (holdsNoBytes(value)) return `${value.constructor.name}(no bytes: detached or empty buffer)`;
    const items = Array.from(value as unknown as ArrayLike<number | bigint>).slice(0, 12);
    return `${value.constructor.name}[${items.map((v) => (typeof v === 'bigint' ? `${v}n` : String(v))).join(',')}${(value as unknown as { length: number }).length > 12 ? ',…' : ''}]`;
  }
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return 'object';
  }
}

export function describeArgs(args: readonly unknown[]): string {
  return `(${args.map(describe).join(', ')})`;
}
