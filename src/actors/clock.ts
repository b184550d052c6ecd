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

/**
 * `Date.now()` at the moment `performance.now()` read `monotonicNow` (whole milliseconds, as
 * `Date.now()`, and never more than it; up to 1 ms less).
 *
 * `Date.now()` is whole milliseconds, so each offset read is below the true one by up to 1 ms.
 * Taking each new read as it came made the clock go back by up to 1 ms when the offset was read
 * again: a nested ask then found up to 1 ms more left of its caller's deadline than the caller
 * gave (a 400 ms ask's inner ask got 401 ms, test/cluster.test.ts). The largest read is kept
 * instead, so that this clock never goes back and comes closer to the true offset with each
 * read; a read more than 1 ms below it is a step of the wall clock back, and is taken.
 */
export function wallClockAt(monotonicNow: number): number {
  if (monotonicNow - offsetAt > OFFSET_MAX_AGE_MS || monotonicNow < offsetAt) {
    offsetAt = performance.now();
    const read = Date.now() - offsetAt;
    if (read > offset || read < offset - 1) offset = read;
  }
  return Math.floor(monotonicNow + offset);
}
