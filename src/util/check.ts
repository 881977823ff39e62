/**
 * The one family of argument checks. Every layer rejects bad input with a
 * TypeError (wrong shape or type) or a RangeError (a value outside its
 * domain) that names the argument, before any state changes.
 */

/** A short description of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name ?? 'object';
    return `${/^[aeiou]/i.test(name) ? 'an' : 'a'} ${name}`;
  }
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `${typeof value} ${String(value)}`;
}

/** A plain (non-array, non-null) object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An integer in [min, max]; `name` is the argument's full name. */
export function checkInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
  if (!Number.isInteger(value)) throw new RangeError(`${name} must be an integer, got ${value}`);
  if (value < min || value > max) throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`);
  return value;
}

/** A number, not NaN, in [min, max]; `name` is the argument's full name. */
export function checkNumber(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
  if (Number.isNaN(value) || value < min || value > max) {
    throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/** A boolean; `name` is the argument's full name. */
export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describeValue(value)}`);
  return value;
}

/**
 * An options object: `undefined` stands for `{}`. Unknown keys are refused
 * so that a misspelt option fails loudly instead of silently running with
 * its default. `owner` names whose options they are ("kvflow policy").
 */
export function checkOptionsObject(options: unknown, owner: string, known: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isRecord(options)) throw new TypeError(`${owner}: options must be an object, got ${describeValue(options)}`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const list = known.length > 0 ? known.join(', ') : 'none';
      throw new TypeError(`${owner}: unknown option "${key}" (known: ${list})`);
    }
  }
  return options;
}
