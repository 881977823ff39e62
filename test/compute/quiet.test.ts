/**
 * Probing for a GPU says nothing on stderr: Dawn's and the Vulkan loader's
 * chatter and tfjs's banner stay muted unless CACHESAGE_DEBUG asks for them.
 * Each case runs in a fresh process, since the chatter comes once per
 * process, at start-up.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

const PROBE = `
import { randomSurvivalInput } from './src/compute/crossover.ts';
import { selectBackend } from './src/compute/select.ts';
import { releaseWebGpu } from './src/compute/webgpu/device.ts';
const choice = process.env.PROBE_BACKEND;
try {
  const selection = await selectBackend(choice, { calibrate: false });
  // The first tensor written is what makes tfjs print its banner.
  const output = await selection.backend.survival(randomSurvivalInput(2, 3, 2));
  console.log('selected', selection.backend.name, output.reach.length);
} catch (error) {
  console.log('refused', error.message);
}
await releaseWebGpu();
`;

function probe(choice: string, env: Record<string, string>): { stdout: string; stderr: string; status: number | null } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PROBE], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env, PROBE_BACKEND: choice },
    timeout: 120_000,
  });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}

describe('quiet start-up', () => {
  it("'auto' on a machine whose Vulkan loader finds no driver prints nothing on stderr", () => {
    const run = probe('auto', { VK_ICD_FILENAMES: '/nonexistent-icd.json', VK_DRIVER_FILES: '/nonexistent-icd.json', CACHESAGE_DEBUG: '' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^selected /m);
    expect(run.stderr).toBe('');
  }, 150_000);

  it("'auto' and 'webgpu' by name, with whatever adapter this machine has, print nothing on stderr", () => {
    for (const choice of ['auto', 'webgpu']) {
      const run = probe(choice, { CACHESAGE_DEBUG: '' });
      expect(run.stdout).toMatch(/^(selected|refused) /m);
      expect(run.stderr, choice).toBe('');
    }
  }, 150_000);

  it("naming 'webgpu' there is refused with a reason that says what to install, still silently", () => {
    const run = probe('webgpu', { VK_ICD_FILENAMES: '/nonexistent-icd.json', VK_DRIVER_FILES: '/nonexistent-icd.json', CACHESAGE_DEBUG: '' });
    expect(run.stdout).toMatch(/^refused .*mesa-vulkan-drivers.*CACHESAGE_DEBUG=webgpu/m);
    expect(run.stderr).toBe('');
  }, 150_000);

  it('CACHESAGE_DEBUG=webgpu lets the loader speak', () => {
    const run = probe('webgpu', { VK_ICD_FILENAMES: '/nonexistent-icd.json', VK_DRIVER_FILES: '/nonexistent-icd.json', CACHESAGE_DEBUG: 'webgpu' });
    expect(run.stdout).toMatch(/^refused /m);
    expect(run.stderr).toMatch(/vulkan|driver/i);
  }, 150_000);

  it("'tfjs' loads without the banner", () => {
    const run = probe('tfjs', { CACHESAGE_DEBUG: '' });
    expect(run.stdout).toMatch(/^selected tfjs/m);
    expect(run.stderr).toBe('');
  }, 150_000);
});
