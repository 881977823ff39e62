/**
 * Several workloads on one engine: the sessions of prepared workloads,
 * interleaved in proportion (session k of a workload of n sessions at
 * (k + 1/2) / n of the run), so each tenant keeps its share of the
 * sessions in flight throughout, each session filed under its own
 * workload. What a noisy-neighbour replay runs.
 */
import { BlockIds, SessionBlocks } from './block_ids.js';
import { checkWorkloadName, type SimCall, type SimSession, type SimWorkload } from './workload.js';

/**
 * Mixes prepared workloads (same block size) into one. Session names
 * become `workload/session`; the events of a session name its workload.
 *
 * @throws TypeError / RangeError when `parts` is empty, has two workloads
 *   of one name, or their block sizes differ.
 */
export function mixWorkloads(name: string, parts: readonly SimWorkload[]): SimWorkload {
  checkWorkloadName(name, 'mixWorkloads: name');
  if (!Array.isArray(parts) || parts.length === 0) throw new TypeError('mixWorkloads: parts must be a non-empty array of workloads');
  const blockSize = parts[0]!.blockSize;
  const names = new Set<string>();
  for (const [i, part] of parts.entries()) {
    if (part.blockSize !== blockSize) {
      throw new RangeError(`mixWorkloads: parts[${i}] (${part.name}) has block size ${part.blockSize}, parts[0] has ${blockSize}`);
    }
    if (names.has(part.name)) throw new RangeError(`mixWorkloads: two parts are named ${JSON.stringify(part.name)}`);
    names.add(part.name);
  }
  const blockIds = new BlockIds(parts.reduce((n, p) => n + p.blockIds.size, 0));
  const sessions: SimSession[] = [];
  const order = parts
    .flatMap((part, p) => part.sessions.map((source: SimSession, k: number) => ({ part, p, source, at: (k + 0.5) / part.sessions.length })))
    .sort((a, b) => a.at - b.at || a.p - b.p);
  for (const { part, source } of order) {
    const index = sessions.length;
    const listed = new Set<number>();
    for (const call of source.calls) for (const h of call.allHashes) listed.add(blockIds.intern(h));
    sessions.push({
      name: `${part.name}/${source.name}`,
      calls: source.calls.map((call: SimCall) => ({ ...call, session: index })),
      blocks: new SessionBlocks(Int32Array.from(listed)),
      workload: part.name,
    });
  }
  const calls = parts.reduce((n, p) => n + p.calls, 0);
  const tokenCounts = {
    idsWithSeveralCounts: parts.reduce((n, p) => n + p.tokenCounts.idsWithSeveralCounts, 0),
    referencesWithOtherCount: parts.reduce((n, p) => n + p.tokenCounts.referencesWithOtherCount, 0),
  };
  return { name, blockSize, sessions, calls, blockIds, tokenCounts };
}
