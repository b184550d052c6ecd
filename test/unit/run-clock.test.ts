/**
 * The clock of an actor's loop (src/actors/run-clock.ts): pure logic on a clock the test moves,
 * so how often it is read, when the loop pauses and which asks are expired are exact.
 */
import { describe, expect, it } from 'vitest';
import { wallClockAt } from '../../src/actors/clock.js';
import { EXPIRED_AFTER_MS, FLUSH_AFTER_MS, RunClock, RunPause, TURN_AFTER_MS } from '../../src/actors/run-clock.js';

/** A RunClock on a clock that moves `perMessageMs` for each message, counting its reads. */
function run(perMessageMs: number) {
  let now = performance.now();
  let reads = 0;
  const clock = new RunClock(() => {
    reads++;
    return now;
  });
  /** Handles `n` messages; the pauses the loop was told to make, by message index. */
  const messages = (n: number): Array<[number, RunPause]> => {
    const pauses: Array<[number, RunPause]> = [];
    for (let i = 0; i < n; i++) {
      const pause = clock.beforeMessage();
      if (pause !== RunPause.none) pauses.push([i, pause]);
      now += perMessageMs;
    }
    return pauses;
  };
  return { clock, messages, reads: () => reads, wallNow: () => wallClockAt(now), advance: (ms: number) => (now += ms) };
}

describe('RunClock', () => {
  it('an actor that keeps up (one message per run) reads no clock', () => {
    const r = run(0.001);
    for (let i = 0; i < 100; i++) {
      r.clock.paused(true);
      expect(r.messages(1)).toEqual([]);
    }
    expect(r.reads()).toBe(0);
  });

  it('a fast run reads the clock every few dozen messages and pauses only after FLUSH_AFTER_MS, for a turn after TURN_AFTER_MS', () => {
    const r = run(0.001); // 1 µs a message
    r.clock.paused(true);
    expect(r.messages(1000)).toEqual([]); // 1 ms
    expect(r.reads()).toBeLessThan(40);
    const pauses = r.messages(20_000); // 20 ms more
    expect(pauses.length).toBeGreaterThan(0);
    // the first pause after FLUSH_AFTER_MS of the run: a flush (the event loop turned at its start)
    expect(pauses[0]![1]).toBe(RunPause.flush);
    expect(pauses[0]![0] + 1000).toBeGreaterThanOrEqual(FLUSH_AFTER_MS * 1000);
    expect(pauses.some(([, p]) => p === RunPause.turn)).toBe(true);
  });

  it('a slow run reads the clock before every message from its fourth, and lets its answers go and the event loop turn on time', () => {
    const r = run(1); // 1 ms a message
    r.clock.paused(true);
    const pauses = r.messages(30);
    // flushes once the run has gone FLUSH_AFTER_MS, a turn once TURN_AFTER_MS passed since the last turn
    const flushes = pauses.filter(([, p]) => p === RunPause.flush).map(([i]) => i);
    const turns = pauses.filter(([, p]) => p === RunPause.turn).map(([i]) => i);
    expect(flushes[0]).toBeLessThanOrEqual(FLUSH_AFTER_MS + 2);
    expect(turns[0]).toBeLessThanOrEqual(TURN_AFTER_MS + 2);
    for (let k = 1; k < turns.length; k++) expect(turns[k]! - turns[k - 1]!).toBeLessThanOrEqual(TURN_AFTER_MS + 2);
    expect(r.reads()).toBeGreaterThanOrEqual(25);
  });

  it(`an ask is expired only when its deadline passed more than ${EXPIRED_AFTER_MS} ms before the last read`, () => {
    const r = run(1);
    r.clock.paused(true);
    r.clock.beforeMessage(); // the first message of a run: no read
    r.clock.beforeMessage(); // the second: a read
    expect(r.reads()).toBe(1);
    const read = r.wallNow();
    expect(r.clock.expired(read - EXPIRED_AFTER_MS - 1)).toBe(true);
    expect(r.clock.expired(read - EXPIRED_AFTER_MS)).toBe(false);
    expect(r.clock.expired(read + 100)).toBe(false);
    // time going on without a read changes nothing: an older read only finds fewer expired
    r.advance(1000);
    r.clock.paused(true);
    r.clock.beforeMessage();
    expect(r.clock.expired(read - EXPIRED_AFTER_MS)).toBe(false);
  });

  it('after an async handler settled, the next message reads the clock: time spent awaiting makes asks expire', () => {
    const r = run(0);
    r.clock.paused(true);
    r.clock.beforeMessage();
    const before = r.reads();
    r.advance(200); // the handler awaited 200 ms
    r.clock.waited();
    r.clock.beforeMessage();
    expect(r.reads()).toBe(before + 1);
    expect(r.clock.expired(r.wallNow() - EXPIRED_AFTER_MS - 1)).toBe(true);
  });
});
