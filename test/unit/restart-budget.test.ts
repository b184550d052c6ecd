/** The restart intensity and backoff of process pools (pure logic: a clock passed in). */
import { describe, expect, it } from 'vitest';
import { defaultChildRestart, RestartBudget, resolveRestartPolicy } from '../../src/actors/restart-budget.js';

describe('RestartBudget', () => {
  it('doubles the delay from backoffMs up to maxBackoffMs, and gives up past maxRestarts within the window', () => {
    const budget = new RestartBudget(resolveRestartPolicy({ maxRestarts: 4, withinMs: 1000, backoffMs: 100, maxBackoffMs: 300 }, 'restart'));
    expect([0, 1, 2, 3].map((t) => budget.next(t))).toEqual([100, 200, 300, 300]);
    expect(budget.next(4)).toBeUndefined();
    expect(budget.next(5)).toBeUndefined(); // a refusal records nothing
    expect(budget.inWindow(5)).toBe(4);
  });

  it('forgets restarts older than the window, so the backoff starts over', () => {
    const budget = new RestartBudget(resolveRestartPolicy({ maxRestarts: 2, withinMs: 1000, backoffMs: 50, maxBackoffMs: 1000 }, 'restart'));
    expect(budget.next(0)).toBe(50);
    expect(budget.next(500)).toBe(100);
    expect(budget.next(900)).toBeUndefined();
    expect(budget.next(1000)).toBe(100); // the one at 0 is out of the window
    expect(budget.next(2600)).toBe(50);
  });

  it('maxRestarts 0 never restarts; backoffMs 0 restarts at once', () => {
    expect(new RestartBudget(resolveRestartPolicy({ maxRestarts: 0 }, 'restart')).next(0)).toBeUndefined();
    expect(new RestartBudget(resolveRestartPolicy({ backoffMs: 0 }, 'restart')).next(0)).toBe(0);
  });

  it('defaults: 5 within 60 s, 100 ms doubling to 5 s', () => {
    expect(resolveRestartPolicy({}, 'restart')).toEqual(defaultChildRestart);
    expect(defaultChildRestart).toEqual({ maxRestarts: 5, withinMs: 60_000, backoffMs: 100, maxBackoffMs: 5000 });
  });

  it.each([
    [{ maxRestarts: -1 }],
    [{ maxRestarts: 1.5 }],
    [{ maxRestarts: Number.NaN }],
    [{ withinMs: 0 }],
    [{ withinMs: Number.POSITIVE_INFINITY }],
    [{ backoffMs: -5 }],
    [{ backoffMs: '10' }],
    [{ backoffMs: 500, maxBackoffMs: 100 }],
    [null],
  ])('rejects %j with INVALID_OPTION', (policy) => {
    expect(() => resolveRestartPolicy(policy as never, 'restart')).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});
