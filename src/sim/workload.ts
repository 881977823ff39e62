/**
 * A trace prepared for replay: calls grouped by session, each with its
 * block hashes (prompt, and prompt plus reply), token counts, and the tool
 * gap before the session's next call.
 */
import type { TraceCall } from '../trace/format.js';
import { PromptHasher } from '../trace/hashing.js';
import { seededRandom } from '../util/random.js';
import { prefillSeconds, type CostModel } from './cost_model.js';

export interface SimCall {
  session: number;
  index: number;
  agent: string;
  promptTokens: number;
  outputTokens: number;
  /** Full blocks of the prompt. */
  promptHashes: BigUint64Array;
  /** Full blocks of the prompt followed by the reply: what later calls extend. */
  allHashes: BigUint64Array;
  /** Seconds between this call's reply and the session's next call (tool time). */
  gapAfter: number;
}

export interface SimSession {
  name: string;
  calls: SimCall[];
  /** Every block the session references (prompts and replies). */
  blocks: Set<bigint>;
}

export interface SimWorkload {
  name: string;
  blockSize: number;
  sessions: SimSession[];
  calls: number;
}

/** Median 0.5 s, log-normal with sigma 1: tool time when a trace has no timestamps. */
function sampleGap(random: () => number): number {
  const u1 = Math.max(random(), 1e-12);
  const u2 = random();
  const normal = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return 0.5 * Math.exp(normal);
}

/**
 * Groups calls by session (in order of first appearance, calls by seq),
 * hashes them, and derives tool gaps: from timestamps when the trace has
 * them (the time between calls less what this engine would take to serve
 * the earlier one uncached), otherwise from a seeded log-normal.
 */
export function prepareWorkload(name: string, calls: Iterable<TraceCall>, blockSize: number, model: CostModel, seed: number): SimWorkload {
  const hasher = new PromptHasher(blockSize);
  const bySession = new Map<string, TraceCall[]>();
  for (const call of calls) {
    let list = bySession.get(call.session);
    if (!list) bySession.set(call.session, (list = []));
    list.push(call);
  }
  const random = seededRandom(seed);
  const sessions: SimSession[] = [];
  let total = 0;
  for (const [sessionName, list] of bySession) {
    list.sort((a, b) => a.seq - b.seq);
    const session: SimSession = { name: sessionName, calls: [], blocks: new Set() };
    list.forEach((call, index) => {
      const prompt = hasher.hashPrompt(call.segments);
      const all = hasher.hashWithOutput(call.segments, call.outputId, call.outputTokens);
      for (const h of all.hashes) session.blocks.add(h);
      const next = list[index + 1];
      let gapAfter = 0;
      if (next) {
        if (call.t !== null && next.t !== null) {
          const served = prefillSeconds(model, prompt.numTokens, 0) + call.outputTokens * model.decodeIterationSeconds;
          gapAfter = Math.max(0, next.t - call.t - served);
        } else {
          gapAfter = sampleGap(random);
        }
      }
      session.calls.push({
        session: sessions.length,
        index,
        agent: call.agent,
        promptTokens: prompt.numTokens,
        outputTokens: Math.max(1, call.outputTokens),
        promptHashes: prompt.hashes,
        allHashes: all.hashes,
        gapAfter,
      });
    });
    total += list.length;
    sessions.push(session);
  }
  return { name, blockSize, sessions, calls: total };
}
