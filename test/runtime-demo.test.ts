/** `npm start`'s demo (samples/demo): a primary and two secondaries that leave nothing behind. */
import { spawn, spawnSync } from 'node:child_process';
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

it('the small samples say what is wrong with a flag (exit 2) and print their usage on --help (exit 0), before joining any group', () => {
  const run = (sample: string, ...args: string[]): { status: number | null; text: string } => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'samples', sample, 'main.js'), ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, text: r.stdout + r.stderr };
  };
  expect(run('symmetric', '--peers', '0')).toMatchObject({ status: 2, text: expect.stringContaining('--peers takes a whole number from 1 to 16, got 0') });
  expect(run('simple', '--messages', 'x')).toMatchObject({ status: 2, text: expect.stringContaining('--messages takes a whole number') });
  expect(run('control-plane', '--bogus')).toMatchObject({ status: 2, text: expect.stringContaining("Unknown option '--bogus'") });
  expect(run('demo', '--prefix')).toMatchObject({ status: 2, text: expect.stringContaining("'--prefix <value>' argument missing") });
  for (const sample of ['symmetric', 'simple', 'control-plane', 'demo'])
    expect(run(sample, '--help')).toMatchObject({ status: 0, text: expect.stringContaining('usage:') });
});
