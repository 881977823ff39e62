/** Validation of the optional fields tool events carry for memoization. */
import { describeValue } from '../../util/check.js';
import type { FrameworkEvent } from '../types.js';

/** Longest argsHash or resultHash accepted: a hash, not the content itself. */
export const MAX_TOOL_HASH_LENGTH = 256;

/** @throws TypeError / RangeError naming the field. */
export function checkToolFields(e: Extract<FrameworkEvent, { type: 'tool.start' | 'tool.end' }>, where: string): void {
  const fields = e.type === 'tool.start' ? (['argsHash'] as const) : (['argsHash', 'resultHash'] as const);
  for (const field of fields) {
    const value = (e as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new TypeError(`${where}: ${field} must be a string, got ${describeValue(value)}`);
    if (value.length === 0 || value.length > MAX_TOOL_HASH_LENGTH) {
      throw new RangeError(`${where}: ${field} must have 1 to ${MAX_TOOL_HASH_LENGTH} characters, got ${value.length}`);
    }
  }
}
