/**
 * Composition: several policies on one runtime. Each policy states which
 * primitives it implements and how it combines (PolicyComposition, in its
 * file or its registry entry); this module reads the `+` spelling of a
 * composed run ("cachesage+ttl") and refuses a list that cannot work
 * before any runtime starts:
 *
 * - at most one policy whose scores are an eviction order of their own
 *   (two orders do not add up), unless the runtime is given explicit
 *   weights;
 * - scorers score the same unit (classes or blocks);
 * - an exclusive action (answering tool calls, salting hashes, routing)
 *   has one owner.
 *
 * Every refusal names both policies.
 */
import { describeValue } from '../util/check.js';
import type { Policy, PolicyComposition, Primitive } from './types.js';

/** The character that joins policy names into one composed run. */
export const COMPOSE_SEPARATOR = '+';

/**
 * The policy names of one composed entry, in priority order: "cachesage+ttl"
 * -> ["cachesage", "ttl"]. A plain name is a list of one.
 *
 * @throws TypeError when `entry` is not a string.
 * @throws RangeError on an empty part ("a++b", "+a") or a name given twice.
 */
export function composedNames(entry: string): string[] {
  if (typeof entry !== 'string') throw new TypeError(`policy name must be a string, got ${describeValue(entry)}`);
  const names = entry.split(COMPOSE_SEPARATOR).map((s) => s.trim());
  const seen = new Set<string>();
  for (const name of names) {
    if (name === '') throw new RangeError(`policy entry ${JSON.stringify(entry)} has an empty name around "${COMPOSE_SEPARATOR}"`);
    if (seen.has(name)) throw new RangeError(`policy entry ${JSON.stringify(entry)} names "${name}" twice`);
    seen.add(name);
  }
  return names;
}

/** The name a composed run is reported under: its names joined by "+". */
export function composedName(names: readonly string[]): string {
  return names.join(COMPOSE_SEPARATOR);
}

/**
 * What a policy object implements, for one that states no composition:
 * read from its methods. An undeclared scorer is taken for an order (the
 * safe reading: it is refused beside another order).
 */
export function derivedComposition(policy: Policy): PolicyComposition {
  const primitives: Primitive[] = [];
  if (policy.observe) primitives.push('observe');
  if (policy.scoring !== undefined) primitives.push('score');
  if (policy.predict) primitives.push('predict');
  if (policy.act) primitives.push('act');
  if (policy.answer) primitives.push('answer');
  if (policy.saltOf) primitives.push('salt');
  return policy.scoring !== undefined ? { primitives, scores: 'order' } : { primitives };
}

/** What the composition check reads of a policy: its name, the unit it scores (when known) and its composition. */
export interface ComposedPart {
  readonly name: string;
  readonly scoring?: 'classes' | 'blocks';
  readonly composition: PolicyComposition;
}

/**
 * Checks that `parts` can run on one runtime: at most one order scorer
 * (unless `weighted`), one scoring unit, one owner per exclusive action.
 *
 * @param weighted the runtime was given one weight per scorer: the caller
 *   chose how orders add up, so several order scorers are allowed.
 * @throws RangeError naming both policies of the first conflict.
 */
export function checkComposition(parts: readonly ComposedPart[], weighted = false): void {
  let orderScorer: ComposedPart | undefined;
  let unitScorer: ComposedPart | undefined;
  const owners = new Map<string, ComposedPart>();
  for (const part of parts) {
    const { composition } = part;
    if (part.scoring !== undefined) {
      if (unitScorer !== undefined && unitScorer.scoring !== part.scoring) {
        throw new RangeError(
          `cannot combine policies "${unitScorer.name}" and "${part.name}": ` +
            `"${unitScorer.name}" scores ${unitScorer.scoring}, "${part.name}" scores ${part.scoring}, and one runtime scores one unit`,
        );
      }
      unitScorer ??= part;
    }
    if ((part.scoring !== undefined || composition.scores !== undefined) && composition.scores !== 'adjust' && !weighted) {
      if (orderScorer !== undefined) {
        throw new RangeError(
          `cannot combine policies "${orderScorer.name}" and "${part.name}": both claim to be the scorer ` +
            '(each scores an eviction order of its own, and two orders do not add up; give the runtime explicit weights to combine them anyway)',
        );
      }
      orderScorer = part;
    }
    for (const action of composition.exclusive ?? []) {
      const owner = owners.get(action);
      if (owner !== undefined) {
        throw new RangeError(`cannot combine policies "${owner.name}" and "${part.name}": both claim the exclusive action "${action}"`);
      }
      owners.set(action, part);
    }
  }
}
