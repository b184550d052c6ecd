/** Runs the `mpbus` command line (the compiled bin, dist/src/cli/main.js) as a user would. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

/** The compiled `mpbus` bin. */
export const cliScript = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Runs `mpbus ...args` to its end: its exit code and what it printed. */
export async function mpbus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cliScript, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
