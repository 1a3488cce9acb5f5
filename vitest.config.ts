import { defineConfig } from 'vitest/config';

// One config for every test: unit, scenario, simulation and integration.
// Integration tests start real processes, so they get generous timeouts;
// each test still bounds its own waits with explicit deadlines.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.artifacts/vitest.json' },
  },
});
