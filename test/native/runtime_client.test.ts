/**
 * The runtime client of the C ABI (cachesage.h, "runtime client") against a
 * real `cachesage serve` child process: the C program runs an agent session
 * (steps, a prompt admitted, prefilled, decoded and released, a second call
 * that hits the cached prefix, a second session that pushes blocks to host,
 * act, predict, copy plans) and prints one JSON line per call. Every line
 * must equal what an in-process Runtime decides on the same events; then
 * the sidecar's refusals (a wrong token included) must reach C as a status
 * and its message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CopyPlan } from '../../src/blocks/types.js';
import type { FrameworkEvent } from '../../src/policies/types.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { clientTest, describeRun, jsonLines, LAYOUT, requireBuilt, runProgram, startServe, TOKEN, type ServeProcess } from './runtime_client_peers.js';

const EVENT_TYPES = ['', 'session.start', 'step.start', 'step.end', 'tool.start', 'tool.end', 'session.end'] as const;

type Line = Record<string, any>;

/** Copy plans joined in order, as the client queues them. */
function joinPlans(plans: CopyPlan[]): Line {
  const out = { srcTier: [] as number[], srcSlot: [] as number[], dstTier: [] as number[], dstSlot: [] as number[], stageStarts: [] as number[] };
  for (const plan of plans) {
    const offset = out.srcTier.length;
    out.srcTier.push(...plan.srcTier);
    out.srcSlot.push(...plan.srcSlot);
    out.dstTier.push(...plan.dstTier);
    out.dstSlot.push(...plan.dstSlot);
    out.stageStarts.push(...Array.from(plan.stageStarts, (s) => s + offset));
  }
  return out;
}

/** What the in-process Runtime answers to the call a line records, in the line's own shape. */
function expectedLines(lines: Line[]): Line[] {
  const runtime = new Runtime({ blocks: { ...LAYOUT }, policies: ['cachesage'], now: () => 0 });
  let queued: CopyPlan[] = [];
  const queue = () => queued.push(runtime.takeCopyPlan());
  const hashes = (line: Line) => BigUint64Array.from((line['hashes'] as string[]).map((h) => BigInt(h)));
  return lines.map((line): Line => {
    switch (line['call']) {
      case 'info':
        return { call: 'info', blockSize: LAYOUT.blockSize, deviceBlocks: LAYOUT.deviceBlocks, hostBlocks: LAYOUT.hostBlocks };
      case 'observe': {
        const { type, time, session, workload, agent, tool } = line;
        const name = EVENT_TYPES[type as number]!;
        const event = (
          name === 'session.start'
            ? { type: name, time, session, workload }
            : name === 'session.end'
              ? { type: name, time, session }
              : { type: name, time, session, agent: { workload, agent }, ...(tool === null ? {} : { tool }) }
        ) as FrameworkEvent;
        const before = { ...runtime.stats.ignored };
        runtime.observe(event);
        const reason = Object.keys(runtime.stats.ignored).find((k) => runtime.stats.ignored[k] !== before[k]);
        const base = { call: 'observe', type, time, session, workload, agent, tool };
        return reason === undefined ? { ...base, applied: 1 } : { ...base, applied: 0, ignored: reason };
      }
      case 'admit': {
        const { requestId, numTokens, time, session, agent } = line;
        const decision = runtime.admit({ requestId, hashes: hashes(line), numTokens, session, agent: { workload: 'dev', agent }, time });
        queue();
        const base = { call: 'admit', requestId, numTokens, time, session, agent, hashes: line['hashes'] };
        if (decision === null) return { ...base, admitted: 0 };
        return {
          ...base,
          admitted: 1,
          cachedDeviceTokens: decision.cachedDeviceTokens,
          loadedBlocks: decision.loadedBlocks,
          blockIds: Array.from(decision.blockIds),
          blockTable: Array.from(decision.blockTable),
        };
      }
      case 'prefill_done': {
        const blockIds = Array.from(runtime.prefillDone(line['requestId'], line['time']));
        queue();
        return { call: 'prefill_done', requestId: line['requestId'], time: line['time'], blockIds };
      }
      case 'decode': {
        const { requestId, tokens, time } = line;
        const added = runtime.decode(requestId, tokens, hashes(line), time);
        queue();
        const base = { call: 'decode', requestId, tokens, time, hashes: line['hashes'] };
        return added === null ? { ...base, appended: 0 } : { ...base, appended: 1, blockIds: Array.from(added) };
      }
      case 'release':
        runtime.release(line['requestId'], line['time']);
        queue();
        return { call: 'release', requestId: line['requestId'], time: line['time'] };
      case 'act': {
        const r = runtime.act(line['now']);
        queue();
        const { demoted, evicted, prefetched, pinned, unpinned } = r;
        return { call: 'act', now: line['now'], demoted, evicted, prefetched, pinned, unpinned, actions: r.actions.length };
      }
      case 'predict': {
        const horizon = line['horizon'] as number;
        const p = runtime.predict(horizon === 0 ? { session: line['session'] } : { session: line['session'], horizon });
        return { call: 'predict', horizon, session: line['session'], prediction: p === null ? null : { ...p } };
      }
      case 'copies': {
        const plan = joinPlans(queued);
        queued = [];
        return { call: 'copies', ...plan };
      }
      default:
        throw new Error(`unexpected line from the C program: ${JSON.stringify(line)}`);
    }
  });
}

describe('C runtime client against a real sidecar', () => {
  let serve: ServeProcess | undefined;
  let lines: Line[] = [];

  beforeAll(async () => {
    requireBuilt(clientTest);
    serve = await startServe();
    const run = await runProgram(clientTest, ['scenario', '127.0.0.1', String(serve.port), TOKEN], 60_000);
    expect(run.status, describeRun('runtime_client_test scenario', run)).toBe(0);
    lines = jsonLines(run.stdout);
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
  });

  it('gets exactly the in-process runtime decisions for the same events', () => {
    const calls = lines.filter((l) => 'call' in l);
    expect(calls.length).toBeGreaterThan(30);
    expect(calls).toEqual(expectedLines(calls));
    expect(lines.at(-1)).toEqual({ done: true });
  });

  it('covers a prefix hit, host copies, act and predict', () => {
    const admits = lines.filter((l) => l['call'] === 'admit');
    expect(admits.map((a) => a['cachedDeviceTokens'])).toEqual([0, 16, 0, 20]);
    const copies = lines.filter((l) => l['call'] === 'copies');
    expect(copies.some((c) => (c['srcTier'] as number[]).includes(2))).toBe(true);
    expect(copies.some((c) => (c['dstTier'] as number[]).includes(2))).toBe(true);
    expect(lines.filter((l) => l['call'] === 'act').some((a) => a['actions'] > 0)).toBe(true);
    const predictions = lines.filter((l) => l['call'] === 'predict');
    expect(predictions.map((p) => p['prediction']?.['currentAgent'] ?? null)).toEqual(['planner', 'reviewer', null]);
    const ignored = lines.filter((l) => l['call'] === 'observe' && l['applied'] === 0);
    expect(ignored.map((l) => l['ignored'])).toEqual(['session.end of an unknown or ended session']);
  });

  it('reports refusals with their status and a message naming the verb and field', () => {
    const refusals = Object.fromEntries(lines.filter((l) => 'refusal' in l).map((l) => [l['refusal'], l]));
    const expectRefusal = (what: string, status: string, http: number, message: RegExp) => {
      expect(refusals[what], what).toBeDefined();
      expect({ status: refusals[what]!['status'], http: refusals[what]!['http'] }, what).toEqual({ status, http });
      expect(refusals[what]!['message'], what).toMatch(message);
    };
    expectRefusal('connect with a wrong token', 'CS_ERR_DENIED', 0, /^connect: sidecar answered 401: unknown bearer token$/);
    expectRefusal('connect without a token', 'CS_ERR_DENIED', 0, /^connect: sidecar answered 401: missing Authorization: Bearer TOKEN header$/);
    expectRefusal('release of an unknown request', 'CS_ERR_INVALID_ARGUMENT', 404, /^release: sidecar answered 404: release: unknown request 99\b/);
    expectRefusal('admit of a live request id', 'CS_ERR_INVALID_ARGUMENT', 409, /^admit: sidecar answered 409: .*request 5 is already admitted/);
    expectRefusal('admit with more hashes than blocks', 'CS_ERR_INVALID_ARGUMENT', 400, /^admit: sidecar answered 400: admit: 2 block hashes for 4 tokens/);
    expectRefusal('observe with an empty session', 'CS_ERR_INVALID_ARGUMENT', 400, /^observe: sidecar answered 400: body\.session /);
    expectRefusal('decode of an unknown request', 'CS_ERR_INVALID_ARGUMENT', 404, /^decode: sidecar answered 404: decode: unknown request 77\b/);
    // Refused before sending: no HTTP status.
    expectRefusal('admit with a short block table', 'CS_ERR_INVALID_ARGUMENT', 0, /^admit: block_ids holds 1 entries but the request has 2 blocks$/);
    expectRefusal('observe without an agent', 'CS_ERR_INVALID_ARGUMENT', 0, /^observe: step\.start needs agent/);
    expectRefusal('predict with a bad horizon', 'CS_ERR_INVALID_ARGUMENT', 0, /^predict: horizon must be in \[0, 256\]/);
    expectRefusal('admit with a request id past 2^52', 'CS_ERR_INVALID_ARGUMENT', 0, /^admit: request_id must be in \[0, 2\^52\)/);
  });
});
