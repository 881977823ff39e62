/**
 * Misuse of the runtime's public API throws the README's classes: TypeError
 * for a wrong type or shape, RangeError for a value out of range, an unknown
 * id or a wrong state, each message naming the argument; nothing changes.
 * A time that goes back within a session is applied and counted.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { CpuDataPlane } from '../../src/blocks/data_plane.js';
import { hashTokenBlocks } from '../../src/blocks/native_hash.js';
import { probeWebGpu, releaseWebGpu } from '../../src/compute/webgpu/device.js';
import { Runtime } from '../../src/runtime/runtime.js';

const BS = 4;
const webgpu = await probeWebGpu();
afterAll(releaseWebGpu);
const AGENT = { workload: 'w', agent: 'coder' };

function runtime(deviceBlocks = 16): Runtime {
  return new Runtime({ blocks: { blockSize: BS, deviceBlocks, bytesPerBlock: 64 }, policies: ['lru'], now: () => 0 });
}

function prompt(seed: number, blocks: number): { hashes: BigUint64Array; numTokens: number } {
  const tokens = Uint32Array.from({ length: blocks * BS }, (_, i) => (seed * 7919 + i) >>> 0);
  return { hashes: hashTokenBlocks(tokens, BS), numTokens: tokens.length };
}

/** What a call threw: its class and message. */
function thrown(call: () => unknown): { type: string; message: string } {
  try {
    call();
  } catch (error) {
    return { type: (error as Error).constructor.name, message: (error as Error).message };
  }
  throw new Error('the call did not throw');
}

describe('engine calls on an unknown or already admitted request', () => {
  it.each([
    ['release', (rt: Runtime) => rt.release(99)],
    ['release', (rt: Runtime) => rt.release(99, 1)],
    ['prefillDone', (rt: Runtime) => rt.prefillDone(99)],
    ['decode', (rt: Runtime) => rt.decode(99, 4)],
  ])('%s(99) is a RangeError naming the request', (op, call) => {
    const rt = runtime();
    expect(thrown(() => call(rt))).toEqual({ type: 'RangeError', message: `${op}: unknown request 99 (never admitted or already released)` });
    expect(rt.manager.numRequests).toBe(0);
  });

  it('a released request is unknown, and admitting one twice is a RangeError; nothing changes', () => {
    const rt = runtime();
    expect(rt.admit({ requestId: 1, ...prompt(1, 2), session: 's', agent: AGENT, time: 0 })).not.toBeNull();
    const used = rt.manager.usedBlocks('device');
    expect(thrown(() => rt.admit({ requestId: 1, ...prompt(2, 2), time: 0 }))).toEqual({
      type: 'RangeError',
      message: 'admit: request 1 is already admitted',
    });
    expect(rt.manager.usedBlocks('device')).toBe(used);
    rt.prefillDone(1, 0);
    rt.release(1, 0);
    expect(thrown(() => rt.release(1))).toEqual({ type: 'RangeError', message: 'release: unknown request 1 (never admitted or already released)' });
    expect(rt.manager.checkInvariants()).toBe('');
  });

  it('a request id of the wrong type or range names it', () => {
    const rt = runtime();
    expect(thrown(() => rt.release('1' as never))).toEqual({ type: 'TypeError', message: 'release: requestId must be a number, got the string "1"' });
    expect(thrown(() => rt.release(-1))).toEqual({ type: 'RangeError', message: `release: requestId must be in [0, ${Number.MAX_SAFE_INTEGER}], got -1` });
    expect(thrown(() => rt.prefillDone(1.5))).toEqual({ type: 'RangeError', message: 'prefillDone: requestId must be an integer, got 1.5' });
  });
});

describe('calls in the wrong state', () => {
  it('takeCopyPlan with a data plane attached, a second plane, and sync without one are RangeErrors', async () => {
    const rt = runtime(8);
    await expect(rt.sync()).rejects.toThrow(new RangeError('sync: no data plane is attached (attachDataPlane)'));
    const plane = await rt.backend.createDataPlane({ bytesPerBlock: 64, deviceBlocks: 8, hostBlocks: 0 });
    rt.attachDataPlane(plane);
    expect(thrown(() => rt.takeCopyPlan())).toEqual({
      type: 'RangeError',
      message: 'takeCopyPlan: a data plane is attached, so the runtime runs the copy plans; await runtime.sync() instead',
    });
    expect(thrown(() => rt.attachDataPlane(plane))).toEqual({ type: 'RangeError', message: 'attachDataPlane: a data plane is already attached' });
    await rt.sync();
  });

  it.skipIf(!webgpu.available)('refreshSync on a backend that only computes asynchronously is a RangeError', async () => {
    const rt = await Runtime.create({ blocks: { deviceBlocks: 8, blockSize: BS }, backend: 'webgpu', autoRefresh: false });
    expect(thrown(() => rt.refreshSync())).toEqual({
      type: 'RangeError',
      message: 'refreshSync: the webgpu backend computes asynchronously; await runtime.refresh() instead',
    });
    rt.backend.destroy();
  });
});

describe('time going back within a session', () => {
  it('is applied and counted, naming the session, what went back and both times', () => {
    const rt = runtime();
    rt.observe({ type: 'session.start', time: 10, session: 's', workload: 'w' });
    rt.observe({ type: 'step.start', time: 11, session: 's', agent: AGENT });
    expect(rt.stats.timeWentBack).toEqual({ count: 0, largestSeconds: 0, last: null });
    // The engine's call on another clock: earlier than the session's step.start.
    expect(rt.admit({ requestId: 1, ...prompt(1, 1), session: 's', agent: AGENT, time: 2 })).not.toBeNull();
    expect(rt.stats.timeWentBack).toEqual({ count: 1, largestSeconds: 9, last: 'admit at 2 in session "s", after its step.start at 11' });
    rt.prefillDone(1, 12);
    rt.release(1, 11.5);
    expect(rt.stats.timeWentBack).toEqual({ count: 2, largestSeconds: 9, last: 'release at 11.5 in session "s", after its prefillDone at 12' });
    // Applied as given: the step ends, and the session's latest time stays 12.
    rt.observe({ type: 'step.end', time: 12, session: 's', agent: AGENT });
    expect(rt.stats.timeWentBack.count).toBe(2);
    expect(rt.info()['timeWentBack']).toBe(2);
    expect(rt.manager.checkInvariants()).toBe('');
  });

  it('does not count sessions against each other, nor untagged calls, nor ignored events', () => {
    const rt = runtime();
    rt.observe({ type: 'session.start', time: 10, session: 'late', workload: 'w' });
    rt.observe({ type: 'session.start', time: 1, session: 'early', workload: 'w' });
    rt.admit({ requestId: 1, ...prompt(1, 1), time: 0 });
    rt.release(1, 0);
    rt.observe({ type: 'session.end', time: 0, session: 'ghost' });
    rt.observe({ type: 'step.end', time: 5, session: 'late', agent: AGENT });
    expect(rt.stats.ignored).toEqual({ 'session.end of an unknown or ended session': 1, 'step.end without its step.start': 1 });
    expect(rt.stats.timeWentBack.count).toBe(0);
  });
});

describe('CpuDataPlane arguments', () => {
  const plane = new CpuDataPlane({ bytesPerBlock: 16, deviceBlocks: 2 });

  it.each([
    ['a slot past the tier', () => plane.write('device', 2, new Uint8Array(16)), 'RangeError', 'write: slot must be in [0, 1], got 2'],
    ['a fractional slot', () => plane.read('device', 1.5), 'RangeError', 'read: slot must be an integer, got 1.5'],
    ['a slot of the wrong type', () => plane.read('device', '0' as never), 'TypeError', 'read: slot must be a number, got the string "0"'],
    ['a tier with no blocks', () => plane.read('host', 0), 'RangeError', 'read: the host tier has no blocks'],
    ['bytes of the wrong type', () => plane.write('device', 0, [1] as never), 'TypeError', 'write: bytes must be a Uint8Array, got an array'],
    ['bytes of the wrong length', () => plane.write('device', 0, new Uint8Array(15)), 'RangeError', 'write: bytes: expected 16 bytes (bytesPerBlock), got 15'],
    ['an unknown tier', () => plane.write('gpu' as never, 0, new Uint8Array(16)), 'TypeError', "write: tier must be 'device' or 'host', got the string \"gpu\""],
  ])('%s', (_name, call, type, message) => {
    expect(thrown(call)).toEqual({ type, message });
  });

  it('leaves the bytes as they were after a refusal', () => {
    const bytes = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    plane.write('device', 1, bytes);
    expect(() => plane.write('device', 1, new Uint8Array(15))).toThrow(RangeError);
    expect(plane.read('device', 1)).toEqual(bytes);
  });
});
