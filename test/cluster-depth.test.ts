/** Specification: with the cluster bridge on, an exported actor's mailbox depth is right (it was only growing). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from './harness/nats.js';
import { fixturePath } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();
const natsServer = useNatsServer();

describe('the cluster bridge and mailbox depth', () => {
  it('an exported actor sent 3x its mailbox capacity handles every message and its depth is back to 0', async () => {
    const g = group('cdepth');
    const run = promisify(execFile)(process.execPath, [fixturePath('cluster-depth'), g.prefix, natsServer().url]);
    g.track(run.child);
    const { stdout } = await run;
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { sent: number; total: number; depth: number; counters: { mailboxDepth: number } };
    expect(r.total).toBe(r.sent);
    expect(r.depth).toBe(0);
  });
});
