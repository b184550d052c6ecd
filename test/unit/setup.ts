/**
 * Runs around every unit test file: a unit test exercises pure logic, so it must not load the
 * native addon (which would need DPDK, hugepages and a built addon, and make the test an
 * integration test in disguise). Modules that only import src/native are fine: the addon is
 * loaded lazily, by the first native call; this catches that call.
 */
import { createRequire } from 'node:module';
import { afterAll, expect } from 'vitest';

const cache = createRequire(import.meta.url).cache;

afterAll(() => {
  const addons = Object.keys(cache).filter((path) => path.endsWith('mpbus.node'));
  expect(addons, 'a unit test loaded the native addon: test that logic in an integration test, or move the pure part out of the native call').toEqual([]);
});
