/**
 * {@link DeadlineQueue}: when pending asks time out, with one timer for a whole actor system
 * instead of a `setTimeout` per ask (a timer object, a libuv timer list insert and removal and a
 * closure per ask: the flagship's caller spent 0.4-1.1 µs per routed job in timers, two per
 * job then; 0.1-0.2 µs with this queue, docs/benchmarks.md).
 *
 * Asks made with the same timeout expire in the order they were made, so each distinct timeout
 * gets a FIFO lane: adding is a push, and the one timer is armed for the earliest lane head.
 * Settled asks stay in their lane until their turn comes (marking them is all that settling
 * costs); a lane is compacted when settled entries outnumber live ones, so memory stays
 * proportional to the asks pending.
 */

/** What the queue needs of an entry. */
export interface Deadline {
  /** When it expires, on the `performance.now()` clock. */
  due: number;
  /** True once settled: the queue skips it. */
  done: boolean;
}

interface Lane<T> {
  items: T[];
  head: number;
  live: number;
}

/** Lanes whose settled entries exceed this (and their live ones) are compacted. */
const COMPACT_MIN = 1024;
/**
 * Node may run a timer up to ~1 ms before `performance.now()` reaches its due time (the loop's
 * clock is cached at the start of the turn): entries this close to due expire in this pass
 * rather than arming a 0 ms timer again.
 */
const EARLY_MS = 1;

export class DeadlineQueue<T extends Deadline> {
  private readonly lanes = new Map<number, Lane<T>>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  /**
   * Entries not settled, in all lanes. While there are none the timer (still armed for a settled
   * entry's turn) does not keep the process alive, as no timer did once its ask was answered.
   */
  private live = 0;
  /** The lane of the last add or settle: nearly every ask of a system has the same timeout. */
  private lastLane: Lane<T> | undefined;
  private lastTimeoutMs = -1;

  constructor(private readonly expire: (entry: T) => void) {}

  /**
   * Adds `entry`, which expires `timeoutMs` from now (its `due` must already say so). Callers
   * keep timeouts whole milliseconds: each distinct value is a lane.
   */
  add(entry: T, timeoutMs: number): void {
    let lane = this.laneOf(timeoutMs);
    if (!lane) {
      this.lanes.set(timeoutMs, (lane = { items: [], head: 0, live: 0 }));
      this.lastLane = lane;
      this.lastTimeoutMs = timeoutMs;
    }
    lane.items.push(entry);
    lane.live++;
    if (this.live++ === 0) this.timer?.ref();
    if (entry.due < this.armedFor) this.arm(entry.due);
  }

  /** `entry` (added with `timeoutMs`) was settled: it no longer expires. Call after setting `done`. */
  settled(timeoutMs: number): void {
    const lane = this.laneOf(timeoutMs);
    if (!lane) return;
    if (--this.live === 0) this.timer?.unref();
    lane.live--;
    if (lane.live === 0) {
      this.dropLane(timeoutMs); // all settled: nothing of it need wait for its turn
      return;
    }
    const dead = lane.items.length - lane.head - lane.live;
    if (dead > COMPACT_MIN && dead > lane.live) {
      lane.items = lane.items.slice(lane.head).filter((e) => !e.done);
      lane.head = 0;
      if (lane.items.length === 0) this.dropLane(timeoutMs);
    }
  }

  private laneOf(timeoutMs: number): Lane<T> | undefined {
    if (timeoutMs === this.lastTimeoutMs) return this.lastLane;
    const lane = this.lanes.get(timeoutMs);
    if (lane) {
      this.lastLane = lane;
      this.lastTimeoutMs = timeoutMs;
    }
    return lane;
  }

  private dropLane(timeoutMs: number): void {
    this.lanes.delete(timeoutMs);
    if (timeoutMs === this.lastTimeoutMs) {
      this.lastLane = undefined;
      this.lastTimeoutMs = -1;
    }
  }

  /** Forgets every entry and stops the timer. */
  clear(): void {
    this.lanes.clear();
    this.lastLane = undefined;
    this.lastTimeoutMs = -1;
    this.live = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private arm(due: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = due;
    this.timer = setTimeout(this.fire, Math.max(0, due - performance.now()));
    if (this.live === 0) this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now() + EARLY_MS;
    let next = Infinity;
    const expired: T[] = [];
    for (const [timeoutMs, lane] of this.lanes) {
      const items = lane.items;
      let head = lane.head;
      while (head < items.length) {
        const e = items[head]!;
        if (!e.done && e.due > now) break;
        items[head++] = undefined as unknown as T;
        if (!e.done) {
          lane.live--;
          this.live--;
          expired.push(e);
        }
      }
      if (head === items.length) {
        this.dropLane(timeoutMs);
        continue;
      }
      if (head > COMPACT_MIN && head * 2 > items.length) {
        lane.items = items.slice(head);
        head = 0;
      }
      lane.head = head;
      next = Math.min(next, lane.items[head]!.due);
    }
    if (next < Infinity) this.arm(next);
    // After the queue is consistent: an expiry may add asks (a router re-giving one).
    for (const e of expired) this.expire(e);
  };
}
