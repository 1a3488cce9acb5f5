import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The package's public entry points, as a user imports them (tsconfig.json's paths say the same for tsc and tsx).
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// One config for every test: unit, scenario, simulation and integration.
// Integration tests start real processes, so they get generous timeouts;
// each test still bounds its own waits with explicit deadlines.
export default defineConfig({
  resolve: {
    alias: {
      'raft2pc/client': here('./client/index.ts'),
      'raft2pc/participant': here('./participant/index.ts'),
      'raft2pc/recipes': here('./recipes/index.ts'),
      'raft2pc/store': here('./store/client/index.ts'),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.artifacts/vitest.json' },
  },
});
