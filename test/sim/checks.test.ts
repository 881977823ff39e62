/**
 * What replay, prepareWorkload and simulate refuse before any work (each
 * with the README's class and a message naming the argument), the device
 * capacity each policy ran with, and that a replay never moves a session's
 * time back.
 */
import { describe, expect, it } from 'vitest';

import { LLAMA3_8B_H100 } from '../../src/sim/cost_model.js';
import { replay } from '../../src/sim/replay.js';
import { simulate, type SimulationOptions } from '../../src/sim/simulator.js';
import { MAX_REPLAY_BLOCKS, prepareWorkload, replayBlocks } from '../../src/sim/workload.js';
import type { TraceCall } from '../../src/trace/format.js';
import { MAX_CALL_TOKENS } from '../../src/trace/limits.js';
import { generateWorkload, WORKLOAD_NAMES } from '../../src/workloads/index.js';

function call(session: string, seq: number, segments: [string, number][], outputId: string, outputTokens: number, t: number | null = null): TraceCall {
  return { session, agent: seq % 2 === 0 ? 'coder' : 'reviewer', seq, t, segments: segments.map(([id, tokens]) => ({ id, tokens })), outputTokens, outputId };
}

/** Two sessions of a coder and a reviewer over a shared system prompt; one reply re-sent with framing. */
const CALLS: TraceCall[] = [
  call('a', 0, [['system', 64], ['task-a', 20]], 'reply-a', 30, 0),
  call('a', 1, [['system', 64], ['task-a', 20], ['reply-a', 34]], 'reply-a2', 12, 9),
  call('b', 0, [['system', 64], ['task-b', 40]], 'reply-b', 50, 0),
  call('b', 1, [['system', 64], ['task-b', 40], ['reply-b', 54]], 'reply-b2', 8, 4),
];

/** What a call threw: its class and message. */
function thrown(run: () => unknown): { type: string; message: string } {
  try {
    run();
  } catch (error) {
    return { type: (error as Error).constructor.name, message: (error as Error).message };
  }
  throw new Error('the call did not throw');
}

describe('replay refuses bad arguments before any work', () => {
  it.each<[string, () => unknown, string, string]>([
    ['a name the runtime cannot carry', () => replay('n'.repeat(257), CALLS), 'RangeError', 'replay: name must have 1 to 256 characters, got 257'],
    ['calls that are not an array', () => replay('t', 'calls' as never), 'TypeError', 'replay: calls must be an array of trace calls, got the string "calls"'],
    ['an unknown option', () => replay('t', CALLS, { capcity: 1 } as never), 'TypeError', 'replay: unknown option "capcity" (known: policies, capacity, hostCapacity, blockSize, concurrency, arrivalRate, model, seed, onProgress, backend, observers, profile, deviceOnly, replicas, router, tools, toolGaps, ownArrivals)'],
    ['an unknown policy', () => replay('t', CALLS, { policies: ['lru', 'nope'] }), 'RangeError', 'replay: options.policies[1]: unknown policy "nope" (known: lru, lfu, kvflow, ttl, cachesage, belady, infinite, safety, hints, tool-memo, batch-shaping, speculative-prefill, fairness)'],
    ['a policy name of the wrong type', () => replay('t', CALLS, { policies: [3 as never] }), 'TypeError', 'replay: options.policies[0]: policy name must be a string, got number 3'],
    ['a capacity of no blocks', () => replay('t', CALLS, { capacity: { blocks: 0 } }), 'RangeError', 'replay: options.capacity.blocks must be in [1, 268435456], got 0'],
    ['a negative fraction', () => replay('t', CALLS, { capacity: { fraction: -0.5 } }), 'RangeError', 'replay: options.capacity.fraction must be a finite number > 0, got -0.5'],
    ['a capacity of the wrong shape', () => replay('t', CALLS, { hostCapacity: 3 as never }), 'TypeError', 'replay: options.hostCapacity must be {fraction} or {blocks}, got number 3'],
    ['a block size of 0', () => replay('t', CALLS, { blockSize: 0 }), 'RangeError', 'replay: options.blockSize must be in [1, 1048576], got 0'],
    ['no sessions in flight', () => replay('t', CALLS, { concurrency: 0 }), 'RangeError', 'replay: options.concurrency must be in [1, 2147483647], got 0'],
    ['an arrival rate of 0', () => replay('t', CALLS, { arrivalRate: 0 }), 'RangeError', 'replay: options.arrivalRate must be a finite number > 0, got 0'],
    ['an unknown model', () => replay('t', CALLS, { model: '7b' as never }), 'RangeError', 'replay: options.model must be one of 8b, 70b or a cost model object, got the string "7b"'],
    ['a cost model missing a field', () => replay('t', CALLS, { model: { ...LLAMA3_8B_H100, prefillTokensPerSecond: undefined } as never }), 'TypeError', 'replay: options.model.prefillTokensPerSecond must be a number, got undefined'],
    ['a cost model with a zero bandwidth', () => replay('t', CALLS, { model: { ...LLAMA3_8B_H100, hostToDeviceBytesPerSecond: 0 } }), 'RangeError', 'replay: options.model.hostToDeviceBytesPerSecond must be a finite number > 0, got 0'],
    ['tool gaps given as a string', () => replay('t', CALLS, { toolGaps: 'no' as never }), 'TypeError', 'replay: options.toolGaps must be a boolean, got the string "no"'],
    ['a fractional seed', () => replay('t', CALLS, { seed: 1.5 }), 'RangeError', 'replay: options.seed must be an integer, got 1.5'],
  ])('%s', (_name, run, type, message) => {
    expect(thrown(run)).toEqual({ type, message });
  });
});

describe('calls built in memory are checked with the trace rules', () => {
  it.each<[string, TraceCall[], string, string]>([
    ['a 4-billion-token segment', [call('a', 0, [['huge', 4e9]], 'r', 1)], 'RangeError', 'prepareWorkload: calls[0]: segments[0].tokens is 4,000,000,000, more than the 2,097,152 tokens a segment may hold (limits: docs/trace-format.md)'],
    ['tokens of the wrong type', [CALLS[0]!, call('a', 1, [['x', '5' as never]], 'r', 1)], 'TypeError', 'prepareWorkload: calls[1]: segments[0].tokens must be a non-negative integer'],
    ['a missing reply id', [{ ...CALLS[0]!, outputId: undefined as never }], 'TypeError', 'prepareWorkload: calls[0]: outputId must be a non-empty string of at most 64 characters'],
    ['seq going back', [CALLS[1]!, CALLS[0]!], 'RangeError', 'prepareWorkload: calls[1]: seq 0 does not increase within session "a" (previous seq 1)'],
    ['time going back', [CALLS[0]!, CALLS[1]!, call('a', 2, [['s', 1]], 'r', 1, 5)], 'RangeError', 'prepareWorkload: calls[2]: t 5 is earlier than t 9 of the previous call of session "a" at calls[1]: time does not go back within a session (docs/trace-format.md)'],
    ['a segment id with two counts in one session', [CALLS[0]!, call('a', 1, [['system', 65]], 'r', 1)], 'RangeError', 'prepareWorkload: calls[1]: segments[0].tokens: segment "system" has 65 tokens here but 64 at calls[0] in the same session "a" (within a session a segment id names one message, of one length: docs/trace-format.md)'],
  ])('%s', (_name, calls, type, message) => {
    expect(thrown(() => prepareWorkload('w', calls, 16, LLAMA3_8B_H100, 1))).toEqual({ type, message });
    expect(thrown(() => replay('w', calls)).message).toBe(message);
  });

  it('arguments of prepareWorkload itself', () => {
    expect(thrown(() => prepareWorkload('w', 5 as never, 16, LLAMA3_8B_H100, 1))).toEqual({ type: 'TypeError', message: 'prepareWorkload: calls must be an iterable of trace calls, got number 5' });
    expect(thrown(() => prepareWorkload('w', CALLS, 0, LLAMA3_8B_H100, 1))).toEqual({ type: 'RangeError', message: 'prepareWorkload: blockSize must be in [1, 1048576], got 0' });
    expect(thrown(() => prepareWorkload('', CALLS, 16, LLAMA3_8B_H100, 1))).toEqual({ type: 'RangeError', message: 'prepareWorkload: name must have 1 to 256 characters, got 0' });
  });

  it('counts the allowed ids with several token counts, as the reader does', () => {
    expect(prepareWorkload('w', CALLS, 16, LLAMA3_8B_H100, 1).tokenCounts).toEqual({ idsWithSeveralCounts: 2, referencesWithOtherCount: 2 });
    expect(replay('w', CALLS, { policies: ['lru'] }).tokenCounts).toEqual({ idsWithSeveralCounts: 2, referencesWithOtherCount: 2 });
  });

  it('refuses more blocks than a replay holds, at the block size given', () => {
    const huge = Array.from({ length: 9 }, (_, i) => call(`s${i}`, 0, [['x', MAX_CALL_TOKENS - 1]], `r${i}`, 1));
    const blocks = replayBlocks(huge, 1);
    expect(blocks).toBe(9 * MAX_CALL_TOKENS);
    expect(blocks).toBeGreaterThan(MAX_REPLAY_BLOCKS);
    expect(replayBlocks(huge, 16)).toBe(9 * (MAX_CALL_TOKENS / 16));
    expect(thrown(() => prepareWorkload('w', huge, 1, LLAMA3_8B_H100, 1))).toEqual({
      type: 'RangeError',
      message: 'prepareWorkload: the calls make 18,874,368 blocks of 1 tokens, more than the 16,777,216 a replay holds; use a larger blockSize',
    });
  });
});

describe('the device capacity each policy ran with', () => {
  const largest = Math.max(...CALLS.map((c) => Math.ceil((c.segments.reduce((n, s) => n + s.tokens, 0) + c.outputTokens) / 16)));

  it('is raised to the largest call, and says so, row by row', () => {
    const report = replay('w', CALLS, { policies: ['lru', 'cachesage', 'infinite'], capacity: { blocks: 1 } });
    expect(report.requestedCapacityBlocks).toBe(1);
    expect(report.largestCallBlocks).toBe(largest);
    expect(report.capacityBlocks).toBe(largest);
    const [lru, cachesage, infinite] = report.results;
    expect(lru!.capacity).toEqual({ requested: 1, effective: largest, raisedToFit: true });
    expect(cachesage!.capacity).toEqual({ requested: 1, effective: largest, raisedToFit: true });
    // The capacity bound runs with room for every block: not raised to fit, larger anyway.
    expect(infinite!.capacity.raisedToFit).toBe(false);
    expect(infinite!.capacity.effective).toBeGreaterThan(largest);
  });

  it('is the requested one when it holds the largest call', () => {
    const report = replay('w', CALLS, { policies: ['lru'], capacity: { blocks: largest + 3 } });
    expect(report.results[0]!.capacity).toEqual({ requested: largest + 3, effective: largest + 3, raisedToFit: false });
    expect(report.capacityBlocks).toBe(largest + 3);
  });
});

describe('simulate refuses what the serving loop cannot run', () => {
  const workload = prepareWorkload('w', CALLS, 16, LLAMA3_8B_H100, 1);
  const largest = Math.max(...workload.sessions.flatMap((s) => s.calls.map((c) => Math.ceil((c.promptTokens + c.outputTokens) / 16))));
  const options = (over: Partial<SimulationOptions>): SimulationOptions => ({
    workload,
    policy: 'lru',
    deviceBlocks: 64,
    hostBlocks: 0,
    model: LLAMA3_8B_H100,
    arrivals: { concurrency: 2 },
    ...over,
  });

  it.each<[string, Partial<SimulationOptions>, string, string]>([
    ['a device tier smaller than the largest call', { deviceBlocks: largest - 1 }, 'RangeError', `simulate: options.deviceBlocks ${largest - 1} cannot hold the largest call (${largest} blocks of prompt and reply)`],
    ['no sessions in flight', { arrivals: { concurrency: 0 } }, 'RangeError', 'simulate: options.arrivals.concurrency must be in [1, 2147483647], got 0'],
    ['a start time that is not finite', { arrivals: { sessionStarts: [0, Infinity] } }, 'RangeError', 'simulate: options.arrivals.sessionStarts[1] must be a finite time >= 0, got Infinity'],
    ['arrivals of the wrong shape', { arrivals: {} as never }, 'TypeError', 'simulate: options.arrivals must be {sessionStarts} or {concurrency}'],
    ['a workload that is not one', { workload: {} as never }, 'TypeError', 'simulate: options.workload must be a workload from prepareWorkload, got an Object'],
  ])('%s', (_name, over, type, message) => {
    expect(thrown(() => simulate(options(over)))).toEqual({ type, message });
  });

  it('runs with exactly the largest call', () => {
    expect(simulate(options({ deviceBlocks: largest })).ttftSeconds).toHaveLength(CALLS.length);
  });
});

describe('a replay never moves a session back in time', () => {
  it.each(WORKLOAD_NAMES)('%s: no event or engine call of a session goes back, closed and open loop', (name) => {
    const { calls } = generateWorkload(name, { seed: 5, sessions: 8 });
    const workload = prepareWorkload(name, calls, 16, LLAMA3_8B_H100, 5);
    let blocks = 0;
    let largest = 1;
    for (const s of workload.sessions) {
      blocks += s.blocks.size;
      for (const c of s.calls) largest = Math.max(largest, Math.ceil((c.promptTokens + c.outputTokens) / 16));
    }
    // A tight device tier, so policies evict, demote and prefetch.
    const deviceBlocks = Math.max(largest, Math.floor(blocks / 4));
    for (const policy of ['lru', 'cachesage', 'ttl']) {
      for (const arrivals of [{ concurrency: 3 }, { sessionStarts: workload.sessions.map((_, i) => i * 0.25) }]) {
        const run = simulate({ workload, policy, deviceBlocks, hostBlocks: blocks, model: LLAMA3_8B_H100, arrivals });
        expect(run.ttftSeconds).toHaveLength(workload.calls);
        expect(run.timeWentBack).toBe(0);
      }
    }
  }, 60_000);
});
