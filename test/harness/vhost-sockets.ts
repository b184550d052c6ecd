/** vhost-user socket paths for test groups, in one place for the interrupt test files. */
import { rmSync } from 'node:fs';
import { afterEach } from 'vitest';
import type { TestGroup } from './group.js';

/**
 * Returns `vhostSocket(g)`, a vhost-user socket path named after the group's prefix; after each
 * test, every path handed out is removed (a killed vhost leaves its socket behind). Call it
 * before {@link useTestGroups}, so that the groups' processes end before their sockets go
 * (vitest runs after-hooks last-registered first).
 */
export function useVhostSockets(): (g: TestGroup) => string {
  const sockets: string[] = [];
  afterEach(() => {
    for (const path of sockets.splice(0)) rmSync(path, { force: true });
  });
  return (g: TestGroup): string => {
    const path = `/tmp/mpbus-${g.prefix}.sock`;
    sockets.push(path);
    return path;
  };
}
