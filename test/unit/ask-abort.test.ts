/**
 * Asks given an AbortSignal (actor systems on an in-process hub, no DPDK): an abort before the
 * answer rejects the ask with AskAbortedError (name 'AbortError', the reason as cause) and the
 * late answer goes to dead letters; a signal aborted already sends nothing; a signal given to
 * many asks has one listener while they are pending and none once they are answered; a routed
 * ask frees its worker's count.
 */
import 'reflect-metadata';
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, AskAbortedError, InProcessHub, type DeadLetter } from '../../src/index.js';

interface Slow {
  wait: { msg: number; reply: string };
}

const systems: ActorSystem[] = [];
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.close({ timeoutMs: 500 })));
});

/** A system with an actor `slow` that answers `wait` after the given ms, counting what it handled. */
async function slowActor(name: string): Promise<{ system: ActorSystem; handled: () => number; letters: DeadLetter[] }> {
  const system = new ActorSystem({ transport: new InProcessHub().connect() });
  systems.push(system);
  let handled = 0;
  await system.spawn<Slow>(name, {
    wait: async (ms) => {
      handled++;
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      return `waited ${ms}`;
    },
  });
  const letters: DeadLetter[] = [];
  system.deadLetters$.subscribe((l) => letters.push(l));
  return { system, handled: () => handled, letters };
}

describe('an ask with an AbortSignal', () => {
  it('aborted before the answer: rejects with AskAbortedError, its reason as cause; the answer that comes later is a dead letter', async () => {
    const { system, letters } = await slowActor('abort-slow');
    const controller = new AbortController();
    const asked = system.ref<Slow>('abort-slow').ask('wait', 50, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('the client went away')), 5);
    const err = await asked.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AskAbortedError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ASK_ABORTED', actor: 'abort-slow', action: 'wait' });
    expect((err as Error).cause).toMatchObject({ message: 'the client went away' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(letters).toContainEqual(expect.objectContaining({ reason: 'late-reply', payload: 'waited 50' }));
  });

  it('a signal aborted already rejects at once and sends nothing; AbortSignal.timeout() works as a signal', async () => {
    const { system, handled } = await slowActor('abort-before');
    const ref = system.ref<Slow>('abort-before');
    await expect(ref.ask('wait', 1, { signal: AbortSignal.abort('no') })).rejects.toMatchObject({ code: 'ASK_ABORTED', cause: 'no' });
    expect(handled()).toBe(0);
    await expect(ref.ask('wait', 200, { signal: AbortSignal.timeout(10) })).rejects.toMatchObject({ code: 'ASK_ABORTED', cause: { name: 'TimeoutError' } });
  });

  it('one signal given to 1,000 asks: one listener while they are pending, none once they are answered; one abort rejects all pending', async () => {
    const { system } = await slowActor('abort-many');
    const ref = system.ref<Slow>('abort-many');
    const { signal } = new AbortController();
    const asked = Array.from({ length: 1000 }, () => ref.ask('wait', 0, { signal }));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    const answers = await Promise.all(asked);
    expect(answers.every((a) => a === 'waited 0')).toBe(true);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    const controller = new AbortController();
    const slow = Array.from({ length: 50 }, () => ref.ask('wait', 20, { signal: controller.signal }));
    controller.abort();
    const failures = await Promise.all(slow.map((p) => p.catch((e: unknown) => (e as { code?: string }).code)));
    expect(failures).toEqual(Array(50).fill('ASK_ABORTED'));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await expect(ref.ask('wait', 100, { signal, timeoutMs: 10 })).rejects.toMatchObject({ code: 'ASK_TIMEOUT' });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('one signal given to 20,000 asks: abort() settles them all at once (an answer after it does not win), and they fail over several turns', async () => {
    const { system, letters } = await slowActor('abort-deep');
    const ref = system.ref<Slow>('abort-deep');
    const controller = new AbortController();
    const count = 20_000;
    let failed = 0;
    // The first is in hand (it answers 5 ms after the abort); the rest wait in the actor's queue.
    const asked = Array.from({ length: count }, (_, i) =>
      ref.ask('wait', i === 0 ? 20 : 0, { signal: controller.signal }).catch((e: unknown) => {
        failed++;
        return (e as { code?: string }).code;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 15));
    controller.abort();
    expect(failed).toBe(0); // (promises settle on a later microtask)
    const failedAtNextTurn = await new Promise<number>((resolve) => setImmediate(() => resolve(failed)));
    expect(failedAtNextTurn).toBeGreaterThan(0);
    expect(failedAtNextTurn).toBeLessThan(count); // the loop turned before the last one failed
    expect(await Promise.all(asked)).toEqual(Array(count).fill('ASK_ABORTED'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(letters).toContainEqual(expect.objectContaining({ reason: 'late-reply', payload: 'waited 20' }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it("two signals over asks pending together: aborting one fails its asks only; the other's are answered, and its listener goes after them", async () => {
    const { system } = await slowActor('abort-two');
    const ref = system.ref<Slow>('abort-two');
    const first = new AbortController();
    const second = new AbortController();
    const outcome = (p: Promise<string>): Promise<string | undefined> => p.catch((e: unknown) => (e as { code?: string }).code);
    const ofFirst = Array.from({ length: 20 }, () => outcome(ref.ask('wait', 5, { signal: first.signal })));
    const ofSecond = Array.from({ length: 20 }, () => outcome(ref.ask('wait', 5, { signal: second.signal })));
    first.abort();
    expect(await Promise.all(ofFirst)).toEqual(Array(20).fill('ASK_ABORTED'));
    expect(getEventListeners(second.signal, 'abort')).toHaveLength(1);
    expect(await Promise.all(ofSecond)).toEqual(Array(20).fill('waited 5'));
    expect(getEventListeners(second.signal, 'abort')).toHaveLength(0);
  });

  it('through a router: the aborted ask no longer counts as in flight at its worker', async () => {
    const { system } = await slowActor('abort-worker');
    const router = system.router<Slow>('abort-router', { workers: ['abort-worker'] });
    const controller = new AbortController();
    const asked = router.ref.ask('wait', 50, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(router.stats().inFlight).toBe(1);
    controller.abort();
    await expect(asked).rejects.toBeInstanceOf(AskAbortedError);
    expect(router.stats().inFlight).toBe(0);
  });

  it('a signal that is not an AbortSignal is INVALID_OPTION', async () => {
    const { system } = await slowActor('abort-bad');
    await expect(system.ref<Slow>('abort-bad').ask('wait', 1, { signal: { aborted: false } as unknown as AbortSignal })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
  });
});
