/**
 * CPU placement with real processes: a process started with `cpus` runs its JS thread (the lcore)
 * on those CPUs while Node's helper threads may use every CPU (read from
 * /proc/<pid>/task/<tid>/status), CPUs it may not use are refused before DPDK starts, and
 * `system.launch()` places nothing by default, with `placement: 'spread'` keeps the launcher on
 * one CPU and its children on the others, and with `'float'` lets its children use every CPU.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatCpuList, parseCpuList } from '../src/runtime/cpus.js';
import { processAlive } from './harness/group.js';
import { fixturePath } from './harness/paths.js';
import { threadCpus } from './harness/threads.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

/** The CPUs this (test) process may use: the agents inherit them. */
const allowed = parseCpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1], 'Cpus_allowed_list');
const last = String(allowed.at(-1));

/** Every thread on CPUs the process may use, and some (V8's, libuv's) on all of them. */
function expectHelpersFloat(threads: { all: string[] }): void {
  for (const list of threads.all) expect(parseCpuList(list, 'thread CPUs').every((n) => allowed.includes(n))).toBe(true);
  expect(threads.all).toContain(formatCpuList(allowed));
}

describe('CPU placement', () => {
  it("a process started with cpus runs its JS thread (the lcore) on them, Node's helper threads on every CPU", async () => {
    const g = group('plcpin');
    const agent = await g.startAgent({ procType: 'primary', cpus: last });
    const pinned = threadCpus(agent.pid);
    expect(pinned.js).toBe(last);
    expect(pinned.all).toContain(last);
    expectHelpersFloat(pinned);
    const secondary = await g.startAgent({ procType: 'secondary' });
    expect(threadCpus(secondary.pid).all).toEqual([formatCpuList(allowed)]); // no cpus: unpinned
  });

  it('refuses CPUs the process may not use, before DPDK starts, naming them and the fix', async () => {
    const g = group('plcbad');
    const agent = await g.spawn();
    await expect(agent.start({ procType: 'primary', cpus: '1023' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/CPU 1023 is not among the CPUs this process may use.*taskset/),
    });
    expect(g.leftovers()).toEqual([]);
  });

  it("a pool places nothing by default; 'spread' keeps a CPU for the launcher and puts its children on the others; 'float' children use every CPU", async () => {
    const g = group('plcpool');
    const child = g.track(spawn(process.execPath, [fixturePath('placement'), g.prefix], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{"allowed"'))!) as Record<string, unknown>;
    const all = formatCpuList(allowed);
    expect(result.allowed).toEqual(allowed);
    type Threads = ReturnType<typeof threadCpus>;
    const launcher = result.launcher as Threads;
    const spread = result.spread as Threads[];
    const float = result.float as Threads[];
    expect((result.launcherBefore as Threads).js).toBe(all);
    // the default ('float'): the launcher stays where it was, its child runs on every CPU
    expect((result.launcherAfterDefault as Threads).js).toBe(all);
    expect((result.unplaced as Threads[]).map((c) => c.js)).toEqual([all]);
    if (allowed.length >= 2) {
      expect(launcher.js).toBe(String(allowed[0]));
      expect(result.runtimeCpus).toEqual([allowed[0]]);
      expect(spread.map((c) => c.js)).toEqual([formatCpuList(allowed.slice(1)), formatCpuList(allowed.slice(1))]);
    } else {
      expect(launcher.js).toBe(all); // one CPU: nothing to place
      expect(spread.map((c) => c.js)).toEqual([all, all]);
    }
    // forked from a launcher on one CPU, every child's helper threads go back to every CPU, and a 'float' child's JS thread too
    for (const threads of [launcher, ...(result.unplaced as Threads[]), ...spread, ...float]) expectHelpersFloat(threads);
    expect(float.map((c) => c.js)).toEqual([all]);
    expect(result.badPlacement).toMatch(/^INVALID_OPTION: launch\(\) option placement must be one of 'spread', 'float'/);
    expect((result.pids as number[]).filter(processAlive)).toEqual([]);
    expect(g.leftovers()).toEqual([]);
  });
});
