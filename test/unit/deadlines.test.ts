/**
 * The deadline queue behind ask timeouts (src/actors/deadlines.ts): pure logic, on vitest's fake
 * clock (setTimeout and performance.now() advance only when the test says), so that the order
 * and the timing of expiries are exact whatever the load of the machine.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ITEMS_PER_TURN } from '../../src/actors/in-turns.js';
import { DeadlineQueue } from '../../src/actors/deadlines.js';

interface Entry {
  key: number;
  name: string;
  timeoutMs: number;
  due: number;
  done: boolean;
}

/** A queue and the table of its entries (what the actor system's pending table is to it). */
class Queue {
  private nextKey = 1;
  readonly entries = new Map<number, Entry>();
  readonly queue: DeadlineQueue;

  constructor(onExpire: (e: Entry) => void) {
    this.queue = new DeadlineQueue(
      (key) => {
        const e = this.entries.get(key)!;
        this.entries.delete(key);
        onExpire(e);
      },
      (key) => this.entries.has(key),
    );
  }

  add(name: string, timeoutMs: number): Entry {
    const e = { key: this.nextKey++, name, timeoutMs, due: performance.now() + timeoutMs, done: false };
    this.entries.set(e.key, e);
    this.queue.add(e.key, e.due, timeoutMs);
    return e;
  }

  settle(e: Entry): void {
    e.done = true;
    this.entries.delete(e.key);
    this.queue.settled(e.timeoutMs);
  }

  clear(): void {
    this.queue.clear();
  }
}

describe('DeadlineQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires entries of several timeouts in due order, not before they are due, and skips settled ones', async () => {
    const expired: Array<{ name: string; early: number }> = [];
    const q = new Queue((e) => expired.push({ name: e.name, early: e.due - performance.now() }));
    q.add('slow', 60);
    q.add('a', 20);
    q.add('b', 20);
    q.settle(q.add('settled', 10));
    vi.advanceTimersByTime(19);
    expect(expired).toEqual([]); // nothing before it is due
    vi.advanceTimersByTime(1);
    expect(expired.map((e) => e.name)).toEqual(['a', 'b']);
    vi.advanceTimersByTime(39);
    expect(expired.map((e) => e.name)).toEqual(['a', 'b']);
    vi.advanceTimersByTime(1);
    expect(expired.map((e) => e.name)).toEqual(['a', 'b', 'slow']);
    // Node may run a timer up to 1 ms before performance.now() reaches it; never more.
    for (const e of expired) expect(e.early).toBeLessThanOrEqual(1);
  });

  it('lanes of different timeouts interleave by due time; an entry settled after the timer was armed for it is skipped', () => {
    const expired: string[] = [];
    const q = new Queue((e) => expired.push(e.name));
    q.add('long-1', 100);
    vi.advanceTimersByTime(50);
    q.add('short-1', 30); // due at 80, before long-1 at 100
    vi.advanceTimersByTime(10);
    const settledLate = q.add('short-2', 30); // due at 90
    q.add('long-2', 100); // due at 160
    vi.advanceTimersByTime(20); // 80
    expect(expired).toEqual(['short-1']);
    q.settle(settledLate);
    vi.advanceTimersByTime(20); // 100
    expect(expired).toEqual(['short-1', 'long-1']);
    vi.advanceTimersByTime(60); // 160
    expect(expired).toEqual(['short-1', 'long-1', 'long-2']);
    expect(vi.getTimerCount()).toBe(0); // nothing left: no timer
  });

  it('one timer for the whole queue, armed for the earliest entry', () => {
    const q = new Queue(() => undefined);
    for (let i = 0; i < 1000; i++) q.add(`e${i}`, 1000 + (i % 5));
    q.add('soon', 10);
    expect(vi.getTimerCount()).toBe(1);
    q.clear();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps memory to the entries pending: settled entries are dropped before their turn, the others kept in order', () => {
    const expired: string[] = [];
    const q = new Queue((e) => expired.push(e.name));
    const live: Entry[] = [];
    for (let i = 0; i < 100_000; i++) {
      const e = q.add(`e${i}`, 60_000);
      if (i % 10 === 0) live.push(e);
      else q.settle(e);
    }
    const lanes = (q.queue as unknown as { lanes: Map<number, { keys: Float64Array; size: number }> }).lanes;
    const lane = lanes.get(60_000)!;
    expect(lane.size).toBeLessThan(live.length * 2 + 2048);
    expect(lane.keys.length).toBeLessThanOrEqual(4 * (live.length * 2 + 2048));
    vi.advanceTimersByTime(60_000);
    // (a slice per turn of the event loop: the rest, due already, on the next one)
    expect(expired).toEqual(live.slice(0, ITEMS_PER_TURN).map((e) => e.name));
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(live.map((e) => e.name));
    expect(lanes.size).toBe(0);
    q.clear();
  });

  it('a lane whose ring wraps and grows keeps its entries in order', () => {
    const expired: string[] = [];
    const q = new Queue((e) => expired.push(e.name));
    const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => q.add(`${prefix}${i}`, 50).name);
    const first = names('a', 200); // due at 50
    vi.advanceTimersByTime(25);
    const second = names('b', 50); // due at 75
    vi.advanceTimersByTime(25); // the ring's head moves past the first 200
    expect(expired).toEqual(first);
    const third = names('c', 600); // wraps past the ring's end, then grows it
    vi.advanceTimersByTime(50);
    expect(expired).toEqual([...first, ...second, ...third]);
  });

  it('all settled: the lane is emptied and kept for the next entry of its timeout (one such lane at most), and the timer drops it', () => {
    const expired: string[] = [];
    const q = new Queue((e) => expired.push(e.name));
    const lanes = (q.queue as unknown as { lanes: Map<number, { keys: Float64Array; size: number }> }).lanes;
    for (const e of [q.add('a', 60_000), q.add('b', 60_000)]) q.settle(e);
    const kept = lanes.get(60_000)!;
    expect(kept.size).toBe(0);
    // A sequential caller: each entry settled before the next; the same lane and ring serve all.
    const ring = kept.keys;
    for (let i = 0; i < 1000; i++) q.settle(q.add(`s${i}`, 60_000));
    expect(lanes.get(60_000)).toBe(kept);
    expect(kept.keys).toBe(ring);
    // Another timeout's lane emptied takes the place of the one kept.
    q.settle(q.add('other', 5_000));
    expect([...lanes.keys()]).toEqual([5_000]);
    // After a burst the emptied lane's ring is back to its first capacity.
    const burst = Array.from({ length: 1000 }, (_, i) => q.add(`b${i}`, 5_000));
    for (const e of burst) q.settle(e);
    expect(lanes.get(5_000)!.keys.length).toBeLessThanOrEqual(256);
    // Entries added to a kept lane still expire, in order; the timer's turn drops an empty lane.
    const late = [q.add('x', 5_000), q.add('y', 5_000)];
    vi.advanceTimersByTime(5_000);
    expect(expired).toEqual(late.map((e) => e.name));
    vi.advanceTimersByTime(60_000);
    expect(lanes.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    q.clear();
  });

  it('an expiry may add entries (a router giving an ask again), and clear() stops everything', () => {
    const expired: string[] = [];
    const q: Queue = new Queue((e) => {
      expired.push(e.name);
      if (e.name === 'first') q.add('again', 5);
    });
    q.add('first', 5);
    vi.advanceTimersByTime(5);
    expect(expired).toEqual(['first']);
    vi.advanceTimersByTime(5);
    expect(expired).toEqual(['first', 'again']);
    q.add('never', 5);
    q.clear();
    vi.advanceTimersByTime(20);
    expect(expired).toEqual(['first', 'again']);
  });
});

describe('DeadlineQueue and the process lifetime', () => {
  it('its timer keeps the process alive only while some entry is pending', () => {
    const q = new Queue(() => undefined);
    const e = q.add('one', 60_000);
    const timer = (q.queue as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(true);
    q.settle(e);
    expect(timer.hasRef()).toBe(false);
    q.add('two', 60_000);
    expect(timer.hasRef()).toBe(true);
    q.clear();
  });
});
