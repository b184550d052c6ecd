import { defineConfig } from 'vitest/config';

// Two projects, both run by `npm test`:
// - unit: test/unit, pure logic without DPDK (no addon, no hugepages, no child process); the
//   whole folder runs in seconds: `npx vitest run --project unit`.
// - integration: every other test file spawns real DPDK processes on real hugepages; each file is
//   one or more groups with their own --file-prefix (see test/harness). Two files at a time
//   suits 2 vCPUs.
export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Fails a unit test file that loaded the native addon.
          setupFiles: ['test/unit/setup.ts'],
          pool: 'threads',
          testTimeout: 20_000,
          // Projects with different pools and worker counts each need their own group: the unit
          // files run first, then the integration files.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', '**/node_modules/**'],
          pool: 'forks',
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          globalSetup: ['test/harness/global-setup.ts'],
        },
      },
    ],
  },
});
