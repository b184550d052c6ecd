/**
 * CPU placement without DPDK (src/runtime/cpus.ts): CPU lists in DPDK's cpu-set syntax, the
 * `cpus` option checked against the CPUs a process may use, what a process forked from a pinned
 * one may use, and where `placement` puts a launcher and its children.
 */
import { describe, expect, it } from 'vitest';
import { allowedCpusOf, chooseCpus, DEFAULT_PLACEMENT, formatCpuList, parseCpuList, planPlacement } from '../../src/runtime/cpus.js';
import { ealArgs, resolveOptions } from '../../src/runtime/options.js';

const refused = (make: () => unknown, ...words: string[]): void => {
  expect(make).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  for (const word of words) expect(make).toThrow(word);
};

describe('CPU lists', () => {
  it("reads DPDK's cpu-set syntax and CPU numbers, sorted, each CPU once", () => {
    expect(parseCpuList('1', 'cpus')).toEqual([1]);
    expect(parseCpuList('0-3', 'cpus')).toEqual([0, 1, 2, 3]);
    expect(parseCpuList('5,0,2-3', 'cpus')).toEqual([0, 2, 3, 5]);
    expect(parseCpuList('(0-1)', 'cpus')).toEqual([0, 1]);
    expect(parseCpuList(' 1 - 2 , 4 ', 'cpus')).toEqual([1, 2, 4]);
    expect(parseCpuList([3, 1, 1], 'cpus')).toEqual([1, 3]);
  });

  it('refuses what is not a CPU list, naming the option', () => {
    for (const bad of ['', ',', '1,', 'a', '3-1', '-1', '0-1024', '1024', '1.5', [], [-1], [1.5], ['1'], [1024], 1, {}, null])
      refused(() => parseCpuList(bad, 'cpus'), 'cpus');
  });

  it('writes the shortest cpu-set text', () => {
    expect(formatCpuList([0, 1, 2, 5])).toBe('0-2,5');
    expect(formatCpuList([3])).toBe('3');
    expect(formatCpuList([0, 2, 4, 5])).toBe('0,2,4-5');
    expect(formatCpuList(parseCpuList('0-2,7-9', 'cpus'))).toBe('0-2,7-9');
  });
});

describe('the cpus option', () => {
  it('is parsed by the runtime options and maps the lcore onto those CPUs', () => {
    expect(resolveOptions({ cpus: '1' }).cpus).toEqual([1]);
    expect(resolveOptions({}).cpus).toBeUndefined();
    refused(() => resolveOptions({ cpus: 'one' }), 'cpus');
    expect(ealArgs(resolveOptions({}), 'primary', 3, [1])).toContain('--lcores=3@(1)');
    expect(ealArgs(resolveOptions({}), 'secondary', 4, [0, 2, 3])).toContain('--lcores=4@(0,2-3)');
  });

  it('takes CPUs the process may use, every one of them by default', () => {
    expect(chooseCpus(undefined, [0, 1])).toEqual([0, 1]);
    expect(chooseCpus([1], [0, 1])).toEqual([1]);
  });

  it('refuses CPUs outside the affinity mask, naming them, the cause and the fix', () => {
    refused(() => chooseCpus([0], [1]), 'cpus 0', 'CPU 0 is not among', '(1: its affinity mask', 'taskset');
    refused(() => chooseCpus([1, 2, 3], [0, 1]), 'CPUs 2-3 are not among');
  });

  it('lets a process forked from a pinned one use what its parent could, and not what a taskset took away', () => {
    expect(allowedCpusOf([0], '0/0-1')).toEqual([0, 1]); // inherited from a parent pinned to CPU 0
    expect(allowedCpusOf([1], '0/0-1')).toEqual([1]); // narrowed on purpose on the way (taskset -c 1)
    expect(allowedCpusOf([0, 1], undefined)).toEqual([0, 1]);
    expect(allowedCpusOf([0], 'garbage')).toEqual([0]);
    expect(allowedCpusOf([0], '0/x-1')).toEqual([0]);
  });
});

describe('placement', () => {
  it("a pool floats by default: nothing placed, whatever the CPUs ('spread' halved CPU-bound children on 2 CPUs)", () => {
    expect(DEFAULT_PLACEMENT).toBe('float');
    expect(planPlacement(DEFAULT_PLACEMENT, [0, 1], [0, 1])).toEqual({ launcher: undefined, children: undefined });
    expect(planPlacement(DEFAULT_PLACEMENT, [0, 1, 2, 3], [2])).toEqual({ launcher: undefined, children: undefined });
  });

  it("'spread' keeps the lowest CPU for the launcher and puts the children on the others", () => {
    expect(planPlacement('spread', [0, 1], [0, 1])).toEqual({ launcher: [0], children: [1] });
    expect(planPlacement('spread', [0, 1, 2, 3], [0, 1, 2, 3])).toEqual({ launcher: [0], children: [1, 2, 3] });
    expect(planPlacement('spread', [2, 5], [2, 5])).toEqual({ launcher: [2], children: [5] }); // taskset -c 2,5
  });

  it("'spread' leaves a launcher started with some of its CPUs on them", () => {
    expect(planPlacement('spread', [0, 1, 2, 3], [2])).toEqual({ launcher: undefined, children: [0, 1, 3] });
    expect(planPlacement('spread', [0, 1, 2, 3], [0, 1])).toEqual({ launcher: undefined, children: [2, 3] });
  });

  it("'spread' places nothing on one CPU (a 1-CPU machine, or taskset -c 3)", () => {
    expect(planPlacement('spread', [0], [0])).toEqual({ launcher: undefined, children: undefined });
    expect(planPlacement('spread', [3], [3])).toEqual({ launcher: undefined, children: undefined });
  });

  it("'float' places nothing", () => {
    expect(planPlacement('float', [0, 1], [0, 1])).toEqual({ launcher: undefined, children: undefined });
    expect(planPlacement('float', [0, 1, 2, 3], [1])).toEqual({ launcher: undefined, children: undefined });
  });
});
