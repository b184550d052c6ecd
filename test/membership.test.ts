import { describe, expect, it } from 'vitest';
import { TestGroup, type Agent } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';
import { poll } from './harness/wait.js';

const group = useTestGroups();

const mb = fixture('mailbox');

async function joined(g: TestGroup, procType: 'primary' | 'secondary'): Promise<Agent> {
  const a = await g.startAgent({ procType });
  await a.use(mb).join();
  return a;
}

describe('group membership', () => {
  it('every process sees every live process, with its pid, lcore slot and role', async () => {
    const g = group('members');
    const p = await joined(g, 'primary');
    const s1 = await joined(g, 'secondary');
    const s2 = await joined(g, 'secondary');
    const pids = [p.pid, s1.pid, s2.pid].sort();
    for (const a of [p, s1, s2]) {
      const seen = await poll(
        () => a.use(mb).peers(),
        (v) => v.length === 3,
      );
      expect(seen.map((x) => x.pid).sort()).toEqual(pids);
      expect(new Set(seen.map((x) => x.slot)).size).toBe(3);
      expect(seen.filter((x) => x.self).map((x) => x.pid)).toEqual([a.pid]);
      expect(seen.find((x) => x.pid === p.pid)?.role).toBe('primary');
    }
  });

  it('a SIGKILLed process is reported down as died within a second; a closed one as left', async () => {
    const g = group('death');
    const p = await joined(g, 'primary');
    const victim = await joined(g, 'secondary');
    const leaver = await joined(g, 'secondary');
    await poll(
      () => p.use(mb).peers(),
      (v) => v.length === 3,
    );
    const down = p.next<{ pid: number; reason: string }>('peerDown', 10_000, (d) => d.pid === victim.pid);
    const t0 = Date.now();
    victim.kill('SIGKILL');
    const d = await down;
    const elapsed = Date.now() - t0;
    expect(d.reason).toBe('died');
    // The requirement is 1 s; a loaded CI machine gets slack in the assertion, not in the design.
    expect(elapsed).toBeLessThan(3000);
    const left = p.next<{ pid: number; reason: string }>('peerDown', 10_000, (x) => x.pid === leaver.pid);
    await leaver.close();
    expect((await left).reason).toBe('left');
    expect((await p.use(mb).peers()).length).toBe(1);
  });

  it('a new process that takes a dead process slot is seen as up', async () => {
    const g = group('reuse');
    const p = await joined(g, 'primary');
    const first = await joined(g, 'secondary');
    await poll(
      () => p.use(mb).peers(),
      (v) => v.length === 2,
    );
    first.kill('SIGKILL');
    await poll(
      () => p.use(mb).peers(),
      (v) => v.length === 1,
    );
    const up = p.next<{ pid: number }>('peerUp', 10_000);
    const second = await joined(g, 'secondary');
    expect((await up).pid).toBe(second.pid);
  });
});
