import { defineConfig } from 'vitest/config'

// `npm run test:stress`: suites that do not pass reliably yet (see each file's header).
export default defineConfig({
  test: {
    include: ['__test__/**/*.stress.mjs'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 30_000,
  },
})
