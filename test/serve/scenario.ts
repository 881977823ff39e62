/**
 * A seeded agentic workload as batch items (docs/serving.md, "The batch
 * schema"), and the same items applied to an in-process Runtime: the oracle
 * the sidecar's answers are compared with.
 */
import { Tier } from '../../src/blocks/types.js';
import type { FrameworkEvent } from '../../src/policies/types.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { seededRandom } from '../../src/util/random.js';
import { BS, chain } from './sidecar.js';

export const OP = { sessionStart: 1, stepStart: 2, stepEnd: 3, toolStart: 4, toolEnd: 5, sessionEnd: 6, admit: 16, prefillDone: 17, decode: 18, release: 19, act: 20 } as const;

/** Little-endian 8-byte words, the bin form of hashes. */
export function hashBin(hashes: readonly bigint[]): Uint8Array {
  return new Uint8Array(BigUint64Array.from(hashes).buffer);
}

/**
 * Sessions of two workloads whose agents share a system prompt and grow
 * their histories, with tool calls and act() between steps, on tiers small
 * enough that blocks are evicted and demoted. Hashes alternate between the
 * bin form and uint64 arrays.
 */
export function scenario(seed: number, sessions: number): unknown[][] {
  const random = seededRandom(seed);
  const items: unknown[][] = [];
  let t = 0;
  let requestId = 1;
  const agents = ['planner', 'coder', 'reviewer'];
  const live = Array.from({ length: sessions }, (_, s) => ({ name: `s${s}`, workload: s % 3 === 2 ? 'ops' : 'dev', turns: 0, history: [] as [string, number][] }));
  for (const s of live) items.push([OP.sessionStart, (t += 0.5), s.name, s.workload]);
  for (let round = 0; round < 6; round++) {
    for (const s of live) {
      const agent = agents[Math.floor(random() * agents.length)]!;
      items.push([OP.stepStart, (t += 0.25), s.name, s.workload, agent]);
      s.history.push([`${s.name}/turn${s.turns++}`, 1 + Math.floor(random() * 2)]);
      const pieces: [string, number][] = [[`system/${s.workload}`, 2], ...s.history];
      const hashes = chain(...pieces);
      const numTokens = hashes.length * BS + Math.floor(random() * BS);
      const id = requestId++;
      const form = random() < 0.5 ? hashBin(hashes) : hashes;
      items.push([OP.admit, id, numTokens, form, s.name, s.workload, agent, (t += 0.01)]);
      items.push([OP.prefillDone, id, (t += 0.01)]);
      const decoded = chain(...pieces, [`${s.name}/reply${s.turns}`, 1]).slice(hashes.length);
      items.push([OP.decode, id, BS, random() < 0.5 ? hashBin(decoded) : decoded, (t += 0.01)]);
      items.push([OP.release, id, (t += 0.01)]);
      items.push([OP.stepEnd, (t += 0.01), s.name, s.workload, agent]);
      if (random() < 0.5) {
        items.push([OP.toolStart, (t += 0.01), s.name, s.workload, agent, 'search']);
        items.push([OP.act, (t += 0.01)]);
        items.push([OP.toolEnd, (t += 0.2), s.name, s.workload, agent, 'search']);
      }
    }
    items.push([OP.act, (t += 0.01)]);
  }
  for (const s of live.slice(0, Math.floor(sessions / 2))) items.push([OP.sessionEnd, (t += 0.1), s.name]);
  items.push([OP.act, (t += 0.01)]);
  return items;
}

const FRAMEWORK: Record<number, FrameworkEvent['type']> = { 1: 'session.start', 2: 'step.start', 3: 'step.end', 4: 'tool.start', 5: 'tool.end', 6: 'session.end' };

function hashes(value: unknown): BigUint64Array {
  if (value instanceof Uint8Array) return new BigUint64Array(value.slice().buffer);
  return BigUint64Array.from((value as (bigint | number)[]).map((v) => BigInt(v)));
}

/** What the sidecar should answer for one item, computed on `rt` (block ids as plain arrays). */
export function expected(rt: Runtime, item: readonly unknown[]): unknown[] {
  const [op, a, b, c, d, e, f, g] = item as [number, any, any, any, any, any, any, any];
  switch (op) {
    case OP.admit: {
      const decision = rt.admit({ requestId: a, numTokens: b, hashes: hashes(c), session: d ?? undefined, agent: e == null ? undefined : { workload: e, agent: f }, time: g ?? undefined });
      return decision === null ? [1] : [0, decision.cachedDeviceTokens, decision.loadedBlocks, Array.from(decision.blockIds), Array.from(decision.blockTable)];
    }
    case OP.prefillDone:
      return [0, Array.from(rt.prefillDone(a, b ?? undefined))];
    case OP.decode: {
      const added = rt.decode(a, b, c == null ? undefined : hashes(c), d ?? undefined);
      return added === null ? [1] : [0, Array.from(added)];
    }
    case OP.release:
      rt.release(a, b ?? undefined);
      return [0];
    case OP.act: {
      const r = rt.act(a ?? undefined);
      const actions = r.actions.map((x) => (x.type === 'pin' ? [x.type, x.key, x.leafBlockId] : x.type === 'unpin' ? [x.type, x.key] : [x.type, Array.from(x.blockIds)]));
      return [0, r.demoted, r.evicted, r.prefetched, r.pinned, r.unpinned, actions];
    }
    default: {
      const type = FRAMEWORK[op]!;
      const event = (
        type === 'session.start' ? { type, time: a, session: b, workload: c }
        : type === 'session.end' ? { type, time: a, session: b }
        : type === 'tool.start' || type === 'tool.end' ? { type, time: a, session: b, agent: { workload: c, agent: d }, tool: e }
        : { type, time: a, session: b, agent: { workload: c, agent: d } }
      ) as FrameworkEvent;
      const before = rt.stats.ignored;
      rt.observe(event);
      const after = rt.stats.ignored;
      const reason = Object.keys(after).find((k) => after[k] !== before[k]);
      return [0, reason ?? null];
    }
  }
}

/** A batch result with its bins (Int32 little-endian) as plain arrays, comparable with {@link expected}. */
export function plain(result: unknown[]): unknown[] {
  const words = (v: unknown) => (v instanceof Uint8Array ? Array.from(new Int32Array(v.slice().buffer)) : v);
  if (result[0] !== 0) return result;
  if (result.length === 7 && Array.isArray(result[6])) {
    return [...result.slice(0, 6), (result[6] as unknown[][]).map((a) => (a.length === 2 && a[1] instanceof Uint8Array ? [a[0], words(a[1])] : a))];
  }
  return result.map(words);
}

/** Every block's tier and hash: equal on two runtimes when they evicted and demoted the same blocks. */
export function blockState(rt: Runtime): { tier: number[]; hash: string[] } {
  const m = rt.manager.metadata;
  return { tier: Array.from(m.tier), hash: Array.from(m.hash, (h, i) => (m.tier[i] === Tier.Free ? '-' : h.toString(16))) };
}
