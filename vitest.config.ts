import { defineConfig } from 'vitest/config';

// Tests spawn real DPDK processes on real hugepages; each test file is one or more groups with
// their own --file-prefix (see test/harness). Two files at a time suits 2 vCPUs.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/harness/global-setup.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
  },
});
