/**
 * The benchmarks' count of context switches (bench/lib.ts `contextSwitches`, `loopSwitches`):
 * both kinds a /proc status text lists are added up, nothing else in the text is counted, and
 * this process's own main thread has a count that does not go down.
 */
import { describe, expect, it } from 'vitest';
import { contextSwitches, loopSwitches } from '../../bench/lib.js';

describe('contextSwitches', () => {
  it('adds the voluntary and the other switches of a status text, and nothing else', () => {
    const status = ['Name:\tnode', 'Threads:\t11', 'voluntary_ctxt_switches:\t120', 'nonvoluntary_ctxt_switches:\t7', 'Cpus_allowed_list:\t0-1', ''].join('\n');
    expect(contextSwitches(status)).toBe(127);
    expect(contextSwitches('Name:\tnode\n')).toBe(0);
  });

  it("reads this process's main thread, whose count only grows", () => {
    const before = loopSwitches();
    expect(before).toBeGreaterThanOrEqual(0);
    expect(loopSwitches()).toBeGreaterThanOrEqual(before);
  });
});
