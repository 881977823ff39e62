/**
 * The runtime client's reply parsing (HTTP and JSON) against a real TCP
 * peer that answers every verb with garbage: malformed HTTP, truncated and
 * oversized bodies, bad chunking, invalid and hostile JSON (100,000 levels
 * deep), replies of the wrong shape, copy plans naming slots outside their
 * tier, random bytes and random truncations. Every call must fail with a
 * status and a message, and the handle must stay usable; never a crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { clientTest, describeRun, jsonLines, requireBuilt, runProgram, startGarbagePeer, type GarbagePeer } from './runtime_client_peers.js';

const ROUNDS = 40;

describe('C runtime client against a peer answering garbage', () => {
  let peer: GarbagePeer | undefined;

  beforeAll(async () => {
    requireBuilt(clientTest);
    peer = await startGarbagePeer(20261205);
  });

  afterAll(async () => {
    await peer?.close();
  });

  it('fails every call cleanly, naming what was wrong', async () => {
    const run = await runProgram(clientTest, ['garbage', '127.0.0.1', String(peer!.port), String(ROUNDS)], 60_000);
    expect(run.status, describeRun('runtime_client_test garbage', run)).toBe(0);
    const lines = jsonLines(run.stdout);
    expect(lines.at(-1)).toEqual({ done: true, calls: ROUNDS * 7 });
    // Every garbage answer was read (a closed idle connection may be retried once).
    expect(peer!.answered()).toBeGreaterThanOrEqual(ROUNDS * 7);
    const statuses = new Set(lines.filter((l) => 'status' in l).map((l) => l['status']));
    expect([...statuses].sort()).toEqual(['CS_ERR_BUSY', 'CS_ERR_DENIED', 'CS_ERR_INTERNAL', 'CS_ERR_INVALID_ARGUMENT', 'CS_ERR_IO', 'CS_ERR_PROTOCOL']);
    for (const line of lines.filter((l) => 'message' in l)) {
      expect(line['message']).toMatch(/^(observe|admit|prefill_done|decode|release|act|predict): \S/);
    }
  });
});
