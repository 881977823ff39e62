/**
 * Command-line flag parsing and validation for the `cachesage` tool.
 *
 * Every user mistake becomes a {@link UsageError} whose message is one line
 * naming the flag, so the entry point can print it and exit 2 without a
 * stack trace; scripts depend on that behaviour (replay.md, "The CLI
 * contract").
 */
import { COMPOSE_SEPARATOR } from '../policies/compose.js';
import { composedEntry, POLICY_NAMES } from '../policies/registry.js';
import type { Capacity } from '../sim/replay.js';

/** A mistake in how the tool was invoked: printed as one line, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** How one flag is spelled and whether it takes a value. */
export interface FlagSpec {
  /** `value`: takes the next argument (or `--flag=value`); `switch`: takes none. */
  kind: 'value' | 'switch';
  /** A value flag given several times keeps every value instead of refusing. */
  repeatable?: boolean;
}

/** Parsed flags: the last value of each value flag, `true` for switches. */
export interface ParsedFlags {
  values: Map<string, string[]>;
  switches: Set<string>;
  help: boolean;
}

/**
 * Splits `argv` into flags by `specs` (names without the leading `--`).
 * `--help` and `-h` anywhere ask for the command's help.
 *
 * @throws UsageError on an unknown flag, a missing value, a repeated flag,
 *   a value given to a switch, or a stray positional argument.
 */
export function parseFlags(command: string, argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>): ParsedFlags {
  const parsed: ParsedFlags = { values: new Map(), switches: new Set(), help: false };
  // Asking for help wins over any mistake elsewhere on the line.
  if (argv.some((arg) => arg === '--help' || arg === '-h')) {
    parsed.help = true;
    return parsed;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      throw new UsageError(`${command}: unexpected argument ${quote(arg)} (flags start with --; see cachesage ${command} --help)`);
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) throw new UsageError(`${command}: unknown flag --${name} (see cachesage ${command} --help)`);
    if (spec.kind === 'switch') {
      if (eq !== -1) throw new UsageError(`${command}: --${name} takes no value`);
      parsed.switches.add(name);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else {
      // A following flag means the value was forgotten; `-0.5` is still a value (and range-checked later).
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        value = next;
        i++;
      }
    }
    if (value === undefined || value === '') throw new UsageError(`${command}: --${name} needs a value`);
    const list = parsed.values.get(name);
    if (list && !spec.repeatable) throw new UsageError(`${command}: --${name} given more than once`);
    if (list) list.push(value);
    else parsed.values.set(name, [value]);
  }
  return parsed;
}

/** The single value of a value flag, or undefined when absent. */
export function flagValue(flags: ParsedFlags, name: string): string | undefined {
  const list = flags.values.get(name);
  return list?.[list.length - 1];
}

function quote(value: string): string {
  return JSON.stringify(value);
}

function parseNumber(command: string, flag: string, text: string): number {
  // Number('') is 0 and Number(' 1 ') is 1: only plain decimal literals are accepted.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim()) || text.trim() !== text) {
    throw new UsageError(`${command}: --${flag} must be a number (got ${quote(text)})`);
  }
  const value = Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`${command}: --${flag} must be a finite number (got ${quote(text)})`);
  return value;
}

/**
 * An integer in [min, max].
 *
 * @throws UsageError naming the flag otherwise.
 */
export function integerFlag(command: string, flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = parseNumber(command, flag, text);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    throw new UsageError(`${command}: --${flag} must be an integer ${range} (got ${quote(text)})`);
  }
  return value;
}

/**
 * A number strictly greater than zero.
 *
 * @throws UsageError naming the flag otherwise.
 */
export function positiveFlag(command: string, flag: string, text: string): number {
  const value = parseNumber(command, flag, text);
  if (value <= 0) throw new UsageError(`${command}: --${flag} must be > 0 (got ${quote(text)})`);
  return value;
}

/**
 * A capacity in replay.md's unit: a fraction of the peak live footprint, or
 * a whole number of blocks. A value below 1 or written with a decimal point
 * is a fraction, at most 1 (so `1.0` is the whole footprint and `1` one
 * block); any other value is a block count. With `allowZero`, 0 means none
 * (the host tier's default).
 *
 * @throws UsageError naming the flag otherwise.
 */
export function capacityFlag(command: string, flag: string, text: string, allowZero: boolean): Capacity {
  const value = parseNumber(command, flag, text);
  if (allowZero && value === 0) return { blocks: 0 };
  const what = allowZero
    ? 'must be 0 (none), a fraction of the peak live footprint in (0, 1.0], or a whole number of blocks'
    : 'must be > 0: a fraction of the peak live footprint in (0, 1.0], or a whole number of blocks';
  const fraction = value < 1 || /[.]/.test(text);
  if (value <= 0 || (fraction && value > 1) || (!fraction && !Number.isInteger(value))) {
    throw new UsageError(`${command}: --${flag} ${what} (got ${quote(text)})`);
  }
  return fraction ? { fraction: value } : { blocks: value };
}

/**
 * A comma-separated list of replay policies, in the order given. An entry
 * may join policies with "+" ("cachesage+ttl"): one run of them composed on
 * one runtime, reported under the joined name.
 *
 * @throws UsageError naming `--policies` on an unknown, repeated or empty
 *   name, or a composed entry whose policies cannot run together.
 */
export function policiesFlag(command: string, text: string): string[] {
  const entries = text.split(',').map((s) => s.trim());
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry === '') throw new UsageError(`${command}: --policies has an empty name in ${quote(text)}`);
    for (const name of entry.split(COMPOSE_SEPARATOR).map((s) => s.trim())) {
      if (name !== '' && !POLICY_NAMES.includes(name)) {
        throw new UsageError(`${command}: --policies: unknown policy ${quote(name)} (known: ${POLICY_NAMES.join(', ')})`);
      }
    }
    try {
      composedEntry(entry);
    } catch (error) {
      throw new UsageError(`${command}: --policies: ${(error as Error).message}`);
    }
    if (seen.has(entry)) throw new UsageError(`${command}: --policies names ${quote(entry)} twice`);
    seen.add(entry);
  }
  return entries;
}

/** The cost model profiles replay knows, by flag value. */
export const MODELS = ['8b', '70b'] as const;

/**
 * A cost model profile name.
 *
 * @throws UsageError naming `--model` otherwise.
 */
export function modelFlag(command: string, text: string): (typeof MODELS)[number] {
  const found = MODELS.find((m) => m === text.toLowerCase());
  if (!found) throw new UsageError(`${command}: --model must be one of ${MODELS.join(', ')} (got ${quote(text)})`);
  return found;
}
