/** CacheSage's options: defaults, and the checks that refuse a bad or unknown one. */
import type { SurvivalBackend } from '../../compute/survival.js';
import { ReferenceSurvivalBackend } from '../../compute/survival.js';
import { NativeSurvivalBackend } from '../../compute/cpu/survival.js';
import { checkInt, checkNumber, checkOptionsObject } from '../../util/check.js';
import { TransitionModel } from './transitions.js';

export interface CacheSageOptions {
  /** Steps ahead the reuse probability looks (default 8). */
  horizon?: number;
  /** Transition counts' half-life in hand-offs (default 500). */
  halfLife?: number;
  /** Dirichlet prior (default 0.1). */
  alpha?: number;
  /** Recompute a workload's survival table after this many hand-offs (default 16). */
  refreshEvery?: number;
  /** Prefetch agents whose next-step probability is at least this (default 0.1). */
  prefetchThreshold?: number;
  /** Seconds assumed between steps before any gap is observed (default 1). */
  defaultGapSeconds?: number;
  /** A session with no event for this long is treated as ended (default 600 s). */
  idleTimeoutSeconds?: number;
  /**
   * Who computes the survival tables: 'backend' (default) batches the
   * periodic refreshes of every workload onto the runtime's compute backend
   * (runtime.refresh), and computes a workload's first table, or one for a
   * new agent, on the native CPU at once; 'native', 'reference' or a
   * SurvivalBackend compute everything with that, still at refresh points.
   */
  survival?: 'backend' | 'native' | 'reference' | SurvivalBackend;
}

/** The options with their defaults applied. */
export interface Settings {
  horizon: number;
  halfLife: number;
  alpha: number;
  refreshEvery: number;
  prefetchThreshold: number;
  defaultGapSeconds: number;
  idleTimeoutSeconds: number;
  /** Computes first tables synchronously; and refreshes too when the caller pinned a backend. */
  survival: SurvivalBackend;
  /** The caller pinned a survival backend: refreshes compute with it, not the runtime's. */
  ownSurvival: boolean;
}

const KNOWN = ['horizon', 'halfLife', 'alpha', 'refreshEvery', 'prefetchThreshold', 'defaultGapSeconds', 'idleTimeoutSeconds', 'survival'];

/**
 * @throws TypeError on a malformed or unknown option.
 * @throws RangeError on an option out of range.
 */
export function settingsOf(options: unknown): Settings {
  const o = checkOptionsObject(options, 'cachesage policy', KNOWN) as CacheSageOptions;
  const name = (option: string) => `cachesage policy: options.${option}`;
  const survival = o.survival ?? 'backend';
  let backend: SurvivalBackend;
  if (survival === 'native' || survival === 'backend') backend = new NativeSurvivalBackend();
  else if (survival === 'reference') backend = new ReferenceSurvivalBackend();
  else if (typeof survival === 'object' && survival !== null && typeof survival.compute === 'function') backend = survival;
  else throw new RangeError(`${name('survival')} must be 'backend', 'native', 'reference' or a SurvivalBackend`);
  const settings: Settings = {
    horizon: checkInt(o.horizon ?? 8, name('horizon'), 1, 256),
    halfLife: o.halfLife ?? 500,
    alpha: o.alpha ?? 0.1,
    refreshEvery: checkInt(o.refreshEvery ?? 16, name('refreshEvery'), 1, 1_000_000),
    prefetchThreshold: checkNumber(o.prefetchThreshold ?? 0.1, name('prefetchThreshold'), 0, 1),
    defaultGapSeconds: checkNumber(o.defaultGapSeconds ?? 1, name('defaultGapSeconds'), 0, 1e6),
    idleTimeoutSeconds: checkNumber(o.idleTimeoutSeconds ?? 600, name('idleTimeoutSeconds'), 0, 1e9),
    survival: backend,
    ownSurvival: survival !== 'backend',
  };
  // Validates halfLife and alpha once, with the model's own messages.
  new TransitionModel({ halfLife: settings.halfLife, alpha: settings.alpha });
  return settings;
}
