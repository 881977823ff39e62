import { describe, expect, it } from 'vitest';

import { createBatchShapingPolicy } from '../../src/policies/batch_shaping.js';
import type { WaitingRequest } from '../../src/policies/types.js';
import { simulate } from '../../src/sim/simulator.js';
import { prepareWorkload } from '../../src/sim/workload.js';
import type { TraceCall } from '../../src/trace/format.js';
import { chainOf, checkEngineInvariants, TEST_MODEL } from '../sim/engine_property.js';
import { TestContext } from './context.js';

const waiting = (hashes: BigUint64Array, position: number, bypassed = 0): WaitingRequest => ({
  hashes,
  promptTokens: hashes.length * 4,
  arrival: position,
  position,
  bypassed,
});

function scores(queue: WaitingRequest[], options?: Parameters<typeof createBatchShapingPolicy>[0]): number[] {
  const ctx = new TestContext({ blockSize: 4, deviceBlocks: 16 });
  ctx.serve(chainOf(1, 3));
  const policy = createBatchShapingPolicy(options);
  policy.attach!(ctx);
  const out = new Float64Array(queue.length);
  policy.scoreWaiting!(queue, out, 0);
  return Array.from(out);
}

describe('batch-shaping policy', () => {
  it('puts cached prefixes first, holds followers of an uncached shared prefix, and lets the starving go first', () => {
    const queue = [
      waiting(chainOf(2, 2), 0), // nothing cached: leads the prefix 2
      waiting(chainOf(1, 4), 1), // 3 of 4 blocks cached
      waiting(chainOf(2, 3), 2), // shares prefix 2's uncached first block: follows
      waiting(chainOf(2, 3), 3, 2), // overtaken in 2 iterations (the default bound): goes first
    ];
    expect(scores(queue)).toEqual([0, 12, -Infinity, Infinity]);
  });

  it('groups by the block that ends minSharedBlocks of uncached prefix', () => {
    const queue = [waiting(chainOf(1, 5), 0), waiting(chainOf(1, 4), 1), waiting(chainOf(1, 5), 2)];
    // Cached: 3 blocks. With 2 shared uncached blocks required, the 4-block prompt has none to share.
    expect(scores(queue, { minSharedBlocks: 2 })).toEqual([12, 12, -Infinity]);
    expect(scores(queue, { minSharedBlocks: 1 })).toEqual([12, -Infinity, -Infinity]);
  });

  it('is FCFS with maxBypass 0', () => {
    expect(scores([waiting(chainOf(2, 2), 0), waiting(chainOf(1, 4), 1)], { maxBypass: 0 })).toEqual([-0, -1]);
  });

  it('refuses unknown and out-of-range options, naming them', () => {
    expect(() => createBatchShapingPolicy({ maxBypas: 3 } as never)).toThrow(
      new TypeError('batch-shaping policy: unknown option "maxBypas" (known: maxBypass, minSharedBlocks)'),
    );
    expect(() => createBatchShapingPolicy({ maxBypass: -1 })).toThrow(new RangeError('batch-shaping policy: options.maxBypass must be in [0, 1000000], got -1'));
    expect(() => createBatchShapingPolicy({ minSharedBlocks: 0 })).toThrow(RangeError);
    expect(() => createBatchShapingPolicy({ minSharedBlocks: '2' as never })).toThrow(TypeError);
  });

  it('in the simulator: a follower waits one iteration and reuses its leader prefix instead of computing it twice', () => {
    const call = (session: string, id: string): TraceCall => ({
      session,
      agent: 'a',
      seq: 0,
      t: 0,
      segments: [
        { id: 'sys', tokens: 8 },
        { id, tokens: 4 },
      ],
      outputTokens: 4,
      outputId: `out-${id}`,
    });
    const workload = prepareWorkload('w', [call('A', 'a1'), call('B', 'b1')], 4, TEST_MODEL, 1);
    const run = (policy: string) => simulate({ workload, policy, deviceBlocks: 64, hostBlocks: 0, model: TEST_MODEL, arrivals: { sessionStarts: [0, 0] } });
    const fcfs = run('lru');
    const shaped = run('batch-shaping');
    // FCFS batches both: each computes 12 tokens (12 ms each, 24 ms together).
    expect(fcfs.deviceHitTokens).toBe(0);
    expect(Array.from(fcfs.ttftSeconds, (s) => Math.round(s * 1e6) / 1e3)).toEqual([24, 24]);
    // Shaped: A alone (12 ms), then B finds the 8-token prefix cached and
    // prefills 4 tokens beside A's first decode step (4 ms + 10 ms).
    expect(shaped.deviceHitTokens).toBe(8);
    expect(Array.from(shaped.ttftSeconds, (s) => Math.round(s * 1e6) / 1e3)).toEqual([12, 26]);
  });

  it('never breaks the block manager invariants, beside LRU or CacheSage', () => {
    checkEngineInvariants(() => ['batch-shaping']);
    checkEngineInvariants(() => ['cachesage', { name: 'batch-shaping', options: { maxBypass: 1 } }], 30);
  });
});
