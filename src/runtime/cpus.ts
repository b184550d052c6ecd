/**
 * Which CPUs a process of a group runs on: CPU lists in DPDK's cpu-set syntax, the CPUs a process
 * may use, the check of the `cpus` option against them, the placement of a launcher and its
 * workers, and applying a choice to the process's threads (docs/process-model.md, "CPU
 * placement"). Everything but {@link applyCpus} and {@link readAllowedCpus} is pure.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ErrorCodes, MpBusError } from '../errors.js';
import { addon } from '../native/addon.js';

/**
 * CPUs as DPDK's cpu-set syntax (`'1'`, `'0-3'`, `'0,2-3'`, optionally in parentheses as in
 * `--lcores`), or as CPU numbers (`[0, 2]`).
 */
export type CpuList = string | readonly number[];

/**
 * Where `system.launch()` puts its children and itself:
 * - `'float'` (the default): no placement, every process runs on every CPU the launcher may
 *   use, as the kernel schedules it.
 * - `'spread'`: when the launcher may use 2 CPUs or more, it keeps one for itself (its `cpus`
 *   when it was started with some, else the lowest CPU it may use) and its children share the
 *   others (on 2 CPUs: the launcher on one, every child on the other); on 1 CPU nothing is placed.
 *   For a launcher that is itself the busy caller of light jobs; children that need more CPU
 *   than the others give, or that ask one another, lose about half their speed with it, or more.
 */
export type Placement = 'spread' | 'float';

/**
 * `LaunchOptions.placement` when none is given: `'float'`, which was about as fast as `'spread'`
 * or up to 2-3x faster for every shape of application measured but one, a launcher asking light
 * jobs with many in flight (docs/benchmarks.md, "Placement and the application's shape").
 */
export const DEFAULT_PLACEMENT: Placement = 'float';

/** DPDK's CPU_SETSIZE: CPU numbers are below it. */
export const MAX_CPU = 1024;

/** Set in the environment of a process pinned by `cpus`: `<its CPUs>/<the CPUs it may use>`, for the processes it forks. */
export const INHERITED_CPUS_ENV = 'MPBUS_CPUS_INHERITED';

function invalid(message: string): never {
  throw new MpBusError(ErrorCodes.invalidOption, message);
}

/** Sorted CPU numbers, each once, from a {@link CpuList}; INVALID_OPTION naming `name` otherwise. */
export function parseCpuList(value: unknown, name: string): number[] {
  const shown = JSON.stringify(value);
  const rule = `a CPU list in DPDK's cpu-set syntax ('1', '0-3', '0,2-3') or an array of CPU numbers 0..${MAX_CPU - 1}`;
  const cpus = new Set<number>();
  const add = (n: number): void => {
    if (!Number.isInteger(n) || n < 0 || n >= MAX_CPU) invalid(`${name} must be ${rule}, got ${shown}`);
    cpus.add(n);
  };
  if (Array.isArray(value)) {
    for (const n of value) add(typeof n === 'number' ? n : Number.NaN);
  } else if (typeof value === 'string') {
    const text = /^\((.*)\)$/.exec(value.trim())?.[1] ?? value.trim();
    for (const part of text.split(',')) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) invalid(`${name} must be ${rule}, got ${shown}`);
      const from = Number(m[1]);
      const to = m[2] === undefined ? from : Number(m[2]);
      if (to < from) invalid(`${name} must be ${rule} (a range goes upwards), got ${shown}`);
      if (to >= MAX_CPU) add(to);
      for (let n = from; n <= to; n++) add(n);
    }
  } else {
    invalid(`${name} must be ${rule}, got ${shown}`);
  }
  if (cpus.size === 0) invalid(`${name} must name at least one CPU (${rule}), got ${shown}`);
  return [...cpus].sort((a, b) => a - b);
}

/** The shortest cpu-set text of sorted CPU numbers: `[0, 1, 2, 5]` -> `'0-2,5'`. */
export function formatCpuList(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j;
  }
  return parts.join(',');
}

function sameCpus(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/**
 * The CPUs this process may use, given its affinity `mask` (taskset, cgroups) and what a parent
 * mpbus process pinned by `cpus` left in its environment (`inherited`, see
 * {@link INHERITED_CPUS_ENV}): a process forked from a pinned one starts with its parent's CPUs
 * only, and may use what the parent could. A mask other than the parent's CPUs was set on
 * purpose (taskset on the way) and stands.
 */
export function allowedCpusOf(mask: readonly number[], inherited: string | undefined): number[] {
  const m = inherited === undefined ? null : /^([0-9,-]+)\/([0-9,-]+)$/.exec(inherited);
  if (!m) return [...mask];
  try {
    const [pinned, allowed] = [parseCpuList(m[1], INHERITED_CPUS_ENV), parseCpuList(m[2], INHERITED_CPUS_ENV)];
    return sameCpus(mask, pinned) ? allowed : [...mask];
  } catch {
    return [...mask]; // not ours to trust
  }
}

/** This process's affinity mask, from the kernel (`Cpus_allowed_list` of its main thread). */
export function readAffinityMask(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseCpuList(m[1], 'Cpus_allowed_list');
  } catch {
    // not Linux /proc: fall back to counting
  }
  return [...Array(availableParallelism()).keys()];
}

/** The CPUs this process may use now: {@link allowedCpusOf} its mask and environment. */
export function readAllowedCpus(): number[] {
  return allowedCpusOf(readAffinityMask(), process.env[INHERITED_CPUS_ENV]);
}

/**
 * The CPUs a process runs on: those asked for (`requested`, parsed), each of which it must be
 * allowed (else INVALID_OPTION naming the CPUs, why they are out and what to do), or every
 * allowed CPU when none were asked for.
 */
export function chooseCpus(requested: readonly number[] | undefined, allowed: readonly number[], name = 'cpus'): number[] {
  if (requested === undefined) return [...allowed];
  const outside = requested.filter((n) => !allowed.includes(n));
  if (outside.length > 0) {
    invalid(
      `${name} ${formatCpuList(requested)}: CPU${outside.length > 1 ? 's' : ''} ${formatCpuList(outside)} ${outside.length > 1 ? 'are' : 'is'} not among the CPUs this process may use (${formatCpuList(allowed)}: its affinity mask, set by taskset or a cgroup cpuset, or the machine's CPUs); ` +
        `name CPUs from ${formatCpuList(allowed)}, or start the process with more (taskset -c <list> node ...)`,
    );
  }
  return [...requested];
}

/** What {@link planPlacement} decides: CPUs for the launcher and for its children (undefined: leave as they are). */
export interface PlacementPlan {
  /** The launcher's CPUs, when it is to move onto them. */
  launcher: number[] | undefined;
  /** Every child's CPUs (undefined: every CPU the launcher may use). */
  children: number[] | undefined;
}

/**
 * Where a launcher and its children run under `placement`, given the CPUs the launcher may use
 * and those it runs on now (see {@link Placement}).
 */
export function planPlacement(placement: Placement, allowed: readonly number[], launcherCpus: readonly number[]): PlacementPlan {
  if (placement === 'float' || allowed.length < 2) return { launcher: undefined, children: undefined };
  // A launcher started with some of its CPUs keeps them; one on all of them takes the lowest.
  const own = launcherCpus.length < allowed.length ? [...launcherCpus] : [allowed[0]!];
  const rest = allowed.filter((n) => !own.includes(n));
  return { launcher: sameCpus(own, launcherCpus) ? undefined : own, children: rest.length > 0 ? rest : undefined };
}

/**
 * Places this process on `cpus`: its JS thread, which is its lcore, goes onto them (and with it
 * the threads mpbus starts from it later: the doorbell thread, the exit watcher), while the
 * threads Node started (V8's platform workers, libuv's pool) may use every CPU in `allowed`, as
 * DPDK leaves its control threads off the lcores' CPUs (docs/process-model.md, "CPU placement";
 * moving every thread was measured too: docs/benchmarks.md, "Seventh pass: placement").
 * Nothing is done when the process is on `allowed` and stays there. `allowed` goes into the
 * environment for the processes this one forks ({@link allowedCpusOf}).
 */
export function applyCpus(cpus: readonly number[], allowed: readonly number[], mask: readonly number[] = readAffinityMask()): void {
  if (!sameCpus(cpus, allowed) || !sameCpus(mask, allowed)) {
    addon().setCpuAffinity([...allowed], true);
    if (!sameCpus(cpus, allowed)) addon().setCpuAffinity([...cpus], false);
  }
  if (sameCpus(cpus, allowed)) delete process.env[INHERITED_CPUS_ENV];
  else process.env[INHERITED_CPUS_ENV] = `${formatCpuList(cpus)}/${formatCpuList(allowed)}`;
}
