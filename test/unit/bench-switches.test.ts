/**
 * The benchmarks' count of context switches (bench/lib.ts `contextSwitches`, `loopSwitches`):
 * both kinds a /proc status text lists are added up, nothing else in the text is counted, and
 * the count of this process's main thread is read (not 0 once it has slept) and does not go down.
 */
import { describe, expect, it } from 'vitest';
import { contextSwitches, loopSwitches } from '../../bench/lib.js';

describe('contextSwitches', () => {
  it('adds the voluntary and the other switches of a status text, and nothing else', () => {
    const status = ['Name:\tnode', 'Threads:\t11', 'voluntary_ctxt_switches:\t120', 'nonvoluntary_ctxt_switches:\t7', 'Cpus_allowed_list:\t0-1', ''].join('\n');
    expect(contextSwitches(status)).toBe(127);
    expect(contextSwitches('Name:\tnode\n')).toBe(0);
  });

  it("reads this process's main thread, which has left its CPU by now and whose count only grows", () => {
    // (vitest runs this file in a worker thread: the main thread counted is vitest's own, which
    // has slept in its event loop since it started)
    const first = loopSwitches();
    expect(first).toBeGreaterThan(0);
    expect(loopSwitches()).toBeGreaterThanOrEqual(first);
  });
});
