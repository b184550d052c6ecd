/** `npm start`'s demo (samples/demo): a primary and two secondaries that leave nothing behind. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

it('the demo runs a primary and two secondaries, says so, and exits leaving no files', async () => {
  const g = group('demo');
  const child = g.track(
    spawn(process.execPath, [join(repoRoot, 'dist', 'samples', 'demo', 'main.js'), '--prefix', g.prefix], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(out).toMatch(new RegExp(`joined group '${g.prefix}' as primary, lcore 0`));
  expect(out.match(/as secondary, lcore [12]/g)).toHaveLength(2);
  expect(out).toMatch(/left the group last; .* removed/);
  expect(code).toBe(0);
  expect(g.leftovers()).toEqual([]);
});
