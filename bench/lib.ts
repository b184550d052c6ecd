/**
 * Shared pieces of the benchmarks: the results file's row shape and what a suite gets, percentiles
 * and the latency recorder, where callers and workers are placed, and context-switch counts.
 */
import { readFileSync } from 'node:fs';
import { formatCpuList, planPlacement, readAllowedCpus, type Placement } from '../src/runtime/cpus.js';

/** One row of bench/results.json. */
export interface BenchRow {
  transport: string;
  payloadBytes: number;
  throughputMsgsPerSec?: number;
  rttP50Us?: number;
  rttP99Us?: number;
  /** Free-form extra facts (e.g. msgpackr native acceleration on/off). */
  notes?: string;
}

/** What each suite gets from bench/run.ts. */
export interface BenchContext {
  /** Adds (or replaces, by transport + payloadBytes) rows of the results table. */
  addRows(rows: BenchRow[]): void;
  /** Sets a top-level field of results.json (e.g. idleCpuPercent). */
  setField(name: string, value: unknown): void;
  /** A live one-line progress message. */
  progress(message: string): void;
  /** True when a quick run was asked for (`npm run bench -- --quick`). */
  quick: boolean;
  /** Where the mpbus caller and workers of the peers suite run (`--placement=spread|float`, default {@link CALLER_PLACEMENT}). */
  placement: Placement;
}

/** Percentile of a sorted-in-place numeric array (p in 0..100). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  values.sort((a, b) => a - b);
  const i = Math.min(values.length - 1, Math.max(0, Math.ceil((p / 100) * values.length) - 1));
  return values[i]!;
}

/**
 * Latencies recorded by a measurement, in a typed array that doubles as it fills: its backing
 * store lies outside V8's heap, so the collector neither scans nor copies it. A plain array of
 * numbers, grown by `push`, was copied anew each time it grew (half a million answers of a
 * window made it several MB), inside the time it measured: a cost of the measurement that
 * weighed most on the fastest rows.
 */
export class Samples {
  private values = new Float64Array(1 << 16);
  private count = 0;

  /** How many were added. */
  get length(): number {
    return this.count;
  }

  add(value: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = value;
  }

  /** Percentile (p in 0..100) of what was added; NaN when nothing was. Sorts in place. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const sorted = this.values.subarray(0, this.count).sort();
    return sorted[Math.min(this.count - 1, Math.max(0, Math.ceil((p / 100) * this.count) - 1))]!;
  }
}

/**
 * Node flags of the peers suite's second mpbus caller (bench/suites/peers.ts): a young
 * generation of 32 MB semi-spaces from the start (Node 20's grow from 1 MB up to 16 MB as
 * survivors require), the setting docs/actors.md ("Many asks in flight") gives an application
 * that keeps thousands of asks in flight. Its workers inherit them, as forked processes do.
 */
export const YOUNG_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--min-semi-space-size=32'];

/**
 * Where a bench's caller and its hand-forked workers run under `placement`, as `system.launch()`
 * would place a pool (src/runtime/cpus.ts): the caller's `cpus` option, and the workers' CPUs as
 * a cpu-set list ('' for any).
 */
export function benchPlacement(placement: Placement): { caller: number[] | undefined; workers: string } {
  const allowed = readAllowedCpus();
  const plan = planPlacement(placement, allowed, allowed);
  return { caller: plan.launcher, workers: plan.children ? formatCpuList(plan.children) : '' };
}

/** How a row names its placement: `placement spread (caller on CPU 0, workers on CPU 1)`. */
export function describePlacement(placement: Placement): string {
  const placed = benchPlacement(placement);
  const allowed = formatCpuList(readAllowedCpus());
  return `placement ${placement} (caller on CPU ${placed.caller ? formatCpuList(placed.caller) : allowed}, workers on CPU ${placed.workers || allowed})`;
}

/**
 * Where the benches place a caller that launched its workers: `'spread'`, the placement
 * docs/process-model.md ("CPU placement") gives an application of their shape (the launcher is
 * the busy caller, the jobs are light), not the pool's default (`'float'`). Rows name it.
 */
export const CALLER_PLACEMENT: Placement = 'spread';

/** `--placement=spread|float` taken out of `argv` (default {@link CALLER_PLACEMENT}). */
export function placementArg(argv: string[]): Placement {
  const i = argv.findIndex((a) => a.startsWith('--placement='));
  if (i < 0) return CALLER_PLACEMENT;
  const value = argv.splice(i, 1)[0]!.slice('--placement='.length);
  if (value !== 'spread' && value !== 'float') throw new Error(`--placement must be spread or float, got '${value}'`);
  return value;
}

/** The context switches a thread's /proc status text counts: voluntary and not, each a time it left its CPU. */
export function contextSwitches(status: string): number {
  let switches = 0;
  for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) switches += Number(m[1]);
  return switches;
}

/** How many times this process's main thread (its event loop) has left its CPU so far; 0 where /proc does not say. */
export function loopSwitches(): number {
  try {
    return contextSwitches(readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8'));
  } catch {
    return 0;
  }
}
