/** Where the compiled test fixtures live: agents run compiled JavaScript from dist/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, whether this file runs from test/harness (vitest) or dist/test/harness. */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export const repoRoot = findRepoRoot();
export const agentScript = join(repoRoot, 'dist', 'test', 'harness', 'agent.js');
export const pidRoot = join(repoRoot, 'test', '.tmp', 'pids');
/** This vitest run's record of spawned agents (the run's main pid, set by global-setup). */
export const pidDir = join(pidRoot, process.env.MPBUS_TEST_RUN ?? String(process.ppid));

/**
 * Absolute path of a compiled fixture file, e.g. fixturePath('join-twice') ->
 * dist/test/fixtures/join-twice.js (scripts a test runs as processes; modules agents run are
 * typed by `fixture` of fixtures.ts).
 */
export function fixturePath(name: string): string {
  return join(repoRoot, 'dist', 'test', 'fixtures', `${name}.js`);
}
