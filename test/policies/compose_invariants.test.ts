/**
 * Property: safety (with an isolated tenant), hints and tool-memo, each
 * alone beside a scorer and all composed together, never break the block
 * manager's invariants under random streams of framework events, hints
 * and engine calls; once every request is released and every hint's TTL
 * has passed, nothing stays pinned.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { HINT_VERBS, type PolicyAnswer } from '../../src/policies/types.js';
import { Runtime, type PolicySpec } from '../../src/runtime/runtime.js';

const BS = 4;
const safety = {
  name: 'safety',
  options: {
    rules: {
      rules: [
        { id: 'no-shell', agent: 'b', tool: 'shell', action: 'deny' },
        { id: 'no-a-to-c', agent: 'a', handoffTo: 'c', action: 'deny' },
        { id: 'budget', agent: '*', maxCalls: 4, action: 'log' },
      ],
      isolate: ['w1'],
    },
  },
};
const hints = { name: 'hints', options: { maxPinnedShare: 0.5, maxTtlSeconds: 30 } };
const memo = { name: 'tool-memo', options: { tools: { read: { reads: ['db'] }, write: { writes: ['db'] } } } };
const COMBOS: PolicySpec[][] = [
  ['cachesage', safety],
  ['lru', hints],
  ['cachesage', memo],
  ['cachesage', 'ttl', safety, hints, memo],
];

/** Both workloads send the same prompts: the isolated one must never share them. */
function hashesOf(piece: number, length: number): BigUint64Array {
  return BigUint64Array.from({ length }, (_, i) => BigInt(piece * 100 + i + 1));
}

/** Committed blocks used by more than one workload (metadata workload -1). */
function blocksOfSeveralWorkloads(rt: Runtime): number {
  const m = rt.manager.metadata;
  let n = 0;
  for (let b = 0; b < rt.manager.numBlockIds; b++) if (m.committed[b] === 1 && m.workload[b] === -1) n++;
  return n;
}

describe('safety, hints and tool-memo keep the block manager consistent', () => {
  it('under random streams of events, hints and engine calls', () => {
    const agents = ['a', 'b', 'c'];
    const tools = ['shell', 'read', 'write'];
    const event = fc.oneof(
      fc.record({ kind: fc.constant('start' as const), s: fc.nat(3) }),
      fc.record({ kind: fc.constant('end' as const), s: fc.nat(3) }),
      fc.record({ kind: fc.constant('step' as const), s: fc.nat(3), a: fc.nat(2) }),
      fc.record({ kind: fc.constant('tool' as const), s: fc.nat(3), a: fc.nat(2), tool: fc.nat(2), args: fc.nat(2), result: fc.nat(2), ends: fc.boolean() }),
      fc.record({ kind: fc.constant('hint' as const), s: fc.nat(3), a: fc.nat(2), verb: fc.nat(HINT_VERBS.length - 1), ttl: fc.integer({ min: 1, max: 60 }), explicit: fc.boolean(), p: fc.nat(4) }),
      fc.record({ kind: fc.constant('call' as const), s: fc.nat(3), a: fc.nat(2), p: fc.nat(4), len: fc.integer({ min: 1, max: 5 }), decode: fc.nat(5), keep: fc.boolean() }),
      fc.record({ kind: fc.constant('act' as const) }),
    );
    fc.assert(
      fc.property(fc.nat(COMBOS.length - 1), fc.integer({ min: 6, max: 16 }), fc.nat(8), fc.array(event, { maxLength: 80 }), (combo, device, host, events) => {
        const rt = new Runtime({ blocks: { blockSize: BS, deviceBlocks: device, hostBlocks: host }, policies: COMBOS[combo]!, now: () => 0, autoRefresh: false });
        const isolating = COMBOS[combo]!.includes(safety);
        const open: number[] = [];
        let id = 0;
        let t = 0;
        const session = (s: number) => `s${s}`;
        const workloadOf = (s: number) => `w${s % 2}`;
        const ref = (s: number, a: number) => ({ workload: workloadOf(s), agent: agents[a]! });
        for (const e of events) {
          t += 1;
          let answer: PolicyAnswer | null = null;
          if (e.kind === 'start') answer = rt.observe({ type: 'session.start', time: t, session: session(e.s), workload: workloadOf(e.s) });
          if (e.kind === 'end') answer = rt.observe({ type: 'session.end', time: t, session: session(e.s) });
          if (e.kind === 'step') answer = rt.observe({ type: 'step.start', time: t, session: session(e.s), agent: ref(e.s, e.a) });
          if (e.kind === 'tool') {
            const tool = tools[e.tool]!;
            answer = rt.observe({ type: 'tool.start', time: t, session: session(e.s), agent: ref(e.s, e.a), tool, argsHash: `x${e.args}` });
            if (e.ends) rt.observe({ type: 'tool.end', time: t + 0.5, session: session(e.s), agent: ref(e.s, e.a), tool, resultHash: `r${e.result}` });
          }
          if (e.kind === 'hint') {
            const verb = HINT_VERBS[e.verb]!;
            answer = rt.observe({ type: 'hint', time: t, session: session(e.s), agent: ref(e.s, e.a), verb, ttlSeconds: e.ttl, ...(e.explicit ? { hashes: hashesOf(e.p, 3) } : {}) });
          }
          if (e.kind === 'act') rt.act(t);
          if (e.kind === 'call') {
            const hashes = hashesOf(e.p, e.len);
            try {
              const d = rt.admit({ requestId: ++id, hashes, numTokens: e.len * BS + 1, session: session(e.s), agent: ref(e.s, e.a), time: t });
              if (d) {
                rt.prefillDone(id, t);
                if (e.decode > 0) rt.decode(id, e.decode, undefined, t);
                if (e.keep) open.push(id);
                else rt.release(id, t);
              }
            } catch (error) {
              // The documented misuse only: a request growing past the device tier.
              expect(String(error)).toMatch(/needs \d+ blocks but the device tier holds|would need more blocks than the device tier holds|belongs to workload/);
            }
          }
          if (answer !== null) expect(['deny', 'memo']).toContain(answer.type);
          expect(rt.manager.checkInvariants()).toBe('');
          if (isolating) expect(blocksOfSeveralWorkloads(rt)).toBe(0);
        }
        for (const r of open) rt.release(r, t);
        rt.observe({ type: 'session.start', time: t, session: 'last', workload: 'w0' });
        rt.act(t + 1000);
        expect(rt.manager.pinnedDeviceBlocks()).toBe(0);
        expect(rt.manager.checkInvariants()).toBe('');
      }),
      { numRuns: 120, seed: 7 },
    );
  });
});
