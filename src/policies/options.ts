/**
 * Option checks shared by the baseline policies: every factory rejects bad
 * options with a precise TypeError (wrong shape or type) or RangeError
 * (a value outside its domain) before it builds anything.
 */

/** A short description of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `${typeof value} ${String(value)}`;
}

/** A plain (non-array, non-null) object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The options object of a policy factory: `undefined` stands for `{}`.
 * Unknown keys are refused so that a misspelt option fails loudly instead of
 * silently running the policy with its default.
 */
export function checkOptionsObject(
  options: unknown,
  policy: string,
  known: readonly string[],
): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isRecord(options)) {
    throw new TypeError(`${policy} policy: options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const list = known.length > 0 ? known.join(', ') : 'none';
      throw new TypeError(`${policy} policy: unknown option "${key}" (known: ${list})`);
    }
  }
  return options;
}

/** A number, not NaN, in [min, max]; `name` is the option's full name. */
export function checkNumber(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
  if (Number.isNaN(value) || value < min || value > max) {
    throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`);
  }
  return value;
}
