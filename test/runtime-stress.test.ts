/**
 * The attach stress script (`npm run stress:attach`, 300 attaches) in a short run: secondaries
 * attach every time, a fresh Node process each, and the group is gone after the primary closes.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

it('a secondary attaches and detaches 20 times in a row without a failure', async () => {
  const g = group('stress');
  const script = join(repoRoot, 'dist', 'bench', 'stress-attach.js');
  const child = g.track(spawn(process.execPath, [script, '--count', '20', '--prefix', g.prefix, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const summary = JSON.parse(out.trim().split('\n').pop()!) as {
    attaches: number;
    failures: number;
    lcoreIds: number[];
    groupFilesRemoved: boolean;
    firstFailure?: unknown;
  };
  expect(summary.firstFailure).toBeUndefined();
  expect(summary).toMatchObject({ attaches: 20, failures: 0, groupFilesRemoved: true });
  // each secondary left before the next came: its lcore ID was free again every time
  expect(summary.lcoreIds).toEqual([1]);
  expect(code).toBe(0);
}, 180_000);
