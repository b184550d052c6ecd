/**
 * The wall clock (`Date.now()`, what an envelope's deadline is written in, for other processes)
 * read from a `performance.now()` reading the caller already has: an ask reads one clock, not
 * two (each read is ~50 ns on a VM, ~2% of a routed ask's CPU in the caller).
 *
 * The offset between the two clocks is read again once a second of `performance.now()` time,
 * so a step of the wall clock (NTP, an operator) is followed within a second, as a deadline
 * written from `Date.now()` directly would follow it at once.
 */

/** How long an offset between the clocks is used before it is read again. */
const OFFSET_MAX_AGE_MS = 1000;

let offset = Date.now() - performance.now();
let offsetAt = performance.now();

/** `Date.now()` at the moment `performance.now()` read `monotonicNow` (whole milliseconds, as `Date.now()`). */
export function wallClockAt(monotonicNow: number): number {
  if (monotonicNow - offsetAt > OFFSET_MAX_AGE_MS || monotonicNow < offsetAt) {
    offsetAt = performance.now();
    offset = Date.now() - offsetAt;
  }
  return Math.floor(monotonicNow + offset);
}
