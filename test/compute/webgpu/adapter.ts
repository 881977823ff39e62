/**
 * The WebGPU suites' shared guard. Without an adapter a suite is skipped,
 * except in CI, where a missing adapter means the machine was set up wrong
 * and must fail loudly.
 */
import { describe, it } from 'vitest';

import { probeWebGpu } from '../../../src/compute/webgpu/device.js';

/**
 * Probes the adapter; where there is none, registers the failing (CI) or
 * skipped suite `suite` and returns why, else null. `file` names the test
 * file in the skip warning.
 */
export async function webGpuUnavailable(suite: string, file: string): Promise<string | null> {
  const probe = await probeWebGpu();
  const unavailable = probe.available ? null : probe.reason;
  if (unavailable !== null && process.env.CI) {
    describe(suite, () => {
      it('has an adapter in CI', () => {
        throw new Error(`CI is set but ${unavailable}. Run .ci/install-vulkan.sh (Mesa 25 lavapipe) or provide a GPU.`);
      });
    });
  } else if (unavailable !== null) {
    console.warn(`${file}: skipping the WebGPU suite: ${unavailable}`);
    describe.skip(`${suite} (skipped: ${unavailable})`, () => {
      it('needs an adapter', () => undefined);
    });
  }
  return unavailable;
}
