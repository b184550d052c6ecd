/**
 * A program that asks again at once whenever an ask fails: a router with no workers
 * (`NO_WORKERS`) and a name no one holds (`ACTOR_NOT_FOUND`) fail on a later turn of the event
 * loop, so such a loop lets timers run (a pool's restart, the program's own). They failed as a
 * microtask, and the loop ran with no timer firing until it gave up.
 */
import { describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub } from '../../src/index.js';

/** Asks with `ask` again at once on each failure until a 5 ms timer fires or 1 s passes; the failures seen, and whether the timer fired. */
async function retryUntilTimer(ask: () => Promise<unknown>): Promise<{ fired: boolean; codes: Set<string> }> {
  let fired = false;
  const timer = setTimeout(() => (fired = true), 5);
  const codes = new Set<string>();
  const end = performance.now() + 1000;
  while (!fired && performance.now() < end) {
    await ask().catch((err: unknown) => codes.add((err as { code: string }).code));
  }
  clearTimeout(timer);
  return { fired, codes };
}

describe('asking again at once on each failure', () => {
  it('a router with no workers, and a name no one holds: timers still run', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    const router = system.router('nobody-home', { group: 'empty' });
    expect(await retryUntilTimer(() => router.ref.ask('work', 1))).toEqual({ fired: true, codes: new Set(['NO_WORKERS']) });
    expect(await retryUntilTimer(() => system.ref('missing').ask('work', 1))).toEqual({ fired: true, codes: new Set(['ACTOR_NOT_FOUND']) });
    await system.close();
  });

  it("NO_WORKERS names what to do, a pool's restarts among the causes", async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    const router = system.router('nobody-home', { group: 'empty' });
    const err = (await router.ref.ask('work', 1).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain("no actor is in group 'empty' now: spawn some there");
    expect(err.message).toContain(
      "A pool launched with ready: { group: 'empty' } has none while all its children restart (ask again after its 'restarted' event)",
    );
    await system.close();
  });
});
