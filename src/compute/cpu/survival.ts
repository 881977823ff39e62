/**
 * The survival computation on the CPU in the native core
 * (native/core/survival.cpp): the same quantities as the TypeScript
 * reference, with one dense matrix product per step instead of one
 * recursion per target state.
 */
import { nativeAddon, type NativeAddon } from '../../blocks/addon.js';
import { validateSurvivalInput, type SurvivalBackend, type SurvivalInput, type SurvivalOutput } from '../survival.js';

/**
 * {@link SurvivalBackend} backed by the native addon. The input is checked
 * here first, so errors match the reference backend's; the native side
 * checks again and throws a RangeError rather than crash on anything that
 * slips through. Runs synchronously on the calling thread.
 */
export class NativeSurvivalBackend implements SurvivalBackend {
  readonly name = 'native-cpu';
  readonly #addon: NativeAddon;

  /** Loads the addon; throws with a build hint when it is missing. */
  constructor() {
    this.#addon = nativeAddon();
  }

  compute(input: SurvivalInput): SurvivalOutput {
    const { workloads, states, horizon, transitions, endState } = validateSurvivalInput(input);
    return this.#addon.computeSurvival(workloads, states, horizon, transitions, endState);
  }
}
