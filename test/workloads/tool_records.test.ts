/**
 * The bundled workloads' tool records: added beside the calls without
 * changing them (their own random stream), filling each gap exactly,
 * declared in the header, and behaving as declared: a pure tool's result
 * is fixed by its arguments, a read's changes only after a write, a clock's
 * every time.
 */
import { describe, expect, it } from 'vitest';

import type { TraceCall, TraceToolCall } from '../../src/trace/format.js';
import { generateShape, generateWorkload, WORKLOAD_NAMES, type CommonParams, type GeneratedWorkload, type WorkloadShape } from '../../src/workloads/index.js';
import { orchestrator } from '../../src/workloads/orchestrator.js';
import { pipeline } from '../../src/workloads/pipeline.js';
import { react } from '../../src/workloads/react.js';

const SESSIONS = 40;
const withTools = WORKLOAD_NAMES.filter((name) => generateWorkload(name, { sessions: 4 }).header.tools !== undefined);

function withoutTools(calls: readonly TraceCall[]): TraceCall[] {
  return calls.map(({ tools: _tools, ...call }) => call);
}

/** The shape generated without its tool profile, and with it. */
function withAndWithout<P extends CommonParams>(shape: WorkloadShape<P>): [GeneratedWorkload, GeneratedWorkload] {
  const { tools: _tools, ...plain } = shape;
  return [generateShape(plain, { sessions: SESSIONS }), generateShape(shape, { sessions: SESSIONS })];
}

function bySession(calls: readonly TraceCall[]): TraceCall[][] {
  const sessions = new Map<string, TraceCall[]>();
  for (const call of calls) {
    let list = sessions.get(call.session);
    if (!list) sessions.set(call.session, (list = []));
    list.push(call);
  }
  return [...sessions.values()];
}

describe('tool records of the bundled workloads', () => {
  it('are given to the shapes with tool gaps: all but groupchat and mapreduce', () => {
    expect(withTools).toEqual(['pipeline', 'react', 'orchestrator', 'branchy', 'hierarchy']);
  });

  it('leave every call and the header as generated without them', () => {
    for (const [plain, tooled] of [withAndWithout(react), withAndWithout(pipeline), withAndWithout(orchestrator)]) {
      expect(plain.calls.some((c) => c.tools !== undefined)).toBe(false);
      expect(tooled.calls.filter((c) => c.tools !== undefined).length).toBeGreaterThan(SESSIONS);
      expect(withoutTools(tooled.calls)).toEqual(plain.calls);
      const { tools, ...header } = tooled.header;
      expect(header).toEqual(plain.header);
      expect(tools).toBeDefined();
    }
  });

  it('fill each gap before a session’s next call exactly, and only those', () => {
    for (const name of withTools) {
      for (const session of bySession(generateWorkload(name, { sessions: SESSIONS }).calls)) {
        session.forEach((call, i) => {
          const next = session[i + 1];
          const gap = next === undefined ? 0 : Math.round((next.t! - call.tEnd!) * 1000) / 1000;
          if (gap <= 0) {
            expect(call.tools).toBeUndefined();
            return;
          }
          expect(call.tools!.length).toBeGreaterThan(0);
          const seconds = call.tools!.reduce((sum, t) => sum + t.seconds!, 0);
          expect(Math.abs(seconds - gap)).toBeLessThan(1e-9);
        });
      }
    }
  });

  it('name only tools the header declares, and behave as declared', () => {
    for (const name of withTools) {
      const { header, calls } = generateWorkload(name, { sessions: SESSIONS });
      const declared = header.tools!;
      const results = new Map<string, Set<string>>();
      const sessionsOf = new Map<string, Set<string>>();
      for (const session of bySession(calls)) {
        /** Writes so far, by resource. */
        const writes = new Map<string, number>();
        const reads = new Map<string, { result: string; writes: number }>();
        for (const t of session.flatMap((c): TraceToolCall[] => c.tools ?? [])) {
          const declaration = declared[t.tool];
          expect(declaration, `${name}: ${t.tool}`).toBeDefined();
          const key = `${t.tool}\0${t.argsHash}`;
          if (!results.has(key)) results.set(key, new Set());
          results.get(key)!.add(t.resultHash);
          if (!sessionsOf.has(key)) sessionsOf.set(key, new Set());
          sessionsOf.get(key)!.add(session[0]!.session);
          for (const resource of declaration!.writes ?? []) writes.set(resource, (writes.get(resource) ?? 0) + 1);
          if (declaration!.reads !== undefined) {
            // A read repeated with no write in between returns the same; after a write, something else.
            const now = declaration!.reads.reduce((sum, resource) => sum + (writes.get(resource) ?? 0), 0);
            const before = reads.get(key);
            if (before !== undefined) expect(before.result === t.resultHash).toBe(before.writes === now);
            reads.set(key, { result: t.resultHash, writes: now });
          }
        }
      }
      let sharedPure = 0;
      for (const [key, hashes] of results) {
        const declaration = declared[key.split('\0')[0]!]!;
        if (declaration.pure === true) {
          expect(hashes.size, `${name}: pure ${key}`).toBe(1);
          if (sessionsOf.get(key)!.size > 1) sharedPure++;
        }
      }
      // Skewed arguments: some pure calls recur across sessions.
      expect(sharedPure, name).toBeGreaterThan(0);
    }
  });

  it('give a clock a new result every call', () => {
    const { calls } = generateWorkload('react', { sessions: SESSIONS });
    const clock = calls.flatMap((c) => c.tools ?? []).filter((t) => t.tool === 'now');
    expect(clock.length).toBeGreaterThan(1);
    expect(new Set(clock.map((t) => t.argsHash)).size).toBe(1);
    expect(new Set(clock.map((t) => t.resultHash)).size).toBe(clock.length);
  });

  it('are the same for the same seed and differ for another', () => {
    const tools = (seed: number) => generateWorkload('react', { seed, sessions: 8 }).calls.map((c) => c.tools);
    expect(tools(3)).toEqual(tools(3));
    expect(tools(3)).not.toEqual(tools(4));
  });
});
