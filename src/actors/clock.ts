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

/** Reads of the offset whose two `performance.now()` readings lie this close are taken at once. */
const TIGHT_READ_MS = 0.01;

/**
 * `Date.now() - performance.now()`, never above the true offset (whole milliseconds lose up to
 * 1 ms): `Date.now()` is read between two `performance.now()` readings and the later one taken,
 * and of up to three tries the one whose readings lie closest. A process descheduled between
 * two plain readings made the offset wrong by as long (2 ms seen in a loaded CI run, at start).
 */
function readOffset(): number {
  let read = -Infinity;
  let span = Infinity;
  for (let i = 0; i < 3 && span > TIGHT_READ_MS; i++) {
    const before = performance.now();
    const wall = Date.now();
    const after = performance.now();
    if (after - before < span) {
      span = after - before;
      read = wall - after;
    }
  }
  return read;
}

let offset = readOffset();
let offsetAt = performance.now();

/**
 * `Date.now()` at the moment `performance.now()` read `monotonicNow` (whole milliseconds, as
 * `Date.now()`, and never more than it; up to about 1 ms less).
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
    const read = readOffset();
    if (read > offset || read < offset - 1) offset = read;
  }
  return Math.floor(monotonicNow + offset);
}
