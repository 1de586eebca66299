import { defineConfig } from 'vitest/config';

/**
 * The reliability and security suite (`npm run test:reliability`): chaos, soak, fuzzing, SSRF,
 * access and slow-client tests against real Redis, Chromium and processes. Each file writes its
 * figures to reliability-results/<scenario>.json, which RELIABILITY.md is written from.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 900_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at once on two cores: the soak runs beside the others, not after them.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
