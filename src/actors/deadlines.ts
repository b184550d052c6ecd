/**
 * {@link DeadlineQueue}: when pending asks time out, with one timer for a whole actor system
 * instead of a `setTimeout` per ask (a timer object, a libuv timer list insert and removal and a
 * closure per ask: the flagship's caller spent 0.4-1.1 µs per routed job in timers, two per
 * job then; 0.1-0.2 µs with this queue, docs/benchmarks.md).
 *
 * Asks made with the same timeout expire in the order they were made, so each distinct timeout
 * gets a FIFO lane: adding is a push, and the one timer is armed for the earliest lane head.
 * Settled asks stay in their lane until their turn comes (settling costs a count); a lane is
 * compacted when settled entries outnumber live ones, so memory stays proportional to the asks
 * pending.
 *
 * A lane holds each entry as two numbers (its key, the ask's id, and when it is due) in typed
 * arrays, not the ask itself: whether an entry is still pending is asked of its owner (the
 * pending table). Holding the asks kept every settled one alive until its turn or the lane's
 * compaction (up to as many as were pending): with 10,000 asks in flight they were ~0.7 MB
 * that every young-generation collection copied, and the compaction allocated new arrays
 * (docs/benchmarks.md, "Many asks in flight"). A typed array this size keeps its numbers outside
 * V8's heap, where no collection copies them.
 */
import { ITEMS_PER_TURN } from './in-turns.js';

interface Lane {
  /** Ring buffers of the entries' keys and due times; capacity a power of two. */
  keys: Float64Array;
  dues: Float64Array;
  head: number;
  /** Entries in the ring, settled ones included. */
  size: number;
  /** Entries not settled. */
  live: number;
}

/** First capacity of a lane (a power of two). */
const LANE_MIN = 256;
/** Lanes whose settled entries exceed this (and their live ones) are compacted. */
const COMPACT_MIN = 1024;
/**
 * Node may run a timer up to ~1 ms before `performance.now()` reaches its due time (the loop's
 * clock is cached at the start of the turn): entries this close to due expire in this pass
 * rather than arming a 0 ms timer again.
 */
const EARLY_MS = 1;

export class DeadlineQueue {
  private readonly lanes = new Map<number, Lane>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  /**
   * Entries not settled, in all lanes. While there are none the timer (still armed for a settled
   * entry's turn) does not keep the process alive, as no timer did once its ask was answered.
   */
  private live = 0;
  /** The lane of the last add or settle: nearly every ask of a system has the same timeout. */
  private lastLane: Lane | undefined;
  private lastTimeoutMs = -1;
  /** The timeout of the lane kept after all its entries were settled (see {@link emptied}); -1: none. */
  private emptyTimeoutMs = -1;

  /**
   * @param expire called with the key of an entry whose time ran out (the queue already dropped it)
   * @param pending whether the entry of a key is still pending (false once settled)
   */
  constructor(
    private readonly expire: (key: number) => void,
    private readonly pending: (key: number) => boolean,
  ) {}

  /**
   * Adds the entry `key` (a number no other pending entry has), due at `due` on the
   * `performance.now()` clock, `timeoutMs` from now. Callers keep timeouts whole milliseconds:
   * each distinct value is a lane.
   */
  add(key: number, due: number, timeoutMs: number): void {
    let lane = this.laneOf(timeoutMs);
    if (!lane) {
      lane = { keys: new Float64Array(LANE_MIN), dues: new Float64Array(LANE_MIN), head: 0, size: 0, live: 0 };
      this.lanes.set(timeoutMs, lane);
      this.lastLane = lane;
      this.lastTimeoutMs = timeoutMs;
    }
    if (lane.size === lane.keys.length) grow(lane);
    const at = (lane.head + lane.size++) & (lane.keys.length - 1);
    lane.keys[at] = key;
    lane.dues[at] = due;
    lane.live++;
    if (this.live++ === 0) this.timer?.ref();
    if (due < this.armedFor) this.arm(due);
  }

  /** An entry added with `timeoutMs` was settled: it no longer expires. Call once its owner says it is not pending. */
  settled(timeoutMs: number): void {
    const lane = this.laneOf(timeoutMs);
    if (!lane) return;
    if (--this.live === 0) this.timer?.unref();
    lane.live--;
    if (lane.live === 0) {
      this.emptied(timeoutMs, lane); // all settled: nothing of it need wait for its turn
      return;
    }
    const dead = lane.size - lane.live;
    if (dead > COMPACT_MIN && dead > lane.live) this.compact(lane);
  }

  /** Keeps the lane's pending entries only, in order, in place. */
  private compact(lane: Lane): void {
    const mask = lane.keys.length - 1;
    let kept = 0;
    for (let i = 0; i < lane.size; i++) {
      const from = (lane.head + i) & mask;
      const key = lane.keys[from]!;
      if (!this.pending(key)) continue;
      const to = (lane.head + kept++) & mask;
      lane.keys[to] = key;
      lane.dues[to] = lane.dues[from]!;
    }
    lane.size = kept;
  }

  private laneOf(timeoutMs: number): Lane | undefined {
    if (timeoutMs === this.lastTimeoutMs) return this.lastLane;
    const lane = this.lanes.get(timeoutMs);
    if (lane) {
      this.lastLane = lane;
      this.lastTimeoutMs = timeoutMs;
    }
    return lane;
  }

  /**
   * A lane whose entries are all settled is emptied and kept for the next ask with its timeout
   * (the one emptied lane kept; another one emptied takes its place, and the timer's next turn
   * drops it if still empty). Dropping it at once made every sequential ask, which empties its
   * lane when answered, make a lane anew: an object and two typed arrays whose 2 KB each live
   * outside V8's heap (an allocation and a finalisation each), 3% of a sequential caller's
   * CPU samples (docs/benchmarks.md, "Eighth pass: a sequential ask's deadline lane").
   */
  private emptied(timeoutMs: number, lane: Lane): void {
    if (this.emptyTimeoutMs !== timeoutMs) {
      const earlier = this.lanes.get(this.emptyTimeoutMs);
      if (earlier !== undefined && earlier.size === 0) this.dropLane(this.emptyTimeoutMs);
      this.emptyTimeoutMs = timeoutMs;
    }
    lane.head = 0;
    lane.size = 0;
    // After a burst its ring goes back to the first capacity: memory follows the asks pending.
    if (lane.keys.length > LANE_MIN) {
      lane.keys = new Float64Array(LANE_MIN);
      lane.dues = new Float64Array(LANE_MIN);
    }
  }

  private dropLane(timeoutMs: number): void {
    if (timeoutMs === this.emptyTimeoutMs) this.emptyTimeoutMs = -1;
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
    this.emptyTimeoutMs = -1;
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
    const expired: number[] = [];
    for (const [timeoutMs, lane] of this.lanes) {
      const mask = lane.keys.length - 1;
      while (lane.size > 0) {
        const key = lane.keys[lane.head]!;
        const pending = this.pending(key);
        if (pending && lane.dues[lane.head]! > now) break;
        // Enough for one turn: the rest, due already, on the next (the timer is armed for now).
        // A burst of asks that expired together failed in one turn: a million kept it 1.0 s.
        if (pending && expired.length >= ITEMS_PER_TURN) break;
        lane.head = (lane.head + 1) & mask;
        lane.size--;
        if (pending) {
          lane.live--;
          this.live--;
          expired.push(key);
        }
      }
      if (lane.size === 0) {
        this.dropLane(timeoutMs);
        continue;
      }
      next = Math.min(next, lane.dues[lane.head]!);
    }
    if (next < Infinity) this.arm(next);
    // After the queue is consistent: an expiry may add asks (a router re-giving one).
    for (const key of expired) this.expire(key);
  };
}

/** Doubles a full lane's ring, its entries in order from index 0. */
function grow(lane: Lane): void {
  const keys = new Float64Array(lane.keys.length * 2);
  const dues = new Float64Array(lane.keys.length * 2);
  const tail = lane.keys.length - lane.head;
  keys.set(lane.keys.subarray(lane.head));
  keys.set(lane.keys.subarray(0, lane.head), tail);
  dues.set(lane.dues.subarray(lane.head));
  dues.set(lane.dues.subarray(0, lane.head), tail);
  lane.keys = keys;
  lane.dues = dues;
  lane.head = 0;
}
