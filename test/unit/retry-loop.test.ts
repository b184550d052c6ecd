/**
 * A program that asks again at once whenever an ask fails: a router with no workers
 * (`NO_WORKERS`) and a name no one holds (`ACTOR_NOT_FOUND`) fail on a later turn of the event
 * loop, so such a loop lets timers run (a pool's restart, the program's own). They failed as a
 * microtask, and the loop ran with no timer firing until it gave up. A router whose last worker
 * just left waits a grace before it fails.
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

  it('a router whose last worker just left fails its asks after a grace (goneGraceMs, 100 ms), as SYSTEM_CLOSED when its system began to close meanwhile', async () => {
    // (every process of a program signalled at once: the workers may leave before this process
    // handled its own signal; NO_WORKERS then ended an unguarded loop of asks with code 1)
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    const router = system.router('lost', { workers: ['w'] });
    await system.spawn('w', { work: (n: number) => n });
    expect(await router.ref.ask('work', 1)).toBe(1);
    router.removeWorker('w');
    let t0 = performance.now();
    await expect(router.ref.ask('work', 2)).rejects.toMatchObject({ code: 'NO_WORKERS' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    t0 = performance.now();
    await expect(router.ref.ask('work', 3)).rejects.toMatchObject({ code: 'NO_WORKERS' }); // past the grace: on the next turn
    expect(performance.now() - t0).toBeLessThan(50);

    router.addWorker('w');
    expect(await router.ref.ask('work', 4)).toBe(4);
    router.removeWorker('w');
    const asked = router.ref.ask('work', 5).catch((err: unknown) => err);
    const closed = system.close();
    expect(await asked).toMatchObject({ code: 'SYSTEM_CLOSED' });
    await closed;
  });

  it('keeps the names that went away only for the grace: actors that come and go leave nothing behind', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect(), goneGraceMs: 5 });
    for (let i = 0; i < 2000; i++) await system.stop(await system.spawn(`session-${i}`, { hi: () => i }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await system.stop(await system.spawn('last', { hi: () => 0 }));
    expect((system as unknown as { recentlyGone: Map<string, number> }).recentlyGone.size).toBeLessThanOrEqual(1);
    await system.close();
  });
});
