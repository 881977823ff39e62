/**
 * Shared by the engine-side policies' tests: a property that random
 * sessions served through a real Runtime and the engine's hooks (queue
 * ordering, speculative prefill) never break the block manager's
 * invariants; and small multi-agent traces for replays.
 */
import fc from 'fast-check';
import { expect } from 'vitest';

import type { PolicySpec } from '../../src/runtime/runtime.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { resolvePolicy } from '../../src/runtime/setup.js';
import type { CostModel } from '../../src/sim/cost_model.js';
import { EngineHooks, type Waiting } from '../../src/sim/engine_hooks.js';
import type { SimCall } from '../../src/sim/workload.js';
import type { TraceCall } from '../../src/trace/format.js';

const BS = 4;

/** Round numbers: 1000 prefill tok/s, 10 ms a decode step. */
export const TEST_MODEL: CostModel = {
  name: 'test',
  kvBytesPerToken: 1024,
  prefillTokensPerSecond: 1000,
  attentionSecondsPerTokenPair: 0,
  decodeIterationSeconds: 0.01,
  decodeSecondsPerSequence: 0,
  hostToDeviceBytesPerSecond: 1e12,
  transferLatencySeconds: 0,
  iterationTokenBudget: 100_000,
};

/** A chain of `blocks` block hashes; chains of one `prefix` share their leading blocks. */
export function chainOf(prefix: number, blocks: number): BigUint64Array {
  return BigUint64Array.from({ length: blocks }, (_, i) => BigInt(prefix * 1000 + i + 1));
}

type Op =
  | { kind: 'start' | 'toolEnd' | 'end'; s: number }
  | { kind: 'call'; s: number; a: number; p: number; len: number }
  | { kind: 'serve' }
  | { kind: 'finish'; r: number }
  | { kind: 'speculate'; spare: number }
  | { kind: 'act' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('start' as const, 'toolEnd' as const, 'end' as const), s: fc.nat(3) }),
  fc.record({ kind: fc.constant('call' as const), s: fc.nat(3), a: fc.nat(2), p: fc.nat(3), len: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('serve' as const) }),
  fc.record({ kind: fc.constant('finish' as const), r: fc.nat(20) }),
  fc.record({ kind: fc.constant('speculate' as const), spare: fc.nat(40) }),
  fc.record({ kind: fc.constant('act' as const) }),
);

/**
 * Random sessions, calls, tool gaps, queue orders and speculative prefills
 * through a Runtime with `policies` and the engine's hooks: every
 * invariant holds after every step, and nothing stays pinned at the end.
 */
export function checkEngineInvariants(policies: () => PolicySpec[], runs = 60): void {
  const agents = ['a', 'b', 'c'];
  fc.assert(
    fc.property(fc.integer({ min: 6, max: 16 }), fc.nat(8), fc.array(op, { maxLength: 70 }), (device, host, ops) => {
      const resolved = policies().map(resolvePolicy);
      const rt = new Runtime({ blocks: { blockSize: BS, deviceBlocks: device, hostBlocks: host, bytesPerBlock: 1024 }, policies: resolved, autoRefresh: false });
      const hooks = new EngineHooks(resolved, rt, BS);
      const waiting: Waiting[] = [];
      const running: { id: number; call: SimCall }[] = [];
      let t = 0;
      let next = 1;
      let arrived = 0;
      const name = (s: number) => `s${s}`;
      const ref = (call: SimCall) => ({ workload: 'w', agent: call.agent });
      for (const o of ops) {
        t += 0.5;
        if (o.kind === 'start') rt.observe({ type: 'session.start', time: t, session: name(o.s), workload: 'w' });
        if (o.kind === 'end') rt.observe({ type: 'session.end', time: t, session: name(o.s) });
        if (o.kind === 'toolEnd') rt.observe({ type: 'tool.end', time: t, session: name(o.s), agent: { workload: 'w', agent: 'a' }, tool: 'x' });
        if (o.kind === 'act') rt.act(t);
        if (o.kind === 'call') {
          const hashes = chainOf(o.p, o.len);
          const call: SimCall = { session: o.s, index: 0, agent: agents[o.a]!, promptTokens: o.len * BS, outputTokens: 1, promptHashes: hashes, allHashes: hashes, gapAfter: 1 };
          rt.observe({ type: 'step.start', time: t, session: name(o.s), agent: ref(call) });
          waiting.push({ call, arrival: t, position: arrived++, bypassed: 0 });
        }
        if (o.kind === 'serve') {
          if (hooks.orders) hooks.order(waiting, name, ref, t);
          const admitted: number[] = [];
          while (waiting.length > 0) {
            const { call, position } = waiting[0]!;
            if (call.promptTokens + call.outputTokens > device * BS) {
              waiting.shift();
              continue;
            }
            const decision = rt.admit({ requestId: next, hashes: call.promptHashes, numTokens: call.promptTokens + call.outputTokens, session: name(call.session), agent: ref(call), time: t });
            if (decision === null) break;
            rt.prefillDone(next, t);
            running.push({ id: next++, call });
            admitted.push(position);
            waiting.shift();
          }
          if (hooks.orders) hooks.noteBypassed(waiting, admitted);
        }
        if (o.kind === 'finish' && running.length > 0) {
          const [r] = running.splice(o.r % running.length, 1);
          rt.release(r!.id, t);
          rt.observe({ type: 'step.end', time: t, session: name(r!.call.session), agent: ref(r!.call) });
          rt.observe({ type: 'tool.start', time: t, session: name(r!.call.session), agent: ref(r!.call), tool: 'x' });
          rt.act(t);
        }
        if (o.kind === 'speculate' && hooks.speculates) {
          hooks.speculate(t, o.spare, TEST_MODEL, 1024);
          hooks.finishSpeculation(t, () => undefined);
        }
        rt.refreshSync(t);
        expect(rt.manager.checkInvariants()).toBe('');
      }
      for (const r of running) rt.release(r.id, t);
      expect(rt.manager.pinnedDeviceBlocks()).toBe(0);
      expect(rt.manager.checkInvariants()).toBe('');
    }),
    { numRuns: runs, seed: 7 },
  );
}

function traceCall(session: string, seq: number, t: number, segments: [string, number][], outputId: string, outputTokens: number, agent: string): TraceCall {
  return { session, agent, seq, t, segments: segments.map(([id, tokens]) => ({ id, tokens })), outputTokens, outputId };
}

/**
 * Seeded multi-agent sessions: each agent's prompt is its system prompt
 * plus its own history in the session, with tool gaps between calls.
 */
export function agentTrace(seed: number, sessions: number, prefix = 's'): TraceCall[] {
  let s = seed;
  const rand = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % n;
  };
  const out: TraceCall[] = [];
  for (let k = 0; k < sessions; k++) {
    const session = `${prefix}${k}`;
    const context: Record<string, [string, number][]> = {};
    const steps = 2 + rand(5);
    for (let i = 0; i < steps; i++) {
      const agent = i % 2 === 0 ? 'planner' : 'worker';
      const ctx = (context[agent] ??= [[`${prefix}sys-${agent}`, 24]]);
      ctx.push([`${session}-m${i}`, 3 + rand(9)]);
      out.push(traceCall(session, i, i * 2, [...ctx], `${session}-r${i}`, 2 + rand(6), agent));
      ctx.push([`${session}-r${i}`, 2 + rand(6)]);
    }
  }
  return out;
}
