/** The per-file test-group bookkeeping every DPDK test file needs, in one place. */
import { afterEach } from 'vitest';
import { TestGroup } from './group.js';

/**
 * Returns `group(label)`, which makes a {@link TestGroup} with a unique --file-prefix; after each
 * test, every group made that way is cleaned up (its processes killed by PID, its runtime dir
 * and hugepage files removed), whether the test passed or not.
 */
export function useTestGroups(): (label: string) => TestGroup {
  const groups: TestGroup[] = [];
  afterEach(async () => {
    await Promise.all(groups.splice(0).map((g) => g.cleanup()));
  });
  return (label: string): TestGroup => {
    const g = TestGroup.create(label);
    groups.push(g);
    return g;
  };
}
