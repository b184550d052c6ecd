/**
 * Restart intensity and backoff of a process pool's children: how long to wait before the next
 * restart, and when too many restarts in a window mean giving up. Pure logic (a clock passed
 * in), so it is unit-tested without processes. The shape and the delay are the actor
 * supervision's (`restartDelay`), so a pool restarts children the way an actor is restarted.
 */
import { ErrorCodes, MpBusError } from '../errors.js';
import { restartDelay, type SupervisionStrategy } from './supervision.js';
import { definedOnly, durationMs, integerIn, knownKeys } from '../validation.js';

/** How a pool restarts children that exit without being asked to. */
export type RestartPolicy = Omit<Extract<SupervisionStrategy, { strategy: 'restart' }>, 'strategy'>;

/** Up to 5 restarts a minute; the first after 100 ms, doubling up to 5 s. */
export const defaultChildRestart: Required<RestartPolicy> = { maxRestarts: 5, withinMs: 60_000, backoffMs: 100, maxBackoffMs: 5000 };

/** Checks a policy given by the application and fills in the defaults. */
export function resolveRestartPolicy(policy: RestartPolicy, where: string): Required<RestartPolicy> {
  if (policy === null || typeof policy !== 'object') {
    throw new MpBusError(ErrorCodes.invalidOption, `${where} takes false or { maxRestarts, withinMs, backoffMs, maxBackoffMs }, got ${String(policy)}`);
  }
  knownKeys(policy, Object.keys(defaultChildRestart), where);
  const resolved = { ...defaultChildRestart, ...definedOnly(policy) };
  integerIn(resolved.maxRestarts, `${where}.maxRestarts`, 0, Infinity);
  // (a timer beyond 2^31-1 ms fires at once: such a backoff would restart without waiting)
  durationMs(resolved.withinMs, `${where}.withinMs`, 1);
  durationMs(resolved.backoffMs, `${where}.backoffMs`, 0);
  durationMs(resolved.maxBackoffMs, `${where}.maxBackoffMs`, 0);
  if (resolved.maxBackoffMs < resolved.backoffMs) {
    throw new MpBusError(ErrorCodes.invalidOption, `${where}.maxBackoffMs (${resolved.maxBackoffMs}) must not be below backoffMs (${resolved.backoffMs})`);
  }
  return resolved;
}

/**
 * Counts restarts in a sliding window. `next()` says how long to wait before the next restart,
 * or `undefined` when that restart would be one more than `maxRestarts` within `withinMs`.
 */
export class RestartBudget {
  private readonly times: number[] = [];

  constructor(private readonly policy: Required<RestartPolicy>) {}

  /** Restarts counted in the window ending at `now`. */
  inWindow(now: number): number {
    while (this.times.length > 0 && now - this.times[0]! >= this.policy.withinMs) this.times.shift();
    return this.times.length;
  }

  /** Records a restart at `now` and returns its delay, or undefined (nothing recorded) when the budget is spent. */
  next(now: number): number | undefined {
    const n = this.inWindow(now) + 1;
    if (n > this.policy.maxRestarts) return undefined;
    this.times.push(now);
    return restartDelay({ strategy: 'restart', ...this.policy }, n);
  }
}
