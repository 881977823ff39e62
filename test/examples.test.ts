/**
 * The README's examples: each is a file in examples/, printed in the README
 * exactly (the block after its `<!-- example: FILE -->` marker), and run
 * here as printed, with `cachesage` resolved to this checkout's sources.
 * (test/package runs the same files against the installed package.)
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const files = readdirSync(join(root, 'examples')).filter((name) => name.endsWith('.mjs')).sort();

/** The code block after `<!-- example: examples/NAME -->`, or null. */
function printed(name: string): string | null {
  const marker = `<!-- example: examples/${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) return null;
  const match = /^\s*```js\n([\s\S]*?)^```$/m.exec(readme.slice(at + marker.length));
  return match ? match[1]! : null;
}

/** The plain block after the example's code, when the README shows what it prints. */
function printedOutput(name: string): string | null {
  const marker = `<!-- example: examples/${name} -->`;
  const rest = readme.slice(readme.indexOf(marker) + marker.length);
  const afterCode = rest.slice(rest.indexOf('\n```\n') + 5);
  const match = /^It prints[^\n]*\n(?:[^\n]+\n)*?\n```\n([\s\S]*?)^```$/m.exec(afterCode);
  return match && match.index < 200 ? match[1]! : null;
}

function run(name: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', join(root, 'examples', name)], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** What each example must print: the numbers it exists to show. */
const EXPECTED: Record<string, RegExp[]> = {
  'blocks_quickstart.mjs': [
    /^first call: 0 of 1000 tokens reused$/m,
    /^demoted 62 blocks to host$/m,
    // 62 full blocks come back from host; only the partial last block is prefilled again.
    /^second call: 992 of 1000 tokens reused \(62 blocks loaded from host\), KV intact: true$/m,
    /^invariants: hold$/m,
  ],
  'runtime_quickstart.mjs': [
    /^triage {5}prompt 576 tokens, 0 cached on device$/m,
    // Every later call finds the whole previous prompt on device.
    /^writer {5}prompt 1024 tokens, 912 cached on device$/m,
    /P\(researcher runs within 2 steps\): 0\.\d\d/,
    /reuseProbability/,
  ],
  'two_sidecars.mjs': [
    /^A: 0 tokens cached; the engine computed and wrote 4 blocks$/m,
    /^B: 4 blocks loaded from the remote tier, bytes equal: true$/m,
    /^P\(triage runs first\): A (0\.\d\d), B \1 \(B never served "support"\)$/m,
  ],
  'replay_trace.mjs': [
    /^\d+ calls in 8 sessions, device tier \d+ blocks$/m,
    /^lru {8}token hit rate [\d.]+ %/m,
    /^cachesage {2}token hit rate [\d.]+ %/m,
    /^belady {5}token hit rate [\d.]+ %/m,
  ],
};

describe('README examples', () => {
  it('every example has expectations, and every expectation an example', () => {
    expect(files).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const name of files) {
    it(`${name} is printed in the README exactly as it is in examples/`, () => {
      const block = printed(name);
      expect(block, `README.md has no \`<!-- example: examples/${name} -->\` followed by a js block`).not.toBeNull();
      expect(block).toBe(readFileSync(join(root, 'examples', name), 'utf8'));
    });

    it(`${name} runs and prints what it shows`, () => {
      const out = run(name);
      for (const pattern of EXPECTED[name] ?? []) expect(out).toMatch(pattern);
    });
  }

  for (const name of ['blocks_quickstart.mjs', 'replay_trace.mjs']) {
    it(`${name}: the README shows exactly what it prints`, () => {
      const shown = printedOutput(name);
      expect(shown, `README.md shows no "It prints" block after ${name}`).not.toBeNull();
      expect(run(name)).toBe(shown);
    });
  }

  it('in replay_trace, CacheSage beats LRU and MIN bounds both', () => {
    const out = run('replay_trace.mjs');
    const rate = (policy: string) => Number(new RegExp(`^${policy} +token hit rate ([\\d.]+) %`, 'm').exec(out)![1]);
    expect(rate('cachesage')).toBeGreaterThan(rate('lru'));
    expect(rate('belady')).toBeGreaterThanOrEqual(rate('cachesage'));
  });
});
