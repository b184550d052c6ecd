/**
 * A worker stuck in a handler whose asks time out sooner than the router's `stallMs`: it is found
 * stalled and gets no new asks until it answers (a probe every `stallMs` or so). A timeout
 * counted as an answer: the stuck worker was never found stalled, and got its share of asks for
 * good, each one a timeout.
 */
import { describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub } from '../../src/index.js';

describe('a router over a worker stuck in a handler', () => {
  it('finds it stalled though each of its asks times out before stallMs, and sends it only probes', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    await system.spawn('fine', { work: () => 'fine' }, { groups: ['g'] });
    await system.spawn('stuck', { work: () => new Promise(() => undefined) }, { groups: ['g'] });
    const router = system.router('r', { strategy: 'round-robin', group: 'g', stallMs: 300 });
    let answered = 0;
    let timedOut = 0;
    let seenStalled = false;
    const end = performance.now() + 2000;
    const loop = async (): Promise<void> => {
      while (performance.now() < end) {
        await router.ref.ask('work', null, { timeoutMs: 100 }).then(
          () => answered++,
          (err: { code?: string }) => {
            if (err.code !== 'ASK_TIMEOUT') throw err;
            timedOut++;
          },
        );
        seenStalled ||= router.stalledWorkers().includes('stuck');
      }
    };
    await Promise.all([loop(), loop(), loop(), loop()]);
    expect(seenStalled).toBe(true);
    // ~4 per 100 ms until found (stallMs + a check), then about one probe per stallMs; about 80 before
    expect(timedOut).toBeLessThan(40);
    expect(answered).toBeGreaterThan(100);
    await system.close({ timeoutMs: 100 });
  });

  it('round-robin with many asks in flight: once its asks were given to the others, the stalled worker gets only probes (not every other ask)', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    await system.spawn('fine', { work: () => 'fine' }, { groups: ['g'] });
    await system.spawn('stuck', { work: () => new Promise(() => undefined) }, { groups: ['g'] });
    const router = system.router('r', { strategy: 'round-robin', group: 'g', stallMs: 300, onStall: 'regive' });
    let answered = 0;
    let timedOut = 0;
    const end = performance.now() + 2500;
    let givenToStuckOnceStalled: number | undefined;
    const loop = async (): Promise<void> => {
      while (performance.now() < end) {
        await router.ref.ask('work', null, { timeoutMs: 1000 }).then(
          () => answered++,
          (err: { code?: string }) => {
            if (err.code !== 'ASK_TIMEOUT') throw err;
            timedOut++;
          },
        );
        if (givenToStuckOnceStalled === undefined && router.stalledWorkers().includes('stuck')) givenToStuckOnceStalled = router.stats().perWorker.stuck ?? 0;
      }
    };
    // more in flight than twice the round-robin slack: the fine worker holds more than it
    await Promise.all(Array.from({ length: 64 }, () => loop()));
    expect(givenToStuckOnceStalled).toBeDefined();
    // a probe about every stallMs from then on (before: every other ask, each a timeout)
    expect((router.stats().perWorker.stuck ?? 0) - givenToStuckOnceStalled!).toBeLessThan(15);
    expect(answered).toBeGreaterThan(500);
    expect(timedOut).toBeLessThan(64 + 15); // those it held when it got stuck, and the probes
    await system.close({ timeoutMs: 100 });
  });
});
