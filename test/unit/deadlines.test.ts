/**
 * The deadline queue behind ask timeouts (src/actors/deadlines.ts): pure logic, on vitest's fake
 * clock (setTimeout and performance.now() advance only when the test says), so that the order
 * and the timing of expiries are exact whatever the load of the machine.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineQueue, type Deadline } from '../../src/actors/deadlines.js';

interface Entry extends Deadline {
  name: string;
  timeoutMs: number;
}

function entry(name: string, timeoutMs: number): Entry {
  return { name, timeoutMs, due: performance.now() + timeoutMs, done: false };
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
    const queue = new DeadlineQueue<Entry>((e) => expired.push({ name: e.name, early: e.due - performance.now() }));
    const slow = entry('slow', 60);
    queue.add(slow, 60);
    const a = entry('a', 20);
    queue.add(a, 20);
    const b = entry('b', 20);
    queue.add(b, 20);
    const settled = entry('settled', 10);
    queue.add(settled, 10);
    settled.done = true;
    queue.settled(10);
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
    const queue = new DeadlineQueue<Entry>((e) => expired.push(e.name));
    const long = entry('long-1', 100);
    queue.add(long, 100);
    vi.advanceTimersByTime(50);
    queue.add(entry('short-1', 30), 30); // due at 80, before long-1 at 100
    vi.advanceTimersByTime(10);
    const settledLate = entry('short-2', 30); // due at 90
    queue.add(settledLate, 30);
    queue.add(entry('long-2', 100), 100); // due at 160
    vi.advanceTimersByTime(20); // 80
    expect(expired).toEqual(['short-1']);
    settledLate.done = true;
    queue.settled(30);
    vi.advanceTimersByTime(20); // 100
    expect(expired).toEqual(['short-1', 'long-1']);
    vi.advanceTimersByTime(60); // 160
    expect(expired).toEqual(['short-1', 'long-1', 'long-2']);
    expect(vi.getTimerCount()).toBe(0); // nothing left: no timer
  });

  it('one timer for the whole queue, armed for the earliest entry', () => {
    const queue = new DeadlineQueue<Entry>(() => undefined);
    for (let i = 0; i < 1000; i++) queue.add(entry(`e${i}`, 1000 + (i % 5)), 1000 + (i % 5));
    queue.add(entry('soon', 10), 10);
    expect(vi.getTimerCount()).toBe(1);
    queue.clear();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps memory to the entries pending: settled entries are dropped before their turn', () => {
    const queue = new DeadlineQueue<Entry>(() => undefined);
    const live: Entry[] = [];
    for (let i = 0; i < 100_000; i++) {
      const e = entry(`e${i}`, 60_000);
      queue.add(e, 60_000);
      if (i % 10 === 0) live.push(e);
      else {
        e.done = true;
        queue.settled(60_000);
      }
    }
    const lanes = (queue as unknown as { lanes: Map<number, { items: unknown[]; head: number }> }).lanes;
    const lane = lanes.get(60_000)!;
    expect(lane.items.length - lane.head).toBeLessThan(live.length * 2 + 2048);
    for (const e of live) {
      e.done = true;
      queue.settled(60_000);
    }
    expect(lanes.size).toBe(0);
    queue.clear();
  });

  it('an expiry may add entries (a router giving an ask again), and clear() stops everything', () => {
    const expired: string[] = [];
    const queue: DeadlineQueue<Entry> = new DeadlineQueue<Entry>((e) => {
      expired.push(e.name);
      if (e.name === 'first') queue.add(entry('again', 5), 5);
    });
    queue.add(entry('first', 5), 5);
    vi.advanceTimersByTime(5);
    expect(expired).toEqual(['first']);
    vi.advanceTimersByTime(5);
    expect(expired).toEqual(['first', 'again']);
    queue.add(entry('never', 5), 5);
    queue.clear();
    vi.advanceTimersByTime(20);
    expect(expired).toEqual(['first', 'again']);
  });
});

describe('DeadlineQueue and the process lifetime', () => {
  it('its timer keeps the process alive only while some entry is pending', () => {
    const queue = new DeadlineQueue<Entry>(() => undefined);
    const e = entry('one', 60_000);
    queue.add(e, 60_000);
    const timer = (queue as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(true);
    e.done = true;
    queue.settled(60_000);
    expect(timer.hasRef()).toBe(false);
    const f = entry('two', 60_000);
    queue.add(f, 60_000);
    expect(timer.hasRef()).toBe(true);
    queue.clear();
  });
});
