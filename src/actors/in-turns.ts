/**
 * Long lists gone through a slice per turn of the event loop, for what a close or a name that
 * went away fails at once: each failed ask costs a dead letter, an error and a rejected promise
 * (1-3 µs), and a close with a million asks waiting for room kept the event loop for 1.5-2.8 s
 * in one turn, past its own deadline and past the exit that Ctrl-C schedules.
 */

/** Items handled per turn (~10-25 ms of failing asks). */
export const ITEMS_PER_TURN = 8192;

/**
 * Calls `fn` on each item of `items` from index `from` on, {@link ITEMS_PER_TURN} per turn of
 * the event loop (the first slice at once); resolves after the last.
 */
export async function inTurns<T>(items: readonly T[], fn: (item: T) => void, from = 0): Promise<void> {
  let i = from;
  for (;;) {
    const end = Math.min(items.length, i + ITEMS_PER_TURN);
    for (; i < end; i++) fn(items[i]!);
    if (i >= items.length) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
