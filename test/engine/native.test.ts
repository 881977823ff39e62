/**
 * The engine's standalone C++ test program (native/engine/test): every
 * kernel (KV append, paged prefill and decode attention, projections, RoPE,
 * RMSNorm, SwiGLU) against its plain oracle on random shapes, and the paged
 * decoder, batched and chunked, against the dense one. `npm install`
 * builds it into build/bin.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const program = join(root, 'build', 'bin', `cachesage_engine_test${process.platform === 'win32' ? '.exe' : ''}`);

describe('native engine test program', () => {
  it.each([1, 2, 3, 4, Math.floor(Math.random() * 2 ** 31)])('passes with seed %i', (seed) => {
    if (!existsSync(program)) throw new Error(`${program} is missing: run \`npm install\` first (it builds the native code into build/)`);
    const run = spawnSync(program, [String(seed)], { encoding: 'utf8', timeout: 60_000 });
    expect(run.error).toBeUndefined();
    expect(`${run.stdout}${run.stderr}`).toMatch(/match their oracles/);
    expect(run.status).toBe(0);
  });
});
