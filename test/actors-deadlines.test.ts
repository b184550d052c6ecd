/**
 * The deadline queue behind ask timeouts (src/actors/deadlines.ts): pure logic, real timers of
 * a few milliseconds.
 */
import { describe, expect, it } from 'vitest';
import { DeadlineQueue, type Deadline } from '../src/actors/deadlines.js';
import { sleep } from './harness/wait.js';

interface Entry extends Deadline {
  name: string;
  timeoutMs: number;
}

function entry(name: string, timeoutMs: number): Entry {
  return { name, timeoutMs, due: performance.now() + timeoutMs, done: false };
}

describe('DeadlineQueue', () => {
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
    await sleep(40);
    expect(expired.map((e) => e.name)).toEqual(['a', 'b']);
    await sleep(60);
    expect(expired.map((e) => e.name)).toEqual(['a', 'b', 'slow']);
    // Node may run a timer up to 1 ms before performance.now() reaches it; never more.
    for (const e of expired) expect(e.early).toBeLessThanOrEqual(1);
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

  it('an expiry may add entries (a router giving an ask again), and clear() stops everything', async () => {
    const expired: string[] = [];
    const queue: DeadlineQueue<Entry> = new DeadlineQueue<Entry>((e) => {
      expired.push(e.name);
      if (e.name === 'first') queue.add(entry('again', 5), 5);
    });
    queue.add(entry('first', 5), 5);
    await sleep(40);
    expect(expired).toEqual(['first', 'again']);
    queue.add(entry('never', 5), 5);
    queue.clear();
    await sleep(20);
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
