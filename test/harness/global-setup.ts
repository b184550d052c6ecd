/**
 * Safety net around the whole suite: agents that outlived their test (a crashed test file) are
 * killed by PID, and their groups' files are removed, so no run leaves DPDK state behind.
 * Each vitest run records its agents under test/.tmp/pids/<run pid>/, so runs side by side
 * (several developers on one machine) never sweep each other.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive, removeGroupFiles } from './group.js';
import { pidRoot } from './paths.js';

function sweepRun(runDir: string): void {
  let pids: string[] = [];
  try {
    pids = readdirSync(runDir);
  } catch {
    return;
  }
  for (const pid of pids) {
    const prefix = readFileSync(join(runDir, pid), 'utf8');
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
    removeGroupFiles(prefix);
  }
  rmSync(runDir, { recursive: true, force: true });
}

export function setup(): void {
  process.env.MPBUS_TEST_RUN = String(process.pid);
  let runs: string[] = [];
  try {
    runs = readdirSync(pidRoot);
  } catch {
    return;
  }
  for (const run of runs) if (!processAlive(Number(run))) sweepRun(join(pidRoot, run));
}

export function teardown(): void {
  sweepRun(join(pidRoot, String(process.pid)));
}
