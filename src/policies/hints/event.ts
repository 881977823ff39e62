/** Validation of a hint event's own fields (the runtime checks time, session and agent). */
import { describeValue } from '../../util/check.js';
import { HINT_VERBS, type HintEvent } from '../types.js';

/** @throws TypeError / RangeError naming the field. */
export function checkHintFields(e: HintEvent, where: string): void {
  if (!(HINT_VERBS as readonly string[]).includes(e.verb)) {
    throw new RangeError(`${where}: verb must be one of ${HINT_VERBS.join(', ')}, got ${describeValue(e.verb)}`);
  }
  if (e.hashes !== undefined && !(e.hashes instanceof BigUint64Array)) {
    throw new TypeError(`${where}: hashes must be a BigUint64Array of block hashes, got ${describeValue(e.hashes)}`);
  }
  if (e.ttlSeconds !== undefined && (typeof e.ttlSeconds !== 'number' || !(e.ttlSeconds > 0))) {
    throw new RangeError(`${where}: ttlSeconds must be a number > 0, got ${describeValue(e.ttlSeconds)}`);
  }
}
