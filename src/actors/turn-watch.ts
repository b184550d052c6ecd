/**
 * Whether this process has gone long without a turn of the event loop, cheaply enough to ask
 * before every message an actor handles. A loop that asks an actor of its own process
 * (`for (;;) await ref.ask(...)`) runs entirely in microtasks: each answer resolves the asker's
 * promise, which asks again, and the actor takes each message as a run of one, so no timer,
 * I/O callback or signal handler ever runs (measured: 7 M asks in 3 s with a 200 ms timer
 * waiting). Actors ask this before each message and let the event loop turn when it says so.
 *
 * A turn is seen by an immediate armed at most once per {@link CHECK_EVERY} questions: when it
 * has not run {@link TURN_AFTER_MS} after it was armed, no turn came for that long.
 */
import { TURN_AFTER_MS } from './run-clock.js';

/** Questions between two looks at the clock (a power of two). */
const CHECK_EVERY = 256;

let asked = 0;
let armed = false;
let armedAt = 0;

const turned = (): void => {
  armed = false;
};

/** True when the event loop has not turned for about {@link TURN_AFTER_MS}: the caller should let it (a `setImmediate`). */
export function longWithoutTurn(): boolean {
  if ((++asked & (CHECK_EVERY - 1)) !== 0) return false;
  if (!armed) {
    armed = true;
    armedAt = performance.now();
    setImmediate(turned).unref();
    return false;
  }
  return performance.now() - armedAt >= TURN_AFTER_MS;
}
