/**
 * Where the runtime's time goes, by phase: a clock that charges the time
 * between two switches to the phase that was running, so nested phases
 * (events and rescoring inside an admit) are counted once, in the inner
 * one. One performance.now() read per switch, two per nested phase: a few
 * microseconds per LLM call, so it is on only when RuntimeOptions.profile
 * asks (NO_CLOCK otherwise, which costs nothing).
 */
import { performance } from 'node:perf_hooks';

/** The phases, in the order reports list them. */
export const PHASES = ['observe', 'admit', 'prefill', 'release', 'events', 'rescoring', 'refresh', 'act'] as const;
export type Phase = (typeof PHASES)[number];

const IDLE = PHASES.length;
const INDEX = Object.fromEntries(PHASES.map((phase, i) => [phase, i])) as Record<Phase, number>;

export class PhaseClock {
  readonly #seconds = new Float64Array(PHASES.length + 1);
  #current: number = IDLE;
  #since = 0;

  /** Starts charging `phase`; returns the phase to go back to. */
  enter(phase: Phase): number {
    return this.switchTo(INDEX[phase]);
  }

  /** Charges the time since the last switch to the running phase and runs `index` from now. */
  switchTo(index: number): number {
    const now = performance.now();
    this.#seconds[this.#current]! += now - this.#since;
    this.#since = now;
    const previous = this.#current;
    this.#current = index;
    return previous;
  }

  /** Seconds spent in each phase so far. */
  seconds(): Record<Phase, number> {
    const out = {} as Record<Phase, number>;
    PHASES.forEach((phase, i) => (out[phase] = this.#seconds[i]! / 1000));
    return out;
  }
}

/** The clock of a runtime that does not profile: every switch is free and nothing is charged. */
export const NO_CLOCK: Pick<PhaseClock, 'enter' | 'switchTo'> = Object.freeze({
  enter: (_phase: Phase): number => 0,
  switchTo: (_index: number): number => 0,
});
