/**
 * Supervision: what happens to an actor whose handler throws. The failed message is answered
 * with the error (when it was an ask) in every case; the strategy then decides the actor's fate.
 */
import { ErrorCodes, MpBusError } from '../errors.js';
import { durationMs, integerIn, knownKeys, oneOf, optionKeys } from '../validation.js';

/** How an actor's failures are handled. */
export type SupervisionStrategy =
  /** Keep the actor and its state; go on with the next message. */
  | { strategy: 'resume' }
  /**
   * Replace the instance with a fresh one (postStop on the old, a new instance from the DI
   * container, preStart), after a backoff, and stop the actor once it failed more than
   * `maxRestarts` times within `withinMs`. Children are stopped on restart.
   */
  | {
      strategy: 'restart';
      /** Restarts allowed within `withinMs` before the actor is stopped (default 10). */
      maxRestarts?: number | undefined;
      /** The window the restarts are counted in (default 60 000 ms). */
      withinMs?: number | undefined;
      /** Delay before the first restart of a burst, doubled for each further one (default 0 ms: every restart at once). */
      backoffMs?: number | undefined;
      /** Upper bound of the delay, which doubles with each restart in the window (default 1 000 ms, or `backoffMs` when longer). */
      maxBackoffMs?: number | undefined;
    }
  /** Stop the actor: its queued messages go to dead letters. */
  | { strategy: 'stop' }
  /** Treat the failure as a failure of the parent, whose own strategy decides (a top-level actor stops). */
  | { strategy: 'escalate' };

/** Checks a strategy given by the application (`INVALID_OPTION` naming what is wrong). */
export function checkSupervision(s: unknown, name: string): SupervisionStrategy {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `${name} must be an object such as { strategy: 'restart' }, got ${typeof s === 'string' ? JSON.stringify(s) : String(s)}`,
    );
  }
  const strategy = oneOf((s as { strategy?: unknown }).strategy, `${name}.strategy`, STRATEGIES);
  // (a misspelled maxRestarts would leave the default in force unseen)
  knownKeys(s, strategy === 'restart' ? RESTART_KEYS : ['strategy'], name);
  if (strategy === 'restart') {
    const r = s as Extract<SupervisionStrategy, { strategy: 'restart' }>;
    if (r.maxRestarts !== undefined) integerIn(r.maxRestarts, `${name}.maxRestarts`, 0, 1_000_000);
    if (r.withinMs !== undefined) durationMs(r.withinMs, `${name}.withinMs`, 1);
    if (r.backoffMs !== undefined) durationMs(r.backoffMs, `${name}.backoffMs`, 0);
    if (r.maxBackoffMs !== undefined) durationMs(r.maxBackoffMs, `${name}.maxBackoffMs`, 0);
    // (the first delay above the cap would be cut to it unseen)
    if (r.backoffMs !== undefined && r.maxBackoffMs !== undefined && r.backoffMs > r.maxBackoffMs) {
      throw new MpBusError(
        ErrorCodes.invalidOption,
        `${name}.backoffMs (${r.backoffMs}) is above its maxBackoffMs (${r.maxBackoffMs}): raise maxBackoffMs, or lower backoffMs`,
      );
    }
  }
  return s as SupervisionStrategy;
}

const STRATEGIES = ['resume', 'restart', 'stop', 'escalate'] as const;
const RESTART_KEYS = optionKeys<Extract<SupervisionStrategy, { strategy: 'restart' }>>({
  strategy: true,
  maxRestarts: true,
  withinMs: true,
  backoffMs: true,
  maxBackoffMs: true,
});

/** Restart at once, up to 10 times a minute (`backoffMs` 0: a delay, doubling up to `maxBackoffMs`, only when `backoffMs` is given). */
export const defaultSupervision: SupervisionStrategy = { strategy: 'restart', maxRestarts: 10, withinMs: 60_000, backoffMs: 0, maxBackoffMs: 1000 };

/** The delay before restart number `n` (1-based) of a burst. */
export function restartDelay(s: Extract<SupervisionStrategy, { strategy: 'restart' }>, n: number): number {
  const base = s.backoffMs ?? 0;
  if (base <= 0) return 0;
  // (without maxBackoffMs, the cap is 1 s, or backoffMs itself when that is longer)
  return Math.min(s.maxBackoffMs ?? Math.max(1000, base), base * 2 ** Math.max(0, n - 1));
}
