/**
 * Tenant isolation: an isolated workload's block hashes are salted at
 * admit (and decode), so another tenant's identical prefix finds nothing
 * of it cached, while non-isolated workloads still share.
 */
import { describe, expect, it } from 'vitest';

import { mix64, saltHashes } from '../../src/policies/safety/salt.js';
import { createSafetyPolicy, workloadSalt } from '../../src/policies/safety/policy.js';
import { Runtime } from '../../src/runtime/runtime.js';

const BS = 4;
const PROMPT = BigUint64Array.from([11n, 12n, 13n]);

function runtime(isolate: string[], secret?: string): Runtime {
  const rules = { isolate, ...(secret !== undefined ? { secret } : {}) };
  return new Runtime({ blocks: { blockSize: BS, deviceBlocks: 16 }, policies: ['lru', { name: 'safety', options: { rules } }], now: () => 0 });
}

let nextId = 1;
/** Admits a tagged request, computes and releases it; returns how many tokens were cached on device. */
function serve(rt: Runtime, workload: string, session: string, hashes = PROMPT, decoded?: BigUint64Array): number {
  const id = nextId++;
  const decision = rt.admit({ requestId: id, hashes, numTokens: hashes.length * BS + 1 + (decoded ? decoded.length * BS : 0), session, agent: { workload, agent: 'a' }, time: 0 });
  expect(decision).not.toBeNull();
  rt.prefillDone(id, 0);
  if (decoded) rt.decode(id, 0, decoded, 0);
  rt.release(id, 0);
  return decision!.cachedDeviceTokens;
}

describe('tenant isolation', () => {
  it("gives an isolated tenant's identical prefix zero cached tokens to another tenant, and to it from another", () => {
    const rt = runtime(['tenant-a']);
    expect(serve(rt, 'tenant-a', 'a1')).toBe(0);
    expect(serve(rt, 'tenant-b', 'b1')).toBe(0);
    // Each still shares within itself.
    expect(serve(rt, 'tenant-a', 'a2')).toBe(3 * BS);
    expect(serve(rt, 'tenant-b', 'b2')).toBe(3 * BS);
    expect(rt.manager.checkInvariants()).toBe('');
  });

  it('lets non-isolated workloads share as before', () => {
    const rt = runtime(['tenant-a']);
    expect(serve(rt, 'tenant-b', 'b1')).toBe(0);
    expect(serve(rt, 'tenant-c', 'c1')).toBe(3 * BS);
  });

  it('isolates two isolated tenants from each other', () => {
    const rt = runtime(['tenant-a', 'tenant-b']);
    expect(serve(rt, 'tenant-a', 'a1')).toBe(0);
    expect(serve(rt, 'tenant-b', 'b1')).toBe(0);
    expect(serve(rt, 'tenant-b', 'b2')).toBe(3 * BS);
  });

  it("salts the blocks a decode reports as the prompt's, so a follow-up extends its own chain only", () => {
    const rt = runtime(['tenant-a']);
    const reply = BigUint64Array.from([21n]);
    const followUp = BigUint64Array.from([11n, 12n, 13n, 21n]);
    serve(rt, 'tenant-a', 'a1', PROMPT, reply);
    expect(serve(rt, 'tenant-a', 'a2', followUp)).toBe(4 * BS);
    expect(serve(rt, 'tenant-b', 'b1', followUp)).toBe(0);
  });

  it('derives salts from a shared secret, so replicas agree; a random one otherwise', () => {
    expect(workloadSalt('k', 'tenant-a')).toBe(workloadSalt('k', 'tenant-a'));
    expect(workloadSalt('k', 'tenant-a')).not.toBe(workloadSalt('k', 'tenant-b'));
    expect(workloadSalt('k', 'tenant-a')).not.toBe(workloadSalt('j', 'tenant-a'));
    const salted = saltHashes(PROMPT, workloadSalt('k', 'tenant-a'));
    expect(Array.from(salted)).toEqual(Array.from(PROMPT, (h) => mix64(h ^ workloadSalt('k', 'tenant-a'))));
    // A runtime given the secret salts as workloadSalt says: the unsalted prompt is not cached.
    const one = runtime(['tenant-a'], 'k');
    serve(one, 'tenant-a', 'a1');
    expect(one.manager.lookup(salted).deviceBlocks).toBe(3);
    expect(one.manager.lookup(PROMPT).deviceBlocks).toBe(0);
    const random = () => createSafetyPolicy({ rules: { isolate: ['tenant-a'] } }).saltOf!('tenant-a');
    expect(random()).not.toBe(random());
    expect(createSafetyPolicy({ rules: { isolate: ['tenant-a'] } }).saltOf!('tenant-b')).toBeNull();
  });

  it("resolves a hint's explicit hashes within the isolated tenant", () => {
    const rt = new Runtime({
      blocks: { blockSize: BS, deviceBlocks: 16 },
      policies: ['lru', { name: 'safety', options: { rules: { isolate: ['tenant-a'] } } }, { name: 'hints', options: { maxPinnedShare: 1 } }],
      now: () => 0,
    });
    serve(rt, 'tenant-a', 'a1');
    rt.observe({ type: 'hint', time: 1, session: 'a1', agent: { workload: 'tenant-a', agent: 'a' }, verb: 'pin', hashes: PROMPT });
    expect(rt.act(1).pinned).toBe(1);
    expect(rt.manager.pinnedDeviceBlocks()).toBe(3);
  });
});
