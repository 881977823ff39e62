import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { TraceSegment } from '../../src/trace/format.js';
import { PromptHasher } from '../../src/trace/hashing.js';
import { readTrace } from '../../src/trace/reader.js';

const TRACES = fileURLToPath(new URL('../../../shared/traces', import.meta.url));
const HAVE_TRACES = existsSync(TRACES);

/** Naive reference: the identity (segment id, offset) of every token. */
function identities(segments: readonly TraceSegment[]): string[] {
  const out: string[] = [];
  for (const segment of segments) for (let i = 0; i < segment.tokens; i++) out.push(`${segment.id}\0${i}`);
  return out;
}

function commonPrefix(a: readonly string[], b: readonly string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

// A tiny id alphabet makes equal segments, repeats and shared prefixes common;
// zero-token segments and one id appearing with different sizes are included.
const segment = fc.record({ id: fc.constantFrom('a', 'b', 'c', '0123456789abcdef'), tokens: fc.nat(7) });
const segments = fc.array(segment, { maxLength: 8 });
const promptPair = fc.record({ head: segments, tailA: segments, tailB: segments });

describe('PromptHasher', () => {
  it('shares exactly the leading full blocks whose token identities agree', () => {
    fc.assert(
      fc.property(promptPair, fc.integer({ min: 1, max: 9 }), ({ head, tailA, tailB }, blockSize) => {
        const a = [...head, ...tailA];
        const b = [...head, ...tailB];
        const hasher = new PromptHasher(blockSize);
        const ha = hasher.hashPrompt(a);
        const hb = hasher.hashPrompt(b);
        const ia = identities(a);
        const ib = identities(b);
        expect(ha.numTokens).toBe(ia.length);
        expect(ha.hashes.length).toBe(Math.floor(ia.length / blockSize));

        const sharedBlocks = Math.min(Math.floor(commonPrefix(ia, ib) / blockSize), ha.hashes.length, hb.hashes.length);
        for (let k = 0; k < Math.min(ha.hashes.length, hb.hashes.length); k++) {
          // Block k covers tokens [0, (k + 1) * blockSize): equal hash iff those identities agree.
          if (k < sharedBlocks) expect(ha.hashes[k]).toBe(hb.hashes[k]);
          else expect(ha.hashes[k]).not.toBe(hb.hashes[k]);
        }
      }),
      { numRuns: 500, seed: 31 },
    );
  });

  it('never gives one hash to two different prefixes within a prompt or across prompts', () => {
    fc.assert(
      fc.property(fc.array(segments, { minLength: 2, maxLength: 6 }), fc.integer({ min: 1, max: 4 }), (prompts, blockSize) => {
        const hasher = new PromptHasher(blockSize);
        const prefixOf = new Map<bigint, string>();
        for (const prompt of prompts) {
          const ids = identities(prompt);
          const { hashes } = hasher.hashPrompt(prompt);
          hashes.forEach((hash, k) => {
            const prefix = ids.slice(0, (k + 1) * blockSize).join('\u0001');
            const seen = prefixOf.get(hash);
            if (seen !== undefined) expect(seen).toBe(prefix);
            prefixOf.set(hash, prefix);
          });
        }
      }),
      { numRuns: 300, seed: 32 },
    );
  });

  it('hashWithOutput is the prompt followed by the reply as one more segment', () => {
    fc.assert(
      fc.property(segments, fc.constantFrom('a', 'reply'), fc.nat(20), fc.integer({ min: 1, max: 6 }), (prompt, id, tokens, blockSize) => {
        const hasher = new PromptHasher(blockSize);
        const withOutput = hasher.hashWithOutput(prompt, id, tokens);
        expect(withOutput).toEqual(hasher.hashPrompt([...prompt, { id, tokens }]));
        // The prompt's own full blocks are a prefix of the longer chain.
        const own = hasher.hashPrompt(prompt).hashes;
        expect([...withOutput.hashes.slice(0, own.length)]).toEqual([...own]);
      }),
      { seed: 33 },
    );
  });

  it('does not depend on the order ids were first seen, so hashers agree', () => {
    const a: TraceSegment[] = [
      { id: 'system', tokens: 40 },
      { id: 'task', tokens: 13 },
    ];
    const b: TraceSegment[] = [
      { id: 'task', tokens: 13 },
      { id: 'system', tokens: 40 },
    ];
    const first = new PromptHasher(16);
    const second = new PromptHasher(16);
    const a1 = first.hashPrompt(a);
    second.hashPrompt(b);
    expect(second.hashPrompt(a)).toEqual(a1);
    expect(first.internedIds).toBe(2);
  });

  it('splits a segment across blocks and joins segments inside one', () => {
    const hasher = new PromptHasher(4);
    // 10 tokens of one segment == blocks [s0..s3], [s4..s7]; the rest is partial.
    const one = hasher.hashPrompt([{ id: 's', tokens: 10 }]);
    expect(one.numTokens).toBe(10);
    expect(one.hashes.length).toBe(2);
    // The same segment re-sent twice is not the same as one longer segment.
    const twice = hasher.hashPrompt([
      { id: 's', tokens: 4 },
      { id: 's', tokens: 4 },
    ]);
    expect(twice.hashes[0]).toBe(one.hashes[0]);
    expect(twice.hashes[1]).not.toBe(one.hashes[1]);
    // Zero-token segments contribute nothing.
    const withEmpty = hasher.hashPrompt([
      { id: 'x', tokens: 0 },
      { id: 's', tokens: 10 },
      { id: 'y', tokens: 0 },
    ]);
    expect(withEmpty).toEqual(one);
  });

  it('refuses a block size outside [1, 2^20]', () => {
    expect(() => new PromptHasher(0)).toThrow(RangeError);
    expect(() => new PromptHasher(1.5)).toThrow(RangeError);
    expect(() => new PromptHasher(2 ** 20 + 1)).toThrow(RangeError);
    expect(new PromptHasher(2 ** 20).blockSize).toBe(2 ** 20);
  });
});

/**
 * Global shared-prefix fraction from block hashes at block size 1: a prompt
 * token is shared when the hash of the prefix ending at it was produced by
 * an earlier call. Hashes chain, so the shared tokens of a call are its
 * longest run of leading hashes already seen.
 */
async function sharedPrefixFromHashes(path: string): Promise<number> {
  const hasher = new PromptHasher(1);
  const seen = new Set<bigint>();
  let shared = 0;
  let total = 0;
  for await (const call of readTrace(path)) {
    const { hashes, numTokens } = hasher.hashPrompt(call.segments);
    total += numTokens;
    let k = 0;
    while (k < hashes.length && seen.has(hashes[k] as bigint)) k++;
    shared += k;
    for (; k < hashes.length; k++) seen.add(hashes[k] as bigint);
  }
  return shared / total;
}

describe.skipIf(!HAVE_TRACES)('PromptHasher on the real traces in ../shared/traces (skipped when absent)', () => {
  const stats = HAVE_TRACES
    ? (JSON.parse(readFileSync(join(TRACES, 'stats.json'), 'utf8')) as Record<string, { shared_prefix_frac_global: number }>)
    : {};

  it.each(['tau_airline', 'mad_debate'])('%s: token-level sharing at block size 1 matches stats.json', async (name) => {
    const expected = stats[name]?.shared_prefix_frac_global;
    expect(expected).toBeTypeOf('number');
    const measured = await sharedPrefixFromHashes(join(TRACES, `${name}.jsonl`));
    expect(Math.abs(measured - (expected as number))).toBeLessThan(0.005);
  }, 120_000);
});

if (!HAVE_TRACES) {
  describe('PromptHasher on the real traces', () => {
    it.skip(`skipped: ${TRACES} not found (the real traces live outside the package)`, () => {});
  });
}
