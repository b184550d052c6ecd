/**
 * Specification of a process group's membership rules, with real processes: independent groups,
 * settings a secondary must share with its primary, lcore IDs, dead primaries and their leftovers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { sleep } from './harness/wait.js';
import { pidExists } from '../src/runtime/group.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestGroup, type Agent } from './harness/group.js';
import { useTestGroups } from './harness/use-groups.js';
import { repoRoot } from './harness/paths.js';
import { startShutdownTargetAsPid1 } from './harness/script.js';

const group = useTestGroups();

/** The `mp_socket_<pid>_*` files DPDK secondaries create in their group's runtime dir. */
function socketsOf(g: TestGroup, agent: Agent): string[] {
  return readdirSync(g.runtimeDir).filter((f) => f.startsWith(`mp_socket_${agent.pid}_`));
}

/**
 * Marks a dead group's runtime dir with a file of the test's own, as evidence that only its own
 * prefix touches: a dead group's hugepage files are no longer locked, and any DPDK primary
 * starting on the machine (any prefix) deletes such files. (An inode number is no evidence: a
 * new `config` file may get the inode of the deleted one.)
 */
function markLeftovers(g: TestGroup): string {
  const marker = join(g.runtimeDir, 'dead_group_marker');
  writeFileSync(marker, 'left by a dead group');
  return marker;
}

describe('independent groups', () => {
  it('two primaries with different filePrefix run side by side, and a secondary joins only its own group', async () => {
    const a = group('sideA');
    const b = group('sideB');
    const [pa, pb] = await Promise.all([a.spawn(), b.spawn()]);
    // B's primary uses other memory settings, so a secondary compared against the wrong primary would show
    const [ra, rb] = await Promise.all([pa.start({ procType: 'primary' }), pb.start({ procType: 'primary', singleFileSegments: true })]);
    expect([ra.processType, rb.processType]).toEqual(['primary', 'primary']);
    // each group numbers its lcores on its own
    expect([ra.lcoreId, rb.lcoreId]).toEqual([0, 0]);

    const sa = await a.spawn();
    const sb = await b.spawn();
    expect(await sa.start({ procType: 'secondary' })).toMatchObject({ processType: 'secondary', lcoreId: 1 });
    expect(await sb.start({ procType: 'secondary', singleFileSegments: true })).toMatchObject({ processType: 'secondary', lcoreId: 1 });
    expect(socketsOf(a, sa).length).toBeGreaterThan(0);
    expect(socketsOf(b, sa)).toEqual([]);
    expect(socketsOf(b, sb).length).toBeGreaterThan(0);
    expect(socketsOf(a, sb)).toEqual([]);
    // a secondary with B's settings is compared with A's primary, not B's
    const wrong = await a.spawn();
    await expect(wrong.start({ procType: 'secondary', singleFileSegments: true })).rejects.toMatchObject({ code: 'SETTINGS_MISMATCH' });

    // group A going away leaves group B untouched
    await sa.close();
    await pa.close();
    expect(a.leftovers()).toEqual([]);
    expect(existsSync(join(b.runtimeDir, 'config'))).toBe(true);
    expect(b.hugepageFiles().length).toBeGreaterThan(0);
    const late = await b.spawn();
    expect(await late.start({ procType: 'secondary', singleFileSegments: true })).toMatchObject({ processType: 'secondary', lcoreId: 2 });
  });
});

describe('settings a secondary must share with its primary', () => {
  it('a secondary whose legacyMem, singleFileSegments or hugeDir differ is refused, naming both values, before DPDK runs', async () => {
    const g = group('mismatch');
    await g.startAgent({ procType: 'primary' });
    const s = await g.spawn();
    const legacy = s.start({ procType: 'secondary', legacyMem: true });
    await expect(legacy).rejects.toMatchObject({ code: 'SETTINGS_MISMATCH' });
    await expect(legacy).rejects.toThrow(/legacyMem: primary false, this process true/);
    const single = s.start({ procType: 'secondary', singleFileSegments: true });
    await expect(single).rejects.toThrow(/singleFileSegments: primary false, this process true/);
    // a secondary needs no hugeDir (DPDK reads the primary's); one it gives must be the primary's
    const hugeDir = s.start({ procType: 'secondary', hugeDir: '/dev/hugepages' });
    await expect(hugeDir).rejects.toThrow(/hugeDir: primary DPDK's hugetlbfs mounts, this process \/dev\/hugepages/);
    // refused before rte_eal_init: the same process can still join with matching settings
    expect((await s.start({ procType: 'secondary' })).processType).toBe('secondary');
  });

  // A launched child's plain startActorSystem() under a primary with singleFileSegments: true was
  // SETTINGS_MISMATCH, and its pool's launch CHILD_FAILED.
  it("a secondary that leaves them out takes the primary's", async () => {
    const g = group('takes');
    await g.startAgent({ procType: 'primary', singleFileSegments: true });
    const s = await g.spawn();
    expect((await s.start({ procType: 'secondary' })).processType).toBe('secondary');
    const auto = await g.spawn();
    expect((await auto.start({ procType: 'auto' })).processType).toBe('secondary');
  });

  it('a secondary of another mpbus or DPDK version than the primary is refused, naming both versions', async () => {
    const g = group('version');
    await g.startAgent({ procType: 'primary' });
    // stands in for a primary built from another release: the settings it publishes say so
    const settingsPath = join(g.runtimeDir, 'mpbus_settings.json');
    const settings = JSON.parse(readFileSync(settingsPath, 'utf8')) as Record<string, unknown>;
    const ours = { mpbus: String(settings.mpbusVersion), dpdk: String(settings.dpdkVersion) };
    expect(ours.dpdk).toMatch(/^DPDK 22\.11/);
    writeFileSync(settingsPath, JSON.stringify({ ...settings, mpbusVersion: '0.0.1-older', dpdkVersion: 'DPDK 21.11.0' }));
    const s = await g.spawn();
    const start = s.start({ procType: 'secondary' });
    await expect(start).rejects.toMatchObject({ code: 'SETTINGS_MISMATCH' });
    await expect(start).rejects.toThrow(`mpbus version: primary 0.0.1-older, this process ${ours.mpbus}`);
    await expect(start).rejects.toThrow(`DPDK version: primary DPDK 21.11.0, this process ${ours.dpdk}`);
  });
});

describe('one PID namespace', () => {
  // Another container without a shared PID namespace: the group's processes know one another by
  // pid, and such a secondary attached, then neither side saw the other's actors.
  it('a secondary in another PID namespace than its primary is refused with OTHER_PID_NAMESPACE before DPDK runs; the group goes on', async () => {
    const g = group('pidns');
    await g.startAgent({ procType: 'primary' });
    const startOnce = join(repoRoot, 'dist', 'test', 'fixtures', 'start-once.js');
    const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, startOnce, g.prefix, 'secondary'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { code?: string; message?: string };
    expect(result.code, r.stderr).toBe('OTHER_PID_NAMESPACE');
    expect(result.message).toMatch(/must share one PID namespace.*shareProcessNamespace/);
    expect(readdirSync(g.runtimeDir).filter((f) => f.startsWith('mp_socket_'))).toEqual([]);
    const s = await g.spawn();
    expect((await s.start({ procType: 'secondary' })).processType).toBe('secondary');
  });

  it('a secondary outside the PID namespace of its primary (the host of a container) is refused too', async () => {
    const g = group('pidnsup');
    const primary = await startShutdownTargetAsPid1(g);
    const s = await g.spawn();
    await expect(s.start({ procType: 'secondary' })).rejects.toMatchObject({ code: 'OTHER_PID_NAMESPACE' });
    primary.child.kill('SIGKILL'); // --kill-child: the primary goes with it
    await primary.ended;
  });

  it("settings that name another PID namespace than the live primary's (left by an earlier primary) refuse no one", async () => {
    const g = group('pidnsold');
    await g.startAgent({ procType: 'primary' });
    const settingsPath = join(g.runtimeDir, 'mpbus_settings.json');
    const settings = JSON.parse(readFileSync(settingsPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(settingsPath, JSON.stringify({ ...settings, pidNamespace: 'pid:[1]' }));
    const s = await g.spawn();
    expect((await s.start({ procType: 'secondary' })).processType).toBe('secondary');
  });
});

describe('primary election', () => {
  it("processes started with 'auto' at the same moment elect exactly one primary", async () => {
    const g = group('race');
    const agents = await Promise.all([g.spawn(), g.spawn(), g.spawn(), g.spawn()]);
    const results = await Promise.all(agents.map((a) => a.start({ procType: 'auto' })));
    expect(results.filter((r) => r.processType === 'primary')).toHaveLength(1);
    expect(results.filter((r) => r.processType === 'secondary')).toHaveLength(3);
    expect(new Set(results.map((r) => r.lcoreId)).size).toBe(4);
  });

  it("a second process started with procType 'primary' is refused while the first lives", async () => {
    const g = group('twoprim');
    await g.startAgent({ procType: 'primary' });
    const other = await g.spawn();
    await expect(other.start({ procType: 'primary' })).rejects.toMatchObject({ code: 'PRIMARY_EXISTS' });
  });
});

describe('lcore IDs', () => {
  it('an explicit lcore held by a live process is refused, and IDs of SIGKILLed processes become free', async () => {
    const g = group('lcore');
    const p = await g.spawn();
    const s1 = await g.spawn();
    const s2 = await g.spawn();
    expect((await p.start({ procType: 'primary' })).lcoreId).toBe(0);
    expect((await s1.start({ procType: 'secondary' })).lcoreId).toBe(1);
    expect((await s2.start({ procType: 'secondary' })).lcoreId).toBe(2);

    const x = await g.spawn();
    const taken = x.start({ procType: 'secondary', lcore: 1 });
    await expect(taken).rejects.toMatchObject({ code: 'LCORE_IN_USE' });
    await expect(taken).rejects.toThrow(/lcore 1 is held by another live process/);
    // refused before rte_eal_init: the same process can still join with a free ID
    expect((await x.start({ procType: 'secondary', lcore: 7 })).lcoreId).toBe(7);

    s1.kill('SIGKILL');
    await s1.exited;
    const y = await g.spawn();
    expect((await y.start({ procType: 'secondary' })).lcoreId).toBe(1);

    s2.kill('SIGKILL');
    await s2.exited;
    const z = await g.spawn();
    expect((await z.start({ procType: 'secondary', lcore: 2 })).lcoreId).toBe(2);
  });
});

describe('a dead primary', () => {
  it('a secondary whose primary was SIGKILLed is refused with PRIMARY_DEAD, not attached to the dead group', async () => {
    const g = group('dead');
    const p = await g.startAgent({ procType: 'primary' });
    p.kill('SIGKILL');
    await p.exited;
    // DPDK left its runtime files behind
    expect(existsSync(join(g.runtimeDir, 'config'))).toBe(true);
    const s = await g.spawn();
    const start = s.start({ procType: 'secondary' });
    await expect(start).rejects.toMatchObject({ code: 'PRIMARY_DEAD' });
    await expect(start).rejects.toThrow(/start a new primary/);
  });

  it('a secondary whose primary dies while DPDK attaches it fails its start with PRIMARY_DEAD (it is not handed a dead group)', async () => {
    const g = group('dies-during');
    const p = await g.startAgent({ procType: 'primary' });
    // Stopped, the primary does not answer the secondary's start-up requests: DPDK waits for them.
    p.kill('SIGSTOP');
    const s = await g.spawn();
    const start = s.start({ procType: 'secondary' });
    await sleep(1500);
    p.kill('SIGKILL');
    await p.exited;
    await expect(start).rejects.toMatchObject({
      code: 'PRIMARY_DEAD',
      message: expect.stringContaining('the primary closed or died while this secondary attached'),
    });
    // it is still there to say so (not exited by the primary-lost policy)
    expect(pidExists(s.pid)).toBe(true);
  });

  it("a dead secondary's socket file whose pid another process took since is no live secondary: a new primary still founds the group again", async () => {
    const g = group('pid-reused');
    const p = await g.startAgent({ procType: 'primary' });
    p.kill('SIGKILL');
    await p.exited;
    // what a SIGKILLed secondary leaves, made 10 s ago, and a process started since with its pid
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const stale = join(g.runtimeDir, `mp_socket_${sleeper.pid}_123456`);
      writeFileSync(stale, '');
      const tenSecondsAgo = new Date(Date.now() - 10_000);
      utimesSync(stale, tenSecondsAgo, tenSecondsAgo);
      const fresh = await g.spawn();
      expect((await fresh.start({ procType: 'auto' })).processType).toBe('primary');
      expect(existsSync(stale)).toBe(false);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it("a new primary on a dead group's prefix clears its leftovers, but only once none of its processes lives", async () => {
    const g = group('leftover');
    const p = await g.startAgent({ procType: 'primary' });
    // a secondary that stays after its primary died (by default it would leave and exit itself)
    const orphan = await g.startAgent({ procType: 'secondary', onPrimaryLost: 'ignore' });
    p.kill('SIGKILL');
    await p.exited;
    const marker = markLeftovers(g);

    // the dead primary's secondary still lives: no new primary, nothing removed
    const early = await g.spawn();
    const refused = early.start({ procType: 'auto' });
    await expect(refused).rejects.toMatchObject({ code: 'PRIMARY_DEAD' });
    await expect(refused).rejects.toThrow(new RegExp(`pids ${orphan.pid}`));
    expect(existsSync(marker)).toBe(true);

    orphan.kill('SIGKILL');
    await orphan.exited;
    const fresh = await g.spawn();
    expect((await fresh.start({ procType: 'auto' })).processType).toBe('primary');
    // the dead group's files were removed before DPDK started (DPDK itself would reuse them)
    expect(existsSync(marker)).toBe(false);
    const s = await g.spawn();
    expect((await s.start({ procType: 'secondary' })).processType).toBe('secondary');
  });
});
