/**
 * The attach stress script (`npm run stress:attach`, 300 attaches) in a short run: secondaries
 * attach every time, a fresh Node process each, and the group is gone after the primary closes.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { TestGroup } from './harness/group.js';
import { repoRoot } from './harness/paths.js';

const groups: TestGroup[] = [];
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.cleanup()));
});

it('a secondary attaches and detaches 20 times in a row without a failure', async () => {
  const g = TestGroup.create('stress');
  groups.push(g);
  const script = join(repoRoot, 'dist', 'bench', 'stress-attach.js');
  const child = g.track(spawn(process.execPath, [script, '--count', '20', '--prefix', g.prefix, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const summary = JSON.parse(out.trim().split('\n').pop()!) as { attaches: number; failures: number; lcoreIds: number[]; groupFilesRemoved: boolean; firstFailure?: unknown };
  expect(summary.firstFailure).toBeUndefined();
  expect(summary).toMatchObject({ attaches: 20, failures: 0, groupFilesRemoved: true });
  // each secondary left before the next came: its lcore ID was free again every time
  expect(summary.lcoreIds).toEqual([1]);
  expect(code).toBe(0);
}, 180_000);
