/**
 * act: when a session's step ends, CacheSage loads from host the prompt
 * blocks its likely next agents will read, likeliest first, parents first,
 * within a byte budget of the host->device bandwidth times the expected gap.
 */
import { Tier } from '../../blocks/types.js';
import type { SessionView } from '../types.js';
import { tableOf } from './tables.js';
import { continuationOf, modelAgent, stateOf, workloadOf, type CacheSageState } from './workload.js';

// Below this continuation rate an agent's next prompt usually starts afresh:
// its session context is not worth the transfer.
const PREFETCH_MIN_CONTINUATION = 0.5;

/** Host blocks of the likely next agents' prompts, parents first, within the byte budget. */
export function prefetchPlan(state: CacheSageState, session: SessionView): number[] {
  const ctx = state.context!;
  const { defaultGapSeconds, prefetchThreshold } = state.settings;
  const w = workloadOf(state, session.workload);
  const table = tableOf(state, w);
  const gap = w.gap.get(modelAgent(w, session.agent!))?.mean() ?? defaultGapSeconds;
  const budget = Math.floor((ctx.hostToDeviceBytesPerSecond * gap) / ctx.bytesPerBlock);
  if (budget <= 0) return [];
  const at = stateOf(w, session);
  const candidates: [number, string][] = [];
  for (let b = 2; b < table.states; b++) {
    const p = table.transitions[at * table.states + b]!;
    if (p >= prefetchThreshold) candidates.push([p, w.model.agents[b - 2]!]);
  }
  candidates.sort((x, y) => y[0] - x[0] || (x[1] < y[1] ? -1 : 1));
  const chosen: number[] = [];
  const seen = new Set<number>();
  const m = ctx.manager.metadata;
  // The plan only reads the cache: one lookup per distinct prompt (the
  // session's last prompt is a source of every candidate agent).
  const lookups = new Map<BigUint64Array, ReturnType<typeof ctx.manager.lookup>>();
  const lookup = (hashes: BigUint64Array) => {
    let found = lookups.get(hashes);
    if (found === undefined) lookups.set(hashes, (found = ctx.manager.lookup(hashes)));
    return found;
  };
  for (const [, agent] of candidates) {
    // The agent's shared prefix (system prompt, tool schemas), found in
    // its last prompt from any session: only the blocks several sessions
    // share, not that session's own history.
    const sources: [BigUint64Array | undefined, boolean][] = [[w.lastPrompt.get(agent), true]];
    // This session's context, only for agents that learned to extend it
    // (a fresh conversation per phase would leave it unused).
    if (continuationOf(w, agent) >= PREFETCH_MIN_CONTINUATION) {
      sources.push([ctx.lastPrompt(session.name), false], [ctx.lastPrompt(session.name, agent), false]);
    }
    for (const [hashes, sharedOnly] of sources) {
      if (!hashes || hashes.length === 0) continue;
      const match = lookup(hashes);
      for (let i = match.deviceBlocks; i < match.blockIds.length && chosen.length < budget; i++) {
        const id = match.blockIds[i]!;
        // Parents come first: stop at the first block this source may not take.
        if (sharedOnly && m.session[id] !== -1) break;
        if (seen.has(id) || m.tier[id] !== Tier.Host) continue;
        seen.add(id);
        chosen.push(id);
      }
    }
    if (chosen.length >= budget) break;
  }
  return chosen;
}
