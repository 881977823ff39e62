/** The README's runnable examples run, so they cannot rot. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

describe('examples', () => {
  it('runtime_quickstart runs and reuses the growing conversation', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'examples', 'runtime_quickstart.ts')], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toMatch(/^triage {5}prompt 576 tokens, 0 cached on device$/m);
    // Every later call finds the whole previous prompt on device.
    expect(out).toMatch(/^writer {5}prompt 1024 tokens, 912 cached on device$/m);
    expect(out).toMatch(/P\(researcher runs within 2 steps\): 0\.\d\d/);
    expect(out).toMatch(/reuseProbability/);
  });
});
