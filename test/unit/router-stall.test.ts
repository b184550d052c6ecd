/**
 * A worker stuck in a handler whose asks time out sooner than the router's `stallMs`: it is found
 * stalled and gets no new asks until it answers (a probe every `stallMs` or so). A timeout
 * counted as an answer: the stuck worker was never found stalled, and got its share of asks for
 * good, each one a timeout.
 */
import { describe, expect, it } from 'vitest';
import { ActorSystem, InProcessHub, type Router } from '../../src/index.js';

/**
 * `loops` loops asking `router` for 'work' until `forMs` passed, each ask with `timeoutMs`;
 * `afterEach` runs after each ask. Resolves with how many were answered and how many timed out.
 */
async function askInLoops(
  router: Router,
  loops: number,
  forMs: number,
  timeoutMs: number,
  afterEach: () => void,
): Promise<{ answered: number; timedOut: number }> {
  const counts = { answered: 0, timedOut: 0 };
  const end = performance.now() + forMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      await router.ref.ask('work', null, { timeoutMs }).then(
        () => counts.answered++,
        (err: { code?: string }) => {
          if (err.code !== 'ASK_TIMEOUT') throw err;
          counts.timedOut++;
        },
      );
      afterEach();
    }
  };
  await Promise.all(Array.from({ length: loops }, () => loop()));
  return counts;
}

describe('a router over a worker stuck in a handler', () => {
  it('finds it stalled though each of its asks times out before stallMs, and sends it only probes', async () => {
    const system = new ActorSystem({ transport: new InProcessHub().connect() });
    await system.spawn('fine', { work: () => 'fine' }, { groups: ['g'] });
    await system.spawn('stuck', { work: () => new Promise(() => undefined) }, { groups: ['g'] });
    const router = system.router('r', { strategy: 'round-robin', group: 'g', stallMs: 300 });
    let seenStalled = false;
    const { answered, timedOut } = await askInLoops(router, 4, 2000, 100, () => (seenStalled ||= router.stalledWorkers().includes('stuck')));
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
    let givenToStuckOnceStalled: number | undefined;
    // more in flight than twice the round-robin slack: the fine worker holds more than it
    const { answered, timedOut } = await askInLoops(router, 64, 2500, 1000, () => {
      if (givenToStuckOnceStalled === undefined && router.stalledWorkers().includes('stuck')) givenToStuckOnceStalled = router.stats().perWorker.stuck ?? 0;
    });
    expect(givenToStuckOnceStalled).toBeDefined();
    // a probe about every stallMs from then on (before: every other ask, each a timeout)
    expect((router.stats().perWorker.stuck ?? 0) - givenToStuckOnceStalled!).toBeLessThan(15);
    expect(answered).toBeGreaterThan(500);
    expect(timedOut).toBeLessThan(64 + 15); // those it held when it got stuck, and the probes
    await system.close({ timeoutMs: 100 });
  });
});
