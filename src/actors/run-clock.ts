/**
 * {@link RunClock}: the clock of an actor's loop while it works through its queue. It says when
 * an ask has expired (its asker stopped waiting), when the answers made so far should go out
 * (the transport flushes in a microtask) and when the event loop should turn, while reading the
 * clock as seldom as that allows: an actor that keeps up reads none, a fast run reads it every
 * few dozen messages, a slow one before every message.
 */
import { wallClockAt } from './clock.js';

/**
 * An ask is expired once its deadline passed by more than this: the two processes' wall
 * clocks, derived from `Date.now()`, differ by up to 1 ms (src/actors/clock.ts), and the
 * asker's timer fires at its deadline or later, never earlier.
 */
export const EXPIRED_AFTER_MS = 2;
/** Messages handled on one clock read while they go fast (a read is ~50 ns on a VM). */
const CLOCK_READ_EVERY = 32;
/** Slower than this on average between two reads, the clock is read before every message. */
const SLOW_MESSAGE_MS = 0.008;
/**
 * A run of the loop this long lets the answers it made go out before the next message; one this
 * long since the event loop last turned lets it turn. Without them, an actor with handlers of
 * 1 ms held its answers for 256 messages (256 ms).
 */
export const FLUSH_AFTER_MS = 4;
export const TURN_AFTER_MS = 10;

/** What the loop does before its next message. */
export const RunPause = { none: 0, flush: 1, turn: 2 } as const;
export type RunPause = (typeof RunPause)[keyof typeof RunPause];

export class RunClock {
  /** The clock as last read: monotonic and wall, in ms. */
  private now = 0;
  private wallNow = 0;
  /** Messages still to handle on that read, and how many it was given. */
  private uses = 0;
  private granted = 0;
  /** The clock was read since the loop started or last paused, and when that run and its turn began. */
  private inRun = false;
  private runStart = 0;
  private turnStart = 0;
  /** The event loop turned since the last read: the next read starts a turn. */
  private turned = false;

  constructor(private readonly monotonic: () => number = () => performance.now()) {}

  /**
   * Before each message: whether the loop pauses first (`flush`: a microtask, so the answers
   * made go out; `turn`: a turn of the event loop; then it goes on with the message, without
   * calling {@link paused}). The clock is read before the second and the fourth message of a
   * run, then every CLOCK_READ_EVERY messages while they go fast, and before every message while
   * they go slow, from the second message of a run when the last run went slow (an older read
   * would let an actor handle asks whose askers stopped waiting).
   */
  beforeMessage(): RunPause {
    if (this.uses-- > 0) return RunPause.none;
    const now = this.monotonic();
    this.wallNow = wallClockAt(now);
    const last = this.now;
    const between = this.granted + 1; // messages handled since that read
    this.now = now;
    if (!this.inRun) {
      this.inRun = true;
      this.runStart = now;
      if (this.turned) {
        this.turned = false;
        this.turnStart = now;
      }
      // Slow before this pause: slow still (read before every message). Otherwise how fast
      // they go is known from the next read, two messages on.
      this.uses = this.granted = this.granted === 0 ? 0 : 1;
      return RunPause.none;
    }
    this.uses = this.granted = now - last > between * SLOW_MESSAGE_MS ? 0 : CLOCK_READ_EVERY;
    const pause = now - this.turnStart >= TURN_AFTER_MS ? RunPause.turn : now - this.runStart >= FLUSH_AFTER_MS ? RunPause.flush : RunPause.none;
    if (pause === RunPause.none) return pause;
    // the loop pauses now, and resumes at once: the next message reads the clock and starts a run
    this.inRun = false;
    this.uses = 0;
    this.turned ||= pause === RunPause.turn;
    return pause;
  }

  /**
   * The loop starts, or resumes after waiting (`turned`: the event loop turned meanwhile). The
   * next message is handled on the last read, which is older, so it is taken for expired only
   * if it had expired by then: an actor that keeps up (its queue empty when a message comes, as
   * with sequential asks) reads no clock at all.
   */
  paused(turned: boolean): void {
    this.uses = 1;
    this.inRun = false;
    this.turned ||= turned;
  }

  /**
   * The loop resumes after an async handler settled: time passed that no read saw (the
   * handler's own waits), so the next message reads the clock. On the last read, an actor whose
   * handlers await never found an ask expired: with 20 asks of 100 ms to a 30 ms async handler
   * it ran all 20, 16 of them for askers that had stopped waiting.
   */
  waited(): void {
    this.uses = 0;
    this.inRun = false;
    this.turned = true;
  }

  /** True when `deadline` (wall clock ms) passed more than EXPIRED_AFTER_MS ago, by the last read. */
  expired(deadline: number): boolean {
    return deadline + EXPIRED_AFTER_MS < this.wallNow;
  }
}
