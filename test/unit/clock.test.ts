/**
 * The wall clock read from a `performance.now()` reading (src/actors/clock.ts), as an ask's
 * deadline is written: whole milliseconds, within a millisecond of `Date.now()` read beside it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { wallClockAt } from '../../src/actors/clock.js';

describe('wallClockAt', () => {
  it('is Date.now() at the moment of the reading, in whole milliseconds', () => {
    for (let i = 0; i < 1000; i++) {
      const before = Date.now();
      const wall = wallClockAt(performance.now());
      const after = Date.now();
      expect(Number.isInteger(wall)).toBe(true);
      expect(wall).toBeGreaterThanOrEqual(before - 1);
      expect(wall).toBeLessThanOrEqual(after + 1);
    }
  });

  it('follows the reading given, not the time it is called', () => {
    const now = performance.now();
    expect(wallClockAt(now + 250) - wallClockAt(now)).toBeGreaterThanOrEqual(249);
    expect(wallClockAt(now + 250) - wallClockAt(now)).toBeLessThanOrEqual(251);
  });

  describe('when the offset between the clocks is read again', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    /** Both clocks as the process sees them: `performance.now()` at `p`, `Date.now()` the wall clock `p + trueOffset` in whole ms. */
    const clocks = (trueOffset: () => number): { at(p: number): void } => {
      let p = 0;
      vi.spyOn(performance, 'now').mockImplementation(() => p);
      vi.spyOn(Date, 'now').mockImplementation(() => Math.floor(p + trueOffset()));
      return { at: (now) => (p = now) };
    };

    it('never goes back (each read of Date.now() is up to 1 ms low), and is never ahead of Date.now()', () => {
      const start = performance.now() + 10_000;
      const trueOffset = 1_700_000_000_000.25;
      const clock = clocks(() => trueOffset);
      let last = -Infinity;
      // Reads once a second whose Date.now() falls early and late in its millisecond, by turns.
      for (let i = 0; i < 40; i++) {
        const p = start + i * 1001.37;
        clock.at(p);
        for (const r of [p, p + 500, p + 999]) {
          const wall = wallClockAt(r);
          expect(wall).toBeGreaterThanOrEqual(last);
          expect(wall).toBeLessThanOrEqual(Math.floor(r + trueOffset));
          expect(wall).toBeGreaterThanOrEqual(Math.floor(r + trueOffset) - 1);
          last = wall;
        }
      }
    });

    it('a reading just after the offset is read again is not before the one just before', () => {
      const trueOffset = 1_700_000_000_000.25;
      const clock = clocks(() => trueOffset);
      // First read just after Date.now() ticked (the offset read ~0.01 ms low)...
      const p1 = Math.floor(performance.now() + 20_000) + 0.76; // p1 + trueOffset ends in .01
      clock.at(p1);
      wallClockAt(p1 - 2000); // (a reading before the last read: reads the offset now)
      const before = wallClockAt(p1 + 1000);
      // ...the next one just before it ticks again (~0.99 ms low), for a reading taken just before.
      clock.at(p1 + 1000.98);
      const after = wallClockAt(p1 + 1000.5);
      expect(after).toBeGreaterThanOrEqual(before);
    });

    it('follows a step of the wall clock back', () => {
      const start = performance.now() + 100_000;
      let trueOffset = 1_700_000_000_000.5;
      const clock = clocks(() => trueOffset);
      clock.at(start);
      expect(wallClockAt(start)).toBeGreaterThanOrEqual(Math.floor(start + trueOffset) - 1);
      expect(wallClockAt(start)).toBeLessThanOrEqual(Math.floor(start + trueOffset));
      trueOffset -= 5000; // the operator or NTP set the clock back 5 s
      clock.at(start + 1500);
      expect(wallClockAt(start + 1500)).toBe(Math.floor(start + 1500 + trueOffset));
    });
  });
});
