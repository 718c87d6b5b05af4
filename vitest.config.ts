import { defineConfig } from 'vitest/config';

// One vitest run for the whole monorepo. Workspace packages resolve to their
// TypeScript sources through the "source" export condition, so unit tests do
// not depend on a fresh build; the end-to-end tests in test/ start the built app.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'plugins/*/src/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'test/**/*.test.ts',
      'docs/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
