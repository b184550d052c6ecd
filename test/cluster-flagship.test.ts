/**
 * The flagship with `--hosts N`: N DPDK groups standing in for hosts, each with its own router
 * and workers, joined through a local nats-server the sample starts; every job must still be
 * answered exactly once, and nothing (processes, runtime dirs, hugepage files) left behind.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './harness/paths.js';

const run = promisify(execFile);

describe('flagship across hosts', () => {
  it('--hosts 2 with a worker SIGKILLed mid-run: every job answered exactly once, spread over both hosts', async () => {
    const { stdout } = await run(
      process.execPath,
      [join(repoRoot, 'dist', 'samples', 'flagship', 'main.js'), '--hosts', '2', '--workers', '2', '--jobs', '3000', '--kill-one-worker', '--json'],
      {
        timeout: 240_000,
        killSignal: 'SIGINT',
      },
    );
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      jobs: number;
      answered: number;
      lost: number;
      duplicates: number;
      failed: number;
      hosts: number;
      perWorker: Record<string, number>;
      killedWorker: string | null;
      leftovers: string[];
    };
    expect(summary).toMatchObject({ jobs: 3000, answered: 3000, lost: 0, duplicates: 0, failed: 0, hosts: 2, leftovers: [] });
    expect(summary.killedWorker).toMatch(/^worker-h[12]-\d$/);
    const perHost = (h: string): number =>
      Object.entries(summary.perWorker)
        .filter(([w]) => w.startsWith(`worker-${h}-`))
        .reduce((n, [, c]) => n + c, 0);
    expect(perHost('h1')).toBeGreaterThan(0);
    expect(perHost('h2')).toBeGreaterThan(0);
  });
});
