import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.{js,mjs,ts}'],
    // Each file in its own process: a native addon and its tokio runtime per file.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
})
