/**
 * The tree keeps its house style: the TypeScript compiles, tests included (tsconfig.json); ESLint
 * with typescript-eslint's recommended and type-aware rules over the TypeScript
 * (eslint.config.mjs; the linter lives in tools/lint), Prettier's formatting of the
 * TypeScript and JSON (.prettierrc.json), and clang-format's of native/ (.clang-format). Each
 * check prints what to run to fix it: `npm run lint`, `npm run format`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/paths.js';

/** Runs a tool of the repository; its output when it fails. */
function run(command: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(command, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

// Whole-tree passes take tens of seconds on a loaded 2-vCPU machine; ESLint with type
// information took 150 s there while integration tests ran beside it.
const TOOL_TIMEOUT_MS = 360_000;

describe('house style', () => {
  it(
    'the TypeScript type-checks, tests and fixtures included (npm run typecheck)',
    () => {
      // vitest runs test files without checking their types: a test calling a fixture function
      // that no longer exists, or with the wrong arguments, fails here.
      const { status, output } = run(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json', '--noEmit']);
      expect(status, `npm run typecheck:\n${output.slice(0, 4000)}`).toBe(0);
    },
    TOOL_TIMEOUT_MS,
  );

  it(
    'ESLint finds nothing (npm run lint)',
    () => {
      const { status, output } = run(join(repoRoot, 'tools/lint/node_modules/.bin/eslint'), ['--max-warnings=0', '.']);
      expect(status, `npm run lint:\n${output}`).toBe(0);
    },
    TOOL_TIMEOUT_MS,
  );

  it(
    'the TypeScript is formatted by Prettier (npm run format)',
    () => {
      const { status, output } = run(join(repoRoot, 'node_modules/.bin/prettier'), ['--list-different', '.']);
      expect(output, 'files Prettier would change; run `npm run format`').toBe('');
      expect(status).toBe(0);
    },
    TOOL_TIMEOUT_MS,
  );

  it(
    'the C++ is formatted by clang-format (npm run format)',
    () => {
      const files = readdirSync(join(repoRoot, 'native'))
        .filter((f) => /\.(cc|h)$/.test(f))
        .map((f) => join('native', f));
      const { status, output } = run('clang-format', ['--dry-run', '-Werror', ...files]);
      expect(status, `files clang-format would change; run \`npm run format\`:\n${output.slice(0, 4000)}`).toBe(0);
    },
    TOOL_TIMEOUT_MS,
  );
});
