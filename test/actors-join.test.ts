/** Specification of startActorSystem in a process that already runs a group. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixturePath } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

describe('startActorSystem while a runtime runs', () => {
  it('another group or another role is OTHER_GROUP; the same group shares the runtime (system.runtime)', async () => {
    const g = group('join2');
    const run = promisify(execFile)(process.execPath, [fixturePath('join-twice'), g.prefix]);
    g.track(run.child);
    const { stdout } = await run;
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({
      otherPrefix: 'OTHER_GROUP',
      otherRole: 'OTHER_GROUP',
      samePrefix: 'joined the same runtime',
      noPrefix: 'joined the same runtime',
    });
    expect(existsSync(g.runtimeDir)).toBe(false);
  });
});
