/**
 * mpbus in a worker thread: a runtime is refused there before anything of DPDK is touched
 * (`MAIN_THREAD_ONLY`), what needs one says the main thread's is not this thread's, and an actor
 * system within the thread works. The unit project runs its files in worker threads
 * (vitest.config.ts, pool 'threads'): the very place a user's test runner would put them.
 */
import 'reflect-metadata';
import { isMainThread } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ActorSystem, MailboxSystem, MpBus, Ring, Runtime, startActorSystem } from '../../src/index.js';

describe('in a worker thread', () => {
  it('runs in one (the unit project is pool threads)', () => {
    expect(isMainThread).toBe(false);
  });

  it('refuses a runtime with MAIN_THREAD_ONLY, naming the main thread and the test runner', async () => {
    for (const start of [() => Runtime.start({ filePrefix: 'unit_wt' }), () => startActorSystem({ filePrefix: 'unit_wt' })]) {
      const err = await start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'MAIN_THREAD_ONLY' });
      expect((err as Error).message).toMatch(/main thread only.*pool 'forks'/s);
    }
    // options are still checked first: a typo is named as one
    await expect(Runtime.start({ filePrefx: 'x' } as never)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(Runtime.current()).toBeUndefined();
  });

  it("says what needs a runtime cannot use the main thread's", () => {
    const needs = [() => MpBus.open(), () => Ring.create('unit_wt_ring', { size: 64 }), () => MailboxSystem.open()];
    for (const use of needs) {
      let err: unknown;
      try {
        use();
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ENOTREADY' });
      expect((err as Error).message).toMatch(/worker thread.*main thread only/);
    }
  });

  it('runs an actor system within the thread', async () => {
    const system = new ActorSystem();
    const squarer = await system.spawn('sq', { square: (n: number) => n * n });
    expect(await squarer.ask('square', 12)).toBe(144);
    await system.close();
  });
});
