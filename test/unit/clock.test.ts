/**
 * The wall clock read from a `performance.now()` reading (src/actors/clock.ts), as an ask's
 * deadline is written: whole milliseconds, within a millisecond of `Date.now()` read beside it.
 */
import { describe, expect, it } from 'vitest';
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
});
