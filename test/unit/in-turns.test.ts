/**
 * Long lists gone through a slice per turn of the event loop (src/actors/in-turns.ts): every item
 * once and in order, the first slice at once, and other work (timers, I/O, immediates) let in between slices.
 */
import { describe, expect, it } from 'vitest';
import { inTurns, ITEMS_PER_TURN } from '../../src/actors/in-turns.js';

describe('inTurns', () => {
  it('goes through every item once, in order, from the index given; the first slice at once, the rest on later turns', async () => {
    const items = Array.from({ length: ITEMS_PER_TURN * 2 + 5 }, (_, i) => i);
    const seen: number[] = [];
    // other work queued before it: it runs between the first slice and the second
    let seenByOtherWork = -1;
    setImmediate(() => (seenByOtherWork = seen.length));
    const done = inTurns(items, (i) => void seen.push(i), 3);
    expect(seen.length).toBe(ITEMS_PER_TURN); // the first slice, before inTurns returned
    await done;
    expect(seen).toEqual(items.slice(3));
    expect(seenByOtherWork).toBe(ITEMS_PER_TURN);
  });

  it('a list of one slice or less is done at once; an empty one too', async () => {
    const seen: number[] = [];
    const done = inTurns([1, 2, 3], (i) => void seen.push(i));
    expect(seen).toEqual([1, 2, 3]);
    await done;
    await inTurns([], () => {
      throw new Error('not called');
    });
  });

  it('a throwing callback rejects the promise and stops there', async () => {
    const seen: number[] = [];
    await expect(
      inTurns([1, 2, 3], (i) => {
        if (i === 2) throw new Error('two');
        seen.push(i);
      }),
    ).rejects.toThrow('two');
    expect(seen).toEqual([1]);
  });
});
