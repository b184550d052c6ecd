/**
 * Specification of how processes leave a group, with real processes: close(), SIGTERM, SIGINT and
 * a bare process.exit all clean up, the last one out removes the group's files and hugepages,
 * and a failed rte_eal_init is an error, never the end of the process.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGroupCounters } from '../src/obs/group-counters.js';
import { useTestGroups } from './harness/use-groups.js';
import { fixture } from './harness/fixtures.js';
import { repoRoot } from './harness/paths.js';

const group = useTestGroups();

/** Hugepage memory (kB) a process has mapped, from the kernel's /proc/<pid>/smaps_rollup. */
function mappedHugetlbKb(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  let kb = 0;
  for (const m of text.matchAll(/^(?:Shared|Private)_Hugetlb:\s+(\d+) kB/gm)) kb += Number(m[1]);
  return kb;
}

function hugepagesFree(): number {
  return Number(/^HugePages_Free:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
}

/** Hugepage files of every DPDK group on the machine (other test runs share it). */
function allHugepageFiles(): string[] {
  return readdirSync('/dev/hugepages');
}

describe('hugepages', () => {
  it('are released after close: the group files are gone, no process maps them, HugePages_Free is back', async () => {
    const quietBefore = allHugepageFiles().length === 0;
    const freeBefore = hugepagesFree();
    const g = group('huge');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    expect(g.hugepageFiles().length).toBeGreaterThan(0);
    expect(mappedHugetlbKb(p.pid)).toBeGreaterThan(0);
    expect(mappedHugetlbKb(s.pid)).toBeGreaterThan(0);

    await s.close();
    await p.close();
    // both processes still run: their mappings are gone and so are the files, so the kernel
    // has freed the pages whatever other groups on this machine do meanwhile
    expect(mappedHugetlbKb(p.pid)).toBe(0);
    expect(mappedHugetlbKb(s.pid)).toBe(0);
    expect(g.leftovers()).toEqual([]);
    // the exact count can be compared only when no other DPDK group ran meanwhile
    if (quietBefore && allHugepageFiles().length === 0) expect(hugepagesFree()).toBe(freeBefore);
  });
});

describe('leaving a group', () => {
  it("a lock of the group's shared memory left held by a dead process does not stop the last process's close (it spun in rte_eal_cleanup for good)", async () => {
    const g = group('stalelock');
    const p = await g.startAgent({ procType: 'primary' });
    // What a secondary SIGKILLed inside rte_eal_init leaves, and a writer then waiting: the memory
    // hotplug lock (DPDK 22.11's memory config, offset 32 of `config`) read-held (4) with the
    // writer's wait bit (1). Written from this process: the primary must not open that file.
    const fd = openSync(join(g.runtimeDir, 'config'), 'r+');
    const word = Buffer.alloc(4);
    word.writeInt32LE(5);
    writeSync(fd, word, 0, 4, 32);
    closeSync(fd);
    const t0 = Date.now();
    await p.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    await p.exit();
    expect(g.leftovers()).toEqual([]);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s closes the runtime, and the last process removes the group files', async (signal) => {
    const g = group(signal.toLowerCase());
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    s.kill(signal);
    expect((await s.exited).signal).toBe(signal);
    // the secondary removed its own socket; the group lives on with its primary
    expect(readdirSync(g.runtimeDir).filter((f) => f.startsWith(`mp_socket_${s.pid}_`))).toEqual([]);
    expect(g.hugepageFiles().length).toBeGreaterThan(0);
    p.kill(signal);
    expect((await p.exited).signal).toBe(signal);
    expect(g.leftovers()).toEqual([]);
  });

  it('when the primary leaves first, the last secondary removes the group files', async () => {
    const g = group('lastsec');
    const p = await g.startAgent({ procType: 'primary' });
    // secondaries that stay after their primary closed (by default they close and exit themselves)
    const s1 = await g.startAgent({ procType: 'secondary', onPrimaryLost: 'ignore' });
    const s2 = await g.startAgent({ procType: 'secondary', onPrimaryLost: 'ignore' });
    await p.close();
    expect(g.hugepageFiles().length).toBeGreaterThan(0);
    await s1.close();
    expect(existsSync(g.runtimeDir)).toBe(true);
    await s2.close();
    expect(g.leftovers()).toEqual([]);
  });

  it('a process that exits without close() still removes the group files when it is the last', async () => {
    const g = group('exit');
    const p = await g.startAgent({ procType: 'primary' });
    const s = await g.startAgent({ procType: 'secondary' });
    expect((await s.exit()).code).toBe(0);
    expect(existsSync(g.runtimeDir)).toBe(true);
    // the secondary ended as it chose: nothing of its own stays (rte_mp sockets, DPDK's copies of
    // the memseg lists), and `mpbus ps` does not count it among the killed
    expect(readdirSync(g.runtimeDir).filter((f) => f.includes(`_${s.pid}`))).toEqual([]);
    expect(readGroupCounters(g.prefix)!.processes.map((x) => [x.pid, x.state])).toEqual([[p.pid, 'alive']]);
    expect((await p.exit()).code).toBe(0);
    expect(g.leftovers()).toEqual([]);
  });

  it.each(['exit', 'close'] as const)(
    'a process that SIGKILLs another of its group and at once leaves (%s) waits for it to end, and removes the group files',
    async (how) => {
      // Until the kernel has torn the killed process down it holds its locks and its rte_mp
      // socket: the check found the group in use, and the killed one removes nothing.
      const g = group(`killleave_${how}`);
      const p = await g.startAgent({ procType: 'primary' });
      const s = await g.startAgent({ procType: 'secondary' });
      await p.use(fixture('runtime')).killAndLeave(s.pid, how);
      expect(await p.exited).toEqual({ code: 0, signal: null });
      expect((await s.exited).signal).toBe('SIGKILL');
      expect(g.leftovers()).toEqual([]);
    },
  );

  it('a closed runtime refuses use, and close() is idempotent', async () => {
    const g = group('closed');
    const p = await g.startAgent({ procType: 'primary' });
    await Promise.all([p.close(), p.close()]);
    await p.close();
    expect(await p.use(fixture('runtime')).assertOpen()).toBe('CLOSED');
    expect(g.leftovers()).toEqual([]);
  });
});

describe('rte_eal_init failures', () => {
  it('DPDK refusing the command line is INVALID_EAL_ARGS, and the process lives on', async () => {
    const g = group('badargs');
    const a = await g.spawn();
    const start = a.start({ procType: 'primary', extraEalArgs: ['--no-such-eal-flag'] });
    await expect(start).rejects.toMatchObject({ code: 'INVALID_EAL_ARGS' });
    await expect(start).rejects.toThrow(/extraEalArgs/);
    expect(await a.use(fixture('runtime')).ping()).toMatchObject({ pid: a.pid, started: false });
    // DPDK cannot run init twice in one process: a clear error, not a crash
    await expect(a.start({ procType: 'primary' })).rejects.toThrow(/start a new process/);
    expect(a.isAlive).toBe(true);
  });

  it.each([
    ['a bad EAL argument', { extraEalArgs: ['--no-such-eal-flag'] }, 'INVALID_EAL_ARGS', /unrecognized option '--no-such-eal-flag'/],
    ['too little hugepage memory', { memoryMb: 1_000_000 }, 'HUGEPAGES_SHORT', /Cannot init memory/],
  ] as const)(
    "with logLevel 'none', a failed init (%s) prints nothing of DPDK's on the application's stdout or stderr; the error quotes it",
    (_what, options, code, quoted) => {
      // DPDK prints its usage text to stdout (80 lines) and getopt's complaint and "EAL: FATAL"
      // lines to stderr itself, beside its log
      const g = group('quietinit');
      const script = `import { Runtime } from ${JSON.stringify(join(repoRoot, 'dist', 'src', 'index.js'))};
        await Runtime.start({ filePrefix: ${JSON.stringify(g.prefix)}, procType: 'primary', ...${JSON.stringify(options)} }).then(
          () => console.log('started'),
          (err) => console.log(JSON.stringify({ code: err.code, message: err.message })),
        );`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toBe('');
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const err = JSON.parse(lines[0]!) as { code: string; message: string };
      expect(err.code).toBe(code);
      expect(err.message).toMatch(quoted);
      expect(g.leftovers()).toEqual([]);
    },
  );

  it('a primary asking for more hugepage memory than is free gets HUGEPAGES_SHORT, and leaves no live-looking group', async () => {
    const g = group('nomem');
    const a = await g.spawn();
    const start = a.start({ procType: 'primary', memoryMb: 1_000_000 });
    await expect(start).rejects.toMatchObject({ code: 'HUGEPAGES_SHORT' });
    await expect(start).rejects.toThrow(/lower memoryMb/);
    // the count it says to reserve is enough for what was asked (1,000,000 MB: 500,000 pages of 2 MB)
    const reserve = Number(/echo (\d+) > \/proc\/sys\/vm\/nr_hugepages/.exec(((await start.catch((e: Error) => e)) as Error).message)?.[1]);
    expect(reserve).toBeGreaterThanOrEqual(500_000);
    expect(await a.use(fixture('runtime')).ping()).toMatchObject({ pid: a.pid });
    expect(g.hugepageFiles()).toEqual([]);
    // the failed process still runs, yet it holds nothing: a new process founds the group
    const b = await g.spawn();
    expect((await b.start({ procType: 'auto' })).processType).toBe('primary');
  });

  it('options DPDK must not see are refused before it runs', async () => {
    const g = group('owned');
    const a = await g.spawn();
    await expect(a.start({ extraEalArgs: ['--legacy-mem'] })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(a.start({ extraEalArgs: ['--help'] })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(a.start({ lcore: 128 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    // nothing was burnt: the process can still start
    expect((await a.start({ procType: 'primary' })).processType).toBe('primary');
  });
});
