/**
 * Hit scoring on the CPU in native code (native/core/hit_scoring.h): the
 * same {@link HitScoringOutput} as `referenceHitScoring`, from one linear
 * scan and a partial selection of the evictable blocks, O(n + k log k).
 */
import { nativeAddon } from '../../blocks/addon.js';
import { checkInt } from '../../util/check.js';
import { checkHitScoringInput, type HitScoringInput, type HitScoringOutput } from '../hit_scoring.js';

/**
 * Every block's effective score and up to `k` victims, first victim first:
 * exactly `referenceHitScoring(input, k)`, scores bit for bit and victims
 * id for id.
 *
 * @throws TypeError / RangeError for malformed input, as
 *   `checkHitScoringInput` words it, or a `k` that is not an integer >= 0;
 *   RangeError for a non-finite effective score (which the reference
 *   cannot order), naming the lowest such block.
 */
export function nativeHitScoring(input: HitScoringInput, k: number): HitScoringOutput {
  const blocks = checkHitScoringInput(input, 'nativeHitScoring');
  checkInt(k, 'nativeHitScoring: k', 0, Number.MAX_SAFE_INTEGER);
  const { tier, committed, refCount, deviceChildren, lastAccess, score, scoreClass, classScores } = input;
  // No block set has more victims than blocks, and the native k is an int32.
  return nativeAddon().hitScoring(
    tier, committed, refCount, deviceChildren, lastAccess, score, scoreClass, classScores, Math.min(k, blocks),
  );
}
