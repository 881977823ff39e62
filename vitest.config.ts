import { defineConfig } from 'vitest/config';

// CI asks for a JSON report beside the usual output; the file path comes
// from the environment so `npm test` stays the one test command.
const jsonReport = process.env.CACHESAGE_VITEST_JSON;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    passWithNoTests: false,
    reporters: jsonReport ? ['default', 'json'] : ['default'],
    ...(jsonReport ? { outputFile: { json: jsonReport } } : {}),
  },
});
