/**
 * CPU placement with real processes: a process started with `cpus` runs every thread on those
 * CPUs (read from /proc/<pid>/task/<tid>/status), CPUs it may not use are refused before DPDK
 * starts, and `system.launch()` with `placement: 'spread'` keeps the launcher on one CPU and its
 * children on the others, while `'float'` children may use every CPU.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatCpuList, parseCpuList } from '../src/runtime/cpus.js';
import { processAlive } from './harness/group.js';
import { fixturePath } from './harness/paths.js';
import { useTestGroups } from './harness/use-groups.js';

const group = useTestGroups();

/** The distinct `Cpus_allowed_list`s of a process's threads. */
function threadCpus(pid: number): string[] {
  const lists = readdirSync(`/proc/${pid}/task`).map(
    (tid) => /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1],
  );
  return [...new Set(lists)].filter((l): l is string => l !== undefined).sort();
}

/** The CPUs this (test) process may use: the agents inherit them. */
const allowed = parseCpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1], 'Cpus_allowed_list');
const last = String(allowed.at(-1));

describe('CPU placement', () => {
  it('a process started with cpus runs every thread on them, the lcore mapped onto them', async () => {
    const g = group('plcpin');
    const agent = await g.startAgent({ procType: 'primary', cpus: last });
    expect(threadCpus(agent.pid)).toEqual([last]);
    const secondary = await g.startAgent({ procType: 'secondary' });
    expect(threadCpus(secondary.pid)).toEqual([formatCpuList(allowed)]); // no cpus: unpinned
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

  it("placement 'spread' keeps a CPU for the launcher and puts its children on the others; 'float' children use every CPU", async () => {
    const g = group('plcpool');
    const child = g.track(spawn(process.execPath, [fixturePath('plc-placement'), g.prefix], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{"allowed"'))!) as Record<string, unknown>;
    const all = formatCpuList(allowed);
    expect(result.allowed).toEqual(allowed);
    expect(result.launcherBefore).toEqual([all]);
    if (allowed.length >= 2) {
      expect(result.launcher).toEqual([String(allowed[0])]);
      expect(result.runtimeCpus).toEqual([allowed[0]]);
      expect(result.spread).toEqual([[formatCpuList(allowed.slice(1))], [formatCpuList(allowed.slice(1))]]);
    } else {
      expect(result.launcher).toEqual([all]); // one CPU: nothing to place
      expect(result.spread).toEqual([[all], [all]]);
    }
    // forked from a launcher on one CPU, a 'float' child goes back to every CPU
    expect(result.float).toEqual([[all]]);
    expect(result.badPlacement).toMatch(/^INVALID_OPTION: launch\(\) option placement must be one of 'spread', 'float'/);
    expect((result.pids as number[]).filter(processAlive)).toEqual([]);
    expect(g.leftovers()).toEqual([]);
  });
});
