/**
 * Tool records of the generated workloads: what an agent's tools did in
 * the gap after a call, for tool-result memoization. The calls themselves
 * are built first and never change; this pass reads their gaps and draws
 * from a stream of its own, so adding tool records shifts no other draw.
 *
 * Arguments are drawn Zipf-like, so a few are asked for again and again,
 * within a session and across them. A pure tool's result is fixed by its
 * arguments, shared by every session. A tool that reads or writes a
 * resource works on the session's own copy (a checkout, a customer's
 * orders): its arguments name the session, and what a read returns changes
 * after each write to that resource. A clock returns a new value each time.
 */
import type { ToolDeclaration, TraceCall, TraceToolCall } from '../trace/format.js';
import type { Rng } from './random.js';
import { contentId } from './session.js';

/** How one tool behaves, as the generator draws it. */
export type ToolUse =
  | { tool: string; kind: 'pure'; weight: number; distinctArgs: number; cost: number }
  | { tool: string; kind: 'reads'; resource: string; ttlSeconds: number; weight: number; distinctArgs: number; cost: number }
  | { tool: string; kind: 'writes'; resource: string; weight: number; distinctArgs: number; cost: number }
  | { tool: string; kind: 'clock'; weight: number; cost: number };

/** The tools of a shape and how often they are called. */
export interface ToolProfile {
  /** The tools; at each call one is picked with probability proportional to its `weight`. */
  readonly uses: readonly ToolUse[];
  /** Weights of how many tool calls fill one gap, by count ("1", "2", ...). */
  readonly callsPerGap: Readonly<Record<string, number>>;
  /** Exponent s of the arguments' Zipf law: argument k is drawn with weight 1 / (k + 1)^s. */
  readonly zipfExponent: number;
  /** Spread (sigma of ln) of a call's share of its gap around its tool's `cost`. */
  readonly costSigma: number;
}

/** What a trace header declares of a profile's tools, by tool name. */
export function toolDeclarations(profile: ToolProfile): Record<string, ToolDeclaration> {
  const out: Record<string, ToolDeclaration> = {};
  for (const use of profile.uses) {
    switch (use.kind) {
      case 'pure':
        out[use.tool] = { pure: true };
        break;
      case 'reads':
        out[use.tool] = { reads: [use.resource], ttlSeconds: use.ttlSeconds };
        break;
      case 'writes':
        out[use.tool] = { writes: [use.resource] };
        break;
      case 'clock':
        out[use.tool] = { never: true };
        break;
    }
  }
  return out;
}

/** Cumulative Zipf weights, by (n, s): the same few laws serve every session. */
const zipfTables = new Map<string, Float64Array>();

function zipf(rng: Rng, n: number, s: number): number {
  const key = `${n}/${s}`;
  let cdf = zipfTables.get(key);
  if (cdf === undefined) {
    cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) cdf[k] = total += 1 / (k + 1) ** s;
    for (let k = 0; k < n; k++) cdf[k]! /= total;
    zipfTables.set(key, cdf);
  }
  const u = rng.float();
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/**
 * Adds tool records to the calls of one session (in seq order): every call
 * followed by a gap before the session's next call gets `tools`, whose
 * `seconds` sum to that gap. The last call and calls with no gap get none.
 *
 * @param workload names the arguments pure tools share across sessions.
 * @param session names the arguments of the session's own resources.
 * @param rng the tool records' own stream.
 */
export function addToolRecords(calls: TraceCall[], profile: ToolProfile, rng: Rng, workload: string, session: string): void {
  const weights: Record<string, number> = {};
  for (const use of profile.uses) weights[use.tool] = use.weight;
  const byName = new Map(profile.uses.map((use) => [use.tool, use]));
  /** Writes so far to each resource of this session: what its reads return depends on it. */
  const versions = new Map<string, number>();
  for (let i = 0; i + 1 < calls.length; i++) {
    const call = calls[i]!;
    const next = calls[i + 1]!;
    if (call.tEnd === undefined || next.t === null) continue;
    const gap = round(next.t - call.tEnd);
    if (!(gap > 0)) continue;
    const count = Number(rng.pick(profile.callsPerGap));
    const tools: TraceToolCall[] = [];
    const shares: number[] = [];
    for (let j = 0; j < count; j++) {
      const use = byName.get(rng.pick(weights))!;
      shares.push(use.cost * rng.logNormal(1, profile.costSigma));
      tools.push(record(use, rng, profile.zipfExponent, workload, session, versions, `${call.seq}/${j}`));
    }
    const total = shares.reduce((a, b) => a + b, 0);
    let left = gap;
    tools.forEach((t, j) => {
      t.seconds = j === tools.length - 1 ? Math.max(0, round(left)) : round((gap * shares[j]!) / total);
      left -= t.seconds;
    });
    call.tools = tools;
  }
}

function record(use: ToolUse, rng: Rng, s: number, workload: string, session: string, versions: Map<string, number>, at: string): TraceToolCall {
  switch (use.kind) {
    case 'pure': {
      const args = `${workload}\0${use.tool}\0${zipf(rng, use.distinctArgs, s)}`;
      return { tool: use.tool, argsHash: contentId(`args\0${args}`), resultHash: contentId(`result\0${args}`) };
    }
    case 'reads': {
      const args = `${session}\0${use.tool}\0${zipf(rng, use.distinctArgs, s)}`;
      const version = versions.get(use.resource) ?? 0;
      return { tool: use.tool, argsHash: contentId(`args\0${args}`), resultHash: contentId(`result\0${args}\0${use.resource}@${version}`) };
    }
    case 'writes': {
      const args = `${session}\0${use.tool}\0${zipf(rng, use.distinctArgs, s)}`;
      const version = (versions.get(use.resource) ?? 0) + 1;
      versions.set(use.resource, version);
      return { tool: use.tool, argsHash: contentId(`args\0${args}\0${at}`), resultHash: contentId(`result\0${args}\0${use.resource}@${version}`) };
    }
    case 'clock':
      // No arguments; the time it tells is the session's and the moment's.
      return { tool: use.tool, argsHash: contentId(`args\0${workload}\0${use.tool}`), resultHash: contentId(`result\0${session}\0${use.tool}\0${at}`) };
  }
}
