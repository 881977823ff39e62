import type { TraceCall } from '../../src/trace/format.js';
import { seededRandom } from '../../src/util/random.js';

/** Largest |a - b| / (1 + |b|): the logits bar the engine's tests hold to. */
export function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!));
    if (!(error <= worst)) worst = Number.isNaN(error) ? Infinity : error;
  }
  return worst;
}

/** Logits computed in a different order (batch, chunking, cached KV) agree to this (f32). */
export const TOLERANCE = 1e-4;

export function randomTokens(vocab: number, count: number, seed: number): Int32Array {
  const random = seededRandom(seed);
  return Int32Array.from({ length: count }, () => Math.floor(random() * vocab));
}

/**
 * Sessions of a planner and two workers sharing a system prompt: each call
 * re-sends the session's history (earlier prompts' new messages and
 * replies) and adds a message of its own.
 */
export function agentTrace(sessions: number, callsPerSession: number, seed: number): TraceCall[] {
  const random = seededRandom(seed);
  const size = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const calls: TraceCall[] = [];
  for (let s = 0; s < sessions; s++) {
    const history = [{ id: 'system', tokens: 45 }];
    for (let c = 0; c < callsPerSession; c++) {
      const agent = c === 0 ? 'planner' : ['coder', 'reviewer'][c % 2]!;
      history.push({ id: `s${s}-m${c}`, tokens: size(5, 40) });
      const outputId = `s${s}-r${c}`;
      const outputTokens = size(3, 24);
      calls.push({ session: `s${s}`, agent, seq: c, t: null, segments: history.map((x) => ({ ...x })), outputTokens, outputId });
      history.push({ id: outputId, tokens: outputTokens });
    }
  }
  return calls;
}
