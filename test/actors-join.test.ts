/** Specification of startActorSystem in a process that already runs a group. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixturePath } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

describe('startActorSystem while a runtime runs', () => {
  it('another group or another role is OTHER_GROUP, other runtime settings INVALID_OPTION; the same group shares the runtime (system.runtime)', async () => {
    const g = group('join2');
    const run = promisify(execFile)(process.execPath, [fixturePath('join-twice'), g.prefix]);
    g.track(run.child);
    const { stdout } = await run;
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({
      otherPrefix: 'OTHER_GROUP',
      otherRole: 'OTHER_GROUP',
      samePrefix: 'joined the same runtime',
      noPrefix: 'joined the same runtime',
      sameSettings: 'joined the same runtime',
      otherSettings: 'INVALID_OPTION',
      badSettings: 'INVALID_OPTION',
    });
    expect(existsSync(g.runtimeDir)).toBe(false);
  });
});

describe('startActorSystem with a bad option', () => {
  it('fails with INVALID_OPTION before DPDK starts, whatever layer the option is of: no runtime, no group files, and a later start works', async () => {
    const g = group('badopts');
    const run = promisify(execFile)(process.execPath, [fixturePath('bad-actor-options'), g.prefix]);
    g.track(run.child);
    const { stdout } = await run;
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { failures: Record<string, string>; thenStarted: string };
    for (const [option, outcome] of Object.entries(result.failures)) expect([option, outcome]).toEqual([option, 'INVALID_OPTION, no runtime, no files']);
    expect(Object.keys(result.failures)).toHaveLength(16);
    expect(result.thenStarted).toBe('primary');
    expect(existsSync(g.runtimeDir)).toBe(false);
  });
});
