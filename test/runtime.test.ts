import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';

const group = useTestGroups();

function hugepageFiles(prefix: string): string[] {
  return readdirSync('/dev/hugepages').filter((f) => f.startsWith(`${prefix}map_`));
}

describe('a process group', () => {
  it('a primary and two secondaries come up with distinct lcores and go down leaving nothing behind', async () => {
    const g = group('up');
    const primary = await g.spawn();
    expect((await primary.start({ procType: 'primary' })).processType).toBe('primary');
    const s1 = await g.spawn();
    const s2 = await g.spawn();
    const [r1, r2] = await Promise.all([s1.start({ procType: 'secondary' }), s2.start({ procType: 'secondary' })]);
    expect([r1.processType, r2.processType]).toEqual(['secondary', 'secondary']);
    const ids = await Promise.all([primary, s1, s2].map((a) => a.use(fixture('runtime')).identity()));
    expect(new Set(ids.map((i) => i.lcore)).size).toBe(3);
    for (const id of ids) {
      expect(id.lcore).toBe(id.runtimeLcore);
      // mapped onto every CPU: the Node main thread is not pinned
      expect(id.affinity).toBe(((1 << (await import('node:os')).availableParallelism()) - 1).toString(16));
    }
    await s1.close();
    await s2.close();
    await primary.close();
    expect(existsSync(`/var/run/dpdk/${g.prefix}`)).toBe(false);
    expect(hugepageFiles(g.prefix)).toEqual([]);
  });

  it("procType 'auto' becomes the primary, then secondaries", async () => {
    const g = group('auto');
    const a = await g.spawn();
    const b = await g.spawn();
    expect((await a.start({ procType: 'auto' })).processType).toBe('primary');
    expect((await b.start({ procType: 'auto' })).processType).toBe('secondary');
  });

  it('a secondary with no primary fails fast with NO_PRIMARY', async () => {
    const g = group('noprim');
    const s = await g.spawn();
    const t0 = Date.now();
    await expect(s.start({ procType: 'secondary' })).rejects.toMatchObject({ code: 'NO_PRIMARY' });
    // fails at once (DPDK itself would take ~40 ms); the bound only tells it from a hang or a wait
    expect(Date.now() - t0).toBeLessThan(10_000);
    // and leaves no runtime dir behind
    expect(existsSync(`/var/run/dpdk/${g.prefix}`)).toBe(false);
  });

  // (a Node secondary with the default prefix beside testpmd, whose group is 'rte', was told only that no primary ran)
  it('NO_PRIMARY names the groups whose primary lives on this machine', async () => {
    const other = group('other');
    await other.startAgent({ procType: 'primary' });
    const s = await group('nothere').spawn();
    await expect(s.start({ procType: 'secondary' })).rejects.toThrow(new RegExp(`the groups with a live primary here are .*'${other.prefix}'`));
  });

  it('starting twice in one process and using a closed runtime are errors, not crashes', async () => {
    const g = group('twice');
    const p = await g.startAgent({ procType: 'primary' });
    expect(await p.use(fixture('runtime')).startAgain()).toBe('EALREADY');
    await p.close();
    expect(await p.use(fixture('runtime')).assertOpen()).toBe('CLOSED');
    expect(await p.use(fixture('runtime')).startAgain()).toBe('EALREADY');
  });

  it('two Runtime.start calls at once in one process: one joins, the other is EALREADY', async () => {
    const g = group('atonce');
    const a = await g.spawn();
    expect(await a.use(fixture('runtime')).startTwiceAtOnce(g.prefix)).toEqual(['primary', 'EALREADY']);
    expect(existsSync(`/var/run/dpdk/${g.prefix}`)).toBe(false);
  });
});
