/** Where the compiled test fixtures live: agents run compiled JavaScript from dist/. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const agentScript = join(repoRoot, 'dist', 'test', 'harness', 'agent.js');
export const pidRoot = join(repoRoot, 'test', '.tmp', 'pids');
/** This vitest run's record of spawned agents (the run's main pid, set by global-setup). */
export const pidDir = join(pidRoot, process.env.MPBUS_TEST_RUN ?? String(process.ppid));

/** Absolute path of a compiled fixture module, e.g. fixture('mp') -> dist/test/fixtures/mp.js. */
export function fixture(name: string): string {
  return join(repoRoot, 'dist', 'test', 'fixtures', `${name}.js`);
}
